"""Time worked: what the desk spent on each record (ServiceNow's time worked, Jira Service
Management's work log), for the record's own total and the reports' effort by kind and person.

- **Who.** The desk's staff (:data:`WRITER_ROLES`: agents, process owners, admins) log time on any
  record they may read, open or closed (work after the close, a review, counts too); auditors read
  it; a requester, an approver or a configuration manager neither reads nor logs it (403): it is
  the desk's own bookkeeping, not part of the conversation with the requester.
- **An entry.** Minutes (1 to :data:`MAX_MINUTES`), the day worked (today in UTC unless given; not
  after today, at most :data:`MAX_DAYS_BACK` days back) and an optional note of what was done. A
  person's entries of one day, on all records together, hold at most a day (1,440 minutes): a
  typo of "800" for "80" is refused instead of skewing the reports.
- **Removing.** Who logged an entry removes it, and admins any entry (a mistake corrected). There
  is no editing: remove and log again, both audited.
- Audited: ``work_logged`` and ``work_log_removed`` (:data:`EVENTS`, with the record's instance,
  so its history shows them to who reads time worked: ``InstanceService.history`` leaves them out
  for everyone else), and refused tries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db import serialize_writers
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import Role, Ticket, User, WorkLog

from .audit import AuditLog
from .forms import FormMessage, checked_text
from .records import STAFF_ROLES, RecordService

#: Who logs time (the desk's staff); who reads it: they and the auditors (``STAFF_ROLES``).
WRITER_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN)
#: The most one entry holds, and the most one person's entries of one day hold together.
MAX_MINUTES = 24 * 60
#: How far back a day worked may be.
MAX_DAYS_BACK = 366
NOTE_MAX = 1000
#: The most entries a record's list shows (newest first); its total counts them all.
MAX_LISTED = 500
#: The fixed refusals (the pages say them in their own language: app/web/forms.py).
REQUIRED = "is required"
MINUTES_RANGE = "must be a whole number of minutes from 1 to 1440"
NOT_A_DURATION = "must be a duration such as 45m, 1h 30m or 1:30"
NOT_A_DAY = "must be a date as YYYY-MM-DD"
IN_THE_FUTURE = "must not be after today"
TOO_LONG_AGO = "must be within a year before today"
MUST_BE_TEXT = "must be text"
#: The audit events of time worked: in the record's history, read by who reads time worked only.
EVENTS = ("work_logged", "work_log_removed")
#: The longest typed duration read ("2 hours 15 minutes" and then some); anything longer is none.
TYPED_MAX = 24

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
#: A typed duration: "90", "90m", "1h", "1h30", "1h 30m", "1.5h", "2 h 15 min", "1:30".
_CLOCK = re.compile(r"(\d{1,2}):([0-5]\d)", re.ASCII)
_PARTS = re.compile(r"(?:(\d{1,4}(?:[.,]\d{1,3})?)\s*(?:h|hr|hrs|hours?))?\s*(?:(\d{1,5})\s*(?:m|min|mins|minutes?)?)?",
                    re.ASCII | re.I)


def typed_minutes(text: str) -> int | None:
    """The minutes a typed duration says (see ``_PARTS``), rounded to the minute; None when it says
    none (empty, unreadable, or zero)."""
    text = text.strip()
    if not text or len(text) > TYPED_MAX:
        return None
    clock = _CLOCK.fullmatch(text)
    if clock:
        minutes = int(clock.group(1)) * 60 + int(clock.group(2))
        return minutes or None
    parts = _PARTS.fullmatch(text)
    if not parts or not (parts.group(1) or parts.group(2)):
        return None
    hours = float(parts.group(1).replace(",", ".")) if parts.group(1) else 0.0
    rest = int(parts.group(2)) if parts.group(2) else 0
    if parts.group(1) and rest > 59:  # "1h 90": a slip, not 2 h 30 min
        return None
    return round(hours * 60) + rest or None


def may_log(user: User) -> bool:
    return user.has_role(*WRITER_ROLES)


def may_read(user: User) -> bool:
    return user.has_role(*STAFF_ROLES)


def day_full(already: int) -> FormMessage:
    return FormMessage(f"would make more than 24 hours on that day: {already} minutes are logged on it already",
                       "day_full", value=already)


@dataclass
class RecordWork:
    """A record's time worked: its entries (newest first, at most :data:`MAX_LISTED`), the total of
    them all, and the entries the reader may remove."""

    entries: list[WorkLog]
    total_minutes: int
    removable: set[int]


class WorkLogService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records

    def require_reader(self, user: User, action: str = "read_work_log") -> None:
        if not may_read(user):
            self.audit.refuse(user, action, reason="the desk's staff and auditors only")
            raise PermissionDenied("time worked is read by the desk's staff and auditors")

    def require_writer(self, user: User, action: str = "log_work") -> None:
        if not may_log(user):
            self.audit.refuse(user, action, reason="needs agent, process_owner or admin")
            raise PermissionDenied("logging time worked needs the agent, process_owner or admin role")

    # -- reading ------------------------------------------------------------------------------------

    def of_record(self, user: User, number: str) -> tuple[Ticket, RecordWork]:
        """Record ``number`` (NotFound unless ``user`` may read it) and its time worked; PermissionDenied
        for who may not read time worked."""
        self.require_reader(user)
        ticket = self.records.get(user, number)
        return ticket, self.of_ticket(user, ticket)

    def of_ticket(self, user: User, ticket: Ticket) -> RecordWork:
        """:meth:`of_record` for a record the caller read already (and may read time worked of)."""
        entries = list(self.session.scalars(select(WorkLog).where(WorkLog.ticket_id == ticket.id)
                                            .order_by(WorkLog.worked_on.desc(), WorkLog.id.desc()).limit(MAX_LISTED)))
        total = int(self.session.scalar(select(func.coalesce(func.sum(WorkLog.minutes), 0))
                                        .where(WorkLog.ticket_id == ticket.id)) or 0)
        return RecordWork(entries, total, {e.id for e in entries if self._may_remove(user, e)})

    def minutes_of(self, tickets: list[Ticket]) -> dict[int, int]:
        """``{record id: minutes logged}`` of ``tickets`` (records the caller read already; who
        reads time worked only), in one grouped statement; a record without any is absent."""
        ids = sorted({t.id for t in tickets})
        if not ids:
            return {}
        return {ticket_id: int(minutes) for ticket_id, minutes in self.session.execute(
            select(WorkLog.ticket_id, func.sum(WorkLog.minutes)).where(WorkLog.ticket_id.in_(ids))
            .group_by(WorkLog.ticket_id))}

    # -- writing ------------------------------------------------------------------------------------

    def log(self, user: User, number: str, values: Mapping[str, Any]) -> WorkLog:
        """Log ``values`` on record ``number``: ``minutes`` (a whole number, 1 to 1,440), optional
        ``worked_on`` (a date or "YYYY-MM-DD"; today in UTC when absent) and ``note``.
        ValidationFailed naming each field that is wrong; NotFound as the record; PermissionDenied
        for who may not log time. Audited (``work_logged``)."""
        self.require_writer(user)
        ticket = self.records.get(user, number, action="log_work")
        errors: dict[str, list[Any]] = {}
        minutes = self._minutes(values.get("minutes"), errors)
        worked_on = self._day(values.get("worked_on"), errors)
        note = self._note(values.get("note"), errors)
        if minutes and worked_on is not None and "minutes" not in errors:
            # one person's requests take turns here: two at once would both read the day's old sum
            serialize_writers(self.session, f"work_log:{user.id}")
            already = self._logged_on(user, worked_on)
            if already + minutes > MAX_MINUTES:
                errors["minutes"] = [day_full(already)]
        if errors:
            raise ValidationFailed("the time worked is not valid", details={"fields": errors})
        assert worked_on is not None
        entry = WorkLog(ticket_id=ticket.id, user_id=user.id, user_name=user.username, minutes=minutes,
                        worked_on=worked_on, note=note, created_at=self.clock.now())
        self.session.add(entry)
        self.session.flush()
        self.audit.record("work_logged", user, instance_id=ticket.instance_id, payload={
            "number": ticket.number, "id": entry.id, "minutes": minutes, "worked_on": worked_on.isoformat(),
            "note": note})
        return entry

    def remove(self, user: User, number: str, entry_id: int) -> None:
        """Remove entry ``entry_id`` of record ``number``: its author, or an admin (PermissionDenied,
        audited, for anyone else); NotFound for an entry of another record. Audited
        (``work_log_removed``, with what it said)."""
        self.require_writer(user, "remove_work_log")
        ticket = self.records.get(user, number, action="remove_work_log")
        entry = self.session.scalars(select(WorkLog).where(WorkLog.id == entry_id, WorkLog.ticket_id == ticket.id)
                                     .with_for_update(of=WorkLog)).unique().first()
        if entry is None:
            raise NotFound(f"no time worked {entry_id} on {ticket.number}", details={"id": entry_id})
        if not self._may_remove(user, entry):
            self.audit.refuse(user, "remove_work_log", reason="not the author", number=ticket.number,
                              instance_id=ticket.instance_id)
            raise PermissionDenied("time worked is removed by who logged it, or an admin")
        said = {"number": ticket.number, "id": entry.id, "minutes": entry.minutes,
                "worked_on": entry.worked_on.isoformat(), "note": entry.note, "by": entry.user_name}
        self.session.delete(entry)
        self.session.flush()
        self.audit.record("work_log_removed", user, instance_id=ticket.instance_id, payload=said)

    # -- parts --------------------------------------------------------------------------------------

    @staticmethod
    def _may_remove(user: User, entry: WorkLog) -> bool:
        return (entry.user_id == user.id and may_log(user)) or user.has_role(Role.ADMIN)

    def _logged_on(self, user: User, day: date) -> int:
        return int(self.session.scalar(select(func.coalesce(func.sum(WorkLog.minutes), 0))
                                       .where(WorkLog.user_id == user.id, WorkLog.worked_on == day)) or 0)

    @staticmethod
    def _minutes(raw: Any, errors: dict[str, list[Any]]) -> int:
        if raw is None or raw == "":
            errors["minutes"] = [REQUIRED]
            return 0
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_MINUTES:
            errors["minutes"] = [MINUTES_RANGE]
            return 0
        return raw

    def _day(self, raw: Any, errors: dict[str, list[Any]]) -> date | None:
        today = self.clock.now().astimezone(timezone.utc).date()
        if raw is None or raw == "":
            return today
        if isinstance(raw, str):
            try:
                raw = date.fromisoformat(raw.strip()) if _DAY.fullmatch(raw.strip()) else None
            except ValueError:
                raw = None
        if not isinstance(raw, date):
            errors["worked_on"] = [NOT_A_DAY]
            return None
        if raw > today:
            errors["worked_on"] = [IN_THE_FUTURE]
        elif raw < today - timedelta(days=MAX_DAYS_BACK):
            errors["worked_on"] = [TOO_LONG_AGO]
        return raw

    @staticmethod
    def _note(raw: Any, errors: dict[str, list[Any]]) -> str:
        return checked_text({"note": raw}, "note", NOTE_MAX, errors, one_line=False, required=False)
