"""Pooled PostgreSQL connections are pinged only after sitting idle (app/db.py ``_ping_when_idle``);
a dead one is replaced before use, and a request on one that died inside the window answers 503."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from app.db import make_engine
from app.errors import ServiceUnavailable
from app.unit_of_work import run_unit_of_work

URL = os.environ.get("TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not URL.startswith("postgresql"), reason="server connections: PostgreSQL only")


@pytest.fixture()
def admin() -> Iterator[Engine]:
    engine = create_engine(URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()


def counting_pings(engine: Engine) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection):  # type: ignore[no-untyped-def]
        pings.append(1)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


def test_a_connection_in_steady_use_is_not_pinged_one_left_idle_is():
    busy = make_engine(URL, ping_idle_seconds=3600)
    idle = make_engine(URL, ping_idle_seconds=0)
    try:
        busy_pings, idle_pings = counting_pings(busy), counting_pings(idle)
        for engine in (busy, idle):
            for _ in range(3):
                backend_pid(engine)
        assert busy_pings == []
        assert len(idle_pings) == 2  # every checkout but the first, of a new connection
    finally:
        busy.dispose()
        idle.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(admin):
    engine = make_engine(URL, ping_idle_seconds=0)
    try:
        first = backend_pid(engine)
        terminate(admin, first)
        second = backend_pid(engine)  # no error: the ping found the dead connection
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_that_died_inside_the_window_fails_once_with_503(admin, app):
    from app.services import Services

    engine = make_engine(URL, ping_idle_seconds=3600)
    ext = app.extensions["processdesk"]
    try:
        terminate(admin, backend_pid(engine))
        with app.app_context():
            from sqlalchemy.orm import Session

            services = Services(Session(engine), ext.runtime)
            with pytest.raises(ServiceUnavailable) as failed:
                run_unit_of_work(services, lambda: services.session.execute(text("SELECT 1")).scalar_one())
            assert failed.value.status == 503 and failed.value.code == "unavailable"
            services.session.close()
        # The pool was invalidated with it: the next request gets a fresh connection.
        assert backend_pid(engine) > 0
    finally:
        engine.dispose()


def test_without_the_ping_a_dead_connection_surfaces_as_invalidated(admin):
    engine = make_engine(URL, ping_idle_seconds=3600)
    try:
        terminate(admin, backend_pid(engine))
        with pytest.raises(OperationalError) as failed, engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert failed.value.connection_invalidated
    finally:
        engine.dispose()
