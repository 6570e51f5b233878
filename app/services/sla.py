"""SLA tracking: policies, per-record clock events, clock states, warnings, breaches, escalation.

A record's clocks are event-sourced: every start, pause, resume, priority change and stop is an
``sla_event`` row; ``app.services.sla_clock.evaluate`` replays them under the policy's business
calendar, and the result is kept in ``sla_clock`` (with the next instant worth checking) for
queries and for the sweep that raises warnings and breaches. A priority change recomputes the
targets from the record's start, not from now; paused time is kept exactly.

Targets and first response
--------------------------
The policy for (kind, priority, service) gives the targets, except that a catalog request's
resolution target is its item's ``target_hours`` (``record_terms``). The response clock stops at
the record's first response (``_response``): for incidents and problems when the status first
leaves its start value or staff first comment on it; for requests (``RESPONSE_BY_PEOPLE``) at the
first step done by someone other than the requester (an approval decision, the fulfilment) or the
first staff comment, never at submission, since the process may route a request on at once.

Cost per record change (``track``, run on every save of a record): at most four statements, all
prepared once at import and run as Core statements on the session's connection (the ORM's unit of
work costs several times the SQL here): a SELECT of the record's events (read once: new events are
appended to that list, not read back), one INSERT for the new events, a SELECT of its clock rows
(skipped for a record that had no events yet, which cannot have clock rows) and one INSERT or
UPDATE (executemany) for the clocks, skipped when no stored value changed. ``SlaClock`` objects
the session has already loaded are given the written values (``set_committed_value``), so they
agree with the database and are not written again by a flush. ``track`` does not flush the
session; ``refresh`` (the sweep) returns ORM objects and still flushes.

Cancelled and other given-up records
------------------------------------
Cancelling a record (status ``CANCELLED_STATUS``) closes it, and closing stops its clocks with a
``stop`` event whose reason is ``"status cancelled"`` (``CANCEL_REASON``), as every close's is
``"status <status>"``. That stored reason is what marks the stop as a give-up when the events are
replayed (``_replay``): events stored before cancelled clocks existed say the same, so they replay
the same way, and no column or migration is needed. A clock the give-up stops is "cancelled"
(``sla_clock.evaluate``: neither met nor breached, unless it breached before), in no compliance
figure (``compliance``), never warned or escalated, and never checked by the sweep again (no
``next_check_at``).

A record cancelled after it was resolved (resolved, then cancelled while its requester was still
to confirm, which closes it) gave nothing up: the resolution was delivered, and its clocks were
paused at it (a resolved status pauses them), so its resolution clock ends "met" or "breached"
as it stood at the resolution and counts in ``compliance`` and the reports like any closed
record's. Its stop's reason says so (``"status cancelled after resolution"``, ``AFTER_RESOLUTION``;
written when ``resolved_at`` is set at the close: a reopened record has none, so a record
reopened and then cancelled did give up), which is not a give-up's reason. A record cancelled
before any resolution ends "cancelled" as above. Records resolved and cancelled before this rule
keep the reason they were stored with, and so their "cancelled" clocks.

Which closing statuses are give-ups (``GIVE_UP_STATUSES``, by kind; only incidents, problems and
requests have clocks, ``TRACKED_KINDS``): ``cancelled`` for every kind, and a catalog request's
``rejected`` (its approver declined it: fulfilment was never owed, so the desk did not fail to
resolve it). Nothing else: incidents and problems end ``closed`` (a resolution, met or breached);
a change's ``rejected`` (CAB, the change manager, an approval window that ran out) and
``withdrawn`` would be give-ups too, but changes have no SLA clocks. A rejection is also the
approver's answer to the request (``RESPONSE_BY_PEOPLE``: an approval decision is its first
response), so it stops the response clock as a response, met or breached, before it gives up the
other clocks (``ANSWERING_GIVE_UPS``); a cancellation answers nobody.

Clock rows stored "met" by a give-up before these rules (the rows of records cancelled before
cancelled clocks existed, and of requests rejected before rejections were give-ups) keep that
state until they are stored again (``refresh``), and the sweep never stores them again (nothing
is owed). What is read from events (the record's page, the API) shows "cancelled" at once, and
``compliance`` counts such a row as cancelled (``_given_up_rows``: one more query, over the stop
events of the given-up records with a stored "met" clock), so no migration is needed.

A breach is a fact
------------------
A priority change re-targets the running and paused clocks, from the record's start; an SLA
escalation that raises the priority (``breach.raise_priority``) is one. A clock that had breached
when the change came stays "breached" (``sla_clock.evaluate``), also when the new target is
longer (a policy may give the higher priority a longer target, and lowering the priority by hand
is a re-target too): its breach stays recorded (``breached_at``, the first breach), stored and
counted in ``compliance``, and it is not escalated again; the clock shows the new target. A clock
re-targeted before it breached simply takes the new target, shorter or longer; when a longer one
puts its warning threshold ahead again, the warning it had is owed again when that comes.

The clocks are measured from the record's start under the calendar of the terms in force (a
retroactive start, as a re-attached SLA in ServiceNow). A priority (or service) change that
moves the record to a policy with another business calendar would therefore re-measure the time
before the change too: five Saturday hours are five on a 24x7 calendar and none on an office one.
A breach that happened under the old terms could vanish, and a response met within two office
hours across a weekend could turn "breached" under 24x7. Neither happens: before the change, what
the stored clock rows settled and the new terms would read otherwise is recorded as events
(``_keep_verdicts``), and the replay (``sla_clock``) holds to them under any later terms:

* each breach that had happened, as a ``breach`` event at its instant: the clocks stored
  "breached", or running past their stored due instant (nothing moves that instant between two
  stores, as every clock event stores the clocks). Such a clock, running, paused or stopped,
  stays "breached" with that first breach instant as ``breached_at`` (before the change, possibly
  a Saturday), in the record's clocks, the stored rows and ``compliance``; it is not escalated
  again (its row stays escalated); a breach is recorded once;
* the elapsed time of each clock stopped before the change, as a ``measured`` event: it keeps
  that figure, and so its verdict ("met" stays met), under any later calendar;
* a clock still running or paused is measured under the new terms from the record's start, and
  may breach at once (office hours to 24x7) or later: that is a new breach, escalated as any
  other. The targets follow the new priority as above; the service alone changes no target.

Nothing is recorded when the new terms read the clocks as stored (the same calendar).

The sweep records each breach it escalates the same way (``_record_breach``, with no audit entry
of its own: ``sla_breached`` says it), so a policy saved later with another calendar, which
applies to the running clocks from then on (``save_policy``), does not lift it either. Likewise
each clock that stops (answered, closed) records what it measured as a ``measured`` event with
its stop (``track``), so that such a policy edit does not re-measure it either: "met" stays met.
Records stopped before that rule have no such event; for them a later calendar edit of their
policy still re-reads a stopped clock.

Escalation that hands the record to a group
-------------------------------------------
A breach level with ``reassign_group`` sets the record's assignment group and moves its open work
with it (``TaskService.requeue``): each ready task of the record's process instance that waits in a
group queue (not one assigned to a person by name, such as the requester's confirmation) goes to
the new group's queue, and a claimant who is not a member of that group is released; each move
is audited (``task_requeued``, actor "sla").

The process's own variables (its priority, its assignment group) still hold the old values; the
next task a person works shows the record's (``RecordService.outside_changes``) and the step
continues from them, so its gateways route a raised P1 as a P1 and the work it opens goes to the
new group. An agent who then picks another value sets it on the record.

Reading and writing
-------------------
Only record changes (``track``) and the sweep store clocks, and only the sweep raises warnings
and breaches. Reading a record's clocks (``ticket_clocks``: the API and the record page) replays
its events in memory and writes nothing. A stored clock's ``next_check_at`` is ``now`` while a
warning or breach is owed, so no store between a threshold and the next sweep can skip it, and
its ``warning_at`` (like the one shown) is when the warning is or was due: it stays after the
warning fired.

Policy cache
------------
The terms in force for (kind, priority, service) are read on every record change, so they are
cached per application (one cache per ``Runtime``, i.e. per process and app) for
``POLICY_CACHE_SECONDS`` (monotonic time), including "no stored policy" answers:

* ``save_policy`` in this process invalidates the cache at once and again when its transaction
  ends (commit or rollback); until then the writing session reads policies from the database
  (its own, uncommitted change) and does not fill the cache. A lookup that started before an
  invalidation does not store its (possibly old) answer.
* Other processes (gunicorn workers, the scheduler) and writes to ``sla_policy`` that bypass
  ``save_policy`` are seen after at most ``POLICY_CACHE_SECONDS``: a changed policy may apply in
  another worker for up to that long. That is the price of not asking the database "did the
  policies change?" on every request (a version query would cost one statement per change,
  which is what the cache removes). ``POLICY_CACHE_SECONDS = 0`` disables the cache.

Business calendars are parsed once per distinct calendar (``BusinessCalendar`` is immutable).

Bad policies
------------
``save_policy`` refuses a policy it could not apply (``policy_problems``; the API's
``SlaPolicyIn`` checks the same shape first, with the same constants). Rows written before those
checks, or around them, may still hold anything, so the sweep trusts nothing it reads: an
escalation level whose stored settings are malformed is skipped (logged, and audited once as
``sla_escalation_skipped``; the clock counts as escalated, so it is not retried every few seconds),
and each record is swept in its own transaction, so a record that fails for any other reason
(say, a stored calendar that no longer parses) is rolled back and logged while the other records,
and the scheduler's later duties, still run.
"""

from __future__ import annotations

