"""Section a: the incident lifecycle through the HTTP API, in process, on SQLite and PostgreSQL.

One lifecycle is four API calls, the least a client needs (every answer carries the open tasks):

1. ``POST /instances`` as the requester: title, description, category "software", impact and
   urgency "medium" (the priority matrix makes it P3, so the major-incident branch stays idle);
2. ``POST /tasks/<triage>/complete`` as the agent: category, priority P3, group ServiceDesk;
3. ``POST /tasks/<investigate>/complete`` as the agent: outcome "resolve", notes, cause;
4. ``POST /tasks/<confirm_resolution>/complete`` as the requester: confirmed.

The bare-engine side is bench/bare_engine.py, run in its own interpreter so that nothing the app
imports or patches is loaded there. The target's ratio is taken in alternating batches: five
platform lifecycles, then twenty bare ones in that interpreter (``BareEngine``), and so on, so that
both medians come from the same seconds of a machine whose speed drifts by tens of percent
from one minute to the next.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from .common import BENCH, ROOT, BenchError, Desk, log, median, open_task, rate_of, run_for

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


#: Lifecycles per batch when the platform and the bare engine alternate: the bare batch is
#: larger, so that both sides spend about as long per batch (the first lifecycle after a switch
#: runs with caches the other process has used, on either side).
BATCH = 5
BARE_BATCH = 20


class BareEngine:
    """bench/bare_engine.py --serve in its own interpreter: bare lifecycles in batches, on request."""

    #: Seconds to wait for an answer (start-up, or one batch) before calling the engine stuck.
    TIMEOUT = 300.0

    def __init__(self) -> None:
        # stderr goes to a file: a pipe nobody reads while the engine runs could fill and block it.
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "bare_engine.py"), "--serve"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        if self._line() != "ready":
            raise BenchError(f"the bare engine did not start: {self._stderr()}")

    def _line(self) -> str:
        """The engine's next answer (one line; it writes one per command and nothing else)."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.TIMEOUT)
        if not ready:
            raise BenchError(f"the bare engine did not answer within {self.TIMEOUT:g} s: {self._stderr()}")
        return self.proc.stdout.readline().strip()

    def _stderr(self) -> str:
        self.close()
        self.errors.seek(0)
        return self.errors.read().strip()[-800:]

    def run(self, count: int) -> list[float]:
        """``count`` bare lifecycles; their durations in seconds."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"run {count}\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise BenchError(f"the bare engine is gone ({exc}): {self._stderr()}") from None
        line = self._line()
        if not line.startswith("["):
            raise BenchError(f"the bare engine failed: {line or self._stderr()}")
        return [float(d) for d in json.loads(line)]

    def close(self) -> None:
        """Idempotent: ask it to quit (kill it if it does not), and close the pipes."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass

    def __enter__(self) -> BareEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
        self.errors.close()


def alternate(seconds: float, step: Callable[[], None], bare: BareEngine, at_least: int = 20) -> tuple[list[float], list[float]]:
    """``BATCH`` calls of ``step``, then ``BARE_BATCH`` bare lifecycles, and again, for ``seconds`` of
    the platform's time (at least ``at_least`` each); both lists of durations."""
    ours: list[float] = []
    theirs: list[float] = []
    spent = 0.0
    while len(ours) < at_least or spent < seconds:
        batch = run_for(0.0, at_least=BATCH, at_most=BATCH, step=step)
        ours += batch
        spent += sum(batch)
        theirs += bare.run(BARE_BATCH)
    return ours, theirs


def measure_platform(url: str, seconds: float, bare: BareEngine, warmup: int = 3) -> dict[str, Any]:
    """``url``: a copy of the seed database (users made, everything deployed). The lifecycles
    alternate with bare ones in batches (``alternate``)."""
    from sqlalchemy import event

    desk = Desk(url, create_users=False)
    statements = [0]

    def count(*_args: Any) -> None:
        statements[0] += 1

    try:
        for _ in range(warmup):  # parse-and-cache the spec, warm the connection pool and the ORM
            lifecycle(desk)
        event.listen(desk.ext.db_engine, "before_cursor_execute", count)
        durations, bare_durations = alternate(seconds, lambda: lifecycle(desk), bare)
        event.remove(desk.ext.db_engine, "before_cursor_execute", count)
        edge = run_for(max(seconds / 4, 0.5), at_least=5, at_most=100_000, step=lambda: edge_calls(desk))
    finally:
        desk.close()
    return {
        **rate_of(durations),
        "bare_alternating_median_ms": median(bare_durations) * 1000,  # type: ignore[operator]
        "api_calls_per_lifecycle": 4,
        "sql_statements_per_lifecycle": round(statements[0] / len(durations), 1),
        "edge_floor_ms": median(edge) * 1000,  # type: ignore[operator]
    }


