"""In real Chromium: the header's Admin menu (app/web/nav.py, a <details> in templates/base.html)
opens from the keyboard, closes on Escape and on a click outside, its links lead to their pages
(which it marks), it works without JavaScript, and with it the admin's header has room left at
1280 px (in English and Chinese); open, it stays inside the window at 375 px and right to left."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PASSWORD, VIEWPORTS, require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

#: Room (px) for two more header links ("Knowledge" with its padding is about 70 px); before the menu
#: an admin had about 30 px left in English.
ROOM_FOR_A_LINK = 150

#: Free space in the bar: between the last part of the nav and the tools (the tools are pushed to the
#: line's end), on the side the page is written towards.
FREE_SPACE = """bar => {
    const items = Array.from(bar.querySelectorAll('.main-nav > ul > li')).map(e => e.getBoundingClientRect());
    const tools = bar.querySelector('.tools').getBoundingClientRect();
    const rtl = getComputedStyle(bar).direction === 'rtl';
    return rtl ? Math.min(...items.map(r => r.left)) - tools.right
               : tools.left - Math.max(...items.map(r => r.right));
}"""
HEADER_PARTS = """bar => Array.from(bar.querySelectorAll('.brand, .main-nav > ul > li, .tools form, .tools a'))
    .map(e => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2))"""


def use_language(someone, language: str) -> None:
    wanted = "zh-CN" if language == "zh_CN" else "en"
    if someone.page.locator("html").get_attribute("lang") != wanted:
        someone.page.get_by_role("button", name="简体中文" if language == "zh_CN" else "English").click()
        someone.page.wait_for_load_state()
    expect(someone.page.locator("html")).to_have_attribute("lang", wanted)


def focused(page) -> str:
    return str(page.evaluate("""() => {
        const e = document.activeElement;
        return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ':' + e.textContent.trim();
    }"""))


def test_the_menu_opens_from_the_keyboard_and_closes_on_escape_and_outside(live, person):
    ada = person(1280)
    ada.sign_in("ada")
    use_language(ada, "en")
    ada.go("/tasks")
    page = ada.page
    menu = page.locator("#admin-menu")
    summary = menu.locator("summary")
    users = page.get_by_role("navigation", name="Main").get_by_role("link", name="Users")
    expect(users).to_be_hidden()

    # reached with Tab from the link before it, opened with Enter
    page.get_by_role("link", name="Knowledge").focus()
    page.keyboard.press("Tab")
    assert focused(page).startswith("summary:Admin"), focused(page)
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    expect(users).to_be_visible()
    page.keyboard.press("Tab")
    assert focused(page) == "a#nav-cmdb:CMDB", focused(page)

    # Escape closes it and gives the focus back to its summary
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(users).to_be_hidden()
    assert focused(page).startswith("summary:Admin"), focused(page)

    # Space opens it too; a click outside closes it
    page.keyboard.press("Space")
    expect(users).to_be_visible()
    page.locator("main h1").click()
    expect(menu).not_to_have_attribute("open", "")

    # Tab past its last link closes it
    summary.click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Groups").focus()
    page.keyboard.press("Tab")
    expect(menu).not_to_have_attribute("open", "")

    # its links lead to their pages, which it marks (the link, and the summary for the eye)
    summary.focus()
    page.keyboard.press("Enter")
    users.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(live.url + "/admin/users")
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    expect(menu).not_to_have_attribute("open", "")
    expect(menu.locator("a[aria-current=page]")).to_have_attribute("href", "/admin/users")
    expect(summary).to_have_class("has-current")
    for name, path in (("Audit", "/audit"), ("SLA policies", "/sla/policies"), ("Processes", "/processes")):
        summary.click()
        page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
        page.wait_for_url(live.url + path)
        expect(menu.locator("a[aria-current=page]")).to_have_attribute("href", path)
    ada.screenshot("admin-menu-1280")
    assert ada.errors == [], ada.console


def test_the_menu_works_without_javascript(browser, live):
    context = browser.new_context(viewport=VIEWPORTS[1280], locale="en-US", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(live.url + "/login")
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(live.url + "/")
        if page.locator("html").get_attribute("lang") != "en":
            page.get_by_role("button", name="English").click()
        page.locator("#admin-menu > summary").click()
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Groups").click()
        page.wait_for_url(live.url + "/admin/groups")
        expect(page.locator("#admin-menu a[aria-current=page]")).to_have_text("Groups")
    finally:
        context.close()


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_the_admins_header_has_room_left_at_1280_px(live, person, language):
    ada = person(1280)
    ada.sign_in("ada")
    use_language(ada, language)
    try:
        for width in (1280, 1265):  # 1265: a browser whose scroll bar takes 15 px
            ada.page.set_viewport_size({"width": width, "height": 900})
            for path in ("/", "/tasks", "/admin/users"):
                ada.go(path)
                bar = ada.page.locator(".site-header .bar")
                tops = ada.page.evaluate(HEADER_PARTS, bar.element_handle())
                assert max(tops) - min(tops) <= 4, (language, width, path, tops)
                free = ada.page.evaluate(FREE_SPACE, bar.element_handle())
                assert free >= ROOM_FOR_A_LINK, (language, width, path, free)
                assert ada.page.evaluate("document.documentElement.scrollWidth") <= width
        ada.screenshot(f"admin-menu-room-1280-{language}")
    finally:
        use_language(ada, "en")
    assert ada.errors == [], ada.console


@pytest.mark.parametrize(("width", "language", "direction"), [
    (375, "en", "ltr"), (375, "zh_CN", "ltr"), (375, "en", "rtl"), (1280, "en", "rtl"), (1280, "zh_CN", "ltr")])
def test_the_open_menu_stays_inside_the_window(live, person, width, language, direction):
    ada = person(width)
    ada.sign_in("ada")
    use_language(ada, language)
    try:
        ada.go("/tasks")
        page = ada.page
        if direction == "rtl":  # no shipped language is written right to left: the page is turned
            page.evaluate("document.documentElement.dir = 'rtl'")
        page.locator("#admin-menu > summary").click()
        panel = page.locator("#admin-menu ul")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
        for link in page.locator("#admin-menu ul a").all():
            link_box = link.bounding_box()
            assert link_box["x"] >= 0 and link_box["x"] + link_box["width"] <= width, link_box
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # what it covers stays below the header: the summary is not hidden by its own list
        summary = page.locator("#admin-menu > summary").bounding_box()
        assert box["y"] >= summary["y"] + summary["height"] - 1
        ada.screenshot(f"admin-menu-open-{width}-{language}-{direction}")
    finally:
        use_language(ada, "en")
    assert ada.errors == [], ada.console
