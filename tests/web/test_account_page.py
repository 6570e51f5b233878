"""The user's own page, /account: their profile, linked from the name in the header, and a form
to change their own password. The browser that changes it stays signed in; the user's other
browsers and API tokens are signed out; problems come back beside their fields."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.models import AuditEvent, LoginFailure, WebSession
from tests.conftest import TEST_PASSWORD
from tests.web.conftest import text_of

NEW_PASSWORD = "a-brand-new-secret"


def change(web, current=TEST_PASSWORD, new=NEW_PASSWORD, again=None, **kwargs):
    return web.post("/account/password", {"current_password": current, "new_password": new,
                                          "new_password_again": new if again is None else again}, **kwargs)


def signs_in(web_factory, password, username="rita"):
    response = web_factory().post("/login", {"username": username, "password": password})
    return response.status_code == 302


def refused(web, answer, **kwargs):
    """A refused form: answered with a redirect to the page (Post/Redirect/Get), whose next
    rendering says why (returned), once."""
    assert answer.status_code == 303, answer.status_code
    assert answer.headers["Location"] in ("/account#password-form", "/account#language-form")  # at the form
    page = text_of(web.get("/account", **kwargs))
    assert 'class="field-error"' not in text_of(web.get("/account", **kwargs))
    return page


def field_error(page, name):
    match = re.search(rf'<p class="field-error" id="{name}-error">(.*?)</p>', page, flags=re.S)
    return match.group(1) if match else None


def test_the_header_name_links_to_the_profile(web, services, users):
    services.users.set_manager("rick", "amy")
    services.session.commit()
    web.login("rick", TEST_PASSWORD)
    home = text_of(web.get("/"))
    # the whole name in the link's title: the header may cut a long one short
    whole = users["rick"].display_name or "rick"
    assert f'<a class="who" href="/account" title="{whole}">' in home
    page = web.get("/account")
    assert page.status_code == 200
    body = text_of(page)
    assert "My account" in body and 'aria-current="page"' in body
    for shown in ("rick", "Requester", "Other", "amy"):
        assert f"<dd>{shown}" in body or f">{shown}<" in body, shown
    assert 'name="current_password"' in body and 'autocomplete="current-password"' in body
    assert 'name="new_password_again"' in body and 'name="csrf_token"' in body


def test_changing_the_password_keeps_this_browser_and_ends_the_others(web, web_factory, auth, client, services, users):
    web.login("rita", TEST_PASSWORD)
    other = web_factory()
    other.login("rita", TEST_PASSWORD)
    headers = auth("rita")
    # someone who copied this browser's cookie before the change
    copied = web_factory()
    copied.client.set_cookie("session", web.client.get_cookie("session").value)
    assert copied.get("/account").status_code == 200

    done = change(web)
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    page = web.get("/account")
    assert page.status_code == 200  # still signed in here
    assert "Your password was changed." in text_of(page)
    assert other.get("/account").status_code == 302  # the other browser is signed out
    assert copied.get("/account").status_code == 302  # and the copied cookie is worth nothing now
    assert client.get("/api/v1/users/me", headers=headers).status_code == 401  # so are the API tokens
    assert not signs_in(web_factory, TEST_PASSWORD) and signs_in(web_factory, NEW_PASSWORD)

    rows = services.session.scalars(select(WebSession).where(WebSession.user_id == users["rita"].id)
                                    .order_by(WebSession.id)).all()
    # both earlier sessions ended (this browser's old cookie too: it was rotated), a new one is live
    assert [r.end_reason for r in rows[:3]] == ["password_changed", "password_changed", None]
    changed = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "user_password_changed")).all()
    assert [e.actor for e in changed] == ["rita"]
    # this browser keeps working after the change, the next form too
    assert change(web, current=NEW_PASSWORD, new="yet-another-secret").status_code == 302


def test_a_wrong_current_password_is_named_and_counts_against_the_sign_in_limit(web, web_factory, services, users):
    web.login("rita", TEST_PASSWORD)
    wrong = refused(web, change(web, current="not-my-password"))
    assert field_error(wrong, "current_password").endswith("This is not your current password.")
    assert signs_in(web_factory, TEST_PASSWORD) and not signs_in(web_factory, NEW_PASSWORD)
    assert services.session.scalars(select(LoginFailure).where(LoginFailure.kind == "name")).all()

    for _ in range(4):  # with the failed sign-in above: the limit of five is passed
        assert change(web, current="not-my-password").status_code == 303
    locked = change(web)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in field_error(text_of(locked), "current_password")
    assert web.get("/account").status_code == 200  # the session itself goes on


def test_the_new_password_follows_the_rules(web, web_factory, users):
    web.login("rita", TEST_PASSWORD)
    short = refused(web, change(web, new="short"))
    assert "Use at least 8 characters." in field_error(short, "new_password")
    same = refused(web, change(web, new=TEST_PASSWORD))
    assert "different from the current one" in field_error(same, "new_password")
    differ = refused(web, change(web, again="something-else-1"))
    assert "The two passwords differ." in field_error(differ, "new_password_again")
    assert signs_in(web_factory, TEST_PASSWORD)


def test_without_the_csrf_token_or_signed_out_nothing_changes(web, web_factory, services, users):
    assert change(web).status_code == 302  # not signed in: to the sign-in page
    assert web.get("/account").headers["Location"].startswith("/login")
    web.login("rita", TEST_PASSWORD)
    forged = change(web, csrf=False)
    assert forged.status_code == 403
    services.users.deactivate_user(None, "rita")
    services.session.commit()
    assert change(web).headers["Location"].startswith("/login")
    services.users.reactivate_user(None, "rita")
    services.session.commit()
    assert signs_in(web_factory, TEST_PASSWORD)
    assert not services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "user_password_changed")).all()


def test_the_page_in_chinese(web, services, users):
    web.post("/language", {"lang": "zh_CN"})
    web.login("rita", TEST_PASSWORD)
    page = text_of(web.get("/account"))
    assert '<html lang="zh-CN">' in page
    for words in ("我的账户", "个人资料", "修改密码", "当前密码", "再次输入新密码", "显示名称"):
        assert words in page, words
    body = refused(web, change(web, current="not-my-password", new="short"))
    assert "这不是您当前的密码。" in field_error(body, "current_password")
    assert "8" in field_error(body, "new_password") and "characters" not in field_error(body, "new_password")
    assert change(web).status_code == 302
    assert "您的密码已修改。" in text_of(web.get("/account"))


def test_a_too_long_password_is_said_in_the_pages_language_on_both_pages(web, web_factory, users):
    """The account page and an admin's reset share one table of the service's password problems."""
    long = "x" * 1025
    chinese = {"Accept-Language": "zh-CN"}
    admin = web_factory()
    admin.login("ada", TEST_PASSWORD)
    assert admin.post("/admin/users/rita/password", {"password": long, "password_again": long},
                      headers=chinese).status_code == 303
    reset = text_of(admin.get("/admin/users/rita", headers=chinese))
    web.login("rita", TEST_PASSWORD)
    own = refused(web, change(web, new=long, headers=chinese), headers=chinese)
    for page, field in ((reset, "password"), (own, "new_password")):
        assert field_error(page, field).endswith("最多使用 1024 个字符。")
