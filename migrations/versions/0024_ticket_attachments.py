"""Records have file attachments: ``ticket_attachment``.

Service desk users attach screenshots and logs to a record. Each file is one row holding its bytes
(``data``, BYTEA on PostgreSQL, BLOB on SQLite) with its sanitised name, the type its uploader's
client claimed, its size and SHA-256, and who attached it when. The table starts empty.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ticket_attachment',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=128), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
        sa.Column('uploaded_by', sa.String(length=128), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_attachment_ticket_id_ticket')),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['user.id'],
                                name=op.f('fk_ticket_attachment_uploaded_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_attachment')),
    )
    op.create_index(op.f('ix_ticket_attachment_ticket_id'), 'ticket_attachment', ['ticket_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ticket_attachment_ticket_id'), table_name='ticket_attachment')
    op.drop_table('ticket_attachment')
