"""Failed sign-in attempts per username and per client address, over a sliding window.

One ``LoginThrottle`` per application (``login_throttle()``) serves both ways of signing in: the
web form (app/web/auth.py) and ``POST /api/v1/auth/token`` (app/api/auth.py). A failure on either
counts against both, so switching between them gains an attacker nothing. Its settings are the
``WEB_LOGIN_*`` keys documented in app/web/__init__.py.

In memory and per process: with several web workers each keeps its own counts, so the effective
limit is the per-process limit times the number of workers. A shared store (the database or a
cache) would be needed to make it exact across processes; one process is what `make run` serves.
Thread-safe: werkzeug and gunicorn's threaded workers call it from many threads. The check and
the recording of a failure are two steps, so attempts already in flight when the limit is reached
still finish (at most one per request thread).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable

from flask import Flask, current_app, request

#: ``app.extensions`` key of the application's LoginThrottle.
EXTENSION_KEY = "processdesk_login_throttle"

# Keys with no failure inside the window are dropped once this many are tracked, so a flood of
# made-up usernames cannot grow the table without bound.
_PRUNE_ABOVE = 10_000


class LoginRateLimiter:
    def __init__(self, max_failures: int, window_seconds: float) -> None:
        self.max_failures = max(1, int(max_failures))
        self.window = float(window_seconds)
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str], now: float) -> int:
        """Seconds until every key may try again; 0 when none is blocked."""
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    # The oldest failure that still counts has to leave the window first.
                    wait = max(wait, times[len(times) - self.max_failures] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def record_failure(self, keys: Iterable[str], now: float) -> bool:
        """Count a failure against ``keys``; True when it made one of them reach the limit."""
        reached = False
        with self._lock:
            if len(self._failures) > _PRUNE_ABOVE:
                for key in list(self._failures):
                    self._recent(key, now)  # drops the key when nothing in it still counts
            for key in keys:
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                reached = reached or len(times) == self.max_failures
                # Only the last max_failures entries ever decide; older ones are noise.
                while len(times) > self.max_failures:
                    times.popleft()
        return reached

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times


class LoginThrottle:
    """The two sign-in limits of one application: per username and per client address."""

    def __init__(self, by_name: LoginRateLimiter, by_address: LoginRateLimiter) -> None:
        self.by_name = by_name
        self.by_address = by_address

    def retry_after(self, username: str, address: str, now: float) -> int:
        """Seconds until ``username`` may be tried again from ``address``; 0 if it may now.
        Checked before the password, so that the right one is refused too while locked."""
        return max(self.by_name.retry_after([name_key(username)], now),
                   self.by_address.retry_after([address], now))

    def record_failure(self, username: str, address: str, now: float) -> list[str]:
        """Count a failed attempt; returns which limits it made reach their maximum ("name",
        "address"), for the audit trail."""
        locked = []
        if self.by_name.record_failure([name_key(username)], now):
            locked.append("name")
        if self.by_address.record_failure([address], now):
            locked.append("address")
        return locked

    def record_success(self, username: str) -> None:
        # Only the name's count is cleared: clearing the address's count would let one valid account
        # reset the limit for guesses at all the others from the same address.
        self.by_name.reset(name_key(username))


def note_login_failure(username: str, address: str, now: float) -> None:
    """Count a failed sign-in (web or API) in the application's LoginThrottle. The failure that
    makes a limit reach its maximum is audited as ``sign_in_locked``, once per lockout: the refusals
    that follow are not, so that a flood of guesses cannot flood the audit trail."""
    from app.api import services, unit_of_work  # the API package imports this module

    throttle = login_throttle()
    locked = throttle.record_failure(username, address, now)
    if locked:
        svc = services()
        wait = throttle.retry_after(username, address, now)
        unit_of_work(lambda: svc.audit.record("sign_in_locked", None, payload={
            "username": username[:128], "address": address, "limits": locked, "retry_after": wait}))


def name_key(username: str) -> str:
    return username.strip().lower()


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
            LoginRateLimiter(int(app.config.get("WEB_LOGIN_MAX_FAILURES", 5)), window),
            LoginRateLimiter(int(app.config.get("WEB_LOGIN_MAX_FAILURES_PER_IP", 20)), window),
        )
        app.extensions[EXTENSION_KEY] = throttle
    return throttle
