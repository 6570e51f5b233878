"""The audit chain: append-only events, each hashed over its predecessor.

Events are queued on the session while a request works and written in ``before_commit``, so they
land in the same transaction as the change they describe and the chain's head row is locked only
for the last moment of the transaction (it serialises appends across workers and processes).
A rolled-back transaction takes its queued events with it.

Auditors and admins read the chain across instances (``search``, ``export``, ``instance_timeline``)
and check it (``check_chain``, itself recorded as an ``audit_chain_checked`` event, so the pages
show who last checked it and when without walking the whole chain on every visit).

Sealing. Each event's ``hash`` is HMAC-SHA256 under the desk's audit key (``AuditKey``: the
``AUDIT_KEY`` setting, else derived from ``SECRET_KEY``) over the previous hash and the event's
canonical fields; the head row carries the key's fingerprint (``key_id``) and an HMAC of the tip
(``seal``). The key never enters the database, so someone who can only write to the database can
edit, insert or delete events but cannot compute the hashes that would hide it. Verification
always uses the configured key: nothing stored decides which scheme is checked, so there is no
flag to flip back to unkeyed hashes. What is stored only helps name the failure: an event hashed
with plain SHA-256 (the scheme before migration 0018, or a forgery), a chain sealed with another
key (the head's ``key_id``), an edited event, a cut-off tail.

Chains written before keyed sealing are made keyed by ``reseal`` (``flask audit reseal``), an
explicit, audited step that also rotates keys.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Final, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.clock import Clock
from app.db import count_capped
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import AuditEvent, AuditHead, HumanTask, ProcessDefinition, ProcessInstance, Role, Ticket, User
from app.models.base import UTCDateTime

GENESIS_HASH = "0" * 64
_PENDING_KEY = "audit_pending"
_REFUSALS_KEY = "audit_refusals"
#: ``session.info``: the key the queued events are sealed with (set by the log that queued them).
_SEALER_KEY = "audit_sealer"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def json_safe(value: Any) -> Any:
    """The exact JSON form that will be stored, so hashing before and after storage agrees."""
    return json.loads(canonical_json(value))


def _digest_input(prev_hash: str, fields: dict[str, Any]) -> bytes:
    return (prev_hash + "\n" + canonical_json(fields)).encode("utf-8")


def unkeyed_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    """The hash of chains written before keyed sealing: plain SHA-256 over the same input as
    ``AuditKey.digest``. Nothing is written with it any more; it only recognises such events (and
    lets ``reseal`` check an old chain before sealing it)."""
    return hashlib.sha256(_digest_input(prev_hash, fields)).hexdigest()


#: Domain separation: the audit key derived from SECRET_KEY, its fingerprint, the head's seal.
AUDIT_KEY_CONTEXT: Final = b"processdesk audit chain v1"
_KEY_ID_CONTEXT: Final = b"processdesk audit key id"
_HEAD_SEAL_CONTEXT: Final = "processdesk audit head"


class AuditKey:
    """The secret the chain is sealed with (HMAC-SHA256). Never stored: the database holds only
    ``key_id``, HMAC(key, "processdesk audit key id"), which names the key without revealing it."""

    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the audit key must not be empty")
        self._secret = bytes(secret)
        self.key_id = hmac.new(self._secret, _KEY_ID_CONTEXT, hashlib.sha256).hexdigest()

    @classmethod
    def from_text(cls, text: str) -> AuditKey:
        """The key as configured (``AUDIT_KEY``): its UTF-8 bytes."""
        return cls(text.encode("utf-8"))

    @classmethod
    def derived_from_secret_key(cls, secret_key: str) -> AuditKey:
        """The default: HMAC(SECRET_KEY, "processdesk audit chain v1"), so the audit key is not the
        key that signs cookies and tokens, and knowing one of their signatures says nothing of it."""
        return cls(hmac.new(secret_key.encode("utf-8"), AUDIT_KEY_CONTEXT, hashlib.sha256).digest())

    @property
    def short_id(self) -> str:
        return self.key_id[:16]

    def digest(self, prev_hash: str, fields: dict[str, Any]) -> str:
        """An event's hash: HMAC over the previous hash and the event's canonical fields."""
        return hmac.new(self._secret, _digest_input(prev_hash, fields), hashlib.sha256).hexdigest()

    def head_seal(self, seq: int, tip_hash: str) -> str:
        """The head's seal: HMAC over the tip (last seq and its hash)."""
        return hmac.new(self._secret, f"{_HEAD_SEAL_CONTEXT}\n{seq}\n{tip_hash}".encode(), hashlib.sha256).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AuditKey) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:  # never the secret
        return f"AuditKey(key_id={self.short_id})"


@lru_cache(maxsize=16)
def _key_from_text(text: str) -> AuditKey:
    return AuditKey.from_text(text)