import copy
import html
import json
import logging
import re
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from time import monotonic
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import (
    Integer,
    Table,
    bindparam,
    event,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value

from app.db import begin_write
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.languages import Text
from app.models import (
    CatalogItem,
    Group,
    HumanTask,
    ProcessDefinition,
    ProcessInstance,
    Role,
    SlaClock,
    SlaEvent,
    SlaPolicy,
    TaskStatus,
    Ticket,
    User,
)

from . import policy
from .notifications import Person
from .sla_clock import DEFAULT_TARGETS, BusinessCalendar, CalendarInvalid, ClockEvent, ClockState, evaluate

if TYPE_CHECKING:
    from . import Services

TRACKED_KINDS = ("incident", "problem", "request")
DEFAULT_PAUSES = {"incident": ["pending"], "problem": [], "request": []}
#: Kinds whose response clock is stopped by a person, not by the status: the first record change
#: made by someone other than the requester (a catalog request's approval decision, its fulfilment)
#: or the first comment that answers it. A request's status leaves "submitted" when the process
#: routes it (an item without approval goes straight to fulfilment), which answers nobody.
RESPONSE_BY_PEOPLE = frozenset({"request"})
DEFAULT_ESCALATION: dict[str, Any] = {
    "warning": {"notify": ["assignee", "group"]},
    "breach": {"notify": ["assignee", "group", "group_manager"], "raise_priority": False, "reassign_group": None},
}
#: How a notice names each clock, in its reader's language.
CLOCK_WORDS = {"response": Text("response"), "resolution": Text("resolution")}

RAISE = {"P4": "P3", "P3": "P2", "P2": "P1", "P1": "P1"}
#: The status of a cancelled record (``RecordService.cancel``), and the reason of the stop event its
#: close writes (``track``: ``"status <status>"``), which marks that stop as a cancellation.
CANCELLED_STATUS = "cancelled"
CANCEL_REASON = f"status {CANCELLED_STATUS}"
#: The closing statuses that end a record's clocks as given up (see the module doc), by kind.
GIVE_UP_STATUSES: dict[str, frozenset[str]] = {
    "incident": frozenset({CANCELLED_STATUS}),
    "problem": frozenset({CANCELLED_STATUS}),
    "request": frozenset({CANCELLED_STATUS, "rejected"}),
}
#: Give-ups that are a person's answer to the record: they stop its response clock as a response
#: first (for the kinds whose response is a person's, ``RESPONSE_BY_PEOPLE``).
ANSWERING_GIVE_UPS = frozenset({"rejected"})
#: Added to the reason of a give-up's stop when the record was resolved (``resolved_at``) when it
#: came: such a stop is no give-up (the replay reads the status as "cancelled after resolution").
AFTER_RESOLUTION = " after resolution"
_GIVE_UP_REASONS = tuple(sorted({f"status {status}" for statuses in GIVE_UP_STATUSES.values() for status in statuses}))
#: The states a clock ends in; ``compliance`` counts met / (met + breached), never cancelled ones.
FINAL_STATES = ("met", "breached", "cancelled")
#: The priorities a policy may name (the records' P1-P4).
PRIORITIES = tuple(DEFAULT_TARGETS)
#: The recipients that are the record's owners: when they come to nobody, ``_recipients`` falls back.
OWNER_TARGETS = frozenset({"assignee", "group", "group_manager"})
NOTIFY_TARGETS = OWNER_TARGETS | {"requester"}
#: The escalation levels and the settings each takes (what ``_escalate`` reads).
ESCALATION_SETTINGS: dict[str, frozenset[str]] = {
    "warning": frozenset({"notify"}),
    "breach": frozenset({"notify", "raise_priority", "reassign_group"}),
}
_REASSIGNING_LEVELS = tuple(level for level, keys in ESCALATION_SETTINGS.items() if "reassign_group" in keys)
#: Bounds of a policy's targets, in seconds (response within resolution).
MIN_TARGET_SECONDS = 60
MAX_RESPONSE_SECONDS = 365 * 86400
MAX_RESOLUTION_SECONDS = 5 * 365 * 86400
#: Length of a group name (``Group.name``).
MAX_GROUP_NAME = 128

log = logging.getLogger(__name__)

#: How long (monotonic seconds) a process trusts its cached policy lookups; see the module doc.
#: How long a record whose sweep failed (bad stored data) waits before the sweep tries it again.
SWEEP_RETRY = timedelta(minutes=15)

POLICY_CACHE_SECONDS = 5.0
_POLICY_CACHE_ENTRIES = 1024
#: session.info key: the policy cache of a session that wrote a policy not committed yet.
_POLICY_WRITES = "sla_policy_writes"


# -- policy cache -----------------------------------------------------------------------------------------


class _StoredPolicy(NamedTuple):
    """The columns of one policy row that ``terms`` needs, detached from any session."""

    id: int
    response_seconds: int
    resolution_seconds: int
    calendar: dict[str, Any]
    pause_statuses: tuple[Any, ...]
    warning_ratio: float
    escalation: dict[str, Any] | None

    @classmethod
    def of(cls, row: SlaPolicy) -> _StoredPolicy:
        return cls(row.id, row.response_seconds, row.resolution_seconds, copy.deepcopy(row.calendar or {}),
                   tuple(row.pause_statuses or ()), row.warning_ratio,
                   copy.deepcopy(row.escalation) if row.escalation else None)


_PolicyKey = tuple[str, str, str]


class _PolicyCache:
    """(kind, priority, service) -> the policy in force (or None), per application; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[_PolicyKey, tuple[float, _StoredPolicy | None]] = {}
        self.generation = 0

    def get(self, key: _PolicyKey) -> tuple[bool, _StoredPolicy | None]:
        found = self._entries.get(key)
        if found is None or found[0] <= monotonic():
            return False, None
        return True, found[1]

    def put(self, key: _PolicyKey, value: _StoredPolicy | None, generation: int, ttl: float) -> None:
        with self._lock:
            if generation != self.generation:
                return  # invalidated while the lookup ran: its answer may be old
            if len(self._entries) >= _POLICY_CACHE_ENTRIES:
                self._entries.clear()
            self._entries[key] = (monotonic() + ttl, value)

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


_CACHES: dict[int, tuple[weakref.ref[Any], _PolicyCache]] = {}
_CACHES_LOCK = threading.Lock()


def _policy_cache(owner: object) -> _PolicyCache:
    """The cache of one application (its ``Runtime``); dropped with it."""
    key = id(owner)
    found = _CACHES.get(key)
    if found is not None and found[0]() is owner:
        return found[1]
    with _CACHES_LOCK:
        found = _CACHES.get(key)
        if found is not None and found[0]() is owner:
            return found[1]
        cache = _PolicyCache()
        _CACHES[key] = (weakref.ref(owner, lambda _ref: _CACHES.pop(key, None)), cache)
        return cache


def _policy_transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    """After a session that saved policies commits or rolls back: invalidate once more."""
    if transaction.parent is None:
        cache = session.info.pop(_POLICY_WRITES, None)
        if cache is not None:
            cache.invalidate()


def may_write_policies(user: User) -> bool:
    """Whether ``user`` saves and deletes SLA policies: process owners and admins."""
    return user.has_role(Role.ADMIN, Role.PROCESS_OWNER)


@lru_cache(maxsize=256)
def _parse_calendar(text: str) -> BusinessCalendar:
    return BusinessCalendar.from_dict(json.loads(text))


def calendar_of(data: Mapping[str, Any] | None) -> BusinessCalendar:
    """``BusinessCalendar.from_dict(data or {})``, parsed once per distinct calendar."""
    return _parse_calendar(json.dumps(data or {}))


def _plain_text(value: object, max_length: int) -> bool:
    """A non-empty string of at most ``max_length`` characters without control characters."""
    return (isinstance(value, str) and 0 < len(value) <= max_length
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in value))


def _target(value: object, maximum: int) -> bool:
    return type(value) is int and MIN_TARGET_SECONDS <= value <= maximum


def escalation_problems(escalation: object, levels: Sequence[str] | None = None) -> dict[str, list[str]]:
    """What is wrong with an escalation setting, by dotted field name (``{}``: nothing).

    Checks the shape only (no queries): ``levels`` (default: all, and then unknown levels are
    named too) are each absent, null or an object of their known settings: ``notify`` a list of
    distinct recipient kinds, ``raise_priority`` a boolean, ``reassign_group`` null or a group
    name. Works on anything, including rows stored before these checks existed.
    """
    if not isinstance(escalation, Mapping):
        return {"escalation": ["must be an object"]}
    problems: dict[str, list[str]] = {}
    if levels is None:
        levels = list(ESCALATION_SETTINGS)
        for level in sorted(str(key) for key in escalation if key not in ESCALATION_SETTINGS):
            problems[f"escalation.{level}"] = [f"unknown escalation level: one of {', '.join(ESCALATION_SETTINGS)}"]
    for level in levels:
        rules = escalation.get(level)
        where = f"escalation.{level}"
        if rules is None:
            continue
        if not isinstance(rules, Mapping):
            problems[where] = ["must be an object"]
            continue
        for key in sorted(str(key) for key in rules if key not in ESCALATION_SETTINGS[level]):
            problems[f"{where}.{key}"] = [f"unknown setting: one of {', '.join(sorted(ESCALATION_SETTINGS[level]))}"]
        notify = rules.get("notify", [])
        if (not isinstance(notify, list) or not all(isinstance(t, str) and t in NOTIFY_TARGETS for t in notify)
                or len(set(notify)) != len(notify)):
            problems[f"{where}.notify"] = [f"a list of distinct recipients, each one of: {', '.join(sorted(NOTIFY_TARGETS))}"]
        if "raise_priority" in rules and not isinstance(rules["raise_priority"], bool):
            problems[f"{where}.raise_priority"] = ["must be true or false"]
        group = rules.get("reassign_group")
        if group is not None and not _plain_text(group, MAX_GROUP_NAME):
            problems[f"{where}.reassign_group"] = [f"a group name (at most {MAX_GROUP_NAME} characters) or null"]
    return problems


def calendar_problems(calendar: object) -> dict[str, list[str]]:
    """What is wrong with a policy's calendar, by dotted field name (``calendar.hours``,
    ``calendar.hours.mon[0]``, ``calendar.holidays[2]``, ``calendar.timezone``; ``calendar`` for
    the whole): the clocks' own checks (``BusinessCalendar.from_dict``, then
    ``require_business_hours``, as ``add_business_seconds`` refuses a calendar without hours),
    so what is saved is what the clocks can run under."""
    if not isinstance(calendar, Mapping):
        return {"calendar": ["must be an object"]}
    try:
        BusinessCalendar.from_dict(calendar).require_business_hours()
    except CalendarInvalid as err:
        return {f"calendar.{err.key}" if err.key else "calendar": [err.problem]}
    except ValueError as err:
        return {"calendar": [str(err)]}
    return {}


def policy_problems(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a policy as ``save_policy`` takes it, by dotted field name; shape
    only (whether a named group exists is the service's question)."""
    problems: dict[str, list[str]] = {}
    if values.get("kind") not in TRACKED_KINDS:
        problems["kind"] = [f"one of: {', '.join(TRACKED_KINDS)}"]
    if values.get("priority") not in PRIORITIES:
        problems["priority"] = [f"one of: {', '.join(PRIORITIES)}"]
    service = values.get("service") or ""
    if service and not _plain_text(service, 255):
        problems["service"] = ["at most 255 characters, no control characters"]
    response, resolution = values.get("response_seconds"), values.get("resolution_seconds")
    if not _target(response, MAX_RESPONSE_SECONDS):
        problems["response_seconds"] = [f"whole seconds from {MIN_TARGET_SECONDS} to {MAX_RESPONSE_SECONDS}"]
    if not _target(resolution, MAX_RESOLUTION_SECONDS):
        problems["resolution_seconds"] = [f"whole seconds from {MIN_TARGET_SECONDS} to {MAX_RESOLUTION_SECONDS}"]
    elif "response_seconds" not in problems and cast(int, response) > cast(int, resolution):
        problems["response_seconds"] = ["must not exceed resolution_seconds"]
    ratio = values.get("warning_ratio", 0.75)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.05 <= ratio <= 0.99:
        problems["warning_ratio"] = ["a number from 0.05 to 0.99"]
    pauses = values.get("pause_statuses") or []
    if not isinstance(pauses, list | tuple) or not all(_plain_text(p, 64) for p in pauses):
        problems["pause_statuses"] = ["a list of statuses (at most 64 characters each)"]
    problems.update(calendar_problems(values.get("calendar") or {}))
    escalation = values.get("escalation")
    if escalation is not None:
        problems.update(escalation_problems(escalation))
    return problems


