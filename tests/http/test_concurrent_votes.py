"""Work on different tasks of one instance at the same moment: each person's submission is kept.

A change's CAB members vote at once: each vote is a task of its own, so none of them conflicts
with another, and none may be refused as "changed by someone else" (on PostgreSQL the instance's
version check refused all but the first, and a web page then lost the voter's comment). Runs
against a real, committed database with threads released together by a barrier.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent
from tests.http.desk import committed_desk
from tests.http.test_e2e_change import ASSESS_MEDIUM, CAB, CHANGE, vote_ids


@pytest.fixture()
def live(tmp_path: Any) -> Any:
    with committed_desk(tmp_path, "votes") as pair:
        yield pair


def _together(application: Any, calls: list[tuple[str, dict[str, str], dict[str, Any]]]) -> list[tuple[int, Any]]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def post(i: int, path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        client = application.test_client()
        barrier.wait()
        response = client.post(path, json=body, headers=headers)
        results[i] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=post, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_cab_members_voting_at_the_same_moment_are_all_counted(live: Any) -> None:
    application, desk = live
    for _ in range(2):
        instance = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal"})
        number = instance["data"]["record_number"]
        desk.complete(number, "assess", "cora", ASSESS_MEDIUM)
        votes = vote_ids(desk, number)
        desk.services.session.close()
        results = _together(application, [
            (f"/api/v1/tasks/{votes[member]}/complete", desk.auth(member),
             {"data": {"approved": True, "approval_comment": f"Fine by {member}."}}) for member in CAB])
        assert [code for code, _ in results] == [200] * len(CAB), results
        record = desk.record(number)
        assert record["status"] == "scheduled" and sorted(record["details"]["approvers"]) == sorted(CAB)
        cast = desk.services.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event_type == "task_completed", AuditEvent.instance_id == instance["id"]))
        assert cast == 1 + len(CAB)  # the assessment and one vote each
        assert desk.services.audit.verify().ok
        desk.services.session.close()
