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
        "number": second, "of": first, "note": "Same outage of the VPN concentrator", "watcher_added": "mona"}
    assert desk.instance(closed["instance_id"])["status"] == "cancelled"
    # the first record lists its duplicate
    assert (second, "duplicate_of") in {(link["number"], link["link_type"]) for link in desk.record(first)["links"]}


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
