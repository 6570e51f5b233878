"""The reports page (routes on the shared ``web`` blueprint).

``/reports`` shows the desk manager's summary of a period (a GET form: from, to, kind, so a report
is a link) as plain tables; ``/reports.csv`` downloads the same figures as one CSV, one row per
figure with the section it belongs to. Who may read them and what each figure counts is
``ReportService``'s (app/services/reports.py): anyone but agents, process owners, admins and
auditors gets the 403 page, and their attempt is audited.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flask import render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.api import services, unit_of_work
from app.errors import ValidationFailed
from app.services.records import KINDS
from app.services.reports import AGE_BUCKETS, BAD_DATE, FROM_AFTER_TO, TOO_LONG

from .audit_pages import csv_download
from .labels import KIND_LABELS, STATUS_LABELS, VALUE_LABELS, RecordValues, label
from .ticket_pages import duration
from .views import bp, signed_in_user

#: The query parameters the form sends, and the longest value taken of each (longer than any good
#: value, so that the service refuses junk after a date as the API does, rather than cutting it off).
PARAMS = {"from": 32, "to": 32, "kind": 32}
CSV_COLUMNS = ("section", "kind", "subject", "measure", "value")
#: In the order of ``AGE_BUCKETS``: the aging table's columns.
AGE_LABELS: dict[str, Any] = {"days_0_1": _l("Under 1 day"), "days_1_3": _l("1 to 3 days"),
                              "days_3_7": _l("3 to 7 days"), "days_7_30": _l("7 to 30 days"),
                              "days_30_plus": _l("30 days or more")}
OUTCOME_LABELS: dict[str, Any] = {
    "successful": VALUE_LABELS["successful"], "rolled_back": VALUE_LABELS["rolled_back"],
    "rollback_failed": VALUE_LABELS["rollback_failed"], "withdrawn": _l("Rejected, then withdrawn"),
    "cancelled": STATUS_LABELS["cancelled"], "other": _l("Other"),
}
CLOCK_LABELS: dict[str, Any] = {"response": _l("First response"), "resolution": _l("Resolution")}
#: The service's field messages, in the page's words.
ERROR_TEXTS: dict[str, Any] = {BAD_DATE: _l("must be a date (YYYY-MM-DD)"),
                               FROM_AFTER_TO: _l("must be before the end of the period, which is not included"),
                               TOO_LONG: _l("the period may be at most 366 days")}


def _typed() -> dict[str, str]:
    return {key: (request.args.get(key) or "").strip()[:limit] for key, limit in PARAMS.items()}


def _errors(err: ValidationFailed) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, messages in (err.details.get("fields") or {}).items():
        message = messages[0] if isinstance(messages, list) and messages else str(messages)
        found[key] = str(ERROR_TEXTS.get(message) or (_("choose one from the list") if key == "kind" else message))
    return found


def _read(typed: Mapping[str, str], *, titles: bool = False
          ) -> tuple[dict[str, Any] | None, dict[str, str], dict[str, Any]]:
    """The report for the typed period and kind, or None and an error per bad field; with
    ``titles``, also how its incident categories read (``_category_values``), in the same transaction."""
    user = signed_in_user()
    svc = services()

    def read() -> tuple[dict[str, Any], dict[str, Any]]:
        report = svc.reports.summary(user, typed["from"] or None, typed["to"] or None, typed["kind"] or None)
        return report, _category_values(report) if titles else {}

    try:
        report, categories = unit_of_work(read)
    except ValidationFailed as err:
        return None, _errors(err), {}
    return report, {}, categories


def _category_values(report: Mapping[str, Any]) -> dict[str, Any]:
    """How each incident category of the report reads on the record pages: the option title the
    incident forms give it (in the page's language), found through one incident of each."""
    wanted = sorted({row["category"] for row in report.get("incidents_by_category") or [] if row["category"]})
    if not wanted:
        return {}
    svc = services()
    samples = svc.reports.samples("incident", "category", wanted)
    values = RecordValues(svc.records.value_titles(samples, fields=["category"]))
    return {str(ticket.category): values.field(ticket, "category") for ticket in samples}


@bp.get("/reports")
def reports() -> Any:
    typed = _typed()
    report, errors, categories = _read(typed, titles=True)
    return _render(typed, report, errors, categories)


def _render(typed: dict[str, str], report: dict[str, Any] | None, errors: dict[str, str],
            categories: Mapping[str, Any] | None = None) -> Any:
    query = {key: value for key, value in typed.items() if value}
    return render_template("reports.html", active="reports", typed=typed, report=report, errors=errors, query=query,
                           kinds=KINDS, kind_labels=KIND_LABELS, age_buckets=[key for key, _ in AGE_BUCKETS],
                           age_labels=AGE_LABELS, outcome_labels=OUTCOME_LABELS, clock_labels=CLOCK_LABELS,
                           label=label, values=RecordValues(), categories=categories or {},
                           duration=duration), 422 if errors else 200


@bp.get("/reports.csv")
def reports_csv() -> Any:
    typed = _typed()
    report, errors, _titles = _read(typed)
    if report is None:
        return _render(typed, None, errors)
    period = report["period"]
    name = f"report-{period['from']}-{period['to']}{'-' + period['kind'] if period['kind'] else ''}.csv"
    return csv_download(CSV_COLUMNS, csv_rows(report), name)


def csv_rows(report: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """One row per figure: (section, kind, subject, measure, value), codes as the API answers them;
    the subject is what the figure is about within its section (a priority, category, clock,
    outcome, age bucket or group; empty for none)."""
    period = report["period"]
    for measure in ("from", "to", "kind", "generated_at"):
        yield "period", "", "", measure, period[measure]
    for row in report["volume"]:
        for measure in ("opened", "resolved", "closed"):
            yield "volume", row["kind"], "", measure, row[measure]
    for row in report["backlog"]:
        yield "backlog", row["kind"], row["priority"], "open", row["open"]
    for row in report["incidents_by_category"]:
        yield "incidents_by_category", "incident", row["category"], "opened", row["count"]
    for row in report["incidents_by_priority"]:
        yield "incidents_by_priority", "incident", row["priority"], "opened", row["count"]
    for row in report["resolution"]:
        for measure in ("count", "mean_hours", "median_hours"):
            yield "resolution", row["kind"], row["priority"], measure, row[measure]
    for row in report["sla"]:
        for measure in ("met", "breached", "cancelled", "open", "percent"):
            yield "sla", period["kind"] or "", row["name"], measure, row[measure]
    changes = report["changes"]
    for row in changes["outcomes"]:
        yield "changes", "change", row["outcome"], "closed", row["count"]
    for measure in ("closed", "implemented", "successful", "success_rate"):
        yield "changes", "change", "", measure, changes[measure]
    for row in report["satisfaction"]:
        for measure in ("closed", "rated", "response_rate", "mean", "satisfied"):
            yield "satisfaction", row["kind"], "", measure, row[measure]
        for entry in row["scores"]:
            yield "satisfaction", row["kind"], entry["score"], "rated", entry["count"]
    for row in report["aging"]:
        for bucket, _bound in AGE_BUCKETS:
            yield "aging", row["kind"], bucket, "open", row[bucket]
    for row in report["workload"]:
        yield "workload", period["kind"] or "", row["group"], "open", row["open"]
    knowledge = report["knowledge"]
    for measure in ("published", "attached", "helped", "not_helped", "helpful_share"):
        yield "knowledge", "", "", measure, knowledge[measure]
    for row in knowledge["needs_work"]:
        for measure in ("helped", "not_helped"):
            yield "knowledge", "", row["number"], measure, row[measure]
    for row in report["availability"]:
        for measure in ("notices", "outage_minutes", "degraded_minutes", "maintenance_minutes", "availability"):
            yield "availability", "", row["service"] or "", measure, row[measure]
    worked = report["time_worked"]
    yield "time_worked", period["kind"] or "", "", "minutes", worked["total_minutes"]
    for row in worked["by_kind"]:
        for measure in ("minutes", "records"):
            yield "time_worked", row["kind"], "", measure, row[measure]
    for row in worked["by_person"]:
        for measure in ("minutes", "records"):
            yield "time_worked", period["kind"] or "", row["user"], measure, row[measure]
