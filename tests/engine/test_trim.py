"""Loops drawn with sequence flows (a gateway back to an earlier element) run for ever: the old,
finished history of the task tree is cut out (app/engine/trim.py), and what cannot be cut ends in
a clear instance error instead of SpiffWorkflow's silent stop (issue #6)."""

from __future__ import annotations

import json

import pytest
from SpiffWorkflow.util.task import TaskState

from app.engine import ProcessEngine, ProcessLibrary, ScriptIdentity, SourceFile, trim
from tests.engine.test_compaction import roundtrip
from tools.bpmn_builder import Diagram, pretty

ACTOR = ScriptIdentity(current_user={"id": 1, "username": "u"}, initiator={"id": 1, "username": "u"})


def rework_loop(boundary: str | None = None, form: str | None = None) -> bytes:
    """start -> merge -> work -> count -> gateway, back to merge while ``again``.
    ``boundary``: "nudge" (a non-interrupting timer on work) or "deadline" (interrupting, to an end);
    ``form``: the work task's form file."""
    d = Diagram("rework", "Rework")
    d.node("start", "start", col=0)
    d.node("init", "script", "Init", col=1, script="rounds = 0\nnotes = []")
    d.node("merge", "xor", col=2)
    d.node("work", "user", "Work", col=3, properties={"formJsonSchemaFilename": form} if form else {})
    d.node("count", "script", "Count", col=4, script="rounds = rounds + 1\nnotes = (notes + [rounds])[-3:]")
    d.node("decide", "xor", col=5)
    d.node("end", "end", col=6)
    d.chain("start", "init", "merge", "work", "count", "decide")
    d.flow("decide", "end", condition="again == False")
    d.flow("decide", "merge", condition="again == True")
    if boundary == "nudge":
        d.node("nudge", "boundary", "Nudge", attached_to="work", timer=("timeDuration", '"PT1H"'), interrupting=False)
        d.node("nudged", "script", "Nudged", col=4, row=2, script="nudged = True")
        d.node("nudge_end", "end", col=5, row=2)
        d.chain("nudge", "nudged", "nudge_end")
    if boundary == "deadline":
        d.node("deadline", "boundary", "Deadline", attached_to="work", timer=("timeDuration", '"P30D"'))
        d.node("late", "end", "Too late", col=4, row=2)
        d.flow("deadline", "late")
    return pretty(d.to_xml()).encode()


def parallel_in_loop() -> bytes:
    d = Diagram("twofold", "Twofold")
    d.node("start", "start", col=0)
    d.node("merge", "xor", col=1)
    d.node("split", "and", col=2)
    d.node("work", "user", "Work", col=3)
    d.node("check", "user", "Check", col=3, row=1)
    d.node("join", "and", col=4)
    d.node("decide", "xor", col=5)
    d.node("end", "end", col=6)
    d.chain("start", "merge", "split", "work", "join", "decide")
    d.chain("split", "check", "join")
    d.flow("decide", "end", condition="again == False")
    d.flow("decide", "merge", condition="again == True")
    return pretty(d.to_xml()).encode()


def start(diagram: bytes, name: str):
    [process] = ProcessLibrary().compile([SourceFile(name, diagram)])
    engine = ProcessEngine(script_time_limit=2.0)
    return engine, engine.start(engine.spec(process.content_hash, process.spec_json), {}, ACTOR)


def depth(run) -> int:
    return max(t.depth for t in run._wf.get_tasks())


def step(run, again: bool = True) -> None:
    [task] = run.user_tasks()
    run.complete_task(task.id, {"again": again}, ACTOR)
    assert run.failure is None, run.failure


def fire_timers(run, bpmn_id: str) -> None:
    for task in run._wf.get_tasks():
        if task.task_spec.bpmn_id == bpmn_id and task.state == TaskState.WAITING:
            task.internal_data["event_value"] = "2000-01-01T00:00:00+00:00"  # due now
    run.refresh_timers()


def test_a_rework_loop_runs_a_thousand_rounds_with_bounded_depth_and_state():
    engine, run = start(rework_loop(), "rework.bpmn")
    sizes = []
    for n in range(1, 1001):
        step(run)
        if n % 100 == 0:
            run = roundtrip(engine, run)
            sizes.append(len(run.dump()))
            assert depth(run) <= trim.TRIM_DEPTH + 10
    assert run.status == "running" and run.data["rounds"] == 1000 and run.data["notes"] == [998, 999, 1000]
    assert max(sizes) < 3 * min(sizes), sizes  # a sawtooth between trims, not a slope
    step(run, again=False)
    assert run.status == "completed" and run.data["rounds"] == 1001


