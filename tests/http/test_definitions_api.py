from __future__ import annotations

import time

import pytest

from tests.conftest import fixture_files
from tests.http.helpers import assert_error, deploy_all, start, upload


def test_deploy_creates_versions_and_is_idempotent(client, auth):
    body = deploy_all(client, auth("olga"))
    versions = {p["process_id"]: (p["version"], p["created"]) for p in body["processes"]}
    assert versions == {"simple_request": (1, True), "lane_ticket": (1, True), "parent_flow": (1, True),
                        "child_flow": (1, True), "fragile": (1, True)}
    again = upload(client, auth("olga"), fixture_files())
    assert again.status_code == 200
    assert {p["process_id"]: (p["version"], p["created"]) for p in again.get_json()["processes"]} == {
        k: (1, False) for k in versions}


def test_changed_content_makes_the_next_version_and_instances_keep_theirs(client, auth):
    deploy_all(client, auth("olga"))
    old = start(client, auth("rita"), "simple_request")
    changed = [(n, c.replace(b"Fill in details", b"Describe the order")) for n, c in fixture_files("simple_request.bpmn")]
    response = upload(client, auth("olga"), changed)
    assert response.status_code == 201
    created = {p["process_id"]: p for p in response.get_json()["processes"]}
    assert created["simple_request"]["version"] == 2 and created["simple_request"]["created"]
    assert created["lane_ticket"]["version"] == 1 and not created["lane_ticket"]["created"]
    new = start(client, auth("rita"), "simple_request")
    assert new["version"] == 2 and new["open_tasks"][0]["name"] == "Describe the order"
    again = client.get(f"/api/v1/instances/{old['id']}", headers=auth("rita")).get_json()
    assert again["version"] == 1 and again["open_tasks"][0]["name"] == "Fill in details"
    # the old instance still completes on version 1
    done = client.post(f"/api/v1/tasks/{old['open_tasks'][0]['id']}/complete", headers=auth("rita"),
                       json={"data": {"title": "old one", "quantity": 1}})
    assert done.status_code == 200 and done.get_json()["status"] == "completed"


def test_definition_listing_detail_and_xml(client, auth):
    deploy_all(client, auth("olga"))
    listing = client.get("/api/v1/definitions?per_page=2&page=1", headers=auth("alex")).get_json()
    assert listing["total"] == 5 and len(listing["items"]) == 2 and listing["per_page"] == 2
    assert listing["items"][0]["process_id"] == "child_flow" and listing["items"][0]["deployed_by"] == "olga"
    start(client, auth("rita"), "simple_request")
    detail = client.get("/api/v1/definitions/simple_request", headers=auth("alex")).get_json()
    assert detail["latest"]["version"] == 1 and detail["latest"]["running_instances"] == 1
    assert detail["latest"]["deployed_by"] == "olga" and detail["latest"]["deployed_at"]
    xml = client.get("/api/v1/definitions/simple_request/bpmn?version=1", headers=auth("aude"))
    assert xml.status_code == 200 and xml.mimetype == "application/xml"
    assert b'<bpmn:process id="simple_request"' in xml.data
    assert_error(client.get("/api/v1/definitions/simple_request/bpmn?version=7", headers=auth("alex")), 404)
    assert_error(client.get("/api/v1/definitions/nope", headers=auth("alex")), 404)


def test_only_staff_read_a_definition_beyond_its_name(client, auth, services):
    """Requesters and approvers see the list (what there is to start) but not the diagrams' XML
    or the versions with their running counts; each refusal is in the audit chain."""
    deploy_all(client, auth("olga"))
    for who in ("rita", "abe"):
        listed = client.get("/api/v1/definitions", headers=auth(who))
        assert listed.status_code == 200 and listed.get_json()["total"] == 5
        assert {i["deployed_by"] for i in listed.get_json()["items"]} == {None}  # who deploys is staff's to know
        for path in ("/api/v1/definitions/simple_request", "/api/v1/definitions/simple_request/bpmn",
                     "/api/v1/definitions/simple_request/bpmn?version=1"):
            body = assert_error(client.get(path, headers=auth(who)), 403, "forbidden")
            assert body["details"]["process_id"] == "simple_request" and "auditor" in body["message"]
    for who in ("alex", "olga", "aude", "ada"):
        assert client.get("/api/v1/definitions/simple_request/bpmn", headers=auth(who)).status_code == 200
    from sqlalchemy import select

    from app.models import AuditEvent

    denied = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert sorted((e.actor, e.payload["action"], e.payload["process_id"]) for e in denied) == sorted(
        [(who, "read_definition", "simple_request") for who in ("rita", "abe") for _ in range(3)])


def test_deploy_needs_process_owner(client, auth, services):
    for who in ("rita", "alex", "aude"):
        assert_error(upload(client, auth(who), fixture_files()), 403, "forbidden")
    assert client.get("/api/v1/definitions", headers=auth("rita")).get_json()["total"] == 0
    from sqlalchemy import select

    from app.models import AuditEvent

    denied = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert {e.actor for e in denied} == {"rita", "alex", "aude"}