def edge_calls(desk: Desk) -> None:
    """The edge alone, as many calls as a lifecycle: four authenticated requests that read
    nothing but the caller and write nothing (``GET /users/me/preferences``): Flask, the test
    client, the token check with the caller's roles and groups, a JSON answer. What no step
    through the API can cost less than."""
    for user in ("rita", "alex", "alex", "rita"):
        desk.call("GET", "/api/v1/users/me/preferences", user)


def measure_bare(seconds: float, paired_replacements: bool = False) -> dict[str, Any]:
    """Run bench/bare_engine.py in a fresh interpreter; its JSON answer. ``paired_replacements``:
    alternating batches with and without processdesk's replacements of SpiffWorkflow hot paths
    (an info row)."""
    extra = ["--paired-replacements"] if paired_replacements else []
    proc = subprocess.run([sys.executable, str(BENCH / "bare_engine.py"), "--seconds", str(seconds), *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        raise BenchError(f"bare engine run failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout)


#: Where a function's own time is booked in the profile summary: first match on its file path.
PACKAGES = (
    ("site-packages/sqlalchemy/", "SQLAlchemy"),
    ("site-packages/SpiffWorkflow/", "SpiffWorkflow"),
    ("site-packages/RestrictedPython/", "RestrictedPython"),
    ("site-packages/psycopg", "psycopg"),
    ("site-packages/jsonschema", "jsonschema"),
    ("site-packages/referencing", "jsonschema"),
    ("site-packages/rpds", "jsonschema"),
    ("site-packages/jinja2", "Jinja / Markdown"),
    ("site-packages/markupsafe", "Jinja / Markdown"),
    ("site-packages/markdown_it", "Jinja / Markdown"),
    ("site-packages/itsdangerous", "itsdangerous (tokens)"),
    ("site-packages/marshmallow", "Flask / smorest / marshmallow"),
    ("site-packages/flask", "Flask / smorest / marshmallow"),
    ("site-packages/werkzeug", "Flask / smorest / marshmallow"),
    ("site-packages/webargs", "Flask / smorest / marshmallow"),
    ("site-packages/apispec", "Flask / smorest / marshmallow"),
    ("/app/engine/", "app/engine"),
    ("/app/services/", "app/services"),
    ("/app/", "app (api, models, other)"),
    ("/bench/", "benchmark harness"),
)


def _bucket(filename: str, name: str) -> str:
    for fragment, label in PACKAGES:
        if fragment in filename:
            return label
    if filename == "~":  # a C function: name the library when it says which
        if "sqlite3" in name:
            return "sqlite3 driver (C)"
        if "psycopg" in name or "pq" in name:
            return "psycopg"
        return "builtins (C)"
    if "/lib/python3" in filename and "site-packages" not in filename:
        return "stdlib: " + filename.rsplit("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    return "other: " + filename.rsplit("/", 1)[-1]


def profile_lifecycles(url: str, count: int, top: int = 30) -> str:
    """cProfile ``count`` lifecycles (after warm-up) on a seeded database. Returns: own time by
    package; the app's functions by cumulative time (what each layer costs including what it
    calls); the top functions by own time."""
    import cProfile
    import io
    import pstats

    desk = Desk(url, create_users=False)
    try:
        for _ in range(3):
            lifecycle(desk)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(count):
            lifecycle(desk)
        profiler.disable()
        wall = time.perf_counter() - started
    finally:
        desk.close()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    by_package: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        key = _bucket(filename, name)
        by_package[key] = by_package.get(key, 0.0) + tottime
    out = [f"{count} incident lifecycles ({4 * count} API calls) on {desk.dialect}: {wall:.2f} s under the profiler, "
           f"{wall / count * 1000:.0f} ms per lifecycle (profiling slows it down; shares are what matter)", "",
           "Own time by package (where the CPU is spent):"]
    for key, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:18]:
        out.append(f"  {seconds / total * 100:5.1f} %  {seconds / count * 1000:7.2f} ms/lifecycle  {key}")
    out += ["", "The app's own functions by cumulative time (each includes what it calls), per lifecycle:"]
    app_dir = f"{ROOT}/app/"
    app_rows = [(ct, nc, f"{filename.removeprefix(app_dir)}:{line} {name}")
                for (filename, line, name), (_cc, nc, _tt, ct, _callers) in raw.items() if filename.startswith(app_dir)]
    for ct, nc, label in sorted(app_rows, key=lambda r: -r[0])[:top]:
        out.append(f"  {ct / count * 1000:7.2f} ms  {ct / total * 100:5.1f} %  {nc / count:6.1f} calls  {label}")
    text_out = io.StringIO()
    pstats.Stats(profiler, stream=text_out).sort_stats("tottime").print_stats(top)
    out += ["", "Top functions by own time:", text_out.getvalue().split("\n", 4)[-1]]
    log(f"profiled {count} lifecycles")
    return "\n".join(out)
