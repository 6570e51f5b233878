"""The variables a process marks internal (its record mapping's ``internal``) reach staff only.

For each shipped process, someone who is not staff (the requester, an approver) reads an
instance's data, a task's data and the instance's history without them, while agents and auditors
read them all; a task's own form fields stay in its data.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.records import check_mapping, internal_variables
from tests.http.desk import ROOT, Desk

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}
CHANGE = {"title": "Upgrade the mail gateway", "description": "Move the gateway to version 9.2.",
          "reason": "Version 8 is out of support in April.", "change_type": "normal",
          "planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z",
          "implementation_plan": "Drain, upgrade, re-enable.", "rollback_plan": "Restore the VM snapshot.",
          "test_plan": "Send and receive test mail.", "ci": "mailgw01"}
ASSESS_MEDIUM = {"impact": "medium", "affected_users": 400, "rollback_difficulty": "easy", "has_tested": True,
                 "implementer": "ivan", "assessment_notes": "Sensitive: the vendor is on notice."}
LAPTOP = {"justification": "The battery swells.", "replacement": True, "old_asset_tag": "AT-123456",
          "keyboard_layout": "UK", "delivery_location": "Main building 2.17"}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def get(desk: Desk, who: str, url: str) -> dict[str, Any]:
    response = desk.client.get(url, headers=desk.auth(who))
    assert response.status_code == 200, (who, url, response.get_json())
    return response.get_json()  # type: ignore[no-any-return]


def instance_data(desk: Desk, who: str, instance_id: int) -> dict[str, Any]:
    return get(desk, who, f"/api/v1/instances/{instance_id}")["data"]  # type: ignore[no-any-return]


def history_keys(desk: Desk, who: str, instance_id: int) -> set[str]:
    """Every variable named in the data of the instance's history events, as ``who`` reads them."""
    events = get(desk, who, f"/api/v1/instances/{instance_id}/history")["events"]
    keys: set[str] = set()
    for event in events:
        for data in (event["data"], event["payload"].get("data")):
            if isinstance(data, dict):
                keys |= set(data)
    return keys


def listed_data(desk: Desk, who: str, instance_id: int) -> dict[str, Any]:
    items = get(desk, who, "/api/v1/instances?per_page=100")["items"]
    [found] = [item for item in items if item["id"] == instance_id]
    return found["data"]  # type: ignore[no-any-return]


def task_of(desk: Desk, number: str, bpmn_id: str) -> int:
    return desk.task_id(number, bpmn_id)


def test_shipped_mappings_mark_the_working_notes_internal():
    marked = {name: internal_variables(json.loads((ROOT / "processes" / f"{name}.record.json").read_text()))
              for name in ("incident_management", "change_enablement", "problem_management", "catalog_request")}
    assert {"triage_notes", "investigation_feedback", "update_note", "communication_summary"} <= marked["incident_management"]
    assert {"assessment_notes", "implementation_notes", "review_notes", "votes"} <= marked["change_enablement"]
    assert {"triage_notes", "proposed_fix", "verification_notes"} <= marked["problem_management"]
    assert {"approval_rule", "manager_lookup"} <= marked["catalog_request"]


@pytest.mark.parametrize(("internal", "message"), [
    ("triage_notes", "internal must be a list"),
    (["triage notes"], "internal must be a list"),
    ([3], "internal must be a list"),
    (["resolution_notes"], "resolution_notes is copied onto the record"),
    (["title"], "title is copied onto the record"),
    (["reopen_reason"], "reopen_reason is copied onto the record"),
])
def test_the_deploy_refuses_a_bad_internal_list(internal: Any, message: str):
    mapping = json.loads((ROOT / "processes" / "incident_management.record.json").read_text())
    with pytest.raises(ValidationFailed) as raised:
        check_mapping({**mapping, "internal": internal}, "incident_management.record.json")
    assert raised.value.details == {"file": "incident_management.record.json", "key": "internal"}
    assert message in raised.value.message


def test_an_incident_requester_reads_no_working_notes_but_her_confirm_form_data(desk: Desk):
    started = desk.start("rita", "incident_management", INCIDENT)
    number, instance_id = started["data"]["record_number"], started["id"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam",
                                             "triage_notes": "Caller is the CEO's assistant; escalate quietly."})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Restarted the concentrator",
                                                  "cause_category": "configuration"})
    hidden = {"triage_notes", "investigation_feedback", "outcome"}

    # staff read everything
    for who in ("alex", "aude"):
        data = instance_data(desk, who, instance_id)
        assert hidden <= set(data) and data["triage_notes"].startswith("Caller is")
        assert "triage_notes" in history_keys(desk, who, instance_id)

    # the requester: the instance, the list, the history and her confirm task, without them
    data = instance_data(desk, "rita", instance_id)
    assert not hidden & set(data)
    assert data["title"] == "VPN down" and data["resolution_notes"] == "Restarted the concentrator"
    assert not hidden & set(listed_data(desk, "rita", instance_id))
    assert not hidden & history_keys(desk, "rita", instance_id)
    confirm = task_of(desk, number, "confirm_resolution")
    detail = get(desk, "rita", f"/api/v1/tasks/{confirm}")
    assert not hidden & set(detail["data"])
    assert {"comment"} <= set(detail["data"])  # her form's own field, from the data
    assert "Restarted the concentrator" in detail["instructions"]
    assert "triage_notes" in get(desk, "aude", f"/api/v1/tasks/{confirm}")["data"]
    # and the answer to her completion
    done = desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "comment": "works"})
    assert not hidden & set(done["data"]) and done["status"] == "completed"


