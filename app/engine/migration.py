"""Moving a running instance onto another deployed version of its process.

A process owner fixes a diagram and deploys it; the instances already running stay on the version
they started with until they are moved. Moving one keeps what it is: its open user tasks keep their
ids (so their rows, claims and links stay), its timers keep their due times, its history stays.

How elements are matched: SpiffWorkflow's ``SpecDiff`` aligns the old version's task specs with the
new one's by BPMN id first, then by position (a renamed task between two matched ones). Per
workflow of the run (the top one, each open embedded or called subprocess):

- every task still open (ready, waiting, started, failed) must have a counterpart, else the move is
  refused naming the elements (``unmapped``), as is an open subprocess whose process the version
  no longer has;
- finished history whose element the version dropped is cut out where the tree runs single file
  (as ``trim`` does for old loop rounds: our audit history keeps every step); a finished element
  that the version dropped and that branched (a parallel split) is refused (``history``);
- an open task whose element changed other than in its flows (a new form, a new timer, another
  script) is put back to be prepared again by the new version (its pre-script runs again, a changed
  timer is armed anew from the move); one that did not change is left exactly as it is; what is
  predicted after each open task is predicted again from the new version's flows.

After the move the run advances (a task the new version made automatic runs), and the caller
stores it as after any step. What cannot be moved cleanly raises :class:`MigrationRefused` and
leaves the caller to drop the run (it may be half moved): the stored state is untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.util.diff import SpecDiff
from SpiffWorkflow.util.task import TaskState

from .errors import EngineError
from .serializer import SPEC_SERIALIZER

#: Tasks the instance is at: each needs a counterpart in the new version.
_OPEN = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
#: Open tasks a changed definition prepares again (a started subprocess or a failed task is not).
_RESET = TaskState.READY | TaskState.WAITING
#: What is only predicted: recomputed from the new version's flows.
_PREDICTED = TaskState.PREDICTED_MASK | TaskState.FUTURE
#: Spec attributes that say where an element leads, not what it is.
_FLOW_KEYS = frozenset({"inputs", "outputs"})


class MigrationRefused(EngineError):
    """The run cannot be moved; ``plan`` says why when the elements are known."""

    def __init__(self, message: str, plan: MigrationPlan | None = None, **kwargs: Any) -> None:
        super().__init__(message, error_type="migration_refused", **kwargs)
        self.plan = plan


@dataclass(frozen=True)
class MigrationPlan:
    """What moving a run onto a version would do, by BPMN id (sorted, without repeats)."""

    #: Open tasks whose element the version lacks: the move is refused.
    unmapped: tuple[str, ...]
    #: Finished elements the version lacks that cannot be cut out of the history: refused.
    history: tuple[str, ...]
    #: Open subprocesses (embedded or called) whose process the version lacks: refused.
    processes: tuple[str, ...]
    #: Open tasks whose element changed: prepared again by the new version.
    changed: tuple[str, ...]
    #: Open tasks moved as they are.
    kept: tuple[str, ...]
    #: Finished elements the version lacks, cut out of the engine's history.
    dropped: tuple[str, ...]

    @property
    def possible(self) -> bool:
        return not (self.unmapped or self.history or self.processes)

    def to_dict(self) -> dict[str, Any]:
        return {"possible": self.possible, "unmapped": list(self.unmapped), "history": list(self.history),
                "processes": list(self.processes), "changed": list(self.changed), "kept": list(self.kept),
                "dropped": list(self.dropped)}


def _element(spec: Any) -> str:
    return str(spec.bpmn_id or spec.name)


def _named(spec: Any) -> bool:
    """A BPMN element people drew (not one of SpiffWorkflow's own: start, end join, root)."""
    return bool(getattr(spec, "bpmn_id", None))


@dataclass
class _Part:
    """One workflow of the run with the spec it moves to and the alignment of its task specs."""

    workflow: Any
    target: Any
    alignment: dict[Any, Any]
    changes: dict[Any, list[str]]

    def new_spec(self, task: Any) -> Any:
        return self.alignment.get(task.task_spec)

    def changed(self, task: Any) -> bool:
        return bool(set(self.changes.get(task.task_spec) or ()) - _FLOW_KEYS)


def _parts(workflow: Any, spec: Any, subprocess_specs: dict[str, Any]) -> tuple[list[_Part], list[str]]:
    """The run's workflows aligned with the target specs, and the open subprocesses whose
    process the target lacks."""
    registry = SPEC_SERIALIZER.registry
    parts = [_Part(workflow, spec, *_aligned(registry, workflow.spec, spec))]
    missing: list[str] = []
    for sub in workflow.subprocesses.values():
        target = subprocess_specs.get(sub.spec.name)
        if target is None:
            if any(t._state & _OPEN for t in sub.tasks.values()):
                missing.append(sub.spec.name)
            continue
        parts.append(_Part(sub, target, *_aligned(registry, sub.spec, target)))
    return parts, missing


def _aligned(registry: Any, original: Any, new: Any) -> tuple[dict[Any, Any], dict[Any, list[str]]]:
    diff = SpecDiff(registry, original, new)
    alignment = {old: new_spec for old, new_spec in diff.alignment.items() if new_spec is not None}
    # SpiffWorkflow's own elements (the start, the end join, the root) keep their names in every version.
    for name, old in original.task_specs.items():
        if old not in alignment and name in new.task_specs and not _named(old):
            alignment[old] = new.task_specs[name]
    return alignment, diff.comparisons


def _cuttable(task: Any) -> bool:
    """A finished task that can leave the tree: a leaf, or a completed link in a single file."""
    return bool(task._state & TaskState.FINISHED_MASK) and task._parent is not None and (
        not task._children or (len(task._children) == 1 and task._state == TaskState.COMPLETED))


def plan_migration(workflow: Any, spec: Any, subprocess_specs: dict[str, Any]) -> MigrationPlan:
    """What moving ``workflow`` onto ``spec`` would do; changes nothing."""
    parts, missing = _parts(workflow, spec, subprocess_specs)
    unmapped: set[str] = set()
    history: set[str] = set()
    changed: set[str] = set()
    kept: set[str] = set()
    dropped: set[str] = set()
    owners = set(workflow.subprocesses)
    for part in parts:
        for task in part.workflow.tasks.values():
            state = task._state
            if part.new_spec(task) is None:
                if state & _OPEN:
                    unmapped.add(_element(task.task_spec))
                elif state & TaskState.FINISHED_MASK:
                    if task.id in owners or not _cuttable(task):
                        history.add(_element(task.task_spec))
                    elif _named(task.task_spec):
                        dropped.add(_element(task.task_spec))
            elif state & _OPEN and _named(task.task_spec):
                (changed if part.changed(task) else kept).add(_element(task.task_spec))
    return MigrationPlan(unmapped=tuple(sorted(unmapped)), history=tuple(sorted(history)),
                         processes=tuple(sorted(missing)), changed=tuple(sorted(changed - unmapped)),
                         kept=tuple(sorted(kept - changed - unmapped)), dropped=tuple(sorted(dropped)))


def migrate(workflow: Any, spec: Any, subprocess_specs: dict[str, Any]) -> MigrationPlan:
    """Move ``workflow`` (a whole run) onto ``spec`` and its subprocess specs, or raise
    :class:`MigrationRefused` (the run may then be half moved: drop it). Does not advance it."""
    plan = plan_migration(workflow, spec, subprocess_specs)
    if not plan.possible:
        raise MigrationRefused("the instance cannot be moved to that version", plan)
    parts, _missing = _parts(workflow, spec, subprocess_specs)
    # 1. every task onto its element of the new version; what the version dropped leaves the history
    changed: set[Any] = set()
    for part in parts:
        changed.update(t.id for t in part.workflow.tasks.values() if t._state & _RESET and part.changed(t))
        dropped = [t for t in part.workflow.tasks.values()
                   if part.new_spec(t) is None and t._state & TaskState.FINISHED_MASK]
        part.workflow.spec = part.target
        for task in part.workflow.tasks.values():
            new_spec = part.new_spec(task)
            if new_spec is not None:
                task.task_spec = new_spec
        _cut(part.workflow.tasks, dropped)
    workflow.subprocess_specs = subprocess_specs
    # 2. open tasks: prepared again where their element changed, else their predictions renewed
    for part in parts:
        for task in [t for t in part.workflow.tasks.values() if t._state & _OPEN]:
            if task.id not in part.workflow.tasks:
                continue  # removed with the branch of a task reset before it
            if task.id in changed:
                # with its own data: what it was given when it became ready (a multi-instance
                # item, a message) is not its parent's to give again
                task.reset_branch(copy.deepcopy(task.data))
            elif not any(child._state & _OPEN for child in task.children):
                _predict_again(task, again=not task._state & TaskState.ERROR)
        if part.workflow.last_task is not None and part.workflow.last_task.id not in part.workflow.tasks:
            part.workflow.last_task = None
    # 3. nothing may still point at the old version
    for part in parts:
        for task in part.workflow.tasks.values():
            if part.target.task_specs.get(task.task_spec.name) is not task.task_spec:
                raise MigrationRefused(
                    f"'{_element(task.task_spec)}' could not be moved to the new version", plan,
                    element_id=task.task_spec.bpmn_id)
    return plan


def _cut(tasks: dict[Any, Any], dropped: list[Any]) -> None:
    """Remove finished tasks whose element the version dropped (the plan found each cuttable).
    A cut task's child is hung where it was, so every remaining task keeps its ancestors."""
    for task in dropped:
        parent = tasks[task._parent]
        if task._children:
            child = tasks[task._children[0]]
            parent._children[parent._children.index(task.id)] = child.id
            child._parent = parent.id
        else:
            parent._children.remove(task.id)
        del tasks[task.id]


def _predict_again(task: Any, again: bool) -> None:
    """Drop what is predicted below ``task`` and, if ``again``, predict it again from its (new)
    element. (A failed task's predictions come back with its retry, which resets it.)"""
    for child in list(task.children):
        if child._state & _PREDICTED:
            task.workflow._remove_task(child.id)
    if not again:
        return
    task.task_spec._predict_hook(task)
    for child in task.children:
        if child._state & _PREDICTED:
            child.task_spec._predict(child, mask=_PREDICTED)
