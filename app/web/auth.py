"""Who is signed in to the web pages: the session, its two timeouts, CSRF tokens, the login limit.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure under HTTPS) naming a
server-side ``web_session`` row (app/models/user.py): the cookie holds a random session id, the
sign-in time and the last activity; the row, found by the id's hash, says whether the session is
still live. Every signed-in request reads that row (one indexed lookup), so signing out ends the
session for every copy of the cookie, and a password change (which bumps the user's
``token_generation``, like it revokes API tokens) or a deactivation ends all the user's sessions.
Times come from the application clock, so tests move them instead of sleeping.

Settings (``create_app({...})`` keys; documented in app/web/__init__.py):
``WEB_IDLE_MINUTES`` (30), ``WEB_ABSOLUTE_HOURS`` (12), ``WEB_LOGIN_MAX_FAILURES`` (5 per username),
``WEB_LOGIN_MAX_FAILURES_PER_IP`` (20 per client address: offices share one), ``WEB_LOGIN_WINDOW_SECONDS``
(300). The login limit is shared with the API's sign-in (app/web/ratelimit.py).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import Forbidden

from app.api import services, unit_of_work
from app.errors import Unauthorized
from app.models import User

from . import ratelimit
from .i18n import SESSION_KEY as LANGUAGE_KEY
from .ratelimit import LoginRateLimiter, client_address, login_throttle

CSRF_FIELD = "csrf_token"
#: The cookie's key for the session id (the server-side web_session row).
SESSION_ID_KEY = "sid"


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
    throttle = login_throttle(app)
    app.extensions["processdesk_web"] = WebState(
        idle_seconds=float(app.config.get("WEB_IDLE_MINUTES", 30)) * 60,
        absolute_seconds=float(app.config.get("WEB_ABSOLUTE_HOURS", 12)) * 3600,
        user_limiter=throttle.by_name,
        ip_limiter=throttle.by_address,
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
    token = session.get(SESSION_ID_KEY)
    if token is None:
        if "uid" in session:  # a cookie from before sessions were rows: sign in again
            end_session(revoke=False)
        return None
    now = now_seconds()
    state = web_state()
    try:
        login_at, seen_at = float(session["login_at"]), float(session["seen_at"])
    except (KeyError, TypeError, ValueError):
        end_session()
        return None
    if now - login_at > state.absolute_seconds or now - seen_at > state.idle_seconds:
        if _script_read():
            # A page's script (a diagram, what a field suggests): it is told 401 and the cookie
            # stays as it is. Cleared here, it lost whose session it was and its form token, and
            # the comment the user then sent was not kept for after signing in (unsent_forms.py).
            return None
        # The row would expire by the same timeouts (up to a minute later); ending it now puts the
        # expiry in the audit trail. A session never visited again after it expired is not.
        end_session(reason="expired")
        g.session_expired = True
        return None
    svc = services()
    try:
        user = unit_of_work(lambda: svc.users.user_for_web_session(
            str(token), idle_seconds=state.idle_seconds, absolute_seconds=state.absolute_seconds))
    except Unauthorized as err:
        if _script_read():  # as above: the page's next form or page ends it, keeping what was typed
            return None
        expired = err.code == "session_expired"
        end_session(revoke=expired, reason="expired")
        g.session_expired = expired
        return None
    if not _script_read():
        session["seen_at"] = now
    return user


def _script_read() -> bool:
    """A page's script reading JSON (what a field suggests as its user types, a diagram): it
    leaves the cookie as it is. A cookie session is written whole: an answer to such a read,
    arriving after the form the user sent meanwhile, put back the session from before the form
    and lost its message ("Record INC-... was logged"). Pages and form posts keep the session
    alive; a script's read right after one of them needs not."""
    return request.method == "GET" and request.accept_mimetypes.best == "application/json"


def start_session(user: User, *, first: Callable[[], object] | None = None) -> None:
    """Sign ``user`` in: a new server-side session and a fresh cookie (new CSRF token), keeping
    only the language choice. A session this browser still had is ended. ``first`` runs in the
    same transaction before (a sign-in code used up): if it fails, nothing is signed in, nor
    written but what it asks to keep."""
    previous = session.get(SESSION_ID_KEY)
    state, svc = web_state(), services()

    def work() -> str:
        if first is not None:
            first()
        if previous:
            svc.users.end_web_session(str(previous), "replaced")
        return svc.users.start_web_session(user, forget_after_seconds=state.absolute_seconds,
                                           address=client_address())

    from . import unsent_forms  # it builds on this module

    token = unit_of_work(work)
    language = session.get(LANGUAGE_KEY)
    # a form this user sent after their last session ended goes on to the page it was on (only theirs)
    unsent = unsent_forms.carried(session.get(unsent_forms.KEY), user.id)
    session.clear()
    if language:
        session[LANGUAGE_KEY] = language
    if unsent is not None:
        session[unsent_forms.KEY] = unsent
    now = now_seconds()
    session.update({SESSION_ID_KEY: token, "login_at": now, "seen_at": now, CSRF_FIELD: secrets.token_urlsafe(32),
                    unsent_forms.OWNER_KEY: user.id})
    g.web_user = user


def end_session(*, revoke: bool = True, reason: str = "signed_out") -> None:
    """Sign out: end the server-side session for ``reason`` (unless ``revoke`` is False: it is known
    to be dead already) and forget everything in the cookie but the language choice."""
    token = session.get(SESSION_ID_KEY)
    if revoke and token:
        svc = services()
        unit_of_work(lambda: svc.users.end_web_session(str(token), reason))
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


def login_retry_after(username: str) -> int:
    """Seconds until this name may be tried again from this address; 0 if it may now."""
    return ratelimit.login_retry_after(username, client_address(), now_seconds())


def record_login_failure(username: str) -> None:
    ratelimit.note_login_failure(username, client_address(), now_seconds())


def record_login_success(username: str) -> None:
    ratelimit.note_login_success(username)


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
