"""Timer claims: a sweeper leases an instance's due timers (expired lease = free again).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 07:33:25.395491
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timer_claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('timer_claimed_by', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_column('timer_claimed_by')
        batch_op.drop_column('timer_claimed_until')

