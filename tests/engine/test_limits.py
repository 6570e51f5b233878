"""Run-time limits: timers past 10 years and data an instance cannot store fail the instance
(naming the element), never hang the engine or fail the save that follows."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from app.engine import ProcessLibrary, ScriptIdentity, SourceFile, WorkflowRun, storable
from app.engine.runtime import _json_stable
from app.engine.trim import MAX_DEPTH
from app.engine.workflow import MAX_SUBPROCESS_DEPTH, Workflow
from tests.conftest import FIXTURES, fixture_files
from tests.engine.harness import CLOCK_START, EngineHarness, max_depth

ALICE = ScriptIdentity(current_user={"id": 1, "username": "alice"}, initiator={"id": 1, "username": "alice"})
TIMER_FILES = [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "timers").iterdir())]


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


class Harness(EngineHarness):
    def __init__(self, files: list[tuple[str, bytes]]) -> None:
        super().__init__(script_time_limit=1.0)
        compiled = ProcessLibrary().compile([SourceFile(n, c) for n, c in files])
        self.specs = {p.process_id: p for p in compiled}

    def start(self, process_id: str, data: dict[str, Any]) -> WorkflowRun:
        process = self.specs[process_id]
        bundle = self.engine.spec(process.content_hash, process.spec_json)
        return self.roundtrip(self.engine.start(bundle, data, ALICE))

    def complete(self, run: WorkflowRun, bpmn_id: str, data: dict[str, Any]) -> WorkflowRun:
        task = next(t for t in run.user_tasks() if t.bpmn_id == bpmn_id)
        run.complete_task(task.id, data, ALICE)
        return self.roundtrip(run)


def patched(name: str, old: bytes, new: bytes, files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    out = []
    for file_name, content in files:
        if file_name == name:
            assert old in content, (old, name)
            content = content.replace(old, new)
        out.append((file_name, content))
    return out


# -- timers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["P99999999Y", "P11Y", "P10Y1M", "P4000D", "PT99999999999999H",
                                   "P9999999999D", "bogus", 42, "P1Y" * 50])
def test_a_timer_duration_past_the_limit_or_invalid_fails_the_instance_fast(value: Any):
    h = Harness(TIMER_FILES)
    started = time.monotonic()
    run = h.start("timer_flow", {"wait_for": value})
    assert time.monotonic() - started < 5
    assert run.status == "error"
    failure = run.failure
    assert failure is not None and failure.element_id == "wait"
    assert failure.error_type in ("timer_limit", "timer_expression")
    assert "Wait an hour" in failure.message
    if failure.error_type == "timer_limit":
        assert "10 years" in failure.message
    assert run.next_timer_at() is None


def test_the_limit_itself_is_allowed_and_a_retry_with_a_sane_value_recovers():
    h = Harness(TIMER_FILES)
    ok = h.start("timer_flow", {"wait_for": "P10Y"})
    assert ok.status == "running" and ok.next_timer_at() == CLOCK_START.replace(year=2036)
    run = h.start("timer_flow", {"wait_for": "P99999999Y"})
    assert run.status == "error" and run.failure is not None and run.failure.error_type == "timer_limit"
    run.retry({"wait_for": "PT1H"}, ALICE)
    run = h.roundtrip(run)
    assert run.status == "running" and run.failure is None
    assert run.next_timer_at() == CLOCK_START + timedelta(hours=1)


def test_an_expression_valued_boundary_timer_past_the_limit_names_the_boundary_event():
    files = patched("lane_ticket.bpmn", b'"PT2H"', b"approval_window", fixture_files())
    h = Harness(files)
    run = h.start("lane_ticket", {"approval_window": "P99999999Y"})
    started = time.monotonic()
    run = h.complete(run, "triage", {"impact": "low"})
    assert time.monotonic() - started < 5
    assert run.status == "error"
    assert run.failure is not None and run.failure.element_id == "approve_timeout"
    assert run.failure.error_type == "timer_limit"
    run.retry({"approval_window": "PT1H"}, ALICE)
    run = h.roundtrip(run)
    assert run.status == "running" and [t.bpmn_id for t in run.user_tasks()] == ["approve"]
    assert run.next_timer_at() == CLOCK_START + timedelta(hours=1)


@pytest.mark.parametrize("cycle", ["R3/P99999999Y", "R/P20Y", "R3/PT0S", "R999999999/PT1H", "R3/2999-01-01T00:00:00+00:00/PT1H"])
def test_an_expression_valued_cycle_past_the_limit_fails_the_instance(cycle: str):
    files = patched("timer_flow.bpmn", b'"R3/PT1H"', b"remind_every", TIMER_FILES)
    h = Harness(files)
    run = h.start("timer_flow", {"wait_for": "PT1M", "remind_every": cycle})
    h.clock.advance(timedelta(minutes=2))
    started = time.monotonic()
    run.refresh_timers(ALICE)
    assert time.monotonic() - started < 5
    run = h.roundtrip(run)
    assert run.status == "error"
    assert run.failure is not None and run.failure.element_id == "remind"


DATE_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
 <bpmn:process id="dated" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="until"/>
  <bpmn:intermediateCatchEvent id="until" name="Until the date">
   <bpmn:timerEventDefinition id="td"><bpmn:timeDate>due_at</bpmn:timeDate></bpmn:timerEventDefinition>
  </bpmn:intermediateCatchEvent>
  <bpmn:sequenceFlow id="f2" sourceRef="until" targetRef="e"/>
  <bpmn:endEvent id="e"/>
 </bpmn:process>
</bpmn:definitions>"""


