"""Item 7: of N simultaneous completions of one task exactly one wins; the rest get 409.

Runs against a real, committed database (a SQLite file, or a fresh PostgreSQL database when
TEST_DATABASE_URL is set), with threads released together by a barrier.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from app import create_app
from app.models import AuditEvent, HumanTask
from tests.conftest import FIXTURES, TEST_CONFIG, fixture_files

THREADS = 8


@pytest.fixture()
def live_app(tmp_path: Any) -> Any:
    from tests.conftest import drop_fresh_database, fresh_database_url

    url = fresh_database_url(tmp_path, "concurrency")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    ext = application.extensions["processdesk"]
    svc = ext.services()
    for name, roles, groups in (("olga", ["process_owner"], []), ("rita", ["requester"], []),
                                ("alex", ["agent"], ["ServiceDesk"])):
        svc.users.create_user(name, "password-1234", roles=roles, groups=groups)
    svc.session.commit()
    svc.definitions.deploy(svc.users.get_by_username("olga"), fixture_files())
    svc.session.commit()
    records = sorted((FIXTURES / "records").iterdir())
    svc.definitions.deploy(svc.users.get_by_username("olga"), [(p.name, p.read_bytes()) for p in records])
    svc.session.commit()
    svc.session.close()
    yield application
    ext.db_engine.dispose()
    drop_fresh_database(url)


def _token(app: Any, username: str) -> dict[str, str]:
    svc = app.extensions["processdesk"].services()
    token = svc.users.issue_token(svc.users.get_by_username(username))["token"]
    svc.session.commit()
    svc.session.close()
    return {"Authorization": f"Bearer {token}"}


def _race(app: Any, calls: list[tuple[str, dict[str, str], dict]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(i: int, path: str, headers: dict[str, str], body: dict) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(path, json=body, headers=headers)
        results[i] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=worker, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_simultaneous_completions_of_one_task(live_app: Any) -> None:
    rita = _token(live_app, "rita")
    client = live_app.test_client()
    for round_no in range(3):
        instance = client.post("/api/v1/instances", json={"process_id": "simple_request"}, headers=rita).get_json()
        task_id = instance["open_tasks"][0]["id"]
        results = _race(live_app, [(f"/api/v1/tasks/{task_id}/complete", rita,
                                    {"data": {"title": f"race {round_no}-{i}", "quantity": 1}}) for i in range(THREADS)])
        codes = sorted(code for code, _ in results)
        assert codes.count(200) == 1, results
        assert codes.count(409) == THREADS - 1, results
        assert all(body["error"] == "conflict" for code, body in results if code == 409)
        final = client.get(f"/api/v1/instances/{instance['id']}", headers=rita).get_json()
        winner = next(body for code, body in results if code == 200)
        assert final["status"] == "completed" and final["data"]["title"] == winner["data"]["title"]
        svc = live_app.extensions["processdesk"].services()
        completed = svc.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event_type == "task_completed", AuditEvent.instance_id == instance["id"]))
        rows = svc.session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.instance_id == instance["id"]))
        svc.session.close()
        assert completed == 1 and rows == 1


def test_claim_races_have_one_winner(live_app: Any) -> None:
    rita = _token(live_app, "rita")
    alex = _token(live_app, "alex")
    client = live_app.test_client()
    instance = client.post("/api/v1/instances", json={"process_id": "lane_ticket"}, headers=rita).get_json()
    task_id = instance["open_tasks"][0]["id"]
    results = _race(live_app, [(f"/api/v1/tasks/{task_id}/claim", alex, {}) for _ in range(4)])
    assert all(code in (200, 409) for code, _ in results), results
    assert any(code == 200 for code, _ in results)


def test_audit_chain_stays_intact_under_concurrent_writers(live_app: Any) -> None:
    rita = _token(live_app, "rita")
    results = _race(live_app, [("/api/v1/instances", rita, {"process_id": "simple_request"}) for _ in range(THREADS)])
    assert all(code in (201, 409) for code, _ in results), results
    assert sum(1 for code, _ in results if code == 201) >= 1
    svc = live_app.extensions["processdesk"].services()
    report = svc.audit.verify()
    svc.session.close()
    assert report.ok, report


def test_record_numbers_have_no_gaps_or_duplicates_under_concurrency(live_app: Any) -> None:
    rita = _token(live_app, "rita")
    body = {"process_id": "mini_ticket", "data": {"title": "t", "work_group": "ServiceDesk"}}
    results = _race(live_app, [("/api/v1/instances", rita, body) for _ in range(THREADS)])
    results += _race(live_app, [("/api/v1/instances", rita, body) for _ in range(THREADS)])
    created = [b["data"]["record_number"] for code, b in results if code == 201]
    assert all(code in (201, 409) for code, _ in results), results
    assert len(created) == len(set(created))
    expected = [f"INC-{i:06d}" for i in range(1, len(created) + 1)]
    assert sorted(created) == expected  # contiguous: refused attempts left no gap


def test_simultaneous_sign_ins_and_starts_all_succeed(live_app: Any) -> None:
    """A transaction that reads and then writes loses its SQLite snapshot when another commits in
    between; the unit of work then runs again holding the write lock instead of answering 409."""
    results = _race(live_app, [("/api/v1/auth/token", {}, {"username": "rita", "password": "password-1234"})
                               for _ in range(THREADS)])
    assert [code for code, _ in results] == [200] * THREADS, results
    rita = {"Authorization": f"Bearer {results[0][1]['token']}"}
    body = {"process_id": "mini_ticket", "data": {"title": "t", "work_group": "ServiceDesk"}}
    results = _race(live_app, [("/api/v1/instances", rita, body) for _ in range(THREADS)])
    assert [code for code, _ in results] == [201] * THREADS, results
    numbers = sorted(b["data"]["record_number"] for _, b in results)
    assert numbers == [f"INC-{i:06d}" for i in range(1, THREADS + 1)]
    svc = live_app.extensions["processdesk"].services()
    report = svc.audit.verify()
    svc.session.close()
    assert report.ok, report
