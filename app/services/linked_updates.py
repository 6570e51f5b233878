"""Telling a waiting process that a record linked to its own moved on.

A process that waits on another record (a problem on the change raised to fix it) should learn
at once when that record's status changes, not at its next look on the clock. So when a record
enters another status, the running instance of every record linked to it is sent the BPMN
message ``<link type>_updated`` (``fix_change_updated`` across a ``fix_change`` link), if its
diagram catches a message of that name, with the payload::

    {"number": "CHG-000001", "kind": "change", "status": "implementing", "link_type": "fix_change"}

An instance that does not wait for it right now is left alone (the message is not kept: BPMN
messages are not queued). The diagram reads the record itself (``get_linked_record``) to decide:
the message only says "look now", so a missed one costs a later look, never a wrong decision.

When: the status changes inside a step, a cancellation or a timer's firing, all of which tell
``Services._record_changed``. The messages are sent just before the transaction commits (a
``before_commit`` hook placed ahead of the audit chain's writer), once the step that moved the
record is complete and stored: the waiting instance then reads the record as the step left it,
in the same transaction, so both commit or neither does. Its own record may move in turn and
tell others; a transaction sends at most ``MAX_DELIVERIES`` messages, so two diagrams that
answer each other's news cannot loop.

The same way, a comment by a record's requester is passed to the record's own running instance as
the message ``requester_reply`` (``REPLY_MESSAGE``), if its diagram catches one and waits for it
now. A reply is a comment the requester writes as the requester (``records.is_requester_reply``):
not one a process step wrote, and not one by a requester who also works the record (an agent who
logged an incident and holds it as its assignee writes work notes, not answers). The payload::

    {"number": "INC-000001", "comment_id": 12, "comment": "It happens on every export.", "author": "rita"}

(the incident process ends a wait on the customer with it). A requester's comment is never
refused for it: an instance that does not wait, or is busy, is left as it is, and the comment's
notification still reaches the people on the record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, event, literal_column, select, union_all
from sqlalchemy.orm import Session

from app.db import TRANSACTION_SCOPED, get_by_id
from app.engine import MessageNotExpected
from app.errors import ProcessdeskError
from app.models import InstanceStatus, ProcessDefinition, ProcessInstance, Ticket, TicketComment, TicketLink

from .records import LINK_TYPES

if TYPE_CHECKING:
    from . import Services

log = logging.getLogger(__name__)

#: The message's name is the link type with this suffix.
MESSAGE_SUFFIX = "_updated"
#: The message a record's own process is sent when the record's requester comments on it.
REPLY_MESSAGE = "requester_reply"
#: Characters of the comment the reply message carries (a comment holds up to ``MAX_COMMENT``).
REPLY_CHARS = 2000
#: Record moves whose news one transaction passes on at most (the rest are dropped, logged; the
#: diagrams' own looks on the clock still find the news).
MAX_DELIVERIES = 50

#: (link, link type, instance, its version) of the running processes of the records linked to a record,
#: either end of the link, in the order the links were made.
_LINKED_RUNNING = union_all(*(
    select(TicketLink.id, TicketLink.link_type, ProcessInstance.id, ProcessInstance.definition_id)
    .join(Ticket, Ticket.id == other)
    .join(ProcessInstance, ProcessInstance.id == Ticket.instance_id)
    .where(here == bindparam("ticket_id"), ProcessInstance.status == InstanceStatus.RUNNING)
    for here, other in ((TicketLink.source_id, TicketLink.target_id), (TicketLink.target_id, TicketLink.source_id))
)).order_by(literal_column("1"))

#: A waiting instance's row, read afresh and locked unless another transaction holds it.
_LOCK_FREE = (select(ProcessInstance).where(ProcessInstance.id == bindparam("ident"))
              .with_for_update(skip_locked=True, of=ProcessInstance).execution_options(populate_existing=True))

#: ``session.info`` key: the deliveries this transaction still has to make (callables).
_PENDING = TRANSACTION_SCOPED + "linked_updates"


def message_name(link_type: str) -> str:
    return f"{link_type}{MESSAGE_SUFFIX}"


def sent_by_the_platform(name: str) -> bool:
    """Whether message ``name`` is news only the platform delivers: a requester's reply (made
    from a real comment) or a linked record's move (made from the record). Whoever may send an
    instance messages through the API must not be able to send these: a made-up reply would
    end a wait on the customer with words nobody wrote, and a payload of the wrong shape would
    break the step that reads it."""
    if name == REPLY_MESSAGE:
        return True
    return name.endswith(MESSAGE_SUFFIX) and name[:-len(MESSAGE_SUFFIX)] in LINK_TYPES


class LinkedUpdates:
    def __init__(self, services: Services) -> None:
        self.services = services

    def record_changed(self, ticket: Ticket, changes: dict[str, Any]) -> None:
        """Queue the news of ``ticket``'s new status, if it has one, for its linked records'
        waiting instances (sent before the commit)."""
        if "status" not in changes or ticket.id is None:
            return
        pending: list[Callable[[], None]] = self.services.session.info.setdefault(_PENDING, [])
        ticket_id, status = ticket.id, ticket.status
        pending.append(lambda: self._tell_linked(ticket_id, status))

    def requester_replied(self, ticket: Ticket, comment: TicketComment) -> None:
        """Queue ``comment`` (``ticket``'s requester's reply: ``records.is_requester_reply``) for the
        record's own waiting instance."""
        if ticket.instance_id is None:
            return
        pending: list[Callable[[], None]] = self.services.session.info.setdefault(_PENDING, [])
        instance_id = ticket.instance_id
        payload = {"number": ticket.number, "comment_id": comment.id, "comment": comment.body[:REPLY_CHARS],
                   "author": comment.author_name}
        pending.append(lambda: self._tell_own(instance_id, payload))

    def _tell_own(self, instance_id: int, payload: dict[str, Any]) -> None:
        session = self.services.session
        instance = get_by_id(session, ProcessInstance, instance_id)
        if instance is None or instance.status != InstanceStatus.RUNNING:
            return
        if self._catches(instance.definition_id, REPLY_MESSAGE):
            self._send(instance_id, REPLY_MESSAGE, payload)

    def _tell_linked(self, ticket_id: int, status: str) -> None:
        session = self.services.session
        ticket = get_by_id(session, Ticket, ticket_id)
        if ticket is None:
            return
        told: set[tuple[int, str]] = set()
        for _link, link_type, instance_id, definition_id in session.execute(_LINKED_RUNNING, {"ticket_id": ticket_id}):
            name = message_name(link_type)
            if (instance_id, name) in told:
                continue
            told.add((instance_id, name))
            if not self._catches(definition_id, name):
                continue
            payload = {"number": ticket.number, "kind": ticket.kind, "status": status, "link_type": link_type}
            self._send(instance_id, name, payload)

    def _catches(self, definition_id: int, name: str) -> bool:
        """Whether the diagram of that version ever waits for message ``name`` (else no run is loaded)."""
        definition = get_by_id(self.services.session, ProcessDefinition, definition_id)
        return definition is not None and name in self.services.runner.bundle(definition).caught_messages

    def _send(self, instance_id: int, name: str, payload: dict[str, Any]) -> None:
        runner = self.services.runner
        # Best effort: the news must never cost the step that moved the record. So the waiting
        # instance is taken only if nobody holds it (PostgreSQL: its row locked now, else skipped;
        # SQLite: this transaction already holds the write lock) and read afresh, so its version
        # check cannot fail; and a run that cannot be loaded is skipped. Its timer looks later.
        instance = self.services.session.scalars(_LOCK_FREE, {"ident": instance_id}).first()
        if instance is None or instance.status != InstanceStatus.RUNNING:
            log.info("linked record updates: instance %s is busy; it will look on its timer", instance_id)
            return
        try:
            run = runner.load(instance, None)
        except ProcessdeskError as err:
            log.warning("linked record updates: instance %s cannot be loaded (%s)", instance_id, err)
            return
        try:
            run.send_message(name, payload, runner.identity(None, instance))
        except MessageNotExpected:
            runner.release(instance, run)  # not waiting for it now: nothing changed
            return
        self.services.audit.record("message_received", None, instance_id=instance.id,
                                   payload={"name": name, "payload": payload}, actor_name="engine")
        runner.save(instance, run, None)


def _deliver_pending(session: Session) -> None:
    pending: list[Callable[[], None]] | None = session.info.get(_PENDING)
    sent = 0
    while pending:
        if sent >= MAX_DELIVERIES:
            log.warning("linked record updates: %d more deliveries dropped in one transaction", len(pending))
            pending.clear()
            break
        pending.pop(0)()
        sent += 1


def install_session_hooks() -> None:
    """Send the queued news before every commit, ahead of the audit chain's writer, so the
    events of the steps it causes join this transaction's chain (idempotent)."""
    if not event.contains(Session, "before_commit", _deliver_pending):
        event.listen(Session, "before_commit", _deliver_pending, insert=True)
