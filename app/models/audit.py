"""The append-only audit chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, str64, str128


class AuditEvent(Base):
    """One event. ``hash`` = HMAC-SHA256, under the desk's audit key, over ``prev_hash`` and the
    canonical JSON of the event (chains written before migration 0018: plain SHA-256 until resealed;
    see ``app.services.audit``)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_instance_seq", "instance_id", "seq"),)

    id: Mapped[intpk]
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    occurred_at: Mapped[datetime]
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str128]
    instance_id: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str64]
    hash: Mapped[str64]


class AuditHead(Base):
    """A single row holding the chain's tip; locking it serialises appends across workers.

    ``key_id`` names the key the chain is sealed with (a fingerprint, HMAC(key, "key id"), never the
    key); ``seal`` is an HMAC of the tip under that key, so the tail cannot be cut off and the head
    moved back without the key. Neither decides how the chain is verified: verification always
    uses the configured key, they only let it say what went wrong.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str64]
    last_event_id: Mapped[int | None] = mapped_column(Integer)
    key_id: Mapped[str | None] = mapped_column(String(64))
    seal: Mapped[str | None] = mapped_column(String(64))
