"""Pages that start a process from its start form (routes on the shared ``web`` blueprint).

``/start/<process_id>`` shows the process's start form (``forms/<process_id>.start.json`` and its
UI schema), generated like a task or catalog request form. The form is posted back to the same
address; ``InstanceService.start_process`` validates it and starts the process, and the user lands
on the new record's page. The form carries a one-time token (app/services/submissions.py): sent
twice (a double click), it starts one process and both answers lead to its record. A refused form comes back with its errors beside each field (422) and the
user's input kept. A process that is not deployed or has no start form is not found (404); a user
who may not start it (``InstanceService.require_start``: no starter role, or not one of the roles
its ``<process_id>.access.json`` declares) is refused (403, audited). The header offers the start
pages of the processes the user may start, by the same rule.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.api import services, unit_of_work
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import User
from app.services import policy
from app.services.forms import validate_submission
from app.services.submissions import FIELD as SUBMISSION_FIELD
from app.services.submissions import SubmissionService

from . import auth, refused_forms
from .content import content_text, localized_form, process_name
from .errors import error_page, flash_already_sent, optional_url
from .forms import CALLER_FIELD, build_form, caller_errors, for_others_refused, submitted_data, with_caller_field
from .recurring_pages import REPEAT_FIELDS, repeat_context, repeat_view, schedule_sent_form, schedules, without_schedule
from .views import bp, error_detail, json_answer, signed_in_user

#: Longest process id taken from the address (ProcessInstance.process_id is 128 characters).
MAX_PROCESS_ID = 128

#: The processes the header offers, with the words of their page; each to those who may start it
#: (who that is, the process declares: ``processes/<process_id>.access.json``).
START_PAGES: dict[str, Any] = {
    "incident_management": _l("Report an incident"),
    "change_enablement": _l("Raise a change"),
    "problem_management": _l("Raise a problem"),
}
#: Shorter words for the header where a page's own would crowd it: an admin's header (every link,
#: the three start links, the CMDB, a long display name) must fit one line at 1280 px with a scroll
#: bar. Who starts incidents only (a requester) keeps "Report an incident".
NAV_LABELS: dict[str, Any] = {
    "incident_management": _l("New incident"),
    "change_enablement": _l("New change"),
    "problem_management": _l("New problem"),
}


@bp.app_context_processor
def _start_links() -> dict[str, Any]:
    """``start_links``: (process id, address, label) of each start page the header offers the user."""
    user = auth.current_user()
    if user is None or not policy.may_start(user):
        return {"start_links": []}
    startable = services().instances.startable(user, list(START_PAGES))
    words = NAV_LABELS if len(startable) > 1 else START_PAGES
    return {"start_links": [(process_id, url_for("web.start", process_id=process_id),
                             str(words.get(process_id, START_PAGES[process_id])))
                            for process_id in startable]}


def _refused(err: PermissionDenied | None = None) -> Any:
    if err is not None and (for_others := for_others_refused(err)) is not None:
        return for_others
    if err is None or err.details.get("process_id") is None:
        return error_page(403, _("Not allowed"), _("You may read records but not start processes."))
    return error_page(403, _("Not allowed"), _("Your roles do not allow you to start this process."),
                      detail=error_detail(err.message))


@bp.route("/start/<process_id>", methods=["GET", "POST"])
def start(process_id: str) -> Any:
    user = signed_in_user()
    if len(process_id) > MAX_PROCESS_ID:
        abort(404)
    try:
        unit_of_work(lambda: services().instances.require_start(user, process_id))
    except PermissionDenied as err:
        return _refused(err)
    page = f"start:{process_id}"
    if request.method == "GET":
        refused = refused_forms.take(page)  # sent back by the redirect below: shown once
        if refused is not None:
            return _render(user, process_id, submitted=refused[0], errors=refused[1])
        return _render(user, process_id)
    data = without_schedule(submitted_data(request.form))
    svc = services()
    if schedules(request.form):
        return _schedule(user, process_id, page, data)

    def begin() -> tuple[dict[str, Any], str, str | None]:
        schema, ui = _start_form(user, process_id)
        # Form values are text: coerced as a task form's are, then checked again by the start contract.
        caller, cleaned = svc.instances.caller_and(user, process_id, request.form.get(CALLER_FIELD),
                                                   lambda: validate_submission(schema, ui, data, {}, coerce_strings=True))
        instance = svc.instances.start_process(user, process_id, cleaned, caller=caller)
        record = instance.data or {}
        number = record.get("record_number")
        started = {"number": number, "title": record.get("title") or cleaned.get("title") or "",
                   "for": instance.started_by.username if instance.started_by and instance.started_by_id != user.id
                   else None}
        url = (optional_url("web.ticket", number=number) if number else None) or url_for("web.tasks")
        return started, url, number

    try:
        # Once per rendering of the form: sent again (a double click), it goes where the first went.
        sent = unit_of_work(lambda: svc.submissions.once(user, request.form.get(SUBMISSION_FIELD), begin))
    except PermissionDenied as err:
        return _refused(err)
    except ValidationFailed as err:
        # Post/Redirect/Get, as the task form (app/web/refused_forms.py): Back and Reload send nothing.
        return (refused_forms.back_to_form(page, err, url_for("web.start", process_id=process_id))
                or _render(user, process_id, submitted=request.form, errors=refused_forms.field_errors(err),
                           status=422))
    if sent.repeated or sent.value is None:  # (value is None exactly when repeated)
        flash_already_sent(sent.ref)
        return redirect(sent.url or url_for("web.start", process_id=process_id))
    if not sent.ref:
        flash(_("The process was started."), "success")
        return redirect(sent.url)
    if sent.value.get("for"):
        flash(_("Record %(number)s “%(title)s” was logged for %(name)s, who is told its number.", number=sent.ref,
                title=sent.value["title"], name=sent.value["for"]), "success")
    else:
        flash(_("Your record %(number)s “%(title)s” was created.", number=sent.ref, title=sent.value["title"]), "success")
    return redirect(sent.url)


def _schedule(user: User, process_id: str, page: str, data: dict[str, Any]) -> Any:
    """Keep the sent form as a recurring request instead of starting it (app/web/recurring_pages.py)."""

    def checked() -> dict[str, Any]:
        schema, ui = _start_form(user, process_id)
        return validate_submission(schema, ui, data, {}, coerce_strings=True)

    return schedule_sent_form(user, process_id, checked, back=url_for("web.start", process_id=process_id), page=page,
                              refused=_refused, render=lambda errors: _render(user, process_id, submitted=request.form,
                                                                               errors=errors, status=422))


def _start_form(user: User, process_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The deployed process's start form as the user fills it in; 404 if the process is not
    deployed or has none."""
    svc = services()
    try:
        svc.definitions.latest(process_id)
    except NotFound:
        abort(404)
    form = svc.instances.start_form_for(user, process_id)
    if form is None:
        abort(404)
    return form


