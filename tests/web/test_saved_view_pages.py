"""Saved views on the record list: a requester saves her filtered list under a name (an empty or
taken name comes back beside the field), the view is a link above the list that opens the same
filters and order, marked while shown; she deletes it; another person never sees it."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import select

from app.models import SavedView
from tests.web.conftest import WebClient, refused_to, text_of
from tests.web.test_out_of_office_pages import element, field_error
from tests.web.test_response_template_pages import form_of, open_incident


def view_links(page: str) -> list[tuple[str, str, bool]]:
    """(name, address, marked current) of each saved view above the list."""
    nav = re.search(r'<nav class="saved-views"[^>]*>(.*?)</nav>', page, flags=re.S)
    if nav is None:
        return []
    return [(html.unescape(name), html.unescape(href), "aria-current" in attrs)
            for href, attrs, name in re.findall(r'<a href="([^"]*)"([^>]*)>([^<]*)</a>', nav.group(1))]


def test_a_saved_view_opens_the_same_list_and_is_its_owners_alone(web_factory: Any, desk: Any, services: Any) -> None:
    first = open_incident(desk, "Printer jams")
    open_incident(desk, "Monitor flickers")
    rita: WebClient = web_factory()
    rita.login("rita")
    page = text_of(rita.get("/tickets?q=printer&sort=number"))
    assert view_links(page) == []
    form = form_of(page, "save-view-form")
    assert form["query"] == "q=printer&sort=number"
    # a query no view could keep, or text that is no query, comes back to the plain list
    for odd in ("colour=red", "q=a\r\nSet-Cookie: x=1&colour=red"):
        shown = refused_to(rita, rita.post("/tickets/views", {**form, "query": odd, "name": "Odd"}),
                           "/tickets#save-view-form")
        assert field_error(shown, "view-name")

    shown = refused_to(rita, rita.post("/tickets/views", {**form, "name": "  "}),
                       "/tickets?q=printer&sort=number#save-view-form")
    assert field_error(shown, "view-name") == "is required"
    saved = rita.post("/tickets/views", {**form, "name": "My printer"})
    assert saved.status_code == 303 and saved.headers["Location"] == "/tickets?q=printer&sort=number"
    page = text_of(rita.get(saved.headers["Location"]))
    assert view_links(page) == [("My printer", "/tickets?q=printer&sort=number", True)]
    assert [n for n in re.findall(r'class="number">([^<]+)<', page)] == [first]
    # a name she has already, in other letters: refused, what she typed kept
    shown = refused_to(rita, rita.post("/tickets/views", {"query": "", "name": "MY PRINTER"}), "/tickets#save-view-form")
    assert field_error(shown, "view-name") == "is taken: you have a view of this name"
    assert form_of(shown, "save-view-form")["name"] == "MY PRINTER"
    # elsewhere in the list the view is a link, not marked
    assert view_links(text_of(rita.get("/tickets")))[0][2] is False

    # nobody else sees it or deletes it
    alex = web_factory()
    alex.login("alex")
    assert view_links(text_of(alex.get("/tickets"))) == []
    [view] = services.session.scalars(select(SavedView)).all()
    assert "That view was deleted already." in text_of(alex.post(f"/tickets/views/{view.id}/delete", follow_redirects=True))
    assert rita.post(f"/tickets/views/{view.id}/delete", csrf=False).status_code in (400, 403)
    done = text_of(rita.post(f"/tickets/views/{view.id}/delete", follow_redirects=True))
    assert "The view is deleted." in done and view_links(done) == []
    services.session.expire_all()
    assert services.session.scalars(select(SavedView)).all() == []
    assert element(done, "result-count").startswith("Records found: 2")


def test_a_view_saved_through_the_api_opens_on_the_page_marked_as_shown(web_factory: Any, desk: Any) -> None:
    open_incident(desk, "Printer jams")
    made = desk.client.post("/api/v1/users/me/views", headers=desk.auth("alex"),
                            json={"name": "Incidents", "query": "kind=incident"})
    assert made.status_code == 201, made.get_json()
    agent = web_factory()
    agent.login("alex")
    [(name, href, _)] = view_links(text_of(agent.get("/tickets")))
    assert (name, href) == ("Incidents", "/tickets?kind=incident")
    page = text_of(agent.get(href))
    assert view_links(page) == [("Incidents", "/tickets?kind=incident", True)]
    # the home page lists it too
    assert element(text_of(agent.get("/")), "home-views") == "Your saved views Incidents"
    assert 'href="/tickets?kind=incident"' in text_of(agent.get("/"))
    rita = web_factory()
    rita.login("rita")
    assert 'id="home-views"' not in text_of(rita.get("/"))
    assert element(page, "result-count").startswith("Records found: 1")
