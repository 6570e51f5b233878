"""Pages of the audit area (routes on the shared ``web`` blueprint): the history search across
instances with its CSV export and the state of the chain, and one instance's timeline.

Auditors and admins only: the rule is ``app.services.audit.may_read_audit``, enforced by every
``AuditLog`` read method (others get the 403 page, and their attempt is audited).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import ValidationFailed
from app.models import User
from app.services.audit import (
    EXPORT_MAX_EVENTS,
    HEAD_ALTERED,
    HEAD_MISSING,
    REFUSED_EVENT,
    UNKEYED_HASH,
    WRONG_KEY,
    AuditFilters,
    AuditRow,
    canonical_json,
)

from . import auth
from .ticket_pages import VIEWER_SCRIPT, VIEWER_STYLES, viewer_installed
from .views import bp, json_answer, page_arg, signed_in_user

#: Query parameters of the search, in the order the form shows them.
FILTER_KEYS = ("record", "process", "instance", "actor", "event", "from", "to")

#: Cells a spreadsheet would read as a formula (CSV injection): prefixed with a quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CSV_COLUMNS = ("seq", "event_id", "occurred_at", "event_type", "actor", "actor_id", "instance_id", "process_id",
               "record_number", "task_id", "payload", "hash")

#: What the pages call each kind of event; a kind not listed shows its stored name.
EVENT_LABELS = {
    "access_denied": _l("Refused attempt"),
    "audit_chain_checked": _l("Audit chain checked"),
    "audit_chain_resealed": _l("Audit chain resealed"),
    "audit_exported": _l("Audit history exported"),
    "instance_started": _l("Process started"),
    "instance_completed": _l("Process completed"),
    "instance_cancelled": _l("Process cancelled"),
    "instance_cancel_requested": _l("Cancellation requested"),
    "instance_error": _l("Process error"),
    "instance_retried": _l("Process retried"),
    "instance_migrated": _l("Process moved to another version"),
    "message_received": _l("Message received"),
    "task_ready": _l("Task ready"),
    "task_claimed": _l("Task claimed"),
    "task_unclaimed": _l("Task released"),
    "task_reassigned": _l("Task reassigned"),
    "task_requeued": _l("Task moved to another queue"),
    "task_completed": _l("Task completed"),
    "task_cancelled": _l("Task cancelled"),
    "task_reminder_sent": _l("Reminder sent"),
    "timer_fired": _l("Timer fired"),
    "record_updated": _l("Record updated"),
    "record_closed_as_duplicate": _l("Record closed as a duplicate"),
    "record_watch_started": _l("Started watching"),
    "record_watch_stopped": _l("Stopped watching"),
    "comment_added": _l("Comment added"),
    "attachment_added": _l("File attached"),
    "attachment_deleted": _l("File deleted"),
    "records_linked": _l("Records linked"),
    "knowledge_published": _l("Knowledge article published"),
    "knowledge_drafted": _l("Knowledge article drafted"),
    "knowledge_edited": _l("Knowledge article edited"),
    "knowledge_retired": _l("Knowledge article retired"),
    "knowledge_attached": _l("Knowledge article attached"),
    "knowledge_rated": _l("Knowledge article rated"),
    "ci_created": _l("Configuration item created"),
    "ci_updated": _l("Configuration item changed"),
    "ci_retired": _l("Configuration item retired"),
    "ci_deleted": _l("Configuration item deleted"),
    "ci_relationship_added": _l("Configuration item relationship added"),
    "ci_relationship_removed": _l("Configuration item relationship removed"),
    "ci_window_added": _l("Maintenance window added"),
    "ci_window_changed": _l("Maintenance window changed"),
    "ci_window_removed": _l("Maintenance window removed"),
    "ci_warranty_noticed": _l("Warranty ending told"),
    "recurring_request_created": _l("Recurring request made"),
    "recurring_request_changed": _l("Recurring request changed"),
    "recurring_request_paused": _l("Recurring request paused"),
    "recurring_request_resumed": _l("Recurring request resumed"),
    "recurring_request_deleted": _l("Recurring request deleted"),
    "recurring_request_ran": _l("Recurring request started its process"),
    "recurring_request_failed": _l("Recurring request could not start (paused)"),
    "notification_sent": _l("Notification sent"),
    "retention_purged": _l("Old operational data purged"),
    "definitions_deployed": _l("Definitions deployed"),
    "token_issued": _l("API token issued"),
    "token_revoked": _l("API token revoked"),
    "signed_in": _l("Signed in"),
    "password_reset_requested": _l("Password reset link sent"),
    "password_reset_done": _l("Password reset with a link"),
    "signed_out": _l("Signed out"),
    "sign_in_locked": _l("Sign-in locked after failed attempts"),
    "user_created": _l("User created"),
    "user_updated": _l("User updated"),
    "user_deactivated": _l("User deactivated"),
    "user_reactivated": _l("User reactivated"),
    "user_password_reset": _l("Password reset by an administrator"),
    "user_password_changed": _l("Password changed by the user"),
    "group_created": _l("Group created"),
    "group_updated": _l("Group updated"),
    "group_member_added": _l("Added to a group"),
    "group_member_removed": _l("Removed from a group"),
    "sla_start": _l("SLA clock started"),
    "sla_pause": _l("SLA clock paused"),
    "sla_resume": _l("SLA clock resumed"),
    "sla_priority": _l("SLA targets changed with the priority"),
    "sla_stop": _l("SLA clock stopped"),
    "sla_breach": _l("SLA breach recorded before the terms changed"),
    "sla_measured": _l("SLA time of stopped clocks recorded"),
    "sla_warning": _l("SLA at risk"),
    "sla_breached": _l("SLA breached"),
    "sla_escalation_skipped": _l("SLA escalation skipped (bad policy settings)"),
    "sla_policy_saved": _l("SLA policy saved"),
    "sla_policy_deleted": _l("SLA policy deleted"),
    "change_freeze_added": _l("Change freeze added"),
    "change_freeze_removed": _l("Change freeze removed"),
    "change_freeze_changed": _l("Change freeze changed"),
    "status_notice_posted": _l("Service status notice posted"),
    "status_notice_updated": _l("Service status notice updated"),
    "status_notice_resolved": _l("Service status notice resolved"),
    "work_logged": _l("Time worked logged"),
    "work_log_removed": _l("Time worked removed"),
    "response_template_created": _l("Response template created"),
    "response_template_updated": _l("Response template changed"),
    "response_template_deleted": _l("Response template deleted"),
    "schedule_feed_opened": _l("Calendar subscription made"),
    "schedule_feed_closed": _l("Calendar subscription stopped"),
    "catalog_item_created": _l("Catalog item created"),
    "catalog_item_updated": _l("Catalog item updated"),
    "notification_preferences_changed": _l("Notification preferences changed"),
    "user_locale_changed": _l("Language changed"),
    "user_manager_set": _l("Line manager set"),
    "user_away_set": _l("Out of office set"),
    "user_away_cleared": _l("Out of office ended early"),
    "user_away_ended": _l("Out of office over"),
    "task_delegated": _l("Task handed to a delegate"),
    "task_returned": _l("Task back from a delegate"),
    "two_step_begun": _l("Two-step sign-in set-up begun"),
    "two_step_enabled": _l("Two-step sign-in turned on"),
    "two_step_disabled": _l("Two-step sign-in turned off"),
    "two_step_reset": _l("Two-step sign-in reset by an admin"),
    "two_step_recovery_codes_renewed": _l("New recovery codes made"),
    "two_step_recovery_used": _l("Signed in with a recovery code"),
    "webhook_created": _l("Webhook created"),
    "webhook_updated": _l("Webhook updated"),
    "webhook_deleted": _l("Webhook deleted"),
}


#: The search form's fields, as labelled on the page and in its error summary.
FIELD_NAMES = {
    "record": _l("Record number"),
    "process": _l("Process"),
    "instance": _l("Instance number"),
    "actor": _l("Actor (username)"),
    "event": _l("Event type"),
    "from": _l("From"),
    "to": _l("To"),
}

#: AuditLog.verify()'s reasons, in the page's language.
CHAIN_REASONS = {
    "event missing from the sequence": _l("an event is missing from the sequence"),
    "link to the previous event is broken": _l("its link to the previous event is broken"),
    "event content does not match its hash": _l("its content does not match its hash"),
    "events after the last stored one were removed": _l("events after the last stored one were removed"),
    UNKEYED_HASH: _l("it is sealed with a plain SHA-256 hash, not with the audit key "
                     "(a chain written before keyed sealing, or a forgery)"),
    WRONG_KEY: _l("the chain is sealed with another audit key"),
    HEAD_ALTERED: _l("the chain's head does not match its seal (events at the end may have been removed)"),
    HEAD_MISSING: _l("the chain's head row is missing"),
}

#: An instance's status, in the page's language.
INSTANCE_STATUSES = {
    "running": _l("Running"),
    "completed": _l("Completed"),
    "cancelled": _l("Cancelled"),
    "error": _l("Error"),
}


def chain_reason(reason: str | None) -> str:
    label = CHAIN_REASONS.get(reason or "")
    return str(label) if label is not None else reason or ""


def short_key(key_id: str | None) -> str:
    """A key's fingerprint as shown: its first 16 hex digits."""
    return (key_id or "")[:16] or "—"


