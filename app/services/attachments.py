"""Files attached to records: screenshots and logs the record's people add.

One rule with comments (``RecordService.adding_to``): who may comment on a record may attach to
it; a read-only auditor, someone who only watches the record, and (unless they are the desk's
staff) anyone once the record is closed may not. Whoever may read the record (``RecordService.get``)
lists and downloads its files; an attachment id of another record, or of a record the reader may
not see, is not found.

A new file is told (``attachment.added``) to the people a comment on the record tells
(``RecordService.tell_record_people``: its requester and whoever works it), but not to who attached
it. A record has no files (nor comments) that some of its readers may not read, so nobody is told
of a file they cannot download.

Deleting a file (``delete``) is for who attached it while the record is not closed, the agents of
the record's group and admins (``policy.may_delete_attachment``). Its bytes go; the audit history
keeps an ``attachment_deleted`` event with its name, size, SHA-256 and who attached it (the event's
actor deleted it), chained like every event. A deleted file is not found afterwards. Its deletion
is told (``attachment.deleted``, naming the file and who deleted it) to whom its attaching would
be, but not to who deleted it.

What the uploader's client claims about a file is not trusted: its name is cut to a safe base
name (``clean_filename``) and its type is kept for the list only; a download is served as one of
a few types its bytes prove (``served_type``), else as ``application/octet-stream``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from app.clock import Clock
from app.db import serialize_writers
from app.errors import NotFound, PayloadTooLarge, PermissionDenied, ValidationFailed
from app.languages import Text
from app.models import Ticket, TicketAttachment, User

from . import policy
from .audit import AuditLog
from .records import RecordService

#: The longest file name kept, in characters (the column holds 255); a longer one keeps its end
#: (the extension) and loses the middle of its stem.
MAX_FILENAME = 200
#: The name of a file whose name is nothing once cleaned (only dots, separators or control characters).
FALLBACK_FILENAME = "attachment"
#: A client's content type as kept: ``type/subtype`` in RFC 6838's characters, without parameters.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
UNKNOWN_TYPE = "application/octet-stream"
#: Why a watcher who attached a file before they only watched the record may not delete it.
WATCHER_DELETES_NOT = "you watch this record: its watchers read it but do not delete its files"
#: Extensions of files that are text when their bytes are UTF-8 (logs mostly).
_TEXT_EXTENSIONS = frozenset({"txt", "log", "text", "csv", "out", "err"})
#: Unicode categories dropped from names: controls, format characters (bidirectional overrides
#: make "gpj.exe" read as "exe.jpg"), line and paragraph separators.
_DROPPED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def clean_filename(name: str | None) -> str:
    """The base name of ``name`` (the part after its last ``/`` or ``\\``), without control and
    format characters, spaces and dots at either end, at most ``MAX_FILENAME`` characters (its end
    kept); ``FALLBACK_FILENAME`` when nothing is left."""
    text = re.split(r"[/\\]", name or "")[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _DROPPED)
    text = unicodedata.normalize("NFC", text).strip(" .")
    if len(text) > MAX_FILENAME:
        stem, dot, extension = text.rpartition(".")
        if dot and 0 < len(extension) <= 16 and stem:
            text = stem[:MAX_FILENAME - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            text = text[:MAX_FILENAME].rstrip(" .")
    return text or FALLBACK_FILENAME


def clean_content_type(value: str | None) -> str:
    """The type the client claimed (``type/subtype``, lower case, parameters dropped), or
    ``application/octet-stream`` for none or anything that is not one."""
    media = (value or "").split(";", 1)[0].strip().lower()
    return media if _MEDIA_TYPE.fullmatch(media) else UNKNOWN_TYPE


def served_type(filename: str, data: bytes) -> str:
    """The Content-Type a download is served with: PNG, JPEG, GIF or PDF when the bytes start as
    one does, UTF-8 text for a text file's name (``.txt``, ``.log``...) whose bytes are UTF-8
    without NUL, else ``application/octet-stream``. Never the type the uploader claimed."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if extension in _TEXT_EXTENSIONS and b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return UNKNOWN_TYPE
        return "text/plain; charset=utf-8"
    return UNKNOWN_TYPE


