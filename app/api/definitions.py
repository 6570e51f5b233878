"""Deploy and read process definitions; move a version's instances to another."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.errors import ValidationFailed
from app.schemas import (
    BpmnQuery,
    DefinitionDetailOut,
    DefinitionListOut,
    DeployOut,
    PageQuery,
    TaskStatsOut,
    TaskStatsQuery,
)
from app.schemas.migration import VersionMigrateIn, VersionMigrationOut
from app.services import policy

from . import current_user, page_args, services, unit_of_work
from .serialize import version_dict

blp = Blueprint("definitions", __name__, url_prefix="/api/v1/definitions", description="Process definitions")


def _usernames(ids: set[int | None]) -> dict[int, str]:
    return services().users.usernames(ids)


@blp.route("")
class DefinitionsView(MethodView):
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, DefinitionListOut)
    @blp.doc(security=[{"bearer": []}])
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Deployed processes with their latest version (who deployed it: for the readers of
        definitions only, as the rest of a definition)."""
        user = current_user()
        page, per_page = page_args(args)
        items, total = unit_of_work(lambda: services().definitions.list_latest(page, per_page))
        names = _usernames({i["definition"].deployed_by_id for i in items}) if policy.may_read_definitions(user) else {}
        return {
            "page": page,
            "per_page": per_page,
            "total": total,
            "items": [
                {
                    "process_id": i["definition"].process_id,
                    "name": i["definition"].name,
                    "latest_version": i["definition"].version,
                    "versions": i["versions"],
                    "deployed_at": i["definition"].deployed_at,
                    "deployed_by": names.get(i["definition"].deployed_by_id),
                }
                for i in items
            ],
        }

    @blp.response(201, DeployOut)
    @blp.doc(security=[{"bearer": []}], requestBody={
        "content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}})
    def post(self) -> Any:
        """Deploy .bpmn, .dmn and form .json files (multipart field ``files``); all or nothing."""
        user = current_user()
        uploads = [(f.filename or "", f.read()) for f in request.files.getlist("files")]
        if not uploads:
            raise ValidationFailed("send one or more files in the multipart field 'files'", details={"field": "files"})
        result = unit_of_work(lambda: services().definitions.deploy(user, uploads))
        body = {
            "deployment_id": result.deployment_id,
            "processes": [{"process_id": p.process_id, "version": p.version, "created": p.created} for p in result.processes],
            "files": result.files,
            # lanes that name no group: their tasks wait for an admin until such a group exists
            "warnings": [{**w, "message": f"lane '{w['lane']}' of {w['process_id']} v{w['version']} names no group: "
                                          "only admins can work its tasks until a group of that name exists"}
                         for w in result.warnings],
        }
        return body, 201 if any(p.created for p in result.processes) else 200


@blp.route("/<string:process_id>")
class DefinitionView(MethodView):
    @blp.response(200, DefinitionDetailOut)
    @blp.doc(security=[{"bearer": []}])
    def get(self, process_id: str) -> dict[str, Any]:
        """All versions of one process, with running-instance counts per version (staff only)."""
        user = current_user()
        svc = services()
        rows = unit_of_work(lambda: svc.definitions.versions_for(user, process_id))
        running = svc.definitions.running_counts(process_id)
        names = _usernames({r.deployed_by_id for r in rows})
        versions = [version_dict(r, names.get(r.deployed_by_id or 0), running.get(r.version, 0)) for r in rows]
        return {"process_id": process_id, "name": rows[-1].name, "latest": versions[-1], "versions": versions}


@blp.route("/<string:process_id>/bpmn")
class DefinitionXmlView(MethodView):
    @blp.arguments(BpmnQuery, location="query")
    @blp.doc(security=[{"bearer": []}], responses={"200": {"description": "BPMN XML", "content": {"application/xml": {}}}})
    def get(self, args: dict[str, Any], process_id: str) -> Response:
        """The BPMN XML of a version (latest by default; staff only)."""
        user = current_user()
        row = unit_of_work(lambda: services().definitions.version_for(user, process_id, args.get("version")))
        return Response(row.bpmn_xml, mimetype="application/xml",
                        headers={"Content-Disposition": f'inline; filename="{row.filename}"'})


@blp.route("/<string:process_id>/task-stats")
class TaskStatsView(MethodView):
    @blp.arguments(TaskStatsQuery, location="query")
    @blp.response(200, TaskStatsOut)
    @blp.doc(security=[{"bearer": []}])
    def get(self, args: dict[str, Any], process_id: str) -> dict[str, Any]:
        """Where the process's work waits (staff only): per user task, the tasks waiting now and
        the oldest one's wait, and the tasks done within the last ``days`` with their mean and
        median hours from creation to completion."""
        user = current_user()
        return unit_of_work(lambda: services().definitions.task_statistics(user, process_id, args["days"]))


@blp.route("/<string:process_id>/migrate")
class VersionMigrateView(MethodView):
    @blp.arguments(VersionMigrateIn)
    @blp.response(200, VersionMigrationOut)
    @blp.doc(security=[{"bearer": []}])
    def post(self, body: dict[str, Any], process_id: str) -> dict[str, Any]:
        """Move the running and failed instances of ``from_version`` to ``to_version`` (default:
        the latest; process owners, admins), each in its own transaction: the ones that cannot
        move stay as they were and are listed with why (``code``: ``migration_refused``,
        ``instance_moved``, ``instance_not_running``...). At most 200 a call (``remaining``, then call
        again with ``after`` = ``next_after`` and ``to_version`` = the first answer's, so that a
        version deployed meanwhile is not moved to); ``dry_run`` moves nothing and checks the
        elements only (a new version that fails at once refuses the real move still)."""
        user = current_user()
        result = services().migration.migrate_version(
            user, process_id, body["from_version"], body.get("to_version"), transaction=unit_of_work,
            dry_run=body["dry_run"], after=body["after"])
        return result.to_dict()