@lru_cache(maxsize=16)
def _key_from_secret_key(secret_key: str) -> AuditKey:
    return AuditKey.derived_from_secret_key(secret_key)


def audit_key(config: Mapping[str, Any]) -> AuditKey:
    """The desk's audit key from its settings: ``AUDIT_KEY`` if set, else derived from
    ``SECRET_KEY``. ValueError if neither is set."""
    configured = config.get("AUDIT_KEY")
    if configured:
        return _key_from_text(str(configured))
    secret_key = config.get("SECRET_KEY")
    if not secret_key:
        raise ValueError("neither AUDIT_KEY nor SECRET_KEY is set: the audit chain cannot be sealed")
    return _key_from_secret_key(str(secret_key))


#: ``reseal``'s source for chains written before keyed sealing (plain SHA-256).
UNKEYED: Final = "unkeyed"


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


#: ``ChainReport.reason``: why a check failed (the pages translate each).
MISSING_EVENT = "event missing from the sequence"
BROKEN_LINK = "link to the previous event is broken"
CONTENT_CHANGED = "event content does not match its hash"
UNKEYED_HASH = "event is sealed with a plain SHA-256 hash, not with the audit key"
WRONG_KEY = "the chain is sealed with another audit key"
TAIL_REMOVED = "events after the last stored one were removed"
HEAD_ALTERED = "the chain's head does not match its seal"
HEAD_MISSING = "the chain's head row is missing"
#: ``reseal --legacy`` of a chain whose head names a key but which holds no event sealed with it.
KEYED_BEFORE = "the chain's head names an audit key, so it was sealed before: unkeyed events there were rewritten without the key"


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    first_broken_id: int | None = None
    reason: str | None = None
    #: The fingerprint of the key the check used, and (``WRONG_KEY``) the one the chain's head names.
    key_id: str | None = None
    sealed_with: str | None = None

    @property
    def wrong_key(self) -> bool:
        """The chain does not verify with this desk's key from its first event on, and its head
        names another key: the key changed (or was set wrongly), rather than an event."""
        return self.reason == WRONG_KEY


@dataclass(frozen=True)
class ResealReport:
    """What ``reseal`` did: ``events`` rewritten under ``key_id`` (0 and ``already`` when the chain
    was sealed with it already), from ``source`` (``UNKEYED`` or the previous key's id)."""

    events: int
    source: str
    key_id: str
    previous_tip: str
    tip: str
    already: bool = False


#: Who reads the whole history, across instances.
AUDIT_READER_ROLES = (Role.AUDITOR, Role.ADMIN)
#: The event a refused attempt leaves, and the one a check of the chain leaves.
REFUSED_EVENT = "access_denied"
CHAIN_CHECKED_EVENT = "audit_chain_checked"
#: Written by ``reseal``: the chain was rewritten under the current key (from what, by whom).
CHAIN_RESEALED_EVENT = "audit_chain_resealed"
#: Written for every export of the history (what was asked for, and how many events went out).
EXPORTED_EVENT = "audit_exported"
#: The most events one export holds; a larger search is refused (narrow it) rather than cut short.
EXPORT_MAX_EVENTS = 50_000
#: Events whose payload carries the data someone submitted (start, task form, retry corrections).
_DATA_EVENTS = frozenset({"instance_started", "task_completed", "instance_retried"})


def may_read_audit(user: User) -> bool:
    """Auditors and admins read every event of every instance; nobody else reads the audit pages."""
    return user.has_role(*AUDIT_READER_ROLES)


@dataclass(frozen=True)
class AuditFilters:
    """A search over the history; every given criterion must match. Times are aware UTC."""

    process_id: str | None = None
    record_number: str | None = None
    actor: str | None = None
    event_type: str | None = None
    instance_id: int | None = None
    occurred_from: datetime | None = None  # inclusive
    occurred_before: datetime | None = None  # exclusive


@dataclass(frozen=True)
class AuditRow:
    """One event with what it belongs to: the instance's process and the record's number."""

    event: AuditEvent
    process_id: str | None
    record_number: str | None


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    total: int  # exact when ``exact``, else a lower bound
    exact: bool
    has_more: bool


@dataclass(frozen=True)
class ChainCheck:
    """The last check of the chain: its report, when and by whom, and how many events came since."""

    report: ChainReport
    checked_at: datetime
    checked_by: str
    events_since: int


@dataclass(frozen=True)
class DataField:
    """One submitted or changed value: its key, the form's title for it (if known), the value,
    and the title the form gives that value (a choice's: "Approve" for ``true``), if any."""

    key: str
    title: str | None
    value: Any
    value_title: str | None = None


@dataclass(frozen=True)
class TimelineEntry:
    event: AuditEvent
    task_name: str | None
    refused: bool
    fields: list[DataField] = field(default_factory=list)


