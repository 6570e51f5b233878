"""Out of office: a user away from one instant until another names a delegate, who takes the tasks
assigned to the user by name meanwhile (an approval, a line manager's sign-off, a requester's
confirmation), as ServiceNow's delegates take their principal's approvals. Work of a group's
queue is not handed: the group's other members pick it up.

- **Who.** Everyone signed in sets their own absence (``/users/me/away``); admins set
  anyone's (sick leave) and auditors read it. The delegate is an active user, not the user
  themselves, not a read-only auditor, and holds each of the user's working roles
  (``STAND_IN_ROLES``): an approver stands in for an approver, not a requester for one.
- **When.** From ``from`` (now, unless later) until ``until``: after the start, not past, within
  :data:`MAX_AWAY_DAYS` of it (of now, for a start typed in the past: it holds from now). An absence is one: setting another replaces it.
- **What moves.** While it is in force, each ready task assigned to the user by name becomes the
  delegate's (``assigned_user``), naming whom it came from (``delegated_from``), as it opens
  (``InstanceRunner.save``) or, for those open already, when the absence starts (the sweep, or at
  once when it is set). The delegate hears of each. Not a task the delegate may not do:
  separation of duties leaves them out of it, or they hold (or cast) another vote of the same
  round: it stays with the user, and the absence lists it as kept with the reason.
- **Coming back.** When the absence ends (its ``until``, or cleared), the tasks still open go back
  to the user, who is told how many; a leaver's stay with the delegate (nobody else could do them).
  A new delegate takes over what the old one had. A delegate who may no longer stand in
  (:func:`why_not_stand_in`: deactivated, or a role lost since) gives back what they had at the next
  sweep and takes nothing new. Tasks done meanwhile stay done, by the delegate; a handed task an
  admin or agent reassigns is theirs to place (``TaskService.hand_over`` drops its hand-over).
- **No chains.** A task handed to a delegate who is away too stays with the delegate.
- Every move is audited (``task_delegated``, ``task_returned``), as are the absences
  (``user_away_set``, ``user_away_cleared``, ``user_away_ended``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from app.db import begin_write
from app.errors import ValidationFailed
from app.languages import Content, Text
from app.models import HumanTask, Role, TaskStatus, User

from . import policy
from .forms import decision_fields_of, rfc3339, typed_time
from .records import in_instant_range

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from . import Services

log = logging.getLogger(__name__)

#: The longest absence taken, from its start.
MAX_AWAY_DAYS = 366
#: The roles a delegate must hold if the user does: who stands in does the same kind of work.
STAND_IN_ROLES = (Role.AGENT, Role.APPROVER, Role.PROCESS_OWNER)
EVENT_HANDED = "task.delegated"
EVENT_RETURNED = "task.returned"
EVENT_STAND_IN = "away.delegate"
#: Why a task stays with its user during the absence.
KEPT_EXCLUDED = "separation of duties leaves the delegate out of this task"
KEPT_ONE_VOTE = "the delegate holds or cast another vote of this round: one vote each"
SELF = "must be someone else"
#: Why a delegate may not stand in, as an admin is told ({name}: theirs; {roles}: the roles missing,
#: comma-separated). Templates, so that the pages say them again in their language (app/web/user_pages.py).
NO_USER = "no user {name}"
DEACTIVATED = "{name} is deactivated"
READ_ONLY = "{name} reads tasks but does not work on them"
MISSING_ROLES = "{name} does not hold the role {roles} that the work needs"
#: What anyone but an admin is told of a delegate who may not be theirs, whatever the rule.
NOT_A_STAND_IN = ("cannot stand in for you: name an active user who works tasks and holds each of your working roles "
                  "(agent, approver, process owner)")
#: What the mail of a handed approval ends with (the words of "Approval needed").
REPLY_NOTE = Text("To decide by e-mail, reply with APPROVE or REJECT as the first word, and your reason after it.")
#: How many users one sweep looks at.
SWEEP_USERS = 100


def holds_another(session: Session, *, instance_id: int, bpmn_id: str, since: datetime, user_id: int,
                  username: str, except_id: int | None = None) -> bool:
    """Whether the user already has a task of the element ``bpmn_id`` of the instance in the round
    that opened at ``since``: one ready that they hold (by name, by claim, or handed to their
    delegate for their absence: it comes back to them) or one they completed (a vote cast). A
    round's parallel tasks open together (at one instant: ``InstanceRunner.save``), so this round is
    what opened with or after ``since``; an earlier round's votes are older."""
    query = select(HumanTask.id).where(
        HumanTask.instance_id == instance_id, HumanTask.bpmn_id == bpmn_id, HumanTask.created_at >= since,
        or_(and_(HumanTask.state == TaskStatus.READY,
                 or_(HumanTask.assigned_user == username, HumanTask.claimed_by_id == user_id,
                     HumanTask.delegated_from == username)),
            and_(HumanTask.state == TaskStatus.COMPLETED, HumanTask.completed_by_id == user_id)))
    if except_id is not None:
        query = query.where(HumanTask.id != except_id)
    return session.scalar(query.limit(1)) is not None


