"""Timer claims that never finish are counted: ``process_instance.timer_attempts``.

A sweep claims an instance's due timers with a lease and fires them; a sweeper killed while firing
(the process crashed or was killed, or hung past its lease) leaves the claim to expire, and the
next sweep claims the instance again. A diagram whose timer path kills its sweeper every time would
take down every sweeper in turn, forever. Each claim now adds one to ``timer_attempts``, a fired or
given-back claim sets it to 0, and an instance claimed ``MAX_TIMER_ATTEMPTS`` times in a row
without either goes into error for an admin (app/services/timers.py).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("process_instance") as batch:
        batch.add_column(sa.Column("timer_attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("process_instance") as batch:
        batch.drop_column("timer_attempts")
