"""An incident's requester-facing rules, through the API with the real services and database:

* a "No" to Confirm resolution needs a reason and reopens the incident at once (no second task that
  could time out into an auto-close with the resolution SLA shown as met);
* a reopened incident starts its next work round with an empty investigation form, and its record
  no longer shows the resolution the requester rejected;
* pending on the customer, the requester is told what is needed and how to answer, reminded a
  bounded number of times, and after the wait limit the work goes back to the resolvers (never an
  auto-close); a reply ends the wait and the reminders.

Timers are fired by the real sweep (``TimerService``) on the tests' controllable clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import OutboxMessage
from app.services.timers import TimerService
from tests.http.desk import Desk

START = {"title": "Printer jams", "description": "PR-204 jams on every page", "category": "hardware",
         "impact": "medium", "urgency": "medium"}
PENDING = {"outcome": "pending", "pending_on": "customer", "pending_reason": "Please send photo"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def open_incident(desk: Desk, who: str = "rita", **changes: Any) -> tuple[str, int]:
    instance = desk.start(who, "incident_management", {**START, **changes})
    number = instance["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    return number, instance["id"]


def resolve(desk: Desk, number: str, notes: str = "Cleaned the rollers") -> None:
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": notes,
                                                  "cause_category": "hardware_failure"})


def sweep(services: Any) -> int:
    return TimerService(services, "test-sweeper").sweep().fired


def sla(desk: Desk, number: str) -> dict[str, dict[str, Any]]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["clocks"]}


def task(desk: Desk, number: str, bpmn_id: str, who: str = "nina") -> dict[str, Any]:
    response = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, bpmn_id)}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def subjects(desk: Desk, who: str, number: str) -> list[str]:
    """The subjects of ``who``'s notifications about ``number``, oldest first."""
    return [n["subject"] for n in reversed(desk.notifications(who)) if number in n["subject"]]


# -- 1. "No" reopens at once ---------------------------------------------------------------------------


def test_no_needs_a_reason_and_reopens_at_once_for_the_resolvers(desk: Desk, services, clock):
    number, instance_id = open_incident(desk)
    resolve(desk, number)
    assert desk.record(number)["status"] == "resolved"
    told_before = subjects(desk, "nina", number)

    refused = desk.complete(number, "confirm_resolution", "rita", {"confirmed": False}, status=422)
    assert refused["details"]["fields"] == {"comment": ["is required when “Is the incident fixed?” is No, reopen it"]}
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "  "}, status=422)
    assert desk.ready(number) == ["confirm_resolution"] and desk.record(number)["status"] == "resolved"

    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "Still jams on page 2"})
    record = desk.record(number)
    assert record["status"] == "in_progress" and record["resolved_at"] is None and record["closed_at"] is None
    assert record["details"]["reopen_count"] == 1
    assert desk.ready(number) == ["investigate"]  # straight back to the resolvers: no second requester task
    # the group is told of the new round and of her reason, as on every reopen
    assert sorted(subjects(desk, "nina", number)[len(told_before):]) == [
        f"New comment on {number}: Printer jams", f"New task: Investigate and resolve ({number}: Printer jams)"]
    assert sla(desk, number)["resolution"]["state"] == "running"

    # nothing in the reopened incident can time out into a close
    clock.advance(timedelta(days=30))
    sweep(services)
    record = desk.record(number)
    assert record["status"] == "in_progress" and record["closed_at"] is None
    assert record["details"].get("closed_reason") is None
    assert desk.instance(instance_id)["status"] == "running"


# -- 3. a new round starts clean ----------------------------------------------------------------------


