"""Use cases on process instances and their human tasks."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, and_, bindparam, false, func, inspect, nulls_last, or_, select
from sqlalchemy.orm import Session, aliased, joinedload, lazyload

from app.clock import Clock
from app.db import COUNT_CAP, TRANSACTION_SCOPED, count_capped, get_by_id, set_reference
from app.engine import MessageNotExpected, TaskNotFound, TaskNotReady, UserTaskView, WorkflowRun, drawing_only
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import (
    AuditEvent,
    DefinitionFile,
    HumanTask,
    InstanceStatus,
    ProcessDefinition,
    ProcessInstance,
    Role,
    TaskStatus,
    Ticket,
    User,
    UserRole,
)
from app.models.record import NO_PRIORITY_RANK, PRIORITY_RANKS

from . import policy
from .audit import REFUSED_EVENT, AuditLog, json_safe
from .away import holds_another
from .bounded import BoundedCache
from .content_texts import TRANSLATIONS
from .definitions import DefinitionService
from .execution import TICKETS, InstanceRunner, is_approval, saved_open_tasks
from .forms import (
    START_FORM_SUFFIX,
    START_UI_SUFFIX,
    FormMessage,
    bidi_control_message,
    checked_start_form,
    form_fields,
    resolve_form,
    validate_start_data,
    validate_submission,
)
from .instructions import render_instructions
from .linked_updates import sent_by_the_platform
from .records import task_reaches, without_variables
from .start_rights import START_RIGHTS, starter_form
from .users import group_members, offered_groups, person_named, users_with_words
from .worklog import EVENTS as WORK_EVENTS
from .worklog import may_read as may_read_work

MAX_START_DATA_KEYS = 200
#: Where a start names the person it is for (:meth:`InstanceService.caller_for`): the API's body
#: key, the start and catalog pages' field.
ON_BEHALF_FIELD = "on_behalf_of"
#: How many people "Requested for" suggests at most (:meth:`InstanceService.callers`), and the
#: fewest characters typed before it suggests any.
CALLER_SUGGESTIONS = 8
CALLER_MIN_TEXT = 2

T = TypeVar("T")
StartValidator = Callable[[User, dict[str, Any]], dict[str, Any]]
#: A check of data a person sends (``InstanceService.data_checks``): the process version and the data.
DataCheck = Callable[[ProcessDefinition, Mapping[str, Any]], None]
#: ``(schema, ui_schema)`` of the form a running instance's start data was entered on, from that
#: data (e.g. the ordered catalog item's request form), or None.
StartFormLookup = Callable[[Mapping[str, Any]], tuple[dict[str, Any], dict[str, Any] | None] | None]
#: Widgets whose values a page does not repeat back (a secret, or a value nobody was shown).
_UNSHOWN_WIDGETS = frozenset({"hidden", "password"})

#: Built once (a reused statement keeps its cache key): the READY tasks of some instances, oldest first.
_OPEN_TASKS = select(HumanTask).where(HumanTask.instance_id.in_(bindparam("instance_ids", expanding=True)),
                                      HumanTask.state == TaskStatus.READY).order_by(HumanTask.id)
#: Built once: a reused statement keeps its cache key (every start reads it).
_START_FORM_FILES = select(DefinitionFile.name, DefinitionFile.sha256).where(
    or_(DefinitionFile.name == bindparam("form"), DefinitionFile.name == bindparam("ui")))


class _StartForms:
    """Parsed and checked start forms by content digest, shared by every session (few, small)."""

    def __init__(self) -> None:
        self._forms: BoundedCache[tuple[str, str | None], tuple[dict[str, Any], dict[str, Any] | None]] = BoundedCache()

    def get(self, session: Session, process_id: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """``(schema, ui_schema)`` of the process's deployed start form, or None if it has none.

        Raises ValidationFailed (code ``invalid_definition``, naming the file) if the deployed
        file is not a form: deploys do not check start forms, which no task names.
        """
        form_name, ui_name = process_id + START_FORM_SUFFIX, process_id + START_UI_SUFFIX
        digests = dict(session.execute(_START_FORM_FILES, {"form": form_name, "ui": ui_name}).tuples().all())
        if form_name not in digests:
            return None
        key = (digests[form_name], digests.get(ui_name))
        cached = self._forms.get(key)
        if cached is not None:
            return cached
        contents = dict(session.execute(select(DefinitionFile.name, DefinitionFile.content)
                                        .where(DefinitionFile.name.in_(list(digests)))).tuples().all())
        # Deploys check start forms (DefinitionService.deploy); checked again for files stored before.
        schema, ui = checked_start_form(form_name, contents[form_name], ui_name, contents.get(ui_name))
        self._forms.put(key, (schema, ui))
        return schema, ui


START_FORMS = _StartForms()


@lru_cache(maxsize=64)
def _drawing(definition_id: int, xml: str) -> str:
    """``drawing_only`` of a definition's XML, once per definition (a version's XML never changes)."""
    return drawing_only(xml)


def _start_keys_checked(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """``data`` as a dict whose keys may start a process: at most :data:`MAX_START_DATA_KEYS`,
    identifiers not starting with "_"; ValidationFailed naming them otherwise."""
    given = dict(data or {})
    if len(given) > MAX_START_DATA_KEYS:
        raise ValidationFailed("too many data fields", details={"fields": {"data": [f"at most {MAX_START_DATA_KEYS} keys"]}})
    bad = [k for k in given if not isinstance(k, str) or not k.isidentifier() or k.startswith("_")]
    if bad:
        raise ValidationFailed("data keys must be identifiers not starting with '_'", details={"fields": {f"data.{k}": ["invalid name"] for k in bad}})
    return given


class InstanceService:
    def __init__(self, session: Session, runner: InstanceRunner, definitions: DefinitionService, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.runner = runner
        self.definitions = definitions
        self.audit = audit
        self.clock = clock
        #: Per-process start contracts beyond the diagram (e.g. a catalog item's request form):
        #: each returns the cleaned start data or raises ValidationFailed / NotFound.
        self.start_validators: dict[str, StartValidator] = {}
        #: Per-process start forms beyond ``<process_id>.start.json``, for showing what a running
        #: instance was started with (e.g. the catalog item's request form for catalog_request).
        self.start_forms: dict[str, StartFormLookup] = {}
        #: Checks of the data a person starts an instance with or completes a task with, after its
        #: form's: each raises ValidationFailed naming the variable (e.g. a record's ``ci`` naming a
        #: retired configuration item: app/services/cmdb.py).
        self.data_checks: list[DataCheck] = []

    # -- queries ------------------------------------------------------------------------------

    def start_form(self, process_id: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """``(schema, ui_schema)`` of the form an instance of ``process_id`` holding ``data`` was
        started with: the one :attr:`start_forms` finds, else the process's start form; None when
        there is none (or the stored start form is broken: pages showing it still work)."""
        lookup = self.start_forms.get(process_id)
        if lookup is not None:
            return lookup(data)
        try:
            return START_FORMS.get(self.session, process_id)
        except ValidationFailed:
            return None

    def start_form_for(self, user: User, process_id: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """``(schema, ui_schema)`` of the process's start form as ``user`` fills it in (hidden
        fields read-only but for staff: :func:`~app.services.start_rights.starter_form`), or None
        when it has none. Raises ValidationFailed if the deployed form is broken."""
        form = START_FORMS.get(self.session, process_id)
        if form is None:
            return None
        schema, ui_schema = starter_form(form[0], form[1], user)
        # choices from the directory (options_from_group:NAME, options_from_groups:FILTER) as it is
        # now, not as cached
        return resolve_form(schema, ui_schema, {}, self.group_members, self.offered_groups)[0], ui_schema

    def group_members(self, group: str) -> list[tuple[str, str]]:
        """What a form's ``options_from_group:NAME`` offers: :func:`~app.services.users.group_members`."""
        return group_members(self.session, group)

    def offered_groups(self, which: str) -> list[tuple[str, str | None]]:
        """What a form's ``options_from_groups:FILTER`` offers: :func:`~app.services.users.offered_groups`."""
        return offered_groups(self.session, which)

    def startable(self, user: User, process_ids: Sequence[str]) -> list[str]:
        """Those of ``process_ids`` the user may start (their declared start roles, else any
        starter role), in order: for offering links and buttons; :meth:`require_start` is the
        check that refuses. A process whose access file is broken is offered to nobody."""
        if not policy.may_start(user):
            return []
        rights = START_RIGHTS.get_many(self.session, process_ids)
        return [process_id for process_id in process_ids if policy.may_start(user, rights[process_id])]

    def require_start(self, user: User, process_id: str) -> None:
        """Refuse (PermissionDenied, audited) a user who may not start ``process_id``: one
        without a starter role, or without one of the roles its ``<process_id>.access.json``
        declares. Raises ValidationFailed if that file is broken."""
        if not policy.may_start(user):
            self._refuse(user, "start", reason="no starter role", process_id=process_id)
            raise PermissionDenied("your roles do not allow starting processes")
        roles = START_RIGHTS.get(self.session, process_id)
        if not policy.may_start(user, roles):
            self._refuse(user, "start", reason="not a starter of this process", process_id=process_id)
            raise PermissionDenied(f"your roles do not allow starting {process_id}",
                                   details={"process_id": process_id, "start_roles": list(roles or ())})

    def caller_for(self, user: User, process_id: str, named: Any) -> User | None:
        """The person ``user`` starts ``process_id`` for, as ``named`` (a user name, any letter
        case, or an active user's e-mail address: ``users.person_named``) names them: a service desk agent logging a caller's incident, or ordering a catalog
        item for a colleague. The caller becomes the starter and the record's requester, as if
        they had started it themselves: their confirmation task, their notices, their record.
        None when ``named`` names nobody (None or blank) or ``user`` themselves.

        Raises PermissionDenied (audited) when ``user`` may not start for others
        (``policy.starts_for_others``: agents and admins), ValidationFailed naming
        ``ON_BEHALF_FIELD`` when the name is no active user's or that user could not start the
        process themselves (its start roles: a requester is never made the requester of a process
        only the desk's staff raise)."""
        if named is None or (isinstance(named, str) and not named.strip()):
            return None
        if not policy.starts_for_others(user):
            self._refuse(user, "start", reason="not allowed on behalf of others", process_id=process_id)
            raise PermissionDenied("only service desk agents and admins start a process on somebody else's behalf",
                                   code="forbidden", details={"field": ON_BEHALF_FIELD})
        said = str(named).strip()[:255]
        caller = person_named(self.session, said)
        if caller is None or not caller.active:
            raise ValidationFailed("no such active user", details={"fields": {ON_BEHALF_FIELD: [
                FormMessage(f"{said}: no such active user", "no_active_user", value=said)]}})
        if caller.id == user.id:
            return None
        if not policy.may_start(caller, START_RIGHTS.get(self.session, process_id)):
            raise ValidationFailed(f"{caller.username} may not start {process_id}", details={"fields": {ON_BEHALF_FIELD: [
                FormMessage(f"{caller.username} may not start this process", "may_not_start", value=caller.username)]}})
        return caller

    def callers(self, user: User, process_id: str, text: str | None, limit: int = CALLER_SUGGESTIONS) -> list[dict[str, Any]]:
        """The people ``user`` (an agent or admin) may log ``process_id`` for whose username,
        display name or e-mail address holds each word of ``text``: what "Requested for" suggests
        as an agent types (at most ``limit``, by display name; username, display name, e-mail).

        Active users who could start the process themselves (:meth:`caller_for` takes no other),
        not ``user`` (for oneself the field stays empty). Nothing for fewer than
        ``CALLER_MIN_TEXT`` characters: a suggestion box is not a way to list the directory.
        Raises PermissionDenied (audited) like :meth:`caller_for` and :meth:`require_start`,
        NotFound for a process that is not deployed."""
        if not policy.starts_for_others(user):
            self._refuse(user, "suggest_callers", reason="not allowed on behalf of others", process_id=process_id)
            raise PermissionDenied("only service desk agents and admins start a process on somebody else's behalf",
                                   code="forbidden")
        self.require_start(user, process_id)
        self.definitions.latest(process_id)
        text = (text or "").strip()
        if len(text) < CALLER_MIN_TEXT:
            return []
        query = users_with_words(select(User), text).where(User.active.is_(True), User.id != user.id)
        start_roles = START_RIGHTS.get(self.session, process_id)
        for roles in (policy.STARTER_ROLES, start_roles):
            if roles is not None:
                query = query.where(select(UserRole.id).where(
                    UserRole.user_id == User.id, UserRole.role.in_([str(r) for r in roles])).exists())
        rows = self.session.execute(
            query.with_only_columns(User.username, User.display_name, User.email)
            .order_by(func.lower(User.display_name), func.lower(User.username)).limit(limit)).all()
        return [{"username": r.username, "display_name": r.display_name, "email": r.email} for r in rows]

    def caller_and(self, user: User, process_id: str, named: Any, check: Callable[[], T]) -> tuple[User | None, T]:
        """:meth:`caller_for` and ``check()`` (the form's own validation), both asked: when both
        refuse, one ValidationFailed names the fields of both (an agent sees at once that the
        caller's name and the description are wrong, not one after the other)."""
        try:
            caller = self.caller_for(user, process_id, named)
        except ValidationFailed as refused:
            try:
                check()
            except ValidationFailed as also:
                fields = {**(refused.details.get("fields") or {}), **(also.details.get("fields") or {})}
                raise ValidationFailed(also.message, details={**also.details, "fields": fields}) from None
            raise
        return caller, check()

    def get(self, user: User, instance_id: int, action: str = "read") -> ProcessInstance:
        """The instance if the user may see it; NotFound (audited) otherwise."""
        instance = self.session.get(ProcessInstance, instance_id)
        if instance is None:
            raise NotFound(f"no instance {instance_id}")
        if not self.may_see(user, instance):
            self._refuse(user, action, instance_id=instance_id, reason="not visible")
            raise NotFound(f"no instance {instance_id}")
        return instance

    @staticmethod
    def _tasks_of(user: User) -> Any:
        """The ids of the instances with a task that reaches the user (``records.task_reaches``: in
        their queue, or claimed or completed by them): its participants see an instance even
        outside its lanes, as they see its record."""
        return select(HumanTask.instance_id).where(task_reaches(user))

    def may_see(self, user: User, instance: ProcessInstance) -> bool:
        """The user sees the instance: by policy (starter, staff of its lanes), as one of its
        participants (a task of it assigned to, claimed or completed by them), or as someone who
        acts on its record (``RecordService.may_see`` without ``watched``: the desk's staff, who
        see and cancel every record, its requester, assignee and group). A watcher reads the
        record, not the process behind it."""
        if policy.may_see_instance(user, instance) or self.session.scalar(
                self._tasks_of(user).where(HumanTask.instance_id == instance.id).limit(1)) is not None:
            return True
        ticket = self.runner.ticket_for(instance)
        return ticket is not None and self.runner.records.may_see(user, ticket, watched=False)

    def list_instances(self, user: User, *, process_id: str | None, status: str | None, page: int, per_page: int) -> tuple[list[ProcessInstance], int]:
        query: Select[Any] = select(ProcessInstance)
        if process_id:
            query = query.where(ProcessInstance.process_id == process_id)
        if status:
            if status not in {s.value for s in InstanceStatus}:
                raise ValidationFailed("unknown status", details={"fields": {"status": [f"must be one of: {', '.join(s.value for s in InstanceStatus)}"]}})
            query = query.where(ProcessInstance.status == status)
        if not (policy.is_admin(user) or user.has_role("auditor")):
            groups = policy.lane_groups(user)
            # Definitions are few (versions of a few dozen processes): filter their lanes here
            # rather than with dialect-specific JSON operators.
            visible_defs = [
                def_id
                for def_id, lanes in self.session.execute(select(ProcessDefinition.id, ProcessDefinition.lanes))
                if set(lanes or []) & groups
            ]
            records = self.runner.records.acted_on(user, select(Ticket.instance_id).where(Ticket.instance_id.is_not(None)))
            query = query.where(or_(ProcessInstance.started_by_id == user.id, ProcessInstance.definition_id.in_(visible_defs),
                                    ProcessInstance.id.in_(self._tasks_of(user)), ProcessInstance.id.in_(records)))
        total, _exact = count_capped(self.session, query)  # "1000+" beyond COUNT_CAP
        rows = list(self.session.scalars(query.order_by(ProcessInstance.id.desc()).offset((page - 1) * per_page).limit(per_page)))
        return rows, total

    def open_tasks(self, instance: ProcessInstance) -> list[HumanTask]:
        """The instance's READY tasks, oldest first: :meth:`open_tasks_of` for one instance."""
        return self.open_tasks_of([instance])[instance.id]

    def open_tasks_of(self, instances: Iterable[ProcessInstance]) -> dict[int, list[HumanTask]]:
        """The READY tasks of each instance by instance id, oldest first (an empty list for none),
        in one query for all of them (a page of instances costs one query, not one per instance):
        the rows this transaction's save of an instance left are taken as they are, no query for them."""
        found: dict[int, list[HumanTask]] = {}
        wanted: list[int] = []
        for instance in instances:
            saved = saved_open_tasks(self.session, instance.id)
            found[instance.id] = saved if saved is not None else []
            if saved is None:
                wanted.append(instance.id)
        if wanted:
            for task in self.session.scalars(_OPEN_TASKS, {"instance_ids": wanted}):
                found[task.instance_id].append(task)  # in id order within each instance
        return found

    def diagram(self, instance: ProcessInstance, reader: User) -> dict[str, Any]:
        """The instance's diagram and where it stands, for drawing it with bpmn-js.

        ``xml``: the BPMN file of the instance's own version, for a ``reader`` who may not read
        process definitions (``policy.may_read_definitions``: requesters, approvers) without its
        rules (``drawing_only``: scripts, conditions, properties); ``completed``: BPMN ids of the
        elements the engine completed (oldest first, each once; finished loop rounds are compacted
        away, so a reopened incident shows its current round); ``current``: BPMN ids of the tasks
        waiting for people now; ``failed``: the element an instance in error stopped at.
        Visibility is the caller's: check it first (``RecordService.get`` or :meth:`get`).
        """
        run = self.runner.load(instance)
        failed = (instance.error or {}).get("element_id")
        definition = instance.definition
        xml = definition.bpmn_xml if policy.may_read_definitions(reader) else _drawing(definition.id, definition.bpmn_xml)
        out = {"xml": xml,
               "completed": list(dict.fromkeys(run.history_path())),
               "current": sorted({view.bpmn_id for view in run.user_tasks()}),
               "failed": [failed] if failed else []}
        self.runner.release(instance, run)
        return out

    def tasks_by_id(self, instance_id: int) -> dict[int, HumanTask]:
        return {t.id: t for t in self.session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id))}

    def history(self, user: User, instance_id: int, event_type: str | None = None) -> list[AuditEvent]:
        """The instance's audit events (of ``event_type`` only, if given), oldest first: whoever sees
        an instance reads its history, but for the refused attempts on it, which only auditors and
        admins read (a requester would otherwise learn which colleagues tried to open their record),
        and the desk's time worked, which only who reads it sees (app/services/worklog.py)."""
        self.get(user, instance_id, action="read_history")
        query = select(AuditEvent).where(AuditEvent.instance_id == instance_id)
        if event_type is not None:
            query = query.where(AuditEvent.event_type == event_type)
        if not (policy.is_admin(user) or user.has_role(Role.AUDITOR)):
            query = query.where(AuditEvent.event_type != REFUSED_EVENT)
        if not may_read_work(user):  # the desk's time worked and its notes are its own
            query = query.where(AuditEvent.event_type.not_in(WORK_EVENTS))
        return list(self.session.scalars(query.order_by(AuditEvent.seq)))

    # -- commands -----------------------------------------------------------------------------

    def start_process(self, user: User, process_id: str, data: Mapping[str, Any] | None, *,
                      as_system: bool = False, validated: bool = False, on_behalf_of: Any = None,
                      caller: User | None = None) -> ProcessInstance:
        """Start the latest version of ``process_id`` with ``data``; the engine advances to its first wait.

        The start contract: a validator registered in :attr:`start_validators` for the process
        (e.g. the catalog's, which checks the item's own request form), else the process's start
        form (``<process_id>.start.json`` among the deployed forms), if it has one: the data is
        validated like a task's form submission (:func:`~app.services.forms.validate_start_data`)
        and only its declared fields are kept. Nothing is stored when the data is refused.

        Who may start it: :meth:`require_start` (the process's declared start roles); a start
        form's hidden fields take only their defaults from anyone but staff (:meth:`start_form_for`).

        ``as_system``: started by a diagram's service task on the user's behalf (no role check,
        no start contract: the diagram built the data).
        ``validated``: the caller already applied the process's start contract.
        ``on_behalf_of``: the user name of the person it is started for (:meth:`caller_for`), or
        ``caller``, when the caller already read it so.

        Raises PermissionDenied, NotFound (no such process), ValidationFailed (``details.fields``
        names each bad field).
        """
        if not as_system:
            self.require_start(user, process_id)
        definition = self.definitions.latest(process_id)
        given = _start_keys_checked(data)

        def contract() -> dict[str, Any]:
            checked = given
            if not (as_system or validated):
                checked = self._through_start_contract(user, definition, checked)
            return checked

        if caller is None and not as_system:
            caller, started_with = self.caller_and(user, process_id, on_behalf_of, contract)
        else:
            started_with = contract()
        instance, run = self.runner.start(definition, json_safe(started_with), user, requester=caller)
        payload = {"process_id": process_id, "version": definition.version, "data": json_safe(started_with)}
        if caller is not None:
            payload["on_behalf_of"] = caller.username
        self.audit.record("instance_started", user, instance_id=instance.id, payload=payload)
        self.runner.save(instance, run, user)
        if caller is not None:
            self.runner.tell_started_for(instance, caller, user)
        return instance

    def _through_start_contract(self, user: User, definition: ProcessDefinition, given: dict[str, Any],
                                at: datetime | None = None) -> dict[str, Any]:
        """``given`` as the process's start contract keeps it for ``user`` (its validator, else its
        start form), then through :attr:`data_checks`; ValidationFailed naming each bad field."""
        process_id = definition.process_id
        checked = given
        validator = self.start_validators.get(process_id)
        if validator is not None:
            checked = validator(user, checked)
        else:
            start_form = self.start_form_for(user, process_id)
            if start_form is not None:
                now = at or self.clock.now()
                checked = validate_start_data(start_form[0], start_form[1], checked, today=now.date(), now=now)
        for check in self.data_checks:
            check(definition, checked)
        return checked

    def check_start(self, user: User, process_id: str, data: Mapping[str, Any] | None,
                    on_behalf_of: Any = None, *, at: datetime | None = None) -> tuple[User | None, dict[str, Any]]:
        """What :meth:`start_process` would start ``process_id`` with for ``user`` at ``at`` (default
        now: the start form's "now" and "today" are then's), and for whom (:meth:`caller_for`),
        without starting it: the same refusals (PermissionDenied, NotFound, ValidationFailed naming
        each field), nothing stored. A recurring request is checked so when it is made, as of its
        first start (app/services/recurring.py); a process's own validator (the catalog's) checks as
        of now."""
        self.require_start(user, process_id)
        definition = self.definitions.latest(process_id)
        given = _start_keys_checked(data)
        caller, checked = self.caller_and(user, process_id, on_behalf_of,
                                          lambda: self._through_start_contract(user, definition, given, at))
        return caller, json_safe(checked)

    def send_message(self, user: User, instance_id: int, name: str, payload: Any) -> ProcessInstance:
        instance = self.get(user, instance_id, action="send_message")
        if not policy.may_send_message(user, instance):
            self._refuse(user, "send_message", instance_id=instance_id, reason="not allowed")
            raise PermissionDenied("you may not send messages to this instance")
        if sent_by_the_platform(name):
            self._refuse(user, "send_message", instance_id=instance_id, reason=f"message {name} is the platform's")
            raise PermissionDenied(
                f"message '{name}' is delivered by the platform only (from a requester's comment or a linked "
                "record's change); comment on the record instead", code="platform_message", details={"field": "name"})
        self._require_running(instance)
        run = self.runner.load(instance, user)
        try:
            run.send_message(name, json_safe(payload), self.runner.identity(user, instance))
        except MessageNotExpected as err:
            raise Conflict(err.message, code="message_not_expected", details={"name": name}) from None
        self.audit.record("message_received", user, instance_id=instance.id, payload={"name": name, "payload": json_safe(payload)})
        self.runner.save(instance, run, user)
        return instance

    def cancel(self, user: User, instance_id: int, reason: str | None = None) -> ProcessInstance:
        """Cancel the instance: its open tasks close, and its record (if any) is closed as
        ``cancelled``, its SLA clocks stopped and its people told (``RecordService.cancel``), the
        people its open tasks waited on (assigned by name, or claimed) among them.

        Who may: ``policy.may_cancel`` (staff, or the requester before work started). The staff
        (``policy.cancels_as_staff``) say why they cancel a record: its people are told.
        Raises NotFound (not visible), PermissionDenied (audited), Conflict (already over),
        ValidationFailed naming ``reason`` when the staff give none for a record, or it holds
        bidirectional control characters (it is told to the record's people, as any form's text).
        """
        reason = (reason or "").strip() or None
        if reason and (bidi := bidi_control_message(reason)) is not None:
            raise ValidationFailed("the reason holds bidirectional control characters", details={"fields": {"reason": [bidi]}})
        instance = self.get(user, instance_id, action="cancel")
        if instance.status in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED):
            # Said before the permission: who may cancel a record depends on its status, and a
            # finished one's is past withdrawing; "already over" is the answer that helps.
            raise Conflict(f"instance is already {instance.status}", details={"status": instance.status})
        ticket = self.runner.ticket_for(instance)
        open_tasks = self.open_tasks(instance) if ticket is not None else []
        allowed, why = policy.may_cancel(user, instance, ticket, open_tasks)
        if not allowed:
            self._refuse(user, "cancel", instance_id=instance_id, reason="not allowed")
            raise PermissionDenied(why)
        if ticket is not None and reason is None and policy.cancels_as_staff(user):
            raise ValidationFailed("say why the record is cancelled", details={"fields": {"reason": [
                "required when the desk cancels a record: its people are told why"]}})
        # whoever a task waited on (an approver by name, a claimant) hears that it will not come
        waiting = [t.claimed_by for t in open_tasks if t.claimed_by is not None] + [
            self.runner.notifications.user(t.assigned_user) for t in open_tasks if t.assigned_user]
        run = self.runner.load(instance, user)
        run.cancel()
        run.failure = None
        self.audit.record("instance_cancel_requested", user, instance_id=instance.id, payload={"reason": reason})
        self.runner.save(instance, run, user)
        if ticket is not None:
            changes = self.runner.records.cancel(ticket, user, reason, waiting=waiting)
            if changes and self.runner.on_record_change is not None:
                self.runner.on_record_change(ticket, changes)  # the SLA clocks stop on the closed record
        return instance

    def retry(self, user: User, instance_id: int, corrections: Mapping[str, Any] | None) -> ProcessInstance:
        """Run a failed instance again (admins): its failed tasks go back to READY with
        ``corrections`` applied to their data. An instance the timer sweep stopped because its
        timers kept killing their sweeper (``timers_stuck``: nothing in the diagram failed, its
        state is as it was) simply runs again: the next sweep fires its timers; ``corrections``
        are refused there (ValidationFailed naming ``data``): there is no failed task to apply
        them to."""
        instance = self.get(user, instance_id, action="retry")
        if not policy.is_admin(user):
            self._refuse(user, "retry", instance_id=instance_id, reason="admin only")
            raise PermissionDenied("only admins may retry failed instances")
        if instance.status != InstanceStatus.ERROR:
            raise Conflict("only instances in error can be retried", details={"status": instance.status})
        if (instance.error or {}).get("error_type") == TIMERS_STUCK:
            if corrections:
                raise ValidationFailed("nothing failed to correct", details={"fields": {"data": [
                    "no task failed: the instance's timers fire again as they are"]}})
            self.audit.record("instance_retried", user, instance_id=instance.id, payload={"data": {}})
            instance.status, instance.error = InstanceStatus.RUNNING, None
            return instance
        run = self.runner.load(instance, user)
        self.audit.record("instance_retried", user, instance_id=instance.id, payload={"data": json_safe(dict(corrections or {}))})
        run.retry(json_safe(dict(corrections or {})), self.runner.identity(user, instance))
        instance.error = None
        self.runner.save(instance, run, user)
        return instance

    def _require_running(self, instance: ProcessInstance) -> None:
        if instance.status != InstanceStatus.RUNNING:
            raise Conflict(f"instance is {instance.status}", code="instance_not_running", details={"status": instance.status})

    def _refuse(self, user: User, action: str, *, instance_id: int | None = None, task_id: int | None = None, reason: str, **extra: Any) -> None:
        self.audit.refuse(user, action, instance_id=instance_id, task_id=task_id, reason=reason, **extra)


