"""The change schedule: when planned work runs, the freeze windows in which it may not, and where
the two meet (a change schedule with blackout windows and conflict detection, as service desks
know it).

A record's planned window is what its process holds in the variables its record mapping's
``schedule`` names (the change process: ``planned_start`` and ``planned_end``), copied onto the
record's ``planned_start_at`` / ``planned_end_at`` by every step that sets them
(``RecordService._plan``).

* **Freezes** (:class:`~app.models.ChangeFreeze`): a period in which no change may be planned,
  everywhere or on one configuration item. Process owners and admins add and remove them
  (audited). A person's step that moves a record's window into one is refused: ValidationFailed
  naming the start variable and the freeze (:meth:`ScheduleService.check_window`), so nothing of
  the step is stored. Records the mapping's ``schedule.exempt`` names (emergency changes) may be
  planned in a freeze; they show it as a clash. A freeze added later does not stop work already
  planned in it: the record and the schedule show the clash, and moving the window is refused
  only if the new window is frozen too.
* **Clashes**: what a planned, open record's window overlaps: freezes that hold for it, and the
  windows of other open records on the same configuration item (two changes to one server in
  the same night); and, for a configuration item with maintenance windows, a window that does not
  lie within one of them (app/services/maintenance.py), with the next one long enough: to the
  desk's staff (``sees_windows``). Shown, never refused: the change manager decides.
* **The schedule** (:meth:`ScheduleService.window`): the planned records a user may see whose
  windows reach into a range of at most :data:`MAX_RANGE_DAYS`, with the freezes in it and each
  record's clashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.clock import Clock
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.languages import Text
from app.models import ChangeFreeze, ProcessDefinition, ProcessInstance, Role, ScheduleFeed, Ticket, User

from .audit import AuditLog
from .cmdb import may_read as reads_cmdb
from .forms import FormMessage, rfc3339, text_problem, typed_time
from .icalendar import Event
from .maintenance import LOOKAHEAD_DAYS, Rule, ahead, covers, first_fit, occurrences
from .records import RecordService, in_instant_range

#: The longest range one read of the schedule covers (about a quarter).
MAX_RANGE_DAYS = 92
#: The range a read without an end covers.
DEFAULT_RANGE_DAYS = 28
#: The most planned records one read of the schedule lists (earliest first); ``truncated`` says
#: when there were more.
MAX_ENTRIES = 500
#: The days a calendar subscription shows before and after the day it is read (together within
#: MAX_RANGE_DAYS).
FEED_DAYS_BEFORE = 7
FEED_DAYS_AFTER = 84
#: The longest freeze (a year); and the limits of its texts (the name's is its column's).
MAX_FREEZE_DAYS = 366
NAME_MAX = 128
REASON_MAX = 2000
CI_MAX = 255
#: The event of a freeze added over planned work: each record's people are told (webhooks too).
FROZEN_EVENT = "change.frozen"
#: The freeze's fixed refusals (the pages say them in their own language: app/web/forms.py).
ENDS_BEFORE_START = "must be after the start"
TOO_LONG = "must be within a year of the start"
ALREADY_OVER = "is past: a freeze that is over holds nothing"
OUT_OF_RANGE = "must be in the years 1900 to 8999"


def may_manage_freezes(user: User) -> bool:
    """Whether ``user`` adds and removes freeze windows: process owners and admins, who set the
    desk's rules (as for SLA policies)."""
    return user.has_role(Role.ADMIN, Role.PROCESS_OWNER)


def reads_schedule(user: User) -> bool:
    """Whether the pages offer ``user`` the schedule: whoever works in the desk (not a requester
    alone, who plans no change, nor a configuration manager alone; they may still read it: the
    freezes, and the records they see)."""
    return user.has_role(Role.AGENT, Role.APPROVER, Role.PROCESS_OWNER, Role.ADMIN, Role.AUDITOR)


def sees_windows(user: User) -> bool:
    """Whether ``user`` is told the maintenance windows of configuration items (the stretches on a
    CI's schedule, and the clash of a window outside them): the desk's staff, who plan, approve and
    keep changes and CIs. A requester is not: to them a CI's windows would tell that the CMDB has
    it, which the CMDB does not tell them."""
    return reads_schedule(user) or reads_cmdb(user)


def _same_ci(one: str | None, other: str | None) -> bool:
    """Whether two records' or freezes' configuration items are one (names compared without
    letter case, in Python: SQLite's lower() folds ASCII letters only)."""
    return one is not None and other is not None and one.lower() == other.lower()


