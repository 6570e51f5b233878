"""Watching a record: who follows it besides its requester and the people working it.

A watcher by name reads the record and hears its news as its requester does (its comments, its
resolution, its closing: ``RecordService.watching_people``). People become watchers when a
process step tells them about a record, when their own record is closed as its duplicate
(app/services/duplicates.py), or by asking: "Watch this record" (a line manager following an outage
that stops her team, an agent following a colleague's record). They stop by asking too, and the
desk's staff take a person off the list.

* The desk's staff (agents, process owners, admins) choose to watch a record; not a read-only
  auditor, who writes nothing, and not others: a watch lets its watcher read the record, and one
  chosen by someone who reads it only for now would outlast that. Watching one already watched
  changes nothing. A watch the staff chose brings news only (``RecordWatcher.chosen``): they read
  every record as staff, and once demoted they neither read the record nor hear its news.
* Anyone who watches a record may stop (whoever reads it only as a watcher then no longer reads it).
* The desk's staff (``policy.cancels_as_staff``: who cancel records) take anyone off a record they
  read; nobody else takes anyone but themselves off (403, audited).
* A watching group is the process's: it is listed, not added or removed here.

Each change is audited (``record_watch_started``, ``record_watch_stopped``: the record, who watches
or stops, and who did it). Who watches a record is shown by name to the staff; anyone else reading
it sees whether they watch it themselves and how many others do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete

from app.errors import NotFound, PermissionDenied
from app.models import RecordWatcher, Ticket, User

from . import policy
from .audit import AuditLog
from .records import STAFF_ROLES, RecordService

#: Why someone not the desk's staff may not take another person off a record's watchers.
NOT_YOURS_TO_REMOVE = "only the service desk takes other people off a record's watchers"
#: Why anyone but the desk's staff may not choose to watch a record.
STAFF_WATCH = "only the desk's staff choose to watch records; a requester hears her own records' news already"
#: Why a read-only auditor may not watch.
AUDITORS_READ = "auditors read records but do not change them"


@dataclass(frozen=True)
class Watchers:
    ticket: Ticket
    #: user names and group names, each sorted
    users: list[str]
    groups: list[str]
    #: does the caller watch it by name
    watching: bool
    #: did the call change anything
    changed: bool = False
    #: how many more watch it whom the caller is not told of by name (a requester is told a count)
    others: int = 0
    #: whether the caller still reads the record (False: they read it only as a watcher, and stopped)
    reads: bool = True


class WatchService:
    def __init__(self, records: RecordService, audit: AuditLog) -> None:
        self.records = records
        self.audit = audit

    def of_record(self, user: User, number: str) -> Watchers:
        """Who watches record ``number`` (NotFound for one ``user`` may not read)."""
        return self.listed(user, self.records.get(user, number))

    def watch(self, user: User, number: str) -> Watchers:
        """``user`` watches record ``number`` from now on."""
        ticket = self.records.get(user, number, action="watch")
        if policy.is_read_only(user):
            self.audit.refuse(user, "watch", reason="read only", number=ticket.number, instance_id=ticket.instance_id)
            raise PermissionDenied(AUDITORS_READ)
        if not user.has_role(*STAFF_ROLES):
            # A watch lets its watcher read the record: chosen by someone who reads it only for now
            # (its group's queue, a task of it), it would outlast that (review). The staff read every
            # record anyway; a requester hears her own records' news already.
            self.audit.refuse(user, "watch", reason="not staff", number=ticket.number, instance_id=ticket.instance_id)
            raise PermissionDenied(STAFF_WATCH)
        added = bool(self.records.watch(ticket, user=user, as_staff=True)["users"])
        if added:
            self.audit.record("record_watch_started", user, instance_id=ticket.instance_id,
                              payload={"number": ticket.number, "username": user.username})
        return self.listed(user, ticket, added)

    def unwatch(self, user: User, number: str, username: str | None = None) -> Watchers:
        """``username`` (``user`` themselves when None) no longer watches record ``number``.

        One's own: always (nothing changes for one who did not watch). Another's: the desk's staff
        only (PermissionDenied, audited), and NotFound for a name that does not watch it.
        """
        ticket = self.records.get(user, number, action="unwatch")
        own = username is None or username.strip().lower() == user.username.lower()
        if not own and not policy.cancels_as_staff(user):
            self.audit.refuse(user, "unwatch", reason="not staff", number=ticket.number, instance_id=ticket.instance_id)
            raise PermissionDenied(NOT_YOURS_TO_REMOVE)
        target = user if own else self._watcher(ticket, str(username))
        gone = self.records.session.execute(delete(RecordWatcher).where(
            RecordWatcher.ticket_id == ticket.id, RecordWatcher.user_id == target.id))
        removed = cast(CursorResult[Any], gone).rowcount > 0
        if removed:
            self.audit.record("record_watch_stopped", user, instance_id=ticket.instance_id,
                              payload={"number": ticket.number, "username": target.username})
        if own and removed and not self.records.may_see(user, ticket):
            # read only as a watcher: nothing more of it is theirs to read
            return Watchers(ticket, [], [], False, True, reads=False)
        return self.listed(user, ticket, removed)

    def _watcher(self, ticket: Ticket, username: str) -> User:
        """The user of ``username`` who watches ``ticket`` by name; NotFound otherwise."""
        for person in self.records.watching_people(ticket, active_only=False):
            if person.username.lower() == username.strip().lower():
                return person
        raise NotFound(f"{username.strip()} does not watch {ticket.number}")

    def listed(self, user: User, ticket: Ticket, changed: bool = False) -> Watchers:
        """Who watch ``ticket`` as ``user`` may know it: every name for the desk's staff (and the
        auditors), for anyone else themselves alone and how many others there are (the reporters
        of an outage are each other's strangers: review)."""
        listed = self.records.watchers(ticket)
        watching = user.username in listed["users"]
        if user.has_role(*STAFF_ROLES):
            return Watchers(ticket, listed["users"], listed["groups"], watching, changed)
        others = len(listed["users"]) - watching + len(listed["groups"])
        return Watchers(ticket, [user.username] if watching else [], [], watching, changed, others)
