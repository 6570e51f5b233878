"""Attachments through the API, continued: ``DELETE /tickets/<n>/attachments/<id>``, the notice a
new file sends, and the files' metadata in ``GET /tickets/<n>`` (one query, no bytes)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from app.services.attachments import size_text
from app.services.notifications import EVENT_TYPES
from tests.conftest import sent_statements
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import triage
from tests.http.test_record_attachments import PNG, attach, download, listed, open_incident


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def delete(desk: Desk, number: str, attachment_id: int, who: str):
    return desk.client.delete(f"/api/v1/tickets/{number}/attachments/{attachment_id}", headers=desk.auth(who))


def test_the_uploader_deletes_a_file_which_is_then_not_found(desk: Desk, services):
    number, instance_id = open_incident(desk)
    sent = attach(desk, number, "rita", PNG, filename="wrong.png").get_json()
    kept = attach(desk, number, "rita", b"kept", filename="right.txt").get_json()

    gone = delete(desk, number.lower(), sent["id"], "rita")
    assert gone.status_code == 204 and gone.data == b""
    assert_error(download(desk, number, sent["id"], "rita"), 404, "not_found")
    assert_error(delete(desk, number, sent["id"], "rita"), 404, "not_found")
    assert [a["id"] for a in listed(desk, number, "rita")] == [kept["id"]]
    assert [a["id"] for a in desk.record(number)["attachments"]] == [kept["id"]]

    events = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "attachment_deleted")).all()
    assert [(e.actor, e.instance_id, e.payload["filename"], e.payload["size"], e.payload["sha256"],
             e.payload["uploaded_by"]) for e in events] == [
        ("rita", instance_id, "wrong.png", len(PNG), hashlib.sha256(PNG).hexdigest(), "rita")]


def test_deleting_is_refused_403_to_who_may_not_and_404_to_who_does_not_see_the_record(desk: Desk, services):
    number, _ = open_incident(desk)
    other, _ = open_incident(desk, "alex")
    hers = attach(desk, number, "rita", PNG).get_json()
    theirs = attach(desk, other, "alex", PNG).get_json()

    for who, reason in (("alex", "only who attached a file"), ("aude", "auditors read records")):
        body = assert_error(delete(desk, number, hers["id"], who), 403, "forbidden")
        assert reason in body["message"]
    # mona does not see rita's record; rita does not see alex's; an id of alex's file under rita's record
    assert_error(delete(desk, number, hers["id"], "mona"), 404, "not_found")
    assert_error(delete(desk, other, theirs["id"], "rita"), 404, "not_found")
    assert_error(delete(desk, number, theirs["id"], "rita"), 404, "not_found")
    assert_error(delete(desk, number, theirs["id"], "ada"), 404, "not_found")
    assert download(desk, number, hers["id"], "rita").data == PNG
    assert download(desk, other, theirs["id"], "alex").data == PNG
    refused = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert {e.actor for e in refused if e.payload.get("action") == "delete_attachment"} == {"alex", "aude", "mona", "rita"}


def test_the_agents_of_the_records_group_and_admins_delete_even_once_it_is_closed(desk: Desk):
    number, instance_id = open_incident(desk)
    triage(desk, number)  # to the NetworkTeam: nina
    files = [attach(desk, number, "rita", PNG, filename=f"{n}.png").get_json()["id"] for n in range(3)]
    assert delete(desk, number, files[0], "nina").status_code == 204
    cancelled = desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth("alex"),
                                 json={"reason": "Raised twice"})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert "is closed" in assert_error(delete(desk, number, files[1], "rita"), 403, "forbidden")["message"]
    assert delete(desk, number, files[1], "nina").status_code == 204
    assert delete(desk, number, files[2], "ada").status_code == 204
    assert listed(desk, number, "rita") == []


def test_a_new_file_is_told_to_the_records_people_but_its_uploader(desk: Desk):
    number, _ = open_incident(desk)
    triage(desk, number)
    attach(desk, number, "rita", PNG, filename="error.png")
    subject = f"rita attached error.png to {number}"
    assert [n["subject"] for n in desk.notifications("nina") if n["subject"] == subject] == [subject]
    assert not [n for n in desk.notifications("rita") if "attached" in n["subject"]]
    assert not [n for n in desk.notifications("alex") if "attached" in n["subject"]]  # triaged it, does not work it


def test_a_deleted_file_is_told_to_whom_its_attaching_was_but_who_deleted_it(desk: Desk, services):
    """Deleting a file told nobody: the requester learnt of the agent's file and never of its going."""
    number, _ = open_incident(desk)
    triage(desk, number)
    sent = attach(desk, number, "nina", PNG, filename="trace.png").get_json()
    assert delete(desk, number, sent["id"], "nina").status_code == 204
    subject = f"nina deleted trace.png from {number}"
    [told] = [n for n in desk.notifications("rita") if n["subject"] == subject]
    assert told["body"].startswith(f"nina deleted file trace.png ({size_text(len(PNG))}) from {number} (VPN down).")
    assert not [n for n in desk.notifications("nina") if "deleted" in n["subject"]]  # who deleted it
    assert not [n for n in desk.notifications("alex") if "deleted" in n["subject"]]  # triaged it, does not work it

    # the requester deletes her own: the group that works the record hears of it
    hers = attach(desk, number, "rita", PNG, filename="error.png").get_json()
    assert delete(desk, number, hers["id"], "rita").status_code == 204
    assert [n["subject"] for n in desk.notifications("nina") if "deleted" in n["subject"]] == [
        f"rita deleted error.png from {number}"]
    assert not [n for n in desk.notifications("rita") if n["subject"] == f"rita deleted error.png from {number}"]
    # webhooks may subscribe to it, and a refused delete tells nobody
    assert "attachment.deleted" in EVENT_TYPES
    kept = attach(desk, number, "rita", PNG, filename="kept.png").get_json()
    assert_error(delete(desk, number, kept["id"], "alex"), 403, "forbidden")
    assert not [n for n in desk.notifications("rita") if "kept.png" in n["subject"] and "deleted" in n["subject"]]


