"""Several sweepers reminding of idle tasks at once (each web worker's scheduler and `flask
scheduler run`): each waiting task is reminded once per period, one notification per person.

Runs against a real, committed database (a SQLite file, or a fresh PostgreSQL database when
TEST_DATABASE_URL is set), with threads released together by a barrier.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app import create_app
from app.clock import FrozenClock
from app.models import AuditEvent, Notification
from app.services.reminders import ReminderService
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url
from tests.http.desk import Desk

SWEEPERS = 4
RECORDS = 6
START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium",
         "urgency": "medium"}


def test_concurrent_reminder_sweeps_remind_each_task_once(tmp_path: Any) -> None:
    url = fresh_database_url(tmp_path, "reminder_sweepers")
    clock = FrozenClock()
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url, "TASK_REMINDER_HOURS": 24}, clock=clock)
    services = application.extensions["processdesk"].services()
    try:
        desk = Desk(application.test_client(), services)
        for _ in range(RECORDS):
            desk.start("rita", "incident_management", START)
        services.session.close()
        clock.advance(timedelta(hours=25))
        barrier = threading.Barrier(SWEEPERS)
        results: list[Any] = [None] * SWEEPERS

        def sweep(i: int) -> None:
            mine = application.extensions["processdesk"].services()
            try:
                barrier.wait()
                results[i] = ReminderService(mine).sweep()
            except Exception as err:  # noqa: BLE001 - reported by the assertion below
                results[i] = err
            finally:
                mine.session.close()

        threads = [threading.Thread(target=sweep, args=(i,)) for i in range(SWEEPERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert all(isinstance(r, int) for r in results), results
        assert sum(results) == RECORDS, results
        events = Counter(e.task_id for e in services.session.scalars(
            select(AuditEvent).where(AuditEvent.event_type == "task_reminder_sent")))
        notes = Counter((n.user_id, n.subject) for n in services.session.scalars(
            select(Notification).where(Notification.subject.like("Reminder:%"))))
        assert len(events) == RECORDS and set(events.values()) == {1}, events
        assert notes and set(notes.values()) == {1}, notes
        assert services.audit.verify().ok
    finally:
        services.session.close()
        application.extensions["processdesk"].db_engine.dispose()
        drop_fresh_database(url)
