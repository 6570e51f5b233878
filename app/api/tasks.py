"""The task inbox: list, read with form, claim, unclaim, complete, reassign."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.db import COUNT_CAP
from app.models import HumanTask
from app.schemas import (
    BulkTasksIn,
    BulkTasksOut,
    CompleteIn,
    InboxTaskOut,
    InstanceOut,
    ReassignIn,
    TaskDetailOut,
    TaskListOut,
    TaskQuery,
)

from . import current_user, page_args, services, unit_of_work
from .instances import _out as instance_out
from .serialize import task_dict

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Human tasks")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


class TaskContextOut(Schema):
    """One read-only fact of what a task is about (TaskService._context)."""

    name = fields.String()
    label = fields.String()
    value = fields.Raw(allow_none=True)
    display = fields.String(allow_none=True)
    source = fields.String()


class TaskWithContextOut(TaskDetailOut):
    context = fields.List(fields.Nested(TaskContextOut))


def _with_sla(task: HumanTask) -> dict[str, Any]:
    """One task's JSON with its record's priority and SLA (one query), in the request's unit of work."""
    return task_dict(task, services().tasks.task_slas([task])[task.id])


@blp.route("")
class TasksView(MethodView):
    @blp.arguments(TaskQuery, location="query")
    @blp.response(200, TaskListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The caller's group queue: unclaimed ready tasks they may pick up (their groups', and
        those assigned to them personally, not those assigned to someone else); ``mine=1`` for
        "Mine": the tasks they claimed and the unclaimed ones assigned to them personally.
        ``sort``: ``age`` (the default, oldest first), ``due`` (the record's SLA due instant,
        soonest first, tasks without one last) or ``priority`` (the record's, most urgent first:
        P1; P2 and a change's high risk; P3 and medium; P4 and low; other values; none; then by
        due). Each task comes with its record's ``priority`` and ``sla_due_at``, as everywhere a
        task is shown."""
        user = current_user()
        page, per_page = page_args(args)
        tasks = services().tasks

        def page_of_tasks() -> tuple[list[dict[str, Any]], int]:
            rows, total = tasks.list_tasks(user, mine=bool(args.get("mine")), process_id=args.get("process_id"),
                                           page=page, per_page=per_page, sort=args["sort"])
            slas = tasks.task_slas(rows)  # one query for the page
            return [task_dict(t, slas[t.id]) for t in rows], total

        items, total = unit_of_work(page_of_tasks)
        return {"page": page, "per_page": per_page, "total": total, "total_exact": total < COUNT_CAP, "items": items}


@blp.route("/<int:task_id>")
class TaskView(MethodView):
    @blp.response(200, TaskWithContextOut)
    @blp.doc(security=SECURITY)
    def get(self, task_id: int) -> dict[str, Any]:
        """The task with its form schema, UI schema, current data, rendered instructions and
        ``context``: what it is about (the requester, the record's details and the start form's
        answers that its own form does not show), read-only."""
        user = current_user()
        tasks = services().tasks

        def read() -> dict[str, Any]:
            detail = tasks.detail(user, task_id)  # without the variables hidden from the caller
            task = detail.pop("task")
            out = task_dict(task, tasks.task_slas([task])[task.id])
            out.update(detail)
            return out

        return unit_of_work(read)


@blp.route("/<int:task_id>/claim")
class ClaimView(MethodView):
    @blp.response(200, InboxTaskOut)
    @blp.doc(security=SECURITY)
    def post(self, task_id: int) -> dict[str, Any]:
        user = current_user()
        return unit_of_work(lambda: _with_sla(services().tasks.claim(user, task_id)))


@blp.route("/<int:task_id>/unclaim")
class UnclaimView(MethodView):
    @blp.response(200, InboxTaskOut)
    @blp.doc(security=SECURITY)
    def post(self, task_id: int) -> dict[str, Any]:
        user = current_user()
        return unit_of_work(lambda: _with_sla(services().tasks.unclaim(user, task_id)))


@blp.route("/<int:task_id>/reassign")
class ReassignView(MethodView):
    @blp.arguments(ReassignIn)
    @blp.response(200, InboxTaskOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], task_id: int) -> dict[str, Any]:
        """Admins hand a ready task to another user; agents, a task of their group's queue that waits
        for nobody by name and excludes nobody, to a member of that group."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: _with_sla(svc.tasks.reassign_to(user, task_id, body["username"],
                                                                    svc.users.find)))


@blp.route("/bulk")
class BulkView(MethodView):
    @blp.arguments(BulkTasksIn)
    @blp.response(200, BulkTasksOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Claim, release (``unclaim``) or reassign up to 100 tasks at once, each by the rules of its
        own endpoint: all of them, or none. A refused task refuses the call: 409 ``bulk_refused``
        with ``details.tasks`` naming each refused task id with the ``status``, ``error`` and
        ``message`` its own endpoint would have answered. A task already as asked (claimed by the
        caller, held by nobody, held by the new person) counts as done with ``changed`` false."""
        user = current_user()
        svc = services()

        def apply() -> dict[str, Any]:
            done = svc.bulk_tasks.apply(user, body["action"], body["task_ids"], body.get("username"))
            slas = svc.tasks.task_slas([outcome.task for outcome in done])
            return {"action": body["action"], "changed": sum(outcome.changed for outcome in done),
                    "items": [{"task": task_dict(o.task, slas[o.task.id]), "changed": o.changed} for o in done]}

        return unit_of_work(apply)


@blp.route("/<int:task_id>/complete")
class CompleteView(MethodView):
    @blp.arguments(CompleteIn)
    @blp.response(200, InstanceOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], task_id: int) -> dict[str, Any]:
        """Submit the task's form; answers with the instance after the engine advanced."""
        user = current_user()
        instance = unit_of_work(lambda: services().tasks.complete(user, task_id, body["data"]))
        return instance_out(instance)
