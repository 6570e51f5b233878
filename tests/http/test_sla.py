"""SLA clocks on incidents through the API: targets per priority, first response, pending pauses,
a priority change recomputed from the start, warnings and breaches escalated by the sweep."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from app.errors import ValidationFailed
from app.models import Group, Notification, SlaClock, SlaPolicy, Ticket
from tests.conftest import sent_statements
from tests.http.desk import Desk
from tests.http.helpers import assert_error

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium", "urgency": "medium"}
HOUR = 3600.0


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def clocks(desk: Desk, number: str, who: str = "alex") -> dict[str, dict]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c for c in response.get_json()["clocks"]}


def test_p3_clocks_first_response_pause_and_resume(desk: Desk, services, clock):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    opened = clock.now()
    sla = clocks(desk, number)
    assert sla["response"]["target_seconds"] == 4 * HOUR and sla["resolution"]["target_seconds"] == 24 * HOUR
    assert sla["response"]["state"] == "running"
    assert sla["response"]["due_at"].startswith((opened + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"))

    clock.advance(timedelta(hours=1))
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    sla = clocks(desk, number)
    assert sla["response"]["state"] == "met" and sla["response"]["elapsed_seconds"] == HOUR

    clock.advance(timedelta(hours=1))
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "customer", "pending_reason": "logs"})
    clock.advance(timedelta(hours=10))
    sla = clocks(desk, number)
    assert sla["resolution"]["state"] == "paused" and sla["resolution"]["paused_seconds"] == 10 * HOUR
    assert sla["resolution"]["elapsed_seconds"] == 2 * HOUR and sla["resolution"]["due_at"] is None
    desk.complete(number, "resume_work", "nina", {"update_note": "logs received"})
    sla = clocks(desk, number)
    assert sla["resolution"]["state"] == "running"
    # 22 business hours left, counted from the resume
    assert sla["resolution"]["due_at"].startswith((clock.now() + timedelta(hours=22)).strftime("%Y-%m-%dT%H:%M"))
    kinds = [e["type"] for e in desk.history(desk.record(number)["instance_id"])]
    assert {"sla_start", "sla_stop", "sla_pause", "sla_resume"} <= set(kinds)
    services.users.create_user("rick", "password-1234", roles=["requester"])
    services.session.commit()
    assert_error(desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("rick")), 404)  # not his record


def test_priority_change_recomputes_from_the_start_and_breach_escalates(desk: Desk, services, clock):
    group = services.session.scalar(select(Group).where(Group.name == "NetworkTeam"))
    group.manager = services.users.get_by_username("cora")
    services.session.commit()
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clock.advance(timedelta(hours=3, minutes=30))
    # the response clock passed 75 % of 4 h: the sweep warns (nobody assigned yet: audited only)
    assert services.sla.sweep() == {"warnings": 1, "breaches": 0}
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}  # once
    clock.advance(timedelta(hours=1, minutes=30))  # 5 h after opening
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P1", "assignment_group": "NetworkTeam"})
    sla = clocks(desk, number)
    # P1: resolution 4 h from the record's start, not from now: already breached an hour ago
    assert sla["resolution"]["target_seconds"] == 4 * HOUR and sla["resolution"]["state"] == "breached"
    assert sla["resolution"]["breached_at"].startswith((clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    assert sla["response"]["state"] == "breached"  # P1 responds within 15 min; it took 5 h
    result = services.sla.sweep()
    assert result["breaches"] == 2
    subjects = {(n.user_id, n.subject) for n in services.session.scalars(select(Notification).where(Notification.subject.like("SLA breached%")))}
    nina, cora = services.users.get_by_username("nina"), services.users.get_by_username("cora")
    assert (nina.id, f"SLA breached: resolution of {number} (Printer offline)") in subjects
    assert (cora.id, f"SLA breached: resolution of {number} (Printer offline)") in subjects  # the group's manager
    assert services.sla.sweep()["breaches"] == 0
    types = [e["type"] for e in desk.history(desk.record(number)["instance_id"])]
    assert types.count("sla_breached") == 2 and "sla_warning" in types and "sla_priority" in types


def test_policies_can_be_replaced_with_business_hours(desk: Desk, clock):
    body = {"kind": "incident", "priority": "P3", "response_seconds": 2 * 3600, "resolution_seconds": 8 * 3600,
            "calendar": {"timezone": "Europe/Berlin", "hours": {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}},
            "pause_statuses": ["pending"], "warning_ratio": 0.5}
    assert_error(desk.client.put("/api/v1/sla/policies", headers=desk.auth("alex"), json=body), 403)
    bad = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json={**body, "calendar": {"timezone": "Mars/Olympus"}})
    assert_error(bad, 422)
    saved = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=body)
    assert saved.status_code == 200, saved.get_json()
    assert [p["priority"] for p in desk.client.get("/api/v1/sla/policies", headers=desk.auth("alex")).get_json()["items"]] == ["P3"]
    # opened Friday 17:00 Berlin (16:00 UTC in January): 1 business hour Friday, then Monday from 08:00
    clock.set(clock.now().replace(year=2026, month=1, day=9, hour=16, minute=0))
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    sla = clocks(desk, number)
    assert sla["response"]["target_seconds"] == 2 * HOUR
    assert sla["response"]["due_at"].startswith("2026-01-12T08:00")  # Monday 09:00 Berlin
    # the clocks stored with the record (reading them stores nothing) name the policy they were measured against
    policy_id = desk.services.session.scalar(select(SlaPolicy.id).where(SlaPolicy.priority == "P3"))
    stored = desk.services.session.scalars(select(SlaClock.policy_id).join(Ticket, Ticket.id == SlaClock.ticket_id)
                                           .where(Ticket.number == number)).all()
    assert stored and set(stored) == {policy_id}


def test_breach_escalation_can_raise_priority_and_reassign(desk: Desk, services, clock):
    policy = {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
              "escalation": {"warning": {"notify": ["group"]},
                             "breach": {"notify": ["group"], "raise_priority": True, "reassign_group": "ServiceDesk"}}}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=policy).status_code == 200
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    clock.advance(timedelta(hours=2, minutes=1))
    result = services.sla.sweep()
    assert result["breaches"] == 1
    record = desk.record(number)
    assert record["priority"] == "P2" and record["assignment_group"] == "ServiceDesk"
    sla = clocks(desk, number)
    assert sla["resolution"]["target_seconds"] == 8 * HOUR  # P2's default, from the record's start
    # the open investigation went with the record to ServiceDesk's queue; a later, unrelated step
    # does not put the process's old values back on the record
    desk.complete(number, "investigate", "alex", {"outcome": "pending", "pending_on": "customer", "pending_reason": "x"})
    record = desk.record(number)
    assert record["priority"] == "P2" and record["assignment_group"] == "ServiceDesk" and record["status"] == "pending"
    breach = [e for e in desk.history(record["instance_id"]) if e["type"] == "sla_breached"][0]
    assert breach["payload"]["actions"] == {"priority": ["P3", "P2"], "assignment_group": ["NetworkTeam", "ServiceDesk"]}


# -- bad policies: refused on write, survived by the sweep ---------------------------------------------------

POLICY = {"kind": "incident", "priority": "P4", "response_seconds": 60, "resolution_seconds": 60}


@pytest.mark.parametrize(("change", "fields"), [
    ({"escalation": {"breach": {"notify": ["assignee"], "reassign_group": {"x": 1}}}}, {"escalation.breach.reassign_group"}),
    ({"escalation": {"breach": 5}}, {"escalation.breach"}),
    ({"escalation": 5}, {"escalation"}),
    ({"escalation": {"panic": {"notify": ["group"]}}}, {"escalation.panic"}),
    ({"escalation": {"warning": {"notify": ["group"], "reassign_group": "ServiceDesk"}}}, {"escalation.warning.reassign_group"}),
    ({"escalation": {"warning": {"notify": ["boss", "group"]}}}, {"escalation.warning.notify"}),
    ({"escalation": {"warning": {"notify": "group"}}}, {"escalation.warning.notify"}),
    ({"escalation": {"warning": {"notify": ["group", "group"]}}}, {"escalation.warning.notify"}),
    ({"escalation": {"breach": {"raise_priority": "yes"}}}, {"escalation.breach.raise_priority"}),
    ({"escalation": {"breach": {"reassign_group": ""}}}, {"escalation.breach.reassign_group"}),
    ({"escalation": {"breach": {"reassign_group": "NoSuchTeam"}}}, {"escalation.breach.reassign_group"}),  # the service's check
    ({"response_seconds": 7200, "resolution_seconds": 3600}, {"response_seconds"}),
    ({"response_seconds": 0}, {"response_seconds"}),
    ({"response_seconds": "60"}, {"response_seconds"}),
    ({"resolution_seconds": 10 * 365 * 86400}, {"resolution_seconds"}),
    ({"priority": "P9"}, {"priority"}),
    ({"kind": "change"}, {"kind"}),
    ({"escalation": {"breach": {"reassign_group": "ServiceDesk\n"}}}, {"escalation.breach.reassign_group"}),
    ({"pause_statuses": ["pending", 5]}, {"pause_statuses"}),
])
def test_a_bad_policy_is_refused_naming_each_bad_field(desk: Desk, services, change, fields):
    response = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json={**POLICY, **change})
    body = assert_error(response, 422, "validation_failed")
    assert set(body["details"]["fields"]) == fields, body
    assert all(isinstance(m, str) for msgs in body["details"]["fields"].values() for m in msgs), body
    assert services.session.scalars(select(SlaPolicy)).all() == []


@pytest.mark.parametrize("field", ["priority", "service"])
def test_a_nul_in_a_policy_field_is_refused_naming_it(desk: Desk, services, field):
    response = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"),
                               json={**POLICY, field: f"{POLICY.get(field) or 'mail'}\x00"})
    body = assert_error(response, 400, "bad_request")
    assert body["details"]["fields"]["json"][0].startswith(f"Invalid JSON body: {field} holds a control character")
    assert services.session.scalars(select(SlaPolicy)).all() == []


def test_a_good_escalation_is_stored_as_sent_and_the_service_checks_other_callers_too(desk: Desk, services):
    escalation = {"warning": None, "breach": {"notify": ["assignee", "group_manager"], "raise_priority": True, "reassign_group": "ServiceDesk"}}
    saved = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json={**POLICY, "escalation": escalation})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["escalation"] == escalation
    olga = services.users.get_by_username("olga")
    with pytest.raises(ValidationFailed) as info:  # a caller that skips the API's schema
        services.sla.save_policy(olga, {**POLICY, "response_seconds": 120, "escalation": {"breach": {"reassign_group": {"x": 1}}}})
    assert set(info.value.details["fields"]) == {"response_seconds", "escalation.breach.reassign_group"}


def _bad_policy(services, priority: str, **columns) -> None:
    """Store a policy the way rows written before the checks (or around them) may look."""
    values = {"response_seconds": 60, "resolution_seconds": 60, "calendar": {}, "pause_statuses": [], "warning_ratio": 0.75,
              "escalation": None, **columns}
    services.session.add(SlaPolicy(kind="incident", priority=priority, service="", updated_at=desk_now(services), **values))
    services.session.commit()


def test_the_sweep_skips_a_stored_bad_escalation_and_escalates_the_other_records(desk: Desk, services, clock, monkeypatch, caplog):
    from app.services import sla as sla_module

    monkeypatch.setattr(sla_module, "POLICY_CACHE_SECONDS", 0)  # the rows below bypass save_policy
    _bad_policy(services, "P4", escalation={"breach": {"notify": ["assignee"], "reassign_group": {"x": 1}}})
    _bad_policy(services, "P2", escalation={"breach": 5, "warning": {"notify": ["group"]}})
    bad = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(bad, "triage", "alex", {"category": "hardware", "priority": "P4", "assignment_group": "NetworkTeam"})
    also_bad = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(also_bad, "triage", "alex", {"category": "hardware", "priority": "P2", "assignment_group": "NetworkTeam"})
    good = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(good, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    clock.advance(timedelta(hours=25))  # every resolution clock has breached

    with caplog.at_level("WARNING", logger="app.services.sla"):
        assert services.sla.sweep() == {"warnings": 0, "breaches": 3}
    subjects = set(services.session.scalars(select(Notification.subject).where(Notification.subject.like("SLA breached%"))))
    assert subjects == {f"SLA breached: resolution of {good} (Printer offline)"}
    assert desk.record(bad)["assignment_group"] == "NetworkTeam" and desk.record(bad)["priority"] == "P4"
    for number, field in ((bad, "escalation.breach.reassign_group"), (also_bad, "escalation.breach")):
        events = desk.history(desk.record(number)["instance_id"])
        [skipped] = [e for e in events if e["type"] == "sla_escalation_skipped"]
        assert skipped["payload"]["level"] == "breach" and skipped["payload"]["clock"] == "resolution"
        assert list(skipped["payload"]["problems"]) == [field]
        assert "sla_breached" not in {e["type"] for e in events}
        assert any(number in r.getMessage() and field in r.getMessage() for r in caplog.records)
    # handled once: the next sweeps neither retry nor audit it again
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    kinds = [e["type"] for e in desk.history(desk.record(bad)["instance_id"])]
    assert kinds.count("sla_escalation_skipped") == 1


def test_a_record_that_fails_in_the_sweep_is_rolled_back_and_the_others_still_escalate(desk: Desk, services, clock, monkeypatch, caplog):
    from app.services import sla as sla_module

    monkeypatch.setattr(sla_module, "POLICY_CACHE_SECONDS", 0)
    broken = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(broken, "triage", "alex", {"category": "hardware", "priority": "P2", "assignment_group": "NetworkTeam"})
    good = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(good, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    # stored later, around save_policy: a calendar that does not parse
    _bad_policy(services, "P2", calendar={"timezone": "Mars/Olympus"})
    clock.advance(timedelta(hours=25))

    with caplog.at_level("ERROR", logger="app.services.sla"):
        assert services.sla.sweep() == {"warnings": 0, "breaches": 1}
    assert [r for r in caplog.records if "failed and was rolled back" in r.getMessage()]
    escalated = dict(services.session.execute(select(Ticket.number, SlaClock.escalated).join(SlaClock, SlaClock.ticket_id == Ticket.id)
                                              .where(SlaClock.name == "resolution")).all())
    assert escalated == {broken: False, good: True}
    assert services.session.scalar(select(Notification.id).where(Notification.subject.like(f"SLA breached: resolution of {good}%")))
    # The failed record is put off, not retried (and logged) at every sweep until someone mends it.
    caplog.clear()
    clock.advance(timedelta(minutes=14))
    with caplog.at_level("ERROR", logger="app.services.sla"):
        services.sla.sweep()
    assert not [r for r in caplog.records if "failed and was rolled back" in r.getMessage()]
    clock.advance(timedelta(minutes=2))
    with caplog.at_level("ERROR", logger="app.services.sla"):
        services.sla.sweep()
    assert [r for r in caplog.records if "tried again in 15 minutes" in r.getMessage()]


# -- cost and caching of the tracking path -------------------------------------------------------------------


def _ticket(services, number: str) -> Ticket:
    return services.session.scalar(select(Ticket).where(Ticket.number == number))


def _sla_statements(connection, run) -> list[str]:
    """``run()``'s statements on SLA tables as "VERB table" (the first SLA table named)."""
    with sent_statements(connection) as sent:
        run()
    return [f"{statement.split()[0]} {table.group(0)}" for statement in sent
            if (table := re.search(r"sla_(event|clock|policy)", statement))]


