from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models import AuditEvent
from tests.http.helpers import assert_error, deploy_all, open_task, start


def test_lifecycle_through_lanes_with_history(client, auth, clock):
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "lane_ticket", {"title": "printer jam"})
    assert instance["status"] == "running" and instance["started_by"] == "rita" and instance["version"] == 1
    triage = open_task(instance, "triage")
    assert triage["lane"] == "ServiceDesk" and triage["claimed_by"] is None

    inbox = client.get("/api/v1/tasks", headers=auth("alex")).get_json()
    assert [t["id"] for t in inbox["items"]] == [triage["id"]]
    assert client.get("/api/v1/tasks", headers=auth("amy")).get_json()["total"] == 0

    detail = client.get(f"/api/v1/tasks/{triage['id']}", headers=auth("alex")).get_json()
    assert detail["form_schema"]["properties"]["impact"]["enum"] == ["high", "medium", "low"]
    assert detail["data"]["title"] == "printer jam" and detail["data"]["reopen_count"] == 0

    claimed = client.post(f"/api/v1/tasks/{triage['id']}/claim", headers=auth("alex")).get_json()
    assert claimed["claimed_by"] == "alex"
    mine = client.get("/api/v1/tasks?mine=1", headers=auth("alex")).get_json()
    assert [t["id"] for t in mine["items"]] == [triage["id"]]

    bad = assert_error(client.post(f"/api/v1/tasks/{triage['id']}/complete", headers=auth("alex"),
                                   json={"data": {"impact": "enormous"}}), 422, "validation_failed")
    assert "impact" in bad["details"]["fields"]

    clock.advance(timedelta(minutes=5))
    after = client.post(f"/api/v1/tasks/{triage['id']}/complete", headers=auth("alex"),
                        json={"data": {"impact": "high", "summary": "jammed", "sneaky": "dropped"}})
    assert after.status_code == 200, after.get_json()
    after = after.get_json()
    assert after["data"]["priority"] == 1 and "sneaky" not in after["data"]
    approve = open_task(after, "approve")
    assert approve["lane"] == "Approvers"

    approve_detail = client.get(f"/api/v1/tasks/{approve['id']}", headers=auth("amy")).get_json()
    assert approve_detail["instructions"].strip() == "<p>Priority 1</p>"

    done = client.post(f"/api/v1/tasks/{approve['id']}/complete", headers=auth("amy"), json={"data": {"approved": True}}).get_json()
    assert done["status"] == "running" and done["open_tasks"] == []

    replied = client.post(f"/api/v1/instances/{instance['id']}/messages", headers=auth("alex"),
                          json={"name": "customer_reply", "payload": {"ok": True}})
    assert replied.status_code == 200 and replied.get_json()["status"] == "completed"
    assert replied.get_json()["data"]["reply"] == {"ok": True}

    history = client.get(f"/api/v1/instances/{instance['id']}/history", headers=auth("aude")).get_json()["events"]
    types = [e["type"] for e in history]
    assert types[0] == "instance_started"
    for expected in ("task_ready", "task_claimed", "task_completed", "message_received", "instance_completed"):
        assert expected in types
    completions = [e for e in history if e["type"] == "task_completed"]
    assert completions[0]["actor"] == "alex" and completions[0]["task"]["bpmn_id"] == "triage"
    assert completions[0]["data"] == {"impact": "high", "summary": "jammed"}
    assert [e["seq"] for e in history] == sorted(e["seq"] for e in history)
    assert history[0]["time"] < completions[0]["time"]


def test_lane_less_task_belongs_to_the_starter(client, auth):
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "simple_request")
    task = open_task(instance, "fill_details")
    assert client.get("/api/v1/tasks", headers=auth("rita")).get_json()["total"] == 1
    assert_error(client.get(f"/api/v1/tasks/{task['id']}", headers=auth("rick")), 404, "not_found")
    assert_error(client.post(f"/api/v1/tasks/{task['id']}/complete", headers=auth("rick"), json={"data": {}}), 404)
    body = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=auth("rita"),
                       json={"data": {"title": "Chairs", "quantity": "3"}})
    assert_error(body, 422)
    ok = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=auth("rita"), json={"data": {"title": "Chairs", "quantity": 3}})
    assert ok.get_json()["status"] == "completed"
    assert_error(client.post(f"/api/v1/tasks/{task['id']}/complete", headers=auth("rita"), json={"data": {}}), 409, "conflict")