@dataclass(frozen=True)
class InstanceTimeline:
    """Who did what and when on one instance, oldest first, with the submitted data."""

    instance: ProcessInstance
    record: Ticket | None
    entries: list[TimelineEntry]
    #: BPMN ids of the completed user tasks, in the order they were completed (the path taken).
    path: list[str]


class AuditLog:
    """Queues events for the current transaction, verifies the stored chain, and answers
    auditors' searches over it."""

    def __init__(self, session: Session, clock: Clock, key: AuditKey) -> None:
        self.session = session
        self.clock = clock
        #: Seals what this log queues and is the only key ``verify`` accepts (``audit_key(config)``).
        self.key = key

    def _seal_with_my_key(self) -> None:
        """The session's queued events are sealed at commit with this log's key; one transaction
        never mixes two keys."""
        bound = self.session.info.setdefault(_SEALER_KEY, self.key)
        if bound != self.key:
            raise RuntimeError("audit events of one transaction were queued under two different audit keys")

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
        self._seal_with_my_key()
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
        self._seal_with_my_key()
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

    def forget_refusals(self) -> None:
        """Drop the refusals kept across a rollback: the unit of work runs again and queues its
        refusals anew (a bulk action refused one task, then lost a race on another)."""
        self.session.info.pop(_REFUSALS_KEY, None)

    def requeue_refusals(self) -> bool:
        """Move refusals kept across a rollback into the pending queue; True if there were any."""
        refusals = self.session.info.pop(_REFUSALS_KEY, [])
        if refusals:
            self._seal_with_my_key()
            self.session.info.setdefault(_PENDING_KEY, []).extend(refusals)
        return bool(refusals)

    def verify(self, batch_size: int = 5000) -> ChainReport:
        """Walk the whole chain in order under this log's key; name the first event whose hash or
        link is wrong, and why (see the reasons above ``ChainReport``)."""
        key = self.key
        prev_hash = GENESIS_HASH
        expected_seq = 1
        head: Row[Any] | None = None
        # On PostgreSQL other transactions may commit while the walk runs: a head found ahead of
        # the walk is followed (a few times) rather than reported as a cut-off tail.
        for _attempt in range(3):
            for row in _walk(self.session, expected_seq, batch_size):
                if row.seq != expected_seq:
                    return ChainReport(False, expected_seq - 1, expected_seq, None, MISSING_EVENT, key.key_id)
                if row.prev_hash != prev_hash:
                    return ChainReport(False, expected_seq - 1, row.seq, row.id, BROKEN_LINK, key.key_id)
                fields = _row_fields(row)
                if not hmac.compare_digest(key.digest(prev_hash, fields), row.hash):
                    return self._unsealed(row, fields, prev_hash)
                prev_hash = row.hash
                expected_seq += 1
            head = _read_head(self.session)
            if head is None or head.last_seq <= expected_seq - 1:
                break
        checked = expected_seq - 1
        if head is None:
            # every migrated database has the head row: without it, nothing vouches for the tail
            return ChainReport(checked == 0, checked, None if checked == 0 else checked + 1, None,
                               None if checked == 0 else HEAD_MISSING, key.key_id)
        if head.last_seq != checked or head.last_hash != prev_hash:
            return ChainReport(False, checked, checked + 1, None, TAIL_REMOVED, key.key_id)
        # A head naming a key was sealed by the writer, with events: an empty chain under such a
        # head had them all removed (a fresh desk's head names no key).
        if (checked or head.key_id is not None) and (
                head.key_id != key.key_id or head.seal is None
                or not hmac.compare_digest(head.seal, key.head_seal(checked, prev_hash))):
            return ChainReport(False, checked, checked + 1, None, HEAD_ALTERED, key.key_id)
        return ChainReport(True, checked, key_id=key.key_id)

    def _unsealed(self, row: Row[Any], fields: dict[str, Any], prev_hash: str) -> ChainReport:
        """Why an event's hash is not this key's HMAC: plain SHA-256 (an old chain or a forgery),
        another key (nothing verifies and the head names another key), or an edit."""
        key = self.key
        checked = row.seq - 1
        head = _read_head(self.session)
        named = head.key_id if head is not None else None
        if hmac.compare_digest(unkeyed_digest(prev_hash, fields), row.hash):
            # ``sealed_with``: the key the head names, if any (then no chain from before the upgrade)
            return ChainReport(False, checked, row.seq, row.id, UNKEYED_HASH, key.key_id, named)
        # Another key when the head names one and the chain goes on unsealed by this key (its next
        # event fails too): a first event that alone fails, under a head whose key id was swapped,
        # was edited.
        if checked == 0 and named is not None and named != key.key_id and not self._next_is_ours(row):
            return ChainReport(False, 0, row.seq, row.id, WRONG_KEY, key.key_id, named)
        return ChainReport(False, checked, row.seq, row.id, CONTENT_CHANGED, key.key_id)

    def _next_is_ours(self, row: Row[Any]) -> bool:
        """Whether the event after ``row`` is sealed with this log's key over ``row``'s hash."""
        following = next(_walk(self.session, row.seq + 1, 1), None)
        return following is not None and following.seq == row.seq + 1 and hmac.compare_digest(
            self.key.digest(row.hash, _row_fields(following)), following.hash)

    def reseal(self, actor_name: str, source: AuditKey | Literal["unkeyed"], batch_size: int = 5000) -> ResealReport:
        """Rewrite every hash of the chain under this log's key, in the caller's transaction, and
        record an ``audit_chain_resealed`` event (by ``actor_name``).

        ``source`` says what the chain is sealed with now: ``UNKEYED`` (written before keyed
        sealing) or the previous ``AuditKey`` (rotation). Events written with this log's key since
        (the desk kept running) are accepted too: after an unkeyed prefix only, since anybody can
        compute an unkeyed hash; in any order with a previous key, since nobody without one of the
        two keys can. Everything else must hold as in ``verify``. Conflict (nothing changed) if the
        chain does not verify so; nothing to do (``already``) if it verifies under this key.
        """
        key = self.key
        if source == UNKEYED:
            previous: AuditKey | None = None
            source_name = UNKEYED
        elif isinstance(source, AuditKey):
            previous = source
            source_name = source.key_id
        else:
            raise ValueError(f"unknown reseal source {source!r}")
        self.session.flush()
        connection = self.session.connection()
        # Appenders wait until this transaction ends: the chain does not move under the rewrite.
        lock = _LOCK_HEAD_FOR_UPDATE if connection.dialect.name == "postgresql" else _LOCK_HEAD_BY_WRITE
        connection.execute(lock).one()
        current = self.verify(batch_size)
        head = _read_head(self.session)
        if head is None:
            raise Conflict("the audit chain has no head row; nothing was resealed", code="audit_chain_not_resealed")
        if current.ok:
            return ResealReport(0, source_name, key.key_id, head.last_hash, head.last_hash, already=True)

        def refuse(seq: int | None, event_id: int | None, reason: str) -> Conflict:
            where = f"at event seq={seq}" if seq is not None else "at its head"
            return Conflict(f"the audit chain does not verify as {_source_label(source_name)} {where}: {reason}; "
                            "nothing was resealed", code="audit_chain_not_resealed",
                            details={"seq": seq, "event_id": event_id, "reason": reason, "source": source_name})

        old_prev = new_prev = GENESIS_HASH
        expected_seq = 1
        seen_current_key = False
        updates: list[dict[str, Any]] = []
        for row in _walk(self.session, 1, batch_size):
            if row.seq != expected_seq:
                raise refuse(expected_seq, None, MISSING_EVENT)
            if row.prev_hash != old_prev:
                raise refuse(row.seq, row.id, BROKEN_LINK)
            fields = _row_fields(row)
            if previous is None and not seen_current_key and hmac.compare_digest(unkeyed_digest(old_prev, fields), row.hash):
                pass
            elif previous is not None and hmac.compare_digest(previous.digest(old_prev, fields), row.hash):
                pass
            elif hmac.compare_digest(key.digest(old_prev, fields), row.hash):
                seen_current_key = True
            else:
                unkeyed = hmac.compare_digest(unkeyed_digest(old_prev, fields), row.hash)
                raise refuse(row.seq, row.id, UNKEYED_HASH if unkeyed else CONTENT_CHANGED)
            resealed = key.digest(new_prev, fields)
            updates.append({"event_id": row.id, "new_prev": new_prev, "new_hash": resealed})
            old_prev, new_prev = row.hash, resealed
            expected_seq += 1
            if len(updates) >= batch_size:
                connection.execute(_RESEAL_EVENTS, updates)
                updates = []
        count = expected_seq - 1
        if head.last_seq != count or head.last_hash != old_prev:
            raise refuse(None, None, TAIL_REMOVED)
        if previous is None and head.key_id is not None and not seen_current_key:
            # The writer names the key in the head with its first keyed event: a head naming one
            # over a chain with none was keyed, and someone rewrote it without the key.
            raise refuse(None, None, KEYED_BEFORE)
        # The head's seal, where the old chain had one: an unkeyed head had none until events were
        # written with this key; a keyed one always has one, by the previous key or by this one.
        seal_by = [k for k in (previous, key) if k is not None]
        if previous is None and not seen_current_key:
            seal_ok = True
        else:
            seal_ok = head.seal is not None and any(
                hmac.compare_digest(head.seal, k.head_seal(count, old_prev)) for k in seal_by)
        if not seal_ok:
            raise refuse(None, None, HEAD_ALTERED)
        if updates:
            connection.execute(_RESEAL_EVENTS, updates)
        connection.execute(update(_HEAD).where(_HEAD.c.id == _HEAD_ID).values(
            last_hash=new_prev, key_id=key.key_id, seal=key.head_seal(count, new_prev)))
        # The rewrite bypassed the ORM: what this session holds of the chain is stale.
        for obj in list(self.session.identity_map.values()):
            if isinstance(obj, AuditEvent | AuditHead):
                self.session.expire(obj)
        self.record(CHAIN_RESEALED_EVENT, None, actor_name=actor_name, payload={
            "source": source_name, "key_id": key.key_id, "events": count,
            "previous_tip": old_prev, "tip": new_prev})
        return ResealReport(count, source_name, key.key_id, old_prev, new_prev)

    # -- reading (auditors and admins) ----------------------------------------------------------

    def require_reader(self, user: User, action: str = "read_audit") -> None:
        """PermissionDenied (audited as a refused attempt) unless the user is an auditor or admin."""
        if not may_read_audit(user):
            self.refuse(user, action, reason="auditors and admins only")
            raise PermissionDenied("only auditors and administrators may read the audit history")

    def search_options(self, user: User) -> dict[str, Any]:
        """What a search can pick from: the event types stored so far and the deployed processes
        (``[(process_id, name)]``)."""
        self.require_reader(user)
        # A seek per distinct type on the event_type index (a few dozen), instead of a DISTINCT
        # that reads every event: the page stays as fast with millions of events.
        types: list[str] = []
        while True:
            query = select(func.min(AuditEvent.event_type))
            if types:
                query = query.where(AuditEvent.event_type > types[-1])
            following = self.session.scalar(query)
            if following is None:
                break
            types.append(following)
        names: dict[str, str] = {}
        for process_id, name, _version in self.session.execute(
                select(ProcessDefinition.process_id, ProcessDefinition.name, ProcessDefinition.version)
                .order_by(ProcessDefinition.process_id, ProcessDefinition.version)):
            names[process_id] = name or process_id  # the latest version's name wins
        return {"event_types": types, "processes": sorted(names.items(), key=lambda item: item[1].lower())}

    def search(self, user: User, filters: AuditFilters, page: int, per_page: int) -> AuditPage:
        """Events matching ``filters``, newest first, one page; the total is counted up to
        COUNT_CAP (``exact`` False beyond it)."""
        self.require_reader(user)
        query = self._filtered(filters)
        total, exact = count_capped(self.session, query)
        events = list(self.session.scalars(
            query.order_by(AuditEvent.seq.desc()).offset((page - 1) * per_page).limit(per_page + 1)))
        return AuditPage(self._rows(events[:per_page]), total, exact, len(events) > per_page)

    def export(self, user: User, filters: AuditFilters, limit: int = EXPORT_MAX_EVENTS) -> list[AuditRow]:
        """Every event matching ``filters``, oldest first. ValidationFailed (``too_many_events``)
        when more than ``limit`` match: an export is complete or not made."""
        self.require_reader(user, "export_audit")
        query = self._filtered(filters)
        _count, within = count_capped(self.session, query, cap=limit)
        if not within:
            raise ValidationFailed(f"more than {limit} events match; narrow the search to export it",
                                   code="too_many_events", details={"limit": limit})
        rows: list[AuditRow] = []
        last_seq = 0
        while True:  # keyset batches: a large export does not page with growing offsets
            batch = list(self.session.scalars(
                query.where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(2000)))
            if not batch:
                break
            rows.extend(self._rows(batch))
            last_seq = batch[-1].seq
        # An export takes the history (comment bodies, submitted data) out of the desk: who took what is
        # itself history. Recorded with the commit of the caller's unit of work, as every event is.
        said = {name: value.isoformat() if isinstance(value, datetime) else value
                for name, value in asdict(filters).items() if value is not None}
        self.record(EXPORTED_EVENT, user, payload={"filters": said, "events": len(rows), "through_seq": last_seq})
        return rows

    def last_chain_check(self, user: User) -> ChainCheck | None:
        """The most recent ``check_chain`` result, or None if the chain was never checked here."""
        self.require_reader(user)
        latest = self.session.scalar(select(AuditEvent).where(AuditEvent.event_type == CHAIN_CHECKED_EVENT)
                                     .order_by(AuditEvent.seq.desc()).limit(1))
        if latest is None:
            return None
        p = latest.payload or {}
        report = ChainReport(bool(p.get("ok")), int(p.get("checked") or 0), p.get("first_broken_seq"),
                             p.get("first_broken_id"), p.get("reason"), p.get("key_id"), p.get("sealed_with"))
        return ChainCheck(report, latest.occurred_at, latest.actor, max(0, self._last_seq() - latest.seq))

    def check_chain(self, user: User) -> ChainCheck:
        """Walk the whole chain now (``verify``) and record the outcome as an event."""
        self.require_reader(user, "check_audit_chain")
        report = self.verify()
        self.record(CHAIN_CHECKED_EVENT, user, payload={
            "ok": report.ok, "checked": report.checked, "first_broken_seq": report.first_broken_seq,
            "first_broken_id": report.first_broken_id, "reason": report.reason, "key_id": report.key_id,
            "sealed_with": report.sealed_with})
        return ChainCheck(report, self.clock.now(), user.username, 0)

    def instance_timeline(self, user: User, instance_id: int) -> InstanceTimeline:
        """Every event of one instance, oldest first; submitted data as fields titled by the
        task's form. PermissionDenied for non-readers, NotFound for an unknown instance."""
        self.require_reader(user)
        instance = self.session.get(ProcessInstance, instance_id)
        if instance is None:
            raise NotFound(f"no instance {instance_id}")
        tasks = {t.id: t for t in self.session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id))}
        record = self.session.scalar(select(Ticket).where(Ticket.instance_id == instance_id))
        events = self.session.scalars(
            select(AuditEvent).where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.seq))
        forms = instance.definition.forms or {}
        entries: list[TimelineEntry] = []
        path: list[str] = []
        for ev in events:
            payload = ev.payload or {}
            task = tasks.get(ev.task_id) if ev.task_id else None
            task_name = payload.get("name") if isinstance(payload.get("name"), str) else None
            task_name = task_name or (task.name if task else None)
            schema = forms.get(task.form) if task is not None and task.form else None
            entries.append(TimelineEntry(ev, task_name, ev.event_type == REFUSED_EVENT,
                                         _data_fields(ev.event_type, payload, schema)))
            if ev.event_type == "task_completed" and payload.get("bpmn_id"):
                path.append(str(payload["bpmn_id"]))
        return InstanceTimeline(instance, record, entries, path)

    def _filtered(self, filters: AuditFilters) -> Select[Any]:
        query: Select[Any] = select(AuditEvent)
        if filters.instance_id is not None:
            query = query.where(AuditEvent.instance_id == filters.instance_id)
        if filters.record_number:
            record_instance = (select(Ticket.instance_id).where(Ticket.number == filters.record_number.upper())
                               .scalar_subquery())
            query = query.where(AuditEvent.instance_id == record_instance)
        if filters.process_id:
            query = query.where(AuditEvent.instance_id.in_(
                select(ProcessInstance.id).where(ProcessInstance.process_id == filters.process_id)))
        if filters.actor:
            query = query.where(self._actor_is(filters.actor))
        if filters.event_type:
            query = query.where(AuditEvent.event_type == filters.event_type)
        if filters.occurred_from is not None:
            query = query.where(AuditEvent.occurred_at >= filters.occurred_from)
        if filters.occurred_before is not None:
            query = query.where(AuditEvent.occurred_at < filters.occurred_before)
        return query

    def _actor_is(self, typed: str) -> ColumnElement[bool]:
        """The events of the actor ``typed`` names, in any letter case (usernames ignore it).

        A user's events are found by its id (ix_audit_event_actor_id): each stores the username
        (which never changes) beside the id, so these are the events whose actor reads that name,
        whatever case it is typed in. The platform's own actors (``engine``, ``scheduler``,
        ``cli``, ``sla``, ``system``, ``anonymous`` and the like) have no user: their stored name,
        in any letter case."""
        typed = typed.strip()
        by_name = func.lower(AuditEvent.actor) == func.lower(typed)
        user_id = self.session.scalar(select(User.id).where(func.lower(User.username) == func.lower(typed)))
        if user_id is not None:
            # and the events filed under that name without a user (a platform actor a user shares
            # a name with, a comment's author by name): nothing the name finds is left out
            return or_(AuditEvent.actor_id == user_id, and_(AuditEvent.actor_id.is_(None), by_name))
        return by_name

    def _rows(self, events: list[AuditEvent]) -> list[AuditRow]:
        ids = {e.instance_id for e in events if e.instance_id is not None}
        processes: dict[int, str] = {}
        numbers: dict[int, str] = {}
        if ids:
            processes = {i: p for i, p in self.session.execute(
                select(ProcessInstance.id, ProcessInstance.process_id).where(ProcessInstance.id.in_(ids)))}
            numbers = {i: n for i, n in self.session.execute(
                select(Ticket.instance_id, Ticket.number).where(Ticket.instance_id.in_(ids))) if i is not None}
        return [AuditRow(e, processes.get(e.instance_id) if e.instance_id else None,
                         numbers.get(e.instance_id) if e.instance_id else None) for e in events]

    def _last_seq(self) -> int:
        head = self.session.get(AuditHead, 1)
        return head.last_seq if head is not None else int(self.session.scalar(select(func.max(AuditEvent.seq))) or 0)


