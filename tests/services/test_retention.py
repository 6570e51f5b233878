"""Data retention (app/services/retention.py): what goes after its period, what stays, in bounded
batches, audited, and run once a day however many sweepers ask."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from app import create_app
from app.clock import FrozenClock
from app.config import DEFAULTS, check_retention
from app.models import (
    ApiToken,
    AuditEvent,
    DeliveryAttempt,
    HousekeepingRun,
    InboundMail,
    LoginFailure,
    Notification,
    OutboxMessage,
    SubmissionToken,
    WebSession,
)
from app.scheduler import retention_once
from app.services.retention import PURGED_EVENT, RetentionService, run_slot_start
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url, sent_statements

DAY = timedelta(days=1)
#: Just inside and just past a period.
INSIDE, PAST = -timedelta(minutes=1), timedelta(minutes=1)


def outbox(session: Any, now: datetime, *, status: str, created: timedelta, due: timedelta | None = None,
           sent: timedelta | None = None, attempts: int = 0) -> int:
    message = OutboxMessage(event_id=uuid.uuid4().hex, event_type="record.created", channel="email",
                            recipient="rita@example.org", subject="s", body="b", payload={}, status=status,
                            attempts=attempts, next_attempt_at=now - (due if due is not None else created),
                            created_at=now - created, sent_at=now - sent if sent is not None else None)
    session.add(message)
    session.flush()
    for n in range(attempts):
        session.add(DeliveryAttempt(message_id=message.id, attempt=n + 1, at=now - created, ok=status == "sent",
                                    status=250, detail=""))
    session.flush()
    return message.id


def note(session: Any, user: Any, now: datetime, created: timedelta, read: timedelta | None = None) -> int:
    row = Notification(user_id=user.id, subject="n", body="", created_at=now - created,
                       read_at=now - read if read is not None else None)
    session.add(row)
    session.flush()
    return row.id


def ids(session: Any, model: type[Any]) -> set[int]:
    return set(session.scalars(select(model.id)))


def retention(services: Any, batch_size: int = 500, **config: Any) -> RetentionService:
    """The service with ``config`` over the app's settings."""
    return RetentionService(services.session, services.audit, services.runtime.clock,
                            {**services.runtime.config, **config}, batch_size=batch_size)


def purge_events(services: Any) -> list[AuditEvent]:
    return list(services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == PURGED_EVENT)
                                         .order_by(AuditEvent.seq)))


def test_outbox_messages_go_after_their_period_with_their_attempts(services, users, clock):
    s, now = services.session, clock.now()
    sent_days, dead_days = DAY * DEFAULTS["RETENTION_OUTBOX_SENT_DAYS"], DAY * DEFAULTS["RETENTION_OUTBOX_DEAD_DAYS"]
    old_sent = outbox(s, now, status="sent", created=sent_days + DAY, sent=sent_days + PAST, attempts=2)
    young_sent = outbox(s, now, status="sent", created=sent_days + DAY, sent=sent_days + INSIDE, attempts=1)
    # dead: counted from the last attempt (next_attempt_at), over the longer period
    old_dead = outbox(s, now, status="dead", created=dead_days + DAY, due=dead_days + PAST, attempts=3)
    young_dead = outbox(s, now, status="dead", created=dead_days + DAY, due=dead_days + INSIDE, attempts=3)
    month_dead = outbox(s, now, status="dead", created=sent_days + DAY, due=sent_days + DAY, attempts=1)
    old_cancelled = outbox(s, now, status="cancelled", created=dead_days + DAY, due=dead_days + PAST)
    old_pending = outbox(s, now, status="pending", created=dead_days + DAY, due=dead_days + DAY, attempts=1)
    s.commit()

    report = services.retention.purge()

    assert ids(s, OutboxMessage) == {young_sent, young_dead, month_dead, old_pending}
    assert {a.message_id for a in s.scalars(select(DeliveryAttempt))} == {young_sent, young_dead, month_dead, old_pending}
    assert report.deleted["outbox_message"] == 3 and report.deleted["delivery_attempt"] == 5
    assert {old_sent, old_dead, old_cancelled}.isdisjoint(ids(s, OutboxMessage))


