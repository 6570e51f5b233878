"""A directed link holds one way round only: INC-4 "duplicate of" INC-3 refuses INC-3 "duplicate
of" INC-4 (422 ``link_reversed`` naming ``link_type``, nothing stored), whatever type spells the
reverse (``parent`` one way, ``parent`` or ``child`` back; ``caused_by`` one way, ``caused_by``
or ``related_incident`` back). The same link again is still the existing one (200), and
"related", which has no direction, stays one link from either end."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import TicketLink
from tests.conftest import TEST_PASSWORD
from tests.http.helpers import assert_error
from tests.web.conftest import WebClient, refused_to


@pytest.fixture()
def numbers(services: Any, users: Any) -> dict[str, str]:
    alex = services.users.get_by_username("alex")
    made = {}
    for name, kind, number in (("inc3", "incident", "INC-000003"), ("inc4", "incident", "INC-000004"),
                               ("prb1", "problem", "PRB-000001"), ("chg1", "change", "CHG-000001"),
                               ("chg2", "change", "CHG-000002")):
        made[name] = services.records.open_record(kind, number, alex, {"title": f"Record {number}"}).number
    services.session.commit()
    return made


def link(client: Any, headers: dict[str, str], number: str, other: str, link_type: str) -> Any:
    return client.post(f"/api/v1/tickets/{number}/links", headers=headers, json={"number": other, "link_type": link_type})


def stored(services: Any) -> int:
    return int(services.session.scalar(select(func.count()).select_from(TicketLink)) or 0)


def relations(client: Any, headers: dict[str, str], number: str) -> list[tuple[str, str, str]]:
    record = client.get(f"/api/v1/tickets/{number}", headers=headers).get_json()
    return sorted((link["number"], link["relation"], link["side"]) for link in record["links"])


def test_a_record_cannot_be_the_duplicate_of_its_own_duplicate(client, auth, services, numbers):
    headers = auth("alex")
    inc3, inc4 = numbers["inc3"], numbers["inc4"]
    assert link(client, headers, inc4, inc3, "duplicate_of").status_code == 201
    body = assert_error(link(client, headers, inc3, inc4, "duplicate_of"), 422, "link_reversed")
    assert "link_type" in body["details"]["fields"]
    assert body["message"] == (f"{inc4} duplicates {inc3} already: a duplicate_of link from {inc3} to {inc4} "
                               "would state the reverse")
    assert body["details"]["existing"] == {"from": inc4, "to": inc3, "link_type": "duplicate_of"}
    assert stored(services) == 1
    # each page reads one side only
    assert relations(client, headers, inc3) == [(inc4, "duplicates", "object")]
    assert relations(client, headers, inc4) == [(inc3, "duplicates", "subject")]
    # the same link again is still the existing one
    assert link(client, headers, inc4, inc3, "duplicate_of").status_code == 200
    assert stored(services) == 1


@pytest.mark.parametrize(("first", "second"), [
    (("inc3", "inc4", "parent"), ("inc4", "inc3", "parent")),     # each the other's parent
    (("inc3", "inc4", "parent"), ("inc3", "inc4", "child")),      # the parent's child is its parent
    (("inc3", "inc4", "child"), ("inc4", "inc3", "child")),
    (("inc3", "inc4", "blocks"), ("inc4", "inc3", "blocks")),
    (("inc3", "prb1", "caused_by"), ("prb1", "inc3", "caused_by")),         # the problem causes the incident...
    (("prb1", "inc3", "related_incident"), ("prb1", "inc3", "caused_by")),  # ...spelled from either end
    (("inc3", "inc4", "caused_by"), ("inc3", "inc4", "related_incident")),  # INC-4 causes INC-3 -> INC-3 causes INC-4
    (("chg1", "chg2", "duplicate_of"), ("chg2", "chg1", "duplicate_of")),
])
def test_the_reverse_of_a_directed_link_is_refused_whatever_type_spells_it(client, auth, services, numbers, first, second):
    headers = auth("alex")
    source, target, link_type = first
    assert link(client, headers, numbers[source], numbers[target], link_type).status_code == 201
    source, target, link_type = second
    body = assert_error(link(client, headers, numbers[source], numbers[target], link_type), 422, "link_reversed")
    assert list(body["details"]["fields"]) == ["link_type"]
    assert stored(services) == 1


def test_related_has_no_direction_and_other_relations_still_join_the_pair(client, auth, services, numbers):
    headers = auth("alex")
    inc3, inc4 = numbers["inc3"], numbers["inc4"]
    assert link(client, headers, inc3, inc4, "related").status_code == 201
    assert link(client, headers, inc4, inc3, "related").status_code == 200  # the same relation
    assert link(client, headers, inc4, inc3, "duplicate_of").status_code == 201  # another relation
    assert link(client, headers, inc4, inc3, "blocks").status_code == 201
    assert stored(services) == 3
    assert relations(client, headers, inc3) == [(inc4, "blocks", "object"), (inc4, "duplicates", "object"),
                                                (inc4, "related", "both")]


def test_a_process_linking_the_reverse_keeps_the_link_that_stands(services, numbers):
    """The platform's own links (a diagram's ``link_records``, ``start_process``) store nothing
    contradictory either, but do not fail the step over it: the link that stands is kept."""
    inc3, prb1 = services.records.by_number(numbers["inc3"]), services.records.by_number(numbers["prb1"])
    first = services.records.link(None, prb1, inc3, "caused_by")  # the incident causes the problem
    kept = services.records.link(None, prb1, inc3, "related_incident")  # the problem causes the incident
    assert kept.id == first.id and stored(services) == 1
    # stating the existing relation again is still the existing link
    again = services.records.link(None, prb1, inc3, "caused_by")
    assert (again.source_id, again.target_id, again.link_type) == (prb1.id, inc3.id, "caused_by")


def test_the_record_page_says_why_the_reverse_is_refused(app, client, auth, services, numbers):
    inc3, inc4 = numbers["inc3"], numbers["inc4"]
    assert link(client, auth("alex"), inc4, inc3, "duplicate_of").status_code == 201
    web = WebClient(app.test_client())
    web.login("alex", TEST_PASSWORD)
    # Post/Redirect/Get: said on the record page the refusal leads back to
    text = refused_to(web, web.post(f"/tickets/{inc3}/links", {"other": inc4, "link_type": "duplicate_of"}),
                      f"/tickets/{inc3}#link-form")
    assert (f"{inc4} is already linked to {inc3} the other way round: a link “Duplicate of” would state the "
            "reverse of it.") in text
    assert "Choose one of the link types offered." not in text
    assert stored(services) == 1
    # in Chinese too
    chinese = {"Accept-Language": "zh-CN"}
    zh = refused_to(web, web.post(f"/tickets/{inc3}/links", {"other": inc4, "link_type": "duplicate_of"}, headers=chinese),
                    f"/tickets/{inc3}#link-form", headers=chinese)
    assert re.search(rf"{inc4} 已以相反方向与 {inc3} 关联：“[^”]+”关联将与之相反。", zh)
