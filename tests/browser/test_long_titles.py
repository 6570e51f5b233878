"""In real Chromium: a title of one unbroken 200-character word (a pasted URL, a log line) wraps
inside the record's heading and the record list instead of widening the page past the window
(QA: the record page grew to 7,155 px, the list to 4,112 px)."""

from __future__ import annotations

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
