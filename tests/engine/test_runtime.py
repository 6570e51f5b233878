"""Engine scenarios. After every step the state must survive dump -> load -> dump unchanged."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from app.engine import (
    MessageNotExpected,
    ProcessLibrary,
    ScriptIdentity,
    SourceFile,
    StateVersionError,
    TaskNotFound,
    TaskNotReady,
    WorkflowRun,
)
from tests.conftest import fixture_files
from tests.engine.harness import EngineHarness
from tools.bpmn_builder import Diagram, pretty

ALICE = ScriptIdentity(current_user={"id": 1, "username": "alice"}, initiator={"id": 1, "username": "alice"})


class Harness(EngineHarness):
    """The fixture processes, with no platform operations and no form checks."""

    def __init__(self, files: list[tuple[str, bytes]] | None = None, time_limit: float = 1.0) -> None:
        super().__init__(script_time_limit=time_limit)
        compiled = ProcessLibrary().compile([SourceFile(n, c) for n, c in (files or fixture_files())])
        self.specs = {p.process_id: p for p in compiled}

    def start(self, process_id: str, data: dict) -> WorkflowRun:
        process = self.specs[process_id]
        bundle = self.engine.spec(process.content_hash, process.spec_json)
        return self.roundtrip(self.engine.start(bundle, data, ALICE))

    def complete(self, run: WorkflowRun, bpmn_id: str, data: dict) -> WorkflowRun:
        task = next(t for t in run.user_tasks() if t.bpmn_id == bpmn_id)
        run.complete_task(task.id, data, ALICE)
        return self.roundtrip(run)


@pytest.fixture()
def h() -> Harness:
    return Harness()


def test_small_order_runs_script_and_default_flow_to_the_end(h: Harness):
    run = h.start("simple_request", {})
    [task] = run.user_tasks()
    assert (task.bpmn_id, task.name, task.lane, task.form, task.ui_form) == (
        "fill_details", "Fill in details", None, "details-schema.json", "details-uischema.json")
    assert task.instructions == "Describe **{{ title }}** please"
    run = h.complete(run, "fill_details", {"title": "chairs", "quantity": 3})
    assert run.status == "completed"
    assert run.data["total"] == 6 and run.data["label"] == "CHAIRS"
    assert run.history_path()[:3] == ["start", "fill_details", "compute"]


def test_big_order_takes_the_conditional_branch(h: Harness):
    run = h.start("simple_request", {"requested_by": "alice"})
    run = h.complete(run, "fill_details", {"title": "desks", "quantity": 6})
    assert run.status == "running"
    assert [t.bpmn_id for t in run.user_tasks()] == ["approve"]
    assert run.user_tasks()[0].data["total"] == 12
    run = h.complete(run, "approve", {"approved": True})
    assert run.status == "completed" and run.data["approved"] is True and run.data["requested_by"] == "alice"


def test_lanes_prescript_dmn_instructions_and_message_payload(h: Harness):
    run = h.start("lane_ticket", {})
    [triage] = run.user_tasks()
    assert triage.lane == "ServiceDesk" and triage.data["reopen_count"] == 0
    run = h.complete(run, "lane_ticket".replace("lane_ticket", "triage"), {"impact": "medium"})
    [approve] = run.user_tasks()
    assert approve.lane == "Approvers" and approve.data["priority"] == 2
    assert run.next_timer_at() == h.clock.now() + timedelta(hours=2)
    run = h.complete(run, "approve", {"approved": True})
    assert run.user_tasks() == [] and run.status == "running"
    assert run.next_timer_at() is None
    with pytest.raises(MessageNotExpected):
        run.send_message("something_else", {})
    run.send_message("customer_reply", {"text": "works now"})
    run = h.roundtrip(run)
    assert run.status == "completed"
    assert run.data["reply"] == {"text": "works now"}


def test_interrupting_timer_fires_by_the_injected_clock(h: Harness):
    run = h.start("lane_ticket", {})
    run = h.complete(run, "triage", {"impact": "low"})
    h.clock.advance(timedelta(hours=1, minutes=59))
    run.refresh_timers()
    assert [t.bpmn_id for t in run.user_tasks()] == ["approve"]
    h.clock.advance(timedelta(minutes=2))
    run.refresh_timers()
    run = h.roundtrip(run)
    assert run.user_tasks() == []
    assert run.status == "completed"
    assert "escalated" in run.history_path()


def test_late_submission_loses_to_a_due_timer(h: Harness):
    run = h.start("lane_ticket", {})
    run = h.complete(run, "triage", {"impact": "high"})
    [approve] = run.user_tasks()
    h.clock.advance(timedelta(hours=3))
    with pytest.raises(TaskNotReady) as info:
        run.complete_task(approve.id, {"approved": True}, ALICE)
    assert info.value.error_type == "timer_expired"
    run = h.roundtrip(run)
    assert run.status == "completed" and "approved" not in run.data


def test_call_activity_runs_child_process_and_returns_its_data(h: Harness):
    run = h.start("parent_flow", {"ticket": "T-1"})
    [child] = run.user_tasks()
    assert child.bpmn_id == "child_work" and child.process_id == "child_flow"
    assert child.data["ticket"] == "T-1"
    run = h.complete(run, "child_work", {})
    assert run.status == "completed" and run.data["child_done"] is True


def test_only_ready_human_tasks_can_be_completed(h: Harness):
    run = h.start("simple_request", {})
    future = [t for t in run._wf.get_tasks() if t.task_spec.bpmn_id == "approve"]
    assert future, "the approve task exists in the tree as a future task"
    with pytest.raises(TaskNotReady):
        run.complete_task(str(future[0].id), {"approved": True}, ALICE)
    script = next(t for t in run._wf.get_tasks() if t.task_spec.bpmn_id == "compute")
    with pytest.raises(TaskNotReady):
        run.complete_task(str(script.id), {}, ALICE)
    with pytest.raises(TaskNotFound):
        run.complete_task("not-a-uuid", {}, ALICE)
    with pytest.raises(TaskNotFound):
        run.complete_task("00000000-0000-0000-0000-000000000000", {}, ALICE)
    assert [t.bpmn_id for t in run.user_tasks()] == ["fill_details"]


def test_script_error_puts_instance_in_error_with_line_and_retry_fixes_it(h: Harness):
    run = h.start("simple_request", {})
    run = h.complete(run, "fill_details", {"title": None, "quantity": 2})
    assert run.status == "error"
    failure = run.failure
    assert failure is not None
    assert failure.element_id == "compute" and failure.line == 2
    assert failure.error_type == "AttributeError"
    run = h.roundtrip(run)
    run.retry({"title": "fixed"}, ALICE)
    run = h.roundtrip(run)
    assert run.status == "completed" and run.data["label"] == "FIXED"


def test_endless_script_is_stopped_and_the_instance_fails_cleanly():
    files = [
        (n, c.replace(b"total = quantity * 2", b"total = 0\nwhile True:\n    total += 1") if n == "simple_request.bpmn" else c)
        for n, c in fixture_files()
    ]
    h = Harness(files, time_limit=0.3)
    run = h.start("simple_request", {})
    started = datetime.now()
    task = run.user_tasks()[0]
    run.complete_task(task.id, {"title": "x", "quantity": 1}, ALICE)
    assert (datetime.now() - started).total_seconds() < 5
    assert run.status == "error"
    assert run.failure is not None and run.failure.element_id == "compute"
    assert "time" in (run.failure.error_type or "") + run.failure.message
    run.dump()  # still serializable


def test_cancel_marks_the_run_cancelled(h: Harness):
    run = h.start("lane_ticket", {})
    run.cancel()
    run = h.roundtrip(run)
    assert run.status == "cancelled" and run.user_tasks() == []


def test_unknown_serializer_version_is_refused(h: Harness):
    run = h.start("simple_request", {})
    with pytest.raises(StateVersionError):
        h.engine.restore(run.bundle, run.dump(), "99.0")


def test_state_holds_no_spec_copy(h: Harness):
    run = h.start("lane_ticket", {})
    state = json.loads(run.dump())
    assert "spec" not in state and "subprocess_specs" not in state
    assert len(run.dump()) < len(h.specs["lane_ticket"].spec_json)


def test_scripts_see_the_acting_user(h: Harness):
    files = [
        (n, c.replace(b"label = title.upper()", b"label = get_current_user()['username'] + '/' + get_process_initiator_user()['username']")
         if n == "simple_request.bpmn" else c)
        for n, c in fixture_files()
    ]
    h = Harness(files)
    run = h.start("simple_request", {})
    run = h.complete(run, "fill_details", {"title": "t", "quantity": 1})
    assert run.data["label"] == "alice/alice"


# -- the run cache (kept live runs between requests) ----------------------------------------------------


def _started(h: Harness) -> tuple[WorkflowRun, str]:
    process = h.specs["simple_request"]
    bundle = h.engine.spec(process.content_hash, process.spec_json)
    run = h.engine.start(bundle, {}, ALICE)
    return run, run.dump()


def test_run_cache_hands_out_a_run_only_for_its_exact_state(h: Harness):
    cache = h.engine.runs
    run, state = _started(h)
    run.operations = lambda name, params: None
    assert cache.park(1, run)
    assert run.operations is None  # a parked run keeps nothing of the request that parked it
    assert cache.take(1, state + " ", run.bundle) is None  # any other text: a miss, and the entry is gone
    assert cache.take(1, state, run.bundle) is None
    assert cache.park(1, run)
    assert cache.take(1, state, run.bundle) is run
    assert cache.take(1, state, run.bundle) is None  # taken: the request owns it now
    other = h.engine.spec("another-version", h.specs["simple_request"].spec_json)
    assert cache.park(1, run) and cache.take(1, state, other) is None  # another deployed version


def test_run_cache_refuses_a_run_advanced_since_its_dump(h: Harness):
    run, _state = _started(h)
    [task] = run.user_tasks()
    run.complete_task(task.id, {"title": "desk", "quantity": 1}, ALICE)
    assert run.clean_dump is None and not h.engine.runs.park(1, run)
    state = run.dump()
    assert run.clean_dump == state and h.engine.runs.park(1, run)


def test_run_cache_is_bounded_and_can_be_off(h: Harness):
    from app.engine.runtime import RunCache

    cache = RunCache(2)
    runs = [_started(h) for _ in range(3)]
    for key, (run, _state) in enumerate(runs):
        cache.park(key, run)
    assert cache.take(0, runs[0][1], runs[0][0].bundle) is None  # the least recently parked went first
    assert cache.take(2, runs[2][1], runs[2][0].bundle) is runs[2][0]
    off = RunCache(0)
    assert off.park(0, runs[1][0]) is False and off.take(0, runs[1][1], runs[1][0].bundle) is None


UNSTABLE_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="t">
 <bpmn:process id="unstable" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="make"/>
  <bpmn:scriptTask id="make"><bpmn:script>counts = {1: "one"}
pair = (1, 2)</bpmn:script></bpmn:scriptTask>
  <bpmn:sequenceFlow id="f2" sourceRef="make" targetRef="wait"/>
  <bpmn:userTask id="wait" name="Wait"/>
  <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="use"/>
  <bpmn:scriptTask id="use"><bpmn:script>same = pair == [1, 2]
got = counts.get("1")</bpmn:script></bpmn:scriptTask>
  <bpmn:sequenceFlow id="f4" sourceRef="use" targetRef="e"/>
  <bpmn:endEvent id="e"/>
 </bpmn:process>
</bpmn:definitions>"""


