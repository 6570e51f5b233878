"""Configuration items as assets: ``configuration_item`` gains the asset's tag, who it is assigned
to, its vendor, purchase date, cost and warranty end (indexed: the warranty notices look for ends
coming up), and the warranty end its people were last told about; a tag is one asset's whatever
its letter case (a unique index on lower(asset_tag), where there is one).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-01 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('configuration_item') as batch:
        batch.add_column(sa.Column('asset_tag', sa.String(length=64), server_default='', nullable=False))
        batch.add_column(sa.Column('assigned_to_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('vendor', sa.String(length=128), server_default='', nullable=False))
        batch.add_column(sa.Column('purchased_on', sa.Date(), nullable=True))
        batch.add_column(sa.Column('warranty_until', sa.Date(), nullable=True))
        batch.add_column(sa.Column('cost', sa.Numeric(precision=12, scale=2), nullable=True))
        batch.add_column(sa.Column('warranty_noticed_for', sa.Date(), nullable=True))
        batch.create_foreign_key(batch.f('fk_configuration_item_assigned_to_id_user'), 'user', ['assigned_to_id'], ['id'])
        batch.create_index(batch.f('ix_configuration_item_assigned_to_id'), ['assigned_to_id'], unique=False)
        batch.create_index(batch.f('ix_configuration_item_warranty_until'), ['warranty_until'], unique=False)
    _name_index_again()
    # one asset per tag whatever the letter case (those without one have "")
    op.create_index('uq_configuration_item_asset_tag_lower', 'configuration_item', [sa.text('lower(asset_tag)')],
                    unique=True, sqlite_where=sa.text("asset_tag != ''"), postgresql_where=sa.text("asset_tag != ''"))


def downgrade() -> None:
    op.drop_index('uq_configuration_item_asset_tag_lower', table_name='configuration_item')
    with op.batch_alter_table('configuration_item') as batch:
        batch.drop_index(batch.f('ix_configuration_item_warranty_until'))
        batch.drop_index(batch.f('ix_configuration_item_assigned_to_id'))
        batch.drop_constraint(batch.f('fk_configuration_item_assigned_to_id_user'), type_='foreignkey')
        for column in ('warranty_noticed_for', 'cost', 'warranty_until', 'purchased_on', 'vendor', 'assigned_to_id',
                       'asset_tag'):
            batch.drop_column(column)
    _name_index_again()


def _name_index_again() -> None:
    """SQLite's batch mode copies the table and cannot read an index on an expression back: the
    unique lower(name) index (0028) is made again. PostgreSQL alters the table in place."""
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('CREATE UNIQUE INDEX IF NOT EXISTS uq_configuration_item_name_lower ON configuration_item (lower(name))')
