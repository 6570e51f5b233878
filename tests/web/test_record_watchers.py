"""Watchers: a process step that tells a group or a user about a record lets them read it.

A P1 incident's notify step tells ServiceOwners; amy (an approver in ServiceOwners) could not open
the record before and reads it afterwards (API, record page, comments, the record list), without
acting on it. rick, an unrelated requester, still cannot see it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, Notification, OutboxMessage
from app.models.record import RecordWatcher
from app.services.operations import PlatformOperations
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.web.conftest import INCIDENT, PASSWORD, WebClient, text_of

P1 = {**INCIDENT, "impact": "high", "urgency": "high"}


@pytest.fixture()
def people(desk: Desk, services: Any) -> None:
    services.users.create_user("amy", PASSWORD, roles=["approver"], groups=["ServiceOwners"])
    services.users.create_user("rick", PASSWORD, roles=["requester"], groups=["Requesters"])
    services.session.commit()


def open_p1(desk: Desk) -> tuple[str, int]:
    instance = desk.start("rita", "incident_management", P1)
    return instance["data"]["record_number"], instance["id"]


def triage(desk: Desk, number: str) -> None:
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P1", "assignment_group": "NetworkTeam",
                                             "triage_notes": "Whole VPN estate down"})


def api(desk: Desk, who: str, url: str) -> Any:
    return desk.client.get(url, headers=desk.auth(who))


def listed(desk: Desk, who: str) -> set[str]:
    response = api(desk, who, "/api/v1/tickets?per_page=100")
    assert response.status_code == 200, response.get_json()
    return {row["number"] for row in response.get_json()["items"]}


def audit_count(services: Any) -> int:
    return int(services.session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_the_group_told_of_a_p1_reads_the_record_and_no_more(desk: Desk, people: None, services: Any,
                                                              web: WebClient, web_factory: Any):
    number, instance_id = open_p1(desk)
    web.login("amy")
    # before the notification: amy does not see the record anywhere
    assert_error(api(desk, "amy", f"/api/v1/tickets/{number}"), 404)
    assert_error(api(desk, "amy", f"/api/v1/tickets/{number}/comments"), 404)
    assert web.get(f"/tickets/{number}").status_code == 404
    assert number not in listed(desk, "amy")

    triage(desk, number)
    told = [n for n in desk.notifications("amy") if n["subject"] == "Major incident (P1): VPN down"]
    assert len(told) == 1
    ticket = services.records.by_number(number)
    assert services.records.watchers(ticket) == {"users": [], "groups": ["ServiceOwners"]}

    # after it: the record, its comments, its page and the list, and no audit event for reading
    before = audit_count(services)
    record = api(desk, "amy", f"/api/v1/tickets/{number}")
    assert record.status_code == 200 and record.get_json()["title"] == "VPN down"
    assert api(desk, "amy", f"/api/v1/tickets/{number}/comments").status_code == 200
    page = web.get(f"/tickets/{number}")
    assert page.status_code == 200 and number in text_of(page)
    # the page offers her no comment or link form, and says why
    assert 'id="watching-only"' in text_of(page) and 'id="comment-body"' not in text_of(page)
    assert 'id="link-other"' not in text_of(page)
    assert number in listed(desk, "amy")
    services.session.expire_all()
    assert audit_count(services) == before

    # an unrelated requester still sees nothing of it
    assert_error(api(desk, "rick", f"/api/v1/tickets/{number}"), 404)
    assert number not in listed(desk, "rick")
    rick = web_factory()
    rick.login("rick")
    assert rick.get(f"/tickets/{number}").status_code == 404

    # reading is all: no instance, no comment
    assert_error(api(desk, "amy", f"/api/v1/instances/{instance_id}"), 404)
    refused = desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("amy"), json={"body": "Any news?"})
    assert_error(refused, 403, "forbidden")
    assert [c["body"] for c in api(desk, "aude", f"/api/v1/tickets/{number}/comments").get_json()["items"]] == []

    # the notification's audit event says who now watches the record
    [sent] = [e for e in desk.history(instance_id) if e["type"] == "notification_sent"]
    assert sent["payload"]["watchers"] == {"number": number, "users": [], "groups": ["ServiceOwners"]}


def test_a_watcher_may_not_link_her_own_record_to_the_watched_one(desk: Desk, people: None):
    number, _ = open_p1(desk)
    triage(desk, number)
    own = desk.start("amy", "incident_management", INCIDENT)["data"]["record_number"]
    response = desk.client.post(f"/api/v1/tickets/{own}/links", headers=desk.auth("amy"),
                                json={"number": number, "link_type": "related"})
    assert_error(response, 403, "forbidden")
    assert desk.record(own)["links"] == []


def test_a_notified_user_watches_the_record_once(desk: Desk, people: None, services: Any):
    number, instance_id = open_p1(desk)
    rick = services.users.get_by_username("rick")
    ticket = services.records.by_number(number)
    assert not services.records.may_see(rick, ticket)
    instance = services.records.instance_for(ticket)
    notify = PlatformOperations(services, instance, None)
    for _ in range(2):
        assert notify("notify", {"user": "rick", "subject": f"FYI {number}"}) == {"notified": 1}
    services.session.commit()
    rows = services.session.scalars(select(RecordWatcher).where(RecordWatcher.ticket_id == ticket.id)).all()
    assert [(row.user_id, row.group_name) for row in rows] == [(rick.id, None)]
    assert services.records.may_see(rick, ticket)
    assert desk.record(number, "rick")["number"] == number
    # the second notification added nobody: only the first one's audit event names a watcher
    sent = [e["payload"].get("watchers") for e in desk.history(instance_id) if e["type"] == "notification_sent"]
    assert sent == [{"number": number, "users": ["rick"], "groups": []}, None]


def test_may_see_and_the_sql_rule_agree_for_watchers(desk: Desk, people: None, services: Any):
    number, _ = open_p1(desk)
    records = services.records
    amy, rick = services.users.get_by_username("amy"), services.users.get_by_username("rick")
    ticket = records.by_number(number)
    for user in (amy, rick):
        assert not records.may_see(user, ticket) and records.visible_by_number(user, [number]) == {}
    triage(desk, number)
    services.session.expire_all()
    amy, ticket = services.users.get_by_username("amy"), records.by_number(number)
    assert records.may_see(amy, ticket) and set(records.visible_by_number(amy, [number])) == {number}
    # watching is reading: the rule of acting leaves it out, in Python and in SQL alike
    assert not records.may_see(amy, ticket, watched=False)
    assert records.visible_by_number(amy, [number], watched=False) == {}
    assert not records.may_see(rick, ticket) and records.visible_by_number(rick, [number]) == {}


def told(desk: Desk, services: Any, who: str, subject: str) -> list[str]:
    """The bodies of ``who``'s in-app notices with ``subject`` (read in the database: a leaver's
    token no longer signs in)."""
    user = services.users.get_by_username(who)
    services.session.expire_all()
    return [n.body for n in services.session.scalars(select(Notification).where(
        Notification.user_id == user.id, Notification.subject == subject).order_by(Notification.id))]


def notify_again(services: Any, number: str, subject: str) -> dict[str, Any]:
    """A later notify step of the record's process telling ServiceOwners (as its closing one does)."""
    ticket = services.records.by_number(number)
    result = PlatformOperations(services, services.records.instance_for(ticket), None)(
        "notify", {"group": "ServiceOwners", "subject": subject})
    services.session.commit()
    return dict(result)


