"""Linked-record news while another transaction holds the waiting instance (PostgreSQL only).

When a fix change moves, its problem's waiting instance hears ``fix_change_updated`` in the
change's own transaction (``app/services/linked_updates.py``). That is best effort: if another
transaction holds the problem's ``process_instance`` row, the news is skipped (``FOR UPDATE ...
SKIP LOCKED``), never waited for, and the problem's hourly look on the clock catches up.

The shared fixtures run a test inside one connection, so no second transaction can hold a row
there. These tests use their own scratch database (``<TEST_DATABASE_URL's name>_locking``,
created, migrated and dropped here) and real separate connections: B holds the row, A moves the
change through the HTTP API in a thread that must finish within ``NO_WAIT`` seconds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.cli import upgrade_database
from app.clock import FrozenClock
from app.services.timers import TimerService
from tests.conftest import TEST_CONFIG
from tests.http.desk import Desk
from tests.http.test_e2e_problem import CHANGE_ASSESS, raised_fix, waiting_for_change

BASE_URL = os.environ.get("TEST_DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not BASE_URL.startswith("postgresql"),
    reason="row locks held by a second connection need PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://...")

#: Seconds the moving step may take while B holds the row; a step that waits for B's lock never
#: ends before B lets go, so any bound well above a step's own time tells the two apart.
NO_WAIT = 10.0
LOGGER = "app.services.linked_updates"


# -- a scratch database and an app on it, outside the savepoint harness --------------------------------


@pytest.fixture(scope="module")
def scratch_url() -> Iterator[str]:
    base = make_url(BASE_URL)
    assert base.database, "TEST_DATABASE_URL names no database"
    # Never the suite's own database (the shared fixtures drop its schema): a scratch one beside it.
    name = f"{base.database}_locking"
    maintenance = create_engine(base, isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with maintenance.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    drop()  # a run killed before its clean-up left it behind
    with maintenance.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_database(url)
        yield url
    finally:
        drop()
        maintenance.dispose()


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(scope="module")
def app(scratch_url: str, clock: FrozenClock) -> Iterator[Any]:
    application = create_app({**TEST_CONFIG, "DATABASE_URL": scratch_url}, clock=clock)
    application.config["TESTING"] = True
    yield application
    application.extensions["processdesk"].db_engine.dispose()


@pytest.fixture(scope="module")
def desk(app: Any) -> Iterator[Desk]:
    """The shipped processes and their people, committed in the scratch database."""
    services = app.extensions["processdesk"].services()
    yield Desk(app.test_client(), services)
    services.session.close()


@pytest.fixture()
def db(app: Any) -> Iterator[Connection]:
    """A connection of its own for reading what A committed (autocommit: never holds a lock)."""
    with app.extensions["processdesk"].db_engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


# -- helpers ------------------------------------------------------------------------------------------


@contextmanager
def held(app: Any, instance_id: int, how: str = "select") -> Iterator[Callable[[], None]]:
    """Connection B holds the instance's row until the block ends (then rolls back): locked by
    ``SELECT ... FOR UPDATE``, or by an UPDATE not yet committed (a step of its own in flight).
    Yields B's ``release`` (a rollback), for letting go early."""
    with app.extensions["processdesk"].db_engine.connect() as conn:
        if how == "select":
            locked = conn.execute(text("SELECT id FROM process_instance WHERE id = :id FOR UPDATE"), {"id": instance_id})
            assert locked.scalar_one() == instance_id
        else:
            updated = conn.execute(text("UPDATE process_instance SET updated_at = updated_at WHERE id = :id"),
                                   {"id": instance_id})
            assert updated.rowcount == 1
        try:
            yield conn.rollback
        finally:
            conn.rollback()


