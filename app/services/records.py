"""Ticket records: numbering, the declared data mapping, queries, comments and links.

A process declares in ``<process_id>.record.json`` which task-data variables feed which record
fields (docs/PROCESSES.md); after every engine step ``sync`` copies them, so no code is written per
flow. Timestamps follow the status: first response when the status first leaves its start value
(for a catalog request, in a step by someone other than the requester) or at the first staff
comment (``add_comment``);
resolved/closed on the first entry into a resolved/closed status (cleared on reopen).

A mapping's ``comments`` lists variables that carry what a person says to the record's people
(an incident's reason for reopening): a step that gives one a new, non-empty value adds it as a
record comment by the step's actor (by the process, for a step nobody acted in).

Cancelling a record's process (``cancel``) closes the record with status ``cancelled`` whatever
the mapping's closed statuses: the process that would have set its status is gone.

Watchers (``watch``): the users and groups a process step told about a record (a diagram's
``notify``) read it from then on (``may_see``, and ``_visible`` in SQL: one rule), but act on it
no more than before: comments and links to it are refused to someone who only watches it. A
group's watch is read by its members whose queue it is (``policy.watching_groups``), as they are
when the record is read; the step tells only those of the group who may read the record (``readers``).

A mapping's ``internal`` names working variables (an agent's triage notes) that only
``policy.INTERNAL_DATA_ROLES`` read in instance and task data (``hidden_variables``).

Links are directed and typed; each type states one relation between the two records (see
``LINK_RELATIONS``). A pair of records may hold several relations (related to, and caused by), but
each relation once: a link stating what another already states, from either end, is not added,
and a directed relation one way round only: its reverse is refused (``link_reversed``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn

from sqlalchemy import Select, and_, asc, bindparam, desc, false, func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.clock import Clock
from app.db import (
    COUNT_CAP,
    LIKE_ESCAPE,
    TRANSACTION_SCOPED,
    count_capped,
    insert_row,
    like_literal,
    serialize_writers,
    set_reference,
)
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.languages import Text
from app.models import (
    CatalogItem,
    DefinitionFile,
    Group,
    HumanTask,
    ProcessDefinition,
    ProcessInstance,
    RecordSequence,
    RecordWatcher,
    Role,
    SlaClock,
    Ticket,
    TicketComment,
    TicketLink,
    User,
)

from . import policy
from .audit import AuditLog, json_safe
from .bounded import BoundedCache
from .forms import START_FORM_SUFFIX, bidi_control_message
from .notifications import NotificationService, Person
from .sla import RESPONSE_BY_PEOPLE

#: How a notice says a record's closing status, in its reader's language (another status: as it is).
CLOSED_WORDS = {"closed": Text("closed"), "rejected": Text("rejected"), "withdrawn": Text("withdrawn"),
                "cancelled": Text("cancelled")}

RECORD_FIELDS = ("title", "description", "status", "priority", "category", "assignment_group", "assignee", "service", "ci")
KINDS = {"incident": "INC", "change": "CHG", "problem": "PRB", "request": "REQ"}
#: The roles that see every record: the desk's staff, and auditors (read-only). An approver is not among
#: them: they see the records whose decisions reach them (``may_see``), not the whole desk.
STAFF_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN, Role.AUDITOR)
#: The record list's sort keys and the columns each orders by (then by id). "priority" orders by the
#: priority's rank, the one the task lists use (P1 first, a change's high risk with P2, none last),
#: then by its text within a rank: the text alone would put "high" after "P4".
SORTABLE: dict[str, tuple[Any, ...]] = {
    "number": (Ticket.id,), "opened_at": (Ticket.opened_at,), "updated_at": (Ticket.updated_at,),
    "priority": (Ticket.priority_rank, Ticket.priority), "status": (Ticket.status,), "title": (Ticket.title,)}
#: What a link ``source -> target`` of each type states: ``(relation, source_is_subject)``, read as
#: "subject <relation> object". "caused_by" and "related_incident" (what incident management and
#: problem management write) state one relation from its two ends: the problem causes the incident.
LINK_RELATIONS: dict[str, tuple[str, bool]] = {
    "related": ("related", True),            # either way round: see SYMMETRIC
    "caused_by": ("causes", False),          # the target causes the source
    "problem": ("causes", False),            # the target is the source's problem: the same relation
    "related_incident": ("causes", True),    # the source (a problem) causes the target (its incident)
    "duplicate_of": ("duplicates", True),    # the source duplicates the target
    "fix_change": ("fixes", False),          # the target (a change) fixes the source
    "parent": ("parent_of", False),          # the target is the source's parent
    "child": ("parent_of", True),            # the target is the source's child
    "known_error": ("documents", False),     # the target documents the source's known error
    "blocks": ("blocks", True),              # the source blocks the target
}
SYMMETRIC = frozenset({"related"})
#: Each directed relation as a sentence says it: "subject <words> object".
RELATION_WORDS = {"causes": "causes", "duplicates": "duplicates", "fixes": "fixes", "parent_of": "is the parent of",
                  "blocks": "blocks", "documents": "documents the known error of"}
LINK_TYPES = set(LINK_RELATIONS)
#: The record kinds each link type joins, ``(source kinds, target kinds)`` (None: any kind); the
#: types in ``SAME_KIND_LINKS`` join two records of one kind. A link that names the wrong kinds
#: states something false (an incident "fixes" a problem) and would feed the wrong news to a
#: diagram that waits on that type (``linked_updates``): refused.
SAME_KIND_LINKS = frozenset({"duplicate_of", "parent", "child"})
LINK_KINDS: dict[str, tuple[frozenset[str] | None, frozenset[str] | None]] = {
    "related": (None, None),
    "blocks": (None, None),
    "caused_by": (None, frozenset({"incident", "problem", "change"})),
    "problem": (frozenset({"incident"}), frozenset({"problem"})),
    "related_incident": (frozenset({"incident", "problem", "change"}), frozenset({"incident"})),
    "fix_change": (frozenset({"problem", "incident"}), frozenset({"change"})),
    "known_error": (frozenset({"incident"}), frozenset({"problem"})),
    **{name: (None, None) for name in SAME_KIND_LINKS},
}
MAX_COMMENT = 20_000
#: Record fields whose values may be codes that forms give titles to. The status has the pages'
#: own words; people and groups are names, shown as written (as the list filters them).
TITLED_FIELDS = ("priority", "category", "service", "ci")
#: The longest text taken for a catalog item code when looking up item names.
_MAX_ITEM_CODE = 64


def _a(kind: str) -> str:
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def _kinds_text(kinds: frozenset[str]) -> str:
    return _a(" or ".join(sorted(kinds)))


def link_kind_error(link_type: str, source: Ticket, target: Ticket) -> str | None:
    """Why a ``link_type`` link from ``source`` to ``target`` joins the wrong kinds of record, or None."""
    if link_type in SAME_KIND_LINKS and source.kind != target.kind:
        return (f"a {link_type} link joins two records of one kind: {source.number} is {_a(source.kind)}, "
                f"{target.number} {_a(target.kind)}")
    sources, targets = LINK_KINDS[link_type]
    if sources is not None and source.kind not in sources:
        return f"a {link_type} link goes from {_kinds_text(sources)}: {source.number} is {_a(source.kind)}"
    if targets is not None and target.kind not in targets:
        return f"a {link_type} link goes to {_kinds_text(targets)}: {target.number} is {_a(target.kind)}"
    return None


def check_mapping(mapping: Mapping[str, Any], filename: str) -> None:
    """Deploy-time check of a record mapping; ValidationFailed names the file and key."""
    def fail(key: str, message: str) -> NoReturn:
        raise ValidationFailed(f"{filename}: {message}", code="invalid_definition", details={"file": filename, "key": key})

    if mapping.get("kind") not in KINDS:
        fail("kind", f"kind must be one of: {', '.join(KINDS)}")
    if mapping.get("prefix", KINDS[mapping["kind"]]) != KINDS[mapping["kind"]]:
        fail("prefix", f"prefix of {mapping['kind']} records is {KINDS[mapping['kind']]}")
    fields = mapping.get("fields")
    if not isinstance(fields, dict) or not fields:
        fail("fields", "fields must map record fields to data variable names")
    for field, variable in fields.items():
        if field not in RECORD_FIELDS:
            fail(f"fields.{field}", f"unknown record field; known: {', '.join(RECORD_FIELDS)}")
        if not isinstance(variable, str) or not variable.isidentifier():
            fail(f"fields.{field}", "must name a data variable")
    details = mapping.get("details", {})
    if not isinstance(details, dict) or not all(isinstance(v, str) and v.isidentifier() for v in details.values()):
        fail("details", "details must map names to data variable names")
    for key in ("resolved_statuses", "closed_statuses"):
        value = mapping.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(key, "must be a list of status names")
    comments = mapping.get("comments", [])
    if not isinstance(comments, list) or not all(isinstance(v, str) and v.isidentifier() for v in comments):
        fail("comments", "comments must be a list of data variable names")
    internal = mapping.get("internal", [])
    if not isinstance(internal, list) or not all(isinstance(v, str) and v.isidentifier() for v in internal):
        fail("internal", "internal must be a list of data variable names")
    schedule = mapping.get("schedule")
    if schedule is not None:
        _check_schedule(schedule, fail)
    # What the record shows (its fields, details and comments) is read by whoever sees the record:
    # a variable copied there is not internal, and saying it is would promise what is not kept.
    shown = {*fields.values(), *details.values(), *comments}
    for variable in internal:
        if variable in shown:
            fail("internal", f"{variable} is copied onto the record (fields, details or comments), "
                             "which everyone who sees the record reads: it cannot be internal")


def _check_schedule(schedule: Any, fail: Callable[[str, str], NoReturn]) -> None:
    """A mapping's ``schedule``: ``{"start": variable, "end": variable, "exempt": {variable: [values]}}``,
    the variables holding the record's planned window (date-time strings) and, optional, the values
    that exempt a record from freeze windows (a change whose ``change_type`` is ``emergency``)."""
    if not isinstance(schedule, dict):
        fail("schedule", "schedule must name the start and end variables of the planned window")
    for key in ("start", "end"):
        variable = schedule.get(key)
        if not isinstance(variable, str) or not variable.isidentifier():
            fail(f"schedule.{key}", "must name a data variable")
    if schedule["start"] == schedule["end"]:
        fail("schedule.end", "the start and the end are different variables")
    unknown = sorted(set(schedule) - {"start", "end", "exempt"})
    if unknown:
        fail(f"schedule.{unknown[0]}", "unknown key; known: start, end, exempt")
    exempt = schedule.get("exempt", {})
    if not isinstance(exempt, dict):
        fail("schedule.exempt", "exempt must map data variable names to lists of values")
    for variable, values in exempt.items():
        if not isinstance(variable, str) or not variable.isidentifier():
            fail("schedule.exempt", f"{variable!r} is not a data variable name")
        if not isinstance(values, list) or not values or not all(isinstance(v, (str, int, bool)) for v in values):
            fail(f"schedule.exempt.{variable}", "must be a list of values (text, numbers, true or false)")


#: The instants a planned window or a freeze may hold: beyond them, a day's arithmetic (the schedule's
#: ranges, a zone's offset) would leave what datetime can hold (QA: 9999-12-31T23:30-01:00 was a
#: 500 on the start of a change).
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST_INSTANT = datetime(9000, 1, 1, tzinfo=timezone.utc)


def in_instant_range(moment: datetime) -> datetime | None:
    """``moment`` (aware) in UTC if it lies in [EARLIEST_INSTANT, LATEST_INSTANT), else None."""
    try:
        utc = moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None
    return utc if EARLIEST_INSTANT <= utc < LATEST_INSTANT else None


def window_instant(value: Any) -> datetime | None:
    """A planned window's end as a process holds it (an RFC 3339 date-time string, a form's
    ``date-time``) as an aware UTC datetime; None for anything else (no time zone included, a year
    outside ``EARLIEST_INSTANT``-``LATEST_INSTANT``)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    return in_instant_range(moment) if moment.tzinfo is not None else None


