"""The audit chain: hashes link every event; editing, deleting or reordering one is detected.

(Forging with the key's help is out of reach here: tests/services/test_audit_keyed.py covers what
someone with only database access can do.)"""

from __future__ import annotations

from sqlalchemy import select, text, update

from app.models import AuditEvent, AuditHead
from app.services.audit import GENESIS_HASH, UNKEYED_HASH, canonical_json, unkeyed_digest
from tests.conftest import fixture_files


def _activity(services, users):
    services.definitions.deploy(users["olga"], fixture_files())
    services.session.commit()
    instance = services.instances.start_process(users["rita"], "simple_request", {"note": "first"})
    services.session.commit()
    task = services.instances.open_tasks(instance)[0]
    services.tasks.complete(users["rita"], task.id, {"title": "hello", "quantity": 2})
    services.session.commit()
    return instance


def test_chain_links_every_event_in_order(services, users):
    _activity(services, users)
    events = services.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    head = services.session.get(AuditHead, 1)
    assert head.last_seq == events[-1].seq and head.last_hash == events[-1].hash
    assert services.audit.verify().ok


def test_editing_one_stored_event_is_caught(services, users):
    _activity(services, users)
    target = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_completed")).one()
    # Tamper underneath the ORM, as someone with database access would.
    services.session.execute(
        update(AuditEvent).where(AuditEvent.id == target.id).values(payload={**target.payload, "data": {"title": "forged", "quantity": 2}})
    )
    services.session.expire_all()
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == target.seq and report.first_broken_id == target.id
    assert "hash" in report.reason


def test_deleting_an_event_is_caught(services, users):
    _activity(services, users)
    middle = services.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()[2]
    middle_id, middle_seq = middle.id, middle.seq
    services.session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": middle_id})
    services.session.expire_all()
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == middle_seq


def test_truncating_the_tail_is_caught(services, users):
    _activity(services, users)
    last = services.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    services.session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": last.id})
    services.session.expire_all()
    assert not services.audit.verify().ok


def test_rehashing_a_forged_event_without_the_key_is_caught_at_that_event(services, users):
    _activity(services, users)
    events = services.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    victim = events[1]
    fields = {"seq": victim.seq, "occurred_at": victim.occurred_at.isoformat(timespec="microseconds"),
              "event_type": victim.event_type, "actor_id": victim.actor_id, "actor": "mallory",
              "instance_id": victim.instance_id, "task_id": victim.task_id, "payload": victim.payload}
    forged = unkeyed_digest(victim.prev_hash, fields)
    services.session.execute(update(AuditEvent).where(AuditEvent.id == victim.id).values(actor="mallory", hash=forged))
    services.session.expire_all()
    report = services.audit.verify()
    # Before keyed sealing this forgery held and only the next link broke; now it fails itself.
    assert not report.ok and report.first_broken_seq == victim.seq and report.reason == UNKEYED_HASH


def test_rolled_back_work_leaves_no_event(services, users):
    services.definitions.deploy(users["olga"], fixture_files())
    services.session.commit()
    count = len(services.session.scalars(select(AuditEvent)).all())
    services.instances.start_process(users["rita"], "simple_request", {})
    services.session.rollback()
    assert len(services.session.scalars(select(AuditEvent)).all()) == count
    assert services.audit.verify().ok


def test_canonical_json_is_key_order_independent():
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_json({"a": [1, {"c": 3, "d": 2}], "b": 1})


def test_flask_audit_verify_command(app, services, users):
    _activity(services, users)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    target = services.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()[3]
    services.session.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(event_type="forged"))
    services.session.commit()
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert f"seq={target.seq}" in broken.output
