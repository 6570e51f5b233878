"""ProcessEngine and WorkflowRun: run instances of deployed specs.

This is the only place that drives SpiffWorkflow at run time. It hides the library's sharp edges
(spiffworkflow.md): ``Task.run()`` does not check the task state, errors leave tasks in ERROR and
do not retry, message payloads need the spiff event classes, timers need a refresh before a form
submission is judged.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition as _CaughtMessage
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import StandardLoopTask
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, TaskNotFoundException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from . import event_gateway, joins, state_change, timer_bounds, walk
from .deep_stack import call_deep, require_stack_for
from .errors import EngineError, MessageNotExpected, TaskNotFound, TaskNotReady
from .iterations import MergedIterations
from .joins import stuck_join
from .migration import MigrationPlan, MigrationRefused, migrate, plan_migration
from .operation_call import OperationCall, literal_text, operation_call
from .sandbox import RestrictedEnvironment, ScriptIdentity, ScriptLimitExceeded, acting_as
from .serializer import STATE_VERSION, dump_state, load_specs, load_state
from .storable import MAX_DATA_DEPTH, Checker
from .trim import MAX_DEPTH, too_deep, trim
from .types import EngineFailure, UserTaskView
from .workflow import RunawayStep, Workflow

Now = Callable[[], datetime]
_engine_now: ContextVar[Now | None] = ContextVar("processdesk_engine_now", default=None)


class _ClockedDatetime(datetime):
    """SpiffWorkflow's timers call ``datetime.now(timezone.utc)``; route that to our clock.

    Outside an engine step (no clock set) it is the real time, so nothing else changes.
    """

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        source = _engine_now.get()
        if source is None:
            return datetime.now(tz)
        moment = source()
        return moment.astimezone(tz) if tz is not None else moment.astimezone(timezone.utc).replace(tzinfo=None)


_timer_module.datetime = _ClockedDatetime  # type: ignore[misc]
walk.install()
state_change.install()
joins.install()
timer_bounds.install()
event_gateway.install()


#: Service tasks call platform operations: (operation name, evaluated params) -> JSON-able result.
Operations = Callable[[str, dict[str, Any]], Any]
_operations: ContextVar[Operations | None] = ContextVar("processdesk_operations", default=None)


class OperationFailed(Exception):
    """Raised by an operations handler to fail the service task with a readable message."""


class _PlatformScriptEngine(PythonScriptEngine):
    """Restricted scripts, and service tasks routed to the platform's operations handler.

    (SpiffWorkflow's own call_service error path is broken: it names an undefined variable and
    hides the real error; spiffworkflow.md §4.)
    """

    def call_service(self, task: Any, **kwargs: Any) -> str:
        handler = _operations.get()
        name = kwargs.get("operation_name", "")
        params = {key: value.get("value") for key, value in (kwargs.get("operation_params") or {}).items()}
        if handler is None:
            raise WorkflowTaskException(f"no platform operations available for '{name}'", task=task)
        written = getattr(task.task_spec, "operation_params", None) or {}
        literals = {key: text for key, value in written.items()
                    if isinstance(value, dict) and (text := literal_text(value.get("value"))) is not None}
        try:
            with operation_call(OperationCall(data=task.data, literals=literals)):
                result = handler(name, params)
        except OperationFailed as err:
            raise WorkflowTaskException(f"operation '{name}' failed: {err}", task=task) from None
        return json.dumps(result, default=str)


@contextmanager
def _clock(now: Now | None) -> Iterator[None]:
    token = _engine_now.set(now)
    try:
        yield
    finally:
        _engine_now.reset(token)


STATUS_RUNNING = "running"
STATUS_COMPLETED = "completed"
STATUS_CANCELLED = "cancelled"
STATUS_ERROR = "error"


def _due_time(value: Any) -> datetime | None:
    """A timer's stored due value (an ISO time; a cycle's ``{"next": ...}``) as a time, if readable."""
    due = value.get("next") if isinstance(value, dict) else value
    try:
        return datetime.fromisoformat(due) if isinstance(due, str) else None
    except ValueError:
        return None


@dataclass(frozen=True)
class SpecBundle:
    """A deployed version's parsed spec, shared read-only by every run of that version."""

    key: str
    spec: Any
    subprocess_specs: dict[str, Any]

    @cached_property
    def caught_messages(self) -> frozenset[str]:
        """The names of the messages some event of this version (or of a subprocess it embeds or
        calls) can catch: who may be waiting for a message, known without loading any run."""
        names: set[str] = set()
        for spec in (self.spec, *self.subprocess_specs.values()):
            for task_spec in spec.task_specs.values():
                definition = getattr(task_spec, "event_definition", None)
                # an event-based gateway holds the definitions of the events after it
                for one in (definition, *(getattr(definition, "event_definitions", None) or ())):
                    if isinstance(one, _CaughtMessage):
                        names.add(one.name)
        return frozenset(names)


