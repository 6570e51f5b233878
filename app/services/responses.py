"""Response templates: stock replies an agent puts into a record's comment, with the record's
values filled in (ServiceNow's response templates, Jira Service Management's canned responses).

- **Whose.** A template is its owner's (an agent's own words, seen by them alone) or the desk's
  (``shared``: every agent, process owner and admin uses it; process owners and admins write
  it). Only the desk's staff (:data:`USER_ROLES`) have templates: a requester or an auditor is
  refused (403), another user's own template does not exist for anyone else (404).
- **What.** A name (one line, unique among the templates of the same owner, or among the desk's),
  the text, and optionally the kind of record it is for (an incident's "we are on it" is not
  offered on a change). The text holds placeholders (:data:`PLACEHOLDERS`: ``{{number}}``,
  ``{{requester}}`` ...), filled in from the record when the template is used; a name it does not
  know is refused when it is saved (422 naming ``body`` and the placeholder), so a typo is found
  by who wrote it, not by a requester reading "{{requestor}}".
- **Using one** (:meth:`ResponseService.for_record`): the templates that fit a record the agent
  may read, each with its text filled in. Nothing is stored: the agent reads, edits and sends the
  comment as any other (app/services/records.py decides who may comment). A value is filled in
  once: a record's title holding "{{agent}}" stays as typed.
- Each edit names the version it was written over (409 when another edit came first). Audited:
  ``response_template_created``, ``_updated`` (with what it was), ``_deleted``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import Clock
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import ResponseTemplate, Role, Ticket, User

from .audit import AuditLog
from .forms import FormMessage, checked_text
from .records import KINDS, MAX_COMMENT, RecordService

#: Who has templates and uses them (the desk's staff); who writes the desk's shared ones.
USER_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN)
SHARED_WRITER_ROLES = (Role.PROCESS_OWNER, Role.ADMIN)
#: What a template's text may name, each filled in from the record it is used on (or the agent).
PLACEHOLDERS = ("number", "title", "requester", "assignee", "group", "service", "priority", "agent")
#: ``{{ name }}``: letters, digits and underscores, spaces inside the braces allowed.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME_MAX = 120
BODY_MAX = 4000
#: The most templates one list shows (a person's own and the desk's together).
MAX_LISTED = 500
#: The fixed refusals (the pages say them in their own language: app/web/forms.py).
REQUIRED = "is required"
MUST_BE_TEXT = "must be text"
UNKNOWN_KIND = "must be one of incident, change, problem, request"
NAME_TAKEN = "is taken: another template of the same owner has this name"
NOT_FOR_KIND = "is not for this kind of record"
STAYS_SHARED = "the desk's template stays the desk's: delete it instead"


def may_use(user: User) -> bool:
    """Whether ``user`` has response templates (the desk's staff)."""
    return user.has_role(*USER_ROLES)


def may_share(user: User) -> bool:
    """Whether ``user`` writes the desk's shared templates."""
    return user.has_role(*SHARED_WRITER_ROLES)


def unknown_placeholder(name: str) -> FormMessage:
    known = ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)
    return FormMessage(f"holds an unknown placeholder {{{{{name}}}}}: use {known}", "unknown_placeholder",
                       name=name, known=known)


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each known placeholder replaced by its value, in one pass (a value holding
    braces stays as it is); an unknown one is left as written."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


