"""Time worked on a record's page (routes on the shared ``web`` blueprint; app/services/worklog.py
decides): the "Time worked" panel lists the entries and their total to the desk's staff and the
auditors; the staff log time there, typed as a duration ("45m", "1h 30m", "1:30"), and remove
their own entries (admins any).

A refused form comes back beside its fields (Post/Redirect/Get, as the record page's other forms:
app/web/ticket_pages.py); every form carries the session's CSRF token (checked for every POST by
the blueprint).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import NotFound, ValidationFailed
from app.services.worklog import NOT_A_DURATION, typed_minutes

from . import refused_forms
from .forms import service_text, service_texts
from .ticket_pages import back_to_record, duration, render_ticket
from .views import bp, signed_in_user


@bp.post("/tickets/<number>/time-worked")
def ticket_work(number: str) -> Any:
    me = signed_in_user()
    svc = services()
    unit_of_work(lambda: svc.work.require_writer(me))  # 403 before any word about the fields
    form = request.form
    typed = form.get("spent", "").strip()
    minutes = typed_minutes(typed)
    # a duration not read is sent as none (0): the service still checks the record, the day and
    # the note, so that every problem of the form is said at once
    values = {"minutes": minutes if minutes is not None else (0 if typed else None),
              "worked_on": form.get("worked_on", "").strip() or None, "note": form.get("note", "")}
    errors: dict[str, list[str]] = {}
    try:
        unit_of_work(lambda: svc.work.log(me, number, values))
    except ValidationFailed as err:
        errors = service_texts(refused_forms.field_errors(err))
        # the minutes are typed as a duration: their problem is said beside that field, in its words
        if "minutes" in errors:
            errors["spent"] = errors.pop("minutes")
        if minutes is None and typed:
            errors["spent"] = [service_text(NOT_A_DURATION)]
    if errors:
        kept = MultiDict([(name, form.get(name, "")) for name in ("spent", "worked_on", "note")])
        return back_to_record(number, "work", errors, kept) \
            or render_ticket(me, number, work_form={"values": kept, "errors": errors}, status=422)
    assert minutes is not None  # no errors: the duration was read
    flash(_("Logged %(time)s on %(number)s.", time=duration(minutes * 60), number=number.upper()), "success")
    return redirect(url_for("web.ticket", number=number.upper(), _anchor="work"), 303)


@bp.post("/tickets/<number>/time-worked/<int:entry_id>/remove")
def ticket_work_remove(number: str, entry_id: int) -> Response:
    me = signed_in_user()
    try:
        unit_of_work(lambda: services().work.remove(me, number, entry_id))
    except NotFound as err:
        if err.details.get("id") != entry_id:
            raise  # the record itself: the 404 page
        flash(_("That entry was removed already."), "error")
    else:
        flash(_("The entry is removed."), "success")
    return redirect(url_for("web.ticket", number=number.upper(), _anchor="work"), 303)
