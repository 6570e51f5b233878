"""A message whose delivery goes past the engine's subprocess limit fails the instance naming the
element (error_type subprocess_depth), like any step; the caller is not told that the instance
"is not waiting" for the message, which it was. Only a message nothing waits for is a 409
``message_not_expected``, and it leaves the instance as it was.

Fixtures: tests/fixtures/runaway/message_selfcall.bpmn (the message's path calls a process that
calls itself: the limit is passed after the message was caught) and message_subprocess.bpmn (the
message starts an event subprocess: the engine opens it while catching the message)."""

from __future__ import annotations

import pytest

import app.engine.workflow as workflow_module
from tests.conftest import FIXTURES
from tests.http.helpers import assert_error, start, upload

RUNAWAY_FILES = [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "runaway").iterdir())]


@pytest.fixture()
def runaway(client, auth) -> None:
    response = upload(client, auth("olga"), RUNAWAY_FILES)
    assert response.status_code == 201, response.get_json()


def send(client, auth, instance_id: int, name: str):
    return client.post(f"/api/v1/instances/{instance_id}/messages", json={"name": name, "payload": {"n": 1}},
                       headers=auth("ada"))


def test_a_message_whose_path_calls_too_deep_fails_the_instance_naming_the_element(client, auth, runaway):
    instance = start(client, auth("rita"), "message_selfcall", {})
    assert instance["status"] == "running"
    response = send(client, auth, instance["id"], "go")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "error"
    assert body["error"]["error_type"] == "subprocess_depth" and body["error"]["element_id"] == "again"


def test_a_subprocess_too_deep_opened_while_catching_fails_the_instance_not_the_message(
        client, auth, runaway, monkeypatch):
    instance = start(client, auth("rita"), "message_subprocess", {})
    assert instance["status"] == "running" and [t["bpmn_id"] for t in instance["open_tasks"]] == ["work"]
    # The event subprocess the message starts is opened by the catch itself; no process of ours
    # nests 32 levels where a message starts one, so the limit is lowered to reach it.
    monkeypatch.setattr(workflow_module, "MAX_SUBPROCESS_DEPTH", 0)
    response = send(client, auth, instance["id"], "go")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "error", body
    assert body["error"]["error_type"] == "subprocess_depth" and body["error"]["element_id"] == "on_go"
    assert "'On go' would open a subprocess" in body["error"]["message"]
    again = client.get(f"/api/v1/instances/{instance['id']}", headers=auth("ada")).get_json()
    assert again["status"] == "error" and again["error"]["element_id"] == "on_go"
    history = client.get(f"/api/v1/instances/{instance['id']}/history", headers=auth("ada")).get_json()
    assert "message_received" in [e["type"] for e in history["events"]]


def test_a_message_nothing_waits_for_is_still_409_and_changes_nothing(client, auth, runaway):
    instance = start(client, auth("rita"), "message_subprocess", {})
    body = assert_error(send(client, auth, instance["id"], "stop"), 409, "message_not_expected")
    assert body["details"] == {"name": "stop"}
    again = client.get(f"/api/v1/instances/{instance['id']}", headers=auth("ada")).get_json()
    assert again["status"] == "running" and again["version"] == instance["version"]
    assert [t["bpmn_id"] for t in again["open_tasks"]] == ["work"]
    # and the message it does wait for is delivered as before
    delivered = send(client, auth, instance["id"], "go")
    assert delivered.status_code == 200 and delivered.get_json()["status"] == "error"  # selfcall runs away