def test_a_record_change_reads_events_and_clocks_in_one_statement_and_keeps_loaded_clocks_current(desk: Desk, services, clock, connection):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    ticket = _ticket(services, number)
    rows = {r.name: r for r in services.sla.refresh(ticket)}  # ORM objects of this session
    assert rows["resolution"].state == "running"
    clock.advance(timedelta(hours=1))
    ticket.status = "pending"
    statements = _sla_statements(connection, lambda: services.sla.track(ticket, {"status": ("new", "pending")}))
    # the policy comes from the cache; events and clocks are read in one statement; one UPDATE
    # for both clocks
    assert statements == ["SELECT sla_event", "INSERT sla_event", "UPDATE sla_clock"]
    # the objects already loaded in the session show what was written, as the database does
    assert rows["resolution"].state == "paused" and rows["resolution"].elapsed_seconds == HOUR
    assert rows["resolution"].evaluated_at == clock.now() and rows["resolution"].next_check_at is None
    assert not [o for o in services.session.dirty if isinstance(o, SlaClock)]  # nothing left for a flush to write
    stored = connection.execute(text("SELECT state, elapsed_seconds FROM sla_clock WHERE ticket_id = :t AND name = 'resolution'"),
                                {"t": ticket.id}).one()
    assert tuple(stored) == ("paused", HOUR)
    # nothing SLA-relevant changed and no time passed: no event, no write
    with sent_statements(connection) as sent:
        services.sla.track(ticket, {"title": ("a", "b")})
    [read] = [statement for statement in sent if "sla_" in statement]
    assert read.lstrip().upper().startswith("SELECT") and "FROM sla_event" in read and "FROM sla_clock" in read
    services.session.commit()
    assert [e.kind for e in services.sla._events(ticket)] == ["start", "pause"]


