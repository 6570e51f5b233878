"""Housekeeping: ``housekeeping_run``, the claim of each periodic job's latest run.

Data retention (app/services/retention.py) purges old operational rows once a day; any number of
sweepers ask for it, and the one whose conditional UPDATE of ``last_started_at`` succeeds runs it.
The table starts empty (a job's row is written by its first run).

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-30 10:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'housekeeping_run',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_started_by', sa.String(length=128), nullable=True),
        sa.Column('last_finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_housekeeping_run')),
    )


def downgrade() -> None:
    op.drop_table('housekeeping_run')