def test_a_reopened_incident_does_not_keep_the_rejected_resolution(desk: Desk):
    number, _ = open_incident(desk)
    resolve(desk, number, "Cleaned the rollers")
    record = desk.record(number)
    assert (record["details"]["resolution_notes"], record["details"]["cause_category"]) == (
        "Cleaned the rollers", "hardware_failure")
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "Still jams on page 2"})

    details = desk.record(number)["details"]
    assert details["resolution_notes"] == "" and details["cause_category"] is None
    investigate = task(desk, number, "investigate")
    data = investigate["data"]
    assert (data["outcome"], data["resolution_notes"], data["cause_category"]) == ("", "", None)
    assert "The resolution the requester rejected: Cleaned the rollers" in investigate["instructions"]
    assert "last reason: Still jams on page 2" in investigate["instructions"]
    # the outcome alone no longer resolves it
    bad = desk.complete(number, "investigate", "nina", {"outcome": "resolve"}, status=422)
    assert set(bad["details"]["fields"]) == {"resolution_notes"}

    resolve(desk, number, "Replaced the fuser unit")
    assert desk.record(number)["details"]["resolution_notes"] == "Replaced the fuser unit"
    confirm = task(desk, number, "confirm_resolution", "rita")
    assert "Replaced the fuser unit" in confirm["instructions"] and "Cleaned the rollers" not in confirm["instructions"]
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    record = desk.record(number)
    assert record["status"] == "closed" and record["details"]["resolution_notes"] == "Replaced the fuser unit"


def test_a_round_after_a_wait_does_not_come_back_preset_to_pending(desk: Desk):
    number, _ = open_incident(desk)
    desk.complete(number, "investigate", "nina", {**PENDING, "pending_on": "vendor"})
    desk.complete(number, "resume_vendor_work", "nina", {"update_note": "Part arrived"})
    assert task(desk, number, "investigate")["data"]["outcome"] == ""


# -- 2. pending on the customer -----------------------------------------------------------------------


def test_pending_on_the_customer_tells_reminds_and_then_gives_the_work_back(desk: Desk, services, clock):
    services.session.execute(select(OutboxMessage.id))  # the table exists: mail is queued in the step
    rita = services.users.get_by_username("rita")
    rita.email = "rita@example.invalid"
    services.session.commit()
    number, instance_id = open_incident(desk)
    desk.complete(number, "investigate", "nina", PENDING)
    assert desk.record(number)["status"] == "pending" and desk.ready(number) == ["resume_work"]

    # the requester hears at once what is needed and how to answer, in-app and by e-mail
    asked = [n for n in desk.notifications("rita") if n["subject"] == f"{number} needs your answer: Printer jams"]
    assert len(asked) == 1
    assert "Please send photo" in asked[0]["body"] and f"add a comment to {number}" in asked[0]["body"]
    mails = services.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email",
                                                                 OutboxMessage.recipient == "rita@example.invalid")).all()
    assert [m.subject for m in mails if "needs your answer" in m.subject] == [f"{number} needs your answer: Printer jams"]

    wait = desk.task_id(number, "resume_work")
    claimed = desk.client.post(f"/api/v1/tasks/{wait}/claim", headers=desk.auth("nina"))
    assert claimed.status_code == 200, claimed.get_json()
    assert sla(desk, number)["resolution"]["state"] == "paused"

    def reminders() -> list[str]:
        return [s for s in subjects(desk, "rita", number) if s.startswith("Reminder:")]

    clock.advance(timedelta(days=1, hours=23))
    sweep(services)
    assert reminders() == []
    clock.advance(timedelta(hours=1, minutes=1))  # two days after asking
    assert sweep(services) == 1
    assert reminders() == [f"Reminder: {number} needs your answer: Printer jams"]
    record = desk.record(number)
    # a reminder leaves the wait as it is: same task, still claimed, still pending
    assert record["status"] == "pending" and desk.task_id(number, "resume_work") == wait
    assert [t["claimed_by"] for t in record["open_tasks"]] == ["nina"]

    clock.advance(timedelta(days=2))  # four days
    sweep(services)
    assert len(reminders()) == 2
    clock.advance(timedelta(days=2))  # six days: the reminders are bounded (two by default)
    sweep(services)
    assert len(reminders()) == 2 and desk.record(number)["status"] == "pending"

    told_before = subjects(desk, "nina", number)
    clock.advance(timedelta(days=1))  # seven days: back to the resolvers, not closed
    sweep(services)
    record = desk.record(number)
    assert record["status"] == "in_progress" and record["closed_at"] is None
    assert record["details"].get("pending_on") is None
    assert desk.ready(number) == ["investigate"]
    investigate = task(desk, number, "investigate")
    assert "The requester did not answer" in investigate["instructions"]
    assert "Please send photo" in investigate["instructions"]
    assert subjects(desk, "nina", number)[len(told_before):] == [f"New task: Investigate and resolve ({number}: Printer jams)"]
    assert sla(desk, number)["resolution"]["state"] in ("running", "breached")

    clock.advance(timedelta(days=30))
    sweep(services)
    assert desk.record(number)["status"] == "in_progress" and len(reminders()) == 2
    assert desk.instance(instance_id)["status"] == "running"