def test_policies_are_cached_per_process_invalidated_by_saves_and_expire_within_seconds(desk: Desk, services, monkeypatch):
    from app.services import sla as sla_module

    olga = services.users.get_by_username("olga")
    assert services.sla.terms("incident", "P3", None)["targets"]["response"] == 4 * HOUR  # built-in default, now cached
    # another process writes a policy: this process keeps its cached answer for at most POLICY_CACHE_SECONDS
    services.session.add(SlaPolicy(kind="incident", priority="P3", service="", response_seconds=60, resolution_seconds=600,
                                   calendar={}, pause_statuses=[], warning_ratio=0.5, escalation={}, updated_at=desk_now(services)))
    services.session.commit()
    assert services.sla.terms("incident", "P3", None)["targets"]["response"] == 4 * HOUR
    later = sla_module.monotonic() + sla_module.POLICY_CACHE_SECONDS + 0.01
    monkeypatch.setattr(sla_module, "monotonic", lambda: later)
    assert services.sla.terms("incident", "P3", None)["targets"] == {"response": 60, "resolution": 600}
    # a save in this process applies at once, in its own transaction too, and a rollback leaves no trace
    body = {"kind": "incident", "priority": "P3", "response_seconds": 120, "resolution_seconds": 1200}
    services.sla.save_policy(olga, body)
    assert services.sla.terms("incident", "P3", None)["targets"] == {"response": 120, "resolution": 1200}
    services.session.rollback()
    assert services.sla.terms("incident", "P3", None)["targets"] == {"response": 60, "resolution": 600}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=body).status_code == 200
    assert services.sla.terms("incident", "P3", None)["targets"] == {"response": 120, "resolution": 1200}
    # what terms() returns is the caller's own copy
    services.sla.terms("incident", "P3", None)["targets"]["response"] = 1
    services.sla.terms("incident", "P3", None)["pauses"].append("x")
    assert services.sla.terms("incident", "P3", None)["targets"]["response"] == 120
    assert services.sla.terms("incident", "P3", None)["pauses"] == ["pending"]  # left out of the body: the kind's default


