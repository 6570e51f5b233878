"""SLA clocks in business time (app/services/sla_clock.py).

Examples first, then property tests that compare the module with a deliberately naive reference
model: it walks minute by minute, asks "is this minute business time?" by reading the minute's
UTC instant on the calendar zone's wall clock, and counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st

from app.services.sla_clock import (
    DEFAULT_TARGETS,
    BusinessCalendar,
    ClockEvent,
    ClockState,
    SlaTarget,
    evaluate,
)

BERLIN = ZoneInfo("Europe/Berlin")
H = 3600
MINUTE = timedelta(minutes=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


def office(
    zone: str = "Europe/Berlin", days: tuple[str, ...] = WEEKDAYS, holidays: tuple[str, ...] = ()
) -> BusinessCalendar:
    return BusinessCalendar.from_dict(
        {"timezone": zone, "hours": {day: [["08:00", "18:00"]] for day in days}, "holidays": list(holidays)}
    )


def start(at: datetime, priority: str = "P2") -> ClockEvent:
    return ClockEvent(at, "start", targets=DEFAULT_TARGETS[priority])


# ------------------------------------------------------------------------------------------
# calendar examples


def test_always_is_plain_elapsed_time():
    cal = BusinessCalendar.always()
    a = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert cal.business_seconds(a, a + timedelta(days=3, seconds=7)) == 3 * 86400 + 7
    assert cal.business_seconds(a, a) == 0
    assert cal.business_seconds(a, a - timedelta(hours=1)) == 0
    assert cal.add_business_seconds(a, 90) == a + timedelta(seconds=90)
    assert cal.add_business_seconds(a, 0) == a
    assert cal.add_business_seconds(berlin(2026, 1, 1, 12), 0).tzinfo is UTC
    assert cal.is_business_time(a)


def test_office_hours_across_a_weekend():
    cal = office()
    friday_5pm, monday_9am = berlin(2026, 3, 20, 17), berlin(2026, 3, 23, 9)
    assert cal.business_seconds(friday_5pm, monday_9am) == 2 * H
    assert cal.add_business_seconds(friday_5pm, 2 * H) == monday_9am
    # used up exactly at closing time: the earliest instant is the closing instant itself
    assert cal.add_business_seconds(friday_5pm, H) == berlin(2026, 3, 20, 18)
    assert cal.add_business_seconds(friday_5pm, H + 1) == berlin(2026, 3, 23, 8, 0, 1)
    # zero seconds: start itself inside business time, else the next opening
    assert cal.add_business_seconds(friday_5pm, 0) == friday_5pm
    assert cal.add_business_seconds(berlin(2026, 3, 21, 11), 0) == berlin(2026, 3, 23, 8)
    assert cal.add_business_seconds(berlin(2026, 3, 20, 18), 0) == berlin(2026, 3, 23, 8)
    assert not cal.is_business_time(berlin(2026, 3, 20, 18)) and cal.is_business_time(berlin(2026, 3, 20, 8))
    # a whole week is 5 x 10 h whatever the starting point
    assert cal.business_seconds(berlin(2026, 3, 18, 13), berlin(2026, 3, 25, 13)) == 50 * H


def test_holidays_are_whole_local_days_off():
    cal = office(holidays=("2026-12-24", "2026-12-25"))
    # Wed 23rd 17:00 -> Mon 28th 09:00: one hour on Wednesday, Thu/Fri are holidays, one hour Monday
    assert cal.business_seconds(berlin(2026, 12, 23, 17), berlin(2026, 12, 28, 9)) == 2 * H
    assert cal.add_business_seconds(berlin(2026, 12, 23, 17), 90 * 60) == berlin(2026, 12, 28, 8, 30)
    assert cal.add_business_seconds(berlin(2026, 12, 24, 10), 0) == berlin(2026, 12, 28, 8)
    # the holiday is a local date: 23:30 UTC on the 23rd is already the 24th in Berlin
    always_but_xmas = BusinessCalendar(timezone="Europe/Berlin", holidays=frozenset({date(2026, 12, 24)}))
    assert not always_but_xmas.is_business_time(datetime(2026, 12, 23, 23, 30, tzinfo=UTC))


def test_dst_days_in_a_24x7_calendar_are_real_elapsed_time():
    cal = BusinessCalendar(timezone="Europe/Berlin")
    assert cal.business_seconds(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H
    assert cal.business_seconds(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * H
    assert cal.business_seconds(berlin(2026, 3, 23), berlin(2026, 3, 30)) == (7 * 24 - 1) * H
    assert cal.business_seconds(berlin(2026, 10, 19), berlin(2026, 10, 26)) == (7 * 24 + 1) * H
    # adding 24 h of elapsed time across spring forward lands an hour later on the wall clock
    assert cal.add_business_seconds(berlin(2026, 3, 28, 12), 24 * H) == berlin(2026, 3, 29, 13)
    assert cal.add_business_seconds(berlin(2026, 10, 24, 12), 24 * H) == berlin(2026, 10, 25, 11)


def test_dst_days_keep_office_hours_and_handle_gap_and_fold_boundaries():
    every_day = office(days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        assert (
            every_day.business_seconds(berlin(day.year, day.month, day.day), berlin(day.year, day.month, day.day + 1))
            == 10 * H
        )
    assert every_day.business_seconds(berlin(2026, 3, 23), berlin(2026, 3, 30)) == 70 * H
    assert every_day.business_seconds(berlin(2026, 10, 19), berlin(2026, 10, 26)) == 70 * H

    def on_sunday(first: str, last: str) -> BusinessCalendar:
        return BusinessCalendar.from_dict({"timezone": "Europe/Berlin", "hours": {"sun": [[first, last]]}})

    spring = (datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC))
    fall = (datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC))
    # a boundary in the gap shifts forward to the end of the gap (03:00 CEST)
    assert on_sunday("02:30", "04:00").business_seconds(*spring) == 1 * H
    assert on_sunday("02:30", "04:00").add_business_seconds(spring[0], 0) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert on_sunday("02:00", "02:30").business_seconds(*spring) == 0
    assert on_sunday("00:00", "08:00").business_seconds(*spring) == 7 * H
    # an interval crossing the fold is real elapsed time; an ambiguous opening takes the first occurrence
    assert on_sunday("00:00", "08:00").business_seconds(*fall) == 9 * H
    assert on_sunday("02:30", "04:00").add_business_seconds(fall[0], 0) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert on_sunday("02:30", "04:00").business_seconds(*fall) == 2 * H  # 02:30-03:00 CEST + 02:30-04:00 CET
    # repeated wall times count on both passes: 01:00-02:30 CEST, then 02:00-02:30 CET again
    assert on_sunday("01:00", "02:30").business_seconds(*fall) == 2 * H
    assert on_sunday("01:00", "02:30").add_business_seconds(fall[0], 100 * 60) == datetime(
        2026, 10, 25, 1, 10, tzinfo=UTC
    )


def test_add_business_seconds_is_the_inverse_of_business_seconds_on_examples():
    cal = office(holidays=("2026-04-03", "2026-04-06"))
    origin = berlin(2026, 3, 26, 16, 45)
    for seconds in (0, 1, 15 * 60, 75 * 60, 10 * H, 24 * H, 72 * H, 1234.5, 500 * H):
        due = cal.add_business_seconds(origin, seconds)
        assert cal.business_seconds(origin, due) == pytest.approx(seconds, abs=1e-6)
        if seconds:
            assert cal.business_seconds(origin, due - timedelta(microseconds=1)) < seconds


def test_calendar_dict_round_trip_and_errors():
    data = {
        "timezone": "America/New_York",
        "hours": {"mon": [["08:00", "12:00"], ["13:00", "17:30"]], "sat": [["22:00", "24:00"]]},
        "holidays": ["2026-07-03", "2026-01-01"],
    }
    cal = BusinessCalendar.from_dict(data)
    assert cal.to_dict() == {**data, "holidays": ["2026-01-01", "2026-07-03"]}
    assert BusinessCalendar.from_dict(cal.to_dict()) == cal and hash(BusinessCalendar.from_dict(cal.to_dict())) == hash(
        cal
    )
    assert cal.weekly_hours[5] == ((time(22), time(0)),) and cal.weekly_hours[2] == ()
    assert BusinessCalendar.from_dict({}) == BusinessCalendar.always()
    assert BusinessCalendar.from_dict({"hours": {}}).to_dict()["hours"] == {}
    merged = BusinessCalendar(weekly_hours={0: [(time(9), time(12)), (time(11), time(13)), (time(13), time(14))]})
    assert merged.weekly_hours[0] == ((time(9), time(14)),)
    for bad, key in [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"hours": {"xyz": []}}, "hours.xyz"),
        ({"hours": {"mon": [["18:00", "08:00"]]}}, "hours.mon[0]"),
        ({"hours": {"tue": [["08:00", "18:00"], ["8am", "9am"]]}}, "hours.tue[1]"),
        ({"hours": {"wed": [["24:00", "24:00"]]}}, "hours.wed[0]"),
        ({"holidays": ["2026-12-25", "tomorrow"]}, "holidays[1]"),
        ({"zone": "UTC"}, "zone"),
    ]:
        with pytest.raises(ValueError, match=key.replace("[", r"\[").replace(".", r"\.")):
            BusinessCalendar.from_dict(bad)
    with pytest.raises(ValueError):
        BusinessCalendar(weekly_hours={7: []})
    with pytest.raises(ValueError):
        BusinessCalendar(holidays=frozenset({datetime(2026, 1, 1)}))  # type: ignore[arg-type]


def test_validation_of_naive_datetimes_and_negative_targets():
    cal = BusinessCalendar.always()
    naive = datetime(2026, 1, 1)
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        cal.business_seconds(naive, aware)
    with pytest.raises(ValueError, match="naive"):
        cal.add_business_seconds(naive, 1)
    with pytest.raises(ValueError):
        cal.add_business_seconds(aware, -1)
    with pytest.raises(ValueError):
        ClockEvent(naive, "start", targets={"response": 60})
    with pytest.raises(ValueError, match="negative"):
        ClockEvent(aware, "start", targets={"response": -60})
    with pytest.raises(ValueError, match="negative"):
        ClockEvent(aware, "priority", targets={"resolution": -1})
    with pytest.raises(ValueError, match="negative"):
        SlaTarget("response", -1)
    with pytest.raises(ValueError):
        ClockEvent(aware, "start")
    with pytest.raises(ValueError):
        ClockEvent(aware, "snooze")
    with pytest.raises(ValueError, match="naive"):
        evaluate([ClockEvent(aware, "start", targets={"response": 60})], cal, naive)
    with pytest.raises(ValueError, match="no business hours"):
        BusinessCalendar(weekly_hours={}).add_business_seconds(aware, 60)
    with pytest.raises(ValueError, match="first event"):
        evaluate([ClockEvent(aware, "pause")], cal, aware)
    assert SlaTarget("response", 900).seconds == 900.0


# ------------------------------------------------------------------------------------------
# clock examples


def test_a_fresh_clock_runs_with_due_and_warning_times():
    cal = office()
    opened = berlin(2026, 3, 20, 17)  # Friday 17:00, P2: response 1 h, resolution 8 h
    states = evaluate([start(opened)], cal, berlin(2026, 3, 20, 17, 30))
    response, resolution = states["response"], states["resolution"]
    assert list(states) == ["response", "resolution"]
    assert response == ClockState(
        name="response",
        target_seconds=3600.0,
        elapsed_seconds=1800.0,
        paused_seconds=0.0,
        due_at=berlin(2026, 3, 23, 8).astimezone(UTC),  # used up at 18:00 Friday, breaches when Monday opens
        state="running",
        warning_at=berlin(2026, 3, 20, 17, 45).astimezone(UTC),
        stopped_at=None,
        breached_at=None,
    )
    assert resolution.due_at == berlin(2026, 3, 23, 15) and resolution.warning_at == berlin(2026, 3, 23, 13)
    assert all(state.due_at is None or state.due_at.tzinfo is UTC for state in states.values())


def test_pause_and_resume_count_paused_business_time_separately():
    cal = office()
    opened = berlin(2026, 3, 16, 9)  # Monday
    events = [
        start(opened),
        ClockEvent(berlin(2026, 3, 16, 9, 20), "pause"),
        ClockEvent(berlin(2026, 3, 16, 9, 30), "pause"),  # no-op
        ClockEvent(berlin(2026, 3, 16, 16), "resume"),
        ClockEvent(berlin(2026, 3, 16, 16, 5), "resume"),  # no-op
    ]
    paused = evaluate(events[:3], cal, berlin(2026, 3, 17, 9))
    assert paused["response"].state == "paused" and paused["response"].elapsed_seconds == 20 * 60
    assert paused["response"].paused_seconds == (8 * 60 + 40 + 60) * 60  # 09:20-18:00 + 08:00-09:00
    assert paused["response"].due_at is None and paused["response"].warning_at is None
    resumed = evaluate(events, cal, berlin(2026, 3, 16, 16, 30))
    assert resumed["response"].elapsed_seconds == 50 * 60 and resumed["response"].paused_seconds == (6 * 60 + 40) * 60
    assert resumed["response"].state == "running" and resumed["response"].due_at == berlin(2026, 3, 16, 16, 40)
    assert resumed["response"].warning_at is None  # 75 % (45 min) already reached


def test_priority_up_breaches_in_the_past_and_down_keeps_a_breach():
    cal = office()
    opened = berlin(2026, 3, 16, 9)
    responded = ClockEvent(berlin(2026, 3, 16, 9, 10), "stop", clocks=frozenset({"response"}))
    raised = ClockEvent(berlin(2026, 3, 16, 15), "priority", targets=DEFAULT_TARGETS["P1"])
    states = evaluate([start(opened, "P4"), responded, raised], cal, berlin(2026, 3, 16, 15, 30))
    resolution = states["resolution"]
    assert resolution.state == "breached" and resolution.target_seconds == 4 * H
    assert resolution.elapsed_seconds == 6.5 * H
    assert resolution.breached_at == berlin(2026, 3, 16, 13)  # 4 h after the start, before the change
    assert resolution.due_at == resolution.breached_at and resolution.warning_at is None
    # the response clock was stopped before the change: frozen, met under its P4 target
    assert states["response"].state == "met" and states["response"].target_seconds == 8 * H
    assert states["response"].stopped_at == berlin(2026, 3, 16, 9, 10)

    # P1 breached both clocks by 16:00; lowering to P4 (8 h / 72 h from the start) lifts neither breach:
    # a breach that happened is a fact. The clocks show P4's targets, breached since the P1 breach.
    lowered = ClockEvent(berlin(2026, 3, 16, 16), "priority", targets=DEFAULT_TARGETS["P4"])
    before = evaluate([start(opened, "P1"), lowered], cal, berlin(2026, 3, 16, 15, 59))
    assert before["response"].breached_at == berlin(2026, 3, 16, 9, 15) and before["resolution"].state == "breached"
    for now in (berlin(2026, 3, 16, 17), berlin(2026, 3, 17, 12), berlin(2026, 3, 30, 9)):
        states = evaluate([start(opened, "P1"), lowered], cal, now)
        resolution, response = states["resolution"], states["response"]
        assert resolution.state == "breached" and resolution.target_seconds == 72 * H
        assert resolution.breached_at == resolution.due_at == berlin(2026, 3, 16, 13)
        assert resolution.warning_at is None
        assert response.state == "breached" and response.target_seconds == 8 * H
        assert response.breached_at == response.due_at == berlin(2026, 3, 16, 9, 15) and response.warning_at is None
    # stopped within the new target, it stays breached
    closed = ClockEvent(berlin(2026, 3, 16, 17), "stop")
    states = evaluate([start(opened, "P1"), lowered, closed], cal, berlin(2026, 3, 18, 9))
    assert {name: state.state for name, state in states.items()} == {"response": "breached", "resolution": "breached"}
    assert states["resolution"].breached_at == berlin(2026, 3, 16, 13)
    # and a cancellation does not make it "cancelled"
    cancelled = ClockEvent(berlin(2026, 3, 16, 17), "stop", cancelled=True)
    states = evaluate([start(opened, "P1"), lowered, cancelled], cal, berlin(2026, 3, 18, 9))
    assert {state.state for state in states.values()} == {"breached"}

    # lowered before any breach, the clocks simply take the longer targets
    early = ClockEvent(berlin(2026, 3, 16, 9, 10), "priority", targets=DEFAULT_TARGETS["P4"])
    states = evaluate([start(opened, "P1"), early], cal, berlin(2026, 3, 16, 17))
    assert states["resolution"].state == "running" and states["resolution"].breached_at is None
    assert states["resolution"].due_at == berlin(2026, 3, 25, 11)  # 72 business hours after Monday 09:00
    response = states["response"]  # elapsed 8 h == target: not exceeded yet, breaches at the next business instant
    assert (
        response.state == "running" and response.elapsed_seconds == 8 * H and response.due_at == berlin(2026, 3, 16, 17)
    )
    assert evaluate([start(opened, "P1"), early], cal, berlin(2026, 3, 16, 17, 1))["response"].breached_at == berlin(
        2026, 3, 16, 17
    )


def test_stop_freezes_met_or_breached():
    cal = BusinessCalendar.always()
    opened = datetime(2026, 5, 1, 8, tzinfo=UTC)
    events = [
        start(opened, "P1"),
        ClockEvent(opened + timedelta(minutes=10), "stop", clocks=frozenset({"response"})),
        ClockEvent(opened + timedelta(hours=5), "stop"),
    ]
    states = evaluate(events, cal, opened + timedelta(days=2))
    assert states["response"].state == "met" and states["response"].elapsed_seconds == 600
    resolution = states["resolution"]
    assert resolution.state == "breached" and resolution.elapsed_seconds == 5 * H
    assert resolution.breached_at == opened + timedelta(hours=4) and resolution.stopped_at == opened + timedelta(
        hours=5
    )
    assert resolution.due_at is None and resolution.warning_at is None
    # exactly at the target is still met
    exact = evaluate(
        [start(opened, "P1"), ClockEvent(opened + timedelta(hours=4), "stop")], cal, opened + timedelta(days=1)
    )
    assert exact["resolution"].state == "met" and exact["resolution"].breached_at is None


def test_a_recorded_breach_holds_under_any_calendar_and_target_that_follows():
    """A ``breach`` event is a fact: an office calendar that counts no time before Monday (so no
    breach of its own) keeps the clock breached from the recorded instant, running or stopped."""
    saturday = datetime(2026, 1, 10, 8, tzinfo=UTC)
    weekdays = office("UTC")
    breach = ClockEvent(saturday + timedelta(hours=4), "breach", clocks=frozenset({"response"}))
    raised = ClockEvent(saturday + timedelta(hours=5), "priority", targets=DEFAULT_TARGETS["P2"])
    now = saturday + timedelta(hours=6)
    assert evaluate([start(saturday, "P3"), raised], weekdays, now)["response"].state == "running"  # no fact: lifted
    states = evaluate([start(saturday, "P3"), breach, raised], weekdays, now)
    response = states["response"]
    assert response.state == "breached" and response.breached_at == saturday + timedelta(hours=4)
    assert response.target_seconds == H and response.due_at == response.breached_at and response.warning_at is None
    assert states["resolution"].state == "running" and states["resolution"].breached_at is None
    stopped = ClockEvent(saturday + timedelta(hours=5, minutes=30), "stop", clocks=frozenset({"response"}))
    assert evaluate([start(saturday, "P3"), breach, raised, stopped], weekdays, now)["response"].state == "breached"
    # a breach recorded after the clock stopped, or of a clock the record does not have, changes nothing
    late = ClockEvent(saturday + timedelta(hours=5, minutes=45), "breach", clocks=frozenset({"response", "other"}))
    after = evaluate([start(saturday, "P3"), raised, stopped, late], weekdays, now)
    assert after["response"].state == "met" and set(after) == {"response", "resolution"}
    with pytest.raises(ValueError, match="names the clocks"):
        ClockEvent(saturday, "breach")
    with pytest.raises(ValueError, match="only stop and breach events name clocks"):
        ClockEvent(saturday, "pause", clocks=frozenset({"response"}))


def test_a_measured_stopped_clock_keeps_its_elapsed_time_under_any_calendar():
    friday = datetime(2026, 1, 9, 16, tzinfo=UTC)  # office(): 08-18 UTC on weekdays
    answered = ClockEvent(friday + timedelta(days=2, hours=18), "stop", clocks=frozenset({"response"}))  # Mon 10:00
    raised = ClockEvent(friday + timedelta(days=2, hours=19), "priority", targets=DEFAULT_TARGETS["P1"])
    now = friday + timedelta(days=3)
    assert evaluate([start(friday, "P3"), answered], office("UTC"), now)["response"].elapsed_seconds == 4 * H
    # read under 24x7 afterwards, the 66 wall-clock hours count: no fact, breached after the fact
    assert evaluate([start(friday, "P3"), answered, raised], BusinessCalendar.always(), now)["response"].state == "breached"
    kept = ClockEvent(raised.at, "measured", targets={"response": 4 * H, "resolution": 9 * H})
    states = evaluate([start(friday, "P3"), answered, kept, raised], BusinessCalendar.always(), now)
    assert states["response"].state == "met" and states["response"].elapsed_seconds == 4 * H
    assert states["response"].target_seconds == 4 * H  # P3's: a stopped clock keeps its target
    # the running resolution clock was not stopped: the figure does not apply to it
    assert states["resolution"].elapsed_seconds == (now - friday).total_seconds()


def test_a_pause_across_a_weekend_and_a_dst_change_counts_business_time_only():
    """Calendars have their own zone (not UTC only): Berlin office hours, paused Friday 17:00 CET and
    resumed Monday 09:00 CEST, after the spring-forward Sunday."""
    cal = office()
    opened = berlin(2026, 3, 27, 16)
    events = [ClockEvent(opened, "start", targets={"resolution": 8 * H}), ClockEvent(berlin(2026, 3, 27, 17), "pause"),
              ClockEvent(berlin(2026, 3, 30, 9), "resume")]
    state = evaluate(events, cal, berlin(2026, 3, 30, 10))["resolution"]
    assert state.elapsed_seconds == 2 * H and state.paused_seconds == 2 * H  # Fri 17-18 and Mon 08-09 paused
    assert state.due_at == berlin(2026, 3, 30, 16)  # 6 business hours from Monday 10:00 CEST


def test_a_cancelling_stop_cancels_unless_met_or_breached_before():
    cal = BusinessCalendar.always()
    opened = datetime(2026, 5, 1, 8, tzinfo=UTC)
    answered = ClockEvent(opened + timedelta(minutes=10), "stop", clocks=frozenset({"response"}))
    cancelled = ClockEvent(opened + timedelta(hours=2), "stop", cancelled=True)
    later = opened + timedelta(days=2)
    # P1: response 15 min, resolution 4 h
    states = evaluate([start(opened, "P1"), answered, cancelled], cal, later)
    assert states["response"].state == "met" and states["response"].cancelled_at is None
    resolution = states["resolution"]
    assert resolution.state == "cancelled" and resolution.elapsed_seconds == 2 * H
    assert resolution.cancelled_at == resolution.stopped_at == opened + timedelta(hours=2)
    assert resolution.due_at is None and resolution.warning_at is None and resolution.breached_at is None
    assert resolution.warning_reached_at is None  # 75 % of 4 h is 3 h: not reached by the cancellation
    # nobody answered: the response breached at 15 min and stays breached; exactly at target is no breach
    states = evaluate([start(opened, "P1"), cancelled], cal, later)
    assert states["response"].state == "breached" and states["response"].breached_at == opened + timedelta(minutes=15)
    assert states["response"].cancelled_at == opened + timedelta(hours=2)
    exact = evaluate([start(opened, "P1"), ClockEvent(opened + timedelta(hours=4), "stop", cancelled=True)], cal, later)
    assert exact["resolution"].state == "cancelled"
    # the first stop counts: a cancellation after a plain stop changes nothing, and the other way round
    closed_before, closed_after = (ClockEvent(opened + timedelta(hours=hours), "stop") for hours in (1, 3))
    assert evaluate([start(opened, "P1"), closed_before, cancelled], cal, later)["resolution"].state == "met"
    assert evaluate([start(opened, "P1"), cancelled, closed_after], cal, later)["resolution"].state == "cancelled"
    # a cancellation while paused: the paused time is kept, the clock is cancelled
    paused = [start(opened, "P1"), ClockEvent(opened + timedelta(minutes=5), "pause"), cancelled]
    assert {s.state for s in evaluate(paused, cal, later).values()} == {"cancelled"}
    with pytest.raises(ValueError, match="only stop events cancel"):
        ClockEvent(opened, "pause", cancelled=True)


def test_a_target_used_up_at_closing_time_breaches_at_the_next_opening():
    cal = office()
    opened = berlin(2026, 3, 20, 10)  # Friday; P2 resolution 8 h is used up at 18:00
    events = [start(opened)]
    friday_evening = evaluate(events, cal, berlin(2026, 3, 20, 20))["resolution"]
    assert friday_evening.state == "running" and friday_evening.elapsed_seconds == 8 * H
    assert friday_evening.due_at == berlin(2026, 3, 23, 8) and friday_evening.breached_at is None
    monday = evaluate(events, cal, berlin(2026, 3, 23, 9))["resolution"]
    assert monday.state == "breached" and monday.breached_at == berlin(2026, 3, 23, 8)
    # resolved over the weekend: elapsed == target, so the clock is met
    resolved = evaluate([*events, ClockEvent(berlin(2026, 3, 21, 12), "stop")], cal, berlin(2026, 3, 23, 9))
    assert resolved["resolution"].state == "met"


def test_events_after_now_are_ignored_and_clock_jumps_do_not_crash():
    cal = office()
    opened = berlin(2026, 3, 16, 9)
    events = [
        ClockEvent(berlin(2026, 3, 16, 12), "stop"),  # given out of order on purpose
        start(opened),
        ClockEvent(berlin(2026, 3, 16, 10), "pause"),
    ]
    early = evaluate(events, cal, berlin(2026, 3, 16, 9, 30))
    assert early["response"].state == "running" and early["response"].elapsed_seconds == 1800
    middle = evaluate(events, cal, berlin(2026, 3, 16, 11))
    assert middle["response"].state == "paused" and middle["response"].stopped_at is None
    late = evaluate(events, cal, berlin(2026, 3, 16, 13))
    assert late["response"].state == "met" and late["response"].paused_seconds == 2 * H
    assert evaluate(events, cal, berlin(2026, 3, 16, 8)) == {}
    assert evaluate([], cal, opened) == {}


def test_business_seconds_over_years_with_holidays():
    # Speed is measured in the benchmark, never asserted here; this checks the year-long sums.
    cal = office(holidays=tuple(f"{year}-12-{day}" for year in range(2025, 2030) for day in (24, 25, 26)))
    first, last = berlin(2026, 1, 1), berlin(2027, 1, 1)
    assert cal.business_seconds(first, last) == (261 - 2) * 10 * H  # 261 weekdays in 2026; 24-26 Dec fall Thu-Sat
    three = cal.business_seconds(berlin(2025, 6, 1), berlin(2028, 6, 1))
    assert three == cal.business_seconds(berlin(2025, 6, 1), first) + cal.business_seconds(first, berlin(2028, 6, 1))


# ------------------------------------------------------------------------------------------
# the reference model


@dataclass(frozen=True)
class RefCalendar:
    zone: str
    hours: tuple[tuple[tuple[int, int], ...], ...]  # per weekday, (start_minute, end_minute), end <= 1440
    holidays: frozenset[date]

    def build(self) -> BusinessCalendar:
        def clock(minute: int) -> time:
            return time(0) if minute == 1440 else time(minute // 60, minute % 60)

        weekly = {day: [(clock(a), clock(b)) for a, b in spans] for day, spans in enumerate(self.hours)}
        return BusinessCalendar(timezone=self.zone, weekly_hours=weekly, holidays=self.holidays)

    def minutes(self, first: datetime, count: int) -> list[bool]:
        """For each of ``count`` minutes from ``first``: is it business time on the wall clock?"""
        zone = ZoneInfo(self.zone)
        flags = []
        instant = first.astimezone(UTC)
        for _ in range(count):
            local = instant.astimezone(zone)
            wall = local.hour * 60 + local.minute
            flags.append(
                local.date() not in self.holidays and any(a <= wall < b for a, b in self.hours[local.weekday()])
            )
            instant += MINUTE
        return flags


def reference_evaluate(
    ref: RefCalendar, events: list[ClockEvent], now: datetime, ratio: float, lookahead: int
) -> tuple[dict[str, dict[str, object]], datetime | None]:
    """Replay events minute by minute; also project running clocks ``lookahead`` minutes past now.
    Returns the expected states and the end of the simulated span."""
    applied = [event for event in sorted(events, key=lambda event: event.at) if event.at <= now]
    if not applied:
        return {}, None
    origin = applied[0].at
    span = int((now - origin) / MINUTE)
    flags = ref.minutes(origin, span + lookahead)
    by_minute: dict[int, list[ClockEvent]] = {}
    for event in applied:
        by_minute.setdefault(int((event.at - origin) / MINUTE), []).append(event)
    names = list(dict.fromkeys(name for event in applied if event.targets for name in event.targets))
    counted: dict[str, list[int]] = {name: [] for name in names}
    paused_minutes = dict.fromkeys(names, 0)
    targets: dict[str, float] = {}
    stopped: dict[str, int] = {}
    cancelled: set[str] = set()
    kept: dict[str, int] = {}  # a breach a priority change came after: its counted minute
    paused = False

    def apply(minute: int) -> None:
        nonlocal paused
        for event in by_minute.get(minute, []):
            if event.kind == "pause":
                paused = True
            elif event.kind == "resume":
                paused = False
            elif event.kind in ("start", "priority"):
                assert event.targets is not None
                for name, seconds in event.targets.items():
                    if name not in stopped:
                        before = int(targets[name] // 60) if name in targets else None
                        if before is not None and name not in kept and len(counted[name]) > before:
                            kept[name] = counted[name][before]  # a breach is a fact: no later target lifts it
                        targets[name] = seconds
            elif event.kind == "stop":
                for name in list(targets):
                    if (event.clocks is None or name in event.clocks) and name not in stopped:
                        stopped[name] = minute
                        if event.cancelled:
                            cancelled.add(name)

    for minute in range(span):
        apply(minute)
        for name in names:
            if name not in stopped and flags[minute]:
                if paused:
                    paused_minutes[name] += 1
                else:
                    counted[name].append(minute)
    apply(span)

    def at(minute: int) -> datetime:
        return origin + minute * MINUTE

    expected: dict[str, dict[str, object]] = {}
    for name, seconds in targets.items():
        target = int(seconds // 60)
        history = counted[name]
        crossed = history[target] if len(history) > target else None
        if name in kept and (crossed is None or kept[name] < crossed):
            crossed = kept[name]
        breached_at = at(crossed) if crossed is not None else None
        if len(history) > target and target and history[target] != history[target - 1] + 1:
            tally("target used up before a non-counted stretch")
        row: dict[str, object] = {
            "target_seconds": seconds,
            "elapsed_seconds": 60.0 * len(history),
            "paused_seconds": 60.0 * paused_minutes[name],
            "breached_at": breached_at,
            "stopped_at": at(stopped[name]) if name in stopped else None,
            "cancelled_at": at(stopped[name]) if name in cancelled else None,
            "due_at": None,
            "warning_at": None,
            "history": history,  # counted minutes, for tests that aim targets at them
        }
        if name in stopped:
            finished = "cancelled" if name in cancelled else "met"
            row["state"] = "breached" if breached_at else finished
        else:
            row["state"] = "breached" if breached_at else ("paused" if paused else "running")
            if not paused:
                row["due_at"] = breached_at or "beyond"
                threshold = round(ratio * seconds) // 60
                row["warning_at"] = "beyond" if len(history) < threshold and not breached_at else None
                count = len(history)
                for minute in range(span, span + lookahead):
                    if flags[minute]:
                        count += 1
                        if count == threshold and row["warning_at"] == "beyond":
                            row["warning_at"] = at(minute + 1)
                        if count == target + 1 and row["due_at"] == "beyond":
                            row["due_at"] = at(minute)
        expected[name] = row
    return expected, at(span + lookahead)


# ------------------------------------------------------------------------------------------
# strategies

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Shanghai", "UTC")


def _offset_changes(zone_name: str, years: range) -> list[datetime]:
    """UTC instants (to the hour) where the zone's offset changes, by a plain hourly scan."""
    zone = ZoneInfo(zone_name)
    found = []
    instant = datetime(years.start, 1, 1, tzinfo=UTC)
    previous = instant.astimezone(zone).utcoffset()
    while instant.year < years.stop:
        instant += timedelta(hours=1)
        offset = instant.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(instant)
            previous = offset
    return found