def _holds_for(freeze: ChangeFreeze, held: Callable[[], set[str]]) -> bool:
    """Whether ``freeze`` holds for work on a CI: one without a CI holds for all work, one on a CI
    for work on the CIs ``held()`` names (lower case: the CI, and those that depend on it or run
    on it: ``ScheduleService._held``)."""
    return freeze.ci is None or freeze.ci.lower() in held()


@dataclass(frozen=True)
class Clash:
    """What a planned window overlaps: a freeze (``kind`` "freeze", ``freeze_id``) or another
    record's window on the same configuration item (``kind`` "record", ``number``); or, ``kind``
    "maintenance", that it lies outside the maintenance windows of its configuration item ``ci``
    (``starts_at``/``ends_at`` its own window; ``next_start``/``next_end`` the first stretch of
    them from its start, or from now, long enough for it; None when none opens within 92 days)."""

    kind: str
    name: str
    starts_at: datetime
    ends_at: datetime
    ci: str | None
    freeze_id: int | None = None
    number: str | None = None
    #: For a freeze: whether the record's process lets it be planned there (an emergency change).
    exempt: bool = False
    #: For a freeze on another CI (``ci``) that depends on or runs on the record's: True.
    through: bool = False
    next_start: datetime | None = None
    next_end: datetime | None = None


@dataclass(frozen=True)
class _Window:
    """A planned window to find clashes for: its record's (``record_id``) or one being typed."""

    starts_at: datetime
    ends_at: datetime
    ci: str | None
    record_id: int | None
    exempt: bool


@dataclass
class Schedule:
    """One read of the schedule: the range, the planned records in it (earliest start first),
    their clashes by record id, and the freezes reaching into the range."""

    starts_at: datetime
    ends_at: datetime
    records: list[Ticket]
    freezes: list[ChangeFreeze]
    clashes: dict[int, list[Clash]] = field(default_factory=dict)
    truncated: bool = False
    #: Read for one configuration item: the stretches of its maintenance windows in the range
    #: (none when it has no windows); and that CI's name as the CMDB has it (None: it has none).
    maintenance: list[tuple[datetime, datetime]] = field(default_factory=list)
    maintained: str | None = None