def size_text(limit: int) -> str:
    """A byte count as people read it: "10 MiB", "512 KiB", "100 bytes"."""
    if limit >= 1024 * 1024:
        return f"{limit / 1024 / 1024:.3g} MiB"
    if limit >= 1024:
        return f"{limit / 1024:.3g} KiB"
    return f"{limit} bytes"


class AttachmentService:
    """Attach files to records, list and read them (the rules in the module's docstring)."""

    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService, *,
                 max_bytes: int, max_count: int) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records
        self.max_bytes = max_bytes
        self.max_count = max_count

    def attach(self, user: User, number: str, filename: str | None, content_type: str | None,
               data: bytes | None) -> TicketAttachment:
        """Attach ``data`` (None: no file was sent) to the record ``number`` as ``filename``.

        Raises NotFound / PermissionDenied as ``RecordService.adding_to``; ValidationFailed naming
        ``file`` for no file or an empty one, and for a record that holds ``max_count`` files
        already (code ``too_many_attachments``); PayloadTooLarge naming ``file`` for one larger
        than ``max_bytes``. Audited as ``attachment_added``; the record's ``updated_at`` moves."""
        ticket = self.records.adding_to(user, number, "attach")
        if data is None:
            raise ValidationFailed("send the file in the multipart field 'file'",
                                   details={"fields": {"file": ["is required"]}})
        if not data:
            raise ValidationFailed("the file is empty", details={"fields": {"file": ["is empty"]}})
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(f"the file is larger than {self.max_bytes:,} bytes ({size_text(self.max_bytes)})",
                                  details={"fields": {"file": [f"at most {self.max_bytes} bytes"]},
                                           "limit_bytes": self.max_bytes})
        # Two uploads at once would each count the files before the other's: they take turns.
        serialize_writers(self.session, f"ticket_attachment:{ticket.id}")
        held = self.session.scalar(select(func.count()).select_from(TicketAttachment)
                                   .where(TicketAttachment.ticket_id == ticket.id)) or 0
        if held >= self.max_count:
            raise ValidationFailed(f"{ticket.number} holds {held} files, the most a record may hold",
                                   code="too_many_attachments",
                                   details={"fields": {"file": [f"at most {self.max_count} files per record"]},
                                            "limit_count": self.max_count})
        now = self.clock.now()
        name = clean_filename(filename)
        attachment = TicketAttachment(
            ticket_id=ticket.id, filename=name, content_type=clean_content_type(content_type), size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_by_id=user.id, uploaded_by=user.username,
            uploaded_at=now)
        self.session.add(attachment)
        ticket.updated_at = now
        self.session.flush()
        self.audit.record("attachment_added", user, instance_id=ticket.instance_id, payload={
            "number": ticket.number, "attachment_id": attachment.id, "filename": name, "size": attachment.size,
            "sha256": attachment.sha256})
        self.records.tell_record_people(
            ticket, user, "attachment.added",
            Text("%(author)s attached %(filename)s to %(number)s", author=user.username, filename=name,
                 number=ticket.number),
            Text("%(author)s attached file %(filename)s (%(size)s) to %(number)s (%(title)s).\n\n%(link)s",
                 author=user.username, filename=name, size=size_text(attachment.size), number=ticket.number,
                 title=ticket.title, link=self.records.notifications.link(ticket)),
            payload={"attachment_id": attachment.id, "filename": name, "size": attachment.size})
        return attachment

    def delete(self, user: User, number: str, attachment_id: int) -> TicketAttachment:
        """Delete the file ``attachment_id`` of the record ``number``; returns it (its bytes gone).

        Raises NotFound as ``RecordService.get``, and for an id that is no file of this record
        (another record's, or one deleted already); PermissionDenied (audited) for who may not
        (``policy.may_delete_attachment``) or sees the record only as a watcher. Audited as
        ``attachment_deleted``; told as ``attachment.deleted`` to the record's people
        (``RecordService.tell_record_people``) but ``user``; the record's ``updated_at`` moves."""
        ticket = self.records.get(user, number, action="delete_attachment")
        # Two deletes of one file at once: the second waits, then finds it gone (404, not a 500).
        serialize_writers(self.session, f"ticket_attachment:{ticket.id}")
        found = self._of_record(ticket, attachment_id)
        allowed, reason = policy.may_delete_attachment(user, ticket, found)
        if allowed and not self.records.may_see(user, ticket, watched=False):
            allowed, reason = False, WATCHER_DELETES_NOT
        if not allowed:
            self.audit.refuse(user, "delete_attachment", reason=reason, number=ticket.number,
                              instance_id=ticket.instance_id, attachment_id=found.id)
            raise PermissionDenied(reason)
        self.session.delete(found)
        ticket.updated_at = self.clock.now()
        self.session.flush()
        self.audit.record("attachment_deleted", user, instance_id=ticket.instance_id, payload={
            "number": ticket.number, "attachment_id": found.id, "filename": found.filename, "size": found.size,
            "sha256": found.sha256, "uploaded_by": found.uploaded_by,
            "uploaded_at": found.uploaded_at.isoformat()})
        # Told as its attaching was (QA: a requester heard of an agent's file, never of its going).
        self.records.tell_record_people(
            ticket, user, "attachment.deleted",
            Text("%(author)s deleted %(filename)s from %(number)s", author=user.username, filename=found.filename,
                 number=ticket.number),
            Text("%(author)s deleted file %(filename)s (%(size)s) from %(number)s (%(title)s).\n\n%(link)s",
                 author=user.username, filename=found.filename, size=size_text(found.size), number=ticket.number,
                 title=ticket.title, link=self.records.notifications.link(ticket)),
            payload={"attachment_id": found.id, "filename": found.filename, "size": found.size})
        return found

    def attachments(self, user: User, number: str) -> list[TicketAttachment]:
        """The files of the record ``number`` (without their bytes), oldest first; NotFound as
        ``RecordService.get``."""
        return self.of_record(self.records.get(user, number))

    def of_record(self, ticket: Ticket) -> list[TicketAttachment]:
        """The files of ``ticket``, a record the caller has read already (``RecordService.get``),
        without their bytes, oldest first: one query."""
        return list(self.session.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)
                                         .order_by(TicketAttachment.id)))

    def attachment(self, user: User, number: str, attachment_id: int) -> TicketAttachment:
        """One file of the record ``number`` with its bytes. NotFound as ``RecordService.get``,
        and for an id that is no file of this record."""
        ticket = self.records.get(user, number, action="download")
        return self._of_record(ticket, attachment_id, undefer(TicketAttachment.data))

    def attachment_of(self, ticket: Ticket, attachment_id: int) -> TicketAttachment:
        """The file ``attachment_id`` of ``ticket``, a record the caller has read already
        (``RecordService.get``), without its bytes; NotFound naming ``attachment_id`` else."""
        return self._of_record(ticket, attachment_id)

    def deletable(self, user: User, ticket: Ticket, attachments: list[TicketAttachment]) -> set[int]:
        """The ids of those of ``attachments`` (files of ``ticket``) that ``user`` may delete, by
        ``delete``'s rule (what the record page offers a delete button for)."""
        if not attachments or not self.records.may_see(user, ticket, watched=False):
            return set()
        return {a.id for a in attachments if policy.may_delete_attachment(user, ticket, a)[0]}

    def _of_record(self, ticket: Ticket, attachment_id: int, *options: Any) -> TicketAttachment:
        """The file ``attachment_id`` if it is one of ``ticket``'s, else NotFound naming
        ``attachment_id`` in its details (another record's id is no file of this one)."""
        found = self.session.scalar(select(TicketAttachment).options(*options).where(
            TicketAttachment.id == attachment_id, TicketAttachment.ticket_id == ticket.id))
        if found is None:
            raise NotFound(f"no attachment {attachment_id} on {ticket.number}", details={"attachment_id": attachment_id})
        return found