def test_a_reply_ends_the_wait_and_its_reminders(desk: Desk, services, clock):
    number, _ = open_incident(desk)
    desk.complete(number, "investigate", "nina", PENDING)
    response = desk.client.post(f"/api/v1/tickets/{number}/comments", json={"body": "Photo attached"},
                                headers=desk.auth("rita"))
    assert response.status_code == 201, response.get_json()
    assert desk.record(number)["status"] == "in_progress" and desk.ready(number) == ["investigate"]
    clock.advance(timedelta(days=8))
    sweep(services)
    assert [s for s in subjects(desk, "rita", number) if s.startswith("Reminder:")] == []
    investigate = task(desk, number, "investigate")
    assert "The requester replied: Photo attached" in investigate["instructions"]
    assert "did not answer" not in investigate["instructions"]


def test_staff_may_shorten_the_waits_as_process_data(desk: Desk, services, clock):
    """The durations are process data like ``auto_close_after``: staff (and integrations) set them;
    a requester's values are ignored (hidden start fields)."""
    ignored = desk.start("rita", "incident_management", {**START, "customer_reminder_every": "PT1M",
                                                         "customer_reminders": 5, "customer_wait_limit": "PT2M"})
    assert (ignored["data"]["customer_reminder_every"], ignored["data"]["customer_reminders"],
            ignored["data"]["customer_wait_limit"]) == ("P2D", 2, "P7D")

    number, _ = open_incident(desk, "alex", customer_reminder_every="PT1H", customer_reminders=1,
                              customer_wait_limit="PT3H")
    desk.complete(number, "investigate", "nina", PENDING)
    assert desk.record(number)["status"] == "pending"
    for _ in range(2):  # one reminder after an hour, no second one
        clock.advance(timedelta(hours=1, minutes=1))
        sweep(services)
    assert [s for s in subjects(desk, "alex", number) if s.startswith("Reminder:")] == [
        f"Reminder: {number} needs your answer: Printer jams"]
    assert desk.record(number)["status"] == "pending"
    clock.advance(timedelta(hours=1))
    sweep(services)
    assert desk.record(number)["status"] == "in_progress" and desk.ready(number) == ["investigate"]


# -- 4. the work goes back to whoever held it ---------------------------------------------------------


def second_resolver(desk: Desk, services) -> None:
    """noor: a second member of nina's NetworkTeam, who would see the group's queue."""
    services.users.create_user("noor", "password-1234", roles=["agent"], groups=["NetworkTeam"])
    services.session.commit()


def test_a_reopened_incident_goes_back_to_its_resolver(desk: Desk, services):
    second_resolver(desk, services)
    number, instance_id = open_incident(desk)
    resolve(desk, number)
    noor_before = subjects(desk, "noor", number)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "Still jams on page 2"})

    investigate = task(desk, number, "investigate")
    assert investigate["claimed_by"] == "nina"
    assert desk.record(number)["assignee"] == "nina"
    # only the holder hears of it; the rest of the group sees it claimed, as on a claim
    assert f"New task: Investigate and resolve ({number}: Printer jams)" in subjects(desk, "nina", number)
    assert not any(s.startswith("New task") for s in subjects(desk, "noor", number)[len(noor_before):])
    refused = desk.client.post(f"/api/v1/tasks/{investigate['id']}/complete", headers=desk.auth("noor"),
                               json={"data": {"outcome": "resolve", "resolution_notes": "x", "cause_category": "other"}})
    assert refused.status_code == 403, refused.get_json()
    claims = [e for e in desk.history(instance_id) if e["type"] == "task_claimed"]
    assert [(e["actor"], e["payload"]["claimed_for"]) for e in claims] == [("engine", "nina")]
    resolve(desk, number, "Replaced the fuser unit")
    assert desk.record(number)["status"] == "resolved"


