"""CmdbService on a real session: unique names whatever the case, the impact walk (transitive,
bounded, cycle-safe, only along depends_on / runs_on), relationships without self-links or
duplicates (also in the database), and the refusal of a retired CI as a record's ``ci`` when a
process starts and when a task of it is completed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import CiRelationship, HumanTask, TaskStatus, Ticket
from app.services.cmdb import IMPACT_DEPTH

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "records"


@pytest.fixture()
def people(services: Any) -> dict[str, Any]:
    made = {name: services.users.create_user(name, "password-1234", roles=roles, groups=groups)
            for name, roles, groups in (("olga", ["process_owner"], []), ("rita", ["requester"], []),
                                        ("alex", ["agent"], ["ServiceDesk"]), ("ada", ["admin"], []),
                                        ("cmo", ["configuration_manager"], []))}
    services.session.commit()
    return made


def ci(services: Any, people: dict[str, Any], name: str, ci_class: str = "hardware", **values: Any) -> Any:
    return services.cmdb.create(people["ada"], {"name": name, "ci_class": ci_class, **values})


def test_names_are_unique_whatever_their_case_and_found_so(services, people):
    ci(services, people, "Mail-GW", "network", owner="alex", support_group="ServiceDesk")
    with pytest.raises(ValidationFailed) as refused:
        ci(services, people, "mail-gw")
    assert "name" in refused.value.details["fields"]
    found = services.cmdb.find(people["alex"], "MAIL-gw")
    assert (found.name, found.owner.username, found.support_group.name) == ("Mail-GW", "alex", "ServiceDesk")
    with pytest.raises(NotFound):
        services.cmdb.find(people["rita"], "Mail-GW")  # a requester does not learn it exists
    with pytest.raises(PermissionDenied):
        services.cmdb.search(people["rita"])
    with pytest.raises(PermissionDenied):
        services.cmdb.update(people["alex"], "Mail-GW", {"location": "DC9"})
    assert services.cmdb.update(people["cmo"], "mail-gw", {"owner": "", "location": " DC9 \n hall "}).location == "DC9 hall"
    assert services.cmdb.find(people["alex"], "Mail-GW").owner is None


def test_impact_is_transitive_bounded_and_ends_at_a_cycle(services, people):
    # a chain c0 <- c1 <- ... <- c9 (each depends on the one before), closed into a cycle
    chain = [ci(services, people, f"c{i}") for i in range(10)]
    for before, after in zip(chain, chain[1:], strict=False):
        services.cmdb.add_relationship(people["ada"], after.name, before.name, "depends_on" if after.id % 2 else "runs_on")
    services.cmdb.add_relationship(people["ada"], "c0", "c9", "depends_on")
    impacted, truncated = services.cmdb.impact(chain[0])
    assert [(i["name"], i["depth"]) for i in impacted] == [(f"c{d}", d) for d in range(1, IMPACT_DEPTH + 1)]
    assert truncated is True
    impacted, truncated = services.cmdb.impact(chain[0], depth=20)
    assert [i["name"] for i in impacted] == [f"c{d}" for d in range(1, 10)] and truncated is False  # c0 once
    impacted, truncated = services.cmdb.impact(chain[0], depth=20, limit=3)
    assert len(impacted) == 3 and truncated is True


def test_connects_to_carries_no_impact_and_fans_in_once(services, people):
    for name in ("db", "app-a", "app-b", "svc", "switch"):
        ci(services, people, name)
    services.cmdb.add_relationship(people["ada"], "app-a", "db", "runs_on")
    services.cmdb.add_relationship(people["ada"], "app-b", "db", "depends_on")
    services.cmdb.add_relationship(people["ada"], "svc", "app-a", "depends_on")
    services.cmdb.add_relationship(people["ada"], "svc", "app-b", "depends_on")  # reached twice: listed once
    services.cmdb.add_relationship(people["ada"], "switch", "db", "connects_to")
    impacted, _ = services.cmdb.impact(services.cmdb.find(people["ada"], "db"))
    assert [(i["name"], i["depth"]) for i in impacted] == [("app-a", 1), ("app-b", 1), ("svc", 2)]


def test_relationships_are_never_self_links_or_duplicates(services, people):
    a, b = ci(services, people, "a"), ci(services, people, "b")
    _, new = services.cmdb.add_relationship(people["cmo"], "a", "b", "runs_on")
    _, again = services.cmdb.add_relationship(people["cmo"], "A", "B", "runs_on")
    assert (new, again) == (True, False)
    services.cmdb.add_relationship(people["cmo"], "a", "b", "connects_to")  # another kind is another relation
    with pytest.raises(ValidationFailed) as refused:
        services.cmdb.add_relationship(people["cmo"], "a", "a", "depends_on")
    assert "target" in refused.value.details["fields"]
    services.session.commit()
    # the database holds the same rules for any other writer
    for source, target in ((a.id, a.id), (a.id, b.id)):
        with pytest.raises(IntegrityError):
            with services.session.begin_nested():
                services.session.add(CiRelationship(source_id=source, target_id=target, kind="runs_on", created_by="x"))
                services.session.flush()
    services.cmdb.retire(people["ada"], "b")
    with pytest.raises(ValidationFailed):
        services.cmdb.add_relationship(people["ada"], "a", "b", "depends_on")  # a retired CI takes no new ones
    with pytest.raises(Conflict):
        services.cmdb.add_relationship(people["ada"], "b", "a", "depends_on")


def test_a_retired_ci_is_refused_when_a_process_starts_and_when_a_task_sets_it(services, people):
    # the mini ticket's mapping, with its work form's "symptoms" copied to the record's ci
    mapping = json.loads((FIXTURES / "mini_ticket.record.json").read_text())
    mapping["fields"]["ci"] = "symptoms"
    files = [(p.name, p.read_bytes()) for p in sorted(FIXTURES.iterdir()) if p.name != "mini_ticket.record.json"]
    services.definitions.deploy(people["olga"], [*files, ("mini_ticket.record.json", json.dumps(mapping).encode())])
    ci(services, people, "mail-gw", "network")
    ci(services, people, "old-gw", "network", status="retired")
    services.session.commit()

    with pytest.raises(ValidationFailed) as refused:
        services.instances.start_process(people["rita"], "mini_ticket",
                                         {"title": "Mail is down", "work_group": "ServiceDesk", "symptoms": "OLD-GW"})
    assert refused.value.details["fields"].keys() == {"symptoms"}
    services.session.rollback()
    instance = services.instances.start_process(people["rita"], "mini_ticket",
                                                {"title": "Mail is down", "work_group": "ServiceDesk"})
    services.session.commit()
    work = services.session.scalar(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                           HumanTask.bpmn_id == "work", HumanTask.state == TaskStatus.READY))
    with pytest.raises(ValidationFailed) as refused:
        services.tasks.complete(people["alex"], work.id, {"symptoms": "old-gw", "workaround": "webmail"})
    assert "symptoms" in refused.value.details["fields"]
    services.session.rollback()
    # a CI in service, or a name the CMDB does not know (free text), is taken
    services.tasks.complete(people["alex"], work.id, {"symptoms": "mail-gw", "workaround": "webmail"})
    services.session.commit()
    assert services.session.scalar(select(Ticket.ci).where(Ticket.instance_id == instance.id)) == "mail-gw"
