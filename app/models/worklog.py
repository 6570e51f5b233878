"""Time worked on a record: what each person of the desk spent on it, on which day
(app/services/worklog.py)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, str128, timestamp


class WorkLog(Base):
    """``minutes`` spent on record ``ticket_id`` on day ``worked_on`` by ``user_id`` (its name kept
    in ``user_name``, as a comment keeps its author's), with an optional ``note`` of what was done.
    The reports add them up by the day worked (the index), the record by its own id."""

    __tablename__ = "work_log"
    __table_args__ = (
        CheckConstraint("minutes BETWEEN 1 AND 1440", name="minutes_in_a_day"),
        Index("ix_work_log_worked_on", "worked_on"),
    )

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    user_name: Mapped[str128]
    minutes: Mapped[int] = mapped_column(Integer)
    worked_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[timestamp]
