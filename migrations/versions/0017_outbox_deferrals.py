"""Count an outbox message's deferrals in a row, so that deferring ends.

A webhook delivery that found every resolver thread busy was deferred without counting an attempt,
and could be deferred again every half minute without end. ``deferrals`` counts those in a row; past
``notifications.MAX_DEFERRALS`` the next one is recorded as a failed attempt, so the message moves
toward ``dead`` like any other failing one. A real attempt sets it back to 0.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deferrals', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('deferrals')
