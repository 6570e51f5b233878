"""Parallel and inclusive joins that count only this round's tokens, in loops drawn with flows.

SpiffWorkflow 3.2 represents each token that reaches a join as a task of the join's spec under
the branch that carried it. When the join fires, the task that fired completes, the other
arrivals of the round are cancelled, and the process goes on under the task that fired. A loop
drawn back to before the split runs the join again in the next round, and the threshold check
then looks at every task of the join's spec in the tree: the cancelled arrivals of earlier
rounds still sit under branches that completed, so they count as tokens that have arrived.

The effect: in a rework loop with two parallel branches, when round n finished "work" first and
round n+1 finishes "check" first, the join of round n+1 fires as soon as "check" completes (it
takes round n's "work" for this round's), and the next round starts while this round's "work"
is still open; the instance then holds two tokens where the diagram allows one. The same holds
for inclusive gateways. The branch that happens to finish first is the requester's, so this is
not rare in practice: parallel approvals inside a change's rework loop are common.

The fix is where a round starts: at the join's last firing (its latest task that completed;
the loop usually goes on below it). Every other task of the join that finished at or before
that moment belongs to a round already consumed: it neither counts as an arrival
(``_check_threshold_unstructured``) nor has its branch's data merged again when the join fires
(``UnstructuredJoin._run_hook``). Before the first firing nothing changes. Nothing new is stored:
the cut-off is read from the tree and the tasks' ``last_state_change``, which
app/engine/state_change.py keeps rising within a workflow even when a step runs on a host whose
clock is behind, so instances saved before this fix run on correctly.

SpiffWorkflow's join also merges each branch's whole data, the last to finish winning, so what
an earlier branch wrote to a value every branch carried from before the split is lost (in a
loop, every round). Ours applies each branch's own changes, against the data where the
branches parted, in the order they finished (``merged``). The end join (where all of a
process's end events meet) keeps SpiffWorkflow's merge.

A join that waits for a token no path can bring any more (a loop drawn back into one branch
only, a parallel join after an exclusive choice) would leave the instance running with nothing
to do; ``stuck_join`` finds it, and the runtime puts the instance in error instead.

tests/engine/test_joins.py holds the two joins to a plain rule: a round's join fires once, when
each of the round's branches has finished, whatever the order, with every branch's changes.
"""

from __future__ import annotations

import copy
from typing import Any

from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

ORIGINALS = {
    (ParallelGateway, "_check_threshold_unstructured"): ParallelGateway._check_threshold_unstructured,
    (InclusiveGateway, "_check_threshold_unstructured"): InclusiveGateway._check_threshold_unstructured,
    (UnstructuredJoin, "_run_hook"): UnstructuredJoin._run_hook,
}


def last_firings(tasks: dict[Any, Any]) -> dict[Any, Any]:
    """Each join spec's task that fired last among ``tasks`` (a workflow's), by spec. Last means
    the latest ``last_state_change``, which app/engine/state_change.py keeps rising within a
    workflow whatever the clock of the host that takes the step."""
    fired: dict[Any, Any] = {}
    for task in tasks.values():
        spec = task.task_spec
        if isinstance(spec, UnstructuredJoin) and task._state == TaskState.COMPLETED and (
                spec not in fired or task.last_state_change > fired[spec].last_state_change):
            fired[spec] = task
    return fired


def last_firing(spec: Any, my_task: Any) -> Any:
    """The task of ``spec`` that fired last in ``my_task``'s workflow (None: it never fired).
    Usually it sits above ``my_task`` (the loop goes on below it); when the join leads out of
    the loop (to an end, say) it does not, and its last firing still ends the round before.
    (``my_task`` is still running here, so it is not among them.)"""
    return last_firings(my_task.workflow.tasks).get(spec)


def started_at(fired: Any) -> float | None:
    """When a round begins: at the join's last firing ``fired`` (None: it never fired)."""
    return None if fired is None else float(fired.last_state_change)


