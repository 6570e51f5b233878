"""A double click on a create form's button in real Chromium creates one record or comment: the
button is disabled once the form is sent (static/js/submit-once.js), and the server creates once
per form token when the form's data arrives twice anyway (app/services/submissions.py)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select

from app.models import Ticket, TicketComment
from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

#: Clicks the form's submit button twice, 50 ms apart, as an impatient double click does.
DOUBLE_CLICK = "b => { b.click(); setTimeout(() => b.click(), 50); }"
#: The form's data sent twice at once, as a page without the script (or a resent request) can:
#: both requests reach the server together. Answers where each one led.
SENT_TWICE_AT_ONCE = """f => Promise.all([1, 2].map(() =>
  fetch(f.action, {method: "POST", body: new FormData(f), credentials: "same-origin"})
    .then(r => new URL(r.url).pathname)))"""


def count(live: Any, query: Any) -> int:
    session = live.desk.services.session
    # read in a transaction of its own: another journey's helper may have left one open on this
    # session, whose snapshot (SQLite) predates the records this journey made
    session.rollback()
    try:
        return int(session.scalar(query) or 0)
    finally:
        session.rollback()


def tickets_titled(live: Any, title: str) -> int:
    return count(live, select(func.count()).select_from(Ticket).where(Ticket.title == title))


def posts_to(someone: Any, path: str) -> list[str]:
    """The POSTs the page sends to ``path`` from now on."""
    sent: list[str] = []
    someone.page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and r.url.endswith(path) else None)
    return sent


def filled_start_form(person: Any, title: str) -> tuple[Any, list[str]]:
    """rita on the incident start form, filled in with ``title``; she and the list of POSTs the
    page sends from then on."""
    rita = person(1280)
    rita.sign_in("rita")
    rita.go("/start/incident_management")
    fill_incident(rita.page, title)
    return rita, posts_to(rita, "/start/incident_management")


def fill_incident(page: Any, title: str) -> None:
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill("Cannot connect from home")
    page.get_by_label("Category").select_option("network")
    for group in ("Impact", "Urgency"):
        page.get_by_role("group", name=re.compile(group)).get_by_label("Medium").check()


def settle(page: Any) -> None:
    """Wait past the second click and any request it sent."""
    page.wait_for_timeout(300)
    page.wait_for_load_state("networkidle")


def test_a_double_click_on_the_start_form_reports_one_incident(live, person):
    title = f"VPN down {uuid.uuid4().hex[:6]}"
    rita, sent = filled_start_form(person, title)
    page = rita.page
    page.get_by_role("button", name="Submit").evaluate(DOUBLE_CLICK)
    page.wait_for_url(re.compile(r"/tickets/INC-\d+$"))
    settle(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    assert len(sent) == 1  # the button was disabled after the first click
    assert tickets_titled(live, title) == 1
    assert rita.errors == []


def test_sent_twice_past_the_script_the_server_still_creates_one_incident(live, person):
    title = f"Mail down {uuid.uuid4().hex[:6]}"
    rita, sent = filled_start_form(person, title)
    page = rita.page
    landed = page.locator("form[data-submit-once]").evaluate(SENT_TWICE_AT_ONCE)
    assert len(sent) == 2  # both reached the server
    assert landed[0] == landed[1] and re.fullmatch(r"/tickets/INC-\d+", landed[0]), landed
    rita.go(landed[0])
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    assert tickets_titled(live, title) == 1


def test_a_double_click_on_a_catalog_request_orders_once(live, person):
    rita = person(1280)
    rita.sign_in("rita")
    rita.go("/catalog/HW-MONITOR")
    page = rita.page
    before = count(live, select(func.count()).select_from(Ticket).where(Ticket.kind == "request"))
    form = page.locator("form[data-submit-once]")
    for field in form.locator("textarea, input[type=text]").all():
        field.fill("Second screen for reviews")
    for select_box in form.locator("select").all():
        select_box.select_option(index=1)
    page.get_by_role("button", name="Send request").evaluate(DOUBLE_CLICK)
    page.wait_for_url(re.compile(r"/tickets/REQ-\d+$"))
    settle(page)
    after = count(live, select(func.count()).select_from(Ticket).where(Ticket.kind == "request"))
    assert after == before + 1
    assert rita.errors == []


def test_a_double_click_on_the_comment_form_adds_one_comment(live, person):
    number = live.start_incident(f"Printer {uuid.uuid4().hex[:6]}")
    rita = person(390)
    rita.sign_in("rita")
    rita.go(f"/tickets/{number}")
    page = rita.page
    body = f"Still broken {uuid.uuid4().hex[:6]}"
    page.get_by_label("Add a comment").fill(body)
    page.get_by_role("button", name="Add comment").evaluate(DOUBLE_CLICK)
    page.wait_for_url(re.compile(rf"/tickets/{number}#comment-\d+$"))
    settle(page)
    expect(page.locator("ol.comments li").filter(has_text=body)).to_have_count(1)
    assert count(live, select(func.count()).select_from(TicketComment).where(TicketComment.body == body)) == 1
    assert rita.errors == []


def test_back_to_the_start_form_after_reporting_shows_it_empty(live, person):
    """Back from the new record to its start form shows a new, empty form: the browser does not
    fill it in again with what was sent (a second Submit would report the incident twice)."""
    title = f"Back button {uuid.uuid4().hex[:6]}"
    rita, _sent = filled_start_form(person, title)
    page = rita.page
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/tickets/INC-\d+$"))
    page.go_back()
    page.wait_for_url(re.compile(r"/start/incident_management$"))
    expect(page.get_by_label("Title")).to_have_value("")
    expect(page.get_by_label("Description")).to_have_value("")
    expect(page.get_by_role("group", name=re.compile("Impact")).get_by_label("Medium")).not_to_be_checked()
    assert tickets_titled(live, title) == 1
    assert rita.errors == []


def test_back_to_the_record_after_commenting_shows_the_comment_box_empty(live, person):
    number = live.start_incident(f"Printer {uuid.uuid4().hex[:6]}")
    rita = person(1280)
    rita.sign_in("rita")
    rita.go(f"/tickets/{number}")
    page = rita.page
    body = f"Still broken {uuid.uuid4().hex[:6]}"
    page.get_by_label("Add a comment").fill(body)
    page.get_by_role("button", name="Add comment").click()
    page.wait_for_url(re.compile(rf"/tickets/{number}#comment-\d+$"))
    page.go_back()
    page.wait_for_url(re.compile(rf"/tickets/{number}$"))
    expect(page.locator("ol.comments li").filter(has_text=body)).to_have_count(1)
    expect(page.get_by_label("Add a comment")).to_have_value("")
    assert rita.errors == []
