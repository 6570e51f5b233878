"""Section c: throughput and latency under 32 concurrent clients, gunicorn with 1 and with 2 workers.

gunicorn (from the venv) serves ``app:create_app()`` on 127.0.0.1 against a fresh PostgreSQL
database; the app gets DATABASE_URL, SECRET_KEY and the scheduler switch through ``--env``.
Worker class: ``sync`` by default: one request at a time per worker process, the usual choice
for CPU-bound Python, so "2 workers vs 1" measures how the app scales with processes. (A sync
worker answers every request with ``Connection: close``: the clients' keep-alive connections are
re-opened per request, a sub-millisecond cost on loopback. ``--worker-class gthread`` keeps them
open, but then a connection stays with the worker that accepted it, which can unbalance workers.)

Load: 32 client threads (http.client, one keep-alive connection each, re-opened when the server
closes it). The issue measures task completions on different instances, so first every thread
starts its own incidents as the requester (enough for the whole window, through the same server;
not measured; each client keeps the ones a window left untouched for the next run on the same
database, which then only tops its pool up): record numbers are gap-free per kind (issue #3), so a start holds its kind's
sequence row until it commits and concurrent starts queue behind each other. When all threads
have their incidents, the server is restarted (fresh workers: no run cached from the starts, which
otherwise made the rate swing with how the starts happened to spread over the workers) and the
database is settled (VACUUM ANALYZE, CHECKPOINT: the bulk of fresh rows would otherwise trigger
autovacuum and a checkpoint at a random moment of one window), then each works through them: triage and investigation as the agent, the
confirmation as the requester; a thread that runs out starts more (reported as starts in the
window). A short warm-up is discarded; a request counts when its answer arrives inside the
measured window; at the end of the window the server is stopped. Throughput counts task
completions per second. Latency percentiles are over completions. HTTP 409 is an expected
conflict and counted separately; any other non-2xx answer or a transport error is an error.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import BENCH_CONFIG, PG_SERVER, ROOT, BenchError, Desk, log, percentile, tree_cpu_seconds
from .lifecycle import CONFIRM, PROCESS_ID, RESOLVE, START_DATA, TRIAGE

CLIENTS = 32
STARTUP_TIMEOUT = 60.0
#: The highest completion rate the incidents started before the load must last for (2 workers
#: complete 100-155/s here; at 80/s the clients ran out and started incidents inside the
#: window, queueing on the record-number row). QUICK sizes for less (bench/run.py).
PRESTART_RATE = 250.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One gunicorn master (and its workers) started by us; stopped by its own pid/process group."""

    def __init__(self, url: str, workers: int, worker_class: str, threads: int) -> None:
        self.port = free_port()
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"pd_bench_gunicorn_{self.port}.log"
        self.workers = workers
        self.command = command = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "--bind", f"127.0.0.1:{self.port}",
            "--worker-class", worker_class,
            "--timeout", "120",
            "--keep-alive", "30",
            "--log-level", "warning",
            "--chdir", str(ROOT),
            "--env", f"DATABASE_URL={url}",
            "--env", f"SECRET_KEY={BENCH_CONFIG['SECRET_KEY']}",
            "--env", "PROCESSDESK_SCHEDULER_ENABLED=0",
            "--env", "PROCESSDESK_ACCESS_LOG=0",
            "--env", f"PROCESSDESK_PASSWORD_HASH_METHOD={BENCH_CONFIG['PASSWORD_HASH_METHOD']}",
        ]
        if worker_class == "gthread":
            command += ["--threads", str(threads)]
        self._spawn()

    def _spawn(self) -> None:
        self.log_file = self.log_path.open("w")
        command = [*self.command, "--workers", str(self.workers), "app:create_app()"]
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def restart(self, workers: int | None = None) -> float:
        """Stop and start again on the same port (fresh workers, so nothing cached in them; as
        many as ``workers`` if given); the seconds until it answered."""
        self.stop()
        if workers is not None:
            self.workers = workers
        self._spawn()
        return self.wait_healthy()

    def wait_healthy(self) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < STARTUP_TIMEOUT:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/health")
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"gunicorn did not answer /api/v1/health within {STARTUP_TIMEOUT} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-1500:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Idempotent: SIGTERM to the master we started, SIGKILL to its process group if needed."""
        if self.log_file.closed:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the master stops its workers gracefully
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group we created with start_new_session
                self.proc.wait(timeout=10)
        self.log_file.close()
        self.log_path.unlink(missing_ok=True)


