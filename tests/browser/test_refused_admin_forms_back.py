"""Back and Reload after a knowledge article, new user, account password or SLA policy form was
refused, in real Chromium: the refusal is answered with a redirect to the form's page
(Post/Redirect/Get, app/web/refused_forms.py), which shows the input (never a password) and the
problems once, so no history entry is a POST's answer. Before, those forms were answered in place
(422): Back to it showed Chromium's "Confirm Form Resubmission" page and Reload sent it again."""

from __future__ import annotations

import base64
import re
import zlib
from typing import Any

from tests.browser.conftest import require_browser
from tests.browser.test_refused_form_back import assert_a_real_page, go_back

require_browser()

from playwright.sync_api import expect  # noqa: E402


def readable(cookie: str) -> str:
    """What anyone holding the session cookie reads in it without the key: it is signed, not
    encrypted (itsdangerous: base64 of the JSON, zlib-compressed when that is shorter)."""
    compressed = cookie.startswith(".")
    payload = cookie.lstrip(".").split(".")[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(data) if compressed else data).decode()


def posts(page: Any) -> list[str]:
    """The POSTs the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    return sent


def to_tasks_and_back(page: Any) -> str | None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.wait_for_url(re.compile(r"/tasks$"))
    return go_back(page)


def test_a_refused_article_comes_back_with_its_text_and_back_and_reload_send_nothing(live, person):
    alex = person(1280)
    alex.sign_in("alex")
    alex.go("/knowledge/new")
    page = alex.page
    sent = posts(page)
    page.get_by_label("Symptoms").fill("Outlook asks for the password again every hour.")
    page.get_by_label("Workaround").fill("Sign out of Office and in again.")
    page.get_by_role("button", name="Save draft").click()  # no title
    expect(page.get_by_role("alert")).to_contain_text("Title: is required")
    expect(page.locator("#kb-f-title-error")).to_contain_text("is required")
    expect(page.get_by_label("Symptoms")).to_have_value("Outlook asks for the password again every hour.")
    expect(page.get_by_label("Workaround")).to_have_value("Sign out of Office and in again.")
    assert page.url == f"{live.url}/knowledge/new"

    page.reload(wait_until="load")
    assert_a_real_page(page, "New article")
    assert len(sent) == 1, sent  # the reload asked for the page, it did not post the form again
    expect(page.locator("#kb-f-title-error")).to_have_count(0)  # shown once

    problem = to_tasks_and_back(page)
    assert problem is None, problem
    assert_a_real_page(page, "New article")
    assert len(sent) == 1, sent
    assert alex.errors == [], alex.console


def test_a_refused_new_user_comes_back_without_the_passwords_and_back_sends_nothing(live, person):
    ada = person(1280)
    ada.sign_in("ada")
    ada.go("/admin/users/new")
    page = ada.page
    sent = posts(page)
    redirects: list[str] = []  # the session cookie each refusal's redirect set
    page.on("response", lambda r: redirects.append(r.all_headers().get("set-cookie", ""))
            if r.request.method == "POST" and r.status == 303 else None)
    page.get_by_role("textbox", name="Username (required)").fill("paula")
    page.get_by_label("Display name").fill("Paula Prg")
    page.locator("#field-password").fill("long-password-1")
    page.get_by_label("Password again").fill("long-password-2")
    page.get_by_role("group", name="Roles").get_by_label("Agent").check()
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#password_again-error")).to_contain_text("The two passwords differ.")
    assert page.url == f"{live.url}/admin/users/new"
    expect(page.get_by_role("textbox", name="Username (required)")).to_have_value("paula")
    expect(page.get_by_label("Display name")).to_have_value("Paula Prg")
    expect(page.get_by_role("group", name="Roles").get_by_label("Agent")).to_be_checked()
    expect(page.locator("#field-password")).to_have_value("")  # typed again: never kept
    expect(page.get_by_label("Password again")).to_have_value("")
    assert len(redirects) == 1 and redirects[0].startswith("session="), redirects
    held = readable(redirects[0].split(";")[0].removeprefix("session="))
    assert "Paula Prg" in held and "long-password" not in held

    problem = to_tasks_and_back(page)
    assert problem is None, problem
    assert_a_real_page(page, "New user")
    assert len(sent) == 1, sent
    page.reload(wait_until="load")
    assert len(sent) == 1, sent
    # and the form is still there to be sent, once, when it is right
    page.get_by_role("textbox", name="Username (required)").fill("paula")
    page.locator("#field-password").fill("long-password-1")
    page.get_by_label("Password again").fill("long-password-1")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator(".flash-success")).to_contain_text("User paula was created.")
    assert len(sent) == 2, sent
    assert ada.errors == [], ada.console


def test_a_refused_password_change_and_sla_policy_send_nothing_on_reload(live, person):
    rita = person(390)
    rita.sign_in("rita")
    rita.go("/account")
    page = rita.page
    sent = posts(page)
    page.locator("#field-current_password").fill("not-my-password")
    page.locator("#field-new_password").fill("a-brand-new-secret")
    page.locator("#field-new_password_again").fill("a-brand-new-secret")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_contain_text("This is not your current password.")
    assert page.url == f"{live.url}/account#password-form"
    expect(page.locator("#field-current_password")).to_have_value("")
    page.reload(wait_until="load")
    assert_a_real_page(page, "My account")
    assert len(sent) == 1, sent  # a reload does not count another wrong password
    assert rita.errors == [], rita.console

    olga = person(1280)
    olga.sign_in("olga")
    olga.go("/sla/policies")
    page = olga.page
    sent = posts(page)
    page.get_by_label("Response target (minutes)").fill("600")
    page.get_by_label("Resolution target (minutes)").fill("60")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#response_minutes-error")).to_contain_text("must not exceed the resolution target")
    expect(page.get_by_label("Response target (minutes)")).to_have_value("600")
    problem = to_tasks_and_back(page)
    assert problem is None, problem
    assert_a_real_page(page, "SLA")
    assert len(sent) == 1, sent
    assert olga.errors == [], olga.console