class ProcessEngine:
    """Creates and restores runs. One per application; thread-safe."""

    def __init__(
        self,
        script_time_limit: float = 2.0,
        script_memory_limit_mb: int = 256,
        spec_cache_size: int = 64,
        now: Now | None = None,
        run_cache_size: int = 256,
    ) -> None:
        self._now = now
        self.runs = RunCache(run_cache_size)
        self._time_limit = script_time_limit
        self._memory_limit_mb = script_memory_limit_mb
        require_stack_for(script_memory_limit_mb)
        self._specs: OrderedDict[str, SpecBundle] = OrderedDict()
        self._cache_size = spec_cache_size
        self._lock = threading.Lock()

    def spec(self, key: str, spec_json: str | Callable[[], str]) -> SpecBundle:
        """The parsed spec for a deployed version; parsed once per process and cached (LRU).
        ``spec_json``: the text, or a function that reads it (called only on a cache miss)."""
        with self._lock:
            bundle = self._specs.get(key)
            if bundle is not None:
                self._specs.move_to_end(key)
                return bundle
        spec, subs = load_specs(spec_json if isinstance(spec_json, str) else spec_json())
        bundle = SpecBundle(key=key, spec=spec, subprocess_specs=subs)
        with self._lock:
            self._specs[key] = bundle
            while len(self._specs) > self._cache_size:
                self._specs.popitem(last=False)
        return bundle

    def _script_engine(self) -> Any:
        # Scripts' now() reads the same clock as timers, so a frozen test clock freezes both.
        helpers = {"now": self._script_now}
        environment = RestrictedEnvironment(time_limit=self._time_limit, memory_limit_mb=self._memory_limit_mb,
                                            extra_helpers=helpers)
        return _PlatformScriptEngine(environment=environment)

    def _script_now(self) -> datetime:
        """The current time as an aware UTC datetime, from the engine's clock."""
        return self._now() if self._now is not None else datetime.now(timezone.utc)

    def start(
        self,
        bundle: SpecBundle,
        data: Mapping[str, Any],
        identity: ScriptIdentity,
        operations: Operations | None = None,
    ) -> WorkflowRun:
        """Create a run, put ``data`` on its start, and advance it to the first wait state."""
        workflow = Workflow(bundle.spec, bundle.subprocess_specs, script_engine=self._script_engine())
        workflow.task_tree.data.update(dict(data))
        for child in workflow.task_tree.children:
            child.data.update(dict(data))
        run = WorkflowRun(workflow, bundle, self._now, operations)
        run.refuse_unstorable_data()
        if run.failure is None:  # start data the instance cannot store: it fails before any step
            run.advance(identity)
        return run

    def restore(
        self, bundle: SpecBundle, state: str, serializer_version: str, operations: Operations | None = None
    ) -> WorkflowRun:
        """Rebuild a run from stored state. Raises StateVersionError for unknown versions."""
        workflow = load_state(
            state, serializer_version, bundle.spec, bundle.subprocess_specs, self._script_engine()
        )
        return WorkflowRun(workflow, bundle, self._now, operations, restored=True)


#: Values a JSON round trip of the state gives back as they are (the serializer registers the
#: last six); anything else (a tuple, a set, an int dict key, an IntEnum) comes back different.
_JSON_SCALARS = (str, int, float, bool, type(None), datetime, date, Decimal, UUID, timedelta, MergedIterations)