class ResponseService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records

    # -- reading ------------------------------------------------------------------------------------

    def require_user(self, user: User, action: str = "response_template_read") -> None:
        """PermissionDenied (audited) unless ``user`` is of the desk's staff (:func:`may_use`)."""
        if not may_use(user):
            self.audit.refuse(user, action, reason="needs agent, process_owner or admin")
            raise PermissionDenied("response templates are for the agent, process_owner and admin roles")

    def visible(self, user: User, kind: str | None = None) -> list[ResponseTemplate]:
        """The desk's templates and ``user``'s own, by name (letter case ignored); with ``kind``, those
        for that kind of record and those for every kind."""
        self.require_user(user)
        if kind is not None and kind not in KINDS:
            raise ValidationFailed("no such kind of record", details={"fields": {"kind": [UNKNOWN_KIND]}})
        query = select(ResponseTemplate).where(or_(ResponseTemplate.owner_id.is_(None),
                                                   ResponseTemplate.owner_id == user.id))
        if kind is not None:
            query = query.where(or_(ResponseTemplate.kind.is_(None), ResponseTemplate.kind == kind))
        return list(self.session.scalars(query.order_by(func.lower(ResponseTemplate.name), ResponseTemplate.id)
                                         .limit(MAX_LISTED)))

    def get(self, user: User, template_id: int) -> ResponseTemplate:
        """One template ``user`` sees: NotFound for an unknown id and for another person's own."""
        self.require_user(user)
        return self._seen(user, self.session.get(ResponseTemplate, template_id), template_id)

    @staticmethod
    def _seen(user: User, row: ResponseTemplate | None, template_id: int) -> ResponseTemplate:
        """``row`` if ``user`` sees it (the desk's, or their own); NotFound otherwise, as for no row."""
        if row is None or (row.owner_id is not None and row.owner_id != user.id):
            raise NotFound(f"no response template {template_id}", details={"id": template_id})
        return row

    @staticmethod
    def may_edit(user: User, row: ResponseTemplate) -> bool:
        """Whether ``user`` changes ``row``: their own, or the desk's for process owners and admins."""
        return row.owner_id == user.id if row.owner_id is not None else may_share(user)

    def for_record(self, user: User, number: str) -> tuple[Ticket, list[tuple[ResponseTemplate, str]]]:
        """Record ``number`` (NotFound unless ``user`` may read it) and the templates for its kind,
        each with its text filled in from the record."""
        self.require_user(user)
        ticket = self.records.get(user, number)
        values = self.values_for(user, ticket)
        # a record's values may be long (a title of 500 characters, many times): no more than a comment holds
        return ticket, [(row, fill(row.body, values)[:MAX_COMMENT]) for row in self.visible(user, ticket.kind)]

    def filled(self, user: User, ticket: Ticket, template_id: int) -> str:
        """Template ``template_id``'s text filled in from ``ticket`` (a record ``user`` read already):
        NotFound as :meth:`get`, ValidationFailed naming ``response`` when it is for another kind."""
        row = self.get(user, template_id)
        if row.kind is not None and row.kind != ticket.kind:
            raise ValidationFailed("the template is for another kind of record",
                                   details={"fields": {"response": [NOT_FOR_KIND]}})
        return fill(row.body, self.values_for(user, ticket))

    @staticmethod
    def values_for(user: User, ticket: Ticket) -> dict[str, str]:
        """What each placeholder says of ``ticket``, used by ``user`` (empty when the record has none)."""
        return {"number": ticket.number, "title": ticket.title or "",
                "requester": ticket.requester.display_name if ticket.requester is not None else "",
                "assignee": ticket.assignee.display_name if ticket.assignee is not None else "",
                "group": ticket.assignment_group or "", "service": ticket.service or ticket.ci or "",
                "priority": ticket.priority or "", "agent": user.display_name}

    # -- writing ------------------------------------------------------------------------------------

    def create(self, user: User, values: Mapping[str, Any]) -> ResponseTemplate:
        """A new template from ``values``: ``name``, ``body``, optional ``kind`` and ``shared`` (the
        desk's: process owners and admins only, else PermissionDenied naming ``shared``).
        ValidationFailed naming each field that is wrong. Audited (``response_template_created``)."""
        self.require_user(user, "response_template_create")
        shared = self._shared(user, values.get("shared", False), "response_template_create")
        owner_id = None if shared else user.id
        errors: dict[str, list[Any]] = {}
        name, body, kind = self._name(values, errors), self._body(values, errors), self._kind(values, errors)
        if "name" not in errors and self._taken(name, owner_id):
            errors["name"] = [NAME_TAKEN]
        if errors:
            raise ValidationFailed("the response template is not valid", details={"fields": errors})
        now = self.clock.now()
        row = ResponseTemplate(name=name, body=body, kind=kind, owner_id=owner_id, version=1, created_by_id=user.id,
                               created_at=now, updated_at=now)
        self.session.add(row)
        self._flush_named()
        self.audit.record("response_template_created", user, payload=self._said(row))
        return row

    def update(self, user: User, template_id: int, version: Any, values: Mapping[str, Any]) -> ResponseTemplate:
        """Change the fields of ``values`` (``name``, ``body``, ``kind``, ``shared``: a template of
        one's own becomes the desk's; the desk's stays the desk's, ValidationFailed naming
        ``shared``) of a template ``user`` may edit (PermissionDenied for the desk's, but for
        process owners and admins). Nothing changed: no new version, nothing audited.
        ``version`` is the one the edit was written over: Conflict (``details.current_version``)
        when another edit came first. Audited (``response_template_updated``)."""
        row = self._editable(user, template_id, "response_template_update")
        errors: dict[str, list[Any]] = {}
        if not isinstance(version, int) or isinstance(version, bool):
            errors["version"] = [REQUIRED if version is None else "must be a whole number"]
        owner_id = row.owner_id
        if "shared" in values and self._shared(user, values["shared"], "response_template_update"):
            owner_id = None
        elif "shared" in values and row.owner_id is None:
            # whose would it be? not the editor's alone: every agent would lose it unseen
            errors["shared"] = [STAYS_SHARED]
        name = self._name(values, errors) if "name" in values else row.name
        body = self._body(values, errors) if "body" in values else row.body
        kind = self._kind(values, errors) if "kind" in values else row.kind
        if "name" not in errors and (name.lower() != row.name.lower() or owner_id != row.owner_id) \
                and self._taken(name, owner_id, but=row.id):
            errors["name"] = [NAME_TAKEN]
        if errors:
            raise ValidationFailed("the response template is not valid", details={"fields": errors})
        if version != row.version:
            raise Conflict(f"the response template was changed by someone else: it is at version {row.version} now, "
                           f"not {version}", details={"current_version": row.version})
        if (name, body, kind, owner_id) == (row.name, row.body, row.kind, row.owner_id):
            return row  # nothing changed: no new version, nothing to audit
        was = self._said(row)
        row.name, row.body, row.kind, row.owner_id = name, body, kind, owner_id
        row.version += 1
        row.updated_at = self.clock.now()
        self._flush_named()
        self.audit.record("response_template_updated", user, payload={**self._said(row), "was": was})
        return row

    def delete(self, user: User, template_id: int) -> None:
        """Delete a template ``user`` may edit. Audited (``response_template_deleted``, with its text)."""
        row = self._editable(user, template_id, "response_template_delete")
        said = self._said(row)
        self.session.delete(row)
        self.session.flush()
        self.audit.record("response_template_deleted", user, payload=said)

    # -- parts --------------------------------------------------------------------------------------

    def _editable(self, user: User, template_id: int, action: str) -> ResponseTemplate:
        self.require_user(user, action)
        # the row locked on PostgreSQL (two edits take turns); not the joined author's row
        row = self.session.scalars(select(ResponseTemplate).where(ResponseTemplate.id == template_id)
                                   .with_for_update(of=ResponseTemplate)
                                   .execution_options(populate_existing=True)).unique().first()
        row = self._seen(user, row, template_id)
        if not self.may_edit(user, row):
            self.audit.refuse(user, action, reason="the desk's templates need process_owner or admin", id=row.id)
            raise PermissionDenied("the desk's response templates are changed by process owners and admins")
        return row

    def _flush_named(self) -> None:
        """Write what changed; a name taken by a save at the same moment (the unique index) is
        ValidationFailed naming ``name``, as the check before it (the request rolls back)."""
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise ValidationFailed("the response template is not valid: name",
                                   details={"fields": {"name": [NAME_TAKEN]}}) from None

    def _shared(self, user: User, raw: Any, action: str) -> bool:
        if not isinstance(raw, bool):
            raise ValidationFailed("shared must be true or false",
                                   details={"fields": {"shared": ["must be true or false"]}})
        if raw and not may_share(user):
            self.audit.refuse(user, action, reason="sharing needs process_owner or admin")
            raise PermissionDenied("only process owners and admins share templates with the desk",
                                   details={"field": "shared"})
        return raw

    def _taken(self, name: str, owner_id: int | None, but: int | None = None) -> bool:
        owner = ResponseTemplate.owner_id.is_(None) if owner_id is None else ResponseTemplate.owner_id == owner_id
        query = select(ResponseTemplate.id).where(owner, func.lower(ResponseTemplate.name) == name.lower())
        if but is not None:
            query = query.where(ResponseTemplate.id != but)
        return self.session.scalar(query.limit(1)) is not None

    @staticmethod
    def _name(values: Mapping[str, Any], errors: dict[str, list[Any]]) -> str:
        return checked_text(values, "name", NAME_MAX, errors, one_line=True, required=True)

    @staticmethod
    def _body(values: Mapping[str, Any], errors: dict[str, list[Any]]) -> str:
        body = checked_text(values, "body", BODY_MAX, errors, one_line=False, required=True)
        if body and "body" not in errors:
            unknown = [m.group(1) for m in PLACEHOLDER.finditer(body) if m.group(1) not in PLACEHOLDERS]
            if unknown:
                errors["body"] = [unknown_placeholder(unknown[0])]
        return body

    @staticmethod
    def _kind(values: Mapping[str, Any], errors: dict[str, list[Any]]) -> str | None:
        raw = values.get("kind")
        if raw is None or raw == "":
            return None
        if raw not in KINDS:
            errors["kind"] = [UNKNOWN_KIND]
            return None
        return str(raw)

    @staticmethod
    def _said(row: ResponseTemplate) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "kind": row.kind, "shared": row.owner_id is None,
                "owner_id": row.owner_id, "version": row.version, "body": row.body}
