"""The desk manager's reports: one summary of a period (app/services/reports.py decides who may
read it and what each figure counts)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.schemas.reports import ReportQuery, ReportSummaryOut

from . import checked_first, current_user, services, unit_of_work

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="Reports")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


@blp.route("/reports/summary")
class SummaryView(MethodView):
    @checked_first(lambda svc, user: svc.reports.require_reader(user))
    @blp.arguments(ReportQuery, location="query")
    @blp.response(200, ReportSummaryOut)
    @blp.alt_response(403, description="not an agent, process owner, admin or auditor")
    @blp.alt_response(422, description="a bad date or kind, from after to, a period over 366 days: details.fields names it")
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Volumes, open backlog, incidents by category and priority, resolution times, SLA, change
        outcomes, backlog aging and workload over [from, to) (whole UTC days), for agents,
        process owners, admins and auditors."""
        user = current_user()
        return unit_of_work(lambda: services().reports.summary(user, args.get("start"), args.get("end"),
                                                               args.get("kind")))