def internal_variables(mapping: Mapping[str, Any] | None) -> frozenset[str]:
    """The data variables a record mapping marks ``internal``: staff working notes that only
    ``policy.INTERNAL_DATA_ROLES`` read (checked at deploy by ``check_mapping``)."""
    names = (mapping or {}).get("internal") or []
    return frozenset(str(name) for name in names) if isinstance(names, list) else frozenset()


def without_variables(data: Mapping[str, Any] | None, hidden: Collection[str]) -> dict[str, Any]:
    """``data`` without the variables named in ``hidden`` (a new dict; ``data`` is left alone)."""
    return {key: value for key, value in (data or {}).items() if key not in hidden}


def relation_side(link_type: str, from_source: bool) -> tuple[str, str]:
    """The relation a link of ``link_type`` states and the side of it of the record it is seen from
    (its source when ``from_source``): "subject", "object", or "both" for a symmetric relation."""
    relation, source_is_subject = LINK_RELATIONS.get(link_type, (link_type, True))
    return relation, "both" if relation in SYMMETRIC else "subject" if from_source == source_is_subject else "object"


def _relation_key(source_id: int, target_id: int, link_type: str) -> tuple[str, int, int]:
    """What a link states, the same for every spelling of it: (relation, subject, object); the
    records in id order for a symmetric relation."""
    relation, side = relation_side(link_type, True)
    if side == "both":
        low, high = sorted((source_id, target_id))
        return relation, low, high
    return (relation, source_id, target_id) if side == "subject" else (relation, target_id, source_id)


def title_key(value: Any) -> str:
    """A value as ``RecordService.value_titles`` keys it: JSON spelling for booleans, whole floats
    as integers (a catalog cost computed as 950.0 matches an option 950), else ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def option_titles(schema: Any) -> dict[str, dict[str, str]]:
    """The titles a form gives the values of its top-level fields: name -> {title_key: title}.

    Choices are ``oneOf``/``anyOf`` lists of ``{"const", "title"}`` (for a list field, those of its
    ``items``); a plain ``enum`` has no titles. Choices filled from task data at run time are not
    in the file and so not here.
    """
    found: dict[str, dict[str, str]] = {}
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    for name, node in (properties or {}).items():
        if not isinstance(node, Mapping):
            continue
        if isinstance(node.get("items"), Mapping):
            node = node["items"]
        titles: dict[str, str] = {}
        for keyword in ("oneOf", "anyOf"):
            for entry in node.get(keyword) or ():
                if isinstance(entry, Mapping) and "const" in entry and isinstance(entry.get("title"), str):
                    titles.setdefault(title_key(entry["const"]), entry["title"])
        if titles:
            found[str(name)] = titles
    return found


def _record_titles(forms: Mapping[str, Any], start_form: Any, mapping: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Record field or ``details.<name>`` -> {title_key: title} from a process's forms and mapping."""
    by_variable: dict[str, dict[str, str]] = {}
    schemas = [start_form, *(forms[name] for name in sorted(forms) if not name.endswith(".ui.json"))]
    for schema in schemas:
        for variable, titles in option_titles(schema).items():
            merged = by_variable.setdefault(variable, {})
            for key, title in titles.items():
                merged.setdefault(key, title)  # the start form's, then the first task form's by name
    found: dict[str, dict[str, str]] = {}
    for field, variable in ((mapping or {}).get("fields") or {}).items():
        if field in TITLED_FIELDS and variable in by_variable:
            found[field] = by_variable[variable]
    for name, variable in ((mapping or {}).get("details") or {}).items():
        if variable in by_variable:
            found[f"details.{name}"] = by_variable[variable]
    return found


#: Titles of each process version's record values, by (content hash, start form digest): a
#: version's forms never change, its start form may be deployed again.
_TITLES: BoundedCache[tuple[str, str | None], dict[str, dict[str, str]]] = BoundedCache()


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    return str(value)[:limit]


#: The longest text each record field the process writes may hold: its column's length (QA: a
#: start's ``priority`` of 20 characters, or a group name of 200, was cut to 255 and failed on
#: PostgreSQL's VARCHAR(16) and VARCHAR(128) as a 500; SQLite kept it whole); 20,000 characters
#: for the description, a TEXT column.
FIELD_LIMITS: dict[str, int] = {
    field: getattr(Ticket.__table__.c[field].type, "length", None) or 20_000
    for field in RECORD_FIELDS if field != "assignee"
}


#: Record fields the platform itself changes outside the record's process: an SLA escalation
#: raises the priority or hands the record to another group (app/services/sla.py), a configuration
#: item's rename gives its records its new name (app/services/cmdb.py). The process's own variable
#: still holds the old value; :meth:`RecordService.outside_changes` finds the difference, so that
#: the next step taken with a person continues from the record.
OUTSIDE_FIELDS = ("priority", "assignment_group", "ci")


# Statements of every step, built once (a reused statement keeps its cache key; SQLAlchemy
# would otherwise derive it again on each call).
_NEXT_NUMBER = (update(RecordSequence).where(RecordSequence.kind == bindparam("sequence_kind"))
                .values(last_value=RecordSequence.last_value + 1)
                .returning(RecordSequence.last_value, RecordSequence.prefix)
                .execution_options(synchronize_session=False))
_TICKET_OF_INSTANCE = select(Ticket).where(Ticket.instance_id == bindparam("instance_id"))
_LOCK_DETAILS = select(Ticket.details).where(Ticket.id == bindparam("ticket_id")).with_for_update()
_USER_NAMED = select(User).where(User.username == bindparam("username"))

