"""Back and Reload after a form of the record page was refused, in real Chromium: the refusal is
answered with a redirect to the record page (Post/Redirect/Get, app/web/refused_forms.py), which
shows what was typed and the error beside that form, once. Before, the page was the POST's answer:
Back to it showed Chromium's "Confirm Form Resubmission" page (ERR_CACHE_MISS) and Reload sent the
form again."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import require_browser
from tests.browser.test_refused_form_back import assert_a_real_page, go_back

require_browser()

from playwright.sync_api import expect  # noqa: E402


def record_page(live: Any, person: Any, title: str) -> tuple[Any, str, list[str]]:
    """alex on a new incident's page; he, its number and the list of POSTs his page sends from then on."""
    number = live.start_incident(title)
    alex = person(1280)
    alex.sign_in("alex")
    alex.go(f"/tickets/{number}")
    sent: list[str] = []
    alex.page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    return alex, number, sent


def test_a_refused_comment_comes_back_with_its_text_and_back_and_reload_send_nothing(live, person):
    alex, number, sent = record_page(live, person, "Comment refused, then Back and Reload")
    page = alex.page
    text = "Restarted the gateway \u202e then the tunnel came back"  # a right-to-left override: refused
    page.get_by_label("Add a comment").fill(text)
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator("#comment-body-error")).to_contain_text(
        "must not contain bidirectional control characters (U+202E)")
    expect(page.get_by_label("Add a comment")).to_have_value(text)
    assert page.url == f"{live.url}/tickets/{number}#comment-form"
    expect(page.locator(".field-error")).to_have_count(1)  # beside the comment form alone
    assert len(sent) == 1

    page.reload(wait_until="load")
    assert_a_real_page(page, number)
    assert len(sent) == 1, sent  # the reload asked for the page, it did not post the comment again
    expect(page.locator("#comment-body-error")).to_have_count(0)  # said once

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.wait_for_url(re.compile(r"/tasks$"))
    problem = go_back(page)
    assert problem is None, problem
    assert_a_real_page(page, number)
    assert len(sent) == 1, sent

    # and the form is still there to be sent, once, when it is right
    page.get_by_label("Add a comment").fill("Restarted the gateway: the tunnel came back")
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_role("status")).to_contain_text("Your comment was added.")
    expect(page.locator("#comments")).to_contain_text("Restarted the gateway: the tunnel came back")
    assert len(sent) == 2
    problem = go_back(page)
    assert problem is None, problem
    assert_a_real_page(page, number)
    assert len(sent) == 2, sent
    assert alex.errors == [], alex.console


def test_back_to_a_refused_link_shows_the_record_page(live, person):
    alex, number, sent = record_page(live, person, "Link refused, then Back")
    page = alex.page
    page.get_by_label("Record number").fill("prb-424242")
    page.get_by_role("button", name="Add link").click()
    expect(page.locator("#link-other-error")).to_contain_text("There is no record PRB-424242 that you may see.")
    expect(page.get_by_label("Record number")).to_have_value("PRB-424242")
    expect(page.locator("#comment-body-error")).to_have_count(0)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.wait_for_url(re.compile(r"/tasks$"))
    problem = go_back(page)
    assert problem is None, problem
    assert_a_real_page(page, number)
    assert page.url == f"{live.url}/tickets/{number}#link-form"
    assert len(sent) == 1, sent
    assert alex.errors == [], alex.console
