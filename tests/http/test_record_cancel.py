"""Cancelling a record's process: the record closes as cancelled, its SLA clocks stop, its people
are told, and who may cancel depends on whether work on the record has started."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import AuditEvent, Notification, User
from tests.http.desk import Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}
TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def open_incident(desk: Desk, who: str = "rita") -> tuple[str, int]:
    instance = desk.start(who, "incident_management", INCIDENT)
    return instance["data"]["record_number"], instance["id"]


def cancel(desk: Desk, instance_id: int, who: str, reason: str | None = "not needed"):
    return desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth(who),
                            json={"reason": reason} if reason else {})


def clocks(desk: Desk, number: str) -> dict[str, dict]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["clocks"]}


def inbox(services, username: str) -> list[str]:
    user = services.session.scalar(select(User).where(User.username == username))
    return [n.subject for n in services.session.scalars(select(Notification).where(Notification.user_id == user.id))]


def test_a_requester_withdraws_her_new_incident_and_the_record_closes_with_its_clocks(desk: Desk, services, clock):
    number, instance_id = open_incident(desk)
    assert clocks(desk, number)["resolution"]["state"] == "running"
    clock.advance(timedelta(minutes=5))
    done = cancel(desk, instance_id, "rita", "fixed itself")
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "cancelled" and done.get_json()["open_tasks"] == []

    record = desk.record(number, "rita")
    assert record["status"] == "cancelled" and record["closed_at"] is not None and record["open_tasks"] == []
    assert record["first_response_at"] is None  # withdrawing answers nobody
    assert {c["state"] for c in clocks(desk, number).values()} == {"cancelled"}  # neither met nor breached
    assert desk.client.get("/api/v1/tickets?open=1", headers=desk.auth("rita")).get_json()["total"] == 0

    # long after its targets, the sweep neither warns nor breaches the cancelled record
    clock.advance(timedelta(days=5))
    services.sla.sweep()
    services.session.commit()
    assert {c["state"] for c in clocks(desk, number).values()} == {"cancelled"}
    events = desk.history(instance_id)
    types = [e["type"] for e in events]
    assert "sla_breached" not in types and "sla_warning" not in types and "sla_stop" in types
    closing = [e for e in services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "record_updated", AuditEvent.instance_id == instance_id))
        if e.payload["changes"].get("status") == "cancelled"]
    assert len(closing) == 1 and closing[0].actor == "rita" and closing[0].payload["reason"] == "fixed itself"
    assert {"instance_cancel_requested", "instance_cancelled"} <= set(types)
    assert_error(cancel(desk, instance_id, "rita"), 409)


def test_once_work_has_started_only_staff_cancel_and_the_assignees_are_told(desk: Desk, services):
    number, instance_id = open_incident(desk)
    desk.complete(number, "triage", "alex", TRIAGE)
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "vendor", "pending_reason": "RMA"})
    assert desk.record(number)["assignee"] == "nina"

    body = assert_error(cancel(desk, instance_id, "rita"), 403)
    assert "has started" in body["message"]
    assert desk.record(number)["status"] == "pending" and desk.instance(instance_id)["status"] == "running"
    assert_error(cancel(desk, instance_id, "aude"), 403)  # auditors change nothing

    assert cancel(desk, instance_id, "alex", "duplicate of INC-000009").status_code == 200
    record = desk.record(number)
    assert record["status"] == "cancelled" and record["closed_at"] is not None
    subject = f"{number} cancelled: VPN down"
    assert subject in inbox(services, "nina") and subject in inbox(services, "rita")  # assignee (and group), requester
    assert subject not in inbox(services, "alex")  # not the one who cancelled
    # the response was given at triage (met); the resolution clock is cancelled
    assert {c["name"]: c["state"] for c in clocks(desk, number).values()} == {"response": "met", "resolution": "cancelled"}
    assert all(c["due_at"] is None or c["state"] != "running" for c in clocks(desk, number).values())


def test_a_claimed_new_incident_is_no_longer_the_requesters_to_withdraw(desk: Desk):
    number, instance_id = open_incident(desk)
    triage = desk.task_id(number, "triage")
    assert desk.client.post(f"/api/v1/tasks/{triage}/claim", headers=desk.auth("alex")).status_code == 200
    assert_error(cancel(desk, instance_id, "rita"), 403)
    assert desk.record(number)["status"] == "new"


def test_a_requester_withdraws_a_request_awaiting_approval_but_not_one_being_fulfilled(desk: Desk):
    laptop = {"justification": "The battery swells; the laptop is four years old.", "replacement": True,
              "old_asset_tag": "AT-123456", "keyboard_layout": "UK", "delivery_location": "Main building 2.17"}
    records = []
    for _ in range(2):
        response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": laptop})
        assert response.status_code == 201, response.get_json()
        records.append(response.get_json())
    waiting, approved = records
    assert waiting["status"] == approved["status"] == "submitted"
    desk.complete(approved["number"], "approve_manager", "mona", {"approved": True, "approval_comment": "Go ahead."})
    assert desk.record(approved["number"])["status"] == "fulfilment"

    assert cancel(desk, waiting["instance_id"], "rita").status_code == 200
    assert desk.record(waiting["number"])["status"] == "cancelled"
    assert_error(cancel(desk, approved["instance_id"], "rita"), 403)
    assert desk.record(approved["number"])["status"] == "fulfilment"


def test_a_cancel_reason_that_reads_one_way_and_is_another_is_refused(desk: Desk):
    instance = desk.start("rita", "incident_management", {"title": "VPN down", "description": "No tunnel",
                                                           "category": "network", "impact": "low", "urgency": "low"})
    response = desk.client.post(f"/api/v1/instances/{instance['id']}/cancel", headers=desk.auth("rita"),
                                json={"reason": "duplicate of \u202e1000-CNI"})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"]["fields"] == {
        "reason": ["must not contain bidirectional control characters (U+202E)"]}
    assert desk.instance(instance["id"])["status"] == "running"


def test_the_desk_says_why_it_cancels_a_record_and_a_requester_may_not(desk: Desk, services):
    number, instance_id = open_incident(desk)
    for who, sent in (("alex", {}), ("ada", {"reason": "   "})):
        body = assert_error(desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth(who),
                                             json=sent), 422)
        assert list(body["details"]["fields"]) == ["reason"], body
    # nothing happened: the record is open, its process runs, nobody was told anything
    assert desk.record(number)["status"] != "cancelled" and desk.instance(instance_id)["status"] == "running"
    assert not [s for s in inbox(services, "rita") if "cancelled" in s]
    # a requester withdrawing her own record needn't say why, and the reason kept is trimmed
    other, other_id = open_incident(desk)
    assert cancel(desk, other_id, "rita", None).status_code == 200
    assert cancel(desk, instance_id, "alex", "  duplicate of another  ").status_code == 200
    services.session.expire_all()
    reasons = [e.payload.get("reason") for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "record_updated").order_by(AuditEvent.seq))
        if (e.payload.get("changes") or {}).get("status") == "cancelled"]
    assert reasons == [None, "duplicate of another"]
