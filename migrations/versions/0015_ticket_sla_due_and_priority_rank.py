"""A record keeps its SLA due instant and its priority's rank, so the task lists sort by an index.

Sorting the inbox by SLA due (the pages' default) or by priority worked out, for every ready task
of the queue before paging, the earliest ``due_at`` of its record's clocks (a correlated look-up
into ``sla_clock``), and ranked the priority with a CASE: a queue of thousands paid for all of them
on every view. Now:

* ``ticket.sla_due_at``: the earliest ``due_at`` of the record's stored clocks (only a running
  clock has one); ``ticket.sla_warning_at``: the earliest ``warning_at`` of those with a due
  instant (the "at risk" mark). The SLA service writes both whenever it stores the clocks.
* ``ticket.priority_rank``: 1-4 for P1-P4, a change's risk ranked with them (high 2, medium 3,
  low 4), 5 for any other value, 6 for none; set with the priority.
* partial indexes over the records that have a due instant (closed records have none): by due
  instant, and by rank then due instant, each with the instance id the lists join their tasks on.

Existing rows are filled from their stored clocks and priorities, in SQL that SQLite and
PostgreSQL both run. The ranks are written out here as they are at this revision.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

HAS_SLA_DUE = sa.text('sla_due_at IS NOT NULL')


def upgrade() -> None:
    with op.batch_alter_table('ticket') as batch:
        batch.add_column(sa.Column('priority_rank', sa.SmallInteger(), server_default=sa.text('6'), nullable=False))
        batch.add_column(sa.Column('sla_due_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('sla_warning_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE ticket SET priority_rank = CASE priority"
        " WHEN 'P1' THEN 1 WHEN 'P2' THEN 2 WHEN 'P3' THEN 3 WHEN 'P4' THEN 4"
        " WHEN 'high' THEN 2 WHEN 'medium' THEN 3 WHEN 'low' THEN 4 ELSE 5 END"
        " WHERE priority IS NOT NULL")
    # Only records with a clock that has a due instant get one; the others keep NULL, which is
    # what the earliest due instant of clocks without any is.
    op.execute(
        "UPDATE ticket SET"
        " sla_due_at = (SELECT min(c.due_at) FROM sla_clock c WHERE c.ticket_id = ticket.id),"
        " sla_warning_at = (SELECT min(c.warning_at) FROM sla_clock c"
        " WHERE c.ticket_id = ticket.id AND c.due_at IS NOT NULL)"
        " WHERE id IN (SELECT ticket_id FROM sla_clock WHERE due_at IS NOT NULL)")
    with op.batch_alter_table('ticket') as batch:
        batch.create_index('ix_ticket_sla_due', ['sla_due_at', 'instance_id'], unique=False,
                           sqlite_where=HAS_SLA_DUE, postgresql_where=HAS_SLA_DUE)
        batch.create_index('ix_ticket_rank_sla_due', ['priority_rank', 'sla_due_at', 'instance_id'], unique=False,
                           sqlite_where=HAS_SLA_DUE, postgresql_where=HAS_SLA_DUE)


def downgrade() -> None:
    with op.batch_alter_table('ticket') as batch:
        batch.drop_index('ix_ticket_rank_sla_due')
        batch.drop_index('ix_ticket_sla_due')
        batch.drop_column('sla_warning_at')
        batch.drop_column('sla_due_at')
        batch.drop_column('priority_rank')