def test_read_notifications_go_before_unread_ones(services, users, clock):
    s, now, rita = services.session, clock.now(), users["rita"]
    read_days, unread_days = DAY * 90, DAY * 365
    gone = {note(s, rita, now, read_days + DAY, read_days + PAST), note(s, rita, now, unread_days + PAST)}
    kept = {note(s, rita, now, read_days + DAY, read_days + INSIDE), note(s, rita, now, unread_days + INSIDE),
            # read long after it was written: counted from the reading
            note(s, rita, now, unread_days * 2, DAY), note(s, rita, now, DAY)}
    s.commit()

    report = retention(services, RETENTION_NOTIFICATIONS_READ_DAYS=90, RETENTION_NOTIFICATIONS_UNREAD_DAYS=365).purge()

    assert ids(s, Notification) == kept and report.deleted["notification"] == len(gone)


def test_unread_notifications_may_be_kept_forever(services, users, clock):
    s, now = services.session, clock.now()
    unread = note(s, users["rita"], now, DAY * 5000)
    note(s, users["rita"], now, DAY * 5000, DAY * 91)
    s.commit()
    retention(services, RETENTION_NOTIFICATIONS_UNREAD_DAYS=0).purge()
    assert ids(s, Notification) == {unread}


def test_inbound_mail_goes_after_its_period_counted_from_its_last_retry(services, clock):
    s, now = services.session, clock.now()
    period = DAY * DEFAULTS["RETENTION_INBOUND_MAIL_DAYS"]

    def received(key: str, ago: timedelta, retried: timedelta | None = None) -> None:
        s.add(InboundMail(message_id=key, outcome="created", received_at=now - ago,
                          retried_at=now - retried if retried is not None else None))

    received("old@x", period + PAST)
    received("young@x", period + INSIDE)
    received("retried@x", period * 2, period + INSIDE)
    s.commit()
    services.retention.purge()
    assert set(s.scalars(select(InboundMail.message_id))) == {"young@x", "retried@x"}


def test_ended_tokens_and_sessions_go_after_their_period_live_ones_stay(services, users, clock):
    s, now, rita = services.session, clock.now(), users["rita"]
    period = DAY * DEFAULTS["RETENTION_TOKENS_DAYS"]
    ttl = timedelta(seconds=services.runtime.config["TOKEN_TTL_SECONDS"])

    def token(created: timedelta, expires: timedelta, revoked: timedelta | None = None) -> int:
        row = ApiToken(token_hash=uuid.uuid4().hex, user_id=rita.id, token_generation=rita.token_generation,
                       created_at=now - created, expires_at=now - expires,
                       revoked_at=now - revoked if revoked is not None else None)
        s.add(row)
        s.flush()
        return row.id

    def session(created: timedelta, seen: timedelta, ended: timedelta | None = None) -> int:
        row = WebSession(token_hash=uuid.uuid4().hex, user_id=rita.id, token_generation=rita.token_generation,
                         created_at=now - created, seen_at=now - seen, ended_at=now - ended if ended is not None else None)
        s.add(row)
        s.flush()
        return row.id

    token(period * 2, period + PAST)  # expired
    token(period * 2, -DAY, revoked=period + PAST)  # revoked
    kept_tokens = {token(period * 2, period + INSIDE), token(period * 2, -DAY, revoked=period + INSIDE),
                   token(DAY, -DAY)}
    # a token older than the configured lifetime is dead whatever its expires_at says
    token(ttl + period + PAST, -DAY)
    session(period * 2, period * 2, ended=period + PAST)
    session(period * 2, period * 2)  # never signed out: past its idle and absolute timeouts
    # signed out just inside the period (it had not timed out before)
    kept_sessions = {session(period + timedelta(hours=1), period + INSIDE, ended=period + INSIDE),
                     session(DAY, timedelta(minutes=1))}
    s.commit()

    report = services.retention.purge()

    assert ids(s, ApiToken) == kept_tokens and ids(s, WebSession) == kept_sessions
    assert (report.deleted["api_token"], report.deleted["web_session"]) == (3, 2)


def test_submission_tokens_and_login_failures_past_their_own_windows_go(services, users, clock):
    s, now = services.session, clock.now()
    s.add_all([SubmissionToken(user_id=users["rita"].id, token="a" * 20, created_at=now - DAY - PAST),
               SubmissionToken(user_id=users["rita"].id, token="b" * 20, created_at=now - DAY - INSIDE)])
    window = services.runtime.config["WEB_LOGIN_WINDOW_SECONDS"]
    s.add_all([LoginFailure(kind="name", key="k", at=now.timestamp() - window - 1),
               LoginFailure(kind="name", key="k", at=now.timestamp() - window + 1)])
    s.commit()
    report = services.retention.purge()
    assert list(s.scalars(select(SubmissionToken.token))) == ["b" * 20]
    assert s.scalar(select(func.count()).select_from(LoginFailure)) == 1
    assert (report.deleted["submission_token"], report.deleted["login_failure"]) == (1, 1)


