"""Recurring requests on the pages (routes on the shared ``web`` blueprint; app/services/recurring.py
decides).

- The start page of a process, and a catalog item's page, offer the desk's staff "Repeat this
  request on a schedule" under its form: a name, the weekdays, every week or one week of the month, the time and the time zone.
  "Schedule it" checks the form as a start would, and the schedule, each refusal beside its field
  (Post/Redirect/Get, as the start), and keeps the request instead of starting it now.
- ``/recurring`` lists the user's recurring requests (an admin's, with ``all=1``, everyone's): when
  each starts, when it next starts, what it last started and why it was paused, with Pause,
  Resume and Delete; ``/recurring/<id>`` changes a request's name and rule (its data is the start
  form's: to change that, schedule the request again from the start page).

Every form carries the session's CSRF token (checked for every POST by the blueprint).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import User
from app.services.instances import ON_BEHALF_FIELD
from app.services.maintenance import DAYS, WEEKS, zone_choices
from app.services.recurring import NAME_MAX, NOT_A_MAKER_CODE, describe, may_make, when
from app.services.submissions import FIELD as SUBMISSION_FIELD

from . import refused_forms
from .content import process_name
from .errors import error_page, flash_already_sent
from .forms import CALLER_FIELD, service_texts
from .views import bp, signed_in_user
from .weekdays import DAY_LABELS, DAY_NAMES, WEEK_CHOICES, WEEK_SAID

#: The page's fields of the schedule -> the service's (a start form's own fields never start with "_").
REPEAT_FIELDS = {"_repeat_name": "name", "_repeat_days": "days", "_repeat_week": "week", "_repeat_time": "time",
                 "_repeat_timezone": "timezone"}
#: The button that schedules the start form instead of sending it.
ACTION_FIELD = "_action"
SCHEDULE = "schedule"
LABELS: dict[str, Any] = {"name": _l("Name of the recurring request"), "days": _l("Days of the week"),
                          "week": _l("Repeats"), "time": _l("Starts at"), "timezone": _l("Time zone")}
#: The other fields a refusal may name, as a flash message says them.
OTHER_LABELS: dict[str, Any] = {"requested_for": _l("Requested for"), "active": _l("Status"), "data": _l("Form")}
EDIT_PAGE = "recurring:edit"


def schedules(form: Mapping[str, Any]) -> bool:
    """Whether ``form`` (a sent start form) asks to schedule rather than start."""
    return form.get(ACTION_FIELD) == SCHEDULE


def without_schedule(data: dict[str, Any]) -> dict[str, Any]:
    """A sent start form's answers without the schedule's fields and the button."""
    return {k: v for k, v in data.items() if k not in REPEAT_FIELDS and k != ACTION_FIELD}


def schedule_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """The schedule's fields of a sent form as the service takes them."""
    values: dict[str, Any] = {service: form.get(page, "") for page, service in REPEAT_FIELDS.items()}
    values["days"] = form.getlist("_repeat_days")
    return values


