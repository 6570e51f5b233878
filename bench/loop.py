"""Sections b and e: what one completion costs, and what an instance stores, as the instance ages.

One instance of bench/fixtures/loop_flow.bpmn (and, in its own rows, of loop_drawn.bpmn) is
driven through the API: every round is one
``POST /tasks/<id>/complete`` with ``{"again": true, "round_no": n}`` by the requester who
started it (the task has no lane, so it is the starter's). Every completion is timed; the cost
"at iteration N" is the median of the completions of rounds N-4 .. N+4. After round N of each
size checkpoint the stored bytes of the instance are read from the database: the length of
``process_instance.state`` plus the approximate size of its ``human_task`` rows (the sum of the
text lengths of their column values); its audit events are reported alongside, not in the ratio.

The machine this runs on is shared and noisy: minutes apart, the same completion can cost twice as
much. So each later checkpoint N is also measured *paired*: shortly before round N-4 a fresh
instance of the same diagram is started and driven to round 5, and then the two instances are
completed alternately (young round 6, old round N-4, young round 7, old round N-3, ...), so that the
young instance's rounds 6..14 (the cost "at round 10") and the old one's rounds N-4..N+4 are taken
in the same seconds. The ratio the target reads is median(old window) / median(young window) of
the same pair; the unpaired figures are reported too.

The rounds up to the checkpoint of the ratio (1,000; QUICK 300) always run; past them the run
continues towards the goal (10,000 rounds and the window after it) while the time budget lasts, and
records how far it got, the cost of the last completions, and the first error if any.
"""

from __future__ import annotations

import time
from typing import Any

from .common import BenchError, Desk, log, loop_definitions, median, open_task

PROCESS_ID = "loop_flow"
TASK = "work_round"
WINDOW = 4  # samples on each side of a checkpoint: the median of 9


def stored_bytes(desk: Desk, instance_id: int) -> dict[str, int]:
    state = desk.sql("SELECT length(state) FROM process_instance WHERE id = :i", {"i": instance_id})[0][0]
    task_rows = desk.sql("SELECT * FROM human_task WHERE instance_id = :i", {"i": instance_id})
    task_bytes = sum(len(str(value)) for row in task_rows for value in row if value is not None)
    audit_rows = desk.sql("SELECT * FROM audit_event WHERE instance_id = :i", {"i": instance_id})
    audit_bytes = sum(len(str(value)) for row in audit_rows for value in row if value is not None)
    return {
        "state_bytes": int(state),
        "human_task_rows": len(task_rows),
        "human_task_bytes": task_bytes,
        "per_instance_bytes": int(state) + task_bytes,
        "audit_event_rows": len(audit_rows),
        "audit_event_bytes": audit_bytes,
    }


