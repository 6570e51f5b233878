"""The record list index carries the list's tie-break: (kind, status, opened_at, id).

It replaces ix_ticket_kind_status_opened (kind, status, opened_at), whose every use it serves too.
With that index a page sorted by opened_at still had to sort all the matching records that share
its opened_at values by id; this one holds them in list order.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_kind_status_opened_id', ['kind', 'status', 'opened_at', 'id'], unique=False)
        batch_op.drop_index('ix_ticket_kind_status_opened')



def downgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_kind_status_opened', ['kind', 'status', 'opened_at'], unique=False)
        batch_op.drop_index('ix_ticket_kind_status_opened_id')

