"""Parallel and inclusive joins inside loops drawn with sequence flows (app/engine/joins.py).

The rule: in every round, the join fires once, after each branch the round took has finished,
in whatever order the branches finish; the data of every branch of the round reaches the
process after the join. SpiffWorkflow 3.2 alone breaks it as soon as the order changes from
one round to the next (``test_the_engine_alone_breaks_the_rule``)."""

from __future__ import annotations

import itertools
import random

import pytest

from app.engine import joins
from tests.engine.test_compaction import roundtrip
from tests.engine.test_trim import ACTOR, start
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