ANCHORS = {
    "Europe/Berlin": _offset_changes("Europe/Berlin", range(2025, 2027)),
    "America/New_York": _offset_changes("America/New_York", range(2025, 2027)),
    "Asia/Shanghai": _offset_changes("Asia/Shanghai", range(1988, 1990)),  # China observed DST until 1991
    "UTC": [datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 2, 28, 23, tzinfo=UTC)],
}
assert (
    len(ANCHORS["Europe/Berlin"]) == 4 and len(ANCHORS["America/New_York"]) == 4 and len(ANCHORS["Asia/Shanghai"]) == 4
)

BOUNDARIES = (0, 30, 60, 90, 120, 150, 180, 210, 480, 720, 1080, 1380, 1440)  # many fall into DST gaps and folds


@st.composite
def interval(draw: st.DrawFn) -> tuple[int, int]:
    first = draw(st.one_of(st.sampled_from(BOUNDARIES[:-1]), st.integers(0, 1439)))
    later = [minute for minute in BOUNDARIES if minute > first]
    return first, draw(st.one_of(st.sampled_from(later), st.integers(first + 1, 1440)))


ALWAYS = tuple(((0, 1440),) for _ in range(7))
OFFICE = tuple(((480, 1080),) if day < 5 else () for day in range(7))
weekly = st.one_of(
    st.just(ALWAYS),
    st.just(OFFICE),
    st.tuples(*[st.lists(interval(), max_size=3).map(tuple) for _ in range(7)]),
)


