from __future__ import annotations

import io
import time
from datetime import timedelta

from tests.conftest import fixture_files
from tests.http.helpers import assert_error, deploy_all, open_task, start, upload


def test_due_interrupting_timer_beats_a_late_submission(client, auth, clock):
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "lane_ticket")
    triage = open_task(instance, "triage")
    after = client.post(f"/api/v1/tasks/{triage['id']}/complete", headers=auth("alex"), json={"data": {"impact": "low"}}).get_json()
    approve = open_task(after, "approve")
    clock.advance(timedelta(hours=2, seconds=1))
    body = assert_error(client.post(f"/api/v1/tasks/{approve['id']}/complete", headers=auth("amy"),
                                    json={"data": {"approved": True}}), 409, "timer_expired")
    assert body["details"]["task_id"] == approve["id"]
    final = client.get(f"/api/v1/instances/{instance['id']}", headers=auth("rita")).get_json()
    assert final["status"] == "completed" and "approved" not in final["data"]
    history = client.get(f"/api/v1/instances/{instance['id']}/history", headers=auth("aude")).get_json()["events"]
    cancelled = [e for e in history if e["type"] == "task_cancelled"]
    assert cancelled and cancelled[0]["task_id"] == approve["id"]
    assert not any(e["type"] == "task_completed" and e["task_id"] == approve["id"] for e in history)
    task = client.get(f"/api/v1/tasks/{approve['id']}", headers=auth("amy")).get_json()
    assert task["state"] == "cancelled"


def test_endless_script_fails_the_instance_and_the_server_keeps_serving(client, auth):
    endless = [(n, c.replace(b"ratio = numerator / divisor", b"ratio = 0\nwhile True:\n    ratio += 1"))
               for n, c in fixture_files("fragile.bpmn")]
    assert upload(client, auth("olga"), endless).status_code == 201
    started = time.monotonic()
    instance = start(client, auth("rita"), "fragile", {"divisor": 1})
    elapsed = time.monotonic() - started
    assert elapsed < 10
    assert instance["status"] == "error"
    # staff read the error's kind (the starter only where it stopped)
    instance = client.get(f"/api/v1/instances/{instance['id']}", headers=auth("ada")).get_json()
    assert instance["error"]["element_id"] == "divide"
    assert "time" in instance["error"]["error_type"]
    assert client.get("/api/v1/health").status_code == 200
    assert client.get(f"/api/v1/instances/{instance['id']}", headers=auth("rita")).get_json()["status"] == "error"
    # A fixed diagram cannot rescue a running instance (it stays on its version), but a retry runs
    # the stopped task again, and stops it again: the instance stays in error, the server serves.
    retried = client.post(f"/api/v1/instances/{instance['id']}/retry", headers=auth("ada"), json={"data": {"divisor": 2}})
    assert retried.status_code == 200 and retried.get_json()["status"] == "error"


def test_memory_hungry_script_fails_the_instance(client, auth):
    hungry = [(n, c.replace(b"ratio = numerator / divisor", b"blob = 'x' * (10 ** 10)\nratio = 1"))
              for n, c in fixture_files("fragile.bpmn")]
    assert upload(client, auth("olga"), hungry).status_code == 201
    instance = start(client, auth("rita"), "fragile", {"divisor": 1})
    assert instance["status"] == "error" and instance["error"]["element_id"] == "divide"


def test_request_body_over_the_limit_is_413(client, auth, app):
    deploy_all(client, auth("olga"))
    big = io.BytesIO(b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1024))
    response = client.post("/api/v1/definitions", data={"files": [(big, "big.bpmn")]}, headers=auth("olga"),
                           content_type="multipart/form-data")
    assert_error(response, 413, "payload_too_large")
