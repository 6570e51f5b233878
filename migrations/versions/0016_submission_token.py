"""One-time form submission tokens, so a form sent twice creates its record once.

A double click on a start, catalog request or comment form sent two POSTs and created two
incidents, orders or comments. Those forms now carry a random one-time token; the POST that
creates the record writes a ``submission_token`` row in the same transaction, unique per user and
token, saying where it led. A repeat of the same token creates nothing and goes there too. Rows
older than a day are pruned as new ones are written, through the ``created_at`` index.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('submission_token',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('result_url', sa.String(length=255), nullable=False),
    sa.Column('result_ref', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_submission_token_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission_token')),
    sa.UniqueConstraint('user_id', 'token', name=op.f('uq_submission_token_user_id_token'))
    )
    with op.batch_alter_table('submission_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_token_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submission_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_token_created_at'))
    op.drop_table('submission_token')
