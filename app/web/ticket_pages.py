"""Pages of the ticket area (routes on the shared ``web`` blueprint).

- ``/tickets``: the records the user may see, filtered (kind, status, priority, group, assignee,
  requester, text, open or closed), sorted and paged (``RecordService.list_tickets``).
- ``/tickets/<number>``: one record: its fields and details, SLA clocks, open tasks, comments
  (and a form to add one, sent once however often it is posted: app/services/submissions.py), links (and a form to add one) and the process diagram.
- ``/tickets/<number>/attachments`` (POST, multipart field ``file``): attach a file, as who may
  comment may (``AttachmentService``); ``/tickets/<number>/attachments/<id>`` downloads one, as the
  API does (always as a download, typed by its bytes); ``.../<id>/delete`` (POST) deletes one, for
  who may (``policy.may_delete_attachment``): the page offers its button to them only.
- ``/tickets/<number>/cancel`` (POST): stop the record's process (``InstanceService.cancel``): the
  desk's staff cancel it with a reason, its requester withdraws it (reason optional) while no work
  has started (``policy.may_cancel``); either confirms with a ticked box, no script needed.
- A form of the record page refused for its errors (cancel, comment, attach, link) answers 303 to
  the page, which shows what was sent and the errors beside that form, once (Post/Redirect/Get:
  app/web/refused_forms.py): Back and Reload send nothing again.
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
from urllib.parse import urlencode

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.api.tickets import attachment_response, uploaded_file
from app.db import COUNT_CAP
from app.errors import Conflict, NotFound, PayloadTooLarge, PermissionDenied, ProcessdeskError, ValidationFailed
from app.models import HumanTask, InstanceStatus, ProcessInstance, Ticket, User
from app.services import policy
from app.services.cmdb import may_read as may_read_cmdb
from app.services.duplicates import MAX_DUPLICATE_NOTE
from app.services.instances import MAX_CANCEL_REASON
from app.services.knowledge import is_knowledge_staff
from app.services.records import KINDS, MAX_COMMENT, STAFF_ROLES
from app.services.responses import may_use as may_use_responses
from app.services.status import may_post
from app.services.submissions import FIELD as SUBMISSION_FIELD
from app.services.submissions import SubmissionService
from app.services.views import normalised
from app.services.worklog import may_log as may_log_work
from app.services.worklog import may_read as may_read_work

from . import refused_forms
from .forms import service_text
from .labels import (
    KIND_LABELS,
    LINK_CHOICES,
    STATUS_LABELS,
    VALUE_LABELS,
    RecordValues,
    clash_text,
    label,
    link_label,
    link_type_label,
    show,
)
from .labels import detail_label as detail_label  # the task page words a record's details the same way
from .status_pages import LEVEL_LABELS, STATE_LABELS, notice_about
from .views import bp, json_answer, page_arg, past_the_last_page, reason_text, signed_in_user

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
TEXT_FILTERS = {"kind": 32, "status": 64, "priority": 16, "group": 128, "assignee": 128, "requester": 128,
                "opened_by": 128, "q": 200}

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


def file_size(size: int) -> str:
    """A file's size as the attachment list shows it: bytes, KB or MB (of 1,024)."""
    if size < 1024:
        return _("%(count)s bytes", count=size)
    if size < 1024 * 1024:
        return _("%(size)s KB", size=f"{size / 1024:.3g}")
    return _("%(size)s MB", size=f"{size / 1024 / 1024:.3g}")


def viewer_installed() -> bool:
    return (VENDOR.parent / VIEWER_SCRIPT).is_file()


# -- the list ----------------------------------------------------------------------------------------


def list_filters() -> dict[str, Any]:
    """The record list's filters as the query string gives them (the page and its CSV)."""
    filters: dict[str, Any] = {}
    for name, longest in TEXT_FILTERS.items():
        value = (request.args.get(name) or "").strip()[:longest]
        if value:
            filters[name] = value
    if "kind" in filters:  # the page offers the kinds there are; a link with another lists them all
        kinds = [kind for kind in (k.strip() for k in filters.pop("kind").split(",")) if kind in KINDS]
        if kinds:
            filters["kind"] = ",".join(kinds)
    state = request.args.get("open", "")
    if state in ("1", "0"):
        filters["open"] = state == "1"
    if request.args.get("breached") == "1":
        filters["breached"] = True
    return filters


