"""Firing BPMN timers exactly once, with any number of sweepers.

Due times live in ``process_instance.next_timer_at`` (indexed), never in APScheduler's job store.
A sweep claims due instances with a conditional UPDATE (PostgreSQL: the candidates are read
``FOR UPDATE SKIP LOCKED``), commits the claims, then fires each instance's timers in its own
transaction. The instance's version column makes a concurrent change lose instead of firing a
timer twice; a claim carries a lease, so a sweeper killed mid-work only delays its instances
until the lease runs out.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from app.db import begin_write
from app.errors import ProcessdeskError
from app.models import InstanceStatus, ProcessInstance

if TYPE_CHECKING:
    from . import Services

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    claimed: int = 0
    fired: int = 0
    instances: list[int] = field(default_factory=list)
    conflicts: int = 0
    failures: int = 0


class TimerService:
    def __init__(self, services: Services, sweeper_id: str | None = None, lease_seconds: int = 120) -> None:
        self.services = services
        self.sweeper_id = sweeper_id or f"sweeper-{uuid.uuid4().hex[:12]}"
        self.lease = timedelta(seconds=lease_seconds)

    def claim_due(self, limit: int = 100) -> list[int]:
        """Claim up to ``limit`` instances with due timers and commit the claims."""
        session = self.services.session
        begin_write(session)
        now = self.services.runtime.clock.now()
        free = or_(ProcessInstance.timer_claimed_until.is_(None), ProcessInstance.timer_claimed_until < now)
        # Strictly earlier: SpiffWorkflow fires a timer once its due time is in the past.
        due = and_(ProcessInstance.status == InstanceStatus.RUNNING, ProcessInstance.next_timer_at < now, free)
        query = select(ProcessInstance.id).where(due).order_by(ProcessInstance.next_timer_at).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = list(session.scalars(query))
        claimed: list[int] = []
        for instance_id in candidates:
            # Conditional UPDATE: only one sweeper's claim can match a free row. It does not bump
            # the instance version: a claim is not a change of the instance.
            result = session.execute(
                update(ProcessInstance)
                .where(ProcessInstance.id == instance_id, due)
                .values(timer_claimed_until=now + self.lease, timer_claimed_by=self.sweeper_id)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(instance_id)
        session.commit()
        return claimed

    def fire(self, instance_id: int) -> int:
        """Fire the due timers of one claimed instance in its own transaction; return how many fired."""
        session = self.services.session
        begin_write(session)
        instance = session.get(ProcessInstance, instance_id, populate_existing=True)
        if instance is None or instance.timer_claimed_by != self.sweeper_id:
            session.rollback()
            return 0
        fired: list[dict[str, object]] = []
        if instance.status == InstanceStatus.RUNNING:
            run = self.services.runner.load(instance, None)
            fired = run.fire_due_timers()
            for timer in fired:
                self.services.audit.record("timer_fired", None, instance_id=instance.id, payload=timer, actor_name="scheduler")
            self.services.runner.save(instance, run, None)
        instance.timer_claimed_until = None
        instance.timer_claimed_by = None
        session.commit()
        return len(fired)

    def release(self, instance_id: int) -> None:
        """Give a claim back early (best effort; the lease expires anyway)."""
        session = self.services.session
        try:
            session.execute(
                update(ProcessInstance)
                .where(ProcessInstance.id == instance_id, ProcessInstance.timer_claimed_by == self.sweeper_id)
                .values(timer_claimed_until=None, timer_claimed_by=None)
                .execution_options(synchronize_session=False)
            )
            session.commit()
        except OperationalError:
            session.rollback()

    def sweep(self, limit: int = 100) -> SweepReport:
        """Claim what is due and fire it, each instance in its own transaction."""
        report = SweepReport()
        try:
            claimed = self.claim_due(limit)
        except OperationalError as err:
            self.services.session.rollback()
            log.info("timer sweep: could not claim now: %s", err)
            return report
        report.claimed = len(claimed)
        for instance_id in claimed:
            try:
                report.fired += self.fire(instance_id)
                report.instances.append(instance_id)
            except (StaleDataError, IntegrityError, OperationalError) as err:
                # Someone changed the instance meanwhile: give the claim back, the next sweep retries.
                self.services.session.rollback()
                report.conflicts += 1
                log.info("timer sweep: instance %s changed or busy: %s", instance_id, err)
                self.release(instance_id)
            except ProcessdeskError as err:
                self.services.session.rollback()
                report.failures += 1
                log.warning("timer sweep: instance %s failed: %s", instance_id, err.message)
        return report
