"""Instances that would hang the engine or fail their own save: an instance error, never a hang,
a 500, or (after a 500 on a committed start) a duplicate on the client's retry."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from app.models import ProcessInstance
from tests.conftest import FIXTURES, fixture_files
from tests.http.helpers import deploy_all, start, upload

TIMER_FILES = [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "timers").iterdir())]


def as_staff(client, auth, instance):
    """The instance as an admin reads it: with its error's exception, line and message."""
    response = client.get(f"/api/v1/instances/{instance['id']}", headers=auth("ada"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def instance_count(services) -> int:
    return services.session.scalar(select(func.count()).select_from(ProcessInstance))


def test_a_timer_computed_past_ten_years_fails_the_instance_at_once(client, auth):
    assert upload(client, auth("olga"), TIMER_FILES).status_code == 201
    started = time.monotonic()
    instance = start(client, auth("rita"), "timer_flow", {"wait_for": "P99999999Y"})
    instance = as_staff(client, auth, instance)  # the starter reads no error details
    assert time.monotonic() - started < 5
    assert instance["status"] == "error"
    assert instance["error"]["element_id"] == "wait" and instance["error"]["error_type"] == "timer_limit"
    assert "10 years" in instance["error"]["message"]
    # The server keeps serving and writing.
    other = start(client, auth("rita"), "timer_flow", {"wait_for": "PT1H"})
    assert other["status"] == "running"


def test_a_script_making_an_unstorable_value_fails_the_instance_not_the_request(client, auth):
    files = [(n, c.replace(b"ratio = numerator / divisor", b"x = 10**100000\nratio = 1"))
             for n, c in fixture_files("fragile.bpmn")]
    assert upload(client, auth("olga"), files).status_code == 201
    instance = start(client, auth("rita"), "fragile", {"divisor": 1})
    assert instance["status"] == "error" and instance["error"]["element_id"] == "divide"
    instance = as_staff(client, auth, instance)  # the starter reads no error details
    assert "'x'" in instance["error"]["message"] and "x" not in instance["data"]
    again = client.get(f"/api/v1/instances/{instance['id']}", headers=auth("rita"))
    assert again.status_code == 200 and again.get_json()["status"] == "error"


def test_deep_start_data_is_never_a_500_and_never_a_duplicate(client, auth, services):
    deploy_all(client, auth("olga"))
    deep: list = []
    for _ in range(900):
        deep = [deep]
    response = client.post("/api/v1/instances", json={"process_id": "simple_request", "data": {"deep": deep}},
                           headers=auth("rita"))
    # The API refuses bodies this deep (400); without that, the engine fails the instance (201).
    assert response.status_code in (201, 400), response.get_data(as_text=True)[:300]
    if response.status_code == 201:
        assert response.get_json()["status"] == "error"
    assert instance_count(services) == (1 if response.status_code == 201 else 0)


RUNAWAY_FILES = [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "runaway").iterdir())]


def test_a_process_that_calls_itself_fails_its_instance_and_the_server_keeps_serving(client, auth):
    assert upload(client, auth("olga"), RUNAWAY_FILES).status_code == 201
    started = time.monotonic()
    instance = start(client, auth("rita"), "selfcall", {})
    instance = as_staff(client, auth, instance)  # the starter reads no error details
    assert time.monotonic() - started < 10
    assert instance["status"] == "error" and instance["error"]["element_id"] == "again"
    assert instance["error"]["error_type"] == "subprocess_depth"
    retried = client.post(f"/api/v1/instances/{instance['id']}/retry", json={}, headers=auth("ada"))
    assert retried.status_code == 200, retried.get_data(as_text=True)[:300]
    assert retried.get_json()["status"] == "error" and retried.get_json()["error"]["error_type"] == "subprocess_depth"
    other = start(client, auth("rita"), "countdown", {"left": 3, "counted": 0})
    assert other["status"] == "running" and other["data"]["counted"] == 3
