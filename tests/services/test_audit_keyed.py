"""The keyed audit chain against someone who can write to the database but has no key.

Such a person can edit, insert or delete events and recompute every later hash and the head row,
with plain SHA-256 or with a key of their own; none of it may verify under the desk's key. Chains
written before keyed sealing are sealed by an explicit, audited ``reseal``, which refuses a chain
that does not verify as it claims to be sealed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from app.clock import FrozenClock
from app.config import load_config
from app.errors import Conflict
from app.models import AuditEvent, AuditHead
from app.services.audit import (
    CHAIN_RESEALED_EVENT,
    CONTENT_CHANGED,
    GENESIS_HASH,
    HEAD_ALTERED,
    HEAD_MISSING,
    KEYED_BEFORE,
    UNKEYED,
    UNKEYED_HASH,
    WRONG_KEY,
    AuditKey,
    AuditLog,
    _fields,
    audit_key,
    unkeyed_digest,
)
from tests.conftest import TEST_CONFIG, TEST_PASSWORD, joined_app
from tests.services.test_audit_chain import _activity

EVENTS = AuditEvent.__table__
HEAD = AuditHead.__table__
OTHER_KEY = AuditKey.from_text("someone-elses-audit-key-0123456789abcdef")




def _stored(session: Session) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(select(EVENTS).order_by(EVENTS.c.seq))]


def _head(session: Session) -> dict[str, Any]:
    return dict(session.execute(select(HEAD).where(HEAD.c.id == 1)).one()._mapping)


def _rehash(session: Session, from_seq: int, digest: Callable[[str, dict[str, Any]], str], *,
            edit: dict[str, Any] | None = None, head: dict[str, Any] | None = None) -> None:
    """What someone with write access can do: edit event ``from_seq`` (optional), recompute its hash
    and every later one with ``digest``, and move the head to the new tip (plus ``head`` values)."""
    rows = _stored(session)
    prev = GENESIS_HASH if from_seq == 1 else rows[from_seq - 2]["hash"]
    for row in rows[from_seq - 1:]:
        if row["seq"] == from_seq and edit:
            row.update(edit)
        fields = _fields(row["seq"], row["occurred_at"], row["event_type"], row["actor_id"], row["actor"],
                         row["instance_id"], row["task_id"], row["payload"])
        new_hash = digest(prev, fields)
        session.execute(update(EVENTS).where(EVENTS.c.id == row["id"]).values(
            **(edit if row["seq"] == from_seq and edit else {}), prev_hash=prev, hash=new_hash))
        prev = new_hash
    session.execute(update(HEAD).where(HEAD.c.id == 1).values(last_hash=prev, **(head or {})))
    session.expire_all()


def _make_legacy(session: Session) -> None:
    """The chain as a database written before migration 0018 holds it: plain SHA-256, no key id,
    no seal."""
    _rehash(session, 1, unkeyed_digest, head={"key_id": None, "seal": None})
    session.commit()


def _second_app(database_url: str, connection: Connection, clock: FrozenClock, **config: Any) -> Any:
    """Another desk process on the same database (and the test's transaction), configured differently."""
    return joined_app(database_url, connection, clock, **config)


# -- the key --------------------------------------------------------------------------------------


def test_the_desk_seals_with_its_configured_key_derived_from_the_secret_key(app, services, users):
    expected = hmac.new(TEST_CONFIG["SECRET_KEY"].encode(), b"processdesk audit chain v1", hashlib.sha256).digest()
    assert services.audit.key == AuditKey(expected) == audit_key(app.config)
    # not the secret key itself: a cookie's or a token's signature says nothing about it
    assert services.audit.key != AuditKey.from_text(TEST_CONFIG["SECRET_KEY"])
    _activity(services, users)
    rows = _stored(services.session)
    prev = GENESIS_HASH
    for row in rows:
        fields = _fields(row["seq"], row["occurred_at"], row["event_type"], row["actor_id"], row["actor"],
                         row["instance_id"], row["task_id"], row["payload"])
        assert row["hash"] == hmac.new(expected, (prev + "\n" + _canonical(fields)).encode(), hashlib.sha256).hexdigest()
        assert row["hash"] != unkeyed_digest(prev, fields)
        prev = row["hash"]
    head = _head(services.session)
    assert head["key_id"] == hmac.new(expected, b"processdesk audit key id", hashlib.sha256).hexdigest()
    assert head["seal"] == services.audit.key.head_seal(rows[-1]["seq"], rows[-1]["hash"])
    assert expected.hex() not in repr(services.audit.key) and head["key_id"] != expected.hex()
    assert services.audit.verify().ok


def _canonical(fields: dict[str, Any]) -> str:
    import json

    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def test_the_audit_key_setting_overrides_the_derived_one_and_a_short_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCESSDESK_AUDIT_KEY", "an-audit-key-from-the-environment-0123")
    config = load_config({"SECRET_KEY": "s" * 40}, str(tmp_path))
    assert config["AUDIT_KEY"] == "an-audit-key-from-the-environment-0123"
    assert audit_key(config) == AuditKey.from_text("an-audit-key-from-the-environment-0123")
    assert audit_key({"SECRET_KEY": "s" * 40}) == AuditKey.derived_from_secret_key("s" * 40)
    assert audit_key({"SECRET_KEY": "s" * 40}) != audit_key({"SECRET_KEY": "t" * 40})
    monkeypatch.setenv("PROCESSDESK_AUDIT_KEY", "too-short")
    with pytest.raises(ValueError, match="AUDIT_KEY"):
        load_config({"SECRET_KEY": "s" * 40}, str(tmp_path))


# -- tampering by someone without the key ---------------------------------------------------------


def test_an_edit_rehashed_with_plain_sha256_is_caught_at_the_edited_event(services, users):
    _activity(services, users)
    victim = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_completed")).one()
    seq, event_id = victim.seq, victim.id
    _rehash(services.session, seq, unkeyed_digest, edit={"payload": {**victim.payload, "data": {"title": "forged"}}})
    report = services.audit.verify()
    assert not report.ok and (report.first_broken_seq, report.first_broken_id) == (seq, event_id)
    assert report.reason == UNKEYED_HASH and report.checked == seq - 1


def test_an_edit_rehashed_with_another_key_and_a_new_head_is_caught_at_the_edited_event(services, users):
    _activity(services, users)
    victim = services.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()[2]
    seq = victim.seq
    last = _stored(services.session)[-1]["seq"]
    _rehash(services.session, seq, OTHER_KEY.digest, edit={"actor": "mallory"},
            head={"key_id": OTHER_KEY.key_id})
    services.session.execute(update(HEAD).where(HEAD.c.id == 1).values(
        seal=OTHER_KEY.head_seal(last, _head(services.session)["last_hash"])))
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == seq and report.reason == CONTENT_CHANGED


def test_inserting_an_event_and_rehashing_the_rest_is_caught(services, users):
    _activity(services, users)
    rows = _stored(services.session)
    # shift the tail up by one and forge an event into the gap, then rehash from there (no key)
    for row in reversed(rows[2:]):
        services.session.execute(update(EVENTS).where(EVENTS.c.id == row["id"]).values(seq=row["seq"] + 1))
    forged = {k: v for k, v in rows[2].items() if k != "id"}
    services.session.execute(EVENTS.insert().values(**{**forged, "actor": "mallory", "event_type": "forged"}))
    services.session.execute(update(HEAD).where(HEAD.c.id == 1).values(last_seq=rows[-1]["seq"] + 1))
    _rehash(services.session, rows[2]["seq"], unkeyed_digest)
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == rows[2]["seq"] and report.reason == UNKEYED_HASH


def test_cutting_off_the_tail_and_moving_the_head_back_is_caught(services, users):
    _activity(services, users)
    rows = _stored(services.session)
    keep = rows[:-2]
    services.session.execute(delete(EVENTS).where(EVENTS.c.seq > keep[-1]["seq"]))
    services.session.execute(update(HEAD).where(HEAD.c.id == 1).values(
        last_seq=keep[-1]["seq"], last_hash=keep[-1]["hash"], last_event_id=keep[-1]["id"]))
    services.session.expire_all()
    report = services.audit.verify()
    assert not report.ok and report.reason == HEAD_ALTERED and report.checked == len(keep)
    # a seal made without the key does not help either
    services.session.execute(update(HEAD).where(HEAD.c.id == 1).values(
        seal=OTHER_KEY.head_seal(keep[-1]["seq"], keep[-1]["hash"])))
    assert services.audit.verify().reason == HEAD_ALTERED


def test_no_flag_in_the_database_makes_unkeyed_hashes_verify(services, users):
    """The downgrade: rewrite the whole chain as an old unkeyed one (no key id, no seal). It is
    reported, never intact, and the desk keeps appending sealed events after it."""
    _activity(services, users)
    _make_legacy(services.session)
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == 1 and report.reason == UNKEYED_HASH
    services.audit.record("probe", None)
    services.session.commit()
    assert services.audit.verify().reason == UNKEYED_HASH


# -- another key ----------------------------------------------------------------------------------


def test_a_chain_sealed_with_another_key_is_reported_as_such(services, users, clock):
    _activity(services, users)
    other = AuditLog(services.session, clock, AuditKey.from_text("the-next-audit-key-after-rotation-000"))
    report = other.verify()
    assert not report.ok and report.wrong_key and report.reason == WRONG_KEY
    assert report.sealed_with == services.audit.key.key_id and report.key_id == other.key.key_id
    assert services.audit.verify().ok


def test_a_changed_secret_key_is_reported_as_another_key_and_rotated_by_reseal(
        app, services, users, database_url, connection, clock, monkeypatch):
    _activity(services, users)
    old_key_id = services.audit.key.key_id
    moved = _second_app(database_url, connection, clock, SECRET_KEY="a-new-secret-key-after-a-leak-0123456789")
    runner = moved.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "ANOTHER KEY" in result.output and old_key_id[:16] in result.output
    # the moved desk keeps working; its new events do not make the old chain look like its own
    with moved.app_context():
        new = moved.extensions["processdesk"].services()
        new.audit.record("after_the_change", None)
        new.session.commit()
        assert new.audit.verify().wrong_key
    # rotation: the old SECRET_KEY given by the operator
    monkeypatch.setenv("OLD_SECRET", TEST_CONFIG["SECRET_KEY"])
    done = runner.invoke(args=["audit", "reseal", "--old-secret-key-env", "OLD_SECRET", "--by", "ops"])
    assert done.exit_code == 0, done.output
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    with moved.app_context():
        new = moved.extensions["processdesk"].services()
        last = new.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
        assert (last.event_type, last.actor) == (CHAIN_RESEALED_EVENT, "cli:ops")
        assert last.payload["source"] == old_key_id and last.payload["key_id"] == new.audit.key.key_id
    # and the old desk's key no longer verifies it
    services.session.expire_all()
    assert services.audit.verify().wrong_key


def test_reseal_with_a_wrong_old_key_changes_nothing(services, users, clock):
    _activity(services, users)
    before = _stored(services.session)
    rotated = AuditLog(services.session, clock, AuditKey.from_text("the-next-audit-key-after-rotation-000"))
    with pytest.raises(Conflict) as refused:
        rotated.reseal("cli:ops", OTHER_KEY)
    services.session.rollback()
    assert refused.value.details["seq"] == 1 and refused.value.details["reason"] == CONTENT_CHANGED
    assert _stored(services.session) == before and services.audit.verify().ok


# -- resealing a chain written before keyed sealing -----------------------------------------------


def test_reseal_seals_a_legacy_chain_and_is_itself_audited(services, users):
    _activity(services, users)
    _make_legacy(services.session)
    # the desk kept running after the upgrade: sealed events continue the unkeyed ones
    services.audit.record("after_upgrade", None, actor_name="bot")
    services.session.commit()
    before = _stored(services.session)
    report = services.audit.reseal("cli:ops", UNKEYED)
    services.session.commit()
    assert (report.events, report.source, report.already) == (len(before), UNKEYED, False)
    after = _stored(services.session)
    assert len(after) == len(before) + 1
    assert [(r["seq"], r["payload"]) for r in after[:-1]] == [(r["seq"], r["payload"]) for r in before]
    last = after[-1]
    assert (last["event_type"], last["actor"]) == (CHAIN_RESEALED_EVENT, "cli:ops")
    assert last["payload"] == {"source": UNKEYED, "key_id": services.audit.key.key_id, "events": len(before),
                               "previous_tip": before[-1]["hash"], "tip": after[-2]["hash"]}
    assert last["prev_hash"] == after[-2]["hash"]
    assert _head(services.session)["key_id"] == services.audit.key.key_id
    assert services.audit.verify().ok
    # once sealed, a second run has nothing to do and records nothing
    again = services.audit.reseal("cli:ops", UNKEYED)
    services.session.commit()
    assert again.already and len(_stored(services.session)) == len(after)


def test_reseal_refuses_a_broken_legacy_chain_and_changes_nothing(services, users):
    _activity(services, users)
    _make_legacy(services.session)
    victim = _stored(services.session)[3]
    services.session.execute(update(EVENTS).where(EVENTS.c.id == victim["id"]).values(actor="mallory"))
    services.session.commit()
    before = _stored(services.session)
    with pytest.raises(Conflict) as refused:
        services.audit.reseal("cli:ops", UNKEYED)
    services.session.rollback()
    assert refused.value.details == {"seq": victim["seq"], "event_id": victim["id"], "reason": CONTENT_CHANGED,
                                     "source": UNKEYED}
    assert "nothing was resealed" in refused.value.message
    assert _stored(services.session) == before
    assert _head(services.session)["key_id"] is None


def test_reseal_legacy_refuses_unkeyed_events_after_sealed_ones(services, users):
    """``--legacy`` accepts an unkeyed prefix only: a sealed chain rewritten unkeyed from the middle
    on (no key needed) is refused, so the legacy path cannot launder a forgery."""
    _activity(services, users)
    victim = _stored(services.session)[4]
    _rehash(services.session, victim["seq"], unkeyed_digest, edit={"actor": "mallory"})
    services.session.commit()
    with pytest.raises(Conflict) as refused:
        services.audit.reseal("cli:ops", UNKEYED)
    services.session.rollback()
    assert refused.value.details["seq"] == victim["seq"] and refused.value.details["reason"] == UNKEYED_HASH


def test_flask_audit_reseal_legacy_from_the_command_line(app, services, users):
    _activity(services, users)
    _make_legacy(services.session)
    runner = app.test_cli_runner()
    checked = runner.invoke(args=["audit", "verify"])
    assert checked.exit_code == 1 and "seq=1" in checked.output and "reseal --legacy" in checked.output
    assert runner.invoke(args=["audit", "reseal"]).exit_code == 2  # which scheme: the operator says
    assert runner.invoke(args=["audit", "reseal", "--legacy"], input="n\n").exit_code == 1  # not confirmed
    assert services.audit.verify().reason == UNKEYED_HASH
    done = runner.invoke(args=["audit", "reseal", "--legacy", "--by", "ops"], input="y\n")
    assert done.exit_code == 0 and "resealed" in done.output, done.output
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    nothing = runner.invoke(args=["audit", "reseal", "--legacy", "--yes"])
    assert nothing.exit_code == 0 and "nothing to reseal" in nothing.output


def test_flask_audit_reseal_refuses_a_broken_legacy_chain(app, services, users):
    _activity(services, users)
    _make_legacy(services.session)
    services.session.execute(delete(EVENTS).where(EVENTS.c.seq == 2))
    services.session.commit()
    before = _stored(services.session)
    result = app.test_cli_runner().invoke(args=["audit", "reseal", "--legacy", "--yes"])
    assert result.exit_code == 1 and "seq=2" in result.output and "nothing was resealed" in result.output
    services.session.expire_all()
    assert _stored(services.session) == before


# -- the chain-check page -------------------------------------------------------------------------


def test_the_chain_check_page_says_sealed_with_another_key(services, users, database_url, connection, clock):
    from tests.web.conftest import WebClient

    _activity(services, users)
    moved = _second_app(database_url, connection, clock, AUDIT_KEY="a-separately-configured-audit-key-0001")
    web = WebClient(moved.test_client())
    web.login("aude", TEST_PASSWORD)
    web.post("/audit/chain-check")
    page = web.get("/audit").get_data(as_text=True)
    assert "The audit chain is sealed with another key" in page
    assert "Sealed with another key" in page and services.audit.key.key_id[:16] in page


# -- what the review found: laundering through --legacy, a missing or emptied head, a key id swapped --


def test_reseal_legacy_refuses_a_keyed_chain_rewritten_without_the_key(services, users):
    """Rewriting a sealed chain with plain SHA-256 but leaving the head's key id: the head says the
    chain was keyed, and no event sealed with the key follows, so --legacy must not launder it."""
    _activity(services, users)
    victim = _stored(services.session)[2]
    _rehash(services.session, 1, unkeyed_digest)  # the head keeps its key id (and stale seal)
    services.session.execute(update(EVENTS).where(EVENTS.c.id == victim["id"]).values(actor="mallory"))
    _rehash(services.session, 1, unkeyed_digest)
    services.session.commit()
    report = services.audit.verify()
    assert report.reason == UNKEYED_HASH and report.sealed_with == services.audit.key.key_id
    with pytest.raises(Conflict) as refused:
        services.audit.reseal("cli:ops", UNKEYED)
    services.session.rollback()
    assert refused.value.details["reason"] == KEYED_BEFORE
    assert not services.audit.verify().ok


def test_a_missing_head_or_an_emptied_keyed_chain_is_not_intact(services, users):
    _activity(services, users)
    services.session.execute(delete(HEAD))
    services.session.expire_all()
    report = services.audit.verify()
    assert not report.ok and report.reason == HEAD_MISSING
    services.session.rollback()
    # every event deleted and the head set back to its start, key id kept: not a fresh desk
    services.session.execute(delete(EVENTS))
    services.session.execute(update(HEAD).where(HEAD.c.id == 1).values(last_seq=0, last_hash=GENESIS_HASH,
                                                                       last_event_id=None))
    services.session.expire_all()
    report = services.audit.verify()
    assert not report.ok and report.reason == HEAD_ALTERED and report.checked == 0


def test_an_edited_first_event_under_a_swapped_key_id_is_an_edit_not_another_key(services, users):
    _activity(services, users)
    first = _stored(services.session)[0]
    services.session.execute(update(EVENTS).where(EVENTS.c.id == first["id"]).values(actor="mallory"))
    services.session.execute(update(HEAD).where(HEAD.c.id == 1).values(key_id="f" * 64))
    services.session.expire_all()
    report = services.audit.verify()
    assert not report.ok and report.reason == CONTENT_CHANGED and not report.wrong_key
