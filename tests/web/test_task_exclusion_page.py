"""A task page tells someone whom separation of duties keeps from the task so, instead of
offering a form whose answer would be refused (QA: a budget owner saw the approval form of their
own request and learned only on sending it that they may not approve it)."""

from __future__ import annotations

from typing import Any

from tests.http.desk import LAPTOP, Desk
from tests.web.conftest import WebClient, text_of


def test_the_budget_owners_own_request_shows_why_not_a_form(desk: Desk, services: Any, web: WebClient,
                                                           web_factory: Any):
    ordered = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("bob"), json={"data": LAPTOP})
    assert ordered.status_code == 201, ordered.get_json()
    number = ordered.get_json()["number"]
    assert desk.record(number)["details"]["approval"] == "budget_owner"  # bob has no line manager
    task_id = desk.task_id(number, "approve_budget")

    web.login("bob")
    page = text_of(web.get(f"/tasks/{task_id}"))
    assert 'id="task-refused"' in page and "you may not approve your own request" in page
    assert 'name="approved"' not in page  # no approval form
    # the API's detail says it too
    detail = desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth("bob")).get_json()
    assert detail["exclusion"] == "you may not approve your own request"

    # another budget owner gets the form
    services.users.add_member(services.users.get_by_username("ada"), "BudgetOwners", "ada")
    services.session.commit()
    other = web_factory()
    other.login("ada")
    assert 'name="approved"' in text_of(other.get(f"/tasks/{task_id}"))
