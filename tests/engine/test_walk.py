"""The stack walk of app/engine/walk.py finds the same tasks, in the same order, as SpiffWorkflow's
own iterators, on real workflows at every step of their lives, and the engine runs the same with
either walk."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.util.task import TaskIterator, TaskState

from app.engine import ProcessEngine, ProcessLibrary, ScriptIdentity, SourceFile, walk
from tests.engine.test_compaction import loop_diagram
from tools.bpmn_builder import Diagram, pretty

ACTOR = ScriptIdentity(current_user={"id": 1, "username": "u"}, initiator={"id": 1, "username": "u"})

STATES = [TaskState.MAYBE, TaskState.LIKELY, TaskState.FUTURE, TaskState.WAITING, TaskState.READY,
          TaskState.STARTED, TaskState.COMPLETED, TaskState.ERROR, TaskState.CANCELLED,
          TaskState.FINISHED_MASK, TaskState.DEFINITE_MASK, TaskState.PREDICTED_MASK,
          TaskState.NOT_FINISHED_MASK, TaskState.ANY_MASK, TaskState.READY | TaskState.ERROR]


@contextmanager
def spiffs_own_walk() -> Iterator[None]:
    walk.uninstall()
    try:
        yield
    finally:
        walk.install()


def both(make: Callable[[], Any]) -> tuple[list[Any], list[Any]]:
    """The tasks SpiffWorkflow's walk yields, then ours, for the same iterator arguments."""
    with spiffs_own_walk():
        theirs = [task.id for task in make()]
    ours = [task.id for task in make()]
    return theirs, ours


def filters(wf: Any) -> list[dict[str, Any]]:
    names = sorted({t.task_spec.name for t in wf.tasks.values()})[:6]
    out: list[dict[str, Any]] = [{}]
    out += [{"state": s} for s in STATES]
    out += [{"state": TaskState.READY, "manual": m} for m in (True, False)]
    out += [{"state": TaskState.ANY_MASK, "manual": m} for m in (True, False)]
    out += [{"spec_name": n} for n in names]
    out += [{"end_at_spec": n} for n in names]
    out += [{"state": TaskState.NOT_FINISHED_MASK, "end_at_spec": n} for n in names]
    out += [{"updated_ts": 1.0}]
    return out


