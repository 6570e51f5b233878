"""Pages of the configuration management database (routes on the shared ``web`` blueprint).

``/cmdb`` lists the configuration items (a GET form filters by class, status and words), for the
desk's staff and configuration managers; ``/cmdb/cis/<name>`` shows one: its attributes, its
relationships either way, the records that name it (open ones first) and its impact (what depends
or runs on it, through others too). Admins and configuration managers also get ``/cmdb/new``,
``/cmdb/cis/<name>/edit`` (which renames too: the page moves to the new name, and the old address
answers 404 like any name no CI has), the retire button and the relationship forms (POST with the
CSRF token like every form); a reader gets 403 there. Anyone else is told the pages are not there
(404). Every decision is
``CmdbService``'s (app/services/cmdb.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.cmdb import (
    CLASSES,
    MAX_ASSET_TAG,
    MAX_DESCRIPTION,
    MAX_LOCATION,
    MAX_NAME,
    MAX_SERIAL,
    MAX_VENDOR,
    RELATION_KINDS,
    STATUSES,
    WARRANTY_CHOICES,
    may_read,
    may_write,
)
from app.services.forms import FORM_ERROR_KEY
from app.services.maintenance import DAYS, zone_choices
from app.services.maintenance import NAME_MAX as WINDOW_NAME_MAX
from app.services.warranty import notice_days

from . import refused_forms
from .forms import service_text
from .labels import KIND_LABELS, STATUS_LABELS, label
from .views import bp, page_arg, past_the_last_page, reason_text, signed_in_user
from .weekdays import DAY_LABELS, DAY_NAMES, WEEK_CHOICES, WEEK_SAID

PER_PAGE = 25
MAX_QUERY = 200
CLASS_LABELS: dict[str, Any] = {"hardware": _l("Hardware"), "software": _l("Software"), "network": _l("Network"),
                                "service": _l("Service"), "other": _l("Other")}
CI_STATUS_LABELS: dict[str, Any] = {"planned": _l("Planned"), "in_service": _l("In service"),
                                    "maintenance": _l("In maintenance"), "retired": _l("Retired")}
#: How a relationship reads from its source ("depends on") and from its target ("needed by").
OUTGOING_LABELS: dict[str, Any] = {"depends_on": _l("Depends on"), "runs_on": _l("Runs on"),
                                   "connects_to": _l("Connects to")}
INCOMING_LABELS: dict[str, Any] = {"depends_on": _l("Depended on by"), "runs_on": _l("Hosts"),
                                   "connects_to": _l("Connected from")}
FIELD_LABELS: dict[str, Any] = {"name": _l("Name"), "class": _l("Class"), "status": _l("Status"),
                                "description": _l("Description"), "owner": _l("Owner"),
                                "support_group": _l("Support group"), "location": _l("Location"),
                                "serial_number": _l("Serial number"), "target": _l("Configuration item"),
                                "kind": _l("Relationship"), "asset_tag": _l("Asset tag"),
                                "assigned_to": _l("Assigned to"), "vendor": _l("Vendor"),
                                "purchased_on": _l("Purchased on"), "warranty_until": _l("Warranty until"),
                                "cost": _l("Cost")}
FIELD_HELP: dict[str, Any] = {
    "name": _l("The name records give in their configuration item field. A new name is given to the records "
               "that name it too."),
    "owner": _l("A user name (optional)."),
    "support_group": _l("The group that supports it (optional)."),
    "asset_tag": _l("The label on the asset (optional; one item's alone)."),
    "assigned_to": _l("The user name of whoever uses it (optional)."),
    "purchased_on": _l("YYYY-MM-DD (optional)."),
    "cost": _l("What it cost, such as 1299.00 (optional)."),
}
#: The warranty filter's choices on the list.
WARRANTY_LABELS: dict[str, Any] = {"expired": _l("Ended"), "30": _l("Ends within 30 days"),
                                   "60": _l("Ends within 60 days"), "90": _l("Ends within 90 days")}
#: A maintenance window's days, short and whole, and its form's fields.
WINDOW_FIELDS: dict[str, Any] = {"name": _l("Name"), "days": _l("Days of the week"), "week": _l("Repeats"),
                                 "start": _l("Opens at"),
                                 "end": _l("Closes at"), "timezone": _l("Time zone")}
LIMITS = {"name": MAX_NAME, "description": MAX_DESCRIPTION, "location": MAX_LOCATION, "serial_number": MAX_SERIAL,
          "owner": 128, "support_group": 128, "asset_tag": MAX_ASSET_TAG, "assigned_to": 128, "vendor": MAX_VENDOR,
          "purchased_on": 10, "warranty_until": 10, "cost": 16}
FORM_FIELDS = ("name", "class", "status", "owner", "support_group", "location", "serial_number", "description",
               "asset_tag", "assigned_to", "vendor", "purchased_on", "warranty_until", "cost")


def _reader() -> Any:
    user = signed_in_user()
    if not may_read(user):
        abort(404)
    return user


def _name(name: str) -> str:
    if len(name) > MAX_NAME:
        abort(404)
    return name


def _labels() -> dict[str, Any]:
    return {"class_labels": CLASS_LABELS, "ci_status_labels": CI_STATUS_LABELS, "label": label,
            "classes": CLASSES, "ci_statuses": STATUSES}


# -- the list ---------------------------------------------------------------------------------------


@bp.get("/cmdb")
def cmdb() -> Any:
    user = _reader()
    q = " ".join(request.args.get("q", "").split())[:MAX_QUERY]
    ci_class = request.args.get("class", "")
    ci_class = ci_class if ci_class in CLASSES else ""
    status = request.args.get("status", "")
    status = status if status in STATUSES else ""
    warranty = request.args.get("warranty", "")
    warranty = warranty if warranty in WARRANTY_CHOICES else ""
    assigned_to = " ".join(request.args.get("assigned_to", "").split())[:128]
    page = page_arg()
    svc = services()

    def read() -> tuple[list[dict[str, Any]], int]:
        rows, total = svc.cmdb.search(user, ci_class=ci_class or None, status=status or None, q=q or None,
                                      assigned_to=assigned_to or None, warranty=warranty or None,
                                      page=page, per_page=PER_PAGE)
        return [svc.cmdb.summary(ci) for ci in rows], total

    items, total = unit_of_work(read)
    beyond = past_the_last_page(page, total, PER_PAGE)
    if beyond is not None:
        return beyond
    params = {k: v for k, v in {"q": q, "class": ci_class, "status": status, "warranty": warranty,
                                "assigned_to": assigned_to}.items() if v}
    return render_template("cmdb.html", active="cmdb", items=items, total=total, page=page,
                           pages=max(1, -(-total // PER_PAGE)), params=params, q=q, ci_class=ci_class, status=status,
                           searching=bool(params), writer=may_write(user), warranty=warranty, assigned_to=assigned_to,
                           warranty_choices=WARRANTY_CHOICES, warranty_labels=WARRANTY_LABELS,
                           today=svc.runtime.clock.now().date(), **_labels())


# -- one CI -----------------------------------------------------------------------------------------


def _render_ci(user: Any, name: str, *, relate: Mapping[str, Any] | None = None,
               window: Mapping[str, Any] | None = None, editing: int | None = None, status: int = 200) -> Any:
    svc = services()
    ci = unit_of_work(lambda: svc.cmdb.detail(user, svc.cmdb.find(user, name)))
    writer = may_write(user)
    edited = next((w for w in ci["maintenance_windows"] if w["id"] == editing), None) if writer else None
    if edited is not None and window is None:  # "Change" on one of the windows: the form holds it
        window = {**{k: edited[k] for k in ("name", "days", "week", "start", "end", "timezone")}, "errors": {}}
    return render_template("cmdb_item.html", active="cmdb", ci=ci, writer=writer, today=svc.runtime.clock.now().date(),
                           relate=relate or {"target": "", "kind": "depends_on", "errors": {}},
                           window=window or {"name": "", "days": [], "week": None, "start": "", "end": "",
                                             "timezone": "UTC", "errors": {}},
                           week_choices=WEEK_CHOICES, week_said=WEEK_SAID,
                           editing=edited["id"] if edited else None,
                           days=DAYS, day_labels=DAY_LABELS, day_names=DAY_NAMES, window_fields=WINDOW_FIELDS,
                           window_name_max=WINDOW_NAME_MAX, zones=zone_choices() if writer else (),
                           relation_kinds=RELATION_KINDS, outgoing_labels=OUTGOING_LABELS,
                           incoming_labels=INCOMING_LABELS, kind_labels=KIND_LABELS, status_labels=STATUS_LABELS,
                           fields=FIELD_LABELS, **_labels()), status


def _relate_page(name: str) -> str:
    """What a refused relationship form of the CI ``name`` is kept under (``cmdb_relate``)."""
    return f"cmdb:relate:{name}"


def _window_page(name: str, window_id: int | None = None) -> str:
    """What a refused maintenance window form of the CI ``name`` is kept under (``cmdb_window_add``,
    or ``cmdb_window_edit`` of ``window_id``)."""
    return f"cmdb:window:{name}" + (f":{window_id}" if window_id is not None else "")


def _window_form(values: Mapping[str, Any], errors: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The maintenance window form as sent (``values`` a MultiDict: the days are boxes), with its errors."""
    getlist = getattr(values, "getlist", None)
    days = getlist("days") if getlist is not None else []
    return {"name": values.get("name", ""), "days": [d for d in days if d in DAYS],
            "week": values.get("week") or None, "start": values.get("start", ""),
            "end": values.get("end", ""), "timezone": values.get("timezone", ""), "errors": _field_errors(errors)}


