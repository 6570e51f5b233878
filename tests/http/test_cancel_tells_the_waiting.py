"""Withdrawing or cancelling a record tells the people its open tasks waited on: QA found that a
line manager asked to approve a request heard nothing when the requester withdrew it, and the
approval simply vanished from her inbox."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.desk import LAPTOP, Desk


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def subjects(desk: Desk, who: str, number: str) -> list[str]:
    return [n["subject"] for n in desk.notifications(who) if number in n["subject"]]


def test_the_approver_hears_that_the_request_she_was_asked_about_was_withdrawn(desk: Desk):
    ordered = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert ordered.status_code == 201, ordered.get_json()
    number, instance_id = ordered.get_json()["number"], ordered.get_json()["instance_id"]
    assert desk.ready(number) == ["approve_manager"]
    before = subjects(desk, "mona", number)
    assert before and all("cancelled" not in s for s in before)  # asked to approve, nothing else yet
    withdrawn = desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth("rita"),
                                 json={"reason": "Found a spare one in the cupboard."})
    assert withdrawn.status_code == 200, withdrawn.get_json()
    told = [s for s in subjects(desk, "mona", number) if s not in before]
    assert told == [f"{number} cancelled: {desk.record(number)['title']}"]
    assert not [s for s in subjects(desk, "rita", number) if "cancelled" in s]  # not the one who withdrew


def test_a_claimant_hears_it_once_when_an_agent_cancels(desk: Desk):
    number = desk.start("rita", "incident_management", {
        "title": "VPN down", "description": "Cannot connect from home", "category": "network",
        "impact": "medium", "urgency": "medium"})["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    task_id = desk.task_id(number, "investigate")
    assert desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth("nina")).status_code == 200
    instance_id = desk.record(number)["instance_id"]
    cancelled = desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth("alex"),
                                 json={"reason": "Duplicate of another incident."})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert [s for s in subjects(desk, "nina", number) if "cancelled" in s] == [
        f"{number} cancelled: VPN down"]  # once, though she is also in the assignment group
