"""Closing a record as the duplicate of another: ten people report the same outage, the desk works
one record and closes the other nine, and their reporters follow the one that is worked.

One step, all or nothing (the caller's unit of work): the record is linked to the one it duplicates
(``duplicate_of``, as the link form files it), its requester is added to that record's watchers
(they read it, and hear its news, from now on; nobody is added twice), and its process is cancelled
with the reason "duplicate of <number> (<title>)" and the desk's note if given, so its requester,
assignee and group are told as for any cancellation (``InstanceService.cancel``). Audited as
``record_closed_as_duplicate`` beside the link's and the cancellation's own events.

Who may: the desk's staff who may cancel the record (``policy.cancels_as_staff`` and
``policy.may_cancel``, checked by the cancellation itself) and who may see the other one. A
requester withdraws her own record instead. The other record is of the same kind (the link's own
rule) and still open: a closed one is reopened, or linked without closing, first.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import Conflict, PermissionDenied, ValidationFailed
from app.models import Ticket, User

from . import policy
from .audit import AuditLog
from .forms import bidi_control_message
from .instances import MAX_CANCEL_REASON, InstanceService
from .records import RecordService

#: The longest note the desk adds to the reason (the reason as a whole stays within MAX_CANCEL_REASON).
MAX_DUPLICATE_NOTE = 1000


@dataclass(frozen=True)
class ClosedDuplicate:
    record: Ticket
    of: Ticket
    #: The requester, when this step made them a watcher of ``of`` (None: already there, or none).
    watcher_added: str | None


class DuplicateService:
    def __init__(self, records: RecordService, instances: InstanceService, audit: AuditLog) -> None:
        self.records = records
        self.instances = instances
        self.audit = audit

    def close(self, user: User, number: str, of_number: str, note: str | None = None) -> ClosedDuplicate:
        """Close record ``number`` as the duplicate of ``of_number`` (see the module).

        Raises NotFound for a record the user may not see, PermissionDenied (audited) for a user
        who is not the desk's staff, ValidationFailed naming ``number`` (the record itself, another
        kind, a closed one) or ``note``, Conflict for a record with no process running, and what
        the cancellation raises.
        """
        record = self.records.get(user, number, action="close_duplicate")
        if not policy.cancels_as_staff(user):
            self.audit.refuse(user, "close_duplicate", reason="not staff", number=record.number,
                              instance_id=record.instance_id)
            raise PermissionDenied("only the service desk closes a record as a duplicate; its requester withdraws it")
        text = (note or "").strip()
        if len(text) > MAX_DUPLICATE_NOTE:
            raise ValidationFailed("note: too long", details={"fields": {"note": [f"at most {MAX_DUPLICATE_NOTE} characters"]}})
        if text and (bidi := bidi_control_message(text)) is not None:
            raise ValidationFailed("the note holds bidirectional control characters", details={"fields": {"note": [bidi]}})
        wanted = (of_number or "").strip()
        if not wanted:
            raise ValidationFailed("number: is required", details={"fields": {"number": ["is required"]}})
        other = self.records.get(user, wanted, action="close_duplicate")
        if other.id == record.id:
            raise ValidationFailed("a record is not its own duplicate", details={"fields": {"number": ["is this record"]}})
        if other.closed_at is not None:
            message = f"{other.number} is closed: reopen it, or link the two without closing {record.number}"
            raise ValidationFailed(message, code="duplicate_of_closed", details={"fields": {"number": [message]}})
        if record.instance_id is None or record.closed_at is not None:
            raise Conflict(f"{record.number} is closed already", details={"number": record.number})
        self.records.link(user, record, other, "duplicate_of")
        requester = record.requester
        added = (self.records.watch(other, user=requester)["users"]
                 if requester is not None and requester.id != other.requester_id else [])
        reason = f"duplicate of {other.number} ({other.title})"
        if text:
            reason = f"{reason}: {text}"
        self.instances.cancel(user, record.instance_id, reason[:MAX_CANCEL_REASON])
        self.audit.record("record_closed_as_duplicate", user, instance_id=record.instance_id, payload={
            "number": record.number, "of": other.number, "note": text or None,
            "watcher_added": added[0] if added else None})
        return ClosedDuplicate(record, other, added[0] if added else None)
