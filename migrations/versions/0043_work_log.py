"""Time worked on records (``work_log``): minutes a person of the desk spent on a record on a day,
with a note; the reports add them up by the day worked.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-02 05:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0043'
down_revision = '0042'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'work_log',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('user_name', sa.String(length=128), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('worked_on', sa.Date(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('minutes BETWEEN 1 AND 1440', name=op.f('ck_work_log_minutes_in_a_day')),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_work_log_ticket_id_ticket'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_work_log_user_id_user'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_work_log')),
    )
    op.create_index('ix_work_log_worked_on', 'work_log', ['worked_on'], unique=False)
    op.create_index(op.f('ix_work_log_ticket_id'), 'work_log', ['ticket_id'], unique=False)
    op.create_index(op.f('ix_work_log_user_id'), 'work_log', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_work_log_user_id'), table_name='work_log')
    op.drop_index(op.f('ix_work_log_ticket_id'), table_name='work_log')
    op.drop_index('ix_work_log_worked_on', table_name='work_log')
    op.drop_table('work_log')