def test_batches_loop_until_every_old_row_is_gone(services, users, clock, connection):
    s, now, rita = services.session, clock.now(), users["rita"]
    old = {note(s, rita, now, DAY * 400, DAY * 100) for _ in range(11)}
    young = {note(s, rita, now, DAY) for _ in range(2)}
    s.commit()
    with sent_statements(connection) as statements:
        report = retention(services, batch_size=3).purge()
    assert ids(s, Notification) == young and report.deleted["notification"] == len(old)
    deletes = [q for q in statements if q.startswith("DELETE FROM notification")]
    assert len(deletes) == 4  # 11 rows, 3 a batch
    reads = [q for q in statements if q.startswith("SELECT notification.id")]
    assert len(reads) == 4  # the fourth batch (rows 10-12) reaches the young rows: the walk stops there


def test_the_walk_stops_at_young_rows_instead_of_reading_the_whole_table(services, users, clock, connection):
    s, now, rita = services.session, clock.now(), users["rita"]
    for _ in range(20):
        note(s, rita, now, DAY)
    s.commit()
    with sent_statements(connection) as statements:
        retention(services, batch_size=3).purge()
    assert len([q for q in statements if q.startswith("SELECT notification.id")]) == 1


def test_zero_keeps_everything_forever(services, users, clock):
    s, now = services.session, clock.now()
    ancient = DAY * 10_000
    outbox(s, now, status="sent", created=ancient, sent=ancient, attempts=1)
    outbox(s, now, status="dead", created=ancient, attempts=1)
    note(s, users["rita"], now, ancient, ancient)
    note(s, users["rita"], now, ancient)
    s.add(InboundMail(message_id="m@x", outcome="created", received_at=now - ancient))
    s.add(ApiToken(token_hash="h" * 64, user_id=users["rita"].id, token_generation=0, created_at=now - ancient,
                   expires_at=now - ancient, revoked_at=now - ancient))
    s.commit()
    forever = dict.fromkeys(("RETENTION_OUTBOX_SENT_DAYS", "RETENTION_OUTBOX_DEAD_DAYS",
                             "RETENTION_NOTIFICATIONS_READ_DAYS", "RETENTION_NOTIFICATIONS_UNREAD_DAYS",
                             "RETENTION_INBOUND_MAIL_DAYS", "RETENTION_TOKENS_DAYS"), 0)
    report = retention(services, **forever).purge()
    assert report.total == 0 and purge_events(services) == []
    for model, count in ((OutboxMessage, 2), (DeliveryAttempt, 2), (Notification, 2), (InboundMail, 1), (ApiToken, 1)):
        assert s.scalar(select(func.count()).select_from(model)) == count, model


def test_a_dry_run_counts_and_deletes_nothing(services, users, clock):
    s, now = services.session, clock.now()
    outbox(s, now, status="sent", created=DAY * 40, sent=DAY * 40, attempts=2)
    note(s, users["rita"], now, DAY * 400)
    s.commit()
    dry = services.retention.purge(dry_run=True)
    assert dry.dry_run and dry.deleted["outbox_message"] == 1 and dry.deleted["notification"] == 1
    assert dry.deleted["delivery_attempt"] == 2
    assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert s.scalar(select(func.count()).select_from(Notification)) == 1
    assert purge_events(services) == []
    real = services.retention.purge()
    assert (real.deleted["outbox_message"], real.deleted["notification"]) == (1, 1)


def test_a_purge_that_deleted_something_leaves_one_audit_event_with_the_counts(services, users, clock):
    s, now = services.session, clock.now()
    for _ in range(2):
        outbox(s, now, status="sent", created=DAY * 40, sent=DAY * 40, attempts=1)
    note(s, users["rita"], now, DAY * 400)
    s.commit()

    services.retention.purge(actor_name="cli")
    services.retention.purge()  # nothing left: no event

    [event] = purge_events(services)
    assert event.actor == "cli" and event.instance_id is None
    assert event.payload["deleted"] == {"outbox_message": 2, "delivery_attempt": 2, "notification": 1, "inbound_mail": 0,
                                        "api_token": 0, "web_session": 0, "submission_token": 0, "login_failure": 0,
                                        "password_reset_token": 0}
    assert event.payload["retention_days"]["RETENTION_OUTBOX_SENT_DAYS"] == 30
    assert services.audit.verify().ok