def test_claimed_task_is_completed_only_by_its_claimant_and_admin_reassigns(client, auth, services):
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "lane_ticket")
    triage = open_task(instance, "triage")
    client.post(f"/api/v1/tasks/{triage['id']}/claim", headers=auth("alex"))
    services.users.create_user("alice", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    services.session.commit()
    alice = {"Authorization": "Bearer " + services.users.issue_token(services.users.get_by_username("alice"))["token"]}
    services.session.commit()
    body = assert_error(client.post(f"/api/v1/tasks/{triage['id']}/complete", headers=alice, json={"data": {"impact": "low"}}), 403)
    assert "claimed" in body["message"]
    assert_error(client.post(f"/api/v1/tasks/{triage['id']}/claim", headers=alice), 403)
    assert_error(client.post(f"/api/v1/tasks/{triage['id']}/unclaim", headers=alice), 403)
    # a member of the lane's group who is no agent reassigns nothing: the group's queue is not his
    # to see at all (policy.QUEUE_ROLES), so the task is not found
    services.users.create_user("rob", "password-1234", roles=["requester"], groups=["ServiceDesk"])
    services.session.commit()
    rob = {"Authorization": "Bearer " + services.users.issue_token(services.users.get_by_username("rob"))["token"]}
    services.session.commit()
    assert_error(client.post(f"/api/v1/tasks/{triage['id']}/reassign", headers=rob, json={"username": "alice"}), 404)
    moved = client.post(f"/api/v1/tasks/{triage['id']}/reassign", headers=auth("ada"), json={"username": "alice"})
    assert moved.status_code == 200 and moved.get_json()["claimed_by"] == "alice"
    ok = client.post(f"/api/v1/tasks/{triage['id']}/complete", headers=alice, json={"data": {"impact": "low"}})
    assert ok.status_code == 200
    events = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_reassigned")).all()
    assert events[0].actor == "ada" and events[0].payload["to"] == "alice"


def test_unclaim_returns_the_task_to_the_queue(client, auth):
    deploy_all(client, auth("olga"))
    triage = open_task(start(client, auth("rita"), "lane_ticket"), "triage")
    client.post(f"/api/v1/tasks/{triage['id']}/claim", headers=auth("alex"))
    assert_error(client.post(f"/api/v1/tasks/{triage['id']}/claim", headers=auth("amy")), 404)
    released = client.post(f"/api/v1/tasks/{triage['id']}/unclaim", headers=auth("alex")).get_json()
    assert released["claimed_by"] is None
    assert_error(client.post(f"/api/v1/tasks/{triage['id']}/unclaim", headers=auth("alex")), 409, "not_claimed")


def test_instance_listing_filters_and_paginates(client, auth):
    deploy_all(client, auth("olga"))
    for _ in range(3):
        start(client, auth("rita"), "simple_request")
    start(client, auth("rita"), "lane_ticket")
    start(client, auth("rick"), "simple_request")
    mine = client.get("/api/v1/instances?per_page=2", headers=auth("rita")).get_json()
    assert mine["total"] == 4 and len(mine["items"]) == 2
    filtered = client.get("/api/v1/instances?process_id=lane_ticket", headers=auth("rita")).get_json()
    assert filtered["total"] == 1
    assert client.get("/api/v1/instances?status=running", headers=auth("ada")).get_json()["total"] == 5
    assert client.get("/api/v1/instances", headers=auth("alex")).get_json()["total"] == 1  # lane ServiceDesk
    body = assert_error(client.get("/api/v1/instances?status=bogus", headers=auth("rita")), 422)
    assert "status" in body["details"]["fields"]
    assert_error(client.get("/api/v1/instances?page=0", headers=auth("rita")), 422)


def test_start_errors(client, auth):
    deploy_all(client, auth("olga"))
    assert_error(client.post("/api/v1/instances", json={"process_id": "nope"}, headers=auth("rita")), 404)
    assert_error(client.post("/api/v1/instances", json={}, headers=auth("rita")), 422)
    assert_error(client.post("/api/v1/instances", json={"process_id": "simple_request", "data": "x"}, headers=auth("rita")), 422)
    body = assert_error(client.post("/api/v1/instances", json={"process_id": "simple_request", "data": {"__class__": 1}},
                                    headers=auth("rita")), 422)
    assert "data.__class__" in body["details"]["fields"]
    assert_error(client.post("/api/v1/instances", json={"process_id": "simple_request"}, headers=auth("aude")), 403)
    assert_error(client.post("/api/v1/instances", data="not json", headers={**auth("rita"), "Content-Type": "application/json"}), 400)


def test_message_errors(client, auth):
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "lane_ticket")
    body = assert_error(client.post(f"/api/v1/instances/{instance['id']}/messages", headers=auth("alex"),
                                    json={"name": "customer_reply"}), 409, "message_not_expected")
    assert body["details"]["name"] == "customer_reply"
    assert_error(client.post(f"/api/v1/instances/{instance['id']}/messages", headers=auth("amy"), json={}), 422)
    assert_error(client.post(f"/api/v1/instances/{instance['id']}/messages", headers=auth("rick"), json={"name": "x"}), 404)


