"""Records have watchers: the users and groups a process step told about them.

A diagram's ``notify`` step (a P1 incident tells ServiceOwners) adds the user or group it notifies
to the record's watchers, who may then read the record they were told about. The new
``record_watcher`` table holds one row per watching user or group of a record; it starts empty
(nobody told before this upgrade becomes a watcher).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'record_watcher',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('group_name', sa.String(length=128), nullable=True),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('(user_id IS NULL) <> (group_name IS NULL)',
                           name=op.f('ck_record_watcher_one_watcher')),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ondelete='CASCADE',
                                name=op.f('fk_record_watcher_ticket_id_ticket')),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE',
                                name=op.f('fk_record_watcher_user_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_record_watcher')),
        sa.UniqueConstraint('ticket_id', 'user_id', name='uq_record_watcher_ticket_user'),
        sa.UniqueConstraint('ticket_id', 'group_name', name='uq_record_watcher_ticket_group'),
    )


def downgrade() -> None:
    op.drop_table('record_watcher')