@dataclass
class Sample:
    kind: str  # "start" or "complete"
    started: float
    finished: float
    status: int  # HTTP status; 0 for a transport error


@dataclass
class ClientState:
    samples: list[Sample] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)  # (when, what)

    def error(self, message: str) -> None:
        self.errors.append((time.perf_counter(), message))


@dataclass
class Plan:
    """What the client threads share: how many incidents each starts before the load, the barrier
    they meet at when all have them, and the end of the window (set once they met)."""

    prestart: int
    ready: threading.Barrier
    go: threading.Barrier
    stop_at: float = float("inf")


def client_thread(port: int, tokens: dict[str, str], plan: Plan, state: ClientState, prepared: list[Any]) -> None:
    """One client: top ``prepared`` (its own pool, kept across runs) up to ``plan.prestart``
    incidents, meet the others, then work through the pool until the window ends."""
    conn: http.client.HTTPConnection | None = None

    def request(kind: str, path: str, user: str, body: dict[str, Any]) -> tuple[int, Any]:
        nonlocal conn
        payload = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {tokens[user]}", "Content-Type": "application/json",
                   "Connection": "keep-alive"}
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request("POST", path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                state.samples.append(Sample(kind, started, time.perf_counter(), response.status))
                return response.status, (json.loads(data) if data else None)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                # A keep-alive connection the server had closed: reconnect once, then count it.
                if conn is not None:
                    conn.close()
                conn = None
                if attempt == 2:
                    state.samples.append(Sample(kind, started, time.perf_counter(), 0))
                    state.error(f"{kind}: {type(exc).__name__}: {exc}")
                    return 0, None
            except OSError as exc:
                if conn is not None:
                    conn.close()
                conn = None
                state.samples.append(Sample(kind, started, time.perf_counter(), 0))
                state.error(f"{kind}: {type(exc).__name__}: {exc}")
                return 0, None
        return 0, None

    def task_id(instance: Any, bpmn_id: str) -> int | None:
        for task in (instance or {}).get("open_tasks", []):
            if task["bpmn_id"] == bpmn_id:
                return int(task["id"])
        return None

    def start() -> Any:
        status, instance = request("start", "/api/v1/instances", "rita", {"process_id": PROCESS_ID, "data": START_DATA})
        if status != 201:
            if status not in (0, 409):
                state.error(f"start: HTTP {status}: {json.dumps(instance)[:300]}")
            return None
        return instance

    missing = plan.prestart - len(prepared)
    for _ in range(missing * 2):  # a few tries more than needed, for transport errors
        if len(prepared) >= plan.prestart:
            break
        if (instance := start()) is not None:
            prepared.append(instance)
    try:
        plan.ready.wait(timeout=600)
        plan.go.wait(timeout=600)  # the database settles in between (run_load)
    except threading.BrokenBarrierError:
        state.error("the other clients did not get ready")
        return
    steps = (("triage", "alex", TRIAGE), ("investigate", "alex", RESOLVE), ("confirm_resolution", "rita", CONFIRM))
    while time.perf_counter() < plan.stop_at:
        instance = prepared.pop() if prepared else start()
        if instance is None:
            continue
        for bpmn_id, user, data in steps:
            if time.perf_counter() >= plan.stop_at:
                break
            ident = task_id(instance, bpmn_id)
            if ident is None:
                state.error(f"no open {bpmn_id} in instance {instance.get('id')}: {instance.get('status')}")
                break
            status, instance = request("complete", f"/api/v1/tasks/{ident}/complete", user, {"data": data})
            if status != 200:
                if status not in (0, 409):
                    state.error(f"complete {bpmn_id}: HTTP {status}: {json.dumps(instance)[:300]}")
                break  # a lost instance: start a new one
    if conn is not None:
        conn.close()


def observe(server: Server, db_name: str, until: float) -> dict[str, Any]:
    """Watch the server during the window: the CPU its processes use, and what the database
    sessions of the benchmark's database are doing (sampled every 0.2 s from pg_stat_activity).

    This tells a server starved of CPU (by other processes on the machine) from one whose workers
    wait on each other's row locks.
    """
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{PG_SERVER}/postgres")
    cpu_start, wall_start = tree_cpu_seconds(server.proc.pid), time.perf_counter()
    samples = active = lock_waits = 0
    waits: dict[str, int] = {}
    query = text("SELECT state, wait_event_type, wait_event, left(query, 200) FROM pg_stat_activity "
                 "WHERE datname = :db AND pid <> pg_backend_pid()")
    try:
        with engine.connect() as conn:
            while time.perf_counter() < until:
                rows = conn.execute(query, {"db": db_name}).all()
                conn.rollback()
                samples += 1
                for state, wait_type, wait_event, statement in rows:
                    if state == "active":
                        active += 1
                        if wait_type == "Lock":
                            lock_waits += 1
                            key = f"{wait_event}: {' '.join(str(statement).split())[:90]}"
                            waits[key] = waits.get(key, 0) + 1
                time.sleep(max(0.0, min(0.2, until - time.perf_counter())))
    finally:
        engine.dispose()
    cpu_end, wall = tree_cpu_seconds(server.proc.pid), time.perf_counter() - wall_start
    return {
        "server_cpu_cores": round((cpu_end - cpu_start) / wall, 2) if cpu_start is not None and cpu_end is not None else None,
        "db_active_sessions_mean": round(active / samples, 2) if samples else None,
        "db_lock_wait_sessions_mean": round(lock_waits / samples, 2) if samples else None,
        "db_lock_waits_by_event": waits,
    }


def settle(db_name: str) -> None:
    """After the incidents are started, before the window: ANALYZE the tables they filled and
    CHECKPOINT, so that neither an autovacuum/autoanalyze of the fresh rows nor the checkpoint of
    their WAL lands inside one worker count's window and not the other's."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{PG_SERVER}/{db_name}", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
            conn.execute(text("CHECKPOINT"))
    finally:
        engine.dispose()


def run_load(server: Server, workers: int, tokens: dict[str, str], warmup: float, seconds: float, db_name: str,
             prestart_rate: float = PRESTART_RATE, pools: list[list[Any]] | None = None) -> dict[str, Any]:
    """32 clients for warm-up + ``seconds`` against ``server`` restarted with ``workers`` workers,
    then the server is stopped; the measured window's outcome. The incidents are started through
    ``server`` as it runs when called (with any number of workers: they are restarted anyway).

    ``pools``: one list of started, untouched incidents per client, kept across the runs of one
    database: each run only tops them up to what its window may need (a run with 1 worker uses
    a fraction of that, so the next run starts far fewer).

    A request counts in the window when its answer arrives inside it (a throughput meter's view):
    requests still queued at the end of the window are not waited for; stopping the server ends
    them, and what happens to them after the window is not counted.
    """
    states = [ClientState() for _ in range(CLIENTS)]
    if pools is None:
        pools = [[] for _ in range(CLIENTS)]
    pooled = sum(len(pool) for pool in pools)
    # Enough incidents for the window at up to ``prestart_rate`` completions/s (3 per incident).
    plan = Plan(prestart=math.ceil(prestart_rate * (warmup + seconds) / 3 / CLIENTS) + 1,
                ready=threading.Barrier(CLIENTS + 1), go=threading.Barrier(CLIENTS + 1))
    threads = [threading.Thread(target=client_thread, args=(server.port, tokens, plan, s, pool), daemon=True)
               for s, pool in zip(states, pools, strict=True)]
    for thread in threads:
        thread.start()
    prepared_at = time.perf_counter()
    plan.ready.wait(timeout=600)
    started_all = time.perf_counter()
    topped_up = sum(len(pool) for pool in pools) - pooled
    # Fresh workers for the window: the runs the starts left in each worker's run cache depend
    # on how the kernel spread them over the workers and on what the cache evicted since, and
    # swung the 1-worker rate by 15 % from run to run. Now every window starts with empty caches.
    startup = server.restart(workers)
    settle(db_name)
    plan.go.wait(timeout=600)
    begin = time.perf_counter()
    window_start, window_end = begin + warmup, begin + warmup + seconds
    plan.stop_at = window_end
    log(f"    {topped_up} incidents started in {started_all - prepared_at:.1f} s "
        f"({CLIENTS} x {plan.prestart} ready, {pooled} of them left by the last run), server restarted with "
        f"{workers} worker(s) and database settled in {begin - started_all:.1f} s; loading")
    time.sleep(max(0.0, window_start - time.perf_counter()))
    observed = observe(server, db_name, window_end)
    alive_at_end = server.proc.poll() is None
    death = "" if alive_at_end else f"gunicorn died: {server.log_tail()}"
    server.stop()
    for thread in threads:
        thread.join(timeout=30)
    inside = [s for st in states for s in st.samples if window_start <= s.finished <= window_end]
    return {
        "seconds": seconds,
        "startup_seconds": round(startup, 2),
        "latencies": [s.finished - s.started for s in inside if s.kind == "complete" and 200 <= s.status < 300],
        "starts": sum(1 for s in inside if s.kind == "start" and 200 <= s.status < 300),
        "conflicts_409": sum(1 for s in inside if s.status == 409),
        "errors": sum(1 for s in inside if s.status == 0 or (s.status >= 300 and s.status != 409))
                  + sum(1 for t in threads if t.is_alive()) + (0 if alive_at_end else 1),
        "messages": [m for st in states for when, m in st.errors if window_start <= when <= window_end]
                    + ([death] if death else []),
        "observed": observed,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = sum(r["seconds"] for r in runs)
    latencies = [x for r in runs for x in r["latencies"]]
    return {
        "clients": CLIENTS,
        "seconds": seconds,
        "completions": len(latencies),
        "completions_per_second": len(latencies) / seconds,
        "starts_per_second": sum(r["starts"] for r in runs) / seconds,
        "per_round_completions_per_second": [round(len(r["latencies"]) / r["seconds"], 2) for r in runs],
        "p50_ms": (percentile(latencies, 50) or 0) * 1000,
        "p95_ms": (percentile(latencies, 95) or 0) * 1000,
        "p99_ms": (percentile(latencies, 99) or 0) * 1000,
        "conflicts_409": sum(r["conflicts_409"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "error_examples": sorted({m for r in runs for m in r["messages"]})[:5],
        "observed": [r["observed"] for r in runs],
    }


def run_concurrency(url: str, rounds: int, seconds: float, warmup: float, worker_class: str = "sync",
                    threads: int = 4, worker_counts: tuple[int, ...] = (1, 2),
                    prestart_rate: float = PRESTART_RATE) -> dict[str, Any]:
    """``rounds`` x (one server per worker count, loaded for ``seconds``), alternating the worker
    counts so that drift of the machine hits all alike. ``url``: a copy of the seed database."""
    desk = Desk(url, create_users=False)
    tokens = {user: headers["Authorization"].split(" ", 1)[1] for user, headers in desk.headers.items()}
    desk.close()
    runs: dict[int, list[dict[str, Any]]] = {w: [] for w in worker_counts}
    pools: list[list[Any]] = [[] for _ in range(CLIENTS)]
    for _ in range(rounds):
        for workers in worker_counts:
            # The starts go through as many workers as the machine's best run has (they are not
            # measured, and the window restarts the server with ``workers`` anyway).
            server = Server(url, max(worker_counts), worker_class, threads)
            try:
                server.wait_healthy()
                log(f"    gunicorn {workers} worker(s) ({worker_class}): {CLIENTS} clients for {warmup:g} + {seconds:g} s")
                runs[workers].append(run_load(server, workers, tokens, warmup, seconds, url.rsplit("/", 1)[1],
                                              prestart_rate, pools))
            finally:
                server.stop()
    out: dict[str, Any] = {"worker_class": worker_class, "rounds": rounds, "warmup_seconds": warmup}
    if worker_class == "gthread":
        out["threads_per_worker"] = threads
    for workers in worker_counts:
        out[f"workers_{workers}"] = {**summarize(runs[workers]),
                                     "startup_seconds": [r["startup_seconds"] for r in runs[workers]]}
    return out