def test_a_lookup_that_raced_with_a_save_does_not_store_its_old_answer():
    from app.services.sla import _PolicyCache

    cache = _PolicyCache()
    key = ("incident", "P3", "")
    generation = cache.generation  # a lookup starts ...
    cache.invalidate()  # ... a policy is saved meanwhile ...
    cache.put(key, None, generation, 5.0)  # ... and the lookup's answer may predate the save
    assert cache.get(key) == (False, None)
    cache.put(key, None, cache.generation, 5.0)
    assert cache.get(key) == (True, None)


def desk_now(services):
    return services.runtime.clock.now()


# -- reading is read-only; the sweep raises every warning once ---------------------------------------------

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _stored_clocks(connection, number: str) -> list[tuple]:
    return [tuple(row) for row in connection.execute(text(
        "SELECT c.* FROM sla_clock c JOIN ticket t ON t.id = c.ticket_id WHERE t.number = :n ORDER BY c.name"), {"n": number})]


def _events_of(desk: Desk, number: str, kind: str) -> list[dict]:
    return [e for e in desk.history(desk.record(number)["instance_id"]) if e["type"] == kind]


def test_reading_the_clocks_writes_nothing_and_leaves_the_warning_to_the_sweep(desk: Desk, services, clock, connection):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]  # P3: response 4 h, warned at 3 h
    opened = clock.now()
    clock.advance(timedelta(hours=3, minutes=30))  # past the response clock's warning threshold, before any sweep
    before = _stored_clocks(connection, number)
    for who in ("aude", "rita", "alex"):  # an auditor, the requester, an agent
        desk.auth(who)  # signing in is audited; reading the clocks is not and writes nothing
        with sent_statements(connection) as sent:
            sla = clocks(desk, number, who)
        # (but the caller's token noting its last use, at most once a minute: not the record's)
        assert not [s for s in sent if s.lstrip().upper().startswith(WRITES) and "api_token" not in s], sent
        # computed now, in memory: the warning is shown as due at 3 h, the clock still runs
        assert sla["response"]["state"] == "running" and sla["response"]["elapsed_seconds"] == 3.5 * HOUR
        assert sla["response"]["warning_at"].startswith((opened + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    assert _stored_clocks(connection, number) == before

    assert services.sla.sweep() == {"warnings": 1, "breaches": 0}
    [warning] = _events_of(desk, number, "sla_warning")
    assert warning["payload"]["clock"] == "response"
    # after the warning fired, warning_at still says when it was due
    sla = clocks(desk, number, "aude")
    assert sla["response"]["warning_at"].startswith((opened + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    stored = services.session.scalar(select(SlaClock).join(Ticket, Ticket.id == SlaClock.ticket_id)
                                     .where(Ticket.number == number, SlaClock.name == "response"))
    assert stored.warned and stored.warning_at is not None
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    assert len(_events_of(desk, number, "sla_warning")) == 1


def test_a_record_change_between_the_threshold_and_the_sweep_keeps_the_warning(desk: Desk, services, clock):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    clock.advance(timedelta(hours=3, minutes=30))
    ticket = _ticket(services, number)
    services.sla.track(ticket, {"title": ("Printer offline", "Printer offline again")})  # stores the clocks
    services.session.commit()
    assert services.sla.sweep() == {"warnings": 1, "breaches": 0}
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    assert len(_events_of(desk, number, "sla_warning")) == 1


# -- escalation of records nobody owns yet -----------------------------------------------------------------


def _breach_notices(services, number: str) -> set[str]:
    rows = services.session.execute(select(Notification.user_id, Notification.subject)
                                    .where(Notification.subject.like(f"SLA breached: % of {number} %")))
    names = {u.id: u.username for u in (services.users.get_by_username(n) for n in ("alex", "nina", "ada", "rita"))}
    return {names.get(user_id, str(user_id)) for user_id, _subject in rows}


def test_an_untriaged_p1_breach_notifies_the_queue_that_holds_the_work(desk: Desk, services, clock):
    number = desk.start("rita", "incident_management", {**START, "impact": "high", "urgency": "high"})["data"]["record_number"]
    record = desk.record(number)
    assert record["priority"] == "P1" and record["assignee"] is None and record["assignment_group"] is None
    assert desk.ready(number) == ["triage"]  # the ServiceDesk's queue
    clock.advance(timedelta(hours=4, minutes=1))
    assert services.sla.sweep()["breaches"] == 2
    assert _breach_notices(services, number) == {"alex"}  # the ServiceDesk's members; not the requester
    breaches = _events_of(desk, number, "sla_breached")
    assert sorted(e["payload"]["clock"] for e in breaches) == ["resolution", "response"]
    assert all(e["payload"]["notified"] == ["alex"] and e["payload"]["fallback"] == "open_tasks" for e in breaches)


def test_with_no_open_task_either_the_escalation_goes_to_the_policy_group_then_the_admins(desk: Desk, services, clock):
    from app.models import HumanTask

    policy = {"kind": "incident", "priority": "P2", "response_seconds": 3600, "resolution_seconds": 7200,
              "escalation": {"breach": {"notify": ["assignee", "group"], "reassign_group": "NetworkTeam"}}}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=policy).status_code == 200
    to_group = desk.start("rita", "incident_management", {**START, "impact": "high"})["data"]["record_number"]
    to_admins = desk.start("rita", "incident_management", START)["data"]["record_number"]
    assert [desk.record(n)["priority"] for n in (to_group, to_admins)] == ["P2", "P3"]
    for number in (to_group, to_admins):  # the work left every queue (say, the engine stopped at an error)
        for task in services.session.scalars(select(HumanTask).where(HumanTask.instance_id == desk.record(number)["instance_id"])):
            task.state = "cancelled"
    services.session.commit()
    clock.advance(timedelta(hours=25))
    assert services.sla.sweep()["breaches"] == 4
    assert _breach_notices(services, to_group) == {"nina"}  # NetworkTeam, the group the policy escalates to
    assert _breach_notices(services, to_admins) == {"ada"}
    # the first breach hands the record to NetworkTeam, whose people it then tells as the record's
    # own group (it had none), as the second breach does
    first, second = _events_of(desk, to_group, "sla_breached")
    assert (first["payload"]["fallback"], second["payload"]["fallback"]) == (None, None)
    assert first["payload"]["actions"] == {"assignment_group": [None, "NetworkTeam"]}
    assert {e["payload"]["fallback"] for e in _events_of(desk, to_admins, "sla_breached")} == {"admins"}


def test_an_owned_record_notifies_its_owners_only(desk: Desk, services, clock):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    clock.advance(timedelta(hours=25))
    assert services.sla.sweep()["breaches"] == 1
    assert _breach_notices(services, number) == {"nina"}
    [breach] = _events_of(desk, number, "sla_breached")
    assert breach["payload"]["fallback"] is None


# -- the priority event announces what the clocks take -----------------------------------------------------


def test_the_priority_event_announces_the_targets_the_clocks_then_show(desk: Desk, services, clock):
    number = desk.start("rita", "incident_management", {**START, "impact": "low", "urgency": "low"})["data"]["record_number"]
    clock.advance(timedelta(minutes=10))
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P4", "assignment_group": "NetworkTeam"})
    assert clocks(desk, number)["response"]["state"] == "met"  # responded under P4's 8 h
    clock.advance(timedelta(hours=1))
    ticket = _ticket(services, number)
    ticket.priority = "P2"  # raised after the first response
    services.sla.track(ticket, {"priority": "P2"})
    services.session.commit()
    [event] = _events_of(desk, number, "sla_priority")
    sla = clocks(desk, number)
    announced = event["payload"]["targets"]
    assert announced == {"resolution": 8 * HOUR}
    assert all(sla[name]["target_seconds"] == seconds for name, seconds in announced.items())
    # the stopped response clock keeps its target, and the event says so
    assert event["payload"]["kept"] == {"response": 8 * HOUR} == {"response": sla["response"]["target_seconds"]}
    # the same on the escalation path: a breach that raises the priority
    policy = {"kind": "incident", "priority": "P2", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
              "escalation": {"breach": {"notify": ["group"], "raise_priority": True}}}
    assert desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=policy).status_code == 200
    ticket.priority = "P3"
    services.sla.track(ticket, {"priority": "P3"})
    ticket.priority = "P2"
    services.sla.track(ticket, {"priority": "P2"})
    services.session.commit()
    clock.advance(timedelta(hours=1))  # 2 h 10 min after the start: past P2's resolution under this policy
    assert services.sla.sweep()["breaches"] == 1
    events = _events_of(desk, number, "sla_priority")
    assert events[-1]["payload"]["reason"] == "escalation raised the priority"
    assert desk.record(number)["priority"] == "P1"
    sla = clocks(desk, number)
    assert events[-1]["payload"]["targets"] == {"resolution": sla["resolution"]["target_seconds"]} == {"resolution": 4 * HOUR}
    assert events[-1]["payload"]["kept"]["response"] == sla["response"]["target_seconds"] == 8 * HOUR


def test_the_policy_list_shows_the_built_in_terms_in_force(desk: Desk):
    """With no stored policy the list still says what applies: the built-in terms per kind and priority."""
    listed = desk.client.get("/api/v1/sla/policies", headers=desk.auth("alex")).get_json()
    assert listed["items"] == []
    defaults = {(d["kind"], d["priority"]): d for d in listed["defaults"]}
    assert set(defaults) == {(k, p) for k in ("incident", "problem", "request") for p in ("P1", "P2", "P3", "P4")}
    p1 = defaults[("incident", "P1")]
    assert (p1["response_seconds"], p1["resolution_seconds"], p1["pause_statuses"], p1["calendar"]) == (
        15 * 60, 4 * 3600, ["pending"], {})
    assert (defaults[("request", "P4")]["response_seconds"], defaults[("request", "P4")]["resolution_seconds"]) == (
        8 * 3600, 72 * 3600)
    assert "id" not in p1  # nothing stored
    # an incident opened now runs on those targets
    number = desk.start("rita", "incident_management", {"title": "Down", "description": "All of it", "category": "network",
                                                         "impact": "medium", "urgency": "medium"})["data"]["record_number"]
    clocks = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex")).get_json()["clocks"]
    assert {c["name"]: c["target_seconds"] for c in clocks} == {"response": 4 * 3600, "resolution": 24 * 3600}


def test_a_clock_warned_then_given_a_longer_target_is_warned_again_before_its_new_breach(desk: Desk, services, clock):
    """Triage that lowers the priority after the warning gives the clock a new target and a new
    warning instant: the desk is warned again when that comes, not told only of the breach (QA:
    the page showed the new warning instant, the sweep never sent it, the breach came unannounced)."""
    number = desk.start("rita", "incident_management", {**START, "impact": "high"})["data"]["record_number"]
    assert desk.record(number)["priority"] == "P2"  # resolution 8 h, warned at 6 h
    clock.advance(timedelta(hours=6, minutes=30))
    assert services.sla.sweep() == {"warnings": 1, "breaches": 1}  # resolution warned, response breached
    services.session.commit()
    clock.advance(timedelta(minutes=30))
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    resolution = clocks(desk, number)["resolution"]  # P3: 24 h from the start, warned at 18 h
    assert resolution["state"] == "running" and resolution["target_seconds"] == 24 * HOUR
    assert resolution["warning_at"].startswith((clock.now() + timedelta(hours=11)).strftime("%Y-%m-%dT%H:%M"))
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}
    clock.advance(timedelta(hours=11, minutes=30))  # 18 h 30 after opening
    assert services.sla.sweep() == {"warnings": 1, "breaches": 0}
    services.session.commit()
    warnings = [e["payload"]["clock"] for e in _events_of(desk, number, "sla_warning")]
    assert warnings == ["resolution", "resolution"]
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}  # once


