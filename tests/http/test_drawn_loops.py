"""A loop drawn with sequence flows, driven through the API far past where SpiffWorkflow alone
stops (about 250 rounds): the instance keeps running, its stored state stays small, and the
audit history keeps every round (app/engine/trim.py, issue #6)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import AuditEvent, ProcessInstance
from tests.engine.test_trim import rework_loop
from tests.http.helpers import open_task, start, upload

ROUNDS = 320
FORM = b'{"title": "One round", "type": "object", "required": ["again"], "properties": {"again": {"type": "boolean"}}}'


def test_a_rework_loop_runs_through_the_api_past_the_engines_own_limit(client, services, auth, users):
    response = upload(client, auth("olga"), [("rework.bpmn", rework_loop("deadline", form="rework-step.json")),
                                              ("rework-step.json", FORM)])
    assert response.status_code == 201, response.get_json()
    instance = start(client, auth("rita"), "rework")
    sizes = {}
    for n in range(1, ROUNDS + 1):
        task = open_task(instance, "work")
        response = client.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {"again": True}},
                               headers=auth("rita"))
        assert response.status_code == 200, (n, response.get_json())
        instance = response.get_json()
        if n in (20, ROUNDS):
            sizes[n] = services.session.scalar(select(func.length(ProcessInstance.state))
                                               .where(ProcessInstance.id == instance["id"]))
    assert instance["status"] == "running" and instance["data"]["rounds"] == ROUNDS
    assert sizes[ROUNDS] < 4 * sizes[20], sizes  # bounded, not growing with every round
    task = open_task(instance, "work")
    response = client.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {"again": False}},
                           headers=auth("rita"))
    assert response.status_code == 200 and response.get_json()["status"] == "completed"
    completions = services.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.instance_id == instance["id"], AuditEvent.event_type == "task_completed"))
    assert completions == ROUNDS + 1  # the engine forgot old rounds; the audit history did not


def test_parallel_branches_in_a_drawn_loop_join_once_a_round_through_the_api(client, services, auth, users):
    # Branches that finish in a different order each round: the join waits for both every time
    # (app/engine/joins.py), and each round's answers reach the data after the join.
    from tests.engine.test_joins import split_in_loop

    form = b'{"title": "A branch", "type": "object", "required": ["again"], "properties": {' \
           b'"again": {"type": "boolean"}, "work": {"type": "integer"}, "check": {"type": "integer"}}}'
    response = upload(client, auth("olga"), [("joined.bpmn", split_in_loop("and", ("work", "check"), form="branch.json")),
                                              ("branch.json", form)])
    assert response.status_code == 201, response.get_json()
    instance = start(client, auth("rita"), "joined")
    for n in range(12):
        order = ("work", "check") if n % 2 else ("check", "work")
        for i, name in enumerate(order):
            task = open_task(instance, name)
            response = client.post(f"/api/v1/tasks/{task['id']}/complete",
                                   json={"data": {name: n, "again": n < 11}}, headers=auth("rita"))
            assert response.status_code == 200, (n, name, response.get_json())
            instance = response.get_json()
            still_open = sorted(t["bpmn_id"] for t in instance["open_tasks"])
            if i == 0:
                assert still_open == [order[1]], (n, still_open)
        assert instance["data"]["fired"] == n + 1 and instance["data"]["work"] == instance["data"]["check"] == n
    assert instance["status"] == "completed"
