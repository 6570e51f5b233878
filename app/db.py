"""Plain SQLAlchemy 2: one engine and sessionmaker per application.

SQLite gets the settings a multi-threaded web server needs: WAL, a busy timeout, foreign keys,
and explicit BEGIN so SAVEPOINTs (used by the test suite) work as documented by SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Engine,
    Select,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    literal_column,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import InstanceState, Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import StaticPool

#: A pooled server connection idle for longer than this is pinged when it is checked out (and
#: replaced if it is dead); one in steady use is not. See ``_ping_when_idle``.
PING_IDLE_SECONDS = 1.0
#: How long opening a PostgreSQL connection may take before it fails (libpq's ``connect_timeout``),
#: unless the URL sets its own: a server that accepts the connection and never answers (a host gone
#: behind a firewall that drops packets, a server stuck in recovery) would otherwise hold the request,
#: or the health probe, for as long as the system's TCP timeouts, minutes. Failing fast answers 503.
CONNECT_TIMEOUT_SECONDS = 10


def make_engine(url: str, echo: bool = False, ping_idle_seconds: float = PING_IDLE_SECONDS,
                connect_timeout_seconds: int = CONNECT_TIMEOUT_SECONDS) -> Engine:
    """Create the engine for ``url`` with the per-dialect settings this app relies on.

    A failed statement's error (and so its traceback in the log) names the statement but not the
    values bound to it, which may be a webhook's secret or a password hash; ``echo`` (SQL_ECHO, a
    developer's switch) shows them."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": not echo}
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, wal=not memory)
        return engine
    kwargs["pool_size"] = 10
    kwargs["max_overflow"] = 20
    if "connect_timeout" not in make_url(url).query:
        kwargs["connect_args"] = {"connect_timeout": connect_timeout_seconds}
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine, ping_idle_seconds)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only if it sat idle for ``idle_seconds``.

    ``pool_pre_ping`` pings on every checkout: one more round trip on every request (about
    0.17 ms here), although a connection that served a request a moment ago is almost always
    alive. Connections that the server or a firewall dropped while idle are found here and
    replaced (``DisconnectionError`` makes the pool discard the connection and check out
    another). One that dies inside the window fails its request; SQLAlchemy then invalidates the
    whole pool, and the unit of work answers 503 (``ServiceUnavailable``) for the client to retry.
    """
    stamp = "processdesk.idle_since"

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[stamp] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(stamp, None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as err:  # noqa: BLE001 - any failure means: do not use this connection
            raise DisconnectionError(f"idle connection failed its ping: {err}") from err


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


#: ``session.info`` key: rows this transaction created with ``INSERT ... RETURNING`` (see
#: ``insert_rows``); a rollback expunges them, as it does the rows a flush inserted.
INSERTED = TRANSACTION_SCOPED + "inserted"


def _forget_transaction(session: Session, *_args: Any) -> None:
    for key in [k for k in session.info if isinstance(k, str) and k.startswith(TRANSACTION_SCOPED)]:
        del session.info[key]


def _expunge_inserted(session: Session, *_args: Any) -> None:
    for row in session.info.get(INSERTED, ()):
        if row in session:
            session.expunge(row)


# Rolled back: what it learned is void (and the rows it created are gone). A new transaction
# begins: the world may have moved on.
event.listen(Session, "after_soft_rollback", _expunge_inserted)
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


def serialize_writers(session: Session, name: str) -> None:
    """Make the writers of one kind (``name``) take turns until this transaction ends.

    For work that reads what it is about to replace and decides on it (a deploy checks the
    latest version it would supersede): two such transactions at once would both decide on the
    same reading, and the loser would only fail at its INSERT with a bare unique-key error. With
    the lock the second one waits, then reads what the first committed (PostgreSQL's READ
    COMMITTED sees it in each new statement) and decides on that. PostgreSQL: a transaction-level
    advisory lock keyed by ``name``; SQLite: its one write lock (``begin_write``).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        begin_write(session)
    elif dialect == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


#: The escape character of LIKE patterns made with :func:`like_literal`.
LIKE_ESCAPE = "\\"
#: Keywords of a text search (catalog, knowledge) that are matched; the rest are ignored.
SEARCH_WORDS = 8


