"""Shared pieces of the benchmark: statistics, machine facts, throw-away databases, and a desk.

A *desk* is the real application built by ``app.create_app`` on a fresh, migrated database, with
users and bearer tokens made through the services (as tests/conftest.py does) and definitions
deployed as ``flask processes deploy`` does. Everything the benchmark measures then goes through
the Flask test client (in process) or through gunicorn (section c).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
FIXTURES = BENCH / "fixtures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The PostgreSQL server the benchmark creates its throw-away databases on (without a database name).
PG_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432").rstrip("/")
#: Shipped definitions; catalog.json is the service catalog, not a deployable file (app/cli.py).
CATALOG_FILE = "catalog.json"
PASSWORD = "bench-password-1234"
#: Fixed app settings for every desk. A cheap password hash: passwords are not what we measure
#: (tokens are issued through the service, no login call is timed).
BENCH_CONFIG: dict[str, Any] = {
    "SECRET_KEY": "bench-secret-key-not-for-production",
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    "SCHEDULER_ENABLED": False,
    "SQL_ECHO": False,
    # No line per request on the console between the figures (as gunicorn's own access log is off
    # unless asked for); the request id is still made and answered.
    "ACCESS_LOG": False,
}


class BenchError(RuntimeError):
    """Something the benchmark needs did not work (an unexpected HTTP status, a missing tool)."""


# -- statistics ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator  # type: ignore[operator]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the machine --------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, ValueError, subprocess.CalledProcessError):
        nproc = os.cpu_count() or 0
    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("SpiffWorkflow", "SQLAlchemy", "Flask", "psycopg", "gunicorn"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:  # noqa: BLE001 - a missing distribution is just not reported
            versions[dist] = None
    return {
        "nproc": nproc,
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def code_info() -> dict[str, Any]:
    """Which code was measured: the commit, and files under app/, processes/, forms/ that differ from it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "app", "processes", "forms").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None, "uncommitted": changed}


# -- throw-away databases -----------------------------------------------------------------------


def postgres_unreachable_reason() -> str | None:
    """None when PG_SERVER accepts connections (and may create databases), else why not."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(f"{PG_SERVER}/postgres", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "skip, and say why"
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"PostgreSQL at {PG_SERVER.split('@')[-1]} unreachable ({detail[-100:]})"
    return None


def postgres_version() -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(f"{PG_SERVER}/postgres", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            value = conn.execute(text("SHOW server_version")).scalar()
        engine.dispose()
        return str(value)
    except Exception:  # noqa: BLE001
        return None


@contextmanager
def fresh_database(kind: str, label: str, source: str | None = None, migrate: bool = True) -> Iterator[str]:
    """A new database, removed afterwards (also after a failure or Ctrl-C).

    Without ``source``: empty and migrated to head through Alembic (left empty with
    ``migrate=False``, for a section that makes its own tables). With ``source`` (the URL of a
    database of the same kind, nobody connected to it): a copy of it. ``kind``: "sqlite" (a file
    in a temporary folder; copies through SQLite's backup API) or "postgresql" (CREATE DATABASE on
    PG_SERVER, copies with ``TEMPLATE``; DROP DATABASE ... WITH (FORCE) at the end).
    """
    from app.cli import upgrade_database

    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"pd_bench_{label}_"))
        path = folder / "bench.sqlite3"
        try:
            if source is None:
                if migrate:
                    upgrade_database(f"sqlite:///{path}")
            else:
                import sqlite3

                src, dst = sqlite3.connect(source.removeprefix("sqlite:///")), sqlite3.connect(path)
                with dst:
                    src.backup(dst)
                src.close()
                dst.close()
            yield f"sqlite:///{path}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if kind != "postgresql":
        raise ValueError(kind)
    from sqlalchemy import create_engine, text

    name = f"pd_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    template = f' TEMPLATE "{source.rsplit("/", 1)[1]}"' if source else ""
    for attempt in range(20):  # a just-closed connection to the template may linger for a moment
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
            break
        except Exception as exc:  # noqa: BLE001
            if "being accessed by other users" not in str(exc) or attempt == 19:
                raise
            time.sleep(0.1)
    try:
        url = f"{PG_SERVER}/{name}"
        if source is None and migrate:
            upgrade_database(url)
        yield url
    finally:
        admin.dispose()
        if _deferred_drops is not None:
            _deferred_drops.append(name)
        else:
            _drop_postgres([name])


#: While ``deferred_drops()`` is active, PostgreSQL databases are dropped when it ends, not at once.
_deferred_drops: list[str] | None = None


def _drop_postgres(names: list[str]) -> None:
    """DROP DATABASE ... WITH (FORCE), several at once. Each DROP waits for a checkpoint (seconds
    after a bulk fill); run concurrently, the waits share the checkpoints."""
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", pool_size=max(1, len(names)))
    failures: list[str] = []

    def drop(name: str) -> None:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as exc:  # noqa: BLE001 - report, keep dropping the others
            failures.append(f"{name}: {exc}")

    workers = [threading.Thread(target=drop, args=(name,)) for name in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    admin.dispose()
    for failure in failures:
        log(f"could not drop database {failure}")


@contextmanager
def deferred_drops() -> Iterator[None]:
    """Collect the PostgreSQL databases the run throws away and drop them together at the end."""
    global _deferred_drops
    _deferred_drops = []
    try:
        yield
    finally:
        names, _deferred_drops = _deferred_drops, None
        if names:
            _drop_postgres(names)


class Seeds:
    """One prepared database per kind for the whole run: migrated, the two users made and every
    shipped definition deployed (as ``flask processes deploy`` would). Sections get copies of it,
    which is much faster than migrating and deploying again each time (that costs seconds, and
    QUICK has one minute). Dropped when the run ends."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._urls: dict[str, str] = {}

    def __enter__(self) -> Seeds:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def url(self, kind: str) -> str:
        if kind not in self._urls:
            url = self._stack.enter_context(fresh_database(kind, "seed"))
            Desk(url, shipped_definitions()).close()
            self._urls[kind] = url
        return self._urls[kind]

    def copy(self, kind: str, label: str) -> AbstractContextManager[str]:
        return fresh_database(kind, label, source=self.url(kind))