def test_purging_leaves_the_audit_chain_and_what_it_refers_to(services, users, deployed, clock):
    services.notifications.notify([users["rita"], users["alex"]], "record.created", "Hello", "World")
    services.users.issue_token(users["rita"])
    services.session.commit()
    events_before = services.session.scalar(select(func.count()).select_from(AuditEvent))
    clock.advance(DAY * 400)
    services.session.execute(Notification.__table__.update().values(read_at=clock.now() - DAY * 200))
    services.session.commit()
    report = services.retention.purge()
    assert report.deleted["notification"] == 2 and report.deleted["api_token"] == 1
    # every earlier event is still there, and one more says what went
    assert services.session.scalar(select(func.count()).select_from(AuditEvent)) == events_before + 1
    assert services.audit.verify().ok


# -- once a day ---------------------------------------------------------------------------------------


def test_the_run_slot_starts_at_the_run_hour():
    at = datetime(2026, 3, 2, 1, 59, tzinfo=timezone.utc)
    assert run_slot_start(at, 2) == datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    assert run_slot_start(at.replace(hour=2, minute=0), 2) == datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
    assert run_slot_start(at, 0) == datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)


def test_the_daily_run_is_claimed_once_per_day(services, users, clock):
    clock.set(datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc))
    service = services.retention
    assert service.run_daily("a") is not None
    assert service.run_daily("b") is None
    clock.set(datetime(2026, 3, 3, 1, 59, tzinfo=timezone.utc))  # before the next day's run hour
    assert service.run_daily("b") is None
    clock.set(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc))
    assert service.run_daily("b") is not None
    run = services.session.get(HousekeepingRun, "retention", populate_existing=True)
    assert run.last_started_by == "b" and run.last_finished_at == clock.now()


def test_the_scheduler_job_runs_the_purge_once_a_day(app, services, users, clock):
    note(services.session, users["rita"], clock.now(), DAY * 400)
    services.session.commit()
    first, second = retention_once(app, "sweeper-1"), retention_once(app, "sweeper-2")
    assert first is not None and first.deleted["notification"] == 1
    assert second is None
    [event] = purge_events(services)
    assert event.actor == "scheduler"


def test_the_cli_prints_the_counts_per_table(app, services, users, clock):
    note(services.session, users["rita"], clock.now(), DAY * 400)
    services.session.commit()
    dry = app.test_cli_runner().invoke(args=["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "notification         1" in dry.output and "1 rows would be deleted (dry run)" in dry.output
    assert services.session.scalar(select(func.count()).select_from(Notification)) == 1
    done = app.test_cli_runner().invoke(args=["retention", "run"])
    assert done.exit_code == 0 and "1 rows deleted" in done.output, done.output
    assert services.session.scalar(select(func.count()).select_from(Notification)) == 0
    assert [e.actor for e in purge_events(services)] == ["cli"]


SWEEPERS = 4


def race_daily_runs(application: Any, clock: FrozenClock) -> list[Any]:
    """``run_daily`` by SWEEPERS threads released together: each one's report, None or error."""
    barrier = threading.Barrier(SWEEPERS)
    results: list[Any] = [None] * SWEEPERS

    def sweep(i: int) -> None:
        mine = application.extensions["processdesk"].services()
        try:
            barrier.wait()
            results[i] = RetentionService(mine.session, mine.audit, clock, mine.runtime.config,
                                          batch_size=7).run_daily(f"sweeper-{i}")
        except Exception as err:  # noqa: BLE001 - reported by the caller's assertion
            results[i] = err
        finally:
            mine.session.close()

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(SWEEPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_concurrent_sweepers_purge_once(tmp_path: Any) -> None:
    """Several sweepers ask at the same moment (a SQLite file, or PostgreSQL with TEST_DATABASE_URL):
    one of them purges, once, and leaves one audit event."""
    url = fresh_database_url(tmp_path, "retention_sweepers")
    clock = FrozenClock(datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc))
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url}, clock=clock)
    services = application.extensions["processdesk"].services()
    try:
        rita = services.users.create_user("rita", "correct-horse-battery", roles=["requester"])
        services.session.commit()
        # the first day inserts the job's row, the next one updates it: both claims race here
        for day in range(2):
            for _ in range(30):
                note(services.session, rita, clock.now(), DAY * 400)
            services.session.commit()
            results = race_daily_runs(application, clock)
            assert not [r for r in results if isinstance(r, Exception)], results
            ran = [r for r in results if r is not None]
            assert len(ran) == 1 and ran[0].deleted["notification"] == 30, (day, results)
            services.session.expire_all()
            assert services.session.scalar(select(func.count()).select_from(Notification)) == 0
            assert len(purge_events(services)) == day + 1
            clock.advance(DAY)
        assert services.audit.verify().ok
    finally:
        services.session.close()
        application.extensions["processdesk"].db_engine.dispose()
        drop_fresh_database(url)


