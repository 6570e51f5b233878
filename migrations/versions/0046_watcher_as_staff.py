"""A record's watcher made while the user was the desk's staff (``record_watcher.chosen``): such a
watch brings news only, never reading, so that someone demoted later stops reading what they
followed as staff. Watches made before this revision count as not chosen (they keep reading).

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-02 18:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0046'
down_revision = '0045'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('record_watcher', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chosen', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('record_watcher', schema=None) as batch_op:
        batch_op.drop_column('chosen')
