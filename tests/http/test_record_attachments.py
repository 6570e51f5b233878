"""Files attached to records through the API: who may attach (who may comment), who may list and
download (who may read the record), the limits, and what a download claims about itself."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.api.tickets import attachment_response
from app.models import AuditEvent, TicketAttachment
from app.services.attachments import clean_filename
from tests.conftest import joined_app
from tests.http.desk import Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def open_incident(desk: Desk, who: str = "rita") -> tuple[str, int]:
    instance = desk.start(who, "incident_management", INCIDENT)
    return instance["data"]["record_number"], instance["id"]


def attach(desk: Desk, number: str, who: str, data: bytes | None, filename: str = "screen.png",
           content_type: str = "image/png"):
    body = {} if data is None else {"file": (io.BytesIO(data), filename, content_type)}
    return desk.client.post(f"/api/v1/tickets/{number}/attachments", headers=desk.auth(who), data=body,
                            content_type="multipart/form-data")


def listed(desk: Desk, number: str, who: str) -> list[dict]:
    response = desk.client.get(f"/api/v1/tickets/{number}/attachments", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def download(desk: Desk, number: str, attachment_id: int, who: str):
    return desk.client.get(f"/api/v1/tickets/{number}/attachments/{attachment_id}", headers=desk.auth(who))


def test_a_requester_attaches_a_screenshot_and_the_desk_downloads_the_same_bytes(desk: Desk, services, clock):
    number, instance_id = open_incident(desk)
    before = desk.record(number)["updated_at"]
    clock.advance(timedelta(minutes=3))
    sent = attach(desk, number, "rita", PNG, filename="vpn error.png")
    assert sent.status_code == 201, sent.get_json()
    body = sent.get_json()
    assert body["filename"] == "vpn error.png" and body["size"] == len(PNG) and body["uploaded_by"] == "rita"
    assert body["sha256"] == hashlib.sha256(PNG).hexdigest() and body["content_type"] == "image/png"
    assert desk.record(number)["updated_at"] > before

    for reader in ("rita", "alex", "aude"):
        assert [a["id"] for a in listed(desk, number, reader)] == [body["id"]]
    got = download(desk, number, body["id"], "alex")
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"] == "attachment; filename=\"vpn error.png\"; filename*=UTF-8''vpn%20error.png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]

    events = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "attachment_added")).all()
    assert [(e.actor, e.instance_id, e.payload["filename"], e.payload["size"], e.payload["sha256"]) for e in events] == [
        ("rita", instance_id, "vpn error.png", len(PNG), body["sha256"])]


def test_a_download_is_served_as_its_bytes_prove_never_as_the_client_claimed(desk: Desk):
    number, _ = open_incident(desk)
    html = attach(desk, number, "rita", b"<script>alert(1)</script>", filename="page.html", content_type="text/html")
    fake = attach(desk, number, "rita", b"<svg onload=alert(1)>", filename="logo.png", content_type="image/png")
    log = attach(desk, number, "rita", "Tunnel lost à 09:12\n".encode(), filename="vpn.log", content_type="text/html")
    pdf = attach(desk, number, "rita", b"%PDF-1.7\n...", filename="report.pdf", content_type="application/x-evil")
    assert html.get_json()["content_type"] == "text/html"  # listed as claimed, never served so
    types = {name: download(desk, number, r.get_json()["id"], "rita").headers["Content-Type"]
             for name, r in (("html", html), ("fake", fake), ("log", log), ("pdf", pdf))}
    assert types == {"html": "application/octet-stream", "fake": "application/octet-stream",
                     "log": "text/plain; charset=utf-8", "pdf": "application/pdf"}


def test_file_names_keep_their_base_name_without_controls_or_separators(desk: Desk):
    number, _ = open_incident(desk)
    # (a backslash in the multipart header is its quoting's escape: clean_filename's own test has them)
    cases = {"../../etc/passwd": "passwd", "/home/rita/err.txt": "err.txt",
             "evil\u202egnp.exe": "evilgnp.exe", "bell\x07\x1b[31mred\x7f.txt": "bell[31mred.txt", "..": "attachment",
             "résumé 日本.txt": "résumé 日本.txt", "a" * 300 + ".log": "a" * 196 + ".log"}
    for sent, kept in cases.items():
        response = attach(desk, number, "rita", b"x", filename=sent, content_type="text/plain")
        assert response.status_code == 201, (sent, response.get_json())
        assert response.get_json()["filename"] == kept, sent
    named = [a for a in listed(desk, number, "rita") if a["filename"] == "résumé 日本.txt"][0]
    got = download(desk, number, named["id"], "rita")
    assert got.headers["Content-Disposition"] == (
        "attachment; filename=\"r_sum_ __.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E6%97%A5%E6%9C%AC.txt")


def test_names_the_multipart_header_cannot_carry_are_cleaned_and_quoted_too(app):
    """Backslashes and quotes are the multipart header's own escapes: a client that sends them
    raw (old browsers sent C:\\...) reaches the service as werkzeug reads it."""
    assert clean_filename("C:\\Users\\rita\\Desktop\\err.txt") == "err.txt"
    assert clean_filename("..\\..\\boot.ini") == "boot.ini"
    assert clean_filename("line\r\nbreak\x00.txt") == "linebreak.txt"
    assert clean_filename(None) == clean_filename("") == clean_filename(" . ") == "attachment"
    with app.test_request_context():
        response = attachment_response(TicketAttachment(filename='say "hi";\\.txt', data=b"x"))
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"say _hi_;_.txt\"; filename*=UTF-8''say%20%22hi%22%3B%5C.txt")


def test_who_may_not_read_the_record_neither_lists_downloads_nor_attaches(desk: Desk):
    number, _ = open_incident(desk)
    other, _ = open_incident(desk, "alex")  # alex's own record: rita may not see it
    mine = attach(desk, number, "rita", PNG).get_json()
    theirs = attach(desk, other, "alex", PNG).get_json()
    desk.services.users.create_user("ruth", "password-1234", roles=["requester"], groups=["Requesters"])
    desk.services.session.commit()
    for call in (lambda: attach(desk, number, "ruth", PNG), lambda: desk.client.get(
            f"/api/v1/tickets/{number}/attachments", headers=desk.auth("ruth")),
                 lambda: download(desk, number, mine["id"], "ruth")):
        assert_error(call(), 404, "not_found")
    # an id of another record's file, through a record she may read: not found either
    assert_error(download(desk, number, theirs["id"], "rita"), 404, "not_found")
    assert_error(download(desk, other, theirs["id"], "rita"), 404, "not_found")
    assert_error(download(desk, number, 999999, "rita"), 404, "not_found")


def test_an_auditor_reads_attachments_but_attaches_none(desk: Desk, services):
    number, _ = open_incident(desk)
    first = attach(desk, number, "rita", PNG).get_json()
    body = assert_error(attach(desk, number, "aude", PNG), 403, "forbidden")
    assert "auditors" in body["message"]
    assert download(desk, number, first["id"], "aude").data == PNG
    assert [a["id"] for a in listed(desk, number, "aude")] == [first["id"]]
    refused = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert any(e.actor == "aude" and e.payload.get("action") == "attach" for e in refused)


def test_a_closed_record_takes_no_more_files_from_its_requester_as_no_more_comments(desk: Desk):
    number, instance_id = open_incident(desk)
    kept = attach(desk, number, "rita", PNG).get_json()
    cancelled = desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth("alex"),
                                 json={"reason": "Raised twice"})
    assert cancelled.status_code == 200, cancelled.get_json()
    comment = desk.client.post(f"/api/v1/tickets/{number}/comments", headers=desk.auth("rita"), json={"body": "again"})
    refused = attach(desk, number, "rita", PNG)
    assert refused.status_code == comment.status_code == 403
    assert refused.get_json()["error"] == comment.get_json()["error"] == "forbidden"
    assert "is closed" in refused.get_json()["message"]
    assert download(desk, number, kept["id"], "rita").data == PNG  # what she attached stays hers to read
    assert attach(desk, number, "alex", b"closing notes", filename="notes.txt").status_code == 201  # staff still note


def test_missing_and_empty_files_are_refused_naming_the_field(desk: Desk):
    number, _ = open_incident(desk)
    missing = assert_error(attach(desk, number, "rita", None), 422, "validation_failed")
    assert missing["details"]["fields"] == {"file": ["is required"]}
    empty = assert_error(attach(desk, number, "rita", b""), 422, "validation_failed")
    assert empty["details"]["fields"] == {"file": ["is empty"]}
    assert listed(desk, number, "rita") == []


def test_a_file_of_the_default_limit_passes_the_smaller_request_limit_of_other_routes(app, desk: Desk):
    number, _ = open_incident(desk)
    limit = app.config["ATTACHMENT_MAX_BYTES"]
    assert limit == 10 * 1024 * 1024 > app.config["MAX_UPLOAD_BYTES"]
    data = PNG + b"\x00" * (limit - len(PNG))
    sent = attach(desk, number, "rita", data)
    assert sent.status_code == 201, sent.get_json()
    assert download(desk, number, sent.get_json()["id"], "rita").data == data
    too_big = assert_error(attach(desk, number, "rita", data + b"\x00"), 413, "payload_too_large")
    assert too_big["details"]["fields"] == {"file": [f"at most {limit} bytes"]}
    assert "10,485,760 bytes" in too_big["message"]
    # far too big: refused before the body is read, naming the same limit and field
    huge = assert_error(attach(desk, number, "rita", data * 2), 413, "payload_too_large")
    assert huge["details"]["fields"] == {"file": [f"at most {limit} bytes"]} and huge["details"]["limit_bytes"] == limit
    # every other route keeps its smaller limit
    other = desk.client.post("/api/v1/definitions", headers=desk.auth("olga"), content_type="multipart/form-data",
                             data={"files": (io.BytesIO(data), "big.bpmn")})
    assert assert_error(other, 413, "payload_too_large")["details"]["limit_bytes"] == app.config["MAX_UPLOAD_BYTES"]


def test_a_record_holds_at_most_the_configured_number_of_files(database_url, connection, clock):
    small = joined_app(database_url, connection, clock, ATTACHMENT_MAX_COUNT=2, ATTACHMENT_MAX_BYTES=1000)
    svc = small.extensions["processdesk"].services()
    try:
        desk = Desk(small.test_client(), svc)
        number, _ = open_incident(desk)
        assert attach(desk, number, "rita", b"1").status_code == 201
        assert attach(desk, number, "alex", b"2").status_code == 201
        full = assert_error(attach(desk, number, "rita", b"3"), 422, "too_many_attachments")
        assert full["details"]["fields"] == {"file": ["at most 2 files per record"]}
        big = assert_error(attach(desk, number, "rita", b"x" * 1001), 413, "payload_too_large")
        assert big["details"]["fields"] == {"file": ["at most 1000 bytes"]}
        assert len(listed(desk, number, "rita")) == 2
    finally:
        svc.session.close()


def test_the_openapi_document_names_the_attachment_routes(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/tickets/{number}/attachments"])
    upload = paths["/api/v1/tickets/{number}/attachments"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "file" in upload["schema"]["properties"]
    assert "get" in paths["/api/v1/tickets/{number}/attachments/{attachment_id}"]
