"""Response templates (``response_template``): an agent's or the desk's stock replies, put into
a record's comment with the record's values filled in.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-02 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0042'
down_revision = '0041'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'response_template',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=True),
        sa.Column('owner_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IS NULL OR kind IN ('incident', 'change', 'problem', 'request')",
                           name=op.f('ck_response_template_kind_known')),
        sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_response_template_owner_id_user'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_response_template_created_by_id_user'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_response_template')),
    )
    op.create_index(op.f('ix_response_template_owner_id'), 'response_template', ['owner_id'], unique=False)
    # one name per owner and one among the desk's (no owner), whatever the letter case
    op.create_index('uq_response_template_owner_name', 'response_template',
                    [sa.text('coalesce(owner_id, 0)'), sa.text('lower(name)')], unique=True)


def downgrade() -> None:
    op.drop_index('uq_response_template_owner_name', table_name='response_template')
    op.drop_index(op.f('ix_response_template_owner_id'), table_name='response_template')
    op.drop_table('response_template')
