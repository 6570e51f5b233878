"""Recurring requests: a process started again and again with the same data, on a weekly or
monthly rule (app/services/recurring.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, intpk, str128, timestamp
from .user import User


class RecurringRequest(Base):
    """Started as ``owner`` (for ``requested_for``, a user name, when set) with ``data`` on the
    weekdays ``days`` names (a bit each, Monday 1 to Sunday 64; with ``week``, only that week of the
    month: 1 to 4, 5 the last) at ``minute`` after midnight on the clocks of ``timezone``.
    ``next_run_at`` is the next start (UTC); None while it is paused (``active`` false)."""

    __tablename__ = "recurring_request"
    __table_args__ = (
        CheckConstraint("days >= 1 AND days <= 127", name="days_bits"),
        CheckConstraint("minute >= 0 AND minute < 1440", name="minute_in_day"),
        CheckConstraint("week IS NULL OR (week >= 1 AND week <= 5)", name="week_of_month"),
    )

    id: Mapped[intpk]
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str128]
    process_id: Mapped[str128]
    data: Mapped[dict[str, Any]]
    requested_for: Mapped[str | None] = mapped_column(String(128))
    days: Mapped[int]
    week: Mapped[int | None]
    minute: Mapped[int]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    active: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="SET NULL"))
    #: Why the last run started nothing (and the request was paused); None after a start.
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The start the data's dates and times were written for: each run moves them on by as much
    #: as its own start is later (a change planned for 10:00 after a 09:00 start stays so).
    anchor_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    runs: Mapped[int] = mapped_column(default=0)
    #: Runs in a row that met a race or a lost connection (tried again at the next sweep; paused
    #: after ``MAX_ATTEMPTS``: a "conflict" that always comes back is no race).
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]

    owner: Mapped[User] = relationship(foreign_keys=[owner_id], lazy="joined")


#: The sweep's question: the active requests due, earliest first.
Index("ix_recurring_request_due", RecurringRequest.active, RecurringRequest.next_run_at)
