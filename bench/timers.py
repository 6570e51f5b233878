"""Timer lateness (issue #4 item 8): how late due BPMN timers fire with a 5 s sweep, for 1,000
due timers on SQLite and PostgreSQL, with one and with two sweeper processes.

Instances of a one-timer diagram are started with a clock set one hour back, so their timers
(PT1H) fall due spread over a short window of real time; sweeper processes (the real
``app.scheduler`` heartbeat, SWEEP_SECONDS=5) then fire them. Lateness = when the engine fired a
timer (its ``timer_fired`` audit event) minus its due time. Reported: p50, p99, max, and counts of
duplicates and missed timers (both must be 0). A run ends one sweep after every timer has fired
(a late duplicate would still show), or at its deadline. QUICK: 100 timers over 2 s, SQLite, one
sweeper with a 1 s sweep (so QUICK stays under a minute; lateness then reflects that sweep).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.common import fresh_database, log, percentile

ROOT = Path(__file__).resolve().parents[1]
TIMER_FIXTURES = ROOT / "tests" / "fixtures" / "timers"

SWEEPER = textwrap.dedent('''
    import sys, time
    from app import create_app
    from app.scheduler import run_blocking
    app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "bench", "SWEEP_SECONDS": float(sys.argv[2]),
                      "TASK_REMINDER_HOURS": 0})
    run_blocking(app)
''')


def _seed(url: str, count: int, window: float, lead: float = 3.0) -> tuple[datetime, datetime]:
    """Start ``count`` instances whose timers fall due evenly over ``window`` seconds from ``lead``
    seconds after now (time enough to seed them and start the sweepers)."""
    from app import create_app
    from app.clock import FrozenClock

    first_due = datetime.now(timezone.utc) + timedelta(seconds=lead)
    clock = FrozenClock(first_due - timedelta(hours=1))
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"}, clock=clock)
    services = app.extensions["processdesk"].services()
    owner = services.users.create_user("olga", "password-1234", roles=["process_owner"])
    starter = services.users.create_user("rita", "password-1234", roles=["requester"])
    services.session.commit()
    services.definitions.deploy(owner, [(p.name, p.read_bytes()) for p in sorted(TIMER_FIXTURES.glob("timer_flow.bpmn"))])
    services.session.commit()
    step = window / max(1, count - 1)
    for i in range(count):
        clock.set(first_due - timedelta(hours=1) + timedelta(seconds=i * step))
        services.instances.start_process(starter, "timer_flow", {"wait_for": "PT1H"})
        if i % 100 == 99:
            services.session.commit()
    services.session.commit()
    services.session.close()
    app.extensions["processdesk"].db_engine.dispose()
    return first_due, first_due + timedelta(seconds=window)


def _collect(url: str, count: int) -> dict[str, Any]:
    from sqlalchemy import create_engine, select

    from app.models import AuditEvent
    from app.models.base import Base  # noqa: F401 - mapper configuration

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.instance_id, AuditEvent.occurred_at, AuditEvent.payload)
                            .where(AuditEvent.event_type == "timer_fired")).all()
    engine.dispose()
    fired: dict[int, list[float]] = {}
    for instance_id, occurred_at, payload in rows:
        if payload.get("bpmn_id") != "wait":
            continue
        occurred = occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=timezone.utc)
        due = datetime.fromisoformat(payload["due_at"])
        fired.setdefault(instance_id, []).append((occurred - due).total_seconds())
    lateness = [values[0] for values in fired.values()]
    return {
        "timers": count,
        "fired": len(fired),
        "duplicates": sum(len(v) - 1 for v in fired.values()),
        "missed": count - len(fired),
        "p50_s": percentile(lateness, 50),
        "p99_s": percentile(lateness, 99),
        "max_s": max(lateness) if lateness else None,
    }


def measure(kind: str, sweepers: int, count: int, sweep_seconds: float = 5.0, window: float = 10.0,
            lead: float = 3.0) -> dict[str, Any]:
    with fresh_database(kind, f"timers{sweepers}") as url:
        started = time.monotonic()
        first_due, last_due = _seed(url, count, window, lead)
        log(f"timers: {kind}, {count} timers seeded in {time.monotonic() - started:.1f} s; {sweepers} sweeper(s)")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-c", SWEEPER, url, str(sweep_seconds)], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(sweepers)]
        try:
            # everything is due at last_due; allow two more sweeps plus the work itself. Once
            # every timer has fired, one more sweep (and a second) still runs, so a late
            # duplicate would be counted; then the run ends early.
            deadline = last_due + timedelta(seconds=2 * sweep_seconds + 10 + count / 50)
            checked = time.monotonic()
            while datetime.now(timezone.utc) < deadline:
                time.sleep(0.5)
                if all(p.poll() is not None for p in procs):
                    break
                if datetime.now(timezone.utc) > last_due and time.monotonic() - checked >= 1.0:
                    checked = time.monotonic()
                    if _collect(url, count)["fired"] == count:
                        deadline = min(deadline, datetime.now(timezone.utc) + timedelta(seconds=sweep_seconds + 1))
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        result = _collect(url, count)
        result.update({"database": kind, "sweepers": sweepers, "sweep_seconds": sweep_seconds})
        return result


def run(quick: bool, kinds: list[str]) -> list[dict[str, Any]]:
    count, window, sweep, lead = (100, 2.0, 1.0, 2.0) if quick else (1000, 10.0, 5.0, 3.0)
    plans = [(kinds[0], 1)] if quick else [(kind, n) for kind in kinds for n in (1, 2)]
    return [measure(kind, n, count, sweep_seconds=sweep, window=window, lead=lead) for kind, n in plans]
