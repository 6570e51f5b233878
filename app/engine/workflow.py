"""Our BpmnWorkflow: SpiffWorkflow's, with one defect fixed.

When an interrupting boundary event cancels a task that owns subprocesses (a looping or plain
embedded subprocess), SpiffWorkflow drops the task but leaves its subprocess registered as
active; the next engine step then looks the vanished parent task up and fails with
TaskNotFoundException, and a serializer round trip silently loses the orphan. Orphans are pruned
before the engine walks its active subprocesses.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow


class Workflow(BpmnWorkflow):  # type: ignore[misc]
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
