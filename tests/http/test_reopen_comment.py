"""A requester's reason for reopening an incident reaches the record as her comment (the
mapping's ``comments``), however she gives it and however often."""

from __future__ import annotations

import pytest

from tests.http.desk import Desk

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def resolved_incident(desk: Desk) -> str:
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    resolve(desk, number)
    return number


def resolve(desk: Desk, number: str) -> None:
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Restarted the concentrator",
                                                  "cause_category": "configuration"})


def comments(desk: Desk, number: str, who: str = "nina") -> list[tuple[str, str]]:
    response = desk.client.get(f"/api/v1/tickets/{number}/comments", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return [(c["author"], c["body"]) for c in response.get_json()["items"]]


def test_the_reason_given_when_answering_becomes_the_requesters_comment_each_time(desk: Desk):
    number = resolved_incident(desk)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "still broken"})
    assert desk.record(number)["status"] == "in_progress"
    assert comments(desk, number) == [("rita", "still broken")]
    # the same words the next time are a new comment: it is a new answer
    resolve(desk, number)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "still broken"})
    assert comments(desk, number) == [("rita", "still broken"), ("rita", "still broken")]
    # confirming with a comment closes the record and keeps the comment (no reason, but said)
    resolve(desk, number)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "comment": "works now"})
    assert desk.record(number)["status"] == "closed"
    assert comments(desk, number, "rita") == [("rita", "still broken"), ("rita", "still broken"), ("rita", "works now")]


def test_a_no_without_a_reason_is_refused_and_adds_no_comment(desk: Desk, services):
    number = resolved_incident(desk)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False}, status=422)
    assert comments(desk, number) == [] and desk.record(number)["status"] == "resolved"
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "Still cannot connect"})
    assert comments(desk, number) == [("rita", "Still cannot connect")]
    types = [e["type"] for e in desk.history(desk.record(number)["instance_id"])]
    assert "comment_added" in types
