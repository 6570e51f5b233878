"""Loading a stored instance into the engine and writing the result back, in one place.

Both the instance and the task services go through here, so the rules about what is stored after
an engine step (state, status, data snapshot, error, next timer, human task rows, audit events)
exist once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, lazyload

from app.clock import Clock
from app.db import TRANSACTION_SCOPED, insert_row, insert_rows, loaded_with, write_changes
from app.engine import (
    APPROVAL_YES,
    EngineFailure,
    Operations,
    ProcessEngine,
    ScriptIdentity,
    SpecBundle,
    StateVersionError,
    UserTaskView,
    WorkflowRun,
)
from app.errors import Conflict
from app.languages import Content, Text
from app.models import HumanTask, InstanceStatus, ProcessDefinition, ProcessInstance, TaskStatus, Ticket, User

from . import policy
from .audit import AuditLog, json_safe
from .away import holds_another, why_not_stand_in
from .forms import decision_fields_of
from .notifications import STARTED_FOR_EVENT, NotificationService, Person, Recipient
from .records import RESOLVED_TOLD, RecordService

OperationsFactory = Callable[[ProcessInstance, User | None], Operations]


class _Unread:
    """No person read yet (``InstanceRunner._announce`` reads them)."""


_UNREAD = _Unread()


class _Opening(NamedTuple):
    """A task a step opens, as ``InstanceRunner.save`` decided its row."""

    view: UserTaskView
    assigned_user: str | None
    candidate_group: str | None
    holder: User | None  # the record's holder it opens claimed by
    named: Recipient | None  # its assigned user (or their stand-in) as read for the announcement
    delegated_from: str | None  # whom it was assigned to before their stand-in took it


class RecordHook(Protocol):
    """Told of a record's changes after an engine step: ``actor`` did the step (None: the engine,
    or a caller that does not say; the SLA clocks of a catalog request count only a person's)."""

    def __call__(self, ticket: Ticket, changes: dict[str, Any], actor: User | None = None, /) -> None: ...


#: ``session.info`` key: instance id -> its READY human task rows as the last save in this session
#: left them. The answer to a start or completion lists them without another query (and, after the
#: commit, without another transaction). Dropped on rollback (app/db.py).
OPEN_TASKS = TRANSACTION_SCOPED + "open_tasks"


#: ``session.info`` key: instance id -> its record, looked up once per transaction.
TICKETS = TRANSACTION_SCOPED + "tickets"

#: ``session.info`` key: instance id -> (run cache, run) to park when the transaction commits.
PARK_ON_COMMIT = TRANSACTION_SCOPED + "park_on_commit"


@event.listens_for(Session, "after_commit")
def _park_committed_runs(session: Session) -> None:
    for instance_id, (cache, run) in session.info.pop(PARK_ON_COMMIT, {}).items():
        cache.park(instance_id, run)


#: An instance's READY human task rows. The instance is at hand: no joins to it, its definition
#: and its people per row. Built once (a reused statement keeps its cache key).
_READY_ROWS = (select(HumanTask)
               .where(HumanTask.instance_id == bindparam("instance_id"), HumanTask.state == TaskStatus.READY)
               .options(lazyload(HumanTask.instance), lazyload(HumanTask.claimed_by)))


def saved_open_tasks(session: Session, instance_id: int) -> list[HumanTask] | None:
    """The READY rows the last save of ``instance_id`` in this session left, or None if it made none."""
    rows = session.info.get(OPEN_TASKS, {}).get(instance_id)
    if rows is None:
        return None
    return [row for row in rows if row.state == TaskStatus.READY]


def task_assignment(view: UserTaskView) -> tuple[str | None, str | None]:
    """(assigned user, candidate group) from the task's assignedUserVar / candidateGroupVar."""
    def read(prop: str) -> str | None:
        variable = view.properties.get(prop)
        value = view.data.get(variable) if variable else None
        return str(value)[:128] if value not in (None, "") else None

    return read("assignedUserVar"), read("candidateGroupVar")


