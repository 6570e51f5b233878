"""API tokens one by one (security review: a stolen token could only be stopped by changing the
password, which ended every token and web session of its user).

A sign-in may name its token (``label``) and ask for a shorter life (``expires_in``). The user
lists their live tokens at /users/me/tokens (never a token's secret) and revokes one by its id
(DELETE /users/me/tokens/<id>); an admin does the same for anyone at /users/<username>/tokens
(auditors read the list). A revoked token answers 401 on its next request; each revocation is
audited. Another user's token id is not found."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.http.helpers import assert_error


def sign_in(client: Any, username: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": TEST_PASSWORD, **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bearer(answer: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {answer['token']}"}


def tokens(client: Any, headers: dict[str, str], whose: str = "me") -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/users/{whose}/tokens", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]  # type: ignore[no-any-return]


def works(client: Any, headers: dict[str, str]) -> bool:
    return client.get("/api/v1/users/me", headers=headers).status_code == 200


def revoked_events(services: Any) -> list[AuditEvent]:
    services.session.expire_all()
    return list(services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "token_revoked")))


def ttl(client: Any) -> int:
    return int(client.application.extensions["processdesk"].runtime.config["TOKEN_TTL_SECONDS"])


def test_a_user_lists_their_tokens_without_the_secrets(client, users, clock):
    laptop = sign_in(client, "alex", label="laptop script")
    ci = sign_in(client, "alex", label="CI", expires_in=3600)
    assert ci["expires_in"] == 3600 and ci["label"] == "CI" and isinstance(ci["id"], int)
    assert laptop["expires_in"] == ttl(client) and laptop["label"] == "laptop script"  # the desk's lifetime
    sign_in(client, "rita")  # someone else's: not on alex's list
    clock.advance(timedelta(minutes=5))
    assert works(client, bearer(laptop))
    listed = tokens(client, bearer(ci))
    assert [t["id"] for t in listed] == [ci["id"], laptop["id"]]  # newest first
    assert set(listed[0]) == {"id", "label", "created_at", "last_used_at", "expires_at", "current"}
    by_id = {t["id"]: t for t in listed}
    assert by_id[ci["id"]]["current"] is True and by_id[laptop["id"]]["current"] is False
    assert by_id[laptop["id"]]["last_used_at"] is not None  # used five minutes after its sign-in
    assert by_id[ci["id"]]["last_used_at"] is not None  # this very request
    assert by_id[ci["id"]]["expires_at"].startswith((clock.now() - timedelta(minutes=5) + timedelta(hours=1))
                                                    .strftime("%Y-%m-%dT%H:%M"))
    text = str(listed)
    assert laptop["token"] not in text and ci["token"] not in text


def test_a_shorter_life_is_kept_and_a_longer_one_refused(client, users, clock):
    short = sign_in(client, "alex", expires_in=120)
    clock.advance(timedelta(seconds=121))
    assert_error(client.get("/api/v1/users/me", headers=bearer(short)), 401, "token_expired")
    for wrong in (ttl(client) + 1, 0, -5, 59):
        body = assert_error(client.post("/api/v1/auth/token", json={"username": "alex", "password": TEST_PASSWORD,
                                                                    "expires_in": wrong}), 422)
        assert "expires_in" in body["details"]["fields"], body
    assert_error(client.post("/api/v1/auth/token", json={"username": "alex", "password": TEST_PASSWORD,
                                                         "expires_in": "soon"}), 422)
    body = assert_error(client.post("/api/v1/auth/token", json={"username": "alex", "password": TEST_PASSWORD,
                                                                "label": "x" * 129}), 422)
    assert "label" in body["details"]["fields"]


def test_revoking_one_token_stops_it_at_once_and_leaves_the_others(client, users, services):
    laptop, ci = sign_in(client, "alex", label="laptop"), sign_in(client, "alex", label="CI")
    assert works(client, bearer(laptop)) and works(client, bearer(ci))
    response = client.delete(f"/api/v1/users/me/tokens/{laptop['id']}", headers=bearer(ci))
    assert response.status_code == 204
    assert_error(client.get("/api/v1/users/me", headers=bearer(laptop)), 401, "unauthorized")
    assert works(client, bearer(ci))
    assert [t["id"] for t in tokens(client, bearer(ci))] == [ci["id"]]
    [event] = revoked_events(services)
    assert event.actor == "alex" and event.payload == {"token_id": laptop["id"], "label": "laptop", "username": "alex"}
    # a second revocation finds nothing to revoke
    assert_error(client.delete(f"/api/v1/users/me/tokens/{laptop['id']}", headers=bearer(ci)), 404)
    # and a token revokes itself (the API's sign-out)
    assert client.delete(f"/api/v1/users/me/tokens/{ci['id']}", headers=bearer(ci)).status_code == 204
    assert_error(client.get("/api/v1/users/me", headers=bearer(ci)), 401)


def test_another_users_token_id_is_not_found(client, users, services):
    alex, rita = sign_in(client, "alex"), sign_in(client, "rita")
    body = assert_error(client.delete(f"/api/v1/users/me/tokens/{alex['id']}", headers=bearer(rita)), 404)
    assert str(alex["id"]) in body["message"]
    assert works(client, bearer(alex)) and revoked_events(services) == []
    # nor may a non-admin reach anyone else's list or tokens by name
    assert_error(client.get("/api/v1/users/alex/tokens", headers=bearer(rita)), 403)
    assert_error(client.delete(f"/api/v1/users/alex/tokens/{alex['id']}", headers=bearer(rita)), 403)
    assert works(client, bearer(alex))


def test_an_admin_lists_and_revokes_a_users_tokens(client, users, services, auth):
    alex = sign_in(client, "alex", label="stolen laptop")
    rita = sign_in(client, "rita")
    assert [t["id"] for t in tokens(client, auth("aude"), "ALEX")] == [alex["id"]]  # an auditor reads
    assert_error(client.delete(f"/api/v1/users/alex/tokens/{alex['id']}", headers=auth("aude")), 403)
    listed = tokens(client, auth("ada"), "alex")
    assert [t["label"] for t in listed] == ["stolen laptop"]
    # the id must be that user's: rita's token is not alex's
    assert_error(client.delete(f"/api/v1/users/alex/tokens/{rita['id']}", headers=auth("ada")), 404)
    assert client.delete(f"/api/v1/users/alex/tokens/{alex['id']}", headers=auth("ada")).status_code == 204
    assert_error(client.get("/api/v1/users/me", headers=bearer(alex)), 401)
    assert works(client, bearer(rita))
    [event] = revoked_events(services)
    assert event.actor == "ada" and event.payload["username"] == "alex" and event.payload["token_id"] == alex["id"]
    assert_error(client.get("/api/v1/users/nobody/tokens", headers=auth("ada")), 404)


def test_a_user_reaches_their_own_tokens_by_name_too(client, users):
    token = sign_in(client, "alex")
    assert [t["id"] for t in tokens(client, bearer(token), "Alex")] == [token["id"]]
    assert client.delete(f"/api/v1/users/alex/tokens/{token['id']}", headers=bearer(token)).status_code == 204


def test_tokens_that_can_no_longer_work_are_forgotten_at_the_next_sign_in(client, users, services, clock):
    from app.models import ApiToken

    short, kept = sign_in(client, "alex", expires_in=60), sign_in(client, "alex")
    revoked = sign_in(client, "alex")
    assert client.delete(f"/api/v1/users/me/tokens/{revoked['id']}", headers=bearer(kept)).status_code == 204
    clock.advance(timedelta(minutes=2))
    fresh = sign_in(client, "alex")
    services.session.expire_all()
    rows = services.session.scalars(select(ApiToken.id).where(ApiToken.user_id == users["alex"].id)).all()
    assert sorted(rows) == sorted([kept["id"], fresh["id"]]), (short["id"], revoked["id"])
    [event] = revoked_events(services)  # the revocation stays in the audit trail
    assert event.payload["token_id"] == revoked["id"]


def test_a_password_change_ends_every_listed_token(client, users, services):
    first, second = sign_in(client, "alex"), sign_in(client, "alex")
    services.users.reset_password(None, "alex", "another-password-1")
    services.session.commit()
    for old in (first, second):
        assert_error(client.get("/api/v1/users/me", headers=bearer(old)), 401)
    fresh = client.post("/api/v1/auth/token", json={"username": "alex", "password": "another-password-1"}).get_json()
    assert [t["id"] for t in tokens(client, bearer(fresh))] == [fresh["id"]]


def test_the_openapi_document_names_the_token_routes(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"get"} <= set(paths["/api/v1/users/{username}/tokens"])
    assert {"delete"} <= set(paths["/api/v1/users/{username}/tokens/{token_id}"])
