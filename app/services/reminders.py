"""Reminders for idle tasks: a ready task untouched for TASK_REMINDER_HOURS reminds whoever holds
it (its claimant, else its assigned user, group or lane), then again after each further period."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select

from app.db import begin_write
from app.languages import Content, Text
from app.models import HumanTask, TaskStatus

from .notifications import Person

if TYPE_CHECKING:
    from . import Services


class ReminderService:
    def __init__(self, services: Services) -> None:
        self.services = services

    def recipients(self, task: HumanTask) -> list[Person]:
        notifier = self.services.notifications
        if task.claimed_by is not None:
            return [task.claimed_by]
        if task.assigned_user or task.candidate_group or task.lane:
            return notifier.task_queue(task)
        starter = task.instance.started_by
        return [starter] if starter is not None else []

    def sweep(self, limit: int = 200) -> int:
        """Send the reminders that are due; one transaction; returns how many tasks reminded."""
        hours = int(self.services.runtime.config.get("TASK_REMINDER_HOURS") or 0)
        if hours <= 0:
            return 0
        session = self.services.session
        begin_write(session)
        cutoff = self.services.runtime.clock.now() - timedelta(hours=hours)
        due = select(HumanTask).where(
            HumanTask.state == TaskStatus.READY,
            or_(and_(HumanTask.reminded_at.is_(None), HumanTask.created_at < cutoff), HumanTask.reminded_at < cutoff),
        ).order_by(HumanTask.id).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            # Several sweepers run at once (each web worker's scheduler, `flask scheduler run`):
            # a task another one is reminding is its (skipped, not waited for), else both would
            # remind everyone. SQLite: begin_write already holds the one write lock.
            due = due.with_for_update(skip_locked=True, of=HumanTask)
        count = 0
        for task in session.scalars(due):
            task.reminded_at = self.services.runtime.clock.now()
            task.reminder_count += 1
            people = self.recipients(task)
            ticket = self.services.records.for_instance(task.instance_id)
            label = f"{ticket.number}: {ticket.title}" if ticket else f"{task.process_id} #{task.instance_id}"
            said = {"task": Content(task.process_id, task.name), "label": label}
            self.services.notifications.notify(
                people, "task.reminder", Text("Reminder: %(task)s (%(label)s) is waiting", **said),
                Text("%(task)s for %(label)s has waited %(waited)s: %(link)s",
                     waited=_waited(task.reminded_at - task.created_at),
                     link=self.services.notifications.link(task_id=task.id), **said),
                ticket=ticket, payload={"task_id": task.id, "reminder": task.reminder_count})
            self.services.audit.record("task_reminder_sent", None, instance_id=task.instance_id, task_id=task.id,
                                       payload={"reminder": task.reminder_count, "recipients": sorted(u.username for u in people)},
                                       actor_name="scheduler")
            count += 1
        session.commit()
        return count


def _waited(span: timedelta) -> Text:
    """How long a task has waited, in whole hours or, from two days on, whole days (QA: a task
    first reminded after 72 hours read "more than 24 hours": the reminder count times the
    interval, not the time it waited)."""
    hours = max(int(span.total_seconds() // 3600), 0)
    if hours >= 48:
        return Text("%(count)d days", count=hours // 24)
    return Text("1 hour") if hours == 1 else Text("%(count)d hours", count=hours)
