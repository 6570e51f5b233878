"""Recurring requests through the API and the sweep: made by the desk's staff with data checked as
a start checks it, started on their days at their local time as their owner, once per start
(missed starts while the desk was down make one), paused with the reason told to the owner when a
run starts nothing, resumed; nobody but the owner and admins sees one; bad input is named and
nothing is stored.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from app.errors import Conflict, ValidationFailed
from app.models import AuditEvent, ProcessInstance, RecurringRequest
from tests.http.desk import LAPTOP, Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_change import CHANGE
from tests.http.test_e2e_incident import START

URL = "/api/v1/recurring-requests"
#: Mondays at 11:00 Berlin: 10:00 UTC in winter, one hour after the desk's clock.
WEEKLY = {"name": "Weekly VPN check", "process_id": "incident_management", "data": {**START, "title": "Weekly VPN check"},
          "days": ["mon"], "time": "11:00", "timezone": "Europe/Berlin"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def make(desk: Desk, body: dict[str, Any], who: str = "alex", status: int = 201) -> dict[str, Any]:
    answer = desk.client.post(URL, headers=desk.auth(who), json=body)
    assert answer.status_code == status, answer.get_json()
    return answer.get_json()


def read(desk: Desk, request_id: int, who: str = "alex") -> dict[str, Any]:
    answer = desk.client.get(f"{URL}/{request_id}", headers=desk.auth(who))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def sweep(services: Any) -> int:
    return services.recurring.sweep()


def started(services: Any) -> list[ProcessInstance]:
    services.session.expire_all()
    return list(services.session.scalars(select(ProcessInstance).where(ProcessInstance.process_id == "incident_management")
                                         .order_by(ProcessInstance.id)))


def events(services: Any, event_type: str) -> list[AuditEvent]:
    return list(services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.seq)))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def test_a_recurring_incident_starts_on_its_day_at_its_local_time_once_as_its_owner(desk: Desk, services, clock):
    made = make(desk, WEEKLY)
    assert made["owner"] == "alex" and made["active"] is True and made["runs"] == 0
    assert made["days"] == ["mon"] and made["week"] is None and made["time"] == "11:00"
    assert utc(made["next_run_at"]) == datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
    assert sweep(services) == 0 and started(services) == []  # not due yet
    clock.advance(timedelta(hours=1))
    assert sweep(services) == 1
    assert sweep(services) == 0  # once per start, however often the sweep runs
    [instance] = started(services)
    number = instance.data["record_number"]
    record = desk.record(number)
    assert record["title"] == "Weekly VPN check" and record["requester"] == "alex"
    now = read(desk, made["id"])
    assert now["runs"] == 1 and now["last_instance_id"] == instance.id and now["last_error"] is None
    assert utc(now["next_run_at"]) == datetime(2026, 1, 12, 10, 0, tzinfo=timezone.utc)
    [ran] = events(services, "recurring_request_ran")
    assert ran.instance_id == instance.id and ran.payload["number"] == number and ran.payload["run"] == 1
    # the desk was down for three Mondays: one start when it is back, then the next Monday
    clock.advance(timedelta(days=21, hours=2))
    assert sweep(services) == 1 and len(started(services)) == 2
    assert utc(read(desk, made["id"])["next_run_at"]) == datetime(2026, 2, 2, 10, 0, tzinfo=timezone.utc)


def test_a_monthly_request_keeps_its_local_time_across_daylight_saving(desk: Desk, services, clock):
    # the second Tuesday at 09:00 Berlin (patch Tuesday): 08:00 UTC in winter, 07:00 UTC in summer
    made = make(desk, {**WEEKLY, "name": "Patch Tuesday", "days": ["tue"], "week": "second", "time": "09:00"})
    assert made["week"] == "second"
    assert utc(made["next_run_at"]) == datetime(2026, 1, 13, 8, 0, tzinfo=timezone.utc)
    clock.set(datetime(2026, 3, 11, 0, 0, tzinfo=timezone.utc))
    changed = desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("alex"), json={"time": "09:30"}).get_json()
    assert utc(changed["next_run_at"]) == datetime(2026, 4, 14, 7, 30, tzinfo=timezone.utc)
    [audited] = events(services, "recurring_request_changed")
    assert audited.payload["changed"] == ["time"]


@pytest.mark.parametrize("body, field", [
    ({"days": []}, "days"),
    ({"days": ["funday"]}, "days"),
    ({"week": "fifth"}, "week"),
    ({"time": "25:00"}, "time"),
    ({"time": "9"}, "time"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"name": "  "}, "name"),
    ({"data": {**START, "title": ""}}, "data.title"),
    ({"data": {**START, "urgency": "whenever"}}, "data.urgency"),
    ({"data": {"_secret": 1}}, "data._secret"),
    ({"requested_for": "nobody-here"}, "requested_for"),
    ({"colour": "blue"}, "colour"),
    ({"active": "yes"}, "active"),
])
def test_bad_fields_are_named_and_nothing_is_stored(desk: Desk, services, body: dict[str, Any], field: str):
    answer = desk.client.post(URL, headers=desk.auth("alex"), json={**WEEKLY, **body})
    error = assert_error(answer, 422)
    assert field in error["details"]["fields"], error
    assert services.session.scalar(select(func.count()).select_from(RecurringRequest)) == 0


def test_a_process_not_deployed_is_not_found(desk: Desk, services):
    assert_error(desk.client.post(URL, headers=desk.auth("alex"), json={**WEEKLY, "process_id": "no_such_process"}),
                 404, "not_found")


def test_only_the_desk_s_working_staff_make_them_and_only_owners_and_admins_see_them(desk: Desk, services):
    for who in ("rita", "aude", "mona"):
        assert_error(desk.client.post(URL, headers=desk.auth(who), json=WEEKLY), 403)
    made = make(desk, WEEKLY)
    for who in ("nina", "rita", "olga"):
        assert_error(desk.client.get(f"{URL}/{made['id']}", headers=desk.auth(who)), 404, "not_found")
        assert_error(desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth(who), json={"active": False}), 404)
        assert_error(desk.client.delete(f"{URL}/{made['id']}", headers=desk.auth(who)), 404)
        assert desk.client.get(URL, headers=desk.auth(who)).get_json()["items"] == []
    assert [r["id"] for r in desk.client.get(URL, headers=desk.auth("alex")).get_json()["items"]] == [made["id"]]
    # an admin lists everyone's with all=1 and may pause one
    assert desk.client.get(URL, headers=desk.auth("ada")).get_json()["items"] == []
    assert [r["owner"] for r in desk.client.get(f"{URL}?all=1", headers=desk.auth("ada")).get_json()["items"]] == ["alex"]
    paused = desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("ada"), json={"active": False}).get_json()
    assert paused["active"] is False and paused["next_run_at"] is None
    assert [e.actor for e in events(services, "recurring_request_paused")] == ["ada"]
    assert desk.client.delete(f"{URL}/{made['id']}", headers=desk.auth("alex")).status_code == 204
    assert [e.payload["name"] for e in events(services, "recurring_request_deleted")] == ["Weekly VPN check"]


def test_a_process_the_maker_may_not_start_is_refused(desk: Desk, services):
    # the change process is for agents; an approver's roles do not make recurring requests at all,
    # and an agent may only schedule what they may start themselves
    olga = services.users.find("olga")
    services.definitions.deploy(olga, [("problem_management.access.json", b'{"start_roles": ["admin"]}')])
    assert_error(desk.client.post(URL, headers=desk.auth("alex"), json={**WEEKLY, "process_id": "problem_management",
                                                                      "data": {"title": "x", "description": "y"}}), 403)
    assert services.session.scalar(select(func.count()).select_from(RecurringRequest)) == 0


def test_a_run_that_starts_nothing_pauses_the_request_and_tells_its_owner(desk: Desk, services, clock):
    made = make(desk, WEEKLY)
    services.users.update_user(None, "alex", {"roles": ["requester"]})
    services.session.commit()
    clock.advance(timedelta(hours=1))
    assert sweep(services) == 0 and started(services) == []
    now = read(desk, made["id"])
    assert now["active"] is False and now["next_run_at"] is None and now["runs"] == 0
    assert "agents, process owners and admins" in now["last_error"]
    [failed] = events(services, "recurring_request_failed")
    assert failed.payload["owner"] == "alex" and failed.actor == "scheduler"
    notices = desk.notifications("alex")
    assert any("Weekly VPN check" in n["subject"] and "paused" in n["subject"] for n in notices), notices
    assert sweep(services) == 0  # paused: not tried again
    # mended and resumed, it goes on from the next start
    services.users.update_user(None, "alex", {"roles": ["agent", "requester"]})
    services.session.commit()
    resumed = desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("alex"), json={"active": True}).get_json()
    assert resumed["active"] is True and resumed["last_error"] is None
    assert utc(resumed["next_run_at"]) == datetime(2026, 1, 12, 10, 0, tzinfo=timezone.utc)
    assert [e.actor for e in events(services, "recurring_request_resumed")] == ["alex"]
    clock.advance(timedelta(days=7))
    assert sweep(services) == 1 and len(started(services)) == 1


def test_a_request_for_someone_else_starts_for_them(desk: Desk, services, clock):
    made = make(desk, {**WEEKLY, "requested_for": "rita"})
    assert made["requested_for"] == "rita"
    clock.advance(timedelta(hours=1))
    assert sweep(services) == 1
    [instance] = started(services)
    assert desk.record(instance.data["record_number"])["requester"] == "rita"


def test_one_owner_keeps_at_most_so_many(desk: Desk, services, monkeypatch):
    monkeypatch.setattr("app.services.recurring.MAX_PER_OWNER", 2)
    make(desk, WEEKLY)
    make(desk, {**WEEKLY, "name": "Second"})
    error = assert_error(desk.client.post(URL, headers=desk.auth("alex"), json={**WEEKLY, "name": "Third"}), 422)
    assert "delete one first" in error["details"]["fields"]["name"][0]


def test_a_recurring_change_s_planned_window_moves_with_each_start(desk: Desk, services, clock):
    # the second Tuesday at 09:00 Berlin; the answers plan the change from 10:00 to 12:00 Berlin on
    # the day of the first start (2026-01-13), and every later one is planned so on its own day
    made = make(desk, {"name": "Patch Tuesday", "process_id": "change_enablement", "days": ["tue"], "week": "second",
                       "time": "09:00", "timezone": "Europe/Berlin", "data": {
                           **CHANGE, "change_type": "normal", "planned_start": "2026-01-13T09:00:00Z",
                           "planned_end": "2026-01-13T11:00:00Z"}})
    assert utc(made["dates_written_for"]) == utc(made["next_run_at"]) == datetime(2026, 1, 13, 8, 0, tzinfo=timezone.utc)

    def planned_after_sweep(moment: datetime) -> tuple[str, str]:
        clock.set(moment)
        assert sweep(services) == 1, read(desk, made["id"])["last_error"]
        services.session.expire_all()
        instance = services.session.get(ProcessInstance, read(desk, made["id"])["last_instance_id"])
        details = desk.record(instance.data["record_number"])["details"]
        return details["planned_start"], details["planned_end"]

    assert planned_after_sweep(datetime(2026, 1, 13, 8, 0, tzinfo=timezone.utc)) == ("2026-01-13T09:00:00Z", "2026-01-13T11:00:00Z")
    assert planned_after_sweep(datetime(2026, 2, 10, 8, 1, tzinfo=timezone.utc)) == ("2026-02-10T09:00:00Z", "2026-02-10T11:00:00Z")
    # pausing and resuming keep the answers (the January window is past, and no refusal for it)
    assert desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("alex"), json={"active": False}).status_code == 200
    assert desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("alex"), json={"active": True}).status_code == 200
    # March's start was missed (the desk was down): April's makes one, 10:00 Berlin in summer time
    assert planned_after_sweep(datetime(2026, 4, 14, 7, 30, tzinfo=timezone.utc)) == ("2026-04-14T08:00:00Z", "2026-04-14T10:00:00Z")
    assert read(desk, made["id"])["runs"] == 3


def test_a_race_leaves_the_request_due_and_a_refusal_says_its_fields(desk: Desk, services, clock, monkeypatch):
    made = make(desk, WEEKLY)
    clock.advance(timedelta(hours=1))
    real = services.instances.start_process

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise Conflict("another change is being written; try again in a moment")

    monkeypatch.setattr(services.instances, "start_process", busy)
    assert sweep(services) == 0
    still = read(desk, made["id"])
    assert still["active"] is True and still["last_error"] is None and events(services, "recurring_request_failed") == []
    monkeypatch.setattr(services.instances, "start_process", real)
    assert sweep(services) == 1  # the next sweep starts it

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise ValidationFailed("form data is invalid", details={"fields": {"title": ["is required"]}})

    monkeypatch.setattr(services.instances, "start_process", refused)
    clock.advance(timedelta(days=7))
    assert sweep(services) == 0
    assert read(desk, made["id"])["last_error"] == "form data is invalid (title: is required)"


def test_a_rename_keeps_a_start_that_is_due_and_a_leaver_s_request_is_not_resumed(desk: Desk, services, clock):
    made = make(desk, WEEKLY)
    clock.advance(timedelta(hours=1, minutes=1))  # due, the sweep not yet come round
    renamed = desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("alex"), json={"name": "VPN check"}).get_json()
    assert renamed["next_run_at"] == made["next_run_at"]
    assert sweep(services) == 1
    paused = desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("ada"), json={"active": False})
    assert paused.status_code == 200
    services.users.update_user(None, "alex", {"roles": ["requester"]})
    services.session.commit()
    error = assert_error(desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("ada"), json={"active": True}), 422)
    assert "alex no longer makes recurring requests" in error["details"]["fields"]["active"][0]
    # the admin still renames or deletes it
    assert desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("ada"), json={"name": "Old"}).status_code == 200
    assert desk.client.delete(f"{URL}/{made['id']}", headers=desk.auth("ada")).status_code == 204


def test_a_catalog_item_is_ordered_on_a_schedule_for_a_colleague(desk: Desk, services, clock):
    # a laptop for the pool every first Monday, ordered by the desk for rita
    made = make(desk, {**WEEKLY, "name": "Laptop pool", "process_id": "catalog_request", "week": "first",
                       "requested_for": "rita", "data": {"item": "HW-LAPTOP", **LAPTOP}})
    assert made["data"]["item"] == "HW-LAPTOP"
    error = assert_error(desk.client.post(URL, headers=desk.auth("alex"), json={
        **WEEKLY, "process_id": "catalog_request", "data": {"item": "HW-LAPTOP", **LAPTOP, "keyboard_layout": "Klingon"}}), 422)
    assert "data.keyboard_layout" in error["details"]["fields"], error
    clock.advance(timedelta(hours=1))
    assert sweep(services) == 1
    services.session.expire_all()
    instance = services.session.get(ProcessInstance, read(desk, made["id"])["last_instance_id"])
    record = desk.record(instance.data["record_number"])
    assert record["number"].startswith("REQ-") and record["requester"] == "rita"


PATCH_TUESDAY = {"name": "Patch Tuesday", "process_id": "change_enablement", "days": ["tue"], "week": "second",
                 "time": "09:00", "timezone": "Europe/Berlin"}


def change_data(start: str, end: str) -> dict[str, Any]:
    return {**CHANGE, "change_type": "normal", "planned_start": start, "planned_end": end}


def test_answers_are_checked_as_of_the_start_they_are_for(desk: Desk, services, clock):
    # made on Monday 5 January for the second Tuesday (13 January, 08:00 UTC): a window planned for
    # this afternoon would be past at that start, so it is refused now, naming the field
    error = assert_error(desk.client.post(URL, headers=desk.auth("alex"), json={
        **PATCH_TUESDAY, "data": change_data("2026-01-05T14:00:00Z", "2026-01-05T16:00:00Z")}), 422)
    assert "data.planned_start" in error["details"]["fields"], error
    made = make(desk, {**PATCH_TUESDAY, "data": change_data("2026-01-13T09:00:00Z", "2026-01-13T11:00:00Z")})
    clock.set(datetime(2026, 1, 13, 8, 0, 30, tzinfo=timezone.utc))
    assert sweep(services) == 1
    # a month on, another person to start it for: the kept answers move to the next start first
    clock.set(datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc))
    changed = desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("alex"), json={"requested_for": "nina"})
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert body["requested_for"] == "nina" and utc(body["dates_written_for"]) == datetime(2026, 2, 10, 8, 0, tzinfo=timezone.utc)
    assert body["data"]["planned_start"] == "2026-02-10T09:00:00Z"


def test_new_answers_sent_while_a_start_is_due_are_for_that_start(desk: Desk, services, clock):
    made = make(desk, {**PATCH_TUESDAY, "data": change_data("2026-01-13T09:00:00Z", "2026-01-13T11:00:00Z")})
    clock.set(datetime(2026, 1, 13, 8, 0, 30, tzinfo=timezone.utc))  # due, the sweep not yet come round
    body = desk.client.patch(f"{URL}/{made['id']}", headers=desk.auth("alex"), json={
        "data": change_data("2026-01-13T10:00:00Z", "2026-01-13T12:00:00Z")}).get_json()
    assert utc(body["dates_written_for"]) == datetime(2026, 1, 13, 8, 0, tzinfo=timezone.utc)
    assert sweep(services) == 1, read(desk, made["id"])["last_error"]
    services.session.expire_all()
    instance = services.session.get(ProcessInstance, read(desk, made["id"])["last_instance_id"])
    assert desk.record(instance.data["record_number"])["details"]["planned_start"] == "2026-01-13T10:00:00Z"


def test_a_race_that_always_comes_back_pauses_the_request_and_holds_up_no_other(desk: Desk, services, clock, monkeypatch):
    stuck, fine = make(desk, WEEKLY), make(desk, {**WEEKLY, "name": "Fine", "data": {**START, "title": "Fine"}})
    clock.advance(timedelta(hours=1))
    real = services.instances.start_process

    def races(user: Any, process_id: str, data: dict[str, Any], **kwargs: Any) -> Any:
        if data["title"] != "Fine":
            raise Conflict("the change collides with a concurrent one; reload and try again")
        return real(user, process_id, data, **kwargs)

    monkeypatch.setattr(services.instances, "start_process", races)
    one = services.recurring.sweep  # one request per sweep
    assert one(1) == 0  # the stuck one first (due first), then it goes after the others
    assert one(1) == 1 and read(desk, fine["id"])["runs"] == 1
    for _ in range(3):
        assert one(1) == 0 and read(desk, stuck["id"])["active"] is True
    assert one(1) == 0
    paused = read(desk, stuck["id"])
    assert paused["active"] is False and "at 5 sweeps in a row" in paused["last_error"]
