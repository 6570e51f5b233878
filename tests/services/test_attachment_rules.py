"""``AttachmentService``: who is told of a new file (the people a comment tells, not who attached
it), who may delete one (``policy.may_delete_attachment``), and what a deletion leaves (no bytes,
an ``attachment_deleted`` event in the chain, 404 for the id)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select

from app.errors import NotFound, PermissionDenied
from app.models import AuditEvent, Notification, TicketAttachment, User
from app.services.notifications import EVENT_TYPES
from tests.http.desk import Desk
from tests.http.test_e2e_incident import START, triage

LOG = b"Tunnel lost at 09:12\nretrying...\n"


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def person(services: Any, name: str) -> Any:
    return services.users.get_by_username(name)


def triaged_incident(desk: Desk) -> str:
    """rita's incident, triaged by the ServiceDesk to the NetworkTeam (nina works it)."""
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    triage(desk, number)
    return number


def told(services: Any, text: str) -> set[str]:
    """Who got an in-app notification whose subject holds ``text``."""
    return set(services.session.scalars(select(User.username).join(Notification, Notification.user_id == User.id)
                                        .where(Notification.subject.contains(text))))


def attach(services: Any, who: str, number: str, name: str = "vpn.log", data: bytes = LOG) -> TicketAttachment:
    attachment = services.attachments.attach(person(services, who), number, name, "text/plain", data)
    services.session.commit()
    return attachment


def test_a_new_file_is_told_to_whom_a_comment_is_told_but_not_to_who_attached_it(desk: Desk, services: Any):
    number = triaged_incident(desk)
    assert "attachment.added" in EVENT_TYPES  # webhooks may subscribe to it

    attach(services, "rita", number, "vpn.log")
    assert told(services, f"rita attached vpn.log to {number}") == {"nina"}
    services.records.comment(person(services, "rita"), number, "Here is the log")
    services.session.commit()
    assert told(services, f"New comment on {number}") == {"nina"}  # the same people

    attach(services, "nina", number, "trace.txt")
    assert told(services, f"nina attached trace.txt to {number}") == {"rita"}
    body = services.session.scalars(select(Notification.body).where(
        Notification.subject == f"nina attached trace.txt to {number}")).one()
    assert body.startswith(f"nina attached file trace.txt ({len(LOG)} bytes) to {number} (VPN down).")
    assert body.endswith(f"/tickets/{number}")


def test_a_new_incident_without_a_group_tells_its_requester_only_as_a_comment_would(desk: Desk, services: Any):
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    attach(services, "alex", number, "screen.txt")
    services.records.comment(person(services, "alex"), number, "Looking")
    services.session.commit()
    assert told(services, f"alex attached screen.txt to {number}") == told(services, f"New comment on {number}") == {"rita"}
    attach(services, "rita", number, "mine.txt")
    assert told(services, "mine.txt") == set()  # nobody works it yet, and she is not told of her own file


@pytest.mark.parametrize(("deleter", "uploader", "allowed"), [
    ("rita", "rita", True),    # who attached it, on an open record
    ("nina", "rita", True),    # an agent of the record's group (NetworkTeam)
    ("ada", "rita", True),     # an admin
    ("rita", "nina", False),   # the requester, a file she did not attach
    ("alex", "rita", False),   # an agent, but not of the record's group
    ("alex", "alex", True),    # ... who deletes his own while the record is open
    ("aude", "rita", False),   # an auditor reads, never deletes
    ("olga", "rita", False),   # a process owner outside the group
])
def test_who_may_delete_a_file_of_an_open_record(desk: Desk, services: Any, deleter: str, uploader: str,
                                                 allowed: bool):
    number = triaged_incident(desk)
    attachment = attach(services, uploader, number)
    if allowed:
        services.attachments.delete(person(services, deleter), number, attachment.id)
        services.session.commit()
        assert services.attachments.of_record(services.records.by_number(number)) == []
    else:
        with pytest.raises(PermissionDenied):
            services.attachments.delete(person(services, deleter), number, attachment.id)
        services.session.rollback()
        assert [a.id for a in services.attachments.of_record(services.records.by_number(number))] == [attachment.id]


