"""Recurring requests (``recurring_request``): a process started on a weekly or monthly rule with
the same data, as its owner.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-02 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0045'
down_revision = '0044'
branch_labels = None
depends_on = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        'recurring_request',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('process_id', sa.String(length=128), nullable=False),
        sa.Column('data', JSON_TYPE, nullable=False),
        sa.Column('requested_for', sa.String(length=128), nullable=True),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('week', sa.Integer(), nullable=True),
        sa.Column('minute', sa.Integer(), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_instance_id', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('anchor_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('days >= 1 AND days <= 127', name=op.f('ck_recurring_request_days_bits')),
        sa.CheckConstraint('minute >= 0 AND minute < 1440', name=op.f('ck_recurring_request_minute_in_day')),
        sa.CheckConstraint('week IS NULL OR (week >= 1 AND week <= 5)', name=op.f('ck_recurring_request_week_of_month')),
        sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_recurring_request_owner_id_user'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['last_instance_id'], ['process_instance.id'],
                                name=op.f('fk_recurring_request_last_instance_id_process_instance'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recurring_request')),
    )
    op.create_index(op.f('ix_recurring_request_owner_id'), 'recurring_request', ['owner_id'], unique=False)
    op.create_index('ix_recurring_request_due', 'recurring_request', ['active', 'next_run_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_recurring_request_due', table_name='recurring_request')
    op.drop_index(op.f('ix_recurring_request_owner_id'), table_name='recurring_request')
    op.drop_table('recurring_request')
