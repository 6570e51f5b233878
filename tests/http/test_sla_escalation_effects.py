"""What a breach escalation does to the record, through the API and the sweep.

* A breach is a fact: an escalation that raises the priority to one with a longer target
  re-targets the clock but does not lift the breach that caused it (stored, counted in
  compliance, not escalated again).
* ``reassign_group`` moves the record's open work to the new group's queue, released from a
  claimant of the old group, audited; a task assigned to a person by name stays theirs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import AuditEvent, HumanTask, SlaClock, Ticket
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import resolve

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium", "urgency": "medium"}
HOUR = 3600.0


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def put_policy(desk: Desk, body: dict) -> None:
    response = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=body)
    assert response.status_code == 200, response.get_json()


def clocks(desk: Desk, number: str, who: str = "alex") -> dict[str, dict]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["clocks"]}


def stored(services, number: str) -> dict[str, SlaClock]:
    services.session.expire_all()
    return {row.name: row for row in services.session.scalars(
        select(SlaClock).join(Ticket, Ticket.id == SlaClock.ticket_id).where(Ticket.number == number))}


def inbox(desk: Desk, who: str, mine: bool = False) -> set[int]:
    response = desk.client.get(f"/api/v1/tasks?per_page=200{'&mine=1' if mine else ''}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return {t["id"] for t in response.get_json()["items"]}


def test_an_escalation_to_a_priority_with_a_longer_target_keeps_the_breach(desk: Desk, services, clock):
    # P3 resolves within 2 h, P2 (where the breach raises the record) within 10 h: longer
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
                      "escalation": {"breach": {"notify": ["group"], "raise_priority": True}}})
    put_policy(desk, {"kind": "incident", "priority": "P2", "response_seconds": 3600, "resolution_seconds": 10 * 3600})
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    opened = clock.now()
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    clock.advance(timedelta(hours=2, minutes=1))
    assert services.sla.sweep() == {"warnings": 0, "breaches": 1}
    assert desk.record(number)["priority"] == "P2"

    sla = clocks(desk, number)
    resolution = sla["resolution"]
    assert resolution["target_seconds"] == 10 * HOUR  # the new priority's target is shown
    assert resolution["state"] == "breached"  # but the breach stays
    assert resolution["breached_at"].startswith((opened + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    assert resolution["due_at"] == resolution["breached_at"]
    row = stored(services, number)["resolution"]
    assert row.state == "breached" and row.escalated and row.target_seconds == 10 * HOUR

    # counted as breached, and never escalated again (no second priority raise either)
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    clock.advance(timedelta(hours=3))
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    assert desk.record(number)["priority"] == "P2"
    [summary] = [c for c in services.sla.compliance(services.users.get_by_username("alex")) if c["name"] == "resolution"]
    assert (summary["breached"], summary["met"], summary["open"]) == (1, 0, 0)

    # resolved and closed well within the new target: still breached
    resolve(desk, number)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    assert desk.record(number)["status"] == "closed"
    assert clocks(desk, number)["resolution"]["state"] == "breached"
    assert stored(services, number)["resolution"].state == "breached"


def test_a_reassigning_escalation_moves_the_open_task_to_the_new_groups_queue(desk: Desk, services, clock):
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
                      "escalation": {"breach": {"notify": ["group"], "reassign_group": "MajorIncidentManagers"}}})
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    task_id = desk.task_id(number, "investigate", "nina")
    claimed = desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth("nina"))
    assert claimed.status_code == 200, claimed.get_json()
    assert task_id in inbox(desk, "nina", mine=True)

    clock.advance(timedelta(hours=2, minutes=1))
    assert services.sla.sweep()["breaches"] == 1
    assert desk.record(number)["assignment_group"] == "MajorIncidentManagers"
    services.session.expire_all()
    task = services.session.get(HumanTask, task_id)
    assert task.candidate_group == "MajorIncidentManagers" and task.claimed_by_id is None
    # the old group's claimant let go of it; the new group has it in its queue
    assert task_id not in inbox(desk, "nina", mine=True) and task_id not in inbox(desk, "nina")
    assert task_id in inbox(desk, "mike")
    assert_error(desk.client.post(f"/api/v1/tasks/{task_id}/complete", headers=desk.auth("nina"),
                                  json={"data": {"outcome": "pending", "pending_on": "customer", "pending_reason": "x"}}), 404)
    [moved] = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_requeued")).all()
    assert moved.task_id == task_id and moved.actor == "sla"
    assert moved.payload["from_group"] == "NetworkTeam" and moved.payload["to_group"] == "MajorIncidentManagers"
    assert moved.payload["released"] == "nina"
    # the new group works it
    desk.complete(number, "investigate", "mike", {"outcome": "pending", "pending_on": "customer", "pending_reason": "x"})
    assert desk.record(number)["status"] == "pending"


def test_a_task_assigned_by_name_and_a_claimant_of_the_new_group_stay(desk: Desk, services, clock):
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
                      "escalation": {"breach": {"notify": ["group"], "reassign_group": "DesktopSupport"}}})
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    task_id = desk.task_id(number, "investigate", "nina")
    assert desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth("nina")).status_code == 200
    named = services.session.scalar(select(HumanTask).where(HumanTask.id == task_id))
    instance_id = named.instance_id
    clock.advance(timedelta(hours=2, minutes=1))
    assert services.sla.sweep()["breaches"] == 1
    services.session.expire_all()
    task = services.session.get(HumanTask, task_id)
    # nina is in DesktopSupport too: the task moves to that queue and stays claimed by her
    assert task.candidate_group == "DesktopSupport" and task.claimed_by.username == "nina"
    [moved] = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_requeued")).all()
    assert moved.payload["released"] is None and moved.instance_id == instance_id
    # a task assigned by name (the requester's) is no group's to move
    task.assigned_user = "rita"
    task.candidate_group = "NetworkTeam"
    services.session.commit()
    assert services.tasks.requeue(instance_id, "DesktopSupport", reason="test", actor_name="sla") == []
    services.session.expire_all()
    assert services.session.get(HumanTask, task_id).candidate_group == "NetworkTeam"
