"""Firing BPMN timers exactly once, with any number of sweepers.

Due times live in ``process_instance.next_timer_at`` (indexed), never in APScheduler's job store.
A sweep claims due instances with a conditional UPDATE (PostgreSQL: the candidates are read
``FOR UPDATE SKIP LOCKED``), commits the claims, then fires each instance's timers in its own
transaction. The instance's version column makes a concurrent change lose instead of firing a
timer twice; a claim carries a lease, so a sweeper killed mid-work only delays its instances
until the lease runs out.

A poisoned instance, one whose timer path kills or hangs whatever fires it (a process crash, the
kernel's out-of-memory killer, a script stuck in one C call), must not take every sweeper down in
turn forever: each attempt to fire it counts in ``timer_attempts`` (committed before the step
runs), an attempt that ends (fired, failed with an error the sweep survives, or given back) sets
it to 0, and an instance found due after ``MAX_TIMER_ATTEMPTS`` attempts in a row that never
ended goes into error (``timers_stuck``, audited) instead of being claimed again. An admin retries it (POST /api/v1/instances/<id>/retry)
once the cause is fixed, or cancels it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from app.db import begin_write
from app.errors import ProcessdeskError
from app.models import InstanceStatus, ProcessInstance

from .instances import TIMERS_STUCK

if TYPE_CHECKING:
    from . import Services

log = logging.getLogger(__name__)

#: Claims in a row that never ended after which an instance's timers are no longer fired.
MAX_TIMER_ATTEMPTS = 3


@dataclass
class SweepReport:
    claimed: int = 0
    fired: int = 0
    instances: list[int] = field(default_factory=list)
    conflicts: int = 0
    failures: int = 0
    stuck: list[int] = field(default_factory=list)


class TimerService:
    def __init__(self, services: Services, sweeper_id: str | None = None, lease_seconds: int = 120) -> None:
        self.services = services
        self.sweeper_id = sweeper_id or f"sweeper-{uuid.uuid4().hex[:12]}"
        self.lease = timedelta(seconds=lease_seconds)

    def claim_due(self, limit: int = 100, stuck: list[int] | None = None) -> list[int]:
        """Claim up to ``limit`` instances with due timers and commit the claims. An instance
        whose last ``MAX_TIMER_ATTEMPTS`` claims never ended goes into error instead (its id is
        added to ``stuck``)."""
        session = self.services.session
        begin_write(session)
        now = self.services.runtime.clock.now()
        free = or_(ProcessInstance.timer_claimed_until.is_(None), ProcessInstance.timer_claimed_until < now)
        # Strictly earlier: SpiffWorkflow fires a timer once its due time is in the past.
        due = and_(ProcessInstance.status == InstanceStatus.RUNNING, ProcessInstance.next_timer_at < now, free)
        query = (select(ProcessInstance.id, ProcessInstance.timer_attempts).where(due)
                 .order_by(ProcessInstance.next_timer_at).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = list(session.execute(query).tuples())
        claimed: list[int] = []
        for instance_id, attempts in candidates:
            if attempts >= MAX_TIMER_ATTEMPTS:
                if self._stop(instance_id, attempts, due) and stuck is not None:
                    stuck.append(instance_id)
                continue
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

    def _stop(self, instance_id: int, attempts: int, due: ColumnElement[bool]) -> bool:
        """Put an instance whose timer claims keep dying into error, if it is still due and free
        (another sweeper may have done it). Unlike a claim this changes the instance: its version
        moves on, so a request holding the old one loses with a 409."""
        instance = self.services.session.scalar(
            select(ProcessInstance).where(ProcessInstance.id == instance_id, due,
                                          ProcessInstance.timer_attempts >= MAX_TIMER_ATTEMPTS)
            .execution_options(populate_existing=True))
        if instance is None:
            return False
        instance.status = InstanceStatus.ERROR
        instance.error = {
            "message": f"its due timers were claimed {attempts} times in a row and never fired: whatever "
                       "fired them stopped (the process crashed or was killed) or ran past its lease; fix "
                       "the cause, then retry the instance",
            "error_type": TIMERS_STUCK}
        instance.timer_attempts = 0
        instance.timer_claimed_until = None
        instance.timer_claimed_by = None
        self.services.audit.record("instance_error", None, instance_id=instance_id, payload=instance.error,
                                   actor_name="scheduler")
        log.error("timer sweep: instance %s put into error: its timers were claimed %s times and never fired",
                  instance_id, attempts)
        return True

    def fire(self, instance_id: int) -> int:
        """Fire the due timers of one claimed instance in its own transaction; return how many fired.

        The attempt is counted (``timer_attempts``, committed) before the step runs, so a sweeper
        that dies in it leaves the count behind; one that finishes sets it back to 0. Only the
        instance actually tried counts: the others a dead sweeper had claimed with it wait for the
        lease, uncounted."""
        session = self.services.session
        begin_write(session)
        session.execute(update(ProcessInstance)
                        .where(ProcessInstance.id == instance_id, ProcessInstance.timer_claimed_by == self.sweeper_id)
                        .values(timer_attempts=ProcessInstance.timer_attempts + 1)
                        .execution_options(synchronize_session=False))
        session.commit()
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
        instance.timer_attempts = 0
        session.commit()
        return len(fired)

    def release(self, instance_id: int, *, keep_claim: bool = False) -> None:
        """Count the claim as ended and give it back early (best effort; the lease expires anyway),
        or with ``keep_claim`` keep it until its lease ends, so that the instance waits that long."""
        session = self.services.session
        ended: dict[str, object] = {"timer_attempts": 0}
        if not keep_claim:
            ended.update(timer_claimed_until=None, timer_claimed_by=None)
        try:
            session.execute(
                update(ProcessInstance)
                .where(ProcessInstance.id == instance_id, ProcessInstance.timer_claimed_by == self.sweeper_id)
                .values(**ended)
                .execution_options(synchronize_session=False)
            )
            session.commit()
        except OperationalError:
            session.rollback()

    def sweep(self, limit: int = 100) -> SweepReport:
        """Claim what is due and fire it, each instance in its own transaction."""
        report = SweepReport()
        try:
            claimed = self.claim_due(limit, stuck=report.stuck)
        except (OperationalError, StaleDataError) as err:
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
            except Exception as err:  # noqa: BLE001 - one instance's failure is not the batch's
                self.services.session.rollback()
                report.failures += 1
                message = err.message if isinstance(err, ProcessdeskError) else repr(err)
                log.warning("timer sweep: instance %s failed: %s", instance_id, message,
                            exc_info=not isinstance(err, ProcessdeskError))
                # The sweep survived it: not a claim that died. The claim itself stays until its
                # lease ends, so a failing instance is tried again a lease later, not every sweep.
                self.release(instance_id, keep_claim=True)
        return report
