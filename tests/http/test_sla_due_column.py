"""A record's stored SLA due instant (``ticket.sla_due_at``), warning instant (``sla_warning_at``)
and priority rank (``priority_rank``) say, after every change of the record and every sweep, what
the task lists used to work out from the record's clocks on each view: the earliest ``due_at`` of
its ``sla_clock`` rows, and the earliest ``warning_at`` of those with one. Followed through a whole
life of its clocks: start, a warning, a priority change recomputed from the start, the first
response, a pause and its resume, a breach, the resolution's pause, the close; a first response by
comment; an escalation that raises the priority; a cancellation.

The built-in targets are 24x7 (P3: response 4 h, resolution 24 h; P2: 1 h and 8 h; warnings at 75 %).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import SlaClock, Ticket
from app.models.record import priority_rank
from tests.http.desk import Desk

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium", "urgency": "medium"}

#: What the task lists computed per record before the record kept it (the correlated look-ups
#: TaskService.list_tasks and task_slas ran): the earliest due_at of its clocks, and the earliest
#: warning_at of those with a due_at.
OLD_DUE = select(func.min(SlaClock.due_at)).where(SlaClock.ticket_id == Ticket.id).correlate(Ticket).scalar_subquery()
OLD_WARNING = (select(func.min(SlaClock.warning_at)).where(SlaClock.ticket_id == Ticket.id, SlaClock.due_at.is_not(None))
               .correlate(Ticket).scalar_subquery())


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def stored(connection: Any, number: str) -> tuple[datetime | None, datetime | None]:
    """The record's stored due and warning instants, checked against its clock rows and its
    priority's rank (read on the test's connection: what was committed, not the session's objects)."""
    row = connection.execute(select(Ticket.sla_due_at, Ticket.sla_warning_at, OLD_DUE.label("old_due"),
                                    OLD_WARNING.label("old_warning"), Ticket.priority, Ticket.priority_rank)
                             .where(Ticket.number == number)).one()
    assert (row.sla_due_at, row.sla_warning_at) == (row.old_due, row.old_warning), row
    assert row.priority_rank == priority_rank(row.priority), row
    return row.sla_due_at, row.sla_warning_at


def test_the_stored_due_instant_follows_the_clocks_through_a_whole_life(desk: Desk, services, clock, connection):
    opened = clock.now()
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]  # P3
    # both clocks run: the response is due first (4 h), its warning at 3 h
    assert stored(connection, number) == (opened + timedelta(hours=4), opened + timedelta(hours=3))

    clock.advance(timedelta(hours=3, minutes=30))
    assert services.sla.sweep() == {"warnings": 1, "breaches": 0}
    # the response clock is at risk: its warning instant stays when it was reached
    assert stored(connection, number) == (opened + timedelta(hours=4), opened + timedelta(hours=3))

    # triage: P2 recomputes the targets from the start (resolution 8 h, warned at 6 h) and answers
    # the record, which stops the response clock (breached: P2 responds within 1 h): the
    # resolution's due instant is left
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P2", "assignment_group": "NetworkTeam"})
    assert stored(connection, number) == (opened + timedelta(hours=8), opened + timedelta(hours=6))
    assert services.sla.sweep() == {"warnings": 0, "breaches": 1}  # the stopped response clock's breach
    assert stored(connection, number) == (opened + timedelta(hours=8), opened + timedelta(hours=6))

    clock.advance(timedelta(hours=1))  # 4.5 h of the 8 h used
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "customer", "pending_reason": "logs"})
    assert stored(connection, number) == (None, None)  # paused: no due instant, nothing at risk
    clock.advance(timedelta(hours=5))
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    assert stored(connection, number) == (None, None)

    desk.complete(number, "resume_work", "nina", {"update_note": "logs received"})
    resumed = clock.now()
    # 3.5 h left from the resume, its warning (75 %: 6 h) 1.5 h from it
    assert stored(connection, number) == (resumed + timedelta(hours=3, minutes=30), resumed + timedelta(hours=1, minutes=30))

    clock.advance(timedelta(hours=4))  # breached half an hour ago
    assert stored(connection, number)[0] == resumed + timedelta(hours=3, minutes=30)
    assert services.sla.sweep() == {"warnings": 0, "breaches": 1}
    # breached and still running: the due instant is the breach, in the past; the warning stays
    assert stored(connection, number) == (resumed + timedelta(hours=3, minutes=30), resumed + timedelta(hours=1, minutes=30))

    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "new driver",
                                                 "cause_category": "software_defect"})
    assert stored(connection, number) == (None, None)  # resolved: paused until the requester answers
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    assert desk.record(number)["status"] == "closed"
    assert stored(connection, number) == (None, None)
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    assert stored(connection, number) == (None, None)


def test_a_first_response_by_comment_an_escalated_priority_and_a_cancellation(desk: Desk, services, clock, connection):
    policy = {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
              "escalation": {"breach": {"notify": ["group"], "raise_priority": True}}}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=policy).status_code == 200
    opened = clock.now()
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    assert stored(connection, number) == (opened + timedelta(hours=1), opened + timedelta(minutes=45))

    clock.advance(timedelta(minutes=20))
    answered = desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("alex"), json={"body": "Looking."})
    assert answered.status_code == 201, answered.get_json()
    # the comment answered the record: only the resolution clock runs (2 h, warned at 1.5 h)
    assert stored(connection, number) == (opened + timedelta(hours=2), opened + timedelta(hours=1, minutes=30))

    clock.advance(timedelta(hours=2))
    assert services.sla.sweep()["breaches"] == 1
    record = desk.record(number)
    assert record["priority"] == "P2"  # raised by the escalation: P2's built-in 8 h, from the start
    # ... which does not lift the breach (a fact): due at the breach, no warning to come
    assert stored(connection, number) == (opened + timedelta(hours=2), None)

    cancelled = desk.client.post(f"/api/v1/instances/{record['instance_id']}/cancel", headers=desk.auth("alex"),
                                 json={"reason": "duplicate"})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert stored(connection, number) == (None, None)  # every clock stopped


def test_the_priority_rank_follows_every_write_of_the_priority(services):
    ticket = Ticket(kind="change", number="CHG-000001", priority="high")
    assert ticket.priority_rank == 2
    for priority, rank in (("P1", 1), ("P2", 2), ("medium", 3), ("P3", 3), ("low", 4), ("P4", 4), ("urgent", 5),
                           (None, 6), ("High", 5)):
        ticket.priority = priority
        assert ticket.priority_rank == rank == priority_rank(priority), priority
