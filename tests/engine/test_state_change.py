"""Our Task._set_state (app/engine/state_change.py) behaves as SpiffWorkflow's: the same states,
the same log records when the log listens, and no record built when it does not."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from app.engine import state_change
from tests.engine.test_walk import CASES, drive, engine_and_run, multi_instance_diagram

FIELDS = ("workflow_spec", "task_spec", "task_type", "state", "parent", "data", "internal_data")


@contextmanager
def spiffs_own_state_change() -> Iterator[None]:
    state_change.uninstall()
    try:
        yield
    finally:
        state_change.install()


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[Any, ...]] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = tuple(str(getattr(record, name, "-")) for name in FIELDS)
        self.records.append((record.levelname, record.getMessage(), extras))


@contextmanager
def listening(level: int) -> Iterator[Capture]:
    logger = logging.getLogger("spiff.task")
    capture = Capture()
    before = logger.level
    logger.addHandler(capture)
    logger.setLevel(level)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(before)


def test_installed_with_the_engine():
    assert Task._set_state is state_change._set_state


def test_a_state_change_stamps_its_time_and_setting_the_same_state_does_not():
    _engine, run = engine_and_run(multi_instance_diagram(), "approvals.bpmn")
    task = next(t for t in run._wf.get_tasks(state=TaskState.READY) if t.task_spec.manual)
    stamp = task.last_state_change
    time.sleep(0.002)
    task._set_state(TaskState.READY)
    assert task.last_state_change == stamp and task.state == TaskState.READY
    before = time.time()
    task._set_state(TaskState.STARTED)
    assert before <= task.last_state_change <= time.time() and task.state == TaskState.STARTED


def test_the_stamp_never_goes_back_within_a_workflow():
    # A workflow whose latest change was stamped ahead of this clock (another host's, after a
    # load): the next change is stamped just after it, not at this host's earlier time.
    _engine, run = engine_and_run(multi_instance_diagram(), "approvals.bpmn")
    tasks = [t for t in run._wf.get_tasks(state=TaskState.READY) if t.task_spec.manual]
    ahead = time.time() + 60
    tasks[0].last_state_change = ahead
    run._wf.__dict__.pop("_latest_change", None)  # as after a load: read from the tasks
    tasks[1]._set_state(TaskState.STARTED)
    assert ahead < tasks[1].last_state_change < ahead + 0.001
    tasks[2]._set_state(TaskState.STARTED)
    assert tasks[2].last_state_change > tasks[1].last_state_change


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
@pytest.mark.parametrize("case", sorted(CASES))
def test_with_the_log_on_the_same_records_as_spiffworkflow(case, level):
    make, name, answers, steps = CASES[case]
    with listening(level) as ours_log:
        ours = drive(make(), name, answers, steps, lambda run: None)
    with spiffs_own_state_change(), listening(level) as theirs_log:
        theirs = drive(make(), name, answers, steps, lambda run: None)
    assert ours == theirs
    assert [r[:2] for r in ours_log.records] == [r[:2] for r in theirs_log.records]
    # the extras name tasks by spec, type, state and parent, the same in both
    assert [r[2][:4] for r in ours_log.records] == [r[2][:4] for r in theirs_log.records]
    assert len(ours_log.records) > 20
    assert any(r[0] == "DEBUG" for r in ours_log.records) == (level == logging.DEBUG)


@pytest.mark.parametrize("case", sorted(CASES))
def test_with_the_log_off_no_record_is_built_and_the_run_is_the_same(case, monkeypatch):
    make, name, answers, steps = CASES[case]
    built = []
    original = Task.collect_log_extras

    def counting(self: Any, dct: Any = None) -> dict[str, Any]:
        built.append(self.task_spec.name)
        return original(self, dct)

    monkeypatch.setattr(Task, "collect_log_extras", counting)
    logging.getLogger("spiff.task").setLevel(logging.WARNING)
    try:
        ours = drive(make(), name, answers, steps, lambda run: None)
        assert built == []
        with spiffs_own_state_change():
            theirs = drive(make(), name, answers, steps, lambda run: None)
        assert built, "SpiffWorkflow's own _set_state builds the extras every time"
    finally:
        logging.getLogger("spiff.task").setLevel(logging.NOTSET)
    assert ours == theirs
