"""An outbox sweep never outlives its claim: it stops delivering while one more delivery still fits before
the claim expires, gives the rest back, and never records a message another sweeper has claimed since.

Real database, real sweeper, real HTTP receiver on 127.0.0.1; the receiver can answer late, move the
clock, or hold its answer until the test lets it go.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import OutboxMessage
from app.services.notifications import DeliveryReport, NotificationService
from tests.http.helpers import Receiver, logged_attempts

SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture()
def config(app: Any) -> dict[str, Any]:
    runtime_config: dict[str, Any] = app.extensions["processdesk"].runtime.config
    # The receiver is on 127.0.0.1; a short SMTP timeout keeps the email share of the margin small.
    runtime_config.update({"WEBHOOK_ALLOW_PRIVATE_NETWORKS": True, "SMTP_TIMEOUT": 0.2})
    return runtime_config


def queue(services: Any, url: str, count: int) -> list[int]:
    """``count`` pending webhook messages to ``url``, committed; their ids."""
    ada = services.users.create_user("ada", "password-1234", roles=["admin"], groups=[], email="ada@example.test")
    services.notifications.add_webhook(ada, url, SECRET, ["*"])
    for n in range(count):
        assert services.notifications.publish("task.assigned", {"subject": f"event {n}"}) == 1
    services.session.commit()
    ids = list(services.session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))
    services.session.rollback()
    return ids


def messages(services: Any) -> list[OutboxMessage]:
    rows = list(services.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)
                                         .execution_options(populate_existing=True)))
    services.session.rollback()
    return rows


def test_a_slow_sweep_stops_before_its_claim_expires_and_releases_the_rest(
        services: Any, config: dict[str, Any], clock: Any, receiver: Receiver) -> None:
    ids = queue(services, receiver.url, 10)
    # A 4 s claim; one delivery's worst case is the 1 s webhook timeout (0.6 s for an email), plus 1 s to
    # record: deliveries start only in the first 2 s. Each takes 0.4 s, so about five fit.
    sweeper = NotificationService(services.session, services.audit, clock, config, claim_seconds=4, webhook_timeout=1.0)
    assert sweeper.delivery_margin() == pytest.approx(2.0)
    receiver.delay = 0.4

    started = time.monotonic()
    first = sweeper.sweep("a")
    elapsed = time.monotonic() - started

    assert elapsed < 4.0  # done before the claim expired
    assert first.claimed == 10 and first.sent >= 1 and first.released >= 1
    assert first.sent + first.released == 10 and (first.retried, first.dead, first.deferred) == (0, 0, 0)
    rows = messages(services)
    released = [m for m in rows if m.status == "pending"]
    assert len(released) == first.released
    assert all(m.claimed_by is None and m.claimed_until is None and m.attempts == 0
               and m.next_attempt_at <= clock.now() for m in released)  # the next sweep may take them at once

    receiver.delay = 0.0
    second = NotificationService(services.session, services.audit, clock, config, claim_seconds=4,
                                 webhook_timeout=1.0).sweep("b")

    assert (second.claimed, second.sent, second.released) == (first.released, first.released, 0)
    assert [m.status for m in messages(services)] == ["sent"] * 10
    assert all(m.attempts == 1 for m in messages(services))
    event_ids = {m.event_id for m in messages(services)}
    assert Counter(receiver.event_ids) == Counter({event_id: 1 for event_id in event_ids})  # each once
    assert logged_attempts(services) == len(ids) == 10


def test_the_sweep_also_stops_by_the_services_clock(
        services: Any, config: dict[str, Any], clock: Any, receiver: Receiver) -> None:
    queue(services, receiver.url, 10)
    # A 120 s claim, a margin of 6 s (5 s webhook timeout + 1 s): no delivery starts after 114 s.
    receiver.on_request = lambda: clock.advance(timedelta(seconds=30))  # each delivery "takes" 30 s

    report = services.notifications.sweep("a")

    # Deliveries start at 0, 30, 60 and 90 s; at 120 s the claim is over.
    assert (report.claimed, report.sent) == (10, 4) and len(receiver.event_ids) == 4
    assert report.released == 6
    assert [m.claimed_by for m in messages(services)] == [None] * 10


def test_a_message_claimed_by_another_sweeper_meanwhile_is_not_recorded_by_the_first(
        app: Any, services: Any, config: dict[str, Any], clock: Any, receiver: Receiver) -> None:
    (message_id,) = queue(services, receiver.url, 1)
    arrived, proceed = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        assert proceed.wait(10.0)

    receiver.on_request = hold
    outcome: dict[str, Any] = {}

    def first_sweeper() -> None:
        try:
            outcome["report"] = services.notifications.sweep("a")
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=first_sweeper)
    thread.start()
    try:
        assert arrived.wait(10.0), "the first sweeper never delivered"
        # The first delivery hangs past the claim; a second sweeper finds the claim expired and takes it.
        clock.advance(timedelta(seconds=121))  # the claim lasts 120 s
        other = app.extensions["processdesk"].services()
        try:
            assert other.notifications.claim_due("b") == [message_id]
        finally:
            proceed.set()
            thread.join(15.0)
        assert not thread.is_alive() and "error" not in outcome, outcome
        report: DeliveryReport = outcome["report"]
        assert (report.claimed, report.sent, report.retried, report.dead) == (1, 0, 0, 0)  # skipped: not ours
        (message,) = messages(services)
        assert (message.status, message.attempts, message.claimed_by) == ("pending", 0, "b")
        assert logged_attempts(services) == 0

        receiver.on_request = None
        assert other.notifications.deliver(message_id, "b") == "sent"
        other.session.close()
    finally:
        proceed.set()
        thread.join(15.0)
    (message,) = messages(services)
    assert (message.status, message.attempts, message.claimed_by) == ("sent", 1, None)
    assert logged_attempts(services) == 1  # recorded once, by the sweeper that held the claim
    assert receiver.event_ids == [message.event_id] * 2  # the late first delivery did reach the receiver
