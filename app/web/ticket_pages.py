"""Pages of the ticket area (routes on the shared ``web`` blueprint).

- ``/tickets``: the records the user may see, filtered (kind, status, priority, group, assignee,
  requester, text, open or closed), sorted and paged (``RecordService.list_tickets``).
- ``/tickets/<number>``: one record: its fields and details, SLA clocks, open tasks, comments
  (and a form to add one, sent once however often it is posted: app/services/submissions.py), links (and a form to add one) and the process diagram.
- ``/tickets/<number>/diagram.json``: what ``static/js/diagram.js`` draws with bpmn-js's Viewer:
  ``{xml, completed, current, failed}`` (BPMN ids). Same visibility as the page: 404 otherwise.

Stored values are worded by ``labels.py`` (codes by their forms' labels, durations, money, dates),
links from the end the page shows (``labels.RELATION_LABELS``).

The diagram is the only part that needs JavaScript (``submit-once.js`` only disables the comment
button once it is pressed); the page says everything else without it.
bpmn-js is copied from npm into ``static/vendor/`` by ``make vendor``; while it is missing the
page leaves the diagram out instead of loading a script that is not there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.api import services, unit_of_work
from app.db import COUNT_CAP
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import Ticket, User
from app.services import policy
from app.services.records import KINDS, MAX_COMMENT
from app.services.submissions import FIELD as SUBMISSION_FIELD
from app.services.submissions import SubmissionService

from .forms import service_text
from .labels import (
    KIND_LABELS,
    LINK_CHOICES,
    STATUS_LABELS,
    RecordValues,
    label,
    link_label,
    link_type_label,
    show,
)
from .labels import detail_label as detail_label  # the task page words a record's details the same way
from .views import bp, json_answer, page_arg, reason_text, signed_in_user

#: bpmn-js files ``make vendor`` copies from node_modules/bpmn-js/dist (see the Makefile).
VENDOR = Path(__file__).parent / "static" / "vendor"
VIEWER_SCRIPT = "vendor/bpmn-viewer.production.min.js"
VIEWER_STYLES = ("vendor/assets/diagram-js.css", "vendor/assets/bpmn-js.css")

#: Sort orders offered by the list (the keys RecordService.list_tickets accepts).
SORTS: dict[str, Any] = {
    "-opened_at": _l("Newest first"),
    "opened_at": _l("Oldest first"),
    "-updated_at": _l("Recently updated"),
    "priority": _l("Priority, highest first"),
    "status": _l("Status"),
    "number": _l("Number"),
    "title": _l("Title"),
}
DEFAULT_SORT = "-opened_at"
#: Filters of the list: query parameter -> longest value kept.
TEXT_FILTERS = {"kind": 32, "status": 64, "priority": 16, "group": 128, "assignee": 128, "requester": 128, "q": 200}

CLOCK_LABELS: dict[str, Any] = {"response": _l("Response"), "resolution": _l("Resolution")}
CLOCK_STATES: dict[str, Any] = {"running": _l("Running"), "paused": _l("Paused"), "met": _l("Met"),
                                "breached": _l("Breached"), "cancelled": _l("Cancelled")}


# -- small presentation helpers ----------------------------------------------------------------------


def detail_value(value: Any) -> str:
    """A record detail's value as the record page shows it, without the record's form titles
    (markup: a ``Markup`` string). The task page (views.py) words a record's details with it."""
    return show(value)