def test_a_dead_message_put_back_to_pending_during_the_purge_keeps_its_attempts(tmp_path: Any) -> None:
    """An admin retries a dead message (status back to pending, uncommitted) as the purge reaches it:
    the purge waits for that change and then leaves the message, and its attempts, whole. PostgreSQL
    only: SQLite's purge holds the write lock, so the retry waits for the purge instead."""
    url = fresh_database_url(tmp_path, "retention_retry")
    if not url.startswith("postgresql"):
        drop_fresh_database(url)
        pytest.skip("row locks: PostgreSQL (TEST_DATABASE_URL)")
    clock = FrozenClock(datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc))
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url}, clock=clock)
    ext = application.extensions["processdesk"]
    admin, purger = ext.services(), ext.services()
    try:
        dead_days = DAY * DEFAULTS["RETENTION_OUTBOX_DEAD_DAYS"]
        message = outbox(admin.session, clock.now(), status="dead", created=dead_days + DAY, due=dead_days + DAY,
                         attempts=3)
        admin.session.commit()
        admin.session.execute(update(OutboxMessage).where(OutboxMessage.id == message).values(status="pending"))
        outcome: dict[str, Any] = {}

        def purge() -> None:
            try:
                outcome["report"] = purger.retention.purge()
            except Exception as err:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = err

        purging = threading.Thread(target=purge)
        purging.start()
        with ext.db_engine.connect() as conn:  # until the purge waits on the retry's row lock
            for _ in range(500):
                if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND wait_event_type = 'Lock'")).scalar():
                    break
                conn.commit()
                time.sleep(0.02)
        admin.session.commit()
        purging.join(timeout=60)
        assert "error" not in outcome, outcome
        assert outcome["report"].deleted["outbox_message"] == 0
        assert outcome["report"].deleted["delivery_attempt"] == 0
        admin.session.expire_all()
        assert admin.session.scalar(select(func.count()).select_from(DeliveryAttempt)
                                    .where(DeliveryAttempt.message_id == message)) == 3
    finally:
        admin.session.close()
        purger.session.close()
        ext.db_engine.dispose()
        drop_fresh_database(url)


# -- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "named"), [
    ({"RETENTION_OUTBOX_SENT_DAYS": -1}, "RETENTION_OUTBOX_SENT_DAYS"),
    ({"RETENTION_TOKENS_DAYS": 40000}, "RETENTION_TOKENS_DAYS"),
    ({"RETENTION_OUTBOX_DEAD_DAYS": "30"}, "RETENTION_OUTBOX_DEAD_DAYS"),
    ({"RETENTION_OUTBOX_DEAD_DAYS": True}, "RETENTION_OUTBOX_DEAD_DAYS"),
    ({"RETENTION_INBOUND_MAIL_DAYS": 3}, "RETENTION_INBOUND_MAIL_DAYS"),
    ({"RETENTION_NOTIFICATIONS_READ_DAYS": 90, "RETENTION_NOTIFICATIONS_UNREAD_DAYS": 30},
     "RETENTION_NOTIFICATIONS_UNREAD_DAYS"),
    ({"RETENTION_NOTIFICATIONS_READ_DAYS": 0, "RETENTION_NOTIFICATIONS_UNREAD_DAYS": 30},
     "RETENTION_NOTIFICATIONS_UNREAD_DAYS"),
    ({"RETENTION_RUN_HOUR": 24}, "RETENTION_RUN_HOUR"),
])
def test_bad_retention_settings_are_refused_at_start_naming_the_setting(database_url, changes, named):
    with pytest.raises(ValueError, match=named):
        create_app({**TEST_CONFIG, "DATABASE_URL": database_url, **changes})