def event_label(event_type: str) -> str:
    label = EVENT_LABELS.get(event_type)
    return str(label) if label is not None else event_type


def show_value(value: Any) -> str:
    """A stored value as one line of text: lists of plain values joined, anything nested as JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


#: Characters after which a long value may wrap (narrow screens: JSON, timestamps, dotted keys).
_BREAK_AFTER = frozenset(",;:/._-+}]=&")
_LONGEST_RUN = 16


def value_html(value: Any) -> Markup:
    """``show_value`` as HTML that wraps inside narrow cells: a line-break opportunity (<wbr>)
    after punctuation and inside any run of 16 characters without one."""
    text = show_value(value)
    parts: list[Any] = []
    run = 0
    for ch in text:
        parts.append(escape(ch))
        run = 0 if ch.isspace() else run + 1
        if run and (ch in _BREAK_AFTER or run >= _LONGEST_RUN):
            parts.append(Markup("<wbr>"))
            run = 0
    return Markup("").join(parts)


def summary(row: AuditRow) -> str:
    """A few words on what one event was about, for the results table."""
    payload = row.event.payload or {}
    if row.event.event_type == REFUSED_EVENT:
        return f"{payload.get('action', '')}: {payload.get('reason', '')}"
    if row.event.event_type.startswith("ci_window_") and isinstance(payload.get("ci"), str):
        # a maintenance window's own name is often empty: its CI, days and times say which
        days = ", ".join(str(d) for d in payload.get("days") or []) + (f" ({payload['week']})" if payload.get("week") else "")
        return f"{payload['ci']}: {days} {payload.get('start', '')}–{payload.get('end', '')} {payload.get('timezone', '')}"
    if row.event.event_type.startswith("user_away_"):  # whose absence, who stands in, when
        return (f"{payload.get('username', '')} → {payload.get('delegate') or '—'}: "
                f"{payload.get('from') or ''} – {payload.get('until') or ''}")
    if row.event.event_type in ("task_delegated", "task_returned"):
        return f"{payload.get('from', '')} → {payload.get('to', '')}"
    if isinstance(payload.get("name"), str):
        return str(payload["name"])
    if row.event.event_type == "record_updated" and isinstance(payload.get("changes"), dict):
        return ", ".join(sorted(payload["changes"]))
    if isinstance(payload.get("reason"), str):
        return str(payload["reason"])
    if row.event.event_type == "audit_chain_checked":
        return _("intact") if payload.get("ok") else _("broken")
    return ""


def csv_cell(value: Any) -> str:
    """Text for one CSV cell, never starting like a formula."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