def duration(seconds: float | None) -> str:
    """Business time as hours and minutes, e.g. "1 h 05 min"."""
    if seconds is None:
        return ""
    minutes = int(max(0.0, seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(hours)d h %(minutes)02d min", hours=hours, minutes=minutes)
    return _("%(minutes)d min", minutes=minutes)


def _service_message(text: str) -> str:
    """A ValidationFailed field message of the record service in the page's language."""
    match = re.fullmatch(r"at most (\d+) characters", text)
    if match:
        return _("at most %(count)s characters", count=match.group(1))
    return service_text(text)


def viewer_installed() -> bool:
    return (VENDOR.parent / VIEWER_SCRIPT).is_file()


# -- the list ----------------------------------------------------------------------------------------


def _list_filters() -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name, longest in TEXT_FILTERS.items():
        value = (request.args.get(name) or "").strip()[:longest]
        if value:
            filters[name] = value
    state = request.args.get("open", "")
    if state in ("1", "0"):
        filters["open"] = state == "1"
    if request.args.get("breached") == "1":
        filters["breached"] = True
    return filters


@bp.get("/tickets")
def tickets() -> str:
    user = signed_in_user()
    filters = _list_filters()
    sort = request.args.get("sort", DEFAULT_SORT)
    sort = sort if sort in SORTS else DEFAULT_SORT
    page = page_arg()
    per_page = int(current_app.config["PER_PAGE_DEFAULT"])
    svc = services()

    def read() -> dict[str, Any]:
        rows, total = svc.records.list_tickets(user, filters, sort, page, per_page)
        return {"rows": rows, "total": total, "choices": svc.records.filter_values(user),
                "values": RecordValues(svc.records.value_titles(rows, fields=("priority",)))}

    found = unit_of_work(read)
    pages = max(1, -(-found["total"] // per_page))
    # The query string of the current filters and sort, for the pager's links.
    query = {**{k: v for k, v in filters.items() if k not in ("open", "breached")}, "sort": sort}
    if "open" in filters:
        query["open"] = "1" if filters["open"] else "0"
    if filters.get("breached"):
        query["breached"] = "1"
    return render_template(
        "tickets.html", active="tickets", filters=filters, sort=sort, sorts=SORTS, page=page, pages=pages,
        query=query, total_capped=found["total"] >= COUNT_CAP, kinds=list(KINDS), kind_labels=KIND_LABELS,
        status_labels=STATUS_LABELS, label=label, **found)


# -- one record --------------------------------------------------------------------------------------


def _render_ticket(user: User, number: str, *, comment: Mapping[str, Any] | None = None,
                   link: Mapping[str, Any] | None = None, status: int = 200) -> Any:
    svc = services()

    def read() -> dict[str, Any]:
        ticket = svc.records.get(user, number)
        instance = svc.records.instance_for(ticket)
        tasks = svc.instances.open_tasks(instance) if instance is not None else []
        return {"ticket": ticket, "instance": instance,
                "tasks": [(t, policy.may_see_task(user, t, t.instance)) for t in tasks],
                "comments": svc.records.comments(user, number), "links": svc.records.links(ticket, user),
                "clocks": svc.sla.ticket_clocks(ticket), "values": RecordValues(svc.records.value_titles([ticket])),
                # told about the record by its process, not on it: they read it, nothing more
                "watching_only": not svc.records.may_see(user, ticket, watched=False)}

    found = unit_of_work(read)
    ticket: Ticket = found["ticket"]
    values: RecordValues = found["values"]
    diagram = found["instance"] is not None and viewer_installed()
    return render_template(
        "ticket.html", active="tickets", **found, user=user,
        comment=comment or {"body": "", "errors": []}, link=link or {"other": "", "link_type": "related", "errors": []},
        read_only=policy.is_read_only(user), max_comment=MAX_COMMENT, submission_token=SubmissionService.new_token(),
        link_types=[(t, link_type_label(t)) for t in LINK_CHOICES], link_label=link_label,
        kind_labels=KIND_LABELS, status_labels=STATUS_LABELS,
        clock_labels=CLOCK_LABELS, clock_states=CLOCK_STATES, label=label, details=values.details(ticket),
        duration=duration,
        diagram_url=url_for("web.ticket_diagram", number=ticket.number) if diagram else None,
        viewer_script=VIEWER_SCRIPT, viewer_styles=VIEWER_STYLES), status


@bp.get("/tickets/<number>")
def ticket(number: str) -> Any:
    return _render_ticket(signed_in_user(), number)


@bp.get("/tickets/<number>/diagram.json")
def ticket_diagram(number: str) -> Any:
    user = signed_in_user()
    svc = services()

    def read() -> dict[str, Any]:
        ticket = svc.records.get(user, number)
        instance = svc.records.instance_for(ticket)
        if instance is None:
            raise NotFound(f"{ticket.number} has no process")
        return svc.instances.diagram(instance, user)

    return json_answer(read)


@bp.post("/tickets/<number>/comments")
def ticket_comment(number: str) -> Any:
    user = signed_in_user()
    body = request.form.get("body", "")
    svc = services()

    def add() -> tuple[int, str, None]:
        comment = svc.records.comment(user, number, body)
        return comment.id, url_for("web.ticket", number=number.upper(), _anchor=f"comment-{comment.id}"), None

    try:
        # Once per rendering of the form: sent again (a double click), it goes to the first comment.
        sent = unit_of_work(lambda: svc.submissions.once(user, request.form.get(SUBMISSION_FIELD), add))
    except ValidationFailed as err:
        messages = (err.details.get("fields") or {}).get("body") or [err.message]
        return _render_ticket(user, number, comment={"body": body, "errors": [_service_message(m) for m in messages]},
                              status=422)
    except PermissionDenied as err:
        flash(_("The comment could not be added: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.ticket", number=number.upper()))
    flash(_("This comment was already added.") if sent.repeated else _("Your comment was added."), "success")
    return redirect(sent.url or url_for("web.ticket", number=number.upper()))


@bp.post("/tickets/<number>/links")
def ticket_link(number: str) -> Any:
    user = signed_in_user()
    other = request.form.get("other", "").strip().upper()[:32]
    link_type = request.form.get("link_type", "related")
    svc = services()
    # The record of the page first: one the user may not see answers 404 like the page does, and a
    # number not found afterwards is the other record's, said beside the field.
    unit_of_work(lambda: svc.records.get(user, number, action="link"))
    form = {"other": other, "link_type": link_type, "errors": []}
    if not other:
        return _render_ticket(user, number, link={**form, "errors": [service_text("is required")]}, status=422)
    try:
        _link, created = unit_of_work(lambda: svc.records.link_numbers(user, number, other, link_type))
    except NotFound:
        message = _("There is no record %(number)s that you may see.", number=other)
        return _render_ticket(user, number, link={**form, "errors": [message]}, status=422)
    except ValidationFailed as err:
        fields = err.details.get("fields") or {}
        if "number" in fields:
            message = _("A record cannot be linked to itself.")
        elif err.code == "link_kinds":
            message = _("A link “%(type)s” cannot join %(source)s (%(source_kind)s) and %(target)s (%(target_kind)s).",
                        type=link_type_label(link_type), source=number.upper(), target=other.upper(),
                        source_kind=KIND_LABELS.get(err.details["source_kind"], err.details["source_kind"]),
                        target_kind=KIND_LABELS.get(err.details["target_kind"], err.details["target_kind"]))
        elif "link_type" in fields:
            message = _("Choose one of the link types offered.")
        else:
            message = err.message
        return _render_ticket(user, number, link={**form, "errors": [message]}, status=422)
    except PermissionDenied as err:
        flash(_("The link could not be added: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.ticket", number=number.upper()))
    if created:
        flash(_("%(number)s is linked.", number=other), "success")
    else:
        flash(_("%(number)s was already linked this way.", number=other), "info")
    return redirect(url_for("web.ticket", number=number.upper(), _anchor="links"))
