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
from .forms import service_texts
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
    try:
        view = unit_of_work(lambda: services().views.save(me, {"name": name, "query": query}))
    except ValidationFailed as err:
        errors = service_texts(refused_forms.field_errors(err))
        if "query" in errors:  # not the page's own list: said beside the name, the form's one field
            errors = {"name": errors.get("name", []) + errors.pop("query")}
        back = f"{_list_url(shown)}#save-view-form"
        return refused_forms.back_with(SAVE_VIEW_PAGE, errors, back, MultiDict([("name", name)])) or redirect(back, 303)
    flash(_("The view “%(name)s” is saved: it is one click away above the list.", name=view.name), "success")
    return redirect(_list_url(view.query), 303)


def _list_url(query: str) -> str:
    """The record list with ``query`` (a view's, as kept)."""
    return f"{url_for('web.tickets')}?{query}" if query else url_for("web.tickets")

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
