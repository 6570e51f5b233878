"""A configuration item renamed while a process step writes a record naming it: the record ends
up with the new name whichever of the two commits first, never with a name no CI has.

Two sessions on a real database (a SQLite file, or PostgreSQL with TEST_DATABASE_URL), the second
one in a thread; each interleaving is forced: one transaction holds its work uncommitted until
the other is seen waiting for it (PostgreSQL: a lock wait in pg_stat_activity; SQLite: the thread
still busy), the thread's work run as the edges run it (``run_unit_of_work``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from app import create_app
from app.models import Ticket
from app.unit_of_work import run_unit_of_work
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "records"


@pytest.fixture()
def live_app(tmp_path: Any) -> Any:
    url = fresh_database_url(tmp_path, "cirename")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    ext = application.extensions["processdesk"]
    svc = ext.services()
    users = svc.users
    olga = users.create_user("olga", "password-1234", roles=["process_owner"])
    users.create_user("rita", "password-1234", roles=["requester"])
    users.create_user("alex", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    ada = users.create_user("ada", "password-1234", roles=["admin"])
    svc.session.commit()
    mapping = json.loads((FIXTURES / "mini_ticket.record.json").read_text())
    mapping["fields"]["ci"] = "symptoms"
    files = [(p.name, p.read_bytes()) for p in sorted(FIXTURES.iterdir()) if p.name != "mini_ticket.record.json"]
    svc.definitions.deploy(olga, [*files, ("mini_ticket.record.json", json.dumps(mapping).encode())])
    svc.cmdb.create(ada, {"name": "core-db", "ci_class": "hardware"})
    svc.session.commit()
    svc.session.close()
    yield application
    ext.db_engine.dispose()
    drop_fresh_database(url)


def _start(svc: Any, ci: str) -> int:
    rita = svc.users.get_by_username("rita")
    instance = svc.instances.start_process(rita, "mini_ticket", {"title": "DB slow", "work_group": "ServiceDesk",
                                                                 "symptoms": ci})
    return int(instance.id)


def _rename(svc: Any, old: str, new: str) -> None:
    svc.cmdb.update(svc.users.get_by_username("ada"), old, {"name": new})


def _in_thread(ext: Any, work: Callable[[Any], Any], outcome: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        svc = ext.services()
        try:
            outcome["value"] = run_unit_of_work(svc, lambda: work(svc))
        except Exception as err:  # noqa: BLE001 - reported by the test
            outcome["error"] = repr(err)
        finally:
            svc.session.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_until_blocked(ext: Any, thread: threading.Thread) -> None:
    """Until the thread's transaction waits on a lock the main one holds (or, on SQLite, a moment)."""
    if ext.db_engine.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 10
    with ext.db_engine.connect() as conn:
        while time.monotonic() < deadline and thread.is_alive():
            waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND wait_event_type = 'Lock'")).scalar()
            conn.commit()
            if waiting:
                return
            time.sleep(0.02)


def _ci_of(ext: Any, instance_id: int) -> str | None:
    svc = ext.services()
    try:
        return svc.session.scalar(select(Ticket.ci).where(Ticket.instance_id == instance_id))  # type: ignore[no-any-return]
    finally:
        svc.session.close()


def test_a_record_written_first_is_renamed_by_the_rename_that_waited_for_it(live_app: Any) -> None:
    ext = live_app.extensions["processdesk"]
    writer = ext.services()
    try:
        instance_id = _start(writer, "core-db")  # not committed yet
        outcome: dict[str, Any] = {}
        renaming = _in_thread(ext, lambda svc: _rename(svc, "core-db", "core-db-02"), outcome)
        _wait_until_blocked(ext, renaming)
        writer.session.commit()
    finally:
        writer.session.close()
    renaming.join(timeout=60)
    assert "error" not in outcome, outcome
    assert _ci_of(ext, instance_id) == "core-db-02"


def test_a_record_written_during_a_rename_takes_the_new_name(live_app: Any) -> None:
    ext = live_app.extensions["processdesk"]
    if ext.db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite's one writer: a step that read the CI before the rename cannot write after it "
                    "(its transaction fails), one that reads after it names a name no CI has, as typed")
    renamer = ext.services()
    try:
        _rename(renamer, "core-db", "core-db-02")  # not committed yet
        outcome: dict[str, Any] = {}
        writing = _in_thread(ext, lambda svc: _start(svc, "core-db"), outcome)
        _wait_until_blocked(ext, writing)
        assert writing.is_alive(), outcome  # the step waits for the rename
        renamer.session.commit()
    finally:
        renamer.session.close()
    writing.join(timeout=60)
    assert "error" not in outcome, outcome
    assert _ci_of(ext, outcome["value"]) == "core-db-02"
