"""Approvers see the records whose decisions reach them, not the whole desk, and their comments
are no first response.

Before, the approver role counted as desk staff: a CAB member with nothing to do with an incident
could read it, comment on it (stopping its response clock as "first response") and link it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_change import ASSESS_MEDIUM, raise_change, vote_ids
from tests.http.test_sla_first_response import START, clocks


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def numbers(desk: Desk, who: str, **query: Any) -> set[str]:
    response = desk.client.get("/api/v1/tickets", headers=desk.auth(who), query_string={"per_page": 200, **query})
    assert response.status_code == 200, response.get_json()
    return {r["number"] for r in response.get_json()["items"]}


def test_an_approver_with_no_part_in_a_record_neither_sees_nor_answers_it(desk: Desk):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    c = desk.client
    for who in ("cab1", "cora", "mona"):
        assert_error(c.get(f"/api/v1/tickets/{number}", headers=desk.auth(who)), 404)
        assert_error(c.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth(who), json={"body": "hi"}), 404)
        assert_error(c.post(f"/api/v1/tickets/{number}/links", headers=desk.auth(who),
                            json={"number": number, "link_type": "related"}), 404)
        assert_error(c.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth(who)), 404)
        assert number not in numbers(desk, who)
    # every refusal is filed with the record's instance, where an auditor looking at it finds them
    instance_id = desk.record(number)["instance_id"]
    refused = desk.services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "access_denied", AuditEvent.instance_id == instance_id)).all()
    assert sorted((e.actor, e.payload["action"]) for e in refused) == sorted(
        (who, action) for who in ("cab1", "cora", "mona") for action in ("read", "comment", "link", "read"))  # sla: a read
    desk.services.session.rollback()
    # and the response clock still runs
    assert clocks(desk, number)["response"]["state"] == "running"
    assert desk.record(number)["first_response_at"] is None
    # the desk still sees it all
    for who in ("alex", "olga", "aude", "ada"):
        assert number in numbers(desk, who)


def test_an_approver_sees_the_change_they_vote_on_and_their_comment_answers_nobody(desk: Desk):
    number, _instance = raise_change(desk)
    other, _ = raise_change(desk, title="Another change")
    # the change managers' lane holds the assessment of both: cora sees them; the CAB nothing yet
    assert {number, other} <= numbers(desk, "cora")
    assert numbers(desk, "cab1") == set()
    desk.complete(number, "assess", "cora", ASSESS_MEDIUM)
    votes = vote_ids(desk, number)
    assert sorted(votes) == ["cab1", "cab2", "cab3"]
    for member in ("cab1", "cab2"):
        assert numbers(desk, member) == {number}  # the one they vote on, not the other
        response = desk.client.get(f"/api/v1/tickets/{number}", headers=desk.auth(member))
        assert response.status_code == 200 and response.get_json()["number"] == number
        assert_error(desk.client.get(f"/api/v1/tickets/{other}", headers=desk.auth(member)), 404)

    response = desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("cab1"),
                                json={"body": "What is the rollback window?"})
    assert response.status_code == 201, response.get_json()
    stops = [e for e in desk.history(desk.record(number)["instance_id"])
             if e["type"] == "sla_stop" and "comment by cab1" in e["payload"]["reason"]]
    assert stops == []


def test_a_lane_approver_sees_the_record_of_the_step_in_their_lane(desk: Desk):
    # the emergency CAB's approval has no assignee and no candidate group: its lane names the group
    number, instance_id = raise_change(desk, "emergency")
    assert "ecab_approve" in desk.ready(number)
    response = desk.client.get(f"/api/v1/tickets/{number}", headers=desk.auth("emma"))
    assert response.status_code == 200, response.get_json()
    assert desk.client.get(f"/api/v1/instances/{instance_id}", headers=desk.auth("emma")).status_code == 200
    assert_error(desk.client.get(f"/api/v1/tickets/{number}", headers=desk.auth("cab1")), 404)


def test_an_approver_reads_no_instance_or_history_their_record_view_would_hide(desk: Desk):
    number, instance_id = raise_change(desk)
    desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("alex"), json={"body": "Secret plan"})
    # cab1's CAB lane is in the change process, but no task of this change reaches them
    for path in (f"/api/v1/instances/{instance_id}", f"/api/v1/instances/{instance_id}/history"):
        assert_error(desk.client.get(path, headers=desk.auth("cab1")), 404)
    listed = desk.client.get("/api/v1/instances?process_id=change_enablement", headers=desk.auth("cab1")).get_json()
    assert [i["id"] for i in listed["items"]] == []
    # cab1's refused attempts are in the history for auditors, not for the change's other readers
    types = {who: [e["type"] for e in desk.client.get(f"/api/v1/instances/{instance_id}/history",
                                                         headers=desk.auth(who)).get_json()["events"]]
             for who in ("alex", "aude")}
    assert "access_denied" in types["aude"] and "access_denied" not in types["alex"]
    assert "comment_added" in types["alex"]
