"""Migration 0015 gives the records that exist already their SLA due instant, warning instant and
priority rank, computed in SQL from their clocks and priorities, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alembic import command
from sqlalchemy import Boolean, Float, Integer, String, column, create_engine, inspect, select, table, text

from app.cli import alembic_config
from app.models.base import JSONType, UTCDateTime
from tests.conftest import drop_fresh_database, fresh_database_url

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)

# The two tables as revision 0014 has them (the models have moved on).
TICKET = table("ticket", column("id", Integer), column("kind", String), column("number", String), column("title", String),
               column("description", String), column("status", String), column("priority", String),
               column("details", JSONType), column("opened_at", UTCDateTime()), column("updated_at", UTCDateTime()))
CLOCK = table("sla_clock", column("ticket_id", Integer), column("name", String), column("target_seconds", Float),
              column("elapsed_seconds", Float), column("paused_seconds", Float), column("state", String),
              column("due_at", UTCDateTime()), column("warning_at", UTCDateTime()), column("warned", Boolean),
              column("escalated", Boolean), column("evaluated_at", UTCDateTime()))
NEW_COLUMNS = {"priority_rank", "sla_due_at", "sla_warning_at"}

#: number: (priority, [(clock, state, due_at, warning_at)], expected (rank, sla_due_at, sla_warning_at))
RECORDS = {
    # two running clocks: the earlier due instant, the earlier warning of the two
    "INC-1": ("P3", [("response", "running", NOW + 4 * HOUR, NOW + 3 * HOUR),
                     ("resolution", "running", NOW + 24 * HOUR, NOW + 18 * HOUR)], (3, NOW + 4 * HOUR, NOW + 3 * HOUR)),
    # the response met, the resolution breached and running: its breach instant, its reached warning
    "INC-2": ("P1", [("response", "met", None, NOW - 2 * HOUR), ("resolution", "breached", NOW - HOUR, NOW - 2 * HOUR)],
              (1, NOW - HOUR, NOW - 2 * HOUR)),
    # paused: no due instant, so no warning either
    "INC-3": ("P2", [("response", "met", None, None), ("resolution", "paused", None, NOW + HOUR)], (2, None, None)),
    # no clock at all (a change), a change's risk ranked with the priorities
    "CHG-1": ("high", [], (2, None, None)),
    "CHG-2": ("medium", [], (3, None, None)),
    "CHG-3": ("low", [], (4, None, None)),
    # a value no rank knows, and none
    "INC-4": ("urgent", [("resolution", "running", NOW + 2 * HOUR, None)], (5, NOW + 2 * HOUR, None)),
    "INC-5": (None, [], (6, None, None)),
}


def test_existing_records_get_their_due_instant_and_rank_and_the_migration_goes_back(tmp_path):
    url = fresh_database_url(tmp_path, "sla_due")
    engine = create_engine(url)
    try:
        command.downgrade(alembic_config(url), "0014")
        engine.dispose()
        assert not NEW_COLUMNS & {c["name"] for c in inspect(engine).get_columns("ticket")}
        with engine.begin() as conn:
            for index, (number, (priority, clocks, _expected)) in enumerate(RECORDS.items(), start=1):
                conn.execute(TICKET.insert().values(id=index, kind="incident", number=number, title="t", description="",
                                                    status="new", priority=priority, details={}, opened_at=NOW,
                                                    updated_at=NOW))
                for name, state, due_at, warning_at in clocks:
                    conn.execute(CLOCK.insert().values(ticket_id=index, name=name, target_seconds=3600.0, elapsed_seconds=0.0,
                                                       paused_seconds=0.0, state=state, due_at=due_at, warning_at=warning_at,
                                                       warned=False, escalated=False, evaluated_at=NOW))
        command.upgrade(alembic_config(url), "head")
        engine.dispose()
        migrated = table("ticket", column("number", String), column("priority_rank", Integer),
                         column("sla_due_at", UTCDateTime()), column("sla_warning_at", UTCDateTime()))
        with engine.connect() as conn:
            found = {row.number: (row.priority_rank, row.sla_due_at, row.sla_warning_at)
                     for row in conn.execute(select(migrated))}
            assert found == {number: expected for number, (_p, _c, expected) in RECORDS.items()}
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("ticket")}
            assert {"ix_ticket_sla_due", "ix_ticket_rank_sla_due"} <= indexes
        command.downgrade(alembic_config(url), "0014")
        engine.dispose()
        assert not NEW_COLUMNS & {c["name"] for c in inspect(engine).get_columns("ticket")}
        with engine.connect() as conn:  # the records themselves are untouched
            assert conn.execute(text("SELECT count(*) FROM ticket")).scalar() == len(RECORDS)
    finally:
        engine.dispose()
        drop_fresh_database(url)
