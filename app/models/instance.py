"""Process instances and their human tasks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, str64, str128, timestamp, utcnow
from .definition import ProcessDefinition
from .user import User

if TYPE_CHECKING:
    from .record import Ticket


class InstanceStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"


class TaskStatus(StrEnum):
    READY = "ready"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_process_instance_process_status", "process_id", "status"),)

    id: Mapped[intpk]
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    process_id: Mapped[str128]
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]]
    error: Mapped[dict[str, Any] | None]
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    created_at: Mapped[timestamp]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_timer_at: Mapped[datetime | None] = mapped_column(index=True)
    # A sweeper's claim on this instance's due timers; an expired claim (a killed sweeper) is free.
    timer_claimed_until: Mapped[datetime | None]
    timer_claimed_by: Mapped[str | None] = mapped_column(String(64))
    # Claims in a row that neither fired nor were given back: sweepers that died or hung on this
    # instance's timers (app/services/timers.py puts it into error past MAX_TIMER_ATTEMPTS).
    timer_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # Optimistic lock: every UPDATE checks and bumps it; a lost race is a 409, never a lost update.
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    definition: Mapped[ProcessDefinition] = relationship(lazy="joined")
    started_by: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[started_by_id])
    # Read only together with the task a request works on (TaskService.get), so a step needs no
    # query of its own for them; never loaded on access. See loaded_with().
    open_tasks: Mapped[list[HumanTask]] = relationship(
        primaryjoin="and_(HumanTask.instance_id == ProcessInstance.id, HumanTask.state == 'ready')",
        viewonly=True, lazy="raise", order_by="HumanTask.id")
    record: Mapped[Ticket | None] = relationship(
        primaryjoin="Ticket.instance_id == ProcessInstance.id", foreign_keys="Ticket.instance_id",
        viewonly=True, uselist=False, lazy="raise")

    __mapper_args__ = {"version_id_col": lock_version}


class HumanTask(Base):
    """A user task as people see it: who may work on it, who claimed and completed it."""

    __tablename__ = "human_task"
    __table_args__ = (
        UniqueConstraint("instance_id", "engine_task_id"),
        Index("ix_human_task_state_lane", "state", "lane"),
        # Inbox pages: ready tasks in id order.
        Index("ix_human_task_state_id", "state", "id"),
        # An instance's open tasks, read with the task of every step: without the state in the
        # index, an instance that looped 10,000 times had all its task rows scanned per step.
        Index("ix_human_task_instance_state", "instance_id", "state"),
        # Where a process's work waits (app/services/task_stats.py): its tasks by state.
        Index("ix_human_task_process_state", "process_id", "state"),
    )

    id: Mapped[intpk]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    engine_task_id: Mapped[str64]
    bpmn_id: Mapped[str128]
    name: Mapped[str] = mapped_column(String(255))
    lane: Mapped[str | None] = mapped_column(String(128))
    process_id: Mapped[str128]
    form: Mapped[str | None] = mapped_column(String(128))
    ui_form: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    # From the task's assignedUserVar / candidateGroupVar properties: who may work it, over the lane.
    assigned_user: Mapped[str | None] = mapped_column(String(128), index=True)
    candidate_group: Mapped[str | None] = mapped_column(String(128))
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[timestamp]
    completed_at: Mapped[datetime | None]
    # Idle reminders: when the last one went out and how many.
    reminded_at: Mapped[datetime | None]
    reminder_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Who may not do the task (separation of duties, excludeUsersVars) when it became ready, as
    #: ",alice,bob,": kept out of their queue. Claiming and completing check the live data again.
    excluded_users: Mapped[str | None] = mapped_column(Text)
    # Out of office: the user the task was assigned to by name before it went to their delegate
    # (``assigned_user``) for their absence; it goes back to them when the absence ends (app/services/away.py).
    delegated_from: Mapped[str | None] = mapped_column(String(128), index=True)

    instance: Mapped[ProcessInstance] = relationship(lazy="joined")
    claimed_by: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[claimed_by_id])
    completed_by: Mapped[User | None] = relationship(lazy="select", foreign_keys=[completed_by_id])
