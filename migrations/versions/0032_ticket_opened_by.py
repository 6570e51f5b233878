"""Records logged for somebody else: ``ticket.opened_by_id``.

A service desk agent taking a call starts the caller's incident (or orders a catalog item for a
colleague) on their behalf: the caller is the record's requester, and ``opened_by_id`` names the
agent who logged it (indexed: "the records I logged" is a list filter). Null for every existing
record (each was raised by its requester).

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-30 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_ticket_opened_by_id_user'), 'user', ['opened_by_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_ticket_opened_by_id'), ['opened_by_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_opened_by_id'))
        batch_op.drop_constraint(batch_op.f('fk_ticket_opened_by_id_user'), type_='foreignkey')
        batch_op.drop_column('opened_by_id')
