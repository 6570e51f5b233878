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

The fix is where a round starts. The join task that fired last in *this* token's history is
its nearest ancestor of the join's spec that completed; every other task of the spec that
finished at or before that moment belongs to a round already consumed. Such tasks neither count
as arrivals (``_check_threshold_unstructured``) nor have their branch's data merged again when
the join fires (``UnstructuredJoin._run_hook``). Before the first firing there is no such
ancestor and nothing changes; nothing new is stored (the cut-off is read from the tree and the
tasks' ``last_state_change``), so instances saved before this fix run on correctly.

tests/engine/test_joins.py holds the two joins to a plain rule: a round's join fires once, when
each of the round's branches has finished, whatever the order.
"""

from __future__ import annotations

import copy
from typing import Any

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


def last_firing(spec: Any, my_task: Any) -> Any:
    """The task of ``spec`` that fired last on ``my_task``'s path (None: it never fired there)."""
    task = my_task.parent
    while task is not None:
        if task.task_spec is spec and task.state == TaskState.COMPLETED:
            return task
        task = task.parent
    return None


def round_started(spec: Any, my_task: Any) -> float | None:
    """When the last firing of ``spec`` on ``my_task``'s path happened (None: never)."""
    fired = last_firing(spec, my_task)
    return None if fired is None else float(fired.last_state_change)


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
    # than the first round's; this round's walk starts below the join's last firing.
    fired = last_firing(self, my_task)
    started = None if fired is None else float(fired.last_state_change)
    tasks, sources = [], []
    for root in (fired.children if fired is not None else [my_task.workflow.task_tree]):
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
    # finished (see ``merged``).
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
    highest = 1 if arrived else None  # my own branch's arrival sits below my_task.parent (0)
    for arrival in arrived:
        task = arrival.parent
        while task is not None and task.id not in chain:
            task = task.parent
        if task is None:
            return None
        highest = max(highest or 0, chain[task.id])
    if highest is None:
        return None
    task = my_task.parent
    for _ in range(highest):
        task = task.parent
    return task


def merged(base: dict[str, Any], branches: list[dict[str, Any]]) -> dict[str, Any]:
    """``base`` (the data where the branches parted) with what each branch changed of it, in
    order: a later branch wins a key both changed. SpiffWorkflow merges each branch's whole
    data instead, so a value every branch carried from before the split comes back from the
    last branch to finish over what an earlier one wrote there (in a loop, last round's value
    over this round's)."""
    out = copy.deepcopy(base)
    for data in branches:
        DeepMerge.merge(out, copy.deepcopy(changes(base, data)))
    return out


def changes(base: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What ``data`` adds to or changes in ``base``, down through nested dicts."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in base:
            out[key] = value
        elif base[key] != value:
            was = base[key]
            out[key] = changes(was, value) if isinstance(was, dict) and isinstance(value, dict) else value
    return out


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
