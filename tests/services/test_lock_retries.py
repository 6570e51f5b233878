"""A unit of work that PostgreSQL ends for a deadlock runs again and succeeds (app/unit_of_work.py).

Two units of work on a real PostgreSQL database, each in its own thread, lock the same two rows in
opposite orders: each holds its first row until the other holds its own, then asks for the other's.
The server ends one of them ("deadlock detected"); the edge runs it again, and both changes land.
SQLite has one writer at a time and cannot deadlock this way (its own retry is tested elsewhere)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text

from app import create_app
from app.unit_of_work import LOCK_RETRIES, run_unit_of_work
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url


@pytest.fixture()
def live_app(tmp_path: Any) -> Any:
    url = fresh_database_url(tmp_path, "lockretry")
    if not url.startswith("postgresql"):
        drop_fresh_database(url)
        pytest.skip("deadlocks need PostgreSQL (TEST_DATABASE_URL)")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    ext = application.extensions["processdesk"]
    svc = ext.services()
    svc.users.create_group(None, "first")
    svc.users.create_group(None, "second")
    svc.session.commit()
    svc.session.close()
    yield application
    ext.db_engine.dispose()
    drop_fresh_database(url)


def _set(svc: Any, group: str, value: str) -> None:
    svc.session.execute(text('UPDATE "group" SET description = :value WHERE name = :name'),
                        {"value": value, "name": group})


def _run_crossed(ext: Any, retries: int, monkeypatch: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the two crossed units of work at once; each thread's outcome (its runs and any error)."""
    monkeypatch.setattr("app.unit_of_work.LOCK_RETRIES", retries)
    both_hold = threading.Barrier(2, timeout=20)
    outcomes: dict[str, dict[str, Any]] = {"a": {"runs": 0}, "b": {"runs": 0}}

    def work(svc: Any, name: str, first: str, then: str) -> None:
        outcome = outcomes[name]
        outcome["runs"] += 1
        _set(svc, first, f"{name} was here")
        if outcome["runs"] == 1:  # only the first run waits for the other: a rerun just goes ahead
            both_hold.wait()
        _set(svc, then, f"{name} was here")

    def thread(name: str, first: str, then: str) -> threading.Thread:
        def run() -> None:
            svc = ext.services()
            try:
                run_unit_of_work(svc, lambda: work(svc, name, first, then))
            except Exception as err:  # noqa: BLE001 - reported by the test
                outcomes[name]["error"] = repr(err)
            finally:
                svc.session.close()
        started = threading.Thread(target=run)
        started.start()
        return started

    threads = [thread("a", "first", "second"), thread("b", "second", "first")]
    for started in threads:
        started.join(timeout=60)
    return outcomes["a"], outcomes["b"]


def _descriptions(ext: Any) -> set[str]:
    with ext.db_engine.connect() as conn:
        return set(conn.execute(text('SELECT description FROM "group" WHERE name IN (\'first\', \'second\')')).scalars())


def test_a_unit_of_work_ended_for_a_deadlock_runs_again_and_both_changes_land(live_app: Any, monkeypatch: Any) -> None:
    ext = live_app.extensions["processdesk"]
    a, b = _run_crossed(ext, LOCK_RETRIES, monkeypatch)
    assert "error" not in a and "error" not in b, (a, b)
    assert sorted([a["runs"], b["runs"]]) == [1, 2]  # the server ended exactly one, which ran again
    # the rerun committed last, over both rows
    assert len(_descriptions(ext)) == 1


def test_without_the_rerun_the_loser_would_be_told_conflict(live_app: Any, monkeypatch: Any) -> None:
    """The same race with no reruns left: the deadlock is real, and it answers 409, not 500."""
    ext = live_app.extensions["processdesk"]
    a, b = _run_crossed(ext, 0, monkeypatch)
    errors = [outcome["error"] for outcome in (a, b) if "error" in outcome]
    assert len(errors) == 1 and "Conflict" in errors[0], (a, b)
    assert a["runs"] == b["runs"] == 1