def test_invalid_upload_is_422_naming_file_element_line_and_nothing_is_stored(client, auth):
    deploy_all(client, auth("olga"))
    broken = [(n, c.replace(b"label = title.upper()", b"label = __import__('os').getcwd()")) for n, c in fixture_files("simple_request.bpmn")]
    extra = [("new_flow.bpmn", fixture_files("child_flow.bpmn")[0][1].replace(b"child_flow", b"new_flow"))]
    body = assert_error(upload(client, auth("olga"), broken + extra), 422, "invalid_definition")
    assert body["details"]["file"] == "simple_request.bpmn"
    assert body["details"]["element_id"] == "compute"
    assert body["details"]["line"] == 20
    listing = client.get("/api/v1/definitions", headers=auth("olga")).get_json()
    assert {i["process_id"] for i in listing["items"]} == {"simple_request", "lane_ticket", "parent_flow", "child_flow", "fragile"}
    assert all(i["latest_version"] == 1 for i in listing["items"])


def test_hostile_xml_is_refused(client, auth):
    xxe = b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<r>&x;</r>'
    body = assert_error(upload(client, auth("olga"), [("x.bpmn", xxe)]), 422)
    assert body["details"]["file"] == "x.bpmn" and body["details"]["line"] == 2


def test_oversized_upload_is_413_before_parsing(client, auth, app):
    limit = app.config["MAX_UPLOAD_BYTES"]
    big = b"<r>" + b"a" * (limit + 10) + b"</r>"
    body = assert_error(upload(client, auth("olga"), [("big.bpmn", big)]), 413, "payload_too_large")
    assert body["message"]


def test_bad_form_file_is_422_with_pointer(client, auth):
    files = [(n, c.replace(b'"type": "integer"', b'"type": "integer", "if": {}')) for n, c in fixture_files()]
    body = assert_error(upload(client, auth("olga"), files), 422)
    assert body["details"]["file"] == "details-schema.json"
    assert "/properties/quantity" in body["details"]["pointer"]


def test_upload_without_files_is_422(client, auth):
    body = assert_error(client.post("/api/v1/definitions", headers=auth("olga"), data={}, content_type="multipart/form-data"), 422)
    assert body["details"]["field"] == "files"


def test_timer_past_ten_years_is_422_naming_the_element_and_nothing_is_stored(client, auth):
    files = [(n, c.replace(b'"PT2H"', b'"P99999999Y"')) for n, c in fixture_files()]
    started = time.monotonic()
    body = assert_error(upload(client, auth("olga"), files), 422, "invalid_definition")
    assert time.monotonic() - started < 5
    assert body["details"]["element_id"] == "approve_timeout" and body["details"]["file"] == "lane_ticket.bpmn"
    assert body["details"]["line"] == 54 and "10 years" in body["message"]
    assert client.get("/api/v1/definitions", headers=auth("olga")).get_json()["total"] == 0


def test_a_json_file_with_a_syntax_error_is_422_even_if_no_task_uses_it(client, auth):
    body = assert_error(upload(client, auth("olga"), [*fixture_files(), ("orphan.json", b"{bad")]), 422, "invalid_definition")
    assert body["details"] == {"file": "orphan.json", "line": 1}
    assert client.get("/api/v1/definitions", headers=auth("olga")).get_json()["total"] == 0
    deploy_all(client, auth("olga"))
    assert_error(upload(client, auth("olga"), [("orphan.json", b"{bad")]), 422, "invalid_definition")


def test_a_process_id_longer_than_instances_take_is_422(client, auth):
    files = [(n, c.replace(b'"fragile"', b'"' + b"p" * 5000 + b'"')) for n, c in fixture_files("fragile.bpmn")]
    body = assert_error(upload(client, auth("olga"), files), 422, "invalid_definition")
    assert body["details"]["file"] == "fragile.bpmn" and "at most 128" in body["message"]


@pytest.mark.parametrize("pattern", ["(a+)+$", "^(\\\\w+\\\\s?)*$", "(.*a){20}"])
def test_a_form_pattern_that_backtracks_is_422_with_pointer(client, auth, pattern):
    snippet = f'"maxLength": 200, "pattern": "{pattern}"'.encode()
    files = [(n, c.replace(b'"maxLength": 200', snippet)) for n, c in fixture_files()]
    body = assert_error(upload(client, auth("olga"), files), 422)
    assert body["details"]["file"] == "triage-schema.json"
    assert body["details"]["pointer"] == "/properties/summary/pattern"
    assert "repeat inside a repeat" in body["message"]


def test_a_validation_error_names_the_file_being_deployed_not_one_sharing_the_id(client, auth):
    deploy_all(client, auth("olga"))
    z_flow = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="z" targetNamespace="x">
  <bpmn:process id="z_flow" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute" />
    <bpmn:scriptTask id="compute"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:script>label = __import__('os')</bpmn:script></bpmn:scriptTask>
  </bpmn:process>
</bpmn:definitions>"""
    body = assert_error(upload(client, auth("olga"), [("z_flow.bpmn", z_flow)]), 422, "invalid_definition")
    assert (body["details"]["file"], body["details"]["element_id"], body["details"]["line"]) == ("z_flow.bpmn", "compute", 6)