def test_run_cache_keeps_no_run_whose_data_a_restore_would_change():
    # A tuple and an int dict key come back from the stored state as a list and a str key: a kept
    # run would answer differently from a restored one, so it is not kept.
    h = Harness([("unstable.bpmn", UNSTABLE_BPMN)])
    process = h.specs["unstable"]
    bundle = h.engine.spec(process.content_hash, process.spec_json)
    run = h.engine.start(bundle, {}, ALICE)
    state = run.dump()
    assert not run.json_stable() and not h.engine.runs.park(1, run)
    restored = h.engine.restore(bundle, state, run.serializer_version)
    assert restored.dump() == state
    assert restored.json_stable() and h.engine.runs.park(1, restored)
    [task] = restored.user_tasks()
    restored.complete_task(task.id, {}, ALICE)
    assert restored.status == "completed" and (restored.data["same"], restored.data["got"]) == (True, "one")


def test_settled_answers_what_status_data_and_user_tasks_answer(h: Harness):
    """A save reads all three from one walk of the task tree; each stage must agree."""
    def same(run: WorkflowRun) -> None:
        assert run.settled() == (run.status, run.data, run.user_tasks())

    run = h.start("simple_request", {})
    same(run)
    assert run.settled()[0] == "running" and [v.bpmn_id for v in run.settled()[2]] == ["fill_details"]
    run = h.complete(run, "fill_details", {"title": None, "quantity": 2})  # the script fails
    same(run)
    assert run.settled()[0] == "error"
    run.retry({"title": "fixed"}, ALICE)
    same(run)
    assert run.settled()[0] == "completed" and run.settled()[2] == []


