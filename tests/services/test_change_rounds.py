"""change_enablement: what one approval round leaves for the next, and who reads the votes.

QA found that a round after a rejection opened with the previous round's answers: the approval
task had "Reject" selected and the old comment filled in (one click rejected again with the old
reason), the Revise form had the previous "What changed" filled in, and a CAB member could read
the other members' votes while the vote was still open. Each round starts empty now, earlier
revision notes stay readable as a list, the votes are internal, a comment is needed only for a
rejection, and the change managers' notice words the Emergency CAB's window.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import Notification, Ticket
from app.services.timers import TimerService
from tests.http.desk import Desk
from tests.http.test_e2e_change import ASSESS_HIGH, ASSESS_LOW, CAB, CHANGE

REJECT_R1 = {"approved": False, "approval_comment": "REJECT-R1"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def raise_change(desk: Desk, change_type: str = "normal", **extra: Any) -> tuple[str, int]:
    instance = desk.start("alex", "change_enablement", {**CHANGE, "change_type": change_type, **extra})
    return instance["data"]["record_number"], instance["id"]


def task_data(desk: Desk, number: str, bpmn_id: str, who: str) -> dict[str, Any]:
    response = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, bpmn_id, who)}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def resubmit(desk: Desk, number: str, notes: str) -> None:
    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "revision_notes": notes})


def assert_unanswered(data: dict[str, Any]) -> None:
    """An approval task's form opens with no decision and no comment."""
    assert data.get("approved") is None, data.get("approved")
    assert data.get("approval_comment") in (None, ""), data.get("approval_comment")


# -- 1. each round's approval starts empty ----------------------------------------------------------------


def test_a_change_managers_second_round_opens_without_the_first_rounds_decision(desk: Desk):
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    assert_unanswered(task_data(desk, number, "manager_approve", "cora")["data"])
    desk.complete(number, "manager_approve", "cora", REJECT_R1)
    resubmit(desk, number, "Tested the rollback.")
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    assert_unanswered(task_data(desk, number, "manager_approve", "cora")["data"])
    # sending nothing is no decision: the old one is not taken
    refused = desk.complete(number, "manager_approve", "cora", {}, status=422)
    assert "approved" in refused["details"]["fields"]
    desk.complete(number, "manager_approve", "cora", {"approved": True})
    assert desk.record(number)["status"] == "scheduled"


def test_the_cab_votes_of_a_round_after_a_managers_rejection_open_unanswered(desk: Desk):
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", REJECT_R1)
    resubmit(desk, number, "Bigger scope: every mailbox now.")
    desk.complete(number, "assess", "cora", ASSESS_HIGH)  # this round goes to the CAB
    for member in CAB:
        assert_unanswered(task_data(desk, number, "cab_vote", member)["data"])
    # and a CAB round after a CAB rejection too
    desk.complete(number, "cab_vote", "cab1", {"approved": True, "approval_comment": "APPROVE-R2"})
    desk.complete(number, "cab_vote", "cab2", {"approved": False, "approval_comment": "REJECT-R2"})
    resubmit(desk, number, "Rollback rehearsed.")
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    for member in CAB:
        assert_unanswered(task_data(desk, number, "cab_vote", member)["data"])


def test_the_emergency_cabs_second_round_opens_without_the_first_rounds_decision(desk: Desk):
    number, _ = raise_change(desk, "emergency")
    desk.complete(number, "ecab_approve", "emma", REJECT_R1)
    resubmit(desk, number, "Smaller scope.")
    assert_unanswered(task_data(desk, number, "ecab_approve", "emma")["data"])


# -- 2. each revision says what changed -----------------------------------------------------------------


