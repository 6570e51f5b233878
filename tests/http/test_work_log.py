"""Time worked through the API: agents log minutes on a record (a day's 24 hours per person hold
across records), the record's total adds them up, auditors read them, requesters neither read
nor log them; who logged an entry or an admin removes it; bad input is refused naming the field
and nothing is stored; every change is audited in the record's history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent, WorkLog
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import open_incident


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def log(desk: Desk, number: str, body: dict[str, Any], who: str = "alex") -> Any:
    return desk.client.post(f"/api/v1/tickets/{number}/time-worked", headers=desk.auth(who), json=body)


def logged(desk: Desk, number: str, body: dict[str, Any], who: str = "alex") -> dict[str, Any]:
    answer = log(desk, number, body, who)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()  # type: ignore[no-any-return]


def work(desk: Desk, number: str, who: str = "alex") -> dict[str, Any]:
    answer = desk.client.get(f"/api/v1/tickets/{number}/time-worked", headers=desk.auth(who))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()  # type: ignore[no-any-return]


def rows(services: Any) -> list[tuple[str, int, str]]:
    services.session.expire_all()
    return [(r.user_name, r.minutes, r.worked_on.isoformat())
            for r in services.session.scalars(select(WorkLog).order_by(WorkLog.id))]


def test_agents_log_time_the_record_adds_it_up_and_the_history_keeps_it(desk: Desk, services, clock):
    number, instance_id = open_incident(desk)
    today = clock.now().date()
    yesterday = (today - timedelta(days=1)).isoformat()
    first = logged(desk, number.lower(), {"minutes": 45, "note": "Called the user, collected the logs."})
    assert first["worked_on"] == today.isoformat() and first["user"] == "alex" and first["removable"] is True
    logged(desk, number, {"minutes": 90, "worked_on": yesterday}, who="nina")
    logged(desk, number, {"minutes": 30}, who="olga")
    seen = work(desk, number, who="aude")  # auditors read it
    assert seen["number"] == number and seen["total_minutes"] == 165
    assert [(i["user"], i["minutes"], i["removable"]) for i in seen["items"]] == [
        ("olga", 30, False), ("alex", 45, False), ("nina", 90, False)]
    assert [i["removable"] for i in work(desk, number, who="alex")["items"]] == [False, True, False]
    assert [i["removable"] for i in work(desk, number, who="ada")["items"]] == [True, True, True]

    # the record's history keeps each entry
    history = desk.history(instance_id)
    entries = [e for e in history if e["type"] == "work_logged"]
    assert [(e["actor"], e["payload"]["minutes"]) for e in entries] == [("alex", 45), ("nina", 90), ("olga", 30)]

    # who logged it removes it; another agent may not; an admin may
    assert_error(desk.client.delete(f"/api/v1/tickets/{number}/time-worked/{first['id']}", headers=desk.auth("nina")),
                 403, "forbidden")
    assert desk.client.delete(f"/api/v1/tickets/{number}/time-worked/{first['id']}", headers=desk.auth("alex")).status_code == 204
    nina_entry = work(desk, number)["items"][1]["id"]
    assert desk.client.delete(f"/api/v1/tickets/{number}/time-worked/{nina_entry}", headers=desk.auth("ada")).status_code == 204
    assert rows(services) == [("olga", 30, today.isoformat())]
    removed = [e["payload"] for e in desk.history(instance_id) if e["type"] == "work_log_removed"]
    assert [(p["by"], p["minutes"]) for p in removed] == [("alex", 45), ("nina", 90)]
    # gone already, or an entry of another record: 404
    other, _ = open_incident(desk, title="Another one")
    assert_error(desk.client.delete(f"/api/v1/tickets/{number}/time-worked/{first['id']}", headers=desk.auth("alex")),
                 404, "not_found")
    olga_entry = work(desk, number)["items"][0]["id"]
    assert_error(desk.client.delete(f"/api/v1/tickets/{other}/time-worked/{olga_entry}", headers=desk.auth("olga")),
                 404, "not_found")
    assert len(rows(services)) == 1


def test_a_person_s_day_holds_24_hours_across_records(desk: Desk, services, clock):
    first, _ = open_incident(desk)
    second, _ = open_incident(desk, title="Second")
    logged(desk, first, {"minutes": 1000})
    refused = assert_error(log(desk, second, {"minutes": 441}), 422, "validation_failed")
    assert refused["details"]["fields"]["minutes"] == [
        "would make more than 24 hours on that day: 1000 minutes are logged on it already"]
    logged(desk, second, {"minutes": 440})
    # another day, another person: their own 24 hours
    logged(desk, second, {"minutes": 1440, "worked_on": (clock.now().date() - timedelta(days=1)).isoformat()})
    logged(desk, second, {"minutes": 1440}, who="nina")
    assert sum(m for _, m, _ in rows(services)) == 1000 + 440 + 1440 + 1440


def test_requesters_and_approvers_neither_read_nor_log_and_bad_input_stores_nothing(desk: Desk, services, clock):
    number, _ = open_incident(desk)
    for who in ("rita", "cora", "mona"):
        assert_error(desk.client.get(f"/api/v1/tickets/{number}/time-worked", headers=desk.auth(who)), 403, "forbidden")
        assert_error(log(desk, number, {"minutes": 5}, who=who), 403, "forbidden")
    assert_error(log(desk, number, {"minutes": 5}, who="aude"), 403, "forbidden")  # auditors read only
    assert_error(log(desk, "INC-999999", {"minutes": 5}), 404, "not_found")
    today = clock.now().date()
    cases = [
        ({}, "minutes", "Missing data for required field."),
        ({"minutes": 0}, "minutes", "must be a whole number of minutes from 1 to 1440"),
        ({"minutes": 1441}, "minutes", "must be a whole number of minutes from 1 to 1440"),
        ({"minutes": "30"}, "minutes", "must be a whole number of minutes from 1 to 1440"),
        ({"minutes": 30.5}, "minutes", "must be a whole number of minutes from 1 to 1440"),
        ({"minutes": True}, "minutes", "must be a whole number of minutes from 1 to 1440"),
        ({"minutes": 30, "worked_on": "yesterday"}, "worked_on", "must be a date as YYYY-MM-DD"),
        ({"minutes": 30, "worked_on": "2026-W01-1"}, "worked_on", "must be a date as YYYY-MM-DD"),
        ({"minutes": 30, "worked_on": (today + timedelta(days=1)).isoformat()}, "worked_on", "must not be after today"),
        ({"minutes": 30, "worked_on": (today - timedelta(days=367)).isoformat()}, "worked_on",
         "must be within a year before today"),
        ({"minutes": 30, "note": "x" * 1001}, "note", "at most 1000 characters"),
        ({"minutes": 30, "note": "evil \u202e"}, "note", "bidirectional control"),
        ({"minutes": 30, "hours": 2}, "hours", "Unknown field."),
    ]
    for body, field, words in cases:
        refused = assert_error(log(desk, number, body), 422, "validation_failed")
        fields = refused["details"].get("fields") or refused["details"].get("json") or {}
        assert field in fields, (body, refused)
        assert words in " ".join(map(str, fields[field])), (body, refused)
    assert rows(services) == []
    services.session.expire_all()
    refusals = [e.payload.get("action") for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "access_denied"))]
    assert "log_work" in refusals and "read_work_log" in refusals


def test_typed_durations_read_as_minutes():
    from app.services.worklog import typed_minutes
    assert [typed_minutes(t) for t in ("45", "45m", "45 min", "1h", "1h30", "1h 30m", "1.5h", "1,5 h", "2 hours 15 minutes",
                                       "1:30", "0:05", "24h")] == [45, 45, 45, 60, 90, 90, 90, 90, 135, 90, 5, 1440]
    assert [typed_minutes(t) for t in ("", "0", "0:00", "abc", "1h 30x", "-5", "1:75", "h", "99999999h")] == [None] * 9
    # a slip after hours, digits of other scripts, and text far too long to be a duration
    assert [typed_minutes(t) for t in ("1h 90", "١٢", "１２", "٣h", "9" * 4400, "1" + " " * 30 + "h")] == [None] * 6


def test_the_record_history_shows_time_worked_only_to_who_reads_it(desk: Desk, services):
    number, instance_id = open_incident(desk)
    logged(desk, number, {"minutes": 45, "note": "Internal: the user's disk is failing"})
    entry = logged(desk, number, {"minutes": 5})
    assert desk.client.delete(f"/api/v1/tickets/{number}/time-worked/{entry['id']}", headers=desk.auth("alex")).status_code == 204

    def types(who: str) -> list[str]:
        answer = desk.client.get(f"/api/v1/instances/{instance_id}/history", headers=desk.auth(who))
        assert answer.status_code == 200, answer.get_json()
        return [e["type"] for e in answer.get_json()["events"]]

    assert "work_logged" not in types("rita") and "work_log_removed" not in types("rita")
    assert "Internal" not in desk.client.get(f"/api/v1/instances/{instance_id}/history",
                                             headers=desk.auth("rita")).get_data(as_text=True)
    for who in ("alex", "aude"):
        assert types(who).count("work_logged") == 2 and types(who).count("work_log_removed") == 1, who


def test_time_is_logged_on_a_closed_record_and_refused_removals_are_audited(desk: Desk, services):
    from tests.http.test_e2e_incident import resolve, triage

    number, _ = open_incident(desk)
    triage(desk, number)
    resolve(desk, number)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    assert desk.record(number)["status"] == "closed"
    entry = logged(desk, number, {"minutes": 20, "note": "Wrote the review"}, who="nina")
    for who in ("alex", "aude"):
        assert desk.client.delete(f"/api/v1/tickets/{number}/time-worked/{entry['id']}",
                                  headers=desk.auth(who)).status_code == 403
    services.session.expire_all()
    refused = [(e.actor, e.payload.get("action")) for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "access_denied").order_by(AuditEvent.seq))]
    assert ("alex", "remove_work_log") in refused and ("aude", "remove_work_log") in refused
    assert rows(services) == [("nina", 20, services.session.get(WorkLog, entry["id"]).worked_on.isoformat())]
