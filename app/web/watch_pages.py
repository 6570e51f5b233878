"""Watching a record from its page (routes on the shared ``web`` blueprint;
app/services/watching.py decides): the "Watchers" panel lists who follow the record, a button
watches it or stops, and the desk's staff take someone off the list. Every form carries the
session's CSRF token (checked for every POST by the blueprint).
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import NotFound, PermissionDenied
from app.services.watching import AUDITORS_READ, NOT_YOURS_TO_REMOVE, STAFF_WATCH

from .views import bp, signed_in_user


def _refused(number: str, err: PermissionDenied) -> Response:
    reason = {NOT_YOURS_TO_REMOVE: _("only the service desk takes other people off a record's watchers"),
              AUDITORS_READ: _("auditors read records but do not change them"),
              STAFF_WATCH: _("only the desk's staff choose to watch records; a requester hears her own records' "
                             "news already")}.get(err.message, err.message)
    flash(_("The watchers of %(number)s were not changed: %(reason)s", number=number, reason=reason), "error")
    return redirect(url_for("web.ticket", number=number, _anchor="watchers"))


@bp.post("/tickets/<number>/watch")
def ticket_watch(number: str) -> Response:
    user = signed_in_user()
    number = number.upper()
    try:
        done = unit_of_work(lambda: services().watching.watch(user, number))
    except PermissionDenied as err:
        return _refused(number, err)
    if done.changed:
        flash(_("You watch %(number)s: its comments, resolution and closing reach you.", number=number), "success")
    return redirect(url_for("web.ticket", number=number, _anchor="watchers"))


@bp.post("/tickets/<number>/unwatch")
def ticket_unwatch(number: str) -> Response:
    user = signed_in_user()
    number = number.upper()
    done = unit_of_work(lambda: services().watching.unwatch(user, number))
    if done.changed:
        flash(_("You no longer watch %(number)s.", number=number), "success")
    if not done.reads:
        return redirect(url_for("web.tickets"))  # read only as a watcher: the record is no longer theirs to open
    return redirect(url_for("web.ticket", number=number, _anchor="watchers"))


@bp.post("/tickets/<number>/watchers/<username>/remove")
def ticket_watcher_remove(number: str, username: str) -> Response:
    user = signed_in_user()
    # The record of the page first: one the user may not see answers 404 as the page does, and a
    # NotFound afterwards is the name's, said in a flash.
    number = unit_of_work(lambda: services().records.get(user, number, action="unwatch").number)
    try:
        done = unit_of_work(lambda: services().watching.unwatch(user, number, username))
    except PermissionDenied as err:
        return _refused(number, err)
    except NotFound:
        flash(_("%(name)s does not watch %(number)s.", name=username, number=number), "info")
        return redirect(url_for("web.ticket", number=number, _anchor="watchers"))
    if done.changed:
        flash(_("%(name)s no longer watches %(number)s.", name=username.strip().lower(), number=number), "success")
    return redirect(url_for("web.ticket", number=number, _anchor="watchers"))