class _Event(NamedTuple):
    """One stored clock event, as the replay needs it."""

    at: datetime
    kind: str
    targets: dict[str, Any] | None
    clocks: list[Any] | None
    reason: str | None = None


def _given_up(kind: str, event: _Event) -> str | None:
    """The give-up status whose close stopped the clocks with ``event`` (None: not a give-up)."""
    if event.kind != "stop" or not event.reason or not event.reason.startswith("status "):
        return None
    status = event.reason.removeprefix("status ")
    return status if status in GIVE_UP_STATUSES.get(kind, ()) else None


def _replay(kind: str, events: Iterable[_Event]) -> list[ClockEvent]:
    """A record's stored events as ``sla_clock.evaluate`` takes them: a give-up's stop cancels the
    clocks it stops, after stopping the response clock as answered when the give-up is a
    person's answer (see the module doc)."""
    replay: list[ClockEvent] = []
    for e in events:
        status = _given_up(kind, e)
        clocks = frozenset(e.clocks) if e.clocks is not None else None
        if status in ANSWERING_GIVE_UPS and kind in RESPONSE_BY_PEOPLE:
            replay.append(ClockEvent(at=e.at, kind="stop", clocks=frozenset({"response"})))
        replay.append(ClockEvent(at=e.at, kind=e.kind, targets=e.targets, clocks=clocks, cancelled=status is not None))
    return replay


def _first_stop_cancels(replay: Sequence[ClockEvent], name: str) -> bool:
    """Whether the first stop of clock ``name`` among the stops ``replay`` is a give-up's (in the
    order ``sla_clock.evaluate`` applies them: by instant, then as given)."""
    for stop in sorted(replay, key=lambda e: e.at):  # stable: simultaneous events keep their order
        if stop.kind == "stop" and (stop.clocks is None or name in stop.clocks):
            return stop.cancelled
    return False


class _Clock(NamedTuple):
    """A stored clock row as ``track`` reads it (no ORM object), with the session's object for it
    when one is loaded, whose in-memory values then count."""

    id: int
    warned: bool
    escalated: bool
    values: dict[str, Any]
    loaded: SlaClock | None


# Built once: building a statement and its cache key costs more than running it on SQLite. The
# tracking path uses Core statements on the session's connection: events are never changed once
# written, and clock rows are written with their ORM objects (if loaded) kept in step by hand.
# A unit-of-work flush of one row costs several times its INSERT or UPDATE.
_EVENT_TABLE = cast(Table, SlaEvent.__table__)
_CLOCK_TABLE = cast(Table, SlaClock.__table__)
_CLOCK_VALUES = ("policy_id", "target_seconds", "elapsed_seconds", "paused_seconds", "state", "due_at", "warning_at",
                 "breached_at", "evaluated_at", "next_check_at")
_SELECT_EVENTS = (select(_EVENT_TABLE.c.at, _EVENT_TABLE.c.kind, _EVENT_TABLE.c.targets, _EVENT_TABLE.c.clocks,
                          _EVENT_TABLE.c.reason)
                  .where(_EVENT_TABLE.c.ticket_id == bindparam("ticket_id")).order_by(_EVENT_TABLE.c.id))
_INSERT_EVENT = _EVENT_TABLE.insert()
_CLOCK_FIELDS = ("name", "warned", "escalated", *_CLOCK_VALUES)
_EVENT_PART, _CLOCK_PART = 0, 1
#: What ``track`` reads, in one statement: a record's events (in order), then its clock rows.
#: The first SELECT types the columns for both (its placeholders carry the clock columns' types).
_EVENTS_THEN_CLOCKS = union_all(
    select(literal_column(str(_EVENT_PART), Integer).label("part"), _EVENT_TABLE.c.id.label("row_id"),
           _EVENT_TABLE.c.at, _EVENT_TABLE.c.kind, _EVENT_TABLE.c.targets, _EVENT_TABLE.c.clocks,
           _EVENT_TABLE.c.reason, *(type_coerce(null(), _CLOCK_TABLE.c[name].type).label(name) for name in _CLOCK_FIELDS))
    .where(_EVENT_TABLE.c.ticket_id == bindparam("ticket_id")),
    select(literal_column(str(_CLOCK_PART), Integer), _CLOCK_TABLE.c.id, null(), null(), null(), null(), null(),
           *(_CLOCK_TABLE.c[name] for name in _CLOCK_FIELDS))
    .where(_CLOCK_TABLE.c.ticket_id == bindparam("ticket_id")),
).order_by(literal_column("part"), literal_column("row_id"))
_SELECT_CLOCK_OBJECTS = select(SlaClock).where(SlaClock.ticket_id == bindparam("ticket_id"))
_INSERT_CLOCK = _CLOCK_TABLE.insert()
_UPDATE_CLOCK = (_CLOCK_TABLE.update().where(_CLOCK_TABLE.c.id == bindparam("clock_id"))
                 .values({name: bindparam(name) for name in ("warned", *_CLOCK_VALUES)}))


def _stopped(events: Sequence[_Event], name: str) -> bool:
    """Whether a stop among ``events`` stopped clock ``name`` (a stop naming no clocks stops all)."""
    return any(e.kind == "stop" and (e.clocks is None or name in e.clocks) for e in events)


def _recorded_breaches(clocks: Mapping[str, Mapping[str, Any]], events: Sequence[_Event],
                       now: datetime) -> dict[str, datetime]:
    """The clocks whose stored row (``clocks``: its ``_CLOCK_VALUES`` by clock name) says they had
    breached by ``now``, and when, without a ``breach`` event among ``events`` yet: stored
    "breached" (at its ``breached_at``), or stored running with a due instant now past (it breached
    then: every clock event stores the clocks again, so nothing moved that instant since).
    See "A breach is a fact" in the module doc."""
    known = {str(name) for e in events if e.kind == "breach" for name in e.clocks or ()}
    found: dict[str, datetime] = {}
    for name, values in clocks.items():
        if name in known:
            continue
        if values.get("state") == "breached" and values.get("breached_at") is not None:
            found[name] = values["breached_at"]
        elif values.get("state") == "running" and values.get("due_at") is not None and values["due_at"] < now:
            found[name] = values["due_at"]
    return found


def _warning_to_come(state: ClockState) -> bool:
    """A running or paused clock that has not reached its warning threshold (under its target now:
    a priority change may have given it a longer one since it was warned)."""
    return state.state in ("running", "paused") and state.warning_reached_at is None


def _warning_due(state: ClockState, warned: bool) -> bool:
    """A running clock whose warning threshold has been reached and that was not warned yet."""
    return state.state == "running" and not warned and state.warning_reached_at is not None


def _clock_values(state: ClockState, warned: bool, escalated: bool, policy_id: int | None, now: datetime) -> dict[str, Any]:
    """What a clock row stores for ``state`` evaluated at ``now`` (in ``_CLOCK_VALUES`` order).

    ``warning_at`` is when the warning is or was due (it stays once reached). ``next_check_at``
    is the next instant the sweep has work for the clock: its warning or its due time, or ``now``
    when a warning or a breach is owed already, which is what keeps any store between a
    threshold and the next sweep (a record change) from moving the warning past the sweep. A
    clock stopped by the record's cancellation has no next check: nothing is owed for it.
    """
    checks = [t for t in (None if warned else state.warning_at, None if escalated else state.due_at) if t]
    if (state.state == "breached" and not escalated) or _warning_due(state, warned):
        checks.append(now)
    return {"policy_id": policy_id, "target_seconds": state.target_seconds, "elapsed_seconds": state.elapsed_seconds,
            "paused_seconds": state.paused_seconds, "state": state.state, "due_at": state.due_at,
            "warning_at": state.warning_shown_at, "breached_at": state.breached_at,
            "evaluated_at": now,
            "next_check_at": min(checks) if checks and state.state in ("running", "breached")
            and state.cancelled_at is None else None}


def _clock_dict(state: ClockState, warning_ratio: float) -> dict[str, Any]:
    """A clock as the API and the pages show it (``warning_at``: when the warning is or was due;
    ``warning_seconds``: the elapsed time at which the policy warns, its ``warning_ratio`` of the
    target)."""
    return {"name": state.name, "target_seconds": state.target_seconds, "elapsed_seconds": state.elapsed_seconds,
            "warning_seconds": round(state.target_seconds * warning_ratio), "paused_seconds": state.paused_seconds,
            "due_at": state.due_at,
            "warning_at": state.warning_shown_at, "breached_at": state.breached_at,
            "state": state.state}


def _service_key(service: str | None) -> str:
    """A service name as policies are matched by it: letter case and surrounding spaces ignored."""
    return (service or "").strip().lower()


