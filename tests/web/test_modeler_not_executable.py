"""The editor's save goes through the same deploy as the API: a diagram saved with its process
marked not executable is refused naming the problem and the file, and no version is added."""

from __future__ import annotations

import io
from typing import Any

from tests.http.desk import ROOT

BPMN = ROOT / "processes" / "incident_management.bpmn"
SAVE = "/processes/incident_management/save"


def not_executable() -> str:
    xml = BPMN.read_text()
    assert xml.count('isExecutable="true"') == 1
    return xml.replace('isExecutable="true"', 'isExecutable="false"')


def versions(services: Any) -> list[int]:
    services.session.expire_all()  # the requests share the test's connection: read their rows again
    return [row.version for row in services.definitions.versions("incident_management")]


def test_the_editor_cannot_save_a_diagram_that_runs_nothing(web, desk, services):
    web.login("olga")
    refused = web.post(SAVE, {"xml": not_executable()})
    assert refused.status_code == 422, refused.get_data(as_text=True)[:300]
    body = refused.get_json()
    assert body["error"] == "invalid_definition" and body["details"]["file"] == "incident_management.bpmn"
    assert body["message"].startswith("No executable process in incident_management.bpmn: a diagram needs"), body
    assert versions(services) == [1]


def test_the_upload_form_of_the_process_refuses_it_too(web, desk, services):
    web.login("olga")
    response = web.post("/processes/incident_management/deploy",
                        {"files": (io.BytesIO(not_executable().encode()), "incident_management.bpmn")},
                        content_type="multipart/form-data")
    assert response.status_code == 422
    assert "No executable process in incident_management.bpmn" in response.get_data(as_text=True)
    assert versions(services) == [1]
