"""The service status pages (routes on the shared ``web`` blueprint; app/services/status.py decides).

- ``/status``: the notices current (worst first), planned, and resolved in the last week, each
  with what the desk said last and how many it affects; everyone signed in.
- ``/status/<id>``: one notice with its timeline. A reader says it affects them (told of its
  updates and resolution) or takes it back; the desk's staff post an update (a new level, title or
  estimated end) and resolve it. An update over a version another agent updated meanwhile is
  refused (409) with the typed text kept and the newer update shown above it.
- ``/status/new``: the desk's staff post a notice (times typed as on every form of the desk:
  "YYYY-MM-DD hh:mm", UTC unless an offset is given).
- **Banners.** The home page, the catalog and the start forms show the current notices (and
  those starting within a day) above their content, through ``status_banner()`` (a template
  global: only the pages that show the banner pay its queries), each current one with a "This
  affects me" button that comes back to the page: a requester about to report a known outage
  follows it instead.

A refused form comes back with each problem beside its field (Post/Redirect/Get,
app/web/refused_forms.py); who may not post gets the 403 page (audited by the service). Every
form carries the session's CSRF token (checked for every POST by the blueprint).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import Conflict, ProcessdeskError, ValidationFailed
from app.models import StatusNotice, Ticket
from app.services.forms import FORMAT_MESSAGES, typed_instant, typed_time
from app.services.status import may_post

from . import auth, refused_forms
from .forms import service_texts
from .views import bp, signed_in_user

log = logging.getLogger(__name__)

LEVEL_LABELS = {"outage": _l("Outage"), "degraded": _l("Degraded service"), "maintenance": _l("Planned maintenance"),
                "info": _l("Information")}
STATE_LABELS = {"current": _l("Now"), "planned": _l("Planned"), "resolved": _l("Resolved")}
#: The keys of the forms as their refusals are kept (app/web/refused_forms.py).
NEW_PAGE = "status:new"
UPDATE_PAGE = "status:update"
NOT_A_DATE_TIME = FORMAT_MESSAGES["date-time"]


@bp.app_context_processor
def _status_globals() -> dict[str, Any]:
    def status_banner() -> list[tuple[StatusNotice, bool, bool]]:
        """The notices the banner shows, each with whether it is still to start and whether the
        reader said it affects them."""
        user = auth.current_user()
        if user is None:
            return []
        svc = services()

        def read() -> list[tuple[StatusNotice, bool, bool]]:
            shown = svc.status.banner(user)
            mine = svc.status.affecting(user, [n.id for n in shown])
            return [(n, svc.status.state(n) == "planned", n.id in mine) for n in shown]

        try:
            return unit_of_work(read)
        except (SQLAlchemyError, ProcessdeskError):
            log.warning("the service status banner was not read", exc_info=True)
            return []

    return {"status_banner": status_banner, "status_levels": LEVEL_LABELS}


def _typed(form: Any, names: tuple[str, ...], values: dict[str, Any], errors: dict[str, list[Any]]) -> None:
    """The date-times of ``form`` named ``names`` read into ``values`` (None when empty)."""
    for name in names:
        typed = str(form.get(name, "")).strip()
        values[name] = typed_instant(typed) if typed else None
        if typed and values[name] is None:
            errors[name] = [NOT_A_DATE_TIME]



@bp.get("/status")
def status_board() -> Any:
    me = signed_in_user()
    svc = services()
    board = unit_of_work(lambda: svc.status.board(me))
    return render_template("status.html", active="status", board=board, may_post=may_post(me),
                           levels=LEVEL_LABELS, states=STATE_LABELS)


#: What a link to /status/new may fill in (the record page's "Post a notice about it").
PREFILLED = ("title", "level", "body", "service", "record", "starts_at", "expected_end_at")


def notice_about(ticket: Ticket) -> str:
    """The address of /status/new filled in from a record: an incident's outage on its service, a
    change's planned maintenance in its window."""
    # not its title: the notice is read by everyone, the record only by those who may (the page says so)
    fields = {"record": ticket.number, "service": ticket.service or ticket.ci or ""}
    if ticket.planned_start_at is not None and ticket.planned_end_at is not None:
        fields.update(level="maintenance", starts_at=typed_time(ticket.planned_start_at),
                      expected_end_at=typed_time(ticket.planned_end_at))
    else:
        fields["level"] = "outage"
    filled: dict[str, Any] = {name: value for name, value in fields.items() if value}
    return url_for("web.status_new", **filled)


@bp.get("/status/new")
def status_new() -> Any:
    me = signed_in_user()
    unit_of_work(lambda: services().status.require_poster(me))
    refused = refused_forms.take(NEW_PAGE)
    if refused:
        form, errors = refused
    else:  # a link may fill the form in (only its own fields, shown as typed text)
        given = {name: request.args.get(name, "")[:4000] for name in PREFILLED if request.args.get(name)}
        form, errors = MultiDict({"level": "outage", **given}), {}
    return _new_page(form, errors)


def _new_page(form: Any, errors: dict[str, list[Any]], status: int = 200) -> Any:
    return render_template("status_new.html", active="status", form=form, errors=service_texts(errors),
                           levels=LEVEL_LABELS), status


