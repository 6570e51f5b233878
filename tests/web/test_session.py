"""Signing in and out: cookie flags, CSRF, the login rate limit, idle and absolute timeouts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.errors import Unauthorized
from app.models import AuditEvent, LoginFailure, User, WebSession
from tests.conftest import sent_statements
from tests.web.conftest import PASSWORD, text_of


def session_cookie(web):
    return web.client.get_cookie("session").value


def browser_with(web_factory, cookie):
    """Another browser holding a copy of someone's session cookie."""
    other = web_factory()
    other.client.set_cookie("session", cookie)
    return other


def test_login_page_binds_its_labels_and_sends_security_headers(web, desk):
    page = web.get("/login")
    assert page.status_code == 200
    body = text_of(page)
    assert '<label for="username">' in body and 'id="username"' in body
    assert '<label for="password">' in body and 'id="password"' in body
    assert 'name="csrf_token"' in body
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in page.headers  # plain HTTP: a browser would ignore it


def test_sign_in_sets_an_httponly_lax_cookie_and_goes_where_the_user_was_heading(web, desk):
    first = web.get("/tasks?tab=queue")
    assert first.status_code == 302 and first.headers["Location"].startswith("/login?next=")
    response = web.post("/login", {"username": "alex", "password": PASSWORD, "next": "/tasks?tab=queue"})
    assert response.status_code == 302 and response.headers["Location"] == "/tasks?tab=queue"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    home = web.get("/")
    assert home.status_code == 200 and "alex" in text_of(home)


def test_the_cookie_is_secure_under_https(app, desk):
    from tests.web.conftest import WebClient

    web = WebClient(app.test_client())
    page = web.get("/login", base_url="https://desk.example")
    assert "Secure" in page.headers["Set-Cookie"]
    app.config["PREFERRED_URL_SCHEME"] = "https"
    plain = WebClient(app.test_client()).get("/login")
    assert "Secure" in plain.headers["Set-Cookie"]


def test_a_site_served_over_https_tells_browsers_to_keep_to_it(app, client, desk):
    from tests.web.conftest import WebClient

    page = WebClient(app.test_client()).get("/login", base_url="https://desk.example")
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    api = client.get("/api/v1/health", base_url="https://desk.example")
    assert api.headers["Strict-Transport-Security"] == "max-age=31536000"
    app.config["PREFERRED_URL_SCHEME"] = "https"  # TLS ends at a proxy in front of the site
    assert "Strict-Transport-Security" in WebClient(app.test_client()).get("/login").headers


def test_a_wrong_password_keeps_the_name_and_says_why_without_saying_which(web, desk):
    response = web.post("/login", {"username": "alex", "password": "nope"})
    assert response.status_code == 401
    body = text_of(response)
    assert "Unknown user or wrong password." in body and 'value="alex"' in body
    assert text_of(web.post("/login", {"username": "nobody-here", "password": "nope"})).count(
        "Unknown user or wrong password.") == 1
    assert web.get("/").status_code == 302


def test_next_never_leaves_the_site(web, desk):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example"):
        response = web.post("/login", {"username": "alex", "password": PASSWORD, "next": target})
        assert response.headers["Location"] == "/", target
        web.logout()


def test_logout_is_a_post_with_the_csrf_token(web, desk):
    web.login("alex")
    assert web.get("/logout").status_code == 405
    refused = web.post("/logout", csrf=False)
    assert refused.status_code == 403 and "Form expired" in text_of(refused)
    assert web.get("/").status_code == 200
    done = web.logout()
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert web.get("/").status_code == 302
    assert "You have signed out." in text_of(web.get("/login"))


