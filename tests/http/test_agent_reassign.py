"""Agents hand a task of their own group's queue to a colleague (QA: only admins could reassign,
so a claim held by an agent on leave stopped the work until an admin came by). Not a task
assigned to someone by name, not one of another group's queue, not as a non-agent."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import open_incident, triage


@pytest.fixture()
def desk(client, services) -> Desk:
    desk = Desk(client, services)
    services.users.create_user("nils", "password-1234", roles=["agent"], groups=["NetworkTeam"])
    services.session.commit()
    return desk


def reassign(desk: Desk, task_id: int, who: str, to: str) -> Any:
    return desk.client.post(f"/api/v1/tasks/{task_id}/reassign", headers=desk.auth(who), json={"username": to})


def test_an_agent_hands_a_colleagues_claimed_task_to_another_member(desk: Desk, services):
    number, _ = open_incident(desk)
    triage(desk, number)  # to NetworkTeam
    task_id = desk.task_id(number, "investigate", "nina")
    assert desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth("nina")).status_code == 200
    moved = reassign(desk, task_id, "nils", "nils")  # nina is away: nils takes it over
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["claimed_by"] == "nils"
    [event] = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_reassigned")).all()
    assert event.actor == "nils" and event.payload["to"] == "nils"
    # and back to nina, by nils; never to someone outside the group
    assert reassign(desk, task_id, "nils", "nina").status_code == 200
    refused = assert_error(reassign(desk, task_id, "nina", "alex"), 422)
    assert "group" in refused["details"]["fields"]["username"][0]


def test_who_may_not_reassign(desk: Desk):
    number, _ = open_incident(desk)
    triage(desk, number)
    work = desk.task_id(number, "investigate", "nina")
    assert_error(reassign(desk, work, "alex", "alex"), 404)  # ServiceDesk: not his group's task, not visible
    assert_error(reassign(desk, work, "aude", "nina"), 403)  # sees it, works nothing

def test_a_task_waiting_for_someone_by_name_is_not_an_agents_to_hand_on(desk: Desk, services):
    from app.services import policy
    number, _ = open_incident(desk)
    triage(desk, number)
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Restarted the tunnel",
                                                   "cause_category": "configuration"})
    confirm = desk.task_id(number, "confirm_resolution")
    task = services.tasks.get(services.users.get_by_username("ada"), confirm)
    assert task.assigned_user == "rita"
    for agent in ("nina", "alex", "nils"):
        assert not policy.may_reassign(services.users.get_by_username(agent), task), agent
    assert policy.may_reassign(services.users.get_by_username("ada"), task)


def test_an_agent_reassigns_no_task_under_separation_of_duties(desk: Desk, services):
    """Review: an agent in the change managers' group took the claim of his own change's
    approval from a colleague and handed it to an approver he chose."""
    from tests.http.test_e2e_change import ASSESS_LOW, raise_change
    services.users.create_user("zed", "password-1234", roles=["agent", "requester"], groups=["ChangeManagers"])
    services.users.create_user("cody", "password-1234", roles=["approver"], groups=["ChangeManagers"])
    services.session.commit()
    number, _ = raise_change(desk, who="zed")
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    approval = desk.task_id(number, "manager_approve", "cora")
    assert desk.client.post(f"/api/v1/tasks/{approval}/claim", headers=desk.auth("cora")).status_code == 200
    assert_error(reassign(desk, approval, "zed", "cody"), 403)
    assert desk.client.get(f"/api/v1/tasks/{approval}", headers=desk.auth("ada")).get_json()["claimed_by"] == "cora"
    assert reassign(desk, approval, "ada", "cody").status_code == 200  # an admin still may


def test_a_caller_who_may_not_reassign_learns_no_usernames(desk: Desk):
    """QA: "no user ghost" (404) against "no task 1" (404) told any requester which names exist."""
    number, _ = open_incident(desk)
    triage(desk, number)
    work = desk.task_id(number, "investigate", "nina")
    real = assert_error(reassign(desk, work, "rita", "olga"), 404)
    made_up = assert_error(reassign(desk, work, "rita", "ghost-of-nobody"), 404)
    assert real == made_up  # the same answer: the task's
    assert "no task" in real["message"]
    refused = assert_error(reassign(desk, work, "aude", "ghost-of-nobody"), 403)  # sees it, may not: 403 first
    assert "ghost" not in refused["message"]
    assert "no user ghost-of-nobody" in assert_error(reassign(desk, work, "ada", "ghost-of-nobody"), 404)["message"]


def test_an_agent_cannot_tell_an_unknown_name_from_someone_outside_the_group(desk: Desk):
    """Security review: an agent who may reassign a task got 404 "no user X" for a made-up name and
    422 "not one of the user's groups" for a real user outside the group: the reassign form listed
    the directory to anyone who may hand on one task. Both now answer alike (an admin, who reads
    the directory, is still told the name is unknown)."""
    number, _ = open_incident(desk)
    triage(desk, number)
    work = desk.task_id(number, "investigate", "nina")
    real = assert_error(reassign(desk, work, "nils", "olga"), 422)  # olga exists, in no group of the task
    made_up = assert_error(reassign(desk, work, "nils", "ghost-of-nobody"), 422)
    assert real["details"] == made_up["details"]
    assert real["message"].replace("olga", "X") == made_up["message"].replace("ghost-of-nobody", "X")
    assert "not one of the user's groups" in made_up["details"]["fields"]["username"][0]


def test_an_agent_hands_work_on_within_the_team_only(desk: Desk):
    """QA: an agent handed a ServiceDesk task to an admin outside the group."""
    number, _ = open_incident(desk)
    triage(desk, number)
    work = desk.task_id(number, "investigate", "nina")
    refused = assert_error(reassign(desk, work, "nils", "ada"), 422)
    assert refused["details"]["fields"]["username"] == [
        "the task is in the NetworkTeam group's queue, and that is not one of the user's groups"]
    assert reassign(desk, work, "ada", "ada").status_code == 200  # an admin may take it
