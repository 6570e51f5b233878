"""A service desk agent logs a record for somebody else (``on_behalf_of``).

The caller on the phone is the record's requester, as if they had raised it: the record is in
their list, their confirmation task is theirs, they are told the number; the record names the
agent who logged it (``opened_by``) and the audit trail keeps who did what. Only agents and admins
may; the person must be an active user who could start the process themselves.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, Ticket
from tests.http.desk import LAPTOP, Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN"}
PROBLEM = {"title": "VPN tunnels drop every morning", "description": "Between 08:30 and 09:00."}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def start(desk: Desk, who: str, for_whom: Any, process_id: str = "incident_management",
          data: dict[str, Any] | None = None) -> Any:
    return desk.client.post("/api/v1/instances", headers=desk.auth(who),
                            json={"process_id": process_id, "data": data or INCIDENT, "on_behalf_of": for_whom})


def tickets(services: Any) -> int:
    services.session.rollback()
    count = services.session.scalar(select(func.count()).select_from(Ticket))
    services.session.rollback()
    return int(count or 0)


def started_events(services: Any) -> list[tuple[str, dict[str, Any]]]:
    services.session.rollback()
    found = [(e.actor, e.payload) for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "instance_started").order_by(AuditEvent.seq))]
    services.session.rollback()
    return found


def test_an_agent_logs_a_callers_incident_which_is_then_the_callers(desk: Desk, services):
    answer = start(desk, "alex", "RITA ")  # any letter case, spaces around
    assert answer.status_code == 201, answer.get_json()
    number = answer.get_json()["data"]["record_number"]
    started = desk.instance(answer.get_json()["id"])
    assert (started["data"].get("requester"), started.get("started_by")) == ("rita", "rita"), started

    record = desk.record(number, "rita")  # she reads it: it is hers
    assert (record["requester"], record["opened_by"]) == ("rita", "alex")
    mine = desk.client.get("/api/v1/tickets?requester=rita", headers=desk.auth("rita")).get_json()["items"]
    assert [t["number"] for t in mine] == [number]

    # she is told, with the number and who logged it; alex is not told about his own call
    [told] = [n for n in desk.notifications("rita") if number in n["subject"]]
    assert told["subject"] == f"{number} was logged for you: {INCIDENT['title']}"
    assert told["body"].startswith(f"alex logged {number} ") and f"/tickets/{number}" in told["body"]
    assert not [n for n in desk.notifications("alex") if "logged for you" in n["subject"]]

    # the audit trail: alex acted, for rita
    [(actor, payload)] = started_events(services)
    assert actor == "alex" and payload["on_behalf_of"] == "rita"

    # the work goes on as for her own incident: she confirms the resolution
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "New certificate",
                                                  "cause_category": "configuration"})
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "rating": 5})
    assert desk.record(number)["status"] == "closed"


def test_the_records_an_agent_logged_are_listed_by_opened_by(desk: Desk):
    logged = start(desk, "alex", "rita").get_json()["data"]["record_number"]
    start(desk, "alex", None)  # his own
    desk.start("rita", "incident_management", INCIDENT)  # hers, raised by her
    listed = desk.client.get("/api/v1/tickets?opened_by=ALEX", headers=desk.auth("nina")).get_json()["items"]
    assert [t["number"] for t in listed] == [logged]
    assert desk.client.get("/api/v1/tickets?opened_by=nobody", headers=desk.auth("nina")).get_json()["items"] == []


def test_an_incident_logged_for_oneself_or_nobody_names_no_opener(desk: Desk):
    for named in ("alex", "", None):
        answer = start(desk, "alex", named)
        assert answer.status_code == 201, answer.get_json()
        record = desk.record(answer.get_json()["data"]["record_number"])
        assert (record["requester"], record["opened_by"]) == ("alex", None)


def test_a_requester_may_not_log_for_somebody_else(desk: Desk, services):
    body = assert_error(start(desk, "rita", "alex"), 403, "forbidden")
    assert body["details"]["field"] == "on_behalf_of"
    assert tickets(services) == 0


@pytest.mark.parametrize("named", ["nobody", "x" * 255, "nobody@example.test"])
def test_the_caller_must_be_an_active_user(desk: Desk, services, named):
    body = assert_error(start(desk, "alex", named), 422)
    assert body["details"]["fields"]["on_behalf_of"] == [f"{named}: no such active user"]
    assert tickets(services) == 0


def test_a_wrong_caller_and_a_wrong_form_are_refused_together(desk: Desk, services):
    body = assert_error(start(desk, "alex", "nobody", data={**INCIDENT, "impact": "huge", "title": ""}), 422)
    assert set(body["details"]["fields"]) == {"on_behalf_of", "impact", "title"}
    answer = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("alex"),
                              json={"data": {**LAPTOP, "justification": ""}, "on_behalf_of": "nobody"})
    assert set(assert_error(answer, 422)["details"]["fields"]) == {"on_behalf_of", "justification"}
    assert tickets(services) == 0


def test_a_caller_is_found_by_their_e_mail_address(desk: Desk, services):
    services.users.update_user(services.users.get_by_username("ada"), "rita", {"email": "Rita.Requester@example.test"})
    services.session.commit()
    answer = start(desk, "alex", "rita.requester@EXAMPLE.test")
    assert answer.status_code == 201, answer.get_json()
    assert desk.record(answer.get_json()["data"]["record_number"])["requester"] == "rita"


def test_a_leaver_is_no_caller(desk: Desk, services):
    services.users.deactivate_user(services.users.get_by_username("ada"), "rita")
    services.session.commit()
    body = assert_error(start(desk, "alex", "rita"), 422)
    assert body["details"]["fields"]["on_behalf_of"] == ["rita: no such active user"]
    assert tickets(services) == 0


def test_the_caller_must_be_able_to_start_the_process_themselves(desk: Desk, services):
    """Problems are raised by the desk's staff: a requester is never made a problem's requester."""
    body = assert_error(start(desk, "alex", "rita", "problem_management", PROBLEM), 422)
    assert body["details"]["fields"]["on_behalf_of"] == ["rita may not start this process"]
    assert tickets(services) == 0
    answer = start(desk, "alex", "nina", "problem_management", PROBLEM)  # an agent may raise one
    assert answer.status_code == 201, answer.get_json()
    assert desk.record(answer.get_json()["data"]["record_number"])["requester"] == "nina"


def test_an_overlong_name_is_refused_by_the_schema(desk: Desk, services):
    body = assert_error(start(desk, "alex", "x" * 256), 422)
    assert "on_behalf_of" in str(body["details"])
    assert tickets(services) == 0


def test_an_agent_orders_a_laptop_for_a_colleague_whose_manager_approves_it(desk: Desk, services):
    answer = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("alex"),
                              json={"data": LAPTOP, "on_behalf_of": "rita"})
    assert answer.status_code == 201, answer.get_json()
    record = answer.get_json()
    assert (record["requester"], record["opened_by"]) == ("rita", "alex")
    number = record["number"]
    desk.complete(number, "approve_manager", "mona", {"approved": True})  # rita's manager, not alex's
    desk.complete(number, "fulfil_request", "nina", {"fulfilment_notes": "Laptop AT-777001 handed over."})
    assert desk.ready(number) == ["confirm_receipt"]
    desk.task_id(number, "confirm_receipt", "rita")  # in her inbox
    [told] = [n for n in desk.notifications("rita") if n["subject"].startswith(f"{number} was logged for you")]
    assert told["body"].startswith(f"alex logged {number} ")


def test_a_requester_may_not_order_for_somebody_else(desk: Desk, services):
    answer = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"),
                              json={"data": LAPTOP, "on_behalf_of": "mona"})
    assert assert_error(answer, 403, "forbidden")["details"]["field"] == "on_behalf_of"
    assert tickets(services) == 0


def test_a_chinese_caller_is_told_in_chinese(desk: Desk, services):
    services.users.set_locale(services.users.get_by_username("rita"), "zh_CN")
    services.session.commit()
    number = start(desk, "alex", "rita").get_json()["data"]["record_number"]
    [told] = [n for n in desk.notifications("rita") if number in n["subject"]]
    assert told["subject"] == f"已为您登记 {number}：{INCIDENT['title']}" and told["body"].startswith("alex 已为您登记")


def callers(desk: Desk, who: str, q: Any, process_id: str = "incident_management") -> Any:
    return desk.client.get("/api/v1/instances/callers", headers=desk.auth(who),
                           query_string={"process_id": process_id, **({"q": q} if q is not None else {})})


def caller_names(desk: Desk, who: str, q: Any, process_id: str = "incident_management") -> list[str]:
    answer = callers(desk, who, q, process_id)
    assert answer.status_code == 200, answer.get_json()
    return [person["username"] for person in answer.get_json()["items"]]


def test_an_agent_is_offered_callers_by_words_of_their_name_or_address(desk: Desk, services):
    users = services.users
    ada = users.get_by_username("ada")
    users.update_user(ada, "rita", {"display_name": "Rita Requester", "email": "rita.r@example.test"})
    users.update_user(ada, "mona", {"display_name": "Mona Manager", "email": "mona@finance.example.test"})
    services.session.commit()
    [rita] = callers(desk, "alex", "REQUEST").get_json()["items"]  # a word of the display name, any case
    assert rita == {"username": "rita", "display_name": "Rita Requester", "email": "rita.r@example.test"}
    assert caller_names(desk, "alex", "finance") == ["mona"]  # a word of the address
    assert caller_names(desk, "alex", "m manager") == ["mona"]  # every word must match
    assert caller_names(desk, "alex", "a") == []  # one character suggests nobody
    # alex, who types, is not offered: for himself the field stays empty
    assert caller_names(desk, "ada", "al") == ["alex"]
    assert caller_names(desk, "alex", "al") == []


def test_callers_offered_are_active_people_who_could_start_the_process(desk: Desk, services):
    assert "rita" in caller_names(desk, "alex", "rit")
    # problems are raised by staff: rita is no caller for one, nina (an agent) is
    assert caller_names(desk, "alex", "rit", "problem_management") == []
    assert caller_names(desk, "alex", "nin", "problem_management") == ["nina"]
    # an auditor holds no starter role
    assert caller_names(desk, "alex", "aud") == []
    services.users.deactivate_user(services.users.get_by_username("ada"), "rita")
    services.session.commit()
    assert caller_names(desk, "alex", "rit") == []


def test_at_most_eight_callers_are_offered_with_like_characters_taken_literally(desk: Desk, services):
    users = services.users
    for n in range(10):
        users.create_user(f"caller{n}", "password-1234", roles=["requester"], display_name=f"Caller {9 - n}")
    users.create_user("per_cent", "password-1234", roles=["requester"], display_name="100% sure")
    services.session.commit()
    offered = caller_names(desk, "alex", "caller")
    assert offered == [f"caller{n}" for n in range(9, 1, -1)]  # by display name: Caller 0 .. Caller 7
    # "%" and "_" are no wildcards: as such they would match caller0 ("0..." and "r0")
    assert caller_names(desk, "alex", "0%") == ["per_cent"]
    assert caller_names(desk, "alex", "r_") == ["per_cent"]


def test_requesters_are_refused_callers_and_unknown_processes_are_not_found(desk: Desk, services):
    body = assert_error(callers(desk, "rita", "al"), 403, "forbidden")
    assert "on somebody else's behalf" in body["message"]
    services.session.rollback()
    refused = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert [e.payload.get("action") for e in refused][-1:] == ["suggest_callers"], [e.payload for e in refused]
    services.session.rollback()
    assert_error(callers(desk, "alex", "al", "no_such_process"), 404)
    assert "process_id" in str(assert_error(desk.client.get("/api/v1/instances/callers?q=al",
                                                           headers=desk.auth("alex")), 422)["details"])
