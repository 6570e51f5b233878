"""Saving an SLA policy checks its calendar with the clocks' own code: a calendar the clocks could
not run under (no business hours, bad times, bad holidays) is refused with 422 naming the field,
and nothing is stored."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.models import SlaClock, SlaPolicy, Ticket
from tests.http.desk import Desk
from tests.http.helpers import assert_error

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "low", "urgency": "low"}
POLICY = {"kind": "incident", "priority": "P4", "response_seconds": 28800, "resolution_seconds": 259200}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def _put(desk: Desk, calendar: object):
    return desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json={**POLICY, "calendar": calendar})


def _stored(desk: Desk) -> int:
    desk.services.session.rollback()
    return desk.services.session.scalar(select(func.count()).select_from(SlaPolicy)) or 0


@pytest.mark.parametrize("calendar", [
    {"hours": {}},
    {"hours": {"mon": []}},
    {"timezone": "Europe/Berlin", "hours": {"mon": [], "sat": []}, "holidays": ["2026-12-25"]},
])
def test_a_calendar_without_business_hours_is_refused(desk: Desk, calendar):
    body = assert_error(_put(desk, calendar), 422, "validation_failed")
    fields = body["details"]["fields"]
    assert set(fields) == {"calendar.hours"}, body
    assert "no business hours" in fields["calendar.hours"][0]
    assert _stored(desk) == 0
    assert desk.client.get("/api/v1/sla/policies", headers=desk.auth("olga")).get_json()["items"] == []


def test_new_records_keep_clocks_that_fall_due_after_a_refused_calendar(desk: Desk):
    assert_error(_put(desk, {"hours": {}}), 422)
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    clocks = response.get_json()["clocks"]
    assert clocks and all(c["due_at"] is not None for c in clocks), clocks


BAD_CALENDARS = [
    ({"hours": {"mon": [["18:00", "08:00"]]}}, "calendar.hours.mon[0]"),
    ({"hours": {"tue": [["08:00", "18:00"], ["8am", "9am"]]}}, "calendar.hours.tue[1]"),
    ({"hours": {"wed": [["24:00", "24:00"]]}}, "calendar.hours.wed[0]"),
    ({"hours": {"thu": [["08:00", "25:00"]]}}, "calendar.hours.thu[0]"),
    ({"hours": {"xyz": [["08:00", "18:00"]]}}, "calendar.hours.xyz"),
    ({"hours": "mon-fri"}, "calendar.hours"),
    ({"holidays": ["2026-12-25", "tomorrow"]}, "calendar.holidays[1]"),
    ({"holidays": ["2026-02-30"]}, "calendar.holidays[0]"),
    ({"holidays": "2026-12-25"}, "calendar.holidays"),
    ({"timezone": "Mars/Olympus"}, "calendar.timezone"),
    ({"zone": "UTC"}, "calendar"),
]


def test_other_calendar_problems_are_named_by_field(desk: Desk):
    for calendar, field in BAD_CALENDARS:
        body = assert_error(_put(desk, calendar), 422, "validation_failed")
        assert set(body["details"]["fields"]) == {field}, (calendar, body)
        assert _stored(desk) == 0


def test_a_calendar_with_some_business_hours_is_saved_and_clocks_fall_due(desk: Desk):
    assert_error(_put(desk, {"hours": {"mon": []}}), 422)
    calendar = {"timezone": "Europe/Berlin", "hours": {"mon": [], "tue": [["08:00", "12:00"]]}, "holidays": ["2026-12-25"]}
    saved = _put(desk, calendar)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["calendar"] == calendar
    assert _stored(desk) == 1
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clocks = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex")).get_json()["clocks"]
    assert clocks and all(c["due_at"] is not None for c in clocks), clocks


def test_a_calendar_changed_under_running_clocks_is_swept_by_their_new_due_instants(desk: Desk, clock):
    """Running clocks are read under the calendar now in force; the sweep must look at them by the
    new instants too, not by the ones stored under the old calendar (QA: business hours replaced by
    24x7, the record page said breached while the sweep, the breached list and the task lists
    waited days for the instants stored before)."""
    office = {"timezone": "UTC", "hours": {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}}
    assert _put(desk, office).status_code == 200  # P4: resolution 72 business hours, warned at 54
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]  # Monday 09:00
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P4", "assignment_group": "NetworkTeam"})
    clock.advance(timedelta(hours=1))
    assert _put(desk, {}).status_code == 200  # 24x7 from now on: warned Wednesday 15:00, due Thursday 09:00
    services = desk.services
    clock.advance(timedelta(days=2, hours=5, minutes=30))  # Wednesday 15:30
    assert services.sla.sweep() == {"warnings": 1, "breaches": 0}
    clock.advance(timedelta(hours=18))  # Thursday 09:30
    assert services.sla.sweep() == {"warnings": 0, "breaches": 1}
    services.session.commit()
    resolution = services.session.scalar(select(SlaClock).join(Ticket, Ticket.id == SlaClock.ticket_id)
                                         .where(Ticket.number == number, SlaClock.name == "resolution"))
    assert resolution.state == "breached" and resolution.escalated
    assert resolution.breached_at == datetime(2026, 1, 8, 9, 0, tzinfo=timezone.utc)
    assert services.sla.breached_open_records(services.users.get_by_username("aude")) == 1


def test_deleting_a_business_hours_policy_has_the_sweep_follow_the_built_in_24x7_terms(desk: Desk, clock):
    office = {"timezone": "UTC", "hours": {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}}
    saved = _put(desk, office)
    assert saved.status_code == 200
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]  # Monday 09:00
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P4", "assignment_group": "NetworkTeam"})
    deleted = desk.client.delete(f"/api/v1/sla/policies/{saved.get_json()['id']}", headers=desk.auth("olga"))
    assert deleted.status_code == 204
    clock.advance(timedelta(days=3, minutes=30))  # Thursday 09:30: the built-in 72 h (24x7) are over
    assert desk.services.sla.sweep() == {"warnings": 0, "breaches": 1}
