"""Ticket records (INC/CHG/PRB/REQ), their links, comments, attachments, watchers and number sequences; knowledge
articles; notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from .base import Base, intpk, str64, str128, str255, timestamp
from .user import User


class RecordSequence(Base):
    """One row per record kind; incremented inside the creating transaction, so numbers have no
    gaps (a rolled-back creation rolls its number back) and no duplicates (the row is locked)."""

    __tablename__ = "record_sequence"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(8))
    last_value: Mapped[int] = mapped_column(Integer, default=0)


#: How urgent a record's priority is, 1 the most, for ordering work (the task lists' "priority").
#: The SLA priorities P1-P4 rank 1-4. A change's priority is its risk (change_risk.dmn): a high-risk
#: change ranks with a P2 (urgent, though not an outage), medium with a P3, low with a P4, so one
#: order puts the most urgent work first whatever the record's kind. Values match exactly, as the
#: processes write them.
PRIORITY_RANKS: dict[str, int] = {"P1": 1, "P2": 2, "P3": 3, "P4": 4, "high": 2, "medium": 3, "low": 4}
#: The rank of any other priority a process writes: after every known one.
OTHER_PRIORITY_RANK = 5
#: The rank of no priority (and, in the task lists, of a task without a record): last.
NO_PRIORITY_RANK = 6


def priority_rank(priority: str | None) -> int:
    """The rank of a record priority (``PRIORITY_RANKS``; other values, then none, last)."""
    if priority is None:
        return NO_PRIORITY_RANK
    return PRIORITY_RANKS.get(priority, OTHER_PRIORITY_RANK)


#: Only records with a running SLA clock have a due instant: closed records (most of them) stay
#: out of the indexes that order work by it, so those indexes are about as large as the open work.
_HAS_SLA_DUE = text("sla_due_at IS NOT NULL")
#: Only records with a planned window (changes, once planned) are on the change schedule.
_HAS_PLANNED = text("planned_start_at IS NOT NULL")


class Ticket(Base):
    __tablename__ = "ticket"
    __table_args__ = (
        Index("ix_ticket_kind_status", "kind", "status"),
        Index("ix_ticket_group_status", "assignment_group", "status"),
        Index("ix_ticket_opened", "opened_at"),
        # The record list's common shape: one kind and status, newest first. The id is the list's
        # tie-break (ORDER BY opened_at, id), so the index gives that order whole: a page reads
        # per_page entries however many records share an opened_at, no sort of the matches.
        Index("ix_ticket_kind_status_opened_id", "kind", "status", "opened_at", "id"),
        # The task lists' orders (TaskService.list_tasks): records by SLA due instant, and by priority
        # rank then due instant; the instance id lets the lists reach the tasks from the index alone.
        Index("ix_ticket_sla_due", "sla_due_at", "instance_id", sqlite_where=_HAS_SLA_DUE, postgresql_where=_HAS_SLA_DUE),
        Index("ix_ticket_rank_sla_due", "priority_rank", "sla_due_at", "instance_id",
              sqlite_where=_HAS_SLA_DUE, postgresql_where=_HAS_SLA_DUE),
        # The change schedule's read: the planned windows that reach into a range (only records with
        # a window, changes, are in it).
        Index("ix_ticket_planned", "planned_start_at", "planned_end_at",
              sqlite_where=_HAS_PLANNED, postgresql_where=_HAS_PLANNED),
    )

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(64), default="new")
    priority: Mapped[str | None] = mapped_column(String(16), index=True)
    category: Mapped[str | None] = mapped_column(String(64))
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    #: Who logged the record for its requester (a service desk agent taking a call: the caller is
    #: the requester); None when the requester raised it themselves.
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    assignment_group: Mapped[str | None] = mapped_column(String(128))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    service: Mapped[str | None] = mapped_column(String(255))
    #: The configuration item the record is about: free text, or a CMDB CI's name (indexed: a CI
    #: page lists the records that name it).
    ci: Mapped[str | None] = mapped_column(String(255), index=True)
    details: Mapped[dict[str, Any]]
    opened_at: Mapped[timestamp]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[timestamp]
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    #: ``priority_rank(priority)``, kept by ``_rank_priority`` whenever the priority is set.
    priority_rank: Mapped[int] = mapped_column(SmallInteger, default=NO_PRIORITY_RANK,
                                               server_default=text(str(NO_PRIORITY_RANK)))
    #: The record's SLA due instant as its stored clocks (``sla_clock``) say: the earliest ``due_at``
    #: among them. Only a running clock has one (the past breach instant once breached), so None
    #: while every clock is paused or stopped, or the record has none. Written by the SLA service
    #: whenever it stores the clocks.
    sla_due_at: Mapped[datetime | None]
    #: The earliest ``warning_at`` of the stored clocks that have a due instant: when the first
    #: running clock is, or was, at risk (the warning instant stays once reached). None without
    #: ``sla_due_at``.
    sla_warning_at: Mapped[datetime | None]
    #: The window the record's work is planned for (a change's planned start and end), copied from
    #: the variables its record mapping's ``schedule`` names (``RecordService.sync``); both set or
    #: neither. The change schedule (app/services/schedule.py) reads them.
    planned_start_at: Mapped[datetime | None]
    planned_end_at: Mapped[datetime | None]

    requester: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[requester_id])
    assignee: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[assignee_id])
    # Read only where a record is shown whole (its page, the API's record), and only when set.
    opened_by: Mapped[User | None] = relationship(lazy="select", foreign_keys=[opened_by_id])

    @property
    def opened_by_name(self) -> str | None:
        """The user name of who logged the record for its requester; None when the requester
        raised it (then without reading ``opened_by``)."""
        return self.opened_by.username if self.opened_by_id is not None and self.opened_by is not None else None

    @validates("priority")
    def _rank_priority(self, _key: str, priority: str | None) -> str | None:
        # Every write of the priority goes through here (the process's record mapping, an SLA
        # escalation), so the rank is written with it: by the same UPDATE.
        self.priority_rank = priority_rank(priority)
        return priority


class TicketLink(Base):
    """A directed, typed link between two records; shown on both, worded from each end.

    One row per (source, target, type). What a type states is RecordService's (``LINK_RELATIONS``):
    it also refuses a second row stating the same relation from the other end ("related" either
    way, "caused_by" from an incident and "related_incident" from its problem).
    """

    __tablename__ = "ticket_link"
    __table_args__ = (UniqueConstraint("source_id", "target_id", "link_type"),)

    id: Mapped[intpk]
    source_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    link_type: Mapped[str64]
    created_at: Mapped[timestamp]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    source: Mapped[Ticket] = relationship(foreign_keys=[source_id])
    target: Mapped[Ticket] = relationship(foreign_keys=[target_id])


class TicketComment(Base):
    __tablename__ = "ticket_comment"

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    author_name: Mapped[str128]
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[timestamp]


class TicketAttachment(Base):
    """A file attached to a record (a screenshot, a log), stored in the database with the record:
    one backup holds both, and whoever may read the record reads its files (``RecordService``).

    ``filename`` is the sanitised base name the uploader sent; ``content_type`` what their client
    claimed, kept for the list only: downloads choose their own type (app/api/tickets.py).
    ``data`` is deferred: lists of attachments never read the bytes.
    """

    __tablename__ = "ticket_attachment"

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str255]
    content_type: Mapped[str128]
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    uploaded_by: Mapped[str128]
    uploaded_at: Mapped[timestamp]


class RecordWatcher(Base):
    """Someone who follows a record: one user, or one group (its members as they are when the
    record is read). Watchers read the record (``RecordService.may_see``) but act on it no more than
    they could without watching; a user watcher hears its news as its requester does. Added by a
    diagram's ``notify`` step, by closing a record as its duplicate, or by asking (app/services/
    watching.py); a user stops watching, or the desk's staff take them off; a group stays.

    Exactly one of ``user_id`` and ``group_name`` is set; each user and each group watches a record
    once (NULLs are distinct, so each unique constraint holds for its own kind of row only).
    """

    __tablename__ = "record_watcher"
    __table_args__ = (
        UniqueConstraint("ticket_id", "user_id", name="uq_record_watcher_ticket_user"),
        UniqueConstraint("ticket_id", "group_name", name="uq_record_watcher_ticket_group"),
        CheckConstraint("(user_id IS NULL) <> (group_name IS NULL)", name="one_watcher"),
    )

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    group_name: Mapped[str | None] = mapped_column(String(128))
    added_at: Mapped[timestamp]
    #: Made while the user was the desk's staff (by asking, or by a duplicate's closing moving it):
    #: for news only. Staff read every record anyway, and one demoted later must not keep reading
    #: what they followed as staff (``watched_by`` leaves such watches out).
    chosen: Mapped[bool] = mapped_column(default=False)


class KnowledgeArticle(Base):
    """A knowledge article: draft -> published -> retired (and published again). ``version``
    counts its saved texts, from 1; each edit keeps the text it replaces as a ``KnowledgeRevision``
    and is accepted only from a client that edited the current version (optimistic concurrency).
    An article published from a problem (a known error) names it as ``source_ticket_id``; the
    problem's status is read live, never copied here."""

    __tablename__ = "knowledge_article"

    id: Mapped[intpk]
    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    symptoms: Mapped[str] = mapped_column(Text, default="")
    cause: Mapped[str] = mapped_column(Text, default="")
    workaround: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default="published")
    source_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    created_at: Mapped[timestamp]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    updated_at: Mapped[datetime | None]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    published_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id], lazy="selectin")
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id], lazy="selectin")


