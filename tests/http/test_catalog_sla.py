"""SLA clocks of catalog requests: the fulfilment target is the item's ``target_hours``, and the
response clock waits for a person (an approval decision, a staff comment, the fulfilment), not the
submission that routes the request on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_catalog import NEW_ITEM, ORDERS, confirm, fulfil, order

HOUR = 3600.0


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def order_new_item(desk: Desk) -> str:
    response = desk.client.post(f"/api/v1/catalog/{NEW_ITEM['code']}/requests", headers=desk.auth("rita"),
                                json={"data": ORDERS["NET-VPN"]})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["number"])


def clocks(desk: Desk, number: str, who: str = "alex") -> dict[str, dict]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["clocks"]}


def stops(desk: Desk, instance_id: int) -> list[dict]:
    return [e["payload"] for e in desk.history(instance_id) if e["type"] == "sla_stop"]


def comment(desk: Desk, number: str, who: str, body: str, status: int = 201) -> None:
    response = desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth(who), json={"body": body})
    assert response.status_code == status, response.get_json()


def test_the_resolution_target_is_the_items_target_hours(desk: Desk):
    for code, hours in (("MSG-SHARED-MAILBOX", 24), ("FAC-DESK-MOVE", 120), ("NET-VPN", 24)):
        record = order(desk, code)
        assert record["priority"] == "P4"
        sla = clocks(desk, record["number"])
        assert sla["resolution"]["target_seconds"] == hours * HOUR, code  # not P4's 72 h
        assert sla["response"]["target_seconds"] == 8 * HOUR  # P4's response target
        [start] = [e for e in desk.history(record["instance_id"]) if e["type"] == "sla_start"]
        assert start["payload"]["targets"] == {"response": 8 * HOUR, "resolution": hours * HOUR}


def test_an_item_without_approval_is_not_answered_by_its_submission(desk: Desk, clock):
    record = order(desk, "MSG-SHARED-MAILBOX")  # straight to fulfilment, in the submitting step
    number = record["number"]
    assert record["status"] == "fulfilment" and record["first_response_at"] is None
    assert clocks(desk, number)["response"]["state"] == "running"
    assert stops(desk, record["instance_id"]) == []

    clock.advance(timedelta(hours=2))
    comment(desk, number, "rita", "Any news?")  # the requester's own comment answers nobody
    assert clocks(desk, number)["response"]["state"] == "running"

    clock.advance(timedelta(hours=1))
    fulfil(desk, number, "ivan", "Mailbox created.")  # the first person to act on it
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "met" and sla["response"]["elapsed_seconds"] == 3 * HOUR
    assert sla["resolution"]["state"] == "paused" and sla["resolution"]["elapsed_seconds"] == 3 * HOUR
    [stop] = stops(desk, record["instance_id"])
    assert stop["clocks"] == ["response"] and stop["reason"] == "first response: step by ivan"
    assert desk.record(number)["first_response_at"] is not None  # the record says the same as its clock

    clock.advance(timedelta(hours=1))
    confirm(desk, number)
    sla = clocks(desk, number)
    assert sla["response"]["elapsed_seconds"] == 3 * HOUR  # stopped for good
    assert sla["resolution"]["state"] == "met" and sla["resolution"]["elapsed_seconds"] == 3 * HOUR


def test_a_staff_comment_answers_a_request_already_in_fulfilment(desk: Desk, clock):
    record = order(desk, "MSG-SHARED-MAILBOX")
    number = record["number"]
    clock.advance(timedelta(minutes=40))
    comment(desk, number, "ivan", "Which language should the auto-reply be in?")
    clock.advance(timedelta(hours=2))
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "met" and sla["response"]["elapsed_seconds"] == 40 * 60
    assert sla["resolution"]["state"] == "running"
    [stop] = stops(desk, record["instance_id"])
    assert stop["reason"] == "first response: comment by ivan"
    comment(desk, number, "alex", "French, please.")  # a later answer changes nothing
    fulfil(desk, number, "ivan")
    assert len(stops(desk, record["instance_id"])) == 1
    assert clocks(desk, number)["response"]["elapsed_seconds"] == 40 * 60


def test_the_approval_decision_answers_a_request_and_may_breach_its_response(desk: Desk, clock):
    record = order(desk, "NET-VPN")  # rita's line manager mona approves
    number = record["number"]
    assert record["status"] == "submitted"
    clock.advance(timedelta(hours=9))  # past P4's 8 h response target, nobody has looked yet
    assert clocks(desk, number)["response"]["state"] == "breached"
    desk.complete(number, "approve_manager", "mona", {"approved": True, "approval_comment": "OK"})
    clock.advance(timedelta(hours=1))
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "breached" and sla["response"]["elapsed_seconds"] == 9 * HOUR
    assert sla["resolution"]["state"] == "running" and sla["resolution"]["elapsed_seconds"] == 10 * HOUR
    assert [s["reason"] for s in stops(desk, record["instance_id"])] == ["first response: step by mona"]


def test_a_rejected_request_stops_both_clocks_at_the_decision(desk: Desk, clock):
    record = order(desk, "NET-VPN")
    clock.advance(timedelta(hours=2))
    desk.complete(record["number"], "approve_manager", "mona", {"approved": False, "approval_comment": "Not needed."})
    clock.advance(timedelta(hours=1))
    sla = clocks(desk, record["number"])
    # the decision answered the request (response met); its fulfilment was given up, not missed
    assert {name: (c["state"], c["elapsed_seconds"]) for name, c in sla.items()} == {
        "response": ("met", 2 * HOUR), "resolution": ("cancelled", 2 * HOUR)}


def test_an_items_new_target_applies_to_later_requests_and_caps_the_response_target(desk: Desk):
    created = desk.client.post("/api/v1/catalog/items", headers=desk.auth("olga"), json={**NEW_ITEM, "target_hours": 4})
    assert created.status_code == 201, created.get_json()
    first = order_new_item(desk)
    sla = clocks(desk, first)
    # the fulfilment target is shorter than P4's response target: the response is due by then too
    assert (sla["response"]["target_seconds"], sla["resolution"]["target_seconds"]) == (4 * HOUR, 4 * HOUR)
    changed = desk.client.patch(f"/api/v1/catalog/items/{NEW_ITEM['code']}", headers=desk.auth("olga"),
                                json={"target_hours": 30})
    assert changed.status_code == 200, changed.get_json()
    second = order_new_item(desk)
    assert clocks(desk, second)["resolution"]["target_seconds"] == 30 * HOUR
    assert clocks(desk, first)["resolution"]["target_seconds"] == 4 * HOUR  # a running request keeps its target


def test_a_request_policy_gives_the_response_target_and_the_item_the_fulfilment_target(desk: Desk):
    policy = {"kind": "request", "priority": "P4", "response_seconds": 2 * 3600, "resolution_seconds": 200 * 3600}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=policy).status_code == 200
    sla = clocks(desk, order(desk, "FAC-DESK-MOVE")["number"])
    assert (sla["response"]["target_seconds"], sla["resolution"]["target_seconds"]) == (2 * HOUR, 120 * HOUR)
