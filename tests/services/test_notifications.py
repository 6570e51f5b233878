"""Notifications through the outbox: a real SMTP server and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from app.models import DeliveryAttempt, Notification, OutboxMessage
from app.services.delivery import verify_webhook_signature
from tests.conftest import FIXTURES

RECORD_FILES = [(p.name, p.read_bytes()) for p in sorted(Path(FIXTURES / "records").iterdir())]
SECRET = "a-webhook-secret-of-some-length"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture()
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture()
def desk(services, app, smtp):
    port, _ = smtp
    # The receivers listen on 127.0.0.1, which webhooks may only reach with private networks allowed.
    app.extensions["processdesk"].runtime.config.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port,
                                                         "WEBHOOK_ALLOW_PRIVATE_NETWORKS": True})
    for name, roles, groups in (("olga", ["process_owner"], []), ("rita", ["requester"], []),
                                ("alex", ["agent"], ["ServiceDesk"]), ("sam", ["agent"], ["ServiceDesk"]),
                                ("amy", ["approver"], ["Approvers"]), ("ada", ["admin"], [])):
        services.users.create_user(name, "password-1234", roles=roles, groups=groups, email=f"{name}@example.test")
    services.definitions.deploy(services.users.get_by_username("olga"), RECORD_FILES)
    services.session.commit()
    return services


def start(services, who="rita"):
    instance = services.instances.start_process(services.users.get_by_username(who), "mini_ticket",
                                                {"title": "Mail is down", "work_group": "ServiceDesk"})
    services.session.commit()
    return instance


def outbox(services, **filters):
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    for key, value in filters.items():
        query = query.where(getattr(OutboxMessage, key) == value)
    return services.session.scalars(query).all()


def test_task_assignment_emails_the_group_through_the_outbox(desk, smtp):
    _, inbox = smtp
    start(desk)
    queued = outbox(desk, channel="email")
    assert sorted(m.recipient for m in queued) == ["alex@example.test", "sam@example.test"]
    assert all(m.status == "pending" for m in queued) and inbox.messages == []  # nothing sent inside the step
    report = desk.notifications.sweep("test")
    assert (report.sent, report.retried, report.dead) == (2, 0, 0)
    assert sorted(rcpt for env in inbox.messages for rcpt in env.rcpt_tos) == ["alex@example.test", "sam@example.test"]
    text = inbox.messages[0].content.decode()
    assert "New task: Work on it (INC-000001: Mail is down)" in text and "/tasks/" in text
    assert all(m.status == "sent" and m.sent_at is not None for m in outbox(desk, channel="email"))
    assert desk.notifications.sweep("test").claimed == 0  # sent once, never again
    assert desk.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 2


def test_a_failing_mail_server_never_rolls_back_the_step_and_is_retried(desk, app, smtp, clock):
    port, inbox = smtp
    app.extensions["processdesk"].runtime.config["SMTP_PORT"] = free_port()  # nothing listens there
    instance = start(desk)
    assert instance.status == "running"
    report = desk.notifications.sweep("test")
    assert report.retried == 2 and report.sent == 0
    pending = outbox(desk, channel="email")
    assert all(m.attempts == 1 and m.last_error and m.next_attempt_at > clock.now() for m in pending)
    assert desk.notifications.sweep("test").claimed == 0  # backing off
    app.extensions["processdesk"].runtime.config["SMTP_PORT"] = port
    clock.advance(timedelta(minutes=5))
    assert desk.notifications.sweep("test").sent == 2
    assert len(inbox.messages) == 2


def test_a_step_that_rolled_back_sends_nothing(desk, client):
    start(desk)
    before = len(outbox(desk))
    task = desk.instances.open_tasks(desk.instances.list_instances(desk.users.get_by_username("ada"), process_id=None,
                                                                   status=None, page=1, per_page=10)[0][0])[0]
    token = desk.users.issue_token(desk.users.get_by_username("alex"))["token"]
    desk.session.commit()
    response = client.post(f"/api/v1/tasks/{task.id}/complete", headers={"Authorization": f"Bearer {token}"},
                           json={"data": {"symptoms": "x"}})  # workaround missing: 422, rolled back
    assert response.status_code == 422
    assert len(outbox(desk)) == before


def test_opted_out_users_get_in_app_notifications_only(desk):
    alex = desk.users.get_by_username("alex")
    desk.notifications.set_email_opt_out(alex, True)
    desk.session.commit()
    start(desk)
    assert [m.recipient for m in outbox(desk, channel="email")] == ["sam@example.test"]
    assert desk.session.scalar(select(func.count()).select_from(Notification).where(Notification.user_id == alex.id)) == 1


def test_signed_webhooks_with_retries_and_a_delivery_log(desk, receiver, client, clock):
    ada = desk.users.get_by_username("ada")
    token = desk.users.issue_token(ada)["token"]
    desk.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    made = client.post("/api/v1/webhooks", headers=headers, json={"url": receiver.url, "secret": SECRET, "events": ["task.assigned"]})
    assert made.status_code == 201, made.get_json()
    bad = client.post("/api/v1/webhooks", headers=headers, json={"url": "ftp://x", "secret": "short", "events": ["nope"]})
    assert bad.status_code == 422 and set(bad.get_json()["details"]["fields"]) >= {"url", "secret"}
    rita = desk.users.issue_token(desk.users.get_by_username("rita"))["token"]
    desk.session.commit()
    assert client.post("/api/v1/webhooks", headers={"Authorization": f"Bearer {rita}"},
                       json={"url": receiver.url, "secret": SECRET, "events": ["*"]}).status_code == 403

    receiver.status = 500
    start(desk)
    assert desk.notifications.sweep("test").retried == 1
    receiver.status = 200
    clock.advance(timedelta(minutes=2))
    assert desk.notifications.sweep("test").sent == 1
    (first_headers, first_body), (headers_2, body_2) = receiver.requests
    assert headers_2["x-processdesk-delivery"] == first_headers["x-processdesk-delivery"]  # stable across retries
    assert headers_2["x-processdesk-event"] == "task.assigned"
    assert verify_webhook_signature(SECRET, headers_2["x-processdesk-signature"], body_2, now=int(clock.now().timestamp()))
    assert not verify_webhook_signature(SECRET, headers_2["x-processdesk-signature"], body_2 + b" ", now=int(clock.now().timestamp()))
    payload = json.loads(body_2)
    assert payload["record"] == "INC-000001" and payload["recipients"] == ["alex", "sam"]
    log = client.get(f"/api/v1/webhooks/{made.get_json()['id']}/deliveries", headers=headers).get_json()["items"]
    assert log[0]["status"] == "sent" and [a["ok"] for a in log[0]["log"]] == [False, True]
    assert log[0]["log"][0]["status"] == 500

    receiver.status = 404
    start(desk)
    assert desk.notifications.sweep("test").dead == 1  # permanent: no retry


def test_notifications_api(desk, client):
    start(desk)
    alex = desk.users.issue_token(desk.users.get_by_username("alex"))["token"]
    desk.session.commit()
    headers = {"Authorization": f"Bearer {alex}"}
    listing = client.get("/api/v1/notifications", headers=headers).get_json()
    assert listing["unread"] == 1 and listing["items"][0]["record"] == "INC-000001"
    note_id = listing["items"][0]["id"]
    assert client.post(f"/api/v1/notifications/{note_id}/read", headers=headers).get_json()["read_at"] is not None
    assert client.get("/api/v1/notifications?unread=1", headers=headers).get_json()["total"] == 0
    rita = desk.users.issue_token(desk.users.get_by_username("rita"))["token"]
    desk.session.commit()
    assert client.post(f"/api/v1/notifications/{note_id}/read", headers={"Authorization": f"Bearer {rita}"}).status_code == 404
    prefs = client.put("/api/v1/users/me/preferences", headers=headers, json={"email_opt_out": True}).get_json()
    assert prefs["email_opt_out"] is True
    assert client.get("/api/v1/users/me/preferences", headers=headers).get_json()["email_opt_out"] is True


def test_comments_and_resolution_notify_the_requester(desk, client):
    instance = start(desk)
    alex = desk.users.get_by_username("alex")
    task = desk.instances.open_tasks(instance)[0]
    desk.tasks.complete(alex, task.id, {"symptoms": "bounces", "workaround": "webmail"})
    desk.session.commit()
    desk.records.comment(alex, "INC-000001", "Looking into it")
    desk.session.commit()
    rita = desk.users.get_by_username("rita")
    subjects = [n.subject for n in desk.session.scalars(select(Notification).where(Notification.user_id == rita.id))]
    assert "New comment on INC-000001: Mail is down" in subjects
    approve = desk.instances.open_tasks(instance)[0]
    desk.tasks.complete(desk.users.get_by_username("amy"), approve.id, {"approved": True})
    desk.session.commit()
    subjects = [n.subject for n in desk.session.scalars(select(Notification).where(Notification.user_id == rita.id))]
    assert "INC-000001 resolved: Mail is down" in subjects


def test_idle_tasks_remind_their_group_once_per_period(desk, clock, app):
    from app.services.reminders import ReminderService

    app.extensions["processdesk"].runtime.config["TASK_REMINDER_HOURS"] = 24
    start(desk)
    reminders = ReminderService(desk)
    clock.advance(timedelta(hours=23))
    assert reminders.sweep() == 0
    clock.advance(timedelta(hours=2))
    assert reminders.sweep() == 1
    assert reminders.sweep() == 0  # not again within the period
    subjects = [n.subject for n in desk.session.scalars(select(Notification).where(Notification.subject.like("Reminder:%")))]
    assert sorted(subjects) == ["Reminder: Work on it (INC-000001: Mail is down) is waiting"] * 2  # alex and sam
    bodies = {n.body for n in desk.session.scalars(select(Notification).where(Notification.subject.like("Reminder:%")))}
    assert len(bodies) == 1 and bodies.pop().startswith("Work on it for INC-000001: Mail is down has waited 25 hours:")
    clock.advance(timedelta(hours=24, minutes=1))
    assert reminders.sweep() == 1
    # the time it waited, not the reminder count times the period (QA: 72 h idle read "more than 24 hours")
    latest = desk.session.scalars(select(Notification).where(Notification.subject.like("Reminder:%"))
                                  .order_by(Notification.id.desc())).first()
    assert latest.body.startswith("Work on it for INC-000001: Mail is down has waited 2 days:")


def test_a_title_with_a_line_break_still_gets_its_mail_out_on_one_subject_line(desk, smtp):
    """A record title sent with a line break (an API client's) went into every subject about the
    record, and the mailer refused each such message: nobody was told by email."""
    _, inbox = smtp
    desk.instances.start_process(desk.users.get_by_username("rita"), "mini_ticket",
                                 {"title": "Printer\r\nBcc: someone@example.test\u2028 down", "work_group": "ServiceDesk"})
    desk.session.commit()
    report = desk.notifications.sweep("test")
    assert (report.sent, report.dead) == (2, 0)
    subjects = {m.subject for m in outbox(desk, channel="email")}
    assert subjects == {"New task: Work on it (INC-000001: Printer Bcc: someone@example.test down)"}
    assert sorted(rcpt for env in inbox.messages for rcpt in env.rcpt_tos) == ["alex@example.test", "sam@example.test"]
    headers = [env.content.decode().replace("\r\n", "\n").split("\n\n", 1)[0] for env in inbox.messages]
    assert all("\nBcc:" not in head and "Printer Bcc: someone@example.test down" in head for head in headers)