@bp.get("/cmdb/cis/<name>")
def cmdb_ci(name: str) -> Any:
    user, name = _reader(), _name(name)
    refused = refused_forms.take(_relate_page(name))  # sent back by ``cmdb_relate``: shown once
    if refused is not None:
        values, errors = refused
        return _render_ci(user, name, relate={"target": values.get("target", "").strip(), "kind": values.get("kind", ""),
                                              "errors": _field_errors(errors)})
    editing = request.args.get("edit_window", type=int)
    refused = refused_forms.take(_window_page(name, editing))  # sent back by ``cmdb_window_add`` / ``_edit``
    if refused is not None:
        return _render_ci(user, name, window=_window_form(*refused), editing=editing)
    return _render_ci(user, name, editing=editing)


# -- writing ----------------------------------------------------------------------------------------


def _writer(name: str | None = None) -> Any:
    """The signed-in writer; 404 for who does not read the CMDB (or reads no such CI), 403 for a reader."""
    user = _reader()
    if not may_write(user):
        if name is not None:
            unit_of_work(lambda: services().cmdb.find(user, name))
        abort(403)
    return user


def _as_typed(value: Any) -> str:
    """A CI's field as its form holds it: nothing for none, a day as YYYY-MM-DD, a cost as 1299.00."""
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def _form_values() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in FORM_FIELDS}


