"""Wrong sign-in codes sent at the same moment, through a real database file and threads: the
account's count (under its row's lock; on SQLite the unit of work that lost the write lock runs
again) stops them at the limit: no 500, exactly WEB_LOGIN_MAX_FAILURES answered 401, the rest 429."""

from __future__ import annotations

import base64
import threading
from collections import Counter
from typing import Any

import pytest

from app import create_app
from app.clock import FrozenClock
from app.models import TwoStep
from app.services.two_step import step_at, totp
from tests.conftest import TEST_CONFIG, TEST_PASSWORD, drop_fresh_database, fresh_database_url


@pytest.fixture()
def desk(tmp_path: Any) -> Any:
    url = fresh_database_url(tmp_path, "two_step_burst")
    clock = FrozenClock()
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url}, clock=clock)
    ext = application.extensions["processdesk"]
    svc = ext.services()
    rita = svc.users.create_user("rita", TEST_PASSWORD, roles=["requester"])
    svc.session.commit()
    text = svc.two_step.begin(rita)["secret"]
    secret = base64.b32decode(text + "=" * (-len(text) % 8))
    svc.two_step.confirm(rita, TEST_PASSWORD, totp(secret, step_at(clock.now())))
    svc.session.commit()
    svc.session.close()
    yield application, secret, clock
    ext.db_engine.dispose()
    drop_fresh_database(url)


def test_a_burst_of_wrong_codes_stops_at_the_limit(desk: Any) -> None:
    application, secret, clock = desk
    near = {totp(secret, step_at(clock.now()) + steps) for steps in (-1, 0, 1)}
    guesses = [g for g in (f"{i:06d}" for i in range(100)) if g not in near][:8]
    statuses: list[int] = []
    lock, start = threading.Lock(), threading.Event()

    def guess(i: int) -> None:
        client = application.test_client()
        start.wait()
        # each from its own address, as a spread-out attacker would: the address limit plays no part
        answer = client.post("/api/v1/auth/token", json={"username": "rita", "password": TEST_PASSWORD,
                                                         "code": guesses[i]},
                             environ_base={"REMOTE_ADDR": f"10.0.0.{i + 1}"})
        with lock:
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(statuses) == {401: 5, 429: 3}, statuses
    svc = application.extensions["processdesk"].services()
    try:
        row = svc.session.get(TwoStep, svc.users.get_by_username("rita").id)
        assert row is not None and row.failures == 5
    finally:
        svc.session.close()
