"""Every statement of an incident's lifecycle comes from SQLAlchemy's compiled cache once warm.

A statement without a cache key (a multi-row ``VALUES``, a construct that opts out of caching)
is compiled again on every execution, at a millisecond or more each time; one such statement in
the audit append cost PostgreSQL commits more than the rest of the commit. This drives whole
incident lifecycles through the API and checks, for the last one, that nothing was compiled.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import HARNESS_STATEMENTS
from tests.http.desk import Desk

START = {"title": "VPN drops every hour", "description": "Since Monday", "category": "network",
         "impact": "medium", "urgency": "medium"}
TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}
RESOLVE = {"outcome": "resolve", "resolution_notes": "Renewed the certificate", "cause_category": "configuration"}

#: The test's own transaction control (the app's sessions join it through savepoints).


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def lifecycle(desk: Desk) -> None:
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", TRIAGE)
    desk.complete(number, "investigate", "nina", RESOLVE)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    assert desk.record(number)["status"] == "closed"


def test_a_warm_lifecycle_compiles_no_statement(desk: Desk, connection: Any):
    for _ in range(2):  # every statement of the path compiled (and cached) once
        lifecycle(desk)
    seen: list[tuple[str, Any]] = []

    def log(_conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool) -> None:
        text = " ".join(statement.split())
        if not text.upper().startswith(HARNESS_STATEMENTS):
            seen.append((text, context.cache_hit))

    event.listen(connection, "before_cursor_execute", log)
    try:
        lifecycle(desk)
    finally:
        event.remove(connection, "before_cursor_execute", log)
    hit = connection.dialect.CACHE_HIT
    assert len(seen) > 40  # the whole lifecycle was seen
    compiled = [(text[:160], outcome) for text, outcome in seen if outcome != hit]
    assert not compiled, compiled
