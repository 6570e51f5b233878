"""Several sweeper processes over hundreds of due timers: every timer fires exactly once, and a
sweeper killed while holding claims loses nothing (its leases run out, others take over)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import create_app
from app.clock import FrozenClock
from app.models import AuditEvent, ProcessInstance
from tests.conftest import FIXTURES, TEST_CONFIG, drop_fresh_database, fresh_database_url

TIMERS = 200
ROOT = Path(__file__).resolve().parents[2]

SWEEPER = textwrap.dedent('''
    import sys, time
    from app import create_app
    from app.scheduler import sweep_once
    app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "test-secret-key-not-for-production", "TIMER_LEASE_SECONDS": 3})
    name, mode = sys.argv[2], sys.argv[3]
    if mode == "claim-and-hang":
        from app.services.timers import TimerService
        with app.app_context():
            services = app.extensions["processdesk"].services()
            claimed = TimerService(services, name, 3).claim_due(limit=40)
            print("claimed", len(claimed), flush=True)
            time.sleep(600)
    idle, deadline = 0, time.monotonic() + 90
    while idle < 4 and time.monotonic() < deadline:
        report = sweep_once(app, name, limit=25)
        idle = idle + 1 if report.claimed == 0 else 0
        if report.claimed == 0:
            time.sleep(1.0)
    print("done", flush=True)
''')


@pytest.mark.slow
def test_three_sweepers_fire_each_of_200_timers_exactly_once(tmp_path):
    url = fresh_database_url(tmp_path, "sweepers")
    started_at = datetime.now(timezone.utc) - timedelta(hours=2)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url}, clock=FrozenClock(started_at))
    svc = app.extensions["processdesk"].services()
    olga = svc.users.create_user("olga", "password-1234", roles=["process_owner"])
    rita = svc.users.create_user("rita", "password-1234", roles=["requester"])
    svc.session.commit()
    svc.definitions.deploy(olga, [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "timers").iterdir())])
    svc.session.commit()
    for _ in range(TIMERS):
        svc.instances.start_process(rita, "timer_flow", {"wait_for": "PT1H"})
    svc.session.commit()
    svc.session.close()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    hanging = subprocess.Popen([sys.executable, "-c", SWEEPER, url, "doomed", "claim-and-hang"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, text=True)
    assert hanging.stdout is not None
    line = hanging.stdout.readline()
    hanging.kill()  # killed while holding its claims
    hanging.wait(timeout=10)
    assert line.startswith("claimed") and int(line.split()[1]) > 0

    sweepers = [subprocess.Popen([sys.executable, "-c", SWEEPER, url, f"s{i}", "sweep"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    outputs = [p.communicate(timeout=150) for p in sweepers]
    assert all(p.returncode == 0 for p in sweepers), outputs

    svc = app.extensions["processdesk"].services()
    fired = svc.session.execute(
        select(AuditEvent.instance_id, func.count()).where(AuditEvent.event_type == "timer_fired").group_by(AuditEvent.instance_id)
    ).all()
    duplicates = [i for i, n in fired if n != 1]
    instances = svc.session.scalars(select(ProcessInstance)).all()
    missed = [i.id for i in instances if i.data.get("fired_count") != 1]
    claims_left = [i.id for i in instances if i.timer_claimed_by is not None]
    report = svc.audit.verify()
    svc.session.close()
    app.extensions["processdesk"].db_engine.dispose()
    drop_fresh_database(url)  # a PostgreSQL database of its own, left behind otherwise
    assert len(instances) == TIMERS
    assert (len(fired), duplicates, missed, claims_left) == (TIMERS, [], [], [])
    assert report.ok
