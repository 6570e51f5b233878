"""The audit chain: append-only events, each hashed over its predecessor.

Events are queued on the session while a request works and written in ``before_commit``, so they
land in the same transaction as the change they describe and the chain's head row is locked only
for the last moment of the transaction (it serialises appends across workers and processes).
A rolled-back transaction takes its queued events with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from app.clock import Clock
from app.models import AuditEvent, AuditHead, User

GENESIS_HASH = "0" * 64
_PENDING_KEY = "audit_pending"
_REFUSALS_KEY = "audit_refusals"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def json_safe(value: Any) -> Any:
    """The exact JSON form that will be stored, so hashing before and after storage agrees."""
    return json.loads(canonical_json(value))


def event_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical_json(fields)).encode("utf-8")).hexdigest()


def _fields(seq: int, occurred_at: datetime, event_type: str, actor_id: int | None, actor: str,
            instance_id: int | None, task_id: int | None, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": seq,
        "occurred_at": occurred_at.isoformat(timespec="microseconds"),
        "event_type": event_type,
        "actor_id": actor_id,
        "actor": actor,
        "instance_id": instance_id,
        "task_id": task_id,
        "payload": payload,
    }


@dataclass(frozen=True)
class _Pending:
    occurred_at: datetime
    event_type: str
    actor_id: int | None
    actor: str
    instance_id: int | None
    task_id: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    first_broken_id: int | None = None
    reason: str | None = None


class AuditLog:
    """Queues events for the current transaction and verifies the stored chain."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def record(
        self,
        event_type: str,
        actor: User | None,
        *,
        instance_id: int | None = None,
        task_id: int | None = None,
        payload: dict[str, Any] | None = None,
        actor_name: str | None = None,
    ) -> None:
        """Queue one event; it is written when the session commits (and dropped on rollback)."""
        pending = self.session.info.setdefault(_PENDING_KEY, [])
        pending.append(
            _Pending(
                occurred_at=self.clock.now(),
                event_type=event_type,
                actor_id=actor.id if actor is not None else None,
                actor=actor.username if actor is not None else (actor_name or "system"),
                instance_id=instance_id,
                task_id=task_id,
                payload=json_safe(payload or {}),
            )
        )

    def refuse(
        self,
        actor: User | None,
        action: str,
        *,
        reason: str,
        instance_id: int | None = None,
        task_id: int | None = None,
        **extra: Any,
    ) -> None:
        """Queue an ``access_denied`` event that survives the rollback of the refused request.

        The edge rolls the request back and then calls ``commit_refusals`` in a fresh transaction.
        """
        refusals = self.session.info.setdefault(_REFUSALS_KEY, [])
        refusals.append(
            _Pending(
                occurred_at=self.clock.now(),
                event_type="access_denied",
                actor_id=actor.id if actor is not None else None,
                actor=actor.username if actor is not None else "anonymous",
                instance_id=instance_id,
                task_id=task_id,
                payload=json_safe({"action": action, "reason": reason, **extra}),
            )
        )

    def requeue_refusals(self) -> bool:
        """Move refusals kept across a rollback into the pending queue; True if there were any."""
        refusals = self.session.info.pop(_REFUSALS_KEY, [])
        if refusals:
            self.session.info.setdefault(_PENDING_KEY, []).extend(refusals)
        return bool(refusals)

    def verify(self, batch_size: int = 5000) -> ChainReport:
        """Walk the whole chain in order; name the first event whose hash or link is wrong."""
        prev_hash = GENESIS_HASH
        expected_seq = 1
        checked = 0
        while True:
            rows = self.session.scalars(
                select(AuditEvent).where(AuditEvent.seq >= expected_seq).order_by(AuditEvent.seq).limit(batch_size)
            ).all()
            if not rows:
                break
            for row in rows:
                fields = _fields(row.seq, row.occurred_at, row.event_type, row.actor_id, row.actor,
                                 row.instance_id, row.task_id, row.payload)
                if row.seq != expected_seq:
                    return ChainReport(False, checked, expected_seq, None, "event missing from the sequence")
                if row.prev_hash != prev_hash:
                    return ChainReport(False, checked, row.seq, row.id, "link to the previous event is broken")
                if event_digest(prev_hash, fields) != row.hash:
                    return ChainReport(False, checked, row.seq, row.id, "event content does not match its hash")
                prev_hash = row.hash
                expected_seq += 1
                checked += 1
        head = self.session.get(AuditHead, 1)
        if head is not None and (head.last_seq != checked or head.last_hash != prev_hash):
            return ChainReport(False, checked, checked + 1, None, "events after the last stored one were removed")
        return ChainReport(True, checked)


def _write_pending(session: Session) -> None:
    pending: list[_Pending] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    else:
        # SQLite: a write takes the database lock, so touch the head before reading it.
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_seq=AuditHead.last_seq))
        head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
        session.refresh(head)
    seq, prev_hash = head.last_seq, head.last_hash
    last_event: AuditEvent | None = None
    for item in pending:
        seq += 1
        fields = _fields(seq, item.occurred_at, item.event_type, item.actor_id, item.actor,
                         item.instance_id, item.task_id, item.payload)
        digest = event_digest(prev_hash, fields)
        last_event = AuditEvent(
            seq=seq,
            occurred_at=item.occurred_at,
            event_type=item.event_type,
            actor_id=item.actor_id,
            actor=item.actor,
            instance_id=item.instance_id,
            task_id=item.task_id,
            payload=item.payload,
            prev_hash=prev_hash,
            hash=digest,
        )
        session.add(last_event)
        prev_hash = digest
    session.flush()
    head.last_seq = seq
    head.last_hash = prev_hash
    head.last_event_id = last_event.id if last_event is not None else head.last_event_id
    session.flush()


def _drop_pending(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING_KEY, None)


def install_session_hooks() -> None:
    """Attach the chain writer to every Session (idempotent)."""
    if not event.contains(Session, "before_commit", _write_pending):
        event.listen(Session, "before_commit", _write_pending)
        event.listen(Session, "after_soft_rollback", _drop_pending)
