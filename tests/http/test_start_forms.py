"""Start contracts of the shipped processes, cross-field date checks and reassignment targets.

A process's start form (``forms/<process_id>.start.json``) validates the data it is started with
through POST /instances: a refused start answers 422 naming each bad field and stores nothing (no
instance, no record, no record number used up). Reassigning a task is refused (422 naming
``username``) unless the new holder may then complete it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from app.errors import ValidationFailed
from app.models import AuditEvent, DefinitionFile, ProcessInstance, Ticket
from tests.conftest import fixture_files
from tests.http.desk import Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium"}
CHANGE = {"title": "Upgrade the mail gateway", "description": "Move the gateway to version 9.2.",
          "change_type": "normal", "reason": "Version 8 is out of support in April.",
          "planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z",
          "implementation_plan": "Drain, upgrade, re-enable.", "rollback_plan": "Restore the VM snapshot.",
          "test_plan": "Send and receive test mail."}
PROBLEM = {"title": "VPN tunnels drop every morning", "description": "Between 08:30 and 09:00."}
ASSESS = {"impact": "low", "affected_users": 20, "rollback_difficulty": "easy", "has_tested": True,
          "implementer": "ivan", "assessment_notes": "Routine."}
ASSESS_MEDIUM = {**ASSESS, "impact": "medium", "affected_users": 400}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def post_start(desk: Desk, process_id: str, data: Any, who: str = "alex") -> Any:
    return desk.client.post("/api/v1/instances", headers=desk.auth(who), json={"process_id": process_id, "data": data})


def stored(desk: Desk) -> tuple[int, int, int]:
    session = desk.services.session
    return (session.scalar(select(func.count()).select_from(ProcessInstance)) or 0,
            session.scalar(select(func.count()).select_from(Ticket)) or 0,
            session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == "instance_started")) or 0)


def refused_fields(desk: Desk, process_id: str, data: Any, who: str = "alex") -> dict[str, list[str]]:
    before = stored(desk)
    body = assert_error(post_start(desk, process_id, data, who), 422, "validation_failed")
    assert stored(desk) == before  # nothing stored
    return body["details"]["fields"]  # type: ignore[no-any-return]


# -- start data ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("process_id", "required"), [
    ("incident_management", {"title", "description", "impact", "urgency"}),
    ("change_enablement", {"title", "description", "change_type", "reason", "planned_start", "planned_end",
                           "implementation_plan", "rollback_plan", "test_plan"}),
    ("problem_management", {"title", "description"}),
])
def test_empty_start_data_is_refused_naming_every_required_field(desk: Desk, process_id: str, required: set[str]):
    fields = refused_fields(desk, process_id, {})
    assert fields == {name: ["is required"] for name in required}


def test_bad_incident_start_data_is_refused_and_nothing_is_stored(desk: Desk):
    fields = refused_fields(desk, "incident_management", {**INCIDENT, "title": 5, "impact": "enormous"})
    assert set(fields) == {"title", "impact"} and fields["title"] == ["must be text"]
    fields = refused_fields(desk, "incident_management", {**INCIDENT, "title": "x" * 100_000})
    assert fields == {"title": ["must be at most 200 characters"]}
    fields = refused_fields(desk, "incident_management", {**INCIDENT, "title": "   ", "description": "\n\t"})
    assert fields == {"title": ["is required"], "description": ["is required"]}
    fields = refused_fields(desk, "incident_management", {**INCIDENT, "auto_close_after": "PT0S"})
    assert set(fields) == {"auto_close_after"}
    # nothing was used up: the first incident that starts is still number one, and runs
    started = desk.start("rita", "incident_management", INCIDENT)
    assert started["status"] == "running" and started["error"] is None
    assert started["data"]["record_number"] == "INC-000001"
    assert sorted(t["bpmn_id"] for t in started["open_tasks"]) == ["triage"]


def test_start_data_keeps_only_the_fields_the_start_form_declares(desk: Desk):
    started = desk.start("rita", "incident_management", {**INCIDENT, "assignee": "nina", "ticket_status": "closed"})
    assert "assignee" not in started["data"] or started["data"]["assignee"] is None
    record = desk.record(started["data"]["record_number"], "rita")
    assert record["assignee"] is None and record["status"] == "new"


def test_bad_change_and_problem_start_data_is_refused(desk: Desk):
    fields = refused_fields(desk, "change_enablement", {**CHANGE, "change_type": "urgent", "planned_start": "tomorrow",
                                                        "emergency_approval_window": "soon"})
    assert set(fields) == {"change_type", "planned_start", "emergency_approval_window"}
    fields = refused_fields(desk, "problem_management", {**PROBLEM, "related_incidents": 5})
    assert fields == {"related_incidents": ["must be a list"]}
    fields = refused_fields(desk, "problem_management", {**PROBLEM, "title": ["a list"]})
    assert fields == {"title": ["must be text"]}
    # a list typed into one text is still a list
    started = desk.start("alex", "problem_management", {**PROBLEM, "related_incidents": ""})
    assert started["status"] == "running" and started["data"]["related_incidents"] == []


def test_a_change_window_that_ends_before_it_starts_is_refused_at_start(desk: Desk):
    for end in ("2026-03-10T19:00:00Z", "2026-03-10T20:00:00Z", "2026-03-10T21:00:00+02:00"):
        fields = refused_fields(desk, "change_enablement", {**CHANGE, "planned_end": end})
        assert fields == {"planned_end": ["must be after Planned start"]}, end
    started = desk.start("alex", "change_enablement", {**CHANGE, "planned_end": "2026-03-10T23:00:00+02:00"})
    assert started["status"] == "running"


def test_any_deployed_process_with_a_start_form_is_validated(desk: Desk, services):
    olga = services.users.get_by_username("olga")
    form = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string", "maxLength": 20}}}
    services.definitions.deploy(olga, [*fixture_files(), ("simple_request.start.json", json.dumps(form).encode())])
    services.session.commit()
    assert refused_fields(desk, "simple_request", {"title": "x" * 21}) == {"title": ["must be at most 20 characters"]}
    started = desk.start("rita", "simple_request", {"title": "Chairs", "other": 1})
    assert started["data"]["title"] == "Chairs" and "other" not in started["data"]



def test_a_deploy_checks_start_forms_and_keeps_the_one_deployed_before(desk: Desk, services):
    olga = services.users.get_by_username("olga")
    form = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string", "maxLength": 20}}}
    services.definitions.deploy(olga, [*fixture_files(), ("simple_request.start.json", json.dumps(form).encode())])
    services.session.commit()
    broken = {
        "simple_request.start.json": [b'{"type": "object", "properties": {"x": {"type": "nope"}}}', b"[1, 2]",
                                      b"\xff not utf-8"],
        "simple_request.start.ui.json": [b'"a string"'],
        "orphan.start.ui.json": [b"{}"],
    }
    for name, contents in broken.items():
        for content in contents:
            with pytest.raises(ValidationFailed) as info:
                services.definitions.deploy(olga, [(name, content)])
            services.session.rollback()
            assert info.value.code == "invalid_definition" and info.value.details["file"] == name, content
    # Nothing of the refused deploys was stored: the first form still decides.
    assert refused_fields(desk, "simple_request", {"title": "x" * 21}) == {"title": ["must be at most 20 characters"]}


def test_a_start_form_stored_broken_refuses_starts_rather_than_letting_anything_through(desk: Desk, services):
    """Files stored before deploys checked start forms are checked again when they are used."""
    olga = services.users.get_by_username("olga")
    deployed = services.definitions.deploy(olga, fixture_files())
    services.session.add(DefinitionFile(name="simple_request.start.json", kind="form", sha256="0" * 64,
                                        content=b'{"type": "object", "properties": {"x": {"type": "nope"}}}',
                                        updated_at=services.runtime.clock.now(), deployment_id=deployed.deployment_id))
    services.session.commit()
    body = assert_error(post_start(desk, "simple_request", {"title": "Chairs"}), 422, "invalid_definition")
    assert body["details"]["file"] == "simple_request.start.json"


# -- task forms --------------------------------------------------------------------------------------


def test_a_cab_vote_comment_of_only_spaces_is_no_comment(desk: Desk):
    number = desk.start("alex", "change_enablement", CHANGE)["data"]["record_number"]
    desk.complete(number, "assess", "cora", ASSESS_MEDIUM)
    vote = desk.task_id(number, "cab_vote", "cab1")  # cab1's own vote

    def cast(comment: str) -> Any:
        return desk.client.post(f"/api/v1/tasks/{vote}/complete", headers=desk.auth("cab1"),
                                json={"data": {"approved": False, "approval_comment": comment}})

    # a rejection needs a reason (an approval needs none: forms/change-approve.json)
    bad = assert_error(cast(" \t\n "), 422, "validation_failed")
    assert bad["details"]["fields"] == {"approval_comment": ["is required when “Decision” is Reject"]}
    assert cast("No tested rollback.").status_code == 200


def test_the_schedule_and_the_revision_refuse_a_window_that_ends_before_it_starts(desk: Desk):
    standard = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "standard"})["data"]["record_number"]
    bad = desk.complete(standard, "schedule", "cora", {"planned_start": "2026-03-11T20:00:00Z",
                                                       "planned_end": "2026-03-11T19:30:00Z"}, status=422)
    assert bad["details"]["fields"] == {"planned_end": ["must be after Confirmed start"]}
    desk.complete(standard, "schedule", "cora", {"planned_start": "2026-03-11T20:00:00Z", "planned_end": "2026-03-11T21:30:00Z"})

    number = desk.start("alex", "change_enablement", CHANGE)["data"]["record_number"]
    desk.complete(number, "assess", "cora", ASSESS)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "Clashes with the freeze."})
    # only the end moved, before the window's current start
    notes = "Moved out of the freeze."
    bad = desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "revision_notes": notes,
                                                   "planned_end": "2026-03-10T19:00:00Z"}, status=422)
    assert bad["details"]["fields"] == {"planned_end": ["must be after Planned start"]}
    # both moved, the end before the start
    bad = desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "revision_notes": notes,
                                                   "planned_start": "2026-03-12T20:00:00Z",
                                                   "planned_end": "2026-03-12T19:00:00Z"}, status=422)
    assert bad["details"]["fields"] == {"planned_end": ["must be after Planned start"]}
    # only the start moved, past the window's current end: the window moves, keeping its length (the
    # Revise form's help; tests/services/test_change_window_rules.py)
    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "revision_notes": notes,
                                             "planned_start": "2026-03-12T20:00:00Z"})
    assert desk.record(number)["details"]["planned_end"] == "2026-03-12T22:00:00Z"


# -- reassignment ------------------------------------------------------------------------------------


def reassign(desk: Desk, task_id: int, username: str) -> Any:
    return desk.client.post(f"/api/v1/tasks/{task_id}/reassign", headers=desk.auth("ada"), json={"username": username})


def test_a_task_is_reassigned_only_to_someone_who_may_complete_it(desk: Desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(number, "triage")
    for username, reason in (("aude", "auditors read tasks but do not work on them"),
                             ("nina", "the task is not in one of the user's groups' lanes"),
                             ("rita", "the task is not in one of the user's groups' lanes")):
        body = assert_error(reassign(desk, triage, username), 422, "validation_failed")
        assert body["details"]["fields"] == {"username": [reason]}, username
    assert desk.record(number)["open_tasks"][0]["claimed_by"] is None
    assert_error(reassign(desk, triage, "nobody"), 404)

    moved = reassign(desk, triage, "alex")
    assert moved.status_code == 200 and moved.get_json()["claimed_by"] == "alex"
    moved = reassign(desk, triage, "ada")  # an admin may work a task claimed by them
    assert moved.status_code == 200 and moved.get_json()["claimed_by"] == "ada"
    desk.client.post(f"/api/v1/tasks/{triage}/complete", headers=desk.auth("ada"),
                     json={"data": {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}})
    assert desk.ready(number) == ["investigate"]


def test_a_task_is_not_reassigned_to_someone_its_separation_of_duties_excludes(desk: Desk):
    users = desk.services.users
    implementers = users.ensure_group("Implementers")
    implementers.members.append(users.get_by_username("cora"))  # she implements too
    # and cab1 is a change manager too: else the change would go to the CAB, nobody else being
    # eligible to decide it as a change manager
    users.add_member(None, "ChangeManagers", "cab1")
    desk.services.session.commit()
    number = desk.start("alex", "change_enablement", CHANGE)["data"]["record_number"]
    desk.complete(number, "assess", "cora", {**ASSESS, "implementer": "cora"})  # cora implements: she may not approve
    approve = desk.task_id(number, "manager_approve")
    body = assert_error(reassign(desk, approve, "cora"), 422, "validation_failed")
    assert body["details"]["fields"] == {
        "username": ["separation of duties: the requester and the implementer may not approve this change"]}
    assert desk.record(number)["open_tasks"][0]["claimed_by"] is None


def test_a_refused_reassignment_names_the_queue_the_task_is_in(desk: Desk):
    """Reassigning a task assigned to one person, or in a group's queue, says which."""
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    investigate = desk.task_id(number, "investigate")
    body = assert_error(reassign(desk, investigate, "alex"), 422, "validation_failed")
    assert body["details"]["fields"] == {
        "username": ["the task is in the NetworkTeam group's queue, and that is not one of the user's groups"]}
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Fixed",
                                                  "cause_category": "configuration"})
    confirm = desk.task_id(number, "confirm_resolution")
    body = assert_error(reassign(desk, confirm, "nina"), 422, "validation_failed")
    assert body["details"]["fields"] == {"username": ["the task is assigned to rita alone"]}