def trail(diagram: bytes, name: str, rounds: int) -> list[tuple]:
    """Every step's status, data and open tasks, then what a due boundary timer does."""
    engine, run = start(diagram, name)
    out = []
    for n in range(rounds):
        step(run)
        if n % 40 == 0:
            run = roundtrip(engine, run)
        out.append((run.status, json.dumps(run.data, sort_keys=True), sorted(t.bpmn_id for t in run.user_tasks())))
    fire_timers(run, "nudge")
    out.append((run.status, json.dumps(run.data, sort_keys=True), sorted(t.bpmn_id for t in run.user_tasks())))
    step(run, again=False)
    out.append((run.status, json.dumps(run.data, sort_keys=True), len(run._wf.tasks)))
    return out


def test_trimming_changes_nothing_a_step_can_see(monkeypatch):
    """120 rounds with a boundary timer on the reworked task (SpiffWorkflow alone copes with that
    many): the same statuses, data and open tasks at every step with and without trimming, and the
    current round's timer still fires."""
    trimmed = trail(rework_loop("nudge"), "rework.bpmn", 120)
    monkeypatch.setattr(trim, "TRIM_DEPTH", 10**6)
    monkeypatch.setattr(trim, "MAX_DEPTH", 10**6)
    whole = trail(rework_loop("nudge"), "rework.bpmn", 120)
    assert trimmed[:-1] == whole[:-1]
    assert trimmed[-1][:2] == whole[-1][:2]
    assert json.loads(trimmed[-2][1]).get("nudged") is True  # the timer fired, after trimming too
    assert trimmed[-1][0] == "completed"
    assert trimmed[-1][2] < whole[-1][2] / 3  # and the trimmed tree really is smaller


def test_an_interrupting_timer_on_a_reworked_task_still_fires_after_many_rounds():
    engine, run = start(rework_loop("deadline"), "rework.bpmn")
    for _ in range(400):
        step(run)
    run = roundtrip(engine, run)
    assert depth(run) <= trim.TRIM_DEPTH + 10
    fire_timers(run, "deadline")
    run = roundtrip(engine, run)
    assert run.status == "completed" and "late" in run.history_path() and run.data["rounds"] == 400


def leaking_loop() -> bytes:
    """A drawn loop whose every round also opens a "note" task that nobody completes: the open
    notes keep their history, so the tree really grows with every round."""
    d = Diagram("leaky", "Leaky")
    d.node("start", "start", col=0)
    d.node("merge", "xor", col=1)
    d.node("split", "and", col=2)
    d.node("work", "user", "Work", col=3)
    d.node("note", "user", "Note", col=3, row=1)
    d.node("note_end", "end", col=4, row=1)
    d.node("decide", "xor", col=4)
    d.node("end", "end", col=5)
    d.chain("start", "merge", "split", "work", "decide")
    d.chain("split", "note", "note_end")
    d.flow("decide", "end", condition="again == False")
    d.flow("decide", "merge", condition="again == True")
    return pretty(d.to_xml()).encode()


def test_a_tree_that_cannot_be_cut_ends_in_a_clear_error_not_in_silence():
    """The instance goes to error while SpiffWorkflow still works, instead of reporting itself
    completed later."""
    _engine, run = start(leaking_loop(), "leaky.bpmn")
    rounds = 0
    while rounds < 400 and run.failure is None:
        rounds += 1
        [task] = [t for t in run.user_tasks() if t.bpmn_id == "work"]
        run.complete_task(task.id, {"again": True}, ACTOR)
    assert run.failure is not None and run.failure.error_type == "too_deep", rounds
    assert "loop marker" in run.failure.message and run.status == "error"
    assert rounds < 150  # well before SpiffWorkflow's own limits


def test_a_parallel_join_inside_a_drawn_loop_runs_on_with_a_bounded_tree():
    """The join's old rounds are cut too (only this round's tasks of the join and its last firing
    are read, app/engine/joins.py): 400 rounds, the branches finishing in turn either way round."""
    engine, run = start(parallel_in_loop(), "twofold.bpmn")
    deepest = 0
    for n in range(400):
        first, second = ("work", "check") if n % 2 else ("check", "work")
        for name, still_open in ((first, [second]), (second, ["check", "work"])):
            [task] = [t for t in run.user_tasks() if t.bpmn_id == name]
            run.complete_task(task.id, {"again": True, name: n}, ACTOR)
            assert run.failure is None, (n, run.failure)
            assert sorted(t.bpmn_id for t in run.user_tasks()) == still_open, n
        assert run.data["work"] == run.data["check"] == n
        deepest = max(deepest, depth(run))
        if n % 50 == 0:
            run = roundtrip(engine, run)
    assert deepest <= trim.TRIM_DEPTH + 10 and run.status == "running"


