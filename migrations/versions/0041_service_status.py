"""Service status: notices of outages, degraded services and planned maintenance
(``status_notice``), their timeline of updates (``status_update``), and who said a notice
affects them (``status_affected``: told of its updates).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-01 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0041'
down_revision = '0040'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'status_notice',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('level', sa.String(length=16), nullable=False),
        sa.Column('service', sa.String(length=255), nullable=True),
        sa.Column('record_id', sa.Integer(), nullable=True),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expected_end_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("level IN ('outage', 'degraded', 'maintenance', 'info')",
                           name=op.f('ck_status_notice_level_known')),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_status_notice_created_by_id_user'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['record_id'], ['ticket.id'], name=op.f('fk_status_notice_record_id_ticket'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_status_notice')),
    )
    op.create_index('ix_status_notice_open', 'status_notice', ['resolved_at', 'starts_at'], unique=False)
    op.create_index(op.f('ix_status_notice_record_id'), 'status_notice', ['record_id'], unique=False)
    op.create_table(
        'status_update',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('notice_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('level', sa.String(length=16), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('posted', 'update', 'resolved')", name=op.f('ck_status_update_kind_known')),
        sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_status_update_author_id_user'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['notice_id'], ['status_notice.id'], name=op.f('fk_status_update_notice_id_status_notice'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_status_update')),
    )
    op.create_index(op.f('ix_status_update_notice_id'), 'status_update', ['notice_id'], unique=False)
    op.create_table(
        'status_affected',
        sa.Column('notice_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['notice_id'], ['status_notice.id'],
                                name=op.f('fk_status_affected_notice_id_status_notice'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_status_affected_user_id_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('notice_id', 'user_id', name=op.f('pk_status_affected')),
    )
    op.create_index(op.f('ix_status_affected_user_id'), 'status_affected', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_status_affected_user_id'), table_name='status_affected')
    op.drop_table('status_affected')
    op.drop_index(op.f('ix_status_update_notice_id'), table_name='status_update')
    op.drop_table('status_update')
    op.drop_index(op.f('ix_status_notice_record_id'), table_name='status_notice')
    op.drop_index('ix_status_notice_open', table_name='status_notice')
    op.drop_table('status_notice')
