"""SLA clocks for ITSM records: response and resolution targets measured in business time.

Pure functions and frozen dataclasses; no I/O, no database, no Flask.

Business time
-------------
A :class:`BusinessCalendar` names a time zone, weekly opening hours (local wall-clock intervals per
weekday) and whole local days off. The definition used everywhere in this module is:

    an instant is business time iff, read on the calendar zone's wall clock, its local date is not
    a holiday and its local wall-clock time lies in one of that weekday's half-open intervals
    ``[start, end)``.

Business seconds between two instants are the real elapsed seconds (UTC seconds) that are business
time. Consequences around daylight-saving changes, which are deliberate and tested:

* 24x7 in any zone is plain elapsed time: a spring-forward day has 23 hours, a fall-back day 25.
* 08:00-18:00 stays 10 hours on DST days (the change happens at night).
* Spring-forward gap: a boundary whose wall time does not exist is shifted forward to the end of
  the gap (the first instant at which the wall clock reads at least that time). An opening hour
  02:30-04:00 on 2026-03-29 in Europe/Berlin is open 03:00-04:00 CEST (1 h); an interval lying
  entirely inside the gap is empty that day.
* Fall-back fold: an ambiguous boundary takes its first occurrence; an interval that crosses the
  fold is measured on real elapsed time (00:00-08:00 on 2026-10-25 in Berlin is 9 h). Because the
  rule is "the wall clock shows business hours", wall times that are repeated in the fold count
  again on their second pass when they lie inside an interval: 01:00-02:30 on that day is open
  01:00-02:30 CEST and again 02:00-02:30 CET (2 h in total).

Wall-clock intervals never wrap past midnight: write 22:00-06:00 as 22:00-24:00 on one day and
00:00-06:00 on the next. ``time(0, 0)`` as an interval end means 24:00 (the end of the day), so
``(time(0), time(0))`` is the whole day.

Offset changes are discovered by probing the zone every 6 hours (results are cached per zone and
year); the tz database never has two offset changes within 6 hours of each other in practice.
Supported instants lie in the (UTC) years 2 to 9998.

SLA clocks
----------
:func:`evaluate` replays a record's :class:`ClockEvent` history (start, pause, resume, priority,
stop) and returns one :class:`ClockState` per clock (``"response"``, ``"resolution"``, ...).
All clocks of a record share one pause history; a stopped clock is frozen. Elapsed time is only
counted while running, paused time only while paused, both in business seconds.

Cancellation: a stop event may say the record was cancelled (``ClockEvent.cancelled``). A clock
it stops is "cancelled", neither met nor breached (the work was never delivered, so it counts in
no compliance figure), unless it had breached already: a clock whose elapsed time exceeded its
target by the cancellation stays "breached". A clock stopped before (the response clock stopped
by the first response) keeps its state ("met" or "breached"): only a clock's first stop counts.

Breach: a clock is breached once its elapsed business time *exceeds* its target, so
``breached_at`` is the first instant after which elapsed > target: if the target is used up at
18:00 closing time, the breach happens at the next opening (a record resolved at 19:00 has
elapsed == target and is met). ``due_at`` follows the same rule for a running clock projected from
``now``. ``warning_at`` is the earliest instant at which elapsed *reaches*
``warning_ratio * target``, projected from ``now`` (so None once reached); ``warning_reached_at``
is the instant it did reach it, from the elapsed history (None until then).

A breach is a fact: a priority change re-targets the clocks still running or paused, but a clock
whose elapsed time had exceeded its target when the change came stays "breached" under any
target that follows, longer ones included (an escalation that raises the priority to one with a
longer target must not lift the breach that caused it). Its ``target_seconds`` is the new target
(what the record's priority now asks); its ``breached_at`` is the first breach, of whichever
target it was (the earliest instant after which elapsed exceeded the target in force then, or
the current target's, if earlier); ``due_at`` of such a running clock is that ``breached_at``, and
it has no ``warning_at`` to come. It stays "breached" when it stops, also by a cancellation.

A breach may also be given as a fact: a ``"breach"`` event says that the clocks it names breached
at its instant (the caller records one when a change is about to have the clocks read under other
terms, such as another business calendar, under which the elapsed time might no longer exceed the
target). A named clock that had not stopped by then is "breached" from that instant on, whatever
the calendar and targets it is replayed under, exactly as a breach found at a priority change; the
earlier of the recorded instant and any breach the replay finds is its ``breached_at``.

Likewise a ``"measured"`` event gives, for clocks that had stopped by its instant, the business
seconds each had elapsed when it stopped (measured under the terms in force then): such a clock's
``elapsed_seconds`` is that figure under any later calendar, so a clock met under office hours is
not found breached by a 24x7 calendar that counts the weekend before its stop. Its state follows
from that figure, its target and any breach (recorded or found).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_TARGETS",
    "BusinessCalendar",
    "CalendarInvalid",
    "ClockEvent",
    "ClockState",
    "SlaTarget",
    "evaluate",
]

DEFAULT_TARGETS: dict[str, dict[str, float]] = {
    "P1": {"response": 15 * 60, "resolution": 4 * 3600},
    "P2": {"response": 3600, "resolution": 8 * 3600},
    "P3": {"response": 4 * 3600, "resolution": 24 * 3600},
    "P4": {"response": 8 * 3600, "resolution": 72 * 3600},
}

# Internally every instant is an integer count of microseconds. UTC instants and local wall-clock
# readings use the same scale: ordinal day number (date.toordinal()) * _DAY + microseconds into the
# day, so that wall = utc + utcoffset. Integers keep sums exact (additivity holds to the microsecond).
_US = 1_000_000
_DAY = 86_400 * _US
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1, 1, 1)  # ordinal 1, i.e. _DAY on the internal scale
_UTC = timezone.utc
_UNIX_EPOCH = (datetime(1970, 1, 1) - _EPOCH) // _ONE_US + _DAY
_PROBE = 6 * 3600 * _US
_MIN_YEAR, _MAX_YEAR = 2, 9998
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KINDS = frozenset({"start", "pause", "resume", "priority", "stop", "breach", "measured"})
_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?")


#: Why a calendar without any weekly business hours cannot run a clock (no due time ever comes).
NO_BUSINESS_HOURS = "calendar has no business hours: business time never elapses"


class CalendarInvalid(ValueError):
    """A calendar (or its JSON form) that cannot be used.

    ``key`` names the offending part as :meth:`BusinessCalendar.from_dict` reads it: ``"timezone"``,
    ``"hours"``, ``"hours.mon[0]"``, ``"holidays[2]"``, or ``""`` for the calendar as a whole; the
    message is ``"<key>: <problem>"`` (``"calendar: ..."`` when ``key`` is empty).
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key or 'calendar'}: {problem}")
        self.key = key
        self.problem = problem


