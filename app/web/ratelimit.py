"""Failed sign-in attempts per username and per client address, over a sliding window.

One ``LoginThrottle`` per application (``login_throttle()``) serves both ways of signing in: the
web form (app/web/auth.py) and ``POST /api/v1/auth/token`` (app/api/auth.py). A failure on either
counts against both, so switching between them gains an attacker nothing. Its settings are the
``WEB_LOGIN_*`` keys documented in app/web/__init__.py.

The failures are rows of ``login_failure`` (app/models/user.py), so the limit is the same however
many web workers serve the site. Each check is one indexed read; each failure an insert and a
delete of that key's rows that left the window. The check and the recording of a failure are two
transactions, so attempts already in flight when the limit is reached still finish (at most one
per concurrent request).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TypeVar

from flask import Flask, current_app, request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import LoginFailure

#: ``app.extensions`` key of the application's LoginThrottle.
EXTENSION_KEY = "processdesk_login_throttle"
#: ``app.extensions`` key of the per-address limit of "Forgot your password?" requests.
RESET_EXTENSION_KEY = "processdesk_reset_throttle"

#: Longest key stored (the column's width); longer names and addresses are cut to it.
MAX_KEY_LENGTH = 160

T = TypeVar("T")


class LoginRateLimiter:
    """At most ``max_failures`` failures per key (of one ``kind``) inside ``window`` seconds."""

    def __init__(self, kind: str, max_failures: int, window_seconds: float) -> None:
        self.kind = kind
        self.max_failures = max(1, int(max_failures))
        self.window = float(window_seconds)

    def retry_after(self, session: Session, keys: Iterable[str], now: float) -> int:
        """Seconds until every key may try again; 0 when none is blocked."""
        wait = 0.0
        for times in self._recent(session, keys, now).values():
            if len(times) >= self.max_failures:
                # The oldest failure that still counts has to leave the window first.
                wait = max(wait, times[len(times) - self.max_failures] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def record_failure(self, session: Session, keys: Iterable[str], now: float) -> bool:
        """Count a failure against ``keys``; True when it made one of them reach the limit."""
        keys = [_key(k) for k in keys]
        session.execute(delete(LoginFailure).where(
            LoginFailure.kind == self.kind, LoginFailure.key.in_(keys), LoginFailure.at <= now - self.window))
        session.add_all(LoginFailure(kind=self.kind, key=key, at=now) for key in keys)
        session.flush()
        reached = any(len(times) == self.max_failures for times in self._recent(session, keys, now).values())
        if reached:
            # Keys nobody tried again keep their rows until here: a flood of made-up names cannot
            # grow the table for longer than one window without locking something.
            session.execute(delete(LoginFailure).where(LoginFailure.at <= now - self.window))
        return reached

    def reset(self, session: Session, key: str) -> None:
        session.execute(delete(LoginFailure).where(LoginFailure.kind == self.kind, LoginFailure.key == _key(key)))

    def _recent(self, session: Session, keys: Iterable[str], now: float) -> dict[str, list[float]]:
        """Each key's failures inside the window, oldest first."""
        found: dict[str, list[float]] = {}
        rows = session.execute(select(LoginFailure.key, LoginFailure.at).where(
            LoginFailure.kind == self.kind, LoginFailure.key.in_([_key(k) for k in keys]),
            LoginFailure.at > now - self.window).order_by(LoginFailure.at))
        for key, at in rows:
            found.setdefault(key, []).append(at)
        return found


class LoginThrottle:
    """The two sign-in limits of one application: per username and per client address."""

    def __init__(self, by_name: LoginRateLimiter, by_address: LoginRateLimiter) -> None:
        self.by_name = by_name
        self.by_address = by_address

    def retry_after(self, session: Session, username: str, address: str, now: float) -> int:
        """Seconds until ``username`` may be tried again from ``address``; 0 if it may now.
        Checked before the password, so that the right one is refused too while locked."""
        return max(self.by_name.retry_after(session, [name_key(username)], now),
                   self.by_address.retry_after(session, [address], now))

    def record_failure(self, session: Session, username: str, address: str, now: float) -> list[str]:
        """Count a failed attempt; returns which limits it made reach their maximum ("name",
        "address"), for the audit trail."""
        locked = []
        if self.by_name.record_failure(session, [name_key(username)], now):
            locked.append("name")
        if self.by_address.record_failure(session, [address], now):
            locked.append("address")
        return locked

    def record_success(self, session: Session, username: str) -> None:
        # Only the name's count is cleared: clearing the address's count would let one valid account
        # reset the limit for guesses at all the others from the same address.
        self.by_name.reset(session, name_key(username))