def test_a_closed_record_keeps_its_uploaders_files_but_its_group_and_admins_still_delete(desk: Desk, services: Any):
    number = triaged_incident(desk)
    hers, second, third = (attach(services, "rita", number, f"{n}.log") for n in ("one", "two", "three"))
    services.instances.cancel(person(services, "alex"), services.records.by_number(number).instance_id, "Raised twice")
    services.session.commit()
    with pytest.raises(PermissionDenied, match="the record is closed"):
        services.attachments.delete(person(services, "rita"), number, hers.id)
    services.session.rollback()
    services.attachments.delete(person(services, "nina"), number, second.id)
    services.attachments.delete(person(services, "ada"), number, third.id)
    services.session.commit()
    assert [a.id for a in services.attachments.of_record(services.records.by_number(number))] == [hers.id]


def test_a_deleted_file_loses_its_bytes_keeps_its_audit_event_and_is_not_found(desk: Desk, services: Any, clock: Any):
    number = triaged_incident(desk)
    other = desk.start("rita", "incident_management", START)["data"]["record_number"]
    kept = attach(services, "rita", number, "kept.log", b"keep me")
    gone = attach(services, "rita", number, "gone.log")
    elsewhere = attach(services, "rita", other, "other.log")
    rita, nina = person(services, "rita"), person(services, "nina")

    # an id of another record's file, under this record: not found, and nothing deleted
    with pytest.raises(NotFound):
        services.attachments.delete(nina, number, elsewhere.id)
    services.session.rollback()

    services.attachments.delete(nina, number, gone.id)
    services.session.commit()
    assert services.session.scalar(select(func.count()).select_from(TicketAttachment).where(
        TicketAttachment.id == gone.id)) == 0
    for call in (lambda: services.attachments.attachment(rita, number, gone.id),
                 lambda: services.attachments.delete(nina, number, gone.id)):
        with pytest.raises(NotFound):
            call()
        services.session.rollback()
    assert [a.id for a in services.attachments.attachments(rita, number)] == [kept.id]
    assert services.attachments.attachment(rita, other, elsewhere.id).data == LOG

    ticket = services.records.by_number(number)
    event = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "attachment_deleted")).one()
    assert event.actor == "nina" and event.instance_id == ticket.instance_id
    assert event.payload == {"number": number, "attachment_id": gone.id, "filename": "gone.log", "size": len(LOG),
                             "sha256": hashlib.sha256(LOG).hexdigest(), "uploaded_by": "rita",
                             "uploaded_at": gone.uploaded_at.isoformat()}
    assert services.audit.verify().ok


def test_a_watcher_who_attached_before_may_not_delete_and_the_refusal_is_audited(desk: Desk, services: Any):
    number = triaged_incident(desk)
    ruth = services.users.create_user("ruth", "password-1234", roles=["requester"], groups=[])
    services.session.commit()
    ticket = services.records.by_number(number)
    attachment = attach(services, "rita", number)
    # a file she attached once, on a record she now only watches (set up below the rules)
    attachment.uploaded_by_id, attachment.uploaded_by = ruth.id, "ruth"
    services.records.watch(ticket, user=ruth)
    services.session.commit()
    assert services.attachments.deletable(ruth, ticket, [attachment]) == set()
    with pytest.raises(PermissionDenied, match="watchers read it but do not delete"):
        services.attachments.delete(ruth, number, attachment.id)
    services.session.rollback()
    assert services.attachments.deletable(person(services, "rita"), ticket, [attachment]) == set()
    assert services.attachments.deletable(person(services, "nina"), ticket, [attachment]) == {attachment.id}
