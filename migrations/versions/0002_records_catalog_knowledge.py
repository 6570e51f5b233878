"""Ticket records with links, comments and gap-free numbers; catalog; knowledge; notifications;
task assignment columns; user managers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 07:28:06.855645
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('catalog_category',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('parent_code', sa.String(length=32), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_category')),
    sa.UniqueConstraint('code', name=op.f('uq_catalog_category_code'))
    )
    with op.batch_alter_table('catalog_category', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_category_parent_code'), ['parent_code'], unique=False)

    op.create_table('record_sequence',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('prefix', sa.String(length=8), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_record_sequence'))
    )
    op.bulk_insert(
        sa.table("record_sequence", sa.column("kind", sa.String), sa.column("prefix", sa.String),
                 sa.column("last_value", sa.Integer)),
        [{"kind": k, "prefix": p, "last_value": 0} for k, p in
         (("incident", "INC"), ("change", "CHG"), ("problem", "PRB"), ("request", "REQ"), ("knowledge", "KB"))],
    )
    op.create_table('catalog_item',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('category_code', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner_group', sa.String(length=128), nullable=False),
    sa.Column('fulfilment_group', sa.String(length=128), nullable=False),
    sa.Column('form', sa.String(length=128), nullable=True),
    sa.Column('approval_rule', sa.String(length=32), nullable=False),
    sa.Column('cost', sa.Numeric(precision=12, scale=2, asdecimal=False), nullable=False),
    sa.Column('target_hours', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('extra', JSON_TYPE, nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_catalog_item_updated_by_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_item')),
    sa.UniqueConstraint('code', name=op.f('uq_catalog_item_code'))
    )
    with op.batch_alter_table('catalog_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_item_category_code'), ['category_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_item_status'), ['status'], unique=False)

    op.create_table('ticket',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('requester_id', sa.Integer(), nullable=True),
    sa.Column('assignment_group', sa.String(length=128), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('service', sa.String(length=255), nullable=True),
    sa.Column('ci', sa.String(length=255), nullable=True),
    sa.Column('details', JSON_TYPE, nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['user.id'], name=op.f('fk_ticket_assignee_id_user')),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_ticket_instance_id_process_instance')),
    sa.ForeignKeyConstraint(['requester_id'], ['user.id'], name=op.f('fk_ticket_requester_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket')),
    sa.UniqueConstraint('instance_id', name=op.f('uq_ticket_instance_id')),
    sa.UniqueConstraint('number', name=op.f('uq_ticket_number'))
    )
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index('ix_ticket_group_status', ['assignment_group', 'status'], unique=False)
        batch_op.create_index('ix_ticket_kind_status', ['kind', 'status'], unique=False)
        batch_op.create_index('ix_ticket_opened', ['opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_priority'), ['priority'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_requester_id'), ['requester_id'], unique=False)

    op.create_table('knowledge_article',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('symptoms', sa.Text(), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('workaround', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('source_ticket_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_knowledge_article_created_by_id_user')),
    sa.ForeignKeyConstraint(['source_ticket_id'], ['ticket.id'], name=op.f('fk_knowledge_article_source_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_article')),
    sa.UniqueConstraint('number', name=op.f('uq_knowledge_article_number'))
    )
    op.create_table('notification',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_notification_ticket_id_ticket')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_notification_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_user_read', ['user_id', 'read_at'], unique=False)

    op.create_table('ticket_comment',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author_name', sa.String(length=128), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_ticket_comment_author_id_user')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_comment_ticket_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_comment'))
    )
    with op.batch_alter_table('ticket_comment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_comment_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('ticket_link',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('link_type', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_ticket_link_created_by_id_user')),
    sa.ForeignKeyConstraint(['source_id'], ['ticket.id'], name=op.f('fk_ticket_link_source_id_ticket'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['ticket.id'], name=op.f('fk_ticket_link_target_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_link')),
    sa.UniqueConstraint('source_id', 'target_id', 'link_type', name=op.f('uq_ticket_link_source_id'))
    )
    with op.batch_alter_table('ticket_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_link_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_link_target_id'), ['target_id'], unique=False)

    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assigned_user', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('candidate_group', sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f('ix_human_task_assigned_user'), ['assigned_user'], unique=False)

    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_mapping', JSON_TYPE, nullable=True))

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manager_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_user_manager_id_user'), 'user', ['manager_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_user_manager_id_user'), type_='foreignkey')
        batch_op.drop_column('manager_id')

    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_column('record_mapping')

    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_human_task_assigned_user'))
        batch_op.drop_column('candidate_group')
        batch_op.drop_column('assigned_user')

    with op.batch_alter_table('ticket_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_link_target_id'))
        batch_op.drop_index(batch_op.f('ix_ticket_link_source_id'))

    op.drop_table('ticket_link')
    with op.batch_alter_table('ticket_comment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_comment_ticket_id'))

    op.drop_table('ticket_comment')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_user_read')

    op.drop_table('notification')
    op.drop_table('knowledge_article')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_requester_id'))
        batch_op.drop_index(batch_op.f('ix_ticket_priority'))
        batch_op.drop_index('ix_ticket_opened')
        batch_op.drop_index('ix_ticket_kind_status')
        batch_op.drop_index('ix_ticket_group_status')
        batch_op.drop_index(batch_op.f('ix_ticket_assignee_id'))

    op.drop_table('ticket')
    with op.batch_alter_table('catalog_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_item_status'))
        batch_op.drop_index(batch_op.f('ix_catalog_item_category_code'))

    op.drop_table('catalog_item')
    op.drop_table('record_sequence')
    with op.batch_alter_table('catalog_category', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_category_parent_code'))

    op.drop_table('catalog_category')
