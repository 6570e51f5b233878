"""Closing a record as the duplicate of another (``POST /api/v1/tickets/<number>/close-as-duplicate``):
linked, its requester watching the one that is worked, its process cancelled with the reason told
to its people; all or nothing, and only by the desk's staff."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, RecordWatcher, TicketLink
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import START, resolve, triage


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def incident(desk: Desk, who: str = "rita", title: str = "VPN down") -> str:
    return str(desk.start(who, "incident_management", {**START, "title": title})["data"]["record_number"])


def close(desk: Desk, number: str, of: str, who: str = "alex", **body: Any) -> Any:
    return desk.client.post(f"/api/v1/tickets/{number}/close-as-duplicate", headers=desk.auth(who),
                            json={"number": of, **body})


def links(services) -> int:
    return services.session.scalar(select(func.count()).select_from(TicketLink))


def test_the_desk_closes_a_second_report_and_its_reporter_follows_the_first(desk: Desk, services):
    first = incident(desk)
    second = incident(desk, "mona", "No VPN since this morning")
    assert desk.client.get(f"/api/v1/tickets/{first}", headers=desk.auth("mona")).status_code == 404
    answer = close(desk, second, first, note="Same outage of the VPN concentrator")
    assert answer.status_code == 200, answer.get_json()
    closed = answer.get_json()
    assert closed["status"] == "cancelled" and closed["open_tasks"] == []
    assert [(link["number"], link["link_type"]) for link in closed["links"]] == [(first, "duplicate_of")]
    # mona now reads the first record, and hears why hers was closed
    assert desk.client.get(f"/api/v1/tickets/{first}", headers=desk.auth("mona")).status_code == 200
    [notice] = [n for n in desk.notifications("mona") if n["record"] == second and "cancelled" in n["subject"]]
    assert f"duplicate of {first} (VPN down): Same outage of the VPN concentrator" in notice["body"]
    [event] = services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "record_closed_as_duplicate")).all()
    assert event.actor == "alex" and event.payload == {
        "number": second, "of": first, "note": "Same outage of the VPN concentrator", "watcher_added": "mona",
        "watchers_moved": []}
    assert desk.instance(closed["instance_id"])["status"] == "cancelled"
    # the first record lists its duplicate
    assert (second, "duplicate_of") in {(link["number"], link["link_type"]) for link in desk.record(first)["links"]}


def test_the_reporter_of_a_duplicate_hears_the_worked_records_news(desk: Desk, services):
    """Review: watchers only read a record; the reporter of a closed duplicate heard nothing more."""
    first = incident(desk)
    second = incident(desk, "mona", "No VPN since this morning")
    assert close(desk, second, first).status_code == 200
    told = len(desk.notifications("mona"))
    comment = desk.client.post(f"/api/v1/tickets/{first}/comments", headers=desk.auth("alex"),
                               json={"body": "The concentrator is being replaced."})
    assert comment.status_code == 201, comment.get_json()
    triage(desk, first)
    resolve(desk, first)
    news = desk.notifications("mona")[: len(desk.notifications("mona")) - told]
    bodies = " ".join(n["body"] for n in news)
    assert "The concentrator is being replaced." in bodies
    assert any(n["subject"].startswith(f"{first} resolved") for n in news)
    assert "Please check and confirm" not in bodies  # confirming is rita's


def test_the_watchers_of_a_duplicate_follow_on_to_the_record_it_is_closed_onto(desk: Desk, services):
    first, second, third = incident(desk), incident(desk, "mona"), incident(desk, "alex")
    assert close(desk, second, first).status_code == 200  # mona watches the first
    closed = close(desk, first, third)  # the first turns out to duplicate the third
    assert closed.status_code == 200, closed.get_json()
    assert desk.client.get(f"/api/v1/tickets/{third}", headers=desk.auth("mona")).status_code == 200
    event = services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "record_closed_as_duplicate").order_by(AuditEvent.id.desc())).first()
    assert event.payload["watcher_added"] == "rita" and event.payload["watchers_moved"] == ["mona"]


def test_a_service_requests_requester_is_not_shown_anothers_request(desk: Desk, services):
    from tests.http.test_out_of_office import order_laptop
    services.users.create_user("rhea", "password-1234", roles=["requester"], groups=["Requesters"])
    services.users.set_manager("rhea", "mona")
    services.session.commit()
    first, second = order_laptop(desk), order_laptop(desk, who="rhea")
    answer = close(desk, second, first)
    assert answer.status_code == 200, answer.get_json()
    [event] = services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "record_closed_as_duplicate")).all()
    assert event.payload["watcher_added"] is None
    assert desk.client.get(f"/api/v1/tickets/{first}", headers=desk.auth("rhea")).status_code == 404


def test_nothing_stays_linked_or_watched_when_the_cancellation_fails(desk: Desk, services, monkeypatch):
    from app.errors import Conflict
    from app.services.instances import InstanceService
    first, second = incident(desk), incident(desk, "mona")

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise Conflict("instance is already completed")

    monkeypatch.setattr(InstanceService, "cancel", refuse)
    assert_error(close(desk, second, first), 409)
    assert links(services) == 0
    assert services.session.scalar(select(func.count()).select_from(RecordWatcher)) == 0
    assert not services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type.in_(("records_linked", "record_closed_as_duplicate")))).all()


def test_a_reporter_of_both_is_not_added_twice(desk: Desk, services):
    first, second = incident(desk), incident(desk)
    answer = close(desk, second, first)
    assert answer.status_code == 200, answer.get_json()
    assert services.session.scalar(select(func.count()).select_from(RecordWatcher)) == 0
    [event] = services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "record_closed_as_duplicate")).all()
    assert event.payload["watcher_added"] is None and event.payload["note"] is None


def test_a_requester_may_not_close_her_record_as_a_duplicate(desk: Desk, services):
    first, second = incident(desk), incident(desk)
    refused = assert_error(close(desk, second, first, who="rita"), 403)
    assert "withdraws" in refused["message"]
    assert links(services) == 0 and desk.record(second)["status"] != "cancelled"
    denied = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert [(e.actor, e.payload.get("action")) for e in denied] == [("rita", "close_duplicate")]


def test_a_closed_record_takes_no_duplicates_and_nothing_is_half_done(desk: Desk, services):
    first, second = incident(desk), incident(desk, "mona")
    triage(desk, first)
    resolve(desk, first)
    desk.complete(first, "confirm_resolution", "rita", {"confirmed": True, "rating": 5})
    assert desk.record(first)["status"] in ("closed", "resolved")
    refused = assert_error(close(desk, second, first), 422, "duplicate_of_closed")
    assert "reopen it" in refused["details"]["fields"]["number"][0]
    assert links(services) == 0
    assert services.session.scalar(select(func.count()).select_from(RecordWatcher)) == 0
    assert desk.record(second)["status"] != "cancelled"


def test_what_it_may_not_be_the_duplicate_of(desk: Desk, services):
    from tests.http.test_e2e_change import raise_change
    first = incident(desk)
    change, _ = raise_change(desk)
    assert "is this record" in assert_error(close(desk, first, first), 422)["details"]["fields"]["number"][0]
    assert_error(close(desk, first, change), 422, "link_kinds")
    assert_error(close(desk, first, "INC-999999"), 404)
    assert_error(close(desk, "INC-999999", first), 404)
    assert links(services) == 0 and desk.record(first)["status"] != "cancelled"
    # closed already: nothing left to close
    second = incident(desk)
    assert close(desk, second, first).status_code == 200
    assert_error(close(desk, second, incident(desk)), 409)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "number"),
    ({"number": ""}, "number"),
    ({"number": "INC-1", "note": "x" * 1001}, "note"),
    ({"number": "INC-1", "note": "see \u202eattached"}, "note"),
    ({"number": "INC-1", "reason": "x"}, "reason"),
])
def test_a_body_without_what_it_needs_is_refused_by_field(desk: Desk, body, field):
    first = incident(desk)
    answer = desk.client.post(f"/api/v1/tickets/{first}/close-as-duplicate", headers=desk.auth("alex"), json=body)
    assert field in assert_error(answer, 422)["details"]["fields"]
    assert desk.record(first)["status"] != "cancelled"


def close_many(desk: Desk, numbers: list[Any], of: str, who: str = "alex", **body: Any) -> Any:
    return desk.client.post("/api/v1/tickets/close-as-duplicate", headers=desk.auth(who),
                            json={"numbers": numbers, "of": of, **body})


def test_a_major_incidents_reports_are_closed_at_once_onto_the_one_worked(desk: Desk, services):
    first = incident(desk)
    reports = [incident(desk, who, f"VPN report of {who}") for who in ("mona", "alex", "rita")]
    answer = close_many(desk, [n.lower() for n in reports] + [reports[0]], first, note="Major incident")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["of"] == first
    assert [(i["number"], i["status"], i["watcher_added"]) for i in body["items"]] == [
        (reports[0], "cancelled", "mona"), (reports[1], "cancelled", "alex"), (reports[2], "cancelled", None)]
    events = services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "record_closed_as_duplicate").order_by(AuditEvent.id)).all()
    assert [e.payload["number"] for e in events] == reports
    assert {(link["number"], link["link_type"]) for link in desk.record(first)["links"]} == {
        (n, "duplicate_of") for n in reports}


def test_one_refused_report_refuses_them_all(desk: Desk, services):
    from tests.http.test_e2e_change import raise_change
    first = incident(desk)
    reports = [incident(desk, "mona"), incident(desk, "mona")]
    change, _ = raise_change(desk)
    refused = assert_error(close_many(desk, [reports[0], change, first, reports[1]], first), 409, "bulk_refused")
    records = refused["details"]["records"]
    assert set(records) == {change, first}
    assert records[change]["error"] == "link_kinds" and records[first]["status"] == 422
    assert links(services) == 0
    assert services.session.scalar(select(func.count()).select_from(RecordWatcher)) == 0
    assert all(desk.record(n)["status"] != "cancelled" for n in reports)
    assert not services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "record_closed_as_duplicate")).all()


def test_the_record_they_duplicate_is_checked_once_first(desk: Desk, services):
    first, second = incident(desk), incident(desk, "mona")
    assert_error(close_many(desk, [second], "INC-999999"), 404)
    refused = assert_error(close_many(desk, [second], first, who="rita"), 409)  # mona's record: not hers to see
    assert refused["details"]["records"][second]["status"] == 404
    triage(desk, first)
    resolve(desk, first)
    desk.complete(first, "confirm_resolution", "rita", {"confirmed": True, "rating": 5})
    closed = assert_error(close_many(desk, [second], first), 422, "duplicate_of_closed")
    assert "of" in closed["details"]["fields"]
    assert "note" in assert_error(close_many(desk, [second], first, note="\u202e"), 422)["details"]["fields"]
    assert links(services) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"numbers": [], "of": "INC-1"}, "numbers"),
    ({"numbers": ["INC-1"] * 0 + [f"INC-{i}" for i in range(101)], "of": "INC-1"}, "numbers"),
    ({"numbers": [5], "of": "INC-1"}, "numbers"),
    ({"numbers": [""], "of": "INC-1"}, "numbers"),
    ({"numbers": ["INC-1"]}, "of"),
    ({"numbers": ["INC-1"], "of": ""}, "of"),
])
def test_a_bulk_body_without_what_it_needs_is_refused_by_field(desk: Desk, body, field):
    answer = desk.client.post("/api/v1/tickets/close-as-duplicate", headers=desk.auth("alex"), json=body)
    assert field in assert_error(answer, 422)["details"]["fields"]


def test_the_service_refuses_what_the_schema_would(desk: Desk, services):
    from app.errors import ValidationFailed
    alex = services.users.get_by_username("alex")
    for numbers, of, field in (([], "INC-1", "numbers"), ([" "], "INC-1", "numbers"), ([7], "INC-1", "numbers"),
                               ([f"INC-{i}" for i in range(101)], "INC-1", "numbers"), (["INC-1"], " ", "of")):
        with pytest.raises(ValidationFailed) as raised:
            services.duplicates.close_many(alex, numbers, of)
        assert field in raised.value.details["fields"]
