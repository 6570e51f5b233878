"""Moving a running instance onto another deployed version of its process.

A process owner fixes a diagram and deploys it; the instances already running stay on the version
they started with until they are moved. Moving one keeps what it is: its open user tasks keep their
ids (so their rows, claims and links stay), its timers keep their due times, its history stays.

How elements are matched: SpiffWorkflow's ``SpecDiff`` aligns the old version's task specs with the
new one's by BPMN id first, then by position (a renamed task between two matched ones). Per
workflow of the run (the top one, each embedded or called subprocess):

- every task still open (ready, waiting, started, failed) must have a counterpart, else the move is
  refused naming the elements (``unmapped``), as is an open subprocess whose process the version no
  longer has, or whose element now calls another process (``processes``). A waiting boundary event
  the version removed is not such a task: it goes (the task it was attached to stays). Refused too
  (``incompatible``, ``_open_elsewhere``): what the running instance cannot follow (a running
  multi-instance of another kind, a join that would wait for a branch never taken, a task matched
  by its place onto another kind of element or after an added one);
- finished history whose element the version dropped is cut out where the tree runs single file
  (as ``trim`` does for old loop rounds: our audit history keeps every step); a finished element
  that the version dropped and that branched with more than one branch left (a parallel split) is
  refused (``history``). A finished subprocess whose element the version dropped, or that now
  calls another process, is dropped from the engine's history;
- an open task whose element changed other than in its flows (a new form, another script) is put
  back to be prepared again by the new version, with its own data (its pre-script runs again); a
  waiting event is armed anew only when its event changed (another timer). A task that has already
  started branches of its own (a cycle timer that fired) is left as it is. Everything else open is
  left exactly as it is, and what is predicted after it is predicted again from the new version's
  flows (a step added after a running multi-instance or loop runs after it);
- boundary events the version added to an open task are armed from the move.

After the move the run advances (a task the new version made automatic runs), and the caller
stores it as after any step. What cannot be moved cleanly raises :class:`MigrationRefused` and
leaves the caller to drop the run (it may be half moved): the stored state is untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin, BoundaryEventSplit, _EndJoin
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.util.diff import SpecDiff
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .errors import EngineError
from .serializer import SPEC_SERIALIZER

#: Tasks the instance is at: each needs a counterpart in the new version.
_OPEN = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
#: Open tasks a changed definition prepares again (a started subprocess or a failed task is not).
_RESET = TaskState.READY | TaskState.WAITING
#: What is only predicted: recomputed from the new version's flows.
_PREDICTED = TaskState.PREDICTED_MASK | TaskState.FUTURE
_FINISHED = TaskState.FINISHED_MASK
#: Spec attributes that say where an element leads, not what it is.
_FLOW_KEYS = frozenset({"inputs", "outputs"})
#: Spec attributes that only label an element.
_LABEL_KEYS = frozenset({"bpmn_name", "description", "documentation", "lane", "extensions"})


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
    #: Open elements the running instance cannot follow into the new version: a running
    #: multi-instance or loop whose kind or collection changed, a join waiting for branches whose
    #: incoming flows changed: refused.
    incompatible: tuple[str, ...]
    #: Open tasks whose element changed: a ready or waiting one is prepared again by the new
    #: version (an event only when its event changed), a failed one retried by it.
    changed: tuple[str, ...]
    #: Open tasks moved as they are.
    kept: tuple[str, ...]
    #: Finished elements, and waiting boundary events, the version lacks: cut from the engine's history.
    dropped: tuple[str, ...]
    #: Boundary events the version adds to open tasks: armed from the move.
    armed: tuple[str, ...] = ()

    @property
    def possible(self) -> bool:
        return not (self.unmapped or self.history or self.processes or self.incompatible)

    def to_dict(self) -> dict[str, Any]:
        return {"possible": self.possible, "unmapped": list(self.unmapped), "history": list(self.history),
                "processes": list(self.processes), "incompatible": list(self.incompatible),
                "changed": list(self.changed), "kept": list(self.kept), "dropped": list(self.dropped),
                "armed": list(self.armed)}


def _element(spec: Any) -> str:
    """The BPMN id people know an element by; SpiffWorkflow's own parts (``x.BoundaryEventSplit``)
    by the element they belong to."""
    return str(spec.bpmn_id or spec.name.split(".")[0])


def _named(spec: Any) -> bool:
    """A BPMN element people drew (not one of SpiffWorkflow's own: start, joins, splits, root)."""
    return bool(getattr(spec, "bpmn_id", None))


def _boundary_event(task: Any) -> bool:
    """A waiting event attached to a task (its parent is the task's boundary-event split)."""
    parent = task.parent
    return parent is not None and isinstance(parent.task_spec, BoundaryEventSplit) and isinstance(
        task.task_spec, CatchingEvent)


@dataclass
class _Part:
    """One workflow of the run with the spec it moves to and the alignment of its task specs."""

    workflow: Any
    target: Any
    alignment: dict[Any, Any]
    changes: dict[Any, list[str]]

    def new_spec(self, task: Any) -> Any:
        return self.alignment.get(task.task_spec)

    def changed_keys(self, task: Any) -> set[str]:
        return set(self.changes.get(task.task_spec) or ()) - _FLOW_KEYS


@dataclass
class _Survey:
    """The run read against the target: its parts, and what the plan reports."""

    parts: list[_Part]
    missing: list[str]
    #: subprocess ids dropped with the move (finished, their element gone or calling another process)
    dropped_subprocesses: list[Any]


def _aligned(original: Any, new: Any) -> tuple[dict[Any, Any], dict[Any, list[str]]]:
    diff = SpecDiff(SPEC_SERIALIZER.registry, original, new)
    alignment = {old: new_spec for old, new_spec in diff.alignment.items() if new_spec is not None}
    # SpiffWorkflow's own elements (the start, the end join, the root) keep their names in every version.
    for name, old in original.task_specs.items():
        if old not in alignment and name in new.task_specs and not _named(old):
            alignment[old] = new.task_specs[name]
    return alignment, diff.comparisons


def _survey(workflow: Any, spec: Any, subprocess_specs: dict[str, Any]) -> _Survey:
    """The run's workflows aligned with the target specs. A subprocess follows its element: the
    element's new version names the process it runs (an embedded subprocess's own spec, or the
    called process)."""
    top = _Part(workflow, spec, *_aligned(workflow.spec, spec))
    parts_of = {id(workflow): top}
    owners: dict[Any, tuple[Any, Any]] = {}
    for one in (workflow, *workflow.subprocesses.values()):
        for task in one.tasks.values():
            owners[task.id] = (task, one)
    parts, missing, dropped = [top], [], []
    for sub_id, sub in workflow.subprocesses.items():  # in the order they opened: callers first
        owner, owner_workflow = owners.get(sub_id, (None, None))
        owner_part = parts_of.get(id(owner_workflow))
        new_owner = owner_part.new_spec(owner) if owner is not None and owner_part is not None else None
        runs = getattr(new_owner, "spec", None)
        target = subprocess_specs.get(runs) if runs == sub.spec.name else None
        if target is None:
            if any(t._state & _OPEN for t in sub.tasks.values()):
                missing.append(sub.spec.name)
            else:
                dropped.append(sub_id)
            continue
        part = _Part(sub, target, *_aligned(sub.spec, target))
        parts.append(part)
        parts_of[id(sub)] = part
    return _Survey(parts, missing, dropped)


def _cuts(part: _Part, dropped_subprocesses: set[Any]) -> tuple[list[Any], list[tuple[Any, bool]], list[Any]]:
    """(waiting boundary events to remove, finished tasks to cut, finished tasks that cannot be
    cut) of ``part``: the tasks whose element the version dropped, cut leaves first, as cutting
    leaves a branching task single file. A cut task's data is what its descendants and anything
    that reads its parent again (a waiting event, a join, a retry) must still see: it is folded
    into its parent when that parent has no other branch (``True`` with the task), and a cut that
    would lose it (a task that changed the data, beside another branch) is not made."""
    tasks = part.workflow.tasks
    events = [t for t in tasks.values() if part.new_spec(t) is None and t._state == TaskState.WAITING
              and _boundary_event(t)]
    gone = {t.id for t in events}
    children = {t.id: [c for c in t._children if c not in gone] for t in tasks.values()}
    dropped = [t for t in tasks.values() if part.new_spec(t) is None and t._state & _FINISHED]
    owners = set(part.workflow.top_workflow.subprocesses) - dropped_subprocesses
    cut: list[tuple[Any, bool]] = []
    left = [t for t in dropped if t.id not in owners and t._parent is not None]
    progress = True
    while progress:
        progress = False
        for task in list(left):
            kids = children[task.id]
            siblings = children[task._parent]
            single = len(siblings) == 1
            if kids and not (len(kids) == 1 and task._state == TaskState.COMPLETED):
                continue  # branching
            fold = single and task._state == TaskState.COMPLETED
            if not fold and kids and task.data != tasks[task._parent].data:
                continue  # its data would be lost to what comes after it
            cut.append((task, fold))
            left.remove(task)
            at = siblings.index(task.id)
            siblings[at:at + 1] = kids
            progress = True
    done = {t.id for t, _fold in cut}
    stuck = [t for t in dropped if t.id not in done]
    return events, cut, stuck


def _open_elsewhere(part: _Part, task: Any, added: set[Any], ahead: set[Any]) -> str | None:
    """An open task the running instance cannot carry into the new version as it is:

    - a running multi-instance or loop changed in more than its label or flows (its kind, its
      collection, output, completion or loop condition);
    - a join waiting for branches whose incoming flows changed (an arrival would wait for the wrong
      branches, or never count), or one predicted below this task, whose split is already behind,
      with an incoming flow no open task leads to;
    - a task matched by its place that lands on another kind of element, or after an element the
      version added (a step put before it would be skipped, a subprocess put around it not entered);
    - a task the version puts after a parallel or inclusive split it never passed (the join after
      it would wait for the split's other branches for ever).

    Returns the element to name (the join, for a join), or None."""
    if task._state == TaskState.STARTED and isinstance(task.task_spec, LoopTask):
        if part.changed_keys(task) - _LABEL_KEYS:
            return _element(task.task_spec)
    if task._state == TaskState.WAITING and _counting_join(task.task_spec):
        if "inputs" in set(part.changes.get(task.task_spec) or ()):
            return _element(task.task_spec)
    new = part.new_spec(task)
    if new is None:
        return None
    if new.name != task.task_spec.name and _named(task.task_spec) and (
            "typename" in part.changed_keys(task) or any(spec in added for spec in new.inputs)):
        return _element(task.task_spec)
    parent = task.parent
    parent_new = (part.new_spec(parent) or parent.task_spec) if parent is not None else None
    for spec in new.inputs:
        if spec is not parent_new and isinstance(spec, (ParallelGateway, InclusiveGateway)) and len(spec.outputs) > 1:
            return _element(task.task_spec)
    return _join_behind(part, task, ahead)


def _counting_join(spec: Any) -> bool:
    """A parallel or inclusive join: it counts the branches that arrived (the end does not)."""
    return isinstance(spec, UnstructuredJoin) and not isinstance(spec, _EndJoin)


def _join_behind(part: _Part, task: Any, ahead: set[Any]) -> str | None:
    """A join predicted below the open ``task``, with changed incoming flows, whose split the
    instance has passed (no split is predicted between them), with an incoming flow that no open
    task of the instance leads to (``ahead``): it would wait for a branch the instance never took."""
    stack = [c for c in task.children if c._state & _PREDICTED]
    while stack:
        child = stack.pop()
        new = part.new_spec(child) or child.task_spec
        if _counting_join(child.task_spec) and "inputs" in set(part.changes.get(child.task_spec) or ()):
            if any(spec not in ahead for spec in new.inputs):
                return _element(new)
        if len(child.task_spec.outputs) > 1 and isinstance(child.task_spec, (ParallelGateway, InclusiveGateway)):
            continue  # a split still to come: its join is predicted anew from it
        stack.extend(c for c in child.children if c._state & _PREDICTED)
    return None


def _ahead(part: _Part) -> set[Any]:
    """The new version's elements that the workflow's open tasks lead to (themselves included)."""
    seen: set[Any] = set()
    stack = [part.new_spec(t) for t in part.workflow.tasks.values() if t._state & _OPEN]
    while stack and len(seen) < 10_000:
        spec = stack.pop()
        if spec is None or spec in seen:
            continue
        seen.add(spec)
        stack.extend(spec.outputs)
    return seen


def _fired_boundary_events(part: _Part, task: Any) -> list[str]:
    """For a waiting boundary-event join the version removed: the boundary events of its split
    that fired (their branches are history), which is why it cannot move."""
    if not isinstance(task.task_spec, BoundaryEventJoin):
        return []
    split = task.parent
    while split is not None and not isinstance(split.task_spec, BoundaryEventSplit):
        split = split.parent
    if split is None:
        return []
    return [_element(c.task_spec) for c in split.children if _boundary_event(c)
            and c._state & _FINISHED and part.new_spec(c) is None] or [_element(split.task_spec)]


def _changed(part: _Part, task: Any) -> bool:
    """The element of an open task changed in what it is (an event: in what it waits for, not in
    its label)."""
    keys = part.changed_keys(task)
    if isinstance(task.task_spec, CatchingEvent) and "typename" not in keys:
        new = part.new_spec(task)
        return new is not None and _waits_for(task.task_spec) != _waits_for(new)
    return bool(keys)


def _armed(part: _Part, task: Any) -> list[Any]:
    """The boundary-event specs the new version attaches to the open ``task`` that it lacks."""
    new = part.new_spec(task)
    if new is None or task.parent is None:
        return []
    split = _split_of(new, task)
    if split is None:
        return []
    parent = task.parent
    have = {part.new_spec(child) or child.task_spec for child in parent.children} \
        if (part.new_spec(parent) or parent.task_spec) is split else set()
    return [s for s in split.outputs if s not in have and s is not new]


def _split_of(spec: Any, task: Any) -> Any:
    """The boundary-event split the (new) ``spec`` of the open ``task`` hangs below, if it has
    boundary events and the task can take them: not a boundary event itself, not an item of a
    multi-instance (the events belong to the whole)."""
    splits = [s for s in spec.inputs if isinstance(s, BoundaryEventSplit)]
    if len(splits) != 1 or isinstance(spec, splits[0].event_type):
        return None
    parent = task.parent
    if parent is not None and isinstance(parent.task_spec, LoopTask):
        return None
    return splits[0]


def plan_migration(workflow: Any, spec: Any, subprocess_specs: dict[str, Any]) -> MigrationPlan:
    """What moving ``workflow`` onto ``spec`` would do; changes nothing."""
    return _plan(_survey(workflow, spec, subprocess_specs))[0]


_Cuts = tuple[list[Any], list[tuple[Any, bool]], list[Any]]


def _plan(survey: _Survey) -> tuple[MigrationPlan, list[_Cuts]]:
    """The plan of ``survey``, and each part's ``_cuts`` (which ``migrate`` makes)."""
    unmapped: set[str] = set()
    history: set[str] = set()
    changed: set[str] = set()
    kept: set[str] = set()
    dropped: set[str] = set()
    gone_subs = set(survey.dropped_subprocesses)
    incompatible: set[str] = set()
    armed: set[str] = set()
    cuts = [_cuts(part, gone_subs) for part in survey.parts]
    for part, (events, cut, stuck) in zip(survey.parts, cuts, strict=True):
        for task in stuck:  # SpiffWorkflow's own split of a task's boundary events: name the events
            named = [c for c in task.children if _named(c.task_spec) and part.new_spec(c) is None] \
                if isinstance(task.task_spec, BoundaryEventSplit) else []
            if named:
                history.update(_element(c.task_spec) for c in named)
            else:
                history.add(_element(task.task_spec))
        dropped.update(_element(t.task_spec) for t in (*events, *(c for c, _fold in cut)) if _named(t.task_spec))
        event_ids = {t.id for t in events}
        added = set(part.target.task_specs.values()) - set(part.alignment.values())
        ahead = _ahead(part)
        for task in part.workflow.tasks.values():
            if not task._state & _OPEN or task.id in event_ids:
                continue
            if part.new_spec(task) is None:
                fired = _fired_boundary_events(part, task)
                if fired:  # the join of a task whose boundary event went its own way, which the version removed
                    history.update(fired)
                else:
                    unmapped.add(_element(task.task_spec))
                continue
            elsewhere = _open_elsewhere(part, task, added, ahead)
            if elsewhere is not None:
                incompatible.add(elsewhere)
            armed.update(_element(spec) for spec in _armed(part, task))
            if _named(task.task_spec):
                (changed if _changed(part, task) else kept).add(_element(task.task_spec))
    plan = MigrationPlan(unmapped=tuple(sorted(unmapped)), history=tuple(sorted(history)),
                         processes=tuple(sorted(survey.missing)), incompatible=tuple(sorted(incompatible)),
                         changed=tuple(sorted(changed - unmapped)), kept=tuple(sorted(kept - changed - unmapped)),
                         dropped=tuple(sorted(dropped)), armed=tuple(sorted(armed)))
    return plan, cuts


def _prepared_again(part: _Part, task: Any) -> bool:
    """Whether the move resets ``task``: open and ready or waiting, its element changed
    (``_changed``), and no branch of its own started yet."""
    if not task._state & _RESET:
        return False
    return _changed(part, task) and all(child._state & _PREDICTED for child in task.children)


def _definition(value: Any) -> Any:
    """An event definition as data, without the labels (``name``, ``description``) it carries."""
    if isinstance(value, dict):
        return {k: _definition(v) for k, v in value.items() if k not in ("name", "description")}
    if isinstance(value, list):
        return [_definition(v) for v in value]
    return value


def _waits_for(spec: Any) -> Any:
    """What a catching event waits for: its event definition without labels."""
    return _definition(SPEC_SERIALIZER.registry.convert(spec.event_definition))


def _timers(spec: Any) -> list[Any]:
    """The timer definitions among what ``spec`` waits for (an event-based gateway's included)."""
    if getattr(spec, "event_definition", None) is None:
        return []
    found = _waits_for(spec)
    parts = found.get("event_definitions", [found]) if isinstance(found, dict) else []
    return [p for p in parts if isinstance(p, dict) and "Timer" in str(p.get("typename", ""))]


def migrate(workflow: Any, spec: Any, subprocess_specs: dict[str, Any]) -> MigrationPlan:
    """Move ``workflow`` (a whole run) onto ``spec`` and its subprocess specs, or raise
    :class:`MigrationRefused` (the run may then be half moved: drop it). Does not advance it."""
    survey = _survey(workflow, spec, subprocess_specs)
    plan, cuts = _plan(survey)
    if not plan.possible:
        raise MigrationRefused("the instance cannot be moved to that version", plan)
    reset: set[Any] = set()
    #: timers whose due time outlives the reset of their task: the same timers, another event beside them
    due: dict[Any, Any] = {}
    internal: dict[Any, dict[str, Any]] = {}
    for part, (events, cut, _stuck) in zip(survey.parts, cuts, strict=True):
        for task in part.workflow.tasks.values():
            if _prepared_again(part, task):
                reset.add(task.id)
                if not isinstance(task.task_spec, CatchingEvent):
                    # a multi-instance item's key and value, kept over the reset
                    internal[task.id] = copy.deepcopy(task.internal_data)
                value = task.internal_data.get("event_value")
                timers = _timers(task.task_spec)
                if value is not None and timers and timers == _timers(part.new_spec(task)):
                    due[task.id] = value
        for event in events:  # a boundary event the version removed: the task it waited beside stays
            part.workflow.top_workflow.event_manager.remove_task(event)
            part.workflow._remove_task(event.id)
        # 1. every task onto its element of the new version; what the version dropped leaves the history
        part.workflow.spec = part.target
        for task in part.workflow.tasks.values():
            new_spec = part.new_spec(task)
            if new_spec is not None:
                task.task_spec = new_spec
        _cut(part.workflow, cut)
    for sub_id in survey.dropped_subprocesses:
        del workflow.subprocesses[sub_id]
    workflow.subprocess_specs = subprocess_specs
    # 2. open tasks: prepared again where their element changed, else their predictions renewed
    for part in survey.parts:
        for task in [t for t in part.workflow.tasks.values() if t._state & _OPEN]:
            if task.id not in part.workflow.tasks:
                continue  # removed with the branch of a task reset before it
            _arm_added_boundary_events(task)
            if task.id in reset:
                # with its own data: what it was given when it became ready (a multi-instance
                # item, a message) is not its parent's to give again
                task.reset_branch(copy.deepcopy(task.data))
                if task.id in due and task._state == TaskState.WAITING:
                    task.internal_data["event_value"] = due[task.id]
                if task.id in internal:
                    task.internal_data = {**internal[task.id], **task.internal_data}
            else:
                _predict_again(task)
        if part.workflow.last_task is not None and part.workflow.last_task.id not in part.workflow.tasks:
            part.workflow.last_task = None
    _register_waiting_events(workflow, survey.parts)
    # 3. nothing may still point at the old version, and no boundary-event join waits without its split
    for part in survey.parts:
        for task in part.workflow.tasks.values():
            if part.target.task_specs.get(task.task_spec.name) is not task.task_spec or (
                    isinstance(task.task_spec, BoundaryEventJoin) and not task._state & _FINISHED
                    and task.find_ancestor(task.task_spec.split_task) is None):
                raise MigrationRefused(
                    f"'{_element(task.task_spec)}' could not be moved to the new version", plan,
                    element_id=task.task_spec.bpmn_id or _element(task.task_spec))
    return plan


def _cut(workflow: Any, cut: list[tuple[Any, bool]]) -> None:
    """Remove the finished tasks in ``cut`` (in the order ``_cuts`` found them cuttable). A cut
    task's child is hung where it was, so every remaining task keeps its ancestors; its data goes
    to its parent when ``fold`` (the parent then holds what the cut step left), and so does the
    workflow's last task."""
    tasks = workflow.tasks
    for task, fold in cut:
        parent = tasks[task._parent]
        if fold:
            parent.data = task.data
        at = parent._children.index(task.id)
        parent._children[at:at + 1] = task._children
        for child_id in task._children:
            tasks[child_id]._parent = parent.id
        if workflow.last_task is not None and workflow.last_task.id == task.id:
            workflow.last_task = parent
        del tasks[task.id]


def _arm_added_boundary_events(task: Any) -> None:
    """Boundary events the new version attaches to the open ``task``: a split is put above it if
    it had none, and each event missing under the split is added and armed (a timer counts from
    the move)."""
    split_spec = _split_of(task.task_spec, task)
    parent = task.parent
    if split_spec is None or parent is None:
        return
    if parent.task_spec is not split_spec:
        split = Task(task.workflow, split_spec, state=TaskState.COMPLETED)
        split.data = copy.deepcopy(parent.data)
        at = parent._children.index(task.id)
        parent._children[at] = split.id
        split._parent = parent.id
        split._children = [task.id]
        task._parent = split.id
        # finished when the task became ready: the joins' rounds read this order (app/engine/joins.py)
        split.last_state_change = parent.last_state_change
        _place_before(task.workflow.tasks, split.id, task.id)
        parent = split
    have = {child.task_spec for child in parent.children}
    for event_spec in [s for s in parent.task_spec.outputs if s not in have]:
        event = parent._add_child(event_spec, TaskState.FUTURE)
        event.task_spec._update(event)
        _predict_again(event)


def _place_before(tasks: dict[Any, Any], new_id: Any, before_id: Any) -> None:
    """Put ``new_id`` just before ``before_id`` in the workflow's task map: a stored task's data is
    rebuilt from its parent's, in the map's order, so a parent must come before its children."""
    ordered = list(tasks.items())
    new = tasks[new_id]
    tasks.clear()
    for key, value in ordered:
        if key == before_id:
            tasks[new_id] = new
        if key != new_id:
            tasks[key] = value


def _predict_again(task: Any) -> None:
    """Drop what is predicted below ``task`` and predict it again from its (new) element.

    A task with open children (a running multi-instance or loop) keeps them, and gets the
    successor the new version names; a failed task's predictions come back with its retry."""
    own = getattr(task.task_spec, "task_spec", None) if isinstance(task.task_spec, LoopTask) else None
    for child in list(task.children):
        if child._state & _PREDICTED and (own is None or child.task_spec.name != own):
            task.workflow._remove_task(child.id)
    if task._state & TaskState.ERROR:
        return
    if own is None and not any(child._state & _OPEN for child in task.children):
        definition = getattr(task.task_spec, "event_definition", None)
        if not isinstance(definition, CycleTimerEventDefinition):
            task.task_spec._predict_hook(task)
    elif own is not None:  # a running multi-instance or loop: its successor beside its items
        have = {child.task_spec for child in task.children}
        for output in task.task_spec.outputs:
            if output not in have:
                task._add_child(output, TaskState.FUTURE)
    # else: an event whose branches already run (a cycle timer that fired) keeps them as they are
    for child in task.children:
        if child._state & _PREDICTED:
            child.task_spec._predict(child, mask=_PREDICTED)


def _register_waiting_events(workflow: Any, parts: list[_Part]) -> None:
    """SpiffWorkflow's register of waiting events, as a restore of the moved run would build it
    (removed and reset tasks may linger in it otherwise)."""
    register = workflow.event_manager.tasks
    register.clear()
    for part in parts:
        for task in part.workflow.tasks.values():
            if isinstance(task.task_spec, CatchingEvent) and task._state == TaskState.WAITING:
                register[task.id] = task
