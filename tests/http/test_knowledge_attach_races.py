"""Articles attached to one record at the same moment (two agents, or one double click): each is
listed once, none is lost, and each attachment is audited once.

Runs against a real, committed database (a SQLite file, or a fresh PostgreSQL database when
TEST_DATABASE_URL is set), with threads released together by a barrier.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent
from tests.http.desk import committed_desk
from tests.http.test_knowledge_attach import INCIDENT, article


@pytest.fixture()
def live(tmp_path: Any) -> Any:
    with committed_desk(tmp_path, "attach_races") as pair:
        yield pair


def _together(application: Any, calls: list[tuple[str, dict[str, str], dict[str, Any]]]) -> list[int]:
    barrier = threading.Barrier(len(calls))
    codes: list[Any] = [None] * len(calls)

    def post(i: int, path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        client = application.test_client()
        barrier.wait()
        codes[i] = client.post(path, json=body, headers=headers).status_code

    threads = [threading.Thread(target=post, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return codes


def test_simultaneous_attachments_are_all_kept_and_each_listed_and_audited_once(live: Any) -> None:
    application, desk = live
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    first, second = article(desk), article(desk)
    alex = desk.auth("alex")
    desk.services.session.close()
    path = f"/api/v1/tickets/{number}/articles"
    codes = _together(application, [(path, alex, {"number": first}), (path, alex, {"number": first}),
                                    (path, alex, {"number": second}), (path, alex, {"number": first})])
    assert sorted(codes) == [200, 200, 201, 201], codes
    assert sorted(desk.record(number)["details"]["knowledge_articles"]) == sorted([first, second])
    attached = desk.services.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event_type == "knowledge_attached"))
    assert attached == 2
    assert desk.services.audit.verify().ok
    desk.services.session.close()


def test_an_article_attached_while_a_step_updates_the_record_is_kept(live: Any) -> None:
    """A step writes the record's details (an incident's resolution notes) from what it read
    before: an article attached meanwhile was answered 201 and then dropped by the step's write."""
    application, desk = live
    kb = article(desk)
    for _ in range(4):
        number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
        desk.complete(number, "triage", "alex", {"category": "software", "priority": "P3", "assignment_group": "NetworkTeam"})
        task_id = desk.task_id(number, "investigate")
        nina, alex = desk.auth("nina"), desk.auth("alex")
        desk.services.session.close()
        codes = _together(application, [
            (f"/api/v1/tasks/{task_id}/complete", nina,
             {"data": {"outcome": "resolve", "resolution_notes": "Cleared the cached password", "cause_category": "configuration"}}),
            (f"/api/v1/tickets/{number}/articles", alex, {"number": kb})])
        assert codes == [200, 201], codes
        record = desk.record(number)
        assert record["details"]["knowledge_articles"] == [kb], record["details"]
        assert record["details"]["resolution_notes"] == "Cleared the cached password"
        desk.services.session.close()


def test_a_known_error_published_while_its_incident_is_resolved_keeps_both(live: Any) -> None:
    """A problem's analysis publishes its known error onto the related incidents' details, from
    what it read of them before: an incident resolved at the same moment lost its resolution notes
    (or the incident's step, written second, dropped the article)."""
    from tests.http.test_e2e_problem import PROBLEM, RCA_WORKAROUND, TRIAGE

    application, desk = live
    for round_no in range(3):
        incident = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
        desk.complete(incident, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
        problem = desk.start("paul", "problem_management", {**PROBLEM, "related_incidents": incident})["data"]["record_number"]
        desk.complete(problem, "triage", "paul", TRIAGE)
        analysis, investigation = desk.task_id(problem, "analyse_root_cause"), desk.task_id(incident, "investigate")
        nina = desk.auth("nina")
        desk.services.session.close()
        codes = _together(application, [
            (f"/api/v1/tasks/{analysis}/complete", nina, {"data": RCA_WORKAROUND}),
            (f"/api/v1/tasks/{investigation}/complete", nina,
             {"data": {"outcome": "resolve", "resolution_notes": "Reconnected the tunnel", "cause_category": "configuration"}})])
        assert codes == [200, 200], codes
        details = desk.record(incident)["details"]
        article_number = desk.record(problem)["details"]["known_error_article"]
        assert details.get("knowledge_articles") == [article_number], (round_no, details)
        assert details.get("resolution_notes") == "Reconnected the tunnel", (round_no, details)
        desk.services.session.close()
