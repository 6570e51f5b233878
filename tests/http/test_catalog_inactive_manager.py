"""The catalog's prediction of who approves agrees with the running request when the requester's
line manager is deactivated: both send the request to the budget owners."""

from __future__ import annotations

import pytest

from app.services.catalog import CatalogService
from tests.http.desk import LAPTOP, Desk


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def order_laptop(desk: Desk) -> str:
    response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["number"])


def test_an_inactive_line_manager_is_predicted_and_run_as_the_budget_owners(desk: Desk, services):
    rita = services.users.get_by_username("rita")
    assert CatalogService.expected_approval("manager", 950, rita) == ("line_manager", "mona")
    assert desk.client.post("/api/v1/users/mona/deactivate", headers=desk.auth("ada")).status_code == 200
    services.session.expire_all()
    rita = services.users.get_by_username("rita")
    assert rita.manager is not None and rita.manager.active is False  # still her manager on paper
    assert CatalogService.expected_approval("manager", 950, rita) == ("budget_owner", None)
    number = order_laptop(desk)  # the running request decides the same
    assert desk.record(number)["details"]["approval"] == "budget_owner"
    assert desk.ready(number) == ["approve_budget"]
    # back in office, the prediction and the process both go to her again
    assert desk.client.post("/api/v1/users/mona/reactivate", headers=desk.auth("ada")).status_code == 200
    services.session.expire_all()
    assert CatalogService.expected_approval("manager", 950, services.users.get_by_username("rita")) == (
        "line_manager", "mona")
    assert desk.record(order_laptop(desk))["details"]["approval"] == "line_manager"
