"""An SLA policy's pause statuses: left out, they are the kind's default, not "never pause"; and a
status no record of the kind can have (a typo) is refused, naming the field and the statuses there are."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Ticket
from tests.http.desk import Desk
from tests.http.helpers import assert_error

POLICY = {"kind": "incident", "priority": "P4", "response_seconds": 600, "resolution_seconds": 7200}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def put(desk: Desk, body: dict):
    return desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=body)


def test_a_policy_saved_without_pause_statuses_keeps_the_kinds_default(desk: Desk):
    saved = put(desk, POLICY)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["pause_statuses"] == ["pending"]
    problem = put(desk, {**POLICY, "kind": "problem"})
    assert problem.status_code == 200 and problem.get_json()["pause_statuses"] == []
    # saying so still turns pausing off
    never = put(desk, {**POLICY, "pause_statuses": []})
    assert never.status_code == 200 and never.get_json()["pause_statuses"] == []


def test_a_pause_status_no_record_of_the_kind_has_is_refused(desk: Desk):
    body = assert_error(put(desk, {**POLICY, "pause_statuses": ["pendng", "pending"]}), 422, "validation_failed")
    [message] = body["details"]["fields"]["pause_statuses"]
    assert message.startswith("incident records never have status 'pendng' (they have: ")
    assert "pending" in message and "in_progress" in message and "resolved" in message
    # a catalog request's status is no incident's
    assert_error(put(desk, {**POLICY, "pause_statuses": ["awaiting_confirmation"]}), 422)
    change = put(desk, {**POLICY, "kind": "request", "pause_statuses": ["awaiting_confirmation"]})
    assert change.status_code == 200, change.get_json()
    policies = desk.client.get("/api/v1/sla/policies", headers=desk.auth("olga")).get_json()["items"]
    assert [p for p in policies if p["kind"] == "incident"] == []  # nothing half-saved


def test_a_status_only_records_have_is_known_too(desk: Desk, services):
    assert "awaiting_approval" in services.sla.record_statuses("change")
    assert "awaiting_approval" not in services.sla.record_statuses("incident")
    number = desk.start("rita", "incident_management", {
        "title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium",
        "urgency": "medium"})["data"]["record_number"]
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    ticket.status = "waiting_for_vendor"  # set by a process deployed elsewhere, say
    services.session.commit()
    assert "waiting_for_vendor" in services.sla.record_statuses("incident")
    saved = put(desk, {**POLICY, "pause_statuses": ["pending", "waiting_for_vendor"]})
    assert saved.status_code == 200, saved.get_json()
