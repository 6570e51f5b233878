"""A small, thread-safe map shared by every session, for what is parsed once per file content.

Start forms, start rights and record-value titles are derived from deployed files and keyed by
their content digests, so an entry never goes stale: a new deploy makes a new key. There are few
of them; when the map is full it is emptied rather than tracking use (the next reads refill it).
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[key] = value
