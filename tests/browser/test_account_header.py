"""The name in the header leads to the user's own page (/account), and with that link the admin's
header (the most links) still fits one line at 1280 px, in English and in Chinese."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser

require_browser()

HEADER_PARTS = """bar => Array.from(bar.querySelectorAll('.brand, .main-nav > ul > li, .tools form, .tools a.who'))
    .map(e => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2))"""


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_the_admins_header_with_the_account_link_fits_one_line(live, person, language):
    ada = person(1280)
    ada.sign_in("ada")
    if language == "zh_CN":
        ada.page.get_by_role("button", name="简体中文").click()
        ada.page.wait_for_load_state()
    try:
        check_header_and_account_link(live, ada, language)
    finally:  # the choice is ada's own (it follows her sign-ins): the other journeys read English
        if language == "zh_CN":
            ada.page.get_by_role("button", name="English").click()
            ada.page.wait_for_load_state()


def check_header_and_account_link(live, ada, language):
    for path in ("/", "/tasks", "/account"):
        ada.go(path)
        bar = ada.page.locator(".site-header .bar")
        tops = ada.page.evaluate(HEADER_PARTS, bar.element_handle())
        assert max(tops) - min(tops) <= 4, (language, path, tops)
        assert bar.bounding_box()["height"] < 64
        assert ada.page.evaluate("document.documentElement.scrollWidth") <= 1280
    ada.go("/")
    ada.page.locator(".site-header a.who").click()
    ada.page.wait_for_url(live.url + "/account")
    heading = "我的账户" if language == "zh_CN" else "My account"
    assert ada.page.get_by_role("heading", level=1).inner_text() == heading
    ada.screenshot(f"account-header-1280-{language}")
    assert ada.errors == [], ada.console


def test_an_admin_with_a_longer_name_still_has_one_line_with_a_scroll_bar(live, person):
    """QA: the demo admin ("Ada Admin") got a two-line header at 1280 px in English once Reports
    and the bell joined it; the staff's start links now use shorter words ("New change")."""
    made = live.desk.client.post("/api/v1/users", headers=live.desk.auth("ada"), json={
        "username": "adelheid", "password": "password-1234", "display_name": "Adelheid Admin",
        "roles": ["admin", "agent", "process_owner"]})
    assert made.status_code == 201, made.get_json()
    someone = person(1280)
    someone.page.set_viewport_size({"width": 1265, "height": 900})  # a browser's scroll bar takes 15 px
    someone.go("/login")
    someone.page.get_by_label("Username").fill("adelheid")
    someone.page.get_by_label("Password").fill("password-1234")
    someone.page.get_by_role("button", name="Sign in").click()
    someone.page.wait_for_url(live.url + "/")
    for path in ("/", "/tasks", "/reports"):
        someone.go(path)
        bar = someone.page.locator(".site-header .bar")
        tops = someone.page.evaluate(HEADER_PARTS, bar.element_handle())
        assert max(tops) - min(tops) <= 4, (path, tops)
        assert someone.page.get_by_role("link", name="New change").count() == 1