# -- the desk -----------------------------------------------------------------------------------


def shipped_definitions() -> list[tuple[str, bytes]]:
    """Everything in processes/ and forms/, collected exactly as `flask processes deploy` does."""
    uploads: list[tuple[str, bytes]] = []
    for folder in (ROOT / "processes", ROOT / "forms"):
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            if file.name != CATALOG_FILE and file.suffix.lower() in (".bpmn", ".dmn", ".json"):
                uploads.append((file.name, file.read_bytes()))
    return uploads


def loop_definitions(process_id: str = "loop_flow") -> list[tuple[str, bytes]]:
    """A benchmark-only looping process and its form; checks the diagram is freshly drawn."""
    from bench.fixtures_gen import LOOP_FORM, diagram_xml

    bpmn = FIXTURES / f"{process_id}.bpmn"
    if not bpmn.is_file() or bpmn.read_text(encoding="utf-8") != diagram_xml(process_id):
        shown = bpmn.relative_to(ROOT) if bpmn.is_relative_to(ROOT) else bpmn
        raise BenchError(f"{shown} is out of date: run .venv/bin/python bench/fixtures_gen.py")
    return [(bpmn.name, bpmn.read_bytes()), (LOOP_FORM, (FIXTURES / LOOP_FORM).read_bytes())]


#: The two people of every scenario: an agent in the ServiceDesk lane and the requester.
DESK_USERS = {
    "alex": (["agent"], ["ServiceDesk"]),
    "rita": (["requester"], ["Requesters"]),
}


@dataclass
class Reply:
    status: int
    body: Any
    seconds: float