def like_literal(text: str) -> str:
    """``text`` for a LIKE pattern with ``escape=LIKE_ESCAPE``: its ``%`` and ``_`` (and the
    escape character) match only themselves."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


#: List endpoints count matches up to this many; beyond it the total is reported as a lower bound.
COUNT_CAP = 1000
#: The largest row id: an ``Integer`` column is 32-bit on PostgreSQL (64-bit on SQLite); a larger
#: id overflows it (a 500 on either database), so edges answer it as no such row or refuse it.
MAX_ROW_ID = 2**31 - 1
#: The highest page number a list takes (the API refuses more, the pages show that page): a page
#: past the end is empty, but an offset past the database's integer range is an error.
MAX_PAGE = 1_000_000


#: ``session.info``: this transaction runs without parallel workers (``count_capped``).
_SERIAL = TRANSACTION_SCOPED + "serial"


def count_capped(session: Session, query: Any, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows ``query`` matches, counting no further than ``cap``: (count, exact).

    An exact count of a large result costs as much as reading it; a queue of thousands only needs
    to say "1000+", and then list pages stay as fast with 100,000 records as with 1,000.

    PostgreSQL: no parallel workers for the rest of the transaction (once per transaction). A
    count stopping at ``cap`` rows reads little, but on a large table the planner may still choose
    a parallel scan, whose workers' start-up cost the task inbox 30 of its 40 ms at 100,000
    instances (bench d).
    """
    from sqlalchemy import func, select

    if session.get_bind().dialect.name == "postgresql" and not session.info.get(_SERIAL):
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        session.info[_SERIAL] = True
    limited = query.order_by(None).limit(cap + 1).subquery()
    found = int(session.scalar(select(func.count()).select_from(limited)) or 0)
    return min(found, cap), found <= cap


_M = TypeVar("_M")
_BY_ID: dict[type, Select[Any]] = {}


def get_by_id(session: Session, model: type[_M], ident: int | None, statement: Select[Any] | None = None) -> _M | None:
    """``session.get`` for the paths every request takes: the identity map, else a SELECT built
    once per model (``session.get`` builds its statement anew on each call, and SQLAlchemy then
    derives its cache key again: about 0.1 ms per call). ``statement``: the caller's own, built
    once, with a bind parameter ``ident`` (to load more with the row)."""
    if ident is None:
        return None
    found = session.identity_map.get(session.identity_key(model, ident))
    if found is not None and not inspect(found).expired:
        return found  # type: ignore[no-any-return]
    if statement is None:
        statement = _BY_ID.get(model)
        if statement is None:
            key = inspect(model).primary_key[0]  # type: ignore[union-attr]
            statement = _BY_ID[model] = select(model).where(key == bindparam("ident"))
    return session.scalars(statement, {"ident": ident}).unique().first()  # type: ignore[no-any-return]


def loaded_with(obj: object, key: str) -> tuple[bool, Any]:
    """(True, value) if relationship ``key`` of ``obj`` was loaded with it, else (False, None);
    never loads it."""
    state: InstanceState[Any] | None = inspect(obj, raiseerr=False)
    values = state.dict if state is not None else {}
    return (True, values[key]) if key in values else (False, None)


_WRITES: dict[tuple[type, tuple[str, ...], tuple[str, ...]], Any] = {}


