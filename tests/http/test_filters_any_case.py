"""Usernames and group names ignore letter case (README), in the record list's and the history's
filters too: ``assignee=ALEX``, ``requester=Rita``, ``group=servicedesk`` and ``actor=ALEX`` find
what the stored spelling finds, through the API (GET /api/v1/tickets) and the pages (/tickets,
/audit, /audit.csv); the lookups stay on the indexes (the user's id, the group's stored name)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import TEST_PASSWORD, sent_statements
from tests.web.conftest import WebClient


def made(services: Any, number: str, requester: str, *, group: str | None = None, assignee: str | None = None) -> str:
    ticket = services.records.open_record("incident", number, services.users.get_by_username(requester),
                                          {"title": f"Record {number}"})
    ticket.status, ticket.assignment_group = "in_progress", group
    ticket.assignee = services.users.get_by_username(assignee) if assignee else None
    return number


@pytest.fixture()
def records(services: Any, users: Any) -> dict[str, str]:
    """Three records: rita's (ServiceDesk, alex), rick's (ServiceDesk, nobody), rita's (a group
    name no group has, as a process may write it; alex)."""
    numbers = {
        "desk_alex": made(services, "INC-000101", "rita", group="ServiceDesk", assignee="alex"),
        "desk_nobody": made(services, "INC-000102", "rick", group="ServiceDesk"),
        "field": made(services, "INC-000103", "rita", group="Field Ops", assignee="alex"),
    }
    services.session.commit()
    return numbers


def listed(client: Any, headers: dict[str, str], query: str) -> list[str]:
    response = client.get(f"/api/v1/tickets?per_page=100&sort=number&{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["total"] == len(body["items"])
    return [item["number"] for item in body["items"]]


def test_the_api_list_filters_people_and_groups_in_any_case(client, auth, records):
    headers = auth("alex")
    assigned = [records["desk_alex"], records["field"]]
    for spelling in ("alex", "ALEX", "Alex", " aLeX "):
        assert listed(client, headers, f"assignee={spelling}") == assigned, spelling
    ritas = [records["desk_alex"], records["field"]]
    for spelling in ("rita", "Rita", "RITA"):
        assert listed(client, headers, f"requester={spelling}") == ritas, spelling
    desk = [records["desk_alex"], records["desk_nobody"]]
    for spelling in ("ServiceDesk", "servicedesk", "SERVICEDESK"):
        assert listed(client, headers, f"group={spelling}") == desk, spelling
    # a group value no group has (as the list offers it: filter_values) still matches as stored
    assert listed(client, headers, "group=Field%20Ops") == [records["field"]]
    # together, and an unknown name finds nothing (not every record)
    assert listed(client, headers, "assignee=ALEX&requester=RITA&group=servicedesk") == [records["desk_alex"]]
    assert listed(client, headers, "assignee=nobody") == []
    assert listed(client, headers, "requester=Nobody") == []
    assert listed(client, headers, "group=NoSuchGroup") == []


def test_a_requester_filtering_in_another_case_still_sees_only_her_records(client, auth, records):
    # the filter narrows what the user may see, it does not widen it
    assert listed(client, auth("rita"), "assignee=ALEX") == [records["desk_alex"], records["field"]]
    assert listed(client, auth("rick"), "assignee=ALEX") == []
    assert listed(client, auth("rick"), "requester=RICK") == [records["desk_nobody"]]


def test_the_record_list_page_filters_in_any_case(app, records):
    web = WebClient(app.test_client())
    web.login("alex", TEST_PASSWORD)

    def shown(query: str) -> set[str]:
        page = web.get(f"/tickets?{query}")
        assert page.status_code == 200
        return set(re.findall(r"INC-0001\d\d", page.get_data(as_text=True))) & set(records.values())

    assert shown("assignee=ALEX") == shown("assignee=alex") == {records["desk_alex"], records["field"]}
    assert shown("requester=Rita") == {records["desk_alex"], records["field"]}
    assert shown("group=servicedesk") == {records["desk_alex"], records["desk_nobody"]}


def test_the_history_filters_its_actor_in_any_case(app, client, auth, services, records):
    for body in ("first", "second"):
        response = client.post(f"/api/v1/tickets/{records['desk_alex']}/comments", headers=auth("alex"),
                               json={"body": body})
        assert response.status_code == 201, response.get_json()
    services.audit.record("timer_fired", None, actor_name="scheduler", payload={"test": True})
    services.session.commit()
    web = WebClient(app.test_client())
    web.login("aude", TEST_PASSWORD)

    def events(query: str) -> list[str]:
        page = web.get(f"/audit?{query}")
        assert page.status_code == 200
        return re.findall(r'<tr role="row" id="event-(\d+)"', page.get_data(as_text=True))

    by_alex = events("actor=alex&event=comment_added")
    assert len(by_alex) == 2
    for spelling in ("ALEX", "Alex", " alex "):
        assert events(f"actor={spelling}&event=comment_added") == by_alex, spelling
    # the platform's own actors have no user: their name in any case
    assert len(events("actor=scheduler&event=timer_fired")) == 1
    assert events("actor=Scheduler&event=timer_fired") == events("actor=scheduler&event=timer_fired")
    assert events("actor=nobody") == []
    # the export reads the same search
    exported = web.get("/audit.csv?actor=ALEX&event=comment_added").get_data(as_text=True)
    assert len([line for line in exported.splitlines()[1:] if '","comment_added","alex","' in line]) == 2


def test_the_filters_stay_on_the_indexes(connection, services, records, users):
    """The typed name is resolved once, by the lower() index of its table, and the records are then
    read by the user's id and the group's stored name: the list's own query compares no username
    and folds no column of the record."""
    with sent_statements(connection) as sent:
        rows, total = services.records.list_tickets(users["alex"], {"assignee": "ALEX", "group": "servicedesk"},
                                                    "number", 1, 50)
    assert [t.number for t in rows] == [records["desk_alex"]] and total == 1
    lookups = [s for s in sent if s.startswith("SELECT") and "FROM ticket" not in s]
    assert len(lookups) == 2 and all("lower(" in s for s in lookups), lookups
    if connection.dialect.name == "sqlite":
        plans = [" ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {s}", ("x",)))
                 for s in lookups]
        assert "INDEX uq_group_name_lower" in plans[0] and "INDEX uq_user_username_lower" in plans[1], plans
    listing = [s for s in sent if "FROM ticket" in s]
    assert listing, sent
    for statement in listing:
        where = statement.split(" WHERE ", 1)[1]
        assert "username" not in where and "lower(" not in where, statement
        assert "ticket.assignee_id = " in where and "ticket.assignment_group IN (" in where, statement


def test_a_user_who_shares_a_platform_actors_name_does_not_hide_its_events(services, users):
    """Filtering the history by "scheduler" finds the sweep's events even once a user of that name
    exists (their own events are found too)."""
    from app.services.audit import AuditFilters

    services.audit.record("timer_fired", None, payload={"n": 1}, actor_name="scheduler")
    services.session.commit()
    before = services.audit.search(users["aude"], AuditFilters(actor="Scheduler"), 1, 50)
    services.users.create_user("scheduler", "password-1234", roles=["requester"])
    services.session.commit()
    after = services.audit.search(users["aude"], AuditFilters(actor="SCHEDULER"), 1, 50)
    assert [r.event.event_type for r in before.rows] == ["timer_fired"]
    assert "timer_fired" in [r.event.event_type for r in after.rows]
