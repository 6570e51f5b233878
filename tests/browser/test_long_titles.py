"""In real Chromium: a title of one unbroken 200-character word (a pasted URL, a log line) wraps
inside the record's heading and the record list instead of widening the page past the window
(QA: the record page grew to 7,155 px, the list to 4,112 px)."""

from __future__ import annotations

import re

from tests.browser.conftest import require_browser

require_browser()

LONG = "Export" + "x" * 194  # 200 characters without a space


def page_width(page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_a_long_unbroken_title_wraps_in_the_heading_and_the_list(live, person):
    number = live.start_incident(LONG)
    alex = person(1280)
    alex.sign_in("alex")
    alex.go(f"/tickets/{number}")
    heading = alex.page.locator("h1.ticket-title")
    assert LONG in heading.inner_text().replace("\n", "")
    assert page_width(alex.page) <= 1280
    assert heading.bounding_box()["height"] > 60  # it wraps onto several lines
    alex.go("/tickets")
    assert alex.page.locator("td.title", has_text=LONG[:40]).count() == 1
    assert page_width(alex.page) <= 1280


def test_a_long_unbroken_title_wraps_in_the_notifications(live, person):
    """The notification of a new task names the record's title in its subject: a long unbroken
    one wraps there too, on a phone and on a laptop."""
    number = live.start_incident(LONG)
    for width in (390, 1280):
        alex = person(width)
        alex.sign_in("alex")
        alex.go("/notifications")
        subject = alex.page.locator("h2.notice-subject", has_text=number)
        assert subject.count() == 1
        assert LONG in subject.inner_text().replace("\n", "")
        assert page_width(alex.page) <= width


def test_a_long_unbroken_title_wraps_in_flashes_links_and_the_knowledge_list(live, person):
    """Where else a typed title shows: the flash that says the record was created, another
    record's list of linked records, the knowledge base's list. None widens a phone's page."""
    alex = person(390)
    alex.sign_in("alex")
    page = alex.page
    alex.go("/start/incident_management")
    page.get_by_label("Title").fill(LONG)
    page.get_by_label("Description").fill("Cannot open it")
    for group in ("Impact", "Urgency"):
        page.get_by_role("group", name=re.compile(group)).get_by_label(re.compile("^Low")).check()
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/tickets/INC-\d+$"))
    number = page.url.rsplit("/", 1)[1]
    assert LONG in page.locator(".flash-success").inner_text().replace("\n", "")
    assert page_width(page) <= 390

    other = live.start_incident("Printer offline")
    alex.go(f"/tickets/{other}")
    page.locator("#link-other").fill(number)
    page.get_by_role("button", name="Add link").click()
    page.wait_for_url(re.compile(rf"/tickets/{other}#links$"))
    assert LONG in page.locator("#links").inner_text().replace("\n", "")
    assert page_width(page) <= 390

    alex.go("/knowledge/new")
    page.get_by_label("Title").fill(LONG)
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"/knowledge/KB-\d+$"))
    alex.go("/knowledge?status=draft")
    assert LONG in page.locator("#kb-articles").inner_text().replace("\n", "")
    assert page_width(page) <= 390
