"""Failed sign-in attempts per username and per client address, over a sliding window.

In memory and per process: with several web workers each keeps its own counts, so the effective
limit is the per-process limit times the number of workers. A shared store (the database or a
cache) would be needed to make it exact across processes; one process is what `make run` serves.
Thread-safe: werkzeug and gunicorn's threaded workers call it from many threads.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable

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

    def record_failure(self, keys: Iterable[str], now: float) -> None:
        with self._lock:
            if len(self._failures) > _PRUNE_ABOVE:
                for key in list(self._failures):
                    self._recent(key, now)  # drops the key when nothing in it still counts
            for key in keys:
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                # Only the last max_failures entries ever decide; older ones are noise.
                while len(times) > self.max_failures:
                    times.popleft()

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
