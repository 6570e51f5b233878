"""The ``record.created`` webhook event: once per new record of every kind, with its number, kind,
status, requester and priority as its process's first step left them; for subscribers only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import OutboxMessage
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_catalog import order
from tests.http.test_e2e_incident import START
from tests.http.test_e2e_problem import raised_fix

SECRET = "a-webhook-secret-of-some-length"
URL = "https://93.184.216.34/processdesk"  # a public address: no name to resolve


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def subscribe(desk: Desk, events: list[str]) -> int:
    response = desk.client.post("/api/v1/webhooks", headers=desk.auth("ada"),
                                json={"url": URL, "secret": SECRET, "events": events})
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def deliveries(services: Any, hook: int) -> list[tuple[str, dict[str, Any]]]:
    rows = services.session.scalars(select(OutboxMessage).where(OutboxMessage.webhook_id == hook)
                                    .order_by(OutboxMessage.id))
    return [(row.event_type, row.payload) for row in rows]


def created(number: str, kind: str, status: str, priority: str | None, requester: str) -> dict[str, Any]:
    return {"number": number, "record": number, "kind": kind, "status": status, "priority": priority,
            "requester": requester}


def test_every_new_record_is_announced_once_to_its_subscribers(desk: Desk, services: Any):
    hook = subscribe(desk, ["record.created"])
    everything = subscribe(desk, ["*"])
    other = subscribe(desk, ["record.closed"])

    incident = desk.start("rita", "incident_management", START)["data"]["record_number"]
    request = order(desk, "NET-VPN")["number"]
    problem, _ = raised_fix(desk)  # paul's problem, and the fix change its analysis raised (nina's step)

    sent = deliveries(services, hook)
    assert {event for event, _ in sent} == {"record.created"}
    seen = [{key: payload[key] for key in ("number", "record", "kind", "status", "priority", "requester")}
            for _event, payload in sent]
    request_record = desk.record(request)
    assert seen == [
        created(incident, "incident", "new", "P3", "rita"),
        created(request, "request", request_record["status"], request_record["priority"], "rita"),
        created(problem, "problem", "new", None, "paul"),
        created("CHG-000001", "change", "assessment", None, "nina"),  # raised by her analysis step
    ]
    first = sent[0][1]
    assert first["title"] == START["title"] and first["opened_at"] == desk.record(incident)["opened_at"]
    assert [payload["opened_by"] for _event, payload in sent] == [None] * 4  # each raised by its requester
    # "*" hears it too; a webhook for other events does not
    assert [p["number"] for e, p in deliveries(services, everything) if e == "record.created"] == [
        incident, request, problem, "CHG-000001"]
    assert [e for e, _ in deliveries(services, other)] == []


def test_a_record_logged_for_a_caller_names_who_logged_it(desk: Desk, services: Any):
    hook = subscribe(desk, ["record.created", "process.started_for"])
    answer = desk.client.post("/api/v1/instances", headers=desk.auth("alex"),
                              json={"process_id": "incident_management", "data": START, "on_behalf_of": "rita"})
    assert answer.status_code == 201, answer.get_json()
    number = answer.get_json()["data"]["record_number"]
    sent = dict(deliveries(services, hook))
    assert (sent["record.created"]["requester"], sent["record.created"]["opened_by"]) == ("rita", "alex")
    told = sent["process.started_for"]
    assert (told["record"], told["recipients"], told["by"]) == (number, ["rita"], "alex")


def test_record_created_is_a_known_event_and_unknown_ones_are_refused(desk: Desk):
    subscribe(desk, ["record.created", "record.resolved"])
    body = assert_error(desk.client.post("/api/v1/webhooks", headers=desk.auth("ada"),
                                         json={"url": URL, "secret": SECRET, "events": ["record.opened"]}), 422)
    assert "record.created" in body["details"]["fields"]["events"][0]
