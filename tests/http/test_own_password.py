"""Everyone reads their own profile (GET /api/v1/users/me) and changes their own password
(POST /api/v1/users/me/password), proving it with the current one: the old password and every
old token stop working, the answer carries a fresh token, wrong current passwords count against
the sign-in limit, and "me" in the address is always the caller."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.errors import ValidationFailed
from app.models import AuditEvent, WebSession
from tests.conftest import TEST_PASSWORD
from tests.http.helpers import assert_error

NEW_PASSWORD = "a-brand-new-secret"


def sign_in(client, username, password):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def change(client, headers, current=TEST_PASSWORD, new=NEW_PASSWORD):
    return client.post("/api/v1/users/me/password", headers=headers,
                       json={"current_password": current, "new_password": new})


def events(services, kind):
    return [e for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == kind).order_by(AuditEvent.seq))]


def test_anyone_reads_their_own_profile(client, auth, services, users):
    services.users.set_manager("rick", "amy")
    services.session.commit()
    me = client.get("/api/v1/users/me", headers=auth("rick"))
    assert me.status_code == 200, me.get_json()
    body = me.get_json()
    assert body["username"] == "rick" and body["roles"] == ["requester"] and body["groups"] == ["Other"]
    assert body["manager"] == "amy" and body["display_name"] == "rick" and "locale" in body
    assert not {"password", "password_hash"} & set(body)
    assert_error(client.get("/api/v1/users/rick", headers=auth("rick")), 403)  # the directory stays closed
    assert_error(client.get("/api/v1/users/me"), 401)


def test_a_user_changes_their_own_password(client, auth, services, users):
    old_headers = auth("rita")
    other_token = sign_in(client, "rita", TEST_PASSWORD).get_json()["token"]
    services.users.start_web_session(users["rita"], forget_after_seconds=3600)
    services.session.commit()

    changed = change(client, old_headers)
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert body["token_type"] == "Bearer" and body["user"]["username"] == "rita"
    assert "password" not in str(body)

    # the old password no longer signs in, the new one does
    assert_error(sign_in(client, "rita", TEST_PASSWORD), 401)
    assert sign_in(client, "rita", NEW_PASSWORD).status_code == 200
    # every token from before ends, the one that made the change included; the fresh one works
    assert_error(client.get("/api/v1/users/me", headers=old_headers), 401)
    assert_error(client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {other_token}"}), 401)
    fresh = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert fresh.status_code == 200 and fresh.get_json()["username"] == "rita"
    # the web sessions end too
    rows = services.session.scalars(select(WebSession).where(WebSession.user_id == users["rita"].id)).all()
    assert rows and all(r.end_reason == "password_changed" for r in rows)

    audited = events(services, "user_password_changed")
    assert [e.actor for e in audited] == ["rita"] and audited[0].payload["username"] == "rita"
    assert TEST_PASSWORD not in str(audited[0].payload) and NEW_PASSWORD not in str(audited[0].payload)


def test_a_wrong_current_password_changes_nothing_and_counts_against_the_sign_in_limit(client, auth, services, users):
    headers = auth("rita")
    wrong = assert_error(change(client, headers, current="not-my-password"), 422)
    assert set(wrong["details"]["fields"]) == {"current_password"}
    assert sign_in(client, "rita", TEST_PASSWORD).status_code == 200  # nothing changed
    assert_error(sign_in(client, "rita", NEW_PASSWORD), 401)
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200  # the token still works
    assert not events(services, "user_password_changed")
    refused = [e.payload for e in events(services, "access_denied")]
    assert {"action": "change_own_password", "reason": "wrong current password"} in refused

    for _ in range(4):  # five wrong in all: the sign-in limit (WEB_LOGIN_MAX_FAILURES) is reached
        assert_error(change(client, headers, current="not-my-password"), 422)
    locked = assert_error(change(client, headers), 429, "too_many_requests")
    assert locked["details"]["retry_after"] > 0
    assert_error(sign_in(client, "rita", TEST_PASSWORD), 429)  # one limit for both
    assert_error(sign_in(client, "rita", NEW_PASSWORD), 429)


def test_the_new_password_follows_the_rules(client, auth, services, users):
    headers = auth("rita")
    short = assert_error(change(client, headers, new="short"), 422)
    assert set(short["details"]["fields"]) == {"new_password"}
    assert "at least 8" in str(short["details"]["fields"]["new_password"])
    same = assert_error(change(client, headers, new=TEST_PASSWORD), 422)
    assert set(same["details"]["fields"]) == {"new_password"}
    both = assert_error(change(client, headers, current="not-my-password", new="short"), 422)
    assert set(both["details"]["fields"]) == {"current_password", "new_password"}
    missing = assert_error(client.post("/api/v1/users/me/password", headers=headers, json={"new_password": "x" * 9}),
                           422)
    assert "current_password" in missing["details"]["fields"]
    assert sign_in(client, "rita", TEST_PASSWORD).status_code == 200
    assert not events(services, "user_password_changed")


def test_no_token_or_a_deactivated_user_changes_nothing(client, auth, services, users):
    assert_error(change(client, {}), 401)
    headers = auth("rita")
    services.users.deactivate_user(None, "rita")
    services.session.commit()
    assert_error(change(client, headers), 401)
    assert_error(client.get("/api/v1/users/me", headers=headers), 401)
    assert not events(services, "user_password_changed")


def test_no_new_user_may_be_named_me(client, auth, services, users):
    for name in ("me", "Me"):
        body = assert_error(client.post("/api/v1/users", headers=auth("ada"),
                                        json={"username": name, "password": TEST_PASSWORD}), 422)
        assert "reserved" in body["details"]["fields"]["username"][0]


def test_me_is_always_the_caller_and_a_user_named_me_is_reached_in_another_case(client, auth, services, users):
    from werkzeug.security import generate_password_hash

    from app.models import User

    # one named so before the name was reserved
    services.session.add(User(username="me", display_name="Someone called Me",
                              password_hash=generate_password_hash(TEST_PASSWORD, method="pbkdf2:sha256:1000")))
    services.session.commit()
    assert client.get("/api/v1/users/me", headers=auth("ada")).get_json()["username"] == "ada"
    named_me = client.get("/api/v1/users/Me", headers=auth("ada"))
    assert named_me.status_code == 200 and named_me.get_json()["display_name"] == "Someone called Me"
    # the admin's reset of that user goes through the other spelling; /users/me/password is one's own
    reset = client.post("/api/v1/users/ME/password", headers=auth("ada"), json={"password": "reset-by-admin"})
    assert reset.status_code == 200 and reset.get_json()["username"] == "me"
    assert_error(client.post("/api/v1/users/me/password", headers=auth("ada"), json={"password": "reset-by-admin"}),
                 422)
    assert sign_in(client, "me", "reset-by-admin").status_code == 200
    assert sign_in(client, "ada", TEST_PASSWORD).status_code == 200


def test_a_change_made_meanwhile_is_not_overwritten(app, services, users):
    """Review: a change that read the user before another change committed passed the current
    password check on that stale read and wrote the same token generation again, so a token the
    first change issued stayed valid. The user's row is read again (and locked) first now."""
    other = app.extensions["processdesk"].services()
    try:
        stale = other.users.find("rita")  # this request signed in before the first change
        services.users.change_own_password(services.users.find("rita"), TEST_PASSWORD, NEW_PASSWORD)
        services.session.commit()
        with pytest.raises(ValidationFailed) as refused:
            other.users.change_own_password(stale, TEST_PASSWORD, "a-third-secret-x")
        assert set(refused.value.details["fields"]) == {"current_password"}
    finally:
        other.session.close()
