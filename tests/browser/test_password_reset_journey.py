"""A user who forgot their password gets back in alone: "Forgot your password?" on the sign-in
page, the mail read from a real SMTP server, the link opened, a new password set, and signing in
with it."""

from __future__ import annotations

import email
import email.policy
import re

from tests.browser.conftest import PASSWORD, require_browser
from tests.services.test_notifications import smtp as smtp  # the fixture: a real SMTP server on 127.0.0.1

require_browser()

NEW = "fresh-password-2468"


def test_forgot_mail_link_new_password_sign_in(live, person, smtp):
    port, inbox = smtp
    made = live.desk.client.post("/api/v1/users", headers=live.desk.auth("ada"), json={
        "username": "fiona", "password": PASSWORD, "display_name": "Fiona Forgetful", "email": "fiona@example.test",
        "roles": ["requester"]})
    assert made.status_code == 201, made.get_json()
    config = live.desk.services.runtime.config
    before = {key: config[key] for key in ("SMTP_HOST", "SMTP_PORT", "PUBLIC_URL")}
    config.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "PUBLIC_URL": live.url})
    try:
        journey(live, person, inbox)
    finally:  # the live desk is shared by every journey
        config.update(before)


def journey(live, person, inbox):
    fiona = person(390)
    fiona.go("/login")
    fiona.page.get_by_role("link", name="Forgot your password?").click()
    fiona.page.wait_for_url(live.url + "/login/forgot")
    fiona.page.get_by_label("Username or e-mail address").fill("fiona@example.test")
    fiona.page.get_by_role("button", name="Send the link").click()
    fiona.page.wait_for_url(live.url + "/login/forgot?sent=1")
    assert "If an account matches, we sent a link" in fiona.page.locator("#forgot-sent").inner_text()

    # the shared live desk may hold other journeys' mails too: fiona's is the one sent to her
    assert live.desk.services.notifications.sweep("browser-test").sent >= 1
    live.desk.services.session.rollback()  # nothing left open on the shared session
    [envelope] = [m for m in inbox.messages if m.rcpt_tos == ["fiona@example.test"]]
    body = email.message_from_bytes(envelope.content, policy=email.policy.default).get_body(
        preferencelist=("plain",)).get_content()
    link = re.search(re.escape(live.url) + r"/login/reset/[A-Za-z0-9_-]+", body)
    assert link, body

    fiona.page.goto(link.group(0))
    fiona.page.locator("#field-new_password").fill(NEW)
    fiona.page.locator("#field-new_password_again").fill(NEW)
    fiona.page.get_by_role("button", name="Set the new password").click()
    fiona.page.wait_for_url(live.url + "/login")
    assert "Your password was changed; sign in with the new one." in fiona.page.locator(".flashes").inner_text()

    fiona.page.get_by_label("Username").fill("fiona")
    fiona.page.get_by_label("Password").fill(NEW)
    fiona.page.get_by_role("button", name="Sign in").click()
    fiona.page.wait_for_url(live.url + "/")
    fiona.screenshot("password-reset-signed-in-390")

    fiona.page.goto(link.group(0))  # the link worked once
    assert "This link no longer works" in fiona.page.content()
    assert fiona.errors == [], fiona.console
