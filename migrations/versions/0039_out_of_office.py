"""Out of office: a user is away from ``away_from`` until ``away_until`` and their delegate
(``delegate_id``) takes the tasks assigned to them by name meanwhile; a task handed so names whom
it was assigned to before (``human_task.delegated_from``), and goes back to them when the absence
ends. Both indexed: the sweep looks for absences that end and for the tasks handed.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-01 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0039'
down_revision = '0038'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user') as batch:
        batch.add_column(sa.Column('away_from', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('away_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('delegate_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f('fk_user_delegate_id_user'), 'user', ['delegate_id'], ['id'], ondelete='SET NULL')
        batch.create_index(batch.f('ix_user_away_until'), ['away_until'], unique=False)
    _username_index_again()
    with op.batch_alter_table('human_task') as batch:
        batch.add_column(sa.Column('delegated_from', sa.String(length=128), nullable=True))
        batch.create_index(batch.f('ix_human_task_delegated_from'), ['delegated_from'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('human_task') as batch:
        batch.drop_index(batch.f('ix_human_task_delegated_from'))
        batch.drop_column('delegated_from')
    with op.batch_alter_table('user') as batch:
        batch.drop_index(batch.f('ix_user_away_until'))
        batch.drop_constraint(batch.f('fk_user_delegate_id_user'), type_='foreignkey')
        for column in ('delegate_id', 'away_until', 'away_from'):
            batch.drop_column(column)
    _username_index_again()


def _username_index_again() -> None:
    """SQLite's batch mode copies the table and cannot read an index on an expression back: the
    unique lower(username) index is made again. PostgreSQL alters the table in place."""
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('CREATE UNIQUE INDEX IF NOT EXISTS uq_user_username_lower ON "user" (lower(username))')