def _json_stable(value: Any) -> bool:
    """Would ``value`` come back from a JSON round trip of the state exactly as it is? Iterative:
    data nested deeper than ``MAX_DATA_DEPTH`` (or a list holding itself) is simply not stable,
    never a RecursionError (this runs after the commit, when a request can no longer fail)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind in _JSON_SCALARS:
            continue
        if depth >= MAX_DATA_DEPTH:
            return False
        if kind is list:
            stack.extend((child, depth + 1) for child in item)
        elif kind is dict:
            for key, child in item.items():
                if type(key) is not str:
                    return False
                stack.append((child, depth + 1))
        else:
            return False
    return True


def _element_of(task: Any) -> dict[str, Any]:
    """Where a failure happened, as ``EngineFailure`` names it."""
    return {"element_id": task.task_spec.bpmn_id, "element_name": task.task_spec.bpmn_name, "task_id": str(task.id)}


def _culprit(refused: list[tuple[Task | None, str, Any, str]]) -> tuple[Task | None, str, str]:
    """The task to blame for an unstorable value, with the key and the reason: the first BPMN
    element whose data got the value from no parent (a DMN result, a service result), else the
    last finished one that holds it (a script that changed it in place), else the first holding
    it (start data)."""
    named = [r for r in refused if r[0] is not None and r[0].task_spec.bpmn_id]
    for task, key, value, reason in named:
        parent = task.parent if task is not None else None
        if parent is None or parent.data.get(key) is not value:
            return task, key, reason
    finished = [r for r in named if r[0] is not None and r[0].state == TaskState.COMPLETED and not r[0].task_spec.manual]
    task, key, _, reason = (finished[-1] if finished else (named or refused)[0])
    return task, key, reason


class RunCache:
    """Live runs kept between requests, so the next step on an instance skips deserializing it.

    A run is parked with the exact state text it was last dumped to, and only when it has not
    been advanced since: the caller parks it once that text is committed. ``take`` removes the
    run (a request owns it while it works on it; a rolled-back request simply never parks it
    again) and hands it out only if the stored state is still exactly that text, so a change made
    by any other process or worker, or a state written and rolled back, makes it a miss. LRU,
    bounded; thread-safe.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._runs: OrderedDict[Any, WorkflowRun] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def park(self, key: Any, run: WorkflowRun) -> bool:
        """Keep ``run`` for ``key`` if its last dump is still what it holds; True if kept."""
        if self.size <= 0 or run.clean_dump is None or run.failure is not None or not run.json_stable():
            return False
        run.operations = None  # the request's handler (and what it holds) is not kept; take's caller sets its own
        with self._lock:
            self._runs[key] = run
            self._runs.move_to_end(key)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
        return True

    def take(self, key: Any, state: str, bundle: SpecBundle) -> WorkflowRun | None:
        """The parked run of ``key`` if its state is exactly ``state`` of the same spec; else None."""
        with self._lock:
            run = self._runs.pop(key, None)
        if run is not None and run.bundle.key == bundle.key and run.clean_dump == state:
            self.hits += 1
            return run
        self.misses += 1
        return None

    def discard(self, key: Any) -> None:
        with self._lock:
            self._runs.pop(key, None)


