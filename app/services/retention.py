"""Data retention: old operational rows are deleted once a day, in short bounded batches.

What goes, and after how long (the ``RETENTION_*_DAYS`` settings of app/config.py; 0 keeps the rows
forever; README "Retention"):

* ``outbox_message`` and its ``delivery_attempt`` rows: messages **sent** ``RETENTION_OUTBOX_SENT_DAYS``
  after sending; messages given up on (**dead**) or **cancelled** ``RETENTION_OUTBOX_DEAD_DAYS`` after
  their last attempt (``next_attempt_at``, the time it was last due). Pending messages never go.
  A reply to a mail whose outbox row is gone still finds its record by the number in its subject
  (app/services/mail.py), which every mail about a record carries; only its In-Reply-To no longer
  helps.
* ``notification`` (in-app): read ones ``RETENTION_NOTIFICATIONS_READ_DAYS`` after they were read;
  unread ones ``RETENTION_NOTIFICATIONS_UNREAD_DAYS`` after they were written. Unread notices are
  kept longer on purpose (someone away for months still finds what waited for them); the
  settings refuse an unread period shorter than the read one.
* ``inbound_mail``: ``RETENTION_INBOUND_MAIL_DAYS`` after the message was received (or last
  retried). The table is also the gateway's memory of Message-IDs: a message delivered again after
  its row is gone is taken as a new message (a new incident or comment). The setting is at least a
  week, longer than mail servers retry a delivery.
* ``api_token`` and ``web_session``: ``RETENTION_TOKENS_DAYS`` after they ended (expired, past the
  token lifetime or the session's timeouts, revoked, signed out). Live ones never go. What
  happened to each is in the audit trail (``token_issued``, ``signed_in``...), which keeps it.
* ``submission_token`` and ``login_failure``: past their own fixed windows (a day,
  ``submissions.KEEP``; ``WEB_LOGIN_WINDOW_SECONDS``). The app prunes both as new rows come; the
  purge only takes what that pruning leaves behind when no new rows come.
* ``password_reset_token``: an hour (``password_reset.RATE_WINDOW``: the rows of the last hour count
  each user's reset mails) after the link expired. Used and replaced links are past their expiry
  soon enough. The app prunes a user's old rows when they ask again; the audit trail keeps what
  happened (``password_reset_requested``, ``password_reset_done``).

Never touched: the audit chain (append-only and tamper-evident: a missing event breaks it),
records, instances, tasks, users, webhooks, SLA events, comments, knowledge, definitions. None of
the purged tables is referenced by a foreign key except ``delivery_attempt`` -> ``outbox_message``,
whose attempts are deleted in the same transaction as their message. Audit events name some purged
rows by id in their payload (``token_revoked``'s ``token_id``); they say what happened on their
own, and stay.

Batches. Each table is walked in primary-key order, ``batch_size`` rows (500) per transaction: the
batch's rows that are past their period are deleted by id (the condition checked again in the
DELETE, so a row that changed meanwhile stays; a message is locked before its attempts go, so
one put back to pending meanwhile keeps them) and the transaction commits, so no lock is held
for long and sweepers, requests and the mail gateway go on meanwhile. Rows are written in
time order, so the walk stops at the first batch that reaches rows younger than the newest cutoff:
a run reads the old end of each table, not all of it, and needs no index of its own.

Once a day. Every sweeper asks (``run_daily``) now and then; a conditional UPDATE of the job's
``housekeeping_run`` row (``last_started_at`` before the current day's ``RETENTION_RUN_HOUR``)
lets exactly one of them run the purge that day. `flask retention run` purges at once, whatever
the schedule says, and ``--dry-run`` counts without deleting.

A purge that deleted anything leaves one ``retention_purged`` audit event with the counts per table
and the periods in force, so auditors see that housekeeping happened and what it took. A purge
that breaks off (a database error) records what its committed batches deleted, with
``broken_off`` saying why, before the error goes on.

Unlike most services this one commits: bounded transactions are its point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Table, and_, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute, Session

from app.clock import Clock
from app.config import RETENTION_DAYS_KEYS
from app.db import begin_write
from app.models import (
    ApiToken,
    DeliveryAttempt,
    HousekeepingRun,
    InboundMail,
    LoginFailure,
    Notification,
    OutboxMessage,
    PasswordResetToken,
    SubmissionToken,
    WebSession,
)

from .audit import AuditLog
from .password_reset import RATE_WINDOW as PASSWORD_RESET_KEEP
from .submissions import KEEP as SUBMISSION_TOKEN_KEEP

log = logging.getLogger(__name__)

#: Rows read, and at most deleted, per transaction.
BATCH_SIZE = 500
#: The job's name in ``housekeeping_run``.
JOB = "retention"
#: The audit event a purge that deleted something leaves.
PURGED_EVENT = "retention_purged"
#: Outbox statuses that are final but not ``sent``: given up on, or cancelled with their webhook.
ENDED_UNSENT = ("dead", "cancelled")


@dataclass(frozen=True)
class _Target:
    """One table the purge walks: ``clause(now)`` is its deletion condition and the newest cutoff
    (no row written after it can match), or None when its rows are kept forever."""

    table: Table
    #: The column rows are written in the order of (with the primary key): the walk stops past the cutoff.
    written: QueryableAttribute[Any]
    clause: Callable[[datetime], tuple[ColumnElement[bool], Any] | None]
    #: Tables whose rows go with a purged row: (table, its column naming this table's id).
    children: tuple[tuple[Table, QueryableAttribute[Any]], ...] = ()


@dataclass
class PurgeReport:
    """Rows deleted per table (on a dry run: the rows that would be), in the order purged."""

    deleted: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def run_slot_start(now: datetime, run_hour: int) -> datetime:
    """The start of the daily period ``now`` lies in: today at ``run_hour`` UTC, or yesterday's
    when that is still to come."""
    start = now.replace(hour=run_hour, minute=0, second=0, microsecond=0)
    return start if start <= now else start - timedelta(days=1)


class RetentionService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, config: Mapping[str, Any], *,
                 batch_size: int = BATCH_SIZE) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.config = config
        self.batch_size = batch_size

    # -- settings ---------------------------------------------------------------------------------

    def periods(self) -> dict[str, int]:
        """The retention periods in force, in days (0 = forever), by setting name."""
        return {key: int(self.config[key]) for key in RETENTION_DAYS_KEYS}

    def _before(self, key: str, now: datetime) -> datetime | None:
        days = int(self.config[key])
        return now - timedelta(days=days) if days > 0 else None

    # -- the purge --------------------------------------------------------------------------------

    def purge(self, *, dry_run: bool = False, actor_name: str = "cli") -> PurgeReport:
        """Delete every row past its period, table by table, a batch per transaction (commits).

        ``dry_run`` deletes nothing and counts what would go. A purge that deleted something
        records one ``retention_purged`` audit event (as ``actor_name``) with the counts."""
        now = self.clock.now()
        report = PurgeReport(dry_run=dry_run)
        try:
            for target in self._targets():
                report.deleted[target.table.name] = 0
                for child, _ in target.children:
                    report.deleted[child.name] = 0
                self._purge_table(target, now, report)
        except Exception as err:
            # The batches committed so far stay deleted: the trail says so before the error goes on.
            self.session.rollback()
            if not dry_run and report.total:
                try:
                    self._record(report, actor_name, error=f"{type(err).__name__}: {err}"[:500])
                except Exception:  # the database that broke the purge off may refuse this too
                    self.session.rollback()
                    log.exception("retention: %d rows were deleted, but the audit event saying so could not be "
                                  "written: %s", report.total, report.deleted)
            raise  # the error that broke the purge off, not one of writing about it
        if not dry_run and report.total:
            self._record(report, actor_name)
        return report

    def _record(self, report: PurgeReport, actor_name: str, error: str | None = None) -> None:
        payload: dict[str, Any] = {"deleted": report.deleted, "retention_days": self.periods()}
        if error is not None:
            payload["broken_off"] = error
        self.audit.record(PURGED_EVENT, None, actor_name=actor_name, payload=payload)
        self.session.commit()

    def _targets(self) -> list[_Target]:
        def outbox(now: datetime) -> tuple[ColumnElement[bool], Any] | None:
            sent, dead = self._before("RETENTION_OUTBOX_SENT_DAYS", now), self._before("RETENTION_OUTBOX_DEAD_DAYS", now)
            parts = []
            if sent is not None:
                parts.append(and_(OutboxMessage.status == "sent", OutboxMessage.sent_at < sent))
            if dead is not None:
                parts.append(and_(OutboxMessage.status.in_(ENDED_UNSENT), OutboxMessage.next_attempt_at < dead))
            return (or_(*parts), max(c for c in (sent, dead) if c is not None)) if parts else None

        def notification(now: datetime) -> tuple[ColumnElement[bool], Any] | None:
            read = self._before("RETENTION_NOTIFICATIONS_READ_DAYS", now)
            unread = self._before("RETENTION_NOTIFICATIONS_UNREAD_DAYS", now)
            parts = []
            if read is not None:
                parts.append(and_(Notification.read_at.is_not(None), Notification.read_at < read))
            if unread is not None:
                parts.append(and_(Notification.read_at.is_(None), Notification.created_at < unread))
            return (or_(*parts), max(c for c in (read, unread) if c is not None)) if parts else None

        def inbound_mail(now: datetime) -> tuple[ColumnElement[bool], Any] | None:
            cutoff = self._before("RETENTION_INBOUND_MAIL_DAYS", now)
            if cutoff is None:
                return None
            return func.coalesce(InboundMail.retried_at, InboundMail.received_at) < cutoff, cutoff

        def api_token(now: datetime) -> tuple[ColumnElement[bool], Any] | None:
            cutoff = self._before("RETENTION_TOKENS_DAYS", now)
            if cutoff is None:
                return None
            lifetime = timedelta(seconds=int(self.config["TOKEN_TTL_SECONDS"]))
            return or_(ApiToken.expires_at < cutoff, ApiToken.revoked_at < cutoff,
                       ApiToken.created_at < cutoff - lifetime), cutoff

        def web_session(now: datetime) -> tuple[ColumnElement[bool], Any] | None:
            cutoff = self._before("RETENTION_TOKENS_DAYS", now)
            if cutoff is None:
                return None
            idle = timedelta(minutes=int(self.config["WEB_IDLE_MINUTES"]))
            absolute = timedelta(hours=int(self.config["WEB_ABSOLUTE_HOURS"]))
            return or_(WebSession.ended_at < cutoff, WebSession.seen_at < cutoff - idle,
                       WebSession.created_at < cutoff - absolute), cutoff

        def submission_token(now: datetime) -> tuple[ColumnElement[bool], Any] | None:
            cutoff = now - SUBMISSION_TOKEN_KEEP
            return SubmissionToken.created_at < cutoff, cutoff

        def login_failure(now: datetime) -> tuple[ColumnElement[bool], Any] | None:
            # ``at`` is seconds since the epoch (app/web/ratelimit.py)
            cutoff = now.timestamp() - float(self.config["WEB_LOGIN_WINDOW_SECONDS"])
            return LoginFailure.at <= cutoff, cutoff

        def password_reset_token(now: datetime) -> tuple[ColumnElement[bool], Any] | None:
            cutoff = now - PASSWORD_RESET_KEEP
            return PasswordResetToken.expires_at < cutoff, cutoff

        def table(model: type[Any]) -> Table:
            return cast(Table, model.__table__)

        return [
            _Target(table(OutboxMessage), OutboxMessage.created_at, outbox,
                    children=((table(DeliveryAttempt), DeliveryAttempt.message_id),)),
            _Target(table(Notification), Notification.created_at, notification),
            _Target(table(InboundMail), InboundMail.received_at, inbound_mail),
            _Target(table(ApiToken), ApiToken.created_at, api_token),
            _Target(table(WebSession), WebSession.created_at, web_session),
            _Target(table(SubmissionToken), SubmissionToken.created_at, submission_token),
            _Target(table(LoginFailure), LoginFailure.at, login_failure),
            _Target(table(PasswordResetToken), PasswordResetToken.created_at, password_reset_token),
        ]

    def _purge_table(self, target: _Target, now: datetime, report: PurgeReport) -> None:
        spec = target.clause(now)
        if spec is None:
            return
        clause, newest_cutoff = spec
        pk = target.table.c.id
        gone = case((clause, 1), else_=0)
        cursor: int | None = None
        while True:
            if not report.dry_run:
                begin_write(self.session)
            batch = select(pk, target.written, gone).order_by(pk).limit(self.batch_size)
            if cursor is not None:
                batch = batch.where(pk > cursor)
            rows = self.session.execute(batch).all()
            ids = [row[0] for row in rows if row[2]]
            if ids and report.dry_run:
                report.deleted[target.table.name] += len(ids)
                for child, parent_id in target.children:
                    report.deleted[child.name] += int(self.session.scalar(
                        select(func.count()).select_from(child).where(parent_id.in_(ids))) or 0)
            elif ids and target.children:
                # Those still past their period, locked until the commit (PostgreSQL; SQLite's
                # write lock is held already): a message put back to pending between the deletes of
                # its attempts and of itself would stay, without the attempts.
                locked = list(self.session.scalars(select(pk).where(pk.in_(ids), clause).with_for_update()))
                for child, parent_id in target.children:
                    report.deleted[child.name] += _rowcount(self.session.execute(
                        delete(child).where(parent_id.in_(locked))))
                report.deleted[target.table.name] += _rowcount(self.session.execute(
                    delete(target.table).where(pk.in_(locked))))
            elif ids:
                # still past its period now (read again under the DELETE's lock): else it stays
                report.deleted[target.table.name] += _rowcount(self.session.execute(
                    delete(target.table).where(pk.in_(ids), clause)))
            self.session.commit()
            if len(rows) < self.batch_size or rows[-1][1] >= newest_cutoff:
                return
            cursor = rows[-1][0]

    # -- once a day -------------------------------------------------------------------------------

    def claim_daily_run(self, runner: str) -> bool:
        """Claim today's run for ``runner`` (commits); False when another sweeper has it already.

        Today: since the last ``RETENTION_RUN_HOUR`` o'clock UTC. The claim is a conditional
        UPDATE of the job's row: of sweepers asking at once, one moves ``last_started_at`` and the
        others' UPDATE matches nothing (PostgreSQL re-reads the row after the winner commits;
        SQLite lets one writer in at a time). The first run ever inserts the row; a concurrent
        insert loses on the primary key."""
        now = self.clock.now()
        slot = run_slot_start(now, int(self.config["RETENTION_RUN_HOUR"]))
        last = self.session.execute(select(HousekeepingRun.last_started_at).where(HousekeepingRun.name == JOB)).first()
        self.session.commit()
        if last is not None and last[0] is not None and last[0] >= slot:
            return False  # the usual answer, without a write
        begin_write(self.session)
        claimed = _rowcount(self.session.execute(
            update(HousekeepingRun)
            .where(HousekeepingRun.name == JOB,
                   or_(HousekeepingRun.last_started_at.is_(None), HousekeepingRun.last_started_at < slot))
            .values(last_started_at=now, last_started_by=runner[:128])
            .execution_options(synchronize_session=False))) == 1
        if not claimed and last is None:
            try:
                with self.session.begin_nested():
                    self.session.add(HousekeepingRun(name=JOB, last_started_at=now, last_started_by=runner[:128]))
                claimed = True
            except IntegrityError:
                claimed = False  # another sweeper's first run inserted it
        self.session.commit()
        return claimed

    def run_daily(self, runner: str) -> PurgeReport | None:
        """The daily purge, if ``runner`` claims today's run (else None): the scheduler's job."""
        if not self.claim_daily_run(runner):
            return None
        report = self.purge(actor_name="scheduler")
        self.session.execute(update(HousekeepingRun).where(HousekeepingRun.name == JOB)
                             .values(last_finished_at=self.clock.now())
                             .execution_options(synchronize_session=False))
        self.session.commit()
        return report


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)