def round_started(spec: Any, my_task: Any) -> float | None:
    """When the last firing of ``spec`` happened (None: never)."""
    return started_at(last_firing(spec, my_task))


def in_round(task: Any, my_task: Any, started: float | None) -> bool:
    """Whether ``task`` (of the join's spec) may still stand for a token of ``my_task``'s round."""
    return (started is None or task is my_task or not task.has_state(TaskState.FINISHED_MASK)
            or task.last_state_change > started)


def _parallel_threshold(self: Any, my_task: Any) -> bool:
    # SpiffWorkflow's check, over this round's tasks of the join only.
    started = round_started(self, my_task)
    waiting_inputs = set(self.inputs)

    def remove_ancestor(task: Any) -> None:
        while task is not None:
            if task.task_spec in waiting_inputs:
                waiting_inputs.remove(task.task_spec)
                return
            task = task.parent

    for task in my_task.workflow.get_tasks(spec_name=self.name):
        if not in_round(task, my_task, started):
            continue
        if task.is_descendant_of(my_task):
            remove_ancestor(task)  # reached only after this join completes: not waited for
        elif my_task.is_descendant_of(task):
            continue  # an earlier round's join on this token's own path
        elif task.parent.state == TaskState.COMPLETED and task.parent.task_spec in waiting_inputs:
            waiting_inputs.remove(task.parent.task_spec)
    return not waiting_inputs


def _inclusive_threshold(self: Any, my_task: Any) -> bool:
    # SpiffWorkflow's check, over this round's tasks of the join and this round's sources (ready
    # and waiting tasks that may still reach it).
    # SpiffWorkflow walks the tree from its root to the join's tasks, and in a loop no further
    # than the first round's; this round's walk starts below the join's last firing when the
    # loop goes on below it.
    fired = last_firing(self, my_task)
    started = started_at(fired)
    tasks, sources = [], []
    below = fired is not None and my_task.is_descendant_of(fired)
    for root in (fired.children if below else [my_task.workflow.task_tree]):
        for task in my_task.workflow.get_tasks(first_task=root, end_at_spec=self.name):
            if task.task_spec == self:
                if in_round(task, my_task, started):
                    tasks.append(task)
            elif task.has_state(TaskState.READY | TaskState.WAITING):
                sources.append(task.task_spec)

    completed_inputs = {task.parent.task_spec for task in tasks if task.parent.state == TaskState.COMPLETED}
    for task in tasks:
        if task.parent.has_state(TaskState.DEFINITE_MASK) and task.parent.task_spec not in completed_inputs:
            return False

    checked: list[Any] = []

    def source_of(spec: Any) -> Any:
        checked.append(spec)
        for parent in spec.inputs:
            if parent not in checked:
                return parent if parent in sources else source_of(parent)
        return None

    for spec in completed_inputs:
        source = source_of(spec)
        if source is not None:
            sources.remove(source)
    for spec in self.inputs:
        if spec not in completed_inputs and source_of(spec) is not None:
            return False
    return True


def _run_hook(self: Any, my_task: Any) -> bool:
    # This round's arrivals only; each branch's own changes applied in the order the branches
    # finished (see ``merged``). The end join (all of a process's end events) keeps
    # SpiffWorkflow's merge: its arrivals span the whole life of the instance, not one round.
    if isinstance(self, _EndJoin):
        return bool(ORIGINALS[(UnstructuredJoin, "_run_hook")](self, my_task))
    started = round_started(self, my_task)
    arrived = sorted((t for t in my_task.workflow.tasks.values()
                      if t.task_spec == self and t.has_state(TaskState.FINISHED_MASK)
                      and in_round(t, my_task, started) and not my_task.is_descendant_of(t)),
                     key=lambda t: t.last_state_change)
    for task in arrived:
        if task.has_state(TaskState.COMPLETED):
            # A branch reset to after it had completed: drop what grew under the old arrival.
            task._drop_children(force=True)
    fork = common_ancestor(my_task, arrived)
    if fork is None:  # SpiffWorkflow's merge: whole branch data, the last to finish winning
        for task in arrived:
            DeepMerge.merge(my_task.data, task.parent.data)
        my_task._inherit_data()
    else:
        data = merged(fork.data, [task.parent.data for task in arrived] + [my_task.parent.data])
        # Keys in the parent's order, then the rest: the order a stored task's data is rebuilt in
        # (its parent's data, then its own delta), so that dump -> load -> dump stays equal.
        first = [key for key in my_task.parent.data if key in data]
        my_task.data = {key: data[key] for key in [*first, *(key for key in data if key not in my_task.parent.data)]}
    return True


