"""change_enablement end to end through the HTTP API, with the people of each lane.

Every path of processes/change_enablement.bpmn is walked by real users: standard (pre-approved),
normal low risk (a change manager), medium/high risk (one vote per CAB member), rejection with
revision or withdrawal, emergency (in time and timed out), failed verification with rollback (a failed
rollback raises an incident), and separation of duties (the requester and the named implementer may
not approve, an approver may not implement).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import Notification, Ticket
from app.services.timers import TimerService
from tests.http.desk import Desk
from tests.http.helpers import assert_error

APPROVAL_EXCLUSION = "separation of duties: the requester and the implementer may not approve this change"
IMPLEMENT_EXCLUSION = "separation of duties: an approver may not implement this change"

CHANGE = {
    "title": "Upgrade the mail gateway",
    "description": "Move the gateway to version 9.2.",
    "reason": "Version 8 is out of support in April.",
    "planned_start": "2026-03-10T20:00:00Z",
    "planned_end": "2026-03-10T22:00:00Z",
    "implementation_plan": "Drain, upgrade, re-enable.",
    "rollback_plan": "Restore the VM snapshot.",
    "test_plan": "Send and receive test mail.",
    "ci": "mailgw01",
}
ASSESS_LOW = {"impact": "low", "affected_users": 20, "rollback_difficulty": "easy", "has_tested": True,
              "implementer": "ivan", "assessment_notes": "Routine."}
ASSESS_MEDIUM = {**ASSESS_LOW, "impact": "medium", "affected_users": 400}
ASSESS_HIGH = {**ASSESS_LOW, "impact": "high", "rollback_difficulty": "hard", "affected_users": 5000}
APPROVE = {"approved": True, "approval_comment": "Fine."}
SCHEDULE = {"planned_start": "2026-03-11T20:00:00Z", "planned_end": "2026-03-11T21:30:00Z",
            "schedule_notes": "Outside the freeze."}
IMPLEMENT = {"implementation_notes": "Upgraded, all queues drained.",
             "actual_start": "2026-01-05T07:05:00Z", "actual_end": "2026-01-05T08:10:00Z"}
CAB = ("cab1", "cab2", "cab3")


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


# -- helpers ----------------------------------------------------------------------------------------


def raise_change(desk: Desk, change_type: str = "normal", who: str = "alex", **extra: Any) -> tuple[str, int]:
    instance = desk.start(who, "change_enablement", {**CHANGE, "change_type": change_type, **extra})
    assert instance["status"] == "running", instance
    return instance["data"]["record_number"], instance["id"]


def events(desk: Desk, instance_id: int, kind: str) -> list[dict[str, Any]]:
    return [e for e in desk.history(instance_id) if e["type"] == kind]


def status_trail(desk: Desk, instance_id: int) -> list[str]:
    """Every status the record took, in order, from its record_updated events."""
    return [e["payload"]["changes"]["status"] for e in events(desk, instance_id, "record_updated")
            if "status" in e["payload"]["changes"]]


def completions(desk: Desk, instance_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(bpmn_id, who, submitted data) of every completed task, in order."""
    return [(e["payload"]["bpmn_id"], e["actor"], e["data"]) for e in events(desk, instance_id, "task_completed")]


def refusals(desk: Desk, instance_id: int) -> list[tuple[str, str, str]]:
    """(who, action, reason) of every refused attempt on the instance."""
    return [(e["actor"], e["payload"]["action"], e["payload"]["reason"])
            for e in events(desk, instance_id, "access_denied")]


def inbox(desk: Desk, who: str, number: str) -> list[str]:
    """BPMN ids of the ready tasks of this record in the user's inbox."""
    ids = {t["id"]: t["bpmn_id"] for t in desk.record(number)["open_tasks"]}
    items = desk.client.get("/api/v1/tasks?per_page=200", headers=desk.auth(who)).get_json()["items"]
    return sorted(ids[t["id"]] for t in items if t["id"] in ids)


def vote_ids(desk: Desk, number: str) -> dict[str, int]:
    """CAB member -> the id of their own cab_vote task, as found in each member's inbox."""
    open_votes = {t["id"] for t in desk.record(number)["open_tasks"] if t["bpmn_id"] == "cab_vote"}
    found = {}
    for member in CAB:
        items = desk.client.get("/api/v1/tasks?per_page=200", headers=desk.auth(member)).get_json()["items"]
        mine = [t["id"] for t in items if t["id"] in open_votes]
        if mine:
            [found[member]] = mine
    return found


def complete_id(desk: Desk, task_id: int, who: str, data: dict[str, Any]) -> Any:
    return desk.client.post(f"/api/v1/tasks/{task_id}/complete", headers=desk.auth(who), json={"data": data})


def look(desk: Desk, task_id: int, who: str) -> Any:
    return desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth(who))


def refused(desk: Desk, number: str, bpmn_id: str, who: str, data: dict[str, Any], reason: str) -> None:
    """``who`` sees the task but may not complete it: 403 separation_of_duties with the diagram's reason."""
    body = assert_error(complete_id(desk, desk.task_id(number, bpmn_id), who, data), 403, "separation_of_duties")
    assert body["message"] == reason


