"""Inbound e-mail: ``inbound_mail``, one row per message the mail gateway took.

The mail gateway (``flask mail ingest``, ``POST /api/v1/mail/inbound``) turns a message into a new
incident or a comment on the record it answers. Each message is recorded once by its Message-ID
(unique: a message delivered twice is acted on once) with its outcome, the record it touched and
why. The table starts empty.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30 07:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'inbound_mail',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('message_id', sa.String(length=255), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=True),
        sa.Column('sender', sa.String(length=255), nullable=True),
        sa.Column('subject', sa.String(length=255), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retried_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_mail')),
        sa.UniqueConstraint('message_id', name=op.f('uq_inbound_mail_message_id')),
    )
    op.create_index('ix_inbound_mail_received_at', 'inbound_mail', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_mail_received_at', table_name='inbound_mail')
    op.drop_table('inbound_mail')
