"""Pages of the process area (routes on the shared ``web`` blueprint).

- ``/processes``: the deployed processes, each with its versions and running instances per version,
  and for process owners and admins an upload form for files of any process.
- ``/processes/deploy`` (POST, multipart ``files``): deploys any process's files (new processes,
  a DMN several processes share); validation errors are listed on the list page (422).
- ``/processes/<process_id>``: its versions, the diagram of one (``?version=``), a download of its
  XML, and for process owners and admins an upload form and the in-browser editor.
- ``/processes/<process_id>/bpmn``: the XML of a version as an attachment (as the API's
  ``GET /api/v1/definitions/<id>/bpmn``).
- ``/processes/<process_id>/deploy`` (POST, multipart ``files``): deploys through
  ``DefinitionService.deploy`` for this process only (files that would create or change another
  process are refused); validation errors are listed on the page (422).
- ``/processes/<process_id>/versions/<version>/migrate`` (POST): moves that version's running and
  failed instances to the latest version (``process_migrate``).
- ``/processes/<process_id>/save`` (POST, form fields ``csrf_token``, ``xml`` and
  ``base_version``): what ``static/js/modeler.js`` sends; deploys the XML as the process's file and
  answers JSON ``{ok, changed, versions, latest, url}`` (``changed`` false: the diagram is the same
  as the latest version, which stays) or ``{error, message, details}`` with the error's status.
  ``base_version`` is the process's latest version when the editor opened (the page renders it):
  if another version was deployed since, the save would silently undo it, so it is refused with
  409 ``conflict`` whose details name ``base_version``, ``latest_version``, ``deployed_by`` and
  ``deployed_at`` (``DefinitionService.deploy``). Without ``base_version`` (older clients) the save
  is not checked.

Every page here is for the readers of process definitions (``policy.may_read_definitions``:
agents, process owners, admins, auditors); anyone else gets the 403 page, and the menu leaves the
area out for them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import ProcessdeskError, ValidationFailed
from app.models import ProcessDefinition, Role, User
from app.services.definitions import MAX_VERSION, DeployResult
from app.services.migration import MOVABLE
from app.services.version_diff import PartChange, compare

from .deploy_messages import deploy_message
from .ticket_pages import VENDOR, VIEWER_SCRIPT, VIEWER_STYLES
from .views import bp, reason_text, signed_in_user

MODELER_SCRIPT = "vendor/bpmn-modeler.production.min.js"
MODELER_STYLES = ("vendor/assets/bpmn-js.css", "vendor/assets/diagram-js.css",
                  "vendor/assets/bpmn-font/css/bpmn.css")
PER_PAGE = 50


def may_deploy(user: User) -> bool:
    return bool(user.has_role(Role.PROCESS_OWNER, Role.ADMIN))


def _version_arg() -> int | None:
    """``?version=`` as a number (None: absent or not a number, i.e. the latest); a number that can
    name no version (too large) is still passed on, so that the service answers 404."""
    try:
        value = int(request.args.get("version", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def _base_version() -> int | None:
    """The save's ``base_version`` form field; None when absent. Raises ValidationFailed."""
    raw = request.form.get("base_version", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_VERSION:
        raise ValidationFailed("base_version must be a version number", details={"field": "base_version"})
    return value


def _existing(paths: tuple[str, ...]) -> list[str]:
    return [p for p in paths if (VENDOR.parent / p).is_file()]


@bp.route("/processes")
def processes() -> Any:
    return _list_page()


def _list_page(errors: list[dict[str, Any]] | None = None, message: str | None = None, status: int = 200) -> Any:
    user = signed_in_user()
    svc = services()

    def read() -> list[dict[str, Any]]:
        svc.definitions.require_reader(user)
        items, _total = svc.definitions.list_latest(1, PER_PAGE)
        return [{"definition": i["definition"], "versions": svc.definitions.versions(i["definition"].process_id),
                 "running": svc.definitions.running_counts(i["definition"].process_id)} for i in items]

    return render_template("processes.html", items=unit_of_work(read), active="processes", editor=may_deploy(user),
                           errors=errors or [], error_message=message), status


@bp.route("/processes/deploy", methods=["POST"])
def processes_deploy() -> Any:
    """Deploy files of any process (new processes, files several share) from the process list."""
    return _deploy_uploads(None, _list_page, url_for("web.processes"))


def _deploy_uploads(only_process: str | None, page: Callable[..., Any], done: str) -> Any:
    """Deploy the posted ``files`` (``only_process``: see ``DefinitionService.deploy``); on
    success flash what was deployed and redirect to ``done``, else ``page`` lists the errors."""
    user = signed_in_user()
    uploads = [(f.filename or "", f.read()) for f in request.files.getlist("files") if f.filename]
    if not uploads:
        return page(message=_("Choose one or more files to upload."), status=422)
    try:
        result = unit_of_work(lambda: services().definitions.deploy(user, uploads, only_process=only_process))
    except ProcessdeskError as err:
        if err.status in (403, 404):
            raise
        return page(errors=_error_list(err), message=_("Nothing was deployed: the files have errors."), status=err.status)
    flash(_deployed_message(result), "success")
    for warning in result.warnings:
        flash(_("The lane “%(lane)s” of %(process)s names no group: only admins can work its tasks until a group "
                "of that name exists.", lane=warning["lane"], process=f"{warning['process_id']} v{warning['version']}"),
              "warning")
    return redirect(done)


def _deployed_message(result: DeployResult) -> str:
    created = [f"{p.process_id} v{p.version}" for p in result.processes if p.created]
    if created:
        return _("Deployed: %(versions)s.", versions=", ".join(created))
    return _("Nothing changed: the files are the same as the deployed ones.")


def _detail_page(process_id: str, errors: list[dict[str, Any]] | None = None, message: str | None = None,
                 status: int = 200) -> Any:
    user = signed_in_user()
    svc = services()
    wanted = _version_arg()

    editor = may_deploy(user)

    def read() -> dict[str, Any]:
        rows = svc.definitions.versions_for(user, process_id)
        shown = svc.definitions.version(process_id, wanted) if wanted else rows[-1]
        return {"rows": rows, "shown": shown, "running": svc.definitions.running_counts(process_id),
                # what a version's move button moves (process owners and admins)
                "movable": svc.definitions.running_counts(process_id, MOVABLE) if editor and len(rows) > 1 else {},
                "names": svc.users.usernames({r.deployed_by_id for r in rows}),
                "stats": svc.definitions.task_statistics(user, process_id)}

    data = unit_of_work(read)
    # the tasks waiting at each user task, drawn as a badge on its shape (js/modeler.js)
    data["waiting"] = {item["bpmn_id"]: item["waiting"] for item in data["stats"]["items"] if item["waiting"]}
    # a move that stopped part way goes on after the last instance it looked at
    move_version, move_after = _number(request.args.get("move_version")), _number(request.args.get("move_after"))
    data["move_after"] = {move_version: move_after} if move_version and move_after else {}
    viewer = (VENDOR.parent / VIEWER_SCRIPT).is_file()
    modeler = editor and (VENDOR.parent / MODELER_SCRIPT).is_file()
    styles = _existing(MODELER_STYLES if modeler else VIEWER_STYLES) if (viewer or modeler) else []
    return render_template(
        "process.html", process_id=process_id, active="processes", editor=editor, errors=errors or [],
        error_message=message, viewer_script=VIEWER_SCRIPT if viewer and not modeler else None,
        modeler_script=MODELER_SCRIPT if modeler else None, diagram_styles=styles, **data,
    ), status


@bp.route("/processes/<process_id>")
def process(process_id: str) -> Any:
    return _detail_page(process_id)


@bp.route("/processes/<process_id>/bpmn")
def process_bpmn(process_id: str) -> Response:
    row = _readable_version(process_id)
    return Response(row.bpmn_xml, mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{row.filename}"'})


@bp.route("/processes/<process_id>/diagram.xml")
def process_diagram(process_id: str) -> Response:
    """The XML the page's viewer or editor draws (inline, same data as the download)."""
    return Response(_readable_version(process_id).bpmn_xml, mimetype="application/xml")


def _readable_version(process_id: str) -> ProcessDefinition:
    """The ``?version=`` (else latest) of ``process_id``, for a signed-in reader of definitions."""
    user = signed_in_user()
    return unit_of_work(lambda: services().definitions.version_for(user, process_id, _version_arg()))


def _error_list(err: ProcessdeskError) -> list[dict[str, Any]]:
    details = err.details or {}
    return [{"file": details.get("file"), "element_id": details.get("element_id"), "line": details.get("line"),
             "message": deploy_message(err)}]


@bp.route("/processes/<process_id>/deploy", methods=["POST"])
def process_deploy(process_id: str) -> Any:
    signed_in_user()
    unit_of_work(lambda: services().definitions.versions(process_id))  # 404 for an unknown process
    return _deploy_uploads(process_id, partial(_detail_page, process_id), url_for("web.process", process_id=process_id))


@bp.route("/processes/<process_id>/save", methods=["POST"])
def process_save(process_id: str) -> Any:
    user = signed_in_user()
    svc = services()
    try:
        latest = unit_of_work(lambda: svc.definitions.latest(process_id))
        xml = request.form.get("xml", "")
        if not xml.strip():
            return jsonify({"error": "validation_failed", "message": _("The diagram is empty."),
                            "details": {"file": latest.filename}}), 422
        filename = latest.filename
        base = _base_version()
        result = unit_of_work(lambda: svc.definitions.deploy(user, [(filename, xml.encode("utf-8"))],
                                                             only_process=process_id, base_version=base))
        rows = unit_of_work(lambda: svc.definitions.versions(process_id))
    except ProcessdeskError as err:
        return jsonify({**err.to_dict(), "message": deploy_message(err)}), err.status
    changed = any(p.created and p.process_id == process_id for p in result.processes)
    return jsonify({"ok": True, "changed": changed, "versions": [r.version for r in rows], "latest": rows[-1].version,
                    "url": url_for("web.process", process_id=process_id, version=rows[-1].version)})


@bp.route("/processes/<process_id>/versions/<int:version>/restore", methods=["POST"])
def process_restore(process_id: str, version: int) -> Any:
    """An earlier version's diagram deployed again, as the next version: the way back from a
    version that went wrong (its running instances stay on it). Refused like any deploy (the
    diagram checked against the files in force now: a form it names that was removed since),
    and only from the latest version the page showed (``base_version``), as the editor's save."""
    user = signed_in_user()
    svc = services()
    page = url_for("web.process", process_id=process_id)
    try:
        old = unit_of_work(lambda: svc.definitions.version_for(user, process_id, version))
        latest = unit_of_work(lambda: svc.definitions.latest(process_id))
        if old.version == latest.version:
            flash(_("Version %(version)s is the latest version already.", version=old.version), "info")
            return redirect(page)
        xml = old.bpmn_xml.encode("utf-8")
        base = _base_version() or latest.version
        result = unit_of_work(lambda: svc.definitions.deploy(user, [(latest.filename, xml)], only_process=process_id,
                                                             base_version=base))
    except ProcessdeskError as err:
        flash(_("Version %(version)s could not be deployed again: %(reason)s", version=version,
                reason=reason_text(err)), "error")
        return redirect(page)
    created = [p.version for p in result.processes if p.created and p.process_id == process_id]
    if not created:
        flash(_("Nothing changed: the diagram is the same as the latest version."), "info")
        return redirect(page)
    flash(_("Version %(new)s is version %(old)s's diagram again; new instances start on it.",
            new=created[0], old=old.version), "success")
    return redirect(url_for("web.process", process_id=process_id, version=created[0]))


#: How many refused instances the flash after a move names (the API lists them all).
NAMED_REFUSALS = 10
#: Batches of instances (``migration.MAX_BATCH`` each) one click of "Move" moves at most.
WEB_BATCHES = 5


@bp.route("/processes/<process_id>/versions/<int:version>/migrate", methods=["POST"])
def process_migrate(process_id: str, version: int) -> Any:
    """Move the running and failed instances of ``version`` to the latest version (process owners
    and admins): each moves on its own, and those that cannot stay and are named with why
    (``MigrationService.migrate_version``). ``latest_version``: the version the page offered, so
    that a version deployed since is not moved to unseen; ``after``: where the last click stopped
    (the page's ``move_after``); ``dry_run=1`` (the "Check first" button): say what would move and
    what would stay, moving nothing (the elements are checked, not the new version's scripts)."""
    user = signed_in_user()
    svc = services()
    page = url_for("web.process", process_id=process_id)
    target = _number(request.form.get("latest_version"))
    after = _number(request.form.get("after")) or 0
    dry_run = request.form.get("dry_run") == "1"
    moved: list[int] = []
    refused: list[dict[str, Any]] = []
    result = None
    try:
        # a few batches a click (each instance its own transaction); the rest continue after the
        # last one looked at, so instances that stay never hold the others back
        for _batch in range(WEB_BATCHES):
            result = svc.migration.migrate_version(user, process_id, version, target, transaction=unit_of_work,
                                                   after=after, dry_run=dry_run)
            moved += result.moved
            refused += result.refused
            after, target = result.next_after, result.to_version  # every batch to the same version
            if not result.remaining:
                break
    except ProcessdeskError as err:
        flash(_("The instances of version %(version)s were not moved: %(reason)s", version=version,
                reason=reason_text(err)), "error")
        if not moved:
            return redirect(page)
    if dry_run:
        flash(_("Checked, nothing moved: instances of version %(old)s that would move to version %(new)s: "
                "%(count)s.", count=len(moved), old=version, new=target), "info")
    elif moved and target is not None:
        flash(_("Instances of version %(old)s moved to version %(new)s: %(count)s.", count=len(moved),
                old=version, new=target), "success")
    elif not refused and result is not None:
        flash(_("Version %(version)s has no running or failed instances to move.", version=version), "info")
    if refused:
        named = "; ".join(_refused_text(item) for item in refused[:NAMED_REFUSALS])
        more = len(refused) - NAMED_REFUSALS
        if more > 0:
            named += _(" and %(more)s more", more=more)
        flash(_("Instances that would stay on version %(old)s: %(count)s. %(why)s", count=len(refused),
                old=version, why=named) if dry_run else
              _("Instances that stay on version %(old)s: %(count)s. %(why)s", count=len(refused),
                old=version, why=named), "error")
    if result is not None and result.remaining and not dry_run:
        flash(_("Instances of version %(old)s left to move: %(count)s (move them again).", count=result.remaining,
                old=version), "info")
        return redirect(url_for("web.process", process_id=process_id, move_version=version, move_after=result.next_after))
    return redirect(page)


def _number(text: str | None) -> int | None:
    """A positive whole number from a form field or query argument (ASCII digits, at most 18), else None."""
    return int(text) if text and len(text) <= 18 and text.isascii() and text.isdigit() and int(text) > 0 else None


def _refused_text(item: dict[str, Any]) -> str:
    """Why one instance stayed, in the page's language, naming the elements."""
    reasons = []
    if item.get("unmapped"):
        reasons.append(_("open tasks the version lacks: %(ids)s", ids=", ".join(item["unmapped"])))
    if item.get("processes"):
        reasons.append(_("open subprocesses the version lacks: %(ids)s", ids=", ".join(item["processes"])))
    if item.get("history"):
        reasons.append(_("finished elements the version lacks that cannot leave the history: %(ids)s",
                         ids=", ".join(item["history"])))
    if item.get("incompatible"):
        reasons.append(_("open elements the instance cannot follow into the version: %(ids)s",
                         ids=", ".join(item["incompatible"])))
    if not reasons:
        code = item.get("code")
        if code == "instance_moved":
            reasons.append(_("it was moved to version %(version)s since", version=item.get("current_version")))
        elif code == "instance_not_running":
            reasons.append(_("it is %(status)s now", status=item.get("status")))
        else:  # the new version failed at once: the engine's words, as on the instance's error
            reasons.append(_("the new version fails at once: %(reason)s",
                             reason=str(item.get("message") or "").rpartition("fails at once: ")[2]))
    return _("#%(id)s (%(why)s)", id=item["instance_id"], why="; ".join(reasons))


#: The compare page's words for what a version holds besides its drawing (version_diff.PartChange).
PART_KINDS = {"form": _l("Form"), "decision": _l("Decision table"), "record": _l("Record")}
PART_STATES = {"added": _l("added"), "removed": _l("removed"), "changed": _l("changed")}


@bp.route("/processes/<process_id>/compare")
def process_compare(process_id: str) -> Any:
    """Two versions side by side; static/js/modeler.js marks what differs between them."""
    user = signed_in_user()
    rows = unit_of_work(lambda: services().definitions.versions_for(user, process_id))
    numbers = [r.version for r in rows]
    by_number = {r.version: r.id for r in rows}

    def pick(name: str, default: int) -> int:
        try:
            value = int(request.args.get(name, ""))
        except ValueError:
            return default
        return value if value in numbers else default

    older = pick("a", numbers[-2] if len(numbers) > 1 else numbers[-1])
    newer = pick("b", numbers[-1])

    def parts() -> list[PartChange]:
        session = services().session
        a, b = session.get(ProcessDefinition, by_number[older]), session.get(ProcessDefinition, by_number[newer])
        return compare(a, b) if a is not None and b is not None else []

    viewer = (VENDOR.parent / VIEWER_SCRIPT).is_file()
    return render_template("process_compare.html", process_id=process_id, rows=rows, older=older, newer=newer,
                           parts=unit_of_work(parts), part_kinds=PART_KINDS, part_states=PART_STATES,
                           active="processes", viewer_script=VIEWER_SCRIPT if viewer else None,
                           diagram_styles=_existing(VIEWER_STYLES) if viewer else [])
