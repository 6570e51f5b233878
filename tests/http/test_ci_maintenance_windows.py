"""Maintenance windows of configuration items through the API: who adds and removes them, field-named
422s, audited changes, and changes planned on a CI outside its windows showing the clash (with the
next window long enough) on the record, the schedule, the check as a form is typed and the
calendar, while changes inside a window, on a CI without windows or exempt say so.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_cmdb import CHANGE, GATEWAY, events

#: Sunday 02:00 to 06:00 in Berlin: 01:00 to 05:00 UTC in winter.
SUNDAY_NIGHT = {"name": "Sunday night", "days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "Europe/Berlin"}
#: CHANGE is planned on Tuesday 2026-03-10, 20:00 to 22:00 UTC; this is within the window.
INSIDE = {"planned_start": "2026-03-15T01:30:00Z", "planned_end": "2026-03-15T03:00:00Z"}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    made = Desk(client, services)
    services.users.create_user("cmo", "password-1234", roles=["configuration_manager"], groups=[])
    services.session.commit()
    response = client.post("/api/v1/cis", json=GATEWAY, headers=made.auth("ada"))
    assert response.status_code == 201, response.get_json()
    return made


def add_window(desk: Desk, body: dict[str, Any], who: str = "cmo", ci: str = "vpn-gw-01", status: int = 201) -> dict[str, Any]:
    response = desk.client.post(f"/api/v1/cis/{ci}/windows", json=body, headers=desk.auth(who))
    assert response.status_code == status, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def start_change(desk: Desk, **extra: Any) -> str:
    response = desk.client.post("/api/v1/instances", headers=desk.auth("alex"),
                                json={"process_id": "change_enablement", "data": {**CHANGE, **extra}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]["record_number"]  # type: ignore[no-any-return]


def clashes(desk: Desk, number: str, who: str = "alex") -> list[dict[str, Any]]:
    response = desk.client.get(f"/api/v1/tickets/{number}/clashes", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["clashes"]  # type: ignore[no-any-return]


def test_configuration_managers_add_and_remove_windows_and_readers_see_them(desk: Desk, services):
    window = add_window(desk, SUNDAY_NIGHT)
    assert {k: window[k] for k in ("name", "days", "start", "end", "timezone", "created_by")} == {
        "name": "Sunday night", "days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "Europe/Berlin",
        "created_by": "cmo"}
    # the first Sunday after the desk's Monday, 02:00 in Berlin (UTC+1 in January)
    assert (window["next_start"], window["next_end"]) == ("2026-01-11T01:00:00+00:00", "2026-01-11T05:00:00+00:00")
    # the same window again is the one there (200), not a second; another one is added
    assert add_window(desk, {**SUNDAY_NIGHT, "name": "again"}, status=200)["id"] == window["id"]
    nightly = add_window(desk, {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "02:00"}, who="ada")
    assert (nightly["timezone"], nightly["name"], nightly["next_start"]) == ("UTC", "", "2026-01-05T22:00:00+00:00")
    # an agent reads them (weekdays first), in the CI's answer
    read = desk.client.get("/api/v1/cis/VPN-GW-01", headers=desk.auth("alex")).get_json()
    assert [w["id"] for w in read["maintenance_windows"]] == [nightly["id"], window["id"]]
    # an agent may not add or remove; a requester is not told the CI exists
    assert_error(desk.client.post("/api/v1/cis/vpn-gw-01/windows", json=SUNDAY_NIGHT, headers=desk.auth("alex")), 403)
    assert_error(desk.client.delete(f"/api/v1/cis/vpn-gw-01/windows/{window['id']}", headers=desk.auth("alex")), 403)
    assert_error(desk.client.post("/api/v1/cis/vpn-gw-01/windows", json=SUNDAY_NIGHT, headers=desk.auth("rita")), 404)
    # a window is removed through its own CI only
    other = desk.client.post("/api/v1/cis", json={**GATEWAY, "name": "web01"}, headers=desk.auth("ada"))
    assert other.status_code == 201
    assert_error(desk.client.delete(f"/api/v1/cis/web01/windows/{window['id']}", headers=desk.auth("cmo")), 404)
    assert desk.client.delete(f"/api/v1/cis/vpn-gw-01/windows/{window['id']}", headers=desk.auth("cmo")).status_code == 204
    assert_error(desk.client.delete(f"/api/v1/cis/vpn-gw-01/windows/{window['id']}", headers=desk.auth("cmo")), 404)
    read = desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("alex")).get_json()
    assert [w["id"] for w in read["maintenance_windows"]] == [nightly["id"]]
    audited = events(services, "ci_window_added", "ci_window_removed")
    assert [(e["type"], e["actor"], e["window_id"], e["days"]) for e in audited] == [
        ("ci_window_added", "cmo", window["id"], ["sun"]), ("ci_window_added", "ada", nightly["id"], ["mon", "tue", "wed", "thu", "fri"]),
        ("ci_window_removed", "cmo", window["id"], ["sun"])]
    assert audited[2]["timezone"] == "Europe/Berlin" and audited[2]["start"] == "02:00"
    refused = [e for e in events(services, "access_denied") if str(e.get("action", "")).endswith("ci_window")]
    assert [(e["actor"], e["action"]) for e in refused] == [
        ("alex", "add_ci_window"), ("alex", "remove_ci_window"), ("rita", "add_ci_window")]


@pytest.mark.parametrize(("body", "field"), [
    ({"days": [], "start": "02:00", "end": "06:00"}, "days"),
    ({"days": ["sunday"], "start": "02:00", "end": "06:00"}, "days"),
    ({"days": "sun", "start": "02:00", "end": "06:00"}, "days"),
    ({"days": ["sun"], "start": "24:00", "end": "06:00"}, "start"),
    ({"days": ["sun"], "start": "02:00", "end": "6"}, "end"),
    ({"days": ["sun"], "start": "02:00", "end": 6}, "end"),
    ({"days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "Mars/Olympus"}, "timezone"),
    ({"days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "../../etc/passwd"}, "timezone"),
    ({"days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "localtime"}, "timezone"),
    ({"days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "Factory"}, "timezone"),
    ({"days": ["sun"], "start": "02:00", "end": "06:00", "name": "x" * 129}, "name"),
    ({"days": ["sun"], "start": "02:00", "end": "06:00", "name": "evil\u202etxt"}, "name"),
    ({"days": ["sun"], "start": "02:00", "end": "06:00", "every": "week"}, "every"),
    ({"start": "02:00", "end": "06:00"}, "days"),
    ({"days": ["tue"], "week": "2nd", "start": "22:00", "end": "02:00"}, "week"),
    ({"days": ["tue"], "week": 2, "start": "22:00", "end": "02:00"}, "week"),
])
def test_bad_input_names_the_field_and_stores_nothing(desk: Desk, services, body: dict[str, Any], field: str):
    refused = assert_error(desk.client.post("/api/v1/cis/vpn-gw-01/windows", json=body, headers=desk.auth("cmo")), 422)
    assert field in refused["details"].get("fields", refused["details"]), refused
    read = desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("cmo")).get_json()
    assert read["maintenance_windows"] == []
    assert events(services, "ci_window_added") == []


def test_a_retired_ci_takes_no_windows_and_a_ci_has_at_most_twenty(desk: Desk):
    for minute in range(20):
        add_window(desk, {"days": ["sat"], "start": f"01:{minute:02d}", "end": "03:00"})
    assert_error(desk.client.post("/api/v1/cis/vpn-gw-01/windows", json=SUNDAY_NIGHT, headers=desk.auth("cmo")),
                 409, "too_many_windows")
    assert desk.client.post("/api/v1/cis/vpn-gw-01/retire", headers=desk.auth("ada")).status_code == 200
    assert_error(desk.client.post("/api/v1/cis/vpn-gw-01/windows", json=SUNDAY_NIGHT, headers=desk.auth("cmo")),
                 409, "ci_retired")


def test_a_change_outside_the_windows_shows_the_clash_with_the_next_window_long_enough(desk: Desk):
    before = start_change(desk)
    assert clashes(desk, before) == []  # a CI without windows may be worked on at any time
    add_window(desk, {"days": ["tue"], "start": "01:00", "end": "02:00"})  # too short for two hours
    add_window(desk, SUNDAY_NIGHT)
    found = clashes(desk, before)
    assert [(c["kind"], c["name"], c["ci"], c["exempt"]) for c in found] == [("maintenance", "vpn-gw-01", "vpn-gw-01", False)]
    assert (found[0]["starts_at"], found[0]["ends_at"]) == ("2026-03-10T20:00:00+00:00", "2026-03-10T22:00:00+00:00")
    # the first Sunday night from its planned start: 15 March, 02:00 in Berlin
    assert (found[0]["next_start"], found[0]["next_end"]) == ("2026-03-15T01:00:00+00:00", "2026-03-15T05:00:00+00:00")
    # one planned from half an hour ago: the first from now (Sunday 11 January)
    started = start_change(desk, planned_start="2026-01-05T08:30:00Z", planned_end="2026-01-05T10:30:00Z")
    assert [(c["kind"], c["next_start"]) for c in clashes(desk, started)] == [("maintenance", "2026-01-11T01:00:00+00:00")]
    inside = start_change(desk, **INSIDE)
    assert clashes(desk, inside) == []
    # the record names the CI in another letter case: the same CI, the same windows
    shouting = start_change(desk, ci="VPN-GW-01")
    assert [(c["kind"], c["number"]) for c in clashes(desk, shouting)] == [("maintenance", None), ("record", before)]
    # an emergency change may run outside them, and shows it
    urgent = start_change(desk, change_type="emergency", planned_start="2026-03-11T20:00:00Z",
                          planned_end="2026-03-11T22:00:00Z")
    assert [(c["kind"], c["exempt"]) for c in clashes(desk, urgent)] == [("maintenance", True)]
    # a change longer than any window: none is long enough
    long = start_change(desk, planned_start="2026-03-17T20:00:00Z", planned_end="2026-03-18T04:00:00Z")
    assert [(c["next_start"], c["next_end"]) for c in clashes(desk, long)] == [(None, None)]
    # the schedule of the CI: its records' clashes, and its windows' stretches in the range
    read = desk.client.get("/api/v1/schedule", headers=desk.auth("alex"), query_string={
        "from": "2026-03-09T00:00:00Z", "to": "2026-03-16T00:00:00Z", "ci": "vpn-gw-01"}).get_json()
    kinds = {r["number"]: [c["kind"] for c in r["clashes"]] for r in read["records"]}
    assert kinds[inside] == [] and "maintenance" in kinds[before] and kinds[urgent] == ["maintenance"]
    assert read["maintenance"] == [
        {"starts_at": "2026-03-10T01:00:00+00:00", "ends_at": "2026-03-10T02:00:00+00:00"},
        {"starts_at": "2026-03-15T01:00:00+00:00", "ends_at": "2026-03-15T05:00:00+00:00"}]
    everything = desk.client.get("/api/v1/schedule", headers=desk.auth("alex"),
                                 query_string={"from": "2026-03-09T00:00:00Z"}).get_json()
    assert everything["maintenance"] is None
    # the calendar says it in its description
    ics = desk.client.get("/api/v1/schedule.ics", headers=desk.auth("alex"),
                          query_string={"from": "2026-03-09T00:00:00Z"}).get_data(as_text=True)
    assert "outside the maintenance windows of vpn-gw-01" in ics.replace("\r\n ", "")
    # removing the windows ends the clash
    for window in desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("cmo")).get_json()["maintenance_windows"]:
        assert desk.client.delete(f"/api/v1/cis/vpn-gw-01/windows/{window['id']}", headers=desk.auth("cmo")).status_code == 204
    assert [c["kind"] for c in clashes(desk, before)] == ["record"]  # the shouting one stays


def test_the_check_as_a_window_is_typed_says_it_too(desk: Desk):
    add_window(desk, SUNDAY_NIGHT)

    def preview(**query: str) -> list[dict[str, Any]]:
        response = desk.client.get("/api/v1/schedule/clashes", headers=desk.auth("alex"), query_string=query)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["clashes"]  # type: ignore[no-any-return]

    outside = preview(**{"from": "2026-03-10T20:00:00Z", "to": "2026-03-10T22:00:00Z", "ci": "vpn-gw-01"})
    assert [(c["kind"], c["next_start"]) for c in outside] == [("maintenance", "2026-03-15T01:00:00+00:00")]
    assert preview(**{"from": INSIDE["planned_start"], "to": INSIDE["planned_end"], "ci": "vpn-gw-01"}) == []
    assert preview(**{"from": "2026-03-10T20:00:00Z", "to": "2026-03-10T22:00:00Z", "ci": "web01"}) == []


def test_a_renamed_ci_keeps_its_windows_and_a_deleted_one_takes_them_along(desk: Desk, services):
    add_window(desk, SUNDAY_NIGHT)
    renamed = desk.client.patch("/api/v1/cis/vpn-gw-01", json={"name": "vpn-gw-02"}, headers=desk.auth("ada"))
    assert renamed.status_code == 200 and [w["days"] for w in renamed.get_json()["maintenance_windows"]] == [["sun"]]
    number = start_change(desk, ci="vpn-gw-02")
    assert [c["kind"] for c in clashes(desk, number)] == ["maintenance"]
    added = desk.client.post("/api/v1/cis", json={**GATEWAY, "name": "spare"}, headers=desk.auth("ada"))
    assert added.status_code == 201
    add_window(desk, SUNDAY_NIGHT, ci="spare")
    assert desk.client.delete("/api/v1/cis/spare", headers=desk.auth("ada")).status_code == 204
    from app.models import CiMaintenanceWindow
    services.session.rollback()
    assert len(services.session.scalars(select(CiMaintenanceWindow)).all()) == 1


def test_the_desk_s_staff_are_told_the_windows_and_a_requester_is_not(desk: Desk):
    add_window(desk, SUNDAY_NIGHT)
    number = start_change(desk)
    # the change manager (an approver, who reads no CMDB page) is told, as the agents are
    assert [c["kind"] for c in clashes(desk, number, who="cora")] == ["maintenance"]
    week = {"from": "2026-03-09T00:00:00Z", "to": "2026-03-16T00:00:00Z"}
    cora = desk.client.get("/api/v1/schedule", headers=desk.auth("cora"), query_string={**week, "ci": "vpn-gw-01"})
    assert len(cora.get_json()["maintenance"]) == 1
    # a requester asking after a CI learns nothing of it: no stretches, no clash as typed
    for ci in ("vpn-gw-01", "no-such-ci"):
        rita = desk.client.get("/api/v1/schedule", headers=desk.auth("rita"), query_string={**week, "ci": ci})
        assert rita.status_code == 200 and rita.get_json()["maintenance"] is None
        typed = desk.client.get("/api/v1/schedule/clashes", headers=desk.auth("rita"), query_string={
            "from": "2026-03-10T20:00:00Z", "to": "2026-03-10T22:00:00Z", "ci": ci})
        assert typed.status_code == 200 and typed.get_json()["clashes"] == []


def test_a_window_is_changed_field_by_field_checked_again_and_audited(desk: Desk, services):
    window = add_window(desk, SUNDAY_NIGHT)
    other = add_window(desk, {"days": ["sat"], "start": "01:00", "end": "03:00"})
    url = f"/api/v1/cis/vpn-gw-01/windows/{window['id']}"
    changed = desk.client.patch(url, json={"end": "07:00", "name": "Sunday, longer"}, headers=desk.auth("cmo"))
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["id"], body["days"], body["start"], body["end"], body["timezone"], body["name"]) == (
        window["id"], ["sun"], "02:00", "07:00", "Europe/Berlin", "Sunday, longer")
    # a change of 5 hours on Sunday 15 March now fits (02:00 to 07:00 in Berlin)
    number = start_change(desk, planned_start="2026-03-15T01:00:00Z", planned_end="2026-03-15T06:00:00Z")
    assert clashes(desk, number) == []
    for bad, field in (({"days": []}, "days"), ({"start": "7"}, "start"), ({"timezone": "localtime"}, "timezone"),
                       ({"every": "week"}, "every"), ({"days": "sun"}, "days")):
        refused = assert_error(desk.client.patch(url, json=bad, headers=desk.auth("cmo")), 422)
        assert field in refused["details"].get("fields", refused["details"]), (bad, refused)
    # the same as the CI's other window: refused, naming it
    same = assert_error(desk.client.patch(url, json={"days": ["sat"], "start": "01:00", "end": "03:00",
                                                     "timezone": "UTC"}, headers=desk.auth("cmo")), 409, "window_exists")
    assert same["details"]["window_id"] == other["id"]
    # nobody else, nor through another CI
    assert_error(desk.client.patch(url, json={"end": "08:00"}, headers=desk.auth("alex")), 403)
    assert_error(desk.client.patch(url, json={"end": "08:00"}, headers=desk.auth("rita")), 404)
    assert desk.client.post("/api/v1/cis", json={**GATEWAY, "name": "web01"}, headers=desk.auth("ada")).status_code == 201
    assert_error(desk.client.patch(f"/api/v1/cis/web01/windows/{window['id']}", json={"end": "08:00"},
                                   headers=desk.auth("cmo")), 404)
    read = desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("alex")).get_json()
    assert {w["id"]: w["end"] for w in read["maintenance_windows"]} == {window["id"]: "07:00", other["id"]: "03:00"}
    [audited] = events(services, "ci_window_changed")
    assert (audited["actor"], audited["was"]["end"], audited["end"], audited["name"]) == ("cmo", "06:00", "07:00", "Sunday, longer")


def test_changes_planned_centuries_apart_cost_a_bounded_read(desk: Desk, monkeypatch):
    """A change from 2026 to 8999 and another in 8998 on a CI with windows: a read of 8998's
    schedule must not walk the seven thousand years between their starts (a review found it took
    40 s). Counted in steps of the window arithmetic, not in time."""
    from app.services import maintenance

    add_window(desk, {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "02:00"})
    add_window(desk, SUNDAY_NIGHT)
    start_change(desk, planned_start="2026-03-10T20:00:00Z", planned_end="8999-01-01T00:00:00Z")
    late = start_change(desk, planned_start="8998-12-08T12:00:00Z", planned_end="8998-12-08T13:00:00Z")
    steps = []
    real = maintenance._at
    monkeypatch.setattr(maintenance, "_at", lambda *args: steps.append(1) or real(*args))
    read = desk.client.get("/api/v1/schedule", headers=desk.auth("alex"), query_string={"from": "8998-12-01T00:00:00Z"})
    assert read.status_code == 200, read.get_json()
    fits = {r["number"]: [c["next_start"] for c in r["clashes"] if c["kind"] == "maintenance"] for r in read.get_json()["records"]}
    assert fits[late] == ["8998-12-09T01:00:00+00:00"]  # from its start (a Saturday): Sunday night in Berlin
    assert len(steps) < 4 * 2 * 2 * (2 * 92 + 20), len(steps)


def test_a_window_open_now_says_until_when(desk: Desk):
    # the desk's clock: Monday 09:00 UTC
    window = add_window(desk, {"days": ["mon"], "start": "08:00", "end": "10:00"})
    assert window["open_until"] == "2026-01-05T10:00:00+00:00"
    assert window["next_start"] == "2026-01-12T08:00:00+00:00"  # the next opening: next Monday
    assert add_window(desk, SUNDAY_NIGHT)["open_until"] is None


def test_a_monthly_window_is_the_patch_tuesday_of_every_month(desk: Desk, services):
    patch = add_window(desk, {"days": ["tue"], "week": "second", "start": "22:00", "end": "02:00", "name": "Patch Tuesday"})
    # January 2026 starts on a Thursday: its second Tuesday is the 13th
    assert (patch["week"], patch["next_start"], patch["next_end"]) == (
        "second", "2026-01-13T22:00:00+00:00", "2026-01-14T02:00:00+00:00")
    # every Tuesday at those times is another window, not the same one
    weekly = add_window(desk, {"days": ["tue"], "start": "22:00", "end": "02:00"})
    assert weekly["id"] != patch["id"] and weekly["week"] is None
    assert desk.client.delete(f"/api/v1/cis/vpn-gw-01/windows/{weekly['id']}", headers=desk.auth("cmo")).status_code == 204
    inside = start_change(desk, planned_start="2026-03-10T22:30:00Z", planned_end="2026-03-11T01:00:00Z")
    outside = start_change(desk, planned_start="2026-03-17T22:30:00Z", planned_end="2026-03-18T01:00:00Z")
    assert clashes(desk, inside) == []
    assert [(c["kind"], c["next_start"]) for c in clashes(desk, outside)] == [("maintenance", "2026-04-14T22:00:00+00:00")]
    # made weekly with a PATCH (week null): the third Tuesday is inside too
    changed = desk.client.patch(f"/api/v1/cis/vpn-gw-01/windows/{patch['id']}", json={"week": None}, headers=desk.auth("cmo"))
    assert changed.status_code == 200 and changed.get_json()["week"] is None
    assert clashes(desk, outside) == []
    [audited] = events(services, "ci_window_changed")
    assert (audited["was"]["week"], audited["week"]) == ("second", None)
