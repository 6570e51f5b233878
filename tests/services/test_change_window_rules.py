"""change_enablement: who may approve, and moving a rejected change's window.

QA found two things, both through the API with the shipped processes:

* The change manager approval never checked that anyone may approve: with the requester or the
  implementer as the only ChangeManager the task waited in the queue, refusing (403 separation of
  duties) whoever tried, and nobody was told. The CAB route already checked for eligible members.
  Now a low-risk change without an eligible change manager goes to the CAB, and when neither group
  has anyone eligible the change managers are told and the approval waits for one.
* The Revise form said "Leave empty to keep the current end. A start moved past it moves the whole
  window", but it was shown with the planned end filled in and compared a moved start with the
  stored end: moving only the start was refused ("must be after Planned start"), also through the
  API with ``planned_end`` left out or null. Now the end is not pre-filled on that form (the
  instructions show it), so an end left out or null keeps the window's length.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import Notification, Ticket
from tests.http.desk import Desk
from tests.http.test_e2e_change import ASSESS_HIGH, ASSESS_LOW, CHANGE

APPROVE = {"approved": True}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def raise_change(desk: Desk, who: str = "alex", **extra: Any) -> tuple[str, int]:
    instance = desk.start(who, "change_enablement", {**CHANGE, "change_type": "normal", **extra})
    return instance["data"]["record_number"], instance["id"]


def task(desk: Desk, number: str, bpmn_id: str, who: str) -> dict[str, Any]:
    response = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, bpmn_id, who)}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def notices(services, number: str, prefix: str) -> list[Notification]:
    ticket_id = services.session.scalar(select(Ticket.id).where(Ticket.number == number))
    return [n for n in services.session.scalars(select(Notification).where(Notification.ticket_id == ticket_id))
            if n.subject.startswith(prefix)]


def only_change_manager_is_the_implementer(services) -> None:
    """Irma implements changes and is the only change manager (cora has left the group)."""
    users = services.users
    users.create_user("irma", "password-1234", roles=["agent", "approver"], groups=["Implementers", "ChangeManagers"])
    users.remove_member(None, "ChangeManagers", "cora")
    services.session.commit()


# -- 1. the change manager route checks that someone may approve ----------------------------------------


def test_a_low_risk_change_whose_only_change_manager_implements_it_goes_to_the_cab(desk: Desk, services):
    only_change_manager_is_the_implementer(services)
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "irma", {**ASSESS_LOW, "implementer": "irma"})
    record = desk.record(number)
    assert record["details"]["risk"] == "low" and record["status"] == "awaiting_approval"
    # not a change manager approval that only irma could see and irma may not complete
    assert desk.ready(number) == ["cab_vote", "cab_vote", "cab_vote"]
    vote = task(desk, number, "cab_vote", "cab1")
    assert "No change manager may approve this change" in vote["instructions"]
    for member in ("cab1", "cab2", "cab3"):
        desk.complete(number, "cab_vote", member, APPROVE)
    record = desk.record(number)
    assert record["status"] == "scheduled" and sorted(record["details"]["approvers"]) == ["cab1", "cab2", "cab3"]


def test_a_requester_who_is_the_only_change_manager_does_not_hold_the_approval(desk: Desk, services):
    services.users.remove_member(None, "ChangeManagers", "cora")
    services.users.add_member(None, "ChangeManagers", "alex")
    services.session.commit()
    number, _ = raise_change(desk, who="alex")
    desk.complete(number, "assess", "alex", ASSESS_LOW)
    assert desk.ready(number) == ["cab_vote", "cab_vote", "cab_vote"]


def test_nobody_eligible_tells_the_change_managers_and_the_approval_waits_for_one(desk: Desk, services):
    only_change_manager_is_the_implementer(services)
    for member in ("cab1", "cab2", "cab3"):
        services.users.remove_member(None, "CAB", member)
    services.session.commit()
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "irma", {**ASSESS_HIGH, "implementer": "irma"})
    assert desk.record(number)["status"] == "awaiting_approval"
    assert desk.ready(number) == ["manager_approve"]
    [notice] = notices(services, number, "Nobody may approve change")
    assert notice.subject == f"Nobody may approve change {number}: {CHANGE['title']}"
    assert "the requester (alex) and the implementer (irma) may not approve it" in notice.body
    assert notice.user_id == services.users.get_by_username("irma").id
    # irma still may not decide; a change manager who joins the group finds the waiting approval
    desk.complete(number, "manager_approve", "irma", APPROVE, status=403)
    approve = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, 'manager_approve')}", headers=desk.auth("ada"))
    assert "Nobody may approve this change yet" in approve.get_json()["instructions"]
    services.users.add_member(None, "ChangeManagers", "cora")
    services.session.commit()
    desk.complete(number, "manager_approve", "cora", APPROVE)
    record = desk.record(number)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["cora"]


# -- 2. a rejected change's window moves with its start ----------------------------------------------------


def rejected(desk: Desk) -> str:
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "Clashes with the freeze."})
    assert desk.record(number)["status"] == "rejected"
    return number


def revise(desk: Desk, number: str, status: int = 200, **window: Any) -> dict[str, Any]:
    return desk.complete(number, "revise", "alex", {"revision_decision": "resubmit",
                                                    "revision_notes": "Moved after the freeze.", **window},
                         status=status)


def test_the_revise_form_shows_the_window_in_its_instructions_not_filled_in(desk: Desk):
    number = rejected(desk)
    revise_task = task(desk, number, "revise", "alex")
    # "Leave empty to keep": a filled-in end would be posted back unchanged and refuse a moved start
    assert revise_task["data"].get("planned_end") is None
    assert revise_task["data"]["planned_start"] == CHANGE["planned_start"]
    assert f"Planned: {CHANGE['planned_start']} to {CHANGE['planned_end']}" in revise_task["instructions"]
    # the record keeps showing the window while the requester revises
    assert desk.record(number)["details"]["planned_end"] == CHANGE["planned_end"]
    revise(desk, number)  # a window left alone is kept
    details = desk.record(number)["details"]
    assert (details["planned_start"], details["planned_end"]) == (CHANGE["planned_start"], CHANGE["planned_end"])


@pytest.mark.parametrize("end", ["left out", None])
def test_a_start_moved_past_the_end_moves_the_window_keeping_its_length(desk: Desk, end: Any):
    number = rejected(desk)
    # an end that is given must still be after the start
    refused = revise(desk, number, status=422, planned_start="2026-03-12T20:00:00Z", planned_end="2026-03-12T19:00:00Z")
    assert refused["details"]["fields"]["planned_end"] == ["must be after Planned start"]
    window: dict[str, Any] = {"planned_start": "2026-03-12T20:00:00Z"}
    if end != "left out":
        window["planned_end"] = end
    revise(desk, number, **window)
    details = desk.record(number)["details"]
    assert details["planned_start"] == "2026-03-12T20:00:00Z"
    assert details["planned_end"] == "2026-03-12T22:00:00Z"  # two hours, as before
    assert desk.record(number)["status"] == "assessment"


def test_a_start_and_end_both_given_set_the_window(desk: Desk):
    number = rejected(desk)
    revise(desk, number, planned_start="2026-03-12T20:00:00Z", planned_end="2026-03-13T01:00:00Z")
    details = desk.record(number)["details"]
    assert (details["planned_start"], details["planned_end"]) == ("2026-03-12T20:00:00Z", "2026-03-13T01:00:00Z")
    # the next round's revise form is again not filled in with the (new) window
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "Still clashes."})
    assert task(desk, number, "revise", "alex")["data"].get("planned_end") is None
