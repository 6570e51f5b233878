"""The reports' time worked section: the minutes the desk logged on days of the period (the first
day in, the day after the last out), per kind with the records worked on, per person most time
first, and only the report's kind when it names one."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tests.http.desk import Desk

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)


def test_time_worked_counts_the_days_of_the_period_per_kind_and_person(client: Any, services: Any, clock: Any) -> None:
    desk = Desk(client, services)
    clock.set(NOW)
    first = desk.start("rita", "incident_management", {"title": "VPN down", "description": "x", "category": "network",
                                                       "impact": "low", "urgency": "low"})["data"]["record_number"]
    second = desk.start("rita", "incident_management", {"title": "Printer", "description": "x", "category": "hardware",
                                                        "impact": "low", "urgency": "low"})["data"]["record_number"]
    problem = desk.start("alex", "problem_management", {"title": "Printers keep jamming",
                                                        "description": "Three this week"})["data"]["record_number"]
    people = {name: services.users.get_by_username(name) for name in ("alex", "nina", "olga")}

    def log(who: str, number: str, minutes: int, day: str) -> None:
        services.work.log(people[who], number, {"minutes": minutes, "worked_on": day})
        services.session.commit()

    log("alex", first, 60, "2026-03-10")   # the period's first day: counted
    log("alex", first, 30, "2026-03-14")
    log("alex", second, 15, "2026-03-14")
    log("nina", second, 120, "2026-03-19")
    log("olga", problem, 45, "2026-03-12")
    log("nina", first, 500, "2026-03-09")  # the day before the period
    log("olga", first, 500, "2026-03-20")  # the period's end ([from, to): not counted)

    report = services.reports.summary(people["olga"], "2026-03-10", "2026-03-20")["time_worked"]
    assert report == {
        "total_minutes": 270,
        "by_kind": [{"kind": "incident", "minutes": 225, "records": 2}, {"kind": "problem", "minutes": 45, "records": 1}],
        "by_person": [{"user": "nina", "minutes": 120, "records": 1}, {"user": "alex", "minutes": 105, "records": 2},
                      {"user": "olga", "minutes": 45, "records": 1}],
    }
    only_problems = services.reports.summary(people["olga"], "2026-03-10", "2026-03-20", kind="problem")["time_worked"]
    assert only_problems == {"total_minutes": 45, "by_kind": [{"kind": "problem", "minutes": 45, "records": 1}],
                             "by_person": [{"user": "olga", "minutes": 45, "records": 1}]}
    wider = services.reports.summary(people["olga"], "2026-03-09", "2026-03-21")["time_worked"]
    assert wider["total_minutes"] == 1270