@pytest.fixture()
def mixed_group(desk: Desk, people: None, services: Any) -> None:
    """ServiceOwners as a directory mirrors it: beside amy (approver) and sonia (agent), rae who only
    requests, otto who left (deactivated), and rita, the P1's requester, who only requests too."""
    services.users.create_user("rae", PASSWORD, roles=["requester"], groups=["ServiceOwners"])
    services.users.create_user("otto", PASSWORD, roles=["approver"], groups=["ServiceOwners"])
    services.users.deactivate_user(None, "otto")
    services.users.update_user(None, "rita", {"groups": ["Requesters", "ServiceOwners"]})
    services.session.commit()


def test_a_group_told_of_a_record_lets_only_its_members_who_may_read_it_read_and_hear_of_it(
        desk: Desk, mixed_group: None, services: Any):
    """The notify step made every member of the group a reader of the P1 and mailed each its
    description: rae, who only requests, too. Its members who work a group's queue
    (``policy.QUEUE_ROLES``) read it through the group's watch, and whoever reads it anyway (its
    requester) is told as before; rae is neither told nor reads it, nor is otto, who left."""
    number, instance_id = open_p1(desk)
    triage(desk, number)
    subject = "Major incident (P1): VPN down"
    for reader in ("amy", "sonia", "rita"):
        [body] = told(desk, services, reader, subject)
        assert P1["description"] in body and number in body
    assert told(desk, services, "rae", subject) == [] and told(desk, services, "otto", subject) == []
    assert not [m for m in services.session.scalars(select(OutboxMessage)) if m.recipient.startswith(("rae", "otto"))]

    records = services.records
    ticket = records.by_number(number)
    assert records.watchers(ticket) == {"users": [], "groups": ["ServiceOwners"]}
    for who in ("rae", "otto"):
        user = services.users.get_by_username(who)
        assert not records.may_see(user, ticket) and records.visible_by_number(user, [number]) == {}
    assert_error(api(desk, "rae", f"/api/v1/tickets/{number}"), 404)
    assert_error(api(desk, "rae", f"/api/v1/tickets/{number}/comments"), 404)
    assert number not in listed(desk, "rae")
    assert api(desk, "amy", f"/api/v1/tickets/{number}").status_code == 200
    [sent] = [e for e in desk.history(instance_id) if e["type"] == "notification_sent"]
    assert sent["payload"]["recipients"] == 3  # amy, sonia, rita


def test_a_member_who_loses_the_role_neither_reads_the_watched_record_nor_hears_of_it(
        desk: Desk, people: None, services: Any):
    number, _ = open_p1(desk)
    triage(desk, number)
    assert api(desk, "amy", f"/api/v1/tickets/{number}").status_code == 200
    # her approver role taken away (she stays in ServiceOwners): the group's watch shows her nothing more
    services.users.update_user(None, "amy", {"roles": ["requester"]})
    services.session.commit()
    assert_error(api(desk, "amy", f"/api/v1/tickets/{number}"), 404)
    assert number not in listed(desk, "amy")
    assert notify_again(services, number, f"Update on {number}") == {"notified": 1}  # sonia
    assert told(desk, services, "amy", f"Update on {number}") == []
    assert len(told(desk, services, "sonia", f"Update on {number}")) == 1
    # given the role back, she reads it again: the group still watches it
    services.users.update_user(None, "amy", {"roles": ["approver"]})
    services.session.commit()
    assert api(desk, "amy", f"/api/v1/tickets/{number}").status_code == 200


def test_a_deactivated_member_is_not_told_of_the_watched_record(desk: Desk, people: None, services: Any):
    number, _ = open_p1(desk)
    triage(desk, number)
    services.users.deactivate_user(None, "amy")
    services.session.commit()
    assert notify_again(services, number, f"Update on {number}") == {"notified": 1}  # sonia
    assert told(desk, services, "amy", f"Update on {number}") == []
