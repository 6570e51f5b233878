"""Security review: a user in a group who holds only the requester role picked up, and was handed,
the group's queue work (its triage, its investigations), and read the records assigned to the
group, which the desk's staff work. Group membership gives queue work only with a role that works
a group's tasks (``policy.QUEUE_ROLES``: agent, approver, process owner, admin), as it already
gave the sight of the group's task records (``records.task_reaches``). A requester in a group
still works what is assigned to her by name (a "Requesters" lane's tasks are)."""

from __future__ import annotations

import io

import pytest

from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import open_incident, triage


@pytest.fixture()
def desk(client, services) -> Desk:
    desk = Desk(client, services)
    # a requester put into the service desk's and the network team's groups (by mistake, or a
    # distribution list mirrored from the directory): no agent role
    services.users.create_user("rae", "password-1234", roles=["requester"], groups=["ServiceDesk", "NetworkTeam"])
    services.session.commit()
    return desk


def queue(desk: Desk, who: str) -> list[int]:
    return [t["id"] for t in desk.client.get("/api/v1/tasks?per_page=200", headers=desk.auth(who)).get_json()["items"]]


def test_a_requester_in_a_group_neither_sees_nor_claims_its_queue(desk: Desk):
    number, _ = open_incident(desk)
    triage_task = desk.task_id(number, "triage")
    assert triage_task in queue(desk, "alex")  # an agent of ServiceDesk
    assert triage_task not in queue(desk, "rae")
    assert_error(desk.client.get(f"/api/v1/tasks/{triage_task}", headers=desk.auth("rae")), 404)
    assert_error(desk.client.post(f"/api/v1/tasks/{triage_task}/claim", headers=desk.auth("rae")), 404)
    triage(desk, number)  # to NetworkTeam: the record's assignment group
    work = desk.task_id(number, "investigate", "nina")
    assert work not in queue(desk, "rae")
    assert_error(desk.client.post(f"/api/v1/tasks/{work}/claim", headers=desk.auth("rae")), 404)
    # nor does the group's record show itself to her (rita's incident, assigned to NetworkTeam)
    assert_error(desk.client.get(f"/api/v1/tickets/{number}", headers=desk.auth("rae")), 404)
    listed = desk.client.get("/api/v1/tickets?per_page=200", headers=desk.auth("rae")).get_json()["items"]
    assert number not in [t["number"] for t in listed]


def test_an_agent_cannot_hand_the_groups_work_to_a_member_without_the_role(desk: Desk):
    number, _ = open_incident(desk)
    triage(desk, number)
    work = desk.task_id(number, "investigate", "nina")
    refused = assert_error(desk.client.post(f"/api/v1/tasks/{work}/reassign", headers=desk.auth("nina"),
                                            json={"username": "rae"}), 422)
    made_up = assert_error(desk.client.post(f"/api/v1/tasks/{work}/reassign", headers=desk.auth("nina"),
                                            json={"username": "nobody-here"}), 422)
    assert refused["details"] == made_up["details"]  # no more said of her than of a name nobody has
    # an admin may not either: she could not complete it
    assert_error(desk.client.post(f"/api/v1/tasks/{work}/reassign", headers=desk.auth("ada"),
                                  json={"username": "rae"}), 422)


def test_the_groups_member_lists_leave_her_out(desk: Desk, services):
    """What a form's ``options_from_group`` offers, whom ``get_group_members`` gives a vote and whom
    the task page suggests: the group's staff only."""
    members = [name for name, _display in services.instances.group_members("ServiceDesk")]
    assert "alex" in members and "rae" not in members


def test_a_new_task_of_the_groups_queue_is_announced_to_its_staff_only(desk: Desk):
    """She was told of every new task of the group's queue (with the record's number and title),
    none of which she may open."""
    number, _ = open_incident(desk)
    assert any(number in n["subject"] for n in desk.notifications("alex"))
    assert not [n for n in desk.notifications("rae") if number in n["subject"]]


def told(desk: Desk, who: str, number: str) -> list[str]:
    return [n["subject"] for n in desk.notifications(who) if number in n["subject"]]


def test_the_groups_records_comments_files_and_cancelling_are_not_told_to_her(desk: Desk):
    """She was told of every comment on the group's records (its body too), every file added to or
    deleted from them and their cancelling: records she may not open. The record's people are its
    requester and whoever works it: of its group, its staff (``policy.QUEUE_ROLES``)."""
    number, _ = open_incident(desk)
    triage(desk, number)  # to NetworkTeam, nobody assigned yet: the group works it
    before = told(desk, "rae", number)
    assert desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("rita"),
                            json={"body": "It fails again from the hotel"}).status_code == 201
    sent = desk.client.post(f"/api/v1/tickets/{number}/attachments", headers=desk.auth("rita"),
                            data={"file": (io.BytesIO(b"timeout"), "vpn.log")}, content_type="multipart/form-data")
    assert sent.status_code == 201
    assert desk.client.delete(f"/api/v1/tickets/{number}/attachments/{sent.get_json()['id']}",
                              headers=desk.auth("rita")).status_code == 204
    assert desk.client.post(f"/api/v1/instances/{desk.record(number)['instance_id']}/cancel",
                            headers=desk.auth("nina"), json={"reason": "duplicate"}).status_code == 200
    assert len(told(desk, "nina", number)) >= 3  # the group's agent heard of the comment and the files
    assert told(desk, "rae", number) == before


def test_a_member_whose_role_is_taken_away_is_told_no_more_of_the_groups_records(desk: Desk, services):
    number, _ = open_incident(desk)
    triage(desk, number)
    services.users.update_user(None, "nina", {"roles": ["requester"]})
    services.session.commit()
    before = told(desk, "nina", number)
    assert desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("rita"),
                            json={"body": "Any news?"}).status_code == 201
    assert told(desk, "nina", number) == before