def test_a_retention_setting_from_the_environment_that_is_no_number_is_refused(database_url, monkeypatch):
    monkeypatch.setenv("PROCESSDESK_RETENTION_TOKENS_DAYS", "thirty")
    with pytest.raises(ValueError, match="PROCESSDESK_RETENTION_TOKENS_DAYS must be a whole number, not 'thirty'"):
        create_app({**TEST_CONFIG, "DATABASE_URL": database_url})


def test_retention_settings_come_from_the_environment(database_url, monkeypatch):
    monkeypatch.setenv("PROCESSDESK_RETENTION_INBOUND_MAIL_DAYS", "0")
    monkeypatch.setenv("PROCESSDESK_RETENTION_TOKENS_DAYS", "7")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": database_url})
    assert (application.config["RETENTION_INBOUND_MAIL_DAYS"], application.config["RETENTION_TOKENS_DAYS"]) == (0, 7)
    application.extensions["processdesk"].db_engine.dispose()


def test_the_defaults_pass_their_own_checks():
    check_retention(DEFAULTS)
    assert DEFAULTS["RETENTION_OUTBOX_DEAD_DAYS"] > DEFAULTS["RETENTION_OUTBOX_SENT_DAYS"]
    assert DEFAULTS["RETENTION_NOTIFICATIONS_UNREAD_DAYS"] > DEFAULTS["RETENTION_NOTIFICATIONS_READ_DAYS"]


def test_the_purge_event_has_a_label_on_the_audit_pages():
    from app.web.audit_pages import EVENT_LABELS

    assert PURGED_EVENT in EVENT_LABELS


def breaking_off(services: Any, users: Any, clock: Any, monkeypatch: Any) -> RetentionService:
    """The retention service over an old sent message and an old notification, whose purge of
    notifications fails ("connection lost") after the outbox's batch committed."""
    s, now = services.session, clock.now()
    outbox(s, now, status="sent", created=DAY * 40, sent=DAY * 40)
    note(s, users["rita"], now, DAY * 400)
    s.commit()
    service = services.retention
    real = service._purge_table

    def purge_table(target: Any, when: datetime, report: Any) -> None:
        if target.table.name == "notification":
            raise RuntimeError("connection lost")
        real(target, when, report)

    monkeypatch.setattr(service, "_purge_table", purge_table)
    return service  # type: ignore[no-any-return]


def test_a_purge_that_breaks_off_still_records_what_it_deleted(services, users, clock, monkeypatch):
    s = services.session
    service = breaking_off(services, users, clock, monkeypatch)
    with pytest.raises(RuntimeError):
        service.purge()
    [event] = purge_events(services)
    assert event.payload["deleted"]["outbox_message"] == 1 and "connection lost" in event.payload["broken_off"]
    assert s.scalar(select(func.count()).select_from(Notification)) == 1


def test_a_purge_broken_off_by_an_error_raises_that_error_even_if_its_audit_event_fails(services, users, clock,
                                                                                        monkeypatch, caplog):
    service = breaking_off(services, users, clock, monkeypatch)

    def record(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionError("still no database")

    monkeypatch.setattr(service.audit, "record", record)
    with pytest.raises(RuntimeError, match="connection lost"):
        service.purge()
    [logged] = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert "1 rows were deleted" in logged.getMessage() and logged.exc_info is not None


def test_a_cron_style_scheduler_run_purges_once_a_day(app, services, users, clock):
    note(services.session, users["rita"], clock.now(), DAY * 400)
    services.session.commit()
    first = app.test_cli_runner().invoke(args=["scheduler", "run", "--once"])
    assert first.exit_code == 0 and "retention: deleted 1 rows" in first.output, first.output
    second = app.test_cli_runner().invoke(args=["scheduler", "run", "--once"])
    assert second.exit_code == 0 and "retention" not in second.output, second.output


def test_password_reset_links_go_an_hour_after_they_expired(services, users, clock):
    from app.models import PasswordResetToken

    s, now, rita = services.session, clock.now(), users["rita"]

    def link(expired: timedelta) -> int:
        row = PasswordResetToken(token_hash=uuid.uuid4().hex, user_id=rita.id, token_generation=0,
                                 created_at=now - expired - timedelta(minutes=30), expires_at=now - expired)
        s.add(row)
        s.flush()
        return row.id

    link(timedelta(hours=1) + PAST)
    kept = {link(timedelta(hours=1) - timedelta(minutes=1)), link(-timedelta(minutes=10))}
    s.commit()
    report = services.retention.purge()
    assert ids(s, PasswordResetToken) == kept and report.deleted["password_reset_token"] == 1