#: The error of an instance whose timer claims kept dying (app/services/timers.py).
TIMERS_STUCK = "timers_stuck"

#: The longest reason a cancellation keeps (the API's ``CancelIn``, the record page's form).
MAX_CANCEL_REASON = 2000

#: The task a request works on, with its instance's open task rows and its record: a step then
#: needs no query of its own for them (InstanceRunner.save and ticket_for use them once). Built
#: once (a reused statement keeps its cache key).
_WITH_INSTANCE = joinedload(HumanTask.instance)
_TASK_FOR_STEP = select(HumanTask).where(HumanTask.id == bindparam("ident")).options(
    _WITH_INSTANCE.joinedload(ProcessInstance.open_tasks).options(lazyload(HumanTask.instance),
                                                                  lazyload(HumanTask.claimed_by)),
    _WITH_INSTANCE.joinedload(ProcessInstance.record).options(lazyload(Ticket.requester), lazyload(Ticket.assignee)),
)


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _dotted(data: Mapping[str, Any], name: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"`` (None where a level is missing)."""
    value: Any = data
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _choice_titles(choices: list[tuple[Any, str]], value: Any) -> str | None:
    """The form's titles of a chosen value (or of each of a list of them), None without any; the
    plain Yes / No of a boolean without titles of its own are left to the page's language."""
    if not choices or choices == [(True, "Yes"), (False, "No")]:
        return None
    titles = {repr(choice): title for choice, title in choices}
    picked = value if isinstance(value, list) else [value]
    found = [titles.get(repr(v)) for v in picked]
    return ", ".join(t if t is not None else str(v) for t, v in zip(found, picked, strict=True)) if any(found) else None


#: The orders of the task lists (``TaskService.list_tasks``' ``sort``): SLA due soonest first,
#: the record's most urgent priority first (its rank), or oldest first (the API's default).
TASK_SORTS = ("due", "priority", "age")

#: The rank of a task's record priority (``app.models.record.priority_rank``, stored with the
#: record); a task without a record ranks as one without a priority.
_RANK = func.coalesce(Ticket.priority_rank, NO_PRIORITY_RANK)
#: A listed task's record (at most one per instance: ticket.instance_id is unique).
_OF_TASK = Ticket.instance_id == HumanTask.instance_id
#: The orders of a short list, sorted whole: tasks without a due instant after those with one (NULL
#: sorts first on SQLite, last on PostgreSQL), oldest first within equal keys.
_WHOLE_ORDER = {"due": (nulls_last(Ticket.sla_due_at.asc()), HumanTask.id),
                "priority": (_RANK, nulls_last(Ticket.sla_due_at.asc()), HumanTask.id)}
#: A list up to this long is sorted whole (the count before it has just walked it); a longer one
#: is read in order through the records' indexes (``TaskService._sorted_tasks``).
SORT_WHOLE_MAX = COUNT_CAP
#: The records' order in a long list, per sort: that of the partial indexes ix_ticket_sla_due
#: (sla_due_at, instance_id) and ix_ticket_rank_sla_due (priority_rank, sla_due_at, instance_id).
_RECORD_KEYS = {"due": (Ticket.sla_due_at,), "priority": (Ticket.priority_rank, Ticket.sla_due_at)}
#: The order of a long list's tasks without a due instant (no record, or no running clock).
_UNDUE_ORDER = {"due": (HumanTask.id,), "priority": (_RANK, HumanTask.id)}
#: Where a task without a due instant sorts in the merge of a long list's two parts: after any instant.
_NO_DUE = datetime.max.replace(tzinfo=timezone.utc)
#: Built once (a reused statement keeps its cache key): the records of some instances, with SLA.
_RECORD_SLAS = select(Ticket.instance_id, Ticket.priority, Ticket.sla_due_at, Ticket.sla_warning_at).where(
    Ticket.instance_id.in_(bindparam("instance_ids", expanding=True)))
#: ``session.info`` key: the :class:`TaskSla` of the records of the instances this transaction looked
#: up (``TaskService.record_sla``), by instance id.
_KNOWN_SLAS = TRANSACTION_SCOPED + "record_slas"


class _Keyed(NamedTuple):
    """A listed task's place in a sorted list: its id, its record's priority rank and due instant."""

    id: int
    rank: int
    due_at: datetime | None

    def key(self) -> tuple[int, datetime, int]:
        """Its place in the "priority" order."""
        return self.rank, self.due_at or _NO_DUE, self.id


@dataclass(frozen=True)
class TaskSla:
    """What a task's record says about its urgency (``TaskService.task_slas``).

    ``priority``: the record's priority (None: no record, or none set). ``due_at``: the record's
    SLA due instant, the earliest of its running clocks' (in the past once breached; None: no
    record, or no running clock). ``state``, as of the clock's now: "breached" (``due_at``
    passed), "at_risk" (a running clock's warning instant passed, not breached), "on_track", or
    None without ``due_at``.
    """

    priority: str | None = None
    due_at: datetime | None = None
    state: str | None = None


def _task_sla(priority: str | None, due_at: datetime | None, warning_at: datetime | None, now: datetime) -> TaskSla:
    """A record's priority and stored SLA instants as a task shows them, the state as of ``now``."""
    if due_at is None:
        state = None
    elif due_at < now:  # breached once elapsed *exceeds* the target (sla_clock), not at it
        state = "breached"
    else:
        state = "at_risk" if warning_at is not None and warning_at <= now else "on_track"
    return TaskSla(priority, due_at, state)


#: Why someone may not reassign a task (``policy.may_reassign``).
REASSIGN_REFUSED = "only admins, and agents of the task's group for a task that waits for nobody by name, may reassign it"


class TaskService:
    def __init__(self, session: Session, runner: InstanceRunner, instances: InstanceService, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.runner = runner
        self.instances = instances
        self.audit = audit
        self.clock = clock

    def get(self, user: User, task_id: int, action: str = "read") -> HumanTask:
        task = get_by_id(self.session, HumanTask, task_id, _TASK_FOR_STEP)
        if task is None:
            raise NotFound(f"no task {task_id}")
        if not policy.may_see_task(user, task, task.instance):
            self.instances._refuse(user, action, instance_id=task.instance_id, task_id=task_id, reason="not visible")
            raise NotFound(f"no task {task_id}")
        return task

    def list_tasks(self, user: User, *, mine: bool, process_id: str | None, page: int, per_page: int,
                   sort: str = "age", assigned_in_queue: bool = True) -> tuple[list[HumanTask], int]:
        """One page of the ready tasks of the user's two inbox lists, and how many there are
        (counted up to ``COUNT_CAP``).

        ``mine=True``, "Mine": the tasks the user claimed, and the unclaimed ones assigned to them
        personally (assignedUserVar: waiting for them, nobody else may take them).
        ``mine=False``, the group queue: the unclaimed tasks the user may pick up, i.e. those in
        their queue by policy.is_candidate: a task personally assigned to them, else one of their
        groups' (candidate group, else lane), else, outside any lane, one of the instances they
        started. A task assigned to someone else is in no other member's queue; a claimed task
        leaves the queue (it is in its claimant's Mine). An unclaimed task assigned to the user is
        on both lists: the queue is everything they may pick up, Mine what waits for them. A task
        the user may not do (separation of duties: their own request's approval) is not in their
        queue (Mine still shows one assigned to them by name: the refusal then says why).
        ``assigned_in_queue=False`` leaves the tasks assigned to the user by name out of the group
        queue (the pages: there they are under Mine only, and a requester with one confirmation to
        give does not read "1" twice, once under a group she is not in).

        ``sort`` (one of ``TASK_SORTS``) orders the list, never what is on it: "age" (the default)
        oldest first; "due" by the SLA due instant of the task's record (``Ticket.sla_due_at``),
        soonest (most overdue) first, tasks without one (no record, or no running clock) last;
        "priority" by the rank of the record's priority (``Ticket.priority_rank``: P1 first, a
        change's high risk with P2, medium with P3, low with P4, other values after them and none
        last), then as "due". Ties go oldest first (task id), so pages neither repeat nor skip a task.
        Raises ValidationFailed naming ``sort`` for any other value. The page's priorities and due
        instants themselves: :meth:`task_slas`.

        Cost: none of the orders reads an SLA clock; each stops at the page where it can. "age"
        walks the ready tasks in id order. "due" and "priority" first count the list (as every
        order does, up to ``COUNT_CAP``); a list that short (``SORT_WHOLE_MAX``) is then sorted
        whole on its records' stored ``sla_due_at`` and ``priority_rank``. A longer one is read in
        order (:meth:`_sorted_tasks`): its tasks whose record has a due instant through the partial
        index of those records (ix_ticket_sla_due, ix_ticket_rank_sla_due: open work only, closed
        records have no due instant), then the page's rows by id. Its tasks without a due instant
        (changes, paused records, tasks without a record) are read by task id once the others run
        out ("due"), or, for "priority", sorted by rank when one of a smaller rank than the last
        task of the page may come before it (never when that task is a P1's).
        """
        if sort not in TASK_SORTS:
            raise ValidationFailed("unknown sort key", details={"fields": {"sort": [f"one of: {', '.join(TASK_SORTS)}"]}})
        query = select(HumanTask).join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id).where(HumanTask.state == TaskStatus.READY)
        if policy.is_read_only(user):
            query = query.where(false())  # a read-only auditor works no task (policy.outside_queue)
        elif mine:
            query = query.where(or_(HumanTask.claimed_by_id == user.id,
                                    HumanTask.claimed_by_id.is_(None) & (HumanTask.assigned_user == user.username)))
        else:
            groups = sorted(policy.queue_groups(user))
            # The same precedence as policy.is_candidate: assigned user, candidate group, lane, starter.
            query = query.where(
                HumanTask.claimed_by_id.is_(None),
                or_(
                    HumanTask.assigned_user == user.username if assigned_in_queue else false(),
                    HumanTask.assigned_user.is_(None) & HumanTask.candidate_group.in_(groups) if groups else false(),
                    HumanTask.assigned_user.is_(None) & HumanTask.candidate_group.is_(None)
                    & HumanTask.lane.in_(groups) if groups else false(),
                    HumanTask.assigned_user.is_(None) & HumanTask.candidate_group.is_(None)
                    & HumanTask.lane.is_(None) & (ProcessInstance.started_by_id == user.id),
                ),
                # Not a task they may not do (separation of duties): their own approval is not theirs to pick.
                or_(HumanTask.excluded_users.is_(None),
                    ~HumanTask.excluded_users.contains(policy.exclusion_mark(user.username), autoescape=True)),
            )
        if process_id:
            query = query.where(HumanTask.process_id == process_id)
        total, exact = count_capped(self.session, query)  # "1000+" beyond COUNT_CAP
        offset = (page - 1) * per_page
        if sort == "age":
            return list(self.session.scalars(query.order_by(HumanTask.id).offset(offset).limit(per_page))), total
        if exact and total <= SORT_WHOLE_MAX:
            return list(self.session.scalars(query.outerjoin(Ticket, _OF_TASK).order_by(*_WHOLE_ORDER[sort])
                                             .offset(offset).limit(per_page))), total
        ids = [row.id for row in self._sorted_tasks(query, sort, offset + per_page)[offset:]]
        if not ids:
            return [], total
        found = {task.id: task for task in self.session.scalars(select(HumanTask).where(HumanTask.id.in_(ids)))}
        return [found[task_id] for task_id in ids if task_id in found], total

    def _sorted_tasks(self, query: Select[Any], sort: str, count: int) -> list[_Keyed]:
        """The first ``count`` tasks of the (long) list ``query`` selects, in ``sort`` order ("due"
        or "priority"), as (id, rank, due instant); see :meth:`list_tasks`.

        The tasks whose record has a due instant come first (``_due_tasks``); those without one
        follow by task id ("due"), or take their place by rank ("priority": after the tasks with a
        due instant of the same rank)."""
        due = self._due_tasks(query, sort, count)
        bound: int | None = None
        if len(due) == count:
            if sort == "due":
                return due  # the page ends before the tasks without a due instant begin
            # Only a task without a due instant of a smaller rank than the last of these comes before it.
            bound = due[-1].rank
            if bound <= min(PRIORITY_RANKS.values()):
                return due
        undue = (query.with_only_columns(HumanTask.id, _RANK, Ticket.sla_due_at).outerjoin(Ticket, _OF_TASK)
                 .where(Ticket.sla_due_at.is_(None)))
        if bound is not None:
            undue = undue.where(_RANK < bound)
        rows = [_Keyed._make(row) for row in self.session.execute(
            undue.order_by(*_UNDUE_ORDER[sort]).limit(count - len(due) if sort == "due" else count))]
        if sort == "due":
            return due + rows  # every task with a due instant comes before every one without
        return list(heapq.merge(due, rows, key=_Keyed.key))[:count]

    def _due_tasks(self, query: Select[Any], sort: str, count: int) -> list[_Keyed]:
        """The first ``count`` tasks of the list ``query`` selects whose record has a due instant,
        in ``sort`` order, reading the records through their index in that order and stopping
        with the page, however long the list.

        The records' ready tasks are joined to them as the index yields them, and each is checked
        for being on the list by an ``EXISTS`` on its id. That shape keeps both databases walking
        the index: the ``EXISTS`` has an ``OFFSET 0`` so that PostgreSQL does not turn it into a
        join, which it would plan from statistics that cannot know that the records with a due
        instant are the ones with ready tasks (and then read all of both); SQLite, without
        statistics, would start from the ready tasks instead, unless the join is written as a
        LEFT JOIN, whose left side it always reads first (the ``EXISTS`` drops the rows without a
        task). PostgreSQL keeps the plain join: a LEFT JOIN would stop it from walking the index.
        """
        task = aliased(HumanTask)
        listed = query.with_only_columns(HumanTask.id).where(HumanTask.id == task.id).offset(0).exists()
        records_first = self.session.get_bind().dialect.name == "sqlite"
        statement = (select(task.id, Ticket.priority_rank, Ticket.sla_due_at).select_from(Ticket)
                     .join(task, and_(task.instance_id == Ticket.instance_id, task.state == TaskStatus.READY),
                           isouter=records_first)
                     .where(Ticket.sla_due_at.is_not(None), listed)
                     .order_by(*_RECORD_KEYS[sort], task.id).limit(count))
        return [_Keyed._make(row) for row in self.session.execute(statement)]

    def task_slas(self, tasks: Sequence[HumanTask]) -> dict[int, TaskSla]:
        """Each task's :class:`TaskSla` (its record's priority and SLA due instant, the state as of
        now) by task id, in one query for all of them; a task without a record gets an empty one."""
        found = self.record_slas({task.instance_id for task in tasks})
        return {task.id: found.get(task.instance_id, TaskSla()) for task in tasks}

    def record_slas(self, instance_ids: Iterable[int]) -> dict[int, TaskSla]:
        """The :class:`TaskSla` of the records of some instances (the state as of now) by instance
        id, in one query (none for no instance); an instance without a record is left out. Reads
        the record's stored ``sla_due_at`` and ``sla_warning_at``, never its clocks."""
        wanted = sorted(set(instance_ids))
        if not wanted:
            return {}
        now = self.clock.now()
        return {row.instance_id: _task_sla(row.priority, row.sla_due_at, row.sla_warning_at, now)
                for row in self.session.execute(_RECORD_SLAS, {"instance_ids": wanted})}

    def record_sla(self, instance_id: int) -> TaskSla:
        """The :class:`TaskSla` of an instance's record (an empty one without a record), for
        answers that show the tasks of one instance at a time (an instance, a record, a page of
        instances shown one by one).

        Looked up once per transaction together with those of every other instance the session
        holds (loaded and not yet looked up), in one query: a page of instances costs one query,
        not one per instance, nor per task. Read it for the answer, after the work: a record
        changed later in the same transaction is not seen."""
        known: dict[int, TaskSla] | None = self.session.info.get(_KNOWN_SLAS)
        if known is not None and instance_id in known:
            return known[instance_id]
        # The record the step just wrote is at hand (the runner's, as the step left it): no query.
        ticket = self.session.info.get(TICKETS, {}).get(instance_id)
        if ticket is not None and not inspect(ticket).expired_attributes & {"priority", "sla_due_at", "sla_warning_at"}:
            return _task_sla(ticket.priority, ticket.sla_due_at, ticket.sla_warning_at, self.clock.now())
        held = {key[1][0] for key in self.session.identity_map.keys() if key[0] is ProcessInstance}
        wanted = (held | {instance_id}) - set(known or ())
        found = self.record_slas(wanted)
        # Looked up only now: the query may have begun the transaction, which drops what an earlier one knew.
        known = self.session.info.setdefault(_KNOWN_SLAS, {})
        known.update({wanted_id: found.get(wanted_id, TaskSla()) for wanted_id in wanted})
        return known[instance_id]

    def detail(self, user: User, task_id: int, language: str | None = None) -> dict[str, Any]:
        """Task with its resolved form, UI schema, current data, rendered instructions and
        ``context``: what it is about, read-only (see :meth:`_context`); all of it without the
        variables hidden from ``user`` (``RecordService.hidden_variables``) but for the form's own.

        ``language`` (a page's; None: the source texts, as the API answers) has the instructions
        and documentation as the process's deployed translation into it has them, if it does."""
        task = self.get(user, task_id)
        definition = task.instance.definition
        view: UserTaskView | None = None
        data: dict[str, Any] = {}
        if task.state == TaskStatus.READY:
            run = self.runner.load(task.instance)
            try:
                view = run.task_view(task.engine_task_id)
                data = json_safe(view.data)
                data.update(self.runner.outside_changes(task.instance, data))
            except TaskNotFound:
                view = None
            self.runner.release(task.instance, run)
        schema = definition.forms.get(task.form) if task.form else None
        ui_schema = definition.forms.get(task.ui_form) if task.ui_form else None
        # What the user may not read (the process's internal variables, for anyone but staff) is
        # left out of everything the detail shows: its data, the instructions rendered from it and
        # the context. The task's own form fields stay: what the form shows, it fills in from the data.
        own = set(((schema or {}).get("properties")) or {})
        hidden = self.runner.records.hidden_variables(user, [task.instance])[task.instance_id] - own
        if hidden:
            data = without_variables(data, hidden)
        if schema is not None:
            schema, ui_schema = resolve_form(schema, ui_schema, data, self.instances.group_members,
                                             self.instances.offered_groups)
        about: Mapping[str, Any] | None = None
        if view is not None:
            about = data  # what the detail returns anyway
        elif self.instances.may_see(user, task.instance):
            # A task no longer ready has no view: the instance's last saved data, for those who see
            # the instance (a lane member may still read a done task of an instance they do not see).
            about = without_variables(task.instance.data, hidden) if hidden else task.instance.data or {}
        translated = (TRANSLATIONS.get(self.session, task.process_id, language)
                      if view is not None and language and (view.instructions or view.documentation) else {})
        return {
            "task": task,
            "form_schema": schema,
            "ui_schema": ui_schema,
            "data": data,
            "instructions": render_instructions(view.instructions, data, translation=translated.get(view.instructions))
            if view and view.instructions else "",
            "documentation": translated.get(view.documentation, view.documentation) if view and view.documentation
            else None,
            "context": self._context(user, task, about, schema) if about is not None else [],
            # why separation of duties keeps this user from the task (the diagram's excludeReason),
            # so a page says so rather than offering a form whose answer would be refused
            "exclusion": (self._exclusion_text(view)
                          if view is not None and policy.excludes(task, user.username) else None),
        }

    def _context(self, user: User, task: HumanTask, data: Mapping[str, Any],
                 form_schema: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """What the task is about, for whoever works on it or reads it: who started the instance,
        its record's details (if the user may see the record) and the answers of the form the
        instance was started with (:meth:`InstanceService.start_form`), each once, without the
        fields the task's own form shows and without empty values.

        Each entry: ``name`` (record detail name or the start form field's dotted name),
        ``label``, ``value`` (as stored), ``display`` (the form's title of the chosen value(s),
        else None) and ``source`` (``instance``, ``record`` or ``request``). Everything comes from
        ``data`` (the ready task's own, which the detail returns anyway, or the instance's for
        those who see it) and the instance's own record: no other record, comment or person.
        """
        instance = task.instance
        shown = set((form_schema or {}).get("properties") or {})
        entries: list[dict[str, Any]] = []
        starter = instance.started_by
        if starter is not None:
            named = starter.display_name and starter.display_name != starter.username
            entries.append({"name": "requester", "label": "Requester", "value": starter.username,
                            "display": f"{starter.display_name} ({starter.username})" if named else None,
                            "source": "instance"})
        ticket = self.runner.ticket_for(instance)
        if ticket is not None and self.runner.records.may_see(user, ticket):
            details = ticket.details or {}
            # By name, as the record page lists them: PostgreSQL's JSONB keeps no key order.
            for name, key in sorted(((instance.definition.record_mapping or {}).get("details") or {}).items()):
                if name in shown or key in shown or _blank(details.get(name)):
                    continue
                entries.append({"name": name, "label": name.replace("_", " ").capitalize(), "value": details[name],
                                "display": None, "source": "record"})
        form = self.instances.start_form(instance.process_id, data)
        if form is not None:
            listed = {entry["name"] for entry in entries}
            for field in form_fields(*resolve_form(form[0], form[1], data, self.instances.group_members,
                                                   self.instances.offered_groups)):
                value = _dotted(data, field["name"])
                if (field["name"] in listed or field["name"].split(".")[0] in shown
                        or field["widget"] in _UNSHOWN_WIDGETS or _blank(value)):
                    continue
                label = f"{field['group_title']}: {field['title']}" if field["group_title"] else field["title"]
                entries.append({"name": field["name"], "label": label, "value": value,
                                "display": _choice_titles(field["choices"], value), "source": "request"})
        return entries

    def claim(self, user: User, task_id: int) -> HumanTask:
        task = self.get(user, task_id, action="claim")
        self.require_ready(task)
        allowed, reason = policy.may_work_task(user, task, task.instance)
        if not allowed:
            self.instances._refuse(user, "claim", instance_id=task.instance_id, task_id=task.id, reason=reason)
            raise PermissionDenied(reason)
        if task.claimed_by_id == user.id:
            return task
        # Separation of duties already at claim time: an excluded user could otherwise claim the
        # task and keep the people who may complete it from doing so.
        run = self.runner.load(task.instance, user)
        self._refuse_excluded(user, task, run, "claim")
        self.runner.release(task.instance, run)
        task.claimed_by = user
        self._touch(task.instance)
        self.audit.record("task_claimed", user, instance_id=task.instance_id, task_id=task.id, payload={"bpmn_id": task.bpmn_id})
        return task

    def unclaim(self, user: User, task_id: int) -> HumanTask:
        task = self.get(user, task_id, action="unclaim")
        self.require_ready(task)
        if task.claimed_by_id is None:
            raise Conflict("the task is not claimed", code="not_claimed")
        if task.claimed_by_id != user.id and not policy.is_admin(user):
            self.instances._refuse(user, "unclaim", instance_id=task.instance_id, task_id=task.id, reason="claimed by someone else")
            raise PermissionDenied("the task is claimed by someone else")
        previous = task.claimed_by_id
        task.claimed_by = None
        self._touch(task.instance)
        self.audit.record("task_unclaimed", user, instance_id=task.instance_id, task_id=task.id, payload={"previous_claimant_id": previous})
        return task

    def reassign(self, admin: User, task_id: int, assignee: User) -> HumanTask:
        """Admins hand a task to someone else, agents a task of their own group's queue that waits
        for nobody by name (``policy.may_reassign``); audited with both names.

        Only to someone who may then complete it: an active user in the task's queue (its
        assigned user, candidate group, lane, or the starter of a lane-less task) or an admin
        (an admin may work a task claimed by them), and not one the task's separation of duties
        excludes. The task is then claimed for them.

        A task assigned by name to a person who can no longer do it, deactivated or no user of
        that name at all (a leaver's confirmation, a departed line manager's approval), would
        wait forever: nobody else may take it. Such a task goes to its new person as its
        *assigned user* (audited with the names ``from`` and ``to``), unclaimed, as if the process
        had named them: it is in their inbox. Who may take it: an active user whom its separation
        of duties does not exclude and who is, for a task of a candidate group or lane, a member of
        that group or an admin, and for a task outside any lane, anyone (but an auditor, who only
        reads). A task assigned to an active user stays theirs: only an admin may be handed it.

        Raises PermissionDenied (``REASSIGN_REFUSED``), Conflict (task not ready),
        ValidationFailed naming ``username`` (the user may not work on the task).
        """
        return self.hand_over(admin, self.reassignable(admin, task_id), assignee)

    def hand_over(self, admin: User, task: HumanTask, assignee: User) -> HumanTask:
        """:meth:`reassign` of a task :meth:`reassignable` gave."""
        holder, stranded = self.check_hand_over(admin, task, assignee)
        previous = task.claimed_by_id
        # A task handed to someone's delegate for their absence is the admin's (the agent's) to place
        # now: the end of the absence does not take it back (review of out of office).
        handed_for, task.delegated_from = task.delegated_from, None
        if stranded:
            before = task.assigned_user
            task.assigned_user = assignee.username
            task.claimed_by = None
            self._touch(task.instance)
            self.audit.record("task_reassigned", admin, instance_id=task.instance_id, task_id=task.id, payload={
                "from": before, "to": assignee.username, "from_user_id": holder.id if holder is not None else None,
                "to_user_id": assignee.id, "assigned_user": True, "delegated_from": handed_for,
                "reason": "assigned_user_deactivated" if holder is not None else "assigned_user_unknown"})
            return task
        task.claimed_by = assignee
        self._touch(task.instance)
        self.audit.record("task_reassigned", admin, instance_id=task.instance_id, task_id=task.id,
                          payload={"from_user_id": previous, "to_user_id": assignee.id, "to": assignee.username,
                                   "delegated_from": handed_for})
        return task

    def check_hand_over(self, admin: User, task: HumanTask, assignee: User) -> tuple[User | None, bool]:
        """What :meth:`hand_over` checks before it changes anything: the task is ready, an agent
        hands it within the team, and ``assignee`` may work it (``_why_not_assignable``). Returns
        the user the task is assigned to by name (None: nobody, or no user of that name) and
        whether that assignment strands it (a leaver's); raises as :meth:`reassign` does."""
        self.require_ready(task)
        group = task.candidate_group or task.lane
        if not policy.is_admin(admin) and group not in policy.queue_groups(assignee):
            # an agent hands the work on within the team, not out of its queue (QA: to an admin)
            raise self._outside_team(task, assignee.username)
        # The assigned user as the task names them, compared as policy.is_candidate does (exactly).
        holder = (self.session.scalar(select(User).where(User.username == task.assigned_user))
                  if task.assigned_user else None)
        stranded = bool(task.assigned_user) and not policy.works_tasks(holder)
        reason = self._why_not_assignable(assignee, task, stranded=stranded)
        if reason:
            raise ValidationFailed(f"the task cannot be reassigned to {assignee.username}: {reason}",
                                   details={"fields": {"username": [reason]}})
        return holder, stranded

    def reassignable(self, actor: User, task_id: int) -> HumanTask:
        """The task ``actor`` may reassign: NotFound (audited) for one they may not see, then
        PermissionDenied (audited, ``REASSIGN_REFUSED``) unless ``policy.may_reassign``."""
        task = self.get(actor, task_id, action="reassign")
        if not policy.may_reassign(actor, task):
            self.instances._refuse(actor, "reassign", instance_id=task.instance_id, task_id=task.id,
                                   reason="not an admin or an agent of the task's group")
            raise PermissionDenied(REASSIGN_REFUSED)
        return task

    def reassign_to(self, actor: User, task_id: int, username: str, find: Callable[[str], User | None]) -> HumanTask:
        """:meth:`reassign` to the user ``find(username)`` gives (``UserService.find``: None for a
        name nobody has), looked up only once the task is one ``actor`` may reassign: a caller who
        may not learns nothing of which names exist (QA: "no user ghost" against "no task 1" listed
        the directory for any requester). Nor does an agent who may: see :meth:`named_assignee`."""
        task = self.reassignable(actor, task_id)
        assignee = self.named_assignee(actor, task, username, find)
        if assignee is None:
            raise NotFound(f"no user {username}")
        return self.hand_over(actor, task, assignee)

    def named_assignee(self, actor: User, task: HumanTask, username: str,
                       find: Callable[[str], User | None]) -> User | None:
        """The user ``username`` names as the one to hand ``task`` to, for ``actor`` (who may
        reassign it: :meth:`reassignable`). None for a name nobody has, told to an admin only, who
        reads the directory anyway. An agent, who does not, gets for such a name the refusal a user
        outside the task's group gets (ValidationFailed naming ``username``): the reassign form
        told "no user X" from "not one of the user's groups", so any agent could list the
        directory through it (security review)."""
        assignee = find(username)
        if assignee is None and not policy.is_admin(actor):
            raise self._outside_team(task, username)
        return assignee

    @staticmethod
    def _outside_team(task: HumanTask, username: str) -> ValidationFailed:
        """An agent's refusal of ``username`` for ``task``: not a member of its queue's group (or no
        user at all: the same words, see :meth:`named_assignee`)."""
        group = task.candidate_group or task.lane
        return ValidationFailed(f"the task cannot be reassigned to {username}", details={"fields": {
            "username": [f"the task is in the {group} group's queue, and that is not one of the user's groups"]}})

    def requeue(self, instance_id: int, group: str, *, reason: str, actor_name: str) -> list[HumanTask]:
        """Move the instance's ready tasks that wait in a group queue to ``group``'s queue (an SLA
        escalation handing the record to another group; ``app.services.sla``): each takes ``group``
        as its candidate group, and its claimant, unless a member of ``group``, is released. Tasks
        assigned to a person by name stay with them. Each move is audited (``task_requeued``, by
        ``actor_name``, with ``reason``); the tasks moved are returned. No permission check: the
        caller is the platform, not a user."""
        moved: list[HumanTask] = []
        for task in self.session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                                 HumanTask.state == TaskStatus.READY).order_by(HumanTask.id)):
            if task.assigned_user:
                continue
            before = task.candidate_group or task.lane
            claimant = task.claimed_by
            released = claimant is not None and group not in policy.queue_groups(claimant)
            if before == group and not released:
                continue
            task.candidate_group = group
            if released:
                task.claimed_by = None
            moved.append(task)
            self.audit.record("task_requeued", None, instance_id=instance_id, task_id=task.id, actor_name=actor_name,
                              payload={"bpmn_id": task.bpmn_id, "from_group": before, "to_group": group, "reason": reason,
                                       "released": claimant.username if released and claimant is not None else None})
        if moved:
            self._touch(moved[0].instance)
        return moved

    def _why_not_assignable(self, assignee: User, task: HumanTask, *, stranded: bool = False) -> str | None:
        """Why ``assignee`` could not complete ``task`` once it is claimed for them (None: they could).
        The same rules as claiming and completing (policy.outside_queue, excludeUsersVars).

        ``stranded``: the task's assigned user can no longer do it (see ``reassign``); then its
        queue is its candidate group or lane (members and admins) or, outside any lane, everyone
        who works tasks: the assigned name is what ``reassign`` replaces."""
        if not assignee.active:
            return "the user is deactivated"
        if stranded:
            group = task.candidate_group or task.lane
            if policy.is_read_only(assignee):
                return "auditors read tasks but do not work on them"
            if group and group not in policy.queue_groups(assignee) and not policy.is_admin(assignee):
                return f"the task is in the {group} group's queue, and that is not one of the user's groups"
        else:
            reason = policy.outside_queue(assignee, task, task.instance, claimed=True, whose="the user's")
            if reason:
                return reason
        run = self.runner.load(task.instance)
        try:
            view = self._view(task, run)
            if is_approval(view) and self._holds_another(assignee, task):
                # one person, one vote: a second vote of the same round in one hand decides alone
                return f"the user holds or did another “{task.name}” of this round already: one vote each"
            return self._exclusion(assignee, task, run, view, whom="the user")
        finally:
            self.runner.release(task.instance, run)

    def _holds_another(self, user: User, task: HumanTask) -> bool:
        """Whether ``user`` already has another task of the same element of ``task``'s instance in
        this round (``away.holds_another``)."""
        return holds_another(self.session, instance_id=task.instance_id, bpmn_id=task.bpmn_id, since=task.created_at,
                             user_id=user.id, username=user.username, except_id=task.id)

    def complete(self, user: User, task_id: int, data: Mapping[str, Any] | None, *, coerce_strings: bool = False) -> ProcessInstance:
        """Validate ``data`` against the task's form, complete the task, and advance the instance."""
        task = self.get(user, task_id, action="complete")
        self.require_ready(task)
        allowed, reason = policy.may_work_task(user, task, task.instance)
        if not allowed:
            self.instances._refuse(user, "complete", instance_id=task.instance_id, task_id=task.id, reason=reason)
            raise PermissionDenied(reason)
        instance = task.instance
        if instance.status != InstanceStatus.RUNNING:
            raise Conflict(f"instance is {instance.status}", code="instance_not_running")
        run = self.runner.load(instance, user)
        view = self._view(task, run)
        self._refuse_excluded(user, task, run, "complete", view)
        # What an SLA escalation changed on the record, the step continues from (the form showed it).
        outside = self.runner.outside_changes(instance, view.data)
        current = {**view.data, **outside} if outside else view.data
        definition = instance.definition
        schema = definition.forms.get(task.form) if task.form else None
        if schema is not None:
            ui_schema = definition.forms.get(task.ui_form) if task.ui_form else None
            now = self.clock.now()  # "today" is the UTC date, as every date the desk shows
            clean = validate_submission(schema, ui_schema, dict(data or {}), current, coerce_strings=coerce_strings,
                                        members=self.instances.group_members, groups=self.instances.offered_groups,
                                        today=now.date(), now=now)
        else:
            clean = {}
        for check in self.instances.data_checks:
            check(definition, clean)
        completer_var = view.properties.get("setUserVar")
        if completer_var:
            clean[completer_var] = user.username
        # Timers that are due fire first, as the sweep would fire them (by the engine, audited as
        # timer_fired): an interrupting one beats this late submission.
        user_operations = run.operations
        run.operations = self.runner.operations(instance, None)
        fired = run.fire_due_timers()
        for timer in fired:
            self.audit.record("timer_fired", None, instance_id=instance.id, payload=timer, actor_name="scheduler")
        run.operations = user_operations
        if fired and run.task_state(task.engine_task_id) != "ready":
            # Persist the timer's win, then tell the caller: their submission lost the race.
            self.runner.save(instance, run, None)
            self.session.info["commit_on_error"] = True
            raise Conflict("a timer on this task expired before it was completed", code="timer_expired",
                           details={"task_id": task.id})
        try:
            run.complete_task(task.engine_task_id, {**outside, **clean}, self.runner.identity(user, instance),
                              timers_fired=True)
        except TaskNotReady as err:
            if err.error_type == "timer_expired":
                # Persist the timer's win, then tell the caller: their submission lost the race.
                self.runner.save(instance, run, None)
                self.session.info["commit_on_error"] = True
                raise Conflict(err.message, code="timer_expired", details={"task_id": task.id}) from None
            raise Conflict(err.message, details={"task_id": task.id}) from None
        task.state = TaskStatus.COMPLETED
        set_reference(task, "completed_by", user)
        task.completed_at = self.clock.now()
        if task.claimed_by_id is None:
            set_reference(task, "claimed_by", user)
        self.audit.record("task_completed", user, instance_id=instance.id, task_id=task.id,
                          payload={"bpmn_id": task.bpmn_id, "name": task.name, "data": json_safe(clean)})
        self.runner.save(instance, run, user, shown=outside)
        return instance

    def _refuse_excluded(self, user: User, task: HumanTask, run: WorkflowRun, action: str,
                         view: UserTaskView | None = None) -> None:
        """403 ``separation_of_duties`` (audited) if the task's excludeUsersVars name the user."""
        reason = self._exclusion(user, task, run, view)
        if reason:
            self.instances._refuse(user, action, instance_id=task.instance_id, task_id=task.id, reason=reason)
            raise PermissionDenied(reason, code="separation_of_duties")

    @staticmethod
    def _view(task: HumanTask, run: WorkflowRun) -> UserTaskView:
        """The task's view in its run; Conflict ``task_gone`` when the instance no longer has it."""
        try:
            return run.task_view(task.engine_task_id)
        except TaskNotFound:
            raise Conflict("the task no longer exists in the instance", code="task_gone") from None

    @staticmethod
    def _exclusion_text(view: UserTaskView, whom: str = "you") -> str:
        """What separation of duties says to someone it keeps off the task: the diagram's excludeReason."""
        return view.properties.get("excludeReason") or f"separation of duties: {whom} may not work on this task"

    @classmethod
    def _exclusion(cls, user: User, task: HumanTask, run: WorkflowRun, view: UserTaskView | None = None, *,
                   whom: str = "you") -> str | None:
        """Why the task's separation of duties (excludeUsersVars) keeps ``user`` off it, or None."""
        if view is None:
            view = cls._view(task, run)
        if user.username not in policy.excluded_users(view.properties, view.data):
            return None
        return cls._exclusion_text(view, whom)

    def require_ready(self, task: HumanTask) -> None:
        if task.state != TaskStatus.READY:
            raise Conflict(f"task is {task.state}", details={"task_id": task.id, "state": task.state})

    def _touch(self, instance: ProcessInstance) -> None:
        # Claims change what may complete a task: bump the instance version so a racing
        # completion that read the old claim loses with 409 instead of slipping through.
        instance.updated_at = self.clock.now()
