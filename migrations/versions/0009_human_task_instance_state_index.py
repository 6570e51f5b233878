"""An instance's open tasks come from an index on (instance_id, state).

It replaces ix_human_task_instance_id (instance_id alone), whose every use it serves too. Every
step reads the task with its instance's open tasks (state 'ready'); with instance_id alone the
database walked all of the instance's task rows to find the open ones, so a step of an instance
that had looped 10,000 times read 10,001 rows (issue #6, b).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 18:00:00.000000
"""

from __future__ import annotations

from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.create_index('ix_human_task_instance_state', ['instance_id', 'state'], unique=False)
        batch_op.drop_index('ix_human_task_instance_id')


def downgrade() -> None:
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.create_index('ix_human_task_instance_id', ['instance_id'], unique=False)
        batch_op.drop_index('ix_human_task_instance_state')
