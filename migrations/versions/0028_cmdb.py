"""The configuration management database: ``configuration_item`` and ``ci_relationship``, and an
index on ``ticket.ci`` (a CI's page lists the records that name it).

CIs are unique by name whatever the letter case (``uq_configuration_item_name_lower``), as the
records' free-text ``ci`` field names them. A relationship joins two different CIs once per kind.
The tables start empty.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-30 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'configuration_item',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('ci_class', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=True),
        sa.Column('support_group_id', sa.Integer(), nullable=True),
        sa.Column('location', sa.String(length=255), nullable=False),
        sa.Column('serial_number', sa.String(length=128), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_configuration_item_owner_id_user')),
        sa.ForeignKeyConstraint(['support_group_id'], ['group.id'],
                                name=op.f('fk_configuration_item_support_group_id_group')),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_configuration_item_created_by_id_user')),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_configuration_item_updated_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_configuration_item')),
        sa.UniqueConstraint('name', name=op.f('uq_configuration_item_name')),
    )
    op.create_index('uq_configuration_item_name_lower', 'configuration_item', [sa.text('lower(name)')], unique=True)
    op.create_index('ix_configuration_item_class_status', 'configuration_item', ['ci_class', 'status'], unique=False)
    op.create_table(
        'ci_relationship',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=128), nullable=False),
        sa.CheckConstraint('source_id <> target_id', name=op.f('ck_ci_relationship_not_self')),
        sa.ForeignKeyConstraint(['source_id'], ['configuration_item.id'], ondelete='CASCADE',
                                name=op.f('fk_ci_relationship_source_id_configuration_item')),
        sa.ForeignKeyConstraint(['target_id'], ['configuration_item.id'], ondelete='CASCADE',
                                name=op.f('fk_ci_relationship_target_id_configuration_item')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ci_relationship')),
        sa.UniqueConstraint('source_id', 'target_id', 'kind', name='uq_ci_relationship_source_target_kind'),
    )
    op.create_index(op.f('ix_ci_relationship_source_id'), 'ci_relationship', ['source_id'], unique=False)
    op.create_index(op.f('ix_ci_relationship_target_id'), 'ci_relationship', ['target_id'], unique=False)
    op.create_index(op.f('ix_ticket_ci'), 'ticket', ['ci'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ticket_ci'), table_name='ticket')
    op.drop_index(op.f('ix_ci_relationship_target_id'), table_name='ci_relationship')
    op.drop_index(op.f('ix_ci_relationship_source_id'), table_name='ci_relationship')
    op.drop_table('ci_relationship')
    op.drop_index('ix_configuration_item_class_status', table_name='configuration_item')
    op.drop_index('uq_configuration_item_name_lower', table_name='configuration_item')
    op.drop_table('configuration_item')
