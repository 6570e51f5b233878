"""Moving running instances onto another version of their process (process owners and admins).

A deployed fix reaches only the instances started after it; the ones already running stay on the
version they started with. Moving them is what this service does, one instance or every instance
of a version at once, as Camunda's instance migration does. The engine decides what can move
(app/engine/migration.py): every open task needs its element in the new version. The platform
keeps everything it knows about the instance: its open task rows (same ids, claims and links; a
task's name, form, lane and assignment follow the new version), its record (synced with the new
version's record mapping from the next step), its timers' due times, and the audit history, which
gains ``instance_migrated``.

Rules: only a running instance, or one in error (moving it to a fixed version and retrying is how
a diagram's bug is undone), moves; to another version of its own process; refused as a whole,
nothing stored, when the engine refuses (422 naming the elements) or when the new version fails
on the way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.engine import MigrationPlan, MigrationRefused
from app.errors import Conflict, NotFound, PermissionDenied, ProcessdeskError, ValidationFailed
from app.models import InstanceStatus, ProcessDefinition, ProcessInstance, Role, User

from . import policy
from .audit import AuditLog
from .definitions import DefinitionService
from .execution import InstanceRunner, saved_open_tasks, task_assignment
from .instances import InstanceService

#: Runs a piece of work in a transaction of its own (the edge's unit of work).
Transaction = Callable[[Callable[[], Any]], Any]
#: Who moves instances: who deploys.
MIGRATE_ROLES = (Role.PROCESS_OWNER, Role.ADMIN)
#: Statuses an instance moves in.
MOVABLE = (InstanceStatus.RUNNING, InstanceStatus.ERROR)
#: Instances one bulk call moves at most (the rest: call again; ``remaining`` says how many).

MAX_BATCH = 200


@dataclass
class BatchResult:
    """What moving a version's instances did."""

    process_id: str
    from_version: int
    to_version: int
    moved: list[int] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    remaining: int = 0
    next_after: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "from_version": self.from_version, "to_version": self.to_version,
                "moved": self.moved, "refused": self.refused, "remaining": self.remaining, "next_after": self.next_after, "dry_run": self.dry_run}


def refusal_details(plan: MigrationPlan | None, target: ProcessDefinition) -> dict[str, Any]:
    """The 422's details: the version asked for and why it cannot take the instance."""
    details: dict[str, Any] = {"version": target.version}
    if plan is not None:
        details.update(unmapped=list(plan.unmapped), history=list(plan.history), processes=list(plan.processes),
                       incompatible=list(plan.incompatible))
    return details


def refusal_text(plan: MigrationPlan | None, fallback: str) -> str:
    """One sentence on why, naming the elements."""
    if plan is None:
        return fallback
    parts = []
    if plan.unmapped:
        parts.append("open tasks the version lacks: " + ", ".join(plan.unmapped))
    if plan.processes:
        parts.append("open subprocesses the version lacks: " + ", ".join(plan.processes))
    if plan.history:
        parts.append("finished elements the version lacks that cannot leave the history: " + ", ".join(plan.history))
    if plan.incompatible:
        parts.append("open elements the instance cannot follow into the version: " + ", ".join(plan.incompatible))
    return "; ".join(parts) or fallback


