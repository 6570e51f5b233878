"""Outgoing messages: the transactional outbox, its delivery log, and webhook subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, str64, str255, timestamp


class OutboxMessage(Base):
    """A message to deliver, written in the same transaction as the step that caused it.

    The sweeper delivers it later: a failing mail server or webhook never rolls a step back, and a
    step that rolled back leaves no message behind.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    event_id: Mapped[str64] = mapped_column(unique=True)
    event_type: Mapped[str64]
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    recipient: Mapped[str] = mapped_column(String(1000))  # email address or webhook URL
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhook.id", ondelete="SET NULL"))
    subject: Mapped[str255]
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]]
    # pending | sent | dead | cancelled (its webhook was deleted before it was sent)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # deliveries not attempted in a row (no resolver thread free); see notifications.MAX_DEFERRALS
    deferrals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[timestamp]
    sent_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempt"

    id: Mapped[intpk]
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[float] = mapped_column(default=0.0)


class Webhook(Base):
    """A subscription of a URL to events; deleting one keeps the row (with ``deleted_at`` set and the
    secret wiped) so that its outbox messages and delivery log still say where they were sent."""

    __tablename__ = "webhook"

    id: Mapped[intpk]
    url: Mapped[str] = mapped_column(String(1000))
    secret: Mapped[str255]
    events: Mapped[list[Any]]  # event types, or ["*"]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[timestamp]
    deleted_at: Mapped[datetime | None]