def implement_and_verify(desk: Desk, number: str, verified: bool = True, implementer: str = "ivan",
                         requester: str = "alex") -> None:
    """Schedule -> implement -> verify, from the scheduled state."""
    record = desk.record(number)
    assert record["status"] == "scheduled" and desk.ready(number) == ["schedule"]
    assert record["assignment_group"] == "ChangeManagers"
    desk.complete(number, "schedule", "cora", SCHEDULE)
    record = desk.record(number)
    assert record["status"] == "implementing" and record["assignment_group"] == "Implementers"
    assert record["details"]["planned_start"] == SCHEDULE["planned_start"]
    assert record["details"]["planned_end"] == SCHEDULE["planned_end"]
    assert inbox(desk, "alex", number) == [] and inbox(desk, implementer, number) == ["implement"]
    # the implementer is told of work, not asked for an approval (separation of duties is no approval)
    told = [n["subject"] for n in desk.notifications(implementer) if f"({number}:" in n["subject"]]
    assert told and told[0].startswith("New task: Implement change") and not any("Approval" in s for s in told)
    # an implementation is recorded after the fact: not ending next week
    bad = desk.complete(number, "implement", implementer, {**IMPLEMENT, "actual_end": "2030-01-01T00:00:00Z"}, status=422)
    assert bad["details"]["fields"] == {"actual_end": ["cannot be in the future"]}
    desk.complete(number, "implement", implementer, IMPLEMENT)
    record = desk.record(number)
    assert record["status"] == "verifying" and record["assignee"] == record["details"]["implementer"]
    assert record["details"]["actual_start"] == IMPLEMENT["actual_start"]
    assert record["details"]["actual_end"] == IMPLEMENT["actual_end"]
    assert record["details"]["implemented_by"] == implementer
    # only the requester verifies (assignedUserVar), not the implementer
    verify = desk.task_id(number, "verify")
    assert_error(look(desk, verify, implementer), 404)
    desk.complete(number, "verify", requester, {"verified": verified, "verification_notes": "Mail flows." if verified
                                                else "Outbound mail bounces."})


def review(desk: Desk, number: str) -> None:
    assert desk.record(number)["status"] == "review" and desk.ready(number) == ["review"]
    desk.complete(number, "review", "cora", {"review_notes": "Done in the window.", "lessons": "None."})


# -- standard ---------------------------------------------------------------------------------------


def test_standard_change_is_pre_approved_and_goes_to_closed(desk: Desk):
    number, instance_id = raise_change(desk, "standard")
    assert number == "CHG-000001"
    record = desk.record(number, "alex")
    assert (record["kind"], record["requester"], record["title"], record["ci"]) == (
        "change", "alex", CHANGE["title"], "mailgw01")
    assert (record["status"], record["priority"], record["category"]) == ("scheduled", "low", "standard")
    assert record["assignee"] is None and record["details"]["approvers"] == []
    assert record["details"].get("implementer") is None
    # no approval at all: the change managers schedule it straight away
    assert desk.ready(number) == ["schedule"] and inbox(desk, "cora", number) == ["schedule"]
    assert inbox(desk, "alex", number) == []
    implement_and_verify(desk, number)
    record = desk.record(number)
    assert record["status"] == "review" and record["details"]["result"] == "successful"
    assert record["details"]["confirmed_by"] == "alex" and record["details"]["verified_by"] == "alex"
    review(desk, number)

    record = desk.record(number)
    assert record["status"] == "closed" and record["closed_at"] is not None and record["open_tasks"] == []
    assert record["assignee"] == "ivan"  # no planned implementer: whoever implemented it
    assert desk.instance(instance_id)["status"] == "completed"
    assert status_trail(desk, instance_id) == ["scheduled", "implementing", "verifying", "review", "closed"]
    assert [(bpmn_id, who) for bpmn_id, who, _ in completions(desk, instance_id)] == [
        ("schedule", "cora"), ("implement", "ivan"), ("verify", "alex"), ("review", "cora")]


# -- normal: change manager ---------------------------------------------------------------------------


def test_normal_low_risk_change_is_approved_by_a_change_manager(desk: Desk, clock):
    number, instance_id = raise_change(desk)
    record = desk.record(number, "alex")
    assert (record["status"], record["category"], record["priority"]) == ("assessment", "normal", None)
    assert record["assignment_group"] == "ChangeManagers" and record["first_response_at"] is not None
    assert desk.ready(number) == ["assess"]
    # assessment is the change managers' work, not the requester's, the CAB's or the implementers'
    assess = desk.task_id(number, "assess", "cora")
    for outsider in ("alex", "cab1", "ivan"):
        assert_error(look(desk, assess, outsider), 404)
        assert_error(complete_id(desk, assess, outsider, ASSESS_LOW), 404)
    bad = desk.complete(number, "assess", "cora", {**ASSESS_LOW, "impact": "extreme", "implementer": ""}, status=422)
    assert set(bad["details"]["fields"]) == {"impact", "implementer"}

    clock.advance(timedelta(minutes=30))
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    record = desk.record(number)
    assert (record["status"], record["priority"], record["assignee"]) == ("awaiting_approval", "low", "ivan")
    assert record["details"]["implementer"] == "ivan" and record["details"]["risk"] == "low"
    assert desk.ready(number) == ["manager_approve"]
    approve = desk.task_id(number, "manager_approve", "cora")
    detail = look(desk, approve, "cora").get_json()
    assert detail["lane"] == "ChangeManagers" and detail["data"]["risk"] == "low"
    assert "Risk: <strong>low</strong>; implementer: ivan" in detail["instructions"]
    assert_error(look(desk, approve, "cab1"), 404)
    assert inbox(desk, "cab1", number) == [] and inbox(desk, "emma", number) == []
    bad = desk.complete(number, "manager_approve", "cora", {"approved": False}, status=422)
    assert "approval_comment" in bad["details"]["fields"]

    desk.complete(number, "manager_approve", "cora", APPROVE)
    record = desk.record(number)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["cora"]
    implement_and_verify(desk, number)
    review(desk, number)

    record = desk.record(number)
    assert (record["status"], record["priority"], record["category"], record["assignee"]) == (
        "closed", "low", "normal", "ivan")
    assert record["closed_at"] is not None and record["resolved_at"] is None
    assert record["details"] == {
        "implementer": "ivan", "planned_start": SCHEDULE["planned_start"], "planned_end": SCHEDULE["planned_end"],
        "actual_start": IMPLEMENT["actual_start"], "actual_end": IMPLEMENT["actual_end"], "result": "successful",
        "verified_by": "alex", "confirmed_by": "alex", "approvers": ["cora"], "risk": "low", "reason": CHANGE["reason"],
        "implemented_by": "ivan", "revision_count": 0,
    }
    assert status_trail(desk, instance_id) == ["assessment", "awaiting_approval", "scheduled", "implementing",
                                               "verifying", "review", "closed"]
    done = completions(desk, instance_id)
    assert [(bpmn_id, who) for bpmn_id, who, _ in done] == [
        ("assess", "cora"), ("manager_approve", "cora"), ("schedule", "cora"), ("implement", "ivan"),
        ("verify", "alex"), ("review", "cora")]
    data = {bpmn_id: submitted for bpmn_id, _, submitted in done}
    assert data["assess"] == ASSESS_LOW
    assert data["manager_approve"]["approved"] is True and data["manager_approve"]["approval_comment"] == "Fine."
    assert data["schedule"] == SCHEDULE
    assert data["implement"] == {**IMPLEMENT, "implementer_done_by": "ivan"}  # setUserVar
    assert data["verify"] == {"verified": True, "verification_notes": "Mail flows.", "verified_by": "alex"}
    assert data["review"] == {"review_notes": "Done in the window.", "lessons": "None."}
    # the outsiders' attempts on the assessment are on record
    assert [(who, action) for who, action, _ in refusals(desk, instance_id)] == [
        ("alex", "read"), ("alex", "complete"), ("cab1", "read"), ("cab1", "complete"), ("ivan", "read"),
        ("ivan", "complete"), ("cab1", "read"), ("ivan", "read")]


