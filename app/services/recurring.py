"""Recurring requests: a process started again and again with the same data, on a rule of
weekdays (every week, or their first to fourth or last in the month) at a time of day on the
clocks of a time zone: the monthly patching change raised on the second Tuesday at 09:00 Berlin,
the weekly backup check every Monday, the monthly access review. ServiceNow's scheduled
requests and Jira Service Management's recurring work items do the same.

- **Who.** The desk's staff who work (agents, process owners, admins; not read-only auditors)
  make them, for the processes they may start themselves. A request is started as its *owner*,
  who made it (for ``requested_for``, a user name, when set: as the start page's "Requested for",
  by the same rule). Owners read, change, pause, resume and delete their own; admins every one;
  anyone else gets 404. At most :data:`MAX_PER_OWNER` each.
- **What is started.** The data is checked when the request is made, exactly as a start would
  check it (``InstanceService.check_start``: the process's validator or start form, the record
  checks; nothing is started), and kept as checked. Each run starts the *latest* version with it,
  as the owner then: their rights, the process's form, and the data are checked again. The
  form's dates and times move with the start: answers written for the first start (a change
  planned from 10:00 to 12:00 on the day of a 09:00 start) are moved on by as much as each later
  start is later (``date`` fields by days on the rule's clocks), so they are never in the past.
- **When.** ``next_run_at`` is the rule's next start after the moment it is made, resumed or
  changed, or after the run. A desk that was down over several starts makes one when it is back,
  not one per start missed: the last of them (the next is reckoned from the moment it runs).
  Pausing, resuming and changing the name or rule keep the answers as they are (each run checks
  them); new ``data`` (or process, or person it is for) is checked at once.
- **A run that starts nothing** (the owner left, lost the right to start the process, a new
  version's form refuses the data, the person it was for is gone) pauses the request, keeps why in
  ``last_error``, audits it (``recurring_request_failed``) and tells the owner (``recurring.paused``,
  in-app, by mail and webhook): it would fail again at every start. The owner mends it (changes
  it, or resumes it as it is) and it goes on from the next start.
- **Exactly once.** Every sweep (app/scheduler.py) starts the requests due, each in its own
  transaction that also moves ``next_run_at`` on; several sweepers start each once (PostgreSQL:
  rows another sweeper holds are skipped and re-read; SQLite: one writer at a time).
- Audited: ``recurring_request_created``, ``_changed``, ``_paused``, ``_resumed``, ``_deleted``,
  ``_ran`` (with the instance) and ``_failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.db import begin_write, serialize_writers
from app.errors import Conflict, NotFound, PermissionDenied, ProcessdeskError, ServiceUnavailable, ValidationFailed
from app.languages import Text
from app.models import ProcessInstance, RecurringRequest, Role, User

from .forms import checked_text, field_instant, rfc3339
from .instances import ON_BEHALF_FIELD
from .maintenance import (
    BAD_TIME,
    Rule,
    clock_minute,
    clock_text,
    day_names,
    next_opening,
    recurrence,
    week_name,
    zone_names,
)

if TYPE_CHECKING:
    from . import Services

log = logging.getLogger(__name__)

#: Who makes recurring requests: the desk's staff who work (an auditor reads only).
MAKERS = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN)
MAX_PER_OWNER = 50
NAME_MAX = 128
#: How many due requests one sweep starts (the rest wait for the next sweep).
SWEEP_LIMIT = 50
#: Sweeps in a row a run may meet a race (a conflict, a lost connection) before it is paused.
MAX_ATTEMPTS = 5
EVENT = "recurring.paused"
NOT_A_MAKER = "only the service desk's agents, process owners and admins make recurring requests"
NOT_A_MAKER_CODE = "not_a_maker"
TOO_MANY = f"you have {MAX_PER_OWNER} recurring requests already: delete one first"
#: The fields a change may name; anything else is refused (422 naming it).
FIELDS = ("name", "process_id", "data", "requested_for", "days", "week", "time", "timezone", "active")


def describe(row: RecurringRequest) -> dict[str, Any]:
    """A recurring request as the API answers it."""
    return {"id": row.id, "name": row.name, "process_id": row.process_id, "data": row.data,
            "requested_for": row.requested_for, "owner": row.owner.username, "days": day_names(row.days),
            "week": week_name(row.week), "time": clock_text(row.minute), "timezone": row.timezone,
            "active": row.active, "next_run_at": row.next_run_at, "last_run_at": row.last_run_at,
            "last_instance_id": row.last_instance_id, "last_error": row.last_error, "runs": row.runs,
            "dates_written_for": row.anchor_at,
            "created_at": row.created_at, "updated_at": row.updated_at}


def when(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The name and the rule of ``values`` (``name``, ``days``, ``week``, ``time``, ``timezone``) as
    the row keeps them, and what is wrong with them by field: the start page checks them beside
    its form's fields (app/web/recurring_pages.py)."""
    errors: dict[str, list[Any]] = {}
    clean: dict[str, Any] = {"name": checked_text(values, "name", NAME_MAX, errors, one_line=True, required=True)}
    recurrence(values, clean, errors)
    said = values.get("time")
    clean["minute"] = clock_minute(said) if isinstance(said, str) else None
    if clean["minute"] is None:
        errors["time"] = [BAD_TIME]
    return clean, errors