@pytest.mark.parametrize(("due_at", "status"), [
    ("2030-01-01T00:00:00+00:00", "running"),
    ("2999-01-01T00:00:00+00:00", "error"),
    ("0001-01-01T00:00:00+05:00", "error"),
    ("next tuesday", "error"),
])
def test_an_expression_valued_date_past_the_limit_fails_the_instance(due_at: str, status: str):
    h = Harness([("dated.bpmn", DATE_BPMN)])
    run = h.start("dated", {"due_at": due_at})
    assert run.status == status
    if status == "error":
        assert run.failure is not None and run.failure.element_id == "until"


# -- data an instance cannot store ---------------------------------------------------------------


def fragile(script: bytes) -> Harness:
    return Harness(patched("fragile.bpmn", b"ratio = numerator / divisor", script, fixture_files("fragile.bpmn")))


@pytest.mark.parametrize("script", [
    b"x = 10 ** 100000\nratio = 1",
    b"x = {1: 'a', 'b': 2}\nratio = 1",
    b"x = {(1, 2): 'a'}\nratio = 1",
    b"x = []\nx.append(x)\nratio = 1",
    b"x = []\nfor i in range(500):\n    x = [x]\nratio = 1",
    b"x = timezone.utc\nratio = 1",
    b"x = [1]\nfor i in range(70):\n    x = [x, x]\nratio = 1",
])
def test_a_script_leaving_unstorable_data_fails_its_task_and_the_state_still_saves(script: bytes):
    h = fragile(script)
    run = h.start("fragile", {"divisor": 1})  # roundtrip: dump and restore work
    assert run.status == "error"
    failure = run.failure
    assert failure is not None and failure.element_id == "divide"
    assert "'x'" in failure.message and "cannot store" in failure.message
    assert "x" not in run.data


def test_a_value_changed_in_place_is_caught_after_the_step_and_dropped():
    h = fragile(b"items.append(10 ** 100000)\nratio = 1")
    run = h.start("fragile", {"divisor": 1, "items": [1]})
    assert run.status == "error"
    failure = run.failure
    assert failure is not None and failure.error_type == "unstorable_data"
    assert failure.element_id == "divide" and "'items'" in failure.message
    assert run.data["items"] is None


def test_start_data_nested_too_deep_fails_the_instance_before_any_step():
    h = Harness(fixture_files())
    run = h.start("simple_request", {"title": "x", "deep": nested(900)})
    assert run.status == "error" and run.user_tasks() == []
    failure = run.failure
    assert failure is not None and failure.error_type == "unstorable_data" and "'deep'" in failure.message
    assert run.data["deep"] is None and run.data["title"] == "x"
    assert not h.engine.runs.park(1, run)
    run.retry(None, ALICE)
    run = h.roundtrip(run)
    assert run.status == "running" and [t.bpmn_id for t in run.user_tasks()] == ["fill_details"]


def test_json_stable_is_iterative_and_deep_data_is_just_not_cached():
    # Was a RecursionError raised from the run cache's park, after the commit.
    assert _json_stable(nested(5000)) is False
    assert _json_stable({"a": nested(storable.MAX_DATA_DEPTH - 2)}) is True
    h = Harness(fixture_files())
    process = h.specs["simple_request"]
    bundle = h.engine.spec(process.content_hash, process.spec_json)
    run = h.engine.start(bundle, {"deep": nested(storable.MAX_DATA_DEPTH - 2)}, ALICE)
    run.dump()
    assert run.status == "running" and h.engine.runs.park(1, run)


