from __future__ import annotations

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
    listing = client.get("/api/v1/definitions?per_page=2&page=1", headers=auth("rita")).get_json()
    assert listing["total"] == 5 and len(listing["items"]) == 2 and listing["per_page"] == 2
    assert listing["items"][0]["process_id"] == "child_flow" and listing["items"][0]["deployed_by"] == "olga"
    start(client, auth("rita"), "simple_request")
    detail = client.get("/api/v1/definitions/simple_request", headers=auth("rita")).get_json()
    assert detail["latest"]["version"] == 1 and detail["latest"]["running_instances"] == 1
    assert detail["latest"]["deployed_by"] == "olga" and detail["latest"]["deployed_at"]
    xml = client.get("/api/v1/definitions/simple_request/bpmn?version=1", headers=auth("rita"))
    assert xml.status_code == 200 and xml.mimetype == "application/xml"
    assert b'<bpmn:process id="simple_request"' in xml.data
    assert_error(client.get("/api/v1/definitions/simple_request/bpmn?version=7", headers=auth("rita")), 404)
    assert_error(client.get("/api/v1/definitions/nope", headers=auth("rita")), 404)


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