# -- normal: CAB ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("assessment", "risk"), [(ASSESS_MEDIUM, "medium"), (ASSESS_HIGH, "high")])
def test_medium_and_high_risk_changes_need_a_vote_from_every_cab_member(desk: Desk, assessment, risk):
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", assessment)
    record = desk.record(number)
    assert (record["status"], record["priority"], record["details"]["risk"]) == ("awaiting_approval", risk, risk)
    assert desk.ready(number) == ["cab_vote"] * 3
    # each member finds exactly their own vote in their inbox (assignedUserVar), nobody else's
    votes = vote_ids(desk, number)
    assert sorted(votes) == list(CAB) and len(set(votes.values())) == 3
    for member in CAB:
        assert inbox(desk, member, number) == ["cab_vote"]
        detail = look(desk, votes[member], member).get_json()
        assert detail["lane"] == "CAB" and detail["data"]["approver"] == member
        for other in CAB:
            if other != member:
                assert_error(look(desk, votes[member], other), 404)
    assert inbox(desk, "cora", number) == [] and inbox(desk, "emma", number) == []
    assert_error(complete_id(desk, votes["cab1"], "cab2", APPROVE), 404)
    assert_error(complete_id(desk, votes["cab1"], "cora", APPROVE), 404)

    for member in ("cab2", "cab1"):
        done = complete_id(desk, votes[member], member, APPROVE)
        assert done.status_code == 200, done.get_json()
        assert desk.record(number)["status"] == "awaiting_approval"
        # a vote is cast once
        assert_error(complete_id(desk, votes[member], member, APPROVE), 409)
    assert vote_ids(desk, number) == {"cab3": votes["cab3"]}
    done = complete_id(desk, votes["cab3"], "cab3", {"approved": True, "approval_comment": "Go."})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["data"]["approvers"] == ["cab2", "cab1", "cab3"]
    record = desk.record(number)
    assert record["status"] == "scheduled" and record["priority"] == risk
    assert record["details"]["approvers"] == ["cab2", "cab1", "cab3"]
    assert status_trail(desk, instance_id) == ["assessment", "awaiting_approval", "scheduled"]
    cast = [(who, data["approved"], data["approval_comment"]) for bpmn_id, who, data in completions(desk, instance_id)
            if bpmn_id == "cab_vote"]
    assert cast == [("cab2", True, "Fine."), ("cab1", True, "Fine."), ("cab3", True, "Go.")]
    denied = refusals(desk, instance_id)
    assert ("cab2", "complete", "not visible") in denied and ("cora", "complete", "not visible") in denied

    if risk == "high":
        implement_and_verify(desk, number)
        review(desk, number)
        record = desk.record(number)
        assert record["status"] == "closed" and record["details"]["approvers"] == ["cab2", "cab1", "cab3"]


