"""Opening a PostgreSQL connection gives up after ``connect_timeout`` (app/db.py ``make_engine``):
a server that takes the TCP connection and never answers does not hold a request for minutes.

The "server" is a socket on 127.0.0.1 that listens and never reads: the kernel completes the
handshake, libpq sends its start-up packet and waits for an answer that never comes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from app.db import make_engine


@pytest.fixture()
def silent_server() -> Iterator[int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def _connect_in_thread(url: str, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def connect() -> None:
        engine = make_engine(url, **kwargs)
        try:
            with engine.connect():
                outcome["connected"] = True
        except OperationalError as err:
            outcome["error"] = str(err.orig)
        finally:
            engine.dispose()

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    return thread, outcome


def test_a_server_that_never_answers_fails_the_connection(silent_server: int) -> None:
    thread, outcome = _connect_in_thread(f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/test",
                                         connect_timeout_seconds=2)
    thread.join(timeout=60)  # without a timeout libpq would wait for the server for good
    assert not thread.is_alive(), "the connection attempt is still waiting"
    assert "timeout" in outcome.get("error", "").lower(), outcome


def test_the_url_may_set_its_own_timeout(silent_server: int) -> None:
    """``?connect_timeout=`` in DATABASE_URL wins over the default (here a longer one: still waiting)."""
    thread, outcome = _connect_in_thread(f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/test"
                                         "?connect_timeout=30", connect_timeout_seconds=2)
    thread.join(timeout=5)
    assert thread.is_alive() and not outcome, outcome
