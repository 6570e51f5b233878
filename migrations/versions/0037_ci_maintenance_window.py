"""Maintenance windows of configuration items: ``ci_maintenance_window``.

Each row is one weekly window of a CI (or monthly: ``week`` 1-4, 5 the last, of the month): the
weekdays as bits (Monday 1 to Sunday 64), the start
and end as minutes after midnight in the row's IANA time zone, an optional name, who added it and
when. Deleted with its CI.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-01 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ci_maintenance_window',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ci_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('week', sa.Integer(), nullable=True),
        sa.Column('start_minute', sa.Integer(), nullable=False),
        sa.Column('end_minute', sa.Integer(), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('days >= 1 AND days <= 127', name=op.f('ck_ci_maintenance_window_days_bits')),
        sa.CheckConstraint('start_minute >= 0 AND start_minute < 1440', name=op.f('ck_ci_maintenance_window_start_in_day')),
        sa.CheckConstraint('end_minute >= 0 AND end_minute < 1440', name=op.f('ck_ci_maintenance_window_end_in_day')),
        sa.CheckConstraint('week IS NULL OR (week >= 1 AND week <= 5)', name=op.f('ck_ci_maintenance_window_week_of_month')),
        sa.ForeignKeyConstraint(['ci_id'], ['configuration_item.id'], name=op.f('fk_ci_maintenance_window_ci_id_configuration_item'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_ci_maintenance_window_created_by_id_user'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ci_maintenance_window')),
    )
    op.create_index(op.f('ix_ci_maintenance_window_ci_id'), 'ci_maintenance_window', ['ci_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ci_maintenance_window_ci_id'), table_name='ci_maintenance_window')
    op.drop_table('ci_maintenance_window')
