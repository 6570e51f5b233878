"""The task inbox: list, read with form, claim, unclaim, complete, reassign."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.db import COUNT_CAP
from app.schemas import CompleteIn, InstanceOut, ReassignIn, TaskDetailOut, TaskListOut, TaskOut, TaskQuery

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


@blp.route("")
class TasksView(MethodView):
    @blp.arguments(TaskQuery, location="query")
    @blp.response(200, TaskListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The caller's group queue: unclaimed ready tasks they may pick up (their groups', and
        those assigned to them personally, not those assigned to someone else); ``mine=1`` for
        "Mine": the tasks they claimed and the unclaimed ones assigned to them personally."""
        user = current_user()
        page, per_page = page_args(args)
        rows, total = unit_of_work(lambda: services().tasks.list_tasks(
            user, mine=bool(args.get("mine")), process_id=args.get("process_id"), page=page, per_page=per_page))
        return {"page": page, "per_page": per_page, "total": total, "total_exact": total < COUNT_CAP, "items": [task_dict(t) for t in rows]}


@blp.route("/<int:task_id>")
class TaskView(MethodView):
    @blp.response(200, TaskWithContextOut)
    @blp.doc(security=SECURITY)
    def get(self, task_id: int) -> dict[str, Any]:
        """The task with its form schema, UI schema, current data, rendered instructions and
        ``context``: what it is about (the requester, the record's details and the start form's
        answers that its own form does not show), read-only."""
        user = current_user()
        detail = unit_of_work(lambda: services().tasks.detail(user, task_id))
        out = task_dict(detail.pop("task"))
        out.update(detail)
        return out


@blp.route("/<int:task_id>/claim")
class ClaimView(MethodView):
    @blp.response(200, TaskOut)
    @blp.doc(security=SECURITY)
    def post(self, task_id: int) -> dict[str, Any]:
        user = current_user()
        return task_dict(unit_of_work(lambda: services().tasks.claim(user, task_id)))


@blp.route("/<int:task_id>/unclaim")
class UnclaimView(MethodView):
    @blp.response(200, TaskOut)
    @blp.doc(security=SECURITY)
    def post(self, task_id: int) -> dict[str, Any]:
        user = current_user()
        return task_dict(unit_of_work(lambda: services().tasks.unclaim(user, task_id)))


@blp.route("/<int:task_id>/reassign")
class ReassignView(MethodView):
    @blp.arguments(ReassignIn)
    @blp.response(200, TaskOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], task_id: int) -> dict[str, Any]:
        """Admins hand a ready task to another user."""
        user = current_user()
        svc = services()
        return task_dict(unit_of_work(lambda: svc.tasks.reassign(user, task_id, svc.users.get_by_username(body["username"]))))


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
