"""Who sees an instance of a shipped process: lanes show its instances to staff in the lanes'
groups, not to every member of a group such as Requesters whose lane tasks go to one person."""

from __future__ import annotations

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_catalog import order
from tests.http.test_e2e_change import CHANGE


@pytest.fixture()
def desk(client, services) -> Desk:
    desk = Desk(client, services)
    services.users.create_user("rick", "password-1234", roles=["requester"], groups=["Requesters"])
    services.session.commit()
    return desk


def visible(desk: Desk, who: str, instance_id: int) -> tuple[int, int, bool]:
    """(status of the instance, status of its history, listed in GET /instances)."""
    headers = desk.auth(who)
    one = desk.client.get(f"/api/v1/instances/{instance_id}", headers=headers).status_code
    history = desk.client.get(f"/api/v1/instances/{instance_id}/history", headers=headers).status_code
    listed = desk.client.get("/api/v1/instances?per_page=100", headers=headers).get_json()["items"]
    return one, history, instance_id in {item["id"] for item in listed}


def test_a_requester_does_not_see_another_requesters_change_through_the_requesters_lane(desk: Desk):
    change = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal"})
    definition = desk.services.definitions.latest("change_enablement")
    assert "Requesters" in definition.lanes
    assert visible(desk, "rick", change["id"]) == (404, 404, False)
    assert visible(desk, "rita", change["id"]) == (404, 404, False)
    assert visible(desk, "alex", change["id"]) == (200, 200, True)      # his own
    assert visible(desk, "cora", change["id"]) == (200, 200, True)      # ChangeManagers lane, approver
    assert visible(desk, "aude", change["id"]) == (200, 200, True)      # auditor
    # and the record agrees
    number = change["data"]["record_number"]
    assert desk.client.get(f"/api/v1/tickets/{number}", headers=desk.auth("rick")).status_code == 404


def test_a_requester_who_holds_a_task_in_the_instance_sees_it(desk: Desk, services):
    """A catalog request approved by the requester's line manager: make the manager a plain
    requester (not in the LineManagers lane's staff), and the task still shows them the instance."""
    services.users.create_user("lena", "password-1234", roles=["requester"], groups=["Requesters"])
    services.users.set_manager("rick", "lena")
    services.session.commit()
    instance_id = order(desk, "HW-LAPTOP", who="rick")["instance_id"]
    assert visible(desk, "rita", instance_id) == (404, 404, False)
    inbox = desk.client.get("/api/v1/tasks", headers=desk.auth("lena")).get_json()["items"]
    assert [t for t in inbox if t["instance_id"] == instance_id], inbox
    assert visible(desk, "lena", instance_id) == (200, 200, True)


def test_who_acts_on_a_record_sees_its_process_and_cancels_it(desk: Desk, services):
    """QA: a process owner (in no lane's group) was offered "Cancel" on every record, and the
    cancellation answered 404: the instance behind the record was not hers to see. Whoever
    acts on a record (the desk's staff, its requester, assignee and group) sees its process;
    a watcher reads the record only."""
    services.users.create_user("nico", "password-1234", roles=["agent"], groups=["Facilities"])
    services.session.commit()
    change = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal"})
    number = change["data"]["record_number"]
    assert desk.client.get(f"/api/v1/tickets/{number}", headers=desk.auth("olga")).status_code == 200
    # process owner and an agent of no lane of the change process: they see every record, so its process too
    assert visible(desk, "olga", change["id"]) == (200, 200, True)
    assert visible(desk, "nico", change["id"]) == (200, 200, True)
    assert visible(desk, "rick", change["id"]) == (404, 404, False)  # still nobody else's
    response = desk.client.post(f"/api/v1/instances/{change['id']}/cancel", headers=desk.auth("olga"),
                                json={"reason": "Raised twice"})
    assert response.status_code == 200, response.get_json()
    assert desk.record(number)["status"] == "cancelled"