def test_cancel(client, auth):
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "lane_ticket")
    assert_error(client.post(f"/api/v1/instances/{instance['id']}/cancel", headers=auth("alex"), json={}), 403)
    done = client.post(f"/api/v1/instances/{instance['id']}/cancel", headers=auth("rita"), json={"reason": "duplicate"})
    assert done.status_code == 200 and done.get_json()["status"] == "cancelled" and done.get_json()["open_tasks"] == []
    assert_error(client.post(f"/api/v1/instances/{instance['id']}/cancel", headers=auth("rita"), json={}), 409)
    assert client.get("/api/v1/tasks", headers=auth("alex")).get_json()["total"] == 0


def test_error_and_admin_retry_with_corrected_data(client, auth):
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "fragile", {"divisor": 0})
    assert instance["status"] == "error" and instance["open_tasks"] == []
    # the requester who started it reads where it stopped, not the script's line, exception or message
    error = instance["error"]
    assert error["element_id"] == "divide" and set(error) == {"element_id", "element_name", "message"}
    assert "the desk's staff see why" in error["message"] and "division" not in error["message"]
    history = client.get(f"/api/v1/instances/{instance['id']}/history", headers=auth("rita")).get_json()["events"]
    assert [set(e["payload"]) for e in history if e["type"] == "instance_error"] == [
        {"element_id", "element_name", "message"}]
    # staff read all of it, in the instance and in its history
    error = client.get(f"/api/v1/instances/{instance['id']}", headers=auth("ada")).get_json()["error"]
    assert error["element_id"] == "divide" and error["line"] == 2 and error["error_type"] == "ZeroDivisionError"
    assert "division" in error["message"] and error["error_line"]
    history = client.get(f"/api/v1/instances/{instance['id']}/history", headers=auth("aude")).get_json()["events"]
    assert [e["payload"]["error_type"] for e in history if e["type"] == "instance_error"] == ["ZeroDivisionError"]
    assert_error(client.post(f"/api/v1/instances/{instance['id']}/retry", headers=auth("rita"), json={}), 403)
    again = client.post(f"/api/v1/instances/{instance['id']}/retry", headers=auth("ada"), json={"data": {"divisor": 4}})
    assert again.status_code == 200, again.get_json()
    body = again.get_json()
    assert body["status"] == "running" and body["error"] is None and body["data"]["ratio"] == 2.5
    assert [t["bpmn_id"] for t in body["open_tasks"]] == ["check"]
    assert_error(client.post(f"/api/v1/instances/{instance['id']}/retry", headers=auth("ada"), json={}), 409)
    history = client.get(f"/api/v1/instances/{instance['id']}/history", headers=auth("ada")).get_json()["events"]
    types = [e["type"] for e in history]
    assert types.index("instance_error") < types.index("instance_retried")
    assert [e for e in history if e["type"] == "instance_retried"][0]["data"] == {"divisor": 4}
