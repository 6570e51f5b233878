"""Keyed audit chain: the head names the key the chain is sealed with and seals the tip.

From this revision on, events are sealed with HMAC-SHA256 under the desk's audit key
(``AUDIT_KEY``, by default derived from ``SECRET_KEY``), which never enters the database. This
migration only adds the head's two columns; it does not reseal the events already stored:

* it cannot: migrations run from a bare Alembic configuration (tests, ``flask db upgrade``) that
  carries no application key;
* it should not: resealing an unkeyed chain means trusting a history that anybody with write access
  to the database could have rewritten. That is a decision for an operator, made once and on the
  record: ``flask audit reseal --legacy`` verifies the old chain, refuses a broken one, rewrites it
  under the key and appends an ``audit_chain_resealed`` event naming who did it.

Until then the desk keeps working (new events are sealed with the key and continue the chain), and
every check reports the old events as "sealed with a plain SHA-256 hash": never as intact, so there
is nothing in the database an attacker could flip to make verification fall back to unkeyed hashes.

Downgrading drops the columns; events sealed with the key then no longer verify under the old code.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('seal', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('seal')
        batch_op.drop_column('key_id')
