"""Who an SLA escalation tells, and what it tells them (QA):

* nobody who may not open the record: a group's manager heard of records of no group they manage
  (with their titles, by e-mail) and answered 404 on them; a group's manager now sees the group's
  records;
* a breach that hands the record to another group tells that group (it told the old one), and
  those it takes the work from (a claimant, the assignee outside the new group, now cleared),
  saying where it went; the change is the record's update (updated_at, ``record_updated``);
* whoever the open work waits on by name: a request waiting for its approver warned the
  fulfilment group, never the approver.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import AuditEvent, Notification, User
from tests.http.desk import LAPTOP, Desk
from tests.http.test_sla_escalation_effects import START, put_policy


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def breach_notices(services, number: str) -> dict[str, str]:
    """username -> body of the breach notices about ``number``."""
    rows = services.session.execute(select(Notification.user_id, Notification.body)
                                    .where(Notification.subject.like(f"SLA % of {number} %")))
    return {services.session.get(User, uid).username: body for uid, body in rows}


def test_a_groups_manager_is_told_of_and_sees_the_groups_records_only(desk: Desk, services, clock):
    assert desk.client.patch("/api/v1/groups/NetworkTeam", headers=desk.auth("ada"),
                             json={"manager": "mona"}).status_code == 200
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 7200,
                      "escalation": {"breach": {"notify": ["group", "group_manager"]}}})
    mine = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(mine, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    untriaged = desk.start("rita", "incident_management", START)["data"]["record_number"]  # ServiceDesk's queue
    clock.advance(timedelta(hours=2, minutes=1))
    assert services.sla.sweep()["breaches"] >= 2
    assert "mona" in breach_notices(services, mine)
    assert desk.client.get(f"/api/v1/tickets/{mine}", headers=desk.auth("mona")).status_code == 200
    # a record of no group she manages: not told, not shown
    assert "mona" not in breach_notices(services, untriaged)
    assert desk.client.get(f"/api/v1/tickets/{untriaged}", headers=desk.auth("mona")).status_code == 404


def test_a_breach_that_hands_the_record_on_tells_the_new_group_and_who_lost_the_work(desk: Desk, services, clock):
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
                      "escalation": {"breach": {"notify": ["assignee", "group"], "reassign_group": "MajorIncidentManagers"}}})
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    task_id = desk.task_id(number, "investigate", "nina")
    assert desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth("nina")).status_code == 200
    before = desk.record(number)["updated_at"]
    clock.advance(timedelta(hours=2, minutes=1))
    assert services.sla.sweep()["breaches"] == 1
    told = breach_notices(services, number)
    assert "mike" in told  # the new group
    assert "nina" in told and "It now goes to MajorIncidentManagers." in told["nina"]  # her claim was released
    record = desk.record(number)
    assert record["assignment_group"] == "MajorIncidentManagers" and record["updated_at"] > before
    updates = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "record_updated",
                                                                 AuditEvent.actor == "sla")).all()
    assert [e.payload["changes"] for e in updates] == [{"assignment_group": "MajorIncidentManagers"}]


def test_the_assignee_outside_the_new_group_is_cleared_and_told(desk: Desk, services, clock):
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
                      "pause_statuses": [],  # the vendor wait below does not stop the clock
                      "escalation": {"breach": {"notify": ["group"], "reassign_group": "MajorIncidentManagers"}}})
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "vendor", "pending_reason": "RMA"})
    assert desk.record(number)["assignee"] == "nina"
    clock.advance(timedelta(hours=2, minutes=1))
    assert services.sla.sweep()["breaches"] == 1
    record = desk.record(number)
    assert record["assignment_group"] == "MajorIncidentManagers" and record["assignee"] is None
    assert "nina" in breach_notices(services, number)


def test_a_request_waiting_for_its_approver_warns_the_approver(desk: Desk, services, clock):
    put_policy(desk, {"kind": "request", "priority": "P4", "response_seconds": 3600, "resolution_seconds": 7200,
                      "escalation": {"breach": {"notify": ["assignee", "group"]}}})
    ordered = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert ordered.status_code == 201, ordered.get_json()
    number = ordered.get_json()["number"]
    assert desk.ready(number) == ["approve_manager"]  # waiting for mona, rita's line manager
    clock.advance(timedelta(hours=3))
    services.sla.sweep()
    assert "mona" in breach_notices(services, number)


def comment_notices(services, number: str) -> set[str]:
    rows = services.session.scalars(select(Notification.user_id).where(Notification.subject.like(f"New comment on {number}:%")))
    return {services.session.get(User, uid).username for uid in rows}


def test_a_requesters_comment_reaches_the_group_when_nobody_or_a_leaver_holds_the_record(desk: Desk, services):
    """QA: a comment on an unassigned record reached nobody; one on a deactivated assignee's
    record was mailed to the leaver only."""
    services.users.create_user("nils", "password-1234", roles=["agent"], groups=["NetworkTeam"])
    services.session.commit()
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    assert desk.record(number)["assignee"] is None
    sent = desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("rita"), json={"body": "Any news?"})
    assert sent.status_code == 201, sent.get_json()
    assert comment_notices(services, number) == {"nina", "nils"}  # the group
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "vendor", "pending_reason": "RMA"})
    assert desk.client.post("/api/v1/users/nina/deactivate", headers=desk.auth("ada")).status_code == 200
    services.session.execute(Notification.__table__.delete())
    services.session.commit()
    sent = desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("rita"), json={"body": "Still?"})
    assert sent.status_code == 201
    assert comment_notices(services, number) == {"nils"}  # not the leaver


def test_a_diagrams_notice_about_a_record_links_to_it(desk: Desk, services):
    """QA: the notices of the diagrams' notify steps ("needs your answer", "Major incident (P1)")
    were the only ones without a link to the record."""
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "customer",
                                                   "pending_reason": "Please send a photo of the error"})
    [notice] = [n for n in desk.notifications("rita") if "needs your answer" in n["subject"]]
    assert notice["body"].rstrip().endswith(f"/tickets/{number}")
