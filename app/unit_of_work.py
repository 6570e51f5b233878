"""One transaction per call at every edge (request, CLI command, scheduler job).

Commits once on success; on a domain error rolls back, except that refused attempts are still
written to the audit chain, and a step that must persist its effect although the caller loses
(an interrupting timer beating a late submission) asks for a commit via ``commit_on_error``.
Database-level races become 409 ``conflict``, never 500; a dropped database connection becomes 503.

On SQLite a transaction that reads and then writes fails at once ("database is locked") when
another connection committed in between (its snapshot is stale; waiting would not help). Such a
unit of work runs once more, holding the write lock from its start (``begin_write``), so it
waits its turn instead of failing: a sign-in that lands on the scheduler's sweep, or twenty at
once, all succeed. The first attempt was rolled back whole (its audit events and inserted rows
go with it), so running the work again is safe.

The same holds on PostgreSQL for a unit of work that loses the instance's version check
(``StaleDataError``) to another transaction that committed first: it runs again, up to
``STALE_RETRIES`` times, on what that one committed, as SQLite would have run it after it. Work on
another task of the instance (three CAB members voting at once) then succeeds instead of being
refused as "changed by someone else" (a web form lost its input with that refusal); work that
truly collides meets the state the winner left and is refused for it (a second completion of one
task: 409 "task is completed"). Only when the retries are used up does the race answer 409.

PostgreSQL also ends a transaction itself when it cannot order it with others: a deadlock (two
units of work locking the same rows in opposite orders, as a CI rename and a step that writes a
record naming that CI may) or a serialization failure. The server rolled that one back whole, and
the other went on, so it runs again, up to ``LOCK_RETRIES`` times, after a short pause that grows
with each try; a client that would have been told 409 "another change is being written" sees
its change made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from app.db import begin_write
from app.errors import Conflict, ProcessdeskError, ServiceUnavailable
from app.services import Services

T = TypeVar("T")

#: How many times a unit of work that lost an instance's version check runs again (each loser of a
#: race of N writers on one instance wins at the latest on its N-th run).
STALE_RETRIES = 8
#: How many times a unit of work that PostgreSQL ended for a deadlock or a serialization failure
#: runs again, and the pause before the first rerun (doubled for each later one).
LOCK_RETRIES = 3
LOCK_RETRY_PAUSE_SECONDS = 0.05


def _is_lock_error(err: OperationalError) -> bool:
    text = str(err.orig).lower() if err.orig is not None else str(err).lower()
    return "database is locked" in text or "deadlock detected" in text or "could not serialize" in text


def run_unit_of_work(services: Services, work: Callable[[], T]) -> T:
    return _run(services, work, retry=True, stale_retries=STALE_RETRIES, lock_retries=LOCK_RETRIES)


def _run(services: Services, work: Callable[[], T], *, retry: bool, stale_retries: int = 0,
         lock_retries: int = 0) -> T:
    session = services.session
    try:
        result = work()
        session.commit()
        return result
    except ProcessdeskError:
        if session.info.pop("commit_on_error", False):
            session.commit()
        else:
            session.rollback()
        if services.audit.requeue_refusals():
            session.commit()
        raise
    except StaleDataError:
        session.rollback()
        if stale_retries > 0:
            services.audit.forget_refusals()  # the run again queues its own
            return _run(services, work, retry=retry, stale_retries=stale_retries - 1, lock_retries=lock_retries)
        raise Conflict("the instance was changed by someone else; reload and try again") from None
    except IntegrityError:
        session.rollback()
        raise Conflict("the change collides with a concurrent one; reload and try again") from None
    except OperationalError as err:
        session.rollback()
        if retry and _is_lock_error(err) and session.get_bind().dialect.name == "sqlite":
            try:
                begin_write(session)
            except OperationalError:
                session.rollback()
                raise Conflict("another change is being written; try again in a moment") from None
            services.audit.forget_refusals()
            return _run(services, work, retry=False, stale_retries=stale_retries)
        if lock_retries > 0 and _is_lock_error(err) and session.get_bind().dialect.name == "postgresql":
            time.sleep(LOCK_RETRY_PAUSE_SECONDS * 2 ** (LOCK_RETRIES - lock_retries))
            services.audit.forget_refusals()
            return _run(services, work, retry=retry, stale_retries=stale_retries, lock_retries=lock_retries - 1)
        if _is_lock_error(err):
            raise Conflict("another change is being written; try again in a moment") from None
        if err.connection_invalidated:
            raise ServiceUnavailable("the database connection was lost; try again") from None
        raise
    except BaseException:
        session.rollback()
        raise