def test_cab_rejection_goes_back_to_the_requester_who_resubmits_and_gets_approval(desk: Desk):
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    votes = vote_ids(desk, number)
    desk.complete(number, "cab_vote", "cab1", APPROVE)
    desk.complete(number, "cab_vote", "cab2", {"approved": False, "approval_comment": "No tested rollback."})
    # the veto ends the vote: cab3's open vote is gone
    assert desk.ready(number) == ["revise"]
    assert inbox(desk, "cab3", number) == []
    assert_error(complete_id(desk, votes["cab3"], "cab3", APPROVE), 409)
    record = desk.record(number, "alex")
    assert record["status"] == "rejected" and record["details"]["rejection_reason"] == "No tested rollback."
    assert record["details"]["approvers"] == []
    # the revision is the requester's alone
    revise = desk.task_id(number, "revise", "alex")
    detail = look(desk, revise, "alex").get_json()
    assert "No tested rollback." in detail["instructions"]
    assert detail["data"]["rejection_reason"] == "No tested rollback."
    for outsider in ("cora", "mona", "cab2"):
        assert_error(complete_id(desk, revise, outsider, {"revision_decision": "withdraw"}), 404)
    bad = desk.complete(number, "revise", "alex", {"revision_decision": "maybe"}, status=422)
    assert "revision_decision" in bad["details"]["fields"]

    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit",
                                             "revision_notes": "Rollback rehearsed in staging.",
                                             "rollback_plan": "Restore the snapshot; rehearsed on 9 March."})
    record = desk.record(number)
    assert record["status"] == "assessment" and record["details"]["revision_count"] == 1
    assert record["priority"] is None  # the risk is assessed again
    assert desk.ready(number) == ["assess"]
    data = desk.instance(instance_id)["data"]
    assert data["rollback_plan"] == "Restore the snapshot; rehearsed on 9 March."
    assert data["implementation_plan"] == CHANGE["implementation_plan"]  # left out = kept
    assess = look(desk, desk.task_id(number, "assess", "cora"), "cora").get_json()
    assert "<strong>Resubmitted once</strong> after a rejection: No tested rollback." in assess["instructions"]
    assert "What changed: Rollback rehearsed in staging." in assess["instructions"]

    desk.complete(number, "assess", "cora", {**ASSESS_HIGH, "rollback_difficulty": "easy"})
    assert desk.record(number)["priority"] == "medium"
    new_votes = vote_ids(desk, number)
    # the CAB deciding again reads what changed too
    vote = look(desk, new_votes["cab1"], "cab1").get_json()
    assert "What changed: Rollback rehearsed in staging." in vote["instructions"]
    assert sorted(new_votes) == list(CAB) and not set(new_votes.values()) & set(votes.values())
    for member in ("cab3", "cab2", "cab1"):
        desk.complete(number, "cab_vote", member, APPROVE)
    record = desk.record(number)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["cab3", "cab2", "cab1"]
    # approved now: the earlier rejection is no longer the change's reason (its history keeps it)
    assert record["details"]["rejection_reason"] is None
    assert status_trail(desk, instance_id) == ["assessment", "awaiting_approval", "rejected", "assessment",
                                               "awaiting_approval", "scheduled"]
    done = completions(desk, instance_id)
    assert [(b, w) for b, w, _ in done] == [
        ("assess", "cora"), ("cab_vote", "cab1"), ("cab_vote", "cab2"), ("revise", "alex"), ("assess", "cora"),
        ("cab_vote", "cab3"), ("cab_vote", "cab2"), ("cab_vote", "cab1")]
    assert done[3][2]["revision_decision"] == "resubmit"
    assert done[3][2]["revision_notes"] == "Rollback rehearsed in staging."
    assert "task_cancelled" in [e["type"] for e in desk.history(instance_id)]


def test_rejected_change_can_be_withdrawn(desk: Desk, clock):
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora",
                  {"approved": False, "approval_comment": "Clashes with the freeze."})
    assert desk.record(number)["status"] == "rejected" and desk.ready(number) == ["revise"]
    assert desk.record(number)["details"]["rejected_by"] == "cora"  # QA: the record did not say who rejected it
    clock.advance(timedelta(days=1))
    desk.complete(number, "revise", "alex", {"revision_decision": "withdraw", "revision_notes": "Postponed."})
    record = desk.record(number, "alex")
    assert record["status"] == "withdrawn" and record["closed_at"] is not None and record["open_tasks"] == []
    assert record["details"]["rejection_reason"] == "Clashes with the freeze." and record["details"]["approvers"] == []
    assert record["details"]["revision_count"] == 0
    assert desk.instance(instance_id)["status"] == "completed"
    assert status_trail(desk, instance_id) == ["assessment", "awaiting_approval", "rejected", "withdrawn"]
    assert [(b, w) for b, w, _ in completions(desk, instance_id)] == [
        ("assess", "cora"), ("manager_approve", "cora"), ("revise", "alex")]
    assert "instance_completed" in [e["type"] for e in desk.history(instance_id)]


# -- emergency ---------------------------------------------------------------------------------------------


TIMEOUT_SUBJECT = "Emergency change not approved in time: "


def timeout_notes(services, number: str) -> list[Notification]:
    """The in-app notifications the diagram's notify_managers task left on this record."""
    ticket_id = services.session.scalar(select(Ticket.id).where(Ticket.number == number))
    rows = services.session.scalars(select(Notification).where(Notification.ticket_id == ticket_id)
                                    .order_by(Notification.id))
    return [n for n in rows if n.subject.startswith(TIMEOUT_SUBJECT)]


def test_emergency_change_is_approved_by_the_emergency_cab_in_time(desk: Desk, services, clock):
    number, instance_id = raise_change(desk, "emergency", implementer="ivan")
    record = desk.record(number)
    assert (record["status"], record["priority"], record["category"]) == ("awaiting_approval", "high", "emergency")
    assert record["assignee"] == "ivan"
    # no assessment: straight to the Emergency CAB, not to the change managers or the CAB
    assert desk.ready(number) == ["ecab_approve"]
    assert inbox(desk, "emma", number) == ["ecab_approve"]
    for outsider in ("cora", "cab1", "alex"):
        assert inbox(desk, outsider, number) == []
    detail = look(desk, desk.task_id(number, "ecab_approve"), "emma").get_json()
    assert "Decide within PT4H" in detail["instructions"]

    clock.advance(timedelta(hours=3, minutes=59))
    assert TimerService(services, "s").sweep().fired == 0
    desk.complete(number, "ecab_approve", "emma", {"approved": True, "approval_comment": "Go ahead now."})
    record = desk.record(number)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["emma"]
    assert desk.instance(instance_id)["data"]["approval_outcome"] == "approved"
    clock.advance(timedelta(hours=1))
    assert TimerService(services, "s").sweep().fired == 0  # the window closed with the decision
    assert timeout_notes(services, number) == []

    implement_and_verify(desk, number)
    review(desk, number)
    record = desk.record(number)
    assert (record["status"], record["category"], record["priority"]) == ("closed", "emergency", "high")
    assert status_trail(desk, instance_id) == ["awaiting_approval", "scheduled", "implementing", "verifying",
                                               "review", "closed"]
    assert [(b, w) for b, w, _ in completions(desk, instance_id)][0] == ("ecab_approve", "emma")
    assert "timer_fired" not in [e["type"] for e in desk.history(instance_id)]


