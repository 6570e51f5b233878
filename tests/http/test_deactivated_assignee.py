"""Tasks assigned by name to a person who leaves: deactivating them says which tasks wait on them,
and an admin hands each to someone who may do it (a member of its group or an admin; anyone
active for a task outside any lane), who then finds it in their inbox. A task assigned to an
active person keeps today's rule: only an admin may be handed it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import AuditEvent, HumanTask
from tests.http.desk import LAPTOP, Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN"}


@pytest.fixture()
def desk(client, services) -> Desk:
    desk = Desk(client, services)
    # a second line manager, and a service desk agent outside the line managers' group
    services.users.create_user("lena", "password-1234", roles=["approver"], groups=["LineManagers"])
    services.users.create_user("sam", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    services.session.commit()
    return desk


def events(services, kind):
    services.session.expire_all()
    return [e.payload for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == kind).order_by(AuditEvent.seq))]


def order_laptop(desk: Desk) -> tuple[str, int]:
    """rita orders a laptop: its approval is assigned to her line manager mona by name (lane
    LineManagers; rita, the requester, is excluded from it)."""
    response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert response.status_code == 201, response.get_json()
    number = response.get_json()["number"]
    return number, desk.task_id(number, "approve_manager")


def reassign(desk: Desk, task_id: int, to: str, who: str = "ada"):
    return desk.client.post(f"/api/v1/tasks/{task_id}/reassign", headers=desk.auth(who), json={"username": to})


def inbox(desk: Desk, who: str) -> list[int]:
    body = desk.client.get("/api/v1/tasks?mine=1&per_page=200", headers=desk.auth(who)).get_json()
    return [t["id"] for t in body["items"]]


def refused_for_username(response, *words: str) -> str:
    body = assert_error(response, 422)
    [reason] = body["details"]["fields"]["username"]
    assert all(word in reason for word in words), reason
    return str(reason)


def test_deactivating_names_the_tasks_waiting_on_the_person(desk: Desk, services):
    number, approval = order_laptop(desk)
    done = desk.client.post("/api/v1/users/MONA/deactivate", headers=desk.auth("ada"))
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["active"] is False and body["released_tasks"] == []
    assert body["assigned_task_count"] == 1
    [waiting] = body["assigned_tasks"]
    assert waiting["name"] and waiting == {
        "id": approval, "name": waiting["name"], "bpmn_id": "approve_manager", "record": number,
        "instance_id": desk.record(number)["instance_id"], "href": f"/api/v1/tasks/{approval}",
        "reassign": f"/api/v1/tasks/{approval}/reassign"}
    assert events(services, "user_deactivated")[-1] == {"username": "mona", "released_tasks": [],
                                                        "assigned_tasks": [approval]}
    # the task still waits on mona: in nobody's inbox, not even hers (she cannot sign in)
    assert desk.client.get(f"/api/v1/tasks/{approval}", headers=desk.auth("aude")).get_json()["assigned_user"] == "mona"
    # asking again changes nothing and says it again
    again = desk.client.post("/api/v1/users/mona/deactivate", headers=desk.auth("ada")).get_json()
    assert again["assigned_task_count"] == 1 and again["assigned_tasks"][0]["id"] == approval
    assert len(events(services, "user_deactivated")) == 1
    # someone with no such task: the count says none
    quiet = desk.client.post("/api/v1/users/sonia/deactivate", headers=desk.auth("ada")).get_json()
    assert quiet["assigned_task_count"] == 0 and quiet["assigned_tasks"] == []
    assert events(services, "user_deactivated")[-1] == {"username": "sonia", "released_tasks": []}


def test_deactivating_by_patch_and_reading_the_leaver_name_the_waiting_tasks_too(desk: Desk, services):
    number, approval = order_laptop(desk)
    # an active user's answer carries no such list: nothing can wait on them unseen
    active = desk.client.get("/api/v1/users/mona", headers=desk.auth("ada")).get_json()
    assert active["active"] is True and "assigned_tasks" not in active
    patched = desk.client.patch("/api/v1/users/mona", json={"active": False}, headers=desk.auth("ada"))
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert body["active"] is False and body["assigned_task_count"] == 1
    assert [(t["id"], t["record"], t["reassign"]) for t in body["assigned_tasks"]] == [
        (approval, number, f"/api/v1/tasks/{approval}/reassign")]
    assert events(services, "user_deactivated")[-1]["assigned_tasks"] == [approval]
    # an auditor reading the leaver later sees the same list, until the task is handed on
    read = desk.client.get("/api/v1/users/MONA", headers=desk.auth("aude")).get_json()
    assert [t["id"] for t in read["assigned_tasks"]] == [approval]
    assert reassign(desk, approval, "lena").status_code == 200
    read = desk.client.get("/api/v1/users/mona", headers=desk.auth("aude")).get_json()
    assert read["assigned_task_count"] == 0 and read["assigned_tasks"] == []
    # reactivating by patch: an active user again, without the list
    back = desk.client.patch("/api/v1/users/mona", json={"active": True}, headers=desk.auth("ada")).get_json()
    assert back["active"] is True and "assigned_tasks" not in back


def test_an_admin_hands_a_leavers_group_task_to_a_member_of_its_group(desk: Desk, services):
    number, approval = order_laptop(desk)
    # while mona is active, the task is hers alone: today's rule
    refused_for_username(reassign(desk, approval, "lena"), "assigned to mona alone")
    assert desk.client.post("/api/v1/users/mona/deactivate", headers=desk.auth("ada")).status_code == 200

    assert_error(reassign(desk, approval, "lena", who="alex"), 404)  # not even visible to him
    assert_error(reassign(desk, approval, "lena", who="aude"), 403)  # an auditor sees it, may not
    refused_for_username(reassign(desk, approval, "sam"), "LineManagers")  # not of the lane's group
    refused_for_username(reassign(desk, approval, "aude"), "auditors")
    refused_for_username(reassign(desk, approval, "mona"), "deactivated")
    # a line manager's approval is an approver's: rita, a requester put into the group, is no one to hand it to
    assert desk.client.post("/api/v1/groups/linemanagers/members", json={"username": "rita"},
                            headers=desk.auth("ada")).status_code == 200
    refused_for_username(reassign(desk, approval, "rita"), "LineManagers")
    # separation of duties holds: rita, made an approver too, still may not approve her own request
    services.users.update_user(None, "rita", {"roles": ["requester", "approver"]})
    services.session.commit()
    refused_for_username(reassign(desk, approval, "rita"), "your own request")
    assert assert_error(reassign(desk, approval, "ghost"), 404)
    task = desk.client.get(f"/api/v1/tasks/{approval}", headers=desk.auth("aude")).get_json()
    assert task["assigned_user"] == "mona" and task["claimed_by"] is None  # the refusals changed nothing

    moved = reassign(desk, approval, "LENA")
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["assigned_user"] == "lena" and moved.get_json()["claimed_by"] is None
    audited = events(services, "task_reassigned")[-1]
    assert audited["from"] == "mona" and audited["to"] == "lena" and audited["reason"] == "assigned_user_deactivated"
    assert audited["from_user_id"] == services.users.get_by_username("mona").id
    assert audited["to_user_id"] == services.users.get_by_username("lena").id
    assert approval in inbox(desk, "lena")  # in her inbox, as if the process had named her
    desk.complete(number, "approve_manager", "lena", {"approved": True})
    assert "approve_manager" not in desk.ready(number)


def test_a_task_of_a_leaver_goes_to_an_admin(desk: Desk, services):
    _number, approval = order_laptop(desk)
    desk.client.post("/api/v1/users/mona/deactivate", headers=desk.auth("ada"))
    moved = reassign(desk, approval, "ada")
    assert moved.status_code == 200 and moved.get_json()["assigned_user"] == "ada"
    assert approval in inbox(desk, "ada")


def test_a_task_of_an_active_person_keeps_todays_rule(desk: Desk, services):
    _number, approval = order_laptop(desk)
    refused_for_username(reassign(desk, approval, "lena"), "assigned to mona alone")
    moved = reassign(desk, approval, "ada")  # an admin may be handed it, as a claim
    assert moved.status_code == 200
    assert moved.get_json()["assigned_user"] == "mona" and moved.get_json()["claimed_by"] == "ada"
    assert "from" not in events(services, "task_reassigned")[-1]


#: A process outside any lane: one check, assigned by name to ``owner``, which ``barred`` may not do.
LANELESS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_owner_check" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="owner_check" name="Owner check" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="check" name="Check it">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="assignedUserVar" value="owner"/>
          <spiffworkflow:property name="excludeUsersVars" value="barred"/>
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check"/>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_lane_less_task_of_a_leaver_goes_to_any_active_person(desk: Desk, services):
    services.definitions.deploy(services.users.get_by_username("olga"), [("owner_check.bpmn", LANELESS)])
    services.session.commit()
    instance = desk.start("rita", "owner_check", {"owner": "sonia", "barred": "alex"})
    [check] = [t["id"] for t in instance["open_tasks"] if t["bpmn_id"] == "check"]
    task = desk.client.get(f"/api/v1/tasks/{check}", headers=desk.auth("aude")).get_json()
    assert task["assigned_user"] == "sonia" and task["lane"] is None
    refused_for_username(reassign(desk, check, "sam"), "assigned to sonia alone")

    gone = desk.client.post("/api/v1/users/sonia/deactivate", headers=desk.auth("ada")).get_json()
    assert [t["id"] for t in gone["assigned_tasks"]] == [check] and gone["assigned_tasks"][0]["record"] is None
    refused_for_username(reassign(desk, check, "aude"), "auditors")
    refused_for_username(reassign(desk, check, "alex"), "separation of duties")  # outside lanes too
    moved = reassign(desk, check, "sam")  # outside any lane: any active person who works tasks
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["assigned_user"] == "sam" and check in inbox(desk, "sam")
    # now it is sam's, an active person's: today's rule again
    refused_for_username(reassign(desk, check, "nina"), "assigned to sam alone")
    done = desk.client.post(f"/api/v1/tasks/{check}/complete", headers=desk.auth("sam"), json={"data": {}})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "completed"


def test_a_leavers_confirmation_in_a_placeholder_lane_goes_to_an_admin(desk: Desk, services):
    """An incident's confirmation is the requester's, in the Resolvers lane of the work (no group of
    people): when the requester leaves, an admin takes it."""
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    record = desk.record(number)
    desk.complete(number, "triage", "alex", {"category": record["category"], "priority": record["priority"],
                                             "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Restarted it",
                                                  "cause_category": "configuration"})
    confirm = desk.task_id(number, "confirm_resolution")
    gone = desk.client.post("/api/v1/users/rita/deactivate", headers=desk.auth("ada")).get_json()
    assert [t["record"] for t in gone["assigned_tasks"]] == [number]
    refused_for_username(reassign(desk, confirm, "nina"), "Resolvers")
    moved = reassign(desk, confirm, "ada")
    assert moved.status_code == 200 and moved.get_json()["assigned_user"] == "ada"
    desk.complete(number, "confirm_resolution", "ada", {"confirmed": True, "comment": "rita has left"})
    assert desk.record(number)["status"] == "closed"


def test_a_task_assigned_to_nobody_who_exists_can_be_handed_on(desk: Desk, services):
    _number, approval = order_laptop(desk)
    row = services.session.get(HumanTask, approval)
    row.assigned_user = "mona.old"  # the data named a user who is not (or no longer) there
    services.session.commit()
    refused_for_username(reassign(desk, approval, "sam"), "LineManagers")
    moved = reassign(desk, approval, "lena")
    assert moved.status_code == 200 and moved.get_json()["assigned_user"] == "lena"
    audited = events(services, "task_reassigned")[-1]
    assert audited["from"] == "mona.old" and audited["from_user_id"] is None
    assert audited["reason"] == "assigned_user_unknown"


def test_an_auditor_who_also_works_tasks_may_take_a_leavers_task(desk: Desk, services):
    """Review: only a read-only auditor works no task; one who is also an approver in the group may
    be handed a leaver's approval, as everywhere else."""
    _number, approval = order_laptop(desk)
    services.users.create_user("vera", "password-1234", roles=["auditor", "approver"], groups=["LineManagers"])
    services.session.commit()
    assert desk.client.post("/api/v1/users/mona/deactivate", headers=desk.auth("ada")).status_code == 200
    moved = reassign(desk, approval, "vera")
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["assigned_user"] == "vera"
