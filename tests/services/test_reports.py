"""ReportService: every section's figures over records made by the shipped processes at known
instants (tests/services/report_scenario.py works them out), the period's rules and who may read."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import select

from app.errors import PermissionDenied, ValidationFailed
from app.models import AuditEvent
from app.unit_of_work import run_unit_of_work
from tests.conftest import sent_statements
from tests.http.desk import Desk
from tests.services.report_scenario import EXPECTED, NOW, PERIOD, build


@pytest.fixture()
def desk(client: Any, services: Any, clock: Any) -> Desk:
    desk = Desk(client, services)
    build(desk, clock)
    return desk


def user(services: Any, name: str) -> Any:
    return services.users.get_by_username(name)


def test_every_section_over_the_period(desk: Desk, services: Any) -> None:
    report = services.reports.summary(user(services, "olga"), *PERIOD)
    assert report["period"] == {"from": "2026-01-10", "to": "2026-01-25", "kind": None,
                                "generated_at": NOW.isoformat()}
    for section, expected in EXPECTED.items():
        assert report[section] == expected, section


def test_the_end_of_the_period_is_not_included(desk: Desk, services: Any) -> None:
    # [Jan 20, Jan 21): A, C and D were opened, A and C resolved; E (Jan 21 05:00) is after it
    report = services.reports.summary(user(services, "aude"), "2026-01-20", "2026-01-21", "incident")
    assert report["volume"] == [{"kind": "incident", "opened": 3, "resolved": 2, "closed": 1}]
    assert report["resolution"] == [
        {"kind": "incident", "priority": "P3", "count": 2, "mean_hours": 3.0, "median_hours": 3.0}]
    assert report["incidents_by_category"] == [{"category": "network", "count": 2}, {"category": "hardware", "count": 1}]
    # what is open now does not depend on the period
    assert report["backlog"] == EXPECTED["backlog"] and report["workload"] == EXPECTED["workload"]
    assert report["aging"] == EXPECTED["aging"][:1]


def test_midnight_belongs_to_the_day_it_starts(desk: Desk, services: Any) -> None:
    # B2 was resolved and closed, and F opened, at Jan 22 00:00: in [Jan 22, Jan 23), not [Jan 21, Jan 22)
    olga = user(services, "olga")
    day = services.reports.summary(olga, "2026-01-21", "2026-01-22", "incident")
    assert day["volume"] == [{"kind": "incident", "opened": 3, "resolved": 2, "closed": 2}]  # E, B1, B2; D, B1
    assert day["resolution"] == [
        {"kind": "incident", "priority": "P2", "count": 1, "mean_hours": 1.0, "median_hours": 1.0},
        {"kind": "incident", "priority": "P3", "count": 1, "mean_hours": 27.0, "median_hours": 27.0}]
    assert day["incidents_by_priority"] == [{"priority": "P2", "count": 2}, {"priority": "P4", "count": 1}]
    assert day["sla"][0] == {"name": "response", "met": 2, "breached": 0, "cancelled": 0, "open": 1, "percent": 100.0}
    next_day = services.reports.summary(olga, "2026-01-22", "2026-01-23", "incident")
    assert next_day["volume"] == [{"kind": "incident", "opened": 1, "resolved": 1, "closed": 1}]  # F; B2; B2
    assert next_day["resolution"] == [
        {"kind": "incident", "priority": "P2", "count": 1, "mean_hours": 5.0, "median_hours": 5.0}]
    assert next_day["sla"] == [{"name": "response", "met": 0, "breached": 0, "cancelled": 0, "open": 1, "percent": None},
                               {"name": "resolution", "met": 0, "breached": 0, "cancelled": 0, "open": 1, "percent": None}]


def test_one_kind(desk: Desk, services: Any) -> None:
    report = services.reports.summary(user(services, "alex"), *PERIOD, kind="change")
    assert report["volume"] == [EXPECTED["volume"][1]]
    assert report["backlog"] == [] and report["workload"] == [] and report["resolution"] == []
    assert report["incidents_by_category"] == [] and report["incidents_by_priority"] == [] and report["sla"] == []
    assert report["changes"] == EXPECTED["changes"]
    # the changes were closed on Jan 12
    assert services.reports.summary(user(services, "alex"), "2026-01-05", "2026-01-12", "change")["changes"]["closed"] == 0
    assert services.reports.summary(user(services, "alex"), "2026-01-12", "2026-01-13", "change")["changes"]["closed"] == 3
    incidents = services.reports.summary(user(services, "alex"), *PERIOD, kind="incident")
    assert incidents["changes"]["closed"] == 0 and incidents["sla"] == EXPECTED["sla"]


def test_the_default_period_is_the_30_days_up_to_today(desk: Desk, services: Any) -> None:
    report = services.reports.summary(user(services, "ada"))
    assert (report["period"]["from"], report["period"]["to"]) == ("2025-12-24", "2026-01-23")
    assert report["volume"][0] == {"kind": "incident", "opened": 8, "resolved": 5, "closed": 4}
    assert services.reports.period("2026-01-01", None) == (datetime(2026, 1, 1).date(), datetime(2026, 1, 31).date())
    assert services.reports.period(None, "2026-01-31")[0] == datetime(2026, 1, 1).date()


@pytest.mark.parametrize(("start", "end", "field"), [
    ("2026-01-10", "2026-01-09", "from"),
    ("2025-01-01", "2026-01-03", "to"),
    ("2026-13-01", None, "from"),
    ("20260101", None, "from"),
    (None, "yesterday", "to"),
])
def test_a_bad_period_names_its_field(services: Any, users: Any, start: Any, end: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.reports.summary(users["olga"], start, end)
    assert list(caught.value.details["fields"]) == [field]


def test_a_whole_leap_year_is_the_longest_period(services: Any, users: Any) -> None:
    assert services.reports.summary(users["olga"], "2024-01-01", "2025-01-01")["volume"][0]["opened"] == 0


def test_an_unknown_kind_is_refused(services: Any, users: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.reports.summary(users["olga"], kind="outage")
    assert list(caught.value.details["fields"]) == ["kind"]


@pytest.mark.parametrize("name", ["rita", "amy"])
def test_requesters_and_approvers_are_refused_and_it_is_audited(services: Any, users: Any, name: str) -> None:
    with pytest.raises(PermissionDenied):
        run_unit_of_work(services, lambda: services.reports.summary(users[name]))
    refused = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert [(e.actor, e.payload["action"]) for e in refused] == [(name, "read_reports")]


def test_reports_are_read_from_aggregates_only(desk: Desk, services: Any) -> None:
    olga = user(services, "olga")
    with sent_statements(services.session.connection()) as seen:
        services.reports.summary(olga, *PERIOD)
    selects = [s for s in seen if s.startswith("SELECT") and "user_role" not in s]  # the caller's roles
    # one per section (two for the incidents and the knowledge base), whatever the number of
    # records; availability reads the period's status notices (none here; with some, one more
    # reads their timelines): a union of spans is no SQL aggregate, and a desk posts tens of
    # notices a month, not records' thousands; time worked reads two (by kind, by person)
    assert len(selects) == 15
    grouped = [s for s in selects if "GROUP BY" in s]
    assert len(grouped) == 13  # and the knowledge base's four counts, in one statement of subqueries


def test_a_second_frozen_instant(desk: Desk, services: Any, clock: Any) -> None:
    # on Jan 24 12:00 E (3 d 7 h) and C (4 d 1 h) are 3-7 days old, F (2 d 12 h) 1-3 days
    clock.set(datetime(2026, 1, 24, 12, 0, tzinfo=timezone.utc))
    aging = services.reports.summary(user(services, "olga"), *PERIOD, kind="incident")["aging"]
    assert aging == [{"kind": "incident", "days_0_1": 0, "days_1_3": 1, "days_3_7": 2, "days_7_30": 1,
                      "days_30_plus": 0, "total": 4}]
