"""Two-step sign-in on the pages: a user sets up an authenticator app on /account/two-step (a QR
code and the key as text, the first code proves it, the recovery codes shown once and never
cached), then signs in with the password and a code, or a recovery code; a sign-in waiting for
its code reaches nothing else and expires; wrong codes count against the sign-in limit; a role
that requires it sends its holder to the set-up page first; admins reset another user's on the
user's page, auditors see whether it is on.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py).
"""

from __future__ import annotations

import base64
import html
import re
import zlib
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from itsdangerous import base64_decode
from sqlalchemy import select

from app.models import AuditEvent, OutboxMessage, TwoStep
from app.services.two_step import step_at, totp
from tests.conftest import joined_app
from tests.web.conftest import PASSWORD, WebClient, text_of
from tests.web.test_out_of_office_pages import element, field_error


def code_now(secret: str, clock: Any, steps: int = 0) -> str:
    raw = base64.b32decode(secret.replace(" ", "") + "=" * (-len(secret.replace(" ", "")) % 8))
    return totp(raw, step_at(clock.now()) + steps)


def audited(services: Any, kind: str) -> list[AuditEvent]:
    return list(services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == kind)
                                         .order_by(AuditEvent.seq)))


def set_up(web: WebClient, clock: Any) -> tuple[str, list[str]]:
    """Turn two-step sign-in on for the signed-in user of ``web``: its key and recovery codes."""
    begun = web.post("/account/two-step/setup")
    assert begun.status_code == 303 and begun.headers["Location"].endswith("/account/two-step#setup")
    page = text_of(web.get("/account/two-step"))
    secret = element(page, "setup-key")
    done = web.post("/account/two-step/confirm", {"code": code_now(secret, clock), "current_password": PASSWORD})
    assert done.status_code == 200, text_of(done)[:400]
    codes = re.findall(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", text_of(done))
    clock.advance(timedelta(seconds=30))  # the code that turned it on is used: the next sign-in needs the next one
    return secret, codes


@pytest.fixture()
def people(services: Any) -> dict[str, Any]:
    made = {name: services.users.create_user(name, PASSWORD, roles=roles, groups=[])
            for name, roles in {"alex": ["agent"], "ada": ["admin"], "aude": ["auditor"], "rita": ["requester"]}.items()}
    services.users.update_user(None, "alex", {"email": "alex@example.com"})
    services.session.commit()
    return made


def test_a_user_sets_it_up_and_sees_the_recovery_codes_once(web: WebClient, people: Any, services: Any, clock: Any) -> None:
    web.login("alex")
    account = text_of(web.get("/account"))
    assert "Off: signing in asks for your password only." in element(account, "two-step-state")
    assert 'href="/account/two-step"' in account

    start = text_of(web.get("/account/two-step"))
    assert 'id="setup-form"' in start and "qr-code" not in start  # nothing made before asking

    web.post("/account/two-step/setup")
    page = text_of(web.get("/account/two-step"))
    assert '<svg' in page and 'class="qr-code"' in page
    secret = element(page, "setup-key")
    assert re.fullmatch(r"[A-Z2-7 ]{32,40}", secret), secret
    assert audited(services, "two_step_begun")

    wrong = web.post("/account/two-step/confirm", {"code": "000000" if code_now(secret, clock) != "000000" else "111111",
                                                   "current_password": PASSWORD})
    assert wrong.status_code == 422
    assert "not the current code of the app you set up" in (field_error(text_of(wrong), "code") or "")
    # the password too: whoever holds a session alone does not tie the account to their phone
    no_password = web.post("/account/two-step/confirm", {"code": code_now(secret, clock), "current_password": "nope"})
    assert no_password.status_code == 422
    assert field_error(text_of(no_password), "current_password") == "This is not your current password."
    assert field_error(text_of(no_password), "code") is None
    assert "Off" in element(text_of(web.get("/account/two-step")), "two-step-state")

    done = web.post("/account/two-step/confirm", {"code": code_now(secret, clock), "current_password": PASSWORD})
    assert done.status_code == 200
    assert done.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", text_of(done))
    assert len(set(codes)) == 10
    assert "On" in element(text_of(done), "two-step-state")

    again = text_of(web.get("/account/two-step"))
    assert not any(code in again for code in codes)  # shown once
    assert "Recovery codes left: 10" in element(again, "two-step-state")
    assert "On: signing in asks for a code" in element(text_of(web.get("/account")), "two-step-state")
    assert [e.actor for e in audited(services, "two_step_enabled")] == ["alex"]
    assert secret.replace(" ", "") not in " ".join(str(e.payload) for e in services.session.scalars(select(AuditEvent)))


def test_signing_in_asks_for_the_code_after_the_password(web_factory: Any, people: Any, services: Any,
                                                         clock: Any) -> None:
    first = web_factory()
    first.login("alex")
    secret, _codes = set_up(first, clock)

    web = web_factory()
    answer = web.post("/login", {"username": "alex", "password": PASSWORD, "next": "/account"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login/code")
    assert web.get("/tasks").headers["Location"].startswith("/login")  # not signed in yet
    assert 'autocomplete="one-time-code"' in text_of(web.get("/login/code"))
    before = len(audited(services, "signed_in"))

    wrong = web.post("/login/code", {"code": "12345"})
    assert wrong.status_code == 401
    assert "not a current code of your authenticator app" in element(text_of(wrong), "code-error")
    assert len(audited(services, "signed_in")) == before

    right = web.post("/login/code", {"code": code_now(secret, clock)})
    assert right.status_code == 303 and right.headers["Location"] == "/account"
    assert web.get("/tasks").status_code == 200
    assert len(audited(services, "signed_in")) == before + 1
    assert web.get("/login/code").headers["Location"].endswith("/login")  # nothing waits any more

    # the same code, once more in the same half minute, is refused: a code works once
    other = web_factory()
    other.post("/login", {"username": "alex", "password": PASSWORD})
    assert other.post("/login/code", {"code": code_now(secret, clock)}).status_code == 401


def test_a_recovery_code_signs_in_once_and_the_user_is_told(web_factory: Any, people: Any, services: Any,
                                                            clock: Any) -> None:
    first = web_factory()
    first.login("alex")
    _secret, codes = set_up(first, clock)
    web = web_factory()
    web.post("/login", {"username": "alex", "password": PASSWORD})
    used = web.post("/login/code", {"code": codes[3].upper().replace("-", " ")})
    assert used.status_code == 303
    home = text_of(web.get(used.headers["Location"]))
    assert "You signed in with a recovery code; 9 remain." in html.unescape(home)
    assert audited(services, "two_step_recovery_used")[-1].payload["left"] == 9

    again = web_factory()
    again.post("/login", {"username": "alex", "password": PASSWORD})
    assert again.post("/login/code", {"code": codes[3]}).status_code == 401


def test_a_waiting_sign_in_expires_and_ends_with_a_password_change(web_factory: Any, people: Any, services: Any,
                                                                   clock: Any) -> None:
    first = web_factory()
    first.login("alex")
    secret, _codes = set_up(first, clock)

    slow = web_factory()
    slow.post("/login", {"username": "alex", "password": PASSWORD})
    clock.advance(timedelta(minutes=6))
    late = slow.post("/login/code", {"code": code_now(secret, clock)})
    assert late.status_code == 303 and late.headers["Location"].endswith("/login")
    assert "Signing in took too long" in html.unescape(text_of(slow.get("/login")))

    changed = web_factory()
    changed.post("/login", {"username": "alex", "password": PASSWORD})
    services.users.reset_password(None, "alex", "another-password-99")
    services.session.commit()
    refused = changed.post("/login/code", {"code": code_now(secret, clock)})
    assert refused.headers["Location"].endswith("/login")
    assert changed.get("/tasks").status_code == 302


def test_wrong_codes_count_against_the_sign_in_limit(web: WebClient, web_factory: Any, people: Any, services: Any,
                                                     clock: Any) -> None:
    first = web_factory()
    first.login("alex")
    secret, _codes = set_up(first, clock)
    web.post("/login", {"username": "alex", "password": PASSWORD})
    for _ in range(5):
        assert web.post("/login/code", {"code": "99999a"}).status_code == 401
    limited = web.post("/login/code", {"code": code_now(secret, clock)})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    # the password form is closed to the name as well
    assert web_factory().post("/login", {"username": "alex", "password": PASSWORD}).status_code == 429


def test_a_code_form_without_the_csrf_token_is_refused(web: WebClient, people: Any, clock: Any) -> None:
    web.post("/login", {"username": "alex", "password": PASSWORD})
    assert web.post("/login/code", {"code": "123456"}, csrf=False).status_code in (400, 403)


def test_turning_it_off_takes_the_password_and_a_code(web: WebClient, people: Any, services: Any, clock: Any) -> None:
    web.login("alex")
    secret, codes = set_up(web, clock)
    wrong = web.post("/account/two-step/disable", {"current_password": "nope", "code": codes[1]})
    assert wrong.status_code == 422
    page = text_of(wrong)
    assert field_error(page, "current_password") == "This is not your current password."
    assert field_error(page, "code") is None  # not looked at: a right one is not used up by a refused form
    wrong = web.post("/account/two-step/disable", {"current_password": PASSWORD, "code": "000001"})
    assert wrong.status_code == 422
    assert "not a current code" in (field_error(text_of(wrong), "code") or "")
    assert "On" in element(text_of(web.get("/account/two-step")), "two-step-state")

    off = web.post("/account/two-step/disable", {"current_password": PASSWORD, "code": codes[1]})
    assert off.status_code == 303
    assert "Off" in element(text_of(web.get("/account/two-step")), "two-step-state")
    assert [e.actor for e in audited(services, "two_step_disabled")] == ["alex"]


def test_new_recovery_codes_take_the_password_and_a_code_and_replace_the_old(web_factory: Any, people: Any,
                                                                            services: Any, clock: Any) -> None:
    web = web_factory()
    web.login("alex")
    secret, old = set_up(web, clock)
    page = text_of(web.get("/account/two-step"))
    assert 'name="renew_code"' in page and 'name="_secret" value="renew_code"' in page
    refused = web.post("/account/two-step/recovery-codes", {"renew_password": "nope", "renew_code": old[0]})
    assert refused.status_code == 422
    assert field_error(text_of(refused), "renew_password") == "This is not your current password."
    assert field_error(text_of(refused), "current_password") is None  # the other form's field says nothing
    wrong = "000000" if code_now(secret, clock) != "000000" else "111111"
    refused = web.post("/account/two-step/recovery-codes", {"renew_password": PASSWORD, "renew_code": wrong})
    assert refused.status_code == 422
    assert "not a current code" in (field_error(text_of(refused), "renew_code") or "")
    assert field_error(text_of(refused), "code") is None
    assert web.post("/account/two-step/recovery-codes", {"renew_password": PASSWORD}).status_code == 422
    renewed = web.post("/account/two-step/recovery-codes", {"renew_password": PASSWORD,
                                                            "renew_code": code_now(secret, clock)})
    assert renewed.status_code == 200 and renewed.headers["Cache-Control"] == "no-store"
    new = re.findall(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", text_of(renewed))
    assert len(new) == 10 and not set(new) & set(old)
    other = web_factory()
    other.post("/login", {"username": "alex", "password": PASSWORD})
    assert other.post("/login/code", {"code": old[1]}).status_code == 401  # the refused forms used none up
    assert other.post("/login/code", {"code": new[0]}).status_code == 303


def test_the_accounts_own_limit_of_wrong_codes_answers_the_page_with_429(web_factory: Any, people: Any,
                                                                        services: Any, clock: Any) -> None:
    web = web_factory()
    web.login("alex")
    secret, codes = set_up(web, clock)
    row = services.session.get(TwoStep, people["alex"].id)
    row.failures, row.failed_at = 5, clock.now()  # five wrong codes a moment ago, from another browser
    services.session.commit()
    refused = web.post("/account/two-step/disable", {"current_password": PASSWORD, "code": code_now(secret, clock)})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many wrong passwords or codes" in text_of(refused)
    assert "On" in element(text_of(web.get("/account/two-step")), "two-step-state")


def test_an_admin_resets_it_and_an_auditor_sees_it(web_factory: Any, people: Any, services: Any, clock: Any) -> None:
    alex = web_factory()
    alex.login("alex")
    set_up(alex, clock)

    aude = web_factory()
    aude.login("aude")
    seen = text_of(aude.get("/admin/users/alex"))
    assert "On: alex signs in with a code" in element(seen, "two-step-state")
    assert 'id="two-step-reset"' not in seen
    assert aude.post("/admin/users/alex/two-step/reset").status_code == 403

    ada = web_factory()
    ada.login("ada")
    page = text_of(ada.get("/admin/users/alex"))
    assert 'id="two-step-reset"' in page
    done = ada.post("/admin/users/alex/two-step/reset")
    assert done.status_code == 303 and done.headers["Location"].endswith("/admin/users/alex#two-step")
    assert "Off: alex signs in with the password only." in element(text_of(ada.get("/admin/users/alex")), "two-step-state")
    assert [(e.actor, e.payload["username"]) for e in audited(services, "two_step_reset")] == [("ada", "alex")]
    mails = services.session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "account.two_step")
                                     .order_by(OutboxMessage.id)).all()
    assert [m.subject for m in mails] == ["Two-step sign-in is on", "Two-step sign-in was turned off"]
    assert "ada turned two-step sign-in off" in mails[-1].body and mails[-1].recipient == "alex@example.com"
    # her own is not hers to reset here
    assert 'id="two-step-reset"' not in text_of(ada.get("/admin/users/ada"))
    assert ada.post("/admin/users/ada/two-step/reset").status_code == 403
    # alex signs in with the password alone again
    web_factory().login("alex")


def test_the_event_is_labelled_in_the_audit_trail(web_factory: Any, people: Any, services: Any, clock: Any) -> None:
    alex = web_factory()
    alex.login("alex")
    set_up(alex, clock)
    aude = web_factory()
    aude.login("aude")
    trail = html.unescape(text_of(aude.get("/audit?event_type=two_step_enabled")))
    assert "Two-step sign-in turned on" in trail


@pytest.fixture()
def strict(database_url: str, connection: Any, clock: Any) -> Any:
    return joined_app(database_url, connection, clock, TWO_STEP_REQUIRED_ROLES="agent,admin")


def test_a_role_that_requires_it_sends_its_holder_to_set_it_up(strict: Any, clock: Any) -> None:
    services = strict.extensions["processdesk"].services()
    services.users.create_user("alex", PASSWORD, roles=["agent"], groups=[])
    services.users.create_user("rita", PASSWORD, roles=["requester"], groups=[])
    services.session.commit()

    web = WebClient(strict.test_client())
    signed = web.post("/login", {"username": "alex", "password": PASSWORD})
    assert signed.headers["Location"].endswith("/account/two-step")
    blocked = web.get("/tasks")
    assert blocked.status_code == 303 and blocked.headers["Location"].endswith("/account/two-step")
    assert web.post("/language", {"lang": "zh_CN"}).status_code == 302  # the language switch stays open
    web.post("/language", {"lang": "en"})
    page = text_of(web.get("/account/two-step"))
    assert "Your role requires it" in element(page, "two-step-state")
    secret, _codes = set_up(web, clock)
    assert web.get("/tasks").status_code == 200
    # and it cannot be turned off
    page = text_of(web.get("/account/two-step"))
    assert 'id="off-form"' not in page
    assert web.post("/account/two-step/disable", {"current_password": PASSWORD,
                                                  "code": code_now(secret, clock)}).status_code == 303
    assert "On" in element(text_of(web.get("/account/two-step")), "two-step-state")

    requester = WebClient(strict.test_client())
    assert requester.login("rita").headers["Location"].endswith("/")
    assert requester.get("/account").status_code == 200
    services.session.close()


def test_letters_and_other_scripts_digits_are_a_wrong_code_not_an_error(web_factory: Any, people: Any,
                                                                        clock: Any) -> None:
    first = web_factory()
    first.login("alex")
    set_up(first, clock)
    web = web_factory()
    web.post("/login", {"username": "alex", "password": PASSWORD})
    for typed in ("１２３４５６", "١٢٣٤٥٦", "12345x"):
        answer = web.post("/login/code", {"code": typed})
        assert answer.status_code == 401, (typed, answer.status_code)
    for _ in range(3):  # an empty form is asked again, not counted as a guess
        empty = web.post("/login/code", {"code": "  "})
        assert empty.status_code == 422 and "Type the code" in element(text_of(empty), "code-error")
    assert web.post("/login/code", {"code": "000000"}).status_code == 401  # the fourth guess, not the limit's 429


def raw_cookie(web: WebClient) -> str:
    """The session cookie as anyone holding it reads it (signed, not encrypted)."""
    value = web.client.get_cookie("session").value
    data = base64_decode(value.lstrip(".").split(".")[0])
    return (zlib.decompress(data) if value.startswith(".") else data).decode()


def test_a_code_typed_into_a_form_after_the_session_ended_is_not_kept_in_the_cookie(web: WebClient, people: Any,
                                                                                   clock: Any) -> None:
    web.login("alex")
    _secret, codes = set_up(web, clock)
    clock.advance(timedelta(minutes=31))  # the idle timeout
    sent = web.post("/account/two-step/disable", {"current_password": PASSWORD, "code": codes[0], "note": "kept"},
                    headers={"Referer": "http://localhost/account/two-step"})
    assert sent.status_code == 302 and "/login" in sent.headers["Location"]
    cookie = raw_cookie(web)
    assert codes[0] not in cookie and PASSWORD not in cookie and "unsent_form" not in cookie


def test_a_waiting_sign_in_reset_meanwhile_goes_back_to_the_password(strict: Any, clock: Any) -> None:
    services = strict.extensions["processdesk"].services()
    services.users.create_user("alex", PASSWORD, roles=["agent"], groups=[])
    services.users.create_user("ada", PASSWORD, roles=["admin"], groups=[])
    services.session.commit()
    alex = WebClient(strict.test_client())
    alex.login("alex")
    set_up(alex, clock)
    other = WebClient(strict.test_client())
    assert other.post("/login", {"username": "alex", "password": PASSWORD}).headers["Location"].endswith("/login/code")
    services.two_step.reset(services.users.get_by_username("ada"), "alex")
    services.session.commit()
    answer = other.post("/login/code", {"code": "not-a-code"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/login")
    assert other.get("/tasks").headers["Location"].startswith("/login")  # not signed in
    # and with the password alone now, the set-up page first
    assert other.post("/login", {"username": "alex", "password": PASSWORD}).headers["Location"].endswith("/account/two-step")
    services.session.close()


def test_the_requirement_is_read_on_every_request_in_every_browser(strict: Any, clock: Any) -> None:
    services = strict.extensions["processdesk"].services()
    services.users.create_user("alex", PASSWORD, roles=["agent"], groups=[])
    services.users.create_user("rita", PASSWORD, roles=["requester"], groups=[])
    services.session.commit()
    laptop, phone = WebClient(strict.test_client()), WebClient(strict.test_client())
    laptop.login("alex")
    phone.login("alex")
    assert phone.get("/tasks").status_code == 303
    # a page's script is told in JSON, not sent to a page
    script = phone.get("/notifications", headers={"Accept": "application/json"})
    assert script.status_code == 403 and script.get_json()["error"] == "two_step_setup_required"
    set_up(laptop, clock)
    assert phone.get("/tasks").status_code == 200  # set up in the other browser: this one goes on too

    requester = WebClient(strict.test_client())
    requester.login("rita")
    assert requester.get("/account").status_code == 200
    services.users.update_user(None, "rita", {"roles": ["admin"]})
    services.session.commit()
    assert requester.get("/account").headers["Location"].endswith("/account/two-step")  # from the next page on
    services.session.close()


def test_a_recovery_code_is_not_used_up_by_a_sign_in_that_fails(web_factory: Any, people: Any, clock: Any,
                                                                monkeypatch: Any) -> None:
    from app.errors import Conflict
    from app.services.users import UserService

    first = web_factory()
    first.login("alex")
    _secret, codes = set_up(first, clock)
    web = web_factory()
    web.post("/login", {"username": "alex", "password": PASSWORD})

    def busy(*_args: Any, **_kwargs: Any) -> None:
        raise Conflict("another change is being written; try again in a moment")

    monkeypatch.setattr(UserService, "start_web_session", busy)
    assert web.post("/login/code", {"code": codes[0]}).status_code == 409
    monkeypatch.undo()
    again = web_factory()
    again.post("/login", {"username": "alex", "password": PASSWORD})
    assert again.post("/login/code", {"code": codes[0]}).status_code == 303


def test_the_page_has_no_id_twice(web: WebClient, people: Any, clock: Any) -> None:
    web.login("alex")
    set_up(web, clock)
    page = text_of(web.post("/account/two-step/disable", {"current_password": "nope", "code": "000000"}))
    ids = Counter(re.findall(r'\bid="([^"]+)"', page))
    assert [name for name, count in ids.items() if count > 1] == []


def test_the_user_list_marks_and_finds_who_signs_in_with_a_code(web_factory: Any, people: Any, clock: Any) -> None:
    alex = web_factory()
    alex.login("alex")
    set_up(alex, clock)
    ada = web_factory()
    ada.login("ada")
    page = text_of(ada.get("/admin/users"))
    row = re.search(r'<tr>\s*<td data-label="Username"><a href="/admin/users/alex">.*?</tr>', page, flags=re.S)
    assert row and 'class="badge two-step"' in row.group(0)
    assert page.count('class="badge two-step"') == 1
    on = text_of(ada.get("/admin/users?two_step=1"))
    assert 'href="/admin/users/alex"' in on and 'href="/admin/users/ada"' not in on
    assert '<option value="1" selected>On</option>' in on
    off = text_of(ada.get("/admin/users?two_step=0"))
    assert 'href="/admin/users/alex"' not in off and 'href="/admin/users/ada"' in off