class SlaService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.session = services.session

    # -- policies ---------------------------------------------------------------------------------------

    def policy(self, kind: str, priority: str | None, service: str | None) -> SlaPolicy | None:
        """The stored policy for (kind, priority, service), else for any service; None if none.

        The service is matched ignoring letter case and surrounding spaces, as the desk matches
        user, group and CI names: a record's affected service is typed by its requester ("vpn")
        and a policy's by whoever set it ("VPN")."""
        if not priority:
            return None
        wanted = _service_key(service)
        # a kind and priority have a few policies: compared here, as SQLite's lower() knows ASCII only
        rows = self.session.scalars(select(SlaPolicy).where(SlaPolicy.kind == kind, SlaPolicy.priority == priority)
                                    .order_by(SlaPolicy.id)).all()
        exact = [r for r in rows if r.service and _service_key(r.service) == wanted]
        fallback = exact or [r for r in rows if not r.service]
        return fallback[0] if fallback else None

    def _stored_policy(self, kind: str, priority: str, service: str | None) -> _StoredPolicy | None:
        """``policy()`` through the per-application cache (see the module doc)."""
        if POLICY_CACHE_SECONDS <= 0 or self.session.info.get(_POLICY_WRITES):
            row = self.policy(kind, priority, service)
            return _StoredPolicy.of(row) if row is not None else None
        cache = _policy_cache(self.services.runtime)
        key = (kind, priority, _service_key(service))
        hit, value = cache.get(key)
        if hit:
            return value
        generation = cache.generation
        row = self.policy(kind, priority, service)
        value = _StoredPolicy.of(row) if row is not None else None
        cache.put(key, value, generation, POLICY_CACHE_SECONDS)
        return value

    def terms(self, kind: str, priority: str | None, service: str | None) -> dict[str, Any] | None:
        """Targets, calendar, pauses, warning ratio and escalation in force; built-in defaults
        (24x7, the issue's P1-P4 targets) when no policy is stored."""
        row = self._stored_policy(kind, priority, service) if priority else None
        if row is not None:
            return {"policy_id": row.id, "targets": {"response": row.response_seconds, "resolution": row.resolution_seconds},
                    "calendar": copy.deepcopy(row.calendar), "pauses": list(row.pause_statuses),
                    "warning_ratio": row.warning_ratio,
                    "escalation": copy.deepcopy(row.escalation) if row.escalation else DEFAULT_ESCALATION}
        if kind not in TRACKED_KINDS or priority not in DEFAULT_TARGETS:
            return None
        return {"policy_id": None, "targets": dict(DEFAULT_TARGETS[priority]), "calendar": {},
                "pauses": DEFAULT_PAUSES[kind], "warning_ratio": 0.75, "escalation": DEFAULT_ESCALATION}

    def _policies_written(self) -> None:
        """Invalidate the policy cache now and when this session's transaction ends; until then
        this session reads policies from the database."""
        cache = _policy_cache(self.services.runtime)
        cache.invalidate()
        self.session.info[_POLICY_WRITES] = cache
        if not event.contains(self.session, "after_transaction_end", _policy_transaction_ended):
            event.listen(self.session, "after_transaction_end", _policy_transaction_ended)

    def require_policy_writer(self, actor: User) -> None:
        """PermissionDenied (audited) unless ``actor`` changes SLA policies (process owners, admins)."""
        if not may_write_policies(actor):
            self.services.audit.refuse(actor, "sla_policy_save", reason="needs process_owner")
            raise PermissionDenied("changing SLA policies needs the process_owner role")

    def save_policy(self, actor: User, values: Mapping[str, Any]) -> SlaPolicy:
        """Create or replace the policy for (kind, priority, service).

        Running clocks of the records it applies to keep their targets and are read under its
        other terms from now on; the sweep looks at them again soon (``_check_again``). A breach
        the sweep raised stays (it is recorded: ``_record_breach``).

        Raises PermissionDenied without the process_owner (or admin) role, ValidationFailed
        naming each bad field (``policy_problems``, and a ``reassign_group`` that names no group).
        """
        self.require_policy_writer(actor)
        said_pauses = values.get("pause_statuses")
        if values.get("kind") in DEFAULT_PAUSES and said_pauses is None:
            # not said: the kind's default, not "pause never" (a policy saved without the field
            # silently stopped pausing incidents that wait on the customer)
            values = {**values, "pause_statuses": list(DEFAULT_PAUSES[values["kind"]])}
        problems = policy_problems(values)
        escalation = values.get("escalation") or DEFAULT_ESCALATION
        if not problems:
            # only the statuses the caller named are judged: the default is the platform's own
            problems = self._group_problems(escalation) | self._status_problems(values["kind"], said_pauses or [])
        if problems:
            raise ValidationFailed("SLA policy is invalid", details={"fields": problems})
        service = (values.get("service") or "").strip()
        self._policies_written()
        # "vpn" saves over the policy for "VPN" (one service, however typed), in the new spelling
        row = next((r for r in self.session.scalars(select(SlaPolicy).where(
            SlaPolicy.kind == values["kind"], SlaPolicy.priority == values["priority"]).order_by(SlaPolicy.id))
            if _service_key(r.service) == _service_key(service)), None)
        if row is None:
            row = SlaPolicy(kind=values["kind"], priority=values["priority"], service=service)
            self.session.add(row)
        row.service = service
        row.response_seconds = int(values["response_seconds"])
        row.resolution_seconds = int(values["resolution_seconds"])
        row.calendar = dict(values.get("calendar") or {})
        row.pause_statuses = list(values.get("pause_statuses") or [])
        row.warning_ratio = float(values.get("warning_ratio", 0.75))
        row.escalation = copy.deepcopy(dict(escalation))
        row.updated_at = self.services.runtime.clock.now()
        self.session.flush()
        self._check_again(row.kind, row.priority)
        self.services.audit.record("sla_policy_saved", actor, payload={k: v for k, v in values.items()})
        return row

    def delete_policy(self, actor: User, policy_id: int) -> None:
        """Delete a stored policy: the built-in terms (``default_policies``), or a policy for any
        service, apply again where it matched. As with a replaced policy, running clocks keep
        the targets they were given (at their start or last priority change) and are read under
        the terms now in force (calendar, pauses, warning ratio, escalation), and the sweep looks at
        them again soon (``_check_again``); their stored rows stop naming the policy. Audited (``sla_policy_deleted``, with what was deleted).

        Who may: whoever may save one (process owners and admins). Raises PermissionDenied
        otherwise, NotFound for an unknown policy.
        """
        if not may_write_policies(actor):
            self.services.audit.refuse(actor, "sla_policy_delete", reason="needs process_owner")
            raise PermissionDenied("deleting SLA policies needs the process_owner role")
        row = self.session.get(SlaPolicy, policy_id)
        if row is None:
            raise NotFound(f"no SLA policy {policy_id}", details={"id": policy_id})
        deleted = {"id": row.id, "kind": row.kind, "priority": row.priority, "service": row.service,
                   "response_seconds": row.response_seconds, "resolution_seconds": row.resolution_seconds,
                   "calendar": copy.deepcopy(row.calendar), "pause_statuses": list(row.pause_statuses or []),
                   "warning_ratio": row.warning_ratio, "escalation": copy.deepcopy(row.escalation)}
        self._policies_written()
        # what ON DELETE SET NULL does, also where the database does not enforce foreign keys
        self.session.execute(update(SlaClock).where(SlaClock.policy_id == policy_id).values(policy_id=None)
                             .execution_options(synchronize_session="fetch"))
        kind, priority = row.kind, row.priority
        self.session.delete(row)
        self.session.flush()
        self._check_again(kind, priority)
        self.services.audit.record("sla_policy_deleted", actor, payload=deleted)

    def _check_again(self, kind: str, priority: str) -> None:
        """Have the sweep look again, soon, at the clocks of the open records of ``kind`` and
        ``priority`` that it checks later: they are read under the terms now in force (calendar,
        warning ratio), so their warning and due instants may now come before the stored
        ``next_check_at`` (QA: a policy switched from business hours to 24x7 breached records a day
        before the sweep, the breached list and the task lists saw it). "Soon" is once the other
        processes' policy caches have let the old terms go (``POLICY_CACHE_SECONDS``); the sweep then
        stores each clock's instants under the new terms."""
        soon = self.services.runtime.clock.now() + timedelta(seconds=POLICY_CACHE_SECONDS)
        tickets = select(Ticket.id).where(Ticket.kind == kind, Ticket.priority == priority, Ticket.closed_at.is_(None))
        self.session.execute(update(SlaClock).where(SlaClock.next_check_at > soon, SlaClock.ticket_id.in_(tickets))
                             .values(next_check_at=soon).execution_options(synchronize_session="fetch"))

    def _status_problems(self, kind: str, pauses: Sequence[str]) -> dict[str, list[str]]:
        """A pause status that no record of ``kind`` can take (a typo would pause nothing), judged by
        ``record_statuses``; no judgement when those are unknown."""
        known = self.record_statuses(kind)
        unknown = [status for status in pauses if status not in known]
        if not known or not unknown:
            return {}
        return {"pause_statuses": [f"{kind} records never have status {', '.join(repr(u) for u in unknown)} "
                                   f"(they have: {', '.join(sorted(known))})"]}

    def record_statuses(self, kind: str) -> set[str]:
        """The statuses records of ``kind`` can have, as far as can be told: those the deployed processes
        keeping such records assign as text to their status variable (``ticket_status = "pending"``)
        or name as resolved or closed, ``cancelled`` (the platform's), and those records already have."""
        statuses = set(self.session.scalars(select(Ticket.status).where(Ticket.kind == kind).distinct()))
        for xml, mapping in self.session.execute(select(ProcessDefinition.bpmn_xml, ProcessDefinition.record_mapping)
                                                 .where(ProcessDefinition.record_mapping.is_not(None))):
            if not isinstance(mapping, Mapping) or mapping.get("kind") != kind:
                continue
            variable = (mapping.get("fields") or {}).get("status")
            if isinstance(variable, str) and variable.isidentifier():
                # scripts sit in elements and attributes alike: read them with the XML escapes undone
                statuses.update(re.findall(rf"\b{variable}\s*=\s*[\"']([\w-]{{1,64}})[\"']", html.unescape(xml or "")))
            for key in ("resolved_statuses", "closed_statuses"):
                statuses.update(str(v) for v in mapping.get(key) or ())
            statuses.add("cancelled")
        return statuses

    def _group_problems(self, escalation: object, levels: Sequence[str] = _REASSIGNING_LEVELS) -> dict[str, list[str]]:
        """A well-formed ``reassign_group`` (of ``levels``) that names no group."""
        problems: dict[str, list[str]] = {}
        for level in levels:
            rules = escalation.get(level) if isinstance(escalation, Mapping) else None
            group = rules.get("reassign_group") if isinstance(rules, Mapping) else None
            if _plain_text(group, MAX_GROUP_NAME) and self.session.scalar(select(Group.id).where(Group.name == group)) is None:
                problems[f"escalation.{level}.reassign_group"] = [f"no group named {group!r}"]
        return problems

    def policies(self) -> list[SlaPolicy]:
        return list(self.session.scalars(select(SlaPolicy).order_by(SlaPolicy.kind, SlaPolicy.priority, SlaPolicy.service)))

    @staticmethod
    def default_policies() -> list[dict[str, Any]]:
        """The built-in terms (``terms``) of every tracked kind and priority, all of them, in force
        wherever no stored policy matches (a catalog request's resolution target is its item's
        ``target_hours``): shown beside the stored ones, so that an empty list of policies does not
        read as "no SLA"."""
        return [{"kind": kind, "priority": priority, "service": None,
                 "response_seconds": int(DEFAULT_TARGETS[priority]["response"]),
                 "resolution_seconds": int(DEFAULT_TARGETS[priority]["resolution"]),
                 "calendar": {}, "pause_statuses": list(DEFAULT_PAUSES[kind]), "warning_ratio": 0.75,
                 "escalation": copy.deepcopy(DEFAULT_ESCALATION)}
                for kind in TRACKED_KINDS for priority in PRIORITIES]

    # -- tracking (after every record sync) ---------------------------------------------------------------

    def _ticket_id(self, ticket: Ticket) -> int:
        """The ticket's id, flushing a new ticket first so it has one."""
        if ticket.id is None:
            self.session.flush()
        return ticket.id

    def _events(self, ticket: Ticket) -> list[_Event]:
        return [_Event._make(row) for row in self.session.connection().execute(_SELECT_EVENTS, {"ticket_id": self._ticket_id(ticket)})]

    def _add(self, ticket: Ticket, kind: str, at: datetime, *, targets: Mapping[str, float] | None = None,
             clocks: list[str] | None = None, reason: str, pending: list[dict[str, Any]] | None = None,
             kept: Mapping[str, float] | None = None, audit: bool = True) -> _Event:
        """Record one clock event (and, unless not ``audit``, its audit entry): written at once, or
        appended to ``pending`` for the caller to write with ``_write_events``."""
        stored = dict(targets) if targets else None
        values = {"ticket_id": ticket.id, "at": at, "kind": kind, "targets": stored, "clocks": clocks, "reason": reason}
        if pending is None:
            self._write_events([values])
        else:
            pending.append(values)
        if audit:
            payload: dict[str, Any] = {"number": ticket.number, "reason": reason, "targets": dict(targets or {}),
                                       "clocks": clocks}
            if kept:
                payload["kept"] = dict(kept)
            self.services.audit.record(f"sla_{kind}", None, instance_id=ticket.instance_id, payload=payload, actor_name="sla")
        return _Event(at, kind, stored, clocks, reason)

    def _keep_verdicts(self, ticket: Ticket, terms: Mapping[str, Any] | None, clocks: Mapping[str, Mapping[str, Any]],
                       events: Sequence[_Event], now: datetime, *, reason: str,
                       pending: list[dict[str, Any]] | None = None) -> list[_Event]:
        """Before a change that has the clocks read under ``terms`` (another priority's or
        service's policy, whose calendar may count the time before the change differently),
        record what the stored ``clocks`` (``_CLOCK_VALUES`` by name) settled and ``terms`` would
        not show: each breach that happened (``_recorded_breaches``) as a ``breach`` event (one
        per instant), and the elapsed time of each stopped clock as one ``measured`` event. See
        "A breach is a fact" in the module doc. Returns the events (written, or appended to
        ``pending``); none when ``terms`` read the clocks as stored."""
        breaches = _recorded_breaches(clocks, events, now)
        stopped = {name: values for name, values in clocks.items() if values.get("state") in FINAL_STATES}
        if not breaches and not stopped:
            return []
        states = self.evaluate(ticket, terms, events=events, now=now)
        instants: dict[datetime, list[str]] = {}
        for name, at in breaches.items():
            state = states.get(name)
            if state is not None and (state.breached_at is None or state.breached_at > at):
                instants.setdefault(at, []).append(name)
        added = [self._add(ticket, "breach", at, clocks=sorted(names), reason=f"breached before {reason}", pending=pending)
                 for at, names in sorted(instants.items())]
        measured = {name: float(values["elapsed_seconds"]) for name, values in stopped.items()
                    if name in states and states[name].stopped_at is not None
                    and abs(states[name].elapsed_seconds - float(values["elapsed_seconds"])) > 1e-6}
        if measured:
            added.append(self._add(ticket, "measured", now, targets=measured, reason=f"measured before {reason}",
                                   pending=pending))
        return added

    def _priority_change(self, ticket: Ticket, terms: Mapping[str, Any], events: Sequence[_Event], now: datetime, *,
                         reason: str, pending: list[dict[str, Any]] | None = None) -> _Event | None:
        """The ``priority`` event that gives the clocks the targets of ``terms``; None when it
        would change no clock.

        A stopped clock keeps the target it was measured against (``sla_clock``: a response given
        under P4 stays met under P4), so the event names, and its audit entry announces, only the
        targets it applies: those of the clocks still running or paused (and of clocks new to the
        record). Stopped clocks whose target the new terms would have changed are listed as
        ``kept`` in the audit entry, with the target they keep. The announcement and the clocks
        shown afterwards therefore agree.
        """
        current = self.evaluate(ticket, terms, events=events, now=now) if events else {}
        applied: dict[str, float] = {}
        kept: dict[str, float] = {}
        for name, seconds in (self.record_terms(ticket, terms).get("targets") or {}).items():
            state = current.get(name)
            if state is not None and state.stopped_at is not None:
                if state.target_seconds != seconds:
                    kept[name] = state.target_seconds
                continue
            applied[name] = seconds
        if all(name in current and current[name].target_seconds == seconds for name, seconds in applied.items()):
            return None
        return self._add(ticket, "priority", now, targets=applied, reason=reason, pending=pending, kept=kept)

    def _write_events(self, values: list[dict[str, Any]]) -> None:
        if values:
            self.session.connection().execute(_INSERT_EVENT, values)

    def _events_and_clocks(self, ticket: Ticket) -> tuple[list[_Event], dict[str, _Clock]]:
        """The ticket's events (in order) and its stored clock rows by name, in one statement."""
        events: list[_Event] = []
        clocks: dict[str, _Clock] = {}
        for row in self.session.connection().execute(_EVENTS_THEN_CLOCKS, {"ticket_id": self._ticket_id(ticket)}):
            if row.part == _EVENT_PART:
                events.append(_Event(row.at, row.kind, row.targets, row.clocks, row.reason))
            else:
                clocks[row.name] = self._clock(row.row_id, row)
        return events, clocks

    def track(self, ticket: Ticket, changes: Mapping[str, Any], actor: User | None = None) -> None:
        """Turn a record change by ``actor`` (None: the engine, or not said) into clock events,
        then re-evaluate and store the clocks.

        The response clock stops at the record's first response: when ``first_response_at`` is in
        ``changes`` (its status left its start value, or a comment answered it), or, for the kinds in
        ``RESPONSE_BY_PEOPLE``, at the first change by a person other than the requester (a step
        they did, or a comment that answers the record: ``changes`` then names the ``comment``).
        """
        terms = self.terms(ticket.kind, ticket.priority, ticket.service)
        # Clock rows are only ever written from events, and events are never deleted (but with
        # their ticket, as are the clocks): a record without events has no clocks. Nothing below
        # changes clock rows before ``_store``, so they are read here with the events.
        events, stored = self._events_and_clocks(ticket)
        had_events = bool(events)
        pending: list[dict[str, Any]] = []
        now = self.services.runtime.clock.now()
        if not events:
            if terms is None:
                return
            targets = self.record_terms(ticket, terms)["targets"]
            events.append(self._add(ticket, "start", ticket.opened_at, targets=targets, reason="record opened",
                                    pending=pending))
            if ticket.status in terms["pauses"]:
                events.append(self._add(ticket, "pause", now, reason=f"status {ticket.status}", pending=pending))
        elif terms is not None:
            added: list[_Event] = []
            if "priority" in changes or "service" in changes:
                # the clocks are read under the new terms from here on: what breached stays breached
                events.extend(self._keep_verdicts(ticket, terms, {name: clock.values for name, clock in stored.items()},
                                                  events, now, reason=f"priority {ticket.priority}" if "priority" in changes
                                                  else f"service {ticket.service or ''}".rstrip(), pending=pending))
            if "priority" in changes:
                changed = self._priority_change(ticket, terms, events, now, reason=f"priority {ticket.priority}", pending=pending)
                if changed is not None:
                    added.append(changed)
            if "status" in changes:
                paused_now = ticket.status in terms["pauses"] or ticket.status in self._resolved(ticket)
                was_paused = self._paused(events)
                closed = ticket.closed_at is not None
                if closed:
                    # "status cancelled" (CANCEL_REASON) is what marks a cancellation's stop; one after
                    # the resolution gives nothing up (see the module doc)
                    reason = f"status {ticket.status}"
                    if ticket.resolved_at is not None and ticket.status in GIVE_UP_STATUSES.get(ticket.kind, ()):
                        reason += AFTER_RESOLUTION
                    added.append(self._add(ticket, "stop", now, reason=reason, pending=pending))
                elif paused_now and not was_paused:
                    added.append(self._add(ticket, "pause", now, reason=f"status {ticket.status}", pending=pending))
                elif not paused_now and was_paused:
                    added.append(self._add(ticket, "resume", now, reason=f"status {ticket.status}", pending=pending))
            events.extend(added)
        response = self._response(ticket, changes, actor, events if had_events else [], now)
        if response is not None:
            events.append(self._add(ticket, "stop", response[0], clocks=["response"], reason=response[1], pending=pending))
        stops = [e for e in events[len(events) - len(pending):] if e.kind == "stop"] if pending else []
        now = self.services.runtime.clock.now()
        states = self.evaluate(ticket, terms, events=events, now=now)
        if stops:
            # What a clock measured when it stopped is kept as a fact (a ``measured`` event), so a
            # later edit of its policy's calendar cannot turn "met" into "breached" or back (a
            # cancelled clock is cancelled under any calendar: nothing to keep).
            stopping = set().union(*(e.clocks if e.clocks is not None else states.keys() for e in stops))
            fixed = {name: states[name].elapsed_seconds for name in sorted(stopping)
                     if name in states and states[name].stopped_at is not None and states[name].cancelled_at is None}
            if fixed:
                events.append(self._add(ticket, "measured", now, targets=fixed, reason="measured when stopped",
                                        pending=pending))
        self._write_events(pending)
        self._stamp_due(ticket, self._store(ticket, terms, states, now, stored if had_events else {}).values())

    @staticmethod
    def _response(ticket: Ticket, changes: Mapping[str, Any], actor: User | None, events: Sequence[_Event],
                  now: datetime) -> tuple[datetime, str] | None:
        """When the record's first response came and how (the stop event's reason), if ``changes``
        by ``actor`` are it; None when they are not (see ``track``). ``events``: the record's
        events, none when this change starts its clocks (opening a record answers nobody; a
        record answered before its clocks started, by ``first_response_at``, was answered then)."""
        how = f"comment by {actor.username}" if actor is not None and "comment" in changes else None
        if ticket.kind in RESPONSE_BY_PEOPLE:
            if not events or actor is None or actor.id == ticket.requester_id or _stopped(events, "response"):
                return None
            return now, f"first response: {how or f'step by {actor.username}'}"
        if ticket.first_response_at is not None and ("first_response_at" in changes or not events):
            # No events: the clocks start now, and the record was answered before they could (a
            # problem has no priority, so no clocks, until triage; staff may comment before that).
            return ticket.first_response_at, f"first response: {how}" if how and "first_response_at" in changes \
                else "first response"
        return None

    def record_terms(self, ticket: Ticket, terms: Mapping[str, Any]) -> Mapping[str, Any]:
        """``terms`` with the targets ``ticket`` takes: a catalog request's resolution (fulfilment)
        target is its item's ``target_hours`` (the item it names in its ``item`` detail), whatever
        the priority; its response target is the policy's, but never more than that. Other
        records, and requests whose item is unknown, take the policy's targets as they are.

        Read only when targets are set (the record's start, a priority change): a change to an
        item's target applies to the requests opened afterwards, and to a running one only if its
        priority changes later."""
        hours = self._item_target_hours(ticket) if ticket.kind == "request" else None
        if hours is None:
            return terms
        resolution = hours * 3600
        targets = dict(terms.get("targets") or {})
        targets["resolution"] = resolution
        if "response" in targets:
            targets["response"] = min(targets["response"], resolution)
        return {**terms, "targets": targets}

    def _item_target_hours(self, ticket: Ticket) -> int | None:
        """The ``target_hours`` of the catalog item a request names; None without a usable one."""
        code = (ticket.details or {}).get("item")
        if not isinstance(code, str) or not code:
            return None
        hours = self.session.scalar(select(CatalogItem.target_hours).where(CatalogItem.code == code))
        if isinstance(hours, bool) or not isinstance(hours, int) or hours <= 0:
            return None
        return hours

    def _clock(self, clock_id: int, row: Any) -> _Clock:
        """A stored clock row as ``track`` uses it; the session's object for it, if one is
        loaded, counts over the row (it may hold changes not flushed yet)."""
        loaded = self.session.identity_map.get(self.session.identity_key(SlaClock, clock_id))
        if isinstance(loaded, SlaClock):
            return _Clock(clock_id, loaded.warned, loaded.escalated,
                          {name: getattr(loaded, name) for name in _CLOCK_VALUES}, loaded)
        return _Clock(clock_id, row.warned, row.escalated, {name: row._mapping[name] for name in _CLOCK_VALUES}, None)

    def _store(self, ticket: Ticket, terms: Mapping[str, Any] | None, states: Mapping[str, ClockState], now: datetime,
               stored: Mapping[str, _Clock]) -> dict[str, Mapping[str, Any]]:
        """Write ``states`` over the clock rows ``stored``: one INSERT for the new rows, one
        UPDATE for the changed ones; loaded ORM objects get the written values. Returns what each
        of those rows holds now (``_CLOCK_VALUES``) by clock name, those ``states`` left alone too."""
        policy_id = (terms or {}).get("policy_id")
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        held: dict[str, Mapping[str, Any]] = {name: clock.values for name, clock in stored.items()}
        for name, state in states.items():
            clock = stored.get(name)
            if clock is None:
                values = _clock_values(state, False, False, policy_id, now)
                inserts.append({"ticket_id": ticket.id, "name": name, "warned": False, "escalated": False, **values})
                held[name] = values
                continue
            # a warning sent for a target a priority change has since lengthened is owed again
            # when the new threshold comes (QA: the breach came unannounced)
            warned = clock.warned and not _warning_to_come(state)
            values = _clock_values(state, warned, clock.escalated, policy_id, now)
            held[name] = values
            if values != clock.values or warned != clock.warned:
                updates.append({"clock_id": clock.id, "warned": warned, **values})
                if clock.loaded is not None:
                    for key, value in {"warned": warned, **values}.items():
                        set_committed_value(clock.loaded, key, value)
        connection = self.session.connection()
        if inserts:
            connection.execute(_INSERT_CLOCK, inserts)
        if updates:
            connection.execute(_UPDATE_CLOCK, updates)
        return held

    @staticmethod
    def _stamp_due(ticket: Ticket, clocks: Iterable[Mapping[str, Any]]) -> None:
        """Give the record what its stored clocks (``clocks``: the values of every one of its
        clock rows) say about its due instant: ``sla_due_at``, the earliest ``due_at`` (only a
        running clock has one), and ``sla_warning_at``, the earliest ``warning_at`` of the clocks
        with a due instant (see ``Ticket``). Set on the record only when they change; the record's
        own save writes them (in a step, the same UPDATE as its other fields).

        Every write of clock rows ends here (``track``, ``_refresh``), so the task lists can order
        by the record's column and show it without reading ``sla_clock``."""
        due = [c for c in clocks if c["due_at"] is not None]
        due_at = min((c["due_at"] for c in due), default=None)
        warning_at = min((c["warning_at"] for c in due if c["warning_at"] is not None), default=None)
        if ticket.sla_due_at != due_at:
            ticket.sla_due_at = due_at
        if ticket.sla_warning_at != warning_at:
            ticket.sla_warning_at = warning_at

    def _resolved(self, ticket: Ticket) -> set[str]:
        instance = self.services.records.instance_for(ticket)
        mapping = instance.definition.record_mapping if instance is not None else None
        return set((mapping or {}).get("resolved_statuses", ["resolved"]))

    @staticmethod
    def _paused(events: Sequence[_Event]) -> bool:
        paused = False
        for item in events:
            if item.kind == "pause":
                paused = True
            elif item.kind == "resume":
                paused = False
        return paused

    def evaluate(self, ticket: Ticket, terms: Mapping[str, Any] | None = None, *,
                 events: Sequence[_Event] | None = None, now: datetime | None = None) -> dict[str, ClockState]:
        """The clocks of ``ticket`` as of ``now`` (default: the clock's now), replayed from
        ``events`` (default: read from the database)."""
        terms = terms if terms is not None else self.terms(ticket.kind, ticket.priority, ticket.service)
        if events is None:
            events = self._events(ticket)
        if not events:
            return {}
        calendar = calendar_of((terms or {}).get("calendar"))
        replay = _replay(ticket.kind, events)
        return evaluate(replay, calendar, now if now is not None else self.services.runtime.clock.now(),
                        float((terms or {}).get("warning_ratio", 0.75)))

    def refresh(self, ticket: Ticket, terms: Mapping[str, Any] | None = None) -> list[SlaClock]:
        """Recompute and store the clocks of ``ticket``; return the stored rows (ORM objects).

        A write: only the sweep calls it (reading a record's clocks is ``ticket_clocks``, which
        stores nothing)."""
        return self._refresh(ticket, terms)[0]

    def _refresh(self, ticket: Ticket, terms: Mapping[str, Any] | None = None) -> tuple[list[SlaClock], dict[str, ClockState]]:
        """``refresh``, also returning the states it stored, by clock name."""
        now = self.services.runtime.clock.now()
        # The terms in force, also when the caller has none at hand (the record's SLA page):
        # the stored clocks keep naming the policy they were measured against.
        terms = terms if terms is not None else self.terms(ticket.kind, ticket.priority, ticket.service)
        states = self.evaluate(ticket, terms, now=now)
        rows = {c.name: c for c in self.session.scalars(_SELECT_CLOCK_OBJECTS, {"ticket_id": ticket.id})}
        policy_id = (terms or {}).get("policy_id")
        stored: dict[str, _Clock] = {}
        for name, state in states.items():
            row = rows.get(name)
            if row is None:
                row = SlaClock(ticket_id=ticket.id, name=name, warned=False, escalated=False)
                for key, value in _clock_values(state, False, False, policy_id, now).items():
                    setattr(row, key, value)
                self.session.add(row)
                rows[name] = row
            else:
                stored[name] = _Clock(row.id, row.warned, row.escalated, {key: getattr(row, key) for key in _CLOCK_VALUES}, row)
        self._store(ticket, terms, {name: states[name] for name in stored}, now, stored)
        self._stamp_due(ticket, ({key: getattr(row, key) for key in ("due_at", "warning_at")} for row in rows.values()))
        self.session.flush()
        return list(rows.values()), states

    # -- the sweep: warnings, breaches, escalation ------------------------------------------------------------

    def sweep(self, limit: int = 200) -> dict[str, int]:
        """Warn and escalate the records with clocks due for a check (at most ``limit`` clocks).

        Each record is swept and committed in its own transaction: one that fails (bad stored
        data) is rolled back and logged, and the next sweep tries it again; the others go on. A
        database error (``OperationalError``: locked, connection lost) ends this sweep early.
        """
        begin_write(self.session)
        now = self.services.runtime.clock.now()
        due = self.session.scalars(select(SlaClock.ticket_id).where(SlaClock.next_check_at <= now)
                                   .order_by(SlaClock.next_check_at).limit(limit))
        counts = {"warnings": 0, "breaches": 0}
        for ticket_id in sorted(set(due)):
            try:
                begin_write(self.session)
                if not self._take(ticket_id):
                    # Another sweeper or a request is on it: the next sweep checks it again.
                    self.session.rollback()
                    continue
                found = self._sweep_record(ticket_id)
                self.session.commit()
            except OperationalError as err:
                # The database, not the record (locked, gone): the next sweep tries them all again.
                self.session.rollback()
                log.warning("SLA sweep: stopped at record id %s: %s", ticket_id, err)
                break
            except Exception:
                # Anything at all: the scheduler runs the other records and its later duties
                # (mail and webhook delivery) only if this returns.
                self.session.rollback()
                log.exception("SLA sweep: record id %s failed and was rolled back; it is tried again in %d minutes",
                              ticket_id, SWEEP_RETRY.total_seconds() // 60)
                self._put_off(ticket_id, now + SWEEP_RETRY)
                continue
            for key, value in found.items():
                counts[key] += value
        self.session.commit()
        return counts

    def _take(self, ticket_id: int) -> bool:
        """Lock one record for this sweeper's transaction, with what its escalation writes (its
        process instance, clocks and ready tasks), and forget what the session read of them before;
        False when another sweeper or a request holds any of them.

        Several sweepers run at once (each web worker's scheduler, ``flask scheduler run``): two
        that read the same due clock would both raise its warning or breach, notifying everyone
        twice. The locks are taken with SKIP LOCKED and never waited for, so a sweeper never waits
        on a request that may be waiting on it (a deadlock that could cost the request its work).
        SQLite: ``begin_write`` already holds the database's one write lock.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return True
        session = self.session
        row = session.execute(select(Ticket.instance_id).where(Ticket.id == ticket_id)
                              .with_for_update(skip_locked=True)).first()
        if row is None:
            return False
        instance_id = row[0]
        if instance_id is not None:
            if session.scalar(select(ProcessInstance.id).where(ProcessInstance.id == instance_id)
                              .with_for_update(skip_locked=True)) is None:
                return False
            if not self._all_locked(HumanTask.id, HumanTask.instance_id == instance_id,
                                    HumanTask.state == TaskStatus.READY):
                return False
        if not self._all_locked(SlaClock.id, SlaClock.ticket_id == ticket_id):
            return False
        # Another sweeper may have warned or escalated the record since this session read it.
        session.expire_all()
        return True

    def _all_locked(self, key: Any, *where: Any) -> bool:
        """Lock the rows ``where`` selects (by their ``key`` column) without waiting: True when
        every one of them could be locked, False when another transaction holds one."""
        wanted = self.session.scalar(select(func.count(key)).where(*where))
        return len(self.session.scalars(select(key).where(*where).with_for_update(skip_locked=True)).all()) == wanted

    def _put_off(self, ticket_id: int, until: datetime) -> None:
        """Check a record that failed its sweep again at ``until``, not at every sweep: retried at
        once, it would log every half minute and, first in the due order, a few hundred such records
        would fill every sweep's ``limit`` and starve all the others."""
        try:
            begin_write(self.session)
            self.session.execute(update(SlaClock).where(SlaClock.ticket_id == ticket_id, SlaClock.next_check_at < until)
                                 .values(next_check_at=until).execution_options(synchronize_session=False))
            self.session.commit()
        except OperationalError:
            self.session.rollback()  # busy: the next sweep tries the record (and this) again

    def _sweep_record(self, ticket_id: int) -> dict[str, int]:
        """Refresh one record's clocks, raise its warnings and breaches; what was raised."""
        counts = {"warnings": 0, "breaches": 0}
        ticket = self.session.get(Ticket, ticket_id)
        if ticket is None:
            return counts
        terms = self.terms(ticket.kind, ticket.priority, ticket.service)
        rows, states = self._refresh(ticket, terms)
        for clock in rows:
            state = states.get(clock.name)
            if state is None:
                continue
            if state.cancelled_at is not None:
                continue  # the record was cancelled: nobody is to act on its clocks any more
            if state.state == "breached" and not clock.escalated:
                clock.escalated = clock.warned = True
                self._record_breach(ticket, clock.name, state)
                self._escalate(ticket, clock, "breach", terms)
                counts["breaches"] += 1
            elif _warning_due(state, clock.warned):
                clock.warned = True
                self._escalate(ticket, clock, "warning", terms)
                counts["warnings"] += 1
        if counts["warnings"] or counts["breaches"]:
            # Store the next checks of the warned and escalated clocks, under the terms now in force
            # (a breach may have raised the priority).
            self.refresh(ticket, self.terms(ticket.kind, ticket.priority, ticket.service))
        return counts

    def _record_breach(self, ticket: Ticket, name: str, state: ClockState) -> None:
        """Keep the breach the sweep is escalating as a ``breach`` event, unless one records it
        already: a policy saved later with another calendar, under which the clock's elapsed time
        would not exceed its target, applies to the clock from then on but does not lift it (see
        "A breach is a fact" in the module doc). Audited as the ``sla_breached`` it comes with."""
        if state.breached_at is None or any(e.kind == "breach" and name in (e.clocks or ()) for e in self._events(ticket)):
            return
        self._add(ticket, "breach", state.breached_at, clocks=[name], reason="breach escalated", audit=False)

    def _escalation_rules(self, ticket: Ticket, clock: SlaClock, level: str,
                          terms: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The settings of ``level`` in force for ``ticket``; None (logged and audited) when the
        stored ones are malformed or name a group that does not exist."""
        escalation = (terms or {}).get("escalation") or DEFAULT_ESCALATION
        problems = escalation_problems(escalation, [level]) or self._group_problems(escalation, [level])
        if not problems:
            return cast(Mapping[str, Any], escalation.get(level) or {})
        policy_id = (terms or {}).get("policy_id")
        log.warning("SLA sweep: %s escalation of %s (%s clock) skipped: SLA policy %s has bad escalation settings: %s",
                    level, ticket.number, clock.name, policy_id, problems)
        self.services.audit.record("sla_escalation_skipped", None, instance_id=ticket.instance_id,
                                   payload={"number": ticket.number, "clock": clock.name, "level": level,
                                            "policy_id": policy_id, "problems": problems}, actor_name="sla")
        return None

    def _escalate(self, ticket: Ticket, clock: SlaClock, level: str, terms: Mapping[str, Any] | None) -> None:
        rules = self._escalation_rules(ticket, clock, level, terms)
        if rules is None:
            return
        notifier = self.services.notifications
        actions: dict[str, Any] = {}
        if level == "breach" and rules.get("raise_priority") and ticket.priority in RAISE and RAISE[ticket.priority] != ticket.priority:
            actions["priority"] = (ticket.priority, RAISE[ticket.priority])
            ticket.priority = RAISE[ticket.priority]
        # who loses the record's work to another group hears why (QA: a released claimant read only
        # that a target was breached, and the new group heard nothing)
        let_go: list[User] = []
        group = rules.get("reassign_group") if level == "breach" else None
        if group and group != ticket.assignment_group:
            actions["assignment_group"] = (ticket.assignment_group, group)
            ticket.assignment_group = group
            assignee = ticket.assignee
            if assignee is not None and group not in policy.queue_groups(assignee):
                # the record is the new group's to assign (QA: it kept naming someone outside it)
                actions["assignee"] = (assignee.username, None)
                ticket.assignee = None
                let_go.append(assignee)
            if ticket.instance_id is not None:
                # the record's open work goes with it (see the module doc)
                let_go += [t.claimed_by for t in self.session.scalars(select(HumanTask).where(
                    HumanTask.instance_id == ticket.instance_id, HumanTask.state == TaskStatus.READY))
                    if t.claimed_by is not None and group not in policy.queue_groups(t.claimed_by)]
                self.services.tasks.requeue(ticket.instance_id, group,
                                            reason=f"SLA breach of {ticket.number} ({clock.name})", actor_name="sla")
        # the record as the actions left it: its new group's people are told, not the old group's
        people, fallback = self._recipients(ticket, rules, terms)
        people = self._readers(ticket, people + [p for p in let_go if p.active])
        if actions:
            now = self.services.runtime.clock.now()
            ticket.updated_at = now  # QA: an escalation's changes did not show as an update
            self.services.audit.record("record_updated", None, instance_id=ticket.instance_id, actor_name="sla",
                                       payload={"number": ticket.number,
                                                "changes": {name: new for name, (_old, new) in actions.items()}})
        said: dict[str, Any] = {"clock": CLOCK_WORDS.get(clock.name, clock.name), "number": ticket.number,
                                "title": ticket.title, "word": Text("breached") if level == "breach" else Text("at risk"),
                                "moved": Text(" It now goes to %(group)s.", group=group) if "assignment_group" in actions
                                else ""}
        notifier.notify(people, f"sla.{level}", Text("SLA %(word)s: %(clock)s of %(number)s (%(title)s)", **said),
                        Text("The %(clock)s target of %(number)s is %(word)s (due %(due)s UTC).%(moved)s %(link)s",
                             due=f"{clock.due_at:%Y-%m-%d %H:%M}", link=notifier.link(ticket), **said) if clock.due_at
                        else Text("The %(clock)s target of %(number)s is %(word)s.%(moved)s", **said),
                        ticket=ticket, payload={"clock": clock.name, "level": level})
        self.services.audit.record(f"sla_{'breached' if level == 'breach' else 'warning'}", None, instance_id=ticket.instance_id,
                                   payload={"number": ticket.number, "clock": clock.name, "notified": sorted({u.username for u in people}),
                                            "fallback": fallback, "actions": {k: list(v) for k, v in actions.items()}},
                                   actor_name="sla")
        raised = self.terms(ticket.kind, ticket.priority, ticket.service) if "priority" in actions else None
        if raised is not None:
            now = self.services.runtime.clock.now()
            events = self._events(ticket)
            stored = {row.name: {key: getattr(row, key) for key in _CLOCK_VALUES}
                      for row in self.session.scalars(_SELECT_CLOCK_OBJECTS, {"ticket_id": ticket.id})}
            events += self._keep_verdicts(ticket, raised, stored, events, now, reason="escalation raised the priority")
            self._priority_change(ticket, raised, events, now, reason="escalation raised the priority")

    def _readers(self, ticket: Ticket, people: list[Person]) -> list[Person]:
        """``people`` without those who may not open ``ticket`` (``RecordService.may_see``), each
        once: a notice about a record reaches nobody it would show a 404 (QA: a group manager of no
        right to the record got its title by e-mail)."""
        kept: list[Person] = []
        seen: set[int] = set()
        for person in people:
            if person.id in seen:
                continue
            seen.add(person.id)
            user = person if isinstance(person, User) else self.session.get(User, person.id)
            if user is not None and user.active and self.services.records.may_see(user, ticket):
                kept.append(person)
        return kept

    def _group_manager(self, name: str | None) -> User | None:
        group = self.session.scalar(select(Group).where(Group.name == name)) if name else None
        return group.manager if group is not None and group.manager is not None and group.manager.active else None

    def _recipients(self, ticket: Ticket, rules: Mapping[str, Any],
                    terms: Mapping[str, Any] | None) -> tuple[list[Person], str | None]:
        """Who an escalation level notifies, and which fallback found them (None: the record's own).

        The level's ``notify`` list names the record's people: ``assignee``, ``group`` (its
        assignment group's members who work its queue), ``group_manager`` and ``requester``. When it names any of
        the record's owners (assignee, group, group manager) and they come to nobody (an
        untriaged record has no assignee and no group; a group may have no members and no
        manager), the escalation goes, in this order, to the first of these that has someone:

        1. ``open_tasks``: whoever holds the record's open work, the queue of each ready task of
           its process instance: the user who claimed it or the task's assigned user, else the
           members of its candidate group (or lane), e.g. ServiceDesk for an untriaged incident;
           and that group's manager when ``notify`` names ``group_manager``.
        2. ``escalation_group``: the members of the group the policy escalates breaches to
           (``breach.reassign_group``).
        3. ``admins``: the active administrators.

        So an SLA escalation is never lost silently; the audit entry names the fallback used.
        """
        notifier = self.services.notifications
        notify = rules.get("notify", [])  # checked by _escalation_rules: known recipient names
        owners: list[Person] = []
        people: list[Person] = []
        for target in notify:
            if target == "assignee" and ticket.assignee is not None and ticket.assignee.active:
                owners.append(ticket.assignee)
            elif target == "requester" and ticket.requester is not None:
                people.append(ticket.requester)
            elif target == "group":
                owners.extend(notifier.queue_members(ticket.assignment_group))
            elif target == "group_manager":
                manager = self._group_manager(ticket.assignment_group)
                if manager is not None:
                    owners.append(manager)
        if owners and OWNER_TARGETS.intersection(notify):
            # and whoever the record's open work waits on by name or claim (QA: a request waiting
            # for its approver warned the fulfilment group, never the approver who held it)
            owners += self._queue_people(ticket, managers=False, named_only=True)
        if owners or not OWNER_TARGETS.intersection(notify):
            return owners + people, None
        found = self._queue_people(ticket, "group_manager" in notify)
        if found:
            return found + people, "open_tasks"
        escalation = (terms or {}).get("escalation") or DEFAULT_ESCALATION
        breach = escalation.get("breach") if isinstance(escalation, Mapping) else None
        group = breach.get("reassign_group") if isinstance(breach, Mapping) else None
        found = notifier.queue_members(group) if _plain_text(group, MAX_GROUP_NAME) else []
        if found:
            return found + people, "escalation_group"
        admins = self.services.users.active_with_role(Role.ADMIN)
        return [*admins, *people], "admins" if admins else None

    def _queue_people(self, ticket: Ticket, managers: bool, named_only: bool = False) -> list[Person]:
        """The people holding the ready tasks of the record's process instance (see ``_recipients``);
        ``named_only``: only the claimants and the users tasks are assigned to by name, not the
        members of a task's group."""
        if ticket.instance_id is None:
            return []
        notifier = self.services.notifications
        found: list[Person] = []
        tasks = self.session.scalars(select(HumanTask).where(HumanTask.instance_id == ticket.instance_id,
                                                             HumanTask.state == TaskStatus.READY).order_by(HumanTask.id))
        for task in tasks:
            if task.claimed_by is not None and task.claimed_by.active:
                found.append(task.claimed_by)
                continue
            if named_only and not task.assigned_user:
                continue
            found.extend(notifier.task_queue(task))
            group = None if task.assigned_user else task.candidate_group or task.lane
            manager = self._group_manager(group) if managers and group else None
            if manager is not None:
                found.append(manager)
        return found

    # -- reading ------------------------------------------------------------------------------------------------

    def breached_open_records(self, user: User) -> int:
        """Open records the user may see with at least one breached SLA clock (home page count)."""
        query = (select(Ticket.id).join(SlaClock, SlaClock.ticket_id == Ticket.id)
                 .where(SlaClock.state == "breached", Ticket.closed_at.is_(None)).distinct())
        query = self.services.records.visible(user, query)
        return int(self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    def compliance(self, user: User, kind: str | None = None) -> list[dict[str, Any]]:
        """SLA compliance of the records ``user`` may see (of ``kind``, default all), per clock name
        (response first): how many clocks are ``met``, ``breached``, ``cancelled`` and still
        ``open`` (running or paused within target), and ``percent``, met / (met + breached) as a
        percentage (None while there is neither). A cancelled clock is in no part of it but its
        own count: the work was never delivered (a clock that breached before the cancellation
        stays breached; other give-ups, a request's rejection, count the same: see the module
        doc). Read from the stored clocks (``sla_clock``), one query, and one or two more for
        rows stored "met" by a give-up before the give-up rules (``_given_up_rows``).

        Raises ValidationFailed naming ``kind`` for a kind that has no SLA clocks.
        """
        if kind is not None and kind not in TRACKED_KINDS:
            raise ValidationFailed("no SLA clocks for this kind of record",
                                   details={"fields": {"kind": [f"one of: {', '.join(TRACKED_KINDS)}"]}})
        query = select(SlaClock.name, SlaClock.state, func.count()).join(Ticket, Ticket.id == SlaClock.ticket_id)
        if kind is not None:
            query = query.where(Ticket.kind == kind)
        query = self.services.records.visible(user, query.group_by(SlaClock.name, SlaClock.state))
        counts: dict[str, dict[str, int]] = {}
        for name, state, count in self.session.execute(query):
            found = counts.setdefault(name, dict.fromkeys((*FINAL_STATES, "open"), 0))
            found[state if state in FINAL_STATES else "open"] += int(count)
        for name, count in self._given_up_rows(user, kind).items():
            # stored "met" before the give-up rules: cancelled, as the record's events say
            counts[name]["met"] -= count
            counts[name]["cancelled"] += count
        summary = []
        for name in sorted(counts, key=lambda name: (name != "response", name)):
            found = counts[name]
            finished = found["met"] + found["breached"]
            summary.append({"name": name, **found,
                            "percent": round(100 * found["met"] / finished, 1) if finished else None})
        return summary

    def _given_up_rows(self, user: User, kind: str | None) -> dict[str, int]:
        """How many of the clock rows ``compliance`` counts as "met" (records ``user`` may see, of
        ``kind``) the record's events say were given up (see the module doc), per clock name.

        Only rows stored "met" of records with a give-up's stop event are read, with those
        records' stop events; the replay rule (``_replay``: only a clock's first stop counts) then
        tells a clock met before the give-up (a response given before a cancellation) from one
        the give-up stopped. Rows stored since the rules hold "cancelled" already."""
        stored_met = (select(SlaClock.ticket_id, SlaClock.name, Ticket.kind).join(Ticket, Ticket.id == SlaClock.ticket_id)
                      .where(SlaClock.state == "met",
                             select(SlaEvent.id).where(SlaEvent.ticket_id == SlaClock.ticket_id, SlaEvent.kind == "stop",
                                                       SlaEvent.reason.in_(_GIVE_UP_REASONS)).exists()))
        if kind is not None:
            stored_met = stored_met.where(Ticket.kind == kind)
        stored_met = self.services.records.visible(user, stored_met)
        rows = list(self.session.execute(stored_met))
        if not rows:
            return {}
        ids = stored_met.with_only_columns(SlaClock.ticket_id)
        stops: dict[int, list[_Event]] = {}
        for ticket_id, at, clocks, reason in self.session.execute(
                select(SlaEvent.ticket_id, SlaEvent.at, SlaEvent.clocks, SlaEvent.reason)
                .where(SlaEvent.kind == "stop", SlaEvent.ticket_id.in_(ids)).order_by(SlaEvent.ticket_id, SlaEvent.id)):
            stops.setdefault(ticket_id, []).append(_Event(at, "stop", None, clocks, reason))
        found: dict[str, int] = {}
        for ticket_id, name, ticket_kind in rows:
            if _first_stop_cancels(_replay(ticket_kind, stops.get(ticket_id, [])), name):
                found[name] = found.get(name, 0) + 1
        return found

    def clocks(self, user: User, number: str) -> list[dict[str, Any]]:
        ticket = self.services.records.get(user, number)
        found = self.ticket_clocks(ticket)
        if not found:
            raise NotFound(f"{number} has no SLA clocks", details={"number": number})
        return found

    def ticket_clocks(self, ticket: Ticket) -> list[dict[str, Any]]:
        """The clocks of a record the caller may see, evaluated now (response first); [] when no
        SLA applies (a change, a record without a priority yet).

        Read-only: the clocks are replayed from the record's events in memory and nothing is
        stored (an auditor's read writes nothing, and a read between a warning threshold and the
        sweep leaves the warning to the sweep). The stored clocks are the sweep's and the record
        changes' business."""
        if ticket.id is None:
            return []
        terms = self.terms(ticket.kind, ticket.priority, ticket.service)
        states = self.evaluate(ticket, terms)
        ratio = float((terms or {}).get("warning_ratio", 0.75))
        return [_clock_dict(state, ratio) for state in sorted(states.values(), key=lambda state: state.name != "response")]
