"""A record resolved, then cancelled: its resolution clock was met or breached at the resolution.

Resolving pauses the clocks (the requester still confirms); the cancellation that follows closes
the record. The work was delivered, so the cancellation is no give-up of the resolution clock: it
ends "met" or "breached" as it stood at the resolution and counts in compliance and the reports.
A record cancelled before it was resolved still ends "cancelled", outside the percentages.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (the usual fixtures).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import SlaClock, Ticket
from tests.http.desk import Desk
from tests.http.test_reopen_comment import INCIDENT, resolve

HOUR = 3600.0


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def triaged(desk: Desk) -> str:
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    return number


def cancel(desk: Desk, services: Any, number: str) -> Ticket:
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    services.instances.cancel(services.users.get_by_username("alex"), ticket.instance_id, "raised twice")
    services.session.commit()
    assert ticket.status == "cancelled" and ticket.closed_at is not None
    return ticket


def clocks(desk: Desk, number: str) -> dict[str, dict[str, Any]]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["clocks"]}


def stored_states(services: Any, ticket: Ticket) -> dict[str, str]:
    services.session.expire_all()
    return {row.name: row.state for row in services.session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket.id))}


def compliance(desk: Desk) -> dict[str, dict[str, Any]]:
    response = desk.client.get("/api/v1/sla/compliance?kind=incident", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {row["name"]: row for row in response.get_json()["clocks"]}


def report_sla(desk: Desk, since: date) -> dict[str, dict[str, Any]]:
    """The report's SLA section over the week from ``since`` (records opened then)."""
    response = desk.client.get(f"/api/v1/reports/summary?from={since.isoformat()}&to={since + timedelta(days=7)}",
                               headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {row["name"]: row for row in response.get_json()["sla"]}


def test_a_resolution_met_then_cancelled_counts_as_met(desk: Desk, services, clock):
    day = clock.now().date()
    number = triaged(desk)
    clock.advance(timedelta(hours=2))
    resolve(desk, number)  # 2 h of P3's 24 h
    clock.advance(timedelta(days=3))  # the requester never confirms; the record is then cancelled
    ticket = cancel(desk, services, number)

    sla = clocks(desk, number)
    assert sla["resolution"]["state"] == "met" and sla["resolution"]["elapsed_seconds"] == 2 * HOUR
    assert stored_states(services, ticket) == {"response": "met", "resolution": "met"}
    assert compliance(desk)["resolution"] | {"name": None} == {
        "name": None, "met": 1, "breached": 0, "cancelled": 0, "open": 0, "percent": 100.0}
    assert report_sla(desk, day)["resolution"]["met"] == 1
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}


def test_a_resolution_breached_then_cancelled_counts_as_breached(desk: Desk, services, clock):
    number = triaged(desk)
    clock.advance(timedelta(hours=30))  # past P3's 24 h; resolved late
    resolve(desk, number)
    ticket = cancel(desk, services, number)
    assert clocks(desk, number)["resolution"]["state"] == "breached"
    assert stored_states(services, ticket)["resolution"] == "breached"
    assert compliance(desk)["resolution"]["breached"] == 1


def test_cancelled_before_resolution_stays_out_of_the_figures_and_a_reopened_one_too(desk: Desk, services, clock):
    day = clock.now().date()
    never = triaged(desk)
    clock.advance(timedelta(hours=1))
    cancel(desk, services, never)
    reopened = triaged(desk)
    resolve(desk, reopened)
    desk.complete(reopened, "confirm_resolution", "rita", {"confirmed": False, "comment": "still broken"})
    clock.advance(timedelta(hours=1))
    cancel(desk, services, reopened)  # work again under way: no resolution was delivered
    for number in (never, reopened):
        assert clocks(desk, number)["resolution"]["state"] == "cancelled", number
    summary = compliance(desk)["resolution"]
    assert (summary["met"], summary["breached"], summary["cancelled"], summary["percent"]) == (0, 0, 2, None)
    assert report_sla(desk, day)["resolution"]["cancelled"] == 2
