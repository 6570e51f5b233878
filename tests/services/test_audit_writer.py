"""The chain writer (``before_commit``): few statements per commit, the same chain as always.

One commit appends all its queued events with three statements (lock and read the head, one
executemany insert, move the head); the stored rows hash exactly as the chain's definition says
(HMAC-SHA256 under the desk's audit key over the same input the unkeyed chain hashed), and the
head carries the key's fingerprint and its seal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.clock import SystemClock
from app.db import make_engine, make_sessionmaker
from app.models import AuditEvent, AuditHead
from app.services.audit import (
    GENESIS_HASH,
    AuditKey,
    AuditLog,
    _fields,
    install_session_hooks,
    json_safe,
    unkeyed_digest,
)
from tests.conftest import TEST_CONFIG

#: The tests' audit key, derived from their SECRET_KEY as the definition says (no code shared).
TEST_AUDIT_KEY = hmac.new(TEST_CONFIG["SECRET_KEY"].encode(), b"processdesk audit chain v1", hashlib.sha256).digest()


@pytest.fixture()
def statements(connection: Any) -> Iterator[list[tuple[str, bool, Any]]]:
    """Every statement sent on the test's connection: (sql, executemany, parameters)."""
    seen: list[tuple[str, bool, Any]] = []

    def log(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        seen.append((statement, executemany, parameters))

    event.listen(connection, "before_cursor_execute", log)
    yield seen
    event.remove(connection, "before_cursor_execute", log)


def _head_row(session: Session) -> tuple[int, str, int | None]:
    """The head as stored, read underneath the ORM (no identity map)."""
    row = session.execute(select(AuditHead.__table__.c.last_seq, AuditHead.__table__.c.last_hash,
                                 AuditHead.__table__.c.last_event_id).where(AuditHead.__table__.c.id == 1)).one()
    return row[0], row[1], row[2]


def _stored(session: Session) -> list[dict[str, Any]]:
    table = AuditEvent.__table__
    return [dict(r._mapping) for r in session.execute(select(table).order_by(table.c.seq))]


def _independent_digest(prev_hash: str, row: dict[str, Any]) -> str:
    """The chain's hash written out from its definition, sharing no code with the writer: HMAC-SHA256
    under the audit key over the previous hash, a newline and the event's canonical JSON."""
    fields = {
        "seq": row["seq"],
        "occurred_at": row["occurred_at"].astimezone(timezone.utc).isoformat(timespec="microseconds"),
        "event_type": row["event_type"],
        "actor_id": row["actor_id"],
        "actor": row["actor"],
        "instance_id": row["instance_id"],
        "task_id": row["task_id"],
        "payload": row["payload"],
    }
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hmac.new(TEST_AUDIT_KEY, (prev_hash + "\n" + text).encode("utf-8"), hashlib.sha256).hexdigest()


def _pinned_fields() -> tuple[dict[str, Any], dict[str, Any]]:
    payload = json_safe({"b": "Grüße ✓", "a": [1, {"d": 2.5, "c": None}],
                         "when": datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)})
    return (_fields(1, datetime(2026, 1, 5, 9, 0, 0, 1234, tzinfo=timezone.utc), "instance_started", 7, "rita", 3,
                    None, payload),
            _fields(2, datetime(2026, 1, 5, 9, 0, 1, tzinfo=timezone.utc), "access_denied", None, "anonymous", None,
                    9, {}))


def test_unkeyed_digest_format_is_pinned():
    """Known digests of the chain's format before keyed sealing: ``reseal --legacy`` must still
    recognise every chain stored that way."""
    one, two = _pinned_fields()
    first = unkeyed_digest(GENESIS_HASH, one)
    assert first == "9e52722781d0a5612c139eb73508642690983cb0277603c2ebbad6b48e31cbeb"
    second = unkeyed_digest(first, two)
    assert second == "f05967a8dbdc4620e849a083a84640cb48133567271d8774b96ec51d9f6226c4"


def test_keyed_digest_format_is_pinned():
    """Known digests and fingerprint under a fixed key: any change would break every sealed chain."""
    key = AuditKey.derived_from_secret_key("pinned-secret-key")
    assert key == AuditKey(hmac.new(b"pinned-secret-key", b"processdesk audit chain v1", hashlib.sha256).digest())
    one, two = _pinned_fields()
    first = key.digest(GENESIS_HASH, one)
    assert first == "0c1ef7cad4eb09ac75aa1be6ab2d476aa2f6c968f765842602916a55ac2f86f7"
    assert key.digest(first, two) == "b1de177c7884ac6d48dcccf2c79331ea09e0527c0e4720026b665e80c416efff"
    assert key.key_id == "05eb703a45e5f2e16888c73d3266663fbac13668030943b198c9bd62f778abe9"
    assert key.head_seal(2, key.digest(first, two)) == "d4de6ff6f7da07a3298f16828dbad036ce0265de75de119b2ed16e52ee8231de"


