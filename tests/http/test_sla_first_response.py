"""A first response by comment: the first comment by staff stops a record's response clock at the
comment, met or breached, as a status change does; comments that answer nobody (the requester's,
the platform's, a non-staff user's) leave it running, and auditors cannot comment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import Ticket
from tests.http.desk import Desk

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium", "urgency": "medium"}
TRIAGE = {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"}
HOUR = 3600.0


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def clocks(desk: Desk, number: str) -> dict[str, dict]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("aude"))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["clocks"]}


def comment(desk: Desk, number: str, who: str, body: str, status: int = 201) -> None:
    response = desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth(who), json={"body": body})
    assert response.status_code == status, response.get_json()


def events(desk: Desk, number: str, kind: str) -> list[dict]:
    return [e for e in desk.history(desk.record(number)["instance_id"]) if e["type"] == kind]


def test_a_staff_comment_is_the_first_response_and_stops_the_response_clock(desk: Desk, clock):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]  # P3: response 4 h
    clock.advance(timedelta(minutes=30))
    comment(desk, number, "alex", "We are looking into it.")
    answered = clock.now()
    clock.advance(timedelta(hours=2))
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "met" and sla["response"]["elapsed_seconds"] == 30 * 60
    assert sla["response"]["due_at"] is None
    assert sla["resolution"]["state"] == "running" and sla["resolution"]["elapsed_seconds"] == 2.5 * HOUR
    assert desk.record(number)["first_response_at"] == answered.isoformat()
    # the history says so, as for any other clock event
    [stop] = events(desk, number, "sla_stop")
    assert stop["actor"] == "sla"
    assert (stop["payload"]["clocks"], stop["payload"]["reason"]) == (["response"], "first response: comment by alex")
    assert {"first_response_at": answered.isoformat()} in [e["payload"]["changes"] for e in events(desk, number, "record_updated")]

    # triage afterwards (the status leaves "new") is no second first response
    desk.complete(number, "triage", "alex", TRIAGE)
    comment(desk, number, "nina", "Replaced the fuser.")
    assert len(events(desk, number, "sla_stop")) == 1
    assert clocks(desk, number)["response"]["elapsed_seconds"] == 30 * 60
    assert desk.record(number)["first_response_at"] == answered.isoformat()


def test_a_late_first_comment_stops_the_response_clock_breached(desk: Desk, services, clock):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clock.advance(timedelta(hours=5))  # past the 4 h response target
    comment(desk, number, "nina", "Sorry for the wait: on my way.")
    clock.advance(timedelta(hours=3))
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "breached" and sla["response"]["elapsed_seconds"] == 5 * HOUR
    assert sla["response"]["breached_at"].startswith((clock.now() - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"))
    # the stored clock is stopped too: the sweep escalates the breach once and then leaves it
    assert services.sla.sweep()["breaches"] == 1
    assert services.sla.sweep()["breaches"] == 0


def test_comments_that_answer_nobody_leave_the_response_clock_running(desk: Desk, services, clock):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clock.advance(timedelta(minutes=10))
    comment(desk, number, "rita", "It is urgent, please.")  # the requester's own
    comment(desk, number, "aude", "Noted.", status=403)  # auditors do not write
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    # the platform's (a problem's note copied onto its incidents) and a user without a staff role
    services.records.add_comment(None, ticket, "A workaround is known: see PRB-000001.", author_name="PRB-000001")
    services.users.create_user("rick", "password-1234", roles=["requester"], groups=["NetworkTeam"])
    services.records.add_comment(services.users.get_by_username("rick"), ticket, "Same here.")
    services.session.commit()
    clock.advance(timedelta(hours=1))
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "running" and sla["response"]["elapsed_seconds"] == 70 * 60
    assert desk.record(number)["first_response_at"] is None
    assert events(desk, number, "sla_stop") == []

    desk.complete(number, "triage", "alex", TRIAGE)  # the status change still is a first response
    [stop] = events(desk, number, "sla_stop")
    assert stop["payload"]["reason"] == "first response"
    assert clocks(desk, number)["response"]["state"] == "met"


def test_a_problem_answered_before_its_priority_is_set_has_its_response_met_when_the_clocks_start(desk: Desk, clock):
    """A problem has no priority, so no clocks, until triage: a staff comment before that is still
    its first response. The clocks start at triage, from the record's opening, with that response
    given (QA: the response clock ran on from triage and breached, as if nobody had answered)."""
    problem = {"title": "VPN tunnels drop every morning", "description": "Between 08:30 and 09:00."}
    number = desk.start("alex", "problem_management", problem)["data"]["record_number"]
    clock.advance(timedelta(minutes=20))
    comment(desk, number, "paul", "Collecting the gateway logs.")
    clock.advance(timedelta(minutes=40))
    desk.complete(number, "triage", "paul", {"priority": "P2", "category": "network", "assignment_group": "NetworkTeam",
                                              "triage_notes": "Recurring."})  # P2: response 1 h, resolution 8 h
    clock.advance(timedelta(hours=3))
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "met" and sla["response"]["elapsed_seconds"] == 20 * 60
    assert sla["response"]["due_at"] is None and sla["response"]["breached_at"] is None
    assert sla["resolution"]["state"] == "running" and sla["resolution"]["elapsed_seconds"] == 4 * HOUR
    [stop] = events(desk, number, "sla_stop")
    assert stop["payload"]["clocks"] == ["response"]
