"""Moving running instances to another version of their process, through the API
(app/services/migration.py): one instance, or every instance of a version."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.http.desk import Desk
from tests.http.helpers import assert_error, upload
from tools.bpmn_builder import Diagram, pretty

ROOT = Path(__file__).resolve().parents[2]
START = {"title": "Printer jams", "description": "Every second page", "category": "hardware",
         "impact": "medium", "urgency": "medium"}
TRIAGE = {"category": "hardware", "priority": "P3", "assignment_group": "DesktopSupport"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def deploy(desk: Desk, files: list[tuple[str, bytes]]) -> dict:
    response = upload(desk.client, desk.auth("olga"), files)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def incident_v2(desk: Desk) -> None:
    """The shipped incident process with its investigation task renamed."""
    xml = (ROOT / "processes" / "incident_management.bpmn").read_text(encoding="utf-8")
    changed = xml.replace('name="Investigate and resolve"', 'name="Investigate and diagnose"')
    assert changed != xml
    deploy(desk, [("incident_management.bpmn", changed.encode())])


def flow(*steps: str) -> bytes:
    """A process 'mig_flow' of user tasks in a row, open to staff (no record)."""
    d = Diagram("mig_flow", "Migration flow")
    d.node("start", "start", col=0)
    for i, step in enumerate(steps, start=1):
        d.node(step, "user", step.title(), col=i)
    d.node("end", "end", col=len(steps) + 1)
    d.chain("start", *steps, "end")
    return pretty(d.to_xml()).encode()


def start_flow(desk: Desk) -> dict:
    response = desk.client.post("/api/v1/instances", headers=desk.auth("olga"),
                                json={"process_id": "mig_flow", "data": {}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def complete(desk: Desk, instance: dict, bpmn_id: str, who: str = "olga") -> dict:
    [task] = [t for t in instance["open_tasks"] if t["bpmn_id"] == bpmn_id]
    response = desk.client.post(f"/api/v1/tasks/{task['id']}/complete", headers=desk.auth(who), json={"data": {}})
    assert response.status_code == 200, response.get_json()
    return desk.instance(instance["id"], "olga")


def migrate(desk: Desk, instance_id: int, who: str = "olga", **body: object):
    return desk.client.post(f"/api/v1/instances/{instance_id}/migrate", headers=desk.auth(who), json=body)


def test_a_running_incident_moves_keeping_its_task_claim_and_record(desk: Desk):
    instance = desk.start("rita", "incident_management", START)
    number = instance["data"]["record_number"]
    triage_id = desk.task_id(number, "triage")
    assert desk.client.post(f"/api/v1/tasks/{triage_id}/claim", headers=desk.auth("alex")).status_code == 200
    incident_v2(desk)

    plan = desk.client.get(f"/api/v1/instances/{instance['id']}/migration", headers=desk.auth("olga")).get_json()
    assert plan["possible"] is True and plan["from_version"] == 1 and plan["to_version"] == 2
    assert "triage" in plan["kept"] and plan["unmapped"] == []

    response = migrate(desk, instance["id"])
    assert response.status_code == 200, response.get_json()
    moved = response.get_json()
    assert moved["version"] == 2 and moved["migration"]["from_version"] == 1
    [triage] = [t for t in moved["open_tasks"] if t["bpmn_id"] == "triage"]
    assert triage["id"] == triage_id and triage["claimed_by"] == "alex"
    events = [e for e in desk.history(instance["id"]) if e["type"] == "instance_migrated"]
    assert len(events) == 1 and events[0]["actor"] == "olga"

    desk.complete(number, "triage", "alex", TRIAGE)
    investigate = [t for t in desk.record(number)["open_tasks"] if t["bpmn_id"] == "investigate"]
    assert investigate and investigate[0]["name"] == "Investigate and diagnose"
    assert desk.record(number)["priority"] == "P3"

    again = migrate(desk, instance["id"], version=2)
    body = assert_error(again, 422, "validation_failed")
    assert "version" in body["details"]["fields"]


def test_only_process_owners_and_admins_move_instances(desk: Desk):
    instance = desk.start("rita", "incident_management", START)
    incident_v2(desk)
    for who, status in (("alex", 403), ("rita", 403), ("aude", 403), ("mona", 404)):
        assert_error(migrate(desk, instance["id"], who), status)
        assert desk.client.get(f"/api/v1/instances/{instance['id']}/migration",
                               headers=desk.auth(who)).status_code == status
    assert desk.instance(instance["id"])["version"] == 1
    assert migrate(desk, instance["id"], "ada").status_code == 200
    assert_error(migrate(desk, 999_999), 404)


def test_an_open_task_the_version_lacks_refuses_the_move_naming_it(desk: Desk):
    deploy(desk, [("mig_flow.bpmn", flow("first", "second"))])
    instance = complete(desk, start_flow(desk), "first")
    task_ids = [t["id"] for t in instance["open_tasks"]]
    deploy(desk, [("mig_flow.bpmn", flow("first"))])
    plan = desk.client.get(f"/api/v1/instances/{instance['id']}/migration?version=2",
                           headers=desk.auth("olga")).get_json()
    assert plan["possible"] is False and plan["unmapped"] == ["second"]
    body = assert_error(migrate(desk, instance["id"], version=2), 422, "migration_refused")
    assert body["details"]["unmapped"] == ["second"] and "second" in body["details"]["fields"]["version"][0]
    after = desk.instance(instance["id"], "olga")
    assert after["version"] == 1 and [t["id"] for t in after["open_tasks"]] == task_ids
    assert_error(migrate(desk, instance["id"], version=7), 404)


def test_a_finished_instance_does_not_move(desk: Desk):
    deploy(desk, [("mig_flow.bpmn", flow("first"))])
    instance = complete(desk, start_flow(desk), "first")
    assert instance["status"] == "completed"
    deploy(desk, [("mig_flow.bpmn", flow("first", "second"))])
    assert_error(migrate(desk, instance["id"]), 409, "instance_not_running")


def test_a_version_s_instances_move_together_and_the_refused_stay(desk: Desk):
    deploy(desk, [("mig_flow.bpmn", flow("first", "second"))])
    at_first = [start_flow(desk) for _ in range(3)]
    at_second = complete(desk, start_flow(desk), "first")
    deploy(desk, [("mig_flow.bpmn", flow("first"))])
    url = "/api/v1/definitions/mig_flow/migrate"

    dry = desk.client.post(url, headers=desk.auth("olga"), json={"from_version": 1, "dry_run": True}).get_json()
    assert dry["dry_run"] is True and dry["moved"] == [i["id"] for i in at_first]
    assert [r["instance_id"] for r in dry["refused"]] == [at_second["id"]] and dry["refused"][0]["unmapped"] == ["second"]
    assert all(desk.instance(i["id"], "olga")["version"] == 1 for i in at_first)

    assert_error(desk.client.post(url, headers=desk.auth("alex"), json={"from_version": 1}), 403)
    assert_error(desk.client.post(url, headers=desk.auth("olga"), json={"from_version": 2}), 422)
    assert_error(desk.client.post(url, headers=desk.auth("olga"), json={"from_version": 9}), 404)
    assert_error(desk.client.post(url, headers=desk.auth("olga"), json={"from_version": "1"}), 422)

    done = desk.client.post(url, headers=desk.auth("olga"), json={"from_version": 1}).get_json()
    assert done["moved"] == [i["id"] for i in at_first] and done["remaining"] == 0 and done["to_version"] == 2
    assert [r["instance_id"] for r in done["refused"]] == [at_second["id"]]
    moved = desk.instance(at_first[0]["id"], "olga")
    assert moved["version"] == 2
    moved = complete(desk, moved, "first")
    assert moved["status"] == "completed"
    assert desk.instance(at_second["id"], "olga")["version"] == 1


def test_the_command_line_moves_a_version_s_instances_and_names_those_that_stay(app, desk: Desk):
    deploy(desk, [("mig_flow.bpmn", flow("first", "second"))])
    at_first = start_flow(desk)
    at_second = complete(desk, start_flow(desk), "first")
    deploy(desk, [("mig_flow.bpmn", flow("first"))])
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["processes", "migrate", "mig_flow", "--from", "1", "--dry-run"])
    assert dry.exit_code == 1, dry.output
    assert "1 instance(s) would move from version 1 to version 2; 1 stay" in dry.output
    assert f"instance {at_second['id']}: stays on version 1" in dry.output and "second" in dry.output
    assert desk.instance(at_first["id"], "olga")["version"] == 1
    done = runner.invoke(args=["processes", "migrate", "mig_flow", "--from", "1"])
    assert "1 instance(s) moved from version 1 to version 2; 1 stay" in done.output
    assert desk.instance(at_first["id"], "olga")["version"] == 2
    events = [e for e in desk.history(at_first["id"]) if e["type"] == "instance_migrated"]
    assert [e["actor"] for e in events] == ["command line"]
    unknown = runner.invoke(args=["processes", "migrate", "mig_flow", "--from", "5"])
    assert unknown.exit_code != 0 and "no version 5" in unknown.output


def laned(lane: str) -> bytes:
    """'mig_flow' with its one task in ``lane``."""
    d = Diagram("mig_flow", "Migration flow", lanes=["ServiceDesk", "NetworkTeam"])
    d.node("start", "start", lane="ServiceDesk", col=0)
    d.node("first", "user", "First", lane=lane, col=1)
    d.node("end", "end", lane="ServiceDesk", col=2)
    d.chain("start", "first", "end")
    return pretty(d.to_xml()).encode()


def test_a_claim_the_new_version_puts_outside_the_queue_is_released(desk: Desk):
    deploy(desk, [("mig_flow.bpmn", laned("ServiceDesk"))])
    instance = start_flow(desk)
    [task] = instance["open_tasks"]
    assert desk.client.post(f"/api/v1/tasks/{task['id']}/claim", headers=desk.auth("alex")).status_code == 200
    deploy(desk, [("mig_flow.bpmn", laned("NetworkTeam"))])
    moved = migrate(desk, instance["id"]).get_json()
    [after] = moved["open_tasks"]
    assert after["id"] == task["id"] and after["lane"] == "NetworkTeam" and after["claimed_by"] is None
    released = [e for e in desk.history(instance["id"]) if e["type"] == "task_unclaimed"]
    assert len(released) == 1 and released[0]["payload"]["previous_claimant"] == "alex"
    nina = desk.client.post(f"/api/v1/tasks/{task['id']}/claim", headers=desk.auth("nina"))
    assert nina.status_code == 200, nina.get_json()  # NetworkTeam's queue now


def test_a_claim_the_new_version_still_allows_is_kept(desk: Desk):
    deploy(desk, [("mig_flow.bpmn", laned("ServiceDesk"))])
    instance = start_flow(desk)
    [task] = instance["open_tasks"]
    assert desk.client.post(f"/api/v1/tasks/{task['id']}/claim", headers=desk.auth("alex")).status_code == 200
    deploy(desk, [("mig_flow.bpmn", laned("ServiceDesk").replace(b'name="First"', b'name="First step"'))])
    [after] = migrate(desk, instance["id"]).get_json()["open_tasks"]
    assert after["claimed_by"] == "alex" and after["name"] == "First step"


def test_owners_move_every_instance_of_a_version_seen_or_not(desk: Desk):
    deploy(desk, [("mig_flow.bpmn", flow("first", "second"))])
    own = start_flow(desk)
    others = desk.client.post("/api/v1/instances", headers=desk.auth("ada"), json={"process_id": "mig_flow", "data": {}})
    assert others.status_code == 201
    assert desk.client.get(f"/api/v1/instances/{others.get_json()['id']}", headers=desk.auth("olga")).status_code == 404
    deploy(desk, [("mig_flow.bpmn", flow("first", "second", "third"))])
    # one at a time, the answer is the instance with its data: only one they may see
    assert_error(migrate(desk, others.get_json()["id"]), 404)
    assert_error(desk.client.get(f"/api/v1/instances/{others.get_json()['id']}/migration",
                                 headers=desk.auth("olga")), 404)
    done = desk.client.post("/api/v1/definitions/mig_flow/migrate", headers=desk.auth("olga"),
                            json={"from_version": 1}).get_json()
    assert done["moved"] == [own["id"], others.get_json()["id"]] and done["refused"] == []
    assert set(done) == {"process_id", "from_version", "to_version", "dry_run", "moved", "refused", "remaining",
                         "next_after"}  # ids, no data


def test_a_bulk_move_leaves_an_instance_moved_elsewhere_since_where_it_is(desk: Desk, services):
    deploy(desk, [("mig_flow.bpmn", flow("first", "second"))])
    instance = start_flow(desk)
    deploy(desk, [("mig_flow.bpmn", flow("first", "second", "third"))])
    deploy(desk, [("mig_flow.bpmn", flow("first", "second", "fourth"))])
    assert migrate(desk, instance["id"], version=3).status_code == 200
    version_one = services.definitions.version("mig_flow", 1)
    olga = services.users.get_by_username("olga")
    from app.errors import Conflict

    with pytest.raises(Conflict) as info:
        services.migration.migrate(olga, instance["id"], 2, from_definition_id=version_one.id)
    assert info.value.code == "instance_moved" and info.value.details == {"current_version": 3}
    services.session.rollback()
    assert desk.instance(instance["id"], "olga")["version"] == 3


def test_a_refused_move_leaves_the_instance_working_on_its_version(desk: Desk):
    """The next step works on the version the instance stayed on, as if no move was tried."""
    deploy(desk, [("mig_flow.bpmn", flow("first", "second"))])
    instance = complete(desk, start_flow(desk), "first")
    d = Diagram("mig_flow", "Migration flow")
    d.node("start", "start", col=0)
    d.node("first", "user", "First", col=1)
    d.node("second", "script", "Second", col=2, script="x = 1 / 0")
    d.node("end", "end", col=3)
    d.chain("start", "first", "second", "end")
    deploy(desk, [("mig_flow.bpmn", pretty(d.to_xml()).encode())])
    body = assert_error(migrate(desk, instance["id"]), 422, "migration_refused")
    assert "division by zero" in body["message"] and body["details"]["element_id"] == "second"
    done = complete(desk, desk.instance(instance["id"], "olga"), "second")
    assert done["status"] == "completed" and done["version"] == 1


def test_a_task_the_move_puts_in_another_queue_is_announced_there(desk: Desk):
    deploy(desk, [("mig_flow.bpmn", laned("ServiceDesk"))])
    instance = start_flow(desk)
    deploy(desk, [("mig_flow.bpmn", laned("NetworkTeam"))])
    before = len(desk.notifications("nina"))
    assert migrate(desk, instance["id"]).status_code == 200
    told = desk.notifications("nina")[: len(desk.notifications("nina")) - before]
    assert [n["subject"] for n in told] == [f"New task: First (mig_flow #{instance['id']})"]


def test_a_move_is_not_the_desk_s_first_response_on_the_record(desk: Desk):
    """The move re-prepares a catalog approval whose new pre-script writes a mapped detail: the
    record changes, but nobody answered the requester."""
    from tests.http.test_e2e_catalog import order

    record = order(desk, "HW-LAPTOP")
    xml = (ROOT / "processes" / "catalog_request.bpmn").read_text(encoding="utf-8")
    marker = "<spiffworkflow:postScript>approved_by = decided_by if approved else None"
    assert marker in xml
    changed = xml.replace(marker, '<spiffworkflow:preScript>approval_comment = "awaiting " + line_manager'
                                  "</spiffworkflow:preScript>" + marker, 1)
    deploy(desk, [("catalog_request.bpmn", changed.encode())])
    moved = migrate(desk, record["instance_id"])
    assert moved.status_code == 200 and moved.get_json()["migration"]["changed"]
    after = desk.record(record["number"])
    assert after["details"]["approval_comment"].startswith("awaiting ")
    assert after["first_response_at"] is None
    clocks = desk.client.get(f"/api/v1/tickets/{record['number']}/sla", headers=desk.auth("aude")).get_json()
    assert [c["state"] for c in clocks["clocks"] if c["name"] == "response"] == ["running"], clocks
