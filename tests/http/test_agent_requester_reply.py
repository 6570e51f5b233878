"""Which comments are the requester's reply (the ``requester_reply`` message that ends an
incident's wait on the customer): those the requester writes as the requester.

alex is an agent who also reports incidents. While he works an incident he logged himself (its
assignee), his comments are work notes: a wait he set "on the customer" is not a wait on himself,
and only the Resume work task ends it. Once someone else holds his incident, he is its customer
and his comment is the answer. A comment a process step writes is never a reply.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_incident import START
from tests.http.test_requester_reply import comment


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def logged_by_alex(desk: Desk, group: str, investigator: str) -> tuple[str, int]:
    """An incident alex reported, triaged to ``group`` and set pending on the customer by ``investigator``."""
    instance = desk.start("alex", "incident_management", START)
    number = instance["data"]["record_number"]
    record = desk.record(number)
    desk.complete(number, "triage", "alex", {"category": record["category"], "priority": record["priority"],
                                             "assignment_group": group})
    desk.complete(number, "investigate", investigator, {"outcome": "pending", "pending_on": "customer",
                                                        "pending_reason": "Waiting for the caller's logs"})
    record = desk.record(number)
    assert (record["requester"], record["assignee"], record["status"]) == ("alex", investigator, "pending")
    assert desk.ready(number) == ["resume_work"]
    return number, instance["id"]


def messages(desk: Desk, instance_id: int) -> list[str]:
    return [e["payload"]["name"] for e in desk.history(instance_id) if e["type"] == "message_received"]


def test_an_agents_comment_answers_only_an_incident_someone_else_works(desk: Desk):
    mine, mine_id = logged_by_alex(desk, "ServiceDesk", "alex")
    comment(desk, mine, "alex", "Called the user: the logs come tomorrow.")
    record = desk.record(mine)
    assert record["status"] == "pending" and record["details"]["pending_on"] == "customer"
    assert desk.ready(mine) == ["resume_work"] and messages(desk, mine_id) == []
    # his work resumes it
    desk.complete(mine, "resume_work", "alex", {"update_note": "Logs received."})
    assert desk.record(mine)["status"] == "in_progress" and desk.ready(mine) == ["investigate"]

    # nina works the other one: there alex is the customer, and his comment is the answer
    theirs, theirs_id = logged_by_alex(desk, "NetworkTeam", "nina")
    comment(desk, theirs, "alex", "Logs attached.")
    assert desk.record(theirs)["status"] == "in_progress" and desk.ready(theirs) == ["investigate"]
    assert messages(desk, theirs_id) == ["requester_reply"]


def test_a_comment_a_step_writes_for_the_requester_is_no_reply(desk: Desk, services: Any):
    instance = desk.start("rita", "incident_management", START)
    number = instance["data"]["record_number"]
    ticket = services.records.by_number(number)
    rita = services.users.get_by_username("rita")
    heard: list[str] = []
    services.records.on_requester_reply = lambda _ticket, said: heard.append(said.body)
    mapping = {"kind": "incident", "fields": {"title": "title"}, "comments": ["confirmation_comment"]}
    services.records.sync(ticket, mapping, {"title": ticket.title, "confirmation_comment": "Works again."}, rita,
                          {"title": ticket.title, "confirmation_comment": ""})
    assert [c.body for c in services.records.comments(rita, number)] == ["Works again."]
    assert heard == []  # what the step said is in its data already
    services.records.comment(rita, number, "And thanks!")
    assert heard == ["And thanks!"]