def assert_same_walks(run: Any) -> int:
    """Every filter, from the root of the workflow and of each subprocess and from a few inner
    tasks, with both iterator classes; returns how many walks were compared."""
    wf = run._wf
    workflows = [wf, *wf.subprocesses.values()]
    compared = 0
    for workflow in workflows:
        inner = list(workflow.tasks.values())
        starts = [workflow.task_tree, *inner[1:: max(1, len(inner) // 4)]]
        for first in starts:
            for kwargs in filters(workflow):
                for cls, extra in ((TaskIterator, {}), (BpmnTaskIterator, {}), (BpmnTaskIterator, {"skip_subprocesses": True})):
                    theirs, ours = both(lambda cls=cls, extra=extra, kwargs=kwargs, first=first: cls(first, **kwargs, **extra))
                    assert ours == theirs, (cls.__name__, kwargs, extra)
                    compared += 1
        # the depth limit: in one workflow's tree SpiffWorkflow's count is the true depth
        for limit in (0, 1, 2, 3, 5):
            theirs, ours = both(lambda limit=limit, root=workflow.task_tree: TaskIterator(root, max_depth=limit))
            assert ours == theirs, limit
            compared += 1
    # and what the engine itself asks
    for query in ({"state": TaskState.READY}, {"state": TaskState.WAITING}, {"state": TaskState.READY, "manual": True}):
        theirs, ours = both(lambda query=query: wf.get_tasks(**query))
        assert ours == theirs
    return compared


def multi_instance_diagram() -> bytes:
    """Parallel multi-instance approvals, a subprocess, an exclusive gateway and an error path."""
    inner = Diagram("review", "Review")
    inner.node("s", "start", col=0)
    inner.node("check", "user", "Check", col=1)
    inner.node("e", "end", col=2)
    inner.chain("s", "check", "e")
    d = Diagram("approvals", "Approvals")
    d.node("start", "start", col=0)
    d.node("prep", "script", "Prepare", col=1, script="approvers = ['a', 'b', 'c']\nballots = []")
    d.node("vote", "user", "Vote", col=2, multi={"collection": "approvers", "item": "approver",
                                                 "output": "ballots", "output_item": "ballot", "sequential": False})
    d.node("split", "and", col=3)
    d.node("review", "sub", "Review", col=4, inner=inner)
    d.node("note", "script", "Note", col=4, row=1, script="noted = True")
    d.node("join", "and", col=5)
    d.node("gw", "xor", col=6)
    d.node("done", "end", col=7)
    d.node("again", "user", "Again", col=7, row=1)
    d.node("done2", "end", col=8, row=1)
    d.chain("start", "prep", "vote", "split", "review", "join", "gw")
    d.chain("split", "note", "join")
    d.flow("gw", "done", condition="len(ballots) == 3", default=False)
    d.flow("gw", "again", condition="len(ballots) != 3")
    d.chain("again", "done2")
    return pretty(d.to_xml()).encode()


def engine_and_run(diagram: bytes, name: str) -> tuple[ProcessEngine, Any]:
    [process] = ProcessLibrary().compile([SourceFile(name, diagram)])
    engine = ProcessEngine(script_time_limit=2.0)
    return engine, engine.start(engine.spec(process.content_hash, process.spec_json), {}, ACTOR)


def drive(diagram: bytes, name: str, answers: Callable[[Any], dict[str, Any]], steps: int,
          check: Callable[[Any], Any]) -> list[tuple[str, str, Any]]:
    """Complete ``steps`` user tasks (the same ready one in every run), calling ``check`` on the run
    before each; returns the trail of (element, state) after each step, with the data."""
    _engine, run = engine_and_run(diagram, name)
    trail = []
    for _ in range(steps):
        check(run)
        ready = run.user_tasks()
        if not ready:
            break
        # user_tasks() orders by task id, a random uuid: pick by what is the same in every run
        task = min(ready, key=lambda t: (t.bpmn_id, json.dumps(t.data, sort_keys=True, default=str)))
        run.complete_task(task.id, answers(task), ACTOR)
        tree = [(t.task_spec.name, TaskState.get_name(t.state)) for t in run._wf.get_tasks()]
        trail.append((run.status, tree, run.data))
    check(run)
    return trail


CASES = {
    "loop": (loop_diagram, "looping.bpmn", lambda task: {"again": True}, 12),
    "multi": (multi_instance_diagram, "approvals.bpmn", lambda task: {"ballot": "yes"}, 8),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_our_walk_yields_spiffworkflows_tasks_in_its_order_at_every_step(case):
    make, name, answers, steps = CASES[case]
    compared = []
    drive(make(), name, answers, steps, lambda run: compared.append(assert_same_walks(run)))
    assert len(compared) > 3 and min(compared) > 100  # the walks really ran, at several steps


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_engine_runs_the_same_with_either_walk(case):
    make, name, answers, steps = CASES[case]
    ours = drive(make(), name, answers, steps, lambda run: None)
    with spiffs_own_walk():
        theirs = drive(make(), name, answers, steps, lambda run: None)
    assert ours == theirs
    assert len(ours) >= 4


def test_the_walk_reads_children_when_it_reaches_a_task_like_spiffworkflow():
    """A caller that changes the tree while walking (the engine updates WAITING tasks as it finds
    them) sees the same tasks with both walks: children are read when their parent is reached."""
    def grow_while_walking() -> list[str]:
        _engine, run = engine_and_run(multi_instance_diagram(), "approvals.bpmn")
        seen = []
        for task in TaskIterator(run._wf.task_tree):
            seen.append(task.task_spec.name)
            if task.state == TaskState.READY and task.task_spec.manual:
                task.data["ballot"] = "yes"
                task.run()  # completing a vote adds and changes tasks below and beside it
        return seen

    ours = grow_while_walking()
    with spiffs_own_walk():
        theirs = grow_while_walking()
    assert ours == theirs and len(ours) > 5


def test_a_breadth_first_walk_keeps_spiffworkflows_code():
    _engine, run = engine_and_run(loop_diagram(), "looping.bpmn")
    theirs, ours = both(lambda: TaskIterator(run._wf.task_tree, depth_first=False))
    assert ours == theirs and len(ours) > 3


def test_install_is_idempotent_and_uninstall_restores_spiffworkflows_stepping():
    walk.install()
    walk.install()
    assert TaskIterator.__next__ is walk._plain_next and BpmnTaskIterator.__next__ is walk._bpmn_next
    with spiffs_own_walk():
        assert TaskIterator.__next__ is walk.ORIGINAL["TaskIterator.__next__"]
        assert "__next__" not in BpmnTaskIterator.__dict__
    assert TaskIterator.__next__ is walk._plain_next