def test_a_cab_member_reads_no_assessment_notes_nor_the_other_votes(desk: Desk):
    started = desk.start("alex", "change_enablement", CHANGE)
    number, instance_id = started["data"]["record_number"], started["id"]
    desk.complete(number, "assess", "cora", ASSESS_MEDIUM)
    assert sorted(t["bpmn_id"] for t in desk.record(number)["open_tasks"]) == ["cab_vote"] * 3
    vote = desk.task_id(number, "cab_vote", "cab1")
    detail = get(desk, "cab1", f"/api/v1/tasks/{vote}")
    assert detail["data"]["approver"] == "cab1" and "assessment_notes" not in detail["data"]
    assert "assessment_notes" not in instance_data(desk, "cab1", instance_id)
    assert "assessment_notes" not in history_keys(desk, "cab1", instance_id)
    done = desk.complete(number, "cab_vote", "cab1", {"approved": True, "approval_comment": "Fine."})
    assert not {"assessment_notes", "votes", "cab_lookup"} & set(done["data"])
    # the change's requester (staff) and the auditor read them
    assert instance_data(desk, "alex", instance_id)["assessment_notes"] == "Sensitive: the vendor is on notice."
    assert "cab_lookup" in instance_data(desk, "aude", instance_id)
    assert "assessment_notes" in history_keys(desk, "aude", instance_id)


def test_a_problem_started_for_a_requester_shows_her_no_triage_notes(desk: Desk, services: Any):
    # Problems are raised by staff; a diagram may start one on a requester's behalf (start_process).
    rita = services.users.get_by_username("rita")
    instance = services.instances.start_process(rita, "problem_management",
                                                {"title": "VPN drops", "description": "Every morning"},
                                                as_system=True)
    services.session.commit()
    number = services.records.for_instance(instance.id).number
    desk.complete(number, "triage", "paul", {"priority": "P2", "category": "network", "assignment_group": "NetworkTeam",
                                             "triage_notes": "Vendor bug suspected; do not tell users yet."})
    assert "triage_notes" not in instance_data(desk, "rita", instance.id)
    assert "triage_notes" not in history_keys(desk, "rita", instance.id)
    assert instance_data(desk, "paul", instance.id)["triage_notes"].startswith("Vendor bug")
    assert "triage_notes" in history_keys(desk, "aude", instance.id)


def test_a_catalog_requester_and_her_approver_read_no_routing_data(desk: Desk):
    response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert response.status_code == 201, response.get_json()
    number, instance_id = response.get_json()["number"], response.get_json()["instance_id"]
    hidden = {"approval_rule", "manager_lookup"}
    assert hidden <= set(instance_data(desk, "aude", instance_id))
    assert not hidden & set(instance_data(desk, "rita", instance_id))
    approve = desk.task_id(number, "approve_manager", "mona")
    detail = get(desk, "mona", f"/api/v1/tasks/{approve}")
    assert not hidden & set(detail["data"]) and detail["data"]["cost"] == 950
    assert hidden <= set(get(desk, "aude", f"/api/v1/tasks/{approve}")["data"])
    done = desk.complete(number, "approve_manager", "mona", {"approved": True})
    assert not hidden & set(done["data"])
    desk.complete(number, "fulfil_request", "nina", {"fulfilment_notes": "Handed over."})
    assert hidden <= set(instance_data(desk, "nina", instance_id))  # the agent who fulfilled it
    confirm = desk.task_id(number, "confirm_receipt", "rita")
    detail = get(desk, "rita", f"/api/v1/tasks/{confirm}")
    assert not hidden & set(detail["data"]) and "rating_comment" in detail["data"]


def test_history_hides_them_in_a_messages_payload_too():
    """A message delivered through the API lands in the instance's data like a form's: its payload
    in the history is stripped of the hidden variables as the submitted data is."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from app.api.serialize import history_dict

    event = SimpleNamespace(seq=7, event_type="message_received", actor="alex", task_id=None,
                            occurred_at=datetime(2026, 1, 5, tzinfo=timezone.utc),
                            payload={"name": "vendor_update", "payload": {"triage_notes": "quietly", "eta": "Friday"},
                                     "data": {"triage_notes": "quietly", "title": "VPN down"}})
    shown = history_dict(event, {}, frozenset({"triage_notes"}))  # type: ignore[arg-type]
    assert shown["payload"]["payload"] == {"eta": "Friday"} and shown["data"] == {"title": "VPN down"}
    assert shown["payload"]["name"] == "vendor_update"
    assert history_dict(event, {})["payload"]["payload"]["triage_notes"] == "quietly"  # type: ignore[arg-type]


def test_a_variable_marked_internal_later_is_hidden_in_the_instances_started_before(desk: Desk, services: Any):
    started = desk.start("rita", "incident_management", INCIDENT)
    old_id = started["id"]
    assert "impact" in instance_data(desk, "rita", old_id)
    mapping = json.loads((ROOT / "processes" / "incident_management.record.json").read_text())
    mapping["internal"] = [*mapping["internal"], "impact"]
    olga = services.users.get_by_username("olga")
    services.definitions.deploy(olga, [("incident_management.record.json", json.dumps(mapping).encode())])
    services.session.commit()
    assert services.definitions.latest("incident_management").version == 2

    assert "impact" not in instance_data(desk, "rita", old_id)  # version 1, hidden by the latest mapping
    new_id = desk.start("rita", "incident_management", INCIDENT)["id"]
    assert "impact" not in instance_data(desk, "rita", new_id)  # the latest version's own
    assert "impact" in instance_data(desk, "alex", old_id) and "impact" in instance_data(desk, "alex", new_id)
