"""Web page tests through the Flask test client: a small "browser" that signs in and posts forms
with the page's CSRF token, on the shared app fixture (a savepoint per test)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.web.i18n import compile_catalogs
from tests.http.desk import Desk

PASSWORD = "password-1234"


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs() -> None:
    """The .mo files are build products: compile any that are missing or older than their .po."""
    compile_catalogs()


class WebClient:
    """The Flask test client used as a person uses the site: pages, then forms posted from them."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def token(self) -> str:
        with self.client.session_transaction() as session:
            token = session.get("csrf_token")
        if token is None:
            page = self.client.get("/login")
            match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
            assert match, "the login page has no CSRF field"
            token = match.group(1)
        return str(token)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any) -> Any:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.token())
        return self.client.post(url, data=form, **kwargs)

    def login(self, username: str, password: str = PASSWORD) -> Any:
        response = self.post("/login", {"username": username, "password": password})
        assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[:300])
        return response

    def logout(self) -> Any:
        return self.post("/logout")


@pytest.fixture()
def web(app: Any) -> WebClient:
    return WebClient(app.test_client())


@pytest.fixture()
def web_factory(app: Any) -> Any:
    """More people at once: web_factory() -> a new WebClient with its own cookies."""
    return lambda: WebClient(app.test_client())


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    """The shipped processes deployed and the people of tests/http/desk.py (password-1234)."""
    return Desk(client, services)


INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}


def text_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def refused_to(web: WebClient, response: Any, location: str, **kwargs: Any) -> str:
    """A form refused for its errors, Post/Redirect/Get (app/web/refused_forms.py): its answer is a
    303 to ``location`` (the form's page, with its fragment), and the page there, fetched once (with
    ``kwargs``, say ``headers``), says what was wrong (the text of that GET)."""
    assert response.status_code == 303, (response.status_code, text_of(response)[:300])
    assert response.headers["Location"] == location
    page = web.get(location.split("#")[0], **kwargs)
    assert page.status_code == 200, page.status_code
    return text_of(page)


def claimed_by_alex_seen_by_sam(web_factory: Any, services: Any, task_id: int, language: str | None = None) -> Any:
    """A ServiceDesk task alex claimed, and sam (another ServiceDesk agent, signed in and on
    ``language`` if given) who tries to claim it too: sam's client."""
    services.users.create_user("sam", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    services.session.commit()
    alex, sam = web_factory(), web_factory()
    alex.login("alex")
    sam.login("sam")
    if language is not None:
        sam.post("/language", {"lang": language})
    alex.post(f"/tasks/{task_id}/claim")
    response = sam.post(f"/tasks/{task_id}/claim")
    assert response.status_code == 302
    return sam
