"""One-time form submission tokens: a form sent twice creates its record (or comment) once."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, timestamp


class SubmissionToken(Base):
    """A create form's one-time token, written in the same transaction as what the form created.

    A page renders a random ``token`` into its form; the POST that creates the record writes this
    row with it. A second POST of the same form (a double click, a resent request) finds the row,
    creates nothing and goes where the first one went (``result_url``). Unique per user: another
    user's token is never matched. Rows older than a day are pruned as new ones are written
    (app/services/submissions.py), through the ``created_at`` index.
    """

    __tablename__ = "submission_token"
    __table_args__ = (
        UniqueConstraint("user_id", "token", name="uq_submission_token_user_id_token"),
        Index("ix_submission_token_created_at", "created_at"),
    )

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(64))
    #: Where the first submission led: the created record's page (or the comment's anchor on it).
    result_url: Mapped[str] = mapped_column(String(255), default="")
    #: What it created, for the message shown to a repeat: a record number (None for a comment).
    result_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[timestamp]
