"""Knowledge articles are written, edited, reviewed and retired by the desk's staff.

The article gains ``version`` (its saved texts counted from 1: every article already stored is at
version 1), who edited it last and when, and when it was last published. Each edit keeps the text
it replaces in the new ``knowledge_revision`` table.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('knowledge_article', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('updated_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_knowledge_article_updated_by_id_user'), 'user',
                                    ['updated_by_id'], ['id'])
    # what is published already was published when it was written
    op.execute("UPDATE knowledge_article SET published_at = created_at WHERE status = 'published'")
    op.create_table(
        'knowledge_revision',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('article_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=500), nullable=False),
        sa.Column('symptoms', sa.Text(), nullable=False),
        sa.Column('cause', sa.Text(), nullable=False),
        sa.Column('workaround', sa.Text(), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['article_id'], ['knowledge_article.id'], ondelete='CASCADE',
                                name=op.f('fk_knowledge_revision_article_id_knowledge_article')),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_knowledge_revision_created_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_revision')),
        sa.UniqueConstraint('article_id', 'version', name='uq_knowledge_revision_article_version'),
    )


def downgrade() -> None:
    op.drop_table('knowledge_revision')
    with op.batch_alter_table('knowledge_article', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_knowledge_article_updated_by_id_user'), type_='foreignkey')
        batch_op.drop_column('published_at')
        batch_op.drop_column('updated_by_id')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('version')
