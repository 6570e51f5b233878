"""Several tasks at once (``POST /api/v1/tasks/bulk``): claimed, released or handed to one person
by the rules of each task's own endpoint, all or none, every change audited as its single action."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, HumanTask
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import open_incident, triage


@pytest.fixture()
def desk(client, services) -> Desk:
    desk = Desk(client, services)
    services.users.create_user("nils", "password-1234", roles=["agent"], groups=["NetworkTeam"])
    services.session.commit()
    return desk


def bulk(desk: Desk, who: str, action: str, task_ids: list[Any], **body: Any) -> Any:
    return desk.client.post("/api/v1/tasks/bulk", headers=desk.auth(who),
                            json={"action": action, "task_ids": task_ids, **body})


def investigations(desk: Desk, count: int) -> list[int]:
    """``count`` incidents triaged to NetworkTeam: their investigate tasks, in nina's queue."""
    ids = []
    for _ in range(count):
        number, _instance = open_incident(desk)
        triage(desk, number)
        ids.append(desk.task_id(number, "investigate", "nina"))
    return ids


def claimants(services, task_ids: list[int]) -> list[str | None]:
    services.session.expire_all()
    tasks = {t.id: t for t in services.session.scalars(select(HumanTask).where(HumanTask.id.in_(task_ids)))}
    return [tasks[i].claimed_by.username if tasks[i].claimed_by else None for i in task_ids]


def events(services, event_type: str) -> int:
    return services.session.scalar(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.event_type == event_type))


def test_an_agent_claims_three_tasks_in_one_call_each_audited(desk: Desk, services):
    ids = investigations(desk, 3)
    answer = bulk(desk, "nina", "claim", ids)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["action"] == "claim" and body["changed"] == 3
    assert [item["task"]["id"] for item in body["items"]] == ids
    assert all(item["changed"] and item["task"]["claimed_by"] == "nina" for item in body["items"])
    assert claimants(services, ids) == ["nina"] * 3
    assert events(services, "task_claimed") == 3
    # again: already hers, so nothing changes and nothing more is audited
    again = bulk(desk, "nina", "claim", list(reversed(ids)) + [ids[0]])
    assert again.status_code == 200
    assert again.get_json()["changed"] == 0
    assert [item["task"]["id"] for item in again.get_json()["items"]] == list(reversed(ids))
    assert events(services, "task_claimed") == 3


def test_one_refused_task_refuses_the_call_and_changes_nothing(desk: Desk, services):
    ids = investigations(desk, 3)
    assert desk.client.post(f"/api/v1/tasks/{ids[1]}/claim", headers=desk.auth("nina")).status_code == 200
    refused = assert_error(bulk(desk, "nils", "claim", ids), 409, "bulk_refused")
    tasks = refused["details"]["tasks"]
    assert list(tasks) == [str(ids[1])]
    assert tasks[str(ids[1])]["status"] == 403 and "claimed" in tasks[str(ids[1])]["message"]
    assert "nothing was changed" in refused["message"]
    assert claimants(services, ids) == [None, "nina", None]
    assert events(services, "task_claimed") == 1  # nina's own claim only
    denied = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert [(e.actor, e.task_id) for e in denied] == [("nils", ids[1])]  # the refusal is still audited


def test_tasks_the_caller_may_not_see_are_named_as_not_found(desk: Desk, services):
    ids = investigations(desk, 1)
    refused = assert_error(bulk(desk, "alex", "claim", [ids[0], 999_999]), 409, "bulk_refused")
    tasks = refused["details"]["tasks"]
    assert tasks == {str(ids[0]): {"status": 404, "error": "not_found", "message": f"no task {ids[0]}"},
                     "999999": {"status": 404, "error": "not_found", "message": "no task 999999"}}
    assert claimants(services, ids) == [None]


def test_release_all_that_one_holds(desk: Desk, services):
    ids = investigations(desk, 3)
    for task_id in ids[:2]:
        assert desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth("nina")).status_code == 200
    answer = bulk(desk, "nina", "unclaim", ids)
    assert answer.status_code == 200, answer.get_json()
    assert [item["changed"] for item in answer.get_json()["items"]] == [True, True, False]
    assert claimants(services, ids) == [None, None, None]
    assert events(services, "task_unclaimed") == 2


def test_a_task_no_longer_open_is_told_as_its_own_endpoint_tells_it(desk: Desk, services):
    ids = investigations(desk, 2)
    number = services.session.get(HumanTask, ids[0]).instance.data["record_number"]
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Restarted the tunnel",
                                                  "cause_category": "configuration"})
    refused = assert_error(bulk(desk, "nina", "unclaim", ids), 409, "bulk_refused")
    assert refused["details"]["tasks"][str(ids[0])]["status"] == 409
    assert "completed" in refused["details"]["tasks"][str(ids[0])]["message"]


