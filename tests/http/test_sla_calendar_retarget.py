"""A priority change onto a policy with another business calendar never lifts a breach.

The clocks of a re-targeted record are measured from its start under the calendar now in force
(a retroactive start), so a breach that happened under the earlier priority's calendar may not
show under the new one: 5 wall-clock hours on a Saturday are 5 hours on a 24x7 calendar and none
on an office calendar. A breach is a fact (app/services/sla.py, "A breach is a fact"): the change
records the breaches that had happened as ``breach`` events, so the clocks stay "breached" with
their first breach instant, in the record's clocks, the stored rows and compliance, while the
clocks that had not breached take the new target and calendar (and may breach under them).

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (the usual fixtures).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from app.models import SlaClock, SlaEvent, Ticket
from tests.http.desk import Desk

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium", "urgency": "medium"}
HOUR = 3600.0
SATURDAY = datetime(2026, 1, 10, 8, 0, tzinfo=timezone.utc)
OFFICE = {"timezone": "UTC", "hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
          "holidays": []}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def office_p2(desk: Desk) -> None:
    """P2 incidents: respond within 1 business hour, resolve within 8, Monday to Friday 09-17 UTC."""
    body = {"kind": "incident", "priority": "P2", "response_seconds": 3600, "resolution_seconds": 8 * 3600,
            "calendar": OFFICE, "pause_statuses": ["pending"]}
    response = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=body)
    assert response.status_code == 200, response.get_json()


def clocks(desk: Desk, number: str) -> dict[str, dict[str, Any]]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["clocks"]}


def stored(services: Any, ticket: Ticket) -> dict[str, SlaClock]:
    services.session.expire_all()
    return {row.name: row for row in services.session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket.id))}


def retarget(services: Any, number: str, priority: str) -> Ticket:
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    ticket.priority = priority
    services.sla.track(ticket, {"priority": priority})
    services.session.commit()
    return ticket


def breach_events(services: Any, ticket: Ticket) -> list[str]:
    return [name for e in services.session.scalars(select(SlaEvent).where(SlaEvent.ticket_id == ticket.id,
                                                                         SlaEvent.kind == "breach").order_by(SlaEvent.id))
            for name in e.clocks or []]


def compliance(desk: Desk) -> dict[str, dict[str, Any]]:
    response = desk.client.get("/api/v1/sla/compliance?kind=incident", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {row["name"]: row for row in response.get_json()["clocks"]}

#: P3 incidents: respond within 4 business hours, resolve within 24, Monday to Friday 09-17 UTC.
OFFICE_P3 = {"kind": "incident", "priority": "P3", "response_seconds": 4 * 3600, "resolution_seconds": 24 * 3600,
             "calendar": OFFICE, "pause_statuses": ["pending"]}


def met_under_office_hours(desk: Desk, clock: Any) -> str:
    """An incident under OFFICE_P3 opened on a Friday at 16:00 and answered on Monday at 10:00: two
    office hours, its response met (a 24x7 calendar would count 42 hours)."""
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=OFFICE_P3).status_code == 200
    clock.set(datetime(2026, 1, 9, 16, 0, tzinfo=timezone.utc))  # Friday 16:00
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clock.set(datetime(2026, 1, 12, 10, 0, tzinfo=timezone.utc))  # Monday 10:00: 2 office hours later
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    assert clocks(desk, number)["response"]["state"] == "met"
    return number



@pytest.mark.parametrize("swept", [True, False], ids=["escalated", "not-yet-swept"])
def test_a_breach_under_the_old_calendar_stays_after_a_change_to_an_office_calendar(desk: Desk, services, clock, swept):
    office_p2(desk)
    clock.set(SATURDAY)
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]  # P3, 24x7: respond in 4 h
    clock.advance(timedelta(hours=5))  # Saturday 13:00: the response breached at 12:00
    if swept:
        assert services.sla.sweep()["breaches"] == 1
    assert clocks(desk, number)["response"]["state"] == "breached"

    ticket = retarget(services, number, "P2")  # office hours: no business time has passed yet
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "breached"
    assert sla["response"]["breached_at"].startswith("2026-01-10T12:00")
    assert sla["response"]["target_seconds"] == HOUR  # the priority's target now, as the module doc says
    # the resolution clock had not breached: it takes P2's target on the office calendar
    assert sla["resolution"]["state"] == "running" and sla["resolution"]["target_seconds"] == 8 * HOUR
    assert sla["resolution"]["elapsed_seconds"] == 0 and sla["resolution"]["due_at"].startswith("2026-01-13T09:00")  # used up at Monday 17:00
    rows = stored(services, ticket)
    assert rows["response"].state == "breached" and rows["response"].breached_at.replace(tzinfo=timezone.utc) == (
        SATURDAY + timedelta(hours=4))
    assert compliance(desk)["response"]["breached"] == 1 and compliance(desk)["response"]["met"] == 0
    # escalated once: the kept breach is not a new one
    clock.advance(timedelta(minutes=5))
    assert services.sla.sweep()["breaches"] == (0 if swept else 1)
    assert services.sla.sweep()["breaches"] == 0
    # the fact is in the record's events, so later changes and replays keep it
    assert breach_events(services, ticket) == ["response"]
    retarget(services, number, "P3")
    retarget(services, number, "P2")
    assert clocks(desk, number)["response"]["state"] == "breached"
    assert breach_events(services, ticket) == ["response"]  # recorded once


def test_a_stopped_clock_that_breached_stays_breached_under_the_new_calendar(desk: Desk, services, clock):
    office_p2(desk)
    clock.set(SATURDAY)
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clock.advance(timedelta(hours=5))
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    assert clocks(desk, number)["response"]["state"] == "breached"  # answered after 5 h of 4
    clock.advance(timedelta(hours=1))
    retarget(services, number, "P2")
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "breached" and sla["response"]["breached_at"].startswith("2026-01-10T12:00")
    assert compliance(desk)["response"]["breached"] == 1


def test_a_clock_that_had_not_breached_can_breach_under_the_new_terms(desk: Desk, services, clock):
    """The other way round: from office hours to 24x7, the re-targeted clock breaches at once."""
    body = {"kind": "incident", "priority": "P3", "response_seconds": 4 * 3600, "resolution_seconds": 24 * 3600,
            "calendar": OFFICE, "pause_statuses": ["pending"]}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=body).status_code == 200
    clock.set(SATURDAY)
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clock.advance(timedelta(hours=5))
    assert clocks(desk, number)["response"]["state"] == "running"  # no office hours yet
    retarget(services, number, "P2")  # built-in P2: 24x7, respond within 1 h
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "breached" and sla["response"]["breached_at"].startswith("2026-01-10T09:00")


def test_a_clock_met_under_office_hours_stays_met_when_the_record_moves_to_24x7(desk: Desk, services, clock):
    """A stopped clock keeps its verdict: answered after 2 office hours (a weekend between), it was met,
    and a 24x7 calendar that counts the weekend does not make it breached after the fact."""
    number = met_under_office_hours(desk, clock)
    ticket = retarget(services, number, "P1")  # built-in P1: 24x7
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "met" and sla["response"]["elapsed_seconds"] == 2 * HOUR
    assert stored(services, ticket)["response"].state == "met"
    assert compliance(desk)["response"]["met"] == 1


def test_a_policy_moved_to_an_office_calendar_does_not_lift_a_breach_the_sweep_raised(desk: Desk, services, clock):
    """A policy's new calendar applies to the running clocks from then on (app/services/sla.py,
    ``save_policy``), but a breach the sweep raised is recorded and stays."""
    clock.set(SATURDAY)
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clock.advance(timedelta(hours=5))
    assert services.sla.sweep()["breaches"] == 1
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    assert breach_events(services, ticket) == ["response"]
    body = {"kind": "incident", "priority": "P3", "response_seconds": 4 * 3600, "resolution_seconds": 24 * 3600,
            "calendar": OFFICE, "pause_statuses": ["pending"]}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=body).status_code == 200
    clock.advance(timedelta(minutes=1))
    services.sla.sweep()
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "breached" and sla["response"]["breached_at"].startswith("2026-01-10T12:00")
    assert sla["resolution"]["state"] == "running" and sla["resolution"]["elapsed_seconds"] == 0
    assert stored(services, ticket)["response"].state == "breached"
    assert compliance(desk)["response"]["breached"] == 1


def test_a_service_change_onto_a_policy_with_office_hours_keeps_the_breach(desk: Desk, services, clock):
    """A policy may be per service: a record moved to another service is read under that policy's
    calendar (its targets stay until the priority changes), and keeps what breached before."""
    body = {"kind": "incident", "priority": "P3", "service": "VPN", "response_seconds": 4 * 3600,
            "resolution_seconds": 24 * 3600, "calendar": OFFICE, "pause_statuses": ["pending"]}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=body).status_code == 200
    clock.set(SATURDAY)
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]  # no service: built-in 24x7
    clock.advance(timedelta(hours=5))
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    ticket.service = "VPN"
    services.sla.track(ticket, {"service": "VPN"})
    services.session.commit()
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "breached" and sla["response"]["breached_at"].startswith("2026-01-10T12:00")
    assert sla["resolution"]["state"] == "running" and sla["resolution"]["elapsed_seconds"] == 0
    assert breach_events(services, ticket) == ["response"]


def test_a_clock_met_under_office_hours_stays_met_when_its_policy_moves_to_24x7(desk: Desk, services, clock):
    """The policy itself changes calendar after the response (no priority or service change): the
    stopped clock keeps what it measured when it stopped (a ``measured`` event written with the
    stop), on the record's page, the stored row after any later refresh, and compliance."""
    number = met_under_office_hours(desk, clock)

    moved = {**OFFICE_P3, "calendar": {}}  # 24x7: the weekend would count, 42 h against 4
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=moved).status_code == 200
    clock.advance(timedelta(minutes=5))
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "met" and sla["response"]["elapsed_seconds"] == 2 * HOUR
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    services.sla.refresh(ticket)  # a later store (the sweep, the next record change) keeps it too
    services.session.commit()
    assert stored(services, ticket)["response"].state == "met"
    assert compliance(desk)["response"]["met"] == 1
    # the resolution clock, still running, is read under the new calendar: 24x7 from the start
    assert sla["resolution"]["state"] == "breached"