def test_a_second_revision_starts_without_the_first_ones_notes_which_stay_readable(desk: Desk):
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", REJECT_R1)
    assert task_data(desk, number, "revise", "alex")["data"].get("revision_notes") in (None, "")
    resubmit(desk, number, "NOTES-R1")
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "REJECT-R2"})

    revise = task_data(desk, number, "revise", "alex")
    assert revise["data"].get("revision_notes") in (None, "")
    # a resubmission must say what changed this time
    refused = desk.complete(number, "revise", "alex", {"revision_decision": "resubmit"}, status=422)
    assert "revision_notes" in refused["details"]["fields"]
    resubmit(desk, number, "NOTES-R2")

    # the next round's assessor and approver read what changed this time
    assess = task_data(desk, number, "assess", "cora")["instructions"]
    assert "What changed: NOTES-R2" in assess and "NOTES-R1" not in assess
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    approve = task_data(desk, number, "manager_approve", "cora")["instructions"]
    assert "What changed: NOTES-R2" in approve
    assert desk.instance(instance_id)["data"]["revision_count"] == 2
    # the earlier revision's notes stay in the history the approver may read
    history = desk.client.get(f"/api/v1/instances/{instance_id}/history", headers=desk.auth("cora")).get_json()
    notes = [e["data"].get("revision_notes") for e in history["events"]
             if e["type"] == "task_completed" and e["payload"]["bpmn_id"] == "revise"]
    assert notes == ["NOTES-R1", "NOTES-R2"]


# -- 4. the CAB's votes are the CAB member's own while the vote is open ------------------------------------


def test_a_cab_member_cannot_read_another_members_vote_while_voting_is_open(desk: Desk):
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    desk.complete(number, "cab_vote", "cab1", {"approved": True, "approval_comment": "SECRET-APPROVE-CAB1"})

    for reader in ("cab2", "cab3"):
        seen = {
            "instance": desk.client.get(f"/api/v1/instances/{instance_id}", headers=desk.auth(reader)).get_json(),
            "history": desk.client.get(f"/api/v1/instances/{instance_id}/history", headers=desk.auth(reader)).get_json(),
            "task": task_data(desk, number, "cab_vote", reader),
        }
        for where, answer in seen.items():
            assert "SECRET-APPROVE-CAB1" not in json.dumps(answer), (reader, where)
        assert_unanswered(seen["task"]["data"])  # their own vote is still theirs to give
    # staff (and the auditor) still read every vote
    assert "SECRET-APPROVE-CAB1" in json.dumps(desk.history(instance_id))

    # after the decision the reason of a rejection is what approvers and the requester read
    desk.complete(number, "cab_vote", "cab2", {"approved": False, "approval_comment": "REJECT-CAB2"})
    assert desk.record(number, "cab3")["details"]["rejection_reason"] == "REJECT-CAB2"
    assert "REJECT-CAB2" in task_data(desk, number, "revise", "alex")["instructions"]
    resubmit(desk, number, "Rollback rehearsed.")
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    assert "after a rejection: REJECT-CAB2" in task_data(desk, number, "cab_vote", "cab3")["instructions"]


# -- 6. a comment is needed to reject, not to approve -----------------------------------------------------


def test_an_approval_needs_no_comment_but_a_rejection_does(desk: Desk):
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    refused = desk.complete(number, "manager_approve", "cora", {"approved": False}, status=422)
    assert list(refused["details"]["fields"]) == ["approval_comment"]
    refused = desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "  "},
                            status=422)
    assert list(refused["details"]["fields"]) == ["approval_comment"]
    desk.complete(number, "manager_approve", "cora", {"approved": True})
    record = desk.record(number)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["cora"]


# -- 7. the Emergency CAB's window in words ---------------------------------------------------------------


def test_the_change_managers_hear_the_emergency_window_in_words(desk: Desk, services, clock):
    number, _ = raise_change(desk, "emergency", emergency_approval_window="PT90M")
    clock.advance(timedelta(hours=1, minutes=31))
    assert TimerService(services, "s").sweep().fired == 1
    ticket_id = services.session.scalar(select(Ticket.id).where(Ticket.number == number))
    [note] = [n for n in services.session.scalars(select(Notification).where(Notification.ticket_id == ticket_id))
              if n.subject.startswith("Emergency change not approved in time")]
    # worded as the process owner wrote it, as the task pages word it (not turned into hours)
    assert "within 90 minutes." in note.body and "PT90M" not in note.body