def _waits_inside_a_subprocess() -> bytes:
    """start -> set -> [inner: step -> wait an hour -> after] -> review -> end."""
    inner = Diagram("inner", "Inner")
    inner.node("inner_start", "start", col=0)
    inner.node("step", "script", "Step", col=1, script='stage = "waiting"\ncount = count + 1')
    inner.node("wait", "catch", "An hour", col=2, timer=("timeDuration", '"PT1H"'))
    inner.node("after", "script", "After", col=3, script='stage = "done"\ncount = count + 1')
    inner.node("inner_end", "end", col=4)
    inner.chain("inner_start", "step", "wait", "after", "inner_end")
    d = Diagram("inner_wait", "Inner wait")
    d.node("start", "start", col=0)
    d.node("set", "script", "Set", col=1, script='stage = "started"\ncount = 0')
    d.node("inner", "sub", "Inner", col=2, inner=inner)
    d.node("review", "user", "Review", col=3)
    d.node("end", "end", col=4)
    d.chain("start", "set", "inner", "review", "end")
    return pretty(d.to_xml()).encode()


def test_data_while_waiting_on_a_timer_inside_a_subprocess_is_the_subprocess_s(h: Harness):
    """No human task is ready, and the top workflow's last task is the one before the subprocess:
    the data (what the record shows) is what the subprocess did since, not what it started with."""
    h = Harness([("inner_wait.bpmn", _waits_inside_a_subprocess())])
    run = h.start("inner_wait", {})
    assert run.user_tasks() == [] and run.next_timer_at() is not None
    assert (run.data["stage"], run.data["count"]) == ("waiting", 1)
    assert run.settled()[1] == run.data
    h.clock.advance(timedelta(hours=1, seconds=1))
    assert [f["bpmn_id"] for f in run.fire_due_timers()] == ["wait"]
    run = h.roundtrip(run)
    assert [t.bpmn_id for t in run.user_tasks()] == ["review"]
    assert (run.data["stage"], run.data["count"]) == ("done", 2)