def test_emergency_change_not_decided_in_time_is_rejected_and_change_managers_are_told(desk: Desk, services, clock):
    number, instance_id = raise_change(desk, "emergency")
    ecab = desk.task_id(number, "ecab_approve", "emma")
    clock.advance(timedelta(hours=4, seconds=1))
    report = TimerService(services, "s").sweep()
    assert report.fired == 1 and report.instances == [instance_id]

    record = desk.record(number, "alex")
    assert record["status"] == "rejected" and record["details"]["rejection_reason"] == "not approved in time"
    assert record["closed_at"] is None
    assert desk.ready(number) == ["revise"] and inbox(desk, "alex", number) == ["revise"]
    # the Emergency CAB's task went with the window
    assert_error(complete_id(desk, ecab, "emma", APPROVE), 409)
    [note] = timeout_notes(services, number)
    assert note.user_id == services.users.get_by_username("cora").id
    assert note.subject == f"Emergency change not approved in time: {CHANGE['title']}"
    assert "requested by alex" in note.body and "within 4 hours." in note.body
    history = desk.history(instance_id)
    assert "timer_fired" in [e["type"] for e in history]
    [sent] = [e for e in history if e["type"] == "notification_sent"]
    assert sent["payload"]["to_group"] == "ChangeManagers" and sent["payload"]["recipients"] == 1
    assert sent["actor"] == "engine"

    # the requester resubmits it as a normal change: it is assessed like any other
    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "change_type": "normal",
                                             "revision_notes": "Can wait for the next window."})
    record = desk.record(number)
    assert (record["status"], record["category"], record["priority"]) == ("assessment", "normal", None)
    assert desk.ready(number) == ["assess"] and desk.instance(instance_id)["data"]["revision_count"] == 1
    clock.advance(timedelta(hours=5))
    assert TimerService(services, "s").sweep().fired == 0  # no emergency window any more
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", APPROVE)
    record = desk.record(number)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["cora"]
    assert status_trail(desk, instance_id) == ["awaiting_approval", "rejected", "assessment", "awaiting_approval",
                                               "scheduled"]
    assert len(timeout_notes(services, number)) == 1



def test_the_timeout_notice_words_the_window_in_its_readers_language(desk: Desk, services, clock):
    """The diagram prints the window as the process holds it (PT4H); the notice words it for each
    reader, Chinese for a change manager who reads Chinese, in the subject's translation too."""
    services.users.set_locale(services.users.get_by_username("cora"), "zh_CN")
    services.session.commit()
    number, _instance_id = raise_change(desk, "emergency")
    clock.advance(timedelta(hours=4, seconds=1))
    assert TimerService(services, "s").sweep().fired == 1
    ticket_id = services.session.scalar(select(Ticket.id).where(Ticket.number == number))
    [note] = services.session.scalars(select(Notification).where(
        Notification.ticket_id == ticket_id, Notification.user_id == services.users.get_by_username("cora").id,
        Notification.subject.contains(CHANGE["title"])))
    assert note.subject.startswith("紧急变更") and "4 小时" in note.body
    assert "4 hours" not in note.body and "PT4H" not in note.body


def test_a_late_emergency_decision_loses_to_the_window_and_the_change_is_withdrawn(desk: Desk, services, clock):
    number, instance_id = raise_change(desk, "emergency", emergency_approval_window="PT1H")
    clock.advance(timedelta(hours=1, minutes=1))
    body = desk.complete(number, "ecab_approve", "emma", APPROVE, status=409)
    assert body["error"] == "timer_expired"
    record = desk.record(number)
    assert record["status"] == "rejected" and record["details"]["rejection_reason"] == "not approved in time"
    assert record["details"]["approvers"] == []
    [note] = timeout_notes(services, number)
    assert "within 1 hour." in note.body
    assert "ecab_approve" not in [b for b, _, _ in completions(desk, instance_id)]
    desk.complete(number, "revise", "alex", {"revision_decision": "withdraw"})
    record = desk.record(number)
    assert record["status"] == "withdrawn" and record["closed_at"] is not None
    assert desk.instance(instance_id)["status"] == "completed"


