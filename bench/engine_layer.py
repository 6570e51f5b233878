"""Section a, middle layer: the incident lifecycle through processdesk's engine layer alone, durable.

What the issue's hints for target a are about (a per-process cache of live runs that the stored
state validates, a state written after every step), measured without the platform around it: no
HTTP, no users, no audit chain, no SLA clocks, no records, no notifications. Each step is one
transaction on a one-table database (same engine settings as the app, ``app.db.make_engine``):

1. read the instance's state text;
2. take its live run from ``ProcessEngine.runs`` (the app's run cache: a hit only if the stored
   text is exactly the run's last dump), else restore it from the text;
3. fire due timers (none are), complete the task through ``WorkflowRun.complete_task`` (the
   sandboxed script engine, the clock, compaction), ``settled()`` and ``dump()`` as a save does;
4. ``UPDATE`` the state with a version check; commit; park the run for the next step.

Same diagram, start data and task data as the bare engine (bench/bare_engine.py), so the ratio to
bare is what the engine layer and a durable state cost on their own.
"""

from __future__ import annotations

from typing import Any

from .bare_engine import REQUESTER, START_DATA, STEPS
from .common import BenchError, median, rate_of, shipped_definitions
from .lifecycle import BareEngine, alternate

PROCESS_ID = "incident_management"
_CREATE = "CREATE TABLE engine_state (id INTEGER PRIMARY KEY, state TEXT NOT NULL, version INTEGER NOT NULL)"


class EngineDesk:
    """The compiled incident process, a ProcessEngine with its run cache, and a state table."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import text

        from app.db import make_engine
        from app.engine import ProcessEngine, ProcessLibrary, ScriptIdentity, SourceFile, WorkflowRun

        files = [SourceFile(name, content) for name, content in shipped_definitions()]
        process = next(p for p in ProcessLibrary().compile(files) if p.process_id == PROCESS_ID)
        self.engine = ProcessEngine()
        self.bundle = self.engine.spec(process.content_hash, process.spec_json)
        self.state_version = WorkflowRun.serializer_version
        self.identity = ScriptIdentity(current_user=REQUESTER, initiator=REQUESTER)
        self.db = make_engine(url)
        with self.db.begin() as conn:
            conn.execute(text(_CREATE))
        self._insert = text("INSERT INTO engine_state (id, state, version) VALUES (:id, :state, 1)")
        self._select = text("SELECT state, version FROM engine_state WHERE id = :id")
        self._update = text("UPDATE engine_state SET state = :state, version = version + 1 "
                            "WHERE id = :id AND version = :version")
        self.next_id = 1

    def lifecycle(self) -> None:
        instance_id = self.next_id
        self.next_id += 1
        with self.db.begin() as conn:
            run = self.engine.start(self.bundle, START_DATA, self.identity)
            run.settled()
            conn.execute(self._insert, {"id": instance_id, "state": run.dump()})
        self.engine.runs.park(instance_id, run)
        for bpmn_id, data in STEPS:
            with self.db.begin() as conn:
                state, version = conn.execute(self._select, {"id": instance_id}).one()
                cached = self.engine.runs.take(instance_id, state, self.bundle)
                run = cached if cached is not None else self.engine.restore(self.bundle, state, self.state_version)
                if run.fire_due_timers(self.identity):
                    raise BenchError("a timer fired in the engine-layer lifecycle")
                [task] = [t for t in run.user_tasks() if t.bpmn_id == bpmn_id]
                run.complete_task(task.id, data, self.identity, timers_fired=True)
                status, _data, _views = run.settled()
                changed = conn.execute(self._update, {"id": instance_id, "state": run.dump(), "version": version})
                if changed.rowcount != 1:
                    raise BenchError("engine-layer lifecycle lost a version race it cannot have")
            self.engine.runs.park(instance_id, run)
        if status != "completed":
            raise BenchError(f"engine-layer lifecycle ended in status {status}")

    def close(self) -> None:
        self.db.dispose()


def measure_engine_layer(url: str, seconds: float, bare: BareEngine, warmup: int = 20) -> dict[str, Any]:
    """``url``: an empty throw-away database. Lifecycles alternate with bare ones in batches."""
    desk = EngineDesk(url)
    try:
        for _ in range(warmup):
            desk.lifecycle()
        hits_before = desk.engine.runs.hits
        durations, bare_durations = alternate(seconds, desk.lifecycle, bare)
        hits = desk.engine.runs.hits - hits_before
    finally:
        desk.close()
    return {**rate_of(durations), "bare_alternating_median_ms": median(bare_durations) * 1000,  # type: ignore[operator]
            "run_cache_hits_per_lifecycle": hits / len(durations)}
