"""User administration in real Chromium: an admin follows the Users link, creates a user with the
new-user form, and deactivates them on their page; the user can no longer sign in. A requester
sees no Users link and gets the 403 page."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


@pytest.mark.parametrize("width", [1280, 390])
def test_an_admin_creates_a_user_and_deactivates_them(person, width):
    name = f"leaver{width}"
    ada = person(width)
    ada.sign_in("ada")
    page = ada.page
    # the header's Admin menu (a disclosure: its links show once it is open)
    nav = page.get_by_role("navigation", name="Main")
    nav.locator("#admin-menu > summary").click()
    nav_link = nav.get_by_role("link", name="Users")
    expect(nav_link).to_have_count(1)
    nav_link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    page.get_by_role("link", name="New user").click()
    page.get_by_role("textbox", name="Username (required)").fill(name)
    page.get_by_label("Display name").fill("Lee Leaver")
    page.locator("#field-password").fill("long-password-1")
    page.get_by_label("Password again").fill("long-password-1")
    page.get_by_role("group", name="Roles").get_by_label("Agent").check()
    page.get_by_role("group", name="Groups").get_by_label("ServiceDesk").check()
    page.get_by_role("button", name="Create user").click()
    expect(page.locator(".flash-success")).to_contain_text(f"User {name} was created.")
    expect(page.get_by_label("Display name")).to_have_value("Lee Leaver")

    page.get_by_label("Active", exact=True).uncheck()
    page.get_by_role("button", name="Save").click()
    # unticking a box is easily done by mistake: the page asks to confirm, nothing saved yet
    expect(page.locator("#confirm_deactivate-error")).to_contain_text("tick the box to confirm")
    expect(page.get_by_label("Active", exact=True)).not_to_be_checked()
    page.get_by_label(re.compile(r"^Yes, deactivate ")).check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("is deactivated")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Deactivated")
    ada.screenshot(f"user-admin-deactivated-{width}")
    assert ada.errors == []

    leaver = person(width)
    leaver.go("/login")
    leaver.page.get_by_label("Username").fill(name.upper())
    leaver.page.get_by_label("Password").fill("long-password-1")
    leaver.page.get_by_role("button", name="Sign in").click()
    expect(leaver.page.get_by_text("Unknown user or wrong password.")).to_be_visible()


def test_a_requester_has_no_users_link_and_gets_403(person):
    rita = person(1280)
    rita.sign_in("rita")
    expect(rita.page.get_by_role("navigation", name="Main").get_by_role("link", name="Users")).to_have_count(0)
    response = rita.go("/admin/users")
    assert response is not None and response.status == 403