# -- verification ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("restored", "result"), [(True, "rolled_back"), (False, "rollback_failed")])
def test_failed_verification_is_rolled_back_and_the_result_recorded(desk: Desk, services, restored: bool,
                                                                   result: str):
    number, instance_id = raise_change(desk, "standard")
    implement_and_verify(desk, number, verified=False)
    record = desk.record(number, "alex")
    assert record["status"] == "rolling_back" and record["details"]["result"] == "verification_failed"
    # alex verified it and found it broken: he is its verifier and confirmed nothing
    assert record["details"]["verified_by"] == "alex" and "confirmed_by" not in record["details"]
    assert record["closed_at"] is None
    assert desk.ready(number) == ["rollback"]
    # the implementers roll back, not the requester or the change managers
    rollback = desk.task_id(number, "rollback", "ivan")
    assert "Outbound mail bounces." in look(desk, rollback, "ivan").get_json()["instructions"]
    for outsider in ("alex", "cora"):
        assert_error(complete_id(desk, rollback, outsider, {"rollback_notes": "x", "rollback_successful": True}), 404)
    notes = "Snapshot restored." if restored else "The snapshot would not restore."
    desk.complete(number, "rollback", "ivan", {"rollback_notes": notes, "rollback_successful": restored})
    record = desk.record(number)
    assert record["status"] == "review" and record["details"]["result"] == result
    assert record["assignment_group"] == "ChangeManagers"
    incidents = list(services.session.scalars(select(Ticket.number).where(Ticket.kind == "incident")))
    if restored:  # the service is back: no incident
        assert incidents == [] and "rollback_incident" not in record["details"] and record["links"] == []
    else:
        assert_rollback_incident(desk, number, incidents)
    review(desk, number)
    record = desk.record(number)
    assert record["status"] == "closed" and record["details"]["result"] == result and record["closed_at"] is not None
    assert status_trail(desk, instance_id) == ["scheduled", "implementing", "verifying", "rolling_back", "review",
                                               "closed"]
    done = completions(desk, instance_id)
    assert [(b, w) for b, w, _ in done] == [("schedule", "cora"), ("implement", "ivan"), ("verify", "alex"),
                                            ("rollback", "ivan"), ("review", "cora")]
    assert done[2][2] == {"verified": False, "verification_notes": "Outbound mail bounces.", "verified_by": "alex"}
    assert done[3][2] == {"rollback_notes": notes, "rollback_successful": restored}
    assert refusals(desk, instance_id) == [("ivan", "read", "not visible"), ("alex", "complete", "not visible"),
                                           ("cora", "complete", "not visible")]


def assert_rollback_incident(desk: Desk, number: str, incidents: list[str]) -> None:
    """A failed rollback raised one incident at once: linked both ways, high priority, at the desk's
    triage like any incident, its number on the change and in the review's instructions."""
    [incident] = incidents
    record = desk.record(number)
    assert record["details"]["rollback_incident"] == incident
    raised = desk.record(incident)
    assert (raised["kind"], raised["status"], raised["title"]) == (
        "incident", "new", f"Failed rollback of {number}: Upgrade the mail gateway")
    # impact and urgency high: the priority matrix makes it P1
    assert raised["priority"] == "P1" and (raised["category"], raised["ci"]) == ("system", "mailgw01")
    # its requester is who recorded the failed rollback: staff, told of it like any requester
    assert raised["requester"] == "ivan" and raised["closed_at"] is None
    assert "Restore the VM snapshot." in raised["description"]
    # the change's internal notes stay on the change (an incident is read by more than staff)
    for internal in ("Outbound mail bounces.", "The snapshot would not restore."):
        assert internal not in raised["description"]
    # the change causes the incident: one link, seen from both ends
    assert [(lk["number"], lk["kind"], lk["link_type"], lk["direction"]) for lk in record["links"]] == [
        (incident, "incident", "related_incident", "outgoing")]
    assert [(lk["number"], lk["kind"], lk["link_type"], lk["direction"]) for lk in raised["links"]] == [
        (number, "change", "related_incident", "incoming")]
    # the service desk triages it like any other incident, on the P1 clock, and is told so
    [triage] = raised["open_tasks"]
    assert (triage["bpmn_id"], triage["lane"], triage["priority"]) == ("triage", "ServiceDesk", "P1")
    assert triage["sla_due_at"] is not None
    desk.task_id(incident, "triage", "alex")
    assert any(f"({incident}:" in n["subject"] for n in desk.notifications("alex"))
    review_task = desk.task_id(number, "review", "cora")
    assert f"The failed rollback raised incident <strong>{incident}</strong>." in look(
        desk, review_task, "cora").get_json()["instructions"]


# -- separation of duties -----------------------------------------------------------------------------------


def test_the_requester_may_not_approve_their_own_change(desk: Desk, services):
    # a member of staff who raises changes and is also an approver in every approving group
    services.users.create_user("reese", "password-1234", roles=["agent", "approver"],
                               groups=["Requesters", "ChangeManagers", "CAB", "EmergencyCAB"])
    services.session.commit()

    low, low_id = raise_change(desk, who="reese")
    assert desk.record(low, "reese")["requester"] == "reese"
    desk.complete(low, "assess", "cora", ASSESS_LOW)
    refused(desk, low, "manager_approve", "reese", APPROVE, APPROVAL_EXCLUSION)
    assert desk.record(low)["status"] == "awaiting_approval" and desk.ready(low) == ["manager_approve"]
    desk.complete(low, "manager_approve", "cora", APPROVE)
    assert desk.record(low)["details"]["approvers"] == ["cora"]
    assert refusals(desk, low_id) == [("reese", "complete", APPROVAL_EXCLUSION)]

    # the CAB vote leaves the requester out altogether
    high, _ = raise_change(desk, who="reese")
    desk.complete(high, "assess", "cora", ASSESS_HIGH)
    assert desk.ready(high) == ["cab_vote"] * 3 and sorted(vote_ids(desk, high)) == list(CAB)
    assert inbox(desk, "reese", high) == []

    emergency, emergency_id = raise_change(desk, "emergency", who="reese")
    refused(desk, emergency, "ecab_approve", "reese", APPROVE, APPROVAL_EXCLUSION)
    refused(desk, emergency, "ecab_approve", "reese", {"approved": False, "approval_comment": "Sorry."},
            APPROVAL_EXCLUSION)
    assert desk.record(emergency)["status"] == "awaiting_approval"
    desk.complete(emergency, "ecab_approve", "emma", APPROVE)
    record = desk.record(emergency)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["emma"]
    assert refusals(desk, emergency_id) == [("reese", "complete", APPROVAL_EXCLUSION)] * 2
    assert [(b, w) for b, w, _ in completions(desk, emergency_id)] == [("ecab_approve", "emma")]