class MigrationService:
    def __init__(self, session: Session, runner: InstanceRunner, instances: InstanceService,
                 definitions: DefinitionService, audit: AuditLog) -> None:
        self.session = session
        self.runner = runner
        self.instances = instances
        self.definitions = definitions
        self.audit = audit

    # -- one instance -----------------------------------------------------------------------------

    def plan(self, user: User | None, instance_id: int, version: int | None, *, from_definition_id: int | None = None,
             any_instance: bool = False) -> tuple[ProcessInstance, ProcessDefinition, MigrationPlan]:
        """What moving the instance to ``version`` (None: the latest) would do; changes nothing.
        The elements are checked, not the new version's scripts: a move the plan allows is still
        refused if the new version fails at once (a changed task's pre-script)."""
        instance, target = self._checked(user, instance_id, version, "migration_plan", from_definition_id, any_instance)
        run = self.runner.load(instance, user)
        try:
            return instance, target, run.migration_plan(self.runner.bundle(target))
        finally:
            self.runner.release(instance, run)

    def migrate(self, user: User | None, instance_id: int, version: int | None, *,
                from_definition_id: int | None = None,
                any_instance: bool = False) -> tuple[ProcessInstance, int, MigrationPlan]:
        """Move the instance to ``version`` (None: the latest). Raises NotFound (not visible),
        PermissionDenied (audited), Conflict (finished instance), ValidationFailed naming
        ``version`` (the same version, or the engine refuses: ``details`` name the elements).
        ``from_definition_id``: the version the caller found it on (a bulk move): Conflict if it
        moved since. ``any_instance``: a bulk move's, where process owners move the instances they
        do not see too (one at a time, the instance must be visible: its answer shows its data).
        Returns the instance, the version it ran before, and what the move did."""
        instance, target = self._checked(user, instance_id, version, "migrate", from_definition_id, any_instance)
        from_version = instance.version
        return instance, from_version, self._move(user, instance, target, from_version)

    def _checked(self, user: User | None, instance_id: int, version: int | None, action: str,
                 from_definition_id: int | None = None,
                 any_instance: bool = False) -> tuple[ProcessInstance, ProcessDefinition]:
        if user is None or (any_instance and user.has_role(*MIGRATE_ROLES)):
            # the command line, or who deploys moving a version's instances: every instance of the
            # version, whether or not its lanes are theirs (the answer names ids, not data)
            instance = self.session.get(ProcessInstance, instance_id)
            if instance is None:
                raise NotFound(f"no instance {instance_id}")
        else:
            instance = self.instances.get(user, instance_id, action=action)  # NotFound (audited) if not visible
            if not user.has_role(*MIGRATE_ROLES):
                self.audit.refuse(user, action, instance_id=instance_id, reason="needs process_owner")
                raise PermissionDenied("moving instances to another version needs the process_owner role")
        if from_definition_id is not None and instance.definition_id != from_definition_id:
            raise Conflict(f"instance {instance.id} runs version {instance.version} now",
                           code="instance_moved", details={"current_version": instance.version})
        if instance.status not in MOVABLE:
            raise Conflict(f"instance is {instance.status}: only running or failed instances move",
                           code="instance_not_running", details={"status": instance.status})
        target = self.definitions.version(instance.process_id, version)
        if target.id == instance.definition_id:
            raise ValidationFailed(f"the instance already runs version {target.version}",
                                   details={"fields": {"version": [f"the instance already runs version {target.version}"]}})
        return instance, target

    def _move(self, user: User | None, instance: ProcessInstance, target: ProcessDefinition,
              from_version: int) -> MigrationPlan:
        # What the move makes happen (a task the version made automatic, the record's fields that
        # follow) is saved as the engine's doing, not the mover's: no first response on the record's
        # SLA, no comment in their name. Scripts see the mover as the current user (a pre-script run
        # again reads who acts), and the audit names them.
        run = self.runner.load(instance, None)  # from the run cache, if there: never parked again unless saved
        try:
            plan = run.migrate(self.runner.bundle(target), self.runner.identity(user, instance))
        except MigrationRefused as refused:
            text = refusal_text(refused.plan, refused.message)
            details = refusal_details(refused.plan, target)
            if refused.element_id:
                details["element_id"] = refused.element_id
            details["fields"] = {"version": [text]}
            raise ValidationFailed(f"instance {instance.id} cannot move to version {target.version}: {text}",
                                   code="migration_refused", details=details) from None
        instance.definition_id = target.id
        instance.definition = target
        instance.version = target.version
        self.audit.record("instance_migrated", user, actor_name="command line" if user is None else None,
                          instance_id=instance.id, payload={
            "process_id": instance.process_id, "from_version": from_version, "to_version": target.version,
            "changed": list(plan.changed), "kept": list(plan.kept), "dropped": list(plan.dropped),
            "armed": list(plan.armed)})
        self.runner.save(instance, run, None)
        self._follow_new_version(instance, run, user)
        return plan

    def _follow_new_version(self, instance: ProcessInstance, run: Any, actor: User | None) -> None:
        """The open task rows that stayed take their name, form, lane, assignment and separation of
        duties from the new version (a row opened by this save has them already); a claim the new
        version leaves outside the task's queue, or keeps from its holder, is released (audited)."""
        views = {view.id: view for view in run.user_tasks()}
        for row in saved_open_tasks(self.session, instance.id) or []:  # what the save just left open
            view = views.get(row.engine_task_id)
            if view is None:
                continue
            assigned_user, candidate_group = task_assignment(view)
            if row.delegated_from is not None:
                if assigned_user == row.delegated_from:
                    assigned_user = row.assigned_user  # it stays with the delegate of its person, who is away
                else:
                    row.delegated_from = None  # the new version names someone else (the sweep hands on theirs)
            excluded = policy.excluded_text(policy.excluded_users(view.properties, view.data))
            queue = (row.assigned_user, row.candidate_group, row.lane)
            for name, value in (("bpmn_id", view.bpmn_id), ("name", view.name[:255]), ("form", view.form),
                                ("ui_form", view.ui_form), ("lane", view.lane), ("assigned_user", assigned_user),
                                ("candidate_group", candidate_group), ("excluded_users", excluded)):
                if getattr(row, name) != value:
                    setattr(row, name, value)
            holder = row.claimed_by
            if holder is not None and (not policy.may_work_task(holder, row, instance)[0]
                                       or policy.excludes(row, holder.username)):
                # the new version put the task in another queue, or keeps its holder out of it
                row.claimed_by = None
                self.audit.record("task_unclaimed", actor, instance_id=instance.id, task_id=row.id,
                                  actor_name="command line" if actor is None else None,
                                  payload={"previous_claimant_id": holder.id, "previous_claimant": holder.username,
                                           "reason": f"moved to version {instance.version}: not in the task's queue"})
            if (row.assigned_user, row.candidate_group, row.lane) != queue and row.claimed_by is None:
                self.runner.announce(row, view, instance, None)  # its new queue hears of it as of a new task
        self.session.flush()

    # -- a whole version --------------------------------------------------------------------------

    def migrate_version(self, user: User | None, process_id: str, from_version: int, to_version: int | None, *,
                        transaction: Transaction, dry_run: bool = False, after: int = 0) -> BatchResult:
        """Move the running and failed instances of ``from_version`` to ``to_version`` (None: the
        latest), oldest first, at most ``MAX_BATCH`` of them with an id above ``after``; ``user`` None:
        the command line. Each moves in
        its own ``transaction`` (the edge's unit of work) or is refused on its own, staying as it was
        and listed with why. ``dry_run``: plan only, nothing stored. ``remaining``: how many more
        there are (call again with ``after`` = ``next_after``)."""
        source_ids: list[int] = []

        def look() -> tuple[BatchResult, list[int]]:
            if user is not None and not user.has_role(*MIGRATE_ROLES):
                self.audit.refuse(user, "migrate", reason="needs process_owner", process_id=process_id)
                raise PermissionDenied("moving instances to another version needs the process_owner role")
            source = self.definitions.version(process_id, from_version)
            source_ids.append(source.id)
            target = self.definitions.version(process_id, to_version)
            if target.id == source.id:
                message = f"the instances already run version {target.version}"
                raise ValidationFailed(message, details={"fields": {"to_version": [message]}})
            movable = (ProcessInstance.definition_id == source.id, ProcessInstance.status.in_(MOVABLE),
                       ProcessInstance.id > after)
            ids = list(self.session.scalars(select(ProcessInstance.id).where(*movable)
                                            .order_by(ProcessInstance.id).limit(MAX_BATCH)))
            total = int(self.session.scalar(select(func.count()).select_from(ProcessInstance).where(*movable)) or 0)
            return BatchResult(process_id, source.version, target.version, dry_run=dry_run,
                               remaining=total - len(ids), next_after=ids[-1] if ids else after), ids

        result, ids = transaction(look)
        for instance_id in ids:
            try:
                if dry_run:
                    instance, target, plan = transaction(functools.partial(
                        self.plan, user, instance_id, result.to_version, from_definition_id=source_ids[0],
                        any_instance=True))
                    if not plan.possible:
                        raise ValidationFailed(refusal_text(plan, "refused"), details=refusal_details(plan, target))
                else:
                    transaction(functools.partial(self.migrate, user, instance_id, result.to_version,
                                                  from_definition_id=source_ids[0], any_instance=True))
            except ProcessdeskError as refused:  # this one stays; the others still move
                result.refused.append({"instance_id": instance_id, "code": refused.code, "message": refused.message,
                                       **{k: v for k, v in refused.details.items() if k != "fields"}})
                continue
            result.moved.append(instance_id)
        return result
