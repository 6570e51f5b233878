"""Service status: notices the desk posts about an outage, a degraded service or planned
maintenance, their updates, and who said it affects them (app/services/status.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, timestamp
from .record import Ticket
from .user import User


class StatusNotice(Base):
    """A notice on the service status page: ``level`` says how bad (an outage, a degraded service,
    planned maintenance, or news), ``service`` what it is about (a CMDB item's name or the words the
    desk uses), ``record`` the incident or change behind it. It shows from ``starts_at`` (maintenance
    is announced ahead) until it is resolved; ``expected_end_at`` is the desk's estimate. ``version``
    goes up with each update: an update written over an older one is refused."""

    __tablename__ = "status_notice"
    __table_args__ = (
        CheckConstraint("level IN ('outage', 'degraded', 'maintenance', 'info')", name="level_known"),
        Index("ix_status_notice_open", "resolved_at", "starts_at"),
    )

    id: Mapped[intpk]
    title: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(String(255))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"), index=True)
    starts_at: Mapped[datetime]
    expected_end_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]

    record: Mapped[Ticket | None] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(lazy="joined")


class StatusUpdate(Base):
    """One entry of a notice's timeline: what the desk said, at which level; the first is the
    notice's posting, the last of a resolved notice its resolution."""

    __tablename__ = "status_update"
    __table_args__ = (
        CheckConstraint("kind IN ('posted', 'update', 'resolved')", name="kind_known"),
    )

    id: Mapped[intpk]
    notice_id: Mapped[int] = mapped_column(ForeignKey("status_notice.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[timestamp]

    author: Mapped[User | None] = relationship(lazy="joined")


class StatusAffected(Base):
    """A user who said a notice affects them: they are told its updates and its resolution."""

    __tablename__ = "status_affected"
    __table_args__ = (PrimaryKeyConstraint("notice_id", "user_id"),)

    notice_id: Mapped[int] = mapped_column(ForeignKey("status_notice.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[timestamp]
