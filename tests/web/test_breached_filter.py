"""The record list's "SLA breached only" filter, on the page, in the API and behind the home page's
count of breaches (which used to open every open record)."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.web.conftest import text_of
from tests.web.test_tickets import numbers_listed, open_incident, triaged_incident


def test_breached_only_lists_the_records_with_a_breached_clock(web_factory, desk, services, clock, client):
    answered = triaged_incident(desk, title="Answered in time")  # triage is the first response
    waiting = open_incident(desk, title="Nobody answered")
    clock.advance(timedelta(hours=5))  # P3: response within 4 h
    services.sla.sweep()
    alex = web_factory()
    alex.login("alex")
    assert set(numbers_listed(text_of(alex.get("/tickets?open=1")))) == {answered, waiting}
    page = text_of(alex.get("/tickets?open=1&breached=1"))
    assert numbers_listed(page) == [waiting]
    assert re.search(r'id="filter-breached" name="breached" value="1" checked', page)
    assert "breached=1" in re.search(r'<a href="([^"]+)" id="count-breaches">', text_of(alex.get("/"))).group(1)
    # the home page's link lists exactly the records it counts
    home_link = re.search(r'<a href="([^"]+)" id="count-breaches">', text_of(alex.get("/"))).group(1).replace("&amp;", "&")
    assert numbers_listed(text_of(alex.get(home_link))) == [waiting]
    api = client.get("/api/v1/tickets?breached=true", headers=desk.auth("alex")).get_json()
    assert [t["number"] for t in api["items"]] == [waiting]
    assert client.get("/api/v1/tickets?breached=maybe", headers=desk.auth("alex")).status_code == 422