def test_an_agent_hands_the_selection_to_a_colleague_of_the_group_only(desk: Desk, services):
    ids = investigations(desk, 2)
    assert desk.client.post(f"/api/v1/tasks/{ids[0]}/claim", headers=desk.auth("nina")).status_code == 200
    answer = bulk(desk, "nils", "reassign", ids, username="NINA")
    assert answer.status_code == 200, answer.get_json()
    assert [item["changed"] for item in answer.get_json()["items"]] == [False, True]  # the first was hers
    assert claimants(services, ids) == ["nina", "nina"]
    [event] = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_reassigned")).all()
    assert event.actor == "nils" and event.task_id == ids[1] and event.payload["to"] == "nina"
    # alex is not in NetworkTeam: refused per task, as the single reassign says it, and nothing moves
    refused = assert_error(bulk(desk, "nils", "reassign", ids, username="alex"), 409, "bulk_refused")
    assert {task["status"] for task in refused["details"]["tasks"].values()} == {422}
    assert claimants(services, ids) == ["nina", "nina"]
    # a name nobody has: an agent is told what a user outside the group is told, an admin "no user"
    agent = assert_error(bulk(desk, "nils", "reassign", ids, username="ghost"), 409)
    assert {task["status"] for task in agent["details"]["tasks"].values()} == {422}
    admin = assert_error(bulk(desk, "ada", "reassign", ids, username="ghost"), 409)
    assert {task["message"] for task in admin["details"]["tasks"].values()} == {"no user ghost"}


def test_a_requester_may_not_reassign_and_learns_no_names(desk: Desk, services):
    ids = investigations(desk, 1)
    refused = assert_error(bulk(desk, "rita", "reassign", ids, username="nina"), 409)
    assert refused["details"]["tasks"][str(ids[0])]["status"] == 404  # not hers to see
    # a name nobody has is answered word for word as a name that exists: nothing learnt of the directory
    assert assert_error(bulk(desk, "rita", "reassign", ids, username="ghost"), 409) == refused
    # nor by an agent outside the task's group, who sees it but may not hand it on
    outside = assert_error(bulk(desk, "alex", "reassign", ids, username="nina"), 409)
    assert assert_error(bulk(desk, "alex", "reassign", ids, username="ghost"), 409) == outside
    assert claimants(services, ids) == [None]


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "steal", "task_ids": [1]}, "action"),
    ({"action": "claim", "task_ids": []}, "task_ids"),
    ({"action": "claim", "task_ids": list(range(1, 102))}, "task_ids"),
    ({"action": "claim", "task_ids": ["1"]}, "task_ids"),
    ({"action": "claim", "task_ids": [0]}, "task_ids"),
    ({"action": "claim", "task_ids": [2**31]}, "task_ids"),
    ({"action": "claim", "task_ids": [10**20]}, "task_ids"),
    ({"action": "claim", "task_ids": 5}, "task_ids"),
    ({"action": "claim"}, "task_ids"),
    ({"action": "reassign", "task_ids": [1]}, "username"),
    ({"action": "reassign", "task_ids": [1], "username": ""}, "username"),
    ({"action": "claim", "task_ids": [1], "note": "x"}, "note"),
])
def test_a_request_that_names_no_valid_action_ids_or_person_is_refused_by_field(desk: Desk, body, field):
    answer = desk.client.post("/api/v1/tasks/bulk", headers=desk.auth("nina"), json=body)
    refused = assert_error(answer, 422)
    assert field in refused["details"]["fields"], refused


def test_the_service_itself_refuses_what_the_schema_would(services, desk: Desk):
    from app.errors import ValidationFailed
    nina = services.users.get_by_username("nina")
    for args, field in ((("steal", [1]), "action"), (("claim", [True]), "task_ids"),
                        (("claim", list(range(1, 102))), "task_ids"),
                        (("claim", [2**31]), "task_ids"), (("reassign", [1], " "), "username")):
        with pytest.raises(ValidationFailed) as raised:
            services.bulk_tasks.apply(nina, *args)
        assert field in raised.value.details["fields"]


def test_a_task_held_already_by_a_leaver_is_refused_as_a_hand_over_to_them_would_be(desk: Desk, services):
    """Review: "already so" answered 200 for a task still claimed by a deactivated user."""
    ids = investigations(desk, 1)
    assert desk.client.post(f"/api/v1/tasks/{ids[0]}/claim", headers=desk.auth("nils")).status_code == 200
    assert desk.client.post("/api/v1/users/nils/deactivate", headers=desk.auth("ada")).status_code == 200
    single = assert_error(desk.client.post(f"/api/v1/tasks/{ids[0]}/reassign", headers=desk.auth("ada"),
                                           json={"username": "nils"}), 422)
    refused = assert_error(bulk(desk, "ada", "reassign", ids, username="nils"), 409, "bulk_refused")
    told = refused["details"]["tasks"][str(ids[0])]
    assert told["status"] == 422 and told["message"] == single["message"]
    # still as asked for an active holder: nina's own, handed to nina
    assert desk.client.post(f"/api/v1/tasks/{ids[0]}/reassign", headers=desk.auth("ada"),
                            json={"username": "nina"}).status_code == 200
    again = bulk(desk, "ada", "reassign", ids, username="nina")
    assert again.status_code == 200 and again.get_json()["changed"] == 0


def test_separation_of_duties_refuses_a_claim_in_bulk_as_it_does_alone(desk: Desk, services):
    from tests.http.test_e2e_change import ASSESS_LOW, raise_change
    services.users.create_user("zed", "password-1234", roles=["agent", "requester", "approver"],
                               groups=["ChangeManagers"])
    services.session.commit()
    number, _ = raise_change(desk, who="zed")
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    approval = desk.task_id(number, "manager_approve")
    single = desk.client.post(f"/api/v1/tasks/{approval}/claim", headers=desk.auth("zed"))
    refused = assert_error(bulk(desk, "zed", "claim", [approval]), 409, "bulk_refused")
    told = refused["details"]["tasks"][str(approval)]
    assert (told["status"], told["error"]) == (single.status_code, single.get_json()["error"])
    assert claimants(services, [approval]) == [None]