#: ``session.info`` key: ids of the records this transaction opened whose ``record.created`` event
#: their first ``sync`` has yet to publish.
_UNANNOUNCED = TRANSACTION_SCOPED + "records_unannounced"
#: Record id -> the requester told in this transaction that it is resolved and asked to confirm
#: (execution._announce then spares them a second notice for the confirmation task the same step
#: gives them).
RESOLVED_TOLD = TRANSACTION_SCOPED + "resolved_told"
#: Record id -> the record, resolved by this step's sync; its requester is told once the step's new
#: tasks are known (``tell_resolved``: asked to confirm only if one of them is theirs).
RESOLVED_UNTOLD = TRANSACTION_SCOPED + "resolved_untold"
#: The webhook event of a new record (``NotificationService.publish``).
CREATED_EVENT = "record.created"


def _unset(column: Any) -> Any:
    return or_(column.is_(None), column == "")


def task_reaches(user: User) -> Any:
    """The condition (over HumanTask) of the tasks that show ``user`` their instance and its record:
    those assigned to them, claimed or completed by them, and, for staff of ``policy.TASK_GROUP_ROLES``,
    those for their group by ``policy.is_candidate`` (by candidate group or, without one, by lane),
    whatever their state. A group member without such a role (a requester in a lane's group) works
    the group's tasks but sees no more of them."""
    mine = [HumanTask.assigned_user == user.username, HumanTask.claimed_by_id == user.id,
            HumanTask.completed_by_id == user.id]
    groups = sorted(user.group_names) if user.has_role(*policy.TASK_GROUP_ROLES) else []
    if groups:
        mine.append(and_(_unset(HumanTask.assigned_user), HumanTask.candidate_group.in_(groups)))
        mine.append(and_(_unset(HumanTask.assigned_user), _unset(HumanTask.candidate_group), HumanTask.lane.in_(groups)))
    return or_(*mine)


def watched_by(user: User) -> Any:
    """The condition (over RecordWatcher) of the watches that let ``user`` read a record: as
    themselves (the process named them; not one made while they were the desk's staff, which
    brings news only: ``RecordWatcher.chosen``), or as a member of a watching group whose queue is
    theirs (``policy.watching_groups``: not a member who only requests)."""
    mine = [and_(RecordWatcher.user_id == user.id, RecordWatcher.chosen.is_(False))]
    groups = sorted(policy.watching_groups(user))
    if groups:
        mine.append(RecordWatcher.group_name.in_(groups))
    return or_(*mine)


def is_requester_reply(user: User | None, ticket: Ticket) -> bool:
    """A comment by ``user`` on ``ticket`` is its requester's reply (what a wait on the customer
    waits for): written by the requester, who is not also the one working the record.

    A requester who is desk staff may be both (an agent logs an incident for a caller, or for
    themselves, and investigates it): their comments while they hold the record (its assignee)
    are their work notes, and a wait they set "on the customer" is not a wait on themselves; so
    only the task they work resumes it. Once someone else holds the record, they are the
    customer again. The step's own comments (a record mapping's ``comments``) are never replies:
    what the step says is in the step's data already (``add_comment``'s ``reply``).
    """
    return user is not None and user.id == ticket.requester_id and user.id != ticket.assignee_id