#: The key the "Save this list as" form's refusal is kept under (app/web/refused_forms.py).
SAVE_VIEW_PAGE = "tickets:save-view"


def view_query(query: dict[str, str]) -> str:
    """The list's query string as a saved view keeps it (the page marks the view it shows; "" for
    a list no view could keep)."""
    try:
        return normalised(urlencode(query))
    except ValidationFailed:
        return ""


def list_sort() -> str:
    """The list's order as the query string asks for it, or the default."""
    sort = request.args.get("sort", DEFAULT_SORT)
    return sort if sort in SORTS else DEFAULT_SORT


def list_query(filters: dict[str, Any], sort: str) -> dict[str, str]:
    """The query string of the list's filters and sort: the pager's links and the CSV's."""
    query = {**{k: v for k, v in filters.items() if k not in ("open", "breached")}, "sort": sort}
    if "open" in filters:
        query["open"] = "1" if filters["open"] else "0"
    if filters.get("breached"):
        query["breached"] = "1"
    return query


@bp.get("/tickets")
def tickets() -> Any:
    user = signed_in_user()
    filters, sort = list_filters(), list_sort()
    page = page_arg()
    per_page = int(current_app.config["PER_PAGE_DEFAULT"])
    svc = services()
    from .duplicate_pages import keep_list_state, list_state  # the form's module builds on this one

    def read() -> dict[str, Any]:
        rows, total = svc.records.list_tickets(user, filters, sort, page, per_page)
        kinds = [k for k in str(filters.get("kind") or "").split(",") if k]
        return {"rows": rows, "total": total, "choices": svc.records.filter_values(user, kinds),
                "values": RecordValues(svc.records.value_titles(rows, fields=("priority",))),
                # the reader's saved views of the list (app/web/view_pages.py)
                "views": svc.views.mine(user),
                # the staff's "close the selected as duplicates" (app/web/duplicate_pages.py)
                "duplicates": list_state(user)}

    found = unit_of_work(read)
    if found["total"] < COUNT_CAP:  # (a capped count knows no last page)
        beyond = past_the_last_page(page, found["total"], per_page)
        if beyond is not None:
            keep_list_state(found["duplicates"])  # a refused selection is said on the page it leads to
            return beyond
    pages = max(1, -(-found["total"] // per_page))
    query = list_query(filters, sort)
    kept = refused_forms.take(SAVE_VIEW_PAGE)
    view_form = {"name": kept[0].get("name", ""), "errors": kept[1]} if kept else {"name": "", "errors": {}}
    return render_template(
        "tickets.html", active="tickets", filters=filters, sort=sort, sorts=SORTS, page=page, pages=pages,
        query=query, total_capped=found["total"] >= COUNT_CAP, kinds=list(KINDS), kind_labels=KIND_LABELS,
        status_labels=STATUS_LABELS, label=label, view_query=view_query(query), view_form=view_form, **found)


# -- stopping a record's process ---------------------------------------------------------------------

#: The longest cancellation reason kept (as the API's ``CancelIn``).
MAX_REASON = MAX_CANCEL_REASON
#: The reason ``policy.may_cancel`` gives a requester once work on her record has started.
_STARTED = re.compile(r"work on (\S+) has started: only the service desk may cancel it now; add a comment to ask them")


def stop_mode(user: User, ticket: Ticket, instance: ProcessInstance | None, open_tasks: list[HumanTask]) -> str | None:
    """Which stop the record page offers the user: "cancel" (the desk's staff and admins: a reason
    is required, the people on the record are told why), "withdraw" (its requester while no work has
    started: the reason is hers to give or not), None (nothing: the process is over, or
    ``policy.may_cancel`` refuses). Only what to offer: the route asks the service again."""
    if instance is None or instance.status in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED):
        return None
    allowed, _why = policy.may_cancel(user, instance, ticket, open_tasks)
    if not allowed:
        return None
    return "cancel" if policy.cancels_as_staff(user) else "withdraw"


def _stop_refusal(err: ProcessdeskError, number: str) -> str:
    """Why the service would not stop the record, in the page's language."""
    started = _STARTED.fullmatch(err.message)
    if started:
        return _("work on %(number)s has started: only the service desk may cancel it now; add a comment to ask them",
                 number=started.group(1))
    if err.message == "only the service desk or the requester may cancel this record":
        return _("only the service desk or the requester may cancel this record")
    if isinstance(err, Conflict):
        return _("The process of %(number)s is already over: there is nothing left to stop.", number=number.upper())
    return reason_text(err)


def _cancellation(events: list[Any]) -> dict[str, Any] | None:
    """Who closed the record as cancelled, when and why: its last ``record_updated`` event that did."""
    for event in reversed(events):
        if event.event_type == "record_updated" and (event.payload.get("changes") or {}).get("status") == "cancelled":
            return {"by": event.actor, "at": event.occurred_at, "reason": event.payload.get("reason")}
    return None


@bp.post("/tickets/<number>/cancel")
def ticket_cancel(number: str) -> Any:
    """Cancel (staff) or withdraw (its requester) the record's process. The reason is required of
    the staff, the ticked confirmation of everyone; the service decides who may (403 with its reason,
    409 once the process is over), as ``POST /api/v1/instances/<id>/cancel`` does."""
    user = signed_in_user()
    svc = services()
    form = _stop_form(request.form)
    reason = form["reason"]
    # The record first: one the user may not see answers 404, as the page does.
    instance_id = unit_of_work(lambda: svc.records.get(user, number, action="cancel").instance_id)
    if instance_id is None:
        raise NotFound(f"{number.upper()} has no process")
    if not reason and policy.cancels_as_staff(user):
        form["errors"]["reason"] = [service_text("is required")]
    elif len(reason) > MAX_REASON:
        form["errors"]["reason"] = [_service_message(f"at most {MAX_REASON} characters")]
    if request.form.get("confirm") != "yes":
        form["errors"]["confirm"] = [_("Tick the box to confirm.")]
    if form["errors"]:
        return back_to_record(number, "stop", form["errors"]) or render_ticket(user, number, stop=form, status=422)
    try:
        unit_of_work(lambda: svc.instances.cancel(user, instance_id, reason or None))
    except ValidationFailed as err:
        messages = (err.details.get("fields") or {}).get("reason") or [err.message]
        errors = {"reason": [service_text(m) for m in messages]}
        return (back_to_record(number, "stop", errors)
                or render_ticket(user, number, stop={**form, "errors": errors}, status=422))
    except (PermissionDenied, Conflict) as err:
        return render_ticket(user, number, stop={**form, "refusal": _stop_refusal(err, number)}, status=err.status)
    if policy.cancels_as_staff(user):
        flash(_("%(number)s was cancelled.", number=number.upper()), "success")
    else:
        flash(_("Your request %(number)s was withdrawn.", number=number.upper()), "success")
    return redirect(url_for("web.ticket", number=number.upper()))


# -- a refused form, back on the record page ----------------------------------------------------------

#: The record page's forms a refusal sends back to it (Post/Redirect/Get, app/web/refused_forms.py),
#: and where on the page each is (the redirect's fragment: the error beside it is in view).
RECORD_FORMS = {"stop": "record-actions", "comment": "comment-form", "attach": "attach-form", "link": "link-form",
                "work": "work-form", "duplicate": "duplicate-form"}


def _record_form_page(number: str, form: str) -> str:
    """What a refused ``form`` of the record page is kept under: its own, so that its errors are
    said beside it and not beside the page's other forms."""
    return f"ticket:{number.upper()}:{form}"


def back_to_record(number: str, form: str, errors: Mapping[str, list[str]],
                    values: MultiDict[str, str] | None = None) -> Response | None:
    """Post/Redirect/Get for a refused ``form`` of the record page: its text fields (``values``,
    this request's by default) and ``errors`` kept for the page's next GET, a 303 to the page; None
    when they are too large to keep (the caller renders the page in place, as before). The errors are
    kept in the page's words: the page that shows them follows at once, in the same language."""
    url = url_for("web.ticket", number=number.upper(), _anchor=RECORD_FORMS[form])
    return refused_forms.back_with(_record_form_page(number, form), errors, url, values)


def _refused_record_form(number: str) -> dict[str, Any]:
    """The record page's form refused just before (``back_to_record``) as ``render_ticket``
    takes it (``{"comment": {...}}``), once; nothing when there is none."""
    for form in RECORD_FORMS:
        kept = refused_forms.take(_record_form_page(number, form))
        if kept is None:
            continue
        values, errors = kept
        if form == "stop":
            return {"stop": {**_stop_form(values), "errors": errors}}
        if form == "comment":
            return {"comment": {"body": values.get("body", ""), "errors": errors.get("body", []),
                                "response": values.get("response", "")}}
        if form == "attach":
            return {"attach": {"errors": errors.get("file", [])}}
        if form == "work":
            return {"work_form": {"values": values, "errors": errors}}
        if form == "duplicate":
            return {"duplicate": {**duplicate_form(values), "errors": errors}}
        return {"link": {**_link_form(values), "errors": errors.get("other", [])}}
    return {}


def _stop_form(values: MultiDict[str, str]) -> dict[str, Any]:
    """The cancel (withdraw) form as sent, without errors yet."""
    return {"reason": values.get("reason", "").strip(), "errors": {}, "refusal": None}


def duplicate_form(values: MultiDict[str, str]) -> dict[str, Any]:
    """The close-as-duplicate form as sent (the number as the page looks it up), without errors yet
    (app/web/duplicate_pages.py)."""
    return {"of": values.get("of", "").strip().upper()[:32], "note": values.get("note", "").strip(), "errors": {}}


def _link_form(values: MultiDict[str, str]) -> dict[str, Any]:
    """The link form as sent (the number as the page looks it up), without errors yet."""
    return {"other": values.get("other", "").strip().upper()[:32], "link_type": values.get("link_type", "related"),
            "errors": []}


# -- one record --------------------------------------------------------------------------------------


def render_ticket(user: User, number: str, *, comment: Mapping[str, Any] | None = None,
                   link: Mapping[str, Any] | None = None, stop: Mapping[str, Any] | None = None,
                   attach: Mapping[str, Any] | None = None, work_form: Mapping[str, Any] | None = None,
                   duplicate: Mapping[str, Any] | None = None, status: int = 200) -> Any:
    svc = services()

    def read() -> dict[str, Any]:
        ticket = svc.records.get(user, number)
        instance = svc.records.instance_for(ticket)
        tasks = svc.instances.open_tasks(instance) if instance is not None else []
        attachments = svc.attachments.of_record(ticket)
        watching_only = not svc.records.may_see(user, ticket, watched=False)
        # who stopped a cancelled record and why, for those who read its process's history
        cancellation = (_cancellation(svc.instances.history(user, instance.id, "record_updated"))
                        if ticket.status == "cancelled" and instance is not None and svc.instances.may_see(user, instance)
                        else None)
        return {"stop_mode": stop_mode(user, ticket, instance, tasks), "cancellation": cancellation,
                "ticket": ticket, "instance": instance,
                "tasks": [(t, policy.may_see_task(user, t, t.instance)) for t in tasks],
                "comments": svc.records.comments(user, number), "links": svc.records.links(ticket, user),
                # who follow it (app/web/watch_pages.py)
                "watchers": svc.watching.listed(user, ticket), "may_remove_watchers": policy.cancels_as_staff(user),
                "may_watch": user.has_role(*STAFF_ROLES) and not policy.is_read_only(user),
                "attachments": attachments, "deletable": svc.attachments.deletable(user, ticket, attachments),
                "clocks": svc.sla.ticket_clocks(ticket), "values": RecordValues(svc.records.value_titles([ticket])),
                # told about the record by its process, not on it: they read it, nothing more
                "watching_only": watching_only,
                "closed_to_comments": not svc.records.may_comment(user, ticket),
                # the record's configuration item links to its CMDB page, for those who read it
                "ci_name": ticket.ci if ticket.ci and may_read_cmdb(user) and svc.cmdb.existing_names([ticket.ci])
                else None,
                # the requester's other open records: the caller's other problems, or a duplicate
                "requester_open": svc.records.requesters_open_records(user, ticket),
                # what its planned window (a change's) overlaps: freezes, other work on its CI
                "clashes": svc.schedule.clashes_for(user, ticket),
                # what the desk told everyone about it (an outage, the change's maintenance)
                "status_board": svc.status.of_ticket(user, ticket),
                # published answers to what it says, for the staff to attach with one click
                "suggested_articles": svc.knowledge.suggested_for(user, ticket)
                if not policy.is_read_only(user) and not watching_only else [],
                # the agent's and the desk's stock replies for its kind, for the comment form
                "responses": svc.responses.visible(user, ticket.kind) if may_use_responses(user) and not watching_only
                else [],
                # the desk's time worked on it: its staff and auditors read it, its staff log it
                "work": svc.work.of_ticket(user, ticket) if may_read_work(user) else None}

    found = unit_of_work(read)
    ticket: Ticket = found["ticket"]
    values: RecordValues = found["values"]
    diagram = found["instance"] is not None and viewer_installed()
    return render_template(
        "ticket.html", active="tickets", **found, user=user,
        comment=comment or {"body": "", "errors": []}, attach=attach or {"errors": []}, file_size=file_size,
        work_form=work_form or {"values": {}, "errors": {}}, may_log_work=may_log_work(user),
        attachment_limit=file_size(int(current_app.config["ATTACHMENT_MAX_BYTES"])), stop=stop or {"reason": "", "errors": {}, "refusal": None},
        duplicate=duplicate or {"of": "", "note": "", "errors": {}}, max_duplicate_note=MAX_DUPLICATE_NOTE,
        max_reason=MAX_REASON, link=link or {"other": "", "link_type": "related", "errors": []},
        read_only=policy.is_read_only(user), max_comment=MAX_COMMENT, submission_token=SubmissionService.new_token(),
        may_attach_articles=is_knowledge_staff(user),
        link_types=[(t, link_type_label(t)) for t in LINK_CHOICES], link_label=link_label,
        kind_labels=KIND_LABELS, status_labels=STATUS_LABELS, outcome=change_outcome(ticket), value_labels=VALUE_LABELS,
        clock_labels=CLOCK_LABELS, clock_states=CLOCK_STATES, label=label, details=values.details(ticket),
        duration=duration, clash_text=clash_text, status_levels=LEVEL_LABELS, status_states=STATE_LABELS,
        # the desk's staff announce an open record's outage, or a change's maintenance, from here
        notice_about=notice_about(ticket) if may_post(user) and ticket.closed_at is None else None,
        diagram_url=url_for("web.ticket_diagram", number=ticket.number) if diagram else None,
        viewer_script=VIEWER_SCRIPT, viewer_styles=VIEWER_STYLES), status



#: A change's results that its status alone does not tell: "closed" reads the same after a
#: successful change and after a rollback that failed.
MARKED_OUTCOMES = ("verification_failed", "rolled_back", "rollback_failed")


def change_outcome(ticket: Ticket) -> str | None:
    """The result a change's record shows beside its status (``MARKED_OUTCOMES``), else None."""
    result = (ticket.details or {}).get("result") if ticket.kind == "change" else None
    return result if result in MARKED_OUTCOMES else None

@bp.get("/tickets/<number>")
def ticket(number: str) -> Any:
    user = signed_in_user()
    return render_ticket(user, number, **_refused_record_form(number))


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
        messages = [_service_message(m) for m in (err.details.get("fields") or {}).get("body") or [err.message]]
        # Post/Redirect/Get: Back and Reload do not send the comment again; a text too long to keep
        # is answered here, as before.
        return (back_to_record(number, "comment", {"body": messages})
                or render_ticket(user, number, comment={"body": body, "errors": messages}, status=422))
    except PermissionDenied as err:
        if _closed_meanwhile(user, number):
            # The record was closed (or cancelled) while the comment was typed: said in the page's
            # words, and the text shown back on the page, to copy into a new record.
            closed = _("%(number)s was closed meanwhile: nobody works on it any more, so your comment was not "
                       "added. If the problem is back, report a new one and mention %(number)s.",
                       number=number.upper())
            sent_back = back_to_record(number, "comment", {"body": [closed]})
            if sent_back is not None:
                return sent_back
            flash(closed, "error")
            return redirect(url_for("web.ticket", number=number.upper()))
        flash(_("The comment could not be added: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.ticket", number=number.upper()))
    flash(_("This comment was already added.") if sent.repeated else _("Your comment was added."), "success")
    return redirect(sent.url or url_for("web.ticket", number=number.upper()))


def _closed_meanwhile(user: User, number: str) -> bool:
    """Whether ``user`` may read record ``number`` but it is closed to their comments."""
    svc = services()
    try:
        return unit_of_work(lambda: not svc.records.may_comment(user, svc.records.get(user, number)))
    except ProcessdeskError:
        return False


def _attach_error(err: ProcessdeskError, number: str) -> str:
    """Why the service did not take the file, in the page's language."""
    if isinstance(err, PayloadTooLarge):
        return _("The file is larger than %(size)s.", size=file_size(int(err.details.get("limit_bytes") or 0)))
    if err.code == "too_many_attachments":
        return _("%(number)s holds %(count)s files, the most a record may hold.", number=number.upper(),
                 count=err.details.get("limit_count"))
    if (err.details.get("fields") or {}).get("file") == ["is empty"]:
        return _("The file is empty.")
    return _("Choose a file to attach.")


def attach_too_large(number: str) -> Any:
    """The record page for a file far larger than ``ATTACHMENT_MAX_BYTES`` (werkzeug refused the
    request before it was read): the error beside the form, as for one a little too large."""
    user = signed_in_user()
    limit = int(current_app.config["ATTACHMENT_MAX_BYTES"])
    error = PayloadTooLarge("too large", details={"limit_bytes": limit})
    # A record the user may not see is not found (NotFound: the plain 413 page says nothing of it).
    unit_of_work(lambda: services().records.get(user, number, action="attach"))
    return _attach_refused(user, number, error)


def _attach_refused(user: User, number: str, err: ProcessdeskError) -> Any:
    """The attachment form's error beside it, on the record page the refusal redirects to (in place
    when too large to keep). No file is kept (a file is not in the session), and the form has no
    other field to keep: the request's form is not read (a file far too large was never read)."""
    errors = [_attach_error(err, number)]
    return (back_to_record(number, "attach", {"file": errors}, MultiDict())
            or render_ticket(user, number, attach={"errors": errors}, status=err.status))


@bp.post("/tickets/<number>/attachments")
def ticket_attach(number: str) -> Any:
    """Attach the file of the form's ``file`` field (a form sent without choosing one: none)."""
    user = signed_in_user()
    filename, content_type, data = uploaded_file()
    if not filename and not data:
        filename = content_type = data = None  # the browser's empty part for "no file chosen"
    try:
        attachment = unit_of_work(lambda: services().attachments.attach(user, number, filename, content_type, data))
    except (ValidationFailed, PayloadTooLarge) as err:
        return _attach_refused(user, number, err)
    except PermissionDenied as err:
        flash(_("The file could not be attached: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.ticket", number=number.upper()))
    flash(_("%(name)s is attached.", name=attachment.filename), "success")
    return redirect(url_for("web.ticket", number=number.upper(), _anchor=f"attachment-{attachment.id}"))


@bp.get("/tickets/<number>/attachments/<int:attachment_id>")
def ticket_attachment(number: str, attachment_id: int) -> Any:
    """One attached file, as ``GET /api/v1/tickets/<number>/attachments/<id>`` serves it."""
    user = signed_in_user()
    return attachment_response(unit_of_work(lambda: services().attachments.attachment(user, number, attachment_id)))


@bp.get("/tickets/<number>/attachments/<int:attachment_id>/delete")
def ticket_attachment_delete_confirm(number: str, attachment_id: int) -> Any:
    """Ask before deleting a file (the record page's Delete leads here; a click in the list was
    all it took before): its name, size and who attached it, a CSRF-checked form that deletes it,
    and the way back. Who may not delete it gets the 403 page; another record's file is not found."""
    user = signed_in_user()
    svc = services()

    def read() -> tuple[Ticket, Any, bool]:
        ticket = svc.records.get(user, number)
        found = svc.attachments.attachment_of(ticket, attachment_id)
        return ticket, found, found.id in svc.attachments.deletable(user, ticket, [found])

    try:
        ticket, found, allowed = unit_of_work(read)
    except NotFound as err:
        if "attachment_id" not in err.details:
            raise
        flash(_("This file is no longer attached."), "info")
        return redirect(url_for("web.ticket", number=number.upper(), _anchor="attachments"))
    if not allowed:
        raise PermissionDenied(policy.ATTACHMENT_NOT_YOURS)
    return render_template("attachment_delete.html", active="tickets", ticket=ticket, attachment=found,
                           file_size=file_size)


@bp.post("/tickets/<number>/attachments/<int:attachment_id>/delete")
def ticket_attachment_delete(number: str, attachment_id: int) -> Any:
    """Delete one attached file (``AttachmentService.delete``); a file deleted already (the button
    pressed twice) is said so on the record's page, a record the user may not see is not found."""
    user = signed_in_user()
    svc = services()
    back = url_for("web.ticket", number=number.upper(), _anchor="attachments")
    try:
        deleted = unit_of_work(lambda: svc.attachments.delete(user, number, attachment_id))
    except PermissionDenied as err:
        flash(_("The file could not be deleted: %(reason)s", reason=reason_text(err)), "error")
        return redirect(back)
    except NotFound as err:
        if "attachment_id" not in err.details:
            raise  # the record itself: not found, as its page
        flash(_("This file is no longer attached."), "info")
        return redirect(back)
    flash(_("%(name)s was deleted.", name=deleted.filename), "success")
    return redirect(back)


#: A knowledge article's number (the "KB" sequence): the link form attaches the article.
ARTICLE_NUMBER = re.compile(r"KB-\d+")


def _attach_article(user: User, number: str, form: dict[str, Any]) -> Any:
    """The link form named a knowledge article: attach it to the record (``KnowledgeService.attach``)."""
    other = form["other"]
    try:
        _ticket, attached = unit_of_work(lambda: services().knowledge.attach(user, number, other))
    except ValidationFailed:
        return _link_refused(user, number, form, _("%(number)s is no published knowledge article.", number=other))
    except (PermissionDenied, Conflict) as err:
        flash(_("The article could not be attached: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.ticket", number=number.upper()))
    if attached:
        flash(_("Knowledge article %(number)s is attached.", number=other), "success")
    else:
        flash(_("Knowledge article %(number)s was already attached.", number=other), "info")
    return redirect(url_for("web.ticket", number=number.upper(), _anchor="knowledge"))


def _link_refused(user: User, number: str, form: Mapping[str, Any], message: str) -> Any:
    """The link form's ``message`` beside it, on the record page the refusal redirects to (in place when too large to keep)."""
    return (back_to_record(number, "link", {"other": [message]})
            or render_ticket(user, number, link={**form, "errors": [message]}, status=422))


@bp.post("/tickets/<number>/links")
def ticket_link(number: str) -> Any:
    user = signed_in_user()
    form = _link_form(request.form)
    other, link_type = form["other"], form["link_type"]
    svc = services()
    # The record of the page first: one the user may not see answers 404 like the page does, and a
    # number not found afterwards is the other record's, said beside the field.
    unit_of_work(lambda: svc.records.get(user, number, action="link"))
    if not other:
        return _link_refused(user, number, form, service_text("is required"))
    if ARTICLE_NUMBER.fullmatch(other):
        return _attach_article(user, number, form)
    try:
        _link, created = unit_of_work(lambda: svc.records.link_numbers(user, number, other, link_type))
    except NotFound:
        return _link_refused(user, number, form, _("There is no record %(number)s that you may see.", number=other))
    except ValidationFailed as err:
        fields = err.details.get("fields") or {}
        if "number" in fields:
            message = _("A record cannot be linked to itself.")
        elif err.code == "link_kinds":
            message = _("A link “%(type)s” cannot join %(source)s (%(source_kind)s) and %(target)s (%(target_kind)s).",
                        type=link_type_label(link_type), source=number.upper(), target=other.upper(),
                        source_kind=KIND_LABELS.get(err.details["source_kind"], err.details["source_kind"]),
                        target_kind=KIND_LABELS.get(err.details["target_kind"], err.details["target_kind"]))
        elif err.code == "link_reversed":
            message = _("%(target)s is already linked to %(source)s the other way round: a link “%(type)s” would "
                        "state the reverse of it.", type=link_type_label(link_type), source=number.upper(),
                        target=other.upper())
        elif "link_type" in fields:
            message = _("Choose one of the link types offered.")
        else:
            message = err.message
        return _link_refused(user, number, form, message)
    except PermissionDenied as err:
        flash(_("The link could not be added: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.ticket", number=number.upper()))
    if created:
        flash(_("%(number)s is linked.", number=other), "success")
    else:
        flash(_("%(number)s was already linked this way.", number=other), "info")
    return redirect(url_for("web.ticket", number=number.upper(), _anchor="links"))