def _service_values(values: Mapping[str, str]) -> dict[str, Any]:
    return {"ci_class" if k == "class" else k: v for k, v in values.items()}


def _field_errors(err: ValidationFailed | Mapping[str, list[Any]]) -> dict[str, list[str]]:
    fields = refused_forms.field_errors(err) if isinstance(err, ValidationFailed) else err
    return {name: [service_text(m) for m in messages] for name, messages in fields.items()}


def _refused(page: str, err: ValidationFailed, again: str, ci: Mapping[str, Any] | None,
             values: Mapping[str, str]) -> Any:
    """Post/Redirect/Get for a refused form (``refused_forms.back_to_form``); answered in place
    (422) when its values and errors are too large to keep."""
    return (refused_forms.back_to_form(page, err, again)
            or _render_form(ci=ci, values=values, errors=_field_errors(err), status=422))


def _taken(page: str) -> tuple[dict[str, str], dict[str, list[str]]] | None:
    """The form refused on ``page`` and its errors, once (see ``_refused``)."""
    refused = refused_forms.take(page)
    if refused is None:
        return None
    return {name: refused[0].get(name, "") for name in FORM_FIELDS}, _field_errors(refused[1])


def _render_form(*, ci: Mapping[str, Any] | None, values: Mapping[str, str],
                 errors: Mapping[str, list[str]] | None = None, status: int = 200) -> Any:
    days = notice_days(services().runtime.config)
    warranty = (_("YYYY-MM-DD, the warranty's last day. Its owner and support group are told %(days)d days before.",
                  days=days) if days > 0 else _("YYYY-MM-DD, the warranty's last day."))
    return render_template("cmdb_form.html", active="cmdb", ci=ci, values=values, errors=errors or {},
                           fields=FIELD_LABELS, help={**FIELD_HELP, "warranty_until": warranty}, limits=LIMITS, form_error_key=FORM_ERROR_KEY,
                           **_labels()), status