def test_a_group_of_requesters_only_counts_as_nobody_and_the_escalation_falls_back(desk: Desk, services, clock):
    """The record's group has no member who works its queue (rita only requests): its members may
    not open the record, so the breach goes on to the fallbacks instead of reaching no one."""
    from app.models import HumanTask, Ticket

    number = desk.start("mona", "incident_management", START)["data"]["record_number"]
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == number))
    ticket.assignment_group = "Requesters"
    for task in services.session.scalars(select(HumanTask).where(HumanTask.instance_id == ticket.instance_id)):
        task.state = "cancelled"  # no open work either: the policy's group, then the admins
    services.session.commit()
    clock.advance(timedelta(hours=25))
    assert services.sla.sweep()["breaches"] == 2
    assert "ada" in _breach_notices(services, number) and "rita" not in _breach_notices(services, number)
    assert {e["payload"]["fallback"] for e in _events_of(desk, number, "sla_breached")} == {"admins"}


def test_a_service_policy_matches_the_service_however_its_letters_are_cased(desk: Desk):
    """A requester types the affected service ("vpn"), the policy names it "VPN": one service. And
    saving a policy for "Vpn " replaces the one for "VPN" instead of adding a second."""
    olga = desk.auth("olga")
    body = {"kind": "incident", "priority": "P3", "service": "VPN", "response_seconds": 600, "resolution_seconds": 6000}
    assert desk.client.put("/api/v1/sla/policies", headers=olga, json=body).status_code == 200
    targets = {}
    for typed in ("VPN", "vpn", " Vpn ", "Printing"):
        number = desk.start("rita", "incident_management", {**START, "service": typed})["data"]["record_number"]
        targets[typed] = clocks(desk, number)["response"]["target_seconds"]
    assert targets == {"VPN": 600, "vpn": 600, " Vpn ": 600, "Printing": 4 * HOUR}
    again = desk.client.put("/api/v1/sla/policies", headers=olga, json={**body, "service": "Vpn ", "response_seconds": 900})
    assert again.status_code == 200, again.get_json()
    stored = [p for p in desk.client.get("/api/v1/sla/policies", headers=olga).get_json()["items"] if p["service"]]
    assert [(p["service"], p["response_seconds"]) for p in stored] == [("Vpn", 900)]
