"""Self-service password reset (app/services/password_reset.py): single-use links that expire by
the application clock, one mail per request through the outbox, nothing learned about accounts
from asking, at most three mails per user an hour, and every session and token ending."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.config import DEFAULTS
from app.errors import NotFound, Unauthorized, ValidationFailed
from app.models import AuditEvent, OutboxMessage, PasswordResetToken, User
from app.services.password_reset import ENDED_LINK, UNKNOWN_LINK
from tests.conftest import TEST_CONFIG

OLD, NEW = "password-1234", "a-new-password-5678"
LINK = re.compile(r"http://desk\.example\.test/login/reset/([A-Za-z0-9_-]+)")


@pytest.fixture()
def people(services: Any, app: Any) -> dict[str, User]:
    app.extensions["processdesk"].runtime.config["PUBLIC_URL"] = "http://desk.example.test/"
    made = {
        "rita": services.users.create_user("rita", OLD, roles=["requester"], email="Rita@Example.test"),
        "lin": services.users.create_user("lin", OLD, roles=["requester"], email="lin@example.test", locale="zh_CN"),
        "leaver": services.users.create_user("leaver", OLD, roles=["requester"], email="leaver@example.test"),
        "nomail": services.users.create_user("nomail", OLD, roles=["requester"]),
        "twin1": services.users.create_user("twin1", OLD, roles=["requester"], email="shared@example.test"),
        "twin2": services.users.create_user("twin2", OLD, roles=["requester"], email="shared@example.test"),
    }
    made["leaver"].active = False
    services.session.commit()
    return made


def mails(services: Any) -> list[OutboxMessage]:
    return list(services.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "email")
                                         .order_by(OutboxMessage.id)))


def ask(services: Any, name: str) -> bool:
    sent = services.password_reset.request_reset(name, address="192.0.2.7")
    services.session.commit()
    return bool(sent)


def last_link(services: Any) -> str:
    match = LINK.search(mails(services)[-1].body)
    assert match, mails(services)[-1].body
    return match.group(1)


def events(services: Any, kind: str) -> list[AuditEvent]:
    return list(services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == kind)
                                         .order_by(AuditEvent.seq)))


def test_a_request_mails_a_link_that_works_and_stores_only_its_hash(services, people):
    assert ask(services, "rita")
    [mail] = mails(services)
    assert mail.recipient == "Rita@Example.test" and mail.subject == "Reset your processdesk password"
    assert "within 30 minutes" in mail.body
    token = last_link(services)
    assert services.password_reset.link_user(token).username == "rita"
    [row] = services.session.scalars(select(PasswordResetToken)).all()
    assert token not in (row.token_hash,) and len(row.token_hash) == 64
    assert row.expires_at - row.created_at == timedelta(minutes=30)


def test_the_mail_is_in_the_users_language(services, people):
    assert ask(services, "lin")
    [mail] = mails(services)
    assert mail.subject == "重置您的 processdesk 密码"
    assert "30 分钟内打开此链接" in mail.body and LINK.search(mail.body)


def test_a_name_is_a_username_in_any_case_or_the_address_of_exactly_one_user(services, people):
    assert ask(services, "RITA")
    assert ask(services, "rita@example.TEST")
    assert [m.recipient for m in mails(services)] == ["Rita@Example.test"] * 2
    assert not ask(services, "shared@example.test")  # two accounts: ambiguous, nothing sent
    assert len(mails(services)) == 2


@pytest.mark.parametrize("name", ["nobody", "leaver", "leaver@example.test", "nomail", "", "x" * 300])
def test_no_mail_and_no_link_for_unknown_inactive_or_addressless_accounts(services, people, name):
    assert not ask(services, name)
    assert mails(services) == [] and services.session.scalars(select(PasswordResetToken)).all() == []
    assert events(services, "password_reset_requested") == []


def test_a_link_works_once(services, people):
    ask(services, "rita")
    token = last_link(services)
    services.password_reset.complete_reset(token, NEW)
    services.session.commit()
    assert services.users.check_password("rita", NEW).username == "rita"
    with pytest.raises(NotFound) as again:
        services.password_reset.complete_reset(token, "yet-another-password")
    assert again.value.code == ENDED_LINK
    services.session.rollback()
    assert services.users.check_password("rita", NEW).username == "rita"


def test_a_link_expires_by_the_clock(services, people, clock):
    ask(services, "rita")
    token = last_link(services)
    clock.advance(timedelta(minutes=29, seconds=59))
    assert services.password_reset.link_user(token).username == "rita"
    clock.advance(timedelta(seconds=1))
    with pytest.raises(NotFound) as ended:
        services.password_reset.link_user(token)
    assert ended.value.code == ENDED_LINK
    with pytest.raises(NotFound):
        services.password_reset.complete_reset(token, NEW)


def test_the_lifetime_is_a_setting(services, people, app, clock):
    app.extensions["processdesk"].runtime.config["PASSWORD_RESET_MINUTES"] = 5
    services.__dict__.pop("password_reset", None)  # built again with the new setting
    ask(services, "rita")
    token = last_link(services)
    assert "within 5 minutes" in mails(services)[-1].body
    clock.advance(timedelta(minutes=5))
    with pytest.raises(NotFound):
        services.password_reset.link_user(token)


@pytest.mark.parametrize("value", [0, 1441, "soon", True])
def test_a_bad_lifetime_setting_is_refused_at_start(tmp_path, value):
    with pytest.raises(ValueError, match="PASSWORD_RESET_MINUTES"):
        create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "PASSWORD_RESET_MINUTES": value})
    assert DEFAULTS["PASSWORD_RESET_MINUTES"] == 30


def test_an_unknown_link_is_told_from_an_ended_one(services, people):
    for token in ("not-a-link", "", "x" * 500):
        with pytest.raises(NotFound) as unknown:
            services.password_reset.link_user(token)
        assert unknown.value.code == UNKNOWN_LINK


def test_a_new_link_ends_the_earlier_unused_ones(services, people):
    ask(services, "rita")
    first = last_link(services)
    ask(services, "rita")
    second = last_link(services)
    with pytest.raises(NotFound) as ended:
        services.password_reset.link_user(first)
    assert ended.value.code == ENDED_LINK
    assert services.password_reset.link_user(second).username == "rita"


def test_at_most_three_mails_per_user_an_hour(services, people, clock):
    assert [ask(services, "rita") for _ in range(4)] == [True, True, True, False]
    assert len(mails(services)) == 3
    assert ask(services, "lin")  # another user is not held back
    clock.advance(timedelta(minutes=59))
    assert not ask(services, "rita@example.test")  # nor by asking by address
    clock.advance(timedelta(minutes=2))
    assert ask(services, "rita")
    assert len([m for m in mails(services) if m.recipient == "Rita@Example.test"]) == 4


def test_a_refused_password_keeps_the_link_usable(services, people):
    ask(services, "rita")
    token = last_link(services)
    for bad in ("short", "x" * 1025, None):
        with pytest.raises(ValidationFailed) as refused:
            services.password_reset.complete_reset(token, bad)
        assert set(refused.value.details["fields"]) == {"new_password"}
        services.session.rollback()
    assert services.password_reset.link_user(token).username == "rita"
    assert services.users.check_password("rita", OLD).username == "rita"


def test_the_reset_ends_every_session_and_api_token(services, people):
    rita = people["rita"]
    session_id = services.users.start_web_session(rita, forget_after_seconds=3600)
    api_token = services.users.issue_token(rita)["token"]
    services.session.commit()
    ask(services, "rita")
    services.password_reset.complete_reset(last_link(services), NEW, address="192.0.2.7")
    services.session.commit()
    with pytest.raises(Unauthorized):
        services.users.user_for_web_session(session_id, idle_seconds=3600, absolute_seconds=3600)
    with pytest.raises(Unauthorized):
        services.users.user_for_token(api_token)
    ended = [e.payload for e in events(services, "signed_out")]
    assert ended and ended[-1]["reason"] == "password_reset"


def test_a_password_change_or_deactivation_meanwhile_ends_the_link(services, people):
    ask(services, "rita")
    token = last_link(services)
    services.users.change_own_password(people["rita"], OLD, "changed-by-rita-1")
    services.session.commit()
    with pytest.raises(NotFound):
        services.password_reset.link_user(token)
    ask(services, "lin")
    token = last_link(services)
    services.users.update_user(None, "lin", {"active": False})
    services.session.commit()
    with pytest.raises(NotFound):
        services.password_reset.link_user(token)


def test_both_steps_are_audited_without_the_link(services, people):
    ask(services, "rita")
    token = last_link(services)
    services.password_reset.complete_reset(token, NEW, address="192.0.2.8")
    services.session.commit()
    [asked] = events(services, "password_reset_requested")
    [done] = events(services, "password_reset_done")
    assert asked.actor == "anonymous" and asked.payload["username"] == "rita" and asked.payload["address"] == "192.0.2.7"
    assert done.actor == "rita" and done.payload["address"] == "192.0.2.8"
    row_hash = services.session.scalar(select(PasswordResetToken.token_hash))
    everything = json.dumps([e.payload for e in services.session.scalars(select(AuditEvent))])
    assert token not in everything and row_hash not in everything
    assert services.audit.verify().ok


@pytest.mark.parametrize("value", [-0.1, 5.5, "slow", True])
def test_a_bad_answer_time_setting_is_refused_at_start(tmp_path, value):
    with pytest.raises(ValueError, match="PASSWORD_RESET_ANSWER_SECONDS"):
        create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "PASSWORD_RESET_ANSWER_SECONDS": value})
    assert DEFAULTS["PASSWORD_RESET_ANSWER_SECONDS"] == 0.3