def test_a_post_with_a_wrong_token_changes_nothing(web, desk):
    number = desk.start("rita", "incident_management", {"title": "Printer", "description": "Jammed", "category": "hardware",
                                                        "impact": "low", "urgency": "low"})["data"]["record_number"]
    task_id = desk.task_id(number, "triage")
    web.login("alex")
    refused = web.post(f"/tasks/{task_id}/claim", {"csrf_token": "forged"})
    assert refused.status_code == 403
    assert desk.record(number)["open_tasks"][0]["claimed_by"] is None
    assert web.post(f"/tasks/{task_id}/claim").status_code == 302
    assert desk.record(number)["open_tasks"][0]["claimed_by"] == "alex"


def test_five_failures_lock_the_name_for_the_window_then_it_works_again(web, desk, clock):
    for _ in range(5):
        assert web.post("/login", {"username": "alex", "password": "wrong"}).status_code == 401
    locked = web.post("/login", {"username": "alex", "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == 300
    assert "Too many failed sign-in attempts. Try again in 5 minutes." in text_of(locked)
    assert web.get("/").status_code == 302
    clock.advance(timedelta(minutes=4))
    assert web.post("/login", {"username": "alex", "password": PASSWORD}).status_code == 429
    clock.advance(timedelta(minutes=1, seconds=1))
    web.login("alex")


def test_the_limit_per_name_does_not_lock_other_names_but_the_address_limit_does(app, web_factory, desk):
    app.extensions["processdesk_web"].ip_limiter.max_failures = 7
    web = web_factory()
    for _ in range(5):
        web.post("/login", {"username": "alex", "password": "wrong"})
    assert web.post("/login", {"username": "alex", "password": PASSWORD}).status_code == 429
    web.login("nina")
    web.logout()
    for _ in range(2):
        assert web.post("/login", {"username": "rita", "password": "wrong"}).status_code == 401
    assert web.post("/login", {"username": "mona", "password": PASSWORD}).status_code == 429


def test_an_idle_session_ends_after_the_idle_timeout(web, desk, clock):
    web.login("alex")
    clock.advance(timedelta(minutes=29))
    assert web.get("/").status_code == 200
    clock.advance(timedelta(minutes=29))
    assert web.get("/tasks").status_code == 200  # each page view is activity
    clock.advance(timedelta(minutes=31))
    expired = web.get("/tasks")
    assert expired.status_code == 302 and expired.headers["Location"] == "/login?next=/tasks"
    assert "Your session has expired. Please sign in again." in text_of(web.get("/login"))
    assert web.get("/").status_code == 302


def test_a_busy_session_still_ends_after_the_absolute_timeout(web, desk, clock):
    web.login("alex")
    for _ in range(12 * 3):  # every 20 minutes for 12 hours
        clock.advance(timedelta(minutes=20))
        assert web.get("/").status_code == 200
    clock.advance(timedelta(minutes=1))
    assert web.get("/").status_code == 302


def test_timeouts_and_limits_come_from_the_config(database_url, clock):
    from app import create_app
    from tests.conftest import TEST_CONFIG

    configured = create_app({**TEST_CONFIG, "DATABASE_URL": database_url, "WEB_IDLE_MINUTES": 5,
                             "WEB_ABSOLUTE_HOURS": 1, "WEB_LOGIN_MAX_FAILURES": 3,
                             "WEB_LOGIN_MAX_FAILURES_PER_IP": 9, "WEB_LOGIN_WINDOW_SECONDS": 60}, clock=clock)
    state = configured.extensions["processdesk_web"]
    configured.extensions["processdesk"].db_engine.dispose()
    assert (state.idle_seconds, state.absolute_seconds) == (300, 3600)
    assert (state.user_limiter.max_failures, state.ip_limiter.max_failures) == (3, 9)
    assert state.user_limiter.window == state.ip_limiter.window == 60


def test_a_password_change_ends_every_session(web, desk, services):
    web.login("alex")
    services.users.reset_password(None, "alex", "a-new-password-99")
    services.session.commit()
    assert web.get("/").status_code == 302
    web.login("alex", "a-new-password-99")


def test_a_copy_of_the_cookie_is_refused_after_signing_out(web, web_factory, desk):
    web.login("alex")
    saved = session_cookie(web)
    assert browser_with(web_factory, saved).get("/tasks").status_code == 200
    web.logout()
    replayed = browser_with(web_factory, saved).get("/tasks")
    assert replayed.status_code == 302 and replayed.headers["Location"] == "/login?next=/tasks"


def test_signing_out_ends_that_session_only(web_factory, desk, services):
    laptop, phone = web_factory(), web_factory()
    laptop.login("alex")
    phone.login("alex")
    laptop.logout()
    assert laptop.get("/").status_code == 302
    assert phone.get("/").status_code == 200
    rows = services.session.scalars(select(WebSession).order_by(WebSession.id)).all()
    assert [(r.end_reason, r.ended_at is not None) for r in rows] == [("signed_out", True), (None, False)]
    assert all(len(r.token_hash) == 64 for r in rows)  # the cookie's id is not stored, only its hash
    assert session_cookie(phone) and rows[1].token_hash not in session_cookie(phone)


def test_signing_in_again_ends_the_browser_s_previous_session(web, web_factory, desk):
    web.login("alex")
    saved = session_cookie(web)
    web.login("nina")
    assert browser_with(web_factory, saved).get("/").status_code == 302
    assert "nina" in text_of(web.get("/"))


def test_a_password_change_ends_copies_of_the_cookie_too(web, web_factory, desk, services):
    web.login("alex")
    saved = session_cookie(web)
    services.users.reset_password(None, "alex", "a-new-password-99")
    services.session.commit()
    assert browser_with(web_factory, saved).get("/").status_code == 302
    assert web.get("/").status_code == 302
    ended = services.session.scalars(select(WebSession)).one()
    assert ended.end_reason == "password_changed"


def test_deactivating_a_user_ends_their_sessions(web, desk, services):
    web.login("alex")
    services.session.scalars(select(User).where(User.username == "alex")).one().active = False
    services.session.commit()
    assert web.get("/").status_code == 302


def test_a_page_view_reads_its_session_once_and_writes_it_at_most_once_a_minute(web, desk, clock, connection):
    web.login("alex")
    with sent_statements(connection) as sent:
        assert web.get("/tasks").status_code == 200
    touching = [s for s in sent if "web_session" in s]
    assert len(touching) == 1 and touching[0].startswith("SELECT"), touching
    clock.advance(timedelta(minutes=2))
    with sent_statements(connection) as sent:
        assert web.get("/tasks").status_code == 200
        assert web.get("/tasks").status_code == 200
    touching = [s for s in sent if "web_session" in s]
    assert [s.split()[0] for s in touching] == ["SELECT", "UPDATE", "SELECT"], touching


def test_the_server_side_session_keeps_both_timeouts(desk, services, clock):
    alex = services.users.get_by_username("alex")
    limits = {"idle_seconds": 30 * 60, "absolute_seconds": 12 * 3600}
    idle = services.users.start_web_session(alex, forget_after_seconds=12 * 3600)
    assert services.users.user_for_web_session(idle, **limits) is alex
    clock.advance(timedelta(minutes=32))
    with pytest.raises(Unauthorized) as expired:
        services.users.user_for_web_session(idle, **limits)
    assert expired.value.code == "session_expired"
    busy = services.users.start_web_session(alex, forget_after_seconds=12 * 3600)
    for _ in range(12 * 3):
        clock.advance(timedelta(minutes=20))
        services.users.user_for_web_session(busy, **limits)
    clock.advance(timedelta(minutes=1))
    with pytest.raises(Unauthorized):
        services.users.user_for_web_session(busy, **limits)
    with pytest.raises(Unauthorized):
        services.users.user_for_web_session("made-up", **limits)
    # Sessions not seen for longer than the absolute timeout are forgotten at the next sign-in:
    # the idle one goes, the busy one (seen a minute ago) stays.
    services.users.start_web_session(alex, forget_after_seconds=12 * 3600)
    rows = services.session.scalars(select(WebSession).where(WebSession.user_id == alex.id)).all()
    assert len(rows) == 2 and min(r.seen_at for r in rows) == clock.now() - timedelta(minutes=1)


def test_failed_sign_ins_on_the_pages_and_the_api_share_one_limit(web, desk):
    for _ in range(3):
        assert web.post("/login", {"username": "alex", "password": "wrong"}).status_code == 401
    for _ in range(2):
        assert web.client.post("/api/v1/auth/token", json={"username": "alex", "password": "wrong"}).status_code == 401
    assert web.post("/login", {"username": "alex", "password": PASSWORD}).status_code == 429
    refused = web.client.post("/api/v1/auth/token", json={"username": "alex", "password": PASSWORD})
    assert refused.status_code == 429 and refused.get_json()["error"] == "too_many_requests"


def test_the_stylesheet_is_served_without_signing_in(web):
    css = web.get("/assets/css/app.css")
    assert css.status_code == 200 and css.mimetype == "text/css" and b":focus-visible" in css.data
    assert 'href="/assets/css/app.css"' in text_of(web.get("/login"))


# -- the audit trail of signing in and out ------------------------------------------------------------


def sign_in_events(services, *types):
    services.session.rollback()
    return [(e.event_type, e.actor, e.payload) for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type.in_(types)).order_by(AuditEvent.seq))]