def _source_label(source: str) -> str:
    return "an unkeyed chain" if source == UNKEYED else f"sealed with key {source[:16]}"


def _row_fields(row: Row[Any]) -> dict[str, Any]:
    return _fields(row.seq, row.occurred_at, row.event_type, row.actor_id, row.actor, row.instance_id, row.task_id,
                   row.payload)


def _walk(session: Session, from_seq: int, batch_size: int) -> Iterator[Row[Any]]:
    """The stored events from ``from_seq`` on, in order, in keyset batches (plain rows: a walk over
    millions of events fills no identity map)."""
    while True:
        rows = session.execute(_WALK_EVENTS.where(_EVENTS.c.seq >= from_seq).limit(batch_size)).all()
        if not rows:
            return
        yield from rows
        from_seq = rows[-1].seq + 1


def _read_head(session: Session) -> Row[Any] | None:
    """The head as stored now (not a copy the session may hold)."""
    return session.execute(_READ_HEAD).first()


def _data_fields(event_type: str, payload: dict[str, Any], schema: dict[str, Any] | None) -> list[DataField]:
    """The values an event carries: submitted data, a record's changes, else its payload."""
    if event_type in _DATA_EVENTS and isinstance(payload.get("data"), dict):
        values: dict[str, Any] = payload["data"]
    elif event_type == "record_updated" and isinstance(payload.get("changes"), dict):
        values = payload["changes"]
    else:
        # What an event's payload leaves empty it says nothing about ("SLA clock stopped: targets {}")
        values = {k: v for k, v in payload.items() if k not in ("bpmn_id", "name") and v not in (None, {}, [], "")}
    properties = (schema or {}).get("properties") or {}
    fields = []
    for key, value in values.items():
        spec = properties.get(key)
        title = spec.get("title") if isinstance(spec, dict) and isinstance(spec.get("title"), str) else None
        fields.append(DataField(str(key), title, value, _choice_title(spec, value)))
    return fields


