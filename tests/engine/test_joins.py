"""Parallel and inclusive joins inside loops drawn with sequence flows (app/engine/joins.py).

The rule: in every round, the join fires once, after each branch the round took has finished,
in whatever order the branches finish; the data of every branch of the round reaches the
process after the join. SpiffWorkflow 3.2 alone breaks it as soon as the order changes from
one round to the next (``test_the_engine_alone_breaks_the_rule``)."""

from __future__ import annotations

import itertools
import random

import pytest
from SpiffWorkflow.util.task import TaskState

from app.engine import joins
from tests.engine.test_compaction import roundtrip
from tests.engine.test_trim import ACTOR, fire_timers, start
from tools.bpmn_builder import Diagram, pretty

BRANCHES = ("work", "check", "sign")


def split_in_loop(kind: str, branches: tuple[str, ...], form: str | None = None) -> bytes:
    """start -> merge -> split(kind) -> one user task per branch -> join(kind) -> count -> decide,
    back to merge while ``again``. For "or", branch b is taken when ``take_<b>`` is true.
    ``form``: the user tasks' form file."""
    d = Diagram("joined", "Joined")
    d.node("start", "start", col=0)
    d.node("init", "script", "Init", col=1, script="fired = 0")
    d.node("merge", "xor", col=2)
    d.node("split", kind, col=3)
    d.node("join", kind, col=5)
    for row, name in enumerate(branches):
        d.node(name, "user", name.title(), col=4, row=row, properties={"formJsonSchemaFilename": form} if form else {})
        d.flow("split", name, condition=f"take_{name} == True" if kind == "or" else None)
        d.flow(name, "join")
    d.node("count", "script", "Count", col=6, script="fired = fired + 1")
    d.node("decide", "xor", col=7)
    d.node("end", "end", col=8)
    d.chain("start", "init", "merge", "split")
    d.chain("join", "count", "decide")
    d.flow("decide", "end", condition="again == False")
    d.flow("decide", "merge", condition="again == True")
    return pretty(d.to_xml()).encode()


def open_names(run) -> list[str]:
    return sorted(t.bpmn_id for t in run.user_tasks())


def complete(run, name: str, data: dict) -> None:
    [task] = [t for t in run.user_tasks() if t.bpmn_id == name]
    run.complete_task(task.id, data, ACTOR)
    assert run.failure is None, run.failure


def play(kind: str, branches: tuple[str, ...], rounds: list[tuple[str, ...]], engine_and_run=None,
         roundtrip_every: int = 0):
    """Play each round's branches in the order given; check the rule after every completion."""
    engine, run = engine_and_run or start(split_in_loop(kind, branches), "joined.bpmn")
    taken = set(rounds[0]) if kind == "or" else set(branches)
    for n, order in enumerate(rounds):
        assert open_names(run) == sorted(taken), (n, open_names(run))
        last = n == len(rounds) - 1
        for i, name in enumerate(order):
            data = {name: n, "again": not last}
            if i == len(order) - 1 and not last and kind == "or":
                # choose the next round's branches now: they are read by the split
                taken = set(rounds[n + 1])
                data.update({f"take_{b}": b in taken for b in branches})
            complete(run, name, data)
            if i < len(order) - 1:
                assert open_names(run) == sorted(order[i + 1:]), (n, name, open_names(run))
        assert run.data["fired"] == n + 1, (n, run.data["fired"])
        assert all(run.data[name] == n for name in order), (n, run.data)
        if roundtrip_every and n % roundtrip_every == 0:
            run = roundtrip(engine, run)
    assert run.status == "completed" and open_names(run) == []
    return run


def test_a_parallel_join_in_a_loop_waits_for_both_branches_whatever_the_order():
    play("and", BRANCHES[:2], [("work", "check"), ("check", "work"), ("check", "work"), ("work", "check"),
                               ("check", "work")])


def test_three_branches_in_every_order_round_after_round_with_roundtrips():
    orders = list(itertools.permutations(BRANCHES)) * 2
    play("and", BRANCHES, orders, roundtrip_every=3)


def test_long_random_orders_across_trimming():
    # ~7 levels a round: 40 rounds pass app/engine/trim.py's TRIM_DEPTH, so trimmed trees are in play.
    rng = random.Random(6)
    play("and", BRANCHES, [tuple(rng.sample(BRANCHES, 3)) for _ in range(40)], roundtrip_every=7)


def test_an_inclusive_join_over_many_trimmed_rounds_of_random_branches():
    # 150 rounds: far past the depth where app/engine/trim.py cuts old rounds, joins' included.
    rng = random.Random(7)
    rounds = [tuple(rng.sample(BRANCHES, rng.randint(1, 3))) for _ in range(150)]
    engine, run = start(split_in_loop("or", BRANCHES), "joined.bpmn")
    engine_and_run = (engine, engine.start(run.bundle, {f"take_{b}": b in rounds[0] for b in BRANCHES}, ACTOR))
    run = play("or", BRANCHES, rounds, engine_and_run=engine_and_run, roundtrip_every=25)
    assert len(run._wf.tasks) < 200


