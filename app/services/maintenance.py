"""Maintenance windows: the weekly times when work on a configuration item is meant to happen
(Sunday 02:00 to 06:00 in Berlin for a database server; every night 22:00 to 02:00 for the
branch routers), as service desks agree them with the business.

A window (:class:`~app.models.CiMaintenanceWindow`) names weekdays (every week, or monthly: the
first to fourth, or last, of each of those weekdays in its month, as "the second Tuesday", the patch
day of many desks; with two weekdays each counts on its own, so "the first Saturday and Sunday" is
not always one weekend), a start and an end in wall-clock time of an IANA zone, so "02:00 Berlin" stays 02:00 in Berlin across daylight saving.
An end at or before the start ends on the next day; an equal one makes the day whole (24 hours).
Occurrences that touch or overlap are one stretch of time: Saturday and Sunday 00:00 to 00:00 hold
a change from Saturday evening to Sunday morning.

A CI without windows may be worked on at any time. A change planned on a CI that has windows,
whose planned window does not lie within one stretch of them, shows a clash ``maintenance`` on the
schedule, the record, the task and the forms as they are typed (``ScheduleService``), with the next
stretch long enough for it. Shown, never refused, as the other clashes: the change manager
decides (an emergency change is marked as allowed, as in a freeze).

Who: the CMDB's readers read a CI's windows on its page and answer; the desk's staff are told them
on the schedule and in the clash (``schedule.sees_windows``; a requester is not); the CMDB's writers
(admins, configuration managers) add and change and remove them, audited (``ci_window_added``,
``ci_window_changed``, ``ci_window_removed``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import Clock
from app.errors import Conflict, NotFound, ValidationFailed
from app.models import CiMaintenanceWindow, CiStatus, ConfigurationItem, User

from .audit import AuditLog
from .cmdb import CmdbService
from .forms import text_problem

log = logging.getLogger(__name__)

#: The weekdays as the API names them, Monday first (bit 1 << index).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The most windows one CI has.
MAX_WINDOWS = 20
NAME_MAX = 128
#: A monthly window's weeks as the API names them (1 to 4; 5 is the month's last).
WEEKS = ("first", "second", "third", "fourth", "last")
LAST_WEEK = 5
#: How far ahead the next stretch long enough for a change is looked for.
LOOKAHEAD_DAYS = 92
#: The fixed refusals (the pages say them in their own language: app/web/forms.py).
NO_DAYS = "choose at least one day"
BAD_TIME = "must be a time of day as hh:mm (00:00 to 23:59)"
BAD_ZONE = "must be a time zone such as Europe/Berlin or UTC"
UNKNOWN_DAY = f"each one of: {', '.join(DAYS)}"
UNKNOWN_WEEK = f"one of: {', '.join(WEEKS)}, or none for every week"


@dataclass(frozen=True)
class Rule:
    """A window as the arithmetic needs it: weekday bits, start and end minutes, the zone's name;
    and its CI's name as the CMDB has it."""

    days: int
    start_minute: int
    end_minute: int
    zone: str
    ci: str = ""
    #: Monthly: the week of the month (1-4, 5 the last) the days count in; None: every week.
    week: int | None = None

    @classmethod
    def of(cls, row: CiMaintenanceWindow, ci: str = "") -> Rule:
        return cls(row.days, row.start_minute, row.end_minute, row.timezone, ci, row.week)

    def opens_on(self, day: date) -> bool:
        """Whether the window opens on ``day`` (a local date): one of its weekdays, and for a
        monthly window that weekday's ``week``-th in the month (5: its last)."""
        if not self.days & (1 << day.weekday()):
            return False
        if self.week is None:
            return True
        if self.week == LAST_WEEK:
            return (day + timedelta(days=7)).month != day.month
        return (day.day - 1) // 7 + 1 == self.week