class KnowledgeRevision(Base):
    """The text of one earlier version of an article, kept when an edit replaced it: ``version``
    is the replaced version's number, ``created_by``/``created_at`` who replaced it and when, and
    ``note`` the editor's optional word on why."""

    __tablename__ = "knowledge_revision"
    __table_args__ = (UniqueConstraint("article_id", "version", name="uq_knowledge_revision_article_version"),)

    id: Mapped[intpk]
    article_id: Mapped[int] = mapped_column(ForeignKey("knowledge_article.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    symptoms: Mapped[str] = mapped_column(Text, default="")
    cause: Mapped[str] = mapped_column(Text, default="")
    workaround: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[timestamp]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    created_by: Mapped[User | None] = relationship(lazy="selectin")


class KnowledgeFeedback(Base):
    """One reader's answer to "Was this article helpful?": ``helpful`` true or false, one row per
    reader and article (asked again, the answer changes; ``updated_at`` when it last did)."""

    __tablename__ = "knowledge_feedback"
    __table_args__ = (UniqueConstraint("article_id", "user_id", name="uq_knowledge_feedback_article_user"),)

    id: Mapped[intpk]
    article_id: Mapped[int] = mapped_column(ForeignKey("knowledge_article.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    helpful: Mapped[bool]
    created_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]


class Notification(Base):
    """An in-app notification for one user."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_read", "user_id", "read_at"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    subject: Mapped[str255]
    body: Mapped[str] = mapped_column(Text, default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    created_at: Mapped[timestamp]
    read_at: Mapped[datetime | None]