def write_changes(session: Session, obj: object, merge: Mapping[str, Mapping[str, Any]] | None = None) -> bool:
    """Write a loaded row's changed columns now, as one plain UPDATE by primary key (checking
    and bumping its version column, if the mapper has one), and mark them unchanged in the
    session. The unit of work costs about half a millisecond per flush of a row; this is the
    fast path for the rows every step writes (an instance, its record).

    ``merge``: on PostgreSQL, changed JSON object columns written as ``column || patch`` (jsonb)
    instead of whole: the patch's keys over the object as it is stored when the row is written,
    so keys another transaction wrote meanwhile stay (PostgreSQL evaluates the expression again
    on the row a concurrent writer left). The session keeps this transaction's view of the
    column. Elsewhere (SQLite's one writer already saw the stored object) the column is
    written whole.

    Returns False, writing nothing, when the ORM must do it: a new or deleted row, or a change
    to a relationship or the key (which a flush turns into columns). A lost race raises the
    ORM's own StaleDataError, as a flush would."""
    state: InstanceState[Any] | None = inspect(obj, raiseerr=False)
    if state is None or not state.persistent or state.identity is None:
        return False
    ident = state.identity[0]
    mapper = state.mapper
    columns = mapper.column_attrs
    if any(key not in columns or columns[key].columns[0].primary_key for key in state.committed_state) \
            or "_pending_mutations" in state.__dict__:
        return False
    values = state.dict
    # Only what really differs, as a flush would: a column set to its own value is not written
    # (a row without a version column would otherwise put back a value another transaction
    # changed meanwhile).
    changed = tuple(sorted(key for key, before in state.committed_state.items()
                           if not state.manager[key].impl.is_equal(values.get(key), before)))
    if not changed:
        state._commit_all(values, session.identity_map)
        return True
    version = mapper.version_id_col
    version_key = mapper.get_property_by_column(version).key if version is not None else None
    if version_key in changed:
        return False
    merged = tuple(key for key in changed if key in merge) \
        if merge and session.get_bind().dialect.name == "postgresql" else ()
    cache_key = (mapper.class_, changed, merged)
    statement = _WRITES.get(cache_key)
    if statement is None:
        table = cast(Table, mapper.local_table)
        key_column = mapper.primary_key[0]
        targets: dict[str, Any] = {columns[key].columns[0].name: bindparam(f"v_{key}") for key in changed}
        for key in merged:
            column = columns[key].columns[0]
            targets[column.name] = func.coalesce(column, literal_column("'{}'::jsonb")).op("||")(
                bindparam(f"v_{key}", type_=JSONB))
        statement = update(table).where(key_column == bindparam("w_ident"))
        if version is not None:
            statement = statement.where(version == bindparam("w_version"))
            targets[version.name] = bindparam("w_next_version")
        statement = _WRITES[cache_key] = statement.values(targets)
    params = {f"v_{key}": merge[key] if key in merged else values[key] for key in changed}  # type: ignore[index]
    params["w_ident"] = ident
    if version_key is not None:
        params["w_version"] = values[version_key]
        params["w_next_version"] = values[version_key] + 1
    result = session.connection().execute(statement, params)
    if result.rowcount != 1:
        raise StaleDataError(f"{mapper.class_.__name__} {ident} was changed or deleted by another transaction")
    if version_key is not None:
        values[version_key] = params["w_next_version"]
    # As a flush leaves a written row: nothing pending, not in the session's dirty set (else
    # every later flush would walk it again, about 0.3 ms each).
    state._commit_all(values, session.identity_map)
    return True


def set_reference(obj: object, key: str, target: object | None) -> None:
    """``obj.<key> = target`` for a many-to-one relationship, written as its foreign key column
    (the relationship only told, without history), so ``write_changes`` can send the row
    without a flush."""
    if target is not None and inspect(target).key is None:  # type: ignore[union-attr]
        setattr(obj, key, target)  # not stored yet: its key is not known; the flush orders it
        return
    mapper = inspect(obj).mapper  # type: ignore[union-attr]
    (local, remote), = mapper.relationships[key].local_remote_pairs
    setattr(obj, mapper.get_property_by_column(local).key,
            None if target is None else getattr(target, inspect(target).mapper.get_property_by_column(remote).key))  # type: ignore[union-attr]
    set_committed_value(obj, key, target)


_INSERTS: dict[type, Any] = {}


def insert_rows(session: Session, model: type[_M], values: list[dict[str, Any]]) -> list[_M]:
    """New rows as one ``INSERT ... RETURNING`` that gives back the ORM objects, in the order
    given and persistent in the session, without the unit of work (about half a millisecond
    less than add + flush). A rollback expunges them, as it does the rows a flush inserted."""
    if not values:
        return []
    statement = _INSERTS.get(model)
    if statement is None:
        statement = _INSERTS[model] = insert(model).returning(model, sort_by_parameter_order=True)
    with session.no_autoflush:
        rows: list[_M] = list(session.scalars(statement, values))
    session.info.setdefault(INSERTED, []).extend(rows)
    return rows


def insert_row(session: Session, model: type[_M], values: dict[str, Any], **references: object) -> _M:
    """One new row through ``insert_rows``. ``references``: many-to-one relationships already at
    hand, told to the new object (their foreign keys must be in ``values``)."""
    row = insert_rows(session, model, [values])[0]
    for key, target in references.items():
        set_committed_value(row, key, target)
    return row
