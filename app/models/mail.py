"""Inbound e-mail: one row per message the mail gateway received (app/services/mail.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, timestamp


class InboundMail(Base):
    """A message the mail gateway took, and what became of it.

    ``message_id`` is the message's Message-ID without its angle brackets (``sha256:<hex>`` of the
    raw bytes when it has none, or one longer than the column): unique, so a message delivered
    twice is acted on once. ``outcome`` is one of ``created`` (a new incident), ``commented`` (a
    reply on ``number``), ``decided`` (an approver's yes or no answered the approval of ``number``),
    ``refused`` (an unknown or inactive sender), ``ignored`` (auto-replies,
    bulk mail, bounces, our own mail) or ``failed`` (the desk said no: the record is closed, a file
    is too large...; a later delivery of the same message is tried again). ``reason`` says why.
    """

    __tablename__ = "inbound_mail"
    __table_args__ = (Index("ix_inbound_mail_received_at", "received_at"),)

    id: Mapped[intpk]
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    number: Mapped[str | None] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[timestamp]
    #: When a message that failed before was delivered again and acted on (None: never retried).
    retried_at: Mapped[datetime | None]