def test_an_inclusive_join_in_a_loop_waits_for_the_branches_its_round_took():
    engine, run = start(split_in_loop("or", BRANCHES), "joined.bpmn")
    # the first round takes all three (its flags are set at start)
    engine_and_run = (engine, engine.start(run.bundle, {f"take_{b}": True for b in BRANCHES}, ACTOR))
    rounds = [("work", "check", "sign"), ("sign", "check"), ("check", "work", "sign"), ("work",),
              ("sign", "work"), ("check",), ("sign", "work", "check")]
    play("or", BRANCHES, rounds, engine_and_run=engine_and_run, roundtrip_every=2)


def test_the_engine_alone_breaks_the_rule(monkeypatch):
    # The same rounds with SpiffWorkflow's own joins: round 2 finishes "check" first and its join
    # fires on round 1's "work", so the rule's first check fails. (This is what the fix is for.)
    monkeypatch.setattr(joins, "_REPLACEMENTS", {})
    joins.uninstall()
    try:
        with pytest.raises(AssertionError):
            play("and", BRANCHES[:2], [("work", "check"), ("check", "work"), ("work", "check")])
    finally:
        monkeypatch.undo()
        joins.install()


def test_a_join_outside_any_loop_behaves_as_before():
    # One round (no loop back): the first firing has no earlier round to leave out.
    for order in itertools.permutations(BRANCHES):
        play("and", BRANCHES, [order])


def test_a_value_set_before_the_split_keeps_the_change_of_the_branch_that_finished_first():
    # No loop: "status" exists before the split; "work" changes it and finishes first, "check"
    # finishes last carrying the value from before the split. SpiffWorkflow alone merges the
    # last branch's whole data over the others and the change is lost.
    engine, run = start(split_in_loop("and", BRANCHES[:2]), "joined.bpmn")
    run = engine.start(run.bundle, {"status": "new", "notes": {"work": None, "check": None}}, ACTOR)
    complete(run, "work", {"status": "worked", "notes": {"work": "done", "check": None}, "again": False})
    complete(run, "check", {"notes": {"work": None, "check": "ok"}, "again": False})
    assert run.status == "completed"
    assert run.data["status"] == "worked"
    assert run.data["notes"] == {"work": "done", "check": "ok"}  # each branch's own nested change


# -- the data merge, value by value --------------------------------------------------------------

def test_merged_sets_values_whole_goes_into_dicts_and_drops_what_no_branch_kept():
    base = {"list": ["alice", "carol"], "nested": {"a": 1, "b": {"x": 1}}, "tmp": "secret", "kept": 0, "one": 1}
    first = {"list": ["bob"], "nested": {"a": 2, "b": {"x": 1}}, "kept": 0}  # deleted tmp and one
    second = {"list": ["alice", "carol"], "nested": {"a": 1, "b": {"x": 5}}, "kept": 0, "one": 1, "new": [1]}  # deleted tmp
    out = joins.merged(base, [first, second])
    # tmp: no branch kept it; one: deleted by one branch only (a diagram's way to keep its stale
    # copy from winning), so it stays, as with SpiffWorkflow
    assert out == {"list": ["bob"], "nested": {"a": 2, "b": {"x": 5}}, "kept": 0, "one": 1, "new": [1]}
    # a later branch that replaced the same list wins it whole; nothing is shared with the input
    later = {**base, "list": [1, 3]}
    out = joins.merged(base, [{**base, "list": [1, 2]}, later])
    assert out["list"] == [1, 3] and out["list"] is not later["list"]
    # a dict an earlier branch replaced with a scalar, then changed inside by a later branch
    assert joins.merged({"d": {"a": 1}}, [{"d": 7}, {"d": {"a": 2}}]) == {"d": {"a": 2}}


# -- shapes around the loop ----------------------------------------------------------------------

def side_join() -> bytes:
    """The loop goes on through "work"; the parallel join of "a" and "b" leads out to an end."""
    d = Diagram("side", "Side")
    d.node("start", "start", col=0)
    d.node("merge", "xor", col=1)
    d.node("split", "and", col=2)
    d.node("work", "user", "Work", col=3)
    d.node("decide", "xor", col=4)
    d.node("end", "end", col=5)
    d.node("a", "user", "A", col=3, row=1)
    d.node("b", "user", "B", col=3, row=2)
    d.node("join", "and", col=4, row=1)
    d.node("after", "script", "After", col=5, row=1, script="joined = True")
    d.node("side_end", "end", col=6, row=1)
    d.chain("start", "merge", "split", "work", "decide")
    d.flow("decide", "end", condition="again == False")
    d.flow("decide", "merge", condition="again == True")
    d.chain("split", "a", "join", "after", "side_end")
    d.chain("split", "b", "join")
    return pretty(d.to_xml()).encode()