@pytest.mark.parametrize("diagram", ["rework", "multi_instance"])
def test_shallow_trees_are_left_whole(diagram):
    if diagram == "rework":
        engine, run = start(rework_loop(), "rework.bpmn")
        for _ in range(10):
            step(run)
        before = len(run._wf.tasks)
        assert trim.trim(run._wf, set(), run._wf.last_task) == 0 and len(run._wf.tasks) == before
    else:
        from tests.engine.test_walk import CASES, drive

        make, name, answers, steps = CASES["multi"]
        seen = []
        drive(make(), name, answers, steps,
              lambda run: seen.append(trim.trim(run._wf, set(run._wf.subprocesses), run._wf.last_task)))
        assert seen and set(seen) == {0}


def join_trail(rounds: int) -> list[tuple]:
    engine, run = start(parallel_in_loop(), "twofold.bpmn")
    out = []
    for n in range(rounds):
        # (the order changes from round to round: app/engine/joins.py counts this round's inputs only)
        for name in (("work", "check") if n % 3 else ("check", "work")):
            [task] = [t for t in run.user_tasks() if t.bpmn_id == name]
            run.complete_task(task.id, {"again": True, name: n}, ACTOR)
            assert run.failure is None, (n, run.failure)
            out.append((run.status, json.dumps(run.data, sort_keys=True), sorted(t.bpmn_id for t in run.user_tasks())))
        if n % 20 == 0:
            run = roundtrip(engine, run)
    return out, len(run._wf.tasks)


def test_trimming_around_a_parallel_join_in_a_drawn_loop_changes_nothing(monkeypatch):
    trimmed, trimmed_size = join_trail(45)
    monkeypatch.setattr(trim, "TRIM_DEPTH", 10**6)
    monkeypatch.setattr(trim, "MAX_DEPTH", 10**6)
    whole, whole_size = join_trail(45)
    assert trimmed == whole
    assert trimmed_size < whole_size  # it did cut what it may


def side_ending_loop() -> bytes:
    """Every round also runs a side branch that ends on its own (a notification, say): each
    round leaves an arrival at the end join, whose data the end of the process merges."""
    d = Diagram("sided", "Sided")
    d.node("start", "start", col=0)
    d.node("init", "script", "Init", col=1, script="status = 'open'\nrounds = 0")
    d.node("merge", "xor", col=2)
    d.node("split", "and", col=3)
    d.node("notify", "script", "Notify", col=4, row=1,
           script="seen = status\nif rounds == 2:\n    special = 'from round 2'")
    d.node("notify_end", "end", col=5, row=1)
    d.node("work", "user", "Work", col=4)
    d.node("count", "script", "Count", col=5, script="rounds = rounds + 1")
    d.node("decide", "xor", col=6)
    d.node("end", "end", col=7)
    d.chain("start", "init", "merge", "split", "work", "count", "decide")
    d.chain("split", "notify", "notify_end")
    d.flow("decide", "end", condition="again == False")
    d.flow("decide", "merge", condition="again == True")
    return pretty(d.to_xml()).encode()


def side_trail(rounds: int) -> tuple[dict, int]:
    engine, run = start(side_ending_loop(), "sided.bpmn")
    for n in range(rounds):
        [task] = run.user_tasks()
        run.complete_task(task.id, {"again": n < rounds - 1, "status": f"round {n}"}, ACTOR)
        assert run.failure is None, (n, run.failure)
        if n % 30 == 0:
            run = roundtrip(engine, run)
    assert run.status == "completed"
    return run.data, len(run._wf.tasks)


def test_branches_that_end_every_round_are_cut_and_the_end_keeps_their_data(monkeypatch):
    trimmed, trimmed_size = side_trail(80)
    monkeypatch.setattr(trim, "TRIM_DEPTH", 10**6)
    monkeypatch.setattr(trim, "MAX_DEPTH", 10**6)
    whole, whole_size = side_trail(80)
    assert trimmed == whole and trimmed["special"] == "from round 2" and trimmed["status"] == "round 79"
    assert trimmed_size < whole_size / 3


def test_branches_that_end_every_round_run_for_ever():
    data, size = side_trail(400)  # alone, and before the end join's arrivals were cut: too_deep at ~270
    assert data["rounds"] == 400 and size < 150