def test_one_commit_appends_all_events_with_three_statements_or_two_on_postgresql(services, statements):
    for i in range(4):
        services.audit.record("probe", None, actor_name="bot", instance_id=i, payload={"i": i})
    statements.clear()
    services.session.commit()
    audit = [(sql, many, params) for sql, many, params in statements if "audit_" in sql]
    lock = audit[0]
    assert "audit_head" in lock[0] and ("RETURNING" in lock[0].upper() or "FOR UPDATE" in lock[0].upper())
    if services.session.get_bind().dialect.name == "postgresql":
        # The events and the new tip in one statement: a data-modifying CTE, the events as one
        # JSON array.
        assert len(audit) == 2, [sql for sql, _, _ in audit]
        append = " ".join(audit[1][0].split()).upper()
        assert append.startswith("WITH APPENDED AS (INSERT INTO AUDIT_EVENT") and "UPDATE AUDIT_HEAD" in append
        assert not audit[1][1] and [row["instance_id"] for row in json.loads(audit[1][2]["rows"])] == [0, 1, 2, 3]
    else:
        assert len(audit) == 3, [sql for sql, _, _ in audit]
        insert, advance = audit[1:]
        assert insert[0].lstrip().upper().startswith("INSERT INTO AUDIT_EVENT") and insert[1] and len(insert[2]) == 4
        assert advance[0].lstrip().upper().startswith("UPDATE AUDIT_HEAD")
    assert services.audit.verify().ok
    # Nothing else than the savepoint the test session commits.
    others = [sql for sql, _, _ in statements if "audit_" not in sql]
    assert all("SAVEPOINT" in sql.upper() for sql in others), others


def test_a_large_batch_and_batches_of_every_size_chain_without_gaps(services):
    """Whatever the batch size, the head ends at the last event and the chain verifies."""
    seq_before, _, _ = _head_row(services.session)
    sizes = [1, 2, 33, 250]
    for size in sizes:
        for i in range(size):
            services.audit.record("batch", None, actor_name="bot", payload={"size": size, "i": i})
        services.session.commit()
    seq, tip, last_id = _head_row(services.session)
    assert seq == seq_before + sum(sizes)
    last = services.session.get(AuditEvent, last_id)
    assert (last.seq, last.hash, last.payload) == (seq, tip, {"size": sizes[-1], "i": sizes[-1] - 1})
    assert services.audit.verify().ok


def test_the_append_is_compiled_once_for_any_number_of_events(services, connection):
    """The append statement has a cache key: after the first commit SQLAlchemy reuses its
    compiled form, whatever the number of events (a multi-row VALUES had none and was compiled
    on every commit)."""
    seen: list[tuple[str, Any]] = []

    def log(_conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool) -> None:
        if "audit_event" in statement and "INSERT" in statement.upper():
            seen.append((statement, context.cache_hit))

    event.listen(connection, "before_cursor_execute", log)
    try:
        for size in (1, 3, 1, 7, 2):
            for i in range(size):
                services.audit.record("probe", None, actor_name="bot", payload={"i": i})
            services.session.commit()
    finally:
        event.remove(connection, "before_cursor_execute", log)
    dialect = services.session.get_bind().dialect
    assert len(seen) == 5
    assert len({statement for statement, _ in seen}) == 1
    assert [hit for _, hit in seen[1:]] == [dialect.CACHE_HIT] * 4, [hit for _, hit in seen]
    assert services.audit.verify().ok


def test_a_commit_without_events_does_not_touch_the_chain(services, statements):
    services.audit.record("probe", None)
    services.session.commit()
    statements.clear()
    services.session.commit()
    assert not [sql for sql, _, _ in statements if "audit_" in sql]


