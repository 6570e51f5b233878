"""A page of instances costs the same statements whatever its size: the open tasks of the whole
page come in one query, their records' priority and SLA due instant in one more, and each listed
instance shows exactly what its own answer (``GET /instances/<id>``) shows.

The instances: the queue of tests/http/test_task_queue_order.py (records A to E, F triaged as a P1
with several open tasks, X without a record), three more incidents (one with its triage task
claimed), one cancelled incident (a record, no open task) and one more instance without a record:
twelve, all started by rita.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import HARNESS_STATEMENTS, sent_statements
from tests.http.desk import Desk
from tests.http.test_task_queue_order import at, build_queue, incident

#: The test's own transaction control (the app's sessions join it through savepoints).
INSTANCES = 12


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


@pytest.fixture()
def instances(desk: Desk, services, clock) -> list[int]:
    """The ids of the twelve instances, newest first (the list's order)."""
    build_queue(desk, services, clock)
    clock.set(at(13, 0))
    incident(desk, "P2", "Laptop will not boot")
    claimed = incident(desk, "P4", "Desk phone crackles")
    desk.client.post(f"/api/v1/tasks/{desk.task_id(claimed, 'triage')}/claim", headers=desk.auth("alex"))
    cancelled = desk.record(incident(desk, "P3", "Typo in the intranet"))["instance_id"]
    response = desk.client.post(f"/api/v1/instances/{cancelled}/cancel", headers=desk.auth("alex"),
                                json={"reason": "duplicate"})
    assert response.status_code == 200, response.get_json()
    desk.start("rita", "lane_ticket", {"title": "Still no record"})
    incident(desk, "P1", "Website down")
    page = listing(desk, INSTANCES)
    assert page["total"] == INSTANCES, page["total"]
    return [item["id"] for item in page["items"]]


def listing(desk: Desk, per_page: int, who: str = "aude") -> dict[str, Any]:
    response = desk.client.get(f"/api/v1/instances?per_page={per_page}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def counted(desk: Desk, connection: Any, per_page: int, who: str) -> tuple[int, dict[str, Any]]:
    """The statements one page of ``per_page`` instances costs, and the page."""
    with sent_statements(connection) as sent:
        page = listing(desk, per_page, who)
    return len([s for s in sent if not s.upper().startswith(HARNESS_STATEMENTS)]), page


@pytest.mark.parametrize("who", ["aude", "rita"])  # all instances by role; by being their starter
def test_a_page_costs_the_same_statements_whatever_its_size(desk: Desk, instances, connection, who):
    listing(desk, 1, who)  # warm: the caller's token and anything a first request reads once
    small, two = counted(desk, connection, 2, who)
    large, twelve = counted(desk, connection, INSTANCES, who)
    assert len(two["items"]) == 2 and len(twelve["items"]) == INSTANCES
    # the small page's instances have open tasks (with and without a record): nothing is skipped there
    assert all(item["open_tasks"] for item in two["items"])
    assert large == small, (small, large)


def test_each_listed_instance_shows_what_its_own_answer_shows(desk: Desk, instances):
    page = listing(desk, INSTANCES)
    assert [item["id"] for item in page["items"]] == instances
    tasks = [task for item in page["items"] for task in item["open_tasks"]]
    # every kind of task is on the page: records of each priority, none, several of one instance, claimed
    assert {task["priority"] for task in tasks} == {"P1", "P2", "P3", "P4", None}
    assert any(len(item["open_tasks"]) > 1 for item in page["items"])
    assert any(not item["open_tasks"] for item in page["items"])
    assert any(task["claimed_by"] == "alex" for task in tasks)
    assert any(task["sla_due_at"] for task in tasks)
    for item in page["items"]:
        own = desk.instance(item["id"])
        assert [(t["id"], t["priority"], t["sla_due_at"]) for t in item["open_tasks"]] == \
            [(t["id"], t["priority"], t["sla_due_at"]) for t in own["open_tasks"]], item["id"]
        assert item == own, item["id"]  # the whole answer, field by field
