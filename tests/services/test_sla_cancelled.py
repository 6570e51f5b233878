"""A cancelled record's SLA clocks: "cancelled", neither met nor breached, left out of compliance.

A clock the cancellation stops is "cancelled", unless it breached before (it stays "breached"); a
clock stopped before (the response clock, by the first response) keeps "met". The cancellation is
read from the stored stop event (reason ``"status cancelled"``), so events stored before this rule
replay the same way. Cancelled clocks are never warned, escalated or checked by the sweep again.

Built-in targets, 24x7: P3 responds within 4 h (warned at 3 h) and resolves within 24 h.
Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (the usual fixtures).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from app.errors import ValidationFailed
from app.models import AuditEvent, Notification, SlaClock, SlaEvent, Ticket
from tests.http.desk import Desk

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def user(services: Any, name: str) -> Any:
    return services.users.get_by_username(name)


def open_incident(services: Any, who: str = "rita") -> Ticket:
    instance = services.instances.start_process(user(services, who), "incident_management", INCIDENT)
    services.session.commit()
    ticket = services.session.scalar(select(Ticket).where(Ticket.instance_id == instance.id))
    assert ticket is not None and ticket.priority == "P3"
    return ticket


def cancel(services: Any, ticket: Ticket, who: str = "alex") -> None:
    services.instances.cancel(user(services, who), ticket.instance_id, "duplicate of another record")
    services.session.commit()
    assert ticket.status == "cancelled" and ticket.closed_at is not None


def answer(services: Any, ticket: Ticket, who: str = "alex") -> None:
    """Staff comment: the record's first response (stops the response clock)."""
    services.records.add_comment(user(services, who), ticket, "Looking into it.")
    services.session.commit()


def states(services: Any, ticket: Ticket) -> dict[str, str]:
    return {name: state.state for name, state in services.sla.evaluate(ticket).items()}


def stored(services: Any, ticket: Ticket) -> dict[str, SlaClock]:
    services.session.expire_all()
    return {row.name: row for row in services.session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket.id))}


def test_cancelling_running_clocks_cancels_them_and_the_sweep_leaves_them_alone(desk, services, clock):
    ticket = open_incident(services)
    clock.advance(timedelta(hours=3, minutes=30))  # the response's warning (3 h) is reached, not swept yet
    cancel(services, ticket)

    assert states(services, ticket) == {"response": "cancelled", "resolution": "cancelled"}
    replayed = services.sla.evaluate(ticket)
    for state in replayed.values():
        assert state.cancelled_at == clock.now() and state.stopped_at == clock.now()
        assert state.due_at is None and state.warning_at is None and state.breached_at is None
    rows = stored(services, ticket)
    assert {name: row.state for name, row in rows.items()} == {"response": "cancelled", "resolution": "cancelled"}
    assert all(row.next_check_at is None and row.due_at is None for row in rows.values())
    assert ticket.sla_due_at is None and ticket.sla_warning_at is None

    # the owed warning of the response clock is not raised, not now and not later
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    clock.advance(timedelta(days=2))  # far past both targets
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    assert states(services, ticket) == {"response": "cancelled", "resolution": "cancelled"}
    assert not services.session.scalars(select(Notification).where(Notification.subject.like("SLA %"))).all()
    assert not services.session.scalars(select(AuditEvent).where(AuditEvent.event_type.in_(
        ["sla_warning", "sla_breached"]))).all()


def test_a_clock_met_before_the_cancellation_stays_met(desk, services, clock):
    ticket = open_incident(services)
    clock.advance(timedelta(minutes=20))
    answer(services, ticket)
    clock.advance(timedelta(hours=1))
    cancel(services, ticket)
    assert states(services, ticket) == {"response": "met", "resolution": "cancelled"}
    assert {name: row.state for name, row in stored(services, ticket).items()} == {
        "response": "met", "resolution": "cancelled"}
    assert services.sla.evaluate(ticket)["response"].cancelled_at is None


def test_a_clock_breached_before_the_cancellation_stays_breached_and_is_not_escalated(desk, services, clock):
    ticket = open_incident(services)
    clock.advance(timedelta(hours=5))  # the response (4 h) breached an hour ago; no sweep ran since
    cancel(services, ticket)
    replayed = services.sla.evaluate(ticket)
    assert {name: state.state for name, state in replayed.items()} == {"response": "breached", "resolution": "cancelled"}
    assert replayed["response"].breached_at is not None and replayed["response"].cancelled_at == clock.now()
    rows = stored(services, ticket)
    assert rows["response"].state == "breached" and not rows["response"].escalated
    assert rows["response"].next_check_at is None  # nobody is to act on a cancelled record's clocks
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    assert not services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "sla_breached")).all()

    # the list's breached filter: the breach counts, a cancellation without one does not
    fresh = open_incident(services)
    cancel(services, fresh)
    assert states(services, fresh) == {"response": "cancelled", "resolution": "cancelled"}
    alex = user(services, "alex")
    for breached, expected in ((True, {ticket.number}), (False, {fresh.number})):
        rows, _total = services.records.list_tickets(alex, {"breached": breached}, "-opened_at", 1, 200)
        assert {row.number for row in rows} == expected, breached