def run_loop(url: str, checkpoints: list[int], required: int, goal: int, budget_seconds: float,
             process_id: str = PROCESS_ID, create_users: bool = True) -> dict[str, Any]:
    """Drive one loop instance through ``goal`` rounds (the last one answers ``again: false``).
    ``process_id``: loop_flow (a loop marker) or loop_drawn (a gateway back to a merge); both have
    the task ``work_round`` and the same form.

    Rounds up to ``required`` always run; past it the run stops when ``budget_seconds`` (counted
    from the start) are spent. ``checkpoints``: rounds at which the cost (rounds N-4..N+4) and the
    stored bytes (after round N) are taken. ``create_users=False``: ``url`` is a copy of the seed
    (the users exist; the loop definitions are deployed beside the shipped ones).
    """
    desk = Desk(url, loop_definitions(process_id), create_users=create_users)
    started = time.perf_counter()
    durations: list[float] = []  # durations[n - 1] = completion of round n
    sizes: dict[int, dict[str, int]] = {}
    first = min(checkpoints)
    paired_at = {n - WINDOW: n for n in checkpoints if n > first + 2 * WINDOW}  # window start -> checkpoint
    young: _Young | None = None
    paired: dict[int, dict[str, Any]] = {}
    error: str | None = None
    stopped_by_budget = False
    try:
        instance = desk.call("POST", "/api/v1/instances", "rita", {"process_id": process_id, "data": {}}, 201).body
        instance_id = instance["id"]
        task = open_task(instance, TASK)
        next_report = time.perf_counter() + 15
        for round_no in range(1, goal + 1):
            if round_no > required and time.perf_counter() - started > budget_seconds:
                stopped_by_budget = True
                break
            last = round_no == goal
            if round_no in paired_at:
                young = _Young(desk, process_id, paired_at[round_no], warm_rounds=first - WINDOW - 1)
            if young is not None:
                young.complete_one()
            try:
                reply = desk.call("POST", f"/api/v1/tasks/{task['id']}/complete", "rita",
                                  {"data": {"again": not last, "round_no": round_no}})
            except BenchError as exc:
                error = f"round {round_no}: {exc}"
                break
            durations.append(reply.seconds)
            if young is not None:
                young.old.append(reply.seconds)
                if len(young.old) == 2 * WINDOW + 1:
                    paired[young.checkpoint] = young.summary()
                    young = None
            instance = reply.body
            if instance.get("error") or instance["status"] == "error":
                error = f"round {round_no}: instance in error: {instance.get('error')}"
                break
            if round_no in checkpoints:
                sizes[round_no] = stored_bytes(desk, instance_id)
            if last:
                if instance["status"] != "completed":
                    error = f"after the last round the instance is {instance['status']}, not completed"
                break
            task = open_task(instance, TASK)
            if time.perf_counter() > next_report:
                log(f"    loop: round {round_no:,}, last completion {reply.seconds * 1000:.0f} ms")
                next_report = time.perf_counter() + 15
    except BenchError as exc:
        error = str(exc)
    finally:
        desk.close()
    done = len(durations)
    per_checkpoint = {}
    for n in checkpoints:
        if done >= n + WINDOW:
            window = durations[n - 1 - WINDOW: n + WINDOW]
            per_checkpoint[n] = {"median_ms": median(window) * 1000, "samples": len(window)}  # type: ignore[operator]
    return {
        "checkpoints": per_checkpoint,
        "paired": paired,
        "paired_reference_round": first,
        "sizes": sizes,
        "goal": goal,
        "rounds_completed": done,
        "completed_goal": done == goal and error is None,
        "stopped_by_budget": stopped_by_budget,
        "error": error,
        "last_5_median_ms": (median(durations[-5:]) or 0) * 1000 if durations else None,
        "seconds": round(time.perf_counter() - started, 1),
        "total_completion_seconds": round(sum(durations), 1),
    }


class _Young:
    """A fresh instance completed alternately with the old one around a checkpoint (see the module
    docstring): its rounds ``warm_rounds + 1 ..`` give the cost "at round 10" in the same seconds."""

    def __init__(self, desk: Desk, process_id: str, checkpoint: int, warm_rounds: int) -> None:
        self.desk = desk
        self.checkpoint = checkpoint
        self.own: list[float] = []
        self.old: list[float] = []
        body = desk.call("POST", "/api/v1/instances", "rita", {"process_id": process_id, "data": {}}, 201).body
        self.task = open_task(body, TASK)
        self.round_no = 0
        for _ in range(warm_rounds):
            self._complete()

    def _complete(self) -> float:
        self.round_no += 1
        reply = self.desk.call("POST", f"/api/v1/tasks/{self.task['id']}/complete", "rita",
                               {"data": {"again": True, "round_no": self.round_no}})
        self.task = open_task(reply.body, TASK)
        return reply.seconds

    def complete_one(self) -> None:
        self.own.append(self._complete())

    def summary(self) -> dict[str, Any]:
        young_ms = median(self.own) * 1000  # type: ignore[operator]
        old_ms = median(self.old) * 1000  # type: ignore[operator]
        return {"young_rounds": [self.round_no - len(self.own) + 1, self.round_no], "young_median_ms": young_ms,
                "old_median_ms": old_ms, "ratio": old_ms / young_ms if young_ms else None, "samples": len(self.old)}