class ScheduleService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService, secret_key: str) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records
        # a key of its own: a subscription secret is no API token, nor the other way round
        self._feed_key = hashlib.sha256(b"processdesk-schedule-feed:" + secret_key.encode()).digest()

    #: Given a CI's name and a direction, the names of the CIs tied to it (``upward``: those that
    #: depend on it or run on it; else those it stands on): ``Services`` wires it to
    #: ``CmdbService.related_names``. None: a freeze on a CI holds for that CI alone.
    related_cis: Callable[[str, bool], set[str]] | None = None
    #: Given CI names, the maintenance windows of those that have some, by lower-case name:
    #: ``Services`` wires it to ``MaintenanceService.rules_for``. None: no CI has windows.
    maintenance_rules: Callable[[Iterable[str]], dict[str, list[Rule]]] | None = None

    def _held(self, ci: str | None, known: dict[str, set[str]] | None = None) -> Callable[[], set[str]]:
        """The CIs (lower case) a freeze may name to hold for work on ``ci``: the CI, and those
        that depend on it or run on it (a freeze on a service holds for the servers it runs on),
        looked up once, when first asked (in ``known`` when given: shared by the calls of one read)."""
        known = {} if known is None else known

        def held() -> set[str]:
            if ci is None:
                return set()
            key = ci.lower()
            if key not in known:
                known[key] = {key} | ({n.lower() for n in self.related_cis(ci, True)} if self.related_cis else set())
            return known[key]
        return held

    # -- calendar subscriptions ----------------------------------------------------------------------

    def _feed_hash(self, secret: str) -> str:
        return hmac.new(self._feed_key, secret.encode(), hashlib.sha256).hexdigest()

    def feed_of(self, user: User) -> ScheduleFeed | None:
        """``user``'s calendar subscription, if they have one that works (made since their last
        password change)."""
        row = self.session.scalar(select(ScheduleFeed).where(ScheduleFeed.user_id == user.id))
        return row if row is not None and row.token_generation == user.token_generation else None

    def open_feed(self, user: User) -> str:
        """A new calendar subscription for ``user`` (anyone the pages offer the schedule:
        ``reads_schedule``; PermissionDenied, audited, otherwise), replacing theirs: the secret of
        its address, which nothing stores (the row keeps its keyed hash), so this is its only
        sight. Audited (``schedule_feed_opened``; ``replaced`` when an older one stopped)."""
        if not reads_schedule(user):
            self.audit.refuse(user, "schedule_feed_open", reason="needs a role that works in the desk")
            raise PermissionDenied("a calendar subscription to the change schedule needs a role that works in the desk")
        result = self.session.execute(delete(ScheduleFeed).where(ScheduleFeed.user_id == user.id))
        replaced = bool(result.rowcount)  # type: ignore[attr-defined]
        secret = secrets.token_urlsafe(32)
        row = ScheduleFeed(user_id=user.id, token_hash=self._feed_hash(secret), token_generation=user.token_generation,
                           created_at=self.clock.now())
        self.session.add(row)
        self.session.flush()
        self.audit.record("schedule_feed_opened", user, payload={"id": row.id, "replaced": replaced})
        return secret

    def close_feed(self, user: User) -> None:
        """Stop ``user``'s calendar subscription: its address answers 404 from now on. Audited
        (``schedule_feed_closed``). NotFound when they have none."""
        row = self.session.scalar(select(ScheduleFeed).where(ScheduleFeed.user_id == user.id))
        if row is None:
            raise NotFound("no calendar subscription")
        self.session.delete(row)
        self.session.flush()
        self.audit.record("schedule_feed_closed", user, payload={"id": row.id})

    def feed_window(self, secret: str) -> tuple[User, Schedule]:
        """What the subscription address with ``secret`` shows: its user, and the schedule as they
        may see it from :data:`FEED_DAYS_BEFORE` days ago to :data:`FEED_DAYS_AFTER` days ahead:
        the open records (a closed one's window holds no work), at most :data:`MAX_ENTRIES`. NotFound for a secret no working subscription has (unknown, stopped,
        replaced, its user's password changed or their account deactivated): it says no more."""
        row = self.session.scalar(select(ScheduleFeed).where(ScheduleFeed.token_hash == self._feed_hash(secret[:100])))
        if row is None or not row.user.active or row.token_generation != row.user.token_generation:
            raise NotFound("no such calendar subscription")
        now = self.clock.now()
        if row.last_read_at is None or now - row.last_read_at >= timedelta(hours=1):
            row.last_read_at = now.replace(minute=0, second=0, microsecond=0)
        start = now - timedelta(days=FEED_DAYS_BEFORE)
        return row.user, self.window(row.user, start, start + timedelta(days=FEED_DAYS_BEFORE + FEED_DAYS_AFTER))

    # -- freezes ------------------------------------------------------------------------------------

    def freezes(self, starts_at: datetime | None = None, ends_at: datetime | None = None) -> list[ChangeFreeze]:
        """The freezes reaching into [starts_at, ends_at), earliest first; by default those not
        over yet. Everyone signed in reads them: a requester planning a change needs to know."""
        query = select(ChangeFreeze).where(ChangeFreeze.ends_at > (starts_at or self.clock.now()))
        if ends_at is not None:
            query = query.where(ChangeFreeze.starts_at < ends_at)
        return list(self.session.scalars(query.order_by(ChangeFreeze.starts_at, ChangeFreeze.id)))

    def require_freeze_manager(self, user: User, action: str = "change_freeze_add") -> None:
        """PermissionDenied (audited) unless ``user`` may manage freezes (``may_manage_freezes``)."""
        if not may_manage_freezes(user):
            self.audit.refuse(user, action, reason="needs process_owner or admin")
            raise PermissionDenied("managing change freezes needs the process_owner or admin role")

    def add_freeze(self, user: User, values: Mapping[str, Any]) -> ChangeFreeze:
        """A new freeze from ``values``: ``name`` (one line, at most 128 characters), ``starts_at``
        and ``ends_at`` (aware datetimes; the end after the start and not past, at most a year
        apart), optional ``ci`` (a configuration item's name: the freeze holds for it alone) and
        ``reason``. Audited (``change_freeze_added``).

        Raises PermissionDenied (``require_freeze_manager``), ValidationFailed naming each field
        that is wrong.
        """
        self.require_freeze_manager(user)
        clean = self._clean(values)
        row = ChangeFreeze(**clean, created_by_id=user.id, created_at=self.clock.now())
        self.session.add(row)
        self.session.flush()
        told, more = self._tell_planned_in(row, user)
        self.audit.record("change_freeze_added", user, payload={"id": row.id, **self._described(row), "planned_in_it": told,
                                                                "more_planned_in_it": more})
        return row

    def get_freeze(self, freeze_id: int) -> ChangeFreeze:
        """One freeze (everyone signed in reads freezes); NotFound for an unknown id."""
        row = self.session.get(ChangeFreeze, freeze_id)
        if row is None:
            raise NotFound(f"no change freeze {freeze_id}", details={"id": freeze_id})
        return row

    def change_freeze(self, user: User, freeze_id: int, values: Mapping[str, Any]) -> ChangeFreeze:
        """Change a freeze: the fields ``values`` holds (as for ``add_freeze``; the others stay), all
        checked again as for a new one. The people of the open records the changed freeze covers
        and the freeze as it was did not are told, as for a new freeze. Audited
        (``change_freeze_changed``: what it was, what it is). NotFound for an unknown id;
        PermissionDenied as for adding one; ValidationFailed naming each field that is wrong."""
        self.require_freeze_manager(user, "change_freeze_change")
        row = self.get_freeze(freeze_id)
        before = self._described(row)
        covered = {t.number for t in self._planned_in(row)[0]}
        clean = self._clean({**{k: getattr(row, k) for k in ("name", "reason", "ci", "starts_at", "ends_at")}, **values})
        for key, value in clean.items():
            setattr(row, key, value)
        self.session.flush()
        told, more = self._tell_planned_in(row, user, covered)
        self.audit.record("change_freeze_changed", user, payload={"id": row.id, "was": before, **self._described(row),
                                                                  "planned_in_it": told, "more_planned_in_it": more})
        return row

    def _planned_in(self, freeze: ChangeFreeze) -> tuple[list[Ticket], bool]:
        """The open records whose window in ``freeze`` is still to come (a freeze may start in the
        past), earliest first, at most :data:`MAX_ENTRIES`; and whether there were more."""
        query = _overlapping(max(freeze.starts_at, self.clock.now()), freeze.ends_at).where(Ticket.closed_at.is_(None))
        under: set[str] | None = None
        if freeze.ci is not None:
            # the CI, and what it stands on (a freeze on a service holds for the servers it runs on)
            under = {freeze.ci.lower()} | {n.lower() for n in (self.related_cis(freeze.ci, False) if self.related_cis else ())}
            query = query.where(_ci_among(Ticket.ci, under))
        rows = self.session.scalars(query.order_by(Ticket.planned_start_at, Ticket.id)).unique()
        planned = [t for t in rows if under is None or (t.ci is not None and t.ci.lower() in under)]
        return planned[:MAX_ENTRIES], len(planned) > MAX_ENTRIES

    def _tell_planned_in(self, freeze: ChangeFreeze, actor: User, told_before: Collection[str] = ()) -> tuple[list[str], bool]:
        """Tell the people of each open record ``_planned_in`` the freeze (its requester, and its
        assignee or else its queue: ``RecordService.tell_record_people``), but ``actor`` and the
        records in ``told_before``, that the freeze now covers it (event ``change.frozen``): to
        move it, or, for an exempt one (an emergency change), that it may go ahead. Returns the
        numbers of those told, and whether more were planned in it than were looked at."""
        found, more = self._planned_in(freeze)
        planned = [t for t in found if t.number not in told_before]
        exempt = self._exempt_records(planned)
        for ticket in planned:
            assert ticket.planned_start_at is not None and ticket.planned_end_at is not None
            said = {"number": ticket.number, "title": ticket.title, "name": freeze.name,
                    "starts": typed_time(freeze.starts_at), "ends": typed_time(freeze.ends_at),
                    "start": typed_time(ticket.planned_start_at), "end": typed_time(ticket.planned_end_at),
                    "link": self.records.notifications.link(ticket)}
            body = (Text("The change freeze “%(name)s” (%(starts)s to %(ends)s UTC) covers the planned window of "
                         "%(number)s (%(title)s): %(start)s to %(end)s UTC.\n\nAs an emergency change it may go "
                         "ahead; the freeze shows as a clash.\n\n%(link)s", **said)
                    if exempt.get(ticket.id) else
                    Text("The change freeze “%(name)s” (%(starts)s to %(ends)s UTC) covers the planned window of "
                         "%(number)s (%(title)s): %(start)s to %(end)s UTC.\n\nPlan it before or after the "
                         "freeze.\n\n%(link)s", **said))
            self.records.tell_record_people(
                ticket, actor, FROZEN_EVENT, Text("%(number)s: the change freeze “%(name)s” covers its planned window", **said),
                body, payload={"freeze_id": freeze.id, "freeze": freeze.name, "exempt": exempt.get(ticket.id, False)})
        return [t.number for t in planned], more

    def remove_freeze(self, user: User, freeze_id: int) -> None:
        """Remove a freeze (audited ``change_freeze_removed``, with what it was). NotFound for an
        unknown id; PermissionDenied as for adding one."""
        self.require_freeze_manager(user, "change_freeze_remove")
        row = self.get_freeze(freeze_id)
        described = {"id": row.id, **self._described(row)}
        self.session.delete(row)
        self.session.flush()
        self.audit.record("change_freeze_removed", user, payload=described)

    @staticmethod
    def _described(row: ChangeFreeze) -> dict[str, Any]:
        return {"name": row.name, "starts_at": rfc3339(row.starts_at), "ends_at": rfc3339(row.ends_at),
                "ci": row.ci, "reason": row.reason}

    def _clean(self, values: Mapping[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[Any]] = {}

        def text(name: str, limit: int, *, one_line: bool) -> str:
            raw = values.get(name)
            if raw is not None and not isinstance(raw, str):
                errors[name] = ["must be text"]
                return ""
            value = " ".join((raw or "").split()) if one_line else (raw or "").strip()
            if (problem := text_problem(value, limit)) is not None:
                errors[name] = [problem]
            return value

        name = text("name", NAME_MAX, one_line=True)
        if not name and "name" not in errors:
            errors["name"] = ["is required"]
        reason = text("reason", REASON_MAX, one_line=False)
        ci = text("ci", CI_MAX, one_line=True) or None
        starts_at, ends_at = values.get("starts_at"), values.get("ends_at")
        for key, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
            if not isinstance(moment, datetime) or moment.tzinfo is None:
                errors[key] = ["is required" if moment is None else "must be a date-time with a time zone"]
            elif in_instant_range(moment) is None:
                errors[key] = [OUT_OF_RANGE]
        if isinstance(starts_at, datetime) and isinstance(ends_at, datetime) and not errors.keys() & {"starts_at", "ends_at"}:
            if ends_at <= starts_at:
                errors["ends_at"] = [ENDS_BEFORE_START]
            elif ends_at - starts_at > timedelta(days=MAX_FREEZE_DAYS):
                errors["ends_at"] = [TOO_LONG]
            elif ends_at <= self.clock.now():
                errors["ends_at"] = [ALREADY_OVER]
        if errors:
            raise ValidationFailed("the freeze is not valid", details={"fields": errors})
        assert isinstance(starts_at, datetime) and isinstance(ends_at, datetime)
        return {"name": name, "reason": reason, "ci": ci, "starts_at": starts_at.astimezone(timezone.utc),
                "ends_at": ends_at.astimezone(timezone.utc)}

    def _frozen(self, starts_at: datetime, ends_at: datetime, ci: str | None) -> list[ChangeFreeze]:
        """The freezes overlapping [starts_at, ends_at) that hold for work on ``ci``."""
        held = self._held(ci)
        return [f for f in self.freezes(starts_at, ends_at) if _holds_for(f, held)]

    # -- planning -----------------------------------------------------------------------------------

    def check_window(self, ticket: Ticket, schedule: Mapping[str, Any], data: Mapping[str, Any],
                     starts_at: datetime, ends_at: datetime) -> None:
        """Refuse a window a person's step planned for ``ticket`` that overlaps a freeze holding for
        its configuration item, unless the step's data exempts it (``schedule.exempt``, e.g. an
        emergency change): ValidationFailed naming the start variable, the freeze and its period
        (a FormMessage ``in_freeze``: ``name``, ``starts``, ``ends``; and ``ci`` when the freeze is on
        another CI that depends on or runs on the record's). Called from the record's sync
        (``RecordService.window_check``), so the whole step is refused."""
        if _exempt(schedule, data):
            return
        frozen = self._frozen(starts_at, ends_at, ticket.ci)
        if not frozen:
            return
        freeze = frozen[0]
        starts, ends = rfc3339(freeze.starts_at), rfc3339(freeze.ends_at)
        if freeze.ci is not None and not _same_ci(freeze.ci, ticket.ci):
            message = FormMessage(f"the planned window overlaps the change freeze “{freeze.name}” of {freeze.ci}, which "
                                  f"depends on this configuration item ({starts} to {ends}): plan it before or after the "
                                  "freeze", "in_freeze", name=freeze.name, starts=starts, ends=ends, ci=freeze.ci)
        else:
            message = FormMessage(f"the planned window overlaps the change freeze “{freeze.name}” ({starts} to {ends}): "
                                  "plan it before or after the freeze", "in_freeze", name=freeze.name, starts=starts, ends=ends)
        raise ValidationFailed(f"the planned window overlaps the change freeze “{freeze.name}”",
                               details={"fields": {schedule["start"]: [message]},
                                        "freeze": {"id": freeze.id, "name": freeze.name, "starts_at": starts, "ends_at": ends,
                                                   "ci": freeze.ci}})

    def clashes_for(self, viewer: User, ticket: Ticket) -> list[Clash]:
        """What ``ticket``'s planned window overlaps: the freezes holding for its configuration
        item, then the windows of other open records on it that ``viewer`` may see. Nothing when
        it has no window or is closed."""
        if ticket.planned_start_at is None or ticket.planned_end_at is None or ticket.closed_at is not None:
            return []
        return self._clashes([ticket], viewer, self._exempt_records([ticket]))[ticket.id]

    def window(self, viewer: User, starts_at: datetime, ends_at: datetime | None = None, *, ci: str | None = None,
               include_closed: bool = False) -> Schedule:
        """The schedule from ``starts_at`` to ``ends_at`` (default :data:`DEFAULT_RANGE_DAYS` later):
        the planned records ``viewer`` may see whose windows reach into it (open ones, and closed
        ones too with ``include_closed``), at most :data:`MAX_ENTRIES`, on ``ci`` alone if given;
        the freezes reaching into it; each open record's clashes.

        Raises ValidationFailed (field ``to``) for an end not after the start or a range longer
        than :data:`MAX_RANGE_DAYS`."""
        for name, moment in (("from", starts_at), ("to", ends_at)):
            if moment is not None and in_instant_range(moment) is None:
                raise ValidationFailed(f"{name} is out of range", details={"fields": {name: [OUT_OF_RANGE]}})
        ends_at = ends_at or starts_at + timedelta(days=DEFAULT_RANGE_DAYS)
        if ends_at <= starts_at:
            raise ValidationFailed("the end of the range must be after its start", details={"fields": {"to": ["must be after from"]}})
        if ends_at - starts_at > timedelta(days=MAX_RANGE_DAYS):
            raise ValidationFailed(f"the range spans at most {MAX_RANGE_DAYS} days",
                                   details={"fields": {"to": [f"at most {MAX_RANGE_DAYS} days after from"]}})
        query = _overlapping(starts_at, ends_at)
        if not include_closed:
            query = query.where(Ticket.closed_at.is_(None))
        if ci:
            query = query.where(func.lower(Ticket.ci) == ci.lower())
        query = self.records.visible(viewer, query).order_by(Ticket.planned_start_at, Ticket.id).limit(MAX_ENTRIES + 1)
        rows = list(self.session.scalars(query).unique())
        truncated = len(rows) > MAX_ENTRIES
        rows = rows[:MAX_ENTRIES]
        held = self._held(ci)
        freezes = [f for f in self.freezes(starts_at, ends_at) if not ci or _holds_for(f, held)]
        open_rows = [row for row in rows if row.closed_at is None]
        clashes = self._clashes(open_rows, viewer, self._exempt_records(open_rows)) if open_rows else {}
        rules = (self.maintenance_rules([ci]).get(ci.lower())
                 if ci and self.maintenance_rules and sees_windows(viewer) else None) or []
        return Schedule(starts_at, ends_at, rows, freezes, clashes, truncated,
                        occurrences(rules, starts_at, ends_at), rules[0].ci if rules else None)

    def _exempt_records(self, tickets: Sequence[Ticket]) -> dict[int, bool]:
        """Whether each ticket's process lets it be planned in a freeze, by its data as it stands."""
        ids = [t.instance_id for t in tickets if t.instance_id is not None]
        # the data and the mapping alone: not the instance's saved workflow, nor its version's forms
        found = {row.id: (row.data, row.record_mapping) for row in self.session.execute(
            select(ProcessInstance.id, ProcessInstance.data, ProcessDefinition.record_mapping)
            .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
            .where(ProcessInstance.id.in_(ids)))} if ids else {}
        exempt: dict[int, bool] = {}
        for ticket in tickets:
            data, mapping = found.get(ticket.instance_id, (None, None)) if ticket.instance_id is not None else (None, None)
            exempt[ticket.id] = data is not None and _exempt((mapping or {}).get("schedule") or {}, data)
        return exempt

    def _clashes(self, tickets: Sequence[Ticket], viewer: User, exempt: Mapping[int, bool]) -> dict[int, list[Clash]]:
        """Each open, planned ticket's clashes (``_window_clashes``), with one read of the freezes
        and one of the other open records over the span of all their windows."""
        windows = {t.id: _Window(t.planned_start_at, t.planned_end_at, t.ci, t.id, exempt.get(t.id, False))
                   for t in tickets if t.planned_start_at is not None and t.planned_end_at is not None}
        found = self._window_clashes(list(windows.values()), viewer)
        return {t.id: found[id(windows[t.id])] if t.id in windows else [] for t in tickets}

    def _window_clashes(self, windows: Sequence[_Window], viewer: User) -> dict[int, list[Clash]]:
        """What each window (keyed by ``id(window)``) overlaps: the freezes holding for its
        configuration item, then the windows of the other open records on it that ``viewer``
        may see (not its own record's)."""
        found: dict[int, list[Clash]] = {id(w): [] for w in windows}
        if not windows:
            return found
        earliest, latest = min(w.starts_at for w in windows), max(w.ends_at for w in windows)
        freezes = self.freezes(earliest, latest)
        cis = {w.ci.lower() for w in windows if w.ci}
        others: list[Ticket] = []
        if cis:
            query = self.records.visible(viewer, _overlapping(earliest, latest).where(
                Ticket.closed_at.is_(None), _ci_among(Ticket.ci, cis)))
            others = [t for t in self.session.scalars(query.order_by(Ticket.planned_start_at, Ticket.id)).unique()
                      if t.ci is not None and t.ci.lower() in cis]
        known: dict[str, set[str]] = {}
        # the CIs' maintenance windows (for the desk's staff: ``sees_windows``), the windows outside
        # them, and for each CI the stretches ahead of those, read once: a window's next fit is
        # looked for from its start (from now for one planned in the past)
        rules = self.maintenance_rules(cis) if cis and self.maintenance_rules and sees_windows(viewer) else {}
        now = self.clock.now()
        outside: dict[int, datetime] = {}
        for window in windows:
            found_rules = rules.get(window.ci.lower()) if window.ci else None
            if found_rules and not covers(found_rules, window.starts_at, window.ends_at):
                outside[id(window)] = max(now, window.starts_at)
        fits = self._fits(windows, outside, rules)
        for window in windows:
            start, end, mine = window.starts_at, window.ends_at, found[id(window)]
            held = self._held(window.ci, known)
            for freeze in freezes:
                if freeze.starts_at < end and freeze.ends_at > start and _holds_for(freeze, held):
                    mine.append(Clash("freeze", freeze.name, freeze.starts_at, freeze.ends_at, freeze.ci,
                                      freeze_id=freeze.id, exempt=window.exempt,
                                      through=freeze.ci is not None and not _same_ci(freeze.ci, window.ci)))
            if id(window) in outside and window.ci:
                fit = fits[id(window)]
                mine.append(Clash("maintenance", window.ci, start, end, window.ci, exempt=window.exempt,
                                  next_start=fit[0] if fit else None, next_end=fit[1] if fit else None))
            for other in others:
                if (other.id != window.record_id and _same_ci(other.ci, window.ci)
                        and other.planned_start_at is not None and other.planned_end_at is not None
                        and other.planned_start_at < end and other.planned_end_at > start):
                    mine.append(Clash("record", other.title, other.planned_start_at, other.planned_end_at, other.ci,
                                      number=other.number))
        return found

    @staticmethod
    def _fits(windows: Sequence[_Window], outside: Mapping[int, datetime],
              rules: Mapping[str, list[Rule]]) -> dict[int, tuple[datetime, datetime] | None]:
        """For each window outside its CI's maintenance windows (``outside``: from when its next
        fit is looked for), the first stretch from then long enough for it. The stretches are read
        once per CI and run of starts lying within the lookahead of the run's first (a schedule's
        changes mostly share one), so a change planned centuries ahead costs a read of its own,
        not every day in between."""
        fits: dict[int, tuple[datetime, datetime] | None] = {}
        by_ci: dict[str, list[_Window]] = {}
        for window in windows:
            if id(window) in outside and window.ci:
                by_ci.setdefault(window.ci.lower(), []).append(window)
        for key, listed in by_ci.items():
            listed.sort(key=lambda w: outside[id(w)])
            runs: list[list[_Window]] = []
            for window in listed:
                if runs and outside[id(window)] - outside[id(runs[-1][0])] <= timedelta(days=LOOKAHEAD_DAYS):
                    runs[-1].append(window)
                else:
                    runs.append([window])
            for run in runs:
                stretches = ahead(rules[key], outside[id(run[0])], outside[id(run[-1])])
                for member in run:
                    fits[id(member)] = first_fit(stretches, member.ends_at - member.starts_at, outside[id(member)])
        return fits

    def preview(self, viewer: User, starts_at: datetime, ends_at: datetime, *, ci: str | None = None,
                number: str | None = None) -> list[Clash]:
        """What a window would clash with if planned now (a form's window as it is typed): for the
        record ``number`` (which ``viewer`` must see: NotFound otherwise) on its CI unless ``ci``
        names another, leaving out its own window; else for a new record on ``ci``. Every freeze
        holding for it is listed as not exempt: whether the record is exempt (an emergency change)
        is decided by the data it is sent with, which the form may be changing too.
        ValidationFailed naming ``to`` (``from``) for an end not after the start, a window longer
        than :data:`MAX_RANGE_DAYS`, or an instant out of range."""
        for name, moment in (("from", starts_at), ("to", ends_at)):
            if in_instant_range(moment) is None:
                raise ValidationFailed(f"{name} is out of range", details={"fields": {name: [OUT_OF_RANGE]}})
        if ends_at <= starts_at:
            raise ValidationFailed("the end of the window must be after its start",
                                   details={"fields": {"to": ["must be after from"]}})
        if ends_at - starts_at > timedelta(days=MAX_RANGE_DAYS):
            raise ValidationFailed(f"a window spans at most {MAX_RANGE_DAYS} days",
                                   details={"fields": {"to": [f"at most {MAX_RANGE_DAYS} days after from"]}})
        record = self.records.get(viewer, number) if number else None
        window = _Window(starts_at, ends_at, ci or (record.ci if record is not None else None),
                         record.id if record is not None else None, False)
        return self._window_clashes([window], viewer)[id(window)]


def _ci_among(column: Any, cis: Iterable[str]) -> Any:
    """A first cut in SQL of the rows whose ``column`` names one of ``cis`` without letter case:
    exact where the names are ASCII (SQLite's lower() folds ASCII letters only), else every row
    naming a CI; the caller compares in Python (``_same_ci``) either way."""
    names = sorted({ci.lower() for ci in cis})
    if all(name.isascii() for name in names):
        return func.lower(column).in_(names)
    return column.is_not(None)


def _exempt(schedule: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    return any(data.get(variable) in values for variable, values in (schedule.get("exempt") or {}).items())


def _overlapping(starts_at: datetime, ends_at: datetime) -> Any:
    """Records whose planned window reaches into [starts_at, ends_at)."""
    return select(Ticket).where(Ticket.planned_start_at.is_not(None), Ticket.planned_start_at < ends_at,
                                Ticket.planned_end_at > starts_at)


def clash_in_english(clash: Clash) -> str:
    """What a clash is, in English (the API's calendar; the pages say it in theirs)."""
    if clash.kind == "freeze":
        return (f"in the freeze “{clash.name}”" + (f" of {clash.ci}, which depends on this configuration item" if clash.through else "")
                + (" (emergency: allowed)" if clash.exempt else ""))
    if clash.kind == "maintenance":
        fit = (f"; the next one long enough: {typed_time(clash.next_start)} to {typed_time(clash.next_end)} UTC"
               if clash.next_start is not None and clash.next_end is not None else ", none of which is long enough")
        return (f"outside the maintenance windows of {clash.ci}" + fit + (" (emergency: allowed)" if clash.exempt else ""))
    return f"same configuration item and time as {clash.number}"


@dataclass(frozen=True)
class CalendarWords:
    """How a calendar export says things, in its reader's language (the edges': a page's, the API's
    English): a record's status, a clash, a freeze's event title from its name."""

    status: Callable[[str], str]
    clash: Callable[[Clash], str]
    freeze: Callable[[str], str]


def calendar_events(view: Schedule, host: str, record_link: Callable[[Ticket], str],
                    freeze_link: Callable[[ChangeFreeze], str], words: CalendarWords) -> list[Event]:
    """The schedule read as calendar events: each planned record (its number and title; its status,
    configuration item and clashes in the description; its CI as the location; a link to it; a
    closed one as free time: its window holds no work any more), then each freeze (free time: it
    makes nobody busy; a link to the schedule where it starts). UIDs are the record's number and
    the freeze's id at ``host``, so a calendar that imports the file again updates its events."""
    events = []
    for ticket in view.records:
        if ticket.planned_start_at is None or ticket.planned_end_at is None:
            continue
        link = record_link(ticket)
        said = [words.status(ticket.status), *(words.clash(c) for c in view.clashes.get(ticket.id, [])), link]
        events.append(Event(f"{ticket.number}@{host}", ticket.planned_start_at, ticket.planned_end_at,
                            f"{ticket.number} {ticket.title}", "\n".join(said), location=ticket.ci, url=link,
                            categories=tuple(c for c in (ticket.kind, ticket.category) if c),
                            transparent=ticket.closed_at is not None))
    for freeze in view.freezes:
        link = freeze_link(freeze)
        events.append(Event(f"freeze-{freeze.id}@{host}", freeze.starts_at, freeze.ends_at, words.freeze(freeze.name),
                            "\n".join(part for part in (freeze.reason, link) if part), location=freeze.ci,
                            url=link, transparent=True))
    return events


#: The English words of the API's calendar export.
ENGLISH_WORDS = CalendarWords(status=lambda status: status.replace("_", " "), clash=clash_in_english,
                              freeze=lambda name: f"Change freeze: {name}")
