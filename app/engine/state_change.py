"""Task state changes that build their log record only when the log is listening.

SpiffWorkflow 3.2's ``Task._set_state`` logs every state change at INFO (DEBUG when the state
stays), and builds the record's ``extra`` first, whether or not anything would be logged: a dict
of nine fields with a parent lookup and a state-name lookup. A task changes state three or four
times on its way through the engine, so on the bare incident lifecycle this is about a tenth of
the engine's time (3.9 vs 4.5 ms with the stack walk, bench/bare_engine.py).

Our ``_set_state`` does what SpiffWorkflow's does, in the same order, and asks the ``spiff.task``
logger ``isEnabledFor`` before building the record: with the log on (a handler at INFO or DEBUG),
the same message with the same ``extra`` is logged; with it off, nothing is built. One
difference: the time it stamps never goes back within a workflow (a step on a host whose clock
is behind stamps just after the latest change), so "finished after" means the same on every
host (app/engine/joins.py).
tests/engine/test_state_change.py holds the two to the same behaviour.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from SpiffWorkflow import task as _task_module
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

ORIGINAL = Task._set_state
_logger = _task_module.logger


def _set_state(self: Any, value: int) -> None:
    if value != self._state:
        now = time.time()
        elapsed = now - self.last_state_change
        # Never before the workflow's latest change: a step taken on a host whose clock is
        # behind still orders after the steps before it (app/engine/joins.py relies on it).
        workflow = self.workflow
        latest = workflow.__dict__.get("_latest_change")
        if latest is None:
            latest = max((task.last_state_change for task in workflow.tasks.values()), default=0.0)
        if now <= latest:
            now = latest + 1e-6
        workflow._latest_change = now
        self.last_state_change = now
        self._state = value
        if _logger.isEnabledFor(logging.INFO):
            _logger.info(f"State changed to {TaskState.get_name(value)}",
                         extra=self.collect_log_extras({"elapsed": elapsed}))
    elif _logger.isEnabledFor(logging.DEBUG):
        _logger.debug(f"State set to {TaskState.get_name(value)}", extra=self.collect_log_extras())


def install() -> None:
    Task._set_state = _set_state  # type: ignore[method-assign]


def uninstall() -> None:
    Task._set_state = ORIGINAL  # type: ignore[method-assign]
