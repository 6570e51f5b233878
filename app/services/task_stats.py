"""Where a process's work waits: per user task of its diagram, the tasks waiting now and for how
long the oldest has, and over a recent period how many were done and how long they took (mean and
median hours from the task's creation to its completion: time in the queue and at work together).
What Camunda's Cockpit shows as a heat map, for the process owner who looks for the bottleneck.

Counted over every version of the process (a task keeps its BPMN id from one version to the next)
and only its own tasks (``human_task.process_id``: a called process's tasks count for that
process). Every figure is a SQL aggregate, the same on SQLite and PostgreSQL (the median as in
app/services/reports.py), read through ``ix_human_task_process_state`` whatever the size of the
desk. "Now" is the application's clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import HumanTask, TaskStatus

from .reports import hours_between, median_hours, ranked_hours

#: The period the figures of done tasks cover by default, and at most, in days up to now.
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _round(value: Any) -> float | None:
    return round(float(value), 1) if value is not None else None


def task_statistics(session: Session, process_id: str, user_tasks: list[dict[str, Any]], now: datetime,
                    days: int = DEFAULT_DAYS) -> dict[str, Any]:
    """The figures of each of ``user_tasks`` (the diagram's user tasks, as a definition stores
    them: ``bpmn_id`` and ``name``), in their order, then of any other BPMN id the process's tasks
    have had (a task an earlier version had): ``bpmn_id``, ``name``, ``waiting`` (ready now),
    ``oldest_waiting_hours``, ``done`` (completed within the last ``days``), ``mean_hours`` and
    ``median_hours`` (of those). ``busiest``: the BPMN id with the most tasks waiting (None when
    none waits)."""
    since = now - timedelta(days=days)
    own = HumanTask.process_id == process_id
    waiting = {bpmn_id: (int(count), oldest) for bpmn_id, count, oldest in session.execute(
        select(HumanTask.bpmn_id, func.count(), func.min(HumanTask.created_at))
        .where(own, HumanTask.state == TaskStatus.READY).group_by(HumanTask.bpmn_id))}
    hours = hours_between(HumanTask.created_at, HumanTask.completed_at)
    ranked = select(HumanTask.bpmn_id.label("bpmn_id"), *ranked_hours(hours, (HumanTask.bpmn_id,), HumanTask.id)).where(
        own, HumanTask.state == TaskStatus.COMPLETED, HumanTask.completed_at >= since).subquery()
    done = {bpmn_id: (int(count), mean, median) for bpmn_id, count, mean, median in session.execute(
        select(ranked.c.bpmn_id, func.count(), func.avg(ranked.c.hours), median_hours(ranked))
        .group_by(ranked.c.bpmn_id))}
    names = {str(t["bpmn_id"]): t.get("name") or str(t["bpmn_id"]) for t in user_tasks}
    order = [*names, *sorted((set(waiting) | set(done)) - set(names))]
    if len(order) > len(names):
        earlier: dict[str, str | None] = {bpmn_id: name for bpmn_id, name in session.execute(
            select(HumanTask.bpmn_id, func.max(HumanTask.name)).where(
                own, HumanTask.bpmn_id.in_([b for b in order if b not in names])).group_by(HumanTask.bpmn_id))}
        names.update({b: earlier.get(b) or b for b in order if b not in names})
    items = []
    for bpmn_id in order:
        count, oldest = waiting.get(bpmn_id, (0, None))
        finished, mean, median = done.get(bpmn_id, (0, None, None))
        items.append({"bpmn_id": bpmn_id, "name": names[bpmn_id], "waiting": count,
                      "oldest_waiting_hours": _round((now - oldest).total_seconds() / 3600) if oldest else None,
                      "done": finished, "mean_hours": _round(mean), "median_hours": _round(median)})
    busiest = max((i for i in items if i["waiting"]), key=lambda i: i["waiting"], default=None)
    return {"process_id": process_id, "days": days, "since": since.isoformat(), "now": now.isoformat(),
            "busiest": busiest["bpmn_id"] if busiest else None, "items": items}
