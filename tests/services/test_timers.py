"""The timer sweep: due timers fire once, claims lease instances, cycles repeat, killed sweepers
lose nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.errors import ValidationFailed
from app.models import AuditEvent, ProcessInstance
from app.services.timers import TimerService
from tests.conftest import FIXTURES

TIMER_FILES = [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "timers").iterdir())]


def _deploy_and_start(services, users, count=3, wait="PT1H"):
    services.definitions.deploy(users["olga"], TIMER_FILES)
    services.session.commit()
    ids = []
    for _ in range(count):
        instance = services.instances.start_process(users["rita"], "timer_flow", {"wait_for": wait})
        services.session.commit()
        ids.append(instance.id)
    return ids


def _fired(services, instance_id):
    return services.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event_type == "timer_fired", AuditEvent.instance_id == instance_id))


def test_due_timers_fire_once_and_the_instance_advances(services, users, clock):
    ids = _deploy_and_start(services, users)
    instance = services.session.get(ProcessInstance, ids[0])
    assert instance.next_timer_at == clock.now() + timedelta(hours=1)
    sweeper = TimerService(services, "s1")
    assert sweeper.sweep().claimed == 0
    clock.advance(timedelta(hours=1, seconds=1))
    report = sweeper.sweep()
    assert (report.claimed, report.fired, report.conflicts) == (3, 3, 0)
    assert sweeper.sweep().claimed == 0
    for instance_id in ids:
        instance = services.session.get(ProcessInstance, instance_id)
        assert instance.data["fired_count"] == 1
        assert [t.bpmn_id for t in services.instances.open_tasks(instance)] == ["review"]
        assert instance.timer_claimed_by is None
        assert instance.next_timer_at == clock.now() + timedelta(hours=1)  # the reminder cycle
        assert _fired(services, instance_id) == 1


def test_cycle_timer_reminds_three_times_then_stops(services, users, clock):
    [instance_id] = _deploy_and_start(services, users, count=1)
    sweeper = TimerService(services, "s1")
    clock.advance(timedelta(hours=1, seconds=1))
    sweeper.sweep()
    for _ in range(3):
        clock.advance(timedelta(hours=1, seconds=1))
        assert sweeper.sweep().fired == 1
    clock.advance(timedelta(hours=5))
    assert sweeper.sweep().claimed == 0
    assert services.session.get(ProcessInstance, instance_id).next_timer_at is None
    assert _fired(services, instance_id) == 4  # the wait, then three reminders


def test_a_claim_excludes_other_sweepers_until_its_lease_runs_out(services, users, clock):
    ids = _deploy_and_start(services, users, count=2)
    clock.advance(timedelta(hours=2))
    dead = TimerService(services, "dead-sweeper", lease_seconds=60)
    assert sorted(dead.claim_due()) == sorted(ids)  # then it dies without firing
    alive = TimerService(services, "alive", lease_seconds=60)
    assert alive.sweep().claimed == 0
    clock.advance(timedelta(seconds=61))
    report = alive.sweep()
    assert report.claimed == 2 and report.fired == 2
    assert all(_fired(services, i) == 1 for i in ids)
    # the dead sweeper coming back cannot fire what it no longer holds
    assert dead.fire(ids[0]) == 0


def test_a_concurrent_change_makes_the_sweep_retry_not_double_fire(services, users, clock):
    [instance_id] = _deploy_and_start(services, users, count=1)
    clock.advance(timedelta(hours=2))
    sweeper = TimerService(services, "s1", lease_seconds=30)
    assert sweeper.claim_due() == [instance_id]
    # someone else changes the instance (version bump) between claim and fire
    services.session.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id)
                             .values(lock_version=ProcessInstance.lock_version + 1))
    services.session.commit()
    report = sweeper.sweep()  # nothing new to claim (ours is held); fire the held one explicitly
    assert report.claimed == 0
    assert sweeper.fire(instance_id) == 1
    assert _fired(services, instance_id) == 1


def test_cancelled_instances_are_not_fired(services, users, clock):
    [instance_id] = _deploy_and_start(services, users, count=1)
    services.instances.cancel(users["rita"], instance_id)
    services.session.commit()
    clock.advance(timedelta(hours=2))
    assert TimerService(services, "s1").sweep().claimed == 0


def test_a_timer_start_event_waits_and_the_sweep_starts_the_work(services, users, clock):
    services.definitions.deploy(users["olga"], TIMER_FILES)
    services.session.commit()
    instance = services.instances.start_process(users["rita"], "timer_start_flow", {})
    services.session.commit()
    assert instance.status == "running" and instance.next_timer_at == clock.now() + timedelta(minutes=30)
    assert "done" not in instance.data
    clock.advance(timedelta(minutes=31))
    assert TimerService(services, "s1").sweep().fired == 1
    instance = services.session.get(ProcessInstance, instance.id)
    assert instance.status == "completed" and instance.data["done"] is True


def test_an_instance_whose_timer_claims_keep_dying_goes_into_error_and_a_retry_fires_it(services, users, clock,
                                                                                          monkeypatch):
    """A sweeper that dies while firing (a crash, the OOM killer, a hang past its lease) leaves
    its claim to expire; after MAX_TIMER_ATTEMPTS such attempts in a row the instance is put into
    error instead of taking the next sweeper down too. Only the instance being fired counts: the
    others the dead sweeper had claimed with it were never tried, and are fired later as usual."""
    from app.services.timers import MAX_TIMER_ATTEMPTS

    poisoned, healthy = _deploy_and_start(services, users, count=2)
    load = services.runner.load

    def dies_on_the_poisoned_one(instance, actor):
        if instance.id == poisoned:
            raise SystemExit("killed while firing")  # nothing in the sweep survives this
        return load(instance, actor)

    monkeypatch.setattr(services.runner, "load", dies_on_the_poisoned_one)
    clock.advance(timedelta(hours=2))
    for attempt in range(MAX_TIMER_ATTEMPTS):
        dying = TimerService(services, f"dies-{attempt}", lease_seconds=60)
        with pytest.raises(SystemExit):
            dying.sweep()  # it claimed both, tried the poisoned one first and died there
        services.session.rollback()
        clock.advance(timedelta(seconds=61))
    services.session.expire_all()
    attempts = {i: services.session.get(ProcessInstance, i).timer_attempts for i in (poisoned, healthy)}
    assert attempts == {poisoned: MAX_TIMER_ATTEMPTS, healthy: 0}
    survivor = TimerService(services, "survivor", lease_seconds=60)
    report = survivor.sweep()
    assert report.stuck == [poisoned] and report.instances == [healthy] and _fired(services, poisoned) == 0
    services.session.expire_all()
    instance = services.session.get(ProcessInstance, poisoned)
    assert instance.status == "error" and instance.error["error_type"] == "timers_stuck"
    assert instance.timer_claimed_by is None and instance.timer_attempts == 0
    [event] = services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "instance_error", AuditEvent.instance_id == poisoned)).all()
    assert event.actor == "scheduler" and event.payload["error_type"] == "timers_stuck"
    assert survivor.sweep().claimed == 0  # in error: no sweeper takes it again
    healthy_row = services.session.get(ProcessInstance, healthy)
    assert healthy_row.status == "running" and _fired(services, healthy) == 1 and healthy_row.timer_attempts == 0
    monkeypatch.setattr(services.runner, "load", load)

    # the cause fixed, an admin retries it: it runs again and the next sweep fires its timer
    with pytest.raises(ValidationFailed) as refused:  # nothing failed that data could correct
        services.instances.retry(users["ada"], poisoned, {"wait_for": "PT2H"})
    assert list(refused.value.details["fields"]) == ["data"]
    services.session.rollback()
    services.instances.retry(users["ada"], poisoned, None)
    services.session.commit()
    assert services.session.get(ProcessInstance, poisoned).status == "running"
    assert survivor.sweep().fired == 1 and _fired(services, poisoned) == 1
    assert services.session.get(ProcessInstance, poisoned).data["fired_count"] == 1


def test_an_unexpected_error_on_one_instance_does_not_abandon_the_rest_of_the_sweep(services, users, clock,
                                                                                    monkeypatch):
    broken, fine = _deploy_and_start(services, users, count=2)
    load = services.runner.load

    def breaks_on_one(instance, actor):
        if instance.id == broken:
            raise TypeError("a bug in a step")
        return load(instance, actor)

    monkeypatch.setattr(services.runner, "load", breaks_on_one)
    clock.advance(timedelta(hours=2))
    report = TimerService(services, "s1", lease_seconds=60).sweep()
    assert (report.failures, report.instances) == (1, [fine]) and _fired(services, fine) == 1
    services.session.expire_all()
    row = services.session.get(ProcessInstance, broken)
    # the sweeper survived it: not an attempt that died, and the claim waits out its lease
    assert row.status == "running" and row.timer_attempts == 0 and row.timer_claimed_by == "s1"
