"""The header's Notifications link counts the user's unread notifications (a badge, with words for
screen readers) and leads to /notifications, where marking them read empties the badge; with the
link, the admin's header (the most links) still fits one line at 1280 px, in English and Chinese."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

HEADER_PARTS = """bar => Array.from(bar.querySelectorAll('.brand, .main-nav > ul > li, .tools form, .tools a'))
    .map(e => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2))"""


def notify(live, username: str, count: int) -> None:
    services = live.desk.services
    user = services.users.get_by_username(username)
    for n in range(count):
        services.notifications.notify([user], "process.notify", f"Browser note {n}", f"Line one\nLine {n}")
    services.session.commit()


def unread_of(live, username: str) -> int:
    _rows, _total, unread = live.desk.services.notifications.list_for(
        live.desk.services.users.get_by_username(username), True, 1, 1)
    live.desk.services.session.rollback()
    return int(unread)


def use_language(someone, language: str) -> None:
    """Switch the pages to ``language`` unless they are in it: the choice is kept for the user, so
    the page may already be in it from an earlier test (which is why the tests below end in English)."""
    wanted = "zh-CN" if language == "zh_CN" else "en"
    if someone.page.locator("html").get_attribute("lang") != wanted:
        someone.page.get_by_role("button", name="简体中文" if language == "zh_CN" else "English").click()
        someone.page.wait_for_load_state()
    expect(someone.page.locator("html")).to_have_attribute("lang", wanted)


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_the_admins_header_with_the_notifications_badge_fits_one_line(live, person, language):
    if unread_of(live, "ada") < 3:
        notify(live, "ada", 3 - unread_of(live, "ada"))
    ada = person(1280)
    ada.sign_in("ada")
    use_language(ada, language)
    link = ada.page.locator(".site-header a.notes-link")
    expected = "通知，3 条未读" if language == "zh_CN" else "Notifications, 3 unread"
    expect(link).to_have_accessible_name(expected)
    expect(link.locator(".notes-count")).to_have_text("3")
    # 1280 px, and 1265 px: a browser whose scroll bar takes 15 px of the 1280 (headless Chromium's does not)
    for width in (1280, 1265):
        ada.page.set_viewport_size({"width": width, "height": 900})
        for path in ("/", "/tasks", "/account", "/notifications"):
            ada.go(path)
            bar = ada.page.locator(".site-header .bar")
            tops = ada.page.evaluate(HEADER_PARTS, bar.element_handle())
            assert max(tops) - min(tops) <= 4, (language, width, path, tops)
            assert bar.bounding_box()["height"] < 64, (language, width, path)
            assert ada.page.evaluate("document.documentElement.scrollWidth") <= width
    expect(link.locator(".notes-count")).to_have_text("3")
    ada.screenshot(f"notifications-header-1280-{language}")
    use_language(ada, "en")
    assert ada.errors == [], ada.console


def test_reading_them_empties_the_badge(live, person):
    notify(live, "rita", 2)
    rita = person(1280)
    rita.sign_in("rita")
    use_language(rita, "en")
    unread = unread_of(live, "rita")
    link = rita.page.locator(".site-header a.notes-link")
    expect(link.locator(".notes-count")).to_have_text(str(unread))
    link.click()
    rita.page.wait_for_url(live.url + "/notifications")
    first = rita.page.locator("li.notice-unread").first
    expect(first.locator(".notice-body")).to_contain_text("Line one")
    first.get_by_role("button", name="Mark as read").click()
    rita.page.wait_for_url(live.url + "/notifications")
    expect(link.locator(".notes-count")).to_have_text(str(unread - 1))
    rita.page.get_by_role("button", name="Mark all as read").click()
    expect(rita.page.locator(".flash-success")).to_contain_text("All your notifications are marked as read.")
    expect(link.locator(".notes-count")).to_have_count(0)
    expect(link).to_have_accessible_name("Notifications")
    expect(link).to_be_visible()
    expect(rita.page.locator("li.notice-unread")).to_have_count(0)
    rita.screenshot("notifications-page-1280")
    assert rita.errors == [], rita.console
