"""Role x endpoint x own/foreign object: who gets 200, 403 (visible, not allowed) or 404 (not visible)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import AuditEvent
from tests.conftest import fixture_files
from tests.http.helpers import deploy_all, open_task, start, upload

EVERYONE = ("rita", "rick", "alex", "amy", "olga", "aude", "ada")


def test_authorization_matrix(client, auth, services):
    deploy_all(client, auth("olga"))
    a = start(client, auth("rita"), "lane_ticket")           # rita's, lanes ServiceDesk + Approvers
    b = start(client, auth("rita"), "simple_request")        # rita's, lane-less
    c = start(client, auth("rick"), "simple_request")        # rick's, lane-less
    triage_a = open_task(a, "triage")["id"]
    fill_b = open_task(b, "fill_details")["id"]
    fill_c = open_task(c, "fill_details")["id"]

    matrix: list[tuple[str, str, str, dict | None, int]] = []

    def row(users: tuple[str, ...] | str, method: str, path: str, expected: int, body: dict | None = None) -> None:
        for user in (users,) if isinstance(users, str) else users:
            matrix.append((user, method, path, body, expected))

    row(EVERYONE, "GET", "/api/v1/definitions", 200)
    row(("alex", "olga", "aude", "ada"), "GET", "/api/v1/definitions/lane_ticket", 200)
    row(("rita", "rick", "amy"), "GET", "/api/v1/definitions/lane_ticket", 403)
    row(("alex", "olga", "aude", "ada"), "GET", "/api/v1/definitions/lane_ticket/bpmn", 200)
    row(("rita", "rick", "amy"), "GET", "/api/v1/definitions/lane_ticket/bpmn", 403)
    row(EVERYONE, "GET", "/api/v1/tasks", 200)
    row(EVERYONE, "GET", "/api/v1/instances", 200)
    # instance A: own for rita, lane-visible for alex (agent), foreign for rick and olga; amy (approver)
    # has a lane in it but no task of it has reached her yet: approvers see what reaches them
    row(("rita", "alex", "aude", "ada"), "GET", f"/api/v1/instances/{a['id']}", 200)
    row(("rick", "olga", "amy"), "GET", f"/api/v1/instances/{a['id']}", 404)
    row(("rita", "alex", "aude", "ada"), "GET", f"/api/v1/instances/{a['id']}/history", 200)
    row(("rick", "olga"), "GET", f"/api/v1/instances/{a['id']}/history", 404)
    # instance C: rick's own, lane-less: nobody else but auditors/admins sees it
    row(("rick", "aude", "ada"), "GET", f"/api/v1/instances/{c['id']}", 200)
    row(("rita", "alex", "amy", "olga"), "GET", f"/api/v1/instances/{c['id']}", 404)
    # tasks
    row(("alex", "aude", "ada"), "GET", f"/api/v1/tasks/{triage_a}", 200)
    row(("rita", "rick", "amy", "olga"), "GET", f"/api/v1/tasks/{triage_a}", 404)
    row(("rick", "alex", "amy", "olga"), "GET", f"/api/v1/tasks/{fill_b}", 404)
    row(("aude",), "POST", f"/api/v1/tasks/{triage_a}/claim", 403)
    row(("rita", "amy", "olga"), "POST", f"/api/v1/tasks/{triage_a}/claim", 404)
    row(("aude",), "POST", f"/api/v1/tasks/{fill_b}/complete", 403, {"data": {}})
    row(("rick", "alex"), "POST", f"/api/v1/tasks/{fill_b}/complete", 404, {"data": {}})
    row(("rita",), "POST", f"/api/v1/tasks/{fill_c}/complete", 404, {"data": {}})
    row(("aude",), "POST", f"/api/v1/tasks/{triage_a}/reassign", 403, {"username": "alex"})
    # instance commands
    row(("alex", "aude"), "POST", f"/api/v1/instances/{a['id']}/cancel", 403, {})
    row(("rick", "olga", "amy"), "POST", f"/api/v1/instances/{a['id']}/cancel", 404, {})
    row(("rita", "alex", "aude"), "POST", f"/api/v1/instances/{a['id']}/retry", 403, {})
    row(("rick",), "POST", f"/api/v1/instances/{a['id']}/retry", 404, {})
    row(("ada",), "POST", f"/api/v1/instances/{a['id']}/retry", 409, {})
    row(("aude",), "POST", f"/api/v1/instances/{a['id']}/messages", 403, {"name": "customer_reply"})
    row(("rick", "amy"), "POST", f"/api/v1/instances/{a['id']}/messages", 404, {"name": "customer_reply"})
    row(("aude",), "POST", "/api/v1/instances", 403, {"process_id": "simple_request"})

    denied_before = services.session.scalar(select(func.count()).where(AuditEvent.event_type == "access_denied"))
    mismatches = []
    for user, method, path, body, expected in matrix:
        response = client.open(path, method=method, json=body, headers=auth(user))
        if response.status_code != expected:
            mismatches.append(f"{user} {method} {path}: {response.status_code} != {expected} {response.get_json()}")
        elif expected >= 400:
            assert set(response.get_json()) == {"error", "message", "details"}
    assert not mismatches, "\n".join(mismatches)
    refused = sum(1 for *_, expected in matrix if expected in (403, 404))
    denied_after = services.session.scalar(select(func.count()).where(AuditEvent.event_type == "access_denied"))
    # every refused attempt on an object is an audit event (404 on an unknown id would not be)
    assert denied_after - denied_before == refused

    # deploy is for process owners (and admins) only
    for user in ("rita", "rick", "alex", "amy", "aude"):
        assert upload(client, auth(user), fixture_files("child_flow.bpmn")).status_code == 403
    assert upload(client, auth("olga"), fixture_files("child_flow.bpmn")).status_code == 200
    assert upload(client, auth("ada"), fixture_files("child_flow.bpmn")).status_code == 200
