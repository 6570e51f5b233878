"""Service status through the API: the desk's staff post a notice of an outage (tied to the
incident behind it, named only to its readers), update and resolve it; everyone reads the status;
a requester says it affects them and is told of each update and of the resolution, in-app and by
mail; a stale update is refused; bad input is refused naming the field, and nothing is stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, Notification, OutboxMessage, StatusAffected, StatusNotice, StatusUpdate, Ticket
from app.services.forms import rfc3339
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import open_incident

OUTAGE = {"title": "E-mail is down", "level": "outage", "body": "Nobody can send or receive mail. We are on it.",
          "service": "E-mail"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def post(desk: Desk, body: dict[str, Any], who: str = "alex") -> Any:
    return desk.client.post("/api/v1/status", headers=desk.auth(who), json=body)


def posted(desk: Desk, body: dict[str, Any], who: str = "alex") -> dict[str, Any]:
    answer = post(desk, body, who)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()  # type: ignore[no-any-return]


def board(desk: Desk, who: str) -> dict[str, Any]:
    answer = desk.client.get("/api/v1/status", headers=desk.auth(who))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()  # type: ignore[no-any-return]


def update(desk: Desk, notice_id: int, body: dict[str, Any], who: str = "alex") -> Any:
    return desk.client.post(f"/api/v1/status/{notice_id}/updates", headers=desk.auth(who), json=body)


def resolve(desk: Desk, notice_id: int, body: dict[str, Any], who: str = "alex") -> Any:
    return desk.client.post(f"/api/v1/status/{notice_id}/resolve", headers=desk.auth(who), json=body)


def affected(desk: Desk, notice_id: int, who: str, value: bool = True) -> Any:
    return desk.client.put(f"/api/v1/status/{notice_id}/affected", headers=desk.auth(who), json={"affected": value})


def counts(services: Any) -> tuple[int, int, int]:
    services.session.expire_all()
    return tuple(services.session.scalar(select(func.count()).select_from(t))  # type: ignore[return-value]
                 for t in (StatusNotice, StatusUpdate, StatusAffected))


def set_email(services: Any, *names: str) -> None:
    for name in names:
        services.users.get_by_username(name).email = f"{name}@example.org"
    services.session.commit()


def test_an_outage_is_posted_read_by_everyone_updated_and_resolved_and_the_affected_are_told(desk: Desk, services, clock):
    set_email(services, "rita", "mona", "alex")
    number, _ = open_incident(desk, title="Mail bounces")
    notice = posted(desk, {**OUTAGE, "record": number.lower(),
                           "expected_end_at": rfc3339(clock.now() + timedelta(hours=2))})
    assert notice["state"] == "current" and notice["version"] == 1 and notice["record"] == number
    assert [u["kind"] for u in notice["updates"]] == ["posted"] and notice["created_by"] == "alex"

    # everyone signed in reads it; the record is named only to whom may read it
    for who in ("rita", "mona", "aude", "cab1"):
        current = board(desk, who)["current"]
        assert [n["title"] for n in current] == ["E-mail is down"], who
        assert current[0]["latest"] == OUTAGE["body"]
    assert board(desk, "rita")["current"][0]["record"] == number  # her own incident
    assert board(desk, "mona")["current"][0]["record"] is None
    single = desk.client.get(f"/api/v1/status/{notice['id']}", headers=desk.auth("mona")).get_json()
    assert single["record"] is None and single["updates"][0]["body"] == OUTAGE["body"]

    for who in ("mona", "rita", "mona"):  # saying it twice is saying it once
        answer = affected(desk, notice["id"], who)
        assert answer.status_code == 200 and answer.get_json()["affects_me"] is True
    assert board(desk, "aude")["current"][0]["affected"] == 2
    assert board(desk, "mona")["current"][0]["affects_me"] is True
    assert board(desk, "aude")["current"][0]["affects_me"] is False
    assert affected(desk, notice["id"], "rita", False).get_json()["affects_me"] is False  # she takes it back

    clock.advance(timedelta(minutes=20))
    changed = update(desk, notice["id"], {"version": 1, "body": "Mail is flowing again, slowly.", "level": "degraded",
                                          "expected_end_at": None})
    assert changed.status_code == 200, changed.get_json()
    after = changed.get_json()
    assert after["level"] == "degraded" and after["version"] == 2 and after["expected_end_at"] is None
    assert after["latest"] == "Mail is flowing again, slowly."

    # mona is told (in-app and by mail); rita (who took it back) and alex (who wrote it) are not
    services.session.expire_all()
    told = services.session.scalars(select(Notification).where(Notification.subject.like("Service status:%"))).all()
    assert [(n.user_id, n.subject) for n in told] == [
        (services.users.get_by_username("mona").id, "Service status: E-mail is down (Degraded service)")]
    assert "Mail is flowing again, slowly." in told[0].body and f"/status/{notice['id']}" in told[0].body
    mails = services.session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "status.updated",
                                                                 OutboxMessage.channel == "email")).all()
    assert [m.recipient for m in mails] == ["mona@example.org"]

    clock.advance(timedelta(minutes=40))
    done = resolve(desk, notice["id"], {"version": 2, "body": "Fixed: a full disk on the relay."})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["state"] == "resolved" and [u["kind"] for u in done.get_json()["updates"]] == [
        "posted", "update", "resolved"]
    now = board(desk, "rita")
    assert now["current"] == [] and [n["title"] for n in now["resolved"]] == ["E-mail is down"]
    resolved_mail = services.session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "status.resolved",
                                                                          OutboxMessage.channel == "email")).all()
    assert [(m.recipient, m.subject) for m in resolved_mail] == [("mona@example.org", "Resolved: E-mail is down")]

    # resolved is final: no more updates, nobody says it affects them any more
    assert_error(update(desk, notice["id"], {"version": 3, "body": "more"}), 409)
    assert_error(affected(desk, notice["id"], "rita"), 409)
    services.session.expire_all()
    kinds = [e.event_type for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type.like("status_notice_%")).order_by(AuditEvent.seq))]
    assert kinds == ["status_notice_posted", "status_notice_updated", "status_notice_resolved"]
    updated = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "status_notice_updated")).one()
    assert updated.payload["was"]["level"] == "outage" and updated.payload["level"] == "degraded"
    assert updated.payload["told"] == 1 and updated.actor == "alex"

    # a week later it is off the page
    clock.advance(timedelta(days=8))
    assert board(desk, "rita")["resolved"] == []


def test_an_update_over_an_older_version_is_refused_and_changes_nothing(desk: Desk, services):
    notice = posted(desk, OUTAGE)
    assert update(desk, notice["id"], {"version": 1, "body": "Looking at the relay."}, who="nina").status_code == 200
    stale = assert_error(update(desk, notice["id"], {"version": 1, "body": "It is fixed!", "level": "info"}), 409)
    assert stale["details"]["current_version"] == 2
    assert_error(resolve(desk, notice["id"], {"version": 1, "body": "Fixed."}), 409)
    after = desk.client.get(f"/api/v1/status/{notice['id']}", headers=desk.auth("rita")).get_json()
    assert after["level"] == "outage" and after["version"] == 2 and after["resolved_at"] is None
    assert [u["body"] for u in after["updates"]] == [OUTAGE["body"], "Looking at the relay."]


def test_only_the_desks_staff_post_update_and_resolve(desk: Desk, services):
    before = counts(services)
    for who in ("rita", "mona", "aude", "cab1"):
        refused = assert_error(post(desk, OUTAGE, who), 403)
        assert "agent, process_owner or admin" in refused["message"], who
    assert counts(services) == before
    notice = posted(desk, OUTAGE, who="olga")
    for who in ("rita", "aude"):
        assert_error(update(desk, notice["id"], {"version": 1, "body": "x"}, who), 403)
        assert_error(resolve(desk, notice["id"], {"version": 1, "body": "x"}, who), 403)
    assert_error(update(desk, 999999, {"version": 1, "body": "x"}), 404)
    assert_error(desk.client.get("/api/v1/status/999999", headers=desk.auth("rita")), 404)
    assert_error(affected(desk, 999999, "rita"), 404)
    refusals = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert {e.payload["action"] for e in refusals} >= {"status_notice_post", "status_notice_update",
                                                       "status_notice_resolve"}


@pytest.mark.parametrize(("body", "field", "message"), [
    ({**OUTAGE, "title": "   "}, "title", "is required"),
    ({**OUTAGE, "title": "x" * 201}, "title", "at most 200"),
    ({**OUTAGE, "level": "meltdown"}, "level", "must be one of outage, degraded, maintenance, info"),
    ({**OUTAGE, "body": ""}, "body", "is required"),
    ({**OUTAGE, "body": "b" * 4001}, "body", "at most 4000"),
    ({**OUTAGE, "title": "Mail \u202e down"}, "title", "bidirectional"),
    ({**OUTAGE, "record": "INC-999999"}, "record", "is not a record you may read"),
    ({**OUTAGE, "starts_at": "2026-01-10T10:00:00Z", "expected_end_at": "2026-01-10T09:00:00Z"},
     "expected_end_at", "must be after the start"),
    ({**OUTAGE, "starts_at": "2029-01-10T10:00:00Z"}, "starts_at", "within a year"),
    ({**OUTAGE, "starts_at": "2026-01-10T10:00:00"}, "starts_at", "aware"),
    ({**OUTAGE, "colour": "red"}, "colour", "Unknown field"),
])
def test_a_bad_notice_is_refused_naming_the_field_and_nothing_is_stored(desk: Desk, services, body, field, message):
    before = counts(services)
    refused = assert_error(post(desk, body), 422)
    assert field in refused["details"]["fields"], refused
    assert message.lower() in " ".join(map(str, refused["details"]["fields"][field])).lower(), refused
    assert counts(services) == before


def test_planned_maintenance_shows_as_planned_then_current(desk: Desk, services, clock):
    starts = clock.now() + timedelta(days=2)
    notice = posted(desk, {"title": "Network switch upgrade", "level": "maintenance",
                           "body": "The office network is down for an hour on Saturday night.",
                           "starts_at": rfc3339(starts), "expected_end_at": rfc3339(starts + timedelta(hours=1))})
    assert notice["state"] == "planned"
    now = board(desk, "rita")
    assert [n["title"] for n in now["planned"]] == ["Network switch upgrade"] and now["current"] == []
    posted(desk, {"title": "Printing is slow", "level": "degraded", "body": "Jobs wait a few minutes."})
    posted(desk, {"title": "VPN is down", "level": "outage", "body": "Nobody connects from home."})
    assert [n["title"] for n in board(desk, "rita")["current"]] == ["VPN is down", "Printing is slow"]  # worst first
    clock.advance(timedelta(days=2, minutes=1))
    now = board(desk, "rita")
    assert now["planned"] == [] and [n["title"] for n in now["current"]] == [
        "VPN is down", "Printing is slow", "Network switch upgrade"]
    # an estimate before the start is refused on update too
    refused = assert_error(update(desk, notice["id"], {"version": 1, "body": "Later.",
                                                       "expected_end_at": rfc3339(starts - timedelta(hours=1))}), 422)
    assert refused["details"]["fields"] == {"expected_end_at": ["must be after the start"]}


def record_notices(desk: Desk, number: str, who: str) -> Any:
    return desk.client.get(f"/api/v1/tickets/{number}/status", headers=desk.auth(who))


def test_a_record_lists_the_notices_about_it_and_says_when_one_outlives_it(desk: Desk, services, clock):
    from tests.http.test_e2e_incident import resolve as resolve_incident
    from tests.http.test_e2e_incident import triage

    number, _ = open_incident(desk, title="Mail bounces")
    other, _ = open_incident(desk, title="Printer jams")
    first = posted(desk, {**OUTAGE, "record": number})
    done = posted(desk, {**OUTAGE, "title": "Mail was slow this morning", "level": "degraded", "record": number})
    assert resolve(desk, done["id"], {"version": 1, "body": "Back to normal."}).status_code == 200
    planned = posted(desk, {**OUTAGE, "title": "Mail server patching", "level": "maintenance", "record": number,
                            "starts_at": rfc3339(clock.now() + timedelta(days=2))})
    posted(desk, {**OUTAGE, "title": "Printers", "record": other})
    posted(desk, {**OUTAGE, "title": "No record behind it"})

    answer = record_notices(desk, number.lower(), "rita")  # her own record
    assert answer.status_code == 200, answer.get_json()
    listed = answer.get_json()
    assert [n["id"] for n in listed["current"]] == [first["id"]]
    assert [n["id"] for n in listed["planned"]] == [planned["id"]]
    assert [n["id"] for n in listed["resolved"]] == [done["id"]]
    assert {n["record_done"] for part in listed.values() for n in part} == {False}
    # who may not read the record learns nothing of it, not even that it exists
    assert_error(record_notices(desk, number, "mona"), 404)
    assert_error(record_notices(desk, "INC-999999", "alex"), 404)

    # the incident is resolved, the outage notice is not: the desk is told the notice may be stale
    triage(desk, number)
    clock.advance(timedelta(hours=1))
    resolve_incident(desk, number)
    assert desk.record(number)["status"] == "resolved"
    listed = record_notices(desk, number, "alex").get_json()
    assert [(n["id"], n["record_done"]) for n in listed["current"] + listed["planned"] + listed["resolved"]] == [
        (first["id"], True), (planned["id"], True), (done["id"], False)]  # a resolved notice is not stale
    current = board(desk, "alex")["current"]
    assert {n["title"]: n["record_done"] for n in current} == {
        "E-mail is down": True, "Printers": False, "No record behind it": False}
    # and only to whom may read the record: the flag says nothing of a record the reader may not see
    assert {n["title"]: n["record_done"] for n in board(desk, "mona")["current"]}["E-mail is down"] is False


def test_a_notice_is_about_an_incident_a_change_or_a_problem_not_a_catalog_request(desk: Desk, services):
    from tests.http.test_e2e_catalog import order

    request = order(desk, "NET-VPN")["number"]
    before = counts(services)
    refused = assert_error(post(desk, {**OUTAGE, "record": request}), 422)
    assert refused["details"]["fields"] == {"record": ["must be an incident, a change or a problem"]}
    assert counts(services) == before


def test_notices_left_open_for_long_do_not_push_the_newest_off_the_board(desk: Desk, services, clock):
    from app.services.status import MAX_LISTED

    alex = services.users.get_by_username("alex")
    for n in range(2 * MAX_LISTED + 1):  # forgotten, long open information notices
        services.status.post(alex, {"title": f"Old note {n}", "level": "info", "body": "Left open.",
                                    "starts_at": clock.now() - timedelta(days=30, minutes=n)})
    services.session.commit()
    outage = posted(desk, {**OUTAGE, "starts_at": rfc3339(clock.now() - timedelta(minutes=5))})
    planned = posted(desk, {**OUTAGE, "title": "Patching", "level": "maintenance",
                            "starts_at": rfc3339(clock.now() + timedelta(days=1))})
    now = board(desk, "rita")
    assert now["current"][0]["id"] == outage["id"] and len(now["current"]) == MAX_LISTED
    assert [n["id"] for n in now["planned"]] == [planned["id"]]


def test_a_notice_about_a_record_affects_its_requester_and_watchers_from_the_start(desk: Desk, services):
    number, _ = open_incident(desk, title="Mail bounces")  # rita's
    ticket = services.session.scalars(select(Ticket).where(Ticket.number == number)).one()
    services.users.create_user("walt", "password-1234", roles=["requester"])
    for name in ("mona", "walt"):
        services.records.watch(ticket, user=services.users.get_by_username(name))
    services.records.watch(ticket, group="CAB")  # a group hears of the record, not of the notice
    services.users.deactivate_user(None, "walt")  # gone: told of nothing
    services.session.commit()

    notice = posted(desk, {**OUTAGE, "record": number})
    assert notice["affected"] == 2
    for who, affects in (("rita", True), ("mona", True), ("cab1", False)):
        assert desk.client.get(f"/api/v1/status/{notice['id']}", headers=desk.auth(who)).get_json()["affects_me"] is affects
    services.session.expire_all()
    audited = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "status_notice_posted")).one()
    assert audited.payload["affected_from_record"] == 2

    # they hear of its update as those who said so do, and may take it back
    assert affected(desk, notice["id"], "mona", False).status_code == 200
    assert update(desk, notice["id"], {"version": 1, "body": "Mail flows again for most."}).status_code == 200
    services.session.expire_all()
    told = services.session.scalars(select(Notification).where(Notification.subject.like("Service status:%"))).all()
    assert [n.user_id for n in told] == [services.users.get_by_username("rita").id]
