"""Service status: what the desk tells everyone about an outage, a degraded service or planned
maintenance, before they report it again (a status page, as ServiceNow's system status or
Atlassian Statuspage; JSM shows it on its portal).

- **Notices.** The desk's staff (agents, process owners, admins: :func:`may_post`) post a notice:
  a title, a level (:data:`LEVELS`: an outage, a degraded service, planned maintenance, news), what
  they say (the first entry of its timeline), optionally the service it is about (a CMDB item's
  name, or the words the desk uses) and the record behind it (an incident or a change the poster
  may read), when it starts (now, or ahead: maintenance is announced before) and when the desk
  expects it to end. Staff post updates (a new level, a new estimate) and resolve it; each
  update names the version it was written over, and one written over an older version is
  refused (two agents updating at once do not overwrite each other's estimate unseen).
- **Readers.** Everyone signed in reads every notice: the status page lists the current ones, the
  planned ones and those resolved in the last :data:`RECENT_DAYS` days; the home page, the catalog
  and the incident form show what is current, so that a known outage is not reported once per
  caller. The record behind a notice is named only to whom may read it.
- **"This affects me".** A reader says so (and takes it back) while the notice is not resolved: they
  are told (in-app and by mail, in their language; event ``status.updated`` / ``status.resolved``)
  of each update and of its resolution, and the desk sees how many said so.
- Audited: ``status_notice_posted``, ``status_notice_updated``, ``status_notice_resolved`` (what
  was said, by whom, the level before and after).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from app.clock import Clock
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.languages import Text
from app.models import RecordWatcher, Role, StatusAffected, StatusNotice, StatusUpdate, Ticket, User

from .audit import AuditLog
from .forms import checked_text, rfc3339
from .records import RecordService, in_instant_range

#: How bad, worst first (the order lists and banners sort by).
LEVELS = ("outage", "degraded", "maintenance", "info")
LEVEL_WORDS = {"outage": Text("Outage"), "degraded": Text("Degraded service"),
               "maintenance": Text("Planned maintenance"), "info": Text("Information")}
#: Who posts, updates and resolves notices.
POSTER_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN)
#: How long a resolved notice stays on the status page.
RECENT_DAYS = 7
#: How far ahead a notice may be posted (maintenance announced a year before is enough).
MAX_AHEAD_DAYS = 366
#: The most notices of each part the status page lists (newest resolved first).
MAX_LISTED = 100
#: How soon a planned notice shows in the banners (the status page lists every planned one).
BANNER_AHEAD = timedelta(hours=24)
TITLE_MAX = 200
BODY_MAX = 4000
SERVICE_MAX = 255
UPDATED_EVENT = "status.updated"
RESOLVED_EVENT = "status.resolved"
#: The fixed refusals (the pages say them in their own language: app/web/status_pages.py).
REQUIRED = "is required"
UNKNOWN_LEVEL = "must be one of outage, degraded, maintenance, info"
NOT_A_RECORD = "is not a record you may read"
#: The records a notice may be about: what broke (an incident, the problem behind repeated ones) or
#: what is done to a service (a change); a catalog request is no one's outage.
RECORD_KINDS = ("incident", "change", "problem")
NOT_AN_OUTAGE_RECORD = "must be an incident, a change or a problem"
ENDS_BEFORE_START = "must be after the start"
TOO_FAR_AHEAD = "must be within a year from now"
OUT_OF_RANGE = "must be in the years 1900 to 8999"
MUST_BE_TEXT = "must be text"
RESOLVED = "the notice is resolved: post a new one"


def may_post(user: User) -> bool:
    """Whether ``user`` posts, updates and resolves notices (the desk's staff)."""
    return user.has_role(*POSTER_ROLES)


@dataclass
class StatusBoard:
    """The status page: notices current (started, not resolved), planned (starting later) and
    recently resolved; how many said each affects them, and which affect the reader."""

    current: list[StatusNotice] = field(default_factory=list)
    planned: list[StatusNotice] = field(default_factory=list)
    resolved: list[StatusNotice] = field(default_factory=list)
    affected_counts: dict[int, int] = field(default_factory=dict)
    mine: set[int] = field(default_factory=set)
    records: dict[int, str] = field(default_factory=dict)
    latest: dict[int, StatusUpdate] = field(default_factory=dict)
    #: The open notices whose record (one the reader may read) is resolved or closed: what the
    #: desk may have forgotten to resolve.
    record_done: set[int] = field(default_factory=set)

    @property
    def notices(self) -> list[StatusNotice]:
        return [*self.current, *self.planned, *self.resolved]


def _severity(notice: StatusNotice) -> int:
    return LEVELS.index(notice.level) if notice.level in LEVELS else len(LEVELS)


def _severity_sql() -> Any:
    """:func:`_severity` as the database orders by it."""
    return case({level: rank for rank, level in enumerate(LEVELS)}, value=StatusNotice.level, else_=len(LEVELS))


class StatusService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records

    # -- reading ------------------------------------------------------------------------------------

    def board(self, viewer: User, *, recent_days: int = RECENT_DAYS) -> StatusBoard:
        """The status page for ``viewer``: current notices worst first (then newest), planned ones
        soonest first, those resolved in the last ``recent_days`` newest first."""
        now = self.clock.now()
        # two reads, each ordered and cut by the database: notices left open for long (a record done,
        # its notice forgotten) must not push the newest outage or the next maintenance off the page
        current = list(self.session.scalars(
            select(StatusNotice).where(StatusNotice.resolved_at.is_(None), StatusNotice.starts_at <= now)
            .order_by(_severity_sql(), StatusNotice.starts_at.desc(), StatusNotice.id.desc()).limit(MAX_LISTED)))
        planned = list(self.session.scalars(
            select(StatusNotice).where(StatusNotice.resolved_at.is_(None), StatusNotice.starts_at > now)
            .order_by(StatusNotice.starts_at, StatusNotice.id).limit(MAX_LISTED)))
        resolved = list(self.session.scalars(
            select(StatusNotice).where(StatusNotice.resolved_at >= now - timedelta(days=recent_days))
            .order_by(StatusNotice.resolved_at.desc(), StatusNotice.id.desc()).limit(MAX_LISTED)))
        board = StatusBoard(current, planned, resolved)
        self._annotate(viewer, board, board.notices)
        return board

    def banner(self, viewer: User) -> list[StatusNotice]:
        """What the home page, the catalog and the incident form show: the current notices worst
        first, and those planned to start within :data:`BANNER_AHEAD`."""
        now = self.clock.now()
        rows = self.session.scalars(
            select(StatusNotice).where(StatusNotice.resolved_at.is_(None), StatusNotice.starts_at <= now + BANNER_AHEAD)
            .order_by(StatusNotice.starts_at.desc(), StatusNotice.id.desc()).limit(MAX_LISTED))
        return sorted(rows, key=lambda n: (n.starts_at > now, _severity(n)))

    def one(self, viewer: User, notice_id: int) -> tuple[StatusNotice, StatusBoard, list[StatusUpdate]]:
        """A notice with what the reader sees of it (as on the board) and its timeline."""
        notice = self.get(notice_id)
        board = StatusBoard()
        self._annotate(viewer, board, [notice])
        return notice, board, self.timeline(notice)

    def of_record(self, viewer: User, number: str) -> StatusBoard:
        """The notices posted about record ``number`` (NotFound unless ``viewer`` may read it), as the
        board sorts them: the current ones, the planned ones, then every resolved one newest first."""
        return self.of_ticket(viewer, self.records.get(viewer, number))

    def of_ticket(self, viewer: User, ticket: Ticket) -> StatusBoard:
        """:meth:`of_record` for a record the caller has read already."""
        now = self.clock.now()
        rows = list(self.session.scalars(
            select(StatusNotice).where(StatusNotice.record_id == ticket.id)
            .order_by(StatusNotice.starts_at.desc(), StatusNotice.id.desc()).limit(MAX_LISTED)))
        board = StatusBoard(
            current=sorted((n for n in rows if n.resolved_at is None and n.starts_at <= now),
                           key=lambda n: (_severity(n), -n.starts_at.timestamp(), -n.id)),
            planned=sorted((n for n in rows if n.resolved_at is None and n.starts_at > now),
                           key=lambda n: (n.starts_at, n.id)),
            resolved=sorted((n for n in rows if n.resolved_at is not None),
                            key=lambda n: (n.resolved_at, n.id), reverse=True))
        self._annotate(viewer, board, board.notices)
        return board

    def state(self, notice: StatusNotice) -> str:
        """``resolved``, ``planned`` (starts later) or ``current``."""
        if notice.resolved_at is not None:
            return "resolved"
        return "planned" if notice.starts_at > self.clock.now() else "current"

    def get(self, notice_id: int) -> StatusNotice:
        """One notice (everyone signed in reads every one); NotFound for an unknown id."""
        row = self.session.get(StatusNotice, notice_id)
        if row is None:
            raise NotFound(f"no status notice {notice_id}", details={"id": notice_id})
        return row

    def timeline(self, notice: StatusNotice) -> list[StatusUpdate]:
        """The notice's entries, oldest first: its posting, its updates, its resolution."""
        return list(self.session.scalars(select(StatusUpdate).where(StatusUpdate.notice_id == notice.id)
                                         .order_by(StatusUpdate.created_at, StatusUpdate.id)))

    def affected_count(self, notice: StatusNotice) -> int:
        return int(self.session.scalar(select(func.count()).select_from(StatusAffected)
                                       .where(StatusAffected.notice_id == notice.id)) or 0)

    def affects(self, viewer: User, notice: StatusNotice) -> bool:
        """Whether ``viewer`` said the notice affects them."""
        return self.session.get(StatusAffected, (notice.id, viewer.id)) is not None

    def record_number(self, viewer: User, notice: StatusNotice) -> str | None:
        """The number of the record behind the notice, if ``viewer`` may read it."""
        ticket = notice.record
        if ticket is None or not self.records.may_see(viewer, ticket):
            return None
        return ticket.number

    def affecting(self, viewer: User, notice_ids: Collection[int]) -> set[int]:
        """The notices among ``notice_ids`` that ``viewer`` said affect them."""
        if not notice_ids:
            return set()
        return set(self.session.scalars(select(StatusAffected.notice_id).where(
            StatusAffected.user_id == viewer.id, StatusAffected.notice_id.in_(notice_ids))))

    def _annotate(self, viewer: User, board: StatusBoard, notices: Collection[StatusNotice]) -> None:
        ids = {n.id for n in notices}
        if not ids:
            return
        board.affected_counts = {notice_id: int(count) for notice_id, count in self.session.execute(
            select(StatusAffected.notice_id, func.count()).where(StatusAffected.notice_id.in_(ids))
            .group_by(StatusAffected.notice_id))}
        board.mine = self.affecting(viewer, ids)
        newest = select(func.max(StatusUpdate.id)).where(StatusUpdate.notice_id.in_(ids)).group_by(StatusUpdate.notice_id)
        board.latest = {u.notice_id: u for u in self.session.scalars(select(StatusUpdate).where(StatusUpdate.id.in_(newest)))}
        tickets = {n.record.number: n.id for n in notices if n.record is not None}
        seen = self.records.visible_by_number(viewer, tickets.keys()) if tickets else {}
        board.records = {n.id: n.record.number for n in notices if n.record is not None and n.record.number in seen}
        board.record_done = {n.id for n in notices if n.id in board.records and n.resolved_at is None
                             and n.record is not None and (n.record.resolved_at or n.record.closed_at) is not None}

    # -- the desk writes ----------------------------------------------------------------------------

    def require_poster(self, user: User, action: str = "status_notice_post") -> None:
        """PermissionDenied (audited) unless ``user`` is of the desk's staff (:func:`may_post`)."""
        if not may_post(user):
            self.audit.refuse(user, action, reason="needs agent, process_owner or admin")
            raise PermissionDenied("posting service status needs the agent, process_owner or admin role")

    def post(self, user: User, values: Mapping[str, Any]) -> StatusNotice:
        """A new notice from ``values``: ``title`` (one line), ``level`` (:data:`LEVELS`), ``body``
        (what the desk says first), optional ``service``, ``record`` (a number the poster may
        read), ``starts_at`` (an aware date-time, at most a year ahead; now when absent) and
        ``expected_end_at`` (after the start). ValidationFailed naming each field that is wrong;
        PermissionDenied for who is not of the desk's staff. The record's requester and watchers
        are affected from the start (:meth:`_following`). Audited (``status_notice_posted``)."""
        self.require_poster(user)
        now = self.clock.now()
        errors: dict[str, list[Any]] = {}
        title = checked_text(values, "title", TITLE_MAX, errors, one_line=True, required=True)
        body = checked_text(values, "body", BODY_MAX, errors, one_line=False, required=True)
        service = checked_text(values, "service", SERVICE_MAX, errors, one_line=True, required=False) or None
        level = self._level(values.get("level"), errors)
        ticket = self._record(user, values.get("record"), errors)
        starts_at = self._moment(values, "starts_at", errors) or now
        expected = self._moment(values, "expected_end_at", errors)
        if "starts_at" not in errors and starts_at > now + timedelta(days=MAX_AHEAD_DAYS):
            errors["starts_at"] = [TOO_FAR_AHEAD]
        if expected is not None and "starts_at" not in errors and expected <= starts_at:
            errors["expected_end_at"] = [ENDS_BEFORE_START]
        if errors:
            raise ValidationFailed("the notice is not valid", details={"fields": errors})
        notice = StatusNotice(title=title, level=level, service=service, record_id=ticket.id if ticket else None,
                              starts_at=starts_at, expected_end_at=expected, version=1, created_by_id=user.id,
                              created_at=now, updated_at=now)
        self.session.add(notice)
        self.session.flush()
        self.session.add(StatusUpdate(notice_id=notice.id, kind="posted", level=level, body=body, author_id=user.id,
                                      created_at=now))
        following = self._following(ticket) if ticket is not None else []
        for user_id in following:
            self.session.add(StatusAffected(notice_id=notice.id, user_id=user_id, created_at=now))
        self.session.flush()
        self.audit.record("status_notice_posted", user, payload={
            "id": notice.id, "title": title, "level": level, "service": service,
            "record": ticket.number if ticket else None, "starts_at": rfc3339(starts_at),
            "expected_end_at": rfc3339(expected) if expected else None, "body": body,
            "affected_from_record": len(following)})
        return notice

    def _following(self, ticket: Ticket) -> list[int]:
        """Who a notice about ``ticket`` affects from the start: its requester and the people
        watching it (not groups: the desk's own queues), those still active. They hear of its
        updates and its end as if they had said it affects them, and may take that back."""
        watching = select(RecordWatcher.user_id).where(RecordWatcher.ticket_id == ticket.id)
        return list(self.session.scalars(
            select(User.id).where(User.active.is_(True), (User.id == ticket.requester_id) | User.id.in_(watching))
            .order_by(User.id)))

    def update(self, user: User, notice_id: int, version: Any, values: Mapping[str, Any]) -> StatusNotice:
        """Post an update to a notice not resolved: ``body`` (what the desk says now), optionally a
        new ``level``, ``title`` and ``expected_end_at`` (None: no estimate). ``version`` is the one
        the update was written over: Conflict (``details.current_version``) when the notice has
        moved on, or when it is resolved. Those it affects are told. Audited
        (``status_notice_updated``)."""
        return self._advance(user, notice_id, version, values, resolving=False)

    def resolve(self, user: User, notice_id: int, version: Any, values: Mapping[str, Any]) -> StatusNotice:
        """Resolve a notice with a last word (``body``): it leaves the banners and stays on the
        status page for :data:`RECENT_DAYS` days. Conflict as for :meth:`update`. Those it
        affects are told. Audited (``status_notice_resolved``)."""
        return self._advance(user, notice_id, version, values, resolving=True)

    def _advance(self, user: User, notice_id: int, version: Any, values: Mapping[str, Any], *,
                 resolving: bool) -> StatusNotice:
        action = "status_notice_resolve" if resolving else "status_notice_update"
        self.require_poster(user, action)
        notice = self._locked(notice_id)
        if notice.resolved_at is not None:
            raise Conflict(RESOLVED, details={"current_version": notice.version})
        errors: dict[str, list[Any]] = {}
        if not isinstance(version, int) or isinstance(version, bool):
            errors["version"] = [REQUIRED if version is None else "must be a whole number"]
        body = checked_text(values, "body", BODY_MAX, errors, one_line=False, required=True)
        level, title, expected = notice.level, notice.title, notice.expected_end_at
        if not resolving:
            if values.get("level") is not None:
                level = self._level(values.get("level"), errors)
            if values.get("title") is not None:
                title = checked_text(values, "title", TITLE_MAX, errors, one_line=True, required=True)
            if "expected_end_at" in values:
                expected = self._moment(values, "expected_end_at", errors)
                if expected is not None and "expected_end_at" not in errors and expected <= notice.starts_at:
                    errors["expected_end_at"] = [ENDS_BEFORE_START]
        if errors:
            raise ValidationFailed("the update is not valid", details={"fields": errors})
        if version != notice.version:
            raise Conflict(f"the notice was updated by someone else: it is at version {notice.version} now, "
                           f"not {version}", details={"current_version": notice.version})
        now = self.clock.now()
        was = {"level": notice.level, "title": notice.title,
               "expected_end_at": rfc3339(notice.expected_end_at) if notice.expected_end_at else None}
        notice.level, notice.title, notice.expected_end_at = level, title, expected
        notice.version += 1
        notice.updated_at = now
        if resolving:
            notice.resolved_at = now
        self.session.add(StatusUpdate(notice_id=notice.id, kind="resolved" if resolving else "update", level=level,
                                      body=body, author_id=user.id, created_at=now))
        self.session.flush()
        told = self._tell_affected(notice, user, body, resolving=resolving)
        self.audit.record("status_notice_resolved" if resolving else "status_notice_updated", user, payload={
            "id": notice.id, "title": title, "level": level, "version": notice.version, "body": body,
            "expected_end_at": rfc3339(expected) if expected else None, "was": was, "told": told})
        return notice

    def _tell_affected(self, notice: StatusNotice, author: User, body: str, *, resolving: bool) -> int:
        # "a notice you follow": who said it affects them, and a record's requester and watchers
        people = list(self.session.scalars(
            select(User).join(StatusAffected, StatusAffected.user_id == User.id)
            .where(StatusAffected.notice_id == notice.id, User.active.is_(True)).order_by(User.id)))
        if not people:
            return 0
        said = {"title": notice.title, "level": LEVEL_WORDS.get(notice.level, notice.level), "body": body,
                "link": self.records.notifications.url(f"/status/{notice.id}")}
        if resolving:
            subject = Text("Resolved: %(title)s", **said)
            text = Text("The desk resolved “%(title)s”, a notice you follow:\n\n%(body)s\n\n%(link)s", **said)
        else:
            subject = Text("Service status: %(title)s (%(level)s)", **said)
            text = Text("An update on “%(title)s” (%(level)s), a notice you follow:\n\n%(body)s\n\n%(link)s",
                        **said)
        return self.records.notifications.notify(
            people, RESOLVED_EVENT if resolving else UPDATED_EVENT, subject, text, exclude=author,
            payload={"notice_id": notice.id, "level": notice.level})

    # -- readers say it affects them ----------------------------------------------------------------

    def set_affected(self, user: User, notice_id: int, affected: bool) -> StatusNotice:
        """``user`` says the notice affects them (told of its updates), or takes it back. Either is
        idempotent; Conflict for a resolved notice (nothing more will be said of it)."""
        notice = self._locked(notice_id)
        if notice.resolved_at is not None:
            raise Conflict(RESOLVED, details={"current_version": notice.version})
        have = self.session.get(StatusAffected, (notice.id, user.id))
        if affected and have is None:
            self.session.add(StatusAffected(notice_id=notice.id, user_id=user.id, created_at=self.clock.now()))
        elif not affected and have is not None:
            self.session.execute(delete(StatusAffected).where(StatusAffected.notice_id == notice.id,
                                                              StatusAffected.user_id == user.id))
        self.session.flush()
        return notice

    # -- parts --------------------------------------------------------------------------------------

    def _locked(self, notice_id: int) -> StatusNotice:
        """The notice, its row locked on PostgreSQL (an update and a resolution take turns)."""
        row = self.session.scalars(select(StatusNotice).where(StatusNotice.id == notice_id)
                                   .with_for_update(of=StatusNotice)
                                   .execution_options(populate_existing=True)).unique().first()
        if row is None:
            raise NotFound(f"no status notice {notice_id}", details={"id": notice_id})
        return row

    @staticmethod
    def _level(raw: Any, errors: dict[str, list[Any]]) -> str:
        if raw is None or raw == "":
            errors["level"] = [REQUIRED]
            return ""
        if raw not in LEVELS:
            errors["level"] = [UNKNOWN_LEVEL]
            return ""
        return str(raw)

    def _record(self, user: User, raw: Any, errors: dict[str, list[Any]]) -> Ticket | None:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if not isinstance(raw, str) or len(raw) > 64:
            errors["record"] = [NOT_A_RECORD]
            return None
        found = self.records.visible_by_number(user, [raw.strip().upper()])
        ticket = found.get(raw.strip().upper())
        if ticket is None:
            errors["record"] = [NOT_A_RECORD]
        elif ticket.kind not in RECORD_KINDS:
            errors["record"] = [NOT_AN_OUTAGE_RECORD]
            return None
        return ticket

    @staticmethod
    def _moment(values: Mapping[str, Any], name: str, errors: dict[str, list[Any]]) -> datetime | None:
        raw = values.get(name)
        if raw is None:
            return None
        if not isinstance(raw, datetime) or raw.tzinfo is None:
            errors[name] = ["must be a date-time with a time zone"]
            return None
        moment = in_instant_range(raw)
        if moment is None:
            errors[name] = [OUT_OF_RANGE]
        return moment.astimezone(timezone.utc) if moment is not None else None

