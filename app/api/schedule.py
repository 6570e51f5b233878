"""The change schedule: planned records with their clashes, and freeze windows
(app/services/schedule.py decides)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from app.models import ChangeFreeze, Ticket
from app.schemas.schedule import (
    ClashesOut,
    FreezeIn,
    FreezeListOut,
    FreezeOut,
    FreezePatch,
    ScheduleOut,
    ScheduleQuery,
    WindowClashesOut,
    WindowQuery,
)
from app.services.icalendar import calendar
from app.services.schedule import ENGLISH_WORDS, Clash, calendar_events

from . import checked_first, current_user, services, unit_of_work

blp = Blueprint("schedule", __name__, url_prefix="/api/v1", description="Change schedule and freezes")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def freeze_dict(row: ChangeFreeze) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "reason": row.reason, "ci": row.ci, "starts_at": row.starts_at,
            "ends_at": row.ends_at, "created_at": row.created_at,
            "created_by": row.created_by.username if row.created_by is not None else None}


def planned_dict(ticket: Ticket, clashes: list[Clash]) -> dict[str, Any]:
    return {"number": ticket.number, "kind": ticket.kind, "title": ticket.title, "status": ticket.status,
            "category": ticket.category, "priority": ticket.priority, "ci": ticket.ci,
            "assignment_group": ticket.assignment_group,
            "assignee": ticket.assignee.username if ticket.assignee is not None else None,
            "planned_start_at": ticket.planned_start_at, "planned_end_at": ticket.planned_end_at,
            "closed": ticket.closed_at is not None, "clashes": [asdict(c) for c in clashes]}


@blp.route("/schedule")
class ScheduleView(MethodView):
    @blp.arguments(ScheduleQuery, location="query")
    @blp.response(200, ScheduleOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The planned records the caller may see whose windows reach into the range (open ones;
        closed too with ``include_closed``), earliest first, each with its clashes (freezes holding
        for it, other open records' windows on its CI, being outside its CI's maintenance windows),
        the freezes in the range, and with ``ci``, that CI's maintenance windows in it. 422 naming
        ``to`` for a range that ends before it starts or spans more than 92 days."""
        user = current_user()
        svc = services()

        def read() -> dict[str, Any]:
            start = args.get("start") or svc.runtime.clock.now()
            view = svc.schedule.window(user, start, args.get("end"), ci=args.get("ci"),
                                       include_closed=args["include_closed"])
            return {"start": view.starts_at, "end": view.ends_at, "truncated": view.truncated,
                    "records": [planned_dict(t, view.clashes.get(t.id, [])) for t in view.records],
                    "freezes": [freeze_dict(f) for f in view.freezes],
                    "maintenance": [{"starts_at": opens, "ends_at": closes} for opens, closes in view.maintenance]
                    if view.maintained else None}

        return unit_of_work(read)


@blp.route("/schedule.ics")
class ScheduleCalendarView(MethodView):
    @blp.arguments(ScheduleQuery, location="query")
    @blp.doc(security=SECURITY, responses={"200": {"description": "an iCalendar file (RFC 5545)",
                                                   "content": {"text/calendar": {}}}})
    def get(self, args: dict[str, Any]) -> Response:
        """The schedule of ``GET /schedule`` (the same range and filters) as an iCalendar file:
        one event per planned record (its number stays its UID, so importing the file again
        updates the events) and one free-time event per freeze, in English."""
        user = current_user()
        svc = services()

        def read() -> str:
            start = args.get("start") or svc.runtime.clock.now()
            view = svc.schedule.window(user, start, args.get("end"), ci=args.get("ci"), include_closed=args["include_closed"])
            site = svc.notifications.link()
            return calendar("processdesk change schedule", calendar_events(
                view, urlsplit(site).hostname or "processdesk", svc.notifications.link,
                lambda freeze: f"{site}/schedule?from={freeze.starts_at.date().isoformat()}&days=7#freeze-{freeze.id}",
                ENGLISH_WORDS), svc.runtime.clock.now())

        return Response(unit_of_work(read), mimetype="text/calendar",
                        headers={"Content-Disposition": 'attachment; filename="change-schedule.ics"'})


@blp.route("/schedule/clashes")
class WindowClashesView(MethodView):
    @blp.arguments(WindowQuery, location="query")
    @blp.response(200, WindowClashesOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """What a window would clash with if it were planned now, before anything is sent: the
        freezes holding for the CI and the other open records on it the caller may see. With
        ``number``, for that record (404 unless the caller sees it): its CI by default, its own
        window left out, exempt as its data is. 422 naming ``to`` (or ``from``) for an end not after
        the start or an instant out of range."""
        user = current_user()
        clashes = unit_of_work(lambda: services().schedule.preview(
            user, args["start"], args["end"], ci=args.get("ci"), number=args.get("number")))
        return {"clashes": [asdict(c) for c in clashes]}


@blp.route("/schedule/freezes")
class FreezesView(MethodView):
    @blp.response(200, FreezeListOut)
    @blp.doc(security=SECURITY)
    def get(self) -> dict[str, Any]:
        """The freezes not over yet, earliest first (everyone signed in)."""
        current_user()
        return {"items": unit_of_work(lambda: [freeze_dict(f) for f in services().schedule.freezes()])}

    @checked_first(lambda svc, user: svc.schedule.require_freeze_manager(user))
    @blp.arguments(FreezeIn)
    @blp.response(201, FreezeOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add a freeze (process owners, admins): no change that is not exempt (emergency changes)
        may be planned to run in it, on its CI or, without one, anywhere. Changes planned in it
        before stay planned and show it as a clash. Audited."""
        user = current_user()
        return unit_of_work(lambda: freeze_dict(services().schedule.add_freeze(user, body)))


@blp.route("/schedule/freezes/<int:freeze_id>")
class FreezeView(MethodView):
    @checked_first(lambda svc, user: svc.schedule.require_freeze_manager(user, "change_freeze_change"))
    @blp.arguments(FreezePatch)
    @blp.response(200, FreezeOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], freeze_id: int) -> dict[str, Any]:
        """Change a freeze (process owners, admins): the fields sent, checked again as for a new
        one. The people of the open changes it now covers and did not before are told. Audited;
        404 for an unknown id."""
        user = current_user()
        return unit_of_work(lambda: freeze_dict(services().schedule.change_freeze(user, freeze_id, body)))

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, freeze_id: int) -> None:
        """Remove a freeze (process owners, admins). Audited; 404 for an unknown id."""
        user = current_user()
        unit_of_work(lambda: services().schedule.remove_freeze(user, freeze_id))


@blp.route("/tickets/<string:number>/clashes")
class ClashesView(MethodView):
    @blp.response(200, ClashesOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """What the record's planned window overlaps: freezes holding for its CI, then other open
        records' windows on its CI that the caller may see. Empty for a record without a window
        or closed."""
        user = current_user()
        svc = services()

        def read() -> dict[str, Any]:
            ticket = svc.records.get(user, number)
            return {"number": ticket.number, "planned_start": ticket.planned_start_at, "planned_end": ticket.planned_end_at,
                    "clashes": [asdict(c) for c in svc.schedule.clashes_for(user, ticket)]}

        return unit_of_work(read)
