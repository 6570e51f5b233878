"""Report schemas: the period and kind asked for, and every section of the summary.

What each figure counts is ``app.services.reports``' module doc; the period's rules (whole UTC
days, ``to`` not included, at most a leap year) are the service's, so the API and the page refuse
the same input with the same field messages.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas import Length
from app.services.records import KINDS
from app.services.reports import CHANGE_OUTCOMES, MAX_PERIOD_DAYS

from . import _In


class ReportQuery(_In):
    # Strings: the service parses them (only YYYY-MM-DD), so the page and the API say the same.
    start = fields.String(data_key="from", load_default=None, validate=Length(max=32), metadata={
        "format": "date", "description": "first day (YYYY-MM-DD, UTC) of the period; default: 30 days before `to`"})
    end = fields.String(data_key="to", load_default=None, validate=Length(max=32), metadata={
        "format": "date",
        "description": "the day after the period (YYYY-MM-DD, UTC; not included); default: tomorrow, so the "
                       f"default period is the 30 days up to and including today. At most {MAX_PERIOD_DAYS} days."})
    kind = fields.String(load_default=None, validate=validate.OneOf(["", *KINDS]),
                         metadata={"description": "incident, change, problem or request; absent or empty: all "
                                                  "(as the page's form sends it)"})


class ReportPeriodOut(Schema):
    start = fields.String(attribute="from", data_key="from")
    end = fields.String(attribute="to", data_key="to", metadata={"description": "not included"})
    kind = fields.String(allow_none=True)
    generated_at = fields.String(metadata={"description": "the instant 'now' of the open backlog, aging and workload"})


class ReportVolumeOut(Schema):
    kind = fields.String()
    opened = fields.Integer()
    resolved = fields.Integer(metadata={"description": "resolved_at within the period (latest resolution)"})
    closed = fields.Integer(metadata={"description": "closed_at within the period (cancelled and rejected too)"})


class ReportBacklogOut(Schema):
    kind = fields.String()
    priority = fields.String(allow_none=True)
    open = fields.Integer(metadata={"description": "records not closed now"})


class ReportCategoryOut(Schema):
    category = fields.String(allow_none=True)
    count = fields.Integer()


class ReportPriorityOut(Schema):
    priority = fields.String(allow_none=True)
    count = fields.Integer()


class ReportResolutionOut(Schema):
    kind = fields.String()
    priority = fields.String(allow_none=True)
    count = fields.Integer()
    mean_hours = fields.Float(metadata={"description": "opened_at to resolved_at, calendar hours"})
    median_hours = fields.Float()


class ReportSlaOut(Schema):
    name = fields.String(metadata={"description": "the clock: response or resolution"})
    met = fields.Integer()
    breached = fields.Integer()
    cancelled = fields.Integer(metadata={"description": "given up (cancelled, a rejected request): not in percent"})
    open = fields.Integer(metadata={"description": "running or paused"})
    percent = fields.Float(allow_none=True, metadata={"description": "met / (met + breached) * 100"})


class ReportOutcomeOut(Schema):
    outcome = fields.String(validate=validate.OneOf(CHANGE_OUTCOMES))
    count = fields.Integer()


class ReportChangesOut(Schema):
    outcomes = fields.List(fields.Nested(ReportOutcomeOut))
    closed = fields.Integer(metadata={"description": "changes closed within the period"})
    implemented = fields.Integer(metadata={"description": "successful, rolled_back and rollback_failed"})
    successful = fields.Integer()
    success_rate = fields.Float(allow_none=True, metadata={"description": "successful / implemented * 100"})


class ReportAgingOut(Schema):
    kind = fields.String()
    days_0_1 = fields.Integer(metadata={"description": "open, opened less than a day ago"})
    days_1_3 = fields.Integer()
    days_3_7 = fields.Integer()
    days_7_30 = fields.Integer()
    days_30_plus = fields.Integer()
    total = fields.Integer()


class ReportScoreOut(Schema):
    score = fields.Integer()
    count = fields.Integer()


class ReportSatisfactionOut(Schema):
    kind = fields.String()
    closed = fields.Integer(metadata={"description": "records of the kind closed in the period"})
    rated = fields.Integer(metadata={"description": "of them, those whose requester gave a rating (1-5)"})
    response_rate = fields.Float(allow_none=True, metadata={"description": "rated / closed, percent"})
    mean = fields.Float(allow_none=True)
    scores = fields.List(fields.Nested(ReportScoreOut))
    satisfied = fields.Float(allow_none=True, metadata={"description": "rated 4 or 5, percent of the rated"})


class ReportWorkloadOut(Schema):
    group = fields.String(allow_none=True, metadata={"description": "assignment group; null: none"})
    open = fields.Integer()


class ReportArticleOut(Schema):
    number = fields.String()
    title = fields.String()
    helped = fields.Integer()
    not_helped = fields.Integer()


class ReportKnowledgeOut(Schema):
    published = fields.Integer(metadata={"description": "articles published in the period"})
    attached = fields.Integer(metadata={"description": "articles attached to records in the period"})
    helped = fields.Integer(metadata={"description": "readers' answers in the period that an article helped"})
    not_helped = fields.Integer(metadata={"description": "and that it did not"})
    helpful_share = fields.Float(allow_none=True, metadata={"description": "helped / all answers, percent"})
    needs_work = fields.List(fields.Nested(ReportArticleOut), metadata={
        "description": "the articles most often said not to help in the period"})


class ReportAvailabilityOut(Schema):
    service = fields.String(allow_none=True, metadata={"description": "as the notices name it; null: none named"})
    notices = fields.Integer(metadata={"description": "outage, degraded and maintenance notices overlapping the period"})
    outage_minutes = fields.Integer(metadata={"description": "minutes of the period's past under an outage notice"})
    degraded_minutes = fields.Integer()
    maintenance_minutes = fields.Integer()
    availability = fields.Float(metadata={"description": "share of the period's past without an outage, percent"})


class ReportWorkedKindOut(Schema):
    kind = fields.String()
    minutes = fields.Integer()
    records = fields.Integer(metadata={"description": "records of the kind worked on"})


class ReportWorkedPersonOut(Schema):
    user = fields.String()
    minutes = fields.Integer()
    records = fields.Integer(metadata={"description": "records they worked on"})


class ReportTimeWorkedOut(Schema):
    total_minutes = fields.Integer(metadata={"description": "time logged on days of the period"})
    by_kind = fields.List(fields.Nested(ReportWorkedKindOut))
    by_person = fields.List(fields.Nested(ReportWorkedPersonOut), metadata={"description": "most time first, at most 50"})


class ReportSummaryOut(Schema):
    period = fields.Nested(ReportPeriodOut)
    volume = fields.List(fields.Nested(ReportVolumeOut))
    backlog = fields.List(fields.Nested(ReportBacklogOut))
    incidents_by_category = fields.List(fields.Nested(ReportCategoryOut))
    incidents_by_priority = fields.List(fields.Nested(ReportPriorityOut))
    resolution = fields.List(fields.Nested(ReportResolutionOut))
    sla = fields.List(fields.Nested(ReportSlaOut))
    changes = fields.Nested(ReportChangesOut)
    satisfaction = fields.List(fields.Nested(ReportSatisfactionOut))
    aging = fields.List(fields.Nested(ReportAgingOut))
    workload = fields.List(fields.Nested(ReportWorkloadOut))
    knowledge = fields.Nested(ReportKnowledgeOut)
    availability = fields.List(fields.Nested(ReportAvailabilityOut), metadata={
        "description": "per service, from the service status notices (worst first)"})
    time_worked = fields.Nested(ReportTimeWorkedOut, metadata={
        "description": "the time the desk logged on records (work log), by the day worked"})
