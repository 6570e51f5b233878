"""Bounded timers: no timer may wait more than :data:`MAX_TIMER_YEARS` years.

SpiffWorkflow 3.2 turns an ISO 8601 duration into a ``timedelta`` by walking the calendar one
month at a time (``TimerEventDefinition.get_timedelta_from_start``): ``"P99999999Y"`` is 1.2
billion iterations, minutes of CPU inside an engine step that holds the instance's transaction.
Larger values overflow ``datetime`` (``OverflowError``) and values that are not ISO 8601 raise
bare exceptions; both used to escape the engine as server errors.

Two guards, one limit (10 years: the longest wait an ITSM process plausibly models, a
multi-year contract review, is well inside it; anything longer is a typo or an attack):

- at deploy, :func:`check_literal` refuses a quoted timer literal (duration, date or cycle) past
  the limit or not ISO 8601 (``ProcessLibrary`` names the element and line);
- at run time (a timer expression computed from task data), :func:`install` bounds
  SpiffWorkflow's parser before anything iterates, and turns any timer value that is invalid or
  past the limit into a ``WorkflowTaskException`` on the timer's task (which is put in ERROR), so
  the instance fails naming the element; a retry with corrected data computes it again.

Limits: a duration at most ``P10Y`` (3,653 days, counting months as 30.44 days and years as
365.25); a date at most 10 years after now; a cycle at most :data:`MAX_CYCLE_REPEATS` repeats of
an interval longer than zero and at most 10 years, starting at most 10 years after now.
``install()`` is idempotent and called when ``app.engine`` is imported.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

MAX_TIMER_YEARS = 10
MAX_TIMER_SPAN = timedelta(days=3653)
#: A finite cycle may repeat at most this often ("R/PT1H", unbounded, stays allowed).
MAX_CYCLE_REPEATS = 100_000
#: Timer values longer than this are not ISO 8601 anything.
MAX_TIMER_TEXT = 100
LIMIT_TEXT = f"a timer may wait at most {MAX_TIMER_YEARS} years (P{MAX_TIMER_YEARS}Y)"

_DAYS_PER = {"years": 365.25, "months": 30.4375, "weeks": 7.0, "days": 1.0,
             "hours": 1 / 24, "minutes": 1 / 1440, "seconds": 1 / 86400}
_MAX_MONTHS = MAX_TIMER_YEARS * 12 + 1

ORIGINAL = {
    "parse_iso_duration": TimerEventDefinition.parse_iso_duration,
    "get_timedelta_from_start": TimerEventDefinition.get_timedelta_from_start,
    "get_timedelta_from_end": TimerEventDefinition.get_timedelta_from_end,
    "DurationTimerEventDefinition.has_fired": DurationTimerEventDefinition.has_fired,
    "TimeDateEventDefinition.has_fired": TimeDateEventDefinition.has_fired,
    "CycleTimerEventDefinition.cycle_complete": CycleTimerEventDefinition.cycle_complete,
}


class TimerValueError(ValueError):
    """A timer value that is not valid ISO 8601 (of the kind the timer needs)."""


class TimerTooLong(TimerValueError):
    """A timer value that waits longer than the limit."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TimerValueError(f"a timer value must be ISO 8601 text such as \"PT2H\", not {type(value).__name__}")
    if len(value) > MAX_TIMER_TEXT:
        raise TimerValueError(f"a timer value is at most {MAX_TIMER_TEXT} characters of ISO 8601")
    return value


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def parse_iso_duration(expression: Any) -> dict[str, Any]:
    """SpiffWorkflow's duration parser, refusing (TimerValueError) anything past the limit
    before any calendar arithmetic happens."""
    text = _text(expression)
    try:
        parsed: dict[str, Any] = ORIGINAL["parse_iso_duration"](text)
    except Exception:
        raise TimerValueError(f"{_shown(text)} is not an ISO 8601 duration (like \"PT2H\" or \"P3D\")") from None
    days = 0.0
    for unit, amount in parsed.items():
        if not math.isfinite(amount) or amount < 0:
            raise TimerValueError(f"{_shown(text)} is not an ISO 8601 duration")
        days += amount * _DAYS_PER[unit]
    if days > MAX_TIMER_SPAN.days:
        raise TimerTooLong(f"the duration {_shown(text)} is too long: {LIMIT_TEXT}")
    return parsed


def _months(parsed_duration: dict[str, Any]) -> float:
    return float(parsed_duration.get("years", 0)) * 12 + float(parsed_duration.get("months", 0))


def get_timedelta_from_start(parsed_duration: dict[str, Any], start: datetime | None = None) -> timedelta:
    """SpiffWorkflow's, which loops once per month: refused past the limit first."""
    if _months(parsed_duration) > _MAX_MONTHS:
        raise TimerTooLong(f"the duration is too long: {LIMIT_TEXT}")
    result: timedelta = ORIGINAL["get_timedelta_from_start"](parsed_duration, start)
    return result


def get_timedelta_from_end(parsed_duration: dict[str, Any], end: datetime) -> timedelta:
    if _months(parsed_duration) > _MAX_MONTHS:
        raise TimerTooLong(f"the duration is too long: {LIMIT_TEXT}")
    result: timedelta = ORIGINAL["get_timedelta_from_end"](parsed_duration, end)
    return result


def _now() -> datetime:
    # The timer module's clock (the engine routes it to the application clock, runtime.py).
    now: datetime = _timer_module.datetime.now(timezone.utc)
    return now