@bp.route("/cmdb/new", methods=["GET", "POST"])
def cmdb_new() -> Any:
    user = _writer()
    page = "cmdb:new"
    if request.method == "GET":
        refused = _taken(page)
        if refused is not None:
            return _render_form(ci=None, values=refused[0], errors=refused[1])
        return _render_form(ci=None, values={**dict.fromkeys(FORM_FIELDS, ""), "class": "hardware",
                                             "status": "in_service"})
    values = _form_values()
    svc = services()
    try:
        name = unit_of_work(lambda: svc.cmdb.create(user, _service_values(values)).name)
    except ValidationFailed as err:
        return _refused(page, err, url_for("web.cmdb_new"), None, values)
    flash(_("Configuration item %(name)s was created.", name=name), "success")
    return redirect(url_for("web.cmdb_ci", name=name))


@bp.route("/cmdb/cis/<name>/edit", methods=["GET", "POST"])
def cmdb_edit(name: str) -> Any:
    name = _name(name)
    user = _writer(name)
    svc = services()
    ci = unit_of_work(lambda: svc.cmdb.summary(svc.cmdb.find(user, name)))
    page = f"cmdb:edit:{ci['name']}"
    if request.method == "GET":
        refused = _taken(page)
        if refused is not None:
            return _render_form(ci=ci, values=refused[0], errors=refused[1])
        values = {field: _as_typed(ci["ci_class" if field == "class" else field]) for field in FORM_FIELDS}
        return _render_form(ci=ci, values=values)
    values = _form_values()
    try:
        saved = unit_of_work(lambda: svc.cmdb.update(user, ci["name"], _service_values(values)).name)
    except ValidationFailed as err:
        return _refused(page, err, url_for("web.cmdb_edit", name=ci["name"]), ci, values)
    # renamed: the page is at the new name; the old address answers 404 (a new CI may take the name)
    flash(_("Your changes to %(name)s were saved.", name=saved), "success")
    return redirect(url_for("web.cmdb_ci", name=saved))


@bp.post("/cmdb/cis/<name>/retire")
def cmdb_retire(name: str) -> Response:
    name = _name(name)
    user = _writer(name)
    svc = services()
    try:
        retired = unit_of_work(lambda: svc.cmdb.retire(user, name).name)
    except Conflict as err:
        flash(_("Nothing was done: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.cmdb_ci", name=name))
    flash(_("%(name)s is retired: new records can no longer name it.", name=retired), "success")
    return redirect(url_for("web.cmdb_ci", name=retired))


@bp.post("/cmdb/cis/<name>/relationships")
def cmdb_relate(name: str) -> Any:
    name = _name(name)
    user = _writer(name)
    target, kind = request.form.get("target", "").strip(), request.form.get("kind", "")
    svc = services()
    try:
        new = unit_of_work(lambda: svc.cmdb.add_relationship(user, name, target, kind)[1])
    except ValidationFailed as err:
        # Post/Redirect/Get (app/web/refused_forms.py); in place when too large to keep.
        return (refused_forms.back_to_form(_relate_page(name), err,
                                           url_for("web.cmdb_ci", name=name, _anchor="ci-relationships"))
                or _render_ci(user, name, relate={"target": target, "kind": kind, "errors": _field_errors(err)},
                              status=422))
    except Conflict as err:
        flash(_("Nothing was done: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.cmdb_ci", name=name))
    flash(_("The relationship was added.") if new else _("That relationship was there already."), "success")
    return redirect(url_for("web.cmdb_ci", name=name, _anchor="ci-relationships"))


