"""A faster walk of SpiffWorkflow's task tree, in the same order.

SpiffWorkflow finds its tasks by walking the task tree from the root with ``TaskIterator`` (and
``BpmnTaskIterator``, which also descends into subprocesses). The engine walks the tree several
times per completed task: every ``do_engine_steps`` round asks each workflow for its READY
tasks, every completion refreshes the WAITING ones, joins look for their inputs. In SpiffWorkflow
3.2 the walk keeps its pending tasks in a list that it pops from the front and prepends children
to (both copy the whole list), and it keeps the depth by climbing parent links after every leaf.
Under cProfile, 40-50 % of the bare engine's time on the incident lifecycle is spent in
those walks.

This module replaces the two iterators' stepping with an explicit stack of ``(task, depth)``
pairs that yields exactly the same tasks in exactly the same order:

- depth-first, children in their order, a subprocess's root before the children of the task that
  owns it (BPMN);
- a task's children are read when the task itself is reached, before it is handed out, so a
  caller that changes the tree while iterating sees what SpiffWorkflow's walk would see;
- the same rules for not descending: below ``min_state`` (the filter's states decide it), at
  ``end_at_spec``, into a finished subprocess when only finished states are asked for, and at
  ``max_depth``.

One difference, on purpose: the depth is each task's true depth below the start. SpiffWorkflow
recomputes it by climbing parent links after each leaf, and in a BPMN walk that count drifts up
by one at every subprocess task without children of its own (loop iterations, multi-instance
children), so a ``max_depth`` walk stops early there. Nothing passes ``max_depth`` to a BPMN walk;
at the default of 1,000 the drift would make SpiffWorkflow miss tasks after about a thousand such
tasks, and compaction keeps loops far from that (spiffworkflow.md §7). Within one workflow's tree
both counts agree (tests/engine/test_walk.py checks small limits there).

Breadth-first walks (``depth_first=False``; nothing in the BPMN engine asks for one) keep
SpiffWorkflow's own code. ``install()`` is idempotent and is called when ``app.engine`` is imported;
tests/engine/test_walk.py compares both walks on real workflows, task by task. Measured on the
bare incident lifecycle (bench/bare_engine.py with this walk installed): about 5.3 -> 4.5 ms.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.util.task import BpmnTaskFilter, BpmnTaskIterator
from SpiffWorkflow.util.task import TaskFilter, TaskIterator, TaskState

_FINISHED_MASK = TaskState.FINISHED_MASK

#: SpiffWorkflow's own methods, kept for breadth-first walks and for the comparison tests.
ORIGINAL = {"TaskIterator.__next__": TaskIterator.__next__}


def _matcher(task_filter: Any) -> Any:
    """The filter's test. For the common filter (states, and maybe ``manual``: what the engine
    asks on every step) a closure doing just those checks; any other filter keeps its own."""
    if type(task_filter) not in (TaskFilter, BpmnTaskFilter) or task_filter.updated_ts > 0 \
            or task_filter.spec_name is not None or task_filter.spec_class is not None \
            or getattr(task_filter, "catches_event", None) is not None or getattr(task_filter, "lane", None) is not None:
        return task_filter.matches
    states, manual = task_filter.state, task_filter.manual
    if manual is None:
        return lambda task: task._state & states != 0
    return lambda task: task._state & states != 0 and task.task_spec.manual == manual


def _begin(iterator: Any) -> tuple[list[tuple[Any, int]], Any]:
    """The iterator's stack and filter test, made on its first step."""
    started = iterator.__dict__.get("_walk")
    if started is None:
        # task_list holds the start task until the first step; nothing else has touched it.
        started = ([(task, 0) for task in reversed(iterator.task_list)], _matcher(iterator.task_filter))
        iterator.task_list = []
        iterator._walk = started
    return started  # type: ignore[no-any-return]


def _plain_next(self: Any) -> Any:
    """``TaskIterator.__next__`` for a depth-first walk of one workflow's tree."""
    if not self.depth_first:
        return ORIGINAL["TaskIterator.__next__"](self)
    stack, matches = _begin(self)
    min_state = self.min_state
    max_depth = self.max_depth
    end_at = self.end_at_spec
    pop, push = stack.pop, stack.append
    while stack:
        task, depth = pop()
        child_ids = task._children
        if child_ids and task._state >= min_state and depth < max_depth and task.task_spec.name != end_at:
            tasks = task.workflow.tasks
            below = depth + 1
            for child_id in reversed(child_ids):
                push((tasks.get(child_id), below))
        if matches(task):
            return task
    raise StopIteration


def _bpmn_next(self: Any) -> Any:
    """``__next__`` of ``BpmnTaskIterator``: as above, entering subprocesses too."""
    if not self.depth_first:
        return ORIGINAL["TaskIterator.__next__"](self)
    stack, matches = _begin(self)
    min_state = self.min_state
    max_depth = self.max_depth
    end_at = self.end_at_spec
    skip_subprocesses = self.skip_subprocesses
    only_finished = self.task_filter.state <= _FINISHED_MASK
    pop, push = stack.pop, stack.append
    while stack:
        task, depth = pop()
        workflow = task.workflow
        # (a workflow without subprocesses needs no lookup; the dict is the live one)
        subprocesses = workflow.top_workflow.subprocesses
        subprocess = subprocesses.get(task.id) if subprocesses else None
        child_ids = task._children
        state = task._state
        if subprocess is None:
            expand = bool(child_ids) and state >= min_state
        else:
            expand = True
        if expand and depth < max_depth and task.task_spec.name != end_at:
            tasks = workflow.tasks
            below = depth + 1
            for child_id in reversed(child_ids):
                push((tasks.get(child_id), below))
            if not (subprocess is None or skip_subprocesses or (state >= _FINISHED_MASK and only_finished)):
                push((subprocess.task_tree, below))
        if matches(task):
            return task
    raise StopIteration


def install() -> None:
    """Route both iterators' stepping through the stack walk (idempotent)."""
    TaskIterator.__next__ = _plain_next  # type: ignore[method-assign]
    BpmnTaskIterator.__next__ = _bpmn_next  # type: ignore[attr-defined]


def uninstall() -> None:
    """SpiffWorkflow's own stepping again (tests compare the two)."""
    TaskIterator.__next__ = ORIGINAL["TaskIterator.__next__"]  # type: ignore[method-assign]
    if "__next__" in BpmnTaskIterator.__dict__:
        del BpmnTaskIterator.__next__
