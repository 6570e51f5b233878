"""A comment typed while the session ended, in real Chromium: Send leads to the sign-in page, and
after signing in again the record page has the text back in its comment box, said above it, and
nothing was sent by itself (app/web/unsent_forms.py, static/js/unsent-form.js)."""

from __future__ import annotations

import re

from tests.browser.conftest import PASSWORD, require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

TEXT = "Swapped the toner; the printer still jams on the duplex unit.\nSecond line of the note."


def test_a_comment_sent_after_the_session_ended_is_back_after_signing_in(live, person):
    number = live.start_incident("Unsent comment after the session ended")
    alex = person(1280)
    alex.sign_in("alex")
    alex.go(f"/tickets/{number}")
    page = alex.page
    page.get_by_label("Add a comment").fill(TEXT)
    # meanwhile the session ends (as an idle timeout or an admin ending it would)
    services = live.desk.services
    services.session.rollback()  # a fresh transaction: SQLite refuses a write on an old snapshot
    services.users.end_web_sessions(services.users.get_by_username("alex"), "expired")
    services.session.commit()
    page.get_by_role("button", name="Add comment").click()
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill("alex")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live.url}/tickets/{number}")
    expect(page.get_by_label("Add a comment")).to_have_value(TEXT)
    expect(page.locator("#unsent-note")).to_be_visible()
    expect(page.locator("#unsent-note")).to_contain_text("What you typed is back in the form")
    expect(page.locator("#comments")).not_to_contain_text("Swapped the toner")  # not sent by itself
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator("#comments")).to_contain_text("Swapped the toner")
    page.reload()
    expect(page.locator("#unsent-note")).to_have_count(0)


def test_boxes_come_back_as_they_were_sent(live, person):
    """QA: a role unticked before the session ended came back ticked (an unticked box sends
    nothing): sent again, the admin's removal was undone."""
    services = live.desk.services
    services.session.rollback()
    services.users.create_user("ulla", "password-1234", roles=["requester"])
    services.session.commit()
    ada = person(1280)
    ada.sign_in("ada")
    ada.go("/admin/users/ulla")
    page = ada.page
    roles = page.get_by_role("group", name="Roles")
    roles.get_by_label("Requester", exact=True).uncheck()
    roles.get_by_label("Agent", exact=True).check()
    services.session.rollback()
    services.users.end_web_sessions(services.users.get_by_username("ada"), "expired")
    services.session.commit()
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live.url}/admin/users/ulla")
    expect(page.locator("#unsent-note")).to_be_visible()
    expect(roles.get_by_label("Agent", exact=True)).to_be_checked()
    expect(roles.get_by_label("Requester", exact=True)).not_to_be_checked()
