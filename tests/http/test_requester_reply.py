"""A requester's comment ends an incident's wait on the customer (the ``requester_reply`` message)."""

from __future__ import annotations

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_incident import open_incident, resolve, triage


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def comment(desk: Desk, number: str, who: str, body: str) -> None:
    response = desk.client.post(f"/api/v1/tickets/{number}/comments", json={"body": body}, headers=desk.auth(who))
    assert response.status_code == 201, response.get_json()


def set_pending(desk: Desk, number: str, on: str) -> str:
    """Pending on ``on``: the wait's task id (``resume_work`` on the customer, else ``resume_vendor_work``)."""
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": on, "pending_reason": "need logs"})
    wait = "resume_work" if on == "customer" else "resume_vendor_work"
    assert desk.record(number)["status"] == "pending" and desk.ready(number) == [wait]
    return wait


def test_the_requesters_answer_resumes_an_incident_pending_on_them(desk: Desk):
    number, instance_id = open_incident(desk)
    triage(desk, number)
    set_pending(desk, number, "customer")
    comment(desk, number, "nina", "Please send the VPN client log.")  # the resolver's own words change nothing
    assert desk.record(number)["status"] == "pending" and desk.ready(number) == ["resume_work"]

    comment(desk, number, "rita", "Log attached: it fails at the TLS handshake.")
    record = desk.record(number)
    assert record["status"] == "in_progress" and desk.ready(number) == ["investigate"]
    assert record["details"].get("pending_on") is None
    # the resolvers see the answer on their next round
    task = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, 'investigate')}", headers=desk.auth("nina")).get_json()
    assert "The requester replied: Log attached: it fails at the TLS handshake." in task["instructions"]
    received = [e for e in desk.history(instance_id) if e["type"] == "message_received"]
    assert [e["payload"]["name"] for e in received] == ["requester_reply"]
    assert received[0]["payload"]["payload"]["author"] == "rita"

    # the incident goes on as usual; a later comment while nobody waits for one changes nothing
    comment(desk, number, "rita", "Thanks for looking.")
    assert desk.record(number)["status"] == "in_progress" and desk.ready(number) == ["investigate"]
    resolve(desk, number)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    assert desk.record(number)["status"] == "closed"


def test_a_wait_on_a_vendor_goes_on_after_the_requesters_comments(desk: Desk, services):
    """Pending on a vendor nothing waits for the requester: their comments leave the wait, its task
    and the resolver's claim as they were (no new task, no message)."""
    number, instance_id = open_incident(desk)
    triage(desk, number)
    wait = set_pending(desk, number, "vendor")
    before = desk.task_id(number, wait)
    claimed = desk.client.post(f"/api/v1/tasks/{before}/claim", headers=desk.auth("nina"))
    assert claimed.status_code == 200, claimed.get_json()
    for text in ("Any news?", "Still down.", "Hello?"):
        comment(desk, number, "rita", text)
    record = desk.record(number)
    assert record["status"] == "pending" and record["details"]["pending_on"] == "vendor"
    assert desk.ready(number) == [wait] and desk.task_id(number, wait) == before
    assert [t["claimed_by"] for t in record["open_tasks"]] == ["nina"]
    assert not [e for e in desk.history(instance_id) if e["type"] in ("message_received", "task_cancelled")]
    done = desk.client.post(f"/api/v1/tasks/{before}/complete", headers=desk.auth("nina"),
                            json={"data": {"update_note": "Part arrived"}})
    assert done.status_code == 200, done.get_json()
    assert desk.record(number)["status"] == "in_progress"


def test_a_comment_that_reads_one_way_and_is_another_is_refused(desk: Desk):
    """Bidirectional controls are refused in comments as in every form field (API and page)."""
    number, _ = open_incident(desk)
    response = desk.client.post(f"/api/v1/tickets/{number}/comments", json={"body": "see invoice\u202efdp.exe"},
                                headers=desk.auth("rita"))
    assert response.status_code == 422
    assert response.get_json()["details"]["fields"] == {
        "body": ["must not contain bidirectional control characters (U+202E)"]}
    comments = desk.client.get(f"/api/v1/tickets/{number}/comments", headers=desk.auth("rita")).get_json()["items"]
    assert comments == []
    # right-to-left text itself is welcome
    comment(desk, number, "rita", "\u05e9\u05dc\u05d5\u05dd - the VPN still drops")


@pytest.mark.parametrize(("who", "name", "payload"), [
    ("rita", "requester_reply", "just a string"),  # would break the step that reads it
    ("rita", "requester_reply", {"author": "alex", "comment": "FORGED", "number": "INC-000001"}),
    ("nina", "requester_reply", {"author": "rita", "comment": "Words rita never wrote"}),
    ("rita", "fix_change_updated", {"number": "CHG-000001", "status": "closed"}),
])
def test_the_platforms_news_cannot_be_sent_through_the_message_api(desk: Desk, services, who, name, payload):
    """A reply is made from a real comment, a linked record's news from the record: sent through
    the message API (by the requester, who may message her own instance, or staff) it is refused
    with 403 naming the field, audited, and the wait goes on untouched."""
    number, instance_id = open_incident(desk)
    triage(desk, number)
    set_pending(desk, number, "customer")
    response = desk.client.post(f"/api/v1/instances/{instance_id}/messages", json={"name": name, "payload": payload},
                                headers=desk.auth(who))
    body = response.get_json()
    assert response.status_code == 403, body
    assert body["error"] == "platform_message" and body["details"] == {"field": "name"}
    record = desk.record(number)
    assert record["status"] == "pending" and desk.ready(number) == ["resume_work"]
    instance = desk.client.get(f"/api/v1/instances/{instance_id}", headers=desk.auth("alex")).get_json()
    assert instance["status"] == "running"
    refused = [e for e in desk.history(instance_id) if e["type"] == "access_denied"]
    assert [(e["actor"], e["payload"]["action"]) for e in refused] == [(who, "send_message")]
    assert not [e for e in desk.history(instance_id) if e["type"] == "message_received"]
    # the real way still works
    comment(desk, number, "rita", "Here is the log.")
    assert desk.record(number)["status"] == "in_progress"
