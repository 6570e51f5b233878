"""Moving a running instance onto another version of its process (app/engine/migration.py).

Every move is followed by a dump -> load -> dump round trip against the new version, and the run
then finishes under the new version's flows."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from app.clock import FrozenClock
from app.engine import MigrationRefused, ProcessEngine, ProcessLibrary, ScriptIdentity, SourceFile, WorkflowRun
from app.engine.runtime import SpecBundle
from tests.engine.harness import CLOCK_START
from tools.bpmn_builder import Diagram, pretty

FORMS = ("a.json", "b.json")
ACTOR = ScriptIdentity(current_user={"id": 1, "username": "u"}, initiator={"id": 1, "username": "u"})


def version(*, extra_step: bool = False, triage_form: str = "a.json", drop_intake: bool = False,
            timer: str = '"PT4H"', review_script: str | None = None, split: bool = False, remind: bool = True) -> bytes:
    d = Diagram("flow", "Flow")
    d.node("start", "start", col=0)
    chain = ["start"]
    if not drop_intake:
        d.node("intake", "script", "Intake", col=1, script="seen = 1")
        chain.append("intake")
    if split:
        d.node("fork", "and", col=1.5)
        d.node("side", "script", "Side", col=1.7, row=1, script="side = 1")
        d.node("merge", "and", col=1.8)
        chain += ["fork", "side", "merge"]
        d.flow("fork", "merge")
    d.node("triage", "user", "Triage", col=2, properties={"formJsonSchemaFilename": triage_form})
    if remind:
        d.node("remind", "boundary", "Remind", attached_to="triage", timer=("timeDuration", timer), interrupting=False)
        d.node("reminded", "script", "Reminded", col=3, row=1, script="reminders = 1")
        d.node("remind_end", "end", col=4, row=1)
        d.chain("remind", "reminded", "remind_end")
    chain.append("triage")
    if extra_step:
        d.node("assess", "user", "Assess", col=3)
        chain.append("assess")
    if review_script is not None:
        d.node("review", "script", "Review", col=4, script=review_script)
    else:
        d.node("review", "user", "Review", col=4)
    d.node("end", "end", col=5)
    chain += ["review", "end"]
    d.chain(*chain)
    return pretty(d.to_xml()).encode()


class Desk:
    def __init__(self) -> None:
        self.clock = FrozenClock(CLOCK_START)
        self.engine = ProcessEngine(script_time_limit=2.0, now=self.clock.now)

    def bundle(self, xml: bytes) -> SpecBundle:
        forms = [SourceFile(name, json.dumps({"type": "object", "properties": {}}).encode()) for name in FORMS]
        [process] = ProcessLibrary().compile([SourceFile("flow.bpmn", xml), *forms])
        return self.engine.spec(process.content_hash, process.spec_json)

    def roundtrip(self, run: WorkflowRun) -> WorkflowRun:
        first = run.dump()
        again = self.engine.restore(run.bundle, first, run.serializer_version)
        assert json.loads(again.dump()) == json.loads(first)
        return again

    def complete(self, run: WorkflowRun, bpmn_id: str, data: dict | None = None) -> WorkflowRun:
        [task] = [t for t in run.user_tasks() if t.bpmn_id == bpmn_id]
        run.complete_task(task.id, data or {}, ACTOR)
        return self.roundtrip(run)


@pytest.fixture()
def desk() -> Desk:
    return Desk()


def open_ids(run: WorkflowRun) -> list[str]:
    return sorted(t.bpmn_id for t in run.user_tasks())


def test_an_open_task_keeps_its_id_and_the_run_follows_the_new_flows(desk: Desk):
    v1, v2 = desk.bundle(version()), desk.bundle(version(extra_step=True))
    run = desk.engine.start(v1, {}, ACTOR)
    [triage] = run.user_tasks()
    plan = run.migrate(v2, ACTOR)
    assert plan.possible and plan.kept == ("remind", "triage") and plan.changed == ()
    run = desk.roundtrip(run)
    assert run.bundle is v2
    [moved] = run.user_tasks()
    assert moved.id == triage.id and moved.bpmn_id == "triage"
    run = desk.complete(run, "triage")
    assert open_ids(run) == ["assess"]
    run = desk.complete(run, "assess")
    run = desk.complete(run, "review")
    assert run.status == "completed"


def test_a_waiting_timer_keeps_its_due_time_unless_it_changed(desk: Desk):
    v1 = desk.bundle(version())
    same_timer, new_timer = desk.bundle(version(extra_step=True)), desk.bundle(version(timer='"PT8H"'))
    for target in (same_timer, new_timer):
        run = desk.engine.start(v1, {}, ACTOR)
        before = run.next_timer_at()
        desk.clock.advance(timedelta(hours=1))
        run.migrate(target, ACTOR)
        run = desk.roundtrip(run)
        assert run.next_timer_at() == (before if target is same_timer else desk.clock.now() + timedelta(hours=8))
        due = run.next_timer_at()
        desk.clock.advance(due - desk.clock.now() - timedelta(minutes=1))
        run.refresh_timers(ACTOR)
        assert "reminded" not in run.history_path()
        desk.clock.advance(timedelta(minutes=2))
        run.refresh_timers(ACTOR)
        assert "reminded" in run.history_path() and open_ids(run) == ["triage"]


def test_a_changed_task_is_reported_and_prepared_again(desk: Desk):
    v1, v2 = desk.bundle(version()), desk.bundle(version(triage_form="b.json"))
    run = desk.engine.start(v1, {}, ACTOR)
    plan = run.migrate(v2, ACTOR)
    assert plan.changed == ("triage",) and plan.kept == ("remind",)
    run = desk.roundtrip(run)
    assert run.user_tasks()[0].form == "b.json"


def test_an_open_task_the_version_lacks_is_refused_naming_it(desk: Desk):
    v1, v2 = desk.bundle(version(extra_step=True)), desk.bundle(version())
    run = desk.engine.start(v1, {}, ACTOR)
    run = desk.complete(run, "triage")
    assert open_ids(run) == ["assess"]
    plan = run.migration_plan(v2)
    assert not plan.possible and plan.unmapped == ("assess",)
    with pytest.raises(MigrationRefused) as info:
        run.migrate(v2, ACTOR)
    assert info.value.plan is not None and info.value.plan.unmapped == ("assess",)


def test_finished_history_the_version_dropped_is_cut_out(desk: Desk):
    v1, v2 = desk.bundle(version()), desk.bundle(version(drop_intake=True))
    run = desk.engine.start(v1, {}, ACTOR)
    plan = run.migrate(v2, ACTOR)
    assert plan.possible and plan.dropped == ("intake",)
    run = desk.roundtrip(run)
    assert "intake" not in run.history_path() and run.data["seen"] == 1
    run = desk.complete(run, "triage")
    run = desk.complete(run, "review")
    assert run.status == "completed"


def test_a_dropped_split_whose_branches_are_done_is_cut_leaves_first(desk: Desk):
    v1, v2 = desk.bundle(version(split=True)), desk.bundle(version())
    run = desk.engine.start(v1, {}, ACTOR)
    plan = run.migrate(v2, ACTOR)
    assert plan.possible and {"fork", "merge", "side"} <= set(plan.dropped)
    run = desk.roundtrip(run)
    assert run.data["side"] == 1 and open_ids(run) == ["triage"]
    run = desk.complete(run, "triage")
    run = desk.complete(run, "review")
    assert run.status == "completed"


def test_a_dropped_split_with_two_open_branches_is_refused(desk: Desk):
    def branches(split: bool) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("left", "user", "Left", col=2)
        d.node("right", "user", "Right", col=2, row=1)
        d.node("end", "end", col=4)
        if split:
            d.node("split", "and", col=1)
            d.node("join", "and", col=3)
            d.chain("start", "split", "left", "join", "end")
            d.chain("split", "right", "join")
        else:
            d.chain("start", "left", "right", "end")
        return pretty(d.to_xml()).encode()

    v1, v2 = desk.bundle(branches(True)), desk.bundle(branches(False))
    run = desk.engine.start(v1, {}, ACTOR)
    plan = run.migration_plan(v2)
    assert not plan.possible and "split" in plan.history and plan.unmapped == ()


def test_a_version_that_fails_at_once_is_refused_and_the_stored_state_stands(desk: Desk):
    v1, v2 = desk.bundle(version()), desk.bundle(version(review_script="x = 1 / 0"))
    run = desk.engine.start(v1, {}, ACTOR)
    run = desk.complete(run, "triage")
    with pytest.raises(MigrationRefused) as info:
        run.migrate(v2, ACTOR)
    assert info.value.element_id == "review" and "division by zero" in info.value.message
    assert run.bundle is v1  # not taken for moved: the caller drops it (the platform: tests/http)


def test_a_failed_instance_moved_to_a_fixed_version_is_retried_by_the_new_script(desk: Desk):
    broken, fixed = desk.bundle(version(review_script="x = 1 / 0")), desk.bundle(version(review_script="x = 2"))
    run = desk.engine.start(broken, {}, ACTOR)
    run = desk.complete(run, "triage")
    assert run.status == "error" and run.failure is not None and run.failure.element_id == "review"
    plan = run.migrate(fixed, ACTOR)
    assert plan.changed == ("review",)
    assert run.status == "error"  # still failed until retried
    run = desk.roundtrip(run)
    run.retry(None, ACTOR)
    run = desk.roundtrip(run)
    assert run.status == "completed" and run.data["x"] == 2


def test_an_open_task_inside_a_subprocess_moves_with_it(desk: Desk):
    def outer(extra: bool) -> bytes:
        inner = Diagram("inner", "Inner")
        inner.node("i_start", "start", col=0)
        inner.node("work", "user", "Work", col=1)
        steps = ["i_start", "work"]
        if extra:
            inner.node("check", "user", "Check", col=2)
            steps.append("check")
        inner.node("i_end", "end", col=3)
        inner.chain(*steps, "i_end")
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("sub", "sub", "Sub", col=1, inner=inner)
        d.node("end", "end", col=2)
        d.chain("start", "sub", "end")
        return pretty(d.to_xml()).encode()

    v1, v2 = desk.bundle(outer(False)), desk.bundle(outer(True))
    run = desk.engine.start(v1, {}, ACTOR)
    [work] = run.user_tasks()
    run.migrate(v2, ACTOR)
    run = desk.roundtrip(run)
    assert [t.id for t in run.user_tasks()] == [work.id]
    run = desk.complete(run, "work")
    assert open_ids(run) == ["check"]
    run = desk.complete(run, "check")
    assert run.status == "completed"


def voting(form: str = "a.json", members: str = "['ann', 'ben', 'cid']", *, sequential: bool = False,
           review: bool = False) -> bytes:
    """A vote of every member (a multi-instance user task), then an optional review."""
    d = Diagram("flow", "Flow")
    d.node("start", "start", col=0)
    d.node("setup", "script", "Set up", col=1, script=f"members = {members}")
    d.node("vote", "user", "Vote", col=2, properties={"formJsonSchemaFilename": form},
           multi={"collection": "members", "item": "member", "output": "votes", "output_item": "ballot",
                  "sequential": sequential})
    steps = ["start", "setup", "vote"]
    if review:
        d.node("review", "user", "Review", col=3)
        steps.append("review")
    d.node("end", "end", col=4)
    d.chain(*steps, "end")
    return pretty(d.to_xml()).encode()


def test_a_changed_multi_instance_task_keeps_each_instance_s_item(desk: Desk):
    v1, v2 = desk.bundle(voting("a.json")), desk.bundle(voting("b.json"))
    run = desk.engine.start(v1, {}, ACTOR)
    before = {t.id: t.data["member"] for t in run.user_tasks()}
    assert sorted(before.values()) == ["ann", "ben", "cid"]
    [first] = [t for t in run.user_tasks() if t.data["member"] == "ann"]
    run.complete_task(first.id, {"ballot": "yes"}, ACTOR)
    run = desk.roundtrip(run)
    plan = run.migrate(v2, ACTOR)
    assert "vote" in plan.changed
    run = desk.roundtrip(run)
    after = {t.id: (t.data["member"], t.form) for t in run.user_tasks()}
    assert after == {i: (m, "b.json") for i, m in before.items() if m != "ann"}
    for task in run.user_tasks():
        run.complete_task(task.id, {"ballot": "no"}, ACTOR)
    run = desk.roundtrip(run)
    assert run.status == "completed" and sorted(run.data["votes"]) == ["no", "no", "yes"]


def fork(*, right_script: str | None = None, check: bool = False, mid: bool = False, wrap_up: bool = False) -> bytes:
    """A parallel split into ``left`` and ``right`` (user tasks, or ``right`` a script) joined
    again; optionally a ``check`` between left and the join, a third branch ``mid``, and a
    ``wrap_up`` after the join."""
    d = Diagram("flow", "Flow")
    d.node("start", "start", col=0)
    d.node("split", "and", col=1)
    d.node("left", "user", "Left", col=2)
    if right_script is None:
        d.node("right", "user", "Right", col=2, row=1)
    else:
        d.node("right", "script", "Right", col=2, row=1, script=right_script)
    d.node("join", "and", col=4)
    d.node("end", "end", col=6)
    d.chain("start", "split", "left", *(["check"] if check else []), "join")
    if check:
        d.node("check", "user", "Check", col=3)
    d.chain("split", "right", "join")
    if mid:
        d.node("mid", "user", "Mid", col=2, row=2)
        d.chain("split", "mid", "join")
    if wrap_up:
        d.node("wrap_up", "user", "Wrap up", col=5)
    d.chain("join", *(["wrap_up"] if wrap_up else []), "end")
    return pretty(d.to_xml()).encode()


def test_open_parallel_branches_move_and_join_under_the_new_version(desk: Desk):
    v1, v2 = desk.bundle(fork()), desk.bundle(fork(wrap_up=True))
    run = desk.engine.start(v1, {}, ACTOR)
    run = desk.complete(run, "left", {"l": 1})  # the join waits for the right branch
    run.migrate(v2, ACTOR)
    run = desk.roundtrip(run)
    assert open_ids(run) == ["right"]
    run = desk.complete(run, "right", {"r": 2})
    assert open_ids(run) == ["wrap_up"]
    run = desk.complete(run, "wrap_up")
    assert run.status == "completed" and run.data["l"] == 1 and run.data["r"] == 2


def test_a_compacted_loop_moves_and_keeps_its_count():
    from tests.engine.test_compaction import loop_diagram

    desk = Desk()
    v1 = desk.bundle(loop_diagram())
    v2 = desk.bundle(loop_diagram().replace(b'name="Work"', b'name="Work on it"'))
    run = desk.engine.start(v1, {}, ACTOR)
    for _ in range(30):
        [task] = run.user_tasks()
        run.complete_task(task.id, {"again": True}, ACTOR)
    run = desk.roundtrip(run)
    [work] = run.user_tasks()
    plan = run.migrate(v2, ACTOR)
    assert "work" in plan.changed
    run = desk.roundtrip(run)
    [moved] = run.user_tasks()
    assert moved.id == work.id and moved.name == "Work on it"
    run.complete_task(moved.id, {"again": False}, ACTOR)
    run = desk.roundtrip(run)
    assert run.status == "completed" and run.data["rounds"] == 31


# -- structure changed around open tasks (review of the first version of the move) --------------------


def with_boundaries(remind: bool, escalate: bool, remind_label: str = "Remind") -> bytes:
    d = Diagram("flow", "Flow")
    d.node("start", "start", col=0)
    d.node("triage", "user", "Triage", col=2)
    if remind:
        d.node("remind", "boundary", remind_label, attached_to="triage", timer=("timeDuration", '"PT4H"'),
               interrupting=False)
        d.node("reminded", "script", "Reminded", col=3, row=1, script="reminders = 1")
        d.node("remind_end", "end", col=4, row=1)
        d.chain("remind", "reminded", "remind_end")
    if escalate:
        d.node("escalate", "boundary", "Escalate", attached_to="triage", timer=("timeDuration", '"PT1H"'))
        d.node("escalated", "user", "Escalated", col=3, row=2)
        d.node("esc_end", "end", col=4, row=2)
        d.chain("escalate", "escalated", "esc_end")
    d.node("end", "end", col=5)
    d.chain("start", "triage", "end")
    return pretty(d.to_xml()).encode()


@pytest.mark.parametrize("before", [(False, False), (True, False)])
def test_a_boundary_timer_added_to_an_open_task_is_armed_from_the_move(desk: Desk, before):
    v1, v2 = desk.bundle(with_boundaries(*before)), desk.bundle(with_boundaries(True, True))
    run = desk.engine.start(v1, {"caller": "rita"}, ACTOR)
    [triage] = run.user_tasks()
    desk.clock.advance(timedelta(minutes=30))
    run.migrate(v2, ACTOR)
    run = desk.roundtrip(run)
    assert run.user_tasks()[0].data == {"caller": "rita"}  # the split put above it came before it in the store
    assert run.next_timer_at() == desk.clock.now() + timedelta(hours=1)  # the new escalation, from the move
    desk.clock.advance(timedelta(minutes=59))
    run.refresh_timers(ACTOR)
    assert [t.id for t in run.user_tasks()] == [triage.id]
    desk.clock.advance(timedelta(minutes=2))
    run.refresh_timers(ACTOR)
    run = desk.roundtrip(run)
    assert open_ids(run) == ["escalated"]  # interrupting: triage is gone
    run = desk.complete(run, "escalated")
    assert run.status == "completed"


def test_a_boundary_timer_removed_from_an_open_or_passed_task_goes(desk: Desk):
    v1, v2 = desk.bundle(with_boundaries(True, True)), desk.bundle(with_boundaries(True, False))
    run = desk.engine.start(v1, {}, ACTOR)
    [triage] = run.user_tasks()
    plan = run.migrate(v2, ACTOR)
    assert plan.possible and "escalate" in plan.dropped and plan.kept == ("remind", "triage")
    run = desk.roundtrip(run)
    desk.clock.advance(timedelta(hours=2))  # the escalation would have fired
    run.refresh_timers(ACTOR)
    assert [t.id for t in run.user_tasks()] == [triage.id]
    run = desk.complete(run, "triage")
    assert run.status == "completed"
    # passed: the task's history holds the split and the cancelled timer, both cut
    passed = desk.complete(desk.engine.start(desk.bundle(version()), {}, ACTOR), "triage")
    plan = passed.migrate(desk.bundle(version(remind=False)), ACTOR)
    assert plan.possible and plan.history == () and "remind" in plan.dropped
    passed = desk.roundtrip(passed)
    passed = desk.complete(passed, "review")
    assert passed.status == "completed"


def test_a_label_only_change_of_a_timer_keeps_its_due_time(desk: Desk):
    v1, v2 = desk.bundle(with_boundaries(True, False)), desk.bundle(with_boundaries(True, False, "Nudge"))
    run = desk.engine.start(v1, {}, ACTOR)
    due = run.next_timer_at()
    desk.clock.advance(timedelta(hours=1))
    run.migrate(v2, ACTOR)
    run = desk.roundtrip(run)
    assert run.next_timer_at() == due


def test_an_event_gateway_given_another_branch_keeps_its_timeout(desk: Desk):
    def gateway(extra: bool) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("gw", "event", col=1)
        d.node("reply", "catch", "Reply", col=2, message="reply")
        d.node("timeout", "catch", "Timeout", col=2, row=1, timer=("timeDuration", '"PT8H"'))
        d.node("handle", "user", "Handle", col=3)
        d.node("end", "end", col=4)
        d.node("late", "end", col=3, row=1)
        d.chain("start", "gw")
        d.chain("gw", "reply", "handle", "end")
        d.chain("gw", "timeout", "late")
        if extra:
            d.node("cancel", "catch", "Cancelled", col=2, row=2, message="cancel")
            d.node("c_end", "end", col=3, row=2)
            d.chain("gw", "cancel", "c_end")
        return pretty(d.to_xml()).encode()

    v1, v2 = desk.bundle(gateway(False)), desk.bundle(gateway(True))
    run = desk.engine.start(v1, {}, ACTOR)
    due = run.next_timer_at()
    desk.clock.advance(timedelta(hours=7))
    run.migrate(v2, ACTOR)
    run = desk.roundtrip(run)
    assert run.next_timer_at() == due
    run.send_message("cancel", {}, ACTOR)  # the new branch works
    run = desk.roundtrip(run)
    assert run.status == "completed" and "cancel" in run.history_path()


def test_a_changed_cycle_timer_that_fired_keeps_the_tasks_it_opened(desk: Desk):
    def cycle(value: str) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("triage", "user", "Triage", col=2)
        d.node("remind", "boundary", "Remind", attached_to="triage", timer=("timeCycle", value), interrupting=False)
        d.node("follow", "user", "Follow up", col=3, row=1)
        d.node("remind_end", "end", col=5, row=1)
        d.chain("remind", "follow", "remind_end")
        d.node("end", "end", col=5)
        d.chain("start", "triage", "end")
        return pretty(d.to_xml()).encode()

    v1, v2 = desk.bundle(cycle('"R3/PT1H"')), desk.bundle(cycle('"R5/PT2H"'))
    run = desk.engine.start(v1, {}, ACTOR)
    for _ in range(2):
        desk.clock.advance(timedelta(minutes=61))
        run.refresh_timers(ACTOR)
    before = sorted(t.id for t in run.user_tasks())
    assert open_ids(run) == ["follow", "follow", "triage"]
    run.migrate(v2, ACTOR)
    run = desk.roundtrip(run)
    assert sorted(t.id for t in run.user_tasks()) == before


def test_a_step_added_after_a_running_multi_instance_or_loop_runs_after_it(desk: Desk):
    for source, target, after in ((False, True, ["review"]), (True, False, [])):
        run = desk.engine.start(desk.bundle(voting(members="['ann', 'ben']", review=source)), {}, ACTOR)
        assert run.migration_plan(desk.bundle(voting(members="['ann', 'ben']", review=target))).possible
        run.migrate(desk.bundle(voting(members="['ann', 'ben']", review=target)), ACTOR)
        run = desk.roundtrip(run)
        for task in run.user_tasks():
            run.complete_task(task.id, {"ballot": 1}, ACTOR)
        run = desk.roundtrip(run)
        assert open_ids(run) == after and run.status == ("running" if after else "completed")


def test_a_finished_call_whose_element_now_calls_another_process_moves(desk: Desk):
    def child(process_id: str, task: str) -> bytes:
        d = Diagram(process_id, process_id)
        d.node("c_start", "start", col=0)
        d.node(task, "user", task, col=1)
        d.node("c_end", "end", col=2)
        d.chain("c_start", task, "c_end")
        return pretty(d.to_xml()).encode()

    def bundle(callee: str) -> SpecBundle:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("call", "call", "Call", col=1, attrs={"calledElement": callee})
        d.node("after", "user", "After", col=2)
        d.node("end", "end", col=3)
        d.chain("start", "call", "after", "end")
        files = [SourceFile("flow.bpmn", pretty(d.to_xml()).encode()), SourceFile("a.bpmn", child("child_a", "work_a")),
                 SourceFile("b.bpmn", child("child_b", "work_b"))]
        [process] = [p for p in ProcessLibrary().compile(files) if p.process_id == "flow"]
        return desk.engine.spec(process.content_hash, process.spec_json)

    v1, v2 = bundle("child_a"), bundle("child_b")
    run = desk.engine.start(v1, {}, ACTOR)
    assert open_ids(run) == ["work_a"]
    refused = run.migration_plan(v2)
    assert not refused.possible and refused.processes == ("child_a",)  # open in the old process
    run = desk.complete(run, "work_a")
    run.migrate(v2, ACTOR)
    run = desk.roundtrip(run)
    run = desk.complete(run, "after")
    assert run.status == "completed"


def test_a_failed_branch_beside_a_waiting_join_moves_to_the_fix_and_retries(desk: Desk):
    broken, fixed = desk.bundle(fork(right_script="x = 1 / 0")), desk.bundle(fork(right_script="x = 2"))
    run = desk.engine.start(broken, {}, ACTOR)
    run = desk.complete(run, "left")
    assert run.status == "error"
    run.migrate(fixed, ACTOR)
    run = desk.roundtrip(run)
    run.retry(None, ACTOR)
    assert run.status == "completed" and run.data["x"] == 2


def test_a_waiting_timer_changed_into_a_message_waits_for_the_message(desk: Desk):
    def waiting(kind: str) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        if kind == "timer":
            d.node("wait", "catch", "Wait", col=1, timer=("timeDuration", '"PT4H"'))
        else:
            d.node("wait", "catch", "Wait", col=1, message="go")
        d.node("end", "end", col=2)
        d.chain("start", "wait", "end")
        return pretty(d.to_xml()).encode()

    run = desk.engine.start(desk.bundle(waiting("timer")), {}, ACTOR)
    run.migrate(desk.bundle(waiting("message")), ACTOR)
    run = desk.roundtrip(run)
    assert run.next_timer_at() is None
    desk.clock.advance(timedelta(hours=5))
    run.refresh_timers(ACTOR)
    assert run.status == "running"
    run.send_message("go", {}, ACTOR)
    assert run.status == "completed"


# -- what a second review found ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["timer", "message"])
def test_a_dropped_step_s_data_stays_for_what_waits_after_it(desk: Desk, kind: str):
    def waiting(bump: bool) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("init", "script", "Init", col=1, script="priority = 3")
        steps = ["start", "init"]
        if bump:
            d.node("bump", "script", "Bump", col=2, script="priority = 1")
            steps.append("bump")
        if kind == "timer":
            d.node("wait", "catch", "Wait", col=3, timer=("timeDuration", '"PT1H"'))
        else:
            d.node("wait", "catch", "Wait", col=3, message="go")
        d.node("after", "user", "After", col=4)
        d.node("end", "end", col=5)
        d.chain(*steps, "wait", "after", "end")
        return pretty(d.to_xml()).encode()

    run = desk.engine.start(desk.bundle(waiting(True)), {}, ACTOR)
    plan = run.migrate(desk.bundle(waiting(False)), ACTOR)
    assert plan.dropped == ("bump",)
    run = desk.roundtrip(run)
    assert run.data == {"priority": 1}  # the workflow's last task was the cut one
    if kind == "timer":
        desk.clock.advance(timedelta(hours=2))
        run.refresh_timers(ACTOR)
    else:
        run.send_message("go", {}, ACTOR)
    run = desk.roundtrip(run)
    assert run.user_tasks()[0].data["priority"] == 1


def test_a_changed_multi_instance_over_a_dict_completes(desk: Desk):
    members = "{'a': 'ann', 'b': 'ben'}"
    run = desk.engine.start(desk.bundle(voting("a.json", members)), {}, ACTOR)
    run.migrate(desk.bundle(voting("b.json", members)), ACTOR)
    run = desk.roundtrip(run)
    for task in run.user_tasks():
        run.complete_task(task.id, {"ballot": task.data["member"] + "!"}, ACTOR)
    run = desk.roundtrip(run)
    assert run.status == "completed" and run.data["votes"] == {"a": "ann!", "b": "ben!"}


def test_a_running_multi_instance_of_another_kind_refuses_the_move(desk: Desk):
    run = desk.engine.start(desk.bundle(voting()), {}, ACTOR)
    plan = run.migration_plan(desk.bundle(voting(sequential=True)))
    assert not plan.possible and plan.incompatible == ("vote",)


def test_a_join_waiting_on_branches_whose_flows_changed_refuses_the_move(desk: Desk):
    run = desk.engine.start(desk.bundle(fork()), {}, ACTOR)
    run = desk.complete(run, "left")  # arrived at the join, which waits for the right branch
    plan = run.migration_plan(desk.bundle(fork(check=True)))
    assert not plan.possible and "join" in plan.incompatible
    assert desk.engine.start(desk.bundle(fork()), {}, ACTOR).migration_plan(desk.bundle(fork(check=True))).possible


def test_a_fired_reminder_cannot_be_removed_and_the_refusal_names_it(desk: Desk):
    run = desk.engine.start(desk.bundle(version()), {}, ACTOR)
    desk.clock.advance(timedelta(hours=5))
    run.refresh_timers(ACTOR)
    assert "reminded" in run.history_path()
    plan = run.migration_plan(desk.bundle(version(remind=False)))
    assert not plan.possible and "remind" in plan.history and plan.unmapped == () and plan.incompatible == ()


def test_a_label_only_timer_change_is_reported_kept(desk: Desk):
    run = desk.engine.start(desk.bundle(with_boundaries(True, False)), {}, ACTOR)
    plan = run.migrate(desk.bundle(with_boundaries(True, True, "Nudge")), ACTOR)
    assert plan.kept == ("remind", "triage") and plan.changed == () and plan.armed == ("escalate",)


def test_a_failed_task_given_a_boundary_timer_by_the_fix_has_it_after_the_retry(desk: Desk):
    def routed(script: str, timer: bool) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("route", "script", "Route", col=1, script=script)
        if timer:
            d.node("slow", "boundary", "Too slow", attached_to="route", timer=("timeDuration", '"PT1H"'))
            d.node("slow_end", "end", col=2, row=1)
            d.chain("slow", "slow_end")
        d.node("triage", "user", "Triage", col=2)
        d.node("end", "end", col=3)
        d.chain("start", "route", "triage", "end")
        return pretty(d.to_xml()).encode()

    run = desk.engine.start(desk.bundle(routed("x = 1 / 0", False)), {}, ACTOR)
    assert run.status == "error"
    plan = run.migrate(desk.bundle(routed("x = 2", True)), ACTOR)
    assert plan.armed == ("slow",)
    run = desk.roundtrip(run)
    run.retry(None, ACTOR)
    run = desk.roundtrip(run)
    assert open_ids(run) == ["triage"] and run.data["x"] == 2
    run = desk.complete(run, "triage")
    assert run.status == "completed"


def test_moving_an_instance_a_time_limit_stopped_runs_nothing_until_its_retry():
    desk = Desk()
    desk.engine = ProcessEngine(script_time_limit=0.3, now=desk.clock.now)

    def spinning(script: str) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("calc", "script", "Calc", col=1, script=script)
        d.node("work", "user", "Work", col=2)
        d.node("end", "end", col=3)
        d.chain("start", "calc", "work", "end")
        return pretty(d.to_xml()).encode()

    run = desk.engine.start(desk.bundle(spinning("n = 0\nwhile True:\n    n = n + 1")), {}, ACTOR)
    assert run.status == "error" and run.failure is not None
    run.migrate(desk.bundle(spinning("n = 1")), ACTOR)
    assert run.status == "error" and open_ids(run) == [] and "calc" not in run.history_path()
    run = desk.roundtrip(run)
    run.retry(None, ACTOR)
    assert open_ids(run) == ["work"] and run.data["n"] == 1


# -- what a fourth review found ------------------------------------------------------------------------


def test_a_join_given_a_branch_the_instance_never_took_refuses_the_move(desk: Desk):
    run = desk.engine.start(desk.bundle(fork()), {}, ACTOR)
    plan = run.migration_plan(desk.bundle(fork(mid=True)))
    assert not plan.possible and plan.incompatible == ("join",)


def test_a_boundary_timer_is_armed_on_a_task_whose_predecessor_the_version_changed(desk: Desk):
    def flow(pre: bool, escalate: bool) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        steps = ["start"]
        if pre:
            d.node("pre", "script", "Pre", col=1, script="pre = 1")
            steps.append("pre")
        d.node("triage", "user", "Triage", col=2)
        if escalate:
            d.node("escalate", "boundary", "Escalate", attached_to="triage", timer=("timeDuration", '"PT1H"'))
            d.node("escalated", "user", "Escalated", col=3, row=1)
            d.node("esc_end", "end", col=4, row=1)
            d.chain("escalate", "escalated", "esc_end")
        d.node("end", "end", col=4)
        d.chain(*steps, "triage", "end")
        return pretty(d.to_xml()).encode()

    run = desk.engine.start(desk.bundle(flow(False, False)), {}, ACTOR)
    plan = run.migrate(desk.bundle(flow(True, True)), ACTOR)
    assert plan.armed == ("escalate",)
    run = desk.roundtrip(run)
    assert run.next_timer_at() == desk.clock.now() + timedelta(hours=1)
    run = desk.complete(run, "triage")
    assert run.status == "completed"


def test_a_boundary_timer_added_to_a_waiting_receive_task_is_armed(desk: Desk):
    def receive(timer: bool) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("wait", "catch", "Wait", col=1, message="go")
        d.node("after", "user", "After", col=2)
        d.node("end", "end", col=3)
        d.chain("start", "wait", "after", "end")
        if timer:
            d.node("late", "boundary", "Late", attached_to="wait", timer=("timeDuration", '"PT1H"'))
            d.node("chase", "user", "Chase", col=2, row=1)
            d.node("l_end", "end", col=3, row=1)
            d.chain("late", "chase", "l_end")
        text = pretty(d.to_xml())
        # the message catch as a receive task: a task that waits, to which boundary events attach
        text = re.sub(r'<bpmn:intermediateCatchEvent id="wait"(.*?)</bpmn:intermediateCatchEvent>',
                      lambda m: '<bpmn:receiveTask id="wait" messageRef="msg_go"' + re.sub(
                          r"<bpmn:messageEventDefinition.*?(/>|</bpmn:messageEventDefinition>)", "", m.group(1),
                          flags=re.S) + "</bpmn:receiveTask>", text, flags=re.S)
        return text.encode()

    run = desk.engine.start(desk.bundle(receive(False)), {}, ACTOR)
    plan = run.migrate(desk.bundle(receive(True)), ACTOR)
    assert plan.armed == ("late",)
    run = desk.roundtrip(run)
    assert run.next_timer_at() == desk.clock.now() + timedelta(hours=1)
    run.send_message("go", {}, ACTOR)
    run = desk.roundtrip(run)
    assert open_ids(run) == ["after"] and run.next_timer_at() is None


def test_an_open_task_matched_by_place_after_an_added_step_or_into_another_kind_is_refused(desk: Desk):
    def flow(middle: list[tuple[str, str]]) -> bytes:
        d = Diagram("flow", "Flow")
        d.node("start", "start", col=0)
        d.node("intake", "script", "Intake", col=1, script="seen = 1")
        for i, (node_id, kind) in enumerate(middle, start=2):
            if kind == "sub":
                inner = Diagram("inner", "Inner")
                inner.node("i_start", "start", col=0)
                inner.node("triage", "user", "Triage", col=1)
                inner.node("i_end", "end", col=2)
                inner.chain("i_start", "triage", "i_end")
                d.node(node_id, "sub", "Sub", col=i, inner=inner)
            else:
                d.node(node_id, kind, node_id.title(), col=i)
        d.node("review", "user", "Review", col=6)
        d.node("end", "end", col=7)
        d.chain("start", "intake", *[m[0] for m in middle], "review", "end")
        return pretty(d.to_xml()).encode()

    v1 = desk.bundle(flow([("triage", "user")]))
    for middle in ([("triage_a", "user"), ("triage_b", "user")], [("sub", "sub")]):
        run = desk.engine.start(v1, {}, ACTOR)
        plan = run.migration_plan(desk.bundle(flow(middle)))
        assert not plan.possible and plan.incompatible == ("triage",), middle
