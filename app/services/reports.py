"""The desk manager's reports: volumes, backlog, resolution times, SLA, change outcomes, aging and
workload, over one period and optionally one kind of record.

Who: the staff who read every record (``records.STAFF_ROLES``: agents, process owners, admins,
auditors). Anyone else is refused (403, audited as ``read_reports``): a requester's or an
approver's "report" would count only the few records they may see, and figures that look like
the desk's but are not would mislead more than they help. The queries still go through
``RecordService.visible``, so the rule of what a user sees stays in one place.

The period is whole UTC days, ``[from, to)``: ``to`` is not included. By default it is the 30
days up to and including today (``to`` is tomorrow). A period ending before it starts, longer
than ``MAX_PERIOD_DAYS`` or with a date that does not parse is a ValidationFailed naming the field.

Every figure is a SQL aggregate (GROUP BY, and window functions for the median), the same on
SQLite and PostgreSQL: no record is loaded into Python, whatever the size of the desk.
"Now" is the application's clock, so what is open and how old it is follow it exactly.

Definitions (what each section counts; "open" is a record without ``closed_at``, as the record
list's ``open`` filter says, so a resolved incident waiting for its requester is still open):

* ``volume``: per kind, the records opened (``opened_at``), resolved (``resolved_at``) and closed
  (``closed_at``) within the period. A reopened record has no ``resolved_at`` until it is resolved
  again, so it counts as resolved only by its latest resolution; changes have no resolved status
  (0). Cancelled and rejected records count as closed.
* ``backlog``: the records open now, per kind and priority (no period).
* ``incidents_by_category`` / ``incidents_by_priority``: incidents opened within the period.
* ``resolution``: records whose ``resolved_at`` is within the period, per kind and priority:
  how many, and the mean and median hours from ``opened_at`` to ``resolved_at`` (calendar time,
  not business hours; pauses included).
* ``sla``: the stored SLA clocks (``sla_clock``) of records opened within the period, per clock
  name: met, breached, cancelled (given up: the record's cancellation before any resolution or a
  request's rejection, see app/services/sla.py; a record cancelled once resolved counts as met or
  breached at its resolution) and open (running or paused), and met / (met + breached) as a
  percentage. Read from the stored state, as ``SlaService.compliance`` does (which has no period);
  unlike it, rows stored "met" by a give-up before give-ups were "cancelled" are not re-read from
  their events.
* ``changes``: changes closed (``closed_at``) within the period by outcome: ``successful``
  (verified), ``rolled_back`` (verification failed, rolled back), ``rollback_failed``,
  ``withdrawn`` (rejected, then withdrawn by the requester), ``cancelled`` (the process was
  cancelled) and ``other``; the success rate is successful / implemented (the three outcomes of
  an implemented change) as a percentage.
* ``satisfaction``: the ratings requesters gave (``rating`` in a record's details, 1 to 5: an
  incident's confirmation, a catalog request's receipt) on the records closed within the period,
  per kind that asks for one (``RATED_KINDS``): closed, rated (and rated / closed as the response
  rate), the mean, how many gave each score, and the share satisfied (4 or 5 of the rated). A
  record counts with its latest rating (a reopened incident is rated again); anything else stored
  under ``rating`` counts as not rated. A record given up without a rating (withdrawn or
  cancelled, a rejected request: ``sla.GIVE_UP_STATUSES``) is not counted at all: its requester
  was never asked, and counted among the closed it lowered the response rate.
* ``aging``: the records open now per kind by age (now - ``opened_at``): under 1 day, 1 to 3,
  3 to 7, 7 to 30 and 30 days or more (each bucket includes its lower bound).
* ``workload``: the records open now per assignment group (None: no group).
* ``knowledge``: self-help and the knowledge base's health in the period (whatever the kind):
  articles published (``published_at``), articles attached to records (``knowledge_attached``
  audit events), readers' answers to "Was this article helpful?" given or changed (``updated_at``)
  that it helped and that it did not, the share that it helped, and the articles most often said
  not to help (at most ``NEEDS_WORK``, with their answers of the period): what needs work.
* ``time_worked``: the time the desk logged (``work_log``, app/services/worklog.py) on days of
  the period (``worked_on``), on records of the report's kind: the total minutes, per kind the
  minutes and the records worked on, and per person (at most ``TIME_WORKED_PEOPLE``, most time
  first) the same. An entry counts on the day worked, not the day it was typed in.
* ``availability``: the services' availability as the desk announced it (service status notices,
  whatever the kind): per service named on a notice (None: none named), the notices that spent
  time in the period at level outage, degraded service or planned maintenance, the minutes of
  each level within the part of the period that has passed (a notice is at the level of its
  latest timeline entry, so an outage eased to "degraded" counts as an outage until then; a
  notice not resolved runs until now; overlapping notices of one level count their minutes once),
  and the share of that time without an outage, as a percentage. Worst first, at most
  ``AVAILABILITY_ROWS`` services.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Float, Select, and_, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from app.clock import Clock
from app.errors import PermissionDenied, ValidationFailed
from app.models import (
    AuditEvent,
    KnowledgeArticle,
    KnowledgeFeedback,
    SlaClock,
    StatusNotice,
    StatusUpdate,
    Ticket,
    User,
    WorkLog,
)
from app.models.record import priority_rank

from .audit import AuditLog
from .knowledge import helped_count, not_helped_count
from .records import KINDS, STAFF_ROLES, RecordService
from .sla import FINAL_STATES, GIVE_UP_STATUSES, TRACKED_KINDS

#: The kinds whose requesters rate the service when they confirm (``satisfaction``), and the scores.
RATED_KINDS = ("incident", "request")
SCORES = (1, 2, 3, 4, 5)
#: The longest period a report covers, in days (a leap year).
MAX_PERIOD_DAYS = 366
#: The default period, in days up to and including today.
DEFAULT_PERIOD_DAYS = 30
#: The age buckets of the open backlog: (key, lower bound in days), youngest first; each bucket
#: runs from its bound to the next one's.
AGE_BUCKETS: tuple[tuple[str, int], ...] = (
    ("days_0_1", 0), ("days_1_3", 1), ("days_3_7", 3), ("days_7_30", 7), ("days_30_plus", 30))
#: How many articles the knowledge section lists as needing work, at most.
NEEDS_WORK = 5
#: The notice levels the availability section measures, and how many services it lists at most.
AVAILABILITY_LEVELS = ("outage", "degraded", "maintenance")
AVAILABILITY_ROWS = 50
#: The most people the time worked section lists (most time first).
TIME_WORKED_PEOPLE = 50
#: A change's outcome by its closing status and its ``result`` detail (change_enablement.bpmn).
IMPLEMENTED_OUTCOMES = ("successful", "rolled_back", "rollback_failed")
CHANGE_OUTCOMES = (*IMPLEMENTED_OUTCOMES, "withdrawn", "cancelled", "other")


class hours_between(FunctionElement[float]):
    """Hours from the first timestamp to the second, as a float, on SQLite and PostgreSQL."""

    type = Float()
    inherit_cache = True


@compiles(hours_between)
def _hours_between(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_between_sqlite(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 24.0)"


def ranked_hours(hours: Any, partition: Sequence[Any], tie: Any) -> tuple[Any, ...]:
    """The columns :func:`median_hours` reads from a subquery: ``hours``, its rank within its
    ``partition`` (``tie`` orders equal hours) and the partition's size."""
    return (hours.label("hours"), func.row_number().over(partition_by=partition, order_by=(hours, tie)).label("position"),
            func.count().over(partition_by=partition).label("size"))