def _choice_title(spec: Any, value: Any) -> str | None:
    """The title a form's ``oneOf`` choice gives ``value`` (``{"const": true, "title": "Approve"}``),
    if it has one: the same value of the same type (``true`` is no choice titled for ``1``)."""
    choices = spec.get("oneOf") if isinstance(spec, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        if (isinstance(choice, dict) and "const" in choice and type(choice["const"]) is type(value)
                and choice["const"] == value and isinstance(choice.get("title"), str)):
            return str(choice["title"])
    return None


_EVENTS = cast(Table, AuditEvent.__table__)
_HEAD = cast(Table, AuditHead.__table__)
_HEAD_ID = 1
_HEAD_TIP = (_HEAD.c.last_seq, _HEAD.c.last_hash, _HEAD.c.key_id)
#: Lock the head row and read the tip in one statement. PostgreSQL: a row lock (concurrent writers
#: wait here, then read the tip their predecessor committed). SQLite: a write takes the database
#: lock, so touching the row first makes this transaction read the latest tip while holding it.
_LOCK_HEAD_FOR_UPDATE = select(*_HEAD_TIP).where(_HEAD.c.id == _HEAD_ID).with_for_update()
_LOCK_HEAD_BY_WRITE = (update(_HEAD).where(_HEAD.c.id == _HEAD_ID)
                       .values(last_seq=_HEAD.c.last_seq).returning(*_HEAD_TIP))
#: One executemany for all of a transaction's events (plain Core: no unit of work, no identity map).
_INSERT_EVENTS = insert(_EVENTS)
#: Move the tip and seal it; the last event's id is looked up by its (unique) seq rather than
#: fetched per row. The head keeps the key it names until ``reseal`` changes it: events appended
#: after a key change do not make an older chain look as if it were sealed with the new key.
_ADVANCE_HEAD = (
    update(_HEAD).where(_HEAD.c.id == _HEAD_ID)
    .values(last_seq=bindparam("tip_seq"), last_hash=bindparam("tip_hash"),
            last_event_id=select(_EVENTS.c.id).where(_EVENTS.c.seq == bindparam("tip_seq")).scalar_subquery(),
            key_id=func.coalesce(_HEAD.c.key_id, bindparam("key_id")), seal=bindparam("tip_seal"))
    .returning(_HEAD.c.last_event_id)
)
_WALK_EVENTS = select(*(_EVENTS.c[name] for name in (
    "id", "seq", "occurred_at", "event_type", "actor_id", "actor", "instance_id", "task_id", "payload", "prev_hash",
    "hash"))).order_by(_EVENTS.c.seq)
_READ_HEAD = select(_HEAD.c.last_seq, _HEAD.c.last_hash, _HEAD.c.key_id, _HEAD.c.seal).where(_HEAD.c.id == _HEAD_ID)
#: ``reseal``: one executemany per batch of rewritten events.
_RESEAL_EVENTS = (update(_EVENTS).where(_EVENTS.c.id == bindparam("event_id"))
                  .values(prev_hash=bindparam("new_prev"), hash=bindparam("new_hash")))


#: PostgreSQL: the events and the new tip in one statement (a data-modifying CTE), one round trip
#: less per commit. The events travel as one JSON array (``jsonb_to_recordset``), so the statement
#: is the same text for any number of them: SQLAlchemy compiles it once and psycopg prepares it
#: once. (A multi-row ``VALUES`` has no cache key in SQLAlchemy 2.0: it was compiled again on every
#: commit, about 1-2 ms each.) Values arrive exactly as they are hashed (``_fields``): the time as
#: ISO 8601 with its offset and microseconds, the payload as its JSON.
_EVENT_COLUMNS = tuple(column.name for column in _EVENTS.c if column.name != "id")
#: The recordset's columns typed as the table's (PostgreSQL spelling), so the JSON is read into
#: exactly the stored types.
_RECORDSET = ", ".join(f"{name} {_EVENTS.c[name].type.compile(dialect=postgresql.dialect())}"
                       for name in _EVENT_COLUMNS)
_APPEND_AND_ADVANCE_PG = text(
    "WITH appended AS ("
    f"INSERT INTO audit_event ({', '.join(_EVENT_COLUMNS)}) "
    f"SELECT {', '.join('r.' + name for name in _EVENT_COLUMNS)} "
    f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({_RECORDSET}) "
    "RETURNING id, seq) "
    "UPDATE audit_head SET last_seq = :tip_seq, last_hash = :tip_hash, "
    "last_event_id = (SELECT appended.id FROM appended WHERE appended.seq = :tip_seq), "
    "key_id = COALESCE(audit_head.key_id, :key_id), seal = :tip_seal "
    f"WHERE audit_head.id = {_HEAD_ID} RETURNING audit_head.last_event_id"
)


def _iso_utc(value: datetime, dialect: Any) -> str:
    """``occurred_at`` as the column type stores it (UTC; a naive time refused), as ISO 8601."""
    stored = cast(UTCDateTime, _EVENTS.c.occurred_at.type).process_bind_param(value, dialect)
    return stored.isoformat(timespec="microseconds") if stored is not None else ""


def _write_pending(session: Session) -> None:
    """Append the queued events to the chain: lock and read the tip, insert, move the tip."""
    pending: list[_Pending] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    key: AuditKey | None = session.info.get(_SEALER_KEY)
    if key is None:  # queued around AuditLog: refuse to write events nobody can verify
        raise RuntimeError("audit events were queued without an audit key")
    if not session.info.get(_REFUSALS_KEY):
        session.info.pop(_SEALER_KEY, None)
    # Flush the request's own changes first (as an ORM query here would), so the head row stays
    # locked only for the appends themselves.
    session.flush()
    connection = session.connection()
    lock = _LOCK_HEAD_FOR_UPDATE if connection.dialect.name == "postgresql" else _LOCK_HEAD_BY_WRITE
    seq, prev_hash, stored_key_id = connection.execute(lock).one()
    rows: list[dict[str, Any]] = []
    for item in pending:
        seq += 1
        fields = _fields(seq, item.occurred_at, item.event_type, item.actor_id, item.actor,
                         item.instance_id, item.task_id, item.payload)
        digest = key.digest(prev_hash, fields)
        rows.append({
            "seq": seq,
            "occurred_at": item.occurred_at,
            "event_type": item.event_type,
            "actor_id": item.actor_id,
            "actor": item.actor,
            "instance_id": item.instance_id,
            "task_id": item.task_id,
            "payload": item.payload,
            "prev_hash": prev_hash,
            "hash": digest,
        })
        prev_hash = digest
    tip = {"tip_seq": seq, "tip_hash": prev_hash, "key_id": key.key_id, "tip_seal": key.head_seal(seq, prev_hash)}
    if connection.dialect.name == "postgresql":
        encoded = json.dumps([{**row, "occurred_at": _iso_utc(row["occurred_at"], connection.dialect)} for row in rows],
                             ensure_ascii=False, separators=(",", ":"))
        last_event_id = connection.execute(_APPEND_AND_ADVANCE_PG, {"rows": encoded, **tip}).scalar_one()
    else:
        connection.execute(_INSERT_EVENTS, rows)
        last_event_id = connection.execute(_ADVANCE_HEAD, tip).scalar_one()
    # The writes bypassed the ORM: a head already loaded in this session shows the new tip too.
    head = session.identity_map.get(Session.identity_key(AuditHead, _HEAD_ID))
    if head is not None:
        set_committed_value(head, "last_seq", seq)
        set_committed_value(head, "last_hash", prev_hash)
        set_committed_value(head, "last_event_id", last_event_id)
        set_committed_value(head, "key_id", stored_key_id or key.key_id)
        set_committed_value(head, "seal", tip["tip_seal"])


def _drop_pending(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING_KEY, None)
    if not session.info.get(_REFUSALS_KEY):
        session.info.pop(_SEALER_KEY, None)


def install_session_hooks() -> None:
    """Attach the chain writer to every Session (idempotent)."""
    if not event.contains(Session, "before_commit", _write_pending):
        event.listen(Session, "before_commit", _write_pending)
        event.listen(Session, "after_soft_rollback", _drop_pending)
