"""Section a, bare side: the incident diagram run by SpiffWorkflow alone, in memory.

Runs in its own interpreter (bench/lifecycle.py starts it) and imports nothing from ``app``, so
the platform's sandbox, clock patch and serializer play no part. The diagram is parsed once with
``SpiffBpmnParser(validator=VALIDATOR)``; each lifecycle builds a ``BpmnWorkflow`` from the parsed
spec and runs it with SpiffWorkflow's default ``PythonScriptEngine`` / ``TaskDataEnvironment``.
The only addition is the one helper the diagram's scripts call, ``get_process_initiator_user()``
(the platform provides it; the default environment does not). Same start data and task data as
the HTTP lifecycle (bench/lifecycle.py), plus what the platform adds itself: ``record_number`` at
the start and the investigate task's ``setUserVar`` (``assignee``).

Prints one JSON object: lifecycles run, seconds, per second, median milliseconds.

``--serve``: parse, warm up, print ``ready``, then answer each ``run N`` read from stdin with one
line, the JSON list of N lifecycle durations in seconds, until ``quit`` or the end of stdin. The
platform's side of target a drives it in alternating batches (bench/lifecycle.py, BareEngine), so
that both sides are timed in the same seconds of a machine whose speed drifts.

``--paired-replacements`` (an info row, not the reference): batches of lifecycles alternately
with and without processdesk's two replacements of SpiffWorkflow hot paths (app/engine/walk.py,
app/engine/state_change.py, loaded from their files alone, so nothing else of ``app`` comes
along), so that the machine's drift hits both alike. It shows what they save on the engine's own
work; prints both medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parents[1]
PROCESS_ID = "incident_management"
REQUESTER = {"id": 2, "username": "rita", "display_name": "Rita", "email": None, "groups": ["Requesters"]}
START_DATA = {
    "title": "Accounting app crashes on export",
    "description": "Exporting the monthly report closes the application without a message.",
    "category": "software",
    "impact": "medium",
    "urgency": "medium",
    "record_number": "INC-000001",
}
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("triage", {"category": "software", "priority": "P3", "assignment_group": "ServiceDesk"}),
    ("investigate", {"outcome": "resolve", "resolution_notes": "Reinstalled the export plug-in.",
                     "cause_category": "software_defect", "raise_problem": False, "assignee": "alex"}),
    ("confirm_resolution", {"confirmed": True, "comment": ""}),
]


def parse() -> tuple[Any, dict[str, Any]]:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(ROOT / "processes" / f"{PROCESS_ID}.bpmn"))
    parser.add_dmn_file(str(ROOT / "processes" / "priority_matrix.dmn"))
    return parser.get_spec(PROCESS_ID), parser.get_subprocess_specs(PROCESS_ID)


def script_engine() -> PythonScriptEngine:
    return PythonScriptEngine(environment=TaskDataEnvironment({"get_process_initiator_user": lambda: REQUESTER}))


def lifecycle(spec: Any, subprocess_specs: dict[str, Any], engine: PythonScriptEngine) -> BpmnWorkflow:
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=engine)
    start = workflow.get_tasks(state=TaskState.READY)[0]
    start.data.update(START_DATA)
    workflow.do_engine_steps()
    for bpmn_id, data in STEPS:
        ready = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == bpmn_id]
        if len(ready) != 1:
            raise RuntimeError(f"expected one READY {bpmn_id}, got {[t.task_spec.bpmn_id for t in ready]}")
        task = ready[0]
        task.data.update(data)
        task.run()
        workflow.do_engine_steps()
    if not workflow.is_completed() or workflow.data.get("ticket_status") != "closed":
        raise RuntimeError(f"lifecycle did not complete: {workflow.data}")
    return workflow


def load_replacements() -> list[Any]:
    modules = []
    for name in ("walk", "state_change"):
        spec = importlib.util.spec_from_file_location(f"pd_{name}", ROOT / "app" / "engine" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


def timed(spec: Any, subprocess_specs: dict[str, Any], engine: PythonScriptEngine, count: int) -> list[float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        lifecycle(spec, subprocess_specs, engine)
        durations.append(time.perf_counter() - started)
    return durations


def paired(seconds: float) -> dict[str, Any]:
    """Alternating batches of 20 lifecycles, SpiffWorkflow's own hot paths and ours."""
    replacements = load_replacements()
    spec, subprocess_specs = parse()
    engine = script_engine()
    runs: dict[str, list[float]] = {"bare": [], "replaced": []}
    deadline = time.perf_counter() + seconds
    first = True
    while first or time.perf_counter() < deadline or len(runs["bare"]) < 100:
        for mode in ("bare", "replaced"):
            for module in replacements:
                module.install() if mode == "replaced" else module.uninstall()
            batch = timed(spec, subprocess_specs, engine, 20)
            if not first:  # the first round warms both up
                runs[mode] += batch
        first = False
    return {
        "lifecycles_each": len(runs["bare"]),
        "bare_median_ms": statistics.median(runs["bare"]) * 1000,
        "replaced_median_ms": statistics.median(runs["replaced"]) * 1000,
    }


def serve() -> None:
    spec, subprocess_specs = parse()
    engine = script_engine()
    timed(spec, subprocess_specs, engine, 20)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] != "run" or len(command) != 2 or not command[1].isdigit():
            print(json.dumps({"error": f"unknown command {line.strip()!r}"}), flush=True)
            continue
        print(json.dumps(timed(spec, subprocess_specs, engine, int(command[1]))), flush=True)


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--seconds", type=float, default=3.0)
    args.add_argument("--paired-replacements", action="store_true")
    args.add_argument("--serve", action="store_true")
    options = args.parse_args()
    if options.serve:
        serve()
        return
    if options.paired_replacements:
        json.dump(paired(options.seconds), sys.stdout)
        return
    parse_started = time.perf_counter()
    spec, subprocess_specs = parse()
    parse_seconds = time.perf_counter() - parse_started
    engine = script_engine()
    timed(spec, subprocess_specs, engine, 20)  # warm-up
    durations: list[float] = []
    deadline = time.perf_counter() + options.seconds
    while len(durations) < 50 or time.perf_counter() < deadline:
        durations += timed(spec, subprocess_specs, engine, 1)
    total = sum(durations)
    json.dump({
        "lifecycles": len(durations),
        "seconds": round(total, 3),
        "per_second": len(durations) / total,
        "median_ms": statistics.median(durations) * 1000,
        "parse_ms": parse_seconds * 1000,
    }, sys.stdout)


if __name__ == "__main__":
    main()