def _render(user: User, process_id: str, *, submitted: Any = None, errors: dict[str, list[str]] | None = None,
            status: int = 200) -> Any:
    svc = services()
    schema, ui = unit_of_work(lambda: _start_form(user, process_id))
    name = process_name(process_id, unit_of_work(lambda: svc.definitions.latest(process_id).name))
    known = START_PAGES.get(process_id)
    # The shipped processes' pages say what they do; another's, its start form's title or its name.
    title = str(known) if known else (content_text(process_id, schema["title"]) if schema.get("title") else name)
    errors, for_caller = caller_errors(errors)
    repeat_errors = {k: errors.pop(k) for k in list(errors) if k in REPEAT_FIELDS}
    form = localized_form(build_form(schema, ui, {}, submitted, errors), process_id)
    if policy.starts_for_others(user):
        with_caller_field(form, submitted, for_caller, process_id)
    scheduling = submitted is not None and schedules(submitted)
    return render_template("start.html", active="start-" + process_id, title=title, process_id=process_id,
                           process_name=name, form=form, submission_token=SubmissionService.new_token(),
                           repeat=repeat_view(submitted if scheduling else None, repeat_errors, open_=scheduling),
                           **repeat_context(user)), status


@bp.get("/start/<process_id>/callers")
def callers(process_id: str) -> Any:
    """The "Requested for" control's suggestions as its agent types (js/as-you-type.js):
    ``{"items": [{"username", "display_name", "email"}]}`` (``InstanceService.callers``); 403 for
    who may not start for others, 404 for a process not deployed."""
    user = signed_in_user()
    svc = services()
    text = request.args.get("q", "")[:200]
    return json_answer(lambda: {"items": svc.instances.callers(user, process_id[:MAX_PROCESS_ID], text)})
