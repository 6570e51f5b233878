"""The change schedule: freeze windows refuse changes planned into them, emergency changes may run
there, and planned windows that overlap a freeze or another change on the same CI show as clashes.

Through the API with the shipped change process (its record mapping's ``schedule``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.errors import ValidationFailed
from app.models import AuditEvent, ChangeFreeze, ProcessInstance, Ticket
from app.services.forms import check_form_definition
from app.services.records import check_mapping
from tests.http.desk import ROOT, Desk
from tests.http.test_e2e_change import ASSESS_LOW, CHANGE

#: A freeze over the night CHANGE is planned for (2026-03-10 20:00-22:00 UTC).
YEAR_END = {"name": "Quarter close", "starts_at": "2026-03-10T18:00:00Z", "ends_at": "2026-03-11T06:00:00Z",
            "reason": "Finance closes the quarter."}
LATER = {"planned_start": "2026-03-12T20:00:00Z", "planned_end": "2026-03-12T22:00:00Z"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def add_freeze(desk: Desk, body: dict[str, Any], who: str = "olga", status: int = 201) -> dict[str, Any]:
    response = desk.client.post("/api/v1/schedule/freezes", headers=desk.auth(who), json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def start_change(desk: Desk, status: int = 201, who: str = "alex", **extra: Any) -> dict[str, Any]:
    response = desk.client.post("/api/v1/instances", headers=desk.auth(who), json={
        "process_id": "change_enablement", "data": {**CHANGE, "change_type": "normal", **extra}})
    assert response.status_code == status, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def schedule(desk: Desk, who: str = "alex", **query: str) -> dict[str, Any]:
    response = desk.client.get("/api/v1/schedule", headers=desk.auth(who),
                               query_string={"from": "2026-03-01T00:00:00Z", **query})
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def clashes(desk: Desk, number: str, who: str = "alex") -> list[dict[str, Any]]:
    response = desk.client.get(f"/api/v1/tickets/{number}/clashes", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["clashes"]  # type: ignore[no-any-return]


def test_a_change_planned_into_a_freeze_is_refused_and_nothing_is_stored(desk: Desk, services):
    freeze = add_freeze(desk, YEAR_END)
    assert (freeze["name"], freeze["ci"], freeze["created_by"]) == ("Quarter close", None, "olga")
    before = services.session.scalar(select(func.count()).select_from(Ticket))
    refused = start_change(desk, status=422)
    problems = refused["details"]["fields"]["planned_start"]
    assert "Quarter close" in problems[0] and "2026-03-10T18:00:00Z to 2026-03-11T06:00:00Z" in problems[0]
    assert refused["details"]["freeze"]["id"] == freeze["id"]
    services.session.rollback()
    assert services.session.scalar(select(func.count()).select_from(Ticket)) == before
    assert services.session.scalar(select(func.count()).select_from(ProcessInstance)) == 0
    # a window that ends when the freeze starts, or starts when it ends, is outside it
    before_it = start_change(desk, planned_start="2026-03-10T16:00:00Z", planned_end="2026-03-10T18:00:00Z")
    after_it = start_change(desk, planned_start="2026-03-11T06:00:00Z", planned_end="2026-03-11T07:00:00Z")
    numbers = {before_it["data"]["record_number"], after_it["data"]["record_number"]}
    assert {r["number"] for r in schedule(desk)["records"]} == numbers


def test_an_emergency_change_may_run_in_a_freeze_and_shows_it(desk: Desk):
    freeze = add_freeze(desk, YEAR_END)
    number = start_change(desk, change_type="emergency")["data"]["record_number"]
    found = clashes(desk, number)
    assert [(c["kind"], c["freeze_id"], c["exempt"]) for c in found] == [("freeze", freeze["id"], True)]
    record = next(r for r in schedule(desk)["records"] if r["number"] == number)
    assert (record["planned_start"], record["planned_end"]) == ("2026-03-10T20:00:00+00:00", "2026-03-10T22:00:00+00:00")
    assert record["category"] == "emergency" and record["clashes"] == found


def test_a_freeze_on_one_ci_holds_for_that_ci_alone(desk: Desk):
    add_freeze(desk, {**YEAR_END, "ci": "MAILGW01"})  # CI names compare without case
    start_change(desk, status=422)
    other = start_change(desk, ci="web01")["data"]["record_number"]
    assert clashes(desk, other) == []
    # the schedule of one CI: its records and the freezes that hold for it
    assert schedule(desk, ci="web01")["freezes"] == []
    assert [f["ci"] for f in schedule(desk, ci="mailgw01")["freezes"]] == ["MAILGW01"]


def test_moving_a_window_into_a_freeze_is_refused_and_a_later_freeze_is_a_clash(desk: Desk, services):
    started = start_change(desk, **LATER)
    number = started["data"]["record_number"]
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": True})
    freeze = add_freeze(desk, {**YEAR_END, "starts_at": "2026-03-12T00:00:00Z", "ends_at": "2026-03-13T00:00:00Z"})
    # planned before the freeze existed: it stays planned there, and shows the clash
    assert [c["name"] for c in clashes(desk, number)] == ["Quarter close"]
    assert [c["exempt"] for c in clashes(desk, number)] == [False]
    # confirming the window where it stands is not moving it
    assert desk.ready(number) == ["schedule"]
    moved = desk.complete(number, "schedule", "cora", {"planned_start": "2026-03-12T21:00:00Z",
                                                       "planned_end": "2026-03-12T23:00:00Z"}, status=422)
    assert list(moved["details"]["fields"]) == ["planned_start"]
    assert desk.ready(number) == ["schedule"]
    def window() -> tuple[str, str]:
        planned = next(r for r in schedule(desk)["records"] if r["number"] == number)
        return planned["planned_start"], planned["planned_end"]

    assert window() == ("2026-03-12T20:00:00+00:00", "2026-03-12T22:00:00+00:00")
    desk.complete(number, "schedule", "cora", {"planned_start": "2026-03-14T20:00:00Z", "planned_end": "2026-03-14T21:00:00Z"})
    assert window() == ("2026-03-14T20:00:00+00:00", "2026-03-14T21:00:00+00:00")
    assert desk.record(number)["details"]["planned_start"] == "2026-03-14T20:00:00Z"
    assert clashes(desk, number) == []
    # removing the freeze: audited with what it was
    response = desk.client.delete(f"/api/v1/schedule/freezes/{freeze['id']}", headers=desk.auth("olga"))
    assert response.status_code == 204
    assert desk.client.delete(f"/api/v1/schedule/freezes/{freeze['id']}", headers=desk.auth("olga")).status_code == 404
    events = {e.event_type: e.payload for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type.like("change_freeze_%")))}
    assert events["change_freeze_added"]["name"] == events["change_freeze_removed"]["name"] == "Quarter close"
    assert events["change_freeze_removed"]["starts_at"] == "2026-03-12T00:00:00Z"


def test_two_open_changes_on_one_ci_in_one_night_clash_with_each_other(desk: Desk):
    first = start_change(desk)["data"]["record_number"]
    second = start_change(desk, planned_start="2026-03-10T21:30:00Z", planned_end="2026-03-10T23:00:00Z")["data"]["record_number"]
    elsewhere = start_change(desk, ci="web01")["data"]["record_number"]
    assert [(c["kind"], c["number"]) for c in clashes(desk, first)] == [("record", second)]
    assert [(c["kind"], c["number"]) for c in clashes(desk, second)] == [("record", first)]
    assert clashes(desk, elsewhere) == []
    listed = {r["number"]: [c["number"] for c in r["clashes"]] for r in schedule(desk)["records"]}
    assert listed == {first: [second], second: [first], elsewhere: []}
    # the schedule lists earliest first
    assert [r["number"] for r in schedule(desk)["records"]][-1] == second


def test_the_schedule_shows_each_user_the_records_they_may_see(desk: Desk, services):
    number = start_change(desk)["data"]["record_number"]
    assert [r["number"] for r in schedule(desk, who="olga")["records"]] == [number]
    # a requester who is no party to the change sees the freezes, not the change
    add_freeze(desk, {**YEAR_END, "starts_at": "2026-03-20T00:00:00Z", "ends_at": "2026-03-21T00:00:00Z"})
    seen = schedule(desk, who="rita")
    assert seen["records"] == [] and [f["name"] for f in seen["freezes"]] == ["Quarter close"]
    response = desk.client.get(f"/api/v1/tickets/{number}/clashes", headers=desk.auth("rita"))
    assert response.status_code == 404


def test_the_range_and_the_closed_records(desk: Desk):
    number = start_change(desk)["data"]["record_number"]
    assert schedule(desk, to="2026-03-10T20:00:00Z")["records"] == []  # ends as the window starts
    assert [r["number"] for r in schedule(desk, **{"from": "2026-03-10T21:59:00Z"})["records"]] == [number]
    for query, message in (({"to": "2026-02-01T00:00:00Z"}, "must be after from"),
                           ({"to": "2026-06-02T00:00:00Z"}, "at most 92 days after from")):
        response = desk.client.get("/api/v1/schedule", headers=desk.auth("alex"),
                                   query_string={"from": "2026-03-01T00:00:00Z", **query})
        assert response.status_code == 422 and response.get_json()["details"]["fields"]["to"] == [message]
    response = desk.client.get("/api/v1/schedule?from=2026-03-01T00:00:00", headers=desk.auth("alex"))
    assert response.status_code == 422 and "from" in response.get_json()["details"]["fields"]
    # the default range starts now (2026-01-05) and spans 28 days
    default = desk.client.get("/api/v1/schedule", headers=desk.auth("alex")).get_json()
    assert (default["from"], default["to"]) == ("2026-01-05T09:00:00+00:00", "2026-02-02T09:00:00+00:00")


def test_who_may_add_freezes_and_what_a_freeze_must_be(desk: Desk, services, clock):
    for who in ("alex", "rita", "cora", "aude"):
        refused = add_freeze(desk, {}, who=who, status=403)
        assert "process_owner or admin" in refused["message"]
    refusals = [e.payload for e in services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied"))]
    assert [r["action"] for r in refusals].count("change_freeze_add") == 4
    add_freeze(desk, YEAR_END, who="ada")
    cases = [
        ({**YEAR_END, "name": "  "}, "name", "is required"),
        ({**YEAR_END, "name": "x" * 129}, "name", "must be at most 128 characters"),
        ({**YEAR_END, "ends_at": YEAR_END["starts_at"]}, "ends_at", "must be after the start"),
        ({**YEAR_END, "ends_at": "2027-03-12T00:00:00Z"}, "ends_at", "must be within a year of the start"),
        ({**YEAR_END, "starts_at": "2025-12-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}, "ends_at", "is past"),
        ({**YEAR_END, "reason": "r" * 2001}, "reason", "must be at most 2000 characters"),
        ({**YEAR_END, "ci": "mail\u202egw"}, "ci", "U+202E"),
    ]
    for body, field, words in cases:
        refused = add_freeze(desk, body, status=422)
        assert list(refused["details"]["fields"]) == [field], (body, refused)
        assert words in refused["details"]["fields"][field][0]
    for body, field in (({**YEAR_END, "starts_at": "2026-03-10T18:00:00"}, "starts_at"),
                        ({k: v for k, v in YEAR_END.items() if k != "name"}, "name"),
                        ({**YEAR_END, "colour": "red"}, "colour")):
        refused = add_freeze(desk, body, status=422)
        assert field in json.dumps(refused["details"]), refused
    assert services.session.scalar(select(func.count()).select_from(ChangeFreeze)) == 1
    # the list: freezes not over yet
    listed = desk.client.get("/api/v1/schedule/freezes", headers=desk.auth("rita")).get_json()["items"]
    assert [f["name"] for f in listed] == ["Quarter close"]
    clock.advance(timedelta(days=70))
    assert desk.client.get("/api/v1/schedule/freezes", headers=desk.auth("rita")).get_json()["items"] == []


@pytest.mark.parametrize(("schedule_value", "key", "words"), [
    ("planned_start", "schedule", "must name the start and end"),
    ({"start": "planned start", "end": "planned_end"}, "schedule.start", "must name a data variable"),
    ({"start": "planned_start", "end": "planned_start"}, "schedule.end", "different variables"),
    ({"start": "planned_start", "end": "planned_end", "colour": 1}, "schedule.colour", "unknown key"),
    ({"start": "planned_start", "end": "planned_end", "exempt": {"change_type": "emergency"}},
     "schedule.exempt.change_type", "must be a list of values"),
    ({"start": "planned_start", "end": "planned_end", "exempt": []}, "schedule.exempt", "must map"),
])
def test_the_deploy_refuses_a_bad_schedule(schedule_value: Any, key: str, words: str):
    mapping = json.loads((ROOT / "processes" / "change_enablement.record.json").read_text())
    check_mapping(mapping, "change_enablement.record.json")  # the shipped one passes
    with pytest.raises(ValidationFailed) as raised:
        check_mapping({**mapping, "schedule": schedule_value}, "change_enablement.record.json")
    assert raised.value.details == {"file": "change_enablement.record.json", "key": key}
    assert words in raised.value.message


def test_an_emergency_change_made_normal_may_not_keep_its_window_in_a_freeze(desk: Desk):
    add_freeze(desk, YEAR_END)
    number = start_change(desk, change_type="emergency")["data"]["record_number"]
    desk.complete(number, "ecab_approve", "emma", {"approved": False, "approval_comment": "Not an emergency."})
    assert desk.ready(number) == ["revise"]
    refused = desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "change_type": "normal",
                                                       "revision_notes": "A normal change after all."}, status=422)
    assert list(refused["details"]["fields"]) == ["planned_start"] and "Quarter close" in refused["details"]["fields"]["planned_start"][0]
    assert desk.ready(number) == ["revise"]
    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "change_type": "normal",
                                             "revision_notes": "A normal change, after the close.", **LATER})
    assert desk.ready(number) == ["assess"] and clashes(desk, number) == []


def test_the_same_instants_written_another_way_do_not_move_the_window(desk: Desk):
    number = start_change(desk, planned_start="2026-03-12T21:00:00+01:00", planned_end="2026-03-12T23:00:00+01:00")["data"]["record_number"]
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": True})
    add_freeze(desk, {**YEAR_END, "starts_at": "2026-03-12T00:00:00Z", "ends_at": "2026-03-13T00:00:00Z"})
    # the window as the page shows it (UTC): confirmed where it stands, not moved into the freeze
    desk.complete(number, "schedule", "cora", {"planned_start": "2026-03-12T20:00:00Z", "planned_end": "2026-03-12T22:00:00Z"})
    assert desk.ready(number) == ["implement"]
    assert [c["name"] for c in clashes(desk, number)] == ["Quarter close"]


def test_instants_beyond_the_years_the_desk_keeps_are_refused_or_left_unplanned(desk: Desk, client):
    # a process may hold such a window (its own form's rules): the record is not planned by it
    far = start_change(desk, planned_start="9999-12-31T20:00:00-01:00", planned_end="9999-12-31T23:30:00-01:00")
    assert far["data"]["record_number"] not in {r["number"] for r in schedule(desk)["records"]}
    assert desk.record(far["data"]["record_number"])["details"]["planned_start"] == "9999-12-31T20:00:00-01:00"
    for query, field in (({"from": "9999-12-31T00:00:00Z"}, "from"), ({"from": "0001-01-01T00:00:00+01:00"}, "from"),
                         ({"to": "9999-12-31T23:59:59-05:00"}, "to")):
        response = client.get("/api/v1/schedule", headers=desk.auth("alex"), query_string=query)
        assert response.status_code == 422, (query, response.get_json())
        assert response.get_json()["details"]["fields"][field] == ["must be in the years 1900 to 8999"]
    refused = add_freeze(desk, {**YEAR_END, "ends_at": "9999-12-31T23:30:00-01:00"}, status=422)
    assert refused["details"]["fields"] == {"ends_at": ["must be in the years 1900 to 8999"]}


def test_a_freeze_is_stored_and_audited_in_utc_and_follows_its_ci_when_renamed(desk: Desk, services, client):
    made = client.post("/api/v1/cis", headers=desk.auth("ada"), json={"name": "mailgw01", "class": "hardware"})
    assert made.status_code == 201, made.get_json()
    freeze = add_freeze(desk, {**YEAR_END, "starts_at": "2026-03-10T20:00:00+02:00", "ci": "MailGW01"})
    assert freeze["starts_at"] == "2026-03-10T18:00:00+00:00"
    added = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "change_freeze_added")).one()
    assert added.payload["starts_at"] == "2026-03-10T18:00:00Z"
    renamed = client.patch("/api/v1/cis/mailgw01", headers=desk.auth("ada"), json={"name": "mailgw-prod-01"})
    assert renamed.status_code == 200, renamed.get_json()
    listed = client.get("/api/v1/schedule/freezes", headers=desk.auth("alex")).get_json()["items"]
    assert [f["ci"] for f in listed] == ["mailgw-prod-01"]
    # and holds for the changes on it
    assert "Quarter close" in start_change(desk, ci="mailgw-prod-01", status=422)["details"]["fields"]["planned_start"][0]


def test_the_people_of_changes_planned_in_a_new_freeze_are_told(desk: Desk, services, clock):
    done = start_change(desk, planned_start="2026-01-05T10:00:00Z", planned_end="2026-01-05T11:00:00Z")["data"]["record_number"]
    normal = start_change(desk)["data"]["record_number"]
    emergency = start_change(desk, change_type="emergency", title="Replace the failed disk")["data"]["record_number"]
    elsewhere = start_change(desk, ci="web01")["data"]["record_number"]
    later = start_change(desk, **LATER)["data"]["record_number"]
    clock.advance(timedelta(hours=3))  # the first change's window is over: a freeze from before it tells nobody of it
    add_freeze(desk, {**YEAR_END, "starts_at": "2026-01-01T00:00:00Z", "ci": "mailgw01"})

    def frozen(who: str) -> dict[str, dict[str, Any]]:
        return {n["record"]: n for n in desk.notifications(who) if "the change freeze" in n["subject"]}

    # the requester, and the queue of a change nobody holds yet (the change managers)
    for who in ("alex", "cora"):
        told = frozen(who)
        assert set(told) == {normal, emergency}, (who, told)
        assert told[normal]["subject"] == f"{normal}: the change freeze “Quarter close” covers its planned window"
        assert "2026-03-10 20:00 to 2026-03-10 22:00 UTC" in told[normal]["body"]
        assert "Plan it before or after the freeze." in told[normal]["body"]
        assert "As an emergency change it may go ahead" in told[emergency]["body"]
    assert frozen("olga") == {}  # who added it is not told
    added = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "change_freeze_added")).one()
    assert added.payload["planned_in_it"] == [normal, emergency] and added.payload["more_planned_in_it"] is False
    assert done not in frozen("alex")
    assert elsewhere not in added.payload["planned_in_it"] and later not in added.payload["planned_in_it"]


def test_a_window_is_checked_before_it_is_sent(desk: Desk, client):
    add_freeze(desk, YEAR_END)
    number = start_change(desk, change_type="emergency")["data"]["record_number"]

    def preview(who: str = "alex", status: int = 200, **query: str) -> Any:
        response = client.get("/api/v1/schedule/clashes", headers=desk.auth(who), query_string=query)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    # a new change on the CI: the freeze, and the emergency change planned there
    found = preview(**{"from": "2026-03-10T21:00:00Z", "to": "2026-03-10T23:00:00Z", "ci": "MAILGW01"})["clashes"]
    assert [(c["kind"], c["name"], c["exempt"]) for c in found] == [
        ("freeze", "Quarter close", False), ("record", CHANGE["title"], False)]
    # the emergency change planned again: its own window left out, its CI; whether it is exempt is
    # for the data it is sent with (the form may be changing its type too)
    found = preview(**{"from": "2026-03-10T21:00:00Z", "to": "2026-03-10T23:00:00Z", "number": number})["clashes"]
    assert [(c["kind"], c["exempt"]) for c in found] == [("freeze", False)]
    assert preview(**{"from": "2026-03-11T07:00:00Z", "to": "2026-03-11T08:00:00Z", "number": number})["clashes"] == []
    # another CI: neither (the freeze holds for every CI: it stays)
    assert [c["kind"] for c in preview(**{"from": "2026-03-10T21:00:00Z", "to": "2026-03-10T23:00:00Z",
                                          "ci": "web01"})["clashes"]] == ["freeze"]
    # a record the caller may not see is 404; a window backwards or unbounded is 422 naming the field
    assert preview("rita", 404, **{"from": "2026-03-10T21:00:00Z", "to": "2026-03-10T23:00:00Z", "number": number})
    assert preview(status=422, **{"from": "2026-03-10T23:00:00Z", "to": "2026-03-10T21:00:00Z"})["details"]["fields"] == {
        "to": ["must be after from"]}
    assert "from" in preview(status=422, to="2026-03-10T21:00:00Z")["details"]["fields"]
    assert preview(status=422, **{"from": "1900-01-01T00:00:00Z", "to": "8998-12-31T00:00:00Z"})["details"]["fields"] == {
        "to": ["at most 92 days after from"]}


@pytest.mark.parametrize(("check", "reason"), [
    (True, "must be an object naming"),
    ({"end": "planned_end", "colour": "red"}, "must be an object naming"),
    ({"end": "title"}, "'title' is not another date-time field beside it"),
    ({"end": "planned_start"}, "'planned_start' is not another date-time field beside it"),
    ({"end": "planned_end", "ci": "change_type_count"}, "is not a text field beside it"),
    ({"end": "planned_end", "ci": "planned_end"}, "is not a text field beside it"),
])
def test_the_deploy_refuses_a_bad_schedule_check(check: Any, reason: str):
    schema = json.loads((ROOT / "forms" / "change_enablement.start.json").read_text())
    ui = json.loads((ROOT / "forms" / "change_enablement.start.ui.json").read_text())
    check_form_definition(schema, ui, "change_enablement.start.ui.json")  # the shipped one passes
    with pytest.raises(ValidationFailed) as raised:
        check_form_definition(schema, {**ui, "planned_start": {"ui:scheduleCheck": check}}, "change_enablement.start.ui.json")
    assert reason in raised.value.details["reason"] and raised.value.details["pointer"] == "/planned_start/ui:scheduleCheck"
    with pytest.raises(ValidationFailed) as raised:  # on a field that is no date-time
        check_form_definition(schema, {**ui, "title": {"ui:scheduleCheck": {"end": "planned_end"}}}, "x.ui.json")
    assert "belongs on a date-time field" in raised.value.details["reason"]


def test_the_schedule_as_a_calendar_file(desk: Desk, client):
    freeze = add_freeze(desk, {**YEAR_END, "starts_at": "2026-03-11T00:00:00Z"})
    number = start_change(desk, title="Upgrade, then reboot")["data"]["record_number"]
    response = client.get("/api/v1/schedule.ics?from=2026-03-01T00:00:00Z", headers=desk.auth("alex"))
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    assert response.headers["Content-Disposition"] == 'attachment; filename="change-schedule.ics"'
    lines = response.get_data(as_text=True).replace("\r\n ", "").split("\r\n")
    event = lines[lines.index(f"UID:{number}@127.0.0.1") - 1:]
    event = event[:event.index("END:VEVENT") + 1]
    assert "DTSTART:20260310T200000Z" in event and "DTEND:20260310T220000Z" in event
    assert f"SUMMARY:{number} Upgrade\\, then reboot" in event and "LOCATION:mailgw01" in event
    assert f"URL:http://127.0.0.1:5000/tickets/{number}" in event
    assert f"UID:freeze-{freeze['id']}@127.0.0.1" in lines and "SUMMARY:Change freeze: Quarter close" in lines
    # a requester who is no party to the change: the freeze alone
    theirs = client.get("/api/v1/schedule.ics?from=2026-03-01T00:00:00Z", headers=desk.auth("rita")).get_data(as_text=True)
    assert number not in theirs and "Quarter close" in theirs
    refused = client.get("/api/v1/schedule.ics?from=2026-03-01T00:00:00Z&to=2026-01-01T00:00:00Z", headers=desk.auth("alex"))
    assert refused.status_code == 422 and refused.get_json()["details"]["fields"] == {"to": ["must be after from"]}


def test_a_freeze_on_a_service_holds_for_the_cis_it_stands_on(desk: Desk, client, services):
    ada = desk.auth("ada")
    for name, kind in (("payroll-svc", "service"), ("payroll-app", "software"), ("db-01", "hardware"), ("web01", "hardware")):
        assert client.post("/api/v1/cis", headers=ada, json={"name": name, "class": kind}).status_code == 201
    for source, target, kind in (("payroll-svc", "payroll-app", "depends_on"), ("payroll-app", "db-01", "runs_on")):
        made = client.post(f"/api/v1/cis/{source}/relationships", headers=ada, json={"target": target, "kind": kind})
        assert made.status_code == 201, made.get_json()
    planned = start_change(desk, ci="db-01", change_type="emergency")["data"]["record_number"]
    add_freeze(desk, {**YEAR_END, "ci": "Payroll-Svc"})
    # the database payroll runs on is frozen with it, two levels down; another server is not
    refused = start_change(desk, ci="db-01", status=422)
    assert refused["details"]["fields"]["planned_start"] == [
        "the planned window overlaps the change freeze “Quarter close” of Payroll-Svc, which depends on this "
        "configuration item (2026-03-10T18:00:00Z to 2026-03-11T06:00:00Z): plan it before or after the freeze"]
    assert refused["details"]["freeze"]["ci"] == "Payroll-Svc"
    start_change(desk, ci="web01")
    [clash] = clashes(desk, planned)
    assert (clash["ci"], clash["through"], clash["exempt"]) == ("Payroll-Svc", True, True)
    # told: the people of the change planned on what the service stands on
    added = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "change_freeze_added")).one()
    assert added.payload["planned_in_it"] == [planned]
    # the schedule of the database lists the service's freeze
    assert [f["ci"] for f in schedule(desk, ci="db-01")["freezes"]] == ["Payroll-Svc"]
    lines = client.get("/api/v1/schedule.ics?from=2026-03-01T00:00:00Z", headers=desk.auth("alex")).get_data(as_text=True)
    assert "of Payroll-Svc\\, which depends on this configuration item (emergency: allowed)" in lines.replace("\r\n ", "")


def test_the_cis_a_freeze_reaches_end_at_cycles(desk: Desk, client, services):
    ada = desk.auth("ada")
    for name in ("ring-a", "ring-b", "ring-c"):
        assert client.post("/api/v1/cis", headers=ada, json={"name": name, "class": "software"}).status_code == 201
    for source, target in (("ring-a", "ring-b"), ("ring-b", "ring-c"), ("ring-c", "ring-a")):
        made = client.post(f"/api/v1/cis/{source}/relationships", headers=ada, json={"target": target, "kind": "depends_on"})
        assert made.status_code == 201, made.get_json()
    assert services.cmdb.related_names("ring-a", upward=True) == {"ring-b", "ring-c"}
    assert services.cmdb.related_names("RING-A", upward=False) == {"ring-b", "ring-c"}
    assert services.cmdb.related_names("no-such-ci", upward=True) == set()


def test_a_freeze_is_changed_and_the_changes_it_newly_covers_are_told(desk: Desk, client, services):
    first = start_change(desk)["data"]["record_number"]
    later = start_change(desk, **LATER)["data"]["record_number"]
    freeze = add_freeze(desk, YEAR_END)
    url = f"/api/v1/schedule/freezes/{freeze['id']}"

    def told(number: str) -> int:
        return len([n for n in desk.notifications("alex") if n["record"] == number and "the change freeze" in n["subject"]])

    assert (told(first), told(later)) == (1, 0)
    changed = client.patch(url, headers=desk.auth("olga"), json={"ends_at": "2026-03-13T00:00:00Z", "name": "Quarter close+"})
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["name"], changed.get_json()["ends_at"]) == ("Quarter close+", "2026-03-13T00:00:00+00:00")
    assert changed.get_json()["reason"] == YEAR_END["reason"]  # what was not sent stays
    assert (told(first), told(later)) == (1, 1)  # the newly covered one alone
    event = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "change_freeze_changed")).one()
    assert event.payload["was"]["ends_at"] == "2026-03-11T06:00:00Z" and event.payload["ends_at"] == "2026-03-13T00:00:00Z"
    assert event.payload["planned_in_it"] == [later]
    # checked again as a new one; others may not; an unknown one is 404
    refused = client.patch(url, headers=desk.auth("olga"), json={"ends_at": "2026-03-01T00:00:00Z"})
    assert refused.status_code == 422 and refused.get_json()["details"]["fields"] == {"ends_at": ["must be after the start"]}
    assert client.patch(url, headers=desk.auth("alex"), json={"name": "Mine"}).status_code == 403
    assert client.patch("/api/v1/schedule/freezes/999999", headers=desk.auth("olga"), json={"name": "x"}).status_code == 404
    assert client.patch(url, headers=desk.auth("olga"), json={"colour": "red"}).status_code == 422
    # a CI set to null: the freeze holds for every change again
    assert client.patch(url, headers=desk.auth("olga"), json={"ci": "web01"}).get_json()["ci"] == "web01"
    assert client.patch(url, headers=desk.auth("olga"), json={"ci": None}).get_json()["ci"] is None