def test_the_named_implementer_may_not_approve_and_an_approver_may_not_implement(desk: Desk, services):
    # a change manager and CAB member who also implements changes
    services.users.create_user("ian", "password-1234", roles=["agent", "approver"],
                               groups=["Implementers", "ChangeManagers", "CAB"])
    services.session.commit()

    # ian is named as the implementer: he may not approve, and gets no CAB vote
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", {**ASSESS_LOW, "implementer": "ian"})
    assert desk.record(number)["assignee"] == "ian"
    refused(desk, number, "manager_approve", "ian", APPROVE, APPROVAL_EXCLUSION)
    desk.complete(number, "manager_approve", "cora", APPROVE)
    assert refusals(desk, instance_id) == [("ian", "complete", APPROVAL_EXCLUSION)]
    high, _ = raise_change(desk)
    desk.complete(high, "assess", "cora", {**ASSESS_HIGH, "implementer": "ian"})
    assert desk.ready(high) == ["cab_vote"] * 3 and inbox(desk, "ian", high) == []

    # ian approves a change that ivan implements: ian may not implement it himself
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    # the implementer shown on the approval form is read-only: the approver cannot rename it
    desk.complete(number, "manager_approve", "ian", {**APPROVE, "implementer": "ian", "risk": "high"})
    desk.complete(number, "schedule", "cora", SCHEDULE)
    record = desk.record(number)
    assert record["details"]["approvers"] == ["ian"] and record["details"]["implementer"] == "ivan"
    assert record["assignee"] == "ivan" and record["priority"] == "low"
    assert inbox(desk, "ian", number) == []  # an approver of the change is not offered its implementation
    body = assert_error(complete_id(desk, desk.task_id(number, "implement"), "ian", IMPLEMENT), 403,
                        "separation_of_duties")
    assert body["message"] == IMPLEMENT_EXCLUSION
    assert desk.record(number)["status"] == "implementing"
    desk.complete(number, "implement", "ivan", IMPLEMENT)
    record = desk.record(number)
    assert record["status"] == "verifying" and record["details"]["implemented_by"] == "ivan"
    assert refusals(desk, instance_id) == [("ian", "complete", IMPLEMENT_EXCLUSION)]

    # the same holds for a CAB approver
    cab_change, cab_id = raise_change(desk)
    desk.complete(cab_change, "assess", "cora", ASSESS_MEDIUM)
    assert desk.ready(cab_change) == ["cab_vote"] * 4
    for member in ("cab1", "cab2", "cab3", "ian"):
        desk.complete(cab_change, "cab_vote", member, APPROVE)
    assert desk.record(cab_change)["details"]["approvers"] == ["cab1", "cab2", "cab3", "ian"]
    desk.complete(cab_change, "schedule", "cora", SCHEDULE)
    desk.complete(cab_change, "implement", "ian", IMPLEMENT, status=403)
    assert refusals(desk, cab_id) == [("ian", "complete", IMPLEMENT_EXCLUSION)]
    desk.complete(cab_change, "implement", "ivan", IMPLEMENT)
    assert desk.record(cab_change)["status"] == "verifying"


# -- the platform around the approval cycle ---------------------------------------------------------------


def test_an_excluded_approver_may_not_claim_the_approval_and_block_it(desk: Desk, services):
    services.users.create_user("reese", "password-1234", roles=["agent", "approver"],
                               groups=["Requesters", "ChangeManagers"])
    services.session.commit()
    number, instance_id = raise_change(desk, who="reese")
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    approve = desk.task_id(number, "manager_approve")
    claim = desk.client.post(f"/api/v1/tasks/{approve}/claim", headers=desk.auth("reese"))
    body = assert_error(claim, 403, "separation_of_duties")
    assert body["message"] == APPROVAL_EXCLUSION
    assert complete_id(desk, approve, "cora", APPROVE).status_code == 200
    assert refusals(desk, instance_id) == [("reese", "claim", APPROVAL_EXCLUSION)]


def test_a_timer_fired_by_a_late_decision_is_audited_like_a_swept_one(desk: Desk, clock):
    number, instance_id = raise_change(desk, "emergency", emergency_approval_window="PT1H")
    clock.advance(timedelta(hours=1, minutes=1))
    assert desk.complete(number, "ecab_approve", "emma", APPROVE, status=409)["error"] == "timer_expired"
    history = desk.history(instance_id)
    [sent] = [e for e in history if e["type"] == "notification_sent"]
    assert sent["actor"] == "engine"  # emma decided nothing: the window's timer told the change managers
    assert "timer_fired" in [e["type"] for e in history]


def test_the_inbox_filtered_by_process_lists_the_approval_cycle_tasks(desk: Desk):
    """Tasks inside the embedded subprocess change_approval_cycle belong to change_enablement."""
    number, _ = raise_change(desk)
    [assess] = desk.record(number)["open_tasks"]
    assert assess["bpmn_id"] == "assess"
    listed = desk.client.get("/api/v1/tasks?process_id=change_enablement", headers=desk.auth("cora")).get_json()
    assert [t["id"] for t in listed["items"]] == [assess["id"]]
    assert assess["process_id"] == "change_enablement"


# -- the implementer is a person of the Implementers group, picked, not typed -------------------------------


