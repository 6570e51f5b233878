"""Finished stretches of a deep task tree are cut out, so gateway loops can run for ever.

A loop drawn with a sequence flow back to an earlier element (an exclusive gateway sending a
reopened incident back to investigation) makes SpiffWorkflow's task tree one round deeper each
time round: every task of a round hangs below the last task of the round before. Past about 1,000
levels SpiffWorkflow's walks stop descending, so the instance silently loses its open task and
reports itself completed (about 250 rounds of a four-element loop); before that, recursive
helpers raise RecursionError, and every step walks, dumps and loads the whole history
(spiffworkflow.md §7). Loop *markers* are compacted elsewhere (``WorkflowRun.compact``).

When a workflow's tree gets deeper than ``TRIM_DEPTH``, old finished history is cut out, in two
ways: a completed task in a single-file chain (exactly one child) is spliced out, its child hung
where it was among its parent's children; and a finished task without children (a cancelled
boundary-event listener, a boundary event's join) is dropped. Neither touches:

- the ``TRIM_KEEP`` levels above every task that is not finished, nor the children hanging off
  them (recent history that joins, boundary events and data merges look at);
- the root, the run's and the workflow's last completed task, a task that owns a subprocess;
- a parallel, inclusive or end join of the current round, nor the task such a join hangs below:
  a join counts its arrived inputs, and merges data, from the parents of its tasks of the round,
  which starts at its last firing (app/engine/joins.py). So what is kept of a join is its last
  firing and every task of it that finished after that (all of them, before it first fires).
  Older tasks of the join, stale rounds that nothing reads, are cut like any other history, so a
  parallel join inside a drawn loop runs for ever too. The end join (where every end event
  arrives; it fires when the process ends and merges all its arrivals' data) keeps its latest
  arrival only, the older arrivals' data folded into it in their order. (Boundary-event and
  start-event joins look at their own nearest split only.)

Splicing keeps every remaining task's ancestors and descendants (minus the removed ones) and its
data (a task's data is whole in memory; the stored delta is taken against the new parent). What it
drops is the engine's copy of old rounds, whose steps our audit history and task rows keep; the
diagram's "completed" highlighting then shows the recent rounds only, as with loop markers.
"""

from __future__ import annotations

import copy
from typing import Any

from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from .joins import in_round, last_firings, started_at

#: A tree with an open task deeper than this is trimmed. Normal processes stay far below it (the
#: incident lifecycle: 12 levels); a looping one is cut back to about ``TRIM_KEEP`` levels each
#: time, so its stored state swings between the sizes of about 30 and 60 levels of history, within
#: 2x (issue #6's state target; at 120 the swing was 4x).
TRIM_DEPTH = 60
#: Finished levels kept above every open task.
TRIM_KEEP = 30
#: Deeper than this after trimming, an instance is put in error (``too_deep``): what cannot be
#: spliced (a loop whose every round leaves a task open, which keeps its history) would
#: otherwise reach SpiffWorkflow's limits: its recursive helpers take two stack frames per level
#: (RecursionError from about 400 levels inside a web request), and its walks stop at 1,000,
#: where the instance silently stops and reports itself completed.
MAX_DEPTH = 300

_FINISHED = TaskState.FINISHED_MASK
_ARRIVED = TaskState.READY | TaskState.WAITING | TaskState.FINISHED_MASK


def _depth(task: Any, tasks: dict[Any, Any], limit: int) -> int:
    """How many parents ``task`` has, counting at most ``limit``."""
    depth = 0
    parent_id = task._parent
    while parent_id is not None and depth < limit:
        depth += 1
        parent_id = tasks[parent_id]._parent
    return depth


def too_deep(workflow: Any) -> Any:
    """An open task deeper than ``MAX_DEPTH`` in ``workflow``'s tree, or None."""
    tasks: dict[Any, Any] = workflow.tasks
    if len(tasks) <= MAX_DEPTH:
        return None
    for task in tasks.values():
        if not task._state & _FINISHED and _depth(task, tasks, MAX_DEPTH + 1) > MAX_DEPTH:
            return task
    return None


