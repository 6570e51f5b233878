"""Wall-clock time of one incident lifecycle by phase (``make bench BENCH_ARGS="--phases 60"``).

cProfile (``--profile``) about doubles every Python call and so inflates what calls many small
functions; this instead wraps a fixed list of the app's own phases (and SQLAlchemy's commit) in a
timer and runs lifecycles at full speed. Phases nest (``TaskService.complete`` includes
``InstanceRunner.save``, which includes ``write_changes``); each line is the total time spent inside
that function, per lifecycle, and how often it ran. The wrappers cost about a microsecond a call.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .common import Desk, log
from .lifecycle import lifecycle

#: (module, class or None, function): what is timed. A name the code no longer has is reported,
#: not fatal (the list follows the code by hand).
PHASES: tuple[tuple[str, str | None, str], ...] = (
    ("app.unit_of_work", None, "run_unit_of_work"),
    ("app.api", None, "current_user"),
    ("app.services.instances", "InstanceService", "start_process"),
    ("app.services.instances", "TaskService", "get"),
    ("app.services.instances", "TaskService", "complete"),
    ("app.services.execution", "InstanceRunner", "start"),
    ("app.services.execution", "InstanceRunner", "load"),
    ("app.services.execution", "InstanceRunner", "save"),
    ("app.services.execution", "InstanceRunner", "_announce"),
    ("app.engine.runtime", "ProcessEngine", "start"),
    ("app.engine.runtime", "WorkflowRun", "complete_task"),
    ("app.engine.runtime", "WorkflowRun", "fire_due_timers"),
    ("app.engine.runtime", "WorkflowRun", "settled"),
    ("app.engine.runtime", "WorkflowRun", "dump"),
    ("app.services.forms", None, "validate_submission"),
    ("app.services.records", "RecordService", "open_record"),
    ("app.services.records", "RecordService", "sync"),
    ("app.services.sla", "SlaService", "track"),
    ("app.services.notifications", "NotificationService", "notify"),
    ("app.services.audit", "AuditLog", "record"),
    ("app.db", None, "write_changes"),
    ("app.db", None, "insert_rows"),
    ("sqlalchemy.orm.session", "Session", "commit"),
    ("sqlalchemy.engine.base", "Connection", "_commit_impl"),
)


@contextmanager
def timed(phases: tuple[tuple[str, str | None, str], ...]) -> Iterator[tuple[dict[str, list[float]], list[str]]]:
    """Wrap each phase while the block runs: {label: [seconds, calls]} and the names not found.
    Module-level functions are also replaced where ``app`` modules imported them by name."""
    import sys

    totals: dict[str, list[float]] = {}
    missing: list[str] = []
    undo: list[tuple[Any, str, Any]] = []

    def wrap(label: str, original: Callable[..., Any]) -> Callable[..., Any]:
        slot = totals.setdefault(label, [0.0, 0])

        @functools.wraps(original)
        def timer(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                slot[0] += time.perf_counter() - started
                slot[1] += 1

        return timer

    for module_name, class_name, name in phases:
        label = f"{class_name}.{name}" if class_name else name
        owner: Any = importlib.import_module(module_name)
        if class_name is not None:
            owner = getattr(owner, class_name, None)
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:
            missing.append(f"{module_name}:{label}")
            continue
        replacement = wrap(label, original)
        holders = [owner]
        if class_name is None:  # also where it was imported by name
            holders += [m for n, m in list(sys.modules.items())
                        if n.startswith("app") and m is not owner and getattr(m, name, None) is original]
        for holder in holders:
            undo.append((holder, name, original))
            setattr(holder, name, replacement)
    try:
        yield totals, missing
    finally:
        for holder, name, original in reversed(undo):
            setattr(holder, name, original)


def phase_lifecycles(url: str, count: int, warmup: int = 5) -> str:
    """``count`` lifecycles on a seeded database, timed by phase; the table as text."""
    desk = Desk(url, create_users=False)
    try:
        with timed(PHASES) as (totals, missing):
            for _ in range(warmup):
                lifecycle(desk)
            for slot in totals.values():
                slot[0], slot[1] = 0.0, 0
            started = time.perf_counter()
            for _ in range(count):
                lifecycle(desk)
            wall = (time.perf_counter() - started) / count
    finally:
        desk.close()
    out = [f"{count} incident lifecycles on {desk.dialect}: {wall * 1000:.1f} ms each (4 API calls); "
           "time inside each phase per lifecycle (phases nest):"]
    for label, (seconds, calls) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        out.append(f"  {seconds / count * 1000:7.2f} ms  {calls / count:5.1f} calls  {label}")
    if missing:
        out.append("not found (the code changed; update bench/phases.py): " + ", ".join(missing))
    log(f"timed {count} lifecycles by phase")
    return "\n".join(out)
