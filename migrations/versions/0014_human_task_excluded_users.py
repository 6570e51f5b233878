"""A task remembers who may not do it, so that it stays out of their queue.

Separation of duties (excludeUsersVars, e.g. nobody approves their own request) was only checked
when a task was claimed or completed: the requester still found their own approval in the queue.
``human_task.excluded_users`` holds those usernames as ",alice,bob," when the task becomes ready.
Tasks already open keep NULL (shown as before until they are done).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('human_task') as batch:
        batch.add_column(sa.Column('excluded_users', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('human_task') as batch:
        batch.drop_column('excluded_users')