def why_not_stand_in(delegate: User, person: User) -> str | None:
    """Why ``delegate`` may not take ``person``'s tasks (None: they may): deactivated, a read-only
    auditor, or without one of the person's working roles (``STAND_IN_ROLES``). Checked when the
    absence is set and again whenever tasks move: a delegate who lost a role since stands in no more."""
    if not delegate.active:
        return DEACTIVATED.format(name=delegate.username)
    if policy.is_read_only(delegate):
        return READ_ONLY.format(name=delegate.username)
    missing = [role.value for role in STAND_IN_ROLES if person.has_role(role) and not delegate.has_role(role)]
    if missing:
        return MISSING_ROLES.format(name=delegate.username, roles=", ".join(missing))
    return None


def _names(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"username": user.username, "display_name": user.display_name}


@dataclass
class Moves:
    """What one look at a user's absence moved."""

    handed: list[HumanTask] = field(default_factory=list)
    returned: list[HumanTask] = field(default_factory=list)


class AwayService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.session = services.session
        self.audit = services.audit
        self.clock = services.runtime.clock

    # -- who -----------------------------------------------------------------------------------
    def owner(self, actor: User, username: str, action: str, *, change: bool) -> User:
        """Whose absence ``username`` names for ``actor`` (``UserService.addressed``): their own, or
        anyone's for an admin to change (``change``) and an admin or auditor to read."""
        return self.services.users.addressed(actor, username, action, admin=change)

    # -- reading -------------------------------------------------------------------------------
    def described(self, user: User) -> dict[str, Any]:
        """The user's absence as the API and the pages show it: set or not, in force now, from,
        until, the delegate, the tasks handed to the delegate and those kept with the reason."""
        now = self.clock.now()
        delegate = user.delegate if user.delegate_id is not None else None
        out: dict[str, Any] = {
            "username": user.username, "away": user.away_until is not None,
            "in_force": self._delegate_now(user, now) is not None,
            "from": user.away_from, "until": user.away_until, "delegate": _names(delegate), "handed": [], "kept": []}
        if user.away_until is None:
            return out
        handed = self.session.scalars(select(HumanTask).where(
            HumanTask.state == TaskStatus.READY, HumanTask.delegated_from == user.username).order_by(HumanTask.id))
        out["handed"] = self.services.users.task_refs(handed)
        if out["in_force"] and delegate is not None:
            kept = [(task, reason) for task in self._waiting_on(user) if (reason := self._why_kept(delegate, task))]
            refs = self.services.users.task_refs(task for task, _reason in kept)  # their numbers in one query
            out["kept"] = [{**ref, "reason": reason} for ref, (_task, reason) in zip(refs, kept, strict=True)]
        return out

    def _delegate_now(self, user: User, now: datetime) -> User | None:
        """Who takes the user's tasks now: their delegate while the absence holds and the delegate
        may work tasks; None otherwise."""
        if not user.away_at(now):
            return None
        delegate = user.delegate
        return delegate if delegate is not None and why_not_stand_in(delegate, user) is None else None

    # -- changing ------------------------------------------------------------------------------
    def set_away(self, actor: User, username: str, values: Mapping[str, Any]) -> User:
        """Set (or replace) ``username``'s absence from ``values``: ``delegate`` (a username),
        ``from`` (optional: now), ``until``. 422 naming the field for bad input; audited
        (``user_away_set``, with what it replaced); the tasks move at once."""
        user = self.owner(actor, username, "set_away", change=True)
        now = self.clock.now()
        errors: dict[str, list[str]] = {}
        delegate = self._delegate_named(user, values.get("delegate"), errors, detailed=policy.is_admin(actor))
        starts = values.get("from") or now
        ends = values.get("until")
        for key, moment in (("from", starts), ("until", ends)):
            if not isinstance(moment, datetime) or moment.tzinfo is None:
                errors[key] = ["is required" if moment is None else "must be a date-time with a time zone"]
            elif in_instant_range(moment) is None:
                errors[key] = ["must be in the years 1900 to 8999"]
        if isinstance(starts, datetime) and isinstance(ends, datetime) and not errors.keys() & {"from", "until"}:
            if ends <= now:
                errors["until"] = ["is past: an absence that is over hands nothing on"]
            elif ends <= starts:
                errors["until"] = ["must be after the start"]
            elif ends - max(starts, now) > timedelta(days=MAX_AWAY_DAYS):  # it holds from now at the earliest
                errors["until"] = [f"must be within {MAX_AWAY_DAYS} days of the start"]
        if errors:
            raise ValidationFailed("the absence is not valid", details={"fields": errors})
        assert delegate is not None and isinstance(starts, datetime) and isinstance(ends, datetime)
        before = self._audited(user)
        user.away_from = max(starts, now).astimezone(timezone.utc)
        user.away_until = ends.astimezone(timezone.utc)
        told_before = user.delegate_id == delegate.id and before["until"] is not None
        user.delegate = delegate
        self.session.flush()
        self.audit.record("user_away_set", actor, payload={**self._audited(user), "before": before})
        if not told_before or before["until"] != self._audited(user)["until"]:
            self._tell_stand_in(user, delegate)
        self.apply(user, actor)
        return user

    def clear(self, actor: User, username: str) -> User:
        """End ``username``'s absence now (audited ``user_away_cleared`` if there was one): the
        tasks handed on come back."""
        user = self.owner(actor, username, "clear_away", change=True)
        if user.away_until is None:
            return user
        before = self._audited(user)
        self._forget(user)
        self.audit.record("user_away_cleared", actor, payload={**before})
        self.apply(user, actor)
        return user

    def _delegate_named(self, user: User, name: Any, errors: dict[str, list[str]], *, detailed: bool) -> User | None:
        """The user ``name`` names as ``user``'s delegate, or None with the reason in ``errors``. Only
        an admin, who reads the directory anyway, is told which rule refused: anyone else reads one
        reason for every name that cannot stand in for them, so that its refusals tell apart no
        unknown, deactivated or differently placed names (as the reassign form tells an agent,
        security review). A name that can stand in is taken, and its holder told and the change
        audited: a probe that succeeds is seen."""
        if not isinstance(name, str) or not name.strip():
            errors["delegate"] = ["is required" if name in (None, "") else "must be a username"]
            return None
        delegate = self.services.users.find(name.strip())
        problem = None
        if delegate is None:
            problem = NO_USER.format(name=name.strip())
        elif delegate.id == user.id:
            problem = SELF
        else:
            problem = why_not_stand_in(delegate, user)
        if problem:
            errors["delegate"] = [problem if detailed or problem == SELF else NOT_A_STAND_IN]
            return None
        return delegate

    @staticmethod
    def _audited(user: User) -> dict[str, Any]:
        return {"username": user.username, "delegate": user.delegate.username if user.delegate is not None else None,
                "from": rfc3339(user.away_from) if user.away_from else None,
                "until": rfc3339(user.away_until) if user.away_until else None}

    @staticmethod
    def _forget(user: User) -> None:
        user.away_from = user.away_until = None
        user.delegate = None

    # -- moving tasks --------------------------------------------------------------------------
    def _waiting_on(self, user: User) -> list[HumanTask]:
        return list(self.session.scalars(select(HumanTask).where(
            HumanTask.state == TaskStatus.READY, HumanTask.assigned_user == user.username,
            HumanTask.delegated_from.is_(None)).order_by(HumanTask.id)))

    def _why_kept(self, delegate: User, task: HumanTask) -> str | None:
        if policy.excludes(task, delegate.username):
            return KEPT_EXCLUDED
        if holds_another(self.session, instance_id=task.instance_id, bpmn_id=task.bpmn_id, since=task.created_at,
                         user_id=delegate.id, username=delegate.username, except_id=task.id):
            return KEPT_ONE_VOTE
        return None

    def apply(self, user: User, actor: User | None = None) -> Moves:
        """Bring the user's tasks in line with their absence now: those handed to a delegate who no
        longer stands in come back, and, while it holds, those assigned to the user by name go to
        the delegate (but those :meth:`_why_kept` keeps). Audited; the people are told."""
        now = self.clock.now()
        delegate = self._delegate_now(user, now)
        moves = Moves()
        actor_name = None if actor is not None else "scheduler"
        for task in self.session.scalars(select(HumanTask).where(
                HumanTask.state == TaskStatus.READY, HumanTask.delegated_from == user.username).order_by(HumanTask.id)):
            if delegate is not None and task.assigned_user == delegate.username:
                continue
            holder = task.assigned_user
            back = user.active
            if back:
                task.assigned_user = user.username
                if task.claimed_by_id is not None and task.claimed_by_id != user.id:
                    task.claimed_by = None
            task.delegated_from = None
            task.instance.updated_at = now  # a racing completion that read the old holder loses
            self.audit.record("task_returned", actor, actor_name=actor_name, instance_id=task.instance_id,
                              task_id=task.id, payload={"bpmn_id": task.bpmn_id, "from": holder, "to": user.username,
                                                        "kept_by_delegate": not back})
            if back:
                moves.returned.append(task)
        if delegate is not None:
            for task in self._waiting_on(user):
                if self._why_kept(delegate, task):
                    continue
                task.assigned_user = delegate.username
                task.delegated_from = user.username
                if task.claimed_by_id is not None:
                    task.claimed_by = None
                task.instance.updated_at = now
                self.audit.record("task_delegated", actor, actor_name=actor_name, instance_id=task.instance_id,
                                  task_id=task.id, payload={"bpmn_id": task.bpmn_id, "from": user.username,
                                                            "to": delegate.username,
                                                            "until": rfc3339(user.away_until) if user.away_until else None})
                moves.handed.append(task)
        self.session.flush()
        if moves.handed and delegate is not None:
            self._tell_handed(user, delegate, moves.handed)
        # a task that came back only to go on to a new delegate is not back with the user
        moves.returned = [task for task in moves.returned if task.assigned_user == user.username]
        if moves.returned:
            self._tell_returned(user, moves.returned)
        return moves

    def sweep(self, limit: int = SWEEP_USERS) -> int:
        """Start and end the absences due: hand the open tasks of the users away now to their
        delegates, bring back those of absences that ended (and forget those, audited
        ``user_away_ended``) or whose delegate may no longer stand in. Only the users with
        something to look at (an absence ended; one in force with a task waiting on them by name;
        tasks handed for them), all of them, ``limit`` a transaction in user id order: more than
        ``limit`` absences in force starve nobody. A batch that fails is rolled back and logged, and
        the next goes on (its users are looked at again by the next sweep). Returns how many tasks
        moved."""
        session = self.session
        ready = HumanTask.state == TaskStatus.READY
        waiting = select(HumanTask.id).where(ready, HumanTask.assigned_user == User.username,
                                             HumanTask.delegated_from.is_(None)).exists()
        handed = select(HumanTask.id).where(ready, HumanTask.delegated_from == User.username).exists()
        moved, after = 0, 0
        while True:
            begin_write(session)
            now = self.clock.now()
            due = select(User).where(User.id > after, or_(
                and_(User.away_until.is_not(None), User.away_until <= now),
                and_(User.away_at_clause(now), waiting),
                handed)).order_by(User.id).limit(limit)
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True, of=User)
            users = list(session.scalars(due))
            try:
                for user in users:
                    if user.away_until is not None and user.away_until <= now:
                        ended = self._audited(user)
                        self._forget(user)
                        self.audit.record("user_away_ended", None, actor_name="scheduler", payload=ended)
                    moves = self.apply(user)
                    moved += len(moves.handed) + len(moves.returned)
                session.commit()
            except SQLAlchemyError:
                session.rollback()
                log.exception("out of office: the users after id %s were not looked at; the next sweep tries again", after)
            if len(users) < limit:
                return moved
            after = users[-1].id

    # -- telling -------------------------------------------------------------------------------
    def _label(self, task: HumanTask) -> str:
        ticket = self.services.runner.ticket_for(task.instance)
        return f"{ticket.number}: {ticket.title}" if ticket else f"{task.instance.process_id} #{task.instance_id}"

    def _tell_stand_in(self, user: User, delegate: User) -> None:
        notifier = self.services.notifications
        assert user.away_from is not None and user.away_until is not None
        said = {"name": user.display_name or user.username, "from": shown_utc(user.away_from),
                "until": shown_utc(user.away_until)}
        notifier.notify([delegate], EVENT_STAND_IN, Text("You stand in for %(name)s from %(from)s until %(until)s", **said),
                        Text("%(name)s is away from %(from)s until %(until)s. Meanwhile the tasks assigned to them by "
                             "name come to you: %(link)s", link=notifier.url("/tasks"), **said),
                        payload={"username": user.username, "from": rfc3339(user.away_from),
                                 "until": rfc3339(user.away_until)})

    def _tell_handed(self, user: User, delegate: User, tasks: list[HumanTask]) -> None:
        notifier = self.services.notifications
        until = shown_utc(user.away_until) if user.away_until else ""
        for task in tasks:
            said = {"task": Content(task.process_id, task.name), "label": self._label(task),
                    "name": user.display_name or user.username, "until": until}
            notifier.notify([delegate], EVENT_HANDED, Text("Handed to you: %(task)s (%(label)s)", **said),
                            Text("%(name)s is away until %(until)s: %(task)s for %(label)s is waiting for you "
                                 "meanwhile: %(link)s", link=notifier.link(task_id=task.id), **said),
                            ticket=self.services.runner.ticket_for(task.instance),
                            # a reply to it decides an approval, as one to "Approval needed" does (app/services/mail.py)
                            mail_note=REPLY_NOTE if self._decided_by_reply(task) else None,
                            payload={"task_id": task.id, "task": task.bpmn_id, "from": user.username})

    def _decided_by_reply(self, task: HumanTask) -> bool:
        """Whether the task is an approval whose form takes a yes or a no (its mail says how to reply)."""
        from .execution import is_approval  # the runner imports this module's rules of who stands in

        if decision_fields_of(task.instance.definition.forms, task.form) is None:
            return False
        runner = self.services.runner
        run = runner.load(task.instance)
        try:
            return is_approval(run.task_view(task.engine_task_id))
        finally:
            runner.release(task.instance, run)

    def _tell_returned(self, user: User, tasks: list[HumanTask]) -> None:
        notifier = self.services.notifications
        notifier.notify([user], EVENT_RETURNED,
                        Text("Your tasks are back with you (%(count)d)", count=len(tasks)),
                        Text("Your absence has ended: the tasks your delegate did not finish (%(count)d) are waiting "
                             "for you again: %(link)s", count=len(tasks), link=notifier.url("/tasks")),
                        payload={"task_ids": [task.id for task in tasks]})


def shown_utc(moment: datetime) -> str:
    """An instant as the notices and the pages say it: as typed on the forms, and that it is UTC."""
    return typed_time(moment) + " UTC"

