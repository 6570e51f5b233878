"""Start, list, inspect, message, cancel, retry and move (to another version) process instances."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.db import COUNT_CAP
from app.schemas import (
    CallerListOut,
    CallerQuery,
    CancelIn,
    HistoryOut,
    InstanceIn,
    InstanceListOut,
    InstanceOut,
    InstanceQuery,
    MessageIn,
    RetryIn,
)
from app.schemas.migration import MigratedOut, MigrateIn, MigrationPlanOut, MigrationQuery

from . import current_user, page_args, services, unit_of_work
from .serialize import hidden_variables, history_dict, instance_dict

blp = Blueprint("instances", __name__, url_prefix="/api/v1/instances", description="Process instances")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def _out(instance: Any) -> dict[str, Any]:
    """The instance as the caller may read it: without the variables hidden from them."""
    user = current_user()
    hidden = hidden_variables(user, [instance])[instance.id]
    return instance_dict(instance, services().instances.open_tasks(instance), hidden, user)


def _page_out(rows: list[Any]) -> list[dict[str, Any]]:
    """A page of instances as ``_out`` shows each, in a fixed number of queries whatever its size:
    the open tasks of all of them in one; their records' SLA in one more (``record_sla`` looks up
    every instance the session holds at its first call); the hidden variables in at most one."""
    open_tasks = services().instances.open_tasks_of(rows)
    user = current_user()
    hidden = hidden_variables(user, rows)
    return [instance_dict(row, open_tasks[row.id], hidden[row.id], user) for row in rows]


@blp.route("")
class InstancesView(MethodView):
    @blp.arguments(InstanceQuery, location="query")
    @blp.response(200, InstanceListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Instances the caller may see, newest first; filter by process_id and status."""
        user = current_user()
        page, per_page = page_args(args)
        rows, total = unit_of_work(lambda: services().instances.list_instances(
            user, process_id=args.get("process_id"), status=args.get("status"), page=page, per_page=per_page))
        return {"page": page, "per_page": per_page, "total": total, "total_exact": total < COUNT_CAP, "items": _page_out(rows)}

    @blp.arguments(InstanceIn)
    @blp.response(201, InstanceOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start the latest version of a process with start data."""
        user = current_user()
        instance = unit_of_work(lambda: services().instances.start_process(
            user, body["process_id"], body["data"], on_behalf_of=body.get("on_behalf_of")))
        return _out(instance)


@blp.route("/callers")
class CallersView(MethodView):
    @blp.arguments(CallerQuery, location="query")
    @blp.response(200, CallerListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Whom an agent or admin may start a process for (``on_behalf_of``), by words of their
        name or e-mail address: at most 8 active people who could start it themselves."""
        user = current_user()
        return {"items": unit_of_work(lambda: services().instances.callers(user, args["process_id"], args.get("q")))}


@blp.route("/<int:instance_id>")
class InstanceView(MethodView):
    @blp.response(200, InstanceOut)
    @blp.doc(security=SECURITY)
    def get(self, instance_id: int) -> dict[str, Any]:
        user = current_user()
        return _out(unit_of_work(lambda: services().instances.get(user, instance_id)))


@blp.route("/<int:instance_id>/history")
class HistoryView(MethodView):
    @blp.response(200, HistoryOut)
    @blp.doc(security=SECURITY)
    def get(self, instance_id: int) -> dict[str, Any]:
        """Every event of the instance in order: type, actor, time, task and submitted data."""
        user = current_user()
        svc = services()
        events = unit_of_work(lambda: svc.instances.history(user, instance_id))
        tasks = svc.instances.tasks_by_id(instance_id)
        hidden = hidden_variables(user, [svc.instances.get(user, instance_id)])[instance_id]
        return {"instance_id": instance_id, "events": [history_dict(e, tasks, hidden, user) for e in events]}


@blp.route("/<int:instance_id>/messages")
class MessageView(MethodView):
    @blp.arguments(MessageIn)
    @blp.response(200, InstanceOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], instance_id: int) -> dict[str, Any]:
        """Deliver a BPMN message (by name) with an optional payload."""
        user = current_user()
        return _out(unit_of_work(lambda: services().instances.send_message(user, instance_id, body["name"], body.get("payload"))))


@blp.route("/<int:instance_id>/cancel")
class CancelView(MethodView):
    @blp.arguments(CancelIn)
    @blp.response(200, InstanceOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], instance_id: int) -> dict[str, Any]:
        """Cancel an instance; its record (if any) closes as ``cancelled`` and its SLA clocks stop.

        A record's process is cancelled by agents, process owners and admins, or withdrawn by its
        requester while no work has started (status new, submitted or awaiting approval, and no
        one else holds one of its tasks); an instance without a record by its starter or an
        admin. The desk's staff say why they cancel a record (``reason``, 422 when blank): its
        people are told; a requester withdrawing her own may leave it out. 409 if it is already over."""
        user = current_user()
        return _out(unit_of_work(lambda: services().instances.cancel(user, instance_id, body.get("reason"))))


@blp.route("/<int:instance_id>/retry")
class RetryView(MethodView):
    @blp.arguments(RetryIn)
    @blp.response(200, InstanceOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], instance_id: int) -> dict[str, Any]:
        """Retry an instance in error, optionally with corrected data (admin)."""
        user = current_user()
        return _out(unit_of_work(lambda: services().instances.retry(user, instance_id, body.get("data"))))


@blp.route("/<int:instance_id>/migration")
class MigrationPlanView(MethodView):
    @blp.arguments(MigrationQuery, location="query")
    @blp.response(200, MigrationPlanOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any], instance_id: int) -> dict[str, Any]:
        """What moving the instance to another version of its process would do (process owners,
        admins): ``possible``, and by BPMN id the open tasks kept as they are, those prepared again
        (changed), the finished elements cut from the history, and what refuses it."""
        user = current_user()
        instance, target, plan = unit_of_work(lambda: services().migration.plan(user, instance_id, args.get("version")))
        return _plan_out(instance.id, instance.version, target.version, plan)


@blp.route("/<int:instance_id>/migrate")
class MigrateView(MethodView):
    @blp.arguments(MigrateIn)
    @blp.response(200, MigratedOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], instance_id: int) -> dict[str, Any]:
        """Move a running or failed instance to another version of its process (default: the
        latest; process owners, admins). Its open tasks keep their ids, claims and timers; 422
        ``migration_refused`` naming the open tasks (``unmapped``) or subprocesses the version lacks."""
        user = current_user()
        instance, from_version, plan = unit_of_work(lambda: services().migration.migrate(user, instance_id, body.get("version")))
        return {**_out(instance), "migration": _plan_out(instance.id, from_version, instance.version, plan)}


def _plan_out(instance_id: int, from_version: int, to_version: int, plan: Any) -> dict[str, Any]:
    """A move (done or planned) as MigrationPlanOut shows it."""
    return {"instance_id": instance_id, "from_version": from_version, "to_version": to_version, **plan.to_dict()}
