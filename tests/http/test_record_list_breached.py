"""GET /api/v1/tickets?breached=: true lists the records with a breached SLA clock, false those with
none breached (also those without any clock), as ``open=false`` lists the closed ones; before,
``breached=false`` did not filter at all. Anything else is a 422 naming ``breached``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.models import SlaClock, Ticket
from tests.http.helpers import assert_error

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
#: number -> (closed, states of its SLA clocks)
RECORDS = {
    "INC-0001": (False, ["breached"]),
    "INC-0002": (False, ["met", "breached"]),
    "INC-0003": (False, ["running"]),
    "INC-0004": (False, []),
    "INC-0005": (True, ["breached", "met"]),
    "INC-0006": (True, ["met", "met"]),
    "INC-0007": (False, ["paused"]),
}


@pytest.fixture()
def records(services, users) -> None:
    session = services.session
    for i, (number, (closed, states)) in enumerate(RECORDS.items()):
        at = T0 + timedelta(minutes=i)
        ticket = Ticket(kind="incident", number=number, title=number, description="",
                        status="closed" if closed else "new", details={}, opened_at=at, updated_at=at,
                        closed_at=at if closed else None, requester_id=users["rita"].id)
        session.add(ticket)
        session.flush()
        for n, state in enumerate(states):
            session.add(SlaClock(ticket_id=ticket.id, name=f"clock{n}", target_seconds=3600.0, state=state,
                                 due_at=at + timedelta(hours=1), warning_at=None,
                                 breached_at=at + timedelta(hours=1) if state == "breached" else None,
                                 next_check_at=None, evaluated_at=at))
    session.commit()


def listed(client, auth, query: str) -> set[str]:
    response = client.get(f"/api/v1/tickets?per_page=100&{query}", headers=auth("alex"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["total"] == len(body["items"])
    return {item["number"] for item in body["items"]}


def test_breached_true_and_false_split_the_records_between_them(client, auth, records):
    everything = set(RECORDS)
    assert listed(client, auth, "") == everything
    breached = listed(client, auth, "breached=true")
    assert breached == {"INC-0001", "INC-0002", "INC-0005"}
    not_breached = listed(client, auth, "breached=false")
    assert not_breached == {"INC-0003", "INC-0004", "INC-0006", "INC-0007"}
    assert breached | not_breached == everything and not breached & not_breached


@pytest.mark.parametrize(("query", "expected"), [
    ("breached=false&open=true", {"INC-0003", "INC-0004", "INC-0007"}),
    ("breached=false&open=false", {"INC-0006"}),
    ("breached=true&open=false", {"INC-0005"}),
    ("breached=1&open=1", {"INC-0001", "INC-0002"}),
    ("breached=0&open=0", {"INC-0006"}),
])
def test_breached_combines_with_open_the_same_way_round(client, auth, records, query, expected):
    assert listed(client, auth, query) == expected


def test_breached_false_is_also_the_service_filter(services, users, records):
    rows, total = services.records.list_tickets(users["alex"], {"breached": False}, "number", 1, 50)
    assert [t.number for t in rows] == ["INC-0003", "INC-0004", "INC-0006", "INC-0007"] and total == 4


@pytest.mark.parametrize("value", ["maybe", "2", "", "null"])
def test_any_other_value_is_refused_naming_breached(client, auth, records, value):
    body = assert_error(client.get(f"/api/v1/tickets?breached={value}", headers=auth("alex")), 422, "validation_failed")
    assert set(body["details"]["fields"]) == {"breached"}, body


def test_the_openapi_document_says_what_false_means(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    parameters = {p["name"]: p for p in spec["paths"]["/api/v1/tickets"]["get"]["parameters"]}
    assert "false: records with no breached SLA clock" in parameters["breached"]["description"]
    assert "false: closed records only" in parameters["open"]["description"]
