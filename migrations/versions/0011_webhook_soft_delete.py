"""Webhooks are deleted softly: ``webhook.deleted_at``.

Deleting a webhook through the API cancels its pending outbox messages and marks the row deleted
(wiping its secret) instead of removing it, so its outbox messages and delivery attempts keep
pointing at the subscription they were sent for: the delivery log stays complete for audit.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Deleted webhooks would come back to life without the column: remove them first. Their outbox
    # messages and delivery attempts stay, unlinked (as the foreign key's ON DELETE SET NULL would do;
    # SQLite does not enforce it during migrations).
    op.execute("UPDATE outbox_message SET webhook_id = NULL"
               " WHERE webhook_id IN (SELECT id FROM webhook WHERE deleted_at IS NOT NULL)")
    op.execute("DELETE FROM webhook WHERE deleted_at IS NOT NULL")
    with op.batch_alter_table('webhook', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