def test_signing_in_and_out_is_in_the_audit_trail_with_the_address(web, desk, services):
    web.login("alex")
    web.logout()
    events = sign_in_events(services, "signed_in", "signed_out")
    assert [(kind, actor) for kind, actor, _payload in events] == [("signed_in", "alex"), ("signed_out", "alex")]
    signed_in, signed_out = events[0][2], events[1][2]
    assert signed_in["channel"] == "web" and signed_in["address"] == "127.0.0.1"
    assert signed_out["reason"] == "signed_out" and signed_out["session"] == signed_in["session"]
    # The audit trail names the session by a piece of its hash, never by the cookie's id.
    row = services.session.scalars(select(WebSession)).one()
    assert row.token_hash.startswith(signed_in["session"]) and len(signed_in["session"]) == 12


def test_a_timed_out_session_is_audited_as_expired_when_it_comes_back(web, desk, services, clock):
    web.login("alex")
    clock.advance(timedelta(minutes=31))
    assert web.get("/tasks").status_code == 302
    ended = sign_in_events(services, "signed_out")
    assert [(actor, payload["reason"]) for _kind, actor, payload in ended] == [("alex", "expired")]
    assert services.session.scalars(select(WebSession)).one().end_reason == "expired"


def test_a_new_sign_in_and_a_password_change_audit_the_sessions_they_end(web, web_factory, desk, services):
    web.login("alex")
    web.login("alex")  # again in the same browser: the first session is replaced
    other = web_factory()
    other.login("alex")
    services.users.reset_password(None, "alex", "a-new-password-99")
    services.session.commit()
    reasons = [payload["reason"] for _kind, _actor, payload in sign_in_events(services, "signed_out")]
    assert reasons == ["replaced", "password_changed", "password_changed"]


