"""QA (PRB-000002): a problem kept a failed fix change as its fix.

The root cause analysis raised a fix change; the change failed its verification and was rolled
back; the problem went back to analysis and the next analysis needed no change. The close task
still said "Fix change: CHG-...", the record kept ``fix_change``/``fix_change_status=failed``, the
known error article showed the change as its "Fixing change", and the comment the problem got read
"change result: verification_failed" (an internal code, and not the change's final result).

Now the problem follows a change that is being rolled back until its rollback is recorded, tells its
people in words what became of the change, and the next analysis makes the failed change history:
the fix fields are cleared unless a new fix change is raised, the article's "Fixing change" follows,
and the record's links, the audit trail and the closure's "earlier fix changes" keep the old one.
"""

from __future__ import annotations

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_problem import (
    CHANGE_IMPLEMENT,
    CHANGE_SCHEDULE,
    CLOSE,
    INCIDENT,
    RCA_PLAIN,
    TRIAGE,
    approve_change,
    comments,
    links,
    log_problem,
    task_view,
    waiting_for_change,
)

BACK_IN_ANALYSIS = "The problem is back in root cause analysis, where another fix can be raised."
RCA_FIX = {"cause_category": "software_defect", "root_cause": "Firmware 9.1 leaks memory in the ARP table.",
           "symptoms": "SW-CORE-2 reboots under load.", "workaround": "Move the VLANs to SW-CORE-1.",
           "fix_needs_change": True, "proposed_fix": "Upgrade SW-CORE-2 to firmware 9.4."}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def system_comments(desk: Desk, number: str) -> list[str]:
    return [c["body"] for c in comments(desk, number, "paul") if c["author"] == "system"]