def test_stored_events_hash_as_the_chain_always_has(services, clock):
    before_seq, before_hash, _ = _head_row(services.session)
    when = clock.now()
    services.audit.record("first", None, actor_name="bot",
                          payload={"z": 1, "a": {"y": [3, 2, 1], "b": "Grüße ✓"}, "when": when})
    clock.advance(timedelta(microseconds=1234))
    services.audit.record("second", None, actor_name="bot", instance_id=5, task_id=6, payload={"n": 2.5})
    services.session.commit()
    services.audit.record("third", None, payload={})
    services.session.commit()

    rows = [r for r in _stored(services.session) if r["seq"] > before_seq]
    assert [r["seq"] for r in rows] == [before_seq + 1, before_seq + 2, before_seq + 3]
    assert [r["event_type"] for r in rows] == ["first", "second", "third"]
    prev = before_hash
    for row in rows:
        assert row["prev_hash"] == prev
        assert row["hash"] == _independent_digest(prev, row)
        prev = row["hash"]
    assert rows[0]["payload"] == {"a": {"b": "Grüße ✓", "y": [3, 2, 1]}, "when": str(when), "z": 1}
    assert _head_row(services.session) == (rows[-1]["seq"], rows[-1]["hash"], rows[-1]["id"])
    assert services.audit.verify().ok


def test_a_loaded_head_shows_the_new_tip_after_commit(services):
    head = services.session.get(AuditHead, 1)
    services.audit.record("probe", None)
    services.audit.record("probe", None)
    services.session.commit()
    assert (head.last_seq, head.last_hash, head.last_event_id) == _head_row(services.session)
    assert services.session.get(AuditHead, 1) is head


def test_events_can_be_read_as_objects_after_commit(services):
    services.audit.record("probe", None, actor_name="bot", payload={"k": "v"})
    services.session.commit()
    latest = services.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (latest.event_type, latest.actor, latest.payload) == ("probe", "bot", {"k": "v"})
    assert latest.occurred_at.tzinfo is not None


def test_rollback_drops_queued_events_but_refusals_survive(services):
    seq, _, _ = _head_row(services.session)
    services.audit.record("work", None)
    services.audit.refuse(None, "delete_everything", reason="nobody may", instance_id=3)
    services.session.rollback()
    assert _head_row(services.session)[0] == seq
    assert services.audit.requeue_refusals()
    services.session.commit()
    rows = [r for r in _stored(services.session) if r["seq"] > seq]
    assert [(r["event_type"], r["actor"], r["instance_id"]) for r in rows] == [("access_denied", "anonymous", 3)]
    assert rows[0]["payload"] == {"action": "delete_everything", "reason": "nobody may"}
    assert not services.audit.requeue_refusals()
    assert services.audit.verify().ok


def test_a_failed_commit_leaves_no_event_and_an_intact_head(services):
    seq, tip, last_id = _head_row(services.session)
    services.audit.record("probe", None)
    services.session.execute(AuditHead.__table__.delete())  # no head: the append must fail
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver reports
        services.session.commit()
    services.session.rollback()
    assert _head_row(services.session) == (seq, tip, last_id)
    assert all(r["seq"] <= seq for r in _stored(services.session))
    services.audit.record("probe", None)
    services.session.commit()
    assert _head_row(services.session)[0] == seq + 1


def test_a_savepoint_commit_appends_and_the_outer_rollback_removes(services):
    seq, tip, last_id = _head_row(services.session)
    nested = services.session.begin_nested()
    services.audit.record("inner", None)
    nested.commit()
    assert _head_row(services.session)[0] == seq + 1
    services.session.rollback()
    assert _head_row(services.session) == (seq, tip, last_id)
    assert services.audit.verify().ok


def test_concurrent_committers_each_append_a_whole_unbroken_run(tmp_path):
    """Writers in separate connections, released together: the head lock serialises them, so no
    commit fails, sequences have no gaps or duplicates and each commit's events stay together."""
    from tests.conftest import drop_fresh_database, fresh_database_url

    install_session_hooks()
    key = AuditKey.from_text("concurrent-writers-audit-key-0123456789")
    url = fresh_database_url(tmp_path, "audit_writers")
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    writers, per_commit, rounds = 6, 3, 3
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(timeout=30)
                with factory() as session:
                    log = AuditLog(session, SystemClock(), key)
                    for i in range(per_commit):
                        log.record("concurrent", None, actor_name=f"w{n}", payload={"round": r, "i": i})
                    session.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors
        with factory() as session:
            rows = _stored(session)
            assert [r["seq"] for r in rows] == list(range(1, writers * rounds * per_commit + 1))
            for start in range(0, len(rows), per_commit):
                run = rows[start:start + per_commit]
                assert len({r["actor"] for r in run}) == 1 and [r["payload"]["i"] for r in run] == [0, 1, 2]
            assert _head_row(session) == (rows[-1]["seq"], rows[-1]["hash"], rows[-1]["id"])
            assert session.scalar(select(func.count()).select_from(AuditEvent)) == len(rows)
            assert AuditLog(session, SystemClock(), key).verify().ok
    finally:
        engine.dispose()
        drop_fresh_database(url)  # a PostgreSQL database of its own, left behind otherwise
