"""The signed-in user's in-app notifications (routes on the shared ``web`` blueprint).

``/notifications`` lists them newest first, paged, all or only the unread ones (``?unread=1``),
through the same ``NotificationService`` the API uses (``GET /api/v1/notifications``). Each shows
its subject, time and plain-text body, and links to its record only when the user may see that
record: the record page answers 404 to the others, so a link there would only lead to "not found".
"Mark as read" and "Mark all as read" are POST forms (the blueprint checks their CSRF token) that
go back to the page they came from.

The header shows the number of unread notifications on every signed-in page: one COUNT query,
made only when the header asks for it (``unread_notifications``), never for a visitor or an
error page that shows nobody signed in.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.api import services, unit_of_work
from app.errors import ProcessdeskError
from app.models import Ticket, User

from . import auth
from .views import bp, page_arg, past_the_last_page, signed_in_user

log = logging.getLogger(__name__)


def unread_count(user: User) -> int:
    """How many of ``user``'s notifications are unread, for the header (``NotificationService.unread_count``)."""
    return unit_of_work(lambda: services().notifications.unread_count(user))


@bp.app_context_processor
def _notification_globals() -> dict[str, Any]:
    # A function, not a number: only the header of a signed-in page calls it, so the login page,
    # error pages and pages that never show the header cost no query.
    def unread_notifications() -> int:
        user = auth.current_user()
        if user is None:
            return 0
        try:
            return unread_count(user)
        except (SQLAlchemyError, ProcessdeskError):
            # An error page for a failing database shows its header all the same, without the count.
            log.warning("unread notifications not counted for the header", exc_info=True)
            return 0

    return {"unread_notifications": unread_notifications}


def _record_links(user: User, ticket_ids: set[int]) -> dict[int, str]:
    """``{ticket id: number}`` of the records among ``ticket_ids`` that ``user`` may see, in one
    query (``RecordService.visible``: the rule of the record page)."""
    if not ticket_ids:
        return {}
    svc = services()
    query = svc.records.visible(user, select(Ticket.id, Ticket.number).where(Ticket.id.in_(sorted(ticket_ids))))
    return {ticket_id: number for ticket_id, number in svc.session.execute(query)}


@bp.get("/notifications")
def notifications() -> Any:
    user = signed_in_user()
    unread_only = request.args.get("unread") == "1"
    page = page_arg()
    per_page = int(current_app.config["PER_PAGE_DEFAULT"])
    svc = services()

    def read() -> dict[str, Any]:
        rows, total, unread = svc.notifications.list_for(user, unread_only, page, per_page)
        links = _record_links(user, {r.ticket_id for r in rows if r.ticket_id})
        return {"rows": rows, "total": total, "unread": unread, "links": links}

    found = unit_of_work(read)
    beyond = past_the_last_page(page, found["total"], per_page)
    if beyond is not None:
        return beyond
    return render_template("notifications.html", active="notifications", unread_only=unread_only, page=page,
                           pages=max(1, -(-found["total"] // per_page)),
                           params={"unread": "1"} if unread_only else {}, **found)


def _back() -> Any:
    return redirect(auth.safe_next(request.form.get("next")) or url_for("web.notifications"))


@bp.post("/notifications/<int:notification_id>/read")
def notification_read(notification_id: int) -> Any:
    user = signed_in_user()
    # Another user's notification is "not found" (the service's answer), as in the API.
    unit_of_work(lambda: services().notifications.mark_read(user, notification_id))
    return _back()


@bp.post("/notifications/read-all")
def notifications_read_all() -> Any:
    user = signed_in_user()
    unit_of_work(lambda: services().notifications.mark_all_read(user))
    flash(_("All your notifications are marked as read."), "success")
    return _back()