def _check_due(due: datetime, now: datetime, what: str) -> None:
    if due - now > MAX_TIMER_SPAN:
        raise TimerTooLong(f"{what} is more than {MAX_TIMER_YEARS} years ahead: {LIMIT_TEXT}")


def check_value(kind: str, value: Any, now: datetime | None = None) -> None:
    """Raise TimerValueError unless ``value`` is a valid ISO 8601 ``kind`` ('duration', 'date'
    or 'cycle') within the limit. Dates must carry a UTC offset."""
    now = now or _now()
    text = _text(value)
    try:
        if kind == "duration":
            get_timedelta_from_start(parse_iso_duration(text), now)
        elif kind == "date":
            due = datetime.fromisoformat(text)
            if due.tzinfo is None:
                raise TimerValueError("a timer date needs a UTC offset, e.g. 2026-01-01T09:00:00+00:00")
            _check_due(due, now, f"the date {_shown(text)}")
        else:
            _check_cycle_parts(*TimerEventDefinition.parse_iso_recurring_interval(text), now=now, text=text)
    except TimerValueError:
        raise
    except Exception as err:
        raise TimerValueError(f"{_shown(text)} is not a valid ISO 8601 {kind}: {err}") from None


def _check_cycle_parts(cycles: int, start: datetime, duration: timedelta, *, now: datetime, text: str) -> None:
    if cycles > MAX_CYCLE_REPEATS:
        raise TimerTooLong(f"the cycle {_shown(text)} repeats more than {MAX_CYCLE_REPEATS:,} times")
    if duration <= timedelta(0):
        raise TimerValueError(f"the cycle {_shown(text)} needs an interval longer than zero")
    if duration > MAX_TIMER_SPAN:
        raise TimerTooLong(f"the cycle interval of {_shown(text)} is too long: {LIMIT_TEXT}")
    _check_due(start, now, f"the first time of the cycle {_shown(text)}")


def _check_event_value(kind: str, event_value: Any) -> None:
    """The due time SpiffWorkflow just computed for a timer, against the limit."""
    now = _now()
    if kind == "cycle" and isinstance(event_value, dict):
        _check_cycle_parts(int(event_value["cycles"]), datetime.fromisoformat(event_value["next"]),
                           timedelta(seconds=float(event_value["duration"])), now=now, text=str(event_value))
    elif isinstance(event_value, str):
        due = TimerEventDefinition.parse_time_or_duration(event_value)
        if not isinstance(due, datetime):
            raise TimerValueError(f"{_shown(event_value)} is not an ISO 8601 date")
        _check_due(due, now, f"the due time {event_value}")


_deferred: ContextVar[bool] = ContextVar("processdesk_timer_errors_deferred", default=False)


@contextmanager
def deferred() -> Iterator[None]:
    """Within: a timer that cannot be set just waits, unset, instead of failing; the next
    ``refresh_timers`` (the end of every ``do_engine_steps``) computes it again. A retry resets a
    failed timer in here, because SpiffWorkflow computes the timer during the reset itself, from
    the data before the retry's corrections are applied."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


def _guarded(kind: str, method: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    @functools.wraps(method)
    def guarded(self: Any, my_task: Any) -> Any:
        first = my_task._get_internal_data("event_value") is None
        try:
            result = method(self, my_task)
            if first:
                _check_event_value(kind, my_task._get_internal_data("event_value"))
            return result
        except SpiffWorkflowException:
            raise
        except Exception as err:
            if first:
                my_task.internal_data.pop("event_value", None)
            if _deferred.get():
                return False
            name = my_task.task_spec.bpmn_name or my_task.task_spec.bpmn_id
            reason = str(err) if isinstance(err, TimerValueError) else f"{type(err).__name__}: {err}"
            exc = WorkflowTaskException(f"timer '{name}' cannot be set: {reason}", task=my_task)
            exc.error_type = "timer_limit" if isinstance(err, TimerTooLong) else "timer_expression"
            # In ERROR like a failed script: the instance fails here, and a retry computes it again.
            my_task._set_state(TaskState.ERROR)
            raise exc from None

    guarded.__processdesk_guard__ = True  # type: ignore[attr-defined]
    return guarded


def install() -> None:
    """Bound SpiffWorkflow's timer parsing and computation (idempotent)."""
    if getattr(DurationTimerEventDefinition.has_fired, "__processdesk_guard__", False):
        return
    TimerEventDefinition.parse_iso_duration = staticmethod(parse_iso_duration)  # type: ignore[method-assign,assignment]
    TimerEventDefinition.get_timedelta_from_start = staticmethod(get_timedelta_from_start)  # type: ignore[method-assign,assignment]
    TimerEventDefinition.get_timedelta_from_end = staticmethod(get_timedelta_from_end)  # type: ignore[method-assign,assignment]
    DurationTimerEventDefinition.has_fired = _guarded("duration", ORIGINAL["DurationTimerEventDefinition.has_fired"])  # type: ignore[method-assign]
    TimeDateEventDefinition.has_fired = _guarded("date", ORIGINAL["TimeDateEventDefinition.has_fired"])  # type: ignore[method-assign]
    CycleTimerEventDefinition.cycle_complete = _guarded("cycle", ORIGINAL["CycleTimerEventDefinition.cycle_complete"])  # type: ignore[method-assign]