@pytest.mark.parametrize(("value", "fragment"), [
    (10 ** 5000, "digits"),
    (-(10 ** 5000), "digits"),
    ({10 ** 5000: 1}, "key"),
    (nested(storable.MAX_DATA_DEPTH + 1), "nested"),
    ({"a": 1, 2: "b"}, "mix"),
    ({None: 1, "a": 2}, "mix"),
    (b"bytes", "bytes"),
    (frozenset({1}), "frozenset"),
    (range(3), "range"),
], ids=["int", "negative-int", "int-key", "deep", "mixed-keys", "none-and-text-keys", "bytes", "frozenset", "range"])
def test_storable_problem_names_what_cannot_be_stored(value: Any, fragment: str):
    reason = storable.problem(value)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize("value", [
    10 ** 3999, {"a": [1, 2.5, None, True, {"b": (1, 2), "c": {3}}]}, {1: "a", 2.5: "b"},
    nested(storable.MAX_DATA_DEPTH - 1), CLOCK_START, CLOCK_START.date(), timedelta(1), float("nan"),
], ids=["int-3999-digits", "mixed", "number-keys", "deep-enough", "datetime", "date", "timedelta", "nan"])
def test_storable_problem_accepts_what_the_state_can_hold(value: Any):
    assert storable.problem(value) is None


# -- steps that would never end ------------------------------------------------------------------

RUNAWAY_FILES = [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "runaway").iterdir())]


def test_a_process_calling_itself_fails_at_the_subprocess_depth_limit_at_once():
    h = Harness(RUNAWAY_FILES)
    started = time.monotonic()
    run = h.start("selfcall", {})
    assert time.monotonic() - started < 5
    assert run.status == "error" and run.failure is not None
    assert run.failure.error_type == "subprocess_depth" and run.failure.element_id == "again"
    assert f"{MAX_SUBPROCESS_DEPTH + 1} levels deep" in run.failure.message and "'selfcall'" in run.failure.message
    # a retry meets the same limit: an error again, not a hang
    run.retry(None, ALICE)
    assert h.roundtrip(run).failure.error_type == "subprocess_depth"


def test_two_processes_calling_each_other_fail_the_same_way():
    run = Harness(RUNAWAY_FILES).start("ping", {})
    assert run.status == "error" and run.failure.error_type == "subprocess_depth"
    assert run.failure.element_id in ("call_ping", "call_pong")


def test_a_loop_without_a_wait_state_fails_at_the_step_limit_naming_an_element(monkeypatch):
    monkeypatch.setattr(Workflow, "max_engine_tasks", 2_500)
    h = Harness(RUNAWAY_FILES)
    run = h.start("spin", {})
    # past the task iterator's depth limit (about 500 rounds here), not stopped there as if waiting
    assert run.status == "error" and run.failure.error_type == "runaway_loop"
    assert run.failure.element_id in ("join", "s") and "more than 2,500 automatic tasks" in run.failure.message
    assert run.user_tasks() == []
    # stored trimmed like any step (not as deep as the iterator let the loop grow), and a retry
    # meets the limit again rather than a tree too deep for SpiffWorkflow's recursive helpers
    assert max_depth(run) <= MAX_DEPTH
    run.retry(None, ALICE)
    run = h.roundtrip(run)
    assert run.failure.error_type == "runaway_loop" and max_depth(run) <= MAX_DEPTH
    run.cancel()  # the instance service's cancel: the stored tree takes it and round-trips
    assert h.roundtrip(run)._wf.is_completed()


def test_a_long_automatic_loop_that_ends_runs_to_its_end_in_one_step():
    # 1,500 rounds of a gateway and a script: the tree passes the iterator's depth limit (1,000
    # levels) within the step; SpiffWorkflow alone stops there with 'Count one' READY for good.
    h = Harness(RUNAWAY_FILES)
    run = h.start("countdown", {"left": 1_500, "counted": 0})
    assert run.failure is None and run.status == "running"
    [check] = run.user_tasks()
    assert check.bpmn_id == "check" and run.data["counted"] == 1_500 and run.data["left"] == 0