def page_errors(errors: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """The service's refusal of a recurring request by the start page's field names: the rule's
    as ``_repeat_*``, the person it is for as the "Requested for" control's, the data's as the form's."""
    back = {service: page for page, service in REPEAT_FIELDS.items()}
    out: dict[str, list[Any]] = {}
    for field, messages in errors.items():
        name = back.get(field) or (ON_BEHALF_FIELD if field == "requested_for" else field.removeprefix("data."))
        out.setdefault(name, []).extend(messages)
    return out


def repeat_view(submitted: MultiDict[str, str] | None, errors: dict[str, list[Any]], *, open_: bool) -> dict[str, Any]:
    """The schedule's fields as a page shows them: their values as sent (none sent: Mondays at
    09:00 UTC), their errors by the service's field names, translated, and whether they are open."""
    mine = {REPEAT_FIELDS[k]: v for k, v in errors.items() if k in REPEAT_FIELDS}
    form = submitted if submitted is not None else MultiDict()
    return {"name": form.get("_repeat_name", ""), "days": form.getlist("_repeat_days") if submitted is not None else ["mon"],
            "week": form.get("_repeat_week", ""), "time": form.get("_repeat_time", "09:00"),
            "timezone": form.get("_repeat_timezone", "UTC"), "errors": service_texts(mine),
            "open": open_ or bool(mine), "name_max": NAME_MAX}


def repeat_context(user: User) -> dict[str, Any]:
    """What the schedule's fields show, for a template that has them."""
    return {"may_repeat": may_make(user), "repeat_days": DAYS, "day_labels": DAY_LABELS, "day_names": DAY_NAMES,
            "week_choices": WEEK_CHOICES, "week_said": WEEK_SAID, "repeat_labels": LABELS,
            "zones": zone_choices() if may_make(user) else ()}


def _problems(user: User, process_id: str) -> dict[str, list[Any]]:
    """The sent form's schedule fields' problems and its "Requested for" control's, by the page's
    names (none: {}): said with the form's own, all at once."""
    problems = page_errors(when(schedule_values(request.form))[1])
    try:
        services().instances.caller_for(user, process_id, request.form.get(CALLER_FIELD) or None)
    except ValidationFailed as err:
        problems.update(refused_forms.field_errors(err))
    return problems


def schedule_sent_form(user: User, process_id: str, checked: Callable[[], dict[str, Any]], *, back: str, page: str,
                       refused: Callable[[PermissionDenied], Any],
                       render: Callable[[dict[str, list[Any]]], Any]) -> Any:
    """A start or catalog request form sent with "Schedule it": ``checked()`` (the form's own check of
    its answers, raising ValidationFailed by field) and the schedule's fields, then the recurring
    request of ``process_id`` made with what it returned, once per rendering of the form. Refusals go
    back to ``back`` (``page``'s memory; ``render`` in place when too large to keep), a 403 to
    ``refused``; made, the list with the new request."""
    svc = services()

    def keep() -> tuple[dict[str, Any], str, str | None]:
        # who may not make one, or not start the process, is told so before the answers are read
        svc.recurring.require_maker(user, "create_recurring_request")
        svc.instances.require_start(user, process_id)
        try:
            cleaned = checked()
        except ValidationFailed as err:  # the form's problems and the schedule's, at once
            fields = {**(err.details.get("fields") or {}), **_problems(user, process_id)}
            raise ValidationFailed(err.message, details={**err.details, "fields": fields}) from None
        values = {**schedule_values(request.form), "process_id": process_id, "data": cleaned,
                  "requested_for": request.form.get(CALLER_FIELD) or None}
        try:
            made = describe(svc.recurring.create(user, values))
        except ValidationFailed as err:
            raise ValidationFailed(err.message, details={"fields": page_errors(refused_forms.field_errors(err))}) from None
        return made, url_for("web.recurring_list") + f"#recurring-{made['id']}", None

    try:
        sent = unit_of_work(lambda: svc.submissions.once(user, request.form.get(SUBMISSION_FIELD), keep))
    except PermissionDenied as err:
        if err.code == NOT_A_MAKER_CODE:
            return error_page(403, _("Not allowed"), _("Only the service desk's agents, process owners and admins "
                                                       "make recurring requests."))
        return refused(err)
    except ValidationFailed as err:
        return refused_forms.back_to_form(page, err, back) or render(refused_forms.field_errors(err))
    if sent.repeated or sent.value is None:
        flash_already_sent(sent.ref)
        return redirect(sent.url or url_for("web.recurring_list"))
    flash(_("“%(name)s” is scheduled: it starts next on %(when)s UTC.", name=sent.value["name"],
            when=sent.value["next_run_at"].strftime("%Y-%m-%d %H:%M") if sent.value["next_run_at"] else "–"), "success")
    return redirect(sent.url, 303)


# -- the list ---------------------------------------------------------------------------------


@bp.get("/recurring")
def recurring_list() -> Any:
    user = signed_in_user()
    everyone = request.args.get("all") == "1" and user.has_role("admin")
    svc = services()

    def read() -> dict[str, Any]:
        rows = svc.recurring.listed(user, everyone=everyone)
        names = {}
        for process_id in {r.process_id for r in rows}:
            try:
                names[process_id] = process_name(process_id, svc.definitions.latest(process_id).name)
            except NotFound:  # no longer deployed: its next run pauses it, saying so
                names[process_id] = process_id
        return {"rows": [describe(r) for r in rows], "numbers": svc.recurring.last_numbers(rows), "names": names}

    return render_template("recurring.html", active="recurring", everyone=everyone, may_make=may_make(user),
                           **unit_of_work(read), **repeat_context(user))


def _act(request_id: int, work: Any, said: str) -> Response:
    user = signed_in_user()
    try:
        unit_of_work(lambda: work(user))
    except NotFound:
        flash(_("That recurring request is gone."), "error")
    except PermissionDenied:
        flash(_("Only the service desk's agents, process owners and admins change recurring requests."), "error")
    except ValidationFailed as err:
        labels = {**LABELS, **OTHER_LABELS}
        problems = "; ".join(f"{labels.get(k, k.removeprefix('data.'))}: {'; '.join(v)}" for k, v in
                             service_texts(refused_forms.field_errors(err)).items())
        flash(_("The recurring request cannot go on as it is: %(problems)s. Schedule it again from its start page.",
                problems=problems), "error")
    else:
        flash(said, "success")
    listed = url_for("web.recurring_list", all="1") if request.form.get("all") == "1" else url_for("web.recurring_list")
    return redirect(f"{listed}#recurring-{request_id}", 303)


@bp.post("/recurring/<int:request_id>/pause")
def recurring_pause(request_id: int) -> Response:
    return _act(request_id, lambda user: services().recurring.change(user, request_id, {"active": False}),
                _("Paused: it starts nothing until it is resumed."))


@bp.post("/recurring/<int:request_id>/resume")
def recurring_resume(request_id: int) -> Response:
    return _act(request_id, lambda user: services().recurring.change(user, request_id, {"active": True}),
                _("Resumed: it starts again at its next time."))


@bp.post("/recurring/<int:request_id>/delete")
def recurring_delete(request_id: int) -> Response:
    return _act(request_id, lambda user: services().recurring.delete(user, request_id),
                _("Deleted. What it started stays."))


# -- changing one -----------------------------------------------------------------------------


@bp.route("/recurring/<int:request_id>", methods=["GET", "POST"])
def recurring_edit(request_id: int) -> Any:
    user = signed_in_user()
    svc = services()
    try:
        row = unit_of_work(lambda: describe(svc.recurring.get(user, request_id)))
    except NotFound:
        return error_page(404, _("Not found"), _("There is no such recurring request, or it is not yours."))
    page = f"{EDIT_PAGE}:{request_id}"
    if request.method == "GET":
        refused = refused_forms.take(page)
        if refused is not None:
            return _edit(user, row, refused[0], refused[1])
        return _edit(user, row, None, {})
    values = schedule_values(request.form)
    try:
        unit_of_work(lambda: svc.recurring.change(user, request_id, values))
    except PermissionDenied:
        return error_page(403, _("Not allowed"),
                          _("Only the service desk's agents, process owners and admins change recurring requests."))
    except ValidationFailed as err:
        errors = page_errors(refused_forms.field_errors(err))
        url = url_for("web.recurring_edit", request_id=request_id)
        return (refused_forms.back_with(page, errors, url, request.form)
                or _edit(user, row, request.form, errors, status=422))
    flash(_("The recurring request “%(name)s” is saved.", name=" ".join(values["name"].split())), "success")
    return redirect(url_for("web.recurring_list") + f"#recurring-{request_id}", 303)


def _edit(user: User, row: dict[str, Any], submitted: MultiDict[str, str] | None, errors: dict[str, list[Any]],
          status: int = 200) -> Any:
    if submitted is None:
        submitted = MultiDict([("_repeat_name", row["name"]), ("_repeat_week", row["week"] or ""),
                               ("_repeat_time", row["time"]), ("_repeat_timezone", row["timezone"]),
                               *[("_repeat_days", d) for d in row["days"]]])
    repeat = repeat_view(submitted, errors, open_=True)
    others = [m for k, v in service_texts(errors).items() if k not in REPEAT_FIELDS for m in v]
    return render_template("recurring_edit.html", active="recurring", row=row, repeat=repeat, other_errors=others,
                           weeks=WEEKS, **repeat_context(user)), status
