"""Closing a record as the duplicate of another: ten people report the same outage, the desk works
one record and closes the other nine, and their reporters follow the one that is worked.

One step, all or nothing (the caller's unit of work): the record is linked to the one it duplicates
(``duplicate_of``, as the link form files it), its requester is added to that record's watchers
(they read it, and hear its comments, resolution and closing, from now on:
``RecordService.watching_people``; nobody is added twice; not the requester of a service request,
which is personal) as are the people who watched the record (a chain: the reporters of records
closed onto it before follow on), and its process is cancelled
with the reason "duplicate of <number> (<title>)" and the desk's note if given, so its requester,
assignee and group are told as for any cancellation (``InstanceService.cancel``). Audited as
``record_closed_as_duplicate`` beside the link's and the cancellation's own events.

Who may: the desk's staff who may cancel the record (``policy.cancels_as_staff`` and
``policy.may_cancel``, checked by the cancellation itself) and who may see the other one. A
requester withdraws her own record instead. The other record is of the same kind (the link's own
rule) and still open: a closed one is reopened, or linked without closing, first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.errors import BulkRefused, Conflict, PermissionDenied, ProcessdeskError, ValidationFailed
from app.models import Ticket, User

from . import policy
from .audit import AuditLog
from .forms import bidi_control_message, without_bidi_controls
from .instances import MAX_CANCEL_REASON, InstanceService
from .records import STAFF_ROLES, RecordService

#: The longest note the desk adds to the reason (the reason as a whole stays within MAX_CANCEL_REASON).
MAX_DUPLICATE_NOTE = 1000
#: The most records one call closes as duplicates (four pages of the record list).
MAX_DUPLICATES = 100
#: Why anyone but the desk's staff is refused.
NOT_STAFF = "only the service desk closes a record as a duplicate; its requester withdraws it"
#: The kinds whose requester is not made a watcher of the record theirs duplicates: a service
#: request is personal (an order, an access), and its duplicate another person's.
PERSONAL_KINDS = frozenset({"request"})


@dataclass(frozen=True)
class ClosedDuplicate:
    record: Ticket
    of: Ticket
    #: The requester, when this step made them a watcher of ``of`` (None: already there, or none).
    watcher_added: str | None


def _checked_note(note: str | None) -> str:
    """The note as kept ("" for none); ValidationFailed naming ``note`` for one too long or holding
    bidirectional control characters (it is told to the record's people, as any form's text)."""
    text = (note or "").strip()
    if len(text) > MAX_DUPLICATE_NOTE:
        raise ValidationFailed("note: too long", details={"fields": {"note": [f"at most {MAX_DUPLICATE_NOTE} characters"]}})
    if text and (bidi := bidi_control_message(text)) is not None:
        raise ValidationFailed("the note holds bidirectional control characters", details={"fields": {"note": [bidi]}})
    return text


def _required_number(number: str | None, field: str) -> str:
    wanted = (number or "").strip()
    if not wanted:
        raise ValidationFailed(f"{field}: is required", details={"fields": {field: ["is required"]}})
    return wanted


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
            raise PermissionDenied(NOT_STAFF)
        if record.closed_at is not None:
            raise Conflict(f"{record.number} is closed already", details={"number": record.number})
        if record.instance_id is None:
            raise Conflict(f"{record.number} has no process to stop", details={"number": record.number})
        text = _checked_note(note)
        other = self.records.get(user, _required_number(of_number, "number"), action="close_duplicate")
        if other.id == record.id:
            raise ValidationFailed("a record is not its own duplicate", details={"fields": {"number": ["is this record"]}})
        if other.closed_at is not None:
            message = f"{other.number} is closed: reopen it, or link the two without closing {record.number}"
            raise ValidationFailed(message, code="duplicate_of_closed", details={"fields": {"number": [message]}})
        try:
            self.records.link(user, record, other, "duplicate_of")
        except ValidationFailed as err:  # another kind, or the reverse link: said of the number given
            raise ValidationFailed(err.message, code=err.code, details={
                **err.details, "fields": {"number": [err.message]}}) from None
        # Who follows this record follows the other from now on: its requester and those who watch it
        # by name (the reporters of duplicates closed onto it before: a chain keeps them); nobody for
        # a service request, whose record is personal (an order, an access: review, a requester who
        # watched her own request read another's once it was closed onto it).
        added: list[str] = []
        moved: list[str] = []
        if record.kind not in PERSONAL_KINDS:
            requester = record.requester
            if requester is not None and requester.id != other.requester_id:
                added = self.records.watch(other, user=requester, as_staff=requester.has_role(*STAFF_ROLES))["users"]
            moved = [name for person in self.records.watching_people(record) if person.id != other.requester_id
                     for name in self.records.watch(other, user=person, as_staff=person.has_role(*STAFF_ROLES))["users"]]
        reason = f"duplicate of {other.number} ({without_bidi_controls(other.title or '')})"
        if text:
            reason = f"{reason}: {text}"
        self.instances.cancel(user, record.instance_id, reason[:MAX_CANCEL_REASON])
        self.audit.record("record_closed_as_duplicate", user, instance_id=record.instance_id, payload={
            "number": record.number, "of": other.number, "note": text or None,
            "watcher_added": added[0] if added else None, "watchers_moved": moved})
        return ClosedDuplicate(record, other, added[0] if added else None)

    def close_many(self, user: User, numbers: Sequence[str], of_number: str,
                   note: str | None = None) -> list[ClosedDuplicate]:
        """:meth:`close` for each of ``numbers`` (1 to ``MAX_DUPLICATES`` records, each once, in
        the order given), all onto ``of_number``: a major incident's ten reports closed at once.

        All or nothing: the record they duplicate is checked first (NotFound, ValidationFailed
        naming ``of`` for a closed one); then, if any record is refused, nothing is changed
        and BulkRefused (409) names each refused number with its own refusal (``details.records``).
        ValidationFailed naming ``numbers`` for none, too many, or a number that is not text.
        """
        wanted: dict[str, None] = {}
        for value in numbers:
            if not isinstance(value, str) or not value.strip():
                raise ValidationFailed("numbers: a record number is text", details={"fields": {"numbers": [
                    f"{value!r} is not a record number"]}})
            wanted.setdefault(value.strip().upper(), None)
        if not wanted:
            raise ValidationFailed("numbers: name at least one record", details={"fields": {"numbers": [
                "name at least one record"]}})
        if len(wanted) > MAX_DUPLICATES:
            raise ValidationFailed(f"numbers: at most {MAX_DUPLICATES} records at once", details={"fields": {
                "numbers": [f"at most {MAX_DUPLICATES} records at once"]}})
        _checked_note(note)
        other = self.records.get(user, _required_number(of_number, "of"), action="close_duplicate")
        if other.closed_at is not None:
            message = f"{other.number} is closed: reopen it, or link the records without closing them"
            raise ValidationFailed(message, code="duplicate_of_closed", details={"fields": {"of": [message]}})
        done: list[ClosedDuplicate] = []
        refused: dict[str, ProcessdeskError] = {}
        for number in wanted:
            try:
                done.append(self.close(user, number, other.number, note))
            except ProcessdeskError as err:
                refused[number] = err
        if refused:
            raise BulkRefused(f"{len(refused)} of {len(wanted)} records refused; nothing was changed", refused,
                              "close_as_duplicate", "records")
        return done
