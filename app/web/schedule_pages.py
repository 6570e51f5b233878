"""The change schedule page (routes on the shared ``web`` blueprint).

``/schedule`` shows a period of 7, 14 or 28 days from a chosen day (default: today, 14 days):
every planned record the user may see whose window reaches into it (open ones; closed ones too on
request), as a row with its window in words and as a bar on a time line, with the freezes shaded
behind it, and what it clashes with (``ScheduleService.window``). Earlier / Later move by the
period. Below, the freezes of the period; process owners and admins add a freeze with the form
there (times typed as on every form of the desk: "YYYY-MM-DD hh:mm", UTC unless an offset is
given) and remove one. A refused freeze comes back to the form with each problem beside its
field (Post/Redirect/Get, app/web/refused_forms.py); others get the 403 page (audited by the
service). Every form carries the session's CSRF token (checked for every POST by the blueprint).

The time line is drawn as SVG rectangles placed by their attributes: the page's content security
policy allows no inline styles, and a rectangle's geometry is no style.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import NotFound, ValidationFailed
from app.models import ChangeFreeze, User
from app.services.cmdb import may_read as may_read_cmdb
from app.services.forms import FORMAT_MESSAGES, typed_instant, typed_time
from app.services.icalendar import calendar
from app.services.records import EARLIEST_INSTANT, LATEST_INSTANT
from app.services.schedule import (
    FEED_DAYS_AFTER,
    FEED_DAYS_BEFORE,
    CalendarWords,
    Clash,
    Schedule,
    calendar_events,
    may_manage_freezes,
    reads_schedule,
)

from . import refused_forms
from .forms import service_text
from .labels import STATUS_LABELS, clash_text, label
from .views import bp, json_answer, signed_in_user

#: The periods the page shows, in days; the default.
PERIODS = (7, 14, 28)
DEFAULT_PERIOD = 14
#: The width of the time line in SVG units (it is drawn stretched to the column's width).
SCALE = 1000
#: The key of the freeze form as its refusal is kept (app/web/refused_forms.py).
PAGE = "schedule:freeze"
#: The freeze form's fields, as the service names them.
FREEZE_FIELDS = ("name", "starts_at", "ends_at", "ci", "reason")
#: The session key of a new subscription's secret, until the page shows it (once).
FEED_SECRET = "schedule_feed_secret"
#: What a date-time the page cannot read is told: the forms' own words, which ``service_text``
#: says in the page's language.
NOT_A_DATE_TIME = FORMAT_MESSAGES["date-time"]


@dataclass(frozen=True)
class Span:
    """A period placed on the time line: its start and width in SVG units, cut to the period."""

    x: float
    width: float


def _span(view: Schedule, starts_at: datetime, ends_at: datetime) -> Span:
    whole = (view.ends_at - view.starts_at).total_seconds()
    left = max(starts_at, view.starts_at) - view.starts_at
    right = min(ends_at, view.ends_at) - view.starts_at
    x = left.total_seconds() / whole * SCALE
    # a window of minutes in a month would be a hairline: at least a visible sliver
    return Span(round(x, 2), round(max(right.total_seconds() / whole * SCALE - x, 2.0), 2))


def _first_day(text: str | None, today: date) -> tuple[date, str | None]:
    """The first day the page shows: the one asked for (YYYY-MM-DD, in the years the desk keeps
    windows in: the period and the pager's links stay in them), else today, with a word why."""
    if not text:
        return today, None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return today, _("Enter a day as YYYY-MM-DD.")
    if not EARLIEST_INSTANT.date() + timedelta(days=max(PERIODS)) <= day < LATEST_INSTANT.date() - timedelta(days=2 * max(PERIODS)):
        return today, _("Enter a day in the years 1900 to 8999.")
    return day, None


def _freeze_values(form: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The freeze the form asks for (times read as typed) and the times it could not read."""
    values: dict[str, Any] = {name: form.get(name, "") for name in FREEZE_FIELDS}
    errors: dict[str, list[Any]] = {}
    for name in ("starts_at", "ends_at"):
        typed = str(values[name]).strip()
        if not typed:
            values[name] = None
            continue
        values[name] = typed_instant(typed)
        if values[name] is None:
            errors[name] = [NOT_A_DATE_TIME]
    return values, errors


@bp.get("/schedule")
def change_schedule() -> Any:
    me = signed_in_user()
    refused = refused_forms.take(PAGE)
    if refused:
        return _page(me, *refused)
    editing = request.args.get("edit", type=int)
    if editing and may_manage_freezes(me):
        freeze = unit_of_work(lambda: services().schedule.get_freeze(editing))
        return _page(me, {"name": freeze.name, "starts_at": typed_time(freeze.starts_at),
                          "ends_at": typed_time(freeze.ends_at), "ci": freeze.ci or "",
                          "reason": freeze.reason}, {})
    return _page(me, {}, {})


@dataclass(frozen=True)
class _Period:
    """The period a request asks for (``from``, ``days``, ``ci``, ``closed``), as the page reads it."""

    first: date
    day_error: str | None
    days: int
    ci: str
    include_closed: bool

    @classmethod
    def asked(cls, today: date) -> _Period:
        first, day_error = _first_day(request.args.get("from"), today)
        days = request.args.get("days", type=int)
        return cls(first, day_error, days if days in PERIODS else DEFAULT_PERIOD,
                   " ".join(request.args.get("ci", "").split())[:255], request.args.get("closed") == "1")

    def read(self, svc: Any, me: User) -> Schedule:
        starts_at = datetime.combine(self.first, time(), timezone.utc)
        return svc.schedule.window(me, starts_at, starts_at + timedelta(days=self.days), ci=self.ci or None,
                                   include_closed=self.include_closed)


def _page(me: User, form: Any, errors: dict[str, list[Any]], status: int = 200) -> Any:
    svc = services()
    today = svc.runtime.clock.now().date()
    asked = _Period.asked(today)
    first, day_error, period, ci, include_closed = asked.first, asked.day_error, asked.days, asked.ci, asked.include_closed
    view, feed = unit_of_work(lambda: (asked.read(svc, me), svc.schedule.feed_of(me)))
    rows = [{"ticket": t, "span": _span(view, t.planned_start_at, t.planned_end_at), "clashes": view.clashes.get(t.id, [])}
            for t in view.records if t.planned_start_at is not None and t.planned_end_at is not None]
    bands = [{"freeze": f, "span": _span(view, f.starts_at, f.ends_at)} for f in view.freezes]
    # one CI's maintenance windows, on a row of their own (a change outside them shows the clash)
    maintenance = [{"span": _span(view, opens, closes), "starts_at": opens, "ends_at": closes}
                   for opens, closes in view.maintenance]
    days = [first + timedelta(days=n) for n in range(period)]
    links = {"earlier": first - timedelta(days=period), "later": first + timedelta(days=period), "today": today}
    shown: dict[str, Any] = {"days": period, **({"ci": ci} if ci else {}), **({"closed": "1"} if include_closed else {})}

    def page_url(endpoint: str, day: date, **values: Any) -> str:
        """``endpoint``'s address keeping the period shown (from ``day``): the forms come back to it."""
        arguments: dict[str, Any] = {**values, **shown, "from": day.isoformat()}
        return url_for(endpoint, **arguments)

    secret = session.pop(FEED_SECRET, None)
    feed_url = svc.notifications.link() + url_for("web.schedule_feed", secret=secret) if secret and feed else None
    may_manage = may_manage_freezes(me)
    return render_template("schedule.html", active="schedule", view=view, rows=rows, bands=bands, days=days,
                           maintenance=maintenance, may_read_cmdb=may_read_cmdb(me),
                           editing=request.args.get("edit", type=int) if may_manage else None,
                           feed=feed, feed_url=feed_url, may_subscribe=reads_schedule(me),
                           feed_days=(FEED_DAYS_BEFORE, FEED_DAYS_AFTER),
                           period=period, periods=PERIODS, first=first, day_error=day_error, ci=ci,
                           include_closed=include_closed, links=links, page_url=page_url,
                           may_manage=may_manage,
                           form=form, errors={k: [service_text(m) for m in v] for k, v in errors.items()},
                           scale=SCALE, today=today, clash_text=clash_text, label=label,
                           status_labels=STATUS_LABELS), status


def _calendar(svc: Any, view: Schedule) -> str:
    """``view`` as an iCalendar file in the current language, each freeze linking to the week of
    the schedule where it starts."""
    words = CalendarWords(status=lambda status: str(label(STATUS_LABELS, status)), clash=clash_text,
                          freeze=lambda name: _("Change freeze: %(name)s", name=name))
    site = svc.notifications.link()

    def freeze_link(freeze: ChangeFreeze) -> str:
        week: dict[str, Any] = {"from": freeze.starts_at.date().isoformat(), "days": 7}
        return site + url_for("web.change_schedule", **week) + f"#freeze-{freeze.id}"

    return calendar(_("processdesk change schedule"), calendar_events(
        view, urlsplit(site).hostname or "processdesk", svc.notifications.link, freeze_link, words), svc.runtime.clock.now())


@bp.get("/schedule.ics")
def change_schedule_calendar() -> Any:
    """The period the page shows (the same ``from``, ``days``, ``ci`` and ``closed``) as an
    iCalendar file to import into a calendar, in the page's language."""
    me = signed_in_user()
    svc = services()
    asked = _Period.asked(svc.runtime.clock.now().date())
    return Response(unit_of_work(lambda: _calendar(svc, asked.read(svc, me))), mimetype="text/calendar",
                    headers={"Content-Disposition": f'attachment; filename="change-schedule-{asked.first.isoformat()}.ics"'})


@bp.post("/schedule/feed")
def schedule_feed_open() -> Response:
    """A new calendar subscription address for the user (the old one, if any, stops): shown once,
    on the page the redirect leads to (kept in the session until then)."""
    me = signed_in_user()
    session[FEED_SECRET] = unit_of_work(lambda: services().schedule.open_feed(me))
    flash(_("Your calendar subscription address is below: copy it now, it is shown this once."), "success")
    return redirect(_back() + "#feed", 303)


@bp.post("/schedule/feed/close")
def schedule_feed_close() -> Response:
    me = signed_in_user()
    unit_of_work(lambda: services().schedule.close_feed(me))
    flash(_("Your calendar subscription was stopped: its address no longer answers."), "success")
    return redirect(_back() + "#feed", 303)


@bp.get("/schedule/feed/<secret>.ics")
def schedule_feed(secret: str) -> Response:
    """A calendar subscription (no session: the secret in the address is the key): the schedule as
    its user sees it, in their language (``ScheduleService.feed_window``). Anything else is a bare
    404, which says nothing about why."""
    svc = services()

    def read() -> str:
        user, view = svc.schedule.feed_window(secret)
        with force_locale(user.locale or str(current_app.config.get("DEFAULT_LANGUAGE") or "en")):
            return _calendar(svc, view)

    try:
        body = unit_of_work(read)
    except NotFound:
        return Response("no such calendar subscription\n", status=404, mimetype="text/plain")
    return Response(body, mimetype="text/calendar")


@bp.get("/schedule/clashes")
def schedule_clashes() -> Any:
    """What a form's planned window clashes with as its user types it (``ui:scheduleCheck``,
    js/as-you-type.js): ``{"items": [{"text", "url"}]}``, each clash in the page's language, with a
    link to the other record or to the freeze on the schedule (``ScheduleService.preview``); one
    outside a CI's maintenance windows also has ``window`` (``from``, ``to`` as the form's fields
    are typed, UTC): the window typed, as long, moved to the next maintenance window that holds it.
    Nothing while the window is not two readable times, the end after the start."""
    me = signed_in_user()
    start, end = (typed_instant(request.args.get(name, "")[:40]) for name in ("from", "to"))
    if start is None or end is None or end <= start:
        return {"items": []}
    ci = " ".join(request.args.get("ci", "").split())[:255] or None
    number = request.args.get("number", "")[:32] or None
    svc = services()

    def where(clash: Clash) -> str:
        if clash.number:
            return url_for("web.ticket", number=clash.number)
        if clash.kind == "maintenance":  # the CI's schedule in the week of the next window that fits
            moment = clash.next_start or clash.starts_at
            shown: dict[str, Any] = {"from": moment.date().isoformat(), "days": 7, "ci": clash.ci}
            return url_for("web.change_schedule", **shown)
        week: dict[str, Any] = {"from": clash.starts_at.date().isoformat(), "days": 7}
        return url_for("web.change_schedule", **week) + "#freezes"

    def item(clash: Clash) -> dict[str, Any]:
        said: dict[str, Any] = {"text": clash_text(clash), "url": where(clash)}
        if clash.kind == "maintenance" and clash.next_start is not None:
            # the same length, moved to the next window that holds it: the form offers to plan it then
            moved = (clash.next_start, clash.next_start + (end - start))
            said["window"] = {"from": typed_time(moved[0]), "to": typed_time(moved[1])}
        return said

    def read() -> dict[str, Any]:
        return {"items": [item(c) for c in svc.schedule.preview(me, start, end, ci=ci, number=number)]}

    return json_answer(read)


@bp.post("/schedule/freezes")
def schedule_freeze_add() -> Any:
    me = signed_in_user()
    svc = services()
    unit_of_work(lambda: svc.schedule.require_freeze_manager(me))  # 403 before any word about the fields
    values, errors = _freeze_values(request.form)
    back = _back()
    if not errors:
        try:
            freeze = unit_of_work(lambda: svc.schedule.add_freeze(me, values))
        except ValidationFailed as err:
            errors = refused_forms.field_errors(err)
        else:
            flash(_("The freeze “%(name)s” was added: no change that needs approval may be planned in it.", name=freeze.name),
                  "success")
            return redirect(back + "#freezes", 303)
    return refused_forms.back_with(PAGE, errors, back + "#freeze-form") or _page(me, request.form, errors, 422)


@bp.post("/schedule/freezes/<int:freeze_id>/edit")
def schedule_freeze_edit(freeze_id: int) -> Any:
    me = signed_in_user()
    svc = services()
    unit_of_work(lambda: svc.schedule.require_freeze_manager(me, "change_freeze_change"))
    values, errors = _freeze_values(request.form)
    if not errors:
        try:
            freeze = unit_of_work(lambda: svc.schedule.change_freeze(me, freeze_id, values))
        except ValidationFailed as err:
            errors = refused_forms.field_errors(err)
        else:
            flash(_("The freeze “%(name)s” was changed.", name=freeze.name), "success")
            return redirect(_back() + "#freezes", 303)
    shown: dict[str, Any] = {k: v for k, v in request.args.items() if k in ("from", "days", "ci", "closed")}
    back = url_for("web.change_schedule", **shown, edit=freeze_id)
    return refused_forms.back_with(PAGE, errors, back + "#freeze-form") or _page(me, request.form, errors, 422)


@bp.post("/schedule/freezes/<int:freeze_id>/delete")
def schedule_freeze_delete(freeze_id: int) -> Response:
    me = signed_in_user()
    unit_of_work(lambda: services().schedule.remove_freeze(me, freeze_id))
    flash(_("The freeze was removed."), "success")
    return redirect(_back() + "#freezes", 303)


def _back() -> str:
    """The schedule as the form's page showed it (its period, kept in the form's address)."""
    shown: dict[str, Any] = {k: v for k, v in request.args.items() if k in ("from", "days", "ci", "closed")}
    return url_for("web.change_schedule", **shown)