@st.composite
def zone_and_start(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):
        anchor = draw(st.sampled_from(ANCHORS[zone]))
        # mostly before the change; whole hours often, so targets run out exactly at opening/closing times
        shift = draw(st.one_of(st.integers(-3 * 1440, 1440), st.integers(-72, 24).map(lambda hours: hours * 60)))
        return zone, anchor + shift * MINUTE
    base = datetime(2020, 1, 1, tzinfo=UTC)
    return zone, base + draw(
        st.one_of(st.integers(0, 10 * 366 * 1440), st.integers(0, 10 * 366 * 24).map(lambda h: h * 60))
    ) * MINUTE


@st.composite
def ref_calendars(draw: st.DrawFn, zone: str, around: datetime, hours: st.SearchStrategy = weekly) -> RefCalendar:
    local_day = around.astimezone(ZoneInfo(zone)).date()
    holidays = draw(st.sets(st.integers(-3, 14), max_size=4))
    return RefCalendar(zone, draw(hours), frozenset(local_day + timedelta(days=k) for k in holidays))


target = st.one_of(  # multiples of 4 minutes, so every warning ratio lands on a whole minute
    st.sampled_from([0, 240, 720, 3600, 4 * 3600, 8 * 3600, 10 * 3600]),
    st.integers(0, 60).map(lambda k: k * 240),
    st.integers(0, 300).map(lambda k: k * 240),
)
names = st.sampled_from(["response", "resolution", "followup"])


