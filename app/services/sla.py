"""SLA tracking: policies, per-record clock events, clock states, warnings, breaches, escalation.

A record's clocks are event-sourced: every start, pause, resume, priority change and stop is an
``sla_event`` row; ``app.services.sla_clock.evaluate`` replays them under the policy's business
calendar, and the result is kept in ``sla_clock`` (with the next instant worth checking) for
queries and for the sweep that raises warnings and breaches. A priority change recomputes the
targets from the record's start, not from now; paused time is kept exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from app.db import begin_write
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import Group, Role, SlaClock, SlaEvent, SlaPolicy, Ticket, User

from .sla_clock import DEFAULT_TARGETS, BusinessCalendar, ClockEvent, ClockState, evaluate

if TYPE_CHECKING:
    from . import Services

TRACKED_KINDS = ("incident", "problem", "request")
DEFAULT_PAUSES = {"incident": ["pending"], "problem": [], "request": []}
DEFAULT_ESCALATION: dict[str, Any] = {
    "warning": {"notify": ["assignee", "group"]},
    "breach": {"notify": ["assignee", "group", "group_manager"], "raise_priority": False, "reassign_group": None},
}
RAISE = {"P4": "P3", "P3": "P2", "P2": "P1", "P1": "P1"}
NOTIFY_TARGETS = {"assignee", "group", "group_manager", "requester"}


class SlaService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.session = services.session

    # -- policies ---------------------------------------------------------------------------------------

    def policy(self, kind: str, priority: str | None, service: str | None) -> SlaPolicy | None:
        """The stored policy for (kind, priority, service), else for any service; None if none."""
        if not priority:
            return None
        rows = self.session.scalars(select(SlaPolicy).where(SlaPolicy.kind == kind, SlaPolicy.priority == priority,
                                                            SlaPolicy.service.in_([service or "", ""]))).all()
        exact = [r for r in rows if r.service and r.service == service]
        fallback = exact or [r for r in rows if not r.service]
        return fallback[0] if fallback else None

    def terms(self, kind: str, priority: str | None, service: str | None) -> dict[str, Any] | None:
        """Targets, calendar, pauses, warning ratio and escalation in force; built-in defaults
        (24x7, the issue's P1-P4 targets) when no policy is stored."""
        row = self.policy(kind, priority, service)
        if row is not None:
            return {"policy_id": row.id, "targets": {"response": row.response_seconds, "resolution": row.resolution_seconds},
                    "calendar": row.calendar or {}, "pauses": list(row.pause_statuses or []),
                    "warning_ratio": row.warning_ratio, "escalation": row.escalation or DEFAULT_ESCALATION}
        if kind not in TRACKED_KINDS or priority not in DEFAULT_TARGETS:
            return None
        return {"policy_id": None, "targets": dict(DEFAULT_TARGETS[priority]), "calendar": {},
                "pauses": DEFAULT_PAUSES[kind], "warning_ratio": 0.75, "escalation": DEFAULT_ESCALATION}

    def save_policy(self, actor: User, values: Mapping[str, Any]) -> SlaPolicy:
        if not actor.has_role(Role.ADMIN, Role.PROCESS_OWNER):
            self.services.audit.refuse(actor, "sla_policy_save", reason="needs process_owner")
            raise PermissionDenied("changing SLA policies needs the process_owner role")
        problems: dict[str, list[str]] = {}
        try:
            BusinessCalendar.from_dict(values.get("calendar") or {})
        except ValueError as err:
            problems["calendar"] = [str(err)]
        escalation = values.get("escalation") or DEFAULT_ESCALATION
        for level in ("warning", "breach"):
            unknown = set((escalation.get(level) or {}).get("notify", [])) - NOTIFY_TARGETS
            if unknown:
                problems[f"escalation.{level}.notify"] = [f"one of: {', '.join(sorted(NOTIFY_TARGETS))}"]
        if problems:
            raise ValidationFailed("SLA policy is invalid", details={"fields": problems})
        service = values.get("service") or ""
        row = self.session.scalar(select(SlaPolicy).where(SlaPolicy.kind == values["kind"], SlaPolicy.priority == values["priority"],
                                                          SlaPolicy.service == service))
        if row is None:
            row = SlaPolicy(kind=values["kind"], priority=values["priority"], service=service)
            self.session.add(row)
        row.response_seconds = int(values["response_seconds"])
        row.resolution_seconds = int(values["resolution_seconds"])
        row.calendar = dict(values.get("calendar") or {})
        row.pause_statuses = list(values.get("pause_statuses") or [])
        row.warning_ratio = float(values.get("warning_ratio", 0.75))
        row.escalation = dict(escalation)
        row.updated_at = self.services.runtime.clock.now()
        self.session.flush()
        self.services.audit.record("sla_policy_saved", actor, payload={k: v for k, v in values.items()})
        return row

    def policies(self) -> list[SlaPolicy]:
        return list(self.session.scalars(select(SlaPolicy).order_by(SlaPolicy.kind, SlaPolicy.priority, SlaPolicy.service)))

    # -- tracking (after every record sync) ---------------------------------------------------------------

    def _events(self, ticket: Ticket) -> list[SlaEvent]:
        return list(self.session.scalars(select(SlaEvent).where(SlaEvent.ticket_id == ticket.id).order_by(SlaEvent.id)))

    def _add(self, ticket: Ticket, kind: str, at: datetime, *, targets: Mapping[str, float] | None = None,
             clocks: list[str] | None = None, reason: str) -> None:
        self.session.add(SlaEvent(ticket_id=ticket.id, at=at, kind=kind, targets=dict(targets) if targets else None,
                                  clocks=clocks, reason=reason))
        self.services.audit.record(f"sla_{kind}", None, instance_id=ticket.instance_id,
                                   payload={"number": ticket.number, "reason": reason, "targets": dict(targets or {}),
                                            "clocks": clocks}, actor_name="sla")

    def track(self, ticket: Ticket, changes: Mapping[str, Any]) -> None:
        """Turn a record change into clock events, then re-evaluate the clocks."""
        terms = self.terms(ticket.kind, ticket.priority, ticket.service)
        events = self._events(ticket)
        now = self.services.runtime.clock.now()
        if not events:
            if terms is None:
                return
            self._add(ticket, "start", ticket.opened_at, targets=terms["targets"], reason="record opened")
            if ticket.status in terms["pauses"]:
                self._add(ticket, "pause", now, reason=f"status {ticket.status}")
        elif terms is not None:
            last_targets = next((e.targets for e in reversed(events) if e.targets), None)
            if "priority" in changes and last_targets != terms["targets"]:
                self._add(ticket, "priority", now, targets=terms["targets"], reason=f"priority {ticket.priority}")
            if "status" in changes:
                paused_now = ticket.status in terms["pauses"] or ticket.status in self._resolved(ticket)
                was_paused = self._paused(events)
                closed = ticket.closed_at is not None
                if closed:
                    self._add(ticket, "stop", now, reason=f"status {ticket.status}")
                elif paused_now and not was_paused:
                    self._add(ticket, "pause", now, reason=f"status {ticket.status}")
                elif not paused_now and was_paused:
                    self._add(ticket, "resume", now, reason=f"status {ticket.status}")
        if ticket.first_response_at is not None and "first_response_at" in changes:
            self._add(ticket, "stop", ticket.first_response_at, clocks=["response"], reason="first response")
        self.session.flush()
        self.refresh(ticket, terms)

    def _resolved(self, ticket: Ticket) -> set[str]:
        instance = self.services.records.instance_for(ticket)
        mapping = instance.definition.record_mapping if instance is not None else None
        return set((mapping or {}).get("resolved_statuses", ["resolved"]))

    @staticmethod
    def _paused(events: list[SlaEvent]) -> bool:
        paused = False
        for event in events:
            if event.kind == "pause":
                paused = True
            elif event.kind == "resume":
                paused = False
        return paused

    def evaluate(self, ticket: Ticket, terms: Mapping[str, Any] | None = None) -> dict[str, ClockState]:
        terms = terms if terms is not None else self.terms(ticket.kind, ticket.priority, ticket.service)
        events = self._events(ticket)
        if not events:
            return {}
        calendar = BusinessCalendar.from_dict((terms or {}).get("calendar") or {})
        replay = [ClockEvent(at=e.at, kind=e.kind, targets=e.targets,
                             clocks=frozenset(e.clocks) if e.clocks is not None else None) for e in events]
        return evaluate(replay, calendar, self.services.runtime.clock.now(), float((terms or {}).get("warning_ratio", 0.75)))

    def refresh(self, ticket: Ticket, terms: Mapping[str, Any] | None = None) -> list[SlaClock]:
        """Recompute and store the clocks of ``ticket``; return the stored rows."""
        states = self.evaluate(ticket, terms)
        rows = {c.name: c for c in self.session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket.id))}
        now = self.services.runtime.clock.now()
        for name, state in states.items():
            row = rows.get(name)
            if row is None:
                row = SlaClock(ticket_id=ticket.id, name=name, warned=False, escalated=False)
                self.session.add(row)
                rows[name] = row
            row.policy_id = (terms or {}).get("policy_id")
            row.target_seconds = state.target_seconds
            row.elapsed_seconds = state.elapsed_seconds
            row.paused_seconds = state.paused_seconds
            row.state = state.state
            row.due_at = state.due_at
            row.warning_at = state.warning_at
            row.breached_at = state.breached_at
            row.evaluated_at = now
            checks = [t for t in (None if row.warned else state.warning_at, None if row.escalated else state.due_at) if t]
            if state.state == "breached" and not row.escalated:
                checks.append(now)
            row.next_check_at = min(checks) if checks and state.state in ("running", "breached") else None
        self.session.flush()
        return list(rows.values())

    # -- the sweep: warnings, breaches, escalation ------------------------------------------------------------

    def sweep(self, limit: int = 200) -> dict[str, int]:
        begin_write(self.session)
        now = self.services.runtime.clock.now()
        due = list(self.session.scalars(select(SlaClock).where(SlaClock.next_check_at <= now).order_by(SlaClock.next_check_at).limit(limit)))
        counts = {"warnings": 0, "breaches": 0}
        for ticket_id in sorted({c.ticket_id for c in due}):
            ticket = self.session.get(Ticket, ticket_id)
            if ticket is None:
                continue
            terms = self.terms(ticket.kind, ticket.priority, ticket.service)
            for clock in self.refresh(ticket, terms):
                if clock.state == "breached" and not clock.escalated:
                    clock.escalated = clock.warned = True
                    self._escalate(ticket, clock, "breach", terms)
                    counts["breaches"] += 1
                elif clock.state == "running" and not clock.warned and clock.warning_at is None:
                    clock.warned = True
                    self._escalate(ticket, clock, "warning", terms)
                    counts["warnings"] += 1
            self.refresh(ticket, terms)
        self.session.commit()
        return counts

    def _escalate(self, ticket: Ticket, clock: SlaClock, level: str, terms: Mapping[str, Any] | None) -> None:
        rules = ((terms or {}).get("escalation") or DEFAULT_ESCALATION).get(level) or {}
        notifier = self.services.notifications
        people: list[User] = []
        for target in rules.get("notify", []):
            if target == "assignee" and ticket.assignee is not None:
                people.append(ticket.assignee)
            elif target == "requester" and ticket.requester is not None:
                people.append(ticket.requester)
            elif target == "group":
                people.extend(notifier.members(ticket.assignment_group))
            elif target == "group_manager" and ticket.assignment_group:
                group = self.session.scalar(select(Group).where(Group.name == ticket.assignment_group))
                if group is not None and group.manager is not None:
                    people.append(group.manager)
        actions: dict[str, Any] = {}
        if level == "breach" and rules.get("raise_priority") and ticket.priority in RAISE and RAISE[ticket.priority] != ticket.priority:
            actions["priority"] = (ticket.priority, RAISE[ticket.priority])
            ticket.priority = RAISE[ticket.priority]
        if level == "breach" and rules.get("reassign_group"):
            actions["assignment_group"] = (ticket.assignment_group, rules["reassign_group"])
            ticket.assignment_group = rules["reassign_group"]
        word = "breached" if level == "breach" else "at risk"
        notifier.notify(people, f"sla.{level}", f"SLA {word}: {clock.name} of {ticket.number} ({ticket.title})",
                        f"The {clock.name} target of {ticket.number} is {word} (due {clock.due_at:%Y-%m-%d %H:%M} UTC). "
                        f"{notifier.link(ticket)}" if clock.due_at else f"The {clock.name} target of {ticket.number} is {word}.",
                        ticket=ticket, payload={"clock": clock.name, "level": level})
        self.services.audit.record(f"sla_{'breached' if level == 'breach' else 'warning'}", None, instance_id=ticket.instance_id,
                                   payload={"number": ticket.number, "clock": clock.name, "notified": sorted({u.username for u in people}),
                                            "actions": {k: list(v) for k, v in actions.items()}}, actor_name="sla")
        if "priority" in actions:
            self._add(ticket, "priority", self.services.runtime.clock.now(),
                      targets=(self.terms(ticket.kind, ticket.priority, ticket.service) or {}).get("targets") or {},
                      reason="escalation raised the priority")

    # -- reading ------------------------------------------------------------------------------------------------

    def breached_open_records(self, user: User) -> int:
        """Open records the user may see with at least one breached SLA clock (home page count)."""
        query = (select(Ticket.id).join(SlaClock, SlaClock.ticket_id == Ticket.id)
                 .where(SlaClock.state == "breached", Ticket.closed_at.is_(None)).distinct())
        query = self.services.records.visible(user, query)
        return int(self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    def clocks(self, user: User, number: str) -> list[dict[str, Any]]:
        ticket = self.services.records.get(user, number)
        found = self.ticket_clocks(ticket)
        if not found:
            raise NotFound(f"{number} has no SLA clocks", details={"number": number})
        return found

    def ticket_clocks(self, ticket: Ticket) -> list[dict[str, Any]]:
        """The clocks of a record the caller may see, evaluated now (response first); [] when no
        SLA applies (a change, a record without a priority yet)."""
        rows = self.refresh(ticket)
        return [{"name": r.name, "target_seconds": r.target_seconds, "elapsed_seconds": r.elapsed_seconds,
                 "paused_seconds": r.paused_seconds, "due_at": r.due_at, "warning_at": r.warning_at,
                 "breached_at": r.breached_at, "state": r.state} for r in sorted(rows, key=lambda r: r.name != "response")]
