"""Finished loop iterations are compacted out of the engine's live task tree (issue #6): state
size and depth stay flat, and everything else keeps working across compaction."""

from __future__ import annotations

import json

from app.engine import ProcessEngine, ProcessLibrary, ScriptIdentity, SourceFile
from app.engine.iterations import MergedIterations
from tools.bpmn_builder import Diagram, pretty

ACTOR = ScriptIdentity(current_user={"id": 1, "username": "u"}, initiator={"id": 1, "username": "u"})


def loop_diagram() -> bytes:
    """A loop around a subprocess with a parallel split/join and a non-interrupting timer inside,
    and a boundary timer on the loop itself."""
    inner = Diagram("round", "Round")
    inner.node("r_start", "start", col=0)
    inner.node("split", "and", col=1)
    inner.node("work", "user", "Work", col=2)
    inner.node("side", "script", "Side branch", col=2, row=1, script="side = True")
    inner.node("join", "and", col=3)
    inner.node("note", "script", "Count", col=4, script="rounds = rounds + 1")
    inner.node("r_end", "end", col=5)
    inner.node("nudge", "boundary", "Nudge", attached_to="work", timer=("timeDuration", '"PT1H"'), interrupting=False)
    inner.node("nudged", "script", "Nudged", col=3, row=2, script="nudges = nudges + 1")
    inner.node("nudge_end", "end", col=4, row=2)
    inner.chain("r_start", "split", "work", "join", "note", "r_end")
    inner.chain("split", "side", "join")
    inner.chain("nudge", "nudged", "nudge_end")
    d = Diagram("looping", "Looping")
    d.node("start", "start", col=0)
    d.node("init", "script", "Init", col=1, script="rounds = 0\nnudges = 0\nagain = True")
    d.node("cycle", "sub", "Rounds", col=2, inner=inner, loop_condition="again")
    d.node("deadline", "boundary", "Deadline", attached_to="cycle", timer=("timeDuration", '"P30D"'))
    d.node("end", "end", col=3)
    d.node("late", "end", "Too late", col=3, row=1)
    d.chain("start", "init", "cycle", "end")
    d.flow("deadline", "late")
    return pretty(d.to_xml()).encode()


def start() -> tuple[ProcessEngine, object]:
    [process] = ProcessLibrary().compile([SourceFile("looping.bpmn", loop_diagram())])
    engine = ProcessEngine(script_time_limit=2.0)
    run = engine.start(engine.spec(process.content_hash, process.spec_json), {}, ACTOR)
    return engine, run


def roundtrip(engine, run):
    first = run.dump()
    restored = engine.restore(run.bundle, first, run.serializer_version)
    assert json.loads(restored.dump()) == json.loads(first)
    return restored


def depth(run) -> int:
    return max(t.depth for t in run._wf.get_tasks())


def test_state_and_depth_stay_flat_over_many_rounds_with_roundtrips():
    engine, run = start()
    sizes, depths = {}, {}
    for i in range(1, 301):
        [task] = run.user_tasks()
        run.complete_task(task.id, {"again": True}, ACTOR)
        run = roundtrip(engine, run)
        if i in (10, 100, 300):
            sizes[i], depths[i] = len(run.dump()), depth(run)
    assert depths[10] == depths[100] == depths[300]
    # not a byte per round: the rounds the loop merged are counted, not listed
    assert sizes[300] - sizes[10] < 40, sizes
    assert run.data["rounds"] == 300
    [task] = run.user_tasks()
    run.complete_task(task.id, {"again": False}, ACTOR)
    assert run.status == "completed" and run.data["rounds"] == 301


def test_two_thousand_rounds_complete_without_recursion_or_stall():
    engine, run = start()
    for _ in range(2000):
        [task] = run.user_tasks()  # a stall (no ready task) would fail here
        run.complete_task(task.id, {"again": True}, ACTOR)
    run = roundtrip(engine, run)
    assert run.status == "running" and run.data["rounds"] == 2000
    assert len(run._wf.tasks) < 40


def test_boundary_timers_inside_and_around_compacted_loops_still_fire():
    engine, run = start()
    for _ in range(5):
        [task] = run.user_tasks()
        run.complete_task(task.id, {"again": True}, ACTOR)
    run = roundtrip(engine, run)
    # the nudge timer of the current round is armed, and the loop's deadline still waits
    events = {e.name: e.value for e in run._wf.waiting_events()}
    assert set(events) == {"Nudge", "Deadline"}
    for task in run._wf.get_tasks():
        if task.task_spec.bpmn_id in ("nudge", "deadline"):
            task.internal_data["event_value"] = "2000-01-01T00:00:00+00:00"  # due now
    run.refresh_timers()
    run = roundtrip(engine, run)
    assert run.status == "completed" and "late" in run.history_path()


