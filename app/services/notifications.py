"""Notifications: in-app messages, and email and signed webhooks through a transactional outbox.

Everything a step wants to tell people is written in the step's own transaction: in-app rows,
and outbox rows for email and webhooks. The sweeper delivers outbox rows afterwards, with
retries and back-off, logging every attempt. So a failing mail server or webhook never rolls a
process step back, and a step that rolled back sends nothing.

Attempts: a message is tried at most ``MAX_ATTEMPTS`` times, with growing delays between them
(``next_attempt_delay``), and is ``dead`` after the last failure or after a permanent one. Only real
attempts count. A webhook delivery that never reached the network because this process had no
resolver thread free (``DeliveryResult.attempted`` False: other hosts' DNS look-ups held them all,
see ``delivery.RESOLVER_THREADS``) is this machine's limit, not the receiver's fault: the message is
deferred, its attempt count unchanged, and tried again after about ``NOT_ATTEMPTED_DELAY`` seconds
(minus up to a tenth of jitter), with no entry in the delivery log (its ``last_error`` says why). The
delay keeps such a message from being retried in a hot loop; and the condition should not last: one host
holds at most one resolver thread, so all of them are busy only while as many different hosts hang, and
those hosts' own messages fail for real, count, and go dead in the end. Should it last anyway, deferring
ends: after ``MAX_DEFERRALS`` deferrals in a row the next one counts as a failed attempt. A sweep that
met a busy resolver tries no more webhooks until the next sweep.

Claims: a sweep claims a batch for ``claim_seconds`` (``CLAIM_SECONDS``); once a claim has expired any
sweeper may claim the message again. So a sweep delivers only while more than one delivery's worst case
(``delivery_margin``) is left of its claim, and gives the rest back at once (:meth:`release`) for the
next sweep; a slow batch (receivers or DNS that time out) never runs past its claim into another
sweeper's, which would send the same messages twice.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from app.clock import Clock
from app.db import TRANSACTION_SCOPED, begin_write, count_capped
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.languages import ContentLookup, ContentTemplate, Text, reader_language, render
from app.models import (
    DeliveryAttempt,
    Group,
    HumanTask,
    Notification,
    OutboxMessage,
    Role,
    Ticket,
    User,
    UserRole,
    Webhook,
)

from . import policy
from .audit import AuditLog, json_safe
from .content_texts import TRANSLATIONS
from .delivery import (
    NOT_ATTEMPTED_DELAY,
    SMTP_TIMEOUTS_PER_EMAIL,
    WEBHOOK_TIMEOUT,
    DeliveryResult,
    EmailMessage,
    SmtpSettings,
    next_attempt_delay,
    post_webhook,
    send_email,
    should_retry,
    webhook_target_problem,
)

log = logging.getLogger(__name__)

#: Line breaks and control characters, which a subject may not hold (delivery refuses them).
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")

#: The events a webhook may subscribe to (docs/PROCESSES.md, "Notifications and webhook events").
#: Each delivery's JSON names the record (``record``, its number, or null) and, for those that also
#: reach people, the ``subject`` and ``recipients``; ``record.created`` is for integrations only
#: (nobody is notified): once per new record of any kind, after its process's first step, with its
#: ``number``, ``kind``, ``title``, ``status``, ``priority``, ``requester``, ``opened_by`` and ``opened_at``.
EVENT_TYPES = ("task.assigned", "approval.needed", "sla.warning", "sla.breach", "record.created", "record.resolved",
               "record.closed", "record.cancelled", "comment.added", "attachment.added",
               "attachment.deleted", "task.reminder", "process.notify", "process.started_for", "mail.received",
               "change.frozen")
#: A process started (a record logged) on somebody's behalf: they are told (``by``: who started it).
STARTED_FOR_EVENT = "process.started_for"
#: An e-mail raised a record (app/services/mail.py): its sender is told the number, and the
#: published articles that may already answer it (``articles``: their numbers).
MAIL_RECEIVED_EVENT = "mail.received"


#: How often a delivery waiting for its turned-off webhook is looked at again, in seconds.
DISABLED_RECHECK_SECONDS = 300


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0  # not attempted (no resolver thread free): rescheduled without counting an attempt
    released: int = 0  # claimed but not tried before the claim ran short: given back, attempts unchanged


ACTIVE_HOOKS = TRANSACTION_SCOPED + "active_webhooks"

#: Deferrals in a row (deliveries not attempted, about ``NOT_ATTEMPTED_DELAY`` apart) before the next one
#: is recorded as a failed attempt: about ten minutes of this machine having no resolver thread free.
MAX_DEFERRALS = 20

#: How long a sweep's claim on its batch lasts, in seconds.
CLAIM_SECONDS = 120.0
#: Added to a delivery's worst case: recording the outcome, and clocks of sweepers that differ a little.
RECORD_SECONDS = 1.0


class Recipient(NamedTuple):
    """What a notification needs of a person: read in one query, no ORM object."""

    id: int
    username: str
    email: str | None
    email_opt_out: bool
    locale: str | None  # the language they chose (None: the site's default)


#: Anyone ``notify`` can reach: a user row at hand, or a recipient read for the purpose.
Person = User | Recipient

# Statements of every step, built once (a reused statement keeps its cache key).
_RECIPIENT_COLUMNS = (User.id, User.username, User.email, User.email_opt_out, User.locale)
_GROUP_MEMBERS = (select(*_RECIPIENT_COLUMNS).join(User.groups)
                  .where(Group.name == bindparam("group"), User.active.is_(True)).order_by(User.id))
#: The members of a group who work its queue (``policy.QUEUE_ROLES``): whom a new task of it is told to.
_QUEUE_MEMBERS = _GROUP_MEMBERS.where(User.id.in_(
    select(UserRole.user_id).where(UserRole.role.in_([r.value for r in policy.QUEUE_ROLES]))))
_ACTIVE_USER = select(*_RECIPIENT_COLUMNS).where(User.username == bindparam("username"), User.active.is_(True))
_STAND_IN = aliased(User)
#: A user named by a task, as a recipient (None but when active), with who stands in for them now
#: (their delegate, while their absence holds and the delegate is active: app/services/away.py).
_NAMED_WITH_STAND_IN = (
    select(*_RECIPIENT_COLUMNS, User.active, _STAND_IN.id, _STAND_IN.username, _STAND_IN.email,
           _STAND_IN.email_opt_out, _STAND_IN.locale)
    .outerjoin(_STAND_IN, and_(_STAND_IN.id == User.delegate_id, _STAND_IN.active.is_(True),
                               User.away_at_clause(bindparam("now"))))
    .where(User.username == bindparam("username")))
_INSERTS = {Notification: insert(Notification), OutboxMessage: insert(OutboxMessage)}
_ACTIVE_HOOKS = (select(Webhook.id, Webhook.url, Webhook.events)
                 .where(Webhook.active.is_(True), Webhook.deleted_at.is_(None)).order_by(Webhook.id))
_LIVE_HOOKS = select(Webhook).where(Webhook.deleted_at.is_(None))


class _Hook(NamedTuple):
    id: int
    url: str
    events: list[str]


class NotificationService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, config: Mapping[str, Any], *,
                 claim_seconds: float = CLAIM_SECONDS, webhook_timeout: float = WEBHOOK_TIMEOUT) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.config = config
        self.claim_seconds = claim_seconds
        self.webhook_timeout = webhook_timeout

    # -- producing ------------------------------------------------------------------------------------

    def members(self, group: str | None) -> list[Person]:
        """The active members of ``group`` (none if there is no such group), in id order."""
        if not group:
            return []
        return [Recipient(*row) for row in self.session.execute(_GROUP_MEMBERS, {"group": group})]

    def queue_members(self, group: str | None) -> list[Person]:
        """The active members of ``group`` who work its queue (``policy.QUEUE_ROLES``), in id order:
        who read the records assigned to it (``policy.queue_groups``), so whom news of them is for.
        Not a member who only requests or only audits."""
        if not group:
            return []
        return [Recipient(*row) for row in self.session.execute(_QUEUE_MEMBERS, {"group": group})]

    def task_queue(self, task: HumanTask) -> list[Person]:
        """Who may take ``task``: its assigned user, else the members of its candidate group or lane
        who work its queue (``policy.queue_groups``: not a plain requester in the group, who may not
        open the task); none for a task outside any lane (callers fall back to the starter or
        others). Never those the task excludes (separation of duties: ``excluded_users``)."""
        if task.assigned_user:
            people: list[Person] = [u for u in [self.user(task.assigned_user)] if u is not None]
        else:
            group = task.candidate_group or task.lane
            people = [Recipient(*row) for row in self.session.execute(_QUEUE_MEMBERS, {"group": group})] if group else []
        return [p for p in people if not policy.excludes(task, p.username)]

    def named_with_stand_in(self, username: str) -> tuple[Recipient | None, Recipient | None]:
        """The active user ``username`` as a recipient (None: nobody active of that name, compared
        exactly), and who stands in for them now (None: nobody), in one query."""
        row = self.session.execute(_NAMED_WITH_STAND_IN, {"username": username, "now": self.clock.now()}).first()
        if row is None:
            return None, None
        named = Recipient(*row[:5]) if row[5] else None
        return named, Recipient(*row[6:]) if row[6] is not None else None

    def user(self, username: str | None) -> Recipient | None:
        if not username:
            return None
        row = self.session.execute(_ACTIVE_USER, {"username": username}).first()
        return Recipient(*row) if row is not None else None

    def link(self, ticket: Ticket | None = None, task_id: int | None = None, article: str | None = None) -> str:
        """The address, on the site's ``PUBLIC_URL``, of a task, a record, a knowledge article (its
        number), else of the site."""
        base = str(self.config.get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/")
        if article is not None:
            return f"{base}/knowledge/{article}"
        if task_id is not None:
            return f"{base}/tasks/{task_id}"
        if ticket is not None:
            return f"{base}/tickets/{ticket.number}"
        return base

    def notify(self, recipients: Iterable[Person | None], event_type: str, subject: str | Text | ContentTemplate,
               body: str | Text | ContentTemplate, *,
               ticket: Ticket | None = None, payload: Mapping[str, Any] | None = None,
               exclude: User | None = None, mail_note: Text | None = None) -> int:
        """In-app and email notifications for each active recipient (once each), plus webhook events.
        ``mail_note``: a paragraph the e-mail alone ends with (how to answer it by reply).

        ``subject`` and ``body`` are written in each recipient's language (app/languages.py: a
        :class:`~app.languages.Text` is rendered per language, a
        :class:`~app.languages.ContentTemplate` translated by its process's translation file and
        then filled in, a plain str is the same for all):
        the one they chose, else the site's ``DEFAULT_LANGUAGE``. Webhook events carry the English
        subject, which integrations may rely on.

        The rows go out as one multi-row INSERT per table on the session's connection (no ORM
        objects: nothing reads them back in the step), in the step's transaction."""
        now = self.clock.now()
        # A leaver (a deactivated user row) hears nothing more, whichever step names them: group
        # members and named users read for the purpose (``Recipient``) are active already.
        unique = {u.id: u for u in recipients if u is not None and (exclude is None or u.id != exclude.id)
                  and (not isinstance(u, User) or u.active)}
        ticket_id = ticket.id if ticket else None
        written: dict[str, tuple[str, str]] = {}
        lookup = self._content_lookup()

        noted: dict[str, str] = {}

        def note(language: str) -> str:
            if mail_note is None:
                return ""
            if language not in noted:
                noted[language] = "\n\n" + render(mail_note, language, lookup)
            return noted[language]

        def words(language: str) -> tuple[str, str]:
            if language not in written:
                # A subject is one line: a record title sent with a line break (an API client's, say)
                # would otherwise have the mailer refuse every message about the record (no header
                # injection: just no mail).
                line = " ".join(_LINE_BREAKS.sub(" ", render(subject, language, lookup)).split())
                written[language] = (line, render(body, language, lookup))
            return written[language]

        # The mail's Message-ID is its row's event_id (``deliver``): a reply's In-Reply-To finds the
        # row, and ``record`` the record it answers (app/services/mail.py). A reply also finds it by
        # the record number in the subject, which every mail about a record names.
        about: dict[str, Any] = {"record": ticket.number} if ticket is not None else {}
        if payload and isinstance(payload.get("task_id"), int):
            about["task_id"] = payload["task_id"]  # a reply to an approval's mail decides it (mail.py)
        default = self.config.get("DEFAULT_LANGUAGE")
        inbox, mail = [], []
        for user in unique.values():
            language = reader_language(user.locale, default)
            title, text = words(language)
            inbox.append({"user_id": user.id, "subject": title[:255], "body": text, "created_at": now,
                          "ticket_id": ticket_id})
            if user.email and not user.email_opt_out:
                mail_subject = f"[{ticket.number}] {title}" if ticket is not None and ticket.number not in title else title
                mail.append(self._outbox_row(event_type, "email", user.email, mail_subject, text + note(language),
                                             {"user": user.username, **about}, now))
        self._insert(Notification, inbox)
        self._insert(OutboxMessage, mail)
        self.publish(event_type, {"subject": words("en")[0], "record": ticket.number if ticket else None,
                                  "recipients": sorted(u.username for u in unique.values()), **(payload or {})})
        return len(unique)

    def url(self, path: str) -> str:
        """The address of ``path`` (starting with a slash) where people open the desk (``PUBLIC_URL``)."""
        return str(self.config.get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/") + path

    def email_user(self, user: User, event_type: str, subject: Text, body: Text) -> None:
        """One e-mail to ``user`` alone, in their language, through the outbox; no in-app notice and
        no webhook event. For a message the user asked for themselves (a password reset link), so
        it goes out whether or not they take notifications by email; nothing without an address."""
        if not user.email:
            return
        language = reader_language(user.locale, self.config.get("DEFAULT_LANGUAGE"))
        title = " ".join(_LINE_BREAKS.sub(" ", render(subject, language)).split())
        self._insert(OutboxMessage, [self._outbox_row(event_type, "email", user.email, title, render(body, language),
                                                      {"user": user.username}, self.clock.now())])

    def _content_lookup(self) -> ContentLookup:
        """A process's own words in a language, as its deployed translation file has them (each
        file read once per notice)."""
        read: dict[tuple[str, str], Mapping[str, str]] = {}

        def lookup(scope: str, text: str, language: str) -> str:
            if (scope, language) not in read:
                read[scope, language] = TRANSLATIONS.get(self.session, scope, language)
            return read[scope, language].get(text, text)

        return lookup

    def publish(self, event_type: str, payload: Mapping[str, Any]) -> int:
        """Queue one signed webhook delivery per active subscription to ``event_type``."""
        now = self.clock.now()
        hooks: list[_Hook] | None = self.session.info.get(ACTIVE_HOOKS)
        if hooks is None:  # read once per transaction
            # without flushing the step's pending record changes first: the webhooks do not depend
            # on them, and a flush here splits the record's one UPDATE in two
            with self.session.no_autoflush:
                hooks = self.session.info[ACTIVE_HOOKS] = [_Hook(*row) for row in self.session.execute(_ACTIVE_HOOKS)]
        rows = [{**self._outbox_row(event_type, "webhook", hook.url, event_type, "", json_safe(dict(payload)), now),
                 "webhook_id": hook.id}
                for hook in hooks if "*" in hook.events or event_type in hook.events]
        self._insert(OutboxMessage, rows)
        return len(rows)

    @staticmethod
    def _outbox_row(event_type: str, channel: str, recipient: str, subject: str, body: str,
                    payload: dict[str, Any], now: Any) -> dict[str, Any]:
        return {"event_id": uuid.uuid4().hex, "event_type": event_type, "channel": channel, "recipient": recipient,
                "webhook_id": None, "subject": subject[:255], "body": body, "payload": payload, "status": "pending",
                "attempts": 0, "next_attempt_at": now, "created_at": now}

    def _insert(self, model: type[Notification] | type[OutboxMessage], rows: list[dict[str, Any]]) -> None:
        if rows:
            # The connection, not the session: no autoflush, no identity map, one statement.
            self.session.connection().execute(_INSERTS[model], rows)

    # -- reading (API) --------------------------------------------------------------------------------

    def unread_count(self, user: User) -> int:
        """How many of ``user``'s notifications are unread (one COUNT, by ``ix_notification_user_read``)."""
        return int(self.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.user_id == user.id, Notification.read_at.is_(None))) or 0)

    def list_for(self, user: User, unread_only: bool, page: int, per_page: int) -> tuple[list[Notification], int, int]:
        query = select(Notification).where(Notification.user_id == user.id)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        unread = self.unread_count(user)
        rows = list(self.session.scalars(query.order_by(Notification.id.desc()).offset((page - 1) * per_page).limit(per_page)))
        return rows, total, unread

    def mark_read(self, user: User, notification_id: int) -> Notification:
        row = self.session.get(Notification, notification_id)
        if row is None or row.user_id != user.id:
            raise NotFound(f"no notification {notification_id}")
        if row.read_at is None:
            row.read_at = self.clock.now()
        return row

    def mark_all_read(self, user: User) -> int:
        result = self.session.execute(update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
                                      .values(read_at=self.clock.now()).execution_options(synchronize_session=False))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def set_email_opt_out(self, user: User, opt_out: bool) -> User:
        user.email_opt_out = opt_out
        self.audit.record("notification_preferences_changed", user, payload={"email_opt_out": opt_out})
        return user

    # -- webhooks (admin) -----------------------------------------------------------------------------
    #
    # Every operation is for admins only; a refusal is audited. A deleted webhook is kept (deleted_at
    # set, secret wiped) for its delivery log, but is "not found" to every operation here.

    def add_webhook(self, actor: User, url: str, secret: str, events: list[str]) -> Webhook:
        """Subscribe ``url`` to ``events`` (event types, or ``["*"]``), signing with ``secret``.

        Raises:
            PermissionDenied: ``actor`` is no admin.
            ValidationFailed: naming each bad field; the URL is checked as deliveries will be
                (:meth:`_url_problem`).
        """
        self.require_admin(actor, "webhook_create")
        self._validate(url=url, secret=secret, events=events)
        events = _distinct_events(events)
        hook = Webhook(url=url, secret=secret, events=events, active=True, created_at=self.clock.now())
        self.session.add(hook)
        self.session.info.pop(ACTIVE_HOOKS, None)
        self.session.flush()
        self.audit.record("webhook_created", actor, payload={"id": hook.id, "url": url, "events": events})
        return hook

    def list_webhooks(self, actor: User, page: int, per_page: int) -> tuple[list[Webhook], int]:
        """One page of the webhooks, newest first, and their number (counted up to ``COUNT_CAP``).

        Raises:
            PermissionDenied: ``actor`` is no admin.
        """
        self.require_admin(actor, "webhook_list")
        total, _exact = count_capped(self.session, _LIVE_HOOKS)
        rows = list(self.session.scalars(_LIVE_HOOKS.order_by(Webhook.id.desc()).offset((page - 1) * per_page).limit(per_page)))
        return rows, total

    def get_webhook(self, actor: User, webhook_id: int) -> Webhook:
        """Raises: PermissionDenied (no admin); NotFound (no such webhook, or deleted)."""
        self.require_admin(actor, "webhook_read", webhook_id=webhook_id)
        return self._webhook(webhook_id)

    def update_webhook(self, actor: User, webhook_id: int, changes: Mapping[str, Any]) -> Webhook:
        """Change any of ``url``, ``events``, ``active`` and ``secret`` (keys absent from ``changes`` stay).

        The new values are checked as :meth:`add_webhook` checks them. Pending deliveries go to the new
        URL with the new secret; a deactivated webhook's pending deliveries are dropped when due. An
        audit event ``webhook_updated`` names the changed fields (never the secret's value).

        Raises:
            PermissionDenied: ``actor`` is no admin.
            NotFound: no such webhook, or deleted.
            ValidationFailed: naming each bad field.
        """
        self.require_admin(actor, "webhook_update", webhook_id=webhook_id)
        hook = self._webhook(webhook_id)
        self._validate(url=changes.get("url"), secret=changes.get("secret"), events=changes.get("events"))
        if changes.get("events") is not None:
            changes = {**changes, "events": _distinct_events(changes["events"])}
        changed = [key for key in ("url", "events", "active", "secret")
                   if key in changes and changes[key] != getattr(hook, key)]
        for key in changed:
            setattr(hook, key, list(changes[key]) if key == "events" else changes[key])
        if changed:
            self.session.info.pop(ACTIVE_HOOKS, None)
            self.audit.record("webhook_updated", actor, payload={
                "id": hook.id, "changed": changed, **{key: getattr(hook, key) for key in changed if key != "secret"}})
        return hook

    def delete_webhook(self, actor: User, webhook_id: int) -> int:
        """Delete a webhook: it is never delivered to again, and its pending messages are cancelled.

        The row stays (``deleted_at`` set, deactivated, secret wiped) so that its outbox messages and
        delivery attempts remain as an audit trail of what was sent where. A message a sweeper is sending
        at this moment may still arrive. Returns how many pending messages were cancelled.

        Raises:
            PermissionDenied: ``actor`` is no admin.
            NotFound: no such webhook, or already deleted.
        """
        self.require_admin(actor, "webhook_delete", webhook_id=webhook_id)
        hook = self._webhook(webhook_id)
        hook.deleted_at = self.clock.now()
        hook.active = False
        hook.secret = ""
        result = self.session.execute(
            update(OutboxMessage).where(OutboxMessage.webhook_id == hook.id, OutboxMessage.status == "pending")
            .values(status="cancelled", last_error="webhook deleted").execution_options(synchronize_session=False))
        cancelled = int(result.rowcount or 0)  # type: ignore[attr-defined]
        self.session.info.pop(ACTIVE_HOOKS, None)
        self.audit.record("webhook_deleted", actor, payload={"id": hook.id, "url": hook.url, "cancelled": cancelled})
        return cancelled

    def deliveries(self, actor: User, webhook_id: int) -> list[tuple[OutboxMessage, list[DeliveryAttempt]]]:
        """The newest 200 messages to a webhook with their attempts.

        Raises:
            PermissionDenied: ``actor`` is no admin.
            NotFound: no such webhook, or deleted.
        """
        self.require_admin(actor, "webhook_deliveries", webhook_id=webhook_id)
        self._webhook(webhook_id)
        messages = list(self.session.scalars(select(OutboxMessage).where(OutboxMessage.webhook_id == webhook_id)
                                             .order_by(OutboxMessage.id.desc()).limit(200)))
        attempts: dict[int, list[DeliveryAttempt]] = {}
        if messages:
            for attempt in self.session.scalars(select(DeliveryAttempt).where(
                    DeliveryAttempt.message_id.in_([m.id for m in messages])).order_by(DeliveryAttempt.id)):
                attempts.setdefault(attempt.message_id, []).append(attempt)
        return [(m, attempts.get(m.id, [])) for m in messages]

    def require_admin(self, actor: User, action: str, **extra: Any) -> None:
        if not actor.has_role(Role.ADMIN):
            self.audit.refuse(actor, action, reason="admin only", **extra)
            raise PermissionDenied("only admins manage webhooks")

    def _webhook(self, webhook_id: int) -> Webhook:
        hook = self.session.get(Webhook, webhook_id)
        if hook is None or hook.deleted_at is not None:
            raise NotFound(f"no webhook {webhook_id}")
        return hook

    def _validate(self, *, url: str | None, secret: str | None, events: list[str] | None) -> None:
        """Check the given values (None: not given); ValidationFailed names every bad field."""
        problems: dict[str, list[str]] = {}
        if url is not None:
            problem = self._url_problem(url)
            if problem:
                problems["url"] = [problem]
        if secret is not None and len(secret) < 16:
            problems["secret"] = ["must be at least 16 characters"]
        if events is not None:
            unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
            if unknown or not events:
                problems["events"] = [f"one or more of: *, {', '.join(EVENT_TYPES)}"]
        if problems:
            raise ValidationFailed("webhook is invalid", details={"fields": problems})

    def _url_problem(self, url: str) -> str | None:
        """What is wrong with ``url`` as a webhook destination, checked as deliveries check it.

        Besides the URL's form: a host outside ``WEBHOOK_ALLOWED_HOSTS``, and unless
        ``WEBHOOK_ALLOW_PRIVATE_NETWORKS``, a host that is or now resolves to a non-public address.
        (A name that does not resolve yet is accepted; every delivery checks again.)"""
        return webhook_target_problem(url, allow_hosts=self._allowed_host, allow_private=self._allow_private())

    def _allow_private(self) -> bool:
        # A boolean already: app/config.py coerces the environment's "1"/"true"/"yes"/"on".
        return bool(self.config.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS"))

    # -- delivering (sweeper) ---------------------------------------------------------------------------

    def claim_due(self, sweeper_id: str, limit: int = 50, lease_seconds: float | None = None) -> list[int]:
        """Claim up to ``limit`` due messages for ``lease_seconds`` (this service's ``claim_seconds``
        unless given); their ids."""
        lease = self.claim_seconds if lease_seconds is None else lease_seconds
        begin_write(self.session)
        now = self.clock.now()
        due = and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now,
                   or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
        query = select(OutboxMessage.id).where(due).order_by(OutboxMessage.next_attempt_at).limit(limit)
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = []
        for message_id in list(self.session.scalars(query)):
            result = self.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id, due)
                                          .values(claimed_until=now + timedelta(seconds=lease), claimed_by=sweeper_id)
                                          .execution_options(synchronize_session=False))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(message_id)
        self.session.commit()
        return claimed

    def deliver(self, message_id: int, sweeper_id: str) -> str:
        """Deliver one claimed message (outside any transaction), then record the outcome.

        Returns the message's new status (``sent``, ``dead``, ``cancelled``), ``retry`` after a failed
        attempt with attempts left, ``deferred`` when the delivery was not attempted (see the module
        docstring), or ``skipped`` when the message is no longer ours to deliver.

        The outcome is recorded only if the message is still claimed by ``sweeper_id``, checked on the row
        locked for the write (``FOR UPDATE`` on PostgreSQL, SQLite's write lock), so no other sweeper can
        claim it between the check and the commit. Whether the claim has *expired* by then does not matter:
        an expired claim nobody has taken is still ours, and the attempt did happen, so it is recorded (not
        recording it would leave the message pending and the next sweep would send it again). A message
        another sweeper claimed meanwhile is ``skipped`` and left alone: that sweeper sends it again and
        records its own outcome, so the message is recorded once (our duplicate send is logged as a
        warning; :meth:`sweep` keeps its deliveries within the claim so that this does not happen)."""
        message = self.session.get(OutboxMessage, message_id, populate_existing=True)
        if message is None or message.claimed_by != sweeper_id or message.status != "pending":
            self.session.rollback()
            return "skipped"
        hook = self.session.get(Webhook, message.webhook_id) if message.channel != "email" and message.webhook_id else None
        # Plain values, read before the rollback: it expires the ORM objects, and reading an expired
        # attribute would begin a transaction again and hold it open while we talk to the network.
        channel, recipient, subject, body = message.channel, message.recipient, message.subject, message.body
        event_id, event_type, payload = message.event_id, message.event_type, message.payload
        target = (hook.url, hook.secret, hook.active, hook.deleted_at is not None) if hook is not None else None
        self.session.rollback()  # no transaction held open while we talk to the network
        result: DeliveryResult | None = None
        unsent = ("dead", "webhook removed")  # (status, reason) when result is None
        paused = False
        if channel == "email":
            result = send_email(SmtpSettings.from_config(self.config), EmailMessage(
                to=[recipient], subject=subject, text=body, message_id=f"{event_id}@processdesk"))
        elif target is not None:
            url, secret, active, deleted = target
            if deleted:
                unsent = ("cancelled", "webhook deleted")  # deleted since the message was claimed
            elif not active:
                paused = True  # turned off, not deleted: its deliveries wait for it (QA: they died)
            else:
                # The address check runs here again, on the addresses the request then goes to: DNS may
                # answer differently than when the URL was saved.
                result = post_webhook(url, secret, event_id, event_type, payload,
                                      now=int(self.clock.now().timestamp()), timeout=self.webhook_timeout,
                                      allow_hosts=self._allowed_host, allow_private=self._allow_private())
        begin_write(self.session)
        message = self.session.get(OutboxMessage, message_id, populate_existing=True, with_for_update=True)
        if message is None or message.claimed_by != sweeper_id:
            owner = message.claimed_by if message is not None else None
            self.session.rollback()
            log.warning("outbox message %s: claim lost to %s during delivery, outcome not recorded: %s", message_id,
                        owner, result.detail if result is not None else unsent[1])
            return "skipped"
        now = self.clock.now()
        message.claimed_until = None
        message.claimed_by = None
        if paused:
            # Nothing was sent: no attempt counted. Looked at again now and then; sent once the hook
            # is turned on again (only deleting a webhook cancels what it has pending).
            message.last_error = "webhook disabled: waiting for it to be turned on again"
            message.next_attempt_at = now + timedelta(seconds=DISABLED_RECHECK_SECONDS)
            self.session.commit()
            return "deferred"
        if result is not None and not result.attempted:
            if message.deferrals < MAX_DEFERRALS:
                # Not the receiver's fault (see the module docstring): no attempt counted, none logged, back soon.
                message.deferrals += 1
                message.last_error = result.detail[:2000]
                message.next_attempt_at = now + timedelta(seconds=next_attempt_delay(1, base=NOT_ATTEMPTED_DELAY))
                self.session.commit()
                log.warning("outbox message %s not attempted, deferred: %s", message_id, result.detail)
                return "deferred"
            # Deferred too often in a row: recorded as a failed attempt, so that the message ends in the end.
            result = DeliveryResult(ok=False, permanent=False, duration_ms=result.duration_ms,
                                    detail=f"not attempted {message.deferrals + 1} times in a row: {result.detail}")
        message.deferrals = 0
        message.attempts += 1
        if result is None:
            message.status, message.last_error = unsent
        else:
            self.session.add(DeliveryAttempt(message_id=message.id, attempt=message.attempts, at=now, ok=result.ok,
                                             status=result.status, detail=result.detail[:2000], duration_ms=result.duration_ms))
            if result.ok:
                message.status, message.sent_at, message.last_error = "sent", now, None
            elif not should_retry(result, message.attempts):
                message.status, message.last_error = "dead", result.detail[:2000]
            else:
                message.last_error = result.detail[:2000]
                message.next_attempt_at = now + timedelta(seconds=next_attempt_delay(message.attempts))
        self.session.commit()
        return message.status if message.status != "pending" else "retry"

    def _allowed_host(self, host: str) -> bool:
        allowed = str(self.config.get("WEBHOOK_ALLOWED_HOSTS") or "*")
        return allowed == "*" or host in {h.strip().lower() for h in allowed.split(",")}

    def delivery_margin(self) -> float:
        """Seconds a sweep keeps in hand before its claim expires: the worst case of one delivery (the
        slower of a webhook and an email, each cut at its limit) plus ``RECORD_SECONDS``."""
        try:
            smtp_timeout = SmtpSettings.from_config(self.config).timeout
        except ValueError:  # a broken mail configuration fails each email on its own, not the sweep
            smtp_timeout = SmtpSettings.timeout
        return max(self.webhook_timeout, smtp_timeout * SMTP_TIMEOUTS_PER_EMAIL) + RECORD_SECONDS

    def release(self, message_ids: list[int], sweeper_id: str) -> int:
        """Give back messages claimed by ``sweeper_id`` but not tried: their claim is cleared, attempts and
        ``next_attempt_at`` stay, so the next sweep takes them. Returns how many were given back."""
        if not message_ids:
            return 0
        begin_write(self.session)
        result = self.session.execute(update(OutboxMessage)
                                      .where(OutboxMessage.id.in_(message_ids), OutboxMessage.claimed_by == sweeper_id)
                                      .values(claimed_until=None, claimed_by=None)
                                      .execution_options(synchronize_session=False))
        self.session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def sweep(self, sweeper_id: str, limit: int = 50) -> DeliveryReport:
        """Claim up to ``limit`` due messages and deliver them one by one, within the claim.

        Before each delivery the sweep checks that more than :meth:`delivery_margin` is left of its claim,
        by ``time.monotonic()`` (real time, which the deliveries take) and by the service's clock (which
        other sweepers compare the claim with), whichever runs out first; otherwise it stops and releases
        the messages not tried (:meth:`release`, counted in ``released``). The claim lasts
        ``claim_seconds``, but at least twice the margin, so that a sweep always has room for deliveries.

        After a delivery is deferred for want of a resolver thread, the sweep tries no further webhook
        messages (each would wait up to its time limit for a thread, in vain): it gives them back with the
        rest, and delivers its e-mails."""
        report = DeliveryReport()
        margin = self.delivery_margin()
        claim_seconds = max(self.claim_seconds, 2 * margin)
        # Both read before claim_due reads the clock for claimed_until: the stops are on the safe side.
        stop_monotonic = time.monotonic() + claim_seconds - margin
        stop_clock = self.clock.now() + timedelta(seconds=claim_seconds - margin)
        claimed = self.claim_due(sweeper_id, limit, claim_seconds)
        report.claimed = len(claimed)
        resolver_busy, webhooks = False, set[int]()
        for index, message_id in enumerate(claimed):
            if time.monotonic() >= stop_monotonic or self.clock.now() >= stop_clock:
                report.released += self.release([m for m in claimed[index:] if m not in webhooks], sweeper_id)
                log.info("outbox sweep %s: claim running out, released %s messages", sweeper_id, report.released)
                break
            if resolver_busy and message_id in webhooks:
                continue  # given back below: no second wait for a resolver thread in this sweep
            outcome = self.deliver(message_id, sweeper_id)
            if outcome == "deferred" and not resolver_busy:
                resolver_busy = True
                webhooks = set(self.session.scalars(select(OutboxMessage.id).where(
                    OutboxMessage.id.in_(claimed[index + 1:]), OutboxMessage.channel != "email")))
                self.session.rollback()
            if outcome == "sent":
                report.sent += 1
            elif outcome == "dead":
                report.dead += 1
            elif outcome == "retry":
                report.retried += 1
            elif outcome == "deferred":
                report.deferred += 1
        if webhooks:
            report.released += self.release(sorted(webhooks), sweeper_id)
        return report


def _distinct_events(events: list[str]) -> list[str]:
    """The events a webhook subscribes to, each once in the order given; just ``*`` when it is
    among them (it means every event)."""
    return ["*"] if "*" in events else list(dict.fromkeys(events))