# -- parsing the search -------------------------------------------------------------------------------


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_filters(args: Mapping[str, str]) -> tuple[dict[str, str], AuditFilters, dict[str, str]]:
    """The search as typed (to fill the form again), as filters, and an error per bad field."""
    limits = {"record": 32, "process": 128, "instance": 18, "actor": 128, "event": 64, "from": 10, "to": 10}
    typed = {key: (args.get(key) or "").strip()[:limits[key]] for key in FILTER_KEYS}
    typed["record"] = typed["record"].upper()  # record numbers are stored upper case
    errors: dict[str, str] = {}
    instance_id = None
    if typed["instance"]:
        if typed["instance"].isdigit() and int(typed["instance"]) > 0:
            instance_id = int(typed["instance"])
        else:
            errors["instance"] = _("must be a whole number")
    days: dict[str, date | None] = {}
    for key in ("from", "to"):
        days[key] = _parse_date(typed[key]) if typed[key] else None
        if typed[key] and days[key] is None:
            errors[key] = _("must be a date (YYYY-MM-DD)")
    start, end = days["from"], days["to"]
    if start and end and end < start:
        errors["to"] = _("must not be before the start date")
    filters = AuditFilters(
        process_id=typed["process"] or None,
        record_number=typed["record"] or None,
        actor=typed["actor"] or None,
        event_type=typed["event"] or None,
        instance_id=instance_id,
        # Whole days in UTC, the zone every time on these pages is shown in.
        occurred_from=datetime.combine(start, time.min, timezone.utc) if start else None,
        # The last day there is (9999-12-31) has no next day: up to its end, then.
        occurred_before=(datetime.combine(end + timedelta(days=1), time.min, timezone.utc) if end and end < date.max
                         else datetime.max.replace(tzinfo=timezone.utc) if end else None),
    )
    return typed, filters, errors


# -- pages ----------------------------------------------------------------------------------------------


@bp.get("/audit")
def audit() -> Any:
    user = signed_in_user()
    typed, filters, errors = parse_filters(request.args)
    page = page_arg()
    per_page = int(current_app.config["PER_PAGE_DEFAULT"])
    return _render_search(user, typed, None if errors else filters, errors, page, per_page)