def _remove_part(name: str, remove: Callable[[Any, Any, str], None], anchor: str, gone: str, done: str) -> Response:
    """Remove a part of the CI ``name`` (``remove(services, user, name)``) for a writer; back to the
    page's ``anchor`` saying ``done``, or ``gone`` when the part was no longer there."""
    name = _name(name)
    user = _writer(name)
    svc = services()
    try:
        unit_of_work(lambda: remove(svc, user, name))
    except NotFound:
        flash(gone, "error")
    else:
        flash(done, "success")
    return redirect(url_for("web.cmdb_ci", name=name, _anchor=anchor))


@bp.post("/cmdb/cis/<name>/relationships/<int:relationship_id>/delete")
def cmdb_unrelate(name: str, relationship_id: int) -> Response:
    return _remove_part(name, lambda svc, user, ci: svc.cmdb.remove_relationship(user, ci, relationship_id),
                        "ci-relationships", _("That relationship is no longer there."), _("The relationship was removed."))


def _window_values() -> dict[str, Any]:
    form = request.form
    return {"name": form.get("name", ""), "days": form.getlist("days"), "week": form.get("week") or None,
            "start": form.get("start", ""),
            "end": form.get("end", ""), "timezone": form.get("timezone", "").strip()}


@bp.post("/cmdb/cis/<name>/windows")
def cmdb_window_add(name: str) -> Any:
    name = _name(name)
    user = _writer(name)
    values = _window_values()
    svc = services()
    back = url_for("web.cmdb_ci", name=name, _anchor="ci-windows")
    try:
        new = unit_of_work(lambda: svc.maintenance.add(user, name, values)[1])
    except ValidationFailed as err:
        return (refused_forms.back_to_form(_window_page(name), err, back)
                or _render_ci(user, name, window=_window_form(request.form, refused_forms.field_errors(err)),
                              status=422))
    except Conflict as err:
        if err.code == "too_many_windows":
            flash(_("%(name)s has %(count)d maintenance windows, the most an item has: remove one first.",
                    name=name, count=int(err.details.get("windows", 0))), "error")
        else:
            flash(_("Nothing was done: %(reason)s", reason=reason_text(err)), "error")
        return redirect(back)
    flash(_("The maintenance window was added: changes planned outside the windows show it.") if new
          else _("That maintenance window was there already."), "success")
    return redirect(back)


@bp.post("/cmdb/cis/<name>/windows/<int:window_id>/edit")
def cmdb_window_edit(name: str, window_id: int) -> Any:
    name = _name(name)
    user = _writer(name)
    values = _window_values()
    svc = services()
    back = url_for("web.cmdb_ci", name=name, _anchor="ci-windows")
    try:
        unit_of_work(lambda: svc.maintenance.change(user, name, window_id, values))
    except ValidationFailed as err:
        again = url_for("web.cmdb_ci", name=name, edit_window=window_id, _anchor="ci-window-form")
        return (refused_forms.back_to_form(_window_page(name, window_id), err, again)
                or _render_ci(user, name, window=_window_form(request.form, refused_forms.field_errors(err)),
                              editing=window_id, status=422))
    except NotFound:
        flash(_("That maintenance window is no longer there."), "error")
        return redirect(back)
    except Conflict:
        flash(_("Nothing was changed: %(name)s has that maintenance window already.", name=name), "error")
        return redirect(url_for("web.cmdb_ci", name=name, edit_window=window_id, _anchor="ci-window-form"))
    flash(_("The maintenance window was changed."), "success")
    return redirect(back)


@bp.post("/cmdb/cis/<name>/windows/<int:window_id>/delete")
def cmdb_window_remove(name: str, window_id: int) -> Response:
    return _remove_part(name, lambda svc, user, ci: svc.maintenance.remove(user, ci, window_id), "ci-windows",
                        _("That maintenance window is no longer there."), _("The maintenance window was removed."))
