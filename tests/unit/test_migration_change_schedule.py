"""Migration 0035 copies the planned window of the changes that exist already from their details
onto the new columns (both ends instants with a zone, the end after the start; anything else stays
unplanned), gives the change process's deployed versions the mapping's ``schedule``, on SQLite and
on PostgreSQL, and goes back."""

from __future__ import annotations

from datetime import datetime, timezone

from alembic import command
from sqlalchemy import Boolean, Integer, String, column, create_engine, inspect, select, table, text

from app.cli import alembic_config
from app.models.base import JSONType, UTCDateTime
from tests.conftest import drop_fresh_database, fresh_database_url

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
# The table as revision 0034 has it (the model has moved on).
TICKET = table("ticket", column("id", Integer), column("kind", String), column("number", String), column("title", String),
               column("description", String), column("status", String), column("details", JSONType),
               column("opened_at", UTCDateTime()), column("updated_at", UTCDateTime()))
NEW_COLUMNS = {"planned_start_at", "planned_end_at"}
DEPLOYMENT = table("deployment", column("id", Integer), column("deployed_at", UTCDateTime()), column("files", JSONType),
                   column("versions_created", JSONType))
DEFINITION = table("process_definition", column("id", Integer), column("process_id", String), column("version", Integer),
                   column("name", String), column("content_hash", String), column("filename", String),
                   column("bpmn_xml", String), column("spec_json", String), column("forms", JSONType),
                   column("user_tasks", JSONType), column("lanes", JSONType), column("files_used", JSONType),
                   column("record_mapping", JSONType), column("deployment_id", Integer), column("deployed_at", UTCDateTime()),
                   column("is_latest", Boolean))
#: The change process's mapping as versions deployed before 0035 stored it, and one of another shape.
SHIPPED_MAPPING = {"kind": "change", "prefix": "CHG", "fields": {"title": "title"},
                   "details": {"planned_start": "planned_start", "planned_end": "planned_end"}}
OTHER_MAPPING = {"kind": "change", "prefix": "CHG", "fields": {"title": "title"}, "details": {"window": "window"}}
SCHEDULE = {"start": "planned_start", "end": "planned_end", "exempt": {"change_type": ["emergency"]}}

#: number: (kind, details, expected (planned_start_at, planned_end_at))
RECORDS = {
    "CHG-1": ("change", {"planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z"},
              (datetime(2026, 3, 10, 20, tzinfo=timezone.utc), datetime(2026, 3, 10, 22, tzinfo=timezone.utc))),
    # an offset is a zone: stored in UTC
    "CHG-2": ("change", {"planned_start": "2026-03-10T21:00:00+02:00", "planned_end": "2026-03-10T23:30:00+02:00"},
              (datetime(2026, 3, 10, 19, tzinfo=timezone.utc), datetime(2026, 3, 10, 21, 30, tzinfo=timezone.utc))),
    # no zone, no end, the end before the start, not text: unplanned
    "CHG-3": ("change", {"planned_start": "2026-03-10T20:00:00", "planned_end": "2026-03-10T22:00:00"}, (None, None)),
    "CHG-4": ("change", {"planned_start": "2026-03-10T20:00:00Z"}, (None, None)),
    "CHG-5": ("change", {"planned_start": "2026-03-10T22:00:00Z", "planned_end": "2026-03-10T20:00:00Z"}, (None, None)),
    "CHG-6": ("change", {"planned_start": 20260310, "planned_end": None}, (None, None)),
    # only changes have a window
    "INC-1": ("incident", {"planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z"}, (None, None)),
    # beyond the years the desk keeps (an offset past year 9999 once stopped the upgrade)
    "CHG-7": ("change", {"planned_start": "9999-12-31T20:00:00-01:00", "planned_end": "9999-12-31T23:30:00-01:00"},
              (None, None)),
}


def test_existing_changes_get_their_planned_window_and_the_migration_goes_back(tmp_path):
    url = fresh_database_url(tmp_path, "schedule")
    engine = create_engine(url)
    try:
        command.downgrade(alembic_config(url), "0034")
        engine.dispose()
        assert not NEW_COLUMNS & {c["name"] for c in inspect(engine).get_columns("ticket")}
        assert "change_freeze" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(DEPLOYMENT.insert().values(id=1, deployed_at=NOW, files=[], versions_created=[]))
            for version, mapping in ((1, SHIPPED_MAPPING), (2, OTHER_MAPPING)):
                conn.execute(DEFINITION.insert().values(
                    id=version, process_id="change_enablement", version=version, name="Change", content_hash="h",
                    filename="change_enablement.bpmn", bpmn_xml="", spec_json="", forms={}, user_tasks=[], lanes=[],
                    files_used=[], record_mapping=mapping, deployment_id=1, deployed_at=NOW, is_latest=version == 2))
            for index, (number, (kind, details, _expected)) in enumerate(RECORDS.items(), start=1):
                conn.execute(TICKET.insert().values(id=index, kind=kind, number=number, title="t", description="",
                                                    status="new", details=details, opened_at=NOW, updated_at=NOW))
        command.upgrade(alembic_config(url), "head")
        engine.dispose()
        migrated = table("ticket", column("number", String), column("planned_start_at", UTCDateTime()),
                         column("planned_end_at", UTCDateTime()))
        with engine.connect() as conn:
            found = {row.number: (row.planned_start_at, row.planned_end_at) for row in conn.execute(select(migrated))}
            assert found == {number: expected for number, (_k, _d, expected) in RECORDS.items()}
            assert "ix_ticket_planned" in {ix["name"] for ix in inspect(conn).get_indexes("ticket")}
            assert "change_freeze" in inspect(conn).get_table_names()
            mappings = dict(conn.execute(select(DEFINITION.c.version, DEFINITION.c.record_mapping)).all())
            # the shipped shape gains the schedule its running changes need; another is left alone
            assert mappings == {1: {**SHIPPED_MAPPING, "schedule": SCHEDULE}, 2: OTHER_MAPPING}
        command.downgrade(alembic_config(url), "0034")
        engine.dispose()
        assert not NEW_COLUMNS & {c["name"] for c in inspect(engine).get_columns("ticket")}
        with engine.connect() as conn:  # the records themselves are untouched
            assert conn.execute(text("SELECT count(*) FROM ticket")).scalar() == len(RECORDS)
            assert dict(conn.execute(select(DEFINITION.c.version, DEFINITION.c.record_mapping)).all()) == {
                1: SHIPPED_MAPPING, 2: OTHER_MAPPING}
    finally:
        engine.dispose()
        drop_fresh_database(url)