def test_the_failure_that_locks_a_name_is_audited_once(web, desk, services):
    for _ in range(5):
        web.post("/login", {"username": "alex", "password": "wrong"})
    for _ in range(3):
        assert web.post("/login", {"username": "alex", "password": "wrong"}).status_code == 429
    locked = sign_in_events(services, "sign_in_locked")
    assert len(locked) == 1
    kind, actor, payload = locked[0]
    assert actor == "system" and payload["username"] == "alex" and payload["limits"] == ["name"]
    assert payload["address"] == "127.0.0.1" and payload["retry_after"] == 300
    # Every failed attempt before the lockout is a refusal in the trail too (and none after it).
    refusals = [p for _k, _a, p in sign_in_events(services, "access_denied") if p.get("action") == "login"]
    assert len(refusals) == 5 and {(p["username"], p["address"]) for p in refusals} == {("alex", "127.0.0.1")}


def test_an_api_token_and_an_api_lockout_are_audited_with_the_address(web, desk, services):
    assert web.client.post("/api/v1/auth/token", json={"username": "alex", "password": PASSWORD}).status_code == 200
    for _ in range(5):
        web.client.post("/api/v1/auth/token", json={"username": "nina", "password": "wrong"})
    issued = sign_in_events(services, "token_issued")
    assert issued[-1][1] == "alex" and issued[-1][2] == {"channel": "api", "address": "127.0.0.1",
                                                         "token_id": issued[-1][2]["token_id"]}
    assert isinstance(issued[-1][2]["token_id"], int)
    assert [p["username"] for _k, _a, p in sign_in_events(services, "sign_in_locked")] == ["nina"]


