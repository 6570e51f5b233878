"""Small helpers for HTTP tests: upload files, start instances, find tasks."""

from __future__ import annotations

import io
from typing import Any

from tests.conftest import fixture_files


def upload(client: Any, headers: dict[str, str], files: list[tuple[str, bytes]]) -> Any:
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/api/v1/definitions", data=data, headers=headers, content_type="multipart/form-data")


def deploy_all(client: Any, headers: dict[str, str]) -> Any:
    response = upload(client, headers, fixture_files())
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def start(client: Any, headers: dict[str, str], process_id: str, data: dict | None = None) -> dict:
    response = client.post("/api/v1/instances", json={"process_id": process_id, "data": data or {}}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_task(instance: dict, bpmn_id: str) -> dict:
    matches = [t for t in instance["open_tasks"] if t["bpmn_id"] == bpmn_id]
    assert matches, f"no open task {bpmn_id} in {[t['bpmn_id'] for t in instance['open_tasks']]}"
    return matches[0]


def assert_error(response: Any, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}, body
    if code:
        assert body["error"] == code, body
    return body