#: Names the system's zoneinfo lists that are no zone of the IANA database: the host's own setting
#: (which means another zone on another machine), and files of the database's build.
NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    """The zone ``name``; UTC (and a warning in the log) for a stored name this machine does not
    know, so that a desk restored onto a machine with an older zone database keeps answering."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("maintenance window time zone %r is unknown here: read as UTC", name)
        return ZoneInfo("UTC")


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """Every IANA zone name this machine knows (the system's zoneinfo, else the tzdata package),
    but the host's ``localtime`` and the database's build files."""
    return frozenset(available_timezones()) - NOT_ZONES


@lru_cache(maxsize=1)
def zone_choices() -> tuple[str, ...]:
    """:func:`zone_names` in order, as a form offers them (sorted once, not per page)."""
    return tuple(sorted(zone_names()))


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """``minute`` after midnight of ``day`` on the clocks of ``zone``, as UTC. A time that a
    daylight-saving jump skips is read with the offset before the jump (fold 0)."""
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    return local.astimezone(timezone.utc)


def _merged(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The spans, earliest first, with those that touch or overlap joined into one."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def occurrences(rules: Sequence[Rule], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches of maintenance time (UTC, earliest first, touching occurrences joined) that
    reach into [start, end). The occurrences of the two days before ``start`` are joined in too, so
    a stretch that opened before it shows where it opened (up to two days back); one that goes on
    after ``end`` is followed to the occurrences of ``end``'s day only. Costs a step per day and
    window of the range: callers bound it."""
    spans = []
    for rule in rules:
        zone = _zone(rule.zone)
        day = start.astimezone(zone).date() - timedelta(days=2)
        last = end.astimezone(zone).date()
        while day <= last:
            if rule.opens_on(day):
                opens = _at(day, rule.start_minute, zone)
                closes = _at(day + timedelta(days=1) if rule.end_minute <= rule.start_minute else day,
                             rule.end_minute, zone)
                if opens < closes:
                    spans.append((opens, closes))
            day += timedelta(days=1)
    return [(opens, closes) for opens, closes in _merged(spans) if closes > start and opens < end]


def covers(rules: Sequence[Rule], start: datetime, end: datetime) -> bool:
    """Whether [start, end) lies within one stretch of the windows ``rules``. Only the first
    :data:`LOOKAHEAD_DAYS` of a longer window are looked at: windows that leave no gap for that
    long are taken to be open throughout (so a change planned for years costs what one of three
    months does)."""
    limit = min(end, start + timedelta(days=LOOKAHEAD_DAYS))
    return any(opens <= start and limit <= closes for opens, closes in occurrences(rules, start, limit))


def ahead(rules: Sequence[Rule], begin: datetime, last: datetime | None = None) -> list[tuple[datetime, datetime]]:
    """The stretches of the windows that open from ``begin`` until :data:`LOOKAHEAD_DAYS` after
    ``last`` (default ``begin``), a week beyond read too so that one opening late in the period is
    seen whole: what :func:`first_fit` picks from, read once for any number of changes whose
    searches start between ``begin`` and ``last``."""
    horizon = (last or begin) + timedelta(days=LOOKAHEAD_DAYS)
    return [(opens, closes) for opens, closes in occurrences(rules, begin, horizon + timedelta(days=7))
            if begin <= opens < horizon]


def first_fit(stretches: Sequence[tuple[datetime, datetime]], length: timedelta,
              after: datetime) -> tuple[datetime, datetime] | None:
    """The first of ``stretches`` (from :func:`ahead`) that opens from ``after`` until
    :data:`LOOKAHEAD_DAYS` later and lasts at least ``length``."""
    horizon = after + timedelta(days=LOOKAHEAD_DAYS)
    return next(((opens, closes) for opens, closes in stretches
                 if after <= opens < horizon and closes - opens >= length), None)


def next_fit(rules: Sequence[Rule], after: datetime, length: timedelta) -> tuple[datetime, datetime] | None:
    """The first stretch of the windows that opens at or after ``after`` (one open then does not
    count) within :data:`LOOKAHEAD_DAYS` and lasts at least ``length``; None when there is none."""
    return first_fit(ahead(rules, after), length, after)


#: How many local days :func:`next_opening` looks through (a monthly "last Sunday" is at most five
#: weeks away; a year leaves room for any rule these fields can write).
OPENING_SEARCH_DAYS = 366


def next_opening(rule: Rule, after: datetime) -> datetime | None:
    """The first start of ``rule`` (its days at its ``start_minute`` on the clocks of its zone, as
    UTC) later than ``after``; None only for a rule with no day at all."""
    zone = _zone(rule.zone)
    day = after.astimezone(zone).date()
    for _ in range(OPENING_SEARCH_DAYS):
        if rule.opens_on(day):
            opens = _at(day, rule.start_minute, zone)
            if opens > after:
                return opens
        day += timedelta(days=1)
    return None


def day_bits(names: Iterable[str]) -> int:
    bits = 0
    for name in names:
        bits |= 1 << DAYS.index(name)
    return bits


def day_names(bits: int) -> list[str]:
    return [name for index, name in enumerate(DAYS) if bits & (1 << index)]


def week_name(week: int | None) -> str | None:
    return WEEKS[week - 1] if week is not None else None


def clock_minute(text: str) -> int | None:
    """``"hh:mm"`` (ASCII digits, 00:00 to 23:59) as minutes after midnight; None otherwise."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or len(hours) not in (1, 2) or len(minutes) != 2 or not (hours + minutes).isascii() \
            or not (hours + minutes).isdigit():
        return None
    h, m = int(hours), int(minutes)
    return h * 60 + m if h < 24 and m < 60 else None


def clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def recurrence(values: Mapping[str, Any], clean: dict[str, Any], errors: dict[str, list[Any]]) -> None:
    """The weekdays, week of the month and time zone of ``values`` (a window's, or a recurring
    request's: app/services/recurring.py) into ``clean`` as the rows keep them (``days`` bits,
    ``week`` 1 to 5 or None, ``timezone``, default UTC), what is wrong with them into ``errors``."""
    days = values.get("days")
    if not isinstance(days, (list, tuple)) or not days:
        errors["days"] = [NO_DAYS]
    elif any(not isinstance(d, str) or d not in DAYS for d in days):
        errors["days"] = [UNKNOWN_DAY]
    else:
        clean["days"] = day_bits(days)
    week = values.get("week")
    if week is None or week == "":
        clean["week"] = None
    elif not isinstance(week, str) or week not in WEEKS:
        errors["week"] = [UNKNOWN_WEEK]
    else:
        clean["week"] = WEEKS.index(week) + 1
    zone = values.get("timezone")
    zone = "UTC" if zone is None or zone == "" else zone
    if not isinstance(zone, str) or zone not in zone_names():
        errors["timezone"] = [BAD_ZONE]
    else:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = [BAD_ZONE]
        clean["timezone"] = zone


def describe(row: CiMaintenanceWindow, now: datetime) -> dict[str, Any]:
    """A window as the API answers it, with its next opening from ``now`` and, while it is open,
    when it closes."""
    rule = Rule.of(row)
    upcoming = next_fit([rule], now, timedelta(0))
    current = [closes for opens, closes in occurrences([rule], now, now + timedelta(minutes=1)) if opens <= now]
    return {"open_until": current[0] if current else None, "id": row.id, "name": row.name, "days": day_names(row.days),
            "week": week_name(row.week), "start": clock_text(row.start_minute),
            "end": clock_text(row.end_minute), "timezone": row.timezone,
            "next_start": upcoming[0] if upcoming else None, "next_end": upcoming[1] if upcoming else None,
            "created_at": row.created_at, "created_by": row.created_by.username if row.created_by else None}


class MaintenanceService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, cmdb: CmdbService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.cmdb = cmdb

    def windows(self, ci: ConfigurationItem) -> list[CiMaintenanceWindow]:
        """The CI's windows: by first day, then start."""
        rows = self.session.scalars(select(CiMaintenanceWindow).where(CiMaintenanceWindow.ci_id == ci.id)
                                    .order_by(CiMaintenanceWindow.id))
        return sorted(rows, key=lambda w: ((w.days & -w.days).bit_length(), w.week or 0, w.start_minute, w.id))

    def described(self, ci: ConfigurationItem) -> list[dict[str, Any]]:
        now = self.clock.now()
        return [describe(row, now) for row in self.windows(ci)]

    def rules_for(self, names: Iterable[str]) -> dict[str, list[Rule]]:
        """The windows of the CIs ``names`` names (any letter case), by lower-case CI name; a name
        that is no CI, or a CI without windows, is left out."""
        wanted = {name.lower() for name in names if name}
        if not wanted:
            return {}
        query = select(ConfigurationItem.name, CiMaintenanceWindow).join(
            CiMaintenanceWindow, CiMaintenanceWindow.ci_id == ConfigurationItem.id)
        if all(name.isascii() for name in wanted):  # SQLite's lower() folds ASCII letters only
            query = query.where(func.lower(ConfigurationItem.name).in_(sorted(wanted)))
        found: dict[str, list[Rule]] = {}
        for ci_name, row in self.session.execute(query.order_by(CiMaintenanceWindow.id)):
            if ci_name.lower() in wanted:
                found.setdefault(ci_name.lower(), []).append(Rule.of(row, ci_name))
        return found

    def _clean(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """A window's fields from the API's or the page's values, and what is wrong with them, by
        field (``name``, ``days``, ``week``, ``start``, ``end``, ``timezone``)."""
        errors: dict[str, list[Any]] = {}
        clean: dict[str, Any] = {}
        name = values.get("name")
        if name is None:
            name = ""
        if not isinstance(name, str):
            errors["name"] = ["must be text"]
        else:
            name = " ".join(name.split())
            if (problem := text_problem(name, NAME_MAX)) is not None:
                errors["name"] = [problem]
            clean["name"] = name
        recurrence(values, clean, errors)
        for field in ("start", "end"):
            said = values.get(field)
            minute = clock_minute(said) if isinstance(said, str) else None
            if minute is None:
                errors[field] = [BAD_TIME]
            clean[field] = minute
        return clean, errors

    def add(self, user: User, name: str, values: Mapping[str, Any]) -> tuple[CiMaintenanceWindow, bool]:
        """A new window of the CI ``name`` (admins and configuration managers); returns it and
        whether it is new (the same days, times and zone again: the one there, not a second).
        ValidationFailed naming each wrong field; Conflict ``ci_retired`` for a retired CI and
        ``too_many_windows`` beyond :data:`MAX_WINDOWS`."""
        ci = self.cmdb.find(user, name, "add_ci_window")
        self.cmdb.require_writer(user, "add_ci_window", ci.name)
        clean, errors = self._clean(values)
        if errors:
            raise ValidationFailed("the maintenance window is not valid", details={"fields": errors})
        if ci.status == CiStatus.RETIRED:
            raise Conflict(f"{ci.name} is retired: it takes no maintenance windows", code="ci_retired")
        existing = self.windows(ci)
        for row in existing:
            if (row.days, row.week, row.start_minute, row.end_minute, row.timezone) == (
                    clean["days"], clean["week"], clean["start"], clean["end"], clean["timezone"]):
                return row, False
        if len(existing) >= MAX_WINDOWS:
            raise Conflict(f"{ci.name} has {MAX_WINDOWS} maintenance windows, the most a configuration item has",
                           code="too_many_windows", details={"windows": len(existing)})
        row = CiMaintenanceWindow(ci_id=ci.id, name=clean["name"], days=clean["days"], week=clean["week"],
                                  start_minute=clean["start"],
                                  end_minute=clean["end"], timezone=clean["timezone"], created_at=self.clock.now(),
                                  created_by_id=user.id)
        self.session.add(row)
        self.session.flush()
        self.audit.record("ci_window_added", user, payload={"ci": ci.name, **self._said(row)})
        return row, True

    def change(self, user: User, name: str, window_id: int, values: Mapping[str, Any]) -> CiMaintenanceWindow:
        """Change one of the CI's windows: the fields ``values`` holds (as for ``add``; the others
        stay), all checked again. NotFound for an id that is not one of this CI's; ValidationFailed
        naming each wrong field; Conflict ``window_exists`` when it would be the same as another of
        the CI's windows. Audited (``ci_window_changed``: what it was, what it is)."""
        ci = self.cmdb.find(user, name, "change_ci_window")
        self.cmdb.require_writer(user, "change_ci_window", ci.name)
        row = self._window_of(ci, window_id)
        before = self._said(row)
        current = {"name": row.name, "days": day_names(row.days), "week": week_name(row.week),
                   "start": clock_text(row.start_minute),
                   "end": clock_text(row.end_minute), "timezone": row.timezone}
        clean, errors = self._clean({**current, **values})
        if errors:
            raise ValidationFailed("the maintenance window is not valid", details={"fields": errors})
        for other in self.windows(ci):
            if other.id != row.id and (other.days, other.week, other.start_minute, other.end_minute, other.timezone) == (
                    clean["days"], clean["week"], clean["start"], clean["end"], clean["timezone"]):
                raise Conflict(f"{ci.name} has that maintenance window already", code="window_exists",
                               details={"window_id": other.id})
        row.name, row.days, row.week, row.start_minute, row.end_minute, row.timezone = (
            clean["name"], clean["days"], clean["week"], clean["start"], clean["end"], clean["timezone"])
        self.session.flush()
        self.audit.record("ci_window_changed", user, payload={"ci": ci.name, "was": before, **self._said(row)})
        return row

    def _window_of(self, ci: ConfigurationItem, window_id: int) -> CiMaintenanceWindow:
        row = self.session.get(CiMaintenanceWindow, window_id)
        if row is None or row.ci_id != ci.id:
            raise NotFound(f"no maintenance window {window_id} of {ci.name}")
        return row

    def remove(self, user: User, name: str, window_id: int) -> None:
        """Remove one of the CI's windows; NotFound for an id that is not one of this CI's."""
        ci = self.cmdb.find(user, name, "remove_ci_window")
        self.cmdb.require_writer(user, "remove_ci_window", ci.name)
        row = self._window_of(ci, window_id)
        payload = {"ci": ci.name, **self._said(row)}
        self.session.delete(row)
        self.session.flush()
        self.audit.record("ci_window_removed", user, payload=payload)

    @staticmethod
    def _said(row: CiMaintenanceWindow) -> dict[str, Any]:
        return {"window_id": row.id, "name": row.name, "days": day_names(row.days), "week": week_name(row.week),
                "start": clock_text(row.start_minute), "end": clock_text(row.end_minute), "timezone": row.timezone}
