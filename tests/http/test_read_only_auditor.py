"""A read-only auditor (the auditor role and no working role) works no task, however a task
reaches them: as a line manager's approval, as a member of a group's queue, or as a group's vote.

Before, ``policy.is_candidate`` came first: an auditor named someone's line manager approved their
catalog request, and one added to a group claimed and completed its tasks, while the same auditor
was refused a comment as read-only.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.services.catalog import CatalogService
from app.services.users import group_members
from tests.http.desk import LAPTOP, Desk

PROBLEM = {"title": "VPN tunnels drop every morning",
           "description": "Home workers lose the VPN tunnel between 08:30 and 09:00."}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def test_an_auditor_cannot_be_named_a_line_manager(desk: Desk):
    response = desk.client.patch("/api/v1/users/rita", headers=desk.auth("ada"), json={"manager": "aude"})
    assert response.status_code == 422, response.get_json()
    assert "approves nothing" in response.get_json()["details"]["fields"]["manager"][0]
    # a group's manager is only told of breaches: an auditor may be one
    assert desk.client.patch("/api/v1/groups/ServiceDesk", headers=desk.auth("ada"),
                             json={"manager": "aude"}).status_code == 200


def test_a_request_of_someone_whose_manager_is_an_auditor_goes_to_the_budget_owners(desk: Desk, services: Any):
    services.users.set_manager("rita", "aude")  # stored before the rule (the command line sets it unchecked)
    services.session.commit()
    rita = services.users.get_by_username("rita")
    assert CatalogService.expected_approval("manager", 950, rita) == ("budget_owner", None)
    response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert response.status_code == 201, response.get_json()
    number = response.get_json()["number"]
    assert desk.record(number)["details"]["approval"] == "budget_owner" and desk.ready(number) == ["approve_budget"]


def test_an_auditor_in_a_group_neither_claims_nor_completes_its_tasks(desk: Desk, services: Any):
    assert desk.client.post("/api/v1/groups/ProblemManagers/members", headers=desk.auth("ada"),
                            json={"username": "aude"}).status_code == 200
    number = desk.start("alex", "problem_management", PROBLEM)["data"]["record_number"]
    task_id = desk.task_id(number, "triage")
    for tab in ("?mine=1", ""):
        inbox = desk.client.get(f"/api/v1/tasks{tab}", headers=desk.auth("aude")).get_json()
        assert inbox["items"] == [] and inbox["total"] == 0  # nothing she may work on
    claim = desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth("aude"))
    assert claim.status_code == 403 and "auditors read tasks" in claim.get_json()["message"]
    done = desk.client.post(f"/api/v1/tasks/{task_id}/complete", headers=desk.auth("aude"),
                            json={"data": {"priority": "P2", "category": "network", "assignment_group": "NetworkTeam"}})
    assert done.status_code == 403 and "auditors read tasks" in done.get_json()["message"]
    assert desk.ready(number) == ["triage"]
    # she still reads it, and a member with a working role still does it
    assert desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth("aude")).status_code == 200
    assert "aude" not in [name for name, _ in group_members(services.session, "ProblemManagers")]
    assert group_members(services.session, "ProblemManagers")  # the others are offered