def merged_of(run):
    [loop] = [t for t in run._wf.tasks.values() if t.task_spec.name == "cycle"]
    return loop.internal_data["merged"]


def test_the_loop_counts_compacted_rounds_and_stores_no_entry_per_round():
    engine, run = start()
    for _ in range(200):
        [task] = run.user_tasks()
        run.complete_task(task.id, {"again": True}, ACTOR)
    run = roundtrip(engine, run)
    merged = merged_of(run)
    assert isinstance(merged, MergedIterations)
    assert len(merged) == 200 == merged.dropped + len(merged.ids)
    assert len(merged.ids) <= 1  # what is still in the tree
    assert '"-"' not in run.dump()


def loop_with_maximum(maximum: int) -> bytes:
    inner = Diagram("step", "Step")
    inner.node("s", "start", col=0)
    inner.node("work", "user", "Work", col=1)
    inner.node("e", "end", col=2)
    inner.chain("s", "work", "e")
    d = Diagram("bounded", "Bounded")
    d.node("start", "start", col=0)
    d.node("cycle", "sub", "Rounds", col=1, inner=inner, loop_maximum=maximum)
    d.node("count", "script", "Count", col=2, script="finished = True")
    d.node("end", "end", col=3)
    d.chain("start", "cycle", "count", "end")
    return pretty(d.to_xml()).encode()


def test_loop_maximum_holds_across_compaction_and_roundtrips():
    [process] = ProcessLibrary().compile([SourceFile("bounded.bpmn", loop_with_maximum(25))])
    engine = ProcessEngine(script_time_limit=2.0)
    run = engine.start(engine.spec(process.content_hash, process.spec_json), {}, ACTOR)
    rounds = 0
    while run.user_tasks():
        [task] = run.user_tasks()
        run.complete_task(task.id, {}, ACTOR)
        run = roundtrip(engine, run)
        rounds += 1
        assert rounds <= 25
    assert rounds == 25 and run.status == "completed" and run.data["finished"] is True


def test_a_state_stored_with_placeholders_is_counted_the_same_after_its_next_step():
    """States written before the count kept a "-" per compacted round; the next compaction turns
    them into the count, and nothing about the loop changes."""
    engine, run = start()
    for _ in range(5):
        [task] = run.user_tasks()
        run.complete_task(task.id, {"again": True}, ACTOR)
    [loop] = [t for t in run._wf.tasks.values() if t.task_spec.name == "cycle"]
    live = list(merged_of(run))
    loop.internal_data["merged"] = ["-"] * (5 - len(live)) + live  # as an older build stored it
    old_style = run.dump()
    assert '"-"' in old_style
    run = engine.restore(run.bundle, old_style, run.serializer_version)
    assert len(merged_of(run)) == 5
    [task] = run.user_tasks()
    run.complete_task(task.id, {"again": True}, ACTOR)
    run = roundtrip(engine, run)
    merged = merged_of(run)
    assert isinstance(merged, MergedIterations) and len(merged) == 6 and '"-"' not in run.dump()
    assert run.data["rounds"] == 6


def test_merged_iterations_answers_what_spiffworkflow_asks_of_the_list():
    merged = MergedIterations(3, ["a"])
    assert len(merged) == 4 and bool(merged) and list(merged) == ["a"] and "a" in merged and "x" not in merged
    merged.append("b")
    assert len(merged) == 5 and merged[-1] == "b"
    assert MergedIterations.from_dict(merged.to_dict()) == merged
    assert not MergedIterations()
    again = MergedIterations.compacted(merged, {"a"})
    assert (again.dropped, again.ids, len(again)) == (4, ["b"], 5)
    from_list = MergedIterations.compacted(["-", "-", "c", "d"], {"c"})
    assert (from_list.dropped, from_list.ids, len(from_list)) == (3, ["d"], 4)


def test_a_compacted_loop_stays_in_the_run_cache():
    """The count of compacted rounds survives a JSON round trip as it is, so a run whose loop
    was compacted is kept between requests like any other."""
    engine, run = start()
    for _ in range(3):
        [task] = run.user_tasks()
        run.complete_task(task.id, {"again": True}, ACTOR)
    assert isinstance(merged_of(run), MergedIterations)
    run.dump()
    assert run.json_stable() and engine.runs.park(1, run)
