"""Two saves of one process from the same version at once: one deploys, the other is told which
version beat it (not a bare unique-key conflict). SQLite file or PostgreSQL (TEST_DATABASE_URL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from app import create_app
from app.errors import Conflict
from app.unit_of_work import run_unit_of_work
from tests.conftest import TEST_CONFIG, drop_fresh_database, fixture_files, fresh_database_url

SAVES = 4


@pytest.fixture()
def live_app(tmp_path: Any) -> Any:
    url = fresh_database_url(tmp_path, "deployrace")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    ext = application.extensions["processdesk"]
    svc = ext.services()
    svc.users.create_user("olga", "password-1234", roles=["process_owner"])
    svc.session.commit()
    svc.definitions.deploy(svc.users.get_by_username("olga"), fixture_files())
    svc.session.commit()
    svc.session.close()
    yield application
    ext.db_engine.dispose()
    drop_fresh_database(url)


def test_simultaneous_saves_from_one_version_name_the_winner(live_app: Any) -> None:
    ext = live_app.extensions["processdesk"]
    original = dict(fixture_files("simple_request.bpmn"))["simple_request.bpmn"]
    barrier = threading.Barrier(SAVES)
    outcomes: list[Any] = [None] * SAVES

    def save(i: int) -> None:
        svc = ext.services()
        try:
            olga = svc.users.get_by_username("olga")
            svc.session.commit()
            changed = original.replace(b'name="Simple request"', f'name="Simple request {i}"'.encode())
            barrier.wait()
            result = run_unit_of_work(svc, lambda: svc.definitions.deploy(
                olga, [("simple_request.bpmn", changed)], only_process="simple_request", base_version=1))
            outcomes[i] = ("deployed", [v.version for v in result.processes if v.process_id == "simple_request"])
        except Conflict as err:
            outcomes[i] = ("conflict", err.details)
        except Exception as err:  # noqa: BLE001 - anything else is the failure this test is about
            outcomes[i] = ("error", repr(err))
        finally:
            svc.session.close()

    threads = [threading.Thread(target=save, args=(i,)) for i in range(SAVES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    deployed = [o for o in outcomes if o and o[0] == "deployed"]
    conflicts = [o for o in outcomes if o and o[0] == "conflict"]
    assert deployed == [("deployed", [2])], outcomes
    assert len(conflicts) == SAVES - 1, outcomes
    for _, details in conflicts:
        assert details["base_version"] == 1 and details["latest_version"] == 2
        assert details["deployed_by"] == "olga"
