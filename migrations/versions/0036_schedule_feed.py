"""Calendar subscriptions to the change schedule: ``schedule_feed``.

One row per user at most (``uq_schedule_feed_user_id``): the keyed hash of the secret in their
subscription address, the user's token generation when it was made (a password change ends it),
when it was made and last read. Deleted with its user.

Revision ID: 0036
Revises: 0035
Create Date: 2026-11-30 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'schedule_feed',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('token_generation', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_read_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_schedule_feed_user_id_user'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_feed')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_schedule_feed_token_hash')),
        sa.UniqueConstraint('user_id', name=op.f('uq_schedule_feed_user_id')),
    )


def downgrade() -> None:
    op.drop_table('schedule_feed')