# --------------------------------------------------------------------------------------------
# conversions and validation helpers


def _require_aware(value: object, what: str) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime; raise ValueError otherwise."""
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (naive datetime {value.isoformat()})")
    return value


def _to_us(value: datetime) -> int:
    """An aware datetime as internal UTC microseconds."""
    naive_utc = value.astimezone(_UTC).replace(tzinfo=None)
    return (naive_utc - _EPOCH) // _ONE_US + _DAY


def _from_us(us: int) -> datetime:
    """Internal UTC microseconds as an aware UTC datetime."""
    return (_EPOCH + timedelta(microseconds=us - _DAY)).replace(tzinfo=_UTC)


def _year_of(us: int) -> int:
    return date.fromordinal(us // _DAY).year


def _year_start(year: int) -> int:
    return date(year, 1, 1).toordinal() * _DAY


def _check_seconds(value: object, what: str) -> float:
    """A finite, non-negative number of seconds as float; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number of seconds, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return float(value)


def _check_zone(key: object, what: str) -> str:
    """``key`` if it names a zone of the system tz database; CalendarInvalid (a ValueError) naming
    ``what`` otherwise."""
    if not isinstance(key, str) or not key:
        raise CalendarInvalid(what, f"expected a time zone name such as 'Europe/Berlin', got {key!r}")
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CalendarInvalid(what, f"unknown time zone {key!r}") from exc
    return key


def _time_us(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _US + value.microsecond


def _us_time(us: int) -> time:
    """Microseconds into the day as a time; 24:00 (the end of the day) becomes time(0)."""
    if us >= _DAY:
        return time(0)
    seconds, micro = divmod(us, _US)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, micro)


def _format_clock(us: int) -> str:
    """Microseconds into the day as "HH:MM" (or "HH:MM:SS[.ffffff]"); the end of day is "24:00"."""
    if us >= _DAY:
        return "24:00"
    seconds, micro = divmod(us, _US)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}"
    if second or micro:
        text += f":{second:02d}"
    if micro:
        text += f".{micro:06d}"
    return text


def _parse_clock(value: object, what: str, *, end: bool) -> int:
    """Parse "HH:MM[:SS[.ffffff]]" as microseconds into the day; "24:00" is accepted only as an end."""
    match = _CLOCK_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise CalendarInvalid(what, f"expected a wall-clock time 'HH:MM', got {value!r}")
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3) or 0)
    micro = int((match.group(4) or "0").ljust(6, "0"))
    if hour == 24 and minute == second == micro == 0:
        if not end:
            raise CalendarInvalid(what, "24:00 is only valid as the end of an interval")
        return _DAY
    if hour > 23 or minute > 59 or second > 59:
        raise CalendarInvalid(what, f"not a valid wall-clock time: {value!r}")
    return ((hour * 60 + minute) * 60 + second) * _US + micro


