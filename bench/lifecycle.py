"""Section a: the incident lifecycle through the HTTP API, in process, on SQLite and PostgreSQL.

One lifecycle is four API calls, the least a client needs (every answer carries the open tasks):

1. ``POST /instances`` as the requester: title, description, category "software", impact and
   urgency "medium" (the priority matrix makes it P3, so the major-incident branch stays idle);
2. ``POST /tasks/<triage>/complete`` as the agent: category, priority P3, group ServiceDesk;
3. ``POST /tasks/<investigate>/complete`` as the agent: outcome "resolve", notes, cause;
4. ``POST /tasks/<confirm_resolution>/complete`` as the requester: confirmed.

The bare-engine side is bench/bare_engine.py, run in its own interpreter so that nothing the app
imports or patches is loaded there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .common import BENCH, ROOT, BenchError, Desk, log, median, open_task, run_for, shipped_definitions

PROCESS_ID = "incident_management"
START_DATA = {
    "title": "Accounting app crashes on export",
    "description": "Exporting the monthly report closes the application without a message.",
    "category": "software",
    "impact": "medium",
    "urgency": "medium",
}
TRIAGE = {"category": "software", "priority": "P3", "assignment_group": "ServiceDesk"}
RESOLVE = {"outcome": "resolve", "resolution_notes": "Reinstalled the export plug-in.", "cause_category": "software_defect"}
CONFIRM = {"confirmed": True}


def start_incident(desk: Desk) -> dict[str, Any]:
    return desk.call("POST", "/api/v1/instances", "rita", {"process_id": PROCESS_ID, "data": START_DATA}, 201).body


def complete(desk: Desk, user: str, task: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return desk.call("POST", f"/api/v1/tasks/{task['id']}/complete", user, {"data": data}).body


def lifecycle(desk: Desk) -> None:
    instance = start_incident(desk)
    instance = complete(desk, "alex", open_task(instance, "triage"), TRIAGE)
    instance = complete(desk, "alex", open_task(instance, "investigate"), RESOLVE)
    instance = complete(desk, "rita", open_task(instance, "confirm_resolution"), CONFIRM)
    if instance["status"] != "completed" or instance["data"].get("ticket_status") != "closed":
        raise BenchError(f"lifecycle ended in status {instance['status']}: {instance.get('error')}")


def measure_platform(url: str, seconds: float, warmup: int = 3) -> dict[str, Any]:
    desk = Desk(url, shipped_definitions())
    try:
        for _ in range(warmup):  # parse-and-cache the spec, warm the connection pool and the ORM
            lifecycle(desk)
        durations = run_for(seconds, at_least=5, at_most=100_000, step=lambda: lifecycle(desk))
    finally:
        desk.close()
    total = sum(durations)
    return {
        "lifecycles": len(durations),
        "seconds": round(total, 3),
        "per_second": len(durations) / total,
        "median_ms": median(durations) * 1000,  # type: ignore[operator]
        "api_calls_per_lifecycle": 4,
    }


def measure_bare(seconds: float) -> dict[str, Any]:
    """Run bench/bare_engine.py in a fresh interpreter; its JSON answer."""
    proc = subprocess.run([sys.executable, str(BENCH / "bare_engine.py"), "--seconds", str(seconds)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        raise BenchError(f"bare engine run failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout)


def profile_lifecycles(url: str, count: int, top: int = 35) -> str:
    """cProfile ``count`` lifecycles (after warm-up); the top entries by cumulative time."""
    import cProfile
    import io
    import pstats

    desk = Desk(url, shipped_definitions())
    try:
        for _ in range(3):
            lifecycle(desk)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            lifecycle(desk)
        profiler.disable()
    finally:
        desk.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    log(f"profiled {count} lifecycles")
    return out.getvalue()
