"""The change schedule: a record's planned window as columns, and freeze windows.

``ticket.planned_start_at`` / ``planned_end_at`` hold the window a record's mapping names in its
``schedule`` (the change process: ``planned_start``, ``planned_end``), indexed for the schedule's
reads. Changes stored before this revision kept the window in their details only: it is copied
from there. The change process's versions deployed before gain the mapping's ``schedule`` (a
version's record mapping is stored with it, and its running changes stay on it): otherwise a change
in flight would keep its copied window when it is moved again, and no freeze would hold for it.
``change_freeze`` holds the freeze (blackout) windows.

Revision ID: 0035
Revises: 0034
Create Date: 2026-11-30 21:45:00.000000
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None

_PLANNED = sa.text("planned_start_at IS NOT NULL")
_EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
#: What the shipped change process's record mapping gains (processes/change_enablement.record.json).
_SCHEDULE = {"start": "planned_start", "end": "planned_end", "exempt": {"change_type": ["emergency"]}}


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
        utc = moment.astimezone(timezone.utc) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
    # the range the desk keeps windows in (app/services/records.py window_instant)
    return utc if utc is not None and _EARLIEST <= utc < _LATEST else None


def upgrade() -> None:
    with op.batch_alter_table('ticket') as batch:
        batch.add_column(sa.Column('planned_start_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('planned_end_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_ticket_planned', 'ticket', ['planned_start_at', 'planned_end_at'], unique=False,
                    sqlite_where=_PLANNED, postgresql_where=_PLANNED)
    op.create_table(
        'change_freeze',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('ci', sa.String(length=255), nullable=True),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_change_freeze_ends_after_start')),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_change_freeze_created_by_id_user'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_change_freeze')),
    )
    op.create_index('ix_change_freeze_window', 'change_freeze', ['starts_at', 'ends_at'], unique=False)
    _copy_planned_windows()
    _schedule_deployed_changes(add=True)


def _schedule_deployed_changes(*, add: bool) -> None:
    """The deployed versions of the change process whose record mapping copies the window to its
    details (as the shipped one does): ``schedule`` added (or, going back, removed)."""
    bind = op.get_bind()
    definition = sa.table('process_definition', sa.column('id', sa.Integer), sa.column('process_id', sa.String),
                          sa.column('record_mapping', sa.JSON().with_variant(JSONB(), 'postgresql')))
    rows = bind.execute(sa.select(definition.c.id, definition.c.record_mapping)
                        .where(definition.c.process_id == 'change_enablement')).all()
    for row_id, mapping in rows:
        if not isinstance(mapping, dict) or mapping.get('kind') != 'change':
            continue
        details = mapping.get('details') or {}
        if add and 'schedule' not in mapping and details.get('planned_start') == 'planned_start' \
                and details.get('planned_end') == 'planned_end':
            changed = {**mapping, 'schedule': _SCHEDULE}
        elif not add and mapping.get('schedule') == _SCHEDULE:
            changed = {k: v for k, v in mapping.items() if k != 'schedule'}
        else:
            continue
        bind.execute(sa.update(definition).where(definition.c.id == row_id).values(record_mapping=changed))


def _copy_planned_windows() -> None:
    """Changes stored before: their window, from the details, where both ends are instants."""
    bind = op.get_bind()
    ticket = sa.table('ticket', sa.column('id', sa.Integer), sa.column('kind', sa.String),
                      sa.column('details', sa.JSON), sa.column('planned_start_at', sa.DateTime(timezone=True)),
                      sa.column('planned_end_at', sa.DateTime(timezone=True)))
    sqlite = bind.dialect.name == "sqlite"
    rows = bind.execute(sa.select(ticket.c.id, ticket.c.details).where(ticket.c.kind == 'change')).all()
    for row_id, details in rows:
        details = details or {}
        start, end = _instant(details.get('planned_start')), _instant(details.get('planned_end'))
        if start is None or end is None or end <= start:
            continue
        if sqlite:  # the UTC column type stores naive UTC there (app/models/base.py)
            start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
        bind.execute(sa.update(ticket).where(ticket.c.id == row_id).values(planned_start_at=start, planned_end_at=end))


def downgrade() -> None:
    _schedule_deployed_changes(add=False)
    op.drop_index('ix_change_freeze_window', table_name='change_freeze')
    op.drop_table('change_freeze')
    op.drop_index('ix_ticket_planned', table_name='ticket')
    with op.batch_alter_table('ticket') as batch:
        batch.drop_column('planned_end_at')
        batch.drop_column('planned_start_at')
