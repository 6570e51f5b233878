"""A claim the claimant can no longer complete goes back to the queue when an admin takes them
out of the task's group (group membership or the user's group list) or changes their roles so
that they may not work it: before, the task stayed claimed, out of the group's queue, and its
claimant was refused on completing it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.http.desk import Desk

PROBLEM = {"title": "VPN tunnels drop every morning",
           "description": "Home workers lose the VPN tunnel between 08:30 and 09:00."}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def claimed_triage(desk: Desk, services: Any, who: str) -> tuple[str, int]:
    number = desk.start("alex", "problem_management", PROBLEM)["data"]["record_number"]
    task_id = desk.task_id(number, "triage")
    assert desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth(who)).status_code == 200
    return number, task_id


def claimant(desk: Desk, task_id: int) -> Any:
    return desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth("aude")).get_json()["claimed_by"]


def a_problem_manager(services: Any) -> str:
    members = sorted(m.username for m in services.users.find_group("ProblemManagers").members
                     if not m.has_role("admin"))
    assert members, "the desk has a problem manager"
    return members[0]


def test_leaving_the_group_releases_the_claim(desk: Desk, services: Any):
    who = a_problem_manager(services)
    _number, task_id = claimed_triage(desk, services, who)
    assert claimant(desk, task_id) == who
    assert desk.client.delete(f"/api/v1/groups/ProblemManagers/members/{who}", headers=desk.auth("ada")).status_code in (200, 204)
    assert claimant(desk, task_id) is None
    services.session.expire_all()
    [event] = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_unclaimed",
                                                                AuditEvent.task_id == task_id)).all()
    assert event.payload["reason"] == "left_group" and event.payload["previous_claimant"] == who


def test_a_new_group_list_releases_only_the_claims_it_ends(desk: Desk, services: Any):
    who = a_problem_manager(services)
    _number, task_id = claimed_triage(desk, services, who)
    groups = sorted(services.users.get_by_username(who).group_names)
    # a change that keeps the group keeps the claim
    kept = desk.client.patch(f"/api/v1/users/{who}", headers=desk.auth("ada"), json={"groups": [*groups, "CAB"]})
    assert kept.status_code == 200, kept.get_json()
    assert claimant(desk, task_id) == who
    dropped = desk.client.patch(f"/api/v1/users/{who}", headers=desk.auth("ada"),
                                json={"groups": [g for g in groups if g != "ProblemManagers"]})
    assert dropped.status_code == 200, dropped.get_json()
    assert claimant(desk, task_id) is None


def test_becoming_a_read_only_auditor_releases_the_claim(desk: Desk, services: Any):
    who = a_problem_manager(services)
    _number, task_id = claimed_triage(desk, services, who)
    assert desk.client.patch(f"/api/v1/users/{who}", headers=desk.auth("ada"),
                             json={"roles": ["auditor"]}).status_code == 200
    assert claimant(desk, task_id) is None
