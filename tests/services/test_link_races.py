"""Two people filing reversed links between the same records at once (INC-1 a duplicate of INC-2,
INC-2 of INC-1): one link is stored, the other is refused as the reverse of it, never both.
SQLite file or PostgreSQL (TEST_DATABASE_URL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from app import create_app
from app.errors import ValidationFailed
from app.models import TicketLink
from app.unit_of_work import run_unit_of_work
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url

ROUNDS = 3


@pytest.fixture()
def live_app(tmp_path: Any) -> Any:
    url = fresh_database_url(tmp_path, "linkrace")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    ext = application.extensions["processdesk"]
    svc = ext.services()
    alex = svc.users.create_user("alex", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    svc.session.commit()
    for i in range(1, 2 * ROUNDS + 1):
        svc.records.open_record("incident", f"INC-{i:06d}", alex, {"title": f"Record {i}"})
    svc.session.commit()
    svc.session.close()
    yield application
    ext.db_engine.dispose()
    drop_fresh_database(url)


def test_reversed_links_filed_at_once_store_one(live_app: Any) -> None:
    ext = live_app.extensions["processdesk"]
    for round_no in range(ROUNDS):
        first, second = f"INC-{2 * round_no + 1:06d}", f"INC-{2 * round_no + 2:06d}"
        barrier = threading.Barrier(2)
        outcomes: list[Any] = [None, None]

        def file(i: int, source: str, target: str, barrier: threading.Barrier = barrier,
                 outcomes: list[Any] = outcomes) -> None:
            svc = ext.services()
            try:
                alex = svc.users.get_by_username("alex")
                svc.session.commit()
                barrier.wait()
                run_unit_of_work(svc, lambda: svc.records.link_numbers(alex, source, target, "duplicate_of"))
                outcomes[i] = "linked"
            except ValidationFailed as err:
                outcomes[i] = err.code
            except Exception as err:  # noqa: BLE001 - anything else is the failure this test is about
                outcomes[i] = repr(err)
            finally:
                svc.session.close()

        threads = [threading.Thread(target=file, args=(0, first, second)),
                   threading.Thread(target=file, args=(1, second, first))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == ["link_reversed", "linked"], outcomes
    svc = ext.services()
    try:
        assert svc.session.scalar(select(func.count()).select_from(TicketLink)) == ROUNDS
    finally:
        svc.session.close()
