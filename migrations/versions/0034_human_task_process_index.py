"""An index of ``human_task`` by process and state: ``ix_human_task_process_state``.

The process page's "Where the work waits" counts a process's waiting tasks and its tasks done
lately (app/services/task_stats.py); without the index each look read every task row of the desk.

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-30 20:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_human_task_process_state', 'human_task', ['process_id', 'state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_human_task_process_state', table_name='human_task')
