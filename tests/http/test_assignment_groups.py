"""Triage offers every group that can work a record: ``options_from_groups:with_agents``.

The incident and problem triage forms once listed four groups; a group an admin creates (with an
agent in it) is now offered and gets the record's work, and a group nobody works (no member, only
approvers, or its only agent left or deactivated) is neither offered nor accepted, on the API as on
the pages.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.desk import Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "Printer jams on floor 2", "description": "Every second page jams", "category": "hardware",
            "impact": "low", "urgency": "medium"}
PROBLEM = {"title": "Mail queue stalls at night", "description": "Outbound mail waits until 07:00."}
NOT_OFFERED = "is not a group with an active agent; must be one of: "


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def admin(desk: Desk, method: str, path: str, **body: Any) -> dict[str, Any]:
    response = getattr(desk.client, method)(f"/api/v1{path}", headers=desk.auth("ada"), json=body or None)
    assert response.status_code in (200, 201), (path, response.status_code, response.get_json())
    return response.get_json()  # type: ignore[no-any-return]


def offered(desk: Desk, task_id: int, who: str) -> dict[str, str]:
    """The assignment groups the task's form offers: value -> title."""
    response = desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    field = response.get_json()["form_schema"]["properties"]["assignment_group"]
    return {choice["const"]: choice["title"] for choice in field["oneOf"]}


def complete(desk: Desk, task_id: int, who: str, data: dict[str, Any]) -> Any:
    return desk.client.post(f"/api/v1/tasks/{task_id}/complete", headers=desk.auth(who), json={"data": data})


def test_a_group_an_admin_creates_is_offered_once_it_has_an_agent_and_gets_the_incident(desk: Desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(number, "triage", "alex")
    groups = offered(desk, triage, "alex")
    # every shipped group that has an agent, not only the four the form once listed; no approvers' group
    assert {"ServiceDesk", "NetworkTeam", "MessagingTeam", "IdentityTeam", "Facilities", "ProblemManagers"} <= set(groups)
    assert not {"CAB", "BudgetOwners", "LineManagers", "Requesters"} & set(groups)
    assert list(groups) == sorted(groups, key=str.lower)

    admin(desk, "post", "/groups", name="PrintTeam", description="Printers and scanners")
    assert "PrintTeam" not in offered(desk, triage, "alex")  # nobody works it yet
    admin(desk, "post", "/users", username="pia", password="password-1234", roles=["agent"], groups=["PrintTeam"])
    groups = offered(desk, triage, "alex")
    assert groups["PrintTeam"] == "PrintTeam – Printers and scanners" and groups["MessagingTeam"] == "MessagingTeam"
    response = desk.client.get(f"/api/v1/tasks/{triage}", headers=desk.auth("alex")).get_json()
    assert response["form_schema"]["properties"]["assignment_group"]["default"] == "ServiceDesk"

    done = complete(desk, triage, "alex", {"category": "hardware", "priority": "P3", "assignment_group": "PrintTeam"})
    assert done.status_code == 200, done.get_json()
    assert desk.record(number)["assignment_group"] == "PrintTeam"
    # the investigation waits in PrintTeam's queue: pia's inbox, not the desk's or the network team's
    investigate = desk.task_id(number, "investigate", "pia")
    for outsider in ("alex", "nina"):
        assert_error(desk.client.get(f"/api/v1/tasks/{investigate}", headers=desk.auth(outsider)), 404)
    desk.complete(number, "investigate", "pia", {"outcome": "resolve", "resolution_notes": "Replaced the roller",
                                                  "cause_category": "hardware_failure"})
    assert desk.record(number)["status"] == "resolved"


def test_a_group_without_an_active_agent_is_not_offered_and_is_refused_beside_the_field(desk: Desk):
    admin(desk, "post", "/groups", name="NightShift")
    admin(desk, "post", "/users", username="nick", password="password-1234", roles=["agent"], groups=["NightShift"])
    admin(desk, "post", "/groups", name="Printers")
    admin(desk, "post", "/users", username="pete", password="password-1234", roles=["agent"], groups=["Printers"])
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(number, "triage", "alex")
    assert {"NightShift", "Printers"} <= set(offered(desk, triage, "alex"))

    # the form was shown with both; then NightShift's only agent leaves and Printers loses its member
    admin(desk, "post", "/users/nick/deactivate")
    admin(desk, "delete", "/groups/Printers/members/pete")
    groups = offered(desk, triage, "alex")
    assert not {"NightShift", "Printers"} & set(groups) and "MessagingTeam" in groups
    for gone in ("NightShift", "Printers", "CAB", "Nobody"):
        body = assert_error(complete(desk, triage, "alex", {"category": "hardware", "priority": "P3",
                                                            "assignment_group": gone}), 422)
        fields = body["details"]["fields"]
        assert list(fields) == ["assignment_group"], fields
        assert fields["assignment_group"][0].startswith(gone + " " + NOT_OFFERED), fields
        assert "MessagingTeam" in fields["assignment_group"][0] and gone not in fields["assignment_group"][0][len(gone):]
    assert desk.ready(number) == ["triage"] and desk.record(number)["assignment_group"] is None


def test_problem_triage_offers_any_group_with_an_agent_and_routes_the_analysis_there(desk: Desk):
    number = desk.start("paul", "problem_management", PROBLEM)["data"]["record_number"]
    triage = desk.task_id(number, "triage", "paul")
    groups = offered(desk, triage, "paul")
    assert {"MessagingTeam", "Facilities", "NetworkTeam"} <= set(groups) and "CAB" not in groups
    body = assert_error(complete(desk, triage, "paul", {"priority": "P3", "category": "system",
                                                        "assignment_group": "EmergencyCAB"}), 422)
    assert body["details"]["fields"]["assignment_group"][0].startswith("EmergencyCAB " + NOT_OFFERED)

    desk.complete(number, "triage", "paul", {"priority": "P3", "category": "system", "assignment_group": "MessagingTeam"})
    assert desk.record(number)["assignment_group"] == "MessagingTeam"
    analysis = desk.task_id(number, "analyse_root_cause", "ivan")  # ivan works MessagingTeam's queue
    for outsider in ("nina", "paul"):
        assert_error(desk.client.get(f"/api/v1/tasks/{analysis}", headers=desk.auth(outsider)), 404)
