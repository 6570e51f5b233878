"""Saved views of the record list through the API: everyone keeps their own named filters and
order, normalised to the list's parameters; opening one lists what the list would, under the rules
of who sees which record; another person's view is 404; bad input is refused naming the field,
and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import SavedView
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import open_incident

URL = "/api/v1/users/me/views"


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def save(desk: Desk, body: dict[str, Any], who: str = "alex") -> Any:
    return desk.client.post(URL, headers=desk.auth(who), json=body)


def names(desk: Desk, who: str) -> list[str]:
    answer = desk.client.get(URL, headers=desk.auth(who))
    assert answer.status_code == 200, answer.get_json()
    return [v["name"] for v in answer.get_json()["items"]]


def stored(services: Any) -> list[tuple[str, str]]:
    services.session.expire_all()
    return [(v.name, v.query) for v in services.session.scalars(select(SavedView).order_by(SavedView.id))]


def test_views_are_saved_normalised_opened_and_deleted_each_by_its_owner(desk: Desk, services):
    mine, _ = open_incident(desk, title="Mine")
    answer = save(desk, {"name": "  Open   network incidents ", "query": "?sort=-opened_at&open=1&kind=incident&q="})
    assert answer.status_code == 201, answer.get_json()
    view = answer.get_json()
    # the page's default order is left out: the page marks the view whichever way it was saved
    assert view["name"] == "Open network incidents" and view["query"] == "kind=incident&open=1"
    # the view lists what the list lists with its query, for whoever opens it
    listed = desk.client.get(f"/api/v1/tickets?{view['query']}", headers=desk.auth("alex")).get_json()
    assert [r["number"] for r in listed["items"]] == [mine]
    # a requester keeps her own, and sees only hers
    assert save(desk, {"name": "My requests", "query": "open=1"}, who="rita").status_code == 201
    assert names(desk, "rita") == ["My requests"] and names(desk, "alex") == ["Open network incidents"]
    for who in ("rita", "ada"):
        assert_error(desk.client.delete(f"{URL}/{view['id']}", headers=desk.auth(who)), 404, "not_found")
    assert desk.client.delete(f"{URL}/{view['id']}", headers=desk.auth("alex")).status_code == 204
    assert names(desk, "alex") == []
    assert stored(services) == [("My requests", "open=1")]


def test_bad_views_are_refused_naming_the_field_and_nothing_is_stored(desk: Desk, services, monkeypatch):
    from app.services import views

    assert save(desk, {"name": "Breached", "query": "breached=1"}).status_code == 201
    cases = [
        ({"name": "", "query": "open=1"}, "name", "is required"),
        ({"name": "x" * 81, "query": "open=1"}, "name", "at most 80 characters"),
        ({"name": "BREACHED", "query": "open=1"}, "name", "is taken: you have a view of this name"),
        ({"name": "Odd", "query": "colour=red"}, "query", "holds colour, which the record list does not know"),
        # what the API's list reads but the page does not: a view opens the page's list
        ({"name": "Odd", "query": "category=network"}, "query", "holds category, which the record list does not know"),
        ({"name": "Odd", "query": "breached=0"}, "query", "breached must be 1"),
        ({"name": "Odd", "query": "sort=-title"}, "query", "sort must be one of"),
        ({"name": "Odd", "query": "open=yes"}, "query", "open must be 0 or 1"),
        ({"name": "Odd", "query": "sort=height"}, "query", "sort must be one of"),
        ({"name": "Odd", "query": "q=" + "a" * 201}, "query", "q must be at most 200 characters"),
        ({"name": "Odd"}, "query", "Missing data for required field."),
    ]
    for body, field, words in cases:
        refused = assert_error(save(desk, body), 422, "validation_failed")
        fields = refused["details"].get("fields") or refused["details"].get("json") or {}
        assert field in fields and words in " ".join(map(str, fields[field])), (body, refused)
    monkeypatch.setattr(views, "MAX_VIEWS", 1)
    refused = assert_error(save(desk, {"name": "Second", "query": "open=0"}), 422, "validation_failed")
    assert refused["details"]["fields"]["name"] == ["you have 30 views already: delete one first"]
    assert stored(services) == [("Breached", "breached=1")]


def test_a_query_is_kept_as_the_page_reads_it(desk: Desk, services):
    made = save(desk, {"name": "Mixed", "query": "status=new&status=closed&kind=incident,%20change&q=%E6%89%93+%26+x"})
    assert made.status_code == 201, made.get_json()
    # the first of a repeated parameter (the page's request.args.get), a kind list without spaces
    assert made.get_json()["query"] == "kind=incident%2Cchange&status=new&q=%E6%89%93+%26+x"
    # a long Chinese search: percent-encoded it is nine bytes a character, and is kept whole
    long_query = "q=" + "打" * 200
    kept = save(desk, {"name": "Long", "query": long_query})
    assert kept.status_code == 201, kept.get_json()
    assert len(kept.get_json()["query"]) == 2 + 9 * 200
    assert [q for _, q in stored(services)][-1] == kept.get_json()["query"]


def test_the_views_parameters_are_the_pages():
    from app.services import views
    from app.web import ticket_pages

    assert set(views.PARAMS) == {*ticket_pages.TEXT_FILTERS, "open", "breached", "sort"}
    assert all(views.PARAMS[name] == longest for name, longest in ticket_pages.TEXT_FILTERS.items())
    assert views.SORTS == tuple(ticket_pages.SORTS) and views.SORTS[0] == ticket_pages.DEFAULT_SORT
