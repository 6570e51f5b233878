"""Two admins removing each other's admin role at once: one wins, the other is refused, and an
active admin remains (SQLite file or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.errors import Conflict, PermissionDenied
from app.models import Role, User, UserRole
from app.unit_of_work import run_unit_of_work
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url


@pytest.fixture()
def live_app(tmp_path: Any) -> Any:
    url = fresh_database_url(tmp_path, "adminrace")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    ext = application.extensions["processdesk"]
    svc = ext.services()
    for name in ("ada", "bea"):
        svc.users.create_user(name, "password-1234", roles=["admin"])
    svc.session.commit()
    svc.session.close()
    yield application
    ext.db_engine.dispose()
    drop_fresh_database(url)


def race(ext: Any) -> list[Any]:
    """ada demotes bea while bea demotes ada, released together; each one's outcome."""
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def demote(i: int, actor_name: str, target_name: str) -> None:
        svc = ext.services()
        try:
            actor = svc.users.get_by_username(actor_name)
            svc.session.commit()
            barrier.wait()
            run_unit_of_work(svc, lambda: svc.users.update_user(actor, target_name, {"roles": ["agent"]}))
            outcomes[i] = "demoted"
        except (Conflict, PermissionDenied) as err:  # refused: no admin left, or no longer an admin
            outcomes[i] = err.code
        except Exception as err:  # noqa: BLE001 - anything else is the failure this test is about
            outcomes[i] = repr(err)
        finally:
            svc.session.close()

    threads = [threading.Thread(target=demote, args=(0, "ada", "bea")),
               threading.Thread(target=demote, args=(1, "bea", "ada"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_two_admins_demoting_each_other_leave_one_admin(live_app: Any) -> None:
    ext = live_app.extensions["processdesk"]
    for _ in range(3):
        outcomes = race(ext)
        assert sorted(outcomes) in (["demoted", "last_admin"], ["conflict", "demoted"], ["demoted", "forbidden"]), outcomes
        svc = ext.services()
        admins = svc.session.scalars(select(User.username).join(UserRole, UserRole.user_id == User.id)
                                     .where(UserRole.role == Role.ADMIN, User.active.is_(True))).all()
        assert len(admins) == 1, admins
        # give the demoted one the role back for the next round
        survivor = svc.users.get_by_username(admins[0])
        other = "bea" if admins[0] == "ada" else "ada"
        svc.users.update_user(survivor, other, {"roles": ["admin"]})
        svc.session.commit()
        svc.session.close()
