"""A refused form with passwords is sent back to its page (Post/Redirect/Get,
app/web/refused_forms.py) without them: the session cookie that carries the refusal is signed,
not encrypted, so whoever holds the cookie could read what it keeps. The other fields (a new
user's name, roles) and the problems are kept."""

from __future__ import annotations

from typing import Any

from app.web.refused_forms import KEY
from tests.web.conftest import text_of

SECRETS = ("Current-Secret-1", "New-Secret-22", "Other-Secret-333")


def cookie_session(app: Any, web: Any) -> dict[str, Any]:
    """The session as the browser holds it: the cookie's value, read with the app's serializer."""
    cookie = web.client.get_cookie("session")
    assert cookie is not None
    return dict(app.session_interface.get_signing_serializer(app).loads(cookie.value))


def assert_kept_without_secrets(app: Any, web: Any, page: str) -> dict[str, Any]:
    session = cookie_session(app, web)
    kept = session.get(KEY)
    assert isinstance(kept, dict) and kept["page"] == page, session  # the refusal is there
    held = repr(session)
    for secret in SECRETS:
        assert secret not in held
    assert not [name for name, _value in kept["values"] if "password" in name]
    return kept


def test_a_refused_new_user_keeps_the_name_and_roles_but_no_password(app, web, desk):
    web.login("ada")
    answer = web.post("/admin/users/new", {"username": "nora", "display_name": "Nora", "roles": ["agent"],
                                           "password": SECRETS[1], "password_again": SECRETS[2]})
    assert answer.status_code == 303
    kept = assert_kept_without_secrets(app, web, "users:new")
    assert ["username", "nora"] in kept["values"] and ["roles", "agent"] in kept["values"]
    page = text_of(web.get("/admin/users/new"))
    assert 'value="nora"' in page and "The two passwords differ." in page
    for secret in SECRETS:
        assert secret not in page


def test_a_refused_password_reset_keeps_no_password(app, web, desk):
    web.login("ada")
    answer = web.post("/admin/users/rita/password", {"password": SECRETS[1], "password_again": SECRETS[2]})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/users/rita#password-form"
    assert assert_kept_without_secrets(app, web, "users:password:rita")["values"] == []
    assert "The two passwords differ." in text_of(web.get("/admin/users/rita"))


def test_a_refused_own_password_change_keeps_no_password(app, web, desk):
    web.login("rita")
    answer = web.post("/account/password", {"current_password": SECRETS[0], "new_password": SECRETS[1],
                                            "new_password_again": SECRETS[1]})
    assert answer.status_code == 303 and answer.headers["Location"] == "/account#password-form"
    assert assert_kept_without_secrets(app, web, "account:password")["values"] == []
    page = text_of(web.get("/account"))
    assert "This is not your current password." in page
    for secret in SECRETS:
        assert secret not in page
