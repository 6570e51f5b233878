"""The record list: filters, order with ties on the sort column, the capped total, visibility."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import app.services.records as records_module
from app.models import Ticket

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture()
def tickets(services):
    """Ten incidents in progress, four of them opened at the same moment, and records of other
    kinds and statuses around them. Answers the numbers of the ten in list order (newest first)."""
    users = services.users
    agent = users.create_user("alice", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    rita = users.create_user("rita", "password-1234", roles=["requester"], groups=["Requesters"])
    rick = users.create_user("rick", "password-1234", roles=["requester"], groups=["Requesters"])
    services.session.flush()
    opened = [T0 + timedelta(minutes=m) for m in (5, 1, 3, 3, 7, 3, 0, 3, 9, 2)]
    made = []
    for i, at in enumerate(opened):
        for kind, status in (("incident", "in_progress"), ("incident", "new"), ("change", "in_progress")):
            prefix = {"incident": "INC", "change": "CHG"}[kind]
            ticket = Ticket(kind=kind, number=f"{prefix}-{status[:3].upper()}-{i:03d}", title=f"t{i}", description="",
                            status=status, details={}, opened_at=at, updated_at=at,
                            requester_id=(rita if i % 3 == 0 else rick).id)
            services.session.add(ticket)
            services.session.flush()
            if (kind, status) == ("incident", "in_progress"):
                made.append(ticket)
    services.session.flush()
    newest_first = sorted(made, key=lambda t: (t.opened_at, t.id), reverse=True)
    return {"agent": agent, "rita": rita, "numbers": [t.number for t in newest_first],
            "rita_numbers": [t.number for t in newest_first if t.requester_id == rita.id]}


def listed(services, user, sort="-opened_at", page=1, per_page=50, **filters):
    rows, total = services.records.list_tickets(user, filters, sort, page, per_page)
    return [t.number for t in rows], total


def test_one_kind_and_status_newest_first_ties_by_number_descending(services, tickets):
    numbers, total = listed(services, tickets["agent"], kind="incident", status="in_progress")
    assert numbers == tickets["numbers"] and total == 10
    oldest_first, _ = listed(services, tickets["agent"], sort="opened_at", kind="incident", status="in_progress")
    assert oldest_first == tickets["numbers"][::-1]
    pages = [listed(services, tickets["agent"], page=p, per_page=3, kind="incident", status="in_progress") for p in (1, 2, 3, 4)]
    assert [n for numbers, _ in pages for n in numbers] == tickets["numbers"]
    assert {total for _, total in pages} == {10}


def test_capped_total_is_the_same_whichever_way_it_is_counted(services, tickets, monkeypatch):
    # counted in index order (one kind and status, sorted by opened_at) ...
    assert listed(services, tickets["agent"], kind="incident", status="in_progress")[1] == 10
    # ... and by the general capped count (several statuses; another sort key)
    assert listed(services, tickets["agent"], kind="incident", status="in_progress,new")[1] == 20
    assert listed(services, tickets["agent"], sort="-number", kind="incident", status="in_progress")[1] == 10
    monkeypatch.setattr(records_module, "COUNT_CAP", 4)
    numbers, total = listed(services, tickets["agent"], kind="incident", status="in_progress")
    assert total == 4 and numbers == tickets["numbers"]  # the cap bounds the total, not the rows


def test_requesters_count_and_list_only_their_own_records(services, tickets):
    numbers, total = listed(services, tickets["rita"], kind="incident", status="in_progress")
    assert numbers == tickets["rita_numbers"] and total == len(tickets["rita_numbers"]) == 4
    # the agent filtering by requester (a join) gets the same records and total
    assert listed(services, tickets["agent"], requester="rita", kind="incident", status="in_progress") == (numbers, 4)
    assert listed(services, tickets["agent"], sort="-number", requester="rita", kind="incident")[1] == 8


def test_priority_sort_ranks_a_changes_risk_with_the_incident_priorities(services):
    agent = services.users.create_user("alice", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    services.session.flush()
    for number, kind, priority in (("INC-1", "incident", "P4"), ("CHG-1", "change", "high"), ("INC-2", "incident", None),
                                   ("CHG-2", "change", "low"), ("INC-3", "incident", "P1"), ("CHG-3", "change", "medium"),
                                   ("INC-4", "incident", "P3"), ("INC-5", "incident", "P2")):
        ticket = Ticket(kind=kind, number=number, title=number, description="", status="new", details={},
                        opened_at=T0, updated_at=T0)
        services.session.add(ticket)
        ticket.priority = priority  # set after construction, as the services do: keeps priority_rank
    services.session.flush()
    most_urgent_first, total = listed(services, agent, sort="priority")
    # rank 1: P1; rank 2: P2, high; rank 3: P3, medium; rank 4: P4, low; no priority last
    assert most_urgent_first == ["INC-3", "INC-5", "CHG-1", "INC-4", "CHG-3", "INC-1", "CHG-2", "INC-2"] and total == 8
    assert listed(services, agent, sort="-priority")[0] == most_urgent_first[::-1]
