"""Knowledge articles written by the desk's staff through the API: drafts, edits with optimistic
concurrency and kept revisions, publishing and retiring (audited), who sees what (a draft or a
retired article is 404 for anyone but the staff), field-named 422s, and articles published from
problems, which show their problem's status as it is now."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.http.desk import Desk
from tests.http.helpers import assert_error

ARTICLE = {"title": "Outlook asks for the password again and again",
           "symptoms": "A password prompt every few minutes.", "cause": "A stale cached credential.",
           "workaround": "Remove the Outlook entries from the Credential Manager, then restart Outlook."}


# The problem's path to a known error with a fix change (as in tests/http/test_e2e_problem.py).
PROBLEM = {"title": "VPN tunnels drop every morning",
           "description": "Home workers lose the VPN tunnel between 08:30 and 09:00."}
TRIAGE = {"priority": "P2", "category": "network", "assignment_group": "NetworkTeam", "triage_notes": "Recurring."}
RCA_CHANGE = {"cause_category": "configuration", "root_cause": "The gateway renegotiates keys too often.",
              "symptoms": "The VPN client shows 'Tunnel lost'.", "workaround": "Reconnect with the failover profile.",
              "fix_needs_change": True, "proposed_fix": "Raise the IKE lifetime to 8 hours."}
CHANGE_ASSESS = {"impact": "low", "affected_users": 20, "rollback_difficulty": "easy", "has_tested": True,
                 "implementer": "ivan", "assessment_notes": "Routine fix."}


def create(client: Any, auth: Any, who: str = "alex", **changes: Any) -> dict[str, Any]:
    response = client.post("/api/v1/knowledge", json={**ARTICLE, **changes}, headers=auth(who))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def events(services: Any, event_type: str) -> list[dict[str, Any]]:
    services.session.rollback()  # see what the requests committed
    return [{"actor": e.actor, **e.payload} for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.seq))]


def search(client: Any, auth: Any, who: str, **query: Any) -> list[str]:
    response = client.get("/api/v1/knowledge", query_string=query, headers=auth(who))
    assert response.status_code == 200, response.get_json()
    return [item["number"] for item in response.get_json()["items"]]


def test_a_draft_is_the_staffs_until_published_then_everyones_until_retired(client, auth, services, users):
    draft = create(client, auth)
    assert (draft["number"], draft["status"], draft["version"], draft["created_by"]) == ("KB-000001", "draft", 1, "alex")
    assert draft["source"] is None and draft["source_status"] is None and draft["fix_change"] is None

    # a requester (and an auditor: not the desk's staff) does not learn that the draft exists
    for who in ("rita", "aude"):
        assert_error(client.get("/api/v1/knowledge/KB-000001", headers=auth(who)), 404, "not_found")
        assert_error(client.get("/api/v1/knowledge/KB-000001/revisions", headers=auth(who)), 404)
        assert_error(client.patch("/api/v1/knowledge/KB-000001", json={"version": 1, "title": "x"},
                                  headers=auth(who)), 404)
        assert_error(client.post("/api/v1/knowledge/KB-000001/publish", json={}, headers=auth(who)), 404)
        assert search(client, auth, who, q="outlook") == []
        assert search(client, auth, who, q="outlook", status="draft") == []
    # the staff find it by asking for drafts; published is what everyone searches by default
    assert search(client, auth, "olga", q="outlook") == []
    assert search(client, auth, "olga", q="outlook", status="draft") == ["KB-000001"]
    assert client.get("/api/v1/knowledge/kb-000001", headers=auth("ada")).get_json()["status"] == "draft"

    published = client.post("/api/v1/knowledge/KB-000001/publish", json={"version": 1}, headers=auth("olga"))
    assert published.status_code == 200, published.get_json()
    assert published.get_json()["status"] == "published" and published.get_json()["published_at"] is not None
    assert search(client, auth, "rita", q="credential manager") == ["KB-000001"]
    assert client.get("/api/v1/knowledge/KB-000001", headers=auth("rita")).get_json()["title"] == ARTICLE["title"]
    # a reader is not a writer: 403 now that the article is theirs to see
    assert_error(client.patch("/api/v1/knowledge/KB-000001", json={"version": 1, "title": "x"},
                              headers=auth("rita")), 403)
    assert_error(client.post("/api/v1/knowledge/KB-000001/retire", json={}, headers=auth("rita")), 403)
    assert_error(client.post("/api/v1/knowledge", json=ARTICLE, headers=auth("rita")), 403)
    assert_error(client.get("/api/v1/knowledge/KB-000001/revisions", headers=auth("rita")), 403)
    # publishing what is published is a conflict, not a second event
    assert_error(client.post("/api/v1/knowledge/KB-000001/publish", json={}, headers=auth("alex")), 409, "conflict")

    retired = client.post("/api/v1/knowledge/KB-000001/retire", json={}, headers=auth("alex"))
    assert retired.status_code == 200 and retired.get_json()["status"] == "retired"
    assert_error(client.get("/api/v1/knowledge/KB-000001", headers=auth("rita")), 404)
    assert search(client, auth, "rita", q="outlook") == []
    assert search(client, auth, "alex", q="outlook", status="retired") == ["KB-000001"]
    assert search(client, auth, "alex", q="outlook", status="all") == ["KB-000001"]
    # a retired article is not edited: it is published again first
    stale = assert_error(client.patch("/api/v1/knowledge/KB-000001", json={"version": 1, "title": "x"},
                                      headers=auth("alex")), 409)
    assert stale["details"]["status"] == "retired"

    again = client.post("/api/v1/knowledge/KB-000001/publish", json={}, headers=auth("ada"))
    assert again.status_code == 200 and again.get_json()["status"] == "published"
    assert search(client, auth, "rita", q="outlook") == ["KB-000001"]

    assert [e["actor"] for e in events(services, "knowledge_drafted")] == ["alex"]
    assert [(e["actor"], e["number"], e["from"], e["republished"]) for e in events(services, "knowledge_published")] == [
        ("olga", "KB-000001", "draft", False), ("ada", "KB-000001", "retired", True)]
    assert [(e["actor"], e["from"]) for e in events(services, "knowledge_retired")] == [("alex", "published")]
    # the reader's attempts to write are on the record too (revisions are a read: not among them)
    assert [(e["actor"], e["action"], e.get("number")) for e in events(services, "access_denied")] == [
        ("rita", "write_knowledge", "KB-000001"), ("rita", "write_knowledge", "KB-000001"),
        ("rita", "write_knowledge", None)]


def test_edits_keep_revisions_and_a_stale_version_is_refused_with_the_current_one(client, auth, services, users):
    create(client, auth)
    first = client.patch("/api/v1/knowledge/KB-000001", headers=auth("alex"), json={
        "version": 1, "workaround": "Sign out of Office, then sign in again.", "note": "simpler workaround"})
    assert first.status_code == 200, first.get_json()
    assert (first.get_json()["version"], first.get_json()["updated_by"]) == (2, "alex")
    assert first.get_json()["workaround"] == "Sign out of Office, then sign in again."
    assert first.get_json()["title"] == ARTICLE["title"]  # fields not sent stay

    # olga edited version 1 too, and saves after alex: refused, naming version 2
    stale = assert_error(client.patch("/api/v1/knowledge/KB-000001", headers=auth("olga"),
                                      json={"version": 1, "title": "Outlook keeps asking"}), 409, "conflict")
    assert stale["details"]["current_version"] == 2 and "version 2" in stale["message"]
    assert client.get("/api/v1/knowledge/KB-000001", headers=auth("olga")).get_json()["title"] == ARTICLE["title"]

    second = client.patch("/api/v1/knowledge/KB-000001", headers=auth("olga"),
                          json={"version": 2, "title": "  Outlook keeps asking\nfor the password  "})
    assert second.status_code == 200 and second.get_json()["version"] == 3
    assert second.get_json()["title"] == "Outlook keeps asking for the password"
    # an edit that changes nothing saves no version
    same = client.patch("/api/v1/knowledge/KB-000001", headers=auth("olga"),
                        json={"version": 3, "title": "Outlook keeps asking for the password"})
    assert same.status_code == 200 and same.get_json()["version"] == 3

    history = client.get("/api/v1/knowledge/KB-000001/revisions", headers=auth("ada"))
    assert history.status_code == 200, history.get_json()
    body = history.get_json()
    assert (body["number"], body["version"]) == ("KB-000001", 3)
    assert [(r["version"], r["replaced_by"], r["note"]) for r in body["items"]] == [
        (2, "olga", ""), (1, "alex", "simpler workaround")]
    assert body["items"][1]["workaround"] == ARTICLE["workaround"]
    assert body["items"][0]["workaround"] == "Sign out of Office, then sign in again."
    assert body["items"][0]["title"] == ARTICLE["title"]
    assert [(e["actor"], e["version"], e["fields"]) for e in events(services, "knowledge_edited")] == [
        ("alex", 2, ["workaround"]), ("olga", 3, ["title"])]

    # publishing names the version read: a stale one is refused too
    refused = assert_error(client.post("/api/v1/knowledge/KB-000001/publish", json={"version": 2},
                                       headers=auth("alex")), 409)
    assert refused["details"]["current_version"] == 3


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"symptoms": "x"}, "title", "Missing data"),
    ({"title": "   "}, "title", "is required"),
    ({"title": "x" * 501}, "title", "must be at most 500 characters"),
    ({"title": "ok", "workaround": "y" * 20001}, "workaround", "must be at most 20000 characters"),
    ({"title": "Reset \u202ethe password"}, "title", "bidirectional control characters (U+202E)"),
    ({"title": "ok", "cause": "\u2066hidden\u2069"}, "cause", "U+2066, U+2069"),
    ({"title": 5}, "title", "Not a valid string"),
    ({"title": "ok", "status": "published"}, "status", "Unknown field"),
])
def test_bad_input_is_422_naming_the_field(client, auth, users, body, field, says):
    refused = assert_error(client.post("/api/v1/knowledge", json=body, headers=auth("alex")), 422, "validation_failed")
    assert field in refused["details"]["fields"], refused
    assert says in " ".join(map(str, refused["details"]["fields"][field])), refused
    assert search(client, auth, "alex", status="all") == []


def test_an_edit_is_checked_like_a_new_article(client, auth, users):
    create(client, auth)
    for body, field in [({"title": "x"}, "version"), ({"version": "1", "title": "x"}, "version"),
                        ({"version": 1, "title": ""}, "title"), ({"version": 1, "note": "n" * 501}, "note"),
                        ({"version": 1, "symptoms": "\u202bx"}, "symptoms")]:
        refused = assert_error(client.patch("/api/v1/knowledge/KB-000001", json=body, headers=auth("alex")), 422)
        assert field in refused["details"]["fields"], (body, refused)
    assert client.get("/api/v1/knowledge/KB-000001", headers=auth("alex")).get_json()["version"] == 1
    assert_error(client.get("/api/v1/knowledge", query_string={"status": "hidden"}, headers=auth("alex")), 422)
    assert_error(client.get("/api/v1/knowledge/KB-999999", headers=auth("alex")), 404)


def test_an_article_published_from_a_problem_follows_the_problem(client, services):
    desk = Desk(client, services)
    started = desk.start("paul", "problem_management", PROBLEM)
    number = started["data"]["record_number"]
    desk.complete(number, "triage", "paul", TRIAGE)
    desk.complete(number, "analyse_root_cause", "nina", RCA_CHANGE)

    article = client.get("/api/v1/knowledge/KB-000001", headers=desk.auth("alex")).get_json()
    assert (article["status"], article["version"], article["source"]) == ("published", 1, number)
    assert article["source_status"] == "fix_in_progress"
    assert article["fix_change"] == {"number": "CHG-000001", "status": "assessment"}
    assert article["workaround"] == RCA_CHANGE["workaround"]
    # a requester reads the known error and its problem's number, not the records she may not open
    hers = client.get("/api/v1/knowledge/KB-000001", headers=desk.auth("rita")).get_json()
    assert (hers["source"], hers["source_status"], hers["fix_change"]) == (number, None, None)
    assert hers["workaround"] == RCA_CHANGE["workaround"]
    assert client.get(f"/api/v1/tickets/{number}", headers=desk.auth("rita")).status_code == 404

    # the change moves on: the article says so at once (read live, not copied)
    desk.complete("CHG-000001", "assess", "cora", CHANGE_ASSESS)
    change_status = desk.record("CHG-000001")["status"]
    assert change_status != "assessment"
    found = client.get("/api/v1/knowledge", query_string={"q": "failover"}, headers=desk.auth("alex")).get_json()
    assert [(a["number"], a["source_status"], a["fix_change"]["status"]) for a in found["items"]] == [
        ("KB-000001", "fix_in_progress", change_status)]
    found = client.get("/api/v1/knowledge", query_string={"q": "failover"}, headers=desk.auth("rita")).get_json()
    assert [(a["number"], a["source_status"], a["fix_change"]) for a in found["items"]] == [("KB-000001", None, None)]

    # the staff edit the known error like any article; it keeps its source
    edited = client.patch("/api/v1/knowledge/KB-000001", headers=desk.auth("paul"),
                          json={"version": 1, "workaround": "Use vpn-gw-02.", "note": "shorter"})
    assert edited.status_code == 200 and edited.get_json()["source"] == number and edited.get_json()["version"] == 2
    assert desk.record(number)["details"]["knowledge_articles"] == ["KB-000001"]