def is_approval(view: UserTaskView) -> bool:
    """Whether a new task is announced as an approval (``approval.needed``, "Approval needed: ...")
    rather than as work (``task.assigned``, "New task: ..."): the task's ``approval`` property
    (true/yes/1 or false/no/0, checked at deploy) when it has one, else whether its id or name
    speaks of approving.
    (Separation of duties, ``excludeUsersVars``, says nothing about it: the implementer of a change
    is kept apart from its requester too.)"""
    flag = view.properties.get("approval")
    if flag is not None:
        return str(flag).strip().lower() in APPROVAL_YES
    return "approv" in f"{view.bpmn_id} {view.name}".lower()


class InstanceRunner:
    def __init__(self, session: Session, engine: ProcessEngine, audit: AuditLog, clock: Clock,
                 records: RecordService, operations: OperationsFactory, notifications: NotificationService,
                 on_record_change: RecordHook | None = None) -> None:
        self.session = session
        self.engine = engine
        self.audit = audit
        self.clock = clock
        self.records = records
        self.operations = operations
        self.notifications = notifications
        self.on_record_change = on_record_change

    def ticket_for(self, instance: ProcessInstance) -> Ticket | None:
        """The instance's record (None for processes without one), looked up once per transaction."""
        if not instance.definition.record_mapping:
            return None
        tickets = self.session.info.setdefault(TICKETS, {})
        if tickets.get(instance.id) is None:
            preloaded, ticket = loaded_with(instance, "record")  # read with the request's task
            tickets[instance.id] = ticket if preloaded else self.records.for_instance(instance.id)
        return tickets[instance.id]  # type: ignore[no-any-return]

    def bundle(self, definition: ProcessDefinition) -> SpecBundle:
        return self.engine.spec(definition.spec_key, lambda: definition.spec_json)

    def identity(self, user: User | None, instance: ProcessInstance | None, *,
                 starter_user: User | None = None) -> ScriptIdentity:
        """Who acts and who started (``starter_user`` before the instance exists: the requester
        somebody starts it for), read (with their groups) only if a script asks."""
        def starter() -> dict[str, Any] | None:
            if instance is not None and instance.started_by_id is not None:
                stored = self.session.get(User, instance.started_by_id)
                return stored.as_script_dict() if stored else None
            initiator = starter_user or user
            return initiator.as_script_dict() if initiator is not None else None

        return ScriptIdentity(current_user=user.as_script_dict if user is not None else None, initiator=starter)

    def start(self, definition: ProcessDefinition, data: Mapping[str, Any], user: User, *,
              requester: User | None = None) -> tuple[ProcessInstance, WorkflowRun]:
        """Create the instance row (and its record, when the process declares one), then run it.
        ``requester``: the person ``user`` starts it for (a caller whose incident an agent logs),
        who is then its starter, as if they had started it, and the record's requester; the record
        names ``user`` as who opened it."""
        starter = requester or user
        now = self.clock.now()
        data = dict(data)
        mapping = definition.record_mapping
        number = self.records.allocate_number(mapping["kind"]) if mapping else None
        if number:
            data["record_number"] = number
        instance = insert_row(self.session, ProcessInstance, {
            "definition_id": definition.id,
            "process_id": definition.process_id,
            "version": definition.version,
            "status": InstanceStatus.RUNNING,
            "state": "{}",
            "serializer_version": WorkflowRun.serializer_version,
            "data": {},
            "error": None,
            "started_by_id": starter.id,
            "created_at": now,
            "updated_at": now,
            "next_timer_at": None,
            "timer_claimed_until": None,
            "timer_claimed_by": None,
            "lock_version": 1,
        }, definition=definition, started_by=starter)
        if mapping and number:
            ticket = self.records.open_record(mapping["kind"], number, starter, data, instance_id=instance.id,
                                              opened_by=user if requester is not None else None)
            self.session.info.setdefault(TICKETS, {})[instance.id] = ticket
        run = self.engine.start(self.bundle(definition), data, self.identity(user, None, starter_user=requester),
                                self.operations(instance, user))
        return instance, run

    def tell_started_for(self, instance: ProcessInstance, requester: User, by: User) -> None:
        """Tell ``requester`` that ``by`` started ``instance`` for them: where its record is, which
        is theirs now (a caller hears the number of the incident the agent logged)."""
        ticket = self.ticket_for(instance)
        name = by.display_name or by.username
        if ticket is None:  # a process without a record: its name, as its pages show it
            process = Content(instance.process_id, instance.definition.name or instance.process_id)
            self.notifications.notify([requester], STARTED_FOR_EVENT,
                                      Text("%(name)s started %(process)s for you", name=name, process=process),
                                      Text("%(name)s started %(process)s for you.", name=name, process=process),
                                      payload={"by": by.username})
            return
        said = {"number": ticket.number, "title": ticket.title, "name": name, "link": self.notifications.link(ticket)}
        self.notifications.notify(
            [requester], STARTED_FOR_EVENT, Text("%(number)s was logged for you: %(title)s", **said),
            Text("%(name)s logged %(number)s (%(title)s) for you. Follow it, add to it or answer questions "
                 "about it here: %(link)s", **said), ticket=ticket, payload={"by": by.username})

    def load(self, instance: ProcessInstance, actor: User | None = None) -> WorkflowRun:
        """The instance's run: the one a previous request parked if it matches the stored state
        exactly (app/engine RunCache), else deserialized from the state."""
        bundle = self.bundle(instance.definition)
        cached = None
        if instance.serializer_version == WorkflowRun.serializer_version:
            cached = self.engine.runs.take(instance.id, instance.state, bundle)
        if cached is not None:
            cached.operations = self.operations(instance, actor)
            if instance.error:
                cached.failure = EngineFailure(**instance.error)
            return cached
        try:
            run = self.engine.restore(bundle, instance.state, instance.serializer_version,
                                      self.operations(instance, actor))
        except StateVersionError as err:
            raise Conflict(err.message, code="unsupported_state_version",
                           details={"serializer_version": instance.serializer_version}) from None
        if instance.error and run.failure is None:
            # A limit breach leaves no task in ERROR; the stored error keeps the instance failed.
            run.failure = EngineFailure(**instance.error)
        return run

    def release(self, instance: ProcessInstance, run: WorkflowRun) -> None:
        """A run this unit of work only read: park it again for the next request (kept only if
        it still holds what it last dumped). One that was advanced and saved is parked when its
        transaction commits; see ``save``."""
        self.engine.runs.park(instance.id, run)

    def _hand_to_stand_ins(self, instance: ProcessInstance, opening: list[_Opening], values: list[dict[str, Any]],
                           stand_ins: list[Recipient | None], opened_at: datetime) -> None:
        """Give the new tasks assigned to someone away to who stands in for them (app/services/away.py),
        in place in ``opening`` and ``values``: not one whose separation of duties leaves the
        delegate out, nor one of an element of which the delegate has another task of this round
        (one opening now, theirs or handed to them already, or one of the instance's ready or done
        since now): one vote each."""
        for index, stand_in in enumerate(stand_ins):
            if stand_in is None:
                continue
            row = values[index]
            if policy.exclusion_mark(stand_in.username) in (row["excluded_users"] or ""):
                continue
            person, delegate = self.records.named_user(row["assigned_user"]), self.session.get(User, stand_in.id)
            if person is None or delegate is None or why_not_stand_in(delegate, person) is not None:
                continue  # a delegate who lost a role (or their sight) since the absence was set
            if any(other is not row and other["bpmn_id"] == row["bpmn_id"]
                   and stand_in.username in (other["assigned_user"], other["delegated_from"]) for other in values):
                continue
            if holds_another(self.session, instance_id=instance.id, bpmn_id=row["bpmn_id"], since=opened_at,
                             user_id=stand_in.id, username=stand_in.username):
                continue
            row["delegated_from"], row["assigned_user"] = row["assigned_user"], stand_in.username
            opening[index] = opening[index]._replace(assigned_user=stand_in.username, named=stand_in,
                                                     delegated_from=row["delegated_from"])

    @staticmethod
    def _waits_on(task: HumanTask, instance: ProcessInstance, person: User) -> bool:
        """The new task waits on ``person`` by name, or, outside any lane, as the instance's starter."""
        if task.assigned_user:
            return task.assigned_user == person.username
        return not task.candidate_group and not task.lane and instance.started_by_id == person.id

    def _returning_holder(self, view: UserTaskView, assigned_user: str | None, queue: str | None,
                          excluded: set[str]) -> User | None:
        """Who a new task of a group's queue opens claimed by: the user its ``claimForUserVar``
        names (an incident's assignee, when the requester reopens it or work resumes after a
        pending wait), if they may still work it: active, not a read-only auditor, a member of the
        task's group, not left out by its separation of duties. None otherwise (the task waits
        in the queue as usual). The record keeps its assignee, and the work goes back to them,
        as a reopened ticket does in a service desk; the group may still take it over."""
        variable = view.properties.get("claimForUserVar")
        name = view.data.get(variable) if variable else None
        if not isinstance(name, str) or not name or assigned_user or not queue or name in excluded:
            return None
        user = self.records.named_user(name)
        if user is None or not policy.works_tasks(user) or queue not in policy.queue_groups(user):
            return None
        return user

    def _announce(self, task: HumanTask, view: UserTaskView, instance: ProcessInstance, actor: User | None,
                  holder: User | None = None, named: Recipient | None | _Unread = _UNREAD) -> None:
        """Tell the people who may work a new task: its assigned user, else its group or lane.
        Not whoever's step opened it, who is at the desk already, unless it waits on them by
        name: a change manager whose assessment opens her own CAB vote hears of it as the other
        voters do (by email too, where approvers answer). A task that opens claimed by the
        record's holder (``holder``) is theirs: only they hear of it. ``named``: the assigned
        user as read already (None: nobody active of that name)."""
        recipients: list[Person]
        if holder is not None:
            recipients = [holder]
        elif task.assigned_user and not isinstance(named, _Unread):
            recipients = [named] if named is not None and not policy.excludes(task, named.username) else []
        elif task.assigned_user or task.candidate_group or task.lane:
            recipients = self.notifications.task_queue(task)  # without those the task excludes
        else:
            starter = instance.started_by
            recipients = [starter] if starter is not None and not policy.excludes(task, starter.username) else []
        ticket = self.ticket_for(instance)
        told = self.session.info.get(RESOLVED_TOLD, {}).get(ticket.id) if ticket is not None else None
        if told is not None:  # the requester just heard it is resolved, and to check and confirm
            recipients = [person for person in recipients if person.id != told]
        if not recipients:
            return
        approval = is_approval(view)
        label = f"{ticket.number}: {ticket.title}" if ticket else f"{instance.process_id} #{instance.id}"
        event = "approval.needed" if approval else "task.assigned"
        # the task's name as the task list shows it to each reader (its process's translation)
        said = {"task": Content(task.process_id, view.name), "label": label}
        subject = (Text("Approval needed: %(task)s (%(label)s)", **said) if approval
                   else Text("New task: %(task)s (%(label)s)", **said))
        body = Text("%(task)s for %(label)s is waiting for you: %(link)s", link=self.notifications.link(task_id=task.id),
                    **said)
        # a reply to an approval's mail decides it (app/services/mail.py): the mail says how
        by_mail = approval and decision_fields_of(instance.definition.forms, task.form) is not None
        self.notifications.notify(recipients, event, subject, body, ticket=ticket,
                                  mail_note=Text("To decide by e-mail, reply with APPROVE or REJECT as the first word, "
                                                 "and your reason after it.") if by_mail else None,
                                  payload={"task_id": task.id, "task": view.bpmn_id},
                                  exclude=None if actor is not None and task.assigned_user == actor.username else actor)

    def announce(self, task: HumanTask, view: UserTaskView, instance: ProcessInstance, actor: User | None) -> None:
        """``_announce`` for a task that stays open but waits on other people now (an instance
        moved to a version that puts it in another queue)."""
        self._announce(task, view, instance, actor)

    def outside_changes(self, instance: ProcessInstance, data: Mapping[str, Any]) -> dict[str, Any]:
        """The record's values the platform changed outside the process (``RecordService.outside_changes``)."""
        ticket = self.ticket_for(instance)
        mapping = instance.definition.record_mapping
        if ticket is None or not mapping:
            return {}
        return self.records.outside_changes(ticket, mapping, data)

    def save(self, instance: ProcessInstance, run: WorkflowRun, actor: User | None,
             shown: Mapping[str, Any] | None = None) -> None:
        """Write the run back and bring human task rows in line with the engine's READY tasks.

        ``shown``: variables whose values the step started from other than the saved data's (the
        record's ``outside_changes``): the record's sync compares with those."""
        previous_status, previous_error, previous_data = instance.status, instance.error, instance.data
        status, data, views = run.settled()
        instance.state = run.dump()
        instance.serializer_version = run.serializer_version
        instance.status = status
        instance.data = json_safe(data)
        instance.error = run.failure.to_dict() if run.failure else None
        instance.next_timer_at = run.next_timer_at()
        instance.updated_at = self.clock.now()

        ready = {view.id: view for view in views} if instance.status == InstanceStatus.RUNNING else {}
        # The rows read with the task this request works on, if so (used once: this save may
        # change them), else a query.
        preloaded, rows = loaded_with(instance, "open_tasks")
        if preloaded:
            self.session.expire(instance, ["open_tasks"])
        else:
            with self.session.no_autoflush:
                rows = list(self.session.scalars(_READY_ROWS, {"instance_id": instance.id}))
        # Nothing is written before this read: the instance and the task just completed go out
        # below with the new rows. So a row this step already closed still reads READY from the
        # database; its state in memory is the truth.
        existing = {row.engine_task_id: row for row in rows if row.state == TaskStatus.READY}
        still_open: list[HumanTask] = []
        for engine_id, row in existing.items():
            if engine_id in ready:
                still_open.append(row)
            else:
                row.state = TaskStatus.CANCELLED
                self.audit.record("task_cancelled", actor, instance_id=instance.id, task_id=row.id,
                                  payload={"bpmn_id": row.bpmn_id})
        opening: list[_Opening] = []
        values: list[dict[str, Any]] = []
        stand_ins: list[Recipient | None] = []
        opened_at = self.clock.now()  # one instant for the round: "one vote each" finds a round by it
        for engine_id, view in ready.items():
            if engine_id in existing:
                continue
            assigned_user, candidate_group = task_assignment(view)
            excluded = policy.excluded_users(view.properties, view.data)
            holder = self._returning_holder(view, assigned_user, candidate_group or view.lane, excluded)
            named = stand_in = None
            if assigned_user:
                # read here for the announcement too (one query): whether they are away, and who stands in
                named, stand_in = self.notifications.named_with_stand_in(assigned_user)
            stand_ins.append(stand_in)
            opening.append(_Opening(view, assigned_user, candidate_group, holder, named, None))
            values.append({
                "instance_id": instance.id,
                "engine_task_id": engine_id,
                "bpmn_id": view.bpmn_id,
                "name": view.name,
                "lane": view.lane,
                # The deployed process, also for tasks inside its subprocesses: inbox filters use it.
                "process_id": instance.process_id,
                "form": view.form,
                "ui_form": view.ui_form,
                "state": TaskStatus.READY,
                "assigned_user": assigned_user,
                "candidate_group": candidate_group,
                "claimed_by_id": holder.id if holder is not None else None,
                "completed_by_id": None,
                "created_at": opened_at,
                "completed_at": None,
                "reminded_at": None,
                "reminder_count": 0,
                "excluded_users": policy.excluded_text(excluded),
                "delegated_from": None,
            })
        if any(stand_ins):
            self._hand_to_stand_ins(instance, opening, values, stand_ins, opened_at)
        # The instance row as one plain UPDATE (version-checked), the rows this step closed as
        # one plain UPDATE each, the new rows as one INSERT that returns them (no unit of work).
        write_changes(self.session, instance)
        for row in rows:  # the task this step completed is among them
            write_changes(self.session, row)
        created = insert_rows(self.session, HumanTask, values)
        for row, (view, assigned_user, candidate_group, holder, _named, delegated_from) in zip(created, opening, strict=True):
            still_open.append(row)
            self.audit.record("task_ready", None, instance_id=instance.id, task_id=row.id,
                              payload={"bpmn_id": view.bpmn_id, "name": view.name, "lane": view.lane,
                                       "assigned_user": delegated_from or assigned_user, "candidate_group": candidate_group},
                              actor_name="engine")
            if delegated_from is not None:
                self.audit.record("task_delegated", None, instance_id=instance.id, task_id=row.id, actor_name="engine",
                                  payload={"bpmn_id": view.bpmn_id, "from": delegated_from, "to": assigned_user})
            if holder is not None:
                self.audit.record("task_claimed", None, instance_id=instance.id, task_id=row.id,
                                  payload={"bpmn_id": view.bpmn_id, "claimed_for": holder.username,
                                           "reason": "returned to the record's holder"},
                                  actor_name="engine")
        mapping = instance.definition.record_mapping
        if mapping:
            ticket = self.ticket_for(instance)
            if ticket is not None:
                first = not previous_data
                before = None if first else {**previous_data, **shown} if shown else previous_data
                changes = self.records.sync(ticket, mapping, instance.data, actor, before)
                if self.on_record_change is not None and (changes or first):
                    self.on_record_change(ticket, changes, actor)
                patch = self.records.details_patch(ticket)
                if not write_changes(self.session, ticket, {"details": patch} if patch else None) and patch:
                    self.records.keep_stored_details(ticket, patch)  # the flush writes it whole
                self.records.tell_resolved(ticket, lambda requester: next(
                    (row for row in created if self._waits_on(row, instance, requester)), None),
                    answerable=lambda row: decision_fields_of(instance.definition.forms, row.form) is not None)
        # after the record's sync, so that a message about a new task names the record as this step
        # left it (a catalog request's first approval named a record without its title)
        for row, (view, _assigned, _group, holder, named, _from) in zip(created, opening, strict=True):
            self._announce(row, view, instance, actor, holder, named)
        if instance.status != previous_status or instance.error != previous_error:
            if instance.status == InstanceStatus.ERROR:
                self.audit.record("instance_error", actor, instance_id=instance.id,
                                  payload=instance.error or {}, actor_name="engine" if actor is None else None)
            elif instance.status in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED):
                self.audit.record(f"instance_{instance.status}", actor, instance_id=instance.id, payload={},
                                  actor_name="engine" if actor is None else None)
        self.session.flush()
        self.session.info.setdefault(OPEN_TASKS, {})[instance.id] = sorted(still_open, key=lambda r: r.id)
        # Parked for the next request on this instance once (and only if) this state is committed.
        self.session.info.setdefault(PARK_ON_COMMIT, {})[instance.id] = (self.engine.runs, run)