def test_the_implementer_is_picked_from_the_implementers_group(desk: Desk, services):
    services.users.get_by_username("ivan").display_name = "Ivan Implementer"
    services.session.commit()
    # a name that is no implementer is refused at the start, naming the field and offering the group
    response = desk.client.post("/api/v1/instances", headers=desk.auth("alex"), json={
        "process_id": "change_enablement", "data": {**CHANGE, "change_type": "emergency", "implementer": "ivna"}})
    body = assert_error(response, 422, "validation_failed")
    assert body["details"]["fields"]["implementer"] == ["must be one of: ivan"]
    # the assessment's form offers the group's active members, by name
    number, instance_id = raise_change(desk)
    assess = desk.task_id(number, "assess", "cora")
    detail = look(desk, assess, "cora").get_json()
    assert detail["form_schema"]["properties"]["implementer"]["oneOf"] == [
        {"const": "ivan", "title": "Ivan Implementer (ivan)"}]
    refused = desk.complete(number, "assess", "cora", {**ASSESS_LOW, "implementer": "rita"}, status=422)
    assert refused["details"]["fields"]["implementer"] == ["must be one of: ivan"]
    # a new member is offered at once; one who leaves (deactivated) no longer is
    services.users.create_user("ines", "ines-test-pw-1", roles=["agent"], groups=["Implementers"],
                               display_name="Ines Implementer")
    services.users.get_by_username("ivan").active = False
    services.session.commit()
    detail = look(desk, assess, "cora").get_json()
    assert detail["form_schema"]["properties"]["implementer"]["oneOf"] == [
        {"const": "ines", "title": "Ines Implementer (ines)"}]
    desk.complete(number, "assess", "cora", {**ASSESS_LOW, "implementer": "ivan"}, status=422)
    desk.complete(number, "assess", "cora", {**ASSESS_LOW, "implementer": "ines"})
    assert desk.instance(instance_id)["data"]["implementer"] == "ines"


def test_a_change_is_not_planned_in_the_past(desk: Desk):
    """The planned start (raised, confirmed or revised) is not before now (an hour's grace for an
    emergency change already under way): a window that has passed plans nothing."""
    response = desk.client.post("/api/v1/instances", headers=desk.auth("alex"), json={
        "process_id": "change_enablement",
        "data": {**CHANGE, "change_type": "normal", "planned_start": "2001-01-01T00:00:00Z",
                 "planned_end": "2001-01-01T02:00:00Z"}})
    body = assert_error(response, 422)
    assert list(body["details"]["fields"]) == ["planned_start"], body
    # an hour ago is still accepted (the clock of the tests stands at 2026-01-05 09:00 UTC)
    raise_change(desk, planned_start="2026-01-05T08:05:00Z", planned_end="2026-01-05T10:00:00Z")


def test_a_leavers_cab_vote_goes_to_someone_without_a_vote_of_this_round(desk: Desk, services):
    """QA: a deactivated CAB member's vote handed to another member who had a vote already let
    that one person cast two votes and approve the change alone. One person, one vote."""
    number, _instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    votes = vote_ids(desk, number)
    assert desk.client.post("/api/v1/users/cab3/deactivate", headers=desk.auth("ada")).status_code == 200
    refused = desk.client.post(f"/api/v1/tasks/{votes['cab3']}/reassign", headers=desk.auth("ada"),
                               json={"username": "cab1"})
    body = assert_error(refused, 422)
    assert "one vote each" in body["details"]["fields"]["username"][0]
    # nor to one who has voted already (review: only votes still open were counted)
    assert complete_id(desk, votes["cab2"], "cab2", APPROVE).status_code == 200
    voted = desk.client.post(f"/api/v1/tasks/{votes['cab3']}/reassign", headers=desk.auth("ada"),
                             json={"username": "cab2"})
    assert "one vote each" in assert_error(voted, 422)["details"]["fields"]["username"][0]
    services.users.create_user("cab4", "password-1234", roles=["approver"], groups=["CAB"])
    services.session.commit()
    moved = desk.client.post(f"/api/v1/tasks/{votes['cab3']}/reassign", headers=desk.auth("ada"),
                             json={"username": "cab4"})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["assigned_user"] == "cab4"


def test_a_vote_handed_to_another_member_counts_as_theirs(desk: Desk, services):
    """cab3 leaves while his vote waits; an admin hands it to a new CAB member, who approves: the
    change names her among its approvers (so she may not implement it), and her vote says for whom."""
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_MEDIUM)
    votes = vote_ids(desk, number)
    services.users.create_user("cab4", "password-1234", roles=["approver"], groups=["CAB"])  # joins after the call
    services.session.commit()
    for member in ("cab1", "cab2"):
        assert complete_id(desk, votes[member], member, APPROVE).status_code == 200
    assert desk.client.post("/api/v1/users/cab3/deactivate", headers=desk.auth("ada")).status_code == 200
    handed = desk.client.post(f"/api/v1/tasks/{votes['cab3']}/reassign", headers=desk.auth("ada"),
                              json={"username": "cab4"})
    assert handed.status_code == 200, handed.get_json()
    done = complete_id(desk, votes["cab3"], "cab4", {"approved": True, "approval_comment": "For cab3."})
    assert done.status_code == 200, done.get_json()
    record = desk.record(number)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["cab1", "cab2", "cab4"]
    cast = desk.instance(instance_id, "ada")["data"]["votes"]
    assert [(v["approver"], v.get("for")) for v in cast] == [("cab1", None), ("cab2", None), ("cab4", "cab3")]
    # an approver does not implement: the one who voted, not the leaver she voted for
    desk.complete(number, "schedule", "cora", SCHEDULE)
    made_implementer = desk.client.patch("/api/v1/users/cab4", headers=desk.auth("ada"), json={
        "roles": ["approver", "agent"], "groups": ["CAB", "Implementers"]})
    assert made_implementer.status_code == 200, made_implementer.get_json()
    refused(desk, number, "implement", "cab4", IMPLEMENT, IMPLEMENT_EXCLUSION)