def _render_search(user: User, typed: dict[str, str], filters: AuditFilters | None, errors: dict[str, str],
                   page: int, per_page: int) -> Any:
    """The search page: the chain's state, the form as typed, and the results unless the search
    has errors (``filters`` None)."""
    svc = services()

    def read() -> dict[str, Any]:
        found = svc.audit.search(user, filters, page, per_page) if filters is not None else None
        return {"options": svc.audit.search_options(user), "chain": svc.audit.last_chain_check(user), "found": found}

    data = unit_of_work(read)
    found = data["found"]
    query: dict[str, Any] = {key: value for key, value in typed.items() if value}
    pages = max(1, -(-found.total // per_page)) if found is not None and found.exact else None
    return render_template("audit.html", active="audit", typed=typed, query=query, errors=errors, page=page,
                           pages=pages, options=data["options"], chain=data["chain"], found=found,
                           event_label=event_label, summary=summary, searched=bool(query), field_names=FIELD_NAMES,
                           chain_reason=chain_reason, short_key=short_key), 422 if errors else 200


@bp.get("/audit.csv")
def audit_csv() -> Any:
    user = signed_in_user()
    typed, filters, errors = parse_filters(request.args)
    if errors:
        return _render_search(user, typed, None, errors, 1, int(current_app.config["PER_PAGE_DEFAULT"]))
    svc = services()
    try:
        rows = unit_of_work(lambda: svc.audit.export(user, filters, EXPORT_MAX_EVENTS))
    except ValidationFailed as err:
        if err.code != "too_many_events":
            raise
        flash(_("More than %(limit)d events match: narrow the search to export it.", limit=err.details["limit"]),
              "error")
        query: dict[str, Any] = {key: value for key, value in typed.items() if value}
        return redirect(url_for("web.audit", **query))
    stamp = svc.runtime.clock.now().strftime("%Y%m%d-%H%M%S")
    return csv_download(CSV_COLUMNS, ((
        e.seq, e.id, e.occurred_at.isoformat(), e.event_type, e.actor, e.actor_id, e.instance_id, row.process_id,
        row.record_number, e.task_id, canonical_json(e.payload or {}), e.hash) for row in rows for e in [row.event]),
        f"audit-{stamp}.csv")


def csv_download(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    """A CSV file to download: a byte order mark (spreadsheet programs then read it as UTF-8), CRLF
    line ends, the header row, and every cell guarded against formulas (``csv_cell``) and quoted: a
    spreadsheet whose list separator is ";" (German, French) splits an unquoted "a;=cmd" into a
    second cell that starts like a formula."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return Response(out.getvalue(), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/audit/chain-check")
def audit_chain_check() -> Response:
    user = signed_in_user()
    check = unit_of_work(lambda: services().audit.check_chain(user))
    report = check.report
    if report.ok:
        flash(_("The audit chain is intact: %(count)d events checked.", count=report.checked), "success")
    elif report.wrong_key:
        flash(_("The audit chain is sealed with another key: it does not verify with this desk's audit key "
                "%(key)s; its head names key %(other)s.", key=short_key(report.key_id),
                other=short_key(report.sealed_with)), "error")
    else:
        flash(_("The audit chain is broken at event %(seq)s: %(reason)s",
                seq=report.first_broken_seq, reason=chain_reason(report.reason)), "error")
    return redirect(auth.safe_next(request.form.get("next")) or url_for("web.audit"))


@bp.get("/audit/instances/<int:instance_id>")
def audit_instance(instance_id: int) -> str:
    user = signed_in_user()
    timeline = unit_of_work(lambda: services().audit.instance_timeline(user, instance_id))
    diagram_url = url_for("web.audit_instance_diagram", instance_id=instance_id) if viewer_installed() else None
    return render_template("audit_instance.html", active="audit", timeline=timeline, instance=timeline.instance,
                           record=timeline.record, event_label=event_label, value_html=value_html,
                           statuses=INSTANCE_STATUSES, path_json=json.dumps(timeline.path),
                           diagram_url=diagram_url, viewer_script=VIEWER_SCRIPT, viewer_styles=VIEWER_STYLES)


@bp.get("/audit/instances/<int:instance_id>/diagram.json")
def audit_instance_diagram(instance_id: int) -> Any:
    """The instance's own version's diagram with the path taken (auditors and admins)."""
    user = signed_in_user()
    svc = services()

    def read() -> dict[str, Any]:
        svc.audit.require_reader(user)
        return svc.instances.diagram(svc.instances.get(user, instance_id), user)

    return json_answer(read)