def trim(workflow: Any, owners: set[Any], last_task: Any) -> int:
    """Splice finished single-file stretches out of ``workflow``'s tree if it got too deep.

    ``owners``: ids of tasks that own a subprocess (of the whole run); ``last_task``: the run's
    last completed task. Returns how many tasks were removed."""
    tasks: dict[Any, Any] = workflow.tasks
    if len(tasks) <= TRIM_DEPTH:  # a tree that deep has at least as many tasks
        return 0
    open_tasks = [task for task in tasks.values() if not task._state & _FINISHED]
    if not any(_depth(task, tasks, TRIM_DEPTH + 1) > TRIM_DEPTH for task in open_tasks):
        return 0
    keep = {workflow.task_tree.id, *owners}
    if last_task is not None:
        keep.add(last_task.id)
    if workflow.last_task is not None:
        keep.add(workflow.last_task.id)
    for task in open_tasks:  # recent history above every open task
        parent_id, levels = task._parent, 0
        while parent_id is not None and levels < TRIM_KEEP:
            keep.add(parent_id)
            parent_id = tasks[parent_id]._parent
            levels += 1
    removed = _fold_end_arrivals(tasks, keep)
    joins = _joins_in_use(tasks, keep)
    changed = True
    while changed:  # a removed leaf can leave its parent single-file, or a leaf itself
        changed = False
        for task in list(tasks.values()):
            if task.id in keep or not task._state & _FINISHED or task.id in joins:
                continue
            parent = tasks.get(task._parent)
            if parent is None or parent.id in keep:
                continue
            if not task._children:  # a dead end of old history: a cancelled listener, a boundary join
                parent._children.remove(task.id)
                del tasks[task.id]
            elif len(task._children) == 1 and task._state == TaskState.COMPLETED:
                child = tasks[task._children[0]]
                if child.id in joins:
                    continue
                parent._children[parent._children.index(task.id)] = child.id
                child._parent = parent.id
                del tasks[task.id]
            else:
                continue
            removed += 1
            changed = True
    return removed


def _joins_in_use(tasks: dict[Any, Any], keep: set[Any]) -> set[Any]:
    """Ids of the join tasks (parallel, inclusive, end) that the joins may still read: those
    ``joins.in_round`` counts for a round starting at the join's last firing; adds each join's
    last firing to ``keep``."""
    fired = last_firings(tasks)
    keep.update(task.id for task in fired.values())
    return {task.id for task in tasks.values() if isinstance(task.task_spec, UnstructuredJoin)
            and in_round(task, None, started_at(fired.get(task.task_spec)))}


def _fold_end_arrivals(tasks: dict[Any, Any], keep: set[Any]) -> int:
    """Cut the old arrivals at the end join (every end event reached: a branch that ends on its
    own each round leaves one a round) down to the latest, keeping what the end join will merge.

    The end join, when the process ends, merges the data of every arrival in the order they came
    and then its own branch's. So each old arrival's data goes into the latest arrival's, under
    it (what a later arrival holds wins), newest first, and the old arrival is removed; its end
    event is then a dead leaf for the trim. Returns how many arrivals were removed."""
    by_spec: dict[Any, list[Any]] = {}
    for task in tasks.values():
        # arrivals only: a predicted one (below an end event not reached yet) may still be dropped
        if isinstance(task.task_spec, _EndJoin) and task._state & _ARRIVED:
            by_spec.setdefault(task.task_spec, []).append(task)
    removed = 0
    for arrivals in by_spec.values():
        if any(task._state == TaskState.COMPLETED for task in arrivals):
            continue  # the process is ending: nothing to fold into
        arrivals.sort(key=lambda t: t.last_state_change)
        latest = arrivals[-1]
        if latest.parent is None:
            continue
        for old in reversed(arrivals[:-1]):
            parent = tasks.get(old._parent)
            if not old._state & _FINISHED or old._children or old.id in keep or parent is None:
                continue
            own = latest.parent.data
            folded = DeepMerge.merge(copy.deepcopy(parent.data), own)
            # its own keys first, in their order: the order a loaded task's data is rebuilt in
            latest.parent.data = {**{key: folded[key] for key in own}, **folded}
            parent._children.remove(old.id)
            del tasks[old.id]
            removed += 1
    return removed
