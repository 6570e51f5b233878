"""Change freeze windows: periods in which no planned change may be scheduled; users' calendar
subscriptions to the change schedule (app/services/schedule.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, str128, timestamp
from .user import User


class ChangeFreeze(Base):
    """A freeze (a blackout window): from ``starts_at`` until ``ends_at`` no change that must be
    approved may be planned to run, on the configuration item ``ci`` or, without one, anywhere.
    Emergency changes may (their process's ``schedule.exempt`` says which), and show the freeze
    as a conflict."""

    __tablename__ = "change_freeze"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_change_freeze_window", "starts_at", "ends_at"),
    )

    id: Mapped[intpk]
    name: Mapped[str128]
    reason: Mapped[str] = mapped_column(Text, default="")
    #: The configuration item the freeze holds for (a CMDB CI's name, or free text as a record's
    #: ``ci``); None: every change.
    ci: Mapped[str | None] = mapped_column(String(255))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[timestamp]

    created_by: Mapped[User | None] = relationship(lazy="joined")


class ScheduleFeed(Base):
    """A user's calendar subscription to the change schedule: the address
    ``/schedule/feed/<secret>.ics`` that a calendar (Outlook, Google Calendar) reads on its own,
    with no session. The row keeps the secret's keyed hash only; one per user (a new one replaces
    it). It reads as its user would, and ends with their password change (``token_generation``,
    as their API tokens) or their deactivation."""

    __tablename__ = "schedule_feed"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[timestamp]
    #: When a calendar last read it, to the hour (a calendar reads every few minutes to hours: the
    #: row is written at most hourly).
    last_read_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")