# -- what the two sign-in edges call (each in a transaction of its own) ---------------------------


def _in_transaction(work: Callable[[Session], T]) -> T:
    from app.api import services, unit_of_work  # the API package imports this module

    svc = services()
    return unit_of_work(lambda: work(svc.session))


def login_retry_after(username: str, address: str, now: float) -> int:
    """Seconds until ``username`` may be tried again from ``address``; 0 if it may now."""
    throttle = login_throttle()
    return _in_transaction(lambda session: throttle.retry_after(session, username, address, now))


def note_login_failure(username: str, address: str, now: float) -> None:
    """Count a failed sign-in (web or API). The failure that makes a limit reach its maximum is
    audited as ``sign_in_locked``, once per lockout: the refusals that follow are not, so that a
    flood of guesses cannot flood the audit trail."""
    from app.api import services

    throttle, audit = login_throttle(), services().audit

    def work(session: Session) -> None:
        locked = throttle.record_failure(session, username, address, now)
        if locked:
            wait = throttle.retry_after(session, username, address, now)
            audit.record("sign_in_locked", None, payload={
                "username": username[:128], "address": address, "limits": locked, "retry_after": wait})

    _in_transaction(work)


def note_login_success(username: str) -> None:
    throttle = login_throttle()
    _in_transaction(lambda session: throttle.record_success(session, username))


def note_reset_request(address: str, now: float) -> bool:
    """Count a "Forgot your password?" request from ``address``; False when the address has
    made ``PASSWORD_RESET_MAX_PER_IP`` already within ``WEB_LOGIN_WINDOW_SECONDS`` (then nothing
    is sent; the page says what it says to everyone). Every request counts, whether it names an
    account or not, so the limit tells nothing either. The rows are ``login_failure`` rows of
    kind "reset", over the sign-in limits' window, so their pruning and purge are the same."""
    limiter = reset_throttle()

    def work(session: Session) -> bool:
        if limiter.retry_after(session, [address], now):
            return False
        limiter.record_failure(session, [address], now)
        return True

    return _in_transaction(work)


def reset_throttle(app: Flask | None = None) -> LoginRateLimiter:
    """The application's per-address limit of password reset requests, made on first use."""
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    limiter: LoginRateLimiter | None = app.extensions.get(RESET_EXTENSION_KEY)
    if limiter is None:
        limiter = LoginRateLimiter("reset", int(app.config.get("PASSWORD_RESET_MAX_PER_IP", 10)),
                                   float(app.config.get("WEB_LOGIN_WINDOW_SECONDS", 300)))
        app.extensions[RESET_EXTENSION_KEY] = limiter
    return limiter


def name_key(username: str) -> str:
    return username.strip().lower()


def _key(key: str) -> str:
    return key[:MAX_KEY_LENGTH]


def client_address() -> str:
    """This request's client address, the key of the per-address limit."""
    # The address the WSGI server saw: behind a reverse proxy, deploy with werkzeug's ProxyFix so
    # that it is the browser's address, not the proxy's.
    return request.remote_addr or "-"


def login_throttle(app: Flask | None = None) -> LoginThrottle:
    """The application's (by default the current one's) LoginThrottle, made from its config on
    first use: ``init_auth`` makes it while the application is built, before any request."""
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    throttle: LoginThrottle | None = app.extensions.get(EXTENSION_KEY)
    if throttle is None:
        window = float(app.config.get("WEB_LOGIN_WINDOW_SECONDS", 300))
        throttle = LoginThrottle(
            LoginRateLimiter("name", int(app.config.get("WEB_LOGIN_MAX_FAILURES", 5)), window),
            LoginRateLimiter("address", int(app.config.get("WEB_LOGIN_MAX_FAILURES_PER_IP", 20)), window),
        )
        app.extensions[EXTENSION_KEY] = throttle
    return throttle