def may_make(user: User) -> bool:
    """Whether ``user`` makes recurring requests (:data:`MAKERS`, active)."""
    return user.active and user.has_role(*MAKERS)


def _data_field(field: str) -> str:
    """Where a start's refusal of ``field`` shows on a recurring request: the person it is for as
    ``requested_for``, the data's own fields as ``data.<field>``."""
    if field == ON_BEHALF_FIELD:
        return "requested_for"
    return field if field == "data" or field.startswith("data.") else f"data.{field}"


def _reason(err: ProcessdeskError) -> str:
    """Why a run started nothing, as its owner reads it: the refusal and the fields it names."""
    fields = err.details.get("fields") if isinstance(err.details, dict) else None
    if not isinstance(fields, dict) or not fields:
        return err.message
    named = "; ".join(f"{name}: {', '.join(str(m) for m in messages)}" for name, messages in fields.items())
    return f"{err.message} ({named})"


def _rule(row: RecurringRequest) -> Rule:
    return Rule(row.days, row.minute, row.minute, row.timezone, week=row.week)


def _latest_start(row: RecurringRequest, now: datetime) -> datetime:
    """The start a run at ``now`` makes: the rule's latest start at or before ``now`` from the one
    due (a desk that was down over several starts makes the last of them)."""
    due = row.next_run_at or now
    rule = _rule(row)
    while (following := next_opening(rule, due)) is not None and following <= now:
        due = following
    return due


