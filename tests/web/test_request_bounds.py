"""Numbers and characters no page or API call can use: an answer, never a 500.

A page number past the database's integer range is shown as the last page we take (an empty
page); a NUL character in the path or the query is refused with 400 naming the parameter
(PostgreSQL cannot store or compare one); a sort key is one name with at most one '-'."""

from __future__ import annotations

import pytest

from app.db import MAX_PAGE
from tests.web.conftest import text_of

HUGE = "99999999999999999999"


@pytest.mark.parametrize("path", ["/tickets", "/tasks", "/audit"])
def test_a_page_number_past_any_integer_shows_a_page(web, desk, path):
    """No error for a page past any integer: the list's last page (a redirect to it), or an empty one."""
    desk.start("rita", "incident_management", {"title": "VPN down", "description": "From home", "category": "network",
                                               "impact": "medium", "urgency": "medium"})
    web.login("aude" if path == "/audit" else "alex")
    for page in (HUGE, str(2**63 - 1), str(MAX_PAGE + 1)):
        response = web.get(f"{path}?page={page}", follow_redirects=True)
        assert response.status_code == 200, (path, page, text_of(response)[:300])


def test_the_api_refuses_a_page_past_the_limit_naming_it(client, auth, deployed):
    response = client.get(f"/api/v1/tickets?page={HUGE}", headers=auth("alex"))
    assert response.status_code == 422 and "page" in response.get_json()["details"]["fields"]


@pytest.mark.parametrize("sort", ["--opened_at", "---number", "-"])
def test_a_sort_key_with_more_than_one_minus_is_refused_naming_sort(client, auth, deployed, sort):
    response = client.get(f"/api/v1/tickets?sort={sort}", headers=auth("alex"))
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert "sort" in response.get_json()["details"]["fields"]


@pytest.mark.parametrize("url, location, name", [
    ("/api/v1/tickets?q=vpn%00", "query", "q"),
    ("/api/v1/knowledge?q=%00", "query", "q"),
    ("/api/v1/tickets/INC-000001%00", "path", "number"),
    ("/api/v1/tasks?sort=%00due", "query", "sort"),
])
def test_the_api_refuses_a_nul_character_naming_the_parameter(client, auth, deployed, url, location, name):
    response = client.get(url, headers=auth("alex"))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"] == "bad_request" and body["details"]["fields"] == {name: [f"{location}: must not contain a NUL character"]}


def test_a_page_refuses_a_nul_character_with_a_page(web, desk):
    web.login("alex")
    response = web.get("/tickets?q=vpn%00")
    assert response.status_code == 400 and response.mimetype == "text/html"
    # a form's NUL is the page's to refuse, naming the field (test_tickets.py)
