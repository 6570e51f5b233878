"""SLA policies and the clocks of each record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, str64, timestamp


class SlaPolicy(Base):
    """Targets for one record kind and priority (optionally one service), with calendar, pauses
    and escalation rules."""

    __tablename__ = "sla_policy"
    __table_args__ = (UniqueConstraint("kind", "priority", "service"),)

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(255), default="")  # "" = any service
    response_seconds: Mapped[int] = mapped_column(Integer)
    resolution_seconds: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[dict[str, Any]]
    pause_statuses: Mapped[list[Any]]
    warning_ratio: Mapped[float] = mapped_column(Float, default=0.75)
    escalation: Mapped[dict[str, Any]]
    updated_at: Mapped[timestamp]


class SlaEvent(Base):
    """What happened to a record's clocks, in order; the clocks are recomputed from these."""

    __tablename__ = "sla_event"
    __table_args__ = (Index("ix_sla_event_ticket", "ticket_id", "id"),)

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))  # start | pause | resume | priority | stop
    targets: Mapped[dict[str, Any] | None]
    clocks: Mapped[list[Any] | None]
    reason: Mapped[str | None] = mapped_column(String(255))


class SlaClock(Base):
    """The latest evaluation of one clock, kept for queries and for the sweep's next check."""

    __tablename__ = "sla_clock"
    __table_args__ = (UniqueConstraint("ticket_id", "name"), Index("ix_sla_clock_check", "next_check_at"))

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    name: Mapped[str64]
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policy.id", ondelete="SET NULL"))
    target_seconds: Mapped[float] = mapped_column(Float)
    elapsed_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime | None]
    warning_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    warned: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    next_check_at: Mapped[datetime | None]
    evaluated_at: Mapped[timestamp]
