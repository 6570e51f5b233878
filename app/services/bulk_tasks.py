"""Several inbox tasks at once: claim them, release them, or hand them all to one person.

A desk lead who finds twelve new tickets in the group queue on Monday morning hands them out
from the list, not by opening each task page; an agent going on leave releases what they hold.
Each task goes through the same rules as its own claim, release or reassign (TaskService: who
may see it, who may work it, separation of duties, the team an agent may hand work to), each
audited as that single action would be.

All or nothing. The tasks are taken in id order (two lists that share tasks lock their instances
in one order); if any of them is refused, nothing is changed and the answer names every refused
task with its own reason (``BulkRefused``, 409, ``details.tasks``: per task id its ``status``,
``error`` and ``message`` as the single action would have answered). The refusals the single
actions audit are audited all the same. A task already as asked is no refusal but ``changed``
false: one claimed by the caller already (claim), one nobody holds (release), one its new person
holds already (reassign). A selection made on a page a colleague then changed is answered with
what changed, not half done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.db import MAX_ROW_ID
from app.errors import BulkRefused, NotFound, ProcessdeskError, ValidationFailed
from app.models import HumanTask, User

from .instances import TaskService

#: What one call does to every task it names.
BULK_ACTIONS = ("claim", "unclaim", "reassign")
#: The most tasks one call names (four inbox pages).
MAX_BULK_TASKS = 100


@dataclass(frozen=True)
class BulkOutcome:
    task: HumanTask
    #: False for a task that was already as asked.
    changed: bool


def checked_ids(task_ids: Any) -> list[int]:
    """The distinct task ids ``task_ids`` names, in its order; ValidationFailed naming ``task_ids``
    for anything but a list of 1 to ``MAX_BULK_TASKS`` positive whole numbers."""
    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed(f"task_ids: {message}", details={"fields": {"task_ids": [message]}})

    if not isinstance(task_ids, (list, tuple)):
        raise refuse("must be a list of task ids")
    seen: dict[int, None] = {}
    for value in task_ids:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROW_ID:
            raise refuse(f"{value!r} is not a task id")
        seen.setdefault(value, None)
    if not seen:
        raise refuse("name at least one task")
    if len(seen) > MAX_BULK_TASKS:
        raise refuse(f"at most {MAX_BULK_TASKS} tasks at once")
    return list(seen)


class BulkTaskService:
    def __init__(self, tasks: TaskService, find: Callable[[str], User | None]) -> None:
        self.tasks = tasks
        #: The user of a name (UserService.find), for ``reassign``.
        self.find = find

    def apply(self, user: User, action: str, task_ids: Sequence[int], username: str | None = None) -> list[BulkOutcome]:
        """Do ``action`` (one of ``BULK_ACTIONS``) to every task ``task_ids`` names, for ``user``;
        ``username`` names whom ``reassign`` hands them to. Returns one outcome per distinct id,
        in the order given; raises ValidationFailed for a request that names no valid action,
        ids or person (``action``, ``task_ids``, ``username``), BulkRefused when a task is refused."""
        if action not in BULK_ACTIONS:
            message = f"must be one of {', '.join(BULK_ACTIONS)}"
            raise ValidationFailed(f"action: {message}", details={"fields": {"action": [message]}})
        ids = checked_ids(list(task_ids))
        name = (username or "").strip()
        if action == "reassign" and not name:
            raise ValidationFailed("username: is required", details={"fields": {"username": ["is required"]}})
        done: dict[int, BulkOutcome] = {}
        refused: dict[int, ProcessdeskError] = {}
        for task_id in sorted(ids):
            try:
                done[task_id] = self._one(user, action, task_id, name)
            except ProcessdeskError as err:
                refused[task_id] = err
        if refused:
            raise BulkRefused(f"{len(refused)} of {len(ids)} tasks refused; nothing was changed", refused, action, "tasks")
        return [done[task_id] for task_id in ids]

    def _one(self, user: User, action: str, task_id: int, username: str) -> BulkOutcome:
        tasks = self.tasks
        if action == "claim":
            held_by = tasks.get(user, task_id, action="claim").claimed_by_id
            return BulkOutcome(tasks.claim(user, task_id), changed=held_by != user.id)
        if action == "unclaim":
            task = tasks.get(user, task_id, action="unclaim")
            if task.claimed_by_id is None:
                tasks.require_ready(task)  # a task done or cancelled is still told as such
                return BulkOutcome(task, changed=False)
            return BulkOutcome(tasks.unclaim(user, task_id), changed=True)
        task = tasks.reassignable(user, task_id)
        assignee = tasks.named_assignee(user, task, username, self.find)
        if assignee is None:
            raise NotFound(f"no user {username}")
        if (task.claimed_by_id == assignee.id and task.delegated_from is None
                and task.assigned_user in (None, "", assignee.username)):
            tasks.check_hand_over(user, task, assignee)  # refused as a hand-over would be (a leaver)
            return BulkOutcome(task, changed=False)
        return BulkOutcome(tasks.hand_over(user, task, assignee), changed=True)
