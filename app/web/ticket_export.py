"""``/tickets.csv``: the record list as a spreadsheet, with the filters and the order of
``/tickets`` (its "Download CSV" link carries them), every record the reader may see that
matches, at most :data:`EXPORT_MAX_RECORDS` (more: the list says to narrow it). People are
named by user name, times are ISO 8601 in UTC; for the desk's staff and the auditors a column
adds up each record's time worked. Cells are guarded against spreadsheet formulas
(``csv_download``)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for
from flask_babel import gettext as _

from app.api import services, unit_of_work
from app.models import Ticket
from app.services.worklog import may_read as may_read_work

from .audit_pages import csv_download
from .ticket_pages import list_filters, list_query, list_sort
from .views import bp, signed_in_user

#: The most records one file holds: a desk's month, not its history (the API pages through all).
EXPORT_MAX_RECORDS = 10_000
CSV_COLUMNS = ("number", "kind", "title", "status", "priority", "category", "requester", "opened_by", "assignee",
               "assignment_group", "service", "ci", "opened_at", "first_response_at", "resolved_at", "closed_at",
               "sla_due_at")


def _when(moment: Any) -> str:
    return moment.isoformat() if moment is not None else ""


def _row(ticket: Ticket, worked: dict[int, int] | None) -> list[Any]:
    row: list[Any] = [ticket.number, ticket.kind, ticket.title, ticket.status, ticket.priority or "", ticket.category or "",
           ticket.requester.username if ticket.requester is not None else "", ticket.opened_by_name or "",
           ticket.assignee.username if ticket.assignee is not None else "", ticket.assignment_group or "",
           ticket.service or "", ticket.ci or "", _when(ticket.opened_at), _when(ticket.first_response_at),
           _when(ticket.resolved_at), _when(ticket.closed_at), _when(ticket.sla_due_at)]
    if worked is not None:
        row.append(worked.get(ticket.id, 0))
    return row


@bp.get("/tickets.csv")
def tickets_csv() -> Any:
    user = signed_in_user()
    filters, sort = list_filters(), list_sort()
    svc = services()

    def read() -> tuple[list[Ticket], dict[int, int] | None]:
        rows, _total = svc.records.list_tickets(user, filters, sort, 1, EXPORT_MAX_RECORDS + 1)
        if len(rows) > EXPORT_MAX_RECORDS:
            return rows, None
        return rows, svc.work.minutes_of(rows) if may_read_work(user) else None

    rows, worked = unit_of_work(read)
    if len(rows) > EXPORT_MAX_RECORDS:
        flash(_("More than %(limit)d records match: narrow the list to download it.", limit=EXPORT_MAX_RECORDS), "error")
        query: dict[str, Any] = list_query(filters, sort)
        return redirect(url_for("web.tickets", **query))
    columns = CSV_COLUMNS + (("time_worked_minutes",) if worked is not None else ())
    stamp = svc.runtime.clock.now().strftime("%Y%m%d-%H%M%S")
    return csv_download(columns, (_row(t, worked) for t in rows), f"records-{stamp}.csv")