@pytest.mark.parametrize("leaves", ["group", "desk"])
def test_a_reopened_incident_whose_resolver_left_waits_in_the_queue(desk: Desk, services, leaves):
    second_resolver(desk, services)
    number, _ = open_incident(desk)
    resolve(desk, number)
    ada = services.users.get_by_username("ada")
    if leaves == "group":
        services.users.remove_member(ada, "NetworkTeam", "nina")
    else:
        services.users.deactivate_user(ada, "nina")
    services.session.commit()
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "Still jams on page 2"})

    assert task(desk, number, "investigate", "noor")["claimed_by"] is None
    assert f"New task: Investigate and resolve ({number}: Printer jams)" in subjects(desk, "noor", number)
    desk.complete(number, "investigate", "noor", {"outcome": "resolve", "resolution_notes": "Fuser",
                                                  "cause_category": "hardware_failure"})
    assert desk.record(number)["assignee"] == "noor"


def test_work_resumed_after_a_wait_goes_back_to_who_set_it_pending(desk: Desk, services):
    second_resolver(desk, services)
    number, _ = open_incident(desk)
    desk.complete(number, "investigate", "nina", {**PENDING, "pending_on": "vendor"})
    assert task(desk, number, "resume_vendor_work")["claimed_by"] == "nina"
    desk.complete(number, "resume_vendor_work", "nina", {"update_note": "Part arrived"})
    assert task(desk, number, "investigate")["claimed_by"] == "nina"
    # she may give it back to the group, whose members may then take it
    released = desk.client.post(f"/api/v1/tasks/{desk.task_id(number, 'investigate')}/unclaim", headers=desk.auth("nina"))
    assert released.status_code == 200, released.get_json()
    desk.complete(number, "investigate", "noor", {"outcome": "resolve", "resolution_notes": "Fuser",
                                                  "cause_category": "hardware_failure"})
    assert desk.record(number)["assignee"] == "noor"


# -- 5. a comment instead of an answer ----------------------------------------------------------------


def test_a_requester_comment_on_a_resolved_incident_reopens_it(desk: Desk, services, clock):
    number, instance_id = open_incident(desk)
    resolve(desk, number)
    # staff notes on the resolved record do not reopen it
    note = desk.client.post(f"/api/v1/tickets/{number}/comments", json={"body": "Closing notes"},
                            headers=desk.auth("nina"))
    assert note.status_code == 201, note.get_json()
    assert desk.record(number)["status"] == "resolved" and desk.ready(number) == ["confirm_resolution"]
    assert "or comment on the incident" in task(desk, number, "confirm_resolution", "rita")["instructions"]

    reply = desk.client.post(f"/api/v1/tickets/{number}/comments", json={"body": "Still jams on page 2"},
                             headers=desk.auth("rita"))
    assert reply.status_code == 201, reply.get_json()
    record = desk.record(number)
    assert record["status"] == "in_progress" and record["resolved_at"] is None
    assert record["details"]["reopen_count"] == 1 and record["details"]["resolution_notes"] == ""
    assert desk.ready(number) == ["investigate"]
    investigate = task(desk, number, "investigate")
    assert investigate["claimed_by"] == "nina"
    assert "last reason: Still jams on page 2" in investigate["instructions"]
    assert "The resolution the requester rejected: Cleaned the rollers" in investigate["instructions"]
    assert sla(desk, number)["resolution"]["state"] == "running"
    # the auto-close timer went with the confirmation
    clock.advance(timedelta(days=30))
    sweep(services)
    assert desk.record(number)["status"] == "in_progress"
    assert desk.instance(instance_id)["status"] == "running"
