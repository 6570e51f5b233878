"""catalog_request: a request the requester never confirms, and the request forms' checks.

QA found, through the API with the shipped catalog:

* A fulfilled request whose requester never confirmed receipt stayed in awaiting_confirmation
  forever: the confirmation had no timer. Now the requester is reminded after two days and the
  request closes on its own after five, with a reason the record shows (as an incident closes
  when its requester does not confirm the resolution).
* The laptop's "Needed by" took a day in the past (1999-01-01), "This replaces a laptop" took no
  asset tag of the laptop it replaces, and the rating was required even when the answer was "not
  received". The forms now say so with the form engine's own rules (``$today`` bound, if/then).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import Notification, Ticket
from app.services.timers import TimerService
from tests.http.desk import LAPTOP, Desk


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def order(desk: Desk, code: str = "HW-LAPTOP", status: int = 201, **changes: Any) -> dict[str, Any]:
    response = desk.client.post(f"/api/v1/catalog/{code}/requests", headers=desk.auth("rita"),
                                json={"data": {**LAPTOP, **changes}})
    assert response.status_code == status, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def fulfilled(desk: Desk) -> str:
    """A standard laptop for rita, approved by her manager and delivered: her confirmation is open."""
    number = order(desk)["number"]
    desk.complete(number, "approve_manager", "mona", {"approved": True})
    desk.complete(number, "fulfil_request", "nina", {"fulfilment_notes": "Laptop AT-777001 handed over."})
    record = desk.record(number)
    assert record["status"] == "awaiting_confirmation" and desk.ready(number) == ["confirm_receipt"]
    return number


def notices(services, number: str, prefix: str) -> list[Notification]:
    ticket_id = services.session.scalar(select(Ticket.id).where(Ticket.number == number))
    return [n for n in services.session.scalars(select(Notification).where(Notification.ticket_id == ticket_id))
            if n.subject.startswith(prefix)]


def sweep(services) -> int:
    return TimerService(services, "test-sweeper").sweep().fired  # type: ignore[no-any-return]


# -- 3. an unconfirmed request is reminded, then closes ------------------------------------------------------


def test_an_unconfirmed_request_reminds_the_requester_then_closes_with_a_reason(desk: Desk, services, clock):
    number = fulfilled(desk)
    confirm = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, 'confirm_receipt', 'rita')}",
                              headers=desk.auth("rita")).get_json()
    # the API keeps the duration as the process has it; the task page words it (test_zh_platform_words)
    assert "closed automatically after P5D." in confirm["instructions"]
    clock.advance(timedelta(days=1, hours=23))
    assert sweep(services) == 0 and notices(services, number, "Please confirm receipt") == []

    clock.advance(timedelta(hours=2))  # two days: a reminder, the confirmation stays open
    assert sweep(services) == 1
    [reminder] = notices(services, number, "Please confirm receipt")
    assert reminder.user_id == services.users.get_by_username("rita").id
    assert reminder.subject == f"Please confirm receipt: {number}: {desk.record(number)['title']}"
    assert "closed automatically after 5 days" in reminder.body
    assert desk.record(number)["status"] == "awaiting_confirmation" and desk.ready(number) == ["confirm_receipt"]

    clock.advance(timedelta(days=3))  # five days without an answer
    assert sweep(services) == 1
    record = desk.record(number)
    assert record["status"] == "closed" and record["closed_at"] is not None
    assert record["details"]["closed_reason"] == "auto-closed: receipt not confirmed within 5 days"
    assert record["details"].get("rating") is None
    assert desk.ready(number) == []
    [told] = [n for n in desk.notifications("rita") if n["subject"] == f"{number} closed: {record['title']}"]
    assert "Reason: auto-closed: receipt not confirmed within 5 days" in told["body"]


def test_the_reminder_words_the_delay_in_a_chinese_requesters_language(desk: Desk, services, clock):
    """The diagram prints auto_close_after as the process holds it (P5D); the notice words it."""
    services.users.set_locale(services.users.get_by_username("rita"), "zh_CN")
    services.session.commit()
    number = fulfilled(desk)
    clock.advance(timedelta(days=2, hours=1))
    assert sweep(services) == 1
    [reminder] = [n for n in services.session.scalars(select(Notification).where(
        Notification.user_id == services.users.get_by_username("rita").id)) if n.subject.startswith("请确认")]
    assert number in reminder.subject and "交付后 5 天 自动关闭" in reminder.body
    assert "5 days" not in reminder.body and "P5D" not in reminder.body


def test_a_confirmation_after_the_reminder_closes_the_request_and_stops_the_timer(desk: Desk, services, clock):
    number = fulfilled(desk)
    clock.advance(timedelta(days=2, hours=1))
    assert sweep(services) == 1 and len(notices(services, number, "Please confirm receipt")) == 1
    desk.complete(number, "confirm_receipt", "rita", {"received": "yes", "rating": 4})
    record = desk.record(number)
    assert record["status"] == "closed" and record["details"].get("closed_reason") is None
    assert record["details"]["rating"] == 4
    clock.advance(timedelta(days=10))
    assert sweep(services) == 0


def test_not_received_starts_a_new_round_with_its_own_timers(desk: Desk, services, clock):
    number = fulfilled(desk)
    clock.advance(timedelta(days=4))
    # 4. "not received" needs a comment, not a rating
    desk.complete(number, "confirm_receipt", "rita", {"received": "no", "rating_comment": "Nothing arrived."})
    assert desk.record(number)["status"] == "fulfilment"
    desk.complete(number, "fulfil_request", "nina", {"fulfilment_notes": "Delivered to the right desk this time."})
    clock.advance(timedelta(days=4))  # nine days after the first delivery, four after the second
    sweep(services)
    assert desk.record(number)["status"] == "awaiting_confirmation"
    clock.advance(timedelta(days=1, minutes=1))
    sweep(services)
    assert desk.record(number)["status"] == "closed"


def test_a_diagram_or_test_may_set_shorter_confirmation_times(desk: Desk, services, clock):
    rita = services.users.get_by_username("rita")
    instance = services.instances.start_process(
        rita, "catalog_request", {**LAPTOP, "item": "HW-LAPTOP", "confirm_reminder_after": "PT1H",
                                  "auto_close_after": "PT2H"}, validated=True)
    services.session.commit()
    number = desk.instance(instance.id)["data"]["record_number"]
    desk.complete(number, "approve_manager", "mona", {"approved": True})
    desk.complete(number, "fulfil_request", "nina", {"fulfilment_notes": "Handed over."})
    clock.advance(timedelta(hours=1, minutes=1))
    assert sweep(services) == 1
    [reminder] = notices(services, number, "Please confirm receipt")
    assert "closed automatically after 2 hours" in reminder.body
    clock.advance(timedelta(hours=1))
    assert sweep(services) == 1
    record = desk.record(number)
    assert record["status"] == "closed"
    assert record["details"]["closed_reason"] == "auto-closed: receipt not confirmed within 2 hours"


# -- 4. the request forms' checks ---------------------------------------------------------------------------


def test_a_laptop_cannot_be_needed_in_the_past(desk: Desk, clock):
    refused = order(desk, status=422, needed_by="1999-01-01")
    assert refused["details"]["fields"]["needed_by"] == ["must not be before 2026-01-05"]
    refused = order(desk, "HW-LAPTOP-PERF", status=422, workload="cad", needed_by="2026-01-04",
                    justification="CAD models of the new plant need a workstation GPU.")
    assert list(refused["details"]["fields"]) == ["needed_by"]
    assert order(desk, needed_by=clock.now().date().isoformat())["number"]


def test_a_replacement_laptop_needs_the_old_asset_tag(desk: Desk):
    refused = order(desk, status=422, replacement=True)
    [message] = refused["details"]["fields"]["old_asset_tag"]
    assert message.startswith("is required when")
    created = order(desk, replacement=True, old_asset_tag="AT-123456")
    assert created["number"]


def test_a_rating_is_needed_only_for_what_was_received(desk: Desk):
    number = fulfilled(desk)
    refused = desk.complete(number, "confirm_receipt", "rita", {"received": "yes"}, status=422)
    [message] = refused["details"]["fields"]["rating"]
    assert message.startswith("is required when")
    desk.complete(number, "confirm_receipt", "rita", {"received": "no", "rating_comment": "It never came."})
    assert desk.record(number)["status"] == "fulfilment"
