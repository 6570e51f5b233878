"""What an SLA escalation changed on a record, the record's process continues from.

An escalation raises the record's priority or hands it to another group on the record alone; the
process's own variables still hold the old values. The next task a person works shows the
record's values in its form, the step continues from them (gateways route a raised P1 as a P1,
later work goes to the new group), and an agent who picks another value there sets it on the
record, even the value the process held before the escalation.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.http.desk import Desk
from tests.http.test_sla_escalation_effects import put_policy

P2_START = {"title": "Mail slow for a floor", "description": "Floor 3", "category": "network",
            "impact": "high", "urgency": "medium"}
P3_START = {"title": "Printer offline", "description": "PR-204", "category": "hardware",
            "impact": "medium", "urgency": "medium"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def raise_on_response_breach(desk: Desk, priority: str) -> None:
    put_policy(desk, {"kind": "incident", "priority": priority, "response_seconds": 60, "resolution_seconds": 7200,
                      "escalation": {"breach": {"notify": ["group"], "raise_priority": True}}})


def breach(services, clock) -> None:
    clock.advance(timedelta(minutes=2))
    assert services.sla.sweep()["breaches"] == 1


def task_detail(desk: Desk, number: str, bpmn_id: str, who: str) -> dict:
    response = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, bpmn_id, who)}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_raised_p1_is_triaged_and_routed_as_a_p1(desk: Desk, services, clock):
    raise_on_response_breach(desk, "P2")
    number = desk.start("rita", "incident_management", P2_START)["data"]["record_number"]
    breach(services, clock)
    assert desk.record(number)["priority"] == "P1"
    # the triage form shows the record's priority, not the one the matrix gave at the start
    assert task_detail(desk, number, "triage", "alex")["data"]["priority"] == "P1"
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P1", "assignment_group": "NetworkTeam"})
    assert desk.record(number)["priority"] == "P1"
    assert "coordinate_major" in desk.ready(number)  # the gateway saw P1


def test_an_agent_who_picks_the_old_priority_sets_it_on_the_record(desk: Desk, services, clock):
    raise_on_response_breach(desk, "P2")
    number = desk.start("rita", "incident_management", P2_START)["data"]["record_number"]
    breach(services, clock)
    assert desk.record(number)["priority"] == "P1"
    # P2 is what the process held all along: the record follows the agent's choice anyway
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P2", "assignment_group": "NetworkTeam"})
    assert desk.record(number)["priority"] == "P2"
    assert "coordinate_major" not in desk.ready(number)


def test_a_step_that_does_not_set_the_priority_keeps_the_raised_one(desk: Desk, services, clock):
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 300, "resolution_seconds": 600,
                      "escalation": {"breach": {"notify": ["group"], "raise_priority": True}}})
    number = desk.start("rita", "incident_management", P3_START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    clock.advance(timedelta(minutes=11))  # the resolution clock breaches: raised to P2
    assert services.sla.sweep()["breaches"] == 1
    assert desk.record(number)["priority"] == "P2"
    assert task_detail(desk, number, "investigate", "nina")["data"]["priority"] == "P2"
    # the investigation form has no priority: the step continues from the record's
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "vendor", "pending_reason": "RMA"})
    record = desk.record(number)
    assert record["priority"] == "P2"
    assert desk.instance(record["instance_id"])["data"]["priority"] == "P2"


def test_work_after_a_reassigning_escalation_goes_to_the_new_group(desk: Desk, services, clock):
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
                      "escalation": {"breach": {"notify": ["group"], "reassign_group": "MajorIncidentManagers"}}})
    number = desk.start("rita", "incident_management", P3_START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    clock.advance(timedelta(hours=2, minutes=1))
    assert services.sla.sweep()["breaches"] == 1
    assert desk.record(number)["assignment_group"] == "MajorIncidentManagers"
    # mike (MajorIncidentManagers) parks it on the vendor; the next round of work stays with his group
    desk.complete(number, "investigate", "mike", {"outcome": "pending", "pending_on": "vendor", "pending_reason": "RMA"})
    record = desk.record(number)
    assert record["assignment_group"] == "MajorIncidentManagers"
    assert record["open_tasks"], record
    assert desk.instance(record["instance_id"])["data"]["assignment_group"] == "MajorIncidentManagers"
