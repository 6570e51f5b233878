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

from typing import Any

import pytest
from sqlalchemy import select

from app.models import Notification, Ticket
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
