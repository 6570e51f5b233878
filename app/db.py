"""Plain SQLAlchemy 2: one engine and sessionmaker per application.

SQLite gets the settings a multi-threaded web server needs: WAL, a busy timeout, foreign keys,
and explicit BEGIN so SAVEPOINTs (used by the test suite) work as documented by SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create the engine for ``url`` with the per-dialect settings this app relies on."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, wal=not memory)
        return engine
    kwargs["pool_pre_ping"] = True
    kwargs["pool_size"] = 10
    kwargs["max_overflow"] = 20
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (SAVEPOINT support).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


#: ``session.info`` keys with this prefix hold what one transaction learned (rows it wrote, runs it
#: advanced); a rollback or the next transaction's begin drops them, a commit leaves them for the
#: answer to read.
TRANSACTION_SCOPED = "processdesk.tx."


def _forget_transaction(session: Session, *_args: Any) -> None:
    for key in [k for k in session.info if isinstance(k, str) and k.startswith(TRANSACTION_SCOPED)]:
        del session.info[key]


# Rolled back: what it learned is void. A new transaction begins: the world may have moved on.
event.listen(Session, "after_soft_rollback", _forget_transaction)
event.listen(Session, "after_begin", _forget_transaction)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def begin_write(session: Session) -> None:
    """On SQLite, take the write lock now, before this transaction reads anything.

    A deferred SQLite transaction that reads and later writes fails at once ("database is
    locked", no busy wait) if another connection committed in between; taking the lock first
    makes it wait its turn instead. PostgreSQL needs nothing here.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE process_instance SET id = id WHERE 1 = 0"))


#: List endpoints count matches up to this many; beyond it the total is reported as a lower bound.
COUNT_CAP = 1000


def count_capped(session: Session, query: Any, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows ``query`` matches, counting no further than ``cap``: (count, exact).

    An exact count of a large result costs as much as reading it; a queue of thousands only needs
    to say "1000+", and then list pages stay as fast with 100,000 records as with 1,000.
    """
    from sqlalchemy import func, select

    limited = query.order_by(None).limit(cap + 1).subquery()
    found = int(session.scalar(select(func.count()).select_from(limited)) or 0)
    return min(found, cap), found <= cap
