"""The process pages: the list, one process with its versions, download, upload and the editor's save."""

from __future__ import annotations

import io
import re
from typing import Any

from tests.http.desk import ROOT
from tests.web.conftest import INCIDENT, text_of

BPMN = ROOT / "processes" / "incident_management.bpmn"


def relabelled(old: str = "Triage incident", new: str = "Triage the incident") -> str:
    return BPMN.read_text().replace(f'name="{old}"', f'name="{new}"', 1)


def missing_form(xml: str) -> str:
    """The triage task names a form file that is not deployed: an error on element ``triage``."""
    return xml.replace('value="incident-triage.json"', 'value="no-such-form.json"', 1)


def start_incident(services: Any) -> Any:
    rita = services.users.get_by_username("rita")
    instance = services.instances.start_process(rita, "incident_management", dict(INCIDENT))
    services.session.commit()
    return instance


def test_the_list_shows_processes_with_versions_and_running_counts(web, desk, services):
    start_incident(services)
    web.login("alex")
    body = text_of(web.get("/processes"))
    assert 'href="/processes/incident_management"' in body
    row = re.search(r'href="/processes/incident_management\?version=1">v1</a></td>\s*<td>[^<]*</td>\s*<td>(\d+)</td>', body)
    assert row and int(row.group(1)) >= 1


def test_the_process_page_shows_versions_viewer_and_download(web, desk):
    web.login("alex")
    response = web.get("/processes/incident_management")
    assert response.status_code == 200
    body = text_of(response)
    assert "v1" in body and 'data-xml-url="/processes/incident_management/diagram.xml?version=1"' in body
    assert "bpmn-viewer.production.min.js" in body and "data-save-url" not in body
    assert "Upload files" not in body  # agents may not deploy
    download = web.get("/processes/incident_management/bpmn?version=1")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == 'attachment; filename="incident_management.bpmn"'
    api = desk.client.get("/api/v1/definitions/incident_management/bpmn", headers=desk.auth("alex"))
    assert download.get_data() == api.get_data()
    assert web.get("/processes/nothing_here").status_code == 404
    assert web.get("/processes/incident_management?version=99").status_code == 404


def test_an_owner_uploads_a_new_version(web, desk, services):
    web.login("olga")
    body = text_of(web.get("/processes/incident_management"))
    assert "bpmn-modeler.production.min.js" in body and 'data-save-url="/processes/incident_management/save"' in body
    response = web.post("/processes/incident_management/deploy",
                        {"files": (io.BytesIO(relabelled().encode()), "incident_management.bpmn")},
                        content_type="multipart/form-data")
    assert response.status_code == 302
    page = text_of(web.get(response.headers["Location"]))
    assert "Deployed: incident_management v2." in page
    assert services.definitions.latest("incident_management").version == 2


def test_upload_errors_are_listed_with_file_element_and_line(web, desk, services):
    web.login("olga")
    broken = missing_form(BPMN.read_text())
    response = web.post("/processes/incident_management/deploy",
                        {"files": (io.BytesIO(broken.encode()), "incident_management.bpmn")},
                        content_type="multipart/form-data")
    assert response.status_code == 422
    body = text_of(response)
    assert "Nothing was deployed" in body and "<code>incident_management.bpmn</code>" in body
    assert "<code>triage</code>" in body and re.search(r"line \d+", body)
    assert services.definitions.latest("incident_management").version == 1
    empty = web.post("/processes/incident_management/deploy", {}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "Choose one or more files" in text_of(empty)


def test_agents_may_not_upload_or_save(web, desk):
    web.login("alex")
    response = web.post("/processes/incident_management/deploy",
                        {"files": (io.BytesIO(relabelled().encode()), "incident_management.bpmn")},
                        content_type="multipart/form-data")
    assert response.status_code == 403
    saved = web.post("/processes/incident_management/save", {"xml": relabelled()})
    assert saved.status_code == 403 and saved.get_json()["error"] == "forbidden"


def test_the_editor_saves_a_new_version_and_reports_errors_as_json(web, desk, services):
    web.login("olga")
    saved = web.post("/processes/incident_management/save", {"xml": relabelled()})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["ok"] is True and saved.get_json()["versions"] == [1, 2]
    again = web.post("/processes/incident_management/save", {"xml": relabelled()})
    assert again.get_json()["versions"] == [1, 2]  # same content, same version
    broken = missing_form(relabelled())
    refused = web.post("/processes/incident_management/save", {"xml": broken})
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["error"] == "invalid_definition" and body["details"]["file"] == "incident_management.bpmn"
    assert body["details"]["element_id"] == "triage" and body["details"]["line"]
    assert web.post("/processes/incident_management/save", {"xml": relabelled()}, csrf=False).status_code == 403


def test_the_compare_page_shows_two_versions(web, desk, services):
    web.login("olga")
    assert web.post("/processes/incident_management/save", {"xml": relabelled()}).status_code == 200
    body = text_of(web.get("/processes/incident_management"))
    assert 'href="/processes/incident_management/compare?a=1&amp;b=2"' in body
    page = text_of(web.get("/processes/incident_management/compare?a=1&b=2"))
    assert 'data-xml-url="/processes/incident_management/diagram.xml?version=1"' in page
    assert 'data-xml-url="/processes/incident_management/diagram.xml?version=2"' in page
    assert "<label for=\"compare-a\">Older version</label>" in page
    # an unknown version falls back to the latest two
    assert web.get("/processes/incident_management/compare?a=9&b=x").status_code == 200
