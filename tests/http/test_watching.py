"""Watching a record (``/api/v1/tickets/<number>/watchers``): anyone who reads it follows it and
hears its news, stops when they like; the desk's staff take others off; auditors only read."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_close_as_duplicate import close, incident


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def watchers(desk: Desk, number: str, who: str, method: str = "GET", whom: str = "me") -> Any:
    path = f"/api/v1/tickets/{number}/watchers" + ("" if method == "GET" else f"/{whom}")
    return desk.client.open(path, method=method, headers=desk.auth(who))


def events(services, event_type: str) -> list[tuple[str, str]]:
    rows = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.id))
    return [(e.actor, e.payload["username"]) for e in rows]


def test_an_agent_watches_a_record_and_hears_its_comments(desk: Desk, services):
    number = incident(desk)
    first = watchers(desk, number, "alex", "PUT")
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {"users": ["alex"], "groups": [], "watching": True, "changed": True, "others": 0}
    again = watchers(desk, number, "alex", "PUT").get_json()
    assert again["changed"] is False and again["users"] == ["alex"]
    assert events(services, "record_watch_started") == [("alex", "alex")]
    told = len(desk.notifications("alex"))
    assert desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("rita"),
                            json={"body": "It works from the office, not from home."}).status_code == 201
    news = desk.notifications("alex")[: len(desk.notifications("alex")) - told]
    assert any("It works from the office" in n["body"] for n in news)
    # the staff read who watches; its requester, how many (the reporters of an outage are strangers)
    assert watchers(desk, number, "nina").get_json()["users"] == ["alex"]
    assert watchers(desk, number, "rita").get_json() == {"users": [], "groups": [], "watching": False,
                                                         "changed": False, "others": 1}
    # and stopping is one's own to do, once
    stopped = watchers(desk, number, "alex", "DELETE").get_json()
    assert stopped["changed"] is True and stopped["users"] == [] and stopped["watching"] is False
    assert watchers(desk, number, "alex", "DELETE").get_json()["changed"] is False
    assert events(services, "record_watch_stopped") == [("alex", "alex")]


def test_who_may_not_watch(desk: Desk, services):
    number = incident(desk)
    assert_error(watchers(desk, number, "mona", "PUT"), 404)  # another's record: not hers to read
    assert_error(watchers(desk, number, "aude", "PUT"), 403)  # reads all, writes nothing
    # a watch lets its watcher read the record: not the staff's, it would outlast the reason one reads it
    assert "staff" in assert_error(watchers(desk, number, "rita", "PUT"), 403)["message"]
    assert watchers(desk, number, "aude").status_code == 200
    denied = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert ("aude", "watch") in [(e.actor, e.payload.get("action")) for e in denied]
    assert_error(watchers(desk, "INC-999999", "alex", "PUT"), 404)


def test_a_reporter_who_stops_watching_no_longer_reads_the_record(desk: Desk):
    first, second = incident(desk), incident(desk, "mona")
    assert close(desk, second, first).status_code == 200
    assert watchers(desk, first, "mona").get_json()["watching"] is True
    stopped = watchers(desk, first, "mona", "DELETE")
    assert stopped.status_code == 200 and stopped.get_json() == {"users": [], "groups": [], "watching": False,
                                                                  "changed": True, "others": 0}
    assert desk.client.get(f"/api/v1/tickets/{first}", headers=desk.auth("mona")).status_code == 404


def test_the_desk_takes_others_off_and_nobody_else_does(desk: Desk, services):
    number = incident(desk)
    assert watchers(desk, number, "alex", "PUT").status_code == 200
    refused = assert_error(watchers(desk, number, "rita", "DELETE", "alex"), 403)
    assert "service desk" in refused["message"]
    assert watchers(desk, number, "rita").get_json()["others"] == 1
    assert_error(watchers(desk, number, "nina", "DELETE", "ghost"), 404)
    assert_error(watchers(desk, number, "nina", "DELETE", "rita"), 404)  # she does not watch it: she requested it
    # a leaver stays on the list until the desk takes them off
    assert desk.client.post("/api/v1/users/alex/deactivate", headers=desk.auth("ada")).status_code == 200
    taken = watchers(desk, number, "nina", "DELETE", "ALEX")
    assert taken.status_code == 200 and taken.get_json()["users"] == []
    assert events(services, "record_watch_stopped") == [("nina", "alex")]


def test_a_service_requests_watchers_do_not_follow_it_onto_anothers(desk: Desk, services):
    """Review: a requester watching her own request read another's once hers was closed onto it."""
    from tests.http.test_out_of_office import order_laptop
    services.users.create_user("rhea", "password-1234", roles=["requester"], groups=["Requesters"])
    services.users.set_manager("rhea", "mona")
    services.session.commit()
    first, second = order_laptop(desk), order_laptop(desk, who="rhea")
    services.records.watch(services.records.by_number(second), user=services.users.get_by_username("rhea"))
    services.session.commit()
    assert close(desk, second, first).status_code == 200
    assert desk.client.get(f"/api/v1/tickets/{first}", headers=desk.auth("rhea")).status_code == 404


def test_staff_demoted_no_longer_read_or_hear_what_they_watched_but_a_reporter_does(desk: Desk, services):
    first, second = incident(desk), incident(desk, "mona")
    assert watchers(desk, first, "alex", "PUT").status_code == 200  # alex watches as staff
    assert close(desk, second, first).status_code == 200  # mona follows her duplicate's record
    services.users.update_user(None, "alex", {"roles": ["requester"]})
    services.session.commit()
    assert desk.client.get(f"/api/v1/tickets/{first}", headers=desk.auth("alex")).status_code == 404
    assert desk.client.get(f"/api/v1/tickets/{first}", headers=desk.auth("mona")).status_code == 200
    listed = desk.client.get("/api/v1/tickets?kind=incident", headers=desk.auth("alex")).get_json()["items"]
    assert first not in [r["number"] for r in listed]
    told = {who: len(desk.notifications(who)) for who in ("alex", "mona")}
    assert desk.client.post(f"/api/v1/tickets/{first}/comments", headers=desk.auth("rita"),
                            json={"body": "Still down this morning."}).status_code == 201
    assert len(desk.notifications("alex")) == told["alex"]
    assert len(desk.notifications("mona")) > told["mona"]
    # made staff again, alex reads it and hears its news as before
    services.users.update_user(None, "alex", {"roles": ["agent", "requester"]})
    services.session.commit()
    assert desk.client.post(f"/api/v1/tickets/{first}/comments", headers=desk.auth("rita"),
                            json={"body": "And again."}).status_code == 201
    assert any("And again." in n["body"] for n in desk.notifications("alex"))
