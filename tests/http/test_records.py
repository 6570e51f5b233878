"""Records: numbering, the declared mapping, task assignment properties, platform operations,
separation of duties, comments, links and knowledge search."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.conftest import FIXTURES
from tests.http.helpers import assert_error, open_task, upload

RECORD_FILES = [(p.name, p.read_bytes()) for p in sorted(Path(FIXTURES / "records").iterdir())]


@pytest.fixture()
def desk(client, auth, services, users):
    services.users.create_user("sam", "password-1234", roles=["agent", "approver"], groups=["ServiceDesk", "Approvers"])
    services.session.commit()
    response = upload(client, auth("olga"), RECORD_FILES)
    assert response.status_code == 201, response.get_json()
    token = services.users.issue_token(services.users.get_by_username("sam"))["token"]
    services.session.commit()
    return {"sam": {"Authorization": f"Bearer {token}"}}


def start_ticket(client, headers, title="Mail is down", group="ServiceDesk"):
    response = client.post("/api/v1/instances", headers=headers, json={
        "process_id": "mini_ticket", "data": {"title": title, "description": "since 9:00", "work_group": group}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_record_lifecycle_mapping_operations_and_separation_of_duties(client, auth, desk, clock):
    other = start_ticket(client, auth("rick"), title="Cannot send mail")
    instance = start_ticket(client, auth("rita"))
    assert instance["data"]["record_number"] == "INC-000002" and other["data"]["record_number"] == "INC-000001"

    record = client.get("/api/v1/tickets/INC-000002", headers=auth("rita")).get_json()
    assert record["kind"] == "incident" and record["title"] == "Mail is down" and record["requester"] == "rita"
    assert record["status"] == "in_progress" and record["assignment_group"] == "ServiceDesk"
    assert record["instance_id"] == instance["id"] and [t["bpmn_id"] for t in record["open_tasks"]] == ["work"]
    assert record["first_response_at"] is not None and record["resolved_at"] is None

    linked = client.post("/api/v1/tickets/INC-000002/links", headers=auth("alex"), json={"number": "INC-000001", "link_type": "related"})
    assert linked.status_code == 201 and linked.get_json()[0]["number"] == "INC-000001"
    seen = client.get("/api/v1/tickets/INC-000001", headers=auth("alex")).get_json()["links"][0]
    assert (seen["direction"], seen["relation"], seen["side"]) == ("incoming", "related", "both")

    work = open_task(instance, "work")
    assert work["lane"] == "ServiceDesk"
    done = client.post(f"/api/v1/tasks/{work['id']}/complete", headers=desk["sam"],
                       json={"data": {"symptoms": "bounce messages", "workaround": "use webmail"}})
    assert done.status_code == 200, done.get_json()
    done = done.get_json()
    assert done["data"]["assignee"] == "sam" and done["data"]["article"]["number"] == "KB-000001"
    assert done["data"]["commented"] == {"count": 1}

    record = client.get("/api/v1/tickets/INC-000002", headers=auth("rita")).get_json()
    assert record["assignee"] == "sam" and record["priority"] == "P3"
    assert record["details"]["workaround"] == "use webmail" and record["details"]["knowledge_articles"] == ["KB-000001"]
    comments = client.get("/api/v1/tickets/INC-000001/comments", headers=auth("rick")).get_json()["items"]
    assert comments[0]["author"] == "INC-000002" and "use webmail" in comments[0]["body"]

    found = client.get("/api/v1/knowledge?q=webmail", headers=auth("rick")).get_json()
    assert found["total"] == 1 and found["items"][0]["source"] == "INC-000002"
    assert client.get("/api/v1/knowledge?q=nothing-like-this", headers=auth("rick")).get_json()["total"] == 0

    approve = open_task(done, "approve")
    body = assert_error(client.post(f"/api/v1/tasks/{approve['id']}/complete", headers=desk["sam"], json={"data": {"approved": True}}),
                        403, "separation_of_duties")
    assert body["message"] == "separation of duties: not your own ticket"
    clock.advance(__import__("datetime").timedelta(hours=1))
    after = client.post(f"/api/v1/tasks/{approve['id']}/complete", headers=auth("amy"), json={"data": {"approved": True}}).get_json()
    confirm = open_task(after, "confirm")
    record = client.get("/api/v1/tickets/INC-000002", headers=auth("rita")).get_json()
    assert record["status"] == "resolved" and record["resolved_at"] is not None

    # the confirm task is assigned to the requester alone
    assert_error(client.get(f"/api/v1/tasks/{confirm['id']}", headers=auth("alex")), 404)
    assert [t["id"] for t in client.get("/api/v1/tasks", headers=auth("rita")).get_json()["items"]] == [confirm["id"]]
    final = client.post(f"/api/v1/tasks/{confirm['id']}/complete", headers=auth("rita"), json={"data": {}}).get_json()
    assert final["status"] == "completed"
    record = client.get("/api/v1/tickets/INC-000002", headers=auth("rita")).get_json()
    assert record["status"] == "closed" and record["closed_at"] is not None

    history = client.get(f"/api/v1/instances/{instance['id']}/history", headers=auth("aude")).get_json()["events"]
    types = [e["type"] for e in history]
    assert "record_updated" in types and "knowledge_published" in types and "access_denied" in types


def test_ticket_list_filters_sort_and_visibility(client, auth, desk):
    for i, (who, group) in enumerate((("rita", "ServiceDesk"), ("rita", "Other"), ("rick", "ServiceDesk"))):
        start_ticket(client, auth(who), title=f"Printer {i}", group=group)
    everything = client.get("/api/v1/tickets?sort=number", headers=auth("alex")).get_json()
    assert [t["number"] for t in everything["items"]] == ["INC-000001", "INC-000002", "INC-000003"]
    assert client.get("/api/v1/tickets?sort=-number&per_page=1", headers=auth("alex")).get_json()["items"][0]["number"] == "INC-000003"
    assert client.get("/api/v1/tickets?requester=rita", headers=auth("alex")).get_json()["total"] == 2
    assert client.get("/api/v1/tickets?group=Other", headers=auth("alex")).get_json()["total"] == 1
    assert client.get("/api/v1/tickets?q=Printer%202", headers=auth("alex")).get_json()["total"] == 1
    assert client.get("/api/v1/tickets?kind=change", headers=auth("alex")).get_json()["total"] == 0
    assert client.get("/api/v1/tickets?status=in_progress,new&kind=incident", headers=auth("alex")).get_json()["total"] == 3
    assert client.get("/api/v1/tickets", headers=auth("rita")).get_json()["total"] == 2  # requesters see their own
    # his own only: a requester in the Other group is none of its staff (policy.QUEUE_ROLES), so
    # the records assigned to the group are not his to read
    assert client.get("/api/v1/tickets", headers=auth("rick")).get_json()["total"] == 1
    assert_error(client.get("/api/v1/tickets/INC-000002", headers=auth("rick")), 404)
    assert_error(client.get("/api/v1/tickets/INC-000001", headers=auth("rick")), 404)
    assert_error(client.get("/api/v1/tickets?sort=bogus", headers=auth("alex")), 422)
    # a misspelt kind is named, not answered with an empty list that reads "there are none"
    wrong = client.get("/api/v1/tickets?kind=incident,catalog_request", headers=auth("alex"))
    assert_error(wrong, 422)
    assert "catalog_request" in wrong.get_json()["details"]["fields"]["kind"][0]


def test_comments_and_links_errors(client, auth, desk):
    start_ticket(client, auth("rita"))
    posted = client.post("/api/v1/tickets/INC-000001/comments", headers=auth("rita"), json={"body": "any news?"})
    assert posted.status_code == 201 and posted.get_json()["author"] == "rita"
    assert_error(client.post("/api/v1/tickets/INC-000001/comments", headers=auth("rita"), json={"body": ""}), 422)
    assert_error(client.post("/api/v1/tickets/INC-000001/comments", headers=auth("rick"), json={"body": "hi"}), 404)
    assert_error(client.post("/api/v1/tickets/INC-000009/comments", headers=auth("alex"), json={"body": "hi"}), 404)
    assert_error(client.post("/api/v1/tickets/INC-000001/links", headers=auth("alex"), json={"number": "INC-000001"}), 422)
    assert_error(client.post("/api/v1/tickets/INC-000001/links", headers=auth("alex"), json={"number": "INC-000404"}), 404)
    assert_error(client.post("/api/v1/tickets/INC-000001/links", headers=auth("alex"), json={"number": "INC-000001", "link_type": "weird"}), 422)
    comments = client.get("/api/v1/tickets/INC-000001/comments", headers=auth("alex")).get_json()["items"]
    assert [c["body"] for c in comments] == ["any news?"]


def test_an_auditor_reads_records_but_neither_comments_nor_links(client, auth, desk, services):
    start_ticket(client, auth("rita"))
    start_ticket(client, auth("rita"))
    before = client.get("/api/v1/tickets/INC-000001", headers=auth("aude")).get_json()
    assert before["number"] == "INC-000001"
    body = assert_error(client.post("/api/v1/tickets/INC-000001/comments", headers=auth("aude"), json={"body": "x"}), 403)
    assert "auditors" in body["message"]
    assert_error(client.post("/api/v1/tickets/INC-000001/links", headers=auth("aude"), json={"number": "INC-000002"}), 403)
    assert client.get("/api/v1/tickets/INC-000001/comments", headers=auth("aude")).get_json()["items"] == []
    after = client.get("/api/v1/tickets/INC-000001", headers=auth("aude")).get_json()
    assert after["links"] == [] and (after["first_response_at"], after["updated_at"]) == (before["first_response_at"], before["updated_at"])
    refused = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert sorted(e.payload.get("action") for e in refused if e.actor == "aude") == ["comment", "link"]


def test_invalid_record_mapping_is_refused_at_deploy(client, auth, users):
    files = [(n, c.replace(b'"kind": "incident"', b'"kind": "saga"') if n.endswith(".record.json") else c) for n, c in RECORD_FILES]
    body = assert_error(upload(client, auth("olga"), files), 422)
    assert body["details"]["file"] == "mini_ticket.record.json" and body["details"]["key"] == "kind"


def link(client, headers, number, other, link_type, status=201):
    response = client.post(f"/api/v1/tickets/{number}/links", headers=headers, json={"number": other, "link_type": link_type})
    assert response.status_code == status, response.get_json()
    return [(entry["number"], entry["link_type"], entry["direction"]) for entry in response.get_json()]


def test_a_pair_of_records_holds_each_relation_once_from_either_end(client, auth, desk, services):
    for title in ("Mail is down", "Cannot send mail"):
        start_ticket(client, auth("rita"), title=title)
    alex = auth("alex")
    assert link(client, alex, "INC-000001", "INC-000002", "related") == [("INC-000002", "related", "outgoing")]
    # a second relation between the same pair is kept beside the first (it used to be dropped)
    assert link(client, alex, "INC-000001", "INC-000002", "caused_by") == [
        ("INC-000002", "related", "outgoing"), ("INC-000002", "caused_by", "outgoing")]
    # the same relations again, or written from the other end, add nothing: 200, not 201
    assert link(client, alex, "INC-000002", "INC-000001", "related", status=200) == [
        ("INC-000001", "related", "incoming"), ("INC-000001", "caused_by", "incoming")]
    assert link(client, alex, "INC-000002", "INC-000001", "related_incident", status=200) == [
        ("INC-000001", "related", "incoming"), ("INC-000001", "caused_by", "incoming")]
    assert len(link(client, alex, "INC-000001", "INC-000002", "caused_by", status=200)) == 2
    # the opposite relation contradicts the one that stands: each record causing the other is refused
    assert_error(client.post("/api/v1/tickets/INC-000002/links", headers=alex,
                             json={"number": "INC-000001", "link_type": "caused_by"}), 422, "link_reversed")
    record = services.records.by_number("INC-000001")
    assert [t.number for t in services.records.linked_tickets(record)] == ["INC-000002"]  # each record once
    linked = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "records_linked")).all()
    assert [e.payload["link_type"] for e in linked] == ["related", "caused_by"]


def test_records_linked_twice_are_commented_once(client, auth, desk):
    other = start_ticket(client, auth("rick"), title="Cannot send mail")
    instance = start_ticket(client, auth("rita"))
    for link_type in ("related", "blocks"):
        link(client, auth("alex"), instance["data"]["record_number"], other["data"]["record_number"], link_type)
    done = client.post(f"/api/v1/tasks/{open_task(instance, 'work')['id']}/complete", headers=desk["sam"],
                       json={"data": {"symptoms": "bounce messages", "workaround": "use webmail"}})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["data"]["commented"] == {"count": 1}
    comments = client.get("/api/v1/tickets/INC-000001/comments", headers=auth("rick")).get_json()["items"]
    assert [c["author"] for c in comments] == ["INC-000002"]


def test_links_to_records_the_caller_may_not_see_are_left_out(client, auth, desk):
    start_ticket(client, auth("rick"), title="HR secret: salary file exposed", group="Other")
    start_ticket(client, auth("rita"), title="Mail is down")
    start_ticket(client, auth("rita"), title="Cannot send mail")
    link(client, auth("alex"), "INC-000002", "INC-000001", "related")
    assert [e["number"] for e in client.get("/api/v1/tickets/INC-000002", headers=auth("alex")).get_json()["links"]] == [
        "INC-000001"]

    own = client.get("/api/v1/tickets/INC-000002", headers=auth("rita")).get_json()
    assert own["links"] == [] and "HR secret" not in str(own)
    # linking her own two records answers with her record's links: still without rick's
    assert link(client, auth("rita"), "INC-000002", "INC-000003", "related") == [("INC-000003", "related", "outgoing")]
    again = client.post("/api/v1/tickets/INC-000002/links", headers=auth("rita"), json={"number": "INC-000003"})
    assert again.status_code == 200 and "HR secret" not in again.get_data(as_text=True)
    # rick sees his record's link to rita's record no more than rita sees his
    assert client.get("/api/v1/tickets/INC-000001", headers=auth("rick")).get_json()["links"] == []


def test_the_search_text_matches_percent_and_underscore_literally(client, auth, desk):
    for title in ("Disk 100% full", "snake_case names", "Printer jam"):
        start_ticket(client, auth("rita"), title=title)

    def found(q):
        response = client.get("/api/v1/tickets", headers=auth("alex"), query_string={"q": q, "sort": "number"})
        assert response.status_code == 200, response.get_json()
        return [t["title"] for t in response.get_json()["items"]]

    assert found("%") == ["Disk 100% full"]
    assert found("_") == ["snake_case names"]
    assert found("0%") == ["Disk 100% full"] and found("e_c") == ["snake_case names"]
    assert found("\\") == [] and found("jam") == ["Printer jam"]


def test_a_link_type_joins_the_kinds_it_speaks_of(client, services):
    """An incident does not fix a problem: each link type names the kinds it joins, else 422
    naming link_type, and nothing is stored."""
    from tests.http.desk import Desk

    desk = Desk(client, services)
    incident = desk.start("rita", "incident_management", {"title": "VPN down", "description": "No tunnel",
                                                            "category": "network", "impact": "low", "urgency": "low"})
    problem = desk.start("paul", "problem_management", {"title": "VPN drops", "description": "Every morning"})
    inc, prb = incident["data"]["record_number"], problem["data"]["record_number"]
    headers = desk.auth("alex")
    for source, target, link_type, said in (
            (inc, prb, "fix_change", f"a fix_change link goes to a change: {prb} is a problem"),
            (prb, inc, "fix_change", f"a fix_change link goes to a change: {inc} is an incident"),
            (inc, prb, "related_incident", f"a related_incident link goes to an incident: {prb} is a problem"),
            (prb, inc, "duplicate_of",
             f"a duplicate_of link joins two records of one kind: {prb} is a problem, {inc} an incident"),
            (prb, inc, "problem", f"a problem link goes from an incident: {prb} is a problem")):
        body = assert_error(client.post(f"/api/v1/tickets/{source}/links", headers=headers,
                                        json={"number": target, "link_type": link_type}), 422)
        assert body["details"]["fields"]["link_type"] == [said], body
    assert services.records.linked_tickets(services.records.by_number(prb)) == []
    assert link(client, headers, inc, prb, "problem") == [(prb, "problem", "outgoing")]
    assert link(client, headers, prb, inc, "related_incident", status=200) == [(inc, "problem", "incoming")]