class RecordService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, notifications: NotificationService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.notifications = notifications

    # -- lifecycle (called by the runner) ------------------------------------------------------------

    def allocate_number(self, kind: str) -> str:
        """Next number of ``kind`` in this transaction: no gaps on rollback, no duplicates."""
        row = self.session.execute(_NEXT_NUMBER, {"sequence_kind": kind}).one()
        return f"{row.prefix}-{row.last_value:06d}"

    def open_record(self, kind: str, number: str, requester: User, data: Mapping[str, Any],
                    instance_id: int | None = None, *, opened_by: User | None = None) -> Ticket:
        """The new record of a process starting now (``opened_by``: who logged it for its
        requester, if not the requester). Its ``record.created`` webhook event goes out with its
        first ``sync`` (in the same transaction), once the process's first step has set its status
        and priority."""
        now = self.clock.now()
        ticket = insert_row(self.session, Ticket, {
            "kind": kind, "number": number, "title": _text(data.get("title"), FIELD_LIMITS["title"]) or "", "description": "",
            "status": "new", "priority": None, "category": None, "requester_id": requester.id,
            "assignment_group": None, "assignee_id": None, "service": None, "ci": None, "details": {},
            "opened_at": now, "first_response_at": None, "resolved_at": None, "closed_at": None, "updated_at": now,
            "instance_id": instance_id, "opened_by_id": opened_by.id if opened_by is not None else None,
        }, requester=requester, assignee=None, opened_by=opened_by)
        self.session.info.setdefault(_UNANNOUNCED, set()).add(ticket.id)
        return ticket

    def _announce_created(self, ticket: Ticket) -> None:
        """Publish ``record.created`` for ``ticket`` if it is new in this transaction and not yet
        announced: once per record, whatever its kind."""
        unannounced: set[int] | None = self.session.info.get(_UNANNOUNCED)
        if not unannounced or ticket.id not in unannounced:
            return
        unannounced.discard(ticket.id)
        self.notifications.publish(CREATED_EVENT, {
            "subject": f"{ticket.number} opened: {ticket.title}", "record": ticket.number, "number": ticket.number,
            "kind": ticket.kind, "title": ticket.title, "status": ticket.status, "priority": ticket.priority,
            "requester": ticket.requester.username if ticket.requester else None,
            "opened_by": ticket.opened_by_name,
            "opened_at": ticket.opened_at.isoformat()})

    def tell_resolved(self, ticket: Ticket, asked: Callable[[User], HumanTask | None],
                      answerable: Callable[[HumanTask], bool] = lambda _task: False) -> None:
        """Tell the requester of ``ticket``, if this step's sync resolved it, that it is resolved;
        ask them to check and confirm only if ``asked(requester)`` is a task the step gave them (an
        incident's confirmation; a problem has none, and its requester is only told). When
        ``answerable(task)`` (its form takes a yes or a no: ``forms.decision_fields``), the mail
        names the task and says that a reply starting with YES or NO answers it (app/services/mail.py)."""
        if self.session.info.get(RESOLVED_UNTOLD, {}).pop(ticket.id, None) is None:
            return
        said = {"number": ticket.number, "title": ticket.title, "link": self.notifications.link(ticket)}
        requester = ticket.requester
        watchers = [p for p in self.watching_people(ticket) if requester is None or p.id != requester.id]
        if watchers:  # told, not asked: confirming is the requester's
            self.notifications.notify(watchers, "record.resolved", Text("%(number)s resolved: %(title)s", **said),
                                      Text("%(number)s (%(title)s) is resolved. %(link)s", **said), ticket=ticket)
        if requester is None:
            return
        task = asked(requester)
        ask = task is not None
        by_mail = task is not None and answerable(task)
        self.notifications.notify(
            [requester], "record.resolved", Text("%(number)s resolved: %(title)s", **said),
            Text("%(number)s (%(title)s) is resolved. Please check and confirm: %(link)s", **said) if ask
            else Text("%(number)s (%(title)s) is resolved. %(link)s", **said), ticket=ticket,
            payload={"task_id": task.id} if by_mail and task is not None else None,
            mail_note=Text("To answer by e-mail, reply with YES as the first word if it works again, or with NO "
                           "and what still fails.") if by_mail else None)
        if ask:
            self.session.info.setdefault(RESOLVED_TOLD, {})[ticket.id] = requester.id

    def for_instance(self, instance_id: int) -> Ticket | None:
        return self.session.scalar(_TICKET_OF_INSTANCE, {"instance_id": instance_id})

    @staticmethod
    def outside_changes(ticket: Ticket, mapping: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
        """``{variable: record value}`` for the :data:`OUTSIDE_FIELDS` the platform changed on the
        record since the process last set them (the record no longer shows the variable's value).

        The task form shows these values (``TaskService.detail``), and the step a person takes
        continues from them (``TaskService.complete``): an incident whose priority an escalation
        raised to P1 is triaged, and routed by its gateways, as a P1, and an agent who picks P2
        there sets the record back to P2 (``sync`` compares with what the record showed)."""
        fields = mapping.get("fields") or {}
        changed: dict[str, Any] = {}
        for field in OUTSIDE_FIELDS:
            variable = fields.get(field)
            current = getattr(ticket, field)
            if variable and variable in data and current is not None and _text(data[variable], FIELD_LIMITS[field]) != current:
                changed[variable] = current
        return changed

    def sync(self, ticket: Ticket, mapping: Mapping[str, Any], data: Mapping[str, Any], actor: User | None,
             previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Copy mapped data onto the record; audit and return the changes.

        With ``previous`` (the instance data before this step), only variables the step changed are
        copied: the process sets record fields when it sets its variables, and a field changed on
        the record itself (an SLA escalation raising the priority) is not reverted by a later,
        unrelated step. A record's first sync (the step that started its process) publishes its
        ``record.created`` webhook event (``open_record``).
        """
        # Its lookups (the assignee, the requester to notify) do not depend on the record's own
        # pending changes: write them once, at the next flush, not piecemeal before each lookup.
        with self.session.no_autoflush:
            changes = self._sync(ticket, mapping, data, actor, previous)
        for variable in mapping.get("comments") or ():
            value = data.get(variable)
            if not isinstance(value, str) or not value.strip():
                continue
            if previous is not None and variable in previous and previous[variable] == value:
                continue
            self.add_comment(actor, ticket, value, author_name=None if actor else "system", reply=False)
        self._announce_created(ticket)
        return changes

    def _sync(self, ticket: Ticket, mapping: Mapping[str, Any], data: Mapping[str, Any], actor: User | None,
              previous: Mapping[str, Any] | None) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for field, variable in (mapping.get("fields") or {}).items():
            if variable not in data:
                continue
            if previous is not None and variable in previous and previous[variable] == data[variable]:
                continue
            value = data[variable]
            if field == "assignee":
                user = self.named_user(str(value)) if value else None
                if (user.id if user else None) != ticket.assignee_id:
                    changes["assignee"] = user.username if user else None
                    set_reference(ticket, "assignee", user)  # written without a flush
                continue
            text_value = _text(value, FIELD_LIMITS[field])
            if field in ("title", "description"):
                text_value = text_value or ""
            elif field == "ci" and text_value and text_value != ticket.ci and self.ci_name is not None:
                # only a step that names another CI holds it: one that leaves the record's CI as it
                # is writes no ``ci``, and a rename meanwhile carries the record along by itself
                text_value = self.ci_name(text_value)
            if getattr(ticket, field) != text_value:
                changes[field] = text_value
                setattr(ticket, field, text_value)
        details = dict(ticket.details or {})
        for name, variable in (mapping.get("details") or {}).items():
            if variable in data and details.get(name) != json_safe(data[variable]):
                details[name] = json_safe(data[variable])
                changes[f"details.{name}"] = details[name]
        if details != (ticket.details or {}):
            ticket.details = details
        schedule = mapping.get("schedule")
        if schedule:
            self._plan(ticket, mapping, schedule, data, actor, previous)
        if "status" in changes:
            self._stamp(ticket, mapping, changes, actor)
        if changes:
            ticket.updated_at = self.clock.now()
            self.audit.record("record_updated", actor, instance_id=ticket.instance_id,
                              payload={"number": ticket.number, "changes": changes},
                              actor_name="engine" if actor is None else None)
        return changes

    def _plan(self, ticket: Ticket, mapping: Mapping[str, Any], schedule: Mapping[str, Any], data: Mapping[str, Any],
              actor: User | None, previous: Mapping[str, Any] | None) -> None:
        """Copy the planned window the step set onto the record's columns (None when it is not a
        whole window: both ends instants, the end after the start).

        A person's step has the window checked (``window_check``: a freeze refuses it) when it
        plans it: the process's first step, or one that moves it to other instants (the same
        instants written another way, ``+01:00`` for ``Z``, move nothing), names another
        configuration item, or changes what exempts it (an emergency change made a normal one
        keeps its window only outside a freeze). A step that leaves all of them as they were is
        not checked (a freeze added after the window was planned does not stop the work: it shows
        as a clash), nor is a step the process takes alone."""
        start_var, end_var = schedule["start"], schedule["end"]
        ci_var = (mapping.get("fields") or {}).get("ci")
        terms = (*(schedule.get("exempt") or {}), *((ci_var,) if ci_var else ()))
        kept_terms = previous is not None and all(previous.get(v) == data.get(v) for v in terms)
        if kept_terms and previous is not None and all(previous.get(v) == data.get(v) for v in (start_var, end_var)):
            return
        start, end = window_instant(data.get(start_var)), window_instant(data.get(end_var))
        if start is None or end is None or end <= start:
            start = end = None
        moved = (ticket.planned_start_at, ticket.planned_end_at) != (start, end)
        if moved:
            ticket.planned_start_at, ticket.planned_end_at = start, end
        if kept_terms and not moved:
            return
        if actor is not None and start is not None and end is not None and self.window_check is not None:
            self.window_check(ticket, schedule, data, start, end)

    def named_user(self, username: str) -> User | None:
        """The user whose name is exactly ``username`` (as a process's data names them), or None."""
        return self.session.scalar(_USER_NAMED, {"username": username})  # type: ignore[no-any-return]

    def details_patch(self, ticket: Ticket) -> dict[str, Any] | None:
        """The details entries this transaction set on ``ticket`` (its steps' syncs, and what was
        set on them before), to be written over the details as stored (``write_changes``'s
        ``merge``): the details are one column, and the step read them before it ran, so writing
        them whole would put back what another transaction wrote into them meanwhile (an article
        an agent attached). None if this transaction changed none."""
        history = inspect(ticket).attrs.details.history
        if not history.added:
            return None
        loaded = (history.deleted or [None])[0] or {}
        return {key: value for key, value in (ticket.details or {}).items() if key not in loaded or loaded[key] != value}

    def keep_stored_details(self, ticket: Ticket, patch: Mapping[str, Any]) -> None:
        """For a record the unit of work writes whole: its details as stored now (read and locked
        until this commits) with ``patch`` over them. Only PostgreSQL has other writers to keep."""
        if ticket.id is None or self.session.get_bind().dialect.name != "postgresql":
            return
        stored = self.session.execute(_LOCK_DETAILS, {"ticket_id": ticket.id}).scalar()
        ticket.details = {**(stored or {}), **patch}

    def _stamp(self, ticket: Ticket, mapping: Mapping[str, Any], changes: dict[str, Any], actor: User | None) -> None:
        now = self.clock.now()
        resolved = set(mapping.get("resolved_statuses", ["resolved"]))
        closed = set(mapping.get("closed_statuses", ["closed", "cancelled"]))
        # A request's own submission answers nobody, even when the process routes it on at once
        # (an item without approval goes straight to fulfilment): sla.RESPONSE_BY_PEOPLE.
        by_requester = ticket.kind in RESPONSE_BY_PEOPLE and actor is not None and actor.id == ticket.requester_id
        if ticket.first_response_at is None and ticket.status not in ("new", "submitted") and not by_requester:
            ticket.first_response_at = now
            changes["first_response_at"] = now.isoformat()
        if ticket.status in resolved and ticket.resolved_at is None:
            ticket.resolved_at = now
            changes["resolved_at"] = now.isoformat()
            if ticket.requester_id is not None:
                self.session.info.setdefault(RESOLVED_UNTOLD, {})[ticket.id] = ticket
        elif ticket.status not in resolved | closed and ticket.resolved_at is not None:
            ticket.resolved_at = None  # reopened
            changes["resolved_at"] = None
        if ticket.status in closed and ticket.closed_at is None:
            ticket.closed_at = now
            changes["closed_at"] = now.isoformat()
            self._announce_closing(ticket, actor)
        elif ticket.status not in closed and ticket.closed_at is not None:
            ticket.closed_at = None
            changes["closed_at"] = None

    def _announce_closing(self, ticket: Ticket, actor: User | None) -> None:
        """Tell the requester their record is closed (rejected, closed without their answer...),
        with the process's ``closed_reason`` detail when it has one, and those who watch it; not
        when the requester closed it (the watchers still are)."""
        requester_closed = ticket.requester is None or (actor is not None and actor.id == ticket.requester_id)
        told = [p for p in [None if requester_closed else ticket.requester, *self.watching_people(ticket)]
                if p is not None and (actor is None or p.id != actor.id)]
        if not told:
            return
        word = CLOSED_WORDS.get(ticket.status) or ticket.status.replace("_", " ")
        reason = (ticket.details or {}).get("closed_reason")
        given = isinstance(reason, str) and bool(reason.strip())
        said = {"number": ticket.number, "title": ticket.title, "status": word, "link": self.notifications.link(ticket)}
        self.notifications.notify(
            told, "record.closed",
            Text("%(number)s %(status)s: %(title)s", **said),
            Text("%(number)s (%(title)s) is %(status)s.\n\nReason: %(reason)s\n\n%(link)s", reason=reason, **said)
            if given else Text("%(number)s (%(title)s) is %(status)s.\n\n%(link)s", **said),
            ticket=ticket, payload={"status": ticket.status, "reason": reason if given else None})

    # -- visibility -----------------------------------------------------------------------------------

    def may_see(self, user: User, ticket: Ticket, *, watched: bool = True) -> bool:
        """Staff (``STAFF_ROLES``) see every record; anyone else the records they requested, that are
        assigned to them or their group (or to a group they manage: the SLA escalates a breach to
        the group's manager), those whose process has or had a task for them
        (``task_reaches``: an approver's vote, say) and, with ``watched``, those they or one of their
        groups watch (``watch``: a process step told them about it).

        ``watched`` False is the rule of acting on a record (commenting, linking to it): a watcher
        reads the record and no more. ``_visible`` is the same rule in SQL."""
        if user.has_role(*STAFF_ROLES):
            return True
        if (ticket.requester_id == user.id or ticket.assignee_id == user.id
                or (ticket.assignment_group is not None and ticket.assignment_group in policy.queue_groups(user))):
            return True
        if ticket.assignment_group is not None and self.session.scalar(
                select(Group.id).where(Group.name == ticket.assignment_group, Group.manager_id == user.id).limit(1)
        ) is not None:
            return True
        if ticket.instance_id is not None and self.session.scalar(
                select(HumanTask.id).where(task_reaches(user), HumanTask.instance_id == ticket.instance_id).limit(1)
        ) is not None:
            return True
        return watched and self.session.scalar(
            select(RecordWatcher.id).where(RecordWatcher.ticket_id == ticket.id, watched_by(user)).limit(1)
        ) is not None

    def watch(self, ticket: Ticket, *, user: Person | None = None, group: str | None = None,
              as_staff: bool = False) -> dict[str, list[str]]:
        """Add ``user`` and the group named ``group`` (if there is one) to the record's watchers,
        each once: they read the record from now on (``may_see``), but a user who is the desk's
        staff (``as_staff``: the caller read their roles) hears its news only. Returns who was added
        (``{"users": [usernames], "groups": [names]}``, empty lists for those already watching);
        the caller audits it with the step that told them."""
        added: dict[str, list[str]] = {"users": [], "groups": []}
        current = self.session.execute(select(RecordWatcher.user_id, RecordWatcher.group_name)
                                       .where(RecordWatcher.ticket_id == ticket.id)).all()
        now = self.clock.now()
        if user is not None and user.id not in {row.user_id for row in current}:
            if self._add_watcher(RecordWatcher(ticket_id=ticket.id, user_id=user.id, added_at=now, chosen=as_staff)):
                added["users"].append(user.username)
        if (group and group not in {row.group_name for row in current}
                and self.session.scalar(select(Group.id).where(Group.name == group)) is not None):
            if self._add_watcher(RecordWatcher(ticket_id=ticket.id, group_name=group, added_at=now)):
                added["groups"].append(group)
        return added

    def readers(self, ticket: Ticket, people: Iterable[Person]) -> list[Person]:
        """Those of ``people`` who may read ``ticket`` (``may_see``), in the order given: what a
        notice about it may tell. Their user rows are read in one query (a leaver's too: the notice
        leaves them out anyway)."""
        listed = list(people)
        users = {user.id: user for user in self.session.scalars(
            select(User).where(User.id.in_(sorted({p.id for p in listed})))
            .options(selectinload(User.role_rows), selectinload(User.groups)))} if listed else {}
        return [p for p in listed if p.id in users and self.may_see(users[p.id], ticket)]

    def _add_watcher(self, row: RecordWatcher) -> bool:
        """Insert one watcher; False if a concurrent step added the same one first (the unique
        constraint): it watches either way, and the step goes on."""
        try:
            with self.session.begin_nested():
                self.session.add(row)
                self.session.flush()
        except IntegrityError:
            return False
        return True

    def watchers(self, ticket: Ticket) -> dict[str, list[str]]:
        """The record's watchers: ``{"users": [usernames], "groups": [names]}``, each sorted."""
        users = self.session.scalars(select(User.username).join(RecordWatcher, RecordWatcher.user_id == User.id)
                                     .where(RecordWatcher.ticket_id == ticket.id))
        groups = self.session.scalars(select(RecordWatcher.group_name).where(
            RecordWatcher.ticket_id == ticket.id, RecordWatcher.group_name.is_not(None)))
        return {"users": sorted(users), "groups": sorted(g for g in groups if g)}

    def watching_people(self, ticket: Ticket, *, active_only: bool = True) -> list[User]:
        """The active users who watch ``ticket`` by name (not its watching groups, whose members the
        process tells itself): they hear its news as its requester does (a comment, its resolution,
        its closing or cancellation), as a watcher list does in the service desks people know. The
        reporter of a duplicate closed onto it is one (app/services/duplicates.py). ``active_only``
        False: the leavers who watch it too (to take them off the list)."""
        query = select(User, RecordWatcher.chosen).join(RecordWatcher, RecordWatcher.user_id == User.id).where(
            RecordWatcher.ticket_id == ticket.id)
        if active_only:
            query = query.where(User.active.is_(True))
        # one who watched as staff and is no longer hears nothing more (they no longer read it)
        return [user for user, as_staff in self.session.execute(query.order_by(User.id))
                if not as_staff or user.has_role(*STAFF_ROLES) or not active_only]

    def _refuse_watching_only(self, user: User, action: str, ticket: Ticket) -> None:
        """PermissionDenied (audited) if ``user`` sees ``ticket`` only as a watcher: watching is reading."""
        if not self.may_see(user, ticket, watched=False):
            self.audit.refuse(user, action, reason="watcher only", number=ticket.number, instance_id=ticket.instance_id)
            doing = {"comment": "comment on", "link": "link to", "attach": "attach files to"}.get(action, action)
            raise PermissionDenied(f"you watch {ticket.number}: its watchers read it but do not {doing} it")

    # -- internal data ------------------------------------------------------------------------------

    def hidden_variables(self, user: User, instances: Iterable[ProcessInstance]) -> dict[int, frozenset[str]]:
        """Per instance id, the data variables ``user`` may not read in its data, its tasks' data and
        its history: none for ``policy.reads_internal_data``; for anyone else the variables its
        process marks ``internal`` (``internal_variables``) in the instance's own version's record
        mapping or in the latest version's, so that a variable marked later is hidden in the
        instances started before too. One query for all the instances."""
        listed = list(instances)
        if not listed or policy.reads_internal_data(user):
            return {instance.id: frozenset() for instance in listed}
        # An instance of the latest version needs no other mapping (the usual case: no query).
        older = sorted({i.process_id for i in listed if not i.definition.is_latest})
        latest = dict(self.session.execute(
            select(ProcessDefinition.process_id, ProcessDefinition.record_mapping)
            .where(ProcessDefinition.process_id.in_(older), ProcessDefinition.is_latest.is_(True))).tuples().all()) \
            if older else {}
        return {instance.id: internal_variables(instance.definition.record_mapping)
                | internal_variables(latest.get(instance.process_id)) for instance in listed}

    def get(self, user: User, number: str, action: str = "read") -> Ticket:
        ticket = self.session.scalar(select(Ticket).where(Ticket.number == number.upper()))
        if ticket is None:
            raise NotFound(f"no record {number}")
        if not self.may_see(user, ticket):
            # filed with the record's instance, so its history shows the attempt (the reader never sees it)
            self.audit.refuse(user, action, reason="record not visible", number=number, instance_id=ticket.instance_id)
            raise NotFound(f"no record {number}")
        return ticket

    def visible_by_number(self, user: User, numbers: Collection[str], *, watched: bool = True) -> dict[str, Ticket]:
        """``{number: record}`` of the records named by ``numbers`` (as stored: upper case) that
        ``user`` may see (``may_see``, with its ``watched``), read in one query; a number of a
        record that does not exist or that the user may not see is absent."""
        if not numbers:
            return {}
        query = self._visible(user, select(Ticket).where(Ticket.number.in_(sorted(set(numbers)))), watched=watched)
        return {ticket.number: ticket for ticket in self.session.scalars(query)}

    def visible_numbers(self, user: User, instance_ids: Collection[int]) -> dict[int, str]:
        """``{instance id: record number}`` of the records of ``instance_ids`` that ``user`` may see."""
        if not instance_ids:
            return {}
        query = select(Ticket.instance_id, Ticket.number).where(Ticket.instance_id.in_(sorted(instance_ids)))
        return {instance_id: number for instance_id, number in self.session.execute(self._visible(user, query))}

    def visible(self, user: User, query: Select[Any]) -> Select[Any]:
        """``query`` (over Ticket) narrowed to the records ``user`` may see."""
        return self._visible(user, query)

    def acted_on(self, user: User, query: Select[Any]) -> Select[Any]:
        """``query`` (over Ticket) narrowed to the records ``user`` may act on (``may_see`` without
        ``watched``): whose process instances they see (``InstanceService.may_see``)."""
        return self._visible(user, query, watched=False)

    def _visible(self, user: User, query: Select[Any], *, watched: bool = True) -> Select[Any]:
        """``may_see`` in SQL: ``query`` (over Ticket) narrowed to the records ``user`` sees."""
        if user.has_role(*STAFF_ROLES):
            return query
        groups = sorted(policy.queue_groups(user))  # the assignment group's staff: see policy's rules
        seen = [Ticket.requester_id == user.id, Ticket.assignee_id == user.id,
                Ticket.assignment_group.in_(groups) if groups else false(),
                Ticket.assignment_group.in_(select(Group.name).where(Group.manager_id == user.id)),
                select(HumanTask.id).where(task_reaches(user), HumanTask.instance_id == Ticket.instance_id).exists()]
        if watched:
            seen.append(select(RecordWatcher.id).where(RecordWatcher.ticket_id == Ticket.id, watched_by(user)).exists())
        return query.where(or_(*seen))

    def list_tickets(self, user: User, filters: Mapping[str, Any], sort: str, page: int, per_page: int) -> tuple[list[Ticket], int]:
        query: Select[Any] = select(Ticket)
        chosen: dict[str, list[str]] = {}
        for field in ("kind", "status", "priority", "category"):
            if filters.get(field):
                values = chosen[field] = [v.strip() for v in str(filters[field]).split(",") if v.strip()]
                query = query.where(getattr(Ticket, field).in_(values))
        unknown = [kind for kind in chosen.get("kind", ()) if kind not in KINDS]
        if unknown:
            # A misspelt kind would list nothing, which reads as "there are none".
            raise ValidationFailed("unknown record kind", details={"fields": {"kind": [
                f"no kind {', '.join(unknown)}: one of {', '.join(KINDS)} (several separated by commas)"]}})
        if filters.get("group"):
            query = query.where(Ticket.assignment_group.in_(self._group_spellings(str(filters["group"]))))
        for field, column in (("assignee", Ticket.assignee_id), ("requester", Ticket.requester_id),
                              ("opened_by", Ticket.opened_by_id)):
            if filters.get(field):
                # usernames ignore letter case: the one user named so (by uq_user_username_lower),
                # then the records by its id (indexed), not the names compared row by row
                person = self.session.scalar(select(User.id).where(
                    func.lower(User.username) == func.lower(str(filters[field]).strip())))
                query = query.where(column == person if person is not None else false())
        if filters.get("q"):
            needle = f"%{like_literal(str(filters['q']).strip().lower())}%"
            query = query.where(or_(*(func.lower(column).like(needle, escape=LIKE_ESCAPE)
                                      for column in (Ticket.title, Ticket.description, Ticket.number))))
        if filters.get("open") is not None:
            query = query.where(Ticket.closed_at.is_(None) if filters["open"] else Ticket.closed_at.is_not(None))
        if filters.get("breached") is not None:
            # true: at least one SLA clock breached (SlaService.breached_open_records); false: none
            # breached, so false and true split the records between them, as ``open`` does
            breached = (select(SlaClock.id).where(SlaClock.ticket_id == Ticket.id, SlaClock.state == "breached")
                        .exists())
            query = query.where(breached if filters["breached"] else ~breached)
        query = self._visible(user, query)
        direction = desc if sort.startswith("-") else asc
        key = sort.removeprefix("-")
        if key not in SORTABLE:
            raise ValidationFailed("unknown sort key", details={"fields": {"sort": [f"one of: {', '.join(sorted(SORTABLE))} (prefix - for descending)"]}})
        ordering = (*(direction(column) for column in SORTABLE[key]), direction(Ticket.id))
        # The same rows, counted by id alone: where an index holds the filtered columns and the id,
        # SQLite then counts in the index without reading the records.
        counted = query.with_only_columns(Ticket.id)
        if key == "opened_at" and len(chosen.get("kind", ())) == 1 and len(chosen.get("status", ())) == 1:
            total = self._count_in_index_order(counted, ordering)
        else:
            total, _exact = count_capped(self.session, counted)  # "1000+" beyond COUNT_CAP
        rows = list(self.session.scalars(query.order_by(*ordering).offset((page - 1) * per_page).limit(per_page)))
        return rows, total

    def _group_spellings(self, typed: str) -> list[str]:
        """The assignment group values a list filter ``typed`` matches, exactly (ix_ticket_group_status):
        the group's own spelling when a group has that name in any letter case (``find_group``'s rule,
        by uq_group_name_lower), and the text as typed, which a filter picked from the list's values
        (``filter_values``: the records' stored values, a process may write a name no group has) is."""
        typed = typed.strip()
        group = self.session.scalar(select(Group.name).where(func.lower(Group.name) == func.lower(typed)))
        return sorted({typed, group} if group is not None else {typed})

    def _count_in_index_order(self, query: Select[Any], ordering: tuple[Any, ...]) -> int:
        """``count_capped``'s total for a list of one kind and status sorted by opened_at.

        The same number (at most COUNT_CAP), counted in list order: that order is the one of
        ix_ticket_kind_status_opened_id, so the count reads its first COUNT_CAP + 1 entries.
        Without an order PostgreSQL may prefer to scan the table until as many rows have matched
        (with 100,000 records, a fifth of them matching: about 5,000 rows read to count 1,001).
        """
        limited = query.order_by(*ordering).limit(COUNT_CAP + 1).subquery()
        return min(int(self.session.scalar(select(func.count()).select_from(limited)) or 0), COUNT_CAP)

    def filter_values(self, user: User, kinds: Collection[str] = ()) -> dict[str, list[str]]:
        """The values a record list can be filtered by: the distinct statuses, priorities and
        assignment groups of the records the user may see (of ``kinds`` only, when the list is
        filtered by kind: QA, a change list offered the incidents' statuses), sorted."""
        found: dict[str, list[str]] = {}
        for name, column in (("status", Ticket.status), ("priority", Ticket.priority),
                             ("group", Ticket.assignment_group)):
            query = self._visible(user, select(column).where(column.is_not(None)).distinct())
            if kinds:
                query = query.where(Ticket.kind.in_(list(kinds)))
            found[name] = sorted(str(v) for v in self.session.scalars(query) if v)
        return found

    def requesters_open_records(self, user: User, ticket: Ticket, limit: int = 5) -> tuple[list[Ticket], int]:
        """The other open records of ``ticket``'s requester, newest first (at most ``limit``), and
        how many there are: what the record's page shows the desk's staff (``STAFF_ROLES``) so that
        an agent sees the caller's other problems at once, and a duplicate. Nothing for anyone
        else (a requester sees their own list; an approver's view of someone's records would be
        partial) or a record without requester."""
        if ticket.requester_id is None or not user.has_role(*STAFF_ROLES):
            return [], 0
        query = self.visible(user, select(Ticket).where(
            Ticket.requester_id == ticket.requester_id, Ticket.closed_at.is_(None), Ticket.id != ticket.id))
        total = int(self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = list(self.session.scalars(query.order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(limit))) \
            if total else []
        return rows, total

    def links(self, ticket: Ticket, user: User) -> list[dict[str, Any]]:
        """The record's links as ``user`` sees them from it, oldest first: links to records the
        user may not see (``may_see``, the rule of reading a record) are left out.

        Each: the other record's ``number``, ``kind``, ``title`` and ``status``; the stored
        ``link_type`` and ``direction`` ("outgoing" when this record is the link's source); the
        ``relation`` the link states and this record's ``side`` in it: "subject" or "object"
        (``caused_by`` from an incident to a problem: relation "causes", the incident is its object),
        "both" for a symmetric relation.
        """
        out = []
        links = list(self.session.scalars(select(TicketLink).where(
            or_(TicketLink.source_id == ticket.id, TicketLink.target_id == ticket.id)).order_by(TicketLink.id)
            .options(selectinload(TicketLink.source), selectinload(TicketLink.target))))
        others = [link.target if link.source_id == ticket.id else link.source for link in links]
        # which of them the user may see, in one query (staff: all, none asked)
        seen = None if user.has_role(*STAFF_ROLES) else set(self.visible_by_number(user, {o.number for o in others}))
        for link, other in zip(links, others, strict=True):
            outgoing = link.source_id == ticket.id
            if seen is not None and other.number not in seen:
                continue
            relation, side = relation_side(link.link_type, outgoing)
            out.append({"number": other.number, "kind": other.kind, "title": other.title, "status": other.status,
                        "link_type": link.link_type, "direction": "outgoing" if outgoing else "incoming",
                        "relation": relation, "side": side, "created_at": link.created_at})
        return out

    def linked_tickets(self, ticket: Ticket, kind: str | None = None) -> list[Ticket]:
        """The other records linked to ``ticket`` (of ``kind``), each once however many links join them."""
        found: dict[int, Ticket] = {}
        for link in self.session.scalars(select(TicketLink).where(or_(TicketLink.source_id == ticket.id, TicketLink.target_id == ticket.id)).order_by(TicketLink.id)):
            other = link.target if link.source_id == ticket.id else link.source
            if kind is None or other.kind == kind:
                found.setdefault(other.id, other)
        return list(found.values())

    def value_titles(self, tickets: Sequence[Ticket], fields: Collection[str] | None = None
                     ) -> dict[int, dict[str, dict[str, str]]]:
        """How the records' coded values read: per record id, record field or ``details.<name>`` ->
        {``title_key(value)``: title}. Catalog item names are looked up only for the values of
        ``fields`` when given (a list page shows a few fields, not every detail).

        The titles are the option titles of the forms of the record's process version (its task
        forms, and its start form as deployed now) for the variables its mapping copies, and the
        names of catalog items for values that are item codes (a catalog request's item). English,
        as the forms are written; the pages translate them.
        """
        found: dict[int, dict[str, dict[str, str]]] = {t.id: {} for t in tickets}
        instance_ids = sorted({t.instance_id for t in tickets if t.instance_id})
        if instance_ids:
            versions = self.session.execute(
                select(ProcessInstance.id, ProcessDefinition.id, ProcessDefinition.process_id, ProcessDefinition.content_hash)
                .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
                .where(ProcessInstance.id.in_(instance_ids))).tuples().all()
            start_names = {process_id + START_FORM_SUFFIX for _i, _d, process_id, _h in versions}
            digests = dict(self.session.execute(select(DefinitionFile.name, DefinitionFile.sha256)
                                                .where(DefinitionFile.name.in_(sorted(start_names)))).tuples().all())
            by_instance: dict[int, dict[str, dict[str, str]]] = {}
            for instance_id, definition_id, process_id, content_hash in versions:
                start_name = process_id + START_FORM_SUFFIX
                key = (content_hash, digests.get(start_name))
                titles = _TITLES.get(key)
                if titles is None:
                    titles = self._load_titles(definition_id, start_name if start_name in digests else None)
                    _TITLES.put(key, titles)
                by_instance[instance_id] = titles
            for ticket in tickets:
                if ticket.instance_id in by_instance:
                    found[ticket.id] = dict(by_instance[ticket.instance_id])
        self._add_item_names(tickets, found, fields)
        return found

    def _load_titles(self, definition_id: int, start_name: str | None) -> dict[str, dict[str, str]]:
        forms, mapping = self.session.execute(
            select(ProcessDefinition.forms, ProcessDefinition.record_mapping)
            .where(ProcessDefinition.id == definition_id)).one()
        start_form = None
        if start_name is not None:
            content = self.session.scalar(select(DefinitionFile.content).where(DefinitionFile.name == start_name))
            try:
                start_form = json.loads(content.decode("utf-8")) if content is not None else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                start_form = None  # not a form: the start refuses it; the page shows values as written
        return _record_titles(forms or {}, start_form, mapping)

    def _add_item_names(self, tickets: Sequence[Ticket], found: dict[int, dict[str, dict[str, str]]],
                        fields: Collection[str] | None) -> None:
        def coded(ticket: Ticket) -> Iterable[tuple[str, Any]]:
            for field in TITLED_FIELDS:
                if fields is None or field in fields:
                    yield field, getattr(ticket, field)
            for name, value in (ticket.details or {}).items():
                if fields is None or f"details.{name}" in fields:
                    for item in value if isinstance(value, list) else [value]:
                        yield f"details.{name}", item

        candidates = {value for t in tickets for _key, value in coded(t)
                      if isinstance(value, str) and 0 < len(value) <= _MAX_ITEM_CODE and " " not in value}
        if not candidates:
            return
        names = dict(self.session.execute(select(CatalogItem.code, CatalogItem.name)
                                          .where(CatalogItem.code.in_(sorted(candidates)))).tuples().all())
        for ticket in tickets:
            for key, value in coded(ticket):
                if isinstance(value, str) and value in names:
                    titles = found[ticket.id].setdefault(key, {})
                    found[ticket.id][key] = {**titles, value: names[value]}

    def comments(self, user: User, number: str) -> list[TicketComment]:
        ticket = self.get(user, number)
        return list(self.session.scalars(select(TicketComment).where(TicketComment.ticket_id == ticket.id).order_by(TicketComment.id)))

    # -- commands -------------------------------------------------------------------------------------

    #: Told of every comment that answers a record (``policy.answers``), with ``{"comment": id}`` and,
    #: for the record's first response, ``first_response_at``: ``Services`` wires it to the SLA
    #: clocks (``SlaService.track``), which stop the response clock on it. None: nobody listens.
    on_answer: Callable[[Ticket, dict[str, Any], User | None], None] | None = None
    #: Told of every comment by the record's requester: ``Services`` wires it to
    #: ``LinkedUpdates.requester_replied``, which passes it to the record's process (a wait on the
    #: customer ends with their answer). None: nobody listens.
    on_requester_reply: Callable[[Ticket, TicketComment], None] | None = None
    #: Given the ``ci`` a process step writes on a record, the ``ci`` to store: ``Services`` wires
    #: it to ``CmdbService.hold_name``, which holds the CI named until the step commits (so a
    #: rename at the same moment carries the record along) and gives the new name of a CI renamed
    #: meanwhile. None: stored as given.
    ci_name: Callable[[str], str] | None = None
    #: Given a record whose window a person's step planned (the record, the mapping's ``schedule``,
    #: the step's data, the window's start and end), raises ValidationFailed if it may not be
    #: planned there: ``Services`` wires it to ``ScheduleService.check_window`` (freeze windows).
    #: None: any window.
    window_check: Callable[[Ticket, Mapping[str, Any], Mapping[str, Any], datetime, datetime], None] | None = None

    def add_comment(self, user: User | None, ticket: Ticket, body: str, *, author_name: str | None = None,
                    reply: bool = True) -> TicketComment:
        """Add a comment by ``user`` (None: by ``author_name``, the process or the platform).

        A comment that answers the record (``policy.answers``) stamps its ``first_response_at``
        when it has none (audited as a ``record_updated`` change) and is passed to ``on_answer``, so the response
        clock stops at the comment. A comment that is the requester's reply (``is_requester_reply``)
        is passed to ``on_requester_reply``; ``reply`` False for a comment a process step
        wrote (the mapping's ``comments``), which is never one. Raises ValidationFailed for an
        empty or too long body, or one holding bidirectional control characters (as every form
        field refuses them).
        """
        body = (body or "").strip()
        if not body:
            raise ValidationFailed("comment is empty", details={"fields": {"body": ["is required"]}})
        if len(body) > MAX_COMMENT:
            raise ValidationFailed("comment is too long", details={"fields": {"body": [f"at most {MAX_COMMENT} characters"]}})
        if (bidi := bidi_control_message(body)) is not None:
            # Text that reads one way and is another (U+202E...) misleads everyone the comment reaches.
            raise ValidationFailed("comment holds bidirectional control characters", details={"fields": {"body": [bidi]}})
        now = self.clock.now()
        comment = TicketComment(ticket_id=ticket.id, author_id=user.id if user else None,
                                author_name=user.username if user else (author_name or "system"), body=body,
                                created_at=now)
        self.session.add(comment)
        answer = policy.answers(user, ticket)
        first_response = answer and ticket.first_response_at is None
        if first_response:
            ticket.first_response_at = now
        ticket.updated_at = now
        self.session.flush()
        self.audit.record("comment_added", user, instance_id=ticket.instance_id,
                          payload={"number": ticket.number, "comment_id": comment.id, "body": body[:2000]},
                          actor_name=author_name)
        changes: dict[str, Any] = {"comment": comment.id}
        if first_response:
            changes["first_response_at"] = now.isoformat()
            self.audit.record("record_updated", user, instance_id=ticket.instance_id,
                              payload={"number": ticket.number, "changes": {"first_response_at": changes["first_response_at"]}})
        author = user.username if user else (author_name or "system")
        self.tell_record_people(
            ticket, user, "comment.added",
            Text("New comment on %(number)s: %(title)s", number=ticket.number, title=ticket.title),
            Text("%(author)s wrote on %(number)s:\n\n%(comment)s\n\n%(link)s", author=author, number=ticket.number,
                 comment=body[:2000], link=self.notifications.link(ticket)))
        if answer and self.on_answer is not None:
            self.on_answer(ticket, changes, user)
        if reply and self.on_requester_reply is not None and is_requester_reply(user, ticket):
            self.on_requester_reply(ticket, comment)
        return comment

    def tell_record_people(self, ticket: Ticket, actor: User | None, event_type: str, subject: str | Text, body: str | Text,
                           payload: Mapping[str, Any] | None = None) -> int:
        """Tell the people what is added to (or deleted from) ``ticket`` concerns (a comment, a
        file), but ``actor``: its requester and whoever works the record, its assignee, else the
        active members of its group who work its queue (``NotificationService.queue_members``: QA:
        a comment on an unassigned record reached nobody, one on a leaver's was mailed to the
        leaver, and a member who only requests, who may not open the record, was mailed its
        comments), and the people who watch it (``watching_people``: the reporter of a duplicate
        closed onto it). Each of them reads the record and all of it: a record has no comments or
        files that its requester may not read. Returns how many were told."""
        working: list[Person] = [ticket.assignee] if ticket.assignee is not None and ticket.assignee.active else []
        if not working:
            working = self.notifications.queue_members(ticket.assignment_group)
        return self.notifications.notify([ticket.requester, *working, *self.watching_people(ticket)], event_type,
                                         subject, body, ticket=ticket, payload=payload, exclude=actor)

    def comment(self, user: User, number: str, body: str) -> TicketComment:
        return self.add_comment(user, self.adding_to(user, number, "comment"), body)

    def adding_to(self, user: User, number: str, action: str) -> Ticket:
        """The record ``number`` for ``user`` to add to (``action``: "comment", "attach"): one rule
        for what the record's people add to it. NotFound as ``get``; PermissionDenied (audited)
        for a read-only auditor, someone who only watches the record, or a closed record unless
        ``user`` is the desk's staff (``may_comment``)."""
        ticket = self.get(user, number, action=action)
        self._refuse_read_only(user, action, ticket)
        self._refuse_watching_only(user, action, ticket)
        if not self.may_comment(user, ticket):
            # A closed record's process has ended: a requester's comment would reach nobody who
            # works on it (QA: it only mailed the former assignee). The desk's staff may still note.
            self.audit.refuse(user, action, reason="record closed", number=ticket.number, instance_id=ticket.instance_id)
            raise PermissionDenied(f"{ticket.number} is closed: nobody works on it any more. "
                                   f"Report a new one that mentions {ticket.number}")
        return ticket

    @staticmethod
    def may_comment(user: User, ticket: Ticket) -> bool:
        """Whether ``user`` may comment on ``ticket`` as far as its state goes: an open record, or
        any for the desk's staff (``STAFF_ROLES``)."""
        return ticket.closed_at is None or user.has_role(*STAFF_ROLES)

    def _refuse_read_only(self, user: User, action: str, ticket: Ticket) -> None:
        if policy.is_read_only(user):
            self.audit.refuse(user, action, reason="auditors do not write", number=ticket.number,
                              instance_id=ticket.instance_id)
            raise PermissionDenied("auditors read records but do not change them")

    def link(self, user: User | None, source: Ticket, target: Ticket, link_type: str) -> TicketLink:
        """Link ``source`` to ``target`` with ``link_type``; the existing link if one already states
        the same relation (the same type, or its other spelling from the target's end, such as
        ``related_incident`` from the problem for ``caused_by`` from the incident).

        Raises ValidationFailed for an unknown type, a record linked to itself, kinds the type does
        not join (``link_kinds``) or the reverse of a directed relation the pair already holds
        (``link_reversed``: INC-3 duplicates INC-4, so INC-4 may not be filed as INC-3's duplicate).
        """
        return self._link(user, source, target, link_type)[0]

    def _link(self, user: User | None, source: Ticket, target: Ticket, link_type: str) -> tuple[TicketLink, bool]:
        """``link``, and whether it added the link (False: an existing one states the relation)."""
        if link_type not in LINK_TYPES:
            raise ValidationFailed("unknown link type", details={"fields": {"link_type": [f"one of: {', '.join(sorted(LINK_TYPES))}"]}})
        if source.id == target.id:
            raise ValidationFailed("a record cannot link to itself", details={"fields": {"number": ["is this record"]}})
        if (wrong := link_kind_error(link_type, source, target)) is not None:
            raise ValidationFailed(wrong, code="link_kinds", details={
                "fields": {"link_type": [wrong]}, "source_kind": source.kind, "target_kind": target.kind})
        # A pair may hold several relations (related to, and caused by), each once: a process
        # linking what a person already linked (or the reverse) keeps the first link.
        # A directed relation holds one way round only: a record is not the duplicate of its own
        # duplicate, the cause of its own cause, its parent's parent, nor blocks what blocks it.
        # Links between one pair take turns: two people filing reversed links at once would each
        # find the other's not yet there and store both (PostgreSQL; SQLite writes one at a time).
        serialize_writers(self.session, f"ticket_link:{min(source.id, target.id)}:{max(source.id, target.id)}")
        wanted = _relation_key(source.id, target.id, link_type)
        reverse = (wanted[0], wanted[2], wanted[1])
        for existing in self.session.scalars(select(TicketLink).where(
                or_((TicketLink.source_id == source.id) & (TicketLink.target_id == target.id),
                    (TicketLink.source_id == target.id) & (TicketLink.target_id == source.id))).order_by(TicketLink.id)):
            stated = _relation_key(existing.source_id, existing.target_id, existing.link_type)
            if stated == wanted:
                return existing, False
            if stated == reverse and wanted[0] not in SYMMETRIC:
                if user is None:
                    # A diagram's link (link_records, start_process) meeting the reverse a person
                    # filed keeps that one: failing the step would stop the process for it.
                    return existing, False
                raise self._reversed(source, target, link_type, existing)
        link = TicketLink(source_id=source.id, target_id=target.id, link_type=link_type, source=source, target=target,
                          created_at=self.clock.now(), created_by_id=user.id if user else None)
        self.session.add(link)
        self.session.flush()
        self.audit.record("records_linked", user, instance_id=source.instance_id,
                          payload={"from": source.number, "to": target.number, "link_type": link_type},
                          actor_name=None if user else "engine")
        return link, True

    @staticmethod
    def _reversed(source: Ticket, target: Ticket, link_type: str, existing: TicketLink) -> ValidationFailed:
        """The refusal of a ``link_type`` link from ``source`` to ``target`` stating the reverse of
        ``existing`` (422 ``link_reversed``, naming ``link_type`` and the link that stands)."""
        relation, side = relation_side(existing.link_type, existing.source_id == target.id)
        subject, object_ = (target, source) if side == "subject" else (source, target)
        message = (f"{subject.number} {RELATION_WORDS.get(relation, relation)} {object_.number} already: a {link_type} "
                   f"link from {source.number} to {target.number} would state the reverse")
        return ValidationFailed(message, code="link_reversed", details={
            "fields": {"link_type": [message]},
            "existing": {"from": existing.source.number, "to": existing.target.number, "link_type": existing.link_type}})

    def link_numbers(self, user: User, number: str, other: str, link_type: str) -> tuple[TicketLink, bool]:
        """Link record ``number`` to ``other`` for ``user`` (staff, or the requester of
        ``number``); returns the link and whether it is new (False: an existing link already
        states the relation, see ``link``).

        Raises NotFound for a record the user may not see, PermissionDenied for an auditor or
        another requester's record, ValidationFailed as ``link`` does.
        """
        source = self.get(user, number, action="link")
        self._refuse_read_only(user, "link", source)
        if not user.has_role(*STAFF_ROLES) and source.requester_id != user.id:
            self.audit.refuse(user, "link", reason="not allowed", number=source.number, instance_id=source.instance_id)
            raise PermissionDenied("only staff or the requester may link this record")
        target = self.get(user, other, action="link")
        self._refuse_watching_only(user, "link", target)
        return self._link(user, source, target, link_type)

    def cancel(self, ticket: Ticket, actor: User, reason: str | None = None, *,
               waiting: Iterable[Person | None] = ()) -> dict[str, Any]:
        """Close the record of a cancelled process: status ``cancelled``, ``closed_at`` now (a
        record the process closed already is left as it is: returns no changes).

        Audited as a ``record_updated`` event (with the reason); its assignee, its assignment
        group's members who work its queue, its requester and ``waiting`` (the people its open tasks waited on: an
        approver asked by name) are told (not the actor, each once). Returns the changes, as
        ``sync`` does, for the SLA clocks to stop on. ``first_response_at`` is left as it was:
        a cancellation answers nobody.
        """
        if ticket.closed_at is not None:
            return {}  # the process closed it already (a request awaiting its rating): it stays so
        now = self.clock.now()
        ticket.status, ticket.closed_at, ticket.updated_at = "cancelled", now, now
        changes: dict[str, Any] = {"status": "cancelled", "closed_at": now.isoformat()}
        self.audit.record("record_updated", actor, instance_id=ticket.instance_id,
                          payload={"number": ticket.number, "changes": changes, "reason": reason})
        # of its group, those who may read it (its staff), as for a comment (``tell_record_people``)
        recipients: list[Person | None] = [ticket.assignee, ticket.requester,
                                           *self.notifications.queue_members(ticket.assignment_group), *waiting,
                                           *self.watching_people(ticket)]
        said = {"actor": actor.username, "number": ticket.number, "title": ticket.title,
                "link": self.notifications.link(ticket)}
        self.notifications.notify(
            recipients, "record.cancelled", Text("%(number)s cancelled: %(title)s", **said),
            Text("%(actor)s cancelled %(number)s (%(title)s).\n\nReason: %(reason)s\n\n%(link)s", reason=reason, **said)
            if reason else Text("%(actor)s cancelled %(number)s (%(title)s).\n\n%(link)s", **said),
            ticket=ticket, payload={"reason": reason}, exclude=actor)
        return changes

    def numbers(self, ticket_ids: set[int | None]) -> dict[int, str]:
        wanted = {i for i in ticket_ids if i}
        if not wanted:
            return {}
        return dict(self.session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(wanted))).all())  # type: ignore[arg-type]

    def by_number(self, number: str) -> Ticket:
        ticket = self.session.scalar(select(Ticket).where(Ticket.number == str(number).upper()))
        if ticket is None:
            raise NotFound(f"no record {number}")
        return ticket

    def instance_for(self, ticket: Ticket) -> ProcessInstance | None:
        return self.session.get(ProcessInstance, ticket.instance_id) if ticket.instance_id else None
