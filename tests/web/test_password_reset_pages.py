"""The "Forgot your password?" pages (app/web/password_reset_pages.py): CSRF on both forms, the
same 303 whatever was asked for, the link's page and its refusals, and the token kept out of the
access log."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

import pytest
from sqlalchemy import select

from app.models import OutboxMessage
from tests.services.test_notifications import smtp as smtp  # the fixture: a real SMTP server on 127.0.0.1
from tests.web.conftest import PASSWORD, text_of
from tests.web.test_request_log import log_lines as log_lines  # the fixture: the app log as JSON lines
from tests.web.test_request_log import parsed

NEW = "a-new-password-5678"
LINK = re.compile(r"/login/reset/([A-Za-z0-9_-]+)")


@pytest.fixture()
def people(services: Any) -> dict[str, Any]:
    made = {
        "rita": services.users.create_user("rita", PASSWORD, roles=["requester"], email="rita@example.test"),
        "leaver": services.users.create_user("leaver", PASSWORD, roles=["requester"], email="leaver@example.test"),
        "nomail": services.users.create_user("nomail", PASSWORD, roles=["requester"]),
    }
    made["leaver"].active = False
    services.session.commit()
    return made


def mails(services: Any) -> list[OutboxMessage]:
    services.session.expire_all()
    return list(services.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email")))


def ask(web: Any, name: str) -> Any:
    return web.post("/login/forgot", {"name": name})


def link_token(services: Any) -> str:
    match = LINK.search(mails(services)[-1].body)
    assert match
    return match.group(1)


def test_the_sign_in_page_links_to_the_forgot_page_which_has_a_form(web):
    assert 'href="/login/forgot"' in text_of(web.get("/login"))
    page = web.get("/login/forgot")
    assert page.status_code == 200
    assert 'name="csrf_token"' in text_of(page) and 'name="name"' in text_of(page)


def test_asking_without_the_csrf_token_is_refused_and_sends_nothing(web, services, people):
    assert web.post("/login/forgot", {"name": "rita"}, csrf=False).status_code == 403
    assert mails(services) == []


def test_asking_redirects_303_to_a_page_that_says_the_same_to_everyone(web, services, people):
    answer = ask(web, "rita")
    assert answer.status_code == 303 and answer.headers["Location"] == "/login/forgot?sent=1"
    page = web.get(answer.headers["Location"])
    assert "If an account matches, we sent a link to its e-mail address" in text_of(page)
    assert [m.recipient for m in mails(services)] == ["rita@example.test"]


def test_known_unknown_inactive_and_addressless_accounts_get_identical_answers(web_factory, services, people):
    answers = []
    for name in ("rita", "nobody", "leaver", "nomail", "nobody@example.test"):
        web = web_factory()
        web.get("/login/forgot")
        answer = ask(web, name)
        followed = web.get(answer.headers["Location"])
        answers.append((answer.status_code, answer.headers["Location"], answer.get_data(),
                        followed.status_code, re.sub(r'value="[^"]+"', "", text_of(followed))))
    assert all(a == answers[0] for a in answers), answers
    assert len(mails(services)) == 1


def test_known_and_unknown_names_are_answered_after_the_same_time(app, web, services, people, monkeypatch):
    """The answer waits out ``PASSWORD_RESET_ANSWER_SECONDS`` from when the request began, however
    long its work took (a token, a mail and an audit event for a known name; nothing for another):
    read off a clock the test moves, never the real one."""
    from app.web import password_reset_pages

    now = [100.0]
    slept: list[float] = []
    work = {"rita": 0.012, "nobody": 0.001}  # what each name's request costs on this fake clock
    real = password_reset_pages.services

    def timed_services() -> Any:
        now[0] += work[current[0]]
        return real()

    monkeypatch.setattr(password_reset_pages.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(password_reset_pages.time, "sleep", lambda seconds: (slept.append(seconds),
                                                                             now.__setitem__(0, now[0] + seconds)))
    monkeypatch.setattr(password_reset_pages, "services", timed_services)
    app.config["PASSWORD_RESET_ANSWER_SECONDS"] = 0.3
    current = [""]
    ended = []
    for name in ("rita", "nobody"):
        current[0] = name
        began = now[0]
        assert ask(web, name).status_code == 303
        ended.append(round(now[0] - began, 6))
    assert ended == [0.3, 0.3] and slept == [pytest.approx(0.288), pytest.approx(0.299)]
    assert [m.recipient for m in mails(services)] == ["rita@example.test"]


def test_an_address_over_its_limit_is_answered_the_same_and_sends_nothing(app, web, services, people):
    app.config["PASSWORD_RESET_MAX_PER_IP"] = 2
    answers = [ask(web, name) for name in ("nobody", "rita", "rita")]
    assert {(a.status_code, a.headers["Location"]) for a in answers} == {(303, "/login/forgot?sent=1")}
    assert [m.recipient for m in mails(services)] == ["rita@example.test"]  # the third was over the limit


def test_the_link_shows_a_form_and_sends_no_referrer(web, services, people):
    ask(web, "rita")
    page = web.get(f"/login/reset/{link_token(services)}")
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert 'name="new_password"' in text_of(page) and 'name="new_password_again"' in text_of(page)
    assert 'name="csrf_token"' in text_of(page)


def test_an_unknown_link_says_it_no_longer_works_and_offers_to_ask_again(web, people):
    page = web.get("/login/reset/not-a-real-link")
    assert page.status_code == 404
    assert "This link no longer works" in text_of(page) and 'href="/login/forgot"' in text_of(page)
    assert web.post("/login/reset/not-a-real-link", {"new_password": NEW, "new_password_again": NEW}).status_code == 404


def test_setting_the_password_needs_the_csrf_token(web, services, people):
    ask(web, "rita")
    token = link_token(services)
    answer = web.post(f"/login/reset/{token}", {"new_password": NEW, "new_password_again": NEW}, csrf=False)
    assert answer.status_code == 403
    assert services.users.check_password("rita", PASSWORD).username == "rita"


def test_refused_passwords_come_back_beside_their_fields_without_the_passwords(web, services, people):
    ask(web, "rita")
    token = link_token(services)
    differ = web.post(f"/login/reset/{token}", {"new_password": NEW, "new_password_again": NEW + "x"})
    assert differ.status_code == 422 and 'id="new_password_again-error"' in text_of(differ)
    assert "The two passwords differ." in text_of(differ) and NEW not in text_of(differ)
    short = web.post(f"/login/reset/{token}", {"new_password": "short", "new_password_again": "short"})
    assert short.status_code == 422 and 'id="new_password-error"' in text_of(short)
    assert "Use at least 8 characters." in text_of(short) and 'value="short"' not in text_of(short)
    with web.client.session_transaction() as session:
        assert not any("short" in str(v) or NEW in str(v) for v in session.values())
    assert web.get(f"/login/reset/{token}").status_code == 200  # the link still works


def test_a_reset_signs_out_everywhere_and_the_new_password_signs_in(web, web_factory, services, people):
    elsewhere = web_factory()
    elsewhere.login("rita")
    assert elsewhere.get("/account").status_code == 200
    ask(web, "rita")
    token = link_token(services)
    done = web.post(f"/login/reset/{token}", {"new_password": NEW, "new_password_again": NEW})
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert "Your password was changed; sign in with the new one." in text_of(web.get("/login"))
    assert elsewhere.get("/account").status_code == 302  # signed out
    assert web.post("/login", {"username": "rita", "password": PASSWORD}).status_code == 401
    web.login("rita", NEW)
    used = web_factory().get(f"/login/reset/{token}")
    assert used.status_code == 410 and "This link no longer works" in text_of(used)


def test_the_access_log_never_writes_the_token(web, services, people, log_lines):
    ask(web, "rita")
    token = link_token(services)
    web.get(f"/login/reset/{token}")
    web.post(f"/login/reset/{token}", {"new_password": NEW, "new_password_again": NEW}, csrf=False)  # refused 403
    web.post(f"/login/reset/{token}", {"new_password": NEW, "new_password_again": NEW})
    lines = parsed(log_lines)
    paths = [line["path"] for line in lines if line.get("logger") == "app.requests"]
    assert paths.count("/login/reset/[redacted]") == 3
    assert token not in log_lines.getvalue()


def test_the_pages_speak_chinese(web, services, people):
    chinese = {"Accept-Language": "zh-CN"}
    assert "忘记密码？" in text_of(web.get("/login", headers=chinese))
    assert "用户名或电子邮件地址" in text_of(web.get("/login/forgot", headers=chinese))
    assert "已失效" in text_of(web.get("/login/reset/nothing", headers=chinese))


def test_the_mail_arrives_over_smtp_with_a_link_that_works(app, web, services, people, smtp):
    port, inbox = smtp
    app.extensions["processdesk"].runtime.config.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port,
                                                         "PUBLIC_URL": "https://desk.example.test"})
    ask(web, "rita")
    assert inbox.messages == []  # queued in the request's transaction, sent by the sweep
    assert services.notifications.sweep("test").sent == 1
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["rita@example.test"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == "Reset your processdesk password"
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"https://desk\.example\.test(/login/reset/[A-Za-z0-9_-]+)\s", body)
    assert match, body
    assert web.get(match.group(1)).status_code == 200
    done = web.post(match.group(1), {"new_password": NEW, "new_password_again": NEW})
    assert done.status_code == 303
    web.login("rita", NEW)


def test_a_server_error_on_the_link_logs_its_path_redacted(app, web, services, people, log_lines, monkeypatch):
    from app.services.password_reset import PasswordResetService

    ask(web, "rita")
    token = link_token(services)

    def boom(self: Any, token: str) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(PasswordResetService, "link_user", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as in production, not raise into the test
    assert web.get(f"/login/reset/{token}").status_code == 500
    [failure] = [line for line in parsed(log_lines) if "exception" in line]
    assert failure["message"] == "Exception on /login/reset/[redacted] [GET]"
    assert token not in log_lines.getvalue()


def test_a_reset_lifts_the_lockout_of_the_accounts_failed_sign_ins(web, web_factory, services, people):
    """QA: locked out after six wrong passwords, rita reset hers and was still refused (429)."""
    guesser = web_factory()
    for _ in range(6):  # one more than the name's limit (WEB_LOGIN_MAX_FAILURES, 5)
        guesser.post("/login", {"username": "rita", "password": "not-her-password"})
    assert guesser.post("/login", {"username": "rita", "password": PASSWORD}).status_code == 429
    ask(web, "rita")
    token = link_token(services)
    assert web.post(f"/login/reset/{token}", {"new_password": NEW, "new_password_again": NEW}).status_code == 303
    web.login("rita", NEW)
