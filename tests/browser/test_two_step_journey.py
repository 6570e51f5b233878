"""Two-step sign-in in Chromium, at laptop and phone widths: a user opens "Set up two-step sign-in"
from the account page, sees the QR code (drawn, within the screen) and the key as text, types a
wrong code (refused beside the field) and then the app's code with the password, reads the ten recovery codes, signs
out, signs in with the password, is asked for the code and lands where the sign-in was going;
a second sign-in with a recovery code says how many are left."""

from __future__ import annotations

import base64

import pytest

from app.services.two_step import step_at, totp
from tests.browser.conftest import PASSWORD, require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def code_for(key: str, live, steps: int = 0) -> str:
    secret = key.replace(" ", "")
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return totp(raw, step_at(live.desk.services.runtime.clock.now()) + steps)


@pytest.mark.parametrize("width", [1280, 390])
def test_a_user_sets_up_two_step_sign_in_and_signs_in_with_a_code(live, person, width):
    desk = live.desk
    name = f"tess{width}"
    made = desk.client.post("/api/v1/users", headers=desk.auth("ada"), json={
        "username": name, "password": PASSWORD, "roles": ["agent"], "groups": ["ServiceDesk"]})
    assert made.status_code == 201, made.get_json()

    tess = person(width)
    tess.sign_in(name)
    page = tess.page
    tess.go("/account")
    expect(page.locator("#two-step-state")).to_have_text("Off: signing in asks for your password only.")
    page.get_by_role("link", name="Set up two-step sign-in").click()
    page.get_by_role("button", name="Set up two-step sign-in").click()
    qr = page.locator(".qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 120 and box["x"] + box["width"] <= width  # scannable, on screen
    key = page.locator("#setup-key").inner_text()
    tess.screenshot(f"two-step-setup-{width}")

    wrong = "000000" if code_for(key, live) != "000000" else "111111"
    page.locator("#field-code").fill(wrong)
    page.locator("#field-current_password").fill(PASSWORD)
    page.get_by_role("button", name="Turn two-step sign-in on").click()
    expect(page.locator("#code-error")).to_contain_text("This is not the current code of the app you set up")
    page.locator("#field-code").fill(code_for(key, live))
    page.locator("#field-current_password").fill(PASSWORD)  # a password is never put back
    page.get_by_role("button", name="Turn two-step sign-in on").click()
    expect(page.locator(".flash-success")).to_contain_text("Two-step sign-in is on")
    codes = page.locator("#recovery-codes code")
    expect(codes).to_have_count(10)
    recovery = codes.nth(0).inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits a phone
    tess.screenshot(f"two-step-codes-{width}")

    page.get_by_role("button", name="Sign out").click()
    tess.go("/tickets")  # where the sign-in is going
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#code-title")).to_have_text("Two-step sign-in")
    # the code of the next half minute: the one that turned it on is used up (a phone a little ahead)
    page.get_by_label("Code").fill(code_for(key, live, steps=1))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live.url + "/tickets")

    page.get_by_role("button", name="Sign out").click()
    tess.go("/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(recovery)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".flash-info")).to_contain_text("You signed in with a recovery code; 9 remain.")
    assert not tess.errors, tess.errors
