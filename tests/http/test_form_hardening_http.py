"""Form hardening through the API: 422 bodies name the field, nothing is stored.

Bidirectional formatting controls (U+202A-U+202E, U+2066-U+2069) are refused in start data, task
completions and catalog requests, at any depth; right-to-left text is taken as sent. A catalog
request naming a person (``"format": "username"``) gets the same answer for a user who does not
exist as for one the requester may not name.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import ProcessInstance, Ticket
from tests.http.desk import Desk
from tests.http.helpers import assert_error

RLO, LRI, PDI = "\u202e", "\u2066", "\u2069"
INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium"}
TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}
VPN = {"profile": "employee", "justification": "Working from home on Fridays."}


def bidi_said(code: str) -> str:
    return f"must not contain bidirectional control characters ({code})"


@pytest.fixture()
def desk(client, services) -> Desk:
    desk = Desk(client, services)
    services.users.create_user("zed", "password-1234", roles=["requester"], groups=["Finance"])
    services.session.commit()
    return desk


def stored(desk: Desk) -> tuple[int, int]:
    session = desk.services.session
    return (session.scalar(select(func.count()).select_from(ProcessInstance)) or 0,
            session.scalar(select(func.count()).select_from(Ticket)) or 0)


def refused(desk: Desk, url: str, body: dict[str, Any], who: str = "rita") -> dict[str, list[str]]:
    before = stored(desk)
    answer = assert_error(desk.client.post(url, headers=desk.auth(who), json=body), 422, "validation_failed")
    assert stored(desk) == before
    return answer["details"]["fields"]  # type: ignore[no-any-return]


def test_a_record_title_with_an_override_is_refused_naming_it(desk: Desk):
    fields = refused(desk, "/api/v1/instances", {"process_id": "incident_management", "data": {
        **INCIDENT, "title": f"invoice{RLO}fdp.exe", "description": f"see {LRI}attached{PDI}"}})
    assert fields == {"title": [bidi_said("U+202E")], "description": [bidi_said("U+2066, U+2069")]}


def test_each_item_of_a_list_is_checked(desk: Desk):
    fields = refused(desk, "/api/v1/instances", {"process_id": "problem_management", "data": {
        "title": "VPN drops", "description": "Every morning.", "related_incidents": ["INC-000001", f"INC-00000{RLO}2"]}},
        who="alex")
    assert "each item " + bidi_said("U+202E") in fields["related_incidents"]


def test_right_to_left_text_is_taken_as_sent(desk: Desk):
    title = "הדפסה לא עובדת \u200f(קומה 2)\u200e — الطابعة لا تعمل\u061c"
    started = desk.start("rita", "incident_management", {**INCIDENT, "title": title})
    assert desk.record(started["data"]["record_number"])["title"] == title


def test_a_task_completion_with_a_control_is_refused_and_the_task_stays(desk: Desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    answer = desk.complete(number, "triage", "alex", {**TRIAGE, "triage_notes": f"call {RLO}0123"}, status=422)
    assert answer["error"] == "validation_failed"
    assert answer["details"]["fields"] == {"triage_notes": [bidi_said("U+202E")]}
    assert "triage" in desk.ready(number)


def test_a_catalog_request_with_a_control_is_refused_naming_the_field(desk: Desk):
    fields = refused(desk, "/api/v1/catalog/NET-VPN/requests",
                     {"data": {**VPN, "for_user": "rita", "justification": f"Working from {RLO}emoh on Fridays."}})
    assert fields == {"justification": [bidi_said("U+202E")]}


def test_the_vpn_form_does_not_tell_who_exists(desk: Desk):
    existing = refused(desk, "/api/v1/catalog/NET-VPN/requests", {"data": {**VPN, "for_user": "zed"}})
    missing = refused(desk, "/api/v1/catalog/NET-VPN/requests", {"data": {**VPN, "for_user": "zee"}})
    assert existing == {"for_user": ["zed is not a user you can name here"]}
    assert missing == {"for_user": ["zee is not a user you can name here"]}
    # the same through the start contract of catalog_request
    started = refused(desk, "/api/v1/instances", {"process_id": "catalog_request",
                                                  "data": {**VPN, "item": "NET-VPN", "for_user": "zed"}})
    assert started == existing


def test_the_vpn_form_takes_the_requester_and_desk_staff_name_anyone(desk: Desk):
    for who, for_user in (("rita", "rita"), ("alex", "zed")):
        response = desk.client.post("/api/v1/catalog/NET-VPN/requests", headers=desk.auth(who),
                                    json={"data": {**VPN, "for_user": for_user}})
        assert response.status_code == 201, response.get_json()


def test_a_typo_of_ones_own_name_is_answered_with_it(desk: Desk):
    fields = refused(desk, "/api/v1/catalog/NET-VPN/requests", {"data": {**VPN, "for_user": "rtia"}})
    assert fields == {"for_user": ["rtia is not a user you can name here; did you mean rita?"]}


@pytest.mark.parametrize("for_user", ["nobody", "rita"])
def test_who_may_not_request_is_refused_before_any_name_is_looked_at(desk: Desk, for_user):
    answer = assert_error(desk.client.post("/api/v1/catalog/NET-VPN/requests", headers=desk.auth("aude"),
                                           json={"data": {**VPN, "for_user": for_user}}), 403)
    assert "for_user" not in str(answer)