def common_ancestor(my_task: Any, arrived: list[Any]) -> Any:
    """The task where this round's branches parted (the split's task, or above it), or None."""
    chain: dict[Any, int] = {}
    task, at = my_task.parent, 0
    while task is not None:
        chain[task.id] = at
        task, at = task.parent, at + 1
    if not arrived:
        return None
    highest = 0
    for arrival in arrived:
        task = arrival.parent
        while task is not None and task.id not in chain:
            task = task.parent
        if task is None:
            return None
        highest = max(highest, chain[task.id])
    task = my_task.parent
    for _ in range(highest):
        task = task.parent
    return task


class _Inside(dict):  # type: ignore[type-arg]
    """Changes inside a dict value, with the branch's whole value (set whole where the merged
    value is no longer a dict)."""

    def __init__(self, changed: dict[str, Any], whole: dict[str, Any]) -> None:
        super().__init__(changed)
        self.whole = whole


def merged(base: dict[str, Any], branches: list[dict[str, Any]]) -> dict[str, Any]:
    """``base`` (the data where the branches parted) with what each branch changed of it, in
    order: a later branch wins a key both changed. A value is set whole (a list a branch
    replaced is that branch's list), except that changes inside a dict go key by key. A key of
    ``base`` goes only if no branch kept it, as with SpiffWorkflow (diagrams delete a key in one
    branch so that its stale copy does not win there). SpiffWorkflow merges each branch's whole
    data instead, so a value every branch carried from before the split comes back from the last
    branch to finish over what an earlier one wrote there (in a loop, last round's value over
    this round's)."""
    out = copy.deepcopy(base)
    for data in branches:
        apply(out, changes(base, data))
    for key in base:
        if not any(key in data for data in branches):
            del out[key]
    return out


def changes(base: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What ``data`` adds to or changes in ``base``, down through nested dicts."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in base:
            out[key] = value
        elif base[key] != value:
            was = base[key]
            out[key] = _Inside(changes(was, value), value) if isinstance(was, dict) and isinstance(value, dict) else value
    return out


def apply(target: dict[str, Any], delta: dict[str, Any]) -> None:
    for key, change in delta.items():
        if isinstance(change, _Inside):
            if isinstance(target.get(key), dict):
                apply(target[key], change)
            else:
                target[key] = copy.deepcopy(change.whole)
        else:
            target[key] = copy.deepcopy(change)


def stuck_join(workflows: list[Any]) -> Any:
    """A parallel or inclusive join that waits while nothing else in the run can move (no task
    ready, no event or timer waiting): no token can reach it any more. None if there is none."""
    stuck = None
    for workflow in workflows:
        for task in workflow.tasks.values():
            state = task._state
            if state == TaskState.READY:
                return None
            if state == TaskState.WAITING:
                if not isinstance(task.task_spec, (ParallelGateway, InclusiveGateway)):
                    return None
                stuck = task
    return stuck


_REPLACEMENTS = {
    (ParallelGateway, "_check_threshold_unstructured"): _parallel_threshold,
    (InclusiveGateway, "_check_threshold_unstructured"): _inclusive_threshold,
    (UnstructuredJoin, "_run_hook"): _run_hook,
}


def install() -> None:
    for (cls, name), function in _REPLACEMENTS.items():
        setattr(cls, name, function)


def uninstall() -> None:
    for (cls, name), function in ORIGINALS.items():
        setattr(cls, name, function)