def _merge(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort and merge overlapping or touching half-open intervals."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


# --------------------------------------------------------------------------------------------
# UTC offset history of a zone


def _offset_at(zone: ZoneInfo, us: int) -> int:
    """The zone's UTC offset (microseconds) at the UTC instant ``us`` (a whole second)."""
    try:  # the fast path; some platforms refuse timestamps before 1970
        local = datetime.fromtimestamp((us - _UNIX_EPOCH) // _US, zone)
    except (OverflowError, OSError, ValueError):
        local = zone.fromutc((_EPOCH + timedelta(microseconds=us - _DAY)).replace(tzinfo=zone))
    offset = local.utcoffset()
    assert offset is not None
    return offset // _ONE_US


@lru_cache(maxsize=4096)
def _year_offsets(key: str, year: int) -> tuple[tuple[int, int], ...]:
    """The zone's offset changes within one UTC year: ``((from_us, offset_us), ...)``, the first
    entry at the start of the year. Each offset holds until the next entry (or the year's end)."""
    zone = ZoneInfo(key)
    begin, end = _year_start(year), _year_start(year + 1)
    current = _offset_at(zone, begin)
    table = [(begin, current)]
    cursor = begin
    while cursor < end:
        probe = min(cursor + _PROBE, end)
        if _offset_at(zone, probe) == current:
            cursor = probe
            continue
        low, high = cursor, probe  # offset(low) == current != offset(high); transitions are whole seconds
        while high - low > _US:
            middle = low + (high - low) // (2 * _US) * _US
            if _offset_at(zone, middle) == current:
                low = middle
            else:
                high = middle
        if high >= end:
            break  # the change belongs to the next year's table
        current = _offset_at(zone, high)
        table.append((high, current))
        cursor = high
    return tuple(table)


# --------------------------------------------------------------------------------------------
# calendar


def _all_day() -> Mapping[int, Sequence[tuple[time, time]]]:
    return {weekday: ((time(0), time(0)),) for weekday in range(7)}


@dataclass(frozen=True)
class BusinessCalendar:
    """Business hours: a time zone, weekly local wall-clock intervals and whole local days off.

    ``weekly_hours`` maps a weekday (0 = Monday ... 6 = Sunday) to half-open ``(start, end)``
    wall-clock intervals; ``time(0)`` as an end means 24:00. A weekday missing from the mapping is
    closed. The default is 24x7. After construction ``weekly_hours`` is normalised to a read-only
    mapping holding all seven weekdays with sorted, merged intervals (overlapping or touching
    intervals are merged), so calendars compare by meaning. ``holidays`` are local dates.

    Raises ValueError for an unknown time zone, a weekday outside 0..6, an interval that is not a
    pair of naive ``time`` values with ``start < end`` (or ``end == time(0)``), or a holiday that is
    not a ``date`` (datetimes are refused).
    """

    timezone: str = "UTC"
    weekly_hours: Mapping[int, Sequence[tuple[time, time]]] = field(default_factory=_all_day, hash=False)
    holidays: frozenset[date] = frozenset()
    _spans: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False, hash=False)
    _daily: tuple[int, ...] = field(init=False, repr=False, compare=False, hash=False)
    _weekly: int = field(init=False, repr=False, compare=False, hash=False)
    _holiday_days: frozenset[int] = field(init=False, repr=False, compare=False, hash=False)
    _sorted_holidays: tuple[int, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_zone(self.timezone, "timezone")
        if not isinstance(self.weekly_hours, Mapping):
            raise ValueError("weekly_hours: expected a mapping of weekday (0=Monday) to intervals")
        for key in self.weekly_hours:
            if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= 6:
                raise ValueError(f"weekly_hours: weekday must be an int 0..6 (0=Monday), got {key!r}")
        spans: list[tuple[tuple[int, int], ...]] = []
        for weekday in range(7):
            raw = self.weekly_hours.get(weekday, ())
            if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
                raise ValueError(f"weekly_hours[{weekday}]: expected a sequence of (start, end) pairs")
            intervals: list[tuple[int, int]] = []
            for index, pair in enumerate(raw):
                what = f"weekly_hours[{weekday}][{index}]"
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise ValueError(f"{what}: expected a (start, end) pair of times, got {pair!r}")
                start, end = pair
                for value in (start, end):
                    if not isinstance(value, time) or value.tzinfo is not None:
                        raise ValueError(f"{what}: expected naive datetime.time values, got {value!r}")
                start_us = _time_us(start)
                end_us = _time_us(end) or _DAY
                if end_us <= start_us:
                    raise ValueError(f"{what}: end {end} is not after start {start} (intervals do not wrap midnight)")
                intervals.append((start_us, end_us))
            spans.append(_merge(intervals))
        holiday_set = frozenset(self.holidays)
        for day in holiday_set:
            if isinstance(day, datetime) or not isinstance(day, date):
                raise ValueError(f"holidays: expected dates, got {day!r}")
        normalised = {
            weekday: tuple((_us_time(start), _us_time(end)) for start, end in spans[weekday]) for weekday in range(7)
        }
        daily = tuple(sum(end - start for start, end in day_spans) for day_spans in spans)
        ordinals = frozenset(day.toordinal() for day in holiday_set)
        object.__setattr__(self, "weekly_hours", MappingProxyType(normalised))
        object.__setattr__(self, "holidays", holiday_set)
        object.__setattr__(self, "_spans", tuple(spans))
        object.__setattr__(self, "_daily", daily)
        object.__setattr__(self, "_weekly", sum(daily))
        object.__setattr__(self, "_holiday_days", ordinals)
        object.__setattr__(self, "_sorted_holidays", tuple(sorted(ordinals)))

    # -- construction and serialisation ---------------------------------------------------

    @classmethod
    def always(cls) -> BusinessCalendar:
        """The 24x7 calendar in UTC: business time is plain elapsed time."""
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """Build a calendar from its JSON form, e.g.
        ``{"timezone": "Europe/Berlin", "hours": {"mon": [["08:00", "18:00"]]}, "holidays": ["2026-12-25"]}``.

        Every key is optional: the zone defaults to UTC, a missing ``"hours"`` means 24x7, and when
        ``"hours"`` is given a day not listed is closed. Times are "HH:MM" (seconds allowed) and
        "24:00" may end an interval. Raises CalendarInvalid (a ValueError) naming the offending key
        (``"timezone"``, ``"hours.xyz"``, ``"hours.mon[0]"``, ``"holidays[2]"``, or an unknown
        top-level key).

        A calendar read here may still have no business hours at all (``{"hours": {}}``): it parses,
        so stored rows always load, but no clock under it ever falls due. Whoever accepts a calendar
        for clocks to run under checks :meth:`require_business_hours` too.
        """
        if not isinstance(data, Mapping):
            raise CalendarInvalid("", f"expected a mapping, got {type(data).__name__}")
        for key in data:
            if key not in ("timezone", "hours", "holidays"):
                raise CalendarInvalid("", f"unknown key {key!r} (expected timezone, hours, holidays)")
        zone = _check_zone(data.get("timezone", "UTC"), "timezone")
        hours = data.get("hours")
        weekly: dict[int, list[tuple[time, time]]] = {}
        if hours is None:
            weekly = {weekday: [(time(0), time(0))] for weekday in range(7)}
        elif not isinstance(hours, Mapping):
            raise CalendarInvalid("hours", "expected a mapping of day name (mon..sun) to [[start, end], ...]")
        else:
            for name, intervals in hours.items():
                day_name = name.lower() if isinstance(name, str) else name
                if day_name not in _DAY_NAMES:
                    raise CalendarInvalid(f"hours.{name}", f"unknown day (expected one of {', '.join(_DAY_NAMES)})")
                if isinstance(intervals, (str, bytes)) or not isinstance(intervals, Sequence):
                    raise CalendarInvalid(f"hours.{name}", "expected a list of [start, end] pairs")
                bucket = weekly.setdefault(_DAY_NAMES.index(day_name), [])
                for index, pair in enumerate(intervals):
                    what = f"hours.{name}[{index}]"
                    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                        raise CalendarInvalid(what, f"expected [start, end], got {pair!r}")
                    start = _parse_clock(pair[0], what, end=False)
                    end = _parse_clock(pair[1], what, end=True)
                    if end <= start:
                        raise CalendarInvalid(what, f"end {pair[1]} is not after start {pair[0]}")
                    bucket.append((_us_time(start), _us_time(end)))
        raw_holidays = data.get("holidays", ())
        if isinstance(raw_holidays, (str, bytes)) or not isinstance(raw_holidays, Sequence):
            raise CalendarInvalid("holidays", "expected a list of ISO dates 'YYYY-MM-DD'")
        days: set[date] = set()
        for index, text in enumerate(raw_holidays):
            try:
                if not isinstance(text, str):
                    raise TypeError
                days.add(date.fromisoformat(text))
            except (TypeError, ValueError) as exc:
                raise CalendarInvalid(f"holidays[{index}]", f"expected an ISO date 'YYYY-MM-DD', got {text!r}") from exc
        return cls(timezone=zone, weekly_hours=weekly, holidays=frozenset(days))

    def require_business_hours(self) -> None:
        """Raise CalendarInvalid (key ``"hours"``) if no weekday has any business hours, so that
        business time never elapses and no clock under this calendar could ever fall due."""
        if self._weekly == 0:
            raise CalendarInvalid("hours", NO_BUSINESS_HOURS)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form read by :meth:`from_dict` (closed days are omitted from ``"hours"``)."""
        return {
            "timezone": self.timezone,
            "hours": {
                _DAY_NAMES[weekday]: [[_format_clock(start), _format_clock(end)] for start, end in self._spans[weekday]]
                for weekday in range(7)
                if self._spans[weekday]
            },
            "holidays": sorted(day.isoformat() for day in self.holidays),
        }

    # -- public queries --------------------------------------------------------------------

    def is_business_time(self, at: datetime) -> bool:
        """Whether the instant ``at`` is business time. Raises ValueError for a naive datetime."""
        us = _to_us(_require_aware(at, "at"))
        return self._measure(us, us + 1) == 1

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Business seconds between two instants: 0 if ``end <= start``. Exact to the microsecond
        and additive: ``bs(a, c) == bs(a, b) + bs(b, c)`` for ``a <= b <= c``.

        Cost grows with the number of UTC offset changes and holidays in the span, not its length.
        Raises ValueError for naive datetimes or instants outside the supported years.
        """
        first = _to_us(_require_aware(start, "start"))
        last = _to_us(_require_aware(end, "end"))
        return self._measure(first, last) / _US

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The instant (aware, UTC) at which ``seconds`` of business time have elapsed after ``start``.

        For ``seconds > 0`` this is the *earliest* such instant, so time used up exactly at closing
        time lands on the closing instant, not on the next opening. For ``seconds == 0`` it is
        ``start`` if ``start`` is business time, else the next opening (the next business instant).
        Either way ``business_seconds(start, result) == seconds`` (to the microsecond).

        Raises ValueError for a naive ``start``, a negative or non-finite ``seconds``, a calendar
        with no business hours at all, or a result beyond the supported years.
        """
        first = _to_us(_require_aware(start, "start"))
        need = round(_check_seconds(seconds, "seconds") * _US)
        self.require_business_hours()
        return _from_us(self._advance(first, need) if need else self._next_open(first))

    # -- internals on the microsecond scale ---------------------------------------------------

    def _pieces_from(self, first: int) -> Iterator[tuple[int, int, int]]:
        """Consecutive UTC spans ``(begin, end, offset)`` of constant UTC offset from ``first`` on."""
        year = _year_of(first)
        while True:
            if not _MIN_YEAR <= year <= _MAX_YEAR:
                raise ValueError(f"instant outside the supported years {_MIN_YEAR}..{_MAX_YEAR}")
            table = _year_offsets(self.timezone, year)
            year_end = _year_start(year + 1)
            for index, (begin, offset) in enumerate(table):
                end = table[index + 1][0] if index + 1 < len(table) else year_end
                if end > first:
                    yield max(begin, first), end, offset
            year += 1

    def _measure(self, first: int, last: int) -> int:
        """Business microseconds in the UTC span [first, last)."""
        total = 0
        if last <= first:
            return total
        for begin, end, offset in self._pieces_from(first):
            if begin >= last:
                break
            total += self._wall_measure(begin + offset, min(end, last) + offset)
        return total

    def _advance(self, first: int, need: int) -> int:
        """Earliest UTC instant ``x`` with business microseconds in [first, x) == need (need > 0)."""
        remaining = need
        for begin, end, offset in self._pieces_from(first):
            point, used = self._wall_advance(begin + offset, end + offset, remaining)
            if point is not None:
                return point - offset
            remaining -= used
        raise AssertionError("unreachable: _pieces_from is endless")

    def _next_open(self, first: int) -> int:
        """The first business instant at or after ``first``."""
        for begin, end, offset in self._pieces_from(first):
            point = self._wall_next_open(begin + offset, end + offset)
            if point is not None:
                return point - offset
        raise AssertionError("unreachable: _pieces_from is endless")

    def _day_measure(self, day: int, low: int, high: int) -> int:
        """Business microseconds of local day ``day`` (ordinal) between wall offsets low and high."""
        if day in self._holiday_days:
            return 0
        total = 0
        for start, end in self._spans[(day - 1) % 7]:
            if end <= low:
                continue
            if start >= high:
                break
            total += min(end, high) - max(start, low)
        return total

    def _full_days(self, first_day: int, end_day: int) -> int:
        """Business microseconds of the whole local days first_day .. end_day - 1."""
        if end_day <= first_day:
            return 0
        weeks, rest = divmod(end_day - first_day, 7)
        total = weeks * self._weekly
        weekday = (first_day - 1) % 7
        for step in range(rest):
            total += self._daily[(weekday + step) % 7]
        low = bisect_left(self._sorted_holidays, first_day)
        high = bisect_left(self._sorted_holidays, end_day)
        for day in self._sorted_holidays[low:high]:
            total -= self._daily[(day - 1) % 7]
        return total

    def _wall_measure(self, low: int, high: int) -> int:
        """Business microseconds on the wall-clock scale in [low, high)."""
        if high <= low:
            return 0
        first_day, first_rest = divmod(low, _DAY)
        last_day, last_rest = divmod(high, _DAY)
        if first_day == last_day:
            return self._day_measure(first_day, first_rest, last_rest)
        total = self._day_measure(first_day, first_rest, _DAY) + self._full_days(first_day + 1, last_day)
        if last_rest:
            total += self._day_measure(last_day, 0, last_rest)
        return total

    def _wall_advance(self, low: int, high: int, need: int) -> tuple[int | None, int]:
        """The earliest wall point p in [low, high] with business(low, p) == need (need > 0), and
        ``need``; or ``(None, business(low, high))`` when the range holds less than ``need``."""
        remaining = need
        day = low // _DAY
        while day * _DAY < high:
            base = day * _DAY
            lo = max(low - base, 0)
            hi = min(high - base, _DAY)
            if lo == 0 and remaining > self._weekly and base + 7 * _DAY <= high:
                remaining -= self._full_days(day, day + 7)  # a whole week cannot hold the rest
                day += 7
                continue
            if day not in self._holiday_days:
                for start, end in self._spans[(day - 1) % 7]:
                    if end <= lo:
                        continue
                    if start >= hi:
                        break
                    begin = max(start, lo)
                    length = min(end, hi) - begin
                    if length >= remaining:
                        return base + begin + remaining, need
                    remaining -= length
            day += 1
        return None, need - remaining

    def _wall_next_open(self, low: int, high: int) -> int | None:
        """The first business wall point in [low, high), or None."""
        day = low // _DAY
        while day * _DAY < high:
            base = day * _DAY
            lo = max(low - base, 0)
            hi = min(high - base, _DAY)
            if day not in self._holiday_days:
                for start, end in self._spans[(day - 1) % 7]:
                    if end <= lo:
                        continue
                    if start >= hi:
                        break
                    return base + max(start, lo)
            day += 1
        return None


# --------------------------------------------------------------------------------------------
# SLA clocks


@dataclass(frozen=True)
class SlaTarget:
    """One SLA target: a clock name (``"response"``, ``"resolution"``) and its business seconds.

    Raises ValueError for an empty name or a negative or non-finite number of seconds.
    """

    name: str
    seconds: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"SlaTarget.name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "seconds", _check_seconds(self.seconds, f"SlaTarget({self.name!r}).seconds"))


@dataclass(frozen=True)
class ClockEvent:
    """Something that happened to a record's SLA clocks, at an aware instant.

    ``kind`` is one of:

    * ``"start"``: the clocks start running; ``targets`` names each clock and its target seconds.
    * ``"pause"`` / ``"resume"``: stop / restart counting for every clock (idempotent).
    * ``"priority"``: ``targets`` replaces the target of each named clock, measured from the
      record's start (elapsed time is kept). Stopped clocks keep their target. A clock already
      breached stays breached (see the module doc). A name not seen
      before becomes a clock whose elapsed time counts from the record's start.
    * ``"stop"``: the clocks in ``clocks`` (None = all) stop for good; unknown names are ignored.
      ``cancelled``: the stop is the record's cancellation (see the module doc).
    * ``"breach"``: the clocks in ``clocks`` (a non-empty set) breached at ``at``, a recorded fact
      (see the module doc); clocks stopped before, and unknown names, are ignored.
    * ``"measured"``: ``targets`` names clocks stopped by ``at`` and the business seconds each had
      elapsed when it stopped, a recorded fact (see the module doc); other names are ignored.

    ``targets`` is stored as a read-only copy and ``clocks`` as a frozenset.
    Raises ValueError for a naive ``at``, an unknown kind, a start/priority event without targets,
    a negative or non-finite target, targets on other kinds, ``clocks`` on an event that is not a
    stop or a breach (a breach without clocks), or ``cancelled`` on a non-stop event.
    """

    at: datetime
    kind: str
    targets: Mapping[str, float] | None = field(default=None, hash=False)
    clocks: frozenset[str] | None = None
    cancelled: bool = False

    def __post_init__(self) -> None:
        _require_aware(self.at, "ClockEvent.at")
        if self.kind not in _KINDS:
            raise ValueError(f"ClockEvent.kind must be one of {sorted(_KINDS)}, got {self.kind!r}")
        if self.kind in ("start", "priority", "measured"):
            if not isinstance(self.targets, Mapping):
                raise ValueError(f"a {self.kind!r} event needs targets: a mapping of clock name to seconds")
            checked: dict[str, float] = {}
            for name, seconds in self.targets.items():
                if not isinstance(name, str) or not name:
                    raise ValueError(f"ClockEvent.targets: clock names must be non-empty strings, got {name!r}")
                checked[name] = _check_seconds(seconds, f"ClockEvent.targets[{name!r}]")
            object.__setattr__(self, "targets", MappingProxyType(checked))
        elif self.targets is not None:
            raise ValueError(f"only start, priority and measured events carry targets, not {self.kind!r}")
        if self.clocks is not None:
            if self.kind not in ("stop", "breach"):
                raise ValueError(f"only stop and breach events name clocks, not {self.kind!r}")
            if isinstance(self.clocks, str) or not isinstance(self.clocks, Iterable):
                raise ValueError(f"ClockEvent.clocks must be a set of clock names, got {self.clocks!r}")
            object.__setattr__(self, "clocks", frozenset(self.clocks))
        if self.kind == "breach" and not self.clocks:
            raise ValueError("a 'breach' event names the clocks that breached")
        if not isinstance(self.cancelled, bool):
            raise ValueError(f"ClockEvent.cancelled must be true or false, got {self.cancelled!r}")
        if self.cancelled and self.kind != "stop":
            raise ValueError(f"only stop events cancel, not {self.kind!r}")


@dataclass(frozen=True)
class ClockState:
    """One clock as of ``now`` (all datetimes aware UTC, all durations business seconds).

    ``state`` is "running", "paused", "met" (stopped within target), "cancelled" (stopped within
    target by the record's cancellation) or "breached" (elapsed exceeds the target in effect,
    or exceeded an earlier target before a priority change replaced it, whether running, paused
    or stopped; also when cancelled after that). ``due_at`` is the
    instant a running clock breaches if it keeps running (the past ``breached_at`` if already breached; None while
    paused or stopped). ``warning_at`` is the earliest instant a running clock's elapsed reaches
    ``warning_ratio * target`` (None if already reached, paused or stopped). ``breached_at`` is the
    first instant after which elapsed exceeded the target, from the elapsed history (may precede
    the priority change that caused it). ``warning_reached_at`` is, likewise from the history, the
    first instant at which elapsed reached ``warning_ratio * target`` (None if it has not): a
    running clock has exactly one of ``warning_at`` (to come) and ``warning_reached_at`` (past).
    ``cancelled_at`` is the instant the record's cancellation stopped the clock (None when it did
    not: not stopped, or stopped before); its state is then "cancelled" or "breached".
    """

    name: str
    target_seconds: float
    elapsed_seconds: float
    paused_seconds: float
    due_at: datetime | None
    state: str
    warning_at: datetime | None
    stopped_at: datetime | None
    breached_at: datetime | None
    warning_reached_at: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def warning_shown_at(self) -> datetime | None:
        """When the warning is due or was reached: what pages and the API show as ``warning_at``."""
        return self.warning_at or self.warning_reached_at


def _history_measure(calendar: BusinessCalendar, spans: Sequence[tuple[int, int]], horizon: int) -> int:
    return sum(calendar._measure(begin, min(end, horizon)) for begin, end in spans if begin < horizon)


def _crossing(calendar: BusinessCalendar, running: Sequence[tuple[int, int]], horizon: int, target: int) -> int | None:
    """The first instant before ``horizon`` after which running business time exceeds ``target``."""
    counted = 0
    for begin, end in running:
        if begin >= horizon:
            break
        end = min(end, horizon)
        span = calendar._measure(begin, end)
        if counted + span > target:
            left = target - counted
            reached = calendar._advance(begin, left) if left else begin
            return calendar._next_open(reached)
        counted += span
    return None


def _reaching(calendar: BusinessCalendar, running: Sequence[tuple[int, int]], horizon: int, need: int) -> int | None:
    """The first instant before or at ``horizon`` at which running business time reaches ``need``."""
    counted = 0
    for begin, end in running:
        if begin > horizon:
            break
        if need <= counted:
            return begin
        end = min(end, horizon)
        span = calendar._measure(begin, end)
        if counted + span >= need:
            return calendar._advance(begin, need - counted)
        counted += span
    return None


def evaluate(
    events: Sequence[ClockEvent],
    calendar: BusinessCalendar,
    now: datetime,
    warning_ratio: float = 0.75,
) -> dict[str, ClockState]:
    """Replay a record's clock events up to ``now`` and return each clock's state by name.

    Events are applied in time order (a stable sort, so simultaneous events keep their given
    order); events after ``now`` have not happened yet and are ignored, so a clock that jumped
    back yields the state as of ``now`` (no clocks at all if ``now`` precedes the start). The
    first applied event must be the only ``"start"``. Clocks are returned in order of first
    appearance. See :class:`ClockEvent` and :class:`ClockState` for the rules.

    Raises ValueError for a naive ``now``, a ``warning_ratio`` outside [0, 1], an applied history
    that does not begin with ``"start"`` or has a second ``"start"``, or instants outside the
    supported years.
    """
    now_us = _to_us(_require_aware(now, "now"))
    if isinstance(warning_ratio, bool) or not isinstance(warning_ratio, (int, float)) or not 0 <= warning_ratio <= 1:
        raise ValueError(f"warning_ratio must be within [0, 1], got {warning_ratio!r}")
    for event in events:
        if not isinstance(event, ClockEvent):
            raise ValueError(f"events must be ClockEvent instances, got {event!r}")
    ordered = sorted(
        ((_to_us(event.at), index, event) for index, event in enumerate(events)), key=lambda item: item[:2]
    )
    applied = [(at, event) for at, _, event in ordered if at <= now_us]
    if not applied:
        return {}
    if applied[0][1].kind != "start":
        raise ValueError(
            f"the first event must be 'start', got {applied[0][1].kind!r} at {applied[0][1].at.isoformat()}"
        )

    targets: dict[str, int] = {}
    stopped: dict[str, int] = {}
    cancelled: set[str] = set()  # clocks whose (first) stop was the record's cancellation
    breaches: dict[str, int] = {}  # clocks that breached a target since replaced, or recorded as breached: when
    measured: dict[str, int] = {}  # stopped clocks whose elapsed time was recorded: the figure
    running: list[tuple[int, int]] = []
    paused_spans: list[tuple[int, int]] = []
    paused = False
    since = applied[0][0]
    started = False
    for at, event in applied:
        if event.kind == "start":
            if started:
                raise ValueError(f"a second 'start' event at {event.at.isoformat()}")
            started = True
            assert event.targets is not None
            targets.update({name: round(seconds * _US) for name, seconds in event.targets.items()})
        elif event.kind == "pause":
            if not paused:
                running.append((since, at))
                paused, since = True, at
        elif event.kind == "resume":
            if paused:
                paused_spans.append((since, at))
                paused, since = False, at
        elif event.kind == "priority":
            assert event.targets is not None
            so_far = running if paused else [*running, (since, at)]
            for name, seconds in event.targets.items():
                if name in stopped:
                    continue
                old = targets.get(name)
                if old is not None and name not in breaches and _history_measure(calendar, so_far, at) > old:
                    # a breach that happened stays one, whatever target comes next (see the module doc)
                    crossed = _crossing(calendar, so_far, at, old)
                    breaches[name] = at if crossed is None else crossed
                targets[name] = round(seconds * _US)
        elif event.kind == "measured":
            assert event.targets is not None
            for name, seconds in event.targets.items():
                if name in stopped:
                    measured[name] = round(seconds * _US)  # a recorded fact (see the module doc)
        elif event.kind == "breach":
            assert event.clocks is not None
            for name in event.clocks & targets.keys():
                if name not in stopped and (name not in breaches or at < breaches[name]):
                    breaches[name] = at  # a recorded fact (see the module doc)
        else:  # stop
            names = targets.keys() if event.clocks is None else event.clocks & targets.keys()
            for name in names:
                if name not in stopped:
                    stopped[name] = at
                    if event.cancelled:
                        cancelled.add(name)
    (paused_spans if paused else running).append((since, now_us))

    can_project = calendar._weekly > 0
    states: dict[str, ClockState] = {}
    for name, target in targets.items():
        stop_at = stopped.get(name)
        horizon = now_us if stop_at is None else stop_at
        elapsed = measured[name] if name in measured else _history_measure(calendar, running, horizon)
        paused_us = _history_measure(calendar, paused_spans, horizon)
        breached = _crossing(calendar, running, horizon, target) if elapsed > target else None
        if name in breaches and (breached is None or breaches[name] < breached):
            breached = breaches[name]
        over = elapsed > target or name in breaches
        threshold = round(warning_ratio * target)
        reached = _reaching(calendar, running, horizon, threshold) if elapsed >= threshold else None
        due: int | None = None
        warning: int | None = None
        if stop_at is not None:
            state = "breached" if over else ("cancelled" if name in cancelled else "met")
        else:
            state = "breached" if over else ("paused" if paused else "running")
            if not paused and can_project:
                if breached is not None:
                    due = breached
                else:
                    left = target - elapsed
                    due = calendar._next_open(calendar._advance(now_us, left) if left else now_us)
                if elapsed < threshold and not over:
                    warning = calendar._advance(now_us, threshold - elapsed)
        states[name] = ClockState(
            name=name,
            target_seconds=target / _US,
            elapsed_seconds=elapsed / _US,
            paused_seconds=paused_us / _US,
            due_at=None if due is None else _from_us(due),
            state=state,
            warning_at=None if warning is None else _from_us(warning),
            stopped_at=None if stop_at is None else _from_us(stop_at),
            breached_at=None if breached is None else _from_us(breached),
            warning_reached_at=None if reached is None else _from_us(reached),
            cancelled_at=_from_us(stop_at) if stop_at is not None and name in cancelled else None,
        )
    return states
