"""Browser journeys: Python Playwright driving Debian's chromium against a live server.

The server is the real app (werkzeug, threaded) on 127.0.0.1 and a free port, on a fresh migrated
database, with the shipped processes deployed and the people of tests/http/desk.py. Without
/usr/bin/chromium or the playwright package these tests skip with a message; in CI (CI set) that
is a failure instead. Screenshots of each journey's last page go to test-artifacts/.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from app import create_app
from app.clock import FrozenClock
from app.web.i18n import compile_catalogs
from tests.conftest import TEST_CONFIG, fresh_database_url
from tests.http.desk import Desk

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "password-1234"
#: The two widths every journey runs at: a laptop and a phone; and a small phone's, for the pages
#: that must fit it too.
VIEWPORTS = {1280: {"width": 1280, "height": 900}, 390: {"width": 390, "height": 844},
             375: {"width": 375, "height": 667}}


def _why_not_runnable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


def require_browser() -> None:
    """Skip the calling test module when chromium or playwright is missing; fail it in CI."""
    reason = _why_not_runnable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}", allow_module_level=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class LiveDesk:
    url: str
    desk: Desk

    def start_incident(self, title: str) -> str:
        data = {"title": title, "description": "Cannot connect from home", "category": "network",
                "impact": "medium", "urgency": "medium", "service": "VPN"}
        return str(self.desk.start("rita", "incident_management", data)["data"]["record_number"])


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDesk]:
    compile_catalogs()
    url = fresh_database_url(tmp_path_factory.mktemp("browser"), "browser")
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url}, clock=FrozenClock())
    ext = app.extensions["processdesk"]
    services = ext.services()
    desk = Desk(app.test_client(), services)
    services.session.close()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveDesk(f"http://127.0.0.1:{server.server_port}", desk)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        services.session.close()
        ext.db_engine.dispose()


@dataclass
class Person:
    """One person's browser window, with every console error and page error it saw.

    Chromium logs "Failed to load resource" for a page served with an error status (the 404
    page, a form sent back with 422); those pages are the answer the journey expects and it checks
    their status itself, so only they are left out of ``errors``. A failing stylesheet, script or
    image, and every script error, stays in.
    """

    page: Any
    base_url: str
    error_documents: set[str] = field(default_factory=set)
    console: list[tuple[str, str]] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [text for text, url in self.console
                if not (text.startswith("Failed to load resource") and url in self.error_documents)]

    def watch(self) -> None:
        def on_console(message: Any) -> None:
            if message.type == "error":
                self.console.append((message.text, message.location.get("url", "")))

        def on_response(response: Any) -> None:
            if (response.request.is_navigation_request() and response.frame == self.page.main_frame
                    and response.status >= 400):
                self.error_documents.add(response.url)

        self.page.on("console", on_console)
        self.page.on("pageerror", lambda error: self.console.append((f"page error: {error}", "")))
        self.page.on("response", on_response)

    def go(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def sign_in(self, username: str) -> None:
        self.go("/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(self.base_url + "/")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture()
def person(browser: Any, live: LiveDesk) -> Iterator[Any]:
    """person(width) -> a Person in a fresh browser context (own cookies) of that width."""
    contexts = []

    def open_window(width: int) -> Person:
        context = browser.new_context(viewport=VIEWPORTS[width], locale="en-US")
        context.set_default_timeout(10_000)
        contexts.append(context)
        someone = Person(context.new_page(), live.url)
        someone.watch()
        return someone

    yield open_window
    for context in contexts:
        context.close()
