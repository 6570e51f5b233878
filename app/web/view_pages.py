"""Saved views of the record list on its page (routes on the shared ``web`` blueprint;
app/services/views.py decides): "Save this list as" keeps the filters and order shown under a
name; the views are links above the list, each with a delete button. Everyone signed in keeps
their own. A refused name comes back beside its field (Post/Redirect/Get); every form carries the
session's CSRF token (checked for every POST by the blueprint)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import NotFound, ValidationFailed
from app.services.views import normalised

from . import refused_forms
from .forms import service_text
from .ticket_pages import SAVE_VIEW_PAGE
from .views import bp, signed_in_user


@bp.post("/tickets/views")
def ticket_view_save() -> Response:
    me = signed_in_user()
    name, query = request.form.get("name", ""), request.form.get("query", "")
    try:  # back to the list the form was on, as the page reads it (never the posted text itself)
        shown = normalised(query)
    except ValidationFailed:
        shown = ""
    back = f"{url_for('web.tickets')}?{shown}" if shown else url_for("web.tickets")
    try:
        view = unit_of_work(lambda: services().views.save(me, {"name": name, "query": query}))
    except ValidationFailed as err:
        errors = {field: [service_text(m) for m in messages]
                  for field, messages in refused_forms.field_errors(err).items()}
        if "query" in errors:  # not the page's own list: it is said above the form
            errors = {"name": errors.get("name", []) + errors.pop("query")}
        refused_forms.keep(SAVE_VIEW_PAGE, MultiDict([("name", name)]), errors)
        return redirect(f"{back}#save-view-form", 303)
    flash(_("The view “%(name)s” is saved: it is one click away above the list.", name=view.name), "success")
    return redirect(f"{url_for('web.tickets')}?{view.query}" if view.query else url_for("web.tickets"), 303)


@bp.post("/tickets/views/<int:view_id>/delete")
def ticket_view_delete(view_id: int) -> Response:
    me = signed_in_user()
    try:
        unit_of_work(lambda: services().views.delete(me, view_id))
    except NotFound:
        flash(_("That view was deleted already."), "error")
    else:
        flash(_("The view is deleted."), "success")
    return redirect(url_for("web.tickets"), 303)
