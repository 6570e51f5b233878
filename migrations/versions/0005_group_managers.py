"""Group managers (told about SLA breaches of the group's records).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 07:47:23.068830
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manager_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_group_manager_id_user'), 'user', ['manager_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_group_manager_id_user'), type_='foreignkey')
        batch_op.drop_column('manager_id')

