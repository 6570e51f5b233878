"""Who is signed in to the web pages: the session, its two timeouts, CSRF tokens, the login limit.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure under HTTPS). It holds the
user's id and name, the user's ``token_generation`` at sign-in (a password change bumps it and so
ends every session, like it revokes API tokens), the sign-in time and the last activity. Times come
from the application clock, so tests move them instead of sleeping.

Settings (``create_app({...})`` keys; documented in app/web/__init__.py):
``WEB_IDLE_MINUTES`` (30), ``WEB_ABSOLUTE_HOURS`` (12), ``WEB_LOGIN_MAX_FAILURES`` (5 per username),
``WEB_LOGIN_MAX_FAILURES_PER_IP`` (20 per client address: offices share one), ``WEB_LOGIN_WINDOW_SECONDS``
(300).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import Forbidden

from app.api import services
from app.errors import NotFound
from app.models import User

from .i18n import SESSION_KEY as LANGUAGE_KEY
from .ratelimit import LoginRateLimiter

CSRF_FIELD = "csrf_token"
_USER_KEYS = ("uid", "username", "gen", "login_at", "seen_at")


@dataclass
class WebState:
    """Per-application state of the web edge."""

    idle_seconds: float
    absolute_seconds: float
    user_limiter: LoginRateLimiter
    ip_limiter: LoginRateLimiter


class WebSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the Secure flag also set when the site is served over
    HTTPS (PREFERRED_URL_SCHEME=https, or this request came in over TLS)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE") or app.config.get("PREFERRED_URL_SCHEME") == "https":
            return True
        return has_request_context() and request.is_secure


class CsrfRefused(Forbidden):
    """A POST without the session's CSRF token (a forged request, or a form from an old session)."""


def init_auth(app: Flask) -> None:
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = WebSessionInterface()
    window = float(app.config.get("WEB_LOGIN_WINDOW_SECONDS", 300))
    app.extensions["processdesk_web"] = WebState(
        idle_seconds=float(app.config.get("WEB_IDLE_MINUTES", 30)) * 60,
        absolute_seconds=float(app.config.get("WEB_ABSOLUTE_HOURS", 12)) * 3600,
        user_limiter=LoginRateLimiter(int(app.config.get("WEB_LOGIN_MAX_FAILURES", 5)), window),
        ip_limiter=LoginRateLimiter(int(app.config.get("WEB_LOGIN_MAX_FAILURES_PER_IP", 20)), window),
    )


def web_state() -> WebState:
    return current_app.extensions["processdesk_web"]  # type: ignore[no-any-return]


def now_seconds() -> float:
    return float(current_app.extensions["processdesk"].runtime.clock.now().timestamp())


# -- the signed-in user ---------------------------------------------------------------------------


def current_user() -> User | None:
    """The signed-in user of this request, or None. Ends a session that timed out or was revoked
    (``g.session_expired`` then says so, for the sign-in page's message)."""
    if "web_user" not in g:
        g.web_user = _session_user()
    return g.web_user  # type: ignore[no-any-return]


def _session_user() -> User | None:
    uid = session.get("uid")
    if uid is None:
        return None
    now = now_seconds()
    state = web_state()
    try:
        login_at, seen_at = float(session["login_at"]), float(session["seen_at"])
        username, generation = str(session["username"]), int(session["gen"])
    except (KeyError, TypeError, ValueError):
        end_session()
        return None
    if now - login_at > state.absolute_seconds or now - seen_at > state.idle_seconds:
        end_session()
        g.session_expired = True
        return None
    try:
        user = services().users.get_by_username(username)
    except NotFound:
        user = None
    if user is None or user.id != uid or not user.active or user.token_generation != generation:
        end_session()
        return None
    session["seen_at"] = now
    return user


def start_session(user: User) -> None:
    """Sign ``user`` in: a fresh session (new CSRF token), keeping only the language choice."""
    language = session.get(LANGUAGE_KEY)
    session.clear()
    if language:
        session[LANGUAGE_KEY] = language
    now = now_seconds()
    session.update(uid=user.id, username=user.username, gen=user.token_generation, login_at=now, seen_at=now,
                   **{CSRF_FIELD: secrets.token_urlsafe(32)})
    g.web_user = user


def end_session() -> None:
    """Sign out: forget everything but the language choice."""
    language = session.get(LANGUAGE_KEY)
    session.clear()
    if language:
        session[LANGUAGE_KEY] = language
    g.web_user = None


# -- CSRF -----------------------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token (created on first use); every form carries it in a hidden field."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return str(token)


def check_csrf() -> None:
    """Raise CsrfRefused unless the posted token is this session's."""
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(str(expected).encode(), sent.encode()):
        raise CsrfRefused()


# -- login rate limit -----------------------------------------------------------------------------


def _name_key(username: str) -> str:
    return username.strip().lower()


def _address_key() -> str:
    # The address the WSGI server saw: behind a reverse proxy, deploy with werkzeug's ProxyFix so
    # that it is the browser's address, not the proxy's.
    return request.remote_addr or "-"


def login_retry_after(username: str) -> int:
    """Seconds until this name may be tried again from this address; 0 if it may now."""
    state, now = web_state(), now_seconds()
    return max(state.user_limiter.retry_after([_name_key(username)], now),
               state.ip_limiter.retry_after([_address_key()], now))


def record_login_failure(username: str) -> None:
    state, now = web_state(), now_seconds()
    state.user_limiter.record_failure([_name_key(username)], now)
    state.ip_limiter.record_failure([_address_key()], now)


def record_login_success(username: str) -> None:
    # Only the name's count is cleared: clearing the address's count would let one valid account
    # reset the limit for guesses at all the others from the same address.
    web_state().user_limiter.reset(_name_key(username))


def safe_next(target: Any) -> str | None:
    """A path on this site to go back to after signing in, or None (no open redirects).

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so "/\\t/evil"
    would become "//evil": anything with whitespace, control characters or backslashes is refused.
    """
    if not isinstance(target, str) or not target.startswith("/") or len(target) > 2000:
        return None
    if target.startswith("//") or "\\" in target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    return target
