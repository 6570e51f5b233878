"""Start rights per process, through the API.

Who may start a process is declared beside its diagram in ``<process_id>.access.json``
(``{"start_roles": [...]}``); without one every starter role may. The shipped problem_management
and change_enablement are started by the desk's staff (agents, process owners, admins), incidents
and catalog requests by every starter. A diagram starting a process for someone (the
``start_process`` operator) is not checked. The hidden fields of a start form keep their defaults
when anyone but staff starts the process.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.errors import PermissionDenied
from app.models import AuditEvent, ProcessInstance, Ticket
from tests.conftest import fixture_files
from tests.http import test_start_forms as start_forms
from tests.http.desk import Desk
from tests.http.helpers import assert_error, upload

# The start forms' own examples; the change is an emergency one, whose window is a hidden field.
CHANGE = {**start_forms.CHANGE, "change_type": "emergency"}
INCIDENT, PROBLEM = start_forms.INCIDENT, start_forms.PROBLEM
STARTS = {"problem_management": PROBLEM, "change_enablement": CHANGE, "incident_management": INCIDENT}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def post_start(desk: Desk, who: str, process_id: str, data: dict[str, Any]) -> Any:
    return desk.client.post("/api/v1/instances", headers=desk.auth(who), json={"process_id": process_id, "data": data})


def stored(desk: Desk) -> tuple[int, int]:
    session = desk.services.session
    return (session.scalar(select(func.count()).select_from(ProcessInstance)) or 0,
            session.scalar(select(func.count()).select_from(Ticket)) or 0)


def start_refusals(desk: Desk) -> list[tuple[str, str, str | None]]:
    rows = desk.services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")
                                         .order_by(AuditEvent.seq))
    return [(row.actor, row.payload["reason"], row.payload.get("process_id")) for row in rows
            if row.payload.get("action") == "start"]


def deploy(desk: Desk, *files: tuple[str, bytes]) -> Any:
    olga = desk.services.users.get_by_username("olga")
    result = desk.services.definitions.deploy(olga, list(files))
    desk.services.session.commit()
    return result


@pytest.mark.parametrize("process_id", ["problem_management", "change_enablement"])
def test_a_requester_may_not_start_a_problem_or_a_change_and_is_audited(desk: Desk, process_id: str):
    before = stored(desk)
    body = assert_error(post_start(desk, "rita", process_id, STARTS[process_id]), 403, "forbidden")
    assert body["message"] == f"your roles do not allow starting {process_id}"
    assert body["details"] == {"process_id": process_id, "start_roles": ["agent", "process_owner", "admin"]}
    assert stored(desk) == before  # nothing stored, no record number used up
    assert start_refusals(desk) == [("rita", "not a starter of this process", process_id)]


@pytest.mark.parametrize("process_id", ["problem_management", "change_enablement"])
def test_approvers_do_not_raise_problems_or_changes_either(desk: Desk, process_id: str):
    # as the header has always shown them: the links to raise them are for agents, process owners, admins
    for who in ("mona", "cora"):
        assert_error(post_start(desk, who, process_id, STARTS[process_id]), 403, "forbidden")


@pytest.mark.parametrize("process_id", ["problem_management", "change_enablement"])
def test_staff_start_problems_and_changes(desk: Desk, process_id: str):
    for who in ("alex", "olga", "ada"):
        response = post_start(desk, who, process_id, STARTS[process_id])
        assert response.status_code == 201, (who, response.get_json())
        assert response.get_json()["status"] == "running"
    assert start_refusals(desk) == []


def test_every_starter_reports_an_incident_and_an_auditor_none(desk: Desk):
    for who in ("rita", "mona", "cora", "alex"):
        assert post_start(desk, who, "incident_management", INCIDENT).status_code == 201, who
    assert_error(post_start(desk, "aude", "incident_management", INCIDENT), 403, "forbidden")
    assert start_refusals(desk) == [("aude", "no starter role", "incident_management")]


def test_a_requesters_incident_still_raises_a_problem(desk: Desk):
    # even with nobody allowed to raise problems by hand: the diagram starts it, unchecked
    deploy(desk, ("problem_management.access.json", b'{"start_roles": []}'))
    assert_error(post_start(desk, "ada", "problem_management", PROBLEM), 403, "forbidden")
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "vendor", "pending_reason": "x",
                                                  "raise_problem": True})
    assert [(link["kind"], link["number"]) for link in desk.record(number)["links"]] == [("problem", "PRB-000001")]
    assert desk.record("PRB-000001")["status"] in ("new", "triage")


def test_a_system_start_on_a_requesters_behalf_is_not_checked(desk: Desk, services):
    rita = services.users.get_by_username("rita")
    with pytest.raises(PermissionDenied):
        services.instances.start_process(rita, "problem_management", PROBLEM)
    services.session.rollback()
    instance = services.instances.start_process(rita, "problem_management", PROBLEM, as_system=True)
    assert instance.started_by_id == rita.id and instance.status == "running"


# -- the declaration -------------------------------------------------------------------------------


def test_a_process_deployed_later_declares_its_starters_beside_its_diagram(desk: Desk):
    deploy(desk, *fixture_files())
    assert post_start(desk, "rita", "simple_request", {}).status_code == 201  # no declaration: every starter
    version = desk.services.definitions.latest("simple_request").version
    deploy(desk, ("simple_request.access.json", b'{"start_roles": ["approver"]}'))
    assert_error(post_start(desk, "rita", "simple_request", {}), 403, "forbidden")
    assert_error(post_start(desk, "alex", "simple_request", {}), 403, "forbidden")
    assert post_start(desk, "mona", "simple_request", {}).status_code == 201
    # who may start is no part of the process's behaviour: no new version for it
    assert desk.services.definitions.latest("simple_request").version == version
    # and a process owner opens problems to requesters the same way
    deploy(desk, ("problem_management.access.json", b'{"start_roles": ["requester", "agent"]}'))
    assert post_start(desk, "rita", "problem_management", PROBLEM).status_code == 201


@pytest.mark.parametrize("content", [
    b'{"start_roles": ["auditor"]}', b'{"start_roles": ["nobody"]}', b'{"start_roles": "agent"}',
    b'{"start_role": ["agent"]}', b"{}", b"[]", b"not json",
])
def test_a_broken_declaration_is_refused_at_deploy(desk: Desk, content: bytes):
    response = upload(desk.client, desk.auth("olga"), [("problem_management.access.json", content)])
    body = assert_error(response, 422, "invalid_definition")
    assert body["details"]["file"] == "problem_management.access.json"
    # the shipped declaration still decides
    assert_error(post_start(desk, "rita", "problem_management", PROBLEM), 403, "forbidden")


# -- hidden start-form fields ----------------------------------------------------------------------


def test_a_requester_cannot_set_a_hidden_start_field(desk: Desk):
    # auto_close_after is hidden on the start form: a requester's value is ignored, not refused
    for value in ("PT1S", "PT0S", "P52W"):
        started = desk.start("rita", "incident_management", {**INCIDENT, "auto_close_after": value})
        assert started["data"]["auto_close_after"] == "P3D", value  # the diagram's default
    # staff (an integration's agent account) set it, and a bad value is refused
    started = desk.start("alex", "incident_management", {**INCIDENT, "auto_close_after": "PT48H"})
    assert started["data"]["auto_close_after"] == "PT48H"
    body = assert_error(post_start(desk, "alex", "incident_management", {**INCIDENT, "auto_close_after": "PT0S"}),
                        422, "validation_failed")
    assert set(body["details"]["fields"]) == {"auto_close_after"}


def test_a_requester_allowed_to_raise_changes_still_gets_the_default_emergency_window(desk: Desk):
    deploy(desk, ("change_enablement.access.json", b'{"start_roles": ["requester", "agent"]}'))
    started = desk.start("rita", "change_enablement", {**CHANGE, "emergency_approval_window": "P52W"})
    assert started["data"]["emergency_approval_window"] == "PT4H"
    started = desk.start("alex", "change_enablement", {**CHANGE, "emergency_approval_window": "PT1H"})
    assert started["data"]["emergency_approval_window"] == "PT1H"