def test_the_limit_holds_across_web_workers(app, web, desk, connection, clock, database_url):
    """Two applications on one database stand for two gunicorn workers: failures on either count."""
    from sqlalchemy.orm import sessionmaker

    from app import create_app
    from tests.conftest import TEST_CONFIG
    from tests.web.conftest import WebClient

    worker = create_app({**TEST_CONFIG, "DATABASE_URL": database_url}, clock=clock)
    ext = worker.extensions["processdesk"]
    ext.db_engine.dispose()
    ext.session_factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                                       expire_on_commit=False)
    other = WebClient(worker.test_client())
    for _ in range(3):
        assert web.post("/login", {"username": "alex", "password": "wrong"}).status_code == 401
    for _ in range(2):
        assert other.post("/login", {"username": "alex", "password": "wrong"}).status_code == 401
    assert web.post("/login", {"username": "alex", "password": PASSWORD}).status_code == 429
    assert other.post("/login", {"username": "alex", "password": PASSWORD}).status_code == 429
    clock.advance(timedelta(minutes=5, seconds=1))
    other.login("alex")


def failure_rows(services):
    """The login_failure rows, read without holding a transaction open under later requests."""
    rows = services.session.execute(select(LoginFailure.kind, LoginFailure.key)).all()
    services.session.rollback()
    return rows


def test_old_failures_leave_the_table(web, desk, services, clock):
    for name in ("ann", "bob", "cy"):
        web.post("/login", {"username": name, "password": "wrong"})
    assert len(failure_rows(services)) == 6  # the name's and the address's
    clock.advance(timedelta(minutes=6))
    for _ in range(5):  # the fifth locks "dora", which sweeps out every row past the window
        web.post("/login", {"username": "dora", "password": "wrong"})
    left = failure_rows(services)
    assert sorted(set(left)) == [("address", "127.0.0.1"), ("name", "dora")] and len(left) == 10
    web.login("nina")  # a success clears only its own name's failures
    assert len(failure_rows(services)) == 10


def test_an_auditors_home_does_not_send_her_to_the_group_queue(web, desk):
    """QA: an auditor's home page said "you do not work on tasks", then "Take a task from the
    group queue"."""
    web.login("aude")
    page = text_of(web.get("/"))
    assert "you do not work on tasks" in page and "Take a task from the group queue" not in page
    assert "Nothing is waiting for you." in page
    web.logout()
    web.login("alex")
    assert "Take a task from the group queue" in text_of(web.get("/"))


def test_every_page_says_its_times_are_utc(web, desk):
    """QA: record times had no time zone, while the forms' placeholders said UTC."""
    web.login("rita")
    assert "Times are shown in UTC." in text_of(web.get("/"))
    web.post("/language", {"lang": "zh_CN"})
    assert "时间均以 UTC 显示。" in text_of(web.get("/tickets"))