class Desk:
    """The app on one database, with users, tokens and a test client."""

    def __init__(self, url: str, definitions: Iterable[tuple[str, bytes]] = (), create_users: bool = True) -> None:
        """``create_users=False``: the users exist already (a copy of a seed); only issue tokens."""
        from app import create_app

        self.url = url
        self.app = create_app({**BENCH_CONFIG, "DATABASE_URL": url})
        self.ext = self.app.extensions["processdesk"]
        self.client = self.app.test_client()
        self.headers: dict[str, dict[str, str]] = {}
        uploads = list(definitions)
        svc = self.ext.services()
        try:
            if create_users:
                for name, (roles, groups) in DESK_USERS.items():
                    svc.users.create_user(name, PASSWORD, roles=roles, groups=groups, display_name=name.title())
                svc.session.commit()
            if uploads:
                svc.definitions.deploy(None, uploads)
                svc.session.commit()
            for name in DESK_USERS:
                token = svc.users.issue_token(svc.users.get_by_username(name))["token"]
                self.headers[name] = {"Authorization": f"Bearer {token}"}
            svc.session.commit()
        finally:
            svc.session.close()

    @property
    def dialect(self) -> str:
        return str(self.ext.db_engine.dialect.name)

    def call(self, method: str, path: str, user: str, body: Any = None, expect: int | Sequence[int] = 200) -> Reply:
        started = time.perf_counter()
        if method == "GET":
            response = self.client.get(path, headers=self.headers[user])
        else:
            response = self.client.open(path, method=method, json=body, headers=self.headers[user])
        seconds = time.perf_counter() - started
        wanted = (expect,) if isinstance(expect, int) else tuple(expect)
        if response.status_code not in wanted:
            raise BenchError(f"{method} {path} as {user}: HTTP {response.status_code} "
                             f"{response.get_data(as_text=True)[:400]}")
        return Reply(response.status_code, response.get_json(), seconds)

    def sql(self, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
        from sqlalchemy import text

        with self.ext.db_engine.connect() as conn:
            return list(conn.execute(text(statement), params or {}))

    def close(self) -> None:
        self.ext.db_engine.dispose()


def open_task(instance: dict[str, Any], bpmn_id: str) -> dict[str, Any]:
    for task in instance.get("open_tasks", []):
        if task["bpmn_id"] == bpmn_id:
            return task
    raise BenchError(f"instance {instance.get('id')} has no open task {bpmn_id}: "
                     f"{[t['bpmn_id'] for t in instance.get('open_tasks', [])]} (status {instance.get('status')})")


def rate_of(durations: Sequence[float]) -> dict[str, Any]:
    """Lifecycles run, their seconds, per second and the median in milliseconds."""
    total = sum(durations)
    return {
        "lifecycles": len(durations),
        "seconds": round(total, 3),
        "per_second": len(durations) / total,
        "median_ms": statistics.median(durations) * 1000,
    }


def run_for(seconds: float, at_least: int, at_most: int, step: Callable[[], None]) -> list[float]:
    """Call ``step`` until ``seconds`` passed (at least/at most so many times); its durations."""
    durations: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(durations) < at_most and (len(durations) < at_least or time.perf_counter() < deadline):
        started = time.perf_counter()
        step()
        durations.append(time.perf_counter() - started)
    return durations


# -- how busy the machine was --------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, comm, utime+stime+cutime+cstime in clock ticks), from /proc."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), comm, sum(int(v) for v in fields[11:15]))
    return table


def _descendants(table: dict[int, tuple[int, str, int]], root: int) -> set[int]:
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _comm, _ticks) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def tree_cpu_seconds(root: int) -> float | None:
    """CPU seconds used so far by process ``root`` and its descendants (Linux; None elsewhere)."""
    if not Path("/proc/stat").exists():
        return None
    table = _proc_table()
    return sum(table[pid][2] for pid in _descendants(table, root) if pid in table) / os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: everything but idle and iowait is busy
    return sum(values[:3]) + sum(values[5:8])


class CpuMeter:
    """Who used the CPUs between start and stop: this benchmark (its process tree), PostgreSQL
    (every ``postgres`` process, whoever its client), and everything else on the machine.

    The VM is shared; when something else was busy the figures of that section are less
    comparable, and this says so. Linux only (reads /proc); elsewhere it reports nothing.
    """

    def __init__(self) -> None:
        self.available = Path("/proc/stat").exists()
        self.started = time.perf_counter()
        self.first = self._sample() if self.available else None

    def _sample(self) -> tuple[int, int, int]:
        table = _proc_table()
        ours = _descendants(table, os.getpid())
        mine = sum(table[pid][2] for pid in ours if pid in table)
        postgres = sum(ticks for pid, (_p, comm, ticks) in table.items() if comm == "postgres" and pid not in ours)
        return _busy_ticks(), mine, postgres

    def stop(self) -> dict[str, Any]:
        if not self.available or self.first is None:
            return {}
        busy, mine, postgres = (b - a for a, b in zip(self.first, self._sample(), strict=True))
        wall = time.perf_counter() - self.started
        capacity = wall * (os.cpu_count() or 1) * os.sysconf("SC_CLK_TCK")
        others = max(0, busy - mine - postgres)
        pct = lambda ticks: round(100.0 * ticks / capacity, 1) if capacity else None  # noqa: E731
        return {"wall_seconds": round(wall, 1), "cpu_bench_pct": pct(mine), "cpu_postgres_pct": pct(postgres),
                "cpu_others_pct": pct(others), "loadavg": Path("/proc/loadavg").read_text().split()[:3]}
