"""Our BpmnWorkflow: SpiffWorkflow's, with one defect fixed and two limits added.

The defect: when an interrupting boundary event cancels a task that owns subprocesses (a looping
or plain embedded subprocess), SpiffWorkflow drops the task but leaves its subprocess registered as
active; the next engine step then looks the vanished parent task up and fails with
TaskNotFoundException, and a serializer round trip silently loses the orphan. Orphans are pruned
before the engine walks its active subprocesses.

The limits: SpiffWorkflow runs automatic tasks (scripts, gateways, events, called processes) until
nothing automatic is ready, with no bound. A process that calls itself, directly or through others,
opens called processes without end (each one slower to open than the last: SpiffWorkflow climbs to
the top to learn its depth), and a loop drawn without any wait state (a user task, a timer, a
message) goes round for good; either way one request would run forever while it holds the
database's write lock. So a step opens subprocesses at most ``MAX_SUBPROCESS_DEPTH`` deep and runs
at most ``max_engine_tasks`` automatic tasks; past either it raises ``RunawayStep``, which names the
element, and the instance goes into error like any failed step (its retry fails the same way until
the diagram is fixed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

#: How deep subprocesses (called processes and embedded subprocesses) may nest: far more than any
#: process of ours (the deepest goes 2 levels), far less than where opening one gets slow.
MAX_SUBPROCESS_DEPTH = 32
#: Automatic tasks one step may run before it must reach a wait state, counting every task inside
#: subprocesses and multi-instance iterations (a parallel multi-instance over a subprocess of five
#: tasks reaches it at about 1,000 items): bounded at a few seconds of work.
MAX_ENGINE_TASKS = 5_000


class RunawayStep(WorkflowTaskException):  # type: ignore[misc]
    """A step went past one of the limits above; ``task`` is where."""

    def __init__(self, message: str, task: Any, error_type: str) -> None:
        super().__init__(message, task=task)
        self.error_type = error_type


class Workflow(BpmnWorkflow):  # type: ignore[misc]
    #: Automatic tasks a step may run (``MAX_ENGINE_TASKS`` unless the engine says otherwise).
    max_engine_tasks = MAX_ENGINE_TASKS
    #: Automatic tasks run since :meth:`start_step`.
    engine_tasks_run = 0

    def start_step(self) -> None:
        """Begin counting a step's automatic tasks anew (one step may call do_engine_steps several times)."""
        self.engine_tasks_run = 0

    def do_engine_steps(self, will_complete_task: Callable[[Any], None] | None = None,
                        did_complete_task: Callable[[Any], None] | None = None) -> None:
        """SpiffWorkflow's, raising ``RunawayStep`` once the step has run more than ``max_engine_tasks``."""
        def counted(task: Any) -> None:
            if did_complete_task is not None:
                did_complete_task(task)
            self.engine_tasks_run += 1
            if self.engine_tasks_run > self.max_engine_tasks:
                name = task.task_spec.bpmn_name or task.task_spec.bpmn_id or task.task_spec.name
                raise RunawayStep(
                    f"the process ran more than {self.max_engine_tasks:,} automatic tasks in one step without "
                    f"waiting for a person, a timer or a message (last: '{name}'): a loop with no wait state",
                    task, "runaway_loop")

        super().do_engine_steps(will_complete_task, counted)

    def create_subprocess(self, my_task: Any, spec_name: str) -> Any:
        depth = getattr(my_task.workflow, "depth", 0) + 1
        if depth > MAX_SUBPROCESS_DEPTH:
            name = my_task.task_spec.bpmn_name or my_task.task_spec.bpmn_id
            raise RunawayStep(
                f"'{name}' would open a subprocess {depth} levels deep (at most {MAX_SUBPROCESS_DEPTH}): "
                f"a process that calls itself, directly or through others ('{spec_name}')",
                my_task, "subprocess_depth")
        return super().create_subprocess(my_task, spec_name)

    def _known(self, task_id: Any) -> bool:
        if task_id in self.tasks:
            return True
        return any(task_id in sp.tasks for sp in self.subprocesses.values())

    def prune_orphan_subprocesses(self) -> int:
        """Forget subprocesses whose parent task no longer exists; return how many."""
        removed = 0
        changed = True
        while changed:
            changed = False
            for task_id, subprocess in list(self.subprocesses.items()):
                if not self._known(subprocess.parent_task_id):
                    del self.subprocesses[task_id]
                    removed += 1
                    changed = True
        return removed

    def get_active_subprocesses(self) -> list[Any]:
        self.prune_orphan_subprocesses()
        return super().get_active_subprocesses()  # type: ignore[no-any-return]