class RecurringService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.session = services.session
        self.clock = services.runtime.clock

    # -- reading ----------------------------------------------------------------------------

    def listed(self, user: User, *, everyone: bool = False) -> list[RecurringRequest]:
        """``user``'s recurring requests by name; with ``everyone``, an admin's list of all of them
        (anyone else gets their own)."""
        query = select(RecurringRequest)
        if not (everyone and user.has_role(Role.ADMIN)):
            query = query.where(RecurringRequest.owner_id == user.id)
        return list(self.session.scalars(query.order_by(func.lower(RecurringRequest.name), RecurringRequest.id)))

    def get(self, user: User, request_id: int) -> RecurringRequest:
        """The request if ``user`` owns it or is an admin; NotFound otherwise (whether it exists is
        nobody else's business)."""
        row = self.session.get(RecurringRequest, request_id)
        if row is None or not (row.owner_id == user.id or user.has_role(Role.ADMIN)):
            raise NotFound(f"no recurring request {request_id}", details={"id": request_id})
        return row

    def last_numbers(self, rows: list[RecurringRequest]) -> dict[int, str]:
        """The record number of each request's last start, by request id (one query; a start
        without a record, or one deleted since, has none)."""
        ids = {r.last_instance_id: r.id for r in rows if r.last_instance_id is not None}
        if not ids:
            return {}
        found = self.session.execute(select(ProcessInstance.id, ProcessInstance.data).where(ProcessInstance.id.in_(ids)))
        return {ids[instance_id]: data["record_number"] for instance_id, data in found
                if isinstance(data, dict) and isinstance(data.get("record_number"), str)}

    # -- commands ---------------------------------------------------------------------------

    def _clean(self, owner: User, values: Mapping[str, Any], current: RecurringRequest | None = None) -> dict[str, Any]:
        """The fields of ``values`` (over ``current``'s, for a change) as the row keeps them, the data
        checked by the start contract for ``owner``; ValidationFailed naming every bad field."""
        unknown = [k for k in values if k not in FIELDS]
        if unknown:
            raise ValidationFailed("unknown fields", details={"fields": {k: ["is not a field of a recurring request"] for k in unknown}})
        merged: dict[str, Any] = dict(describe(current)) if current is not None else {}
        merged.update(values)
        clean, errors = when(merged)
        active = merged.get("active", True)
        if not isinstance(active, bool):
            errors["active"] = ["must be true or false"]
        clean["active"] = active is True
        process_id = merged.get("process_id")
        if not isinstance(process_id, str) or not process_id.strip():
            errors["process_id"] = ["is required"]
        data = merged.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            errors["data"] = ["must be an object"]
        named = merged.get("requested_for")
        if named is not None and not isinstance(named, str):
            errors["requested_for"] = ["must be a user name"]
        named = (named or "").strip() or None
        if current is not None and not {"process_id", "data", "requested_for"} & set(values):
            # the start as kept: checked again by each run (its dates moved on), not by a pause
            clean.update(process_id=current.process_id, data=current.data, requested_for=current.requested_for)
        elif "process_id" not in errors and "data" not in errors and "requested_for" not in errors:
            assert isinstance(process_id, str)
            # the answers are for the start to come (one overdue included): checked as of then, so
            # that a run does not refuse what was taken; kept ones move on to it first
            at = self._answers_start(clean, current)
            if current is not None and "data" not in values:
                data = self._moved(current, at)
            try:
                caller, checked = self.services.instances.check_start(owner, process_id.strip(), data, named, at=at)
            except ValidationFailed as err:
                for field, problems in (err.details.get("fields") or {"data": [err.message]}).items():
                    errors.setdefault(_data_field(field), []).extend(problems)
            else:
                clean.update(process_id=process_id.strip(), data=checked, anchor_at=at,
                             requested_for=caller.username if caller is not None and caller.id != owner.id else None)
        if errors:
            raise ValidationFailed("the recurring request is not valid", details={"fields": errors})
        return clean

    def _answers_start(self, clean: Mapping[str, Any], current: RecurringRequest | None) -> datetime:
        """The start that answers given now are for: an active request's due one when its rule stays
        (overdue: the sweep's next), else the first start of the rule ``clean`` holds from now (now,
        for a rule with errors, which are refused anyway)."""
        now = self.clock.now()
        if not {"days", "week", "timezone"} <= set(clean) or clean.get("minute") is None:
            return now
        rule = Rule(clean["days"], clean["minute"], clean["minute"], clean["timezone"], week=clean["week"])
        if (current is not None and current.active and current.next_run_at is not None
                and _rule(current) == rule and clean["active"]):
            return current.next_run_at
        return next_opening(rule, now) or now

    def require_maker(self, user: User, action: str) -> None:
        """PermissionDenied (audited, code ``not_a_maker``) for who may not make recurring requests."""
        if not may_make(user):
            self.services.audit.refuse(user, action, reason=NOT_A_MAKER)
            raise PermissionDenied(NOT_A_MAKER, code=NOT_A_MAKER_CODE)

    def create(self, user: User, values: Mapping[str, Any]) -> RecurringRequest:
        """A new recurring request of ``user`` from ``values``: ``name``, ``process_id``, ``data``,
        ``requested_for`` (optional), ``days``, ``week`` (optional), ``time`` (hh:mm), ``timezone``
        (default UTC), ``active`` (default true). PermissionDenied for who may not make them or may
        not start the process; NotFound for a process not deployed; ValidationFailed naming each
        bad field (the data's as ``data.<field>``), or ``name`` for one request too many."""
        self.require_maker(user, "create_recurring_request")
        clean = self._clean(user, values)
        serialize_writers(self.session, f"recurring_request:{user.id}")  # at most MAX_PER_OWNER each
        owned = self.session.scalar(select(func.count()).select_from(RecurringRequest)
                                    .where(RecurringRequest.owner_id == user.id)) or 0
        if owned >= MAX_PER_OWNER:
            raise ValidationFailed("the recurring request is not valid", details={"fields": {"name": [TOO_MANY]}})
        now = self.clock.now()
        row = RecurringRequest(owner_id=user.id, runs=0, attempts=0, created_at=now, updated_at=now, **clean)
        row.owner = user
        row.next_run_at = next_opening(_rule(row), now) if row.active else None
        self.session.add(row)
        self.session.flush()
        self.services.audit.record("recurring_request_created", user, payload=self._said(row))
        return row

    def change(self, user: User, request_id: int, values: Mapping[str, Any]) -> RecurringRequest:
        """Change the fields ``values`` names (any of :data:`FIELDS`); the data is checked again
        against the process as it is now, for the request's owner, when it is new. ``active``
        pauses or resumes it (not a request whose owner no longer makes them: 422 naming
        ``active``). A new rule, a pause or a resume reckons the next start anew from now."""
        row = self.get(user, request_id)
        self.require_maker(user, "change_recurring_request")
        before = self._said(row)
        clean = self._clean(row.owner, values, row)
        if clean["active"] and not row.active and not may_make(row.owner):
            # (an admin resuming a leaver's request: its next run would pause it again)
            raise ValidationFailed("the recurring request is not valid", details={"fields": {"active": [
                f"{row.owner.username} no longer makes recurring requests: delete it, or make it again as someone who does"]}})
        rule_before = (row.days, row.week, row.minute, row.timezone, row.active)
        for key, value in clean.items():
            setattr(row, key, value)
        now = self.clock.now()
        row.updated_at = now
        upcoming = next_opening(_rule(row), now)
        if (row.days, row.week, row.minute, row.timezone, row.active) != rule_before:
            # a new rule, or paused or resumed: from now on (a rename keeps a start that is due)
            row.next_run_at = upcoming if row.active else None
        if clean["active"] and not before["active"]:
            row.last_error = None
        self.session.flush()
        after = self._said(row)
        event = ("recurring_request_resumed" if after["active"] and not before["active"] else
                 "recurring_request_paused" if before["active"] and not after["active"] else "recurring_request_changed")
        self.services.audit.record(event, user, payload={
            **after, "changed": sorted(k for k in after if after[k] != before.get(k))})
        return row

    def delete(self, user: User, request_id: int) -> None:
        row = self.get(user, request_id)
        said = self._said(row)
        self.session.delete(row)
        self.session.flush()
        self.services.audit.record("recurring_request_deleted", user, payload=said)

    @staticmethod
    def _said(row: RecurringRequest) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "process_id": row.process_id, "owner": row.owner.username,
                "requested_for": row.requested_for, "days": day_names(row.days), "week": week_name(row.week),
                "time": clock_text(row.minute), "timezone": row.timezone, "active": row.active, "data": row.data}

    # -- the sweep --------------------------------------------------------------------------

    def sweep(self, limit: int = SWEEP_LIMIT) -> int:
        """Start the requests due (each in its own transaction, committed); returns how many
        started a process."""
        from app.unit_of_work import run_unit_of_work  # (it imports the services package)

        now = self.clock.now()
        due = list(self.session.scalars(
            select(RecurringRequest.id).where(RecurringRequest.active.is_(True), RecurringRequest.next_run_at <= now)
            # who met a race last time goes after the others (a lasting one cannot hold them up)
            .order_by(RecurringRequest.attempts, RecurringRequest.next_run_at, RecurringRequest.id).limit(limit)))
        self.session.commit()  # (nothing written: each run below is a transaction of its own)
        started = 0
        for request_id in due:
            try:
                if run_unit_of_work(self.services, partial(self._run, request_id, now)):
                    started += 1
                continue
            except (Conflict, ServiceUnavailable) as err:
                # a race or a lost connection, not the request's fault: still due, tried next sweep
                log.warning("recurring request %s: %s; tried again at the next sweep", request_id, err.message)
                try:
                    run_unit_of_work(self.services, partial(self._tried, request_id, now, _reason(err)))
                except Exception:  # noqa: BLE001 - the others still run
                    log.exception("recurring request %s: its attempt could not be counted", request_id)
                    self.session.rollback()
                continue
            except ProcessdeskError as err:
                why = _reason(err)
            except Exception:  # noqa: BLE001 - one broken request must not hold up the others
                log.exception("recurring request %s could not start", request_id)
                self.session.rollback()
                why = "the process could not be started (an error of the desk: see its log)"
            try:
                run_unit_of_work(self.services, partial(self._pause, request_id, now, why))
            except Exception:  # noqa: BLE001 - the others still run; this one is due again next sweep
                log.exception("recurring request %s could not be paused", request_id)
                self.session.rollback()
        return started

    def _claim(self, request_id: int, now: datetime) -> RecurringRequest | None:
        """The request, locked for this transaction, if it is still due (another sweeper may have
        run it meanwhile)."""
        begin_write(self.session)
        query = select(RecurringRequest).where(RecurringRequest.id == request_id, RecurringRequest.active.is_(True),
                                               RecurringRequest.next_run_at <= now)
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=RecurringRequest)
        return self.session.scalars(query.execution_options(populate_existing=True)).first()

    def _run(self, request_id: int, now: datetime) -> bool:
        row = self._claim(request_id, now)
        if row is None:
            return False
        owner = row.owner
        if not owner.active:
            raise PermissionDenied(f"{owner.username} is no longer active")
        if not may_make(owner):
            raise PermissionDenied(NOT_A_MAKER)
        due = _latest_start(row, now)
        data = self._moved(row, due)
        instance = self.services.instances.start_process(owner, row.process_id, data, on_behalf_of=row.requested_for)
        row.last_run_at = now
        row.last_instance_id = instance.id
        row.last_error = None
        row.attempts = 0
        row.runs += 1
        row.next_run_at = next_opening(_rule(row), now)
        number = (instance.data or {}).get("record_number")
        self.services.audit.record("recurring_request_ran", owner, instance_id=instance.id, payload={
            "id": row.id, "name": row.name, "process_id": row.process_id, "number": number, "run": row.runs})
        return True

    def _moved(self, row: RecurringRequest, due: datetime) -> dict[str, Any]:
        """The request's data for its start at ``due``: each ``date-time`` field of the form it is
        started with later by as much as ``due`` is after :attr:`~RecurringRequest.anchor_at` (the
        start the answers were written for), each ``date`` field by as many days on the clocks of
        the rule's zone. So a change planned for 10:00 to 12:00 on the day of a 09:00 start is planned
        so on the day of every start."""
        data = dict(row.data)
        anchor = row.anchor_at
        form = self.services.instances.start_form(row.process_id, data)
        if anchor is None or form is None or due == anchor:
            return data
        zone = ZoneInfo(row.timezone) if row.timezone in zone_names() else ZoneInfo("UTC")
        days = (due.astimezone(zone).date() - anchor.astimezone(zone).date()).days
        for name, spec in (form[0].get("properties") or {}).items():
            fmt = spec.get("format") if isinstance(spec, dict) else None
            if fmt not in ("date", "date-time") or not isinstance(data.get(name), str):
                continue
            value = field_instant(data[name], fmt)
            if isinstance(value, datetime):
                data[name] = rfc3339(value + (due - anchor))
            elif value is not None:
                data[name] = (value + timedelta(days=days)).isoformat()
        return data

    def _tried(self, request_id: int, now: datetime, why: str) -> None:
        """Count a run that met a race; the :data:`MAX_ATTEMPTS`-th in a row pauses the request."""
        row = self._claim(request_id, now)
        if row is None:
            return
        row.attempts += 1
        if row.attempts >= MAX_ATTEMPTS:
            self._pause_row(row, now, f"{why} (at {MAX_ATTEMPTS} sweeps in a row)")

    def _pause(self, request_id: int, now: datetime, why: str) -> None:
        row = self._claim(request_id, now)
        if row is not None:
            self._pause_row(row, now, why)

    def _pause_row(self, row: RecurringRequest, now: datetime, why: str) -> None:
        row.attempts = 0
        row.active = False
        row.next_run_at = None
        row.last_run_at = now
        row.last_error = why[:2000]
        self.services.audit.record("recurring_request_failed", None, actor_name="scheduler", payload={
            "id": row.id, "name": row.name, "process_id": row.process_id, "owner": row.owner.username, "reason": row.last_error})
        notifier = self.services.notifications
        said = {"name": row.name}
        notifier.notify(
            [row.owner], EVENT, Text("Your recurring request “%(name)s” is paused", **said),
            Text("Your recurring request “%(name)s” could not start its process and is paused: %(reason)s. "
                 "Change it or resume it: %(link)s", reason=row.last_error, link=notifier.url("/recurring"), **said),
            payload={"id": row.id, "name": row.name, "process_id": row.process_id, "reason": row.last_error})
