"""API tokens on the pages: /account lists the user's live tokens (never a secret), each with a
button that revokes it (POST with the CSRF token); an admin's page of a user does the same for
theirs, an auditor's shows them without buttons. Another user's token id is not found."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.web.conftest import text_of


def sign_in(client: Any, username: str, label: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"username": username, "password": TEST_PASSWORD}
    if label:
        body["label"] = label
    answer = client.post("/api/v1/auth/token", json=body).get_json()
    answer["headers"] = {"Authorization": f"Bearer {answer['token']}"}
    return answer  # type: ignore[no-any-return]


def works(client: Any, token: dict[str, Any]) -> bool:
    return client.get("/api/v1/users/me", headers=token["headers"]).status_code == 200


def test_the_account_page_lists_and_revokes_the_users_tokens(web, client, users, services):
    script, other = sign_in(client, "rick", "backup script"), sign_in(client, "rick")
    alexs = sign_in(client, "alex", "alex's")
    web.login("rick", TEST_PASSWORD)
    page = text_of(web.get("/account"))
    assert 'id="api-tokens"' in page and "backup script" in page and f'id="token-{other["id"]}"' in page
    assert "alex&#39;s" not in page and f'id="token-{alexs["id"]}"' not in page
    assert script["token"] not in page and other["token"] not in page
    assert page.count('action="/account/tokens/') == 2

    # without the CSRF token: refused, nothing revoked
    assert web.post(f"/account/tokens/{script['id']}/revoke", csrf=False).status_code in (400, 403)
    assert works(client, script)
    # another user's token: not found, and it goes on working
    assert web.post(f"/account/tokens/{alexs['id']}/revoke").status_code == 404
    assert works(client, alexs)

    done = web.post(f"/account/tokens/{script['id']}/revoke")
    assert done.status_code == 302 and done.headers["Location"].endswith("/account")
    assert not works(client, script) and works(client, other)
    page = text_of(web.get("/account"))
    assert "backup script" not in page and f"API token #{script['id']} was revoked" in page
    services.session.expire_all()
    [event] = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "token_revoked")).all()
    assert event.actor == "rick" and event.payload["token_id"] == script["id"]


def test_an_admin_revokes_a_users_token_from_their_page(web_factory, client, users):
    token = sign_in(client, "alex", "laptop")
    rita_token = sign_in(client, "rita")
    auditor = web_factory()
    auditor.login("aude", TEST_PASSWORD)
    page = text_of(auditor.get("/admin/users/alex"))
    assert "laptop" in page and "/tokens/" not in page  # an auditor reads, revokes nothing
    assert auditor.post(f"/admin/users/alex/tokens/{token['id']}/revoke").status_code == 403
    admin = web_factory()
    admin.login("ada", TEST_PASSWORD)
    page = text_of(admin.get("/admin/users/alex"))
    assert f'action="/admin/users/alex/tokens/{token["id"]}/revoke"' in page
    assert admin.post(f"/admin/users/alex/tokens/{rita_token['id']}/revoke").status_code == 404  # not alex's
    assert works(client, rita_token)
    assert admin.post(f"/admin/users/alex/tokens/{token['id']}/revoke").status_code == 302
    assert not works(client, token)
    assert "No live API tokens." in text_of(admin.get("/admin/users/alex"))


def test_the_token_list_reads_in_chinese(web, client, users):
    sign_in(client, "rick", "backup script")
    web.login("rick", TEST_PASSWORD)
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get("/account"))
    assert "API 令牌" in page and "撤销" in page and "最后使用" in page


def test_a_label_is_shown_as_text(web, client, users):
    sign_in(client, "rick", "<img src=x onerror=alert(1)>")
    web.login("rick", TEST_PASSWORD)
    page = text_of(web.get("/account"))
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
