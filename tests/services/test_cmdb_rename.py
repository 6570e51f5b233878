"""Renaming a configuration item (CmdbService.update with a ``name``): validated as on create,
the records naming it follow in the same transaction (audited on each), its relationships stay,
the old name answers no more; only configuration managers and admins rename. SQLite and
PostgreSQL (TEST_DATABASE_URL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import AuditEvent, HumanTask, TaskStatus, Ticket
from tests.services import test_cmdb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "records"
people = test_cmdb.people  # the fixture: the CMDB tests' people


def deploy_mini_ticket(services: Any, olga: Any) -> None:
    """The mini ticket process, its start and work forms' ``symptoms`` copied to the record's ci."""
    mapping = json.loads((FIXTURES / "mini_ticket.record.json").read_text())
    mapping["fields"]["ci"] = "symptoms"
    files = [(p.name, p.read_bytes()) for p in sorted(FIXTURES.iterdir()) if p.name != "mini_ticket.record.json"]
    services.definitions.deploy(olga, [*files, ("mini_ticket.record.json", json.dumps(mapping).encode())])


def start(services: Any, rita: Any, title: str, ci: str | None) -> str:
    data = {"title": title, "work_group": "ServiceDesk", **({"symptoms": ci} if ci is not None else {})}
    instance = services.instances.start_process(rita, "mini_ticket", data)
    return str(services.session.scalar(select(Ticket.number).where(Ticket.instance_id == instance.id)))


def ci_of(services: Any, number: str) -> str | None:
    return services.session.scalar(select(Ticket.ci).where(Ticket.number == number))  # type: ignore[no-any-return]


def events(services: Any, event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.seq))]


def test_a_rename_carries_the_records_relationships_and_history_along(services, people):
    deploy_mini_ticket(services, people["olga"])
    cmdb = services.cmdb
    cmdb.create(people["ada"], {"name": "mail-gw", "ci_class": "network"})
    cmdb.create(people["ada"], {"name": "mail-svc", "ci_class": "service"})
    cmdb.add_relationship(people["ada"], "mail-svc", "mail-gw", "depends_on")
    services.session.commit()
    named = start(services, people["rita"], "Mail is down", "mail-gw")
    other_case = start(services, people["rita"], "Mail is slow", "MAIL-GW")  # one CI whatever the case
    unrelated = start(services, people["rita"], "Printer", "printer-7")
    services.session.commit()

    renamed = cmdb.update(people["cmo"], "mail-gw", {"name": "  mail-gw-02 ", "location": "DC2"})
    services.session.commit()

    assert (renamed.name, renamed.location) == ("mail-gw-02", "DC2")
    assert (ci_of(services, named), ci_of(services, other_case), ci_of(services, unrelated)) == (
        "mail-gw-02", "mail-gw-02", "printer-7")
    with pytest.raises(NotFound):
        cmdb.find(people["alex"], "mail-gw")  # the old name answers no more
    detail = cmdb.detail(people["alex"], cmdb.find(people["alex"], "MAIL-GW-02"))
    assert [(r["direction"], r["kind"], r["ci"]) for r in detail["relationships"]] == [
        ("incoming", "depends_on", "mail-svc")]
    assert sorted(r["number"] for r in detail["records"]) == sorted([named, other_case])
    assert [i["name"] for i in cmdb.impact(cmdb.find(people["alex"], "mail-gw-02"))[0]] == ["mail-svc"]
    assert [r["ci"] for r in cmdb.detail(people["alex"], cmdb.find(people["alex"], "mail-svc"))["relationships"]] \
        == ["mail-gw-02"]

    updated = events(services, "ci_updated")[-1]
    assert updated["ci"] == "mail-gw-02"
    assert updated["changes"]["name"] == {"from": "mail-gw", "to": "mail-gw-02"}
    assert updated["changes"]["location"] == {"from": "", "to": "DC2"}
    assert updated["records"] == 2
    followed = {p["number"]: p for p in events(services, "record_updated") if "ci_renamed" in p}
    assert sorted(followed) == sorted([named, other_case])
    assert followed[named]["changes"] == {"ci": "mail-gw-02"}
    assert followed[named]["ci_renamed"] == {"from": "mail-gw", "to": "mail-gw-02"}
    assert followed[other_case]["ci_renamed"] == {"from": "MAIL-GW", "to": "mail-gw-02"}


def test_a_new_name_is_checked_as_on_create_and_only_writers_rename(services, people):
    cmdb = services.cmdb
    cmdb.create(people["ada"], {"name": "core-sw", "ci_class": "network"})
    cmdb.create(people["ada"], {"name": "Edge-SW", "ci_class": "network"})
    services.session.commit()
    for bad, why in (("edge-sw", "exists"), ("", "required"), ("   ", "required"), ("a/b", "slash"),
                     ("x" * 256, "at most"), ("core\u202esw", "")):
        with pytest.raises(ValidationFailed) as refused:
            cmdb.update(people["cmo"], "core-sw", {"name": bad, "location": "DC1"})
        assert refused.value.details["fields"].keys() == {"name"}, bad
        assert why in str(refused.value.details["fields"]["name"]), (bad, refused.value.details)
        services.session.rollback()
    with pytest.raises(PermissionDenied):
        cmdb.update(people["alex"], "core-sw", {"name": "core-sw-2"})
    services.session.rollback()
    with pytest.raises(NotFound):
        cmdb.update(people["rita"], "core-sw", {"name": "core-sw-2"})
    services.session.rollback()
    assert cmdb.find(people["ada"], "core-sw").location == ""

    # the same name in another letter case is a rename of its own, as is a name given as it is
    assert cmdb.update(people["ada"], "core-sw", {"name": "CORE-SW"}).name == "CORE-SW"
    before = len(events(services, "ci_updated"))
    assert cmdb.update(people["ada"], "core-sw", {"name": "CORE-SW"}).name == "CORE-SW"
    assert len(events(services, "ci_updated")) == before  # nothing changed, nothing saved


def test_a_record_started_with_the_new_name_after_a_rename_lists_on_the_ci(services, people):
    deploy_mini_ticket(services, people["olga"])
    services.cmdb.create(people["ada"], {"name": "db-01", "ci_class": "hardware"})
    services.session.commit()
    services.cmdb.update(people["ada"], "db-01", {"name": "db-01-primary"})
    services.session.commit()
    number = start(services, people["rita"], "Database slow", "db-01-primary")
    services.session.commit()
    detail = services.cmdb.detail(people["ada"], services.cmdb.find(people["ada"], "db-01-primary"))
    assert [r["number"] for r in detail["records"]] == [number]


def test_a_task_worked_after_a_rename_shows_and_keeps_the_new_name(services, people):
    """The process's own variable still holds the old name: the task form shows the record's (as
    for an escalated priority), and the step taken with it does not put the old name back."""
    deploy_mini_ticket(services, people["olga"])
    services.cmdb.create(people["ada"], {"name": "mail-gw", "ci_class": "network"})
    services.session.commit()
    number = start(services, people["rita"], "Mail is down", "mail-gw")
    services.session.commit()
    services.cmdb.update(people["ada"], "mail-gw", {"name": "mail-gw-2"})
    services.session.commit()
    instance_id = services.session.scalar(select(Ticket.instance_id).where(Ticket.number == number))
    work = services.session.scalar(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                           HumanTask.bpmn_id == "work", HumanTask.state == TaskStatus.READY))
    shown = services.tasks.detail(people["alex"], work.id)["data"]
    assert shown["symptoms"] == "mail-gw-2"
    services.tasks.complete(people["alex"], work.id, {**{k: v for k, v in shown.items() if k == "symptoms"},
                                                      "workaround": "webmail"})
    services.session.commit()
    assert ci_of(services, number) == "mail-gw-2"