def test_the_record_lists_its_files_metadata_in_one_query_without_their_bytes(desk: Desk, services):
    number, _ = open_incident(desk)
    sent = [attach(desk, number, who, PNG + bytes([n]), filename=f"shot{n}.png").get_json()
            for n, who in enumerate(("rita", "alex", "rita"))]
    services.session.expunge_all()
    with sent_statements(services.session.connection().engine) as statements:
        record = desk.record(number, "rita")
    reads = [s for s in statements if "FROM ticket_attachment" in s]
    assert len(reads) == 1, reads
    assert "ticket_attachment.data" not in reads[0]
    files = record["attachments"]
    assert [f["id"] for f in files] == [s["id"] for s in sent]
    first = files[0]
    assert set(first) == {"id", "filename", "size", "content_type", "sha256", "uploaded_by", "uploaded_at",
                          "download_url"}
    assert (first["filename"], first["size"], first["content_type"], first["uploaded_by"]) == (
        "shot0.png", len(PNG) + 1, "image/png", "rita")
    assert first["uploaded_at"] == sent[0]["uploaded_at"]
    assert first["download_url"] == f"/api/v1/tickets/{number}/attachments/{first['id']}"
    assert desk.client.get(first["download_url"], headers=desk.auth("rita")).data == PNG + b"\x00"
    assert sent[0]["download_url"] == first["download_url"]  # the upload's answer says it too
    assert desk.record(open_incident(desk)[0])["attachments"] == []


def test_the_openapi_document_names_the_delete_route_and_the_records_files(client):
    document = client.get("/api/v1/openapi.json").get_json()
    route = document["paths"]["/api/v1/tickets/{number}/attachments/{attachment_id}"]
    assert {"get", "delete"} <= set(route) and "204" in route["delete"]["responses"]
    detail = document["components"]["schemas"]["TicketDetailOut"]["properties"]["attachments"]
    assert detail["items"]["$ref"].endswith("/AttachmentOut")
