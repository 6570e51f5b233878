"""Readers' answers to "Was this article helpful?": ``knowledge_feedback``.

One row per reader and article (``uq_knowledge_feedback_article_user``): asked again, the answer
changes. Deleted with its article. The counts show the desk's staff which articles work, and
rank equally matching articles when the incident's start page suggests them.

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-30 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'knowledge_feedback',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('article_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('helpful', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['knowledge_article.id'],
                                name=op.f('fk_knowledge_feedback_article_id_knowledge_article'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_knowledge_feedback_user_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_feedback')),
        sa.UniqueConstraint('article_id', 'user_id', name='uq_knowledge_feedback_article_user'),
    )
    op.create_index(op.f('ix_knowledge_feedback_user_id'), 'knowledge_feedback', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_knowledge_feedback_user_id'), table_name='knowledge_feedback')
    op.drop_table('knowledge_feedback')
