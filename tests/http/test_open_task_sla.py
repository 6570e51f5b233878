"""An instance's and a record's open tasks carry their record's ``priority`` and ``sla_due_at``
like the inbox's (``TaskOut``), in every answer that shows them: an instance, a page of instances,
a record, a started instance, a completed task. One query per answer finds them, however many
instances and tasks it shows, and none reads an SLA clock.

The queue is that of tests/http/test_task_queue_order.py (read its docstring): records A to E, F of
another group, X without a record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import sent_statements
from tests.http.desk import Desk
from tests.http.test_task_queue_order import at, build_queue

RECORD_READ = "SELECT ticket.instance_id, ticket.priority, ticket.sla_due_at"


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


@pytest.fixture()
def queue(desk: Desk, services, clock) -> dict[str, Any]:
    return build_queue(desk, services, clock)


def get(desk: Desk, path: str, who: str = "aude") -> dict[str, Any]:
    response = desk.client.get(path, headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def due(task: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(task["sla_due_at"]) if task["sla_due_at"] else None


def test_an_instance_and_a_record_show_their_open_tasks_as_the_inbox_does(desk: Desk, queue):
    inbox = {t["id"]: t for t in get(desk, "/api/v1/tasks?per_page=100", "alex")["items"]}
    numbers = queue["numbers"]
    for name in "ABCDE":
        record = desk.record(numbers[name])
        instance = desk.instance(record["instance_id"])
        for shown in (record["open_tasks"], instance["open_tasks"]):
            [task] = shown
            assert (task["priority"], task["sla_due_at"]) == (inbox[task["id"]]["priority"], inbox[task["id"]]["sla_due_at"])
            assert task["priority"] == record["priority"] and due(task) is not None, (name, task)
    # F: triaged as a P1 (the major incident path: several open tasks), its resolution due 4 h
    # after it opened (09:01)
    major = desk.record(numbers["F"])["open_tasks"]
    assert len(major) > 1 and {(t["priority"], due(t)) for t in major} == {("P1", at(13, 1))}
    # X has no record
    lane = desk.instance(inbox[queue["X"]]["instance_id"])
    assert [(t["priority"], t["sla_due_at"]) for t in lane["open_tasks"]] == [(None, None)]


def test_a_started_instance_and_a_completed_task_answer_with_them(desk: Desk, queue, clock):
    started = desk.start("rita", "incident_management", {"title": "Scanner jams", "description": "3rd floor",
                                                          "category": "hardware", "impact": "high", "urgency": "high"})
    [triage] = started["open_tasks"]
    assert triage["priority"] == "P1" and due(triage) == clock.now() + timedelta(minutes=15)  # P1's response
    number = started["data"]["record_number"]
    done = desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P2", "assignment_group": "NetworkTeam"})
    [investigate] = done["open_tasks"]
    assert investigate["bpmn_id"] == "investigate" and investigate["priority"] == "P2"
    assert due(investigate) == datetime.fromisoformat(desk.record(number)["opened_at"]) + timedelta(hours=8)  # P2's resolution


def test_one_query_finds_them_for_a_whole_page_of_instances(desk: Desk, queue, connection):
    with sent_statements(connection) as sent:
        page = get(desk, "/api/v1/instances?per_page=50")
    shown = [task for instance in page["items"] for task in instance["open_tasks"]]
    assert len(page["items"]) >= 7 and len(shown) >= 7
    assert {task["priority"] for task in shown} == {"P1", "P2", "P3", "P4", None}
    assert len([s for s in sent if s.startswith(RECORD_READ)]) == 1
    assert not [s for s in sent if "sla_clock" in s]
    for path in (f"/api/v1/instances/{shown[0]['instance_id']}", f"/api/v1/tickets/{queue['numbers']['C']}"):
        with sent_statements(connection) as sent:
            get(desk, path)
        assert len([s for s in sent if s.startswith(RECORD_READ)]) == 1, path


def test_the_openapi_document_names_them_on_every_task(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    for name in ("TaskOut", "InboxTaskOut"):
        assert {"priority", "sla_due_at"} <= set(schemas[name]["properties"]), name
    for owner in ("InstanceOut", "TicketDetailOut"):
        assert schemas[owner]["properties"]["open_tasks"]["items"]["$ref"].endswith("/TaskOut"), owner
