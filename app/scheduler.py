"""APScheduler wiring: one periodic sweep, and the daily retention purge (asked for every ten
minutes, run by one sweeper a day); each run is app context -> one service -> commits.

The job table is tiny on purpose: due times live in our own tables (see app.services.timers),
APScheduler only provides the heartbeat. `make run` runs the sweep inside the web process;
deployments with several web workers run `flask scheduler run` as a separate process (or
several: claims make every timer fire once).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

log = logging.getLogger(__name__)


def sweeper_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sweep_once(app: Flask, sweeper_id: str | None = None, limit: int = 100) -> Any:
    """One sweep in its own app context and sessions; returns the SweepReport."""
    from app.services.timers import TimerService

    with app.app_context():
        services = app.extensions["processdesk"].services()
        try:
            name = sweeper_id or sweeper_name()
            timers = TimerService(services, name, int(app.config["TIMER_LEASE_SECONDS"]))
            report = timers.sweep(limit)
            # A backlog (many timers due at once) is worked off now, not one batch per interval;
            # bounded so the other duties of the sweep still run.
            budget = time.monotonic() + max(float(app.config["SWEEP_SECONDS"]), 1.0) * 6
            while report.claimed >= limit and time.monotonic() < budget:
                more = timers.sweep(limit)
                report.claimed += more.claimed
                report.fired += more.fired
                report.conflicts += more.conflicts
                report.failures += more.failures
                if more.claimed < limit:
                    break
            if report.claimed:
                log.info("timer sweep: claimed %s, fired %s, conflicts %s", report.claimed, report.fired, report.conflicts)
            from app.services.reminders import ReminderService

            ReminderService(services).sweep()
            from app.services.warranty import WarrantyService

            try:
                services.away.sweep()
            except Exception:  # noqa: BLE001 - the rest of the sweep still runs
                log.exception("out-of-office hand-over failed")
                services.session.rollback()

            try:
                WarrantyService(services).sweep()
            except Exception:  # noqa: BLE001 - the SLA clocks and the outbox below still run
                log.exception("warranty notices failed")
                services.session.rollback()
            try:
                started = services.recurring.sweep()
                if started:
                    log.info("recurring requests: started %s", started)
            except Exception:  # noqa: BLE001 - the SLA clocks and the outbox below still run
                log.exception("recurring requests failed")
                services.session.rollback()
            services.sla.sweep()
            delivered = services.notifications.sweep(name)
            if delivered.claimed:
                log.info("outbox: sent %s, retrying %s, dead %s, deferred %s, released %s", delivered.sent,
                         delivered.retried, delivered.dead, delivered.deferred, delivered.released)
            return report
        finally:
            services.session.close()


#: How often each sweeper asks whether today's retention purge is still to run (one of them runs it).
RETENTION_CHECK_SECONDS = 600.0


def retention_once(app: Flask, sweeper_id: str | None = None) -> Any:
    """Run the daily retention purge if no sweeper ran it today (app.services.retention); returns its
    PurgeReport, or None when it was not this sweeper's to run. A job of its own, so that a long
    first purge never holds up timers and mail."""
    with app.app_context():
        services = app.extensions["processdesk"].services()
        try:
            report = services.retention.run_daily(sweeper_id or sweeper_name())
            if report is not None:
                log.info("retention: deleted %s rows (%s)", report.total,
                         ", ".join(f"{table} {count}" for table, count in report.deleted.items() if count))
            return report
        finally:
            services.session.close()


def _add_jobs(scheduler: Any, app: Flask) -> None:
    sweeper_id = sweeper_name()
    scheduler.add_job(sweep_once, "interval", seconds=float(app.config["SWEEP_SECONDS"]), args=[app, sweeper_id],
                      id="timer_sweep", max_instances=1, coalesce=True, replace_existing=True)
    scheduler.add_job(retention_once, "interval", seconds=RETENTION_CHECK_SECONDS, args=[app, sweeper_id],
                      id="retention", max_instances=1, coalesce=True, replace_existing=True)


def start_background(app: Flask) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
    _add_jobs(scheduler, app)
    scheduler.start()
    app.extensions["processdesk_scheduler"] = scheduler
    return scheduler


def run_blocking(app: Flask) -> None:
    scheduler = BlockingScheduler(timezone="UTC")
    _add_jobs(scheduler, app)
    scheduler.start()