def complete_in_thread(app: Any, task_id: int, headers: dict[str, str], data: dict[str, Any]) -> Callable[[], Any]:
    """Start completing the task through the HTTP API in connection A's own thread; the returned
    ``finish()`` waits at most NO_WAIT seconds and gives the response (or fails: A blocked)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["response"] = app.test_client().post(f"/api/v1/tasks/{task_id}/complete", headers=headers,
                                                         json={"data": data})
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = err

    thread = threading.Thread(target=run, name="connection-A", daemon=True)
    thread.start()

    def finish(release: Callable[[], None] | None = None) -> Any:
        thread.join(NO_WAIT)
        if thread.is_alive():
            if release is not None:
                release()  # let A go, so it does not outlive the test
            thread.join(NO_WAIT)
            pytest.fail(f"moving the change waited for the problem's locked row (> {NO_WAIT:.0f} s)")
        if "error" in outcome:
            raise outcome["error"]
        response = outcome["response"]
        assert response.status_code == 200, response.get_json()
        return response

    return finish


def instance_row(db: Connection, instance_id: int) -> dict[str, Any]:
    row = db.execute(text("SELECT lock_version, status, state, data, next_timer_at FROM process_instance "
                          "WHERE id = :id"), {"id": instance_id}).mappings().one()
    return dict(row)


def heard(db: Connection, instance_id: int) -> list[str]:
    """The statuses in the ``fix_change_updated`` messages the instance heard, oldest first."""
    payloads = db.execute(text("SELECT payload FROM audit_event WHERE instance_id = :id "
                               "AND event_type = 'message_received' ORDER BY seq"), {"id": instance_id}).scalars()
    return [p["payload"]["status"] for p in payloads if p["name"] == "fix_change_updated"]


def skips_logged(caplog: pytest.LogCaptureFixture, instance_id: int) -> int:
    """How many times the news for the instance was logged as skipped (from any thread)."""
    said = f"linked record updates: instance {instance_id} is busy; it will look on its timer"
    return sum(1 for r in caplog.records if r.name == LOGGER and r.getMessage() == said)


def waiting_problem(desk: Desk, db: Connection) -> tuple[str, int, str]:
    """A problem waiting at its event gateway for fix change news: (problem, its instance, change)."""
    number, instance_id = raised_fix(desk)
    change = desk.record(number)["details"]["fix_change"]
    waiting_for_change(desk, number, "assessment")
    assert instance_row(db, instance_id)["status"] == "running"
    return number, instance_id, change


def assess(app: Any, desk: Desk, change: str) -> Callable[..., Any]:
    """Start cora's assessment of the change (it enters another status) in connection A."""
    task_id = desk.task_id(change, "assess", "cora")
    return complete_in_thread(app, task_id, desk.auth("cora"), CHANGE_ASSESS)


# -- tests --------------------------------------------------------------------------------------------


def test_without_a_lock_the_problem_hears_the_change_move(app, desk, db, caplog):
    """The control case: on this separate-connection setup the news does arrive."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    number, instance_id, change = waiting_problem(desk, db)
    before, news = instance_row(db, instance_id), heard(db, instance_id)

    assess(app, desk, change)()

    status = desk.record(change)["status"]
    assert status != "assessment"
    assert heard(db, instance_id) == [*news, status]
    after = instance_row(db, instance_id)
    assert after["lock_version"] > before["lock_version"] and after["state"] != before["state"]
    waiting_for_change(desk, number, status)  # it read the change afresh and waits again
    assert skips_logged(caplog, instance_id) == 0


@pytest.mark.parametrize("how", ["select", "update"], ids=["select-for-update", "uncommitted-update"])
def test_a_held_problem_row_is_skipped_and_the_change_still_commits(app, desk, db, caplog, how):
    caplog.set_level(logging.INFO, logger=LOGGER)
    number, instance_id, change = waiting_problem(desk, db)
    before, news = instance_row(db, instance_id), heard(db, instance_id)

    with held(app, instance_id, how) as release:
        assess(app, desk, change)(release)  # A's step committed without waiting for B
        status = desk.record(change)["status"]  # read while B still holds the row
        assert status != "assessment"

    assert instance_row(db, instance_id) == before  # B only held it: nothing of the problem changed
    assert heard(db, instance_id) == news
    waiting_for_change(desk, number, "assessment")
    assert skips_logged(caplog, instance_id) == 1


def test_after_the_lock_is_released_the_next_move_is_heard(app, desk, db, clock, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    number, instance_id, change = waiting_problem(desk, db)
    news = heard(db, instance_id)
    with held(app, instance_id) as release:
        assess(app, desk, change)(release)
    skipped = desk.record(change)["status"]
    assert skipped != "assessment"
    assert heard(db, instance_id) == news and skips_logged(caplog, instance_id) == 1
    waiting_for_change(desk, number, "assessment")  # B let go: nothing replays the skipped news

    # What was skipped is what the problem's hourly look would find anyway.
    clock.advance(timedelta(hours=1, seconds=1))
    services = app.extensions["processdesk"].services()
    try:
        report = TimerService(services, "locking-test").sweep()
    finally:
        services.session.close()
    assert instance_id in report.instances and report.failures == 0, report
    waiting_for_change(desk, number, skipped)

    # And the next move, with nobody holding the row, is heard at once.
    task_id = desk.task_id(change, "manager_approve", "cora")
    complete_in_thread(app, task_id, desk.auth("cora"), {"approved": True, "approval_comment": "Go."})()
    assert desk.record(change)["status"] == "scheduled"
    assert heard(db, instance_id) == [*news, "scheduled"]
    waiting_for_change(desk, number, "scheduled")
    assert skips_logged(caplog, instance_id) == 1