def known_error_fix(desk: Desk, article: str) -> dict | None:
    response = desk.client.get(f"/api/v1/knowledge/{article}", headers=desk.auth("paul"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["fix_change"]  # type: ignore[no-any-return]


def fix_raised(desk: Desk) -> tuple[str, str, int]:
    """A problem from an incident, with a known error (KB-000001) and fix change CHG-000001."""
    incident = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    number, instance_id = log_problem(desk, title="Core switch reboots", description="SW-CORE-2 reboots under load.",
                                      related_incidents=[incident])
    desk.complete(number, "triage", "paul", TRIAGE)
    desk.complete(number, "analyse_root_cause", "nina", RCA_FIX)
    waiting_for_change(desk, number, "assessment")
    assert known_error_fix(desk, "KB-000001") == {"number": "CHG-000001", "status": "assessment"}
    return number, incident, instance_id


def fails_verification(desk: Desk, change: str) -> None:
    approve_change(desk, change)
    desk.complete(change, "schedule", "cora", CHANGE_SCHEDULE)
    desk.complete(change, "implement", "ivan", CHANGE_IMPLEMENT)
    desk.complete(change, "verify", "nina", {"verified": False, "verification_notes": "Still reboots."})
    assert desk.record(change)["status"] == "rolling_back"


def test_a_rolled_back_fix_is_history_once_the_next_analysis_needs_no_change(desk: Desk):
    number, incident, instance_id = fix_raised(desk)
    fails_verification(desk, "CHG-000001")

    # being rolled back, the change has no final result yet: the problem follows it on, silently
    waiting_for_change(desk, number, "rolling_back")
    assert system_comments(desk, number) == []

    desk.complete("CHG-000001", "rollback", "ivan", {"rollback_successful": True, "rollback_notes": "Restored 9.1."})
    assert desk.record("CHG-000001")["details"]["result"] == "rolled_back"
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("analysis", "failed")
    said = system_comments(desk, number)
    # in words, and the change's final result: rolled back
    assert said == [f"Fix change CHG-000001 failed its verification and was rolled back. {BACK_IN_ANALYSIS}"]
    assert "verification_failed" not in said[0]
    rca = task_view(desk, number, "analyse_root_cause", "nina")
    assert "Fix change CHG-000001 failed its verification and was rolled back." in rca["instructions"]
    assert "verification_failed" not in rca["instructions"]

    # the change is reviewed and closed: nothing more is said on the problem
    desk.complete("CHG-000001", "review", "cora", {"review_notes": "Firmware not ready.", "lessons": "Test longer."})
    assert len(system_comments(desk, number)) == 1

    # the next analysis finds the fix needs no change: the failed change is not the problem's fix
    desk.complete(number, "analyse_root_cause", "nina", {**RCA_PLAIN, "root_cause": "A looped port floods ARP."})
    record = desk.record(number)
    assert record["status"] == "resolved"
    assert record["details"]["fix_change"] is None and record["details"]["fix_change_status"] is None
    assert record["details"]["known_error_article"] == "KB-000001"
    assert known_error_fix(desk, "KB-000001") is None  # the article names no fixing change any more
    # history keeps it: the link to the change, and the closure's earlier fix changes
    assert ("CHG-000001", "change", "fix_change", "outgoing") in links(record)
    close = task_view(desk, number, "close_problem", "paul")
    assert "Fix change: CHG-000001" not in close["instructions"]
    assert "Earlier fix changes that did not fix it: CHG-000001" in close["instructions"]
    assert "fix_change" not in close["data"] or close["data"]["fix_change"] is None

    desk.complete(number, "close_problem", "paul", CLOSE)
    assert desk.record(number)["status"] == "closed"
    closed = [c["body"] for c in comments(desk, incident) if "is closed" in c["body"]]
    assert len(closed) == 1 and "CHG-000001" not in closed[0]
    # the audit trail keeps what the record said before
    updates = [e["payload"]["changes"] for e in desk.history(instance_id) if e["type"] == "record_updated"]
    assert [u["details.fix_change"] for u in updates if "details.fix_change" in u] == ["CHG-000001", None]


def test_a_failed_rollback_is_said_in_words_and_a_new_fix_change_takes_its_place(desk: Desk):
    number, _incident, _ = fix_raised(desk)
    fails_verification(desk, "CHG-000001")
    desk.complete("CHG-000001", "rollback", "ivan", {"rollback_successful": False, "rollback_notes": "9.1 will not boot."})
    assert desk.record("CHG-000001")["details"]["result"] == "rollback_failed"
    assert system_comments(desk, number) == [
        "Fix change CHG-000001 failed its verification and its rollback failed: the change raised an incident "
        f"for the service it left broken. {BACK_IN_ANALYSIS}"]

    desk.complete(number, "analyse_root_cause", "nina", {**RCA_FIX, "proposed_fix": "Replace SW-CORE-2."})
    waiting_for_change(desk, number, "assessment")
    record = desk.record(number)
    assert record["details"]["fix_change"] == "CHG-000002"
    assert known_error_fix(desk, "KB-000001") == {"number": "CHG-000002", "status": "assessment"}
    assert [n for n, kind, *_ in links(record) if kind == "change"] == ["CHG-000001", "CHG-000002"]


def test_a_change_cancelled_while_it_is_rolled_back_is_a_failed_fix(desk: Desk):
    number, _incident, _ = fix_raised(desk)
    fails_verification(desk, "CHG-000001")
    change = desk.record("CHG-000001")
    response = desk.client.post(f"/api/v1/instances/{change['instance_id']}/cancel", headers=desk.auth("ada"),
                                json={"reason": "Handled outside the desk."})
    assert response.status_code == 200, response.get_json()
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("analysis", "failed")
    assert system_comments(desk, number) == [
        f"Fix change CHG-000001 failed its verification and was cancelled before its rollback was recorded. "
        f"{BACK_IN_ANALYSIS}"]


def test_a_withdrawn_fix_change_is_cleared_by_the_next_analysis(desk: Desk):
    number, _incident, _ = fix_raised(desk)
    desk.complete("CHG-000001", "assess", "cora", {"impact": "low", "affected_users": 20, "rollback_difficulty": "easy",
                                                   "has_tested": True, "implementer": "ivan"})
    desk.complete("CHG-000001", "manager_approve", "cora", {"approved": False, "approval_comment": "Not certified."})
    desk.complete("CHG-000001", "revise", "nina", {"revision_decision": "withdraw"})
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change"], record["details"]["fix_change_status"]) == (
        "analysis", "CHG-000001", "withdrawn")  # what became of it, while the analysis runs

    desk.complete(number, "analyse_root_cause", "nina", {**RCA_PLAIN, "root_cause": "A looped port floods ARP."})
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change"], record["details"]["fix_change_status"]) == (
        "resolved", None, None)
    assert known_error_fix(desk, "KB-000001") is None
    close = task_view(desk, number, "close_problem", "paul")
    assert "Fix change:" not in close["instructions"]
    assert "Earlier fix changes that did not fix it: CHG-000001" in close["instructions"]