def median_hours(ranked: Any) -> Any:
    """The median of a group of ``ranked`` (a subquery with :func:`ranked_hours`' columns): the
    middle row of an odd count, the mean of the two middle rows of an even one (integer division on
    both databases)."""
    middle = and_(ranked.c.position >= (ranked.c.size + 1) // 2, ranked.c.position <= (ranked.c.size + 2) // 2)
    return func.avg(case((middle, ranked.c.hours)))


#: The field messages of a bad period (the pages say them in their language).
BAD_DATE = "must be a date (YYYY-MM-DD)"
FROM_AFTER_TO = "must be before to (the period runs up to the day to, not including it)"
TOO_LONG = f"the period may be at most {MAX_PERIOD_DAYS} days"


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"fields": {field: [message]}})


def _day(value: date | str | None, field: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        # only the plain form: fromisoformat also takes 20260105 and 2026-W02-1
        if len(text) == 10 and text[4] == text[7] == "-":
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise _fail(field, BAD_DATE)


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def may_read_reports(user: User) -> bool:
    """The user reads the desk's reports: the staff who see every record."""
    return user.has_role(*STAFF_ROLES)


class ReportService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records

    def require_reader(self, user: User) -> None:
        """PermissionDenied (audited as ``read_reports``) unless ``user`` may read reports."""
        if not may_read_reports(user):
            self.audit.refuse(user, "read_reports", reason="agents, process owners, admins and auditors only")
            raise PermissionDenied("reports are for agents, process owners, admins and auditors")

    def period(self, start: date | str | None = None, end: date | str | None = None) -> tuple[date, date]:
        """The report's ``[from, to)`` in whole UTC days, defaults filled; ValidationFailed naming
        ``from`` or ``to`` for a date that does not parse, a period that ends before it starts (or
        where it starts: ``to`` is not included, so that period is empty) or
        one longer than ``MAX_PERIOD_DAYS``."""
        # Both dates read before either is refused: two mistyped dates are named together.
        fields: dict[str, list[str]] = {}
        days: dict[str, date | None] = {}
        for field, value in (("from", start), ("to", end)):
            try:
                days[field] = _day(value, field)
            except ValidationFailed as err:
                fields.update(err.details["fields"])
        if fields:
            raise ValidationFailed("; ".join(f"{field}: {messages[0]}" for field, messages in fields.items()),
                                   details={"fields": fields})
        first, last = days["from"], days["to"]
        try:
            if last is None:
                last = (first + timedelta(days=DEFAULT_PERIOD_DAYS) if first is not None
                        else self.clock.now().astimezone(timezone.utc).date() + timedelta(days=1))
            if first is None:
                first = last - timedelta(days=DEFAULT_PERIOD_DAYS)
        except OverflowError:  # a default 30 days past year 9999 or before year 1
            raise _fail("from" if start else "to", BAD_DATE) from None
        if first >= last:  # [from, to): the same day twice is an empty period
            raise _fail("from", FROM_AFTER_TO)
        if (last - first).days > MAX_PERIOD_DAYS:
            raise _fail("to", TOO_LONG)
        return first, last

    def summary(self, user: User, start: date | str | None = None, end: date | str | None = None,
                kind: str | None = None) -> dict[str, Any]:
        """Every section of the report (see the module doc) for ``user``: PermissionDenied (audited)
        unless they may read reports, ValidationFailed naming the field for a bad period or kind."""
        self.require_reader(user)
        kind = kind or None
        if kind is not None and kind not in KINDS:
            raise _fail("kind", f"one of: {', '.join(KINDS)}")
        first, last = self.period(start, end)
        since = datetime.combine(first, time.min, timezone.utc)
        before = datetime.combine(last, time.min, timezone.utc)
        now = self.clock.now()
        kinds = [kind] if kind else list(KINDS)
        scope = _Scope(self, user, kind, since, before)
        changes = self._changes(scope) if kind in (None, "change") else None
        return {
            "period": {"from": first.isoformat(), "to": last.isoformat(), "kind": kind, "generated_at": now.isoformat()},
            "volume": self._volume(scope, kinds),
            "backlog": self._backlog(scope),
            "incidents_by_category": self._incidents(scope, Ticket.category, "category") if kind in (None, "incident") else [],
            "incidents_by_priority": self._incidents(scope, Ticket.priority, "priority") if kind in (None, "incident") else [],
            "resolution": self._resolution(scope),
            "sla": self._sla(scope) if kind is None or kind in TRACKED_KINDS else [],
            "changes": changes or {"outcomes": [], "closed": 0, "implemented": 0, "successful": 0, "success_rate": None},
            "satisfaction": self._satisfaction(scope, [k for k in kinds if k in RATED_KINDS]),
            "aging": self._aging(scope, kinds, now),
            "workload": self._workload(scope),
            "knowledge": self._knowledge(scope),
            "availability": self._availability(scope, now),
            "time_worked": self._time_worked(scope, first, last),
        }

    def samples(self, kind: str, field: str, values: Collection[str]) -> list[Ticket]:
        """One record of ``kind`` (the newest: its process version's forms are the current ones) for
        each of ``values`` of its field ``field``: whose forms say how the report's coded values read
        (``RecordService.value_titles``)."""
        column = getattr(Ticket, field)
        ids = self.session.scalars(select(func.max(Ticket.id)).where(Ticket.kind == kind, column.in_(sorted(values)))
                                   .group_by(column)).all()
        return list(self.session.scalars(select(Ticket).where(Ticket.id.in_(ids)))) if ids else []

    # -- sections -----------------------------------------------------------------------------------

    def _volume(self, scope: _Scope, kinds: list[str]) -> list[dict[str, Any]]:
        def within(column: Any) -> ColumnElement[int]:
            return func.coalesce(func.sum(case((and_(column >= scope.since, column < scope.before), 1), else_=0)), 0)

        touched = [and_(column >= scope.since, column < scope.before)
                   for column in (Ticket.opened_at, Ticket.resolved_at, Ticket.closed_at)]
        query = (select(Ticket.kind, within(Ticket.opened_at), within(Ticket.resolved_at), within(Ticket.closed_at))
                 .where(touched[0] | touched[1] | touched[2]).group_by(Ticket.kind))
        found = {row[0]: row[1:] for row in self.session.execute(scope.narrow(query))}
        return [{"kind": k, **dict(zip(("opened", "resolved", "closed"), (int(n) for n in found.get(k, (0, 0, 0))),
                                       strict=True))} for k in kinds]

    def _backlog(self, scope: _Scope) -> list[dict[str, Any]]:
        query = (select(Ticket.kind, Ticket.priority, func.count())
                 .where(Ticket.closed_at.is_(None)).group_by(Ticket.kind, Ticket.priority))
        rows = sorted(self.session.execute(scope.narrow(query)), key=lambda r: (_kind_order(r[0]), priority_rank(r[1]), r[1] or ""))
        return [{"kind": k, "priority": p, "open": int(n)} for k, p, n in rows]

    def _incidents(self, scope: _Scope, column: Any, name: str) -> list[dict[str, Any]]:
        query = (select(column, func.count()).where(Ticket.kind == "incident", *scope.opened_within())
                 .group_by(column))
        rows = list(self.session.execute(scope.narrow(query, kind=False)))
        if name == "priority":
            rows.sort(key=lambda r: (priority_rank(r[0]), r[0] or ""))
        else:
            rows.sort(key=lambda r: (-int(r[1]), r[0] is None, r[0] or ""))
        return [{name: value, "count": int(n)} for value, n in rows]

    def _resolution(self, scope: _Scope) -> list[dict[str, Any]]:
        hours = hours_between(Ticket.opened_at, Ticket.resolved_at)
        partition = (Ticket.kind, Ticket.priority)
        ranked = scope.narrow(select(
            Ticket.kind.label("kind"), Ticket.priority.label("priority"), *ranked_hours(hours, partition, Ticket.id),
        ).where(Ticket.resolved_at >= scope.since, Ticket.resolved_at < scope.before)).subquery()
        query = (select(ranked.c.kind, ranked.c.priority, func.count(), func.avg(ranked.c.hours), median_hours(ranked))
                 .group_by(ranked.c.kind, ranked.c.priority))
        rows = sorted(self.session.execute(query), key=lambda r: (_kind_order(r[0]), priority_rank(r[1]), r[1] or ""))
        return [{"kind": k, "priority": p, "count": int(n), "mean_hours": _round(mean), "median_hours": _round(median)}
                for k, p, n, mean, median in rows]

    def _sla(self, scope: _Scope) -> list[dict[str, Any]]:
        query = (select(SlaClock.name, SlaClock.state, func.count()).join(Ticket, Ticket.id == SlaClock.ticket_id)
                 .where(*scope.opened_within()).group_by(SlaClock.name, SlaClock.state))
        counts: dict[str, dict[str, int]] = {}
        for name, state, n in self.session.execute(scope.narrow(query)):
            found = counts.setdefault(name, dict.fromkeys((*FINAL_STATES, "open"), 0))
            found[state if state in FINAL_STATES else "open"] += int(n)
        return [{"name": name, **counts[name], "percent": _percent(counts[name]["met"],
                                                                   counts[name]["met"] + counts[name]["breached"])}
                for name in sorted(counts, key=lambda name: (name != "response", name))]

    def _changes(self, scope: _Scope) -> dict[str, Any]:
        result = Ticket.details["result"].as_string()
        query = (select(Ticket.status, result, func.count())
                 .where(Ticket.kind == "change", Ticket.closed_at >= scope.since, Ticket.closed_at < scope.before)
                 .group_by(Ticket.status, result))
        counts = dict.fromkeys(CHANGE_OUTCOMES, 0)
        for status, outcome, n in self.session.execute(scope.narrow(query, kind=False)):
            counts[_change_outcome(status, outcome)] += int(n)
        implemented = sum(counts[o] for o in IMPLEMENTED_OUTCOMES)
        return {"outcomes": [{"outcome": o, "count": n} for o, n in counts.items() if n or o != "other"],
                "closed": sum(counts.values()), "implemented": implemented, "successful": counts["successful"],
                "success_rate": _percent(counts["successful"], implemented)}

    def _satisfaction(self, scope: _Scope, kinds: list[str]) -> list[dict[str, Any]]:
        if not kinds:
            return []
        # read as text and counted here: a rating is whatever a process stored, and a cast in SQL
        # would fail the whole report on one odd value (PostgreSQL refuses CAST('great' AS int))
        rating = Ticket.details["rating"].as_string()
        query = (select(Ticket.kind, Ticket.status, rating, func.count())
                 .where(Ticket.kind.in_(kinds), Ticket.closed_at >= scope.since, Ticket.closed_at < scope.before)
                 .group_by(Ticket.kind, Ticket.status, rating))
        closed = dict.fromkeys(kinds, 0)
        scores = {k: dict.fromkeys(SCORES, 0) for k in kinds}
        for k, status, value, n in self.session.execute(scope.narrow(query, kind=False)):
            score = _score(value)
            if score is None and status in GIVE_UP_STATUSES.get(k, ()):
                continue  # withdrawn, cancelled or rejected before anyone asked for a rating
            closed[k] += int(n)
            if score is not None:
                scores[k][score] += int(n)
        rows = []
        for k in kinds:
            rated = sum(scores[k].values())
            total = sum(score * n for score, n in scores[k].items())
            rows.append({"kind": k, "closed": closed[k], "rated": rated, "response_rate": _percent(rated, closed[k]),
                         "mean": _round(total / rated) if rated else None,
                         "scores": [{"score": score, "count": n} for score, n in scores[k].items()],
                         "satisfied": _percent(scores[k][4] + scores[k][5], rated)})
        return rows

    def _aging(self, scope: _Scope, kinds: list[str], now: datetime) -> list[dict[str, Any]]:
        # Newer than a bucket's lower bound's instant: younger than its upper bound. The bounds are
        # instants computed here, so the comparison is a plain one on opened_at on both databases.
        whens = [(Ticket.opened_at > now - timedelta(days=bound), key)
                 for (key, _), (_, bound) in zip(AGE_BUCKETS, AGE_BUCKETS[1:], strict=False)]
        bucket = case(*whens, else_=AGE_BUCKETS[-1][0])
        query = (select(Ticket.kind, bucket, func.count()).where(Ticket.closed_at.is_(None))
                 .group_by(Ticket.kind, bucket))
        table = {k: dict.fromkeys((key for key, _ in AGE_BUCKETS), 0) for k in kinds}
        for k, key, n in self.session.execute(scope.narrow(query)):
            table.setdefault(k, dict.fromkeys((key for key, _ in AGE_BUCKETS), 0))[key] += int(n)
        return [{"kind": k, **buckets, "total": sum(buckets.values())} for k, buckets in table.items()]

    def _workload(self, scope: _Scope) -> list[dict[str, Any]]:
        query = (select(Ticket.assignment_group, func.count()).where(Ticket.closed_at.is_(None))
                 .group_by(Ticket.assignment_group))
        rows = sorted(self.session.execute(scope.narrow(query)), key=lambda r: (-int(r[1]), r[0] is None, r[0] or ""))
        return [{"group": group, "open": int(n)} for group, n in rows]


    def _knowledge(self, scope: _Scope) -> dict[str, Any]:
        def within(column: Any) -> ColumnElement[bool]:
            return and_(column >= scope.since, column < scope.before)

        def answers(helped: bool) -> Any:
            return select(func.count()).select_from(KnowledgeFeedback).where(
                KnowledgeFeedback.helpful.is_(helped), within(KnowledgeFeedback.updated_at)).scalar_subquery()

        # the four counts in one statement
        published, attached, helped, not_helped = (int(n or 0) for n in self.session.execute(select(
            select(func.count()).select_from(KnowledgeArticle).where(within(KnowledgeArticle.published_at))
            .scalar_subquery(),
            select(func.count()).select_from(AuditEvent).where(
                AuditEvent.event_type == "knowledge_attached", within(AuditEvent.occurred_at)).scalar_subquery(),
            answers(True), answers(False))).one())
        unhelpful = not_helped_count()
        worst = self.session.execute(
            select(KnowledgeArticle.number, KnowledgeArticle.title, helped_count(), unhelpful)
            .join(KnowledgeFeedback, KnowledgeFeedback.article_id == KnowledgeArticle.id)
            .where(within(KnowledgeFeedback.updated_at))
            .group_by(KnowledgeArticle.id, KnowledgeArticle.number, KnowledgeArticle.title)
            .having(unhelpful > 0).order_by(unhelpful.desc(), KnowledgeArticle.number).limit(NEEDS_WORK)).all()
        return {"published": int(published), "attached": int(attached), "helped": helped, "not_helped": not_helped,
                "helpful_share": _percent(helped, helped + not_helped),
                "needs_work": [{"number": number, "title": title, "helped": int(yes or 0), "not_helped": int(no or 0)}
                               for number, title, yes, no in worst]}

    def _time_worked(self, scope: _Scope, first: date, last: date) -> dict[str, Any]:
        minutes, records = func.sum(WorkLog.minutes), func.count(func.distinct(WorkLog.ticket_id))

        def logged(*columns: Any) -> Select[Any]:
            return (select(*columns, minutes, records).select_from(Ticket).join(WorkLog, WorkLog.ticket_id == Ticket.id)
                    .where(WorkLog.worked_on >= first, WorkLog.worked_on < last).group_by(*columns))

        by_kind = sorted(self.session.execute(scope.narrow(logged(Ticket.kind))), key=lambda r: _kind_order(r[0]))
        people = self.session.execute(scope.narrow(logged(WorkLog.user_name)).order_by(minutes.desc(), WorkLog.user_name)
                                      .limit(TIME_WORKED_PEOPLE)).all()
        return {"total_minutes": sum(int(m or 0) for _, m, _ in by_kind),
                "by_kind": [{"kind": kind, "minutes": int(m or 0), "records": int(n)} for kind, m, n in by_kind],
                "by_person": [{"user": name, "minutes": int(m or 0), "records": int(n)} for name, m, n in people]}

    def _availability(self, scope: _Scope, now: datetime) -> list[dict[str, Any]]:
        end = min(scope.before, now)
        if end <= scope.since:  # a period still to come has no time to measure
            return []
        # every notice that was running in the period, whatever its level now (an outage eased to
        # "degraded" or "info" was an outage until then), and the levels its timeline went through
        notices = self.session.execute(
            select(StatusNotice.id, StatusNotice.service, StatusNotice.starts_at, StatusNotice.resolved_at)
            .where(StatusNotice.starts_at < end,
                   (StatusNotice.resolved_at.is_(None)) | (StatusNotice.resolved_at > scope.since))).all()
        if not notices:
            return []
        levels: dict[int, list[tuple[datetime, str]]] = {}
        for notice_id, level, at in self.session.execute(
                select(StatusUpdate.notice_id, StatusUpdate.level, StatusUpdate.created_at)
                .where(StatusUpdate.notice_id.in_([n.id for n in notices]))
                .order_by(StatusUpdate.notice_id, StatusUpdate.created_at, StatusUpdate.id)):
            levels.setdefault(notice_id, []).append((at, level))
        spans: dict[str | None, dict[str, list[tuple[datetime, datetime]]]] = {}
        counts: dict[str | None, int] = {}
        for notice_id, service, starts_at, resolved_at in notices:
            name = service or None
            stops = min(resolved_at or end, end)
            timeline = levels.get(notice_id, [])
            measured_any = False
            for index, (at, level) in enumerate(timeline):
                # a level holds from its entry to the next one; the first from the notice's start (a
                # notice may be posted after the outage began), a later one set before the start from it
                begins = starts_at if index == 0 else max(at, starts_at)
                until = timeline[index + 1][0] if index + 1 < len(timeline) else stops
                span = (max(begins, scope.since), min(until, stops))
                if level in AVAILABILITY_LEVELS and span[0] < span[1]:
                    spans.setdefault(name, {}).setdefault(level, []).append(span)
                    measured_any = True
            if measured_any:  # not one cancelled before it began, nor one only of information
                counts[name] = counts.get(name, 0) + 1
        measured = (end - scope.since).total_seconds() / 60
        minutes = {name: tuple(_union_minutes(spans.get(name, {}).get(level, [])) for level in AVAILABILITY_LEVELS)
                   for name in counts}
        worst_first = sorted(counts, key=lambda name: (*(-m for m in minutes[name]), name is None, name or ""))
        return [{"service": name, "notices": counts[name], "outage_minutes": minutes[name][0],
                 "degraded_minutes": minutes[name][1], "maintenance_minutes": minutes[name][2],
                 "availability": round(100 * (1 - minutes[name][0] / measured), 2)}
                for name in worst_first[:AVAILABILITY_ROWS]]


def _union_minutes(spans: list[tuple[datetime, datetime]]) -> int:
    """The whole minutes that ``spans`` cover together (an overlap counted once)."""
    total, reach = 0.0, None
    for start, end in sorted(spans):
        if reach is not None and start < reach:
            start = reach
        if end > start:
            total += (end - start).total_seconds()
            reach = end
    return int(total // 60)


class _Scope:
    """One report's user, kind and period: the narrowing every section's query shares."""

    def __init__(self, service: ReportService, user: User, kind: str | None, since: datetime, before: datetime) -> None:
        self.service, self.user, self.kind, self.since, self.before = service, user, kind, since, before

    def opened_within(self) -> tuple[ColumnElement[bool], ...]:
        return Ticket.opened_at >= self.since, Ticket.opened_at < self.before

    def narrow(self, query: Select[Any], *, kind: bool = True) -> Select[Any]:
        """``query`` (over Ticket) for the report's kind (unless the section names its own) and the
        records the user may see."""
        if kind and self.kind is not None:
            query = query.where(Ticket.kind == self.kind)
        return self.service.records.visible(self.user, query)


def _score(value: Any) -> int | None:
    """A stored rating as a score of ``SCORES``; None for anything else (absent, null, text)."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text in {str(score) for score in SCORES} else None


def _kind_order(kind: str) -> int:
    order = list(KINDS)
    return order.index(kind) if kind in order else len(order)


def _change_outcome(status: str, result: str | None) -> str:
    if status == "closed":
        return result if result in IMPLEMENTED_OUTCOMES else "other"
    if status in ("withdrawn", "cancelled"):
        return status
    return "other"

