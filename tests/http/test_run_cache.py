"""Live runs kept between requests (app/engine RunCache): a hit only when the stored state is
exactly what the kept run dumped, and the same outcome as deserializing every time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app import create_app
from app.models import AuditEvent, ProcessInstance
from tests.conftest import TEST_CONFIG
from tests.http.desk import Desk

START = {"title": "Printer jams", "description": "Every second page", "category": "hardware",
         "impact": "medium", "urgency": "medium"}
TRIAGE = {"category": "hardware", "priority": "P3", "assignment_group": "DesktopSupport"}
RESOLVE = {"outcome": "resolve", "resolution_notes": "Replaced the roller", "cause_category": "hardware_failure"}


def second_app(database_url: str, connection: Any, clock: Any, **config: Any) -> Any:
    """Another worker: its own app, engine and run cache, on the test's connection."""
    application = create_app({**TEST_CONFIG, "DATABASE_URL": database_url, **config}, clock=clock)
    ext = application.extensions["processdesk"]
    ext.db_engine.dispose()
    ext.session_factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    application.config["TESTING"] = True
    return application


def runs(app: Any) -> Any:
    return app.extensions["processdesk"].runtime.engine.runs


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def test_the_next_step_takes_the_run_the_last_one_left(app, desk: Desk):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    cache = runs(app)
    before = (cache.hits, cache.misses)
    desk.complete(number, "triage", "alex", TRIAGE)
    desk.complete(number, "investigate", "nina", RESOLVE)
    assert (cache.hits - before[0], cache.misses - before[1]) == (2, 0)
    assert desk.record(number)["status"] == "resolved"


def test_a_step_made_by_another_worker_makes_the_kept_run_stale(app, desk: Desk, database_url, connection, clock):
    instance = desk.start("rita", "incident_management", START)
    number = instance["data"]["record_number"]
    other = second_app(database_url, connection, clock)
    other_desk = Desk.__new__(Desk)  # the same people and tokens, another worker's client
    other_desk.client, other_desk.services, other_desk.headers = other.test_client(), desk.services, desk.headers
    other_desk.complete(number, "triage", "alex", TRIAGE)
    assert (runs(other).hits, runs(other).misses) == (0, 1)  # it never saw this instance

    # This worker still keeps the run from the start; its state is no longer the stored one.
    cache = runs(app)
    hits, misses = cache.hits, cache.misses
    desk.complete(number, "investigate", "nina", RESOLVE)
    assert (cache.hits - hits, cache.misses - misses) == (0, 1)
    record = desk.record(number)
    assert record["status"] == "resolved" and record["assignment_group"] == "DesktopSupport"
    assert desk.ready(number) == ["confirm_resolution"]


def test_a_refused_or_invalid_step_leaves_nothing_behind(app, desk: Desk):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    cache = runs(app)
    desk.complete(number, "triage", "alex", {**TRIAGE, "priority": "P9"}, status=422)  # took the run, rolled back
    hits, misses = cache.hits, cache.misses
    desk.complete(number, "triage", "alex", TRIAGE)
    assert (cache.hits - hits, cache.misses - misses) == (0, 1)  # deserialized again, not a half-used run
    assert desk.record(number)["status"] == "in_progress"
    desk.complete(number, "investigate", "nina", RESOLVE)
    assert cache.hits - hits == 1


def test_a_run_whose_commit_failed_is_not_kept(app, desk: Desk, services):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    instance = services.session.scalar(select(ProcessInstance).where(ProcessInstance.data["record_number"].as_string() == number))
    runner = services.runner
    run = runner.load(instance)
    state = instance.state
    assert run.clean_dump == state or run.clean_dump is None
    runner.save(instance, run, None)
    services.session.rollback()  # the save never commits: nothing to park, not even at a later commit
    services.session.commit()
    assert runs(app).take(instance.id, state, run.bundle) is None
    assert runs(app).take(instance.id, run.dump(), run.bundle) is None


def _lifecycle(desk: Desk, clock: Any) -> tuple[list[list[str]], dict[str, Any], list[str]]:
    """An incident through reopen and a second resolution; what a client and an auditor see."""
    instance = desk.start("rita", "incident_management", START)
    number, instance_id = instance["data"]["record_number"], instance["id"]
    seen = [desk.ready(number)]
    steps = [("triage", "alex", TRIAGE), ("investigate", "nina", RESOLVE),
             ("confirm_resolution", "rita", {"confirmed": False, "comment": "still jams"}),
             ("investigate", "nina", RESOLVE), ("confirm_resolution", "rita", {"confirmed": True})]
    for bpmn_id, who, data in steps:
        clock.advance(timedelta(minutes=7))
        desk.complete(number, bpmn_id, who, data)
        seen.append(desk.ready(number))
    record = desk.record(number)
    data = {k: v for k, v in desk.instance(instance_id)["data"].items() if not k.endswith("_at")}
    types = list(desk.services.session.scalars(
        select(AuditEvent.event_type).where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.seq)))
    return seen, {"record": {k: record[k] for k in ("status", "priority", "assignee", "assignment_group")}, "data": data}, types


def test_kept_runs_give_the_same_outcome_as_deserializing_every_step(app, client, services, database_url, connection, clock):
    cached = _lifecycle(Desk(client, services), clock)
    assert runs(app).hits >= 5
    uncached_app = second_app(database_url, connection, clock, RUN_CACHE_SIZE=0)
    desk = Desk.__new__(Desk)
    desk.client, desk.services, desk.headers = uncached_app.test_client(), services, {}
    uncached = _lifecycle(desk, clock)
    assert runs(uncached_app).hits == 0
    cached[1]["data"].pop("record_number")
    uncached[1]["data"].pop("record_number")
    assert cached == uncached
    assert cached[0][-1] == [] and cached[1]["record"]["status"] == "closed"
