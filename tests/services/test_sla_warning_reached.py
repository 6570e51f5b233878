"""``ClockState.warning_reached_at``: when a clock's warning threshold was reached, from its history,
so the warning time stays known after it passed (the SLA pages and the sweep use it)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from app.services.sla_clock import DEFAULT_TARGETS, BusinessCalendar, ClockEvent, evaluate

OFFICE = BusinessCalendar(timezone="UTC", weekly_hours={day: ((time(8), time(18)),) for day in range(5)})
MONDAY = datetime(2026, 3, 16, 9, tzinfo=UTC)


def start(at: datetime, priority: str = "P2") -> ClockEvent:
    return ClockEvent(at, "start", targets=DEFAULT_TARGETS[priority])


def test_a_running_clock_has_either_a_warning_to_come_or_the_instant_it_was_reached():
    before = evaluate([start(MONDAY)], OFFICE, MONDAY + timedelta(minutes=30))["response"]  # P2: 1 h, warned at 45 min
    assert before.warning_at == MONDAY + timedelta(minutes=45) and before.warning_reached_at is None
    after = evaluate([start(MONDAY)], OFFICE, MONDAY + timedelta(minutes=50))["response"]
    assert after.warning_at is None and after.warning_reached_at == MONDAY + timedelta(minutes=45)
    exactly = evaluate([start(MONDAY)], OFFICE, MONDAY + timedelta(minutes=45))["response"]
    assert exactly.warning_at is None and exactly.warning_reached_at == MONDAY + timedelta(minutes=45)


def test_the_reached_instant_counts_business_time_and_pauses():
    friday = datetime(2026, 3, 20, 17, 30, tzinfo=UTC)  # 30 business minutes left on Friday
    events = [start(friday), ClockEvent(datetime(2026, 3, 23, 8, 5, tzinfo=UTC), "pause"),
              ClockEvent(datetime(2026, 3, 23, 9, tzinfo=UTC), "resume")]
    state = evaluate(events, OFFICE, datetime(2026, 3, 23, 10, tzinfo=UTC))["response"]
    # 30 min Friday + 5 min Monday, paused 08:05-09:00, the last 10 of 45 min at 09:10
    assert state.warning_reached_at == datetime(2026, 3, 23, 9, 10, tzinfo=UTC)
    assert state.state == "breached" and state.breached_at == datetime(2026, 3, 23, 9, 25, tzinfo=UTC)


@pytest.mark.parametrize("minutes", [10, 50])
def test_a_stopped_clock_keeps_the_instant_only_if_it_was_reached_before_the_stop(minutes: int):
    events = [start(MONDAY), ClockEvent(MONDAY + timedelta(minutes=minutes), "stop", clocks=frozenset({"response"}))]
    state = evaluate(events, OFFICE, MONDAY + timedelta(hours=5))["response"]
    assert state.state == "met" and state.warning_at is None
    assert state.warning_reached_at == (MONDAY + timedelta(minutes=45) if minutes > 45 else None)


def test_a_raised_priority_can_have_reached_the_threshold_in_the_past():
    raised = ClockEvent(MONDAY + timedelta(hours=3), "priority", targets=DEFAULT_TARGETS["P1"])
    state = evaluate([start(MONDAY, "P3"), raised], OFFICE, MONDAY + timedelta(hours=3, minutes=1))["resolution"]
    assert state.state == "running" and state.warning_reached_at == MONDAY + timedelta(hours=3)  # 75 % of 4 h
    assert state.warning_at is None


def test_a_zero_ratio_is_reached_at_the_start():
    state = evaluate([start(MONDAY)], OFFICE, MONDAY + timedelta(minutes=1), warning_ratio=0)["response"]
    assert state.warning_reached_at == MONDAY
