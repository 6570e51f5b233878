"""Given-up records' SLA clocks: cancellations, catalog requests rejected by their approver, and the
clock rows such records stored before those rules ("met"), which compliance counts as cancelled.

Built-in targets, 24x7: an incident's P3 responds within 4 h and resolves within 24 h; NET-VPN is a
P4 request (response 8 h) fulfilled within its item's 24 h.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from app.models import SlaClock, SlaEvent, Ticket
from tests.http.desk import Desk
from tests.http.test_e2e_catalog import order
from tests.services.test_sla_cancelled import INCIDENT, user


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def open_incident(services: Any) -> Ticket:
    instance = services.instances.start_process(user(services, "rita"), "incident_management", INCIDENT)
    services.session.commit()
    ticket = services.session.scalar(select(Ticket).where(Ticket.instance_id == instance.id))
    assert ticket is not None
    return ticket


def stored(services: Any, ticket_id: int) -> dict[str, str]:
    services.session.expire_all()
    return {row.name: row.state for row in services.session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket_id))}


def cancel_the_old_way(services: Any, clock: Any, ticket: Ticket) -> None:
    """A cancellation as stored before cancelled clocks existed: the same stop event, rows "met"."""
    services.session.execute(insert(SlaEvent).values(ticket_id=ticket.id, at=clock.now(), kind="stop", targets=None,
                                                     clocks=None, reason="status cancelled"))
    services.session.execute(SlaClock.__table__.update().where(SlaClock.ticket_id == ticket.id, SlaClock.state == "running")
                             .values(state="met", next_check_at=None, due_at=None))
    ticket.status, ticket.closed_at = "cancelled", clock.now()
    services.session.commit()


def by_name(summary: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: {k: v for k, v in row.items() if k != "name"} for row in summary}


def test_clock_rows_stored_met_by_an_old_cancellation_count_as_cancelled(desk, services, clock):
    untouched = open_incident(services)  # cancelled before the rule, never answered
    answered = open_incident(services)  # answered, then cancelled before the rule
    cancelled = open_incident(services)  # cancelled now
    clock.advance(timedelta(minutes=20))
    services.records.add_comment(user(services, "alex"), answered, "Looking into it.")
    services.session.commit()
    clock.advance(timedelta(minutes=10))
    cancel_the_old_way(services, clock, untouched)
    cancel_the_old_way(services, clock, answered)
    services.instances.cancel(user(services, "alex"), cancelled.instance_id, "duplicate")
    services.session.commit()
    assert stored(services, untouched.id) == {"response": "met", "resolution": "met"}  # as stored then
    assert stored(services, answered.id) == {"response": "met", "resolution": "met"}
    assert stored(services, cancelled.id) == {"response": "cancelled", "resolution": "cancelled"}

    alex = user(services, "alex")
    summary = by_name(services.sla.compliance(alex, "incident"))
    # only the answered record's response was met: the rest was given up
    assert summary["response"] == {"met": 1, "breached": 0, "cancelled": 2, "open": 0, "percent": 100.0}
    assert summary["resolution"] == {"met": 0, "breached": 0, "cancelled": 3, "open": 0, "percent": None}
    assert by_name(services.sla.compliance(alex)) == summary
    assert services.sla.compliance(alex, "problem") == []
    # the record's own clocks say the same (replayed from its events)
    assert {c["name"]: c["state"] for c in services.sla.ticket_clocks(answered)} == {
        "response": "met", "resolution": "cancelled"}
    # a requester counts the records she may see: her own
    rita = user(services, "rita")
    assert by_name(services.sla.compliance(rita))["resolution"]["cancelled"] == 3
    rick = services.users.create_user("rick", "password-1234", roles=["requester"])
    services.session.commit()
    assert services.sla.compliance(rick) == []

    # through the API
    response = desk.client.get("/api/v1/sla/compliance?kind=incident", headers=desk.auth("aude"))
    assert response.status_code == 200, response.get_json()
    assert {c["name"]: (c["met"], c["cancelled"]) for c in response.get_json()["clocks"]} == {
        "response": (1, 2), "resolution": (0, 3)}

    # a stop whose status is no give-up of the kind ("rejected" is a request's) is a plain stop
    closed = open_incident(services)
    services.records.add_comment(user(services, "alex"), closed, "On it.")
    services.session.execute(insert(SlaEvent).values(ticket_id=closed.id, at=clock.now(), kind="stop", targets=None,
                                                     clocks=None, reason="status rejected"))
    services.session.commit()
    assert {c["name"]: c["state"] for c in services.sla.ticket_clocks(closed)} == {"response": "met", "resolution": "met"}


def test_a_request_rejected_by_its_approver_gives_up_its_fulfilment(desk, services, clock):
    record = order(desk, "NET-VPN")
    number = record["number"]
    clock.advance(timedelta(hours=2))
    desk.complete(number, "approve_manager", "mona", {"approved": False, "approval_comment": "Not needed."})
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    assert ticket.status == "rejected"
    # the decision is the request's answer; its fulfilment is not owed any more
    assert stored(services, ticket.id) == {"response": "met", "resolution": "cancelled"}
    clock.advance(timedelta(days=3))
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    alex = user(services, "alex")
    summary = by_name(services.sla.compliance(alex, "request"))
    assert summary["resolution"] == {"met": 0, "breached": 0, "cancelled": 1, "open": 0, "percent": None}
    assert summary["response"] == {"met": 1, "breached": 0, "cancelled": 0, "open": 0, "percent": 100.0}

    # rejected before the rule: the rows say "met"; compliance reads the events' answer
    services.session.execute(SlaClock.__table__.update().where(SlaClock.ticket_id == ticket.id).values(state="met"))
    services.session.commit()
    summary = by_name(services.sla.compliance(alex, "request"))
    assert (summary["resolution"]["met"], summary["resolution"]["cancelled"]) == (0, 1)
    assert (summary["response"]["met"], summary["response"]["cancelled"]) == (1, 0)

    # rejected after the item's 24 h passed while the approval waited: both breaches stay
    late = order(desk, "NET-VPN")
    clock.advance(timedelta(hours=25))
    desk.complete(late["number"], "approve_manager", "mona", {"approved": False, "approval_comment": "Too late."})
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == late["number"]))
    assert {c["name"]: c["state"] for c in services.sla.ticket_clocks(ticket)} == {
        "response": "breached", "resolution": "breached"}