@st.composite
def histories(draw: st.DrawFn, origin: datetime, span: int) -> list[ClockEvent]:
    first = ClockEvent(
        origin, "start", targets=draw(st.dictionaries(st.sampled_from(["response", "resolution"]), target, min_size=1))
    )
    events = [first]
    for _ in range(draw(st.integers(0, 8))):
        at = origin + draw(st.one_of(st.integers(0, span), st.integers(0, span // 60).map(lambda h: h * 60))) * MINUTE
        kind = draw(st.sampled_from(["pause", "resume", "priority", "stop"]))
        if kind == "priority":
            events.append(ClockEvent(at, kind, targets=draw(st.dictionaries(names, target, min_size=1, max_size=3))))
        elif kind == "stop":
            clocks = draw(
                st.one_of(
                    st.none(),
                    st.frozensets(st.sampled_from(["response", "resolution", "followup", "other"]), min_size=1),
                )
            )
            events.append(ClockEvent(at, kind, clocks=clocks, cancelled=draw(st.booleans())))
        else:
            events.append(ClockEvent(at, kind))
    return events


@st.composite
def scenarios(draw: st.DrawFn, long: bool = False):
    zone, origin = draw(zone_and_start())
    ref = draw(ref_calendars(zone, origin, st.one_of(st.just(OFFICE), weekly) if long else weekly))
    span = draw(
        st.one_of(st.integers(0, 6 * 1440), st.integers(1440, 6 * 1440)) if not long else st.integers(1440, 6 * 1440)
    )
    events = draw(histories(origin, span))
    # now: usually after the start, sometimes before it or before later events (a clock jump)
    after = st.integers(1440, span + 600) if long else st.integers(0, span + 600)
    now = origin + draw(st.one_of(after, st.integers(-120, span + 600)) if not long else after) * MINUTE
    ratio = draw(st.sampled_from([0.5, 0.75, 1.0]))
    return ref, events, now, ratio


# ------------------------------------------------------------------------------------------
# properties


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_evaluate_matches_the_minute_by_minute_reference(scenario):
    ref, events, now, ratio = scenario
    actual = compare_with_reference(ref, events, now, ratio)
    tally(f"states: {sorted({state.state for state in actual.values()})}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(long=True), st.data())
def test_targets_used_up_right_before_a_closed_or_paused_stretch(scenario, data):
    """Aim the target at the end of a counted stretch (closing time, holiday, pause): elapsed ==
    target there, and the breach must wait for the next counted minute."""
    ref, events, now, _ = scenario
    origin, events = events[0].at, [event for event in events[1:] if event.kind != "priority"]
    probe = [ClockEvent(origin, "start", targets={"resolution": 10**8}), *events]
    history = reference_evaluate(ref, probe, now, 1.0, 0)[0]
    counted = history["resolution"]["history"]
    ends = [k for k in range(1, len(counted)) if counted[k] != counted[k - 1] + 1]
    # without such a stretch (24x7, stopped early, ...) aim at the last counted minute instead
    used_up = data.draw(st.sampled_from(ends)) if ends else len(counted)
    first = ClockEvent(origin, "start", targets={"resolution": 60 * used_up, "response": 60 * max(0, used_up - 1)})
    compare_with_reference(ref, [first, *events], now, 1.0)


def compare_with_reference(
    ref: RefCalendar, events: list[ClockEvent], now: datetime, ratio: float
) -> dict[str, ClockState]:
    lookahead = 4 * 1440
    expected, horizon = reference_evaluate(ref, events, now, ratio, lookahead)
    actual = evaluate(events, ref.build(), now, warning_ratio=ratio)
    zone = ZoneInfo(ref.zone)
    if horizon is not None and events[0].at.astimezone(zone).utcoffset() != horizon.astimezone(zone).utcoffset():
        tally("span crosses a UTC offset change")
    assert list(actual) == list(expected)
    for name, row in expected.items():
        state = actual[name]
        assert state.name == name
        for key in ("target_seconds", "elapsed_seconds", "paused_seconds", "state", "breached_at", "stopped_at",
                    "cancelled_at"):
            assert getattr(state, key) == row[key], (name, key)
        for key in ("due_at", "warning_at"):
            got, want = getattr(state, key), row[key]
            if want == "beyond":  # not reached within the simulated span
                assert got is None or got >= horizon, (name, key, got)
            else:
                assert got == want, (name, key)
        for instant in (state.due_at, state.warning_at, state.breached_at, state.stopped_at):
            assert instant is None or instant.tzinfo is UTC
    return actual


@st.composite
def measured_spans(draw: st.DrawFn):
    zone, origin = draw(zone_and_start())
    ref = draw(ref_calendars(zone, origin))
    return ref, origin, draw(st.integers(0, 4 * 1440)), draw(st.integers(0, 1440))


@settings(max_examples=300, deadline=None)
@given(measured_spans())
def test_business_seconds_and_add_match_the_reference(case):
    ref, origin, length, need = case
    cal = ref.build()
    flags = ref.minutes(origin, length + 6 * 1440)
    assert cal.business_seconds(origin, origin + length * MINUTE) == 60 * sum(flags[:length])
    for minute, flag in enumerate(flags[:length]):
        if minute % 97 == 0:
            assert cal.is_business_time(origin + minute * MINUTE) == flag
    # add: the earliest instant with `need` business minutes (need == 0: the next business minute)
    count, expected = 0, None
    for minute, flag in enumerate(flags):
        if need == 0 and flag:
            expected = origin + minute * MINUTE
            break
        count += flag
        if need and count == need:
            expected = origin + (minute + 1) * MINUTE
            break
    if expected is not None:
        assert cal.add_business_seconds(origin, need * 60) == expected
    elif any(ref.hours):
        assert cal.add_business_seconds(origin, need * 60) >= origin + len(flags) * MINUTE


instants = st.integers(0, 30 * 366 * 86400 * 10**6).map(
    lambda us: datetime(2005, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
)


@st.composite
def any_calendar(draw: st.DrawFn, around: datetime) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    return draw(ref_calendars(zone, around)).build()


@settings(max_examples=300, deadline=None)
@given(st.data(), instants, st.floats(0, 40 * 86400, allow_nan=False))
def test_business_seconds_of_add_business_seconds_is_identity(data, origin, seconds):
    cal = data.draw(any_calendar(origin))
    if not any(cal.weekly_hours.values()):
        return
    due = cal.add_business_seconds(origin, seconds)
    assert due >= origin and due.tzinfo is UTC
    assert cal.business_seconds(origin, due) == pytest.approx(seconds, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(st.data(), instants, st.integers(0, 90 * 86400 * 10**6), st.integers(0, 90 * 86400 * 10**6))
def test_business_seconds_is_additive(data, a, first, second):
    cal = data.draw(any_calendar(a))
    b = a + timedelta(microseconds=first)
    c = b + timedelta(microseconds=second)
    whole = cal.business_seconds(a, c)
    assert whole == pytest.approx(cal.business_seconds(a, b) + cal.business_seconds(b, c), abs=1e-6)
    assert 0 <= whole <= (c - a).total_seconds()
    assert cal.business_seconds(c, a) == 0


@settings(max_examples=100, deadline=None)
@given(st.data(), instants, st.integers(0, 90 * 86400 * 10**6))
def test_always_in_any_zone_is_elapsed_time_and_dict_round_trips(data, a, length):
    zone = data.draw(st.sampled_from(ZONES))
    b = a + timedelta(microseconds=length)
    assert BusinessCalendar(timezone=zone).business_seconds(a, b) == pytest.approx((b - a).total_seconds(), abs=1e-6)
    cal = data.draw(any_calendar(a))
    assert BusinessCalendar.from_dict(cal.to_dict()) == cal