@bp.post("/status/new")
def status_post() -> Any:
    me = signed_in_user()
    svc = services()
    unit_of_work(lambda: svc.status.require_poster(me))  # 403 before any word about the fields
    form = request.form
    values: dict[str, Any] = {name: form.get(name, "") for name in ("title", "level", "body", "service", "record")}
    errors: dict[str, list[Any]] = {}
    _typed(form, ("starts_at", "expected_end_at"), values, errors)
    if not errors:
        try:
            notice = unit_of_work(lambda: svc.status.post(me, values))
        except ValidationFailed as err:
            errors = refused_forms.field_errors(err)
        else:
            flash(_("The notice is posted: everyone sees it on the service status page."), "success")
            return redirect(url_for("web.status_notice", notice_id=notice.id), 303)
    return refused_forms.back_with(NEW_PAGE, errors, url_for("web.status_new")) or _new_page(form, errors, 422)


@bp.get("/status/<int:notice_id>")
def status_notice(notice_id: int) -> Any:
    refused = refused_forms.take(f"{UPDATE_PAGE}:{notice_id}")
    form, errors = refused if refused else (MultiDict(), {})
    return _notice_page(notice_id, form, errors)


def _notice_page(notice_id: int, form: Any, errors: dict[str, list[Any]], status: int = 200) -> Any:
    me = signed_in_user()
    svc = services()

    def read() -> dict[str, Any]:
        notice, board, updates = svc.status.one(me, notice_id)
        return {"notice": notice, "board": board, "updates": updates, "state": svc.status.state(notice)}

    page = unit_of_work(read)
    shown = _shown(page["notice"])
    # the update form starts from the notice as it is now; a refused form keeps what was typed into it
    filled = MultiDict(form.items(multi=True))
    for name, value in shown.items():
        if name not in filled:
            filled[name] = value
    return render_template("status_notice.html", active="status", **page, may_post=may_post(me), shown=shown,
                           form=filled, errors=service_texts(errors), levels=LEVEL_LABELS,
                           states=STATE_LABELS), status


#: What an update may change besides adding words; the form says what it showed of each
#: (``shown_<name>``), and only those the agent changed are sent.
CHANGEABLE = ("level", "title", "expected_end_at")


def _shown(notice: StatusNotice) -> dict[str, str]:
    return {"level": notice.level, "title": notice.title,
            "expected_end_at": typed_time(notice.expected_end_at) if notice.expected_end_at else ""}


def _changed(form: Any) -> list[str]:
    """The fields of an update form the agent changed from what the page showed (all of them when
    the form does not say what it showed)."""
    return [name for name in CHANGEABLE
            if form.get(f"shown_{name}") is None or form.get(name, "").strip() != form.get(f"shown_{name}", "").strip()]


def _version(form: Any) -> int | None:
    try:
        return int(form.get("version", ""))
    except ValueError:
        return None


@bp.post("/status/<int:notice_id>/update")
def status_update(notice_id: int) -> Any:
    return _advance(notice_id, resolving=False)


@bp.post("/status/<int:notice_id>/resolve")
def status_resolve(notice_id: int) -> Any:
    return _advance(notice_id, resolving=True)


def _advance(notice_id: int, *, resolving: bool) -> Any:
    me = signed_in_user()
    svc = services()
    unit_of_work(lambda: svc.status.require_poster(me, "status_notice_resolve" if resolving else "status_notice_update"))
    form = request.form
    body_field = "resolution" if resolving else "body"
    values: dict[str, Any] = {"body": form.get(body_field, "")}
    errors: dict[str, list[Any]] = {}
    changed = [] if resolving else _changed(form)
    # an untouched field is not sent: an update written while another agent changed the level or
    # the estimate does not put back what this page showed before
    for name in changed:
        if name == "expected_end_at":
            _typed(form, (name,), values, errors)
        else:
            values[name] = form.get(name) or None
    back = url_for("web.status_notice", notice_id=notice_id)
    if not errors:
        try:
            if resolving:
                unit_of_work(lambda: svc.status.resolve(me, notice_id, _version(form), values))
            else:
                unit_of_work(lambda: svc.status.update(me, notice_id, _version(form), values))
        except ValidationFailed as err:
            errors = {(body_field if name == "body" else name): messages
                      for name, messages in refused_forms.field_errors(err).items()}
        except Conflict as err:
            if "resolved" in err.message:  # its form is gone from the page: say so above it
                flash(_("The notice is resolved: post a new one."), "error")
                return redirect(back, 303)
            # someone else's update came first: what they said shows above the form, and the form
            # shows the notice as it is now, with what this agent typed or changed kept
            errors = {body_field: [_("Someone updated this notice while you wrote: read their update, "
                                     "then send yours again.")]}
            kept = MultiDict([(name, form.get(name, "")) for name in (body_field, *changed)])
            return refused_forms.back_with(f"{UPDATE_PAGE}:{notice_id}", errors, back + "#update", kept) \
                or _notice_page(notice_id, kept, errors, 409)
        else:
            flash(_("The notice is resolved; those it affects are told.") if resolving
                  else _("The update is posted; those it affects are told."), "success")
            return redirect(back, 303)
    return refused_forms.back_with(f"{UPDATE_PAGE}:{notice_id}", errors, back + "#update") \
        or _notice_page(notice_id, form, errors, 422)


@bp.post("/status/<int:notice_id>/affected")
def status_affected(notice_id: int) -> Response:
    me = signed_in_user()
    affected = request.form.get("affected") == "1"
    # the banner's button comes back to the page it is on (a path of this site only)
    back = auth.safe_next(request.form.get("next")) or url_for("web.status_notice", notice_id=notice_id)
    try:
        unit_of_work(lambda: services().status.set_affected(me, notice_id, affected))
    except Conflict:
        flash(_("The notice is resolved: nothing more will be said of it."), "error")
        return redirect(back, 303)
    flash(_("Noted: you will be told of its updates and when it is resolved.") if affected
          else _("Noted: you will not be told of it any more."), "success")
    return redirect(back, 303)