class WorkflowRun:
    """One live instance in memory. Not thread-safe: a request owns it while it works on it."""

    serializer_version = STATE_VERSION

    def __init__(
        self, workflow: BpmnWorkflow, bundle: SpecBundle, now: Now | None = None, operations: Operations | None = None,
        restored: bool = False,
    ) -> None:
        self._wf = workflow
        self.bundle = bundle
        self._now = now
        self.operations = operations
        self.failure: EngineFailure | None = self._failure_from_tasks()
        self._changes = 0  # bumped by every step; a dump remembers the count it was taken at
        self._dumped: tuple[int, str] | None = None
        # Tasks whose state changed before this instant hold data known to survive a JSON round
        # trip unchanged (a restored run's data came from JSON; a new run's has not been checked).
        self._stable_before = time.time() if restored else 0.0
        # ... and data known to be storable at all (refuse_unstorable_data).
        self._storable_before = self._stable_before

    def json_stable(self) -> bool:
        """Would a run restored from this run's dump hold the same data? (Scripts may leave a
        tuple or an int-keyed dict; the stored state turns them into a list or str keys, so a
        kept run would then behave unlike a restored one.) Checks what changed since the last
        check that passed."""
        checked_at = time.time()
        for workflow in (self._wf, *self._wf.subprocesses.values()):
            for task in workflow.tasks.values():
                if task.last_state_change >= self._stable_before and not (
                        _json_stable(task.data) and _json_stable(task.internal_data)):
                    return False
        if not _json_stable(self._wf.data):
            return False
        self._stable_before = checked_at
        return True

    def refuse_unstorable_data(self) -> None:
        """Fail the run if a task's data holds a value its state could not be saved with
        (app/engine/storable.py: an integer past the int-to-text limit, nesting past
        ``MAX_DATA_DEPTH``, a list holding itself, an unknown type ...), and replace each such
        value by None wherever it is, so the save that follows succeeds and the instance is in
        error instead of the request failing. Checks the tasks changed since the last check.

        Scripts are caught where they set the value (their task fails, sandbox.py); this catches
        the rest: start data, form and message data, values changed in place, DMN and service
        results.
        """
        checked_at = time.time()
        since = self._storable_before
        workflows = (self._wf, *self._wf.subprocesses.values())
        changed = sorted((task for workflow in workflows for task in workflow.tasks.values()
                          if task.last_state_change >= since), key=lambda task: task.last_state_change)
        checker = Checker()
        refused: list[tuple[Task | None, str, Any, str]] = []
        sources: list[tuple[Task | None, dict[str, Any]]] = [(task, task.data) for task in changed]
        sources.append((None, self._wf.data))
        known: dict[int, str] = {}  # id of a value found unstorable -> why (tasks share values)
        for task, data in sources:
            for key, value in data.items():
                reason = known.get(id(value)) or checker.problem(value)
                if reason is not None:
                    if id(value) not in known:
                        known[id(value)] = reason
                        checker = Checker()  # what it remembers of a failed walk is incomplete
                    refused.append((task, key, value, reason))
        self._storable_before = checked_at
        if not refused:
            return
        self._changes += 1
        dropped = {(key, id(value)) for _, key, value, _ in refused}
        for data in [*(t.data for workflow in workflows for t in workflow.tasks.values()), self._wf.data]:
            for key, value in data.items():
                if (key, id(value)) in dropped:
                    data[key] = None
        if self.failure is None:
            task, key, reason = _culprit(refused)
            spec = task.task_spec if task is not None else None
            where = f" at '{spec.bpmn_name or spec.bpmn_id}'" if spec is not None else ""
            self.failure = EngineFailure(
                message=f"data '{key}'{where} cannot be stored: it holds {reason}; it was replaced by null",
                error_type="unstorable_data", **(_element_of(task) if task is not None else {}))

    @property
    def clean_dump(self) -> str | None:
        """The text of the last dump, if nothing advanced the run since; else None."""
        if self._dumped is None or self._dumped[0] != self._changes:
            return None
        return self._dumped[1]

    # -- state ---------------------------------------------------------------------------------

    def _waiting_and_failed(self) -> tuple[list[Task], bool]:
        """READY human tasks, and whether any task is in ERROR: one walk of the task tree."""
        ready: list[Task] = []
        failed = False
        for task in self._wf.get_tasks(state=TaskState.READY | TaskState.ERROR):
            if task.state == TaskState.ERROR:
                failed = True
            elif task.task_spec.manual:
                ready.append(task)
        return ready, failed

    def settled(self) -> tuple[str, dict[str, Any], list[UserTaskView]]:
        """``status``, ``data`` and ``user_tasks()`` together, from one walk of the task tree
        (what a save stores after every step)."""
        ready, failed = self._waiting_and_failed()
        return self._status(failed), self._data(ready), self._views(ready)

    @property
    def status(self) -> str:
        return self._status(self._waiting_and_failed()[1])

    def _status(self, failed: bool) -> str:
        if self.failure is not None or failed:
            return STATUS_ERROR
        if self._wf.is_completed():
            return STATUS_COMPLETED if self._wf.success else STATUS_CANCELLED
        return STATUS_RUNNING

    @property
    def data(self) -> dict[str, Any]:
        """The instance's current data: the end data when complete, else the latest task's."""
        return self._data(self._waiting_and_failed()[0])

    def _data(self, ready: list[Task]) -> dict[str, Any]:
        if self._wf.is_completed() and self._wf.data:
            return dict(self._wf.data)
        last = self._wf.last_task
        data = dict(last.data) if last is not None else dict(self._wf.task_tree.data)
        # A running subprocess keeps its own last task (the top workflow's is the last one finished
        # outside it): while it waits on something other than a person (a timer, a message), what
        # it did since it started is only there. Overlay its latest task when newer, oldest first.
        since = last.last_state_change if last is not None else 0.0
        inner = [sub.last_task for sub in self._wf.subprocesses.values()
                 if not sub.completed and sub.last_task is not None and sub.last_task.last_state_change > since]
        for task in sorted(inner, key=lambda t: t.last_state_change):
            data.update(task.data)
        # Waiting human tasks carry what their preScripts set (e.g. the business status while
        # they wait); overlay them, oldest first, so parallel branches all show.
        for task in sorted(ready, key=lambda t: t.last_state_change):
            data.update(task.data)
        return data

    def dump(self) -> str:
        text = dump_state(self._wf)
        self._dumped = (self._changes, text)
        return text

    def user_tasks(self) -> list[UserTaskView]:
        """READY human tasks, in a stable order."""
        return self._views(self._waiting_and_failed()[0])

    def _views(self, ready: list[Task]) -> list[UserTaskView]:
        return sorted((self._view(t) for t in ready), key=lambda v: v.id)

    def next_timer_at(self) -> datetime | None:
        """The earliest due time of any waiting timer, for the scheduler's indexed column."""
        due = [at for _task, _spec, value in self._waiting_timers() if (at := _due_time(value)) is not None]
        return min(due) if due else None

    def _waiting_timers(self) -> Iterator[tuple[Task, Any, Any]]:
        """(waiting task, the timer event's spec, its stored due value) for every timer the run
        waits on, from SpiffWorkflow's register of waiting events (no walk of the task tree).

        An event-based gateway waits as one task for all its events: the parser moved their
        definitions into the gateway's, in the order of its outputs, and the timer's due time is
        kept in the gateway task's data (one timer per gateway, checked at deploy). The spec
        reported is then the timer's catch event after the gateway."""
        for task in self._wf.event_manager.tasks.values():
            if task.state != TaskState.WAITING:
                continue
            spec = task.task_spec
            definition = getattr(spec, "event_definition", None)
            if isinstance(definition, MultipleEventDefinition):
                timers = [i for i, d in enumerate(definition.event_definitions) if isinstance(d, TimerEventDefinition)]
                if not timers:
                    continue
                if len(spec.outputs) == len(definition.event_definitions):
                    spec = spec.outputs[timers[0]]
            elif not isinstance(definition, TimerEventDefinition):
                continue
            yield task, spec, task.internal_data.get("event_value")

    def history_path(self) -> list[str]:
        """BPMN ids of completed elements, oldest first (for highlighting a diagram)."""
        done = [
            t
            for t in self._wf.get_tasks(state=TaskState.COMPLETED)
            if t.task_spec.bpmn_id is not None
        ]
        done.sort(key=lambda t: t.last_state_change)
        return [t.task_spec.bpmn_id for t in done]

    # -- actions --------------------------------------------------------------------------------

    def advance(self, identity: ScriptIdentity | None = None) -> None:
        """Run engine steps until the run waits on people, timers or messages, or fails."""
        self._guarded(self._engine_steps, identity)

    def _engine_steps(self) -> None:
        """``do_engine_steps``, again for as long as an automatic task it could not reach is READY.

        SpiffWorkflow looks for READY tasks with its task iterator, which stops 1,000 levels below
        the start: a loop drawn without a wait state pushes the next task past that within one step,
        and the step then ends as if the run waited for something, with a script READY that nothing
        will ever run (spiffworkflow.md §7). Trimming the finished stretch (``compact``) brings it back
        in reach. The loop ends when nothing automatic is READY, when compacting frees nothing or runs
        nothing more, or at the step's limit of automatic tasks (``Workflow.max_engine_tasks``: RunawayStep)."""
        self._wf.do_engine_steps()
        while self.failure is None and self._stranded():
            ran = self._wf.engine_tasks_run
            if not self.compact():
                return  # nothing left to trim: the step ends where SpiffWorkflow's did
            self._wf.do_engine_steps()
            if self._wf.engine_tasks_run == ran:
                return  # still out of reach: no second try

    def _stranded(self) -> bool:
        """Whether an automatic task is READY anywhere in the run (by its task maps: no depth limit)."""
        for workflow in (self._wf, *self._wf.subprocesses.values()):
            for task in workflow.tasks.values():
                if task._state == TaskState.READY and not task.task_spec.manual:
                    return True
        return False

    def refresh_timers(self, identity: ScriptIdentity | None = None) -> None:
        """Fire timers whose due time has passed, then advance."""
        def step() -> None:
            self._wf.refresh_timers()
            self._engine_steps()

        self._guarded(step, identity)

    def fire_due_timers(self, identity: ScriptIdentity | None = None) -> list[dict[str, Any]]:
        """Fire every timer that is due by the engine clock and advance; return what fired.

        Each entry: the timer's BPMN id and name and the due time it fired for. A cycle timer
        that fired and keeps waiting for its next round is reported too.
        """
        now = (self._now or (lambda: datetime.now(timezone.utc)))()
        due_before = {}
        unknown = 0  # timers whose due time we cannot read: let the engine judge them
        for task, spec, value in self._waiting_timers():
            due_at = _due_time(value)
            if due_at is None:
                unknown += 1
            elif due_at <= now:
                due_before[task.id] = (spec.bpmn_id, spec.bpmn_name, due_at, str(value))
        if not due_before and not unknown:
            return []  # nothing is due: no engine step needed
        self.refresh_timers(identity)
        fired = []
        for task_id, (bpmn_id, name, due_at, old_value) in due_before.items():
            try:
                task = self._wf.get_task_from_id(task_id)
            except TaskNotFoundException:
                task = None
            moved = task is None or task.state != TaskState.WAITING or str(task.internal_data.get("event_value")) != old_value
            if moved:
                fired.append({"bpmn_id": bpmn_id, "name": name, "due_at": due_at.isoformat()})
        return fired

    def find_task(self, task_id: str) -> Any:
        try:
            uuid = UUID(str(task_id))
        except ValueError:
            raise TaskNotFound(f"no task {task_id}") from None
        try:
            task = self._wf.get_task_from_id(uuid)
        except TaskNotFoundException:
            task = None
        if task is None:
            raise TaskNotFound(f"no task {task_id}")
        return task

    def task_view(self, task_id: str) -> UserTaskView:
        return self._view(self.find_task(task_id))

    def task_state(self, task_id: str) -> str:
        return TaskState.get_name(self.find_task(task_id).state).lower()

    def complete_task(self, task_id: str, data: Mapping[str, Any], identity: ScriptIdentity, *,
                      timers_fired: bool = False) -> None:
        """Merge validated ``data`` into a READY human task, run it and advance.

        Due timers are fired first, so an interrupting timer beats a late submission: the task is
        then CANCELLED and TaskNotReady(error_type='timer_expired') is raised. ``timers_fired``:
        the caller just did that itself (``fire_due_timers``, to audit what fired).
        """
        task = self.find_task(task_id)
        if not task.task_spec.manual:
            raise TaskNotReady("this task is not a human task", element_id=task.task_spec.bpmn_id)
        if task.state == TaskState.READY and not timers_fired:
            self.refresh_timers(identity)
            task = self.find_task(task_id)
            if task.state == TaskState.CANCELLED:
                raise TaskNotReady(
                    "a timer on this task expired before it was completed",
                    element_id=task.task_spec.bpmn_id,
                    error_type="timer_expired",
                )
        if task.state != TaskState.READY:
            raise TaskNotReady(
                f"task is {TaskState.get_name(task.state).lower()}, not ready",
                element_id=task.task_spec.bpmn_id,
            )

        def step() -> None:
            task.data.update(dict(data))
            task.run()
            self._engine_steps()

        self._guarded(step, identity)

    def send_message(self, name: str, payload: Any, identity: ScriptIdentity | None = None) -> None:
        """Deliver a BPMN message by name and advance. Raises MessageNotExpected if nothing waits
        for it (the run is then unchanged).

        Catching is part of the step (on the engine's clock, as it looks at waiting timers too: an
        event-based gateway's): it may already run engine code, such as opening the event
        subprocess a message starts, and a failure there (RunawayStep: a subprocess too deep) puts
        the instance in error naming the element, like any step's; it is not "not waiting"."""
        event = BpmnEvent(MessageEventDefinition(name), payload)
        changes = self._changes

        def step() -> None:
            if self._wf.event_manager.catch(event, internal=False) == 0:
                raise MessageNotExpected(f"this instance is not waiting for message '{name}'")
            self._engine_steps()

        try:
            self._guarded(step, identity)
        except MessageNotExpected:
            self._changes = changes  # nothing caught it: the run still holds what it last dumped
            raise

    def cancel(self) -> None:
        # A cancelled workflow counts as completed with empty end data, and its subprocesses as
        # done: ``data`` would fall back to the last task finished outside them (what the instance
        # held when it entered one), and the record's sync would copy that back. What the instance
        # held when it was cancelled becomes its end data instead.
        data = self.data
        self._changes += 1
        self._wf.cancel()
        self._wf.data.update(data)

    def retry(self, corrections: Mapping[str, Any] | None, identity: ScriptIdentity) -> None:
        """Put failed tasks back to READY, apply ``corrections`` to their data, and advance."""
        failed = self._wf.get_tasks(state=TaskState.ERROR)
        if not failed:
            # A script stopped by its time/memory budget leaves its task READY (or STARTED), not ERROR.
            failed = [
                t
                for state in (TaskState.STARTED, TaskState.READY)
                for t in self._wf.get_tasks(state=state)
                if not t.task_spec.manual
            ]
        self._changes += 1
        for task in failed:
            if task.parent is None:
                continue  # the root of a run that never advanced (its start data was refused)
            task_id = task.id
            try:
                self._wf.get_task_from_id(task_id)
            except TaskNotFoundException:
                continue  # inside a subprocess that resetting an earlier one (its caller) removed
            with timer_bounds.deferred():  # a failed timer is computed again after the corrections
                self._wf.reset_from_task_id(task_id)
            reset = self._wf.get_task_from_id(task_id)
            # reset_from_task_id overwrites its data= argument (spiffworkflow.md §6), so patch after.
            if corrections:
                reset.data.update(dict(corrections))
                if reset.state not in (TaskState.READY, TaskState.STARTED) and reset.parent is not None:
                    # A waiting task (a timer) copies its parent's data again at every update.
                    reset.parent.data.update(dict(corrections))
        self.failure = None
        self.advance(identity)

    def migration_plan(self, bundle: SpecBundle) -> MigrationPlan:
        """What moving this run onto ``bundle`` (another version of its process) would do."""
        return plan_migration(self._wf, bundle.spec, bundle.subprocess_specs)

    def migrate(self, bundle: SpecBundle, identity: ScriptIdentity) -> MigrationPlan:
        """Move this run onto ``bundle`` and advance it (app/engine/migration.py). Raises
        MigrationRefused when it cannot be moved, or when the new version fails on the way (a
        changed task's pre-script, a task it made automatic): the run is then to be dropped, the
        stored state being what counts. An instance in error stays in error (its retry runs the
        new version)."""
        prior = self.failure  # kept while moving: a failed run's steps stay as a failed run's
        moved: list[MigrationPlan] = []

        def step() -> None:
            moved.append(migrate(self._wf, bundle.spec, bundle.subprocess_specs))
            if prior is None:  # a failed run stays where it failed until its retry (a script stopped
                self._engine_steps()  # by its time limit is READY: the move must not run it)

        try:
            self._guarded(step, identity)
        except EngineError:
            raise
        except Exception as exc:  # what SpiffWorkflow raises outside its own errors, on a tree it cannot move
            raise MigrationRefused(f"the instance could not be moved: {type(exc).__name__}: {exc}",
                                   moved[0] if moved else None) from exc
        if self.failure is not prior:
            failure = self.failure
            assert failure is not None
            raise MigrationRefused(f"the new version fails at once: {failure.message}",
                                   moved[0] if moved else None, element_id=failure.element_id,
                                   element_name=failure.element_name, line=failure.line)
        self.bundle = bundle
        self.failure = prior if prior is not None else self._failure_from_tasks()
        return moved[0]

    # -- internals ----------------------------------------------------------------------------------

    def _guarded(self, step: Any, identity: ScriptIdentity | None) -> None:
        self._changes += 1
        self._wf.start_step()
        token = _operations.set(self.operations)
        try:
            with acting_as(identity or ScriptIdentity(current_user=None, initiator=None)), _clock(self._now):
                try:
                    # on a thread whose C stack a script cannot exhaust (app/engine/deep_stack.py)
                    call_deep(step)
                except RunawayStep as exc:
                    # A loop stopped by the limit leaves a tree as deep as the task iterator let it
                    # grow (up to 1,000 levels): it is tidied below like any step's before it is
                    # stored, so a retry, a cancel or a page reading it meets a tree within MAX_DEPTH.
                    self.failure = self._failure_from_exception(exc)
            self._wf.prune_orphan_subprocesses()
            self.compact()
        except ScriptLimitExceeded as exc:
            self.failure = EngineFailure(
                message=f"script stopped: {exc}",
                error_type=f"script_{getattr(exc, 'kind', 'limit')}_limit",
                **self._failing_element(),
            )
        except SpiffWorkflowException as exc:
            self.failure = self._failure_from_exception(exc)
        except RecursionError:
            # SpiffWorkflow's recursive helpers on a tree too deep for them (trim.MAX_DEPTH should
            # come first): an instance error, not a server error.
            self.failure = EngineFailure(message="the engine's task tree is too deep to continue",
                                         error_type="too_deep", **self._failing_element())
        except EngineError:
            raise
        finally:
            _operations.reset(token)
        self.refuse_unstorable_data()

    def compact(self) -> int:
        """Drop finished iterations of loops from the live task tree; return how many.

        A looping subprocess keeps every finished iteration (its task and whole subprocess) in the
        engine's tree, so state size and step cost grow with every reopen, rework or reminder
        (spiffworkflow.md §7). Their data is already merged into the loop task, and our audit
        history keeps every step, so finished iterations are removed; the loop's own bookkeeping
        (the list of merged iterations, whose length is the iteration count) becomes a
        ``MergedIterations`` that counts the removed ones, so counts and loopMaximum stay right
        without an entry per round ever run. A tree grown deep by a loop drawn with sequence flows
        has its old finished stretches spliced out (``trim``).
        """
        removed = 0
        workflows = [self._wf, *self._wf.subprocesses.values()]
        for workflow in workflows:
            for loop in [t for t in workflow.tasks.values()
                         if isinstance(t.task_spec, StandardLoopTask) and t.state == TaskState.STARTED]:
                merged = loop.internal_data.get("merged") or []
                done = set(merged)
                dropped: set[str] = set()
                for child_id in list(loop._children):
                    child = workflow.tasks.get(child_id)
                    if child is None or str(child_id) not in done or child.state != TaskState.COMPLETED:
                        continue
                    if child._children or child is self._wf.last_task or child is workflow.last_task:
                        continue
                    if child.id in self._wf.subprocesses:
                        for task in self._wf.delete_subprocess(child):
                            task.workflow.tasks.pop(task.id, None)
                    loop._children.remove(child_id)
                    del workflow.tasks[child_id]
                    dropped.add(str(child_id))
                if dropped:
                    loop.internal_data["merged"] = MergedIterations.compacted(merged, dropped)
                    removed += len(dropped)
        # Loops drawn with sequence flows deepen the tree instead (app/engine/trim.py).
        owners = set(self._wf.subprocesses)
        for workflow in (self._wf, *self._wf.subprocesses.values()):
            removed += trim(workflow, owners, self._wf.last_task)
            deep = too_deep(workflow)
            if deep is not None and self.failure is None:
                self.failure = EngineFailure(
                    message=(f"the engine's task tree grew deeper than {MAX_DEPTH} levels at "
                             f"'{deep.task_spec.bpmn_name or deep.task_spec.bpmn_id or deep.task_spec.name}': a loop "
                             "drawn with sequence flows whose rounds leave tasks open keeps part of "
                             "every round; "
                             "model the repeated part as a subprocess with a loop marker"),
                    error_type="too_deep", **_element_of(deep))
        if self.failure is None and not self._wf.is_completed():
            stuck = stuck_join([self._wf, *self._wf.subprocesses.values()])
            if stuck is not None:
                spec = stuck.task_spec
                self.failure = EngineFailure(
                    message=(f"the join '{spec.bpmn_name or spec.bpmn_id}' waits for a branch that no "
                             "path can reach any more, and nothing else can move: check the diagram "
                             "(a parallel join after an exclusive choice, or a loop back into one "
                             "branch only)"),
                    error_type="stuck", **_element_of(stuck))
        return removed

    def _failing_element(self) -> dict[str, Any]:
        for state in (TaskState.ERROR, TaskState.STARTED, TaskState.READY):
            for task in self._wf.get_tasks(state=state):
                if not task.task_spec.manual or state == TaskState.ERROR:
                    return _element_of(task)
        return {}

    def _failure_from_exception(self, exc: SpiffWorkflowException) -> EngineFailure:
        task = getattr(exc, "task", None)
        spec = getattr(task, "task_spec", None) or getattr(exc, "task_spec", None)
        line = getattr(exc, "line_number", None) or None
        message = str(exc.args[0]) if exc.args else str(exc)
        notes = getattr(exc, "notes", None) or []
        if notes:
            message = message + " (" + "; ".join(str(n) for n in notes) + ")"
        return EngineFailure(
            message=message,
            element_id=getattr(spec, "bpmn_id", None),
            element_name=getattr(spec, "bpmn_name", None),
            task_id=str(task.id) if task is not None else None,
            line=int(line) if line else None,
            error_type=getattr(exc, "error_type", None) or type(exc).__name__,
            error_line=getattr(exc, "error_line", None) or None,
        )

    def _failure_from_tasks(self) -> EngineFailure | None:
        for task in self._wf.get_tasks(state=TaskState.ERROR):
            return EngineFailure(
                message="a task is in error",
                element_id=task.task_spec.bpmn_id,
                element_name=task.task_spec.bpmn_name,
                task_id=str(task.id),
            )
        return None

    def _view(self, task: Any) -> UserTaskView:
        spec = task.task_spec
        extensions = getattr(spec, "extensions", None) or {}
        properties = extensions.get("properties") or {}
        return UserTaskView(
            id=str(task.id),
            bpmn_id=spec.bpmn_id or spec.name,
            name=spec.bpmn_name or spec.bpmn_id or spec.name,
            lane=spec.lane,
            process_id=task.workflow.spec.name,
            form=properties.get("formJsonSchemaFilename"),
            ui_form=properties.get("formUiSchemaFilename"),
            instructions=extensions.get("instructionsForEndUser"),
            documentation=spec.documentation,
            data=dict(task.data),
            state=TaskState.get_name(task.state).lower(),
            manual=bool(spec.manual),
            properties=dict(properties),
        )
