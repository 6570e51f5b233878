"""The arithmetic of maintenance windows (app/services/maintenance.py): weekly occurrences on the
clocks of a time zone across daylight saving, windows past midnight, touching occurrences joined
into one stretch, whether a planned window lies within one, and the next stretch long enough."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from app.services import maintenance
from app.services.maintenance import (
    LOOKAHEAD_DAYS,
    Rule,
    clock_minute,
    clock_text,
    covers,
    day_bits,
    day_names,
    next_fit,
    occurrences,
)

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rule(days: list[str], start: str, end: str, zone: str = "UTC") -> Rule:
    opens, closes = clock_minute(start), clock_minute(end)
    assert opens is not None and closes is not None
    return Rule(day_bits(days), opens, closes, zone)


SUNDAY_BERLIN = rule(["sun"], "02:00", "06:00", "Europe/Berlin")


def test_a_window_keeps_its_local_time_across_daylight_saving():
    winter = occurrences([SUNDAY_BERLIN], at("2026-03-16 00:00"), at("2026-03-23 00:00"))
    summer = occurrences([SUNDAY_BERLIN], at("2026-04-06 00:00"), at("2026-04-13 00:00"))
    assert winter == [(at("2026-03-22 01:00"), at("2026-03-22 05:00"))]  # CET, UTC+1
    assert summer == [(at("2026-04-12 00:00"), at("2026-04-12 04:00"))]  # CEST, UTC+2
    # the night the clocks jump from 02:00 to 03:00, the window opens at the jump and lasts three hours
    jump = occurrences([SUNDAY_BERLIN], at("2026-03-29 00:00"), at("2026-03-30 00:00"))
    assert jump == [(at("2026-03-29 01:00"), at("2026-03-29 04:00"))]
    # and the night they go back, it lasts five
    back = occurrences([SUNDAY_BERLIN], at("2026-10-25 00:00"), at("2026-10-26 00:00"))
    assert back == [(at("2026-10-25 00:00"), at("2026-10-25 05:00"))]


def test_a_window_past_midnight_ends_on_the_next_day_and_equal_times_make_a_whole_day():
    nightly = rule(["mon", "tue", "wed", "thu", "fri"], "22:00", "02:00")
    assert covers([nightly], at("2026-03-10 23:00"), at("2026-03-11 01:30"))  # Tuesday night
    assert not covers([nightly], at("2026-03-10 21:30"), at("2026-03-10 23:00"))  # starts before it opens
    assert not covers([nightly], at("2026-03-11 01:00"), at("2026-03-11 02:01"))  # ends after it closes
    assert not covers([nightly], at("2026-03-14 23:00"), at("2026-03-15 01:00"))  # Saturday night: none
    # Friday's window runs into Saturday morning
    assert covers([nightly], at("2026-03-14 00:00"), at("2026-03-14 02:00"))
    whole = rule(["wed"], "00:00", "00:00")
    assert occurrences([whole], at("2026-03-09 00:00"), at("2026-03-16 00:00")) == [
        (at("2026-03-11 00:00"), at("2026-03-12 00:00"))]


def test_touching_occurrences_are_one_stretch_but_a_gap_splits_them():
    weekend = rule(["sat", "sun"], "00:00", "00:00")
    assert covers([weekend], at("2026-03-14 20:00"), at("2026-03-15 04:00"))  # Saturday night into Sunday
    assert occurrences([weekend], at("2026-03-13 00:00"), at("2026-03-17 00:00")) == [
        (at("2026-03-14 00:00"), at("2026-03-16 00:00"))]
    assert not covers([weekend], at("2026-03-13 23:00"), at("2026-03-14 01:00"))  # from Friday
    # two windows of one CI that overlap join too; with a minute between them they do not
    evening, night = rule(["tue"], "18:00", "21:00"), rule(["tue"], "20:00", "23:00")
    assert covers([evening, night], at("2026-03-10 18:30"), at("2026-03-10 22:30"))
    late = rule(["tue"], "21:01", "23:00")
    assert not covers([evening, late], at("2026-03-10 18:30"), at("2026-03-10 22:30"))
    assert covers([evening, late], at("2026-03-10 21:01"), at("2026-03-10 22:30"))


def test_the_next_stretch_long_enough_for_a_change():
    short, long = rule(["tue"], "01:00", "02:00"), rule(["sun"], "02:00", "06:00")
    monday = at("2026-03-09 09:00")
    assert next_fit([short, long], monday, timedelta(minutes=30)) == (at("2026-03-10 01:00"), at("2026-03-10 02:00"))
    assert next_fit([short, long], monday, timedelta(hours=3)) == (at("2026-03-15 02:00"), at("2026-03-15 06:00"))
    assert next_fit([short, long], monday, timedelta(hours=5)) is None
    # a stretch that opened before the moment asked about does not count: the next one does
    assert next_fit([long], at("2026-03-15 03:00"), timedelta(hours=1)) == (at("2026-03-22 02:00"), at("2026-03-22 06:00"))
    # a window once a year would be found within 92 days only
    assert next_fit([rule(["mon"], "00:00", "01:00")], monday, timedelta(hours=2)) is None


def test_a_stretch_already_open_is_not_the_next_one_and_none_opens_beyond_the_lookahead():
    weekdays = rule(["mon", "tue", "wed", "thu", "fri"], "00:00", "00:00")
    wednesday = at("2026-03-11 00:00")
    # open since Monday: the next stretch is the following week's, not "Wednesday to Saturday"
    assert next_fit([weekdays], wednesday, timedelta(hours=1)) == (at("2026-03-16 00:00"), at("2026-03-21 00:00"))
    # a stretch that opened before the range starts shows where it opened (and goes on to the end's day)
    assert occurrences([weekdays], wednesday, at("2026-03-12 00:00")) == [(at("2026-03-09 00:00"), at("2026-03-13 00:00"))]
    # a whole Sunday in Berlin lasts 25 hours once a year (the clocks go back on 25 October 2026):
    # a 24.5-hour change fits then only, 95 days after 22 July, beyond the 92 days looked at
    sunday = rule(["sun"], "00:00", "00:00", "Europe/Berlin")
    assert next_fit([sunday], at("2026-07-22 00:00"), timedelta(hours=24, minutes=30)) is None
    assert next_fit([sunday], at("2026-08-01 00:00"), timedelta(hours=24, minutes=30)) == (
        at("2026-10-24 22:00"), at("2026-10-25 23:00"))


def test_a_change_planned_for_years_is_looked_at_for_the_lookahead_only(monkeypatch):
    """One change planned from 2026 to 3026 must not make every schedule read walk a thousand
    years of windows: the work is bounded by the lookahead, whatever the window's length."""
    steps = []
    real = maintenance._at
    monkeypatch.setattr(maintenance, "_at", lambda *args: steps.append(1) or real(*args))
    daily = [rule(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "22:00", "02:00"), rule(["sat"], "00:00", "00:00")]
    start, end = at("2026-01-06 00:00"), at("3026-01-06 00:00")
    assert not covers(daily, start, end)
    always = [rule(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00", "00:00", "Europe/Berlin")]
    assert covers(always, start, end)  # no gap in the 92 days looked at: open throughout
    assert len(steps) <= 2 * 3 * (LOOKAHEAD_DAYS + 4) * 2, len(steps)


def test_a_stored_zone_this_machine_does_not_know_is_read_as_utc(caplog):
    gone = Rule(day_bits(["sun"]), 120, 360, "Nowhere/Gone")
    assert occurrences([gone], at("2026-03-09 00:00"), at("2026-03-16 00:00")) == [
        (at("2026-03-15 02:00"), at("2026-03-15 06:00"))]
    assert "Nowhere/Gone" in caplog.text
    assert "localtime" not in maintenance.zone_names() and "Europe/Berlin" in maintenance.zone_names()


def test_a_monthly_window_opens_in_its_week_of_the_month_only():
    """Patch Tuesday: the second Tuesday of the month (March 2026 starts on a Sunday: its Tuesdays
    are the 3rd, 10th, 17th, 24th and 31st)."""
    tuesday = day_bits(["tue"])
    march = (at("2026-03-01 00:00"), at("2026-04-01 00:00"))
    opened = {week: [opens.day for opens, _ in occurrences([Rule(tuesday, 22 * 60, 2 * 60, "UTC", week=week)], *march)]
              for week in (1, 2, 3, 4, 5, None)}
    assert opened == {1: [3], 2: [10], 3: [17], 4: [24], 5: [31], None: [3, 10, 17, 24, 31]}
    # February 2026 has four Tuesdays: its last is its fourth; a window past midnight ends in March
    last = Rule(tuesday, 22 * 60, 2 * 60, "UTC", week=5)
    assert occurrences([last], at("2026-02-01 00:00"), at("2026-03-01 00:00")) == [
        (at("2026-02-24 22:00"), at("2026-02-25 02:00"))]
    patch_tuesday = Rule(tuesday, 22 * 60, 2 * 60, "UTC", week=2)
    assert next_fit([patch_tuesday], at("2026-03-11 00:00"), timedelta(hours=3)) == (
        at("2026-04-14 22:00"), at("2026-04-15 02:00"))
    assert covers([patch_tuesday], at("2026-03-10 23:00"), at("2026-03-11 01:00"))
    assert not covers([patch_tuesday], at("2026-03-17 23:00"), at("2026-03-18 01:00"))
    # each weekday counts on its own: March 2026's first Sunday (the 1st) comes before its first
    # Saturday (the 7th), so "the first Saturday and Sunday" is two days apart, no weekend
    first_weekend = Rule(day_bits(["sat", "sun"]), 0, 0, "UTC", week=1)
    assert occurrences([first_weekend], *march) == [(at("2026-03-01 00:00"), at("2026-03-02 00:00")),
                                                    (at("2026-03-07 00:00"), at("2026-03-08 00:00"))]


def test_times_of_day_and_days_are_read_strictly():
    assert [clock_minute(t) for t in ("00:00", "2:05", "23:59")] == [0, 125, 1439]
    for wrong in ("24:00", "12:60", "12", "12:5", "-1:00", "١٢:٠٠", "12:00:00", "", " : "):
        assert clock_minute(wrong) is None, wrong
    assert [clock_text(m) for m in (0, 125, 1439)] == ["00:00", "02:05", "23:59"]
    assert day_names(day_bits(["sun", "mon", "sun"])) == ["mon", "sun"]


@st.composite
def rules(draw: st.DrawFn) -> list[Rule]:
    """A few minute-aligned windows in UTC or a zone with daylight saving."""
    count = draw(st.integers(1, 3))
    zone = draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
    step = st.integers(0, 1439 // 15).map(lambda n: n * 15)
    weeks = st.one_of(st.none(), st.integers(1, 5))
    return [Rule(draw(st.integers(1, 127)), draw(step), draw(step), zone, week=draw(weeks)) for _ in range(count)]


@settings(max_examples=150, deadline=None)
@given(rules(), st.integers(0, 21 * 24 * 4), st.integers(1, 3 * 24 * 4))
def test_covers_agrees_with_looking_at_every_quarter_hour(windows: list[Rule], offset: int, length: int):
    """A window lies within one stretch exactly when every quarter hour of it lies in some
    occurrence (all times are quarter-hour aligned, so looking at each quarter hour is exact)."""
    start = at("2026-03-16 00:00") + timedelta(minutes=15 * offset)  # weeks around the spring jumps
    end = start + timedelta(minutes=15 * length)
    spans = occurrences(windows, start - timedelta(days=3), end + timedelta(days=3))
    quarters = [start + timedelta(minutes=15 * n) for n in range(length)]
    every = all(any(opens <= q < closes for opens, closes in spans) for q in quarters)
    assert covers(windows, start, end) == every