def test_replaying_the_events_gives_what_is_stored_and_old_events_replay_the_same(desk, services, clock):
    ticket = open_incident(services)
    clock.advance(timedelta(hours=1))
    cancel(services, ticket)
    events = services.session.scalars(select(SlaEvent).where(SlaEvent.ticket_id == ticket.id).order_by(SlaEvent.id)).all()
    # what a cancellation stores is what it always stored: a plain stop of every clock, with its reason
    assert [(e.kind, e.clocks, e.reason) for e in events][-1] == ("stop", None, "status cancelled")
    before = {name: (row.state, row.elapsed_seconds, row.next_check_at) for name, row in stored(services, ticket).items()}
    clock.advance(timedelta(hours=30))
    services.sla.refresh(ticket)
    services.session.commit()
    assert {name: (row.state, row.elapsed_seconds, row.next_check_at)
            for name, row in stored(services, ticket).items()} == before

    # a record cancelled before this rule: the same events, its clock rows stored as "met"
    old = open_incident(services)
    clock.advance(timedelta(minutes=30))
    services.session.execute(insert(SlaEvent).values(ticket_id=old.id, at=clock.now(), kind="stop", targets=None,
                                                     clocks=None, reason="status cancelled"))
    services.session.execute(SlaClock.__table__.update().where(SlaClock.ticket_id == old.id)
                             .values(state="met", next_check_at=None, due_at=None))
    old.status, old.closed_at = "cancelled", clock.now()
    services.session.commit()
    assert states(services, old) == {"response": "cancelled", "resolution": "cancelled"}
    assert services.sla.ticket_clocks(old)[0]["state"] == "cancelled"
    # its stored rows say "met" until they are stored again, which makes them agree
    assert {row.state for row in stored(services, old).values()} == {"met"}
    services.sla.refresh(old)
    services.session.commit()
    assert {row.state for row in stored(services, old).values()} == {"cancelled"}


def test_a_later_change_of_a_cancelled_record_keeps_its_clocks_cancelled(desk, services, clock):
    ticket = open_incident(services)
    cancel(services, ticket)
    clock.advance(timedelta(hours=30))
    ticket.priority = "P1"
    services.sla.track(ticket, {"priority": "P1"})
    answer(services, ticket)  # a comment after the cancellation answers nobody's running clock
    assert states(services, ticket) == {"response": "cancelled", "resolution": "cancelled"}
    assert {row.state for row in stored(services, ticket).values()} == {"cancelled"}


def test_compliance_leaves_cancelled_clocks_out_of_the_percentage(desk, services, clock):
    met, breached, cancelled, running = (open_incident(services) for _ in range(4))
    clock.advance(timedelta(hours=1))
    answer(services, met)  # response met (1 h of 4 h)
    cancel(services, cancelled)  # both clocks cancelled within target
    clock.advance(timedelta(hours=4))
    answer(services, breached)  # response breached (5 h of 4 h)
    # compliance reads the stored clocks: the sweep stores (and escalates) both late responses
    assert services.sla.sweep() == {"warnings": 0, "breaches": 2}
    cancel(services, breached)  # its resolution clock: cancelled; the response breach stays
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    alex = user(services, "alex")

    summary = {row["name"]: row for row in services.sla.compliance(alex, "incident")}
    assert list(summary) == ["response", "resolution"]
    assert summary["response"] == {"name": "response", "met": 1, "breached": 2, "cancelled": 1, "open": 0,
                                   "percent": 33.3}  # running's response breached too, while running
    assert summary["resolution"] == {"name": "resolution", "met": 0, "breached": 0, "cancelled": 2, "open": 2,
                                     "percent": None}
    assert services.sla.compliance(alex) == services.sla.compliance(alex, "incident")
    assert services.sla.compliance(alex, "problem") == []

    # a requester counts the records she may see only
    rick = services.users.create_user("rick", "password-1234", roles=["requester"])
    services.session.commit()
    assert services.sla.compliance(rick) == []
    with pytest.raises(ValidationFailed) as info:
        services.sla.compliance(alex, "change")
    assert list(info.value.details["fields"]) == ["kind"]
