"""Several SLA sweepers at once (the web workers' schedulers and `flask scheduler run` beside them):
each warning and each breach is raised once, with one notification each, and a request working on
a record meanwhile is not turned into an error.

Runs against a real, committed database (a SQLite file, or a fresh PostgreSQL database when
TEST_DATABASE_URL is set), with threads released together by a barrier.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.clock import FrozenClock
from app.models import AuditEvent, Notification
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url
from tests.http.desk import Desk

SWEEPERS = 4
RECORDS = 6
START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium",
         "urgency": "medium"}


@pytest.fixture()
def live(tmp_path: Any) -> Any:
    url = fresh_database_url(tmp_path, "sla_sweepers")
    clock = FrozenClock()
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url}, clock=clock)
    services = application.extensions["processdesk"].services()
    desk = Desk(application.test_client(), services)
    response = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json={
        "kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
        "escalation": {"warning": {"notify": ["group"]}, "breach": {"notify": ["group"]}}})
    assert response.status_code == 200, response.get_json()
    numbers = [desk.start("rita", "incident_management", START)["data"]["record_number"] for _ in range(RECORDS)]
    services.session.close()
    yield application, desk, clock, numbers
    services.session.close()
    application.extensions["processdesk"].db_engine.dispose()
    drop_fresh_database(url)


def _sweep_together(application: Any, sweepers: int) -> list[Any]:
    barrier = threading.Barrier(sweepers)
    results: list[Any] = [None] * sweepers

    def sweep(i: int) -> None:
        services = application.extensions["processdesk"].services()
        try:
            barrier.wait()
            results[i] = services.sla.sweep()
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            results[i] = err
        finally:
            services.session.close()

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(sweepers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _raised(application: Any) -> tuple[Counter[tuple[str, int | None]], Counter[tuple[int, str]]]:
    services = application.extensions["processdesk"].services()
    try:
        events = Counter((e.event_type, e.instance_id) for e in services.session.scalars(
            select(AuditEvent).where(AuditEvent.event_type.in_(("sla_warning", "sla_breached")))))
        notes = Counter((n.user_id, n.subject) for n in services.session.scalars(
            select(Notification).where(Notification.subject.like("SLA%"))))
        assert services.audit.verify().ok
    finally:
        services.session.close()
    return events, notes


def test_concurrent_sla_sweeps_raise_each_warning_and_breach_once(live: Any) -> None:
    application, desk, clock, numbers = live
    clock.advance(timedelta(minutes=50))  # the response clocks (1 h) are at risk
    # The sweepers come round again and again; whichever takes a record first raises its warning.
    for _ in range(3):
        results = _sweep_together(application, SWEEPERS)
        assert all(isinstance(r, dict) for r in results), results
    events, notes = _raised(application)
    assert dict(events) == {("sla_warning", i): 1 for i in range(1, RECORDS + 1)}, events
    assert notes and set(notes.values()) == {1}, notes

    clock.advance(timedelta(hours=3))  # both clocks of every record breached
    for _ in range(3):
        results = _sweep_together(application, SWEEPERS)
        assert all(isinstance(r, dict) for r in results), results
    events, notes = _raised(application)
    breaches = {key: count for key, count in events.items() if key[0] == "sla_breached"}
    assert breaches == {("sla_breached", i): 2 for i in range(1, RECORDS + 1)}, events
    assert set(notes.values()) == {1}, notes