def fired(run, bpmn_id: str) -> int:
    return sum(1 for t in run._wf.get_tasks() if t.task_spec.bpmn_id == bpmn_id and t.state == TaskState.COMPLETED)


def test_a_join_that_leads_out_of_the_loop_fires_once_a_round():
    _engine, run = start(side_join(), "side.bpmn")
    for n, order in enumerate([("a", "b"), ("b", "a"), ("a", "b"), ("b", "a")]):
        complete(run, order[0], {})
        assert fired(run, "join") == n, (n, order)
        complete(run, order[1], {})
        assert fired(run, "join") == n + 1, (n, order)
        complete(run, "work", {"again": True})


def test_a_join_no_token_can_reach_puts_the_instance_in_error():
    # Rework goes back into branch "b" only: the join waits for an "a" that cannot come. Alone,
    # SpiffWorkflow takes the last round's "a" for it; here the instance says so, not hang quietly.
    d = Diagram("into", "Into")
    d.node("start", "start", col=0)
    d.node("split", "and", col=1)
    d.node("a", "user", "A", col=3)
    d.node("again_b", "xor", col=2, row=1)
    d.node("b", "user", "B", col=3, row=1)
    d.node("join", "and", "Both done", col=4)
    d.node("decide", "xor", col=5)
    d.node("end", "end", col=6)
    d.chain("start", "split", "a", "join", "decide")
    d.chain("split", "again_b", "b", "join")
    d.flow("decide", "end", condition="again == False")
    d.flow("decide", "again_b", condition="again == True")
    _engine, run = start(pretty(d.to_xml()).encode(), "into.bpmn")
    for name in ("a", "b"):
        [task] = [t for t in run.user_tasks() if t.bpmn_id == name]
        run.complete_task(task.id, {"again": True}, ACTOR)
    [task] = run.user_tasks()
    run.complete_task(task.id, {"again": False}, ACTOR)
    assert run.status == "error" and run.failure.error_type == "stuck"
    assert run.failure.element_id == "join" and "Both done" in run.failure.message


def test_a_join_waiting_for_a_branch_that_still_runs_is_not_stuck():
    engine, run = start(split_in_loop("and", BRANCHES[:2]), "joined.bpmn")
    complete(run, "work", {"again": True})
    assert run.status == "running" and open_names(run) == ["check"]


def test_a_step_on_a_host_whose_clock_is_behind_still_starts_a_new_round(monkeypatch):
    from app.engine import state_change

    engine, run = start(split_in_loop("and", BRANCHES), "joined.bpmn")
    for name in BRANCHES:
        complete(run, name, {"again": True, name: 0})
    run = roundtrip(engine, run)  # the next steps run elsewhere, on a clock 5 s behind
    real = state_change.time.time
    monkeypatch.setattr(state_change, "time", type("Behind", (), {"time": staticmethod(lambda: real() - 5)}))
    for i, name in enumerate(BRANCHES):
        complete(run, name, {"again": False, name: 1})
        assert open_names(run) == sorted(BRANCHES[i + 1:])
    assert run.status == "completed" and run.data["fired"] == 2 and all(run.data[b] == 1 for b in BRANCHES)


def test_a_reminder_that_fired_once_does_not_stop_old_rounds_being_cut():
    # A non-interrupting timer on "work" whose path ends leaves a waiting end-join arrival for
    # good; the parallel join's old rounds are cut all the same.
    d = Diagram("reminded", "Reminded")
    d.node("start", "start", col=0)
    d.node("init", "script", "Init", col=1, script="fired = 0")
    d.node("merge", "xor", col=2)
    d.node("split", "and", col=3)
    d.node("work", "user", "Work", col=4)
    d.node("check", "user", "Check", col=4, row=1)
    d.node("join", "and", col=5)
    d.node("count", "script", "Count", col=6, script="fired = fired + 1")
    d.node("decide", "xor", col=7)
    d.node("end", "end", col=8)
    d.chain("start", "init", "merge", "split", "work", "join", "count", "decide")
    d.chain("split", "check", "join")
    d.flow("decide", "end", condition="again == False")
    d.flow("decide", "merge", condition="again == True")
    d.node("nudge", "boundary", "Nudge", attached_to="work", timer=("timeDuration", '"PT1H"'), interrupting=False)
    d.node("nudged", "script", "Nudged", col=5, row=2, script="nudged = True")
    d.node("nudge_end", "end", col=6, row=2)
    d.chain("nudge", "nudged", "nudge_end")
    engine, run = start(pretty(d.to_xml()).encode(), "reminded.bpmn")
    rounds = [("work", "check") if n % 2 else ("check", "work") for n in range(200)]
    fire_timers(run, "nudge")
    run = play("and", ("work", "check"), rounds, engine_and_run=(engine, run), roundtrip_every=40)
    assert run.data["nudged"] is True
