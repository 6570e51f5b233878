"""The inbox's order through the API: ``sort=due`` (the record's SLA due instant, soonest first),
``sort=priority`` (P1 first, then by due) or ``sort=age`` (the default, oldest first), with the
record's ``priority`` and ``sla_due_at`` on every task; a task without a record or a running SLA
clock comes last. The order never changes what is on a list.

The queue (the frozen clock starts on Monday 2026-01-05 09:00 UTC; the built-in SLA targets are
24x7, so an incident's response is due its target after it opened)::

    opened  record  priority  response due  the ServiceDesk triage task
    09:00   A       P3        13:00         in alex's queue
    09:01   F       P1        (triaged at once to NetworkTeam: its resolution is due 13:01)
    09:05   B       P4        17:05         in alex's queue
    12:50   C       P1        13:05         in alex's queue
    12:55   D       P2        13:55         in alex's queue
    12:56   X       (a lane_ticket instance: no record at all)
    12:57   E       P3        16:57         in alex's queue

F's investigation (NetworkTeam) would head alex's queue by due and by priority, were it in it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from app.errors import ValidationFailed
from tests.conftest import fixture_files, sent_statements
from tests.http.desk import Desk
from tests.http.helpers import assert_error

MONDAY = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
LEVELS = {"P1": ("high", "high"), "P2": ("high", "medium"), "P3": ("medium", "medium"), "P4": ("low", "low")}


def at(hour: int, minute: int) -> datetime:
    return MONDAY.replace(hour=hour, minute=minute)


def incident(desk: Desk, priority: str, title: str) -> str:
    impact, urgency = LEVELS[priority]
    data = {"title": title, "description": "Reported by phone", "category": "network", "impact": impact, "urgency": urgency}
    return str(desk.start("rita", "incident_management", data)["data"]["record_number"])


def build_queue(desk: Desk, services: Any, clock: Any) -> dict[str, Any]:
    """The records of the module docstring; answers each name's triage task id (X: its task; F:
    the number of its record), and ``F_investigate``."""
    services.definitions.deploy(services.users.get_by_username("olga"), fixture_files(
        "lane_ticket.bpmn", "ticket_priority.dmn", "triage-schema.json", "approve-schema.json"))
    services.session.commit()
    numbers: dict[str, str] = {}
    clock.set(at(9, 0))
    numbers["A"] = incident(desk, "P3", "Printer jams on every job")
    clock.set(at(9, 1))
    numbers["F"] = incident(desk, "P1", "Core switch down")
    desk.complete(numbers["F"], "triage", "alex", {"category": "network", "priority": "P1", "assignment_group": "NetworkTeam"})
    clock.set(at(9, 5))
    numbers["B"] = incident(desk, "P4", "New mouse please")
    clock.set(at(12, 50))
    numbers["C"] = incident(desk, "P1", "Payroll system down")
    clock.set(at(12, 55))
    numbers["D"] = incident(desk, "P2", "Mail is slow for the finance team")
    clock.set(at(12, 56))
    lane = desk.start("rita", "lane_ticket", {"title": "No record"})
    clock.set(at(12, 57))
    numbers["E"] = incident(desk, "P3", "Second screen flickers")
    clock.set(at(12, 58))
    ids: dict[str, Any] = {name: desk.task_id(number, "triage") for name, number in numbers.items() if name != "F"}
    ids["X"] = next(t["id"] for t in lane["open_tasks"] if t["bpmn_id"] == "triage")
    ids["F_investigate"] = desk.task_id(numbers["F"], "investigate")
    ids["numbers"] = numbers
    return ids


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


@pytest.fixture()
def queue(desk: Desk, services, clock) -> dict[str, Any]:
    return build_queue(desk, services, clock)


def listing(desk: Desk, who: str, query: str = "") -> dict[str, Any]:
    response = desk.client.get(f"/api/v1/tasks?per_page=200{query}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def order(desk: Desk, who: str, query: str = "") -> list[int]:
    body = listing(desk, who, query)
    ids = [t["id"] for t in body["items"]]
    assert body["total"] == len(ids), body
    return ids


def test_each_sort_key_orders_the_group_queue(desk: Desk, queue):
    q = queue
    age = [q["A"], q["B"], q["C"], q["D"], q["X"], q["E"]]
    assert order(desk, "alex") == age  # the API's default stays oldest first
    assert order(desk, "alex", "&sort=age") == age
    assert order(desk, "alex", "&sort=due") == [q["A"], q["C"], q["D"], q["E"], q["B"], q["X"]]
    # P1, P2, the two P3 by due (A 13:00 before E 16:57), P4, no record
    assert order(desk, "alex", "&sort=priority") == [q["C"], q["D"], q["A"], q["E"], q["B"], q["X"]]


def test_pages_of_a_sorted_queue_neither_repeat_nor_skip_a_task(desk: Desk, queue):
    for sort in ("due", "priority", "age"):
        whole = order(desk, "alex", f"&sort={sort}")
        pages = []
        for page in (1, 2, 3):
            body = desk.client.get(f"/api/v1/tasks?sort={sort}&per_page=2&page={page}", headers=desk.auth("alex")).get_json()
            assert body["total"] == 6, body
            pages += [t["id"] for t in body["items"]]
        assert pages == whole, sort


def test_every_task_carries_its_records_priority_and_sla_due(desk: Desk, queue):
    items = {t["id"]: t for t in listing(desk, "alex", "&sort=due")["items"]}
    expected = {"A": ("P3", at(13, 0)), "B": ("P4", at(17, 5)), "C": ("P1", at(13, 5)), "D": ("P2", at(13, 55)),
                "E": ("P3", at(16, 57))}
    for name, (priority, due) in expected.items():
        task = items[queue[name]]
        assert task["priority"] == priority, (name, task)
        assert datetime.fromisoformat(task["sla_due_at"]) == due, (name, task)
    assert items[queue["X"]]["priority"] is None and items[queue["X"]]["sla_due_at"] is None


def test_the_detail_and_the_claim_answer_the_same_fields(desk: Desk, queue):
    detail = desk.client.get(f"/api/v1/tasks/{queue['C']}", headers=desk.auth("alex")).get_json()
    assert detail["priority"] == "P1" and datetime.fromisoformat(detail["sla_due_at"]) == at(13, 5)
    assert detail["form_schema"] and detail["context"]  # the detail is still whole
    claimed = desk.client.post(f"/api/v1/tasks/{queue['D']}/claim", headers=desk.auth("alex"))
    assert claimed.status_code == 200, claimed.get_json()
    assert claimed.get_json()["priority"] == "P2" and datetime.fromisoformat(claimed.get_json()["sla_due_at"]) == at(13, 55)
    no_record = desk.client.post(f"/api/v1/tasks/{queue['X']}/claim", headers=desk.auth("alex")).get_json()
    assert no_record["priority"] is None and no_record["sla_due_at"] is None
    # claimed, they are in Mine, sorted the same way
    assert order(desk, "alex", "&mine=1&sort=due") == [queue["D"], queue["X"]]
    assert order(desk, "alex", "&mine=1&sort=priority") == [queue["D"], queue["X"]]


def test_a_breached_record_stays_first_by_due_its_due_time_in_the_past(desk: Desk, queue, clock):
    clock.set(at(14, 0))  # A (13:00), C (13:05) and D (13:55) have breached their response targets
    body = listing(desk, "alex", "&sort=due")
    assert [t["id"] for t in body["items"]] == [queue[n] for n in ("A", "C", "D", "E", "B", "X")]
    assert datetime.fromisoformat(body["items"][0]["sla_due_at"]) == at(13, 0)


def test_a_task_of_another_group_is_on_no_list_whatever_the_sort(desk: Desk, queue):
    hidden = queue["F_investigate"]
    for sort in ("", "&sort=age", "&sort=due", "&sort=priority"):
        for mine in ("", "&mine=1"):
            ids = order(desk, "alex", sort + mine)
            assert hidden not in ids, (sort, mine)
            assert len(ids) == (0 if mine else 6), (sort, mine)
        # nina (NetworkTeam) sees exactly it, and not the ServiceDesk's triage tasks
        assert order(desk, "nina", sort) == [hidden], sort
        assert order(desk, "rita", sort) == [], sort  # the requester works on none of them


def test_an_unknown_sort_is_refused_naming_the_field_and_the_allowed_values(desk: Desk, queue, services):
    body = assert_error(desk.client.get("/api/v1/tasks?sort=sla", headers=desk.auth("alex")), 422, "validation_failed")
    message = " ".join(body["details"]["fields"]["sort"])
    assert all(value in message for value in ("due", "priority", "age")), body
    assert_error(desk.client.get("/api/v1/tasks?sort=", headers=desk.auth("alex")), 422, "validation_failed")
    with pytest.raises(ValidationFailed) as refused:
        services.tasks.list_tasks(services.users.get_by_username("alex"), mine=False, process_id=None, page=1,
                                  per_page=10, sort="-due")
    assert "sort" in refused.value.details["fields"]


def test_the_openapi_document_states_the_sort_values_and_the_new_fields(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    parameters = {p["name"]: p for p in spec["paths"]["/api/v1/tasks"]["get"]["parameters"]}
    assert parameters["sort"]["schema"]["enum"] == ["due", "priority", "age"]
    assert parameters["sort"]["schema"]["default"] == "age"
    fields = spec["components"]["schemas"]["InboxTaskOut"]["properties"]
    assert {"priority", "sla_due_at"} <= set(fields)


def test_a_page_reads_no_clock_and_its_records_in_one_query_however_many_tasks(desk: Desk, queue, connection):
    def reads(query: str) -> tuple[int, int]:
        with sent_statements(connection) as sent:
            assert len(listing(desk, "alex", query)["items"]) == 6
        records = [s for s in sent if s.startswith("SELECT ticket.instance_id, ticket.priority, ticket.sla_due_at")]
        return sum("sla_clock" in statement for statement in sent), len(records)

    # the order and the page's priorities and due times come from the records' own columns
    for sort in ("age", "due", "priority"):
        assert reads(f"&sort={sort}") == (0, 1), sort
