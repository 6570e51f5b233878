"""The configuration management database (CMDB): configuration items and their relationships.

Who: the desk's staff who read every record (``READER_ROLES``: agents, process owners, admins,
auditors) and configuration managers read the CMDB; admins and configuration managers
(``WRITER_ROLES``) write it. Anyone else (a requester, an approver) is refused: 403 for the list
and for creating (there is no object to hide), 404 for a CI by name (no existence leak), as the
rest of the desk answers.

A CI's ``name`` is the key records use in their free-text ``ci`` field. It is unique whatever the
letter case. A rename (``update`` with a ``name``) gives the records naming the old name, in any
letter case, the new one in the same transaction, so none is cut off from its CI (``_rename``,
``hold_name``: also a record written at the same moment); the old name then names nothing, and its
address answers 404 (a new CI may take it, so nothing redirects from it). A CI is never deleted
while a record names it: it is retired (status ``retired``), and stays readable with its history;
one nobody names may be deleted (its relationships go with it).

Records and CIs: a CI shows the records whose ``ci`` is its name (exactly as stored; open ones
first), as far as the reader may see them (``RecordService``'s rule). A record started or
worked with a ``ci`` naming a *retired* CI is refused (``check_record_data``: 422 naming the
variable, ``ci`` in the shipped processes); a name the CMDB does not know stays accepted as free
text, as before the CMDB existed, since callers and diagrams already send such names and a desk
fills its CMDB over time.

Relationships read "source <kind> target": ``depends_on`` and ``runs_on`` carry impact (when the
target fails, the source is affected), ``connects_to`` does not (a link between two network
devices says nothing about which one needs the other). The impact of a CI is every CI that
depends on it or runs on it, directly or through others, breadth first up to ``IMPACT_DEPTH``
levels and ``IMPACT_LIMIT`` CIs, each once (cycles end there).

Every change is audited: ``ci_created``, ``ci_updated`` (the changed fields, before and after; a
rename's ``name`` too, with how many ``records`` followed, each of which gets a ``record_updated``
with ``ci_renamed``),
``ci_retired``, ``ci_deleted``, ``ci_relationship_added``, ``ci_relationship_removed``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db import LIKE_ESCAPE, SEARCH_WORDS, like_literal
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import (
    ChangeFreeze,
    CiClass,
    CiRelationKind,
    CiRelationship,
    CiStatus,
    ConfigurationItem,
    ProcessDefinition,
    Role,
    Ticket,
    User,
)

from .audit import AuditLog
from .forms import FormMessage, text_problem
from .records import RecordService
from .users import UserService

CLASSES = tuple(c.value for c in CiClass)
STATUSES = tuple(s.value for s in CiStatus)
RELATION_KINDS = tuple(k.value for k in CiRelationKind)
#: The relationship kinds along which a failure spreads to the source.
IMPACT_KINDS = (CiRelationKind.DEPENDS_ON.value, CiRelationKind.RUNS_ON.value)
IMPACT_DEPTH = 6
IMPACT_LIMIT = 200
#: How many records naming a CI its page and answer list (open ones first).
RECORD_LIMIT = 50
#: How many records one statement of a rename gives the new name.
RENAME_BATCH = 500
READER_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN, Role.AUDITOR, Role.CONFIGURATION_MANAGER)
WRITER_ROLES = (Role.ADMIN, Role.CONFIGURATION_MANAGER)
MAX_NAME = 255
MAX_DESCRIPTION = 20_000
MAX_LOCATION = 255
MAX_SERIAL = 128
MAX_ASSET_TAG = 64
MAX_VENDOR = 128
#: The most an asset's cost is (its column's 12 digits, two after the point).
MAX_COST = Decimal("9999999999.99")
#: The CI's fields a create or an update takes, besides ``name``; the asset's among them.
ASSET_FIELDS = ("asset_tag", "assigned_to", "vendor", "purchased_on", "warranty_until", "cost")
FIELDS = ("ci_class", "status", "description", "owner", "support_group", "location", "serial_number", *ASSET_FIELDS)
#: The warranty filter's choices: ended, or ending within so many days.
WARRANTY_CHOICES = ("expired", "30", "60", "90")
#: The fixed refusals of the asset's fields (the pages say them in their language: app/web/forms.py).
NOT_A_DAY = "must be a date (YYYY-MM-DD)"
BAD_COST = "must be an amount of at least 0, with at most two decimals"
BOUGHT_AFTER_WARRANTY = "must not end before the purchase date"
WARRANTY_BEFORE_PURCHASE = "must not be after the warranty's end"


def may_read(user: User) -> bool:
    return user.has_role(*READER_ROLES)


def may_write(user: User) -> bool:
    return user.has_role(*WRITER_ROLES)


def _one_line(text: str) -> str:
    return " ".join(text.split())


#: A value that is no day or no amount (None is: "none").
_WRONG: Any = object()
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: An amount as typed: digits with an optional point and decimals (no exponent, no separators).
_AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _day(value: Any) -> Any:
    """A date field's value: None for none (null, empty), the date for "YYYY-MM-DD" (years 1900 to
    8999), else ``_WRONG``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if _DAY.fullmatch(text) is None:
        return _WRONG
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return _WRONG
    return day if 1900 <= day.year <= 8999 else _WRONG


def _amount(value: Any) -> Any:
    """A cost: None for none, else a Decimal of at least 0 with at most two decimals, at most
    :data:`MAX_COST` (a JSON number, or text as a form sends it: "1299.00"); else ``_WRONG``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return _WRONG
    text = str(value).strip()
    if isinstance(value, str) and _AMOUNT.fullmatch(text) is None:
        return _WRONG
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return _WRONG
    if not amount.is_finite() or amount < 0 or amount > MAX_COST or amount != amount.quantize(Decimal("0.01")):
        return _WRONG
    return abs(amount.quantize(Decimal("0.01")))  # -0 is 0


def _name_taken(name: str) -> FormMessage:
    return FormMessage(f"a configuration item named {name} exists", "ci_name_taken", value=name)


class CmdbService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService,
                 users: UserService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records
        self.users = users

    #: The CI's maintenance windows as answered (``Services`` wires it to
    #: ``MaintenanceService.described``, which builds on this service).
    windows_of: Callable[[ConfigurationItem], list[dict[str, Any]]] | None = None

    # -- who --------------------------------------------------------------------------------------

    def require_reader(self, user: User, action: str = "read_cmdb", name: str | None = None) -> None:
        """PermissionDenied (audited) unless ``user`` reads the CMDB."""
        if not may_read(user):
            self.audit.refuse(user, action, reason="needs agent, process_owner, admin, auditor or configuration_manager",
                              ci=name)
            raise PermissionDenied("only the desk's staff read the configuration management database")

    def require_writer(self, user: User, action: str = "write_cmdb", name: str | None = None) -> None:
        """PermissionDenied (audited) unless ``user`` writes the CMDB (admins, configuration managers)."""
        if not may_write(user):
            self.audit.refuse(user, action, reason="needs admin or configuration_manager", ci=name)
            raise PermissionDenied("only administrators and configuration managers change the configuration "
                                   "management database")

    # -- reading ----------------------------------------------------------------------------------

    def _named(self, name: str) -> ConfigurationItem | None:
        text = name.strip()
        if not text or len(text) > MAX_NAME:
            return None
        found: ConfigurationItem | None = self.session.scalar(
            select(ConfigurationItem).where(func.lower(ConfigurationItem.name) == func.lower(text)))
        return found

    def find(self, user: User, name: str, action: str = "read_ci") -> ConfigurationItem:
        """The CI named ``name`` (any letter case) for a reader; NotFound for anyone else (audited)
        and for a name no CI has."""
        if not may_read(user):
            self.audit.refuse(user, action, reason="not a CMDB reader", ci=name[:MAX_NAME])
            raise NotFound(f"no configuration item {name[:MAX_NAME]}")
        ci = self._named(name)
        if ci is None:
            raise NotFound(f"no configuration item {name[:MAX_NAME]}")
        return ci

    def search(self, user: User, *, ci_class: str | None = None, status: str | None = None, q: str | None = None,
               assigned_to: str | None = None, warranty: str | None = None,
               page: int = 1, per_page: int = 50) -> tuple[list[ConfigurationItem], int]:
        """CIs of ``ci_class`` and ``status`` (comma-separated choices) whose name, description,
        location, serial number or asset tag holds every word of ``q`` (literally, any case), by
        name; assigned to the user ``assigned_to``; whose warranty ``warranty`` ("expired": ended
        before today; "30", "60", "90": ends within so many days from today, not ended).
        PermissionDenied for who does not read the CMDB; ValidationFailed naming an unknown
        ``ci_class``, ``status`` or ``warranty``."""
        self.require_reader(user, "list_cis")
        query: Select[tuple[ConfigurationItem]] = select(ConfigurationItem)
        if assigned_to:
            holder = self.users.find(assigned_to[:128])
            query = query.where(ConfigurationItem.assigned_to_id == (holder.id if holder is not None else -1))
        if warranty:
            if warranty not in WARRANTY_CHOICES:
                raise ValidationFailed("unknown warranty", details={"fields": {"warranty": [
                    f"one of: {', '.join(WARRANTY_CHOICES)}"]}})
            today = self.clock.now().date()
            query = query.where(ConfigurationItem.warranty_until < today) if warranty == "expired" else query.where(
                ConfigurationItem.warranty_until >= today,
                ConfigurationItem.warranty_until <= today + timedelta(days=int(warranty)))
        for field, value, known in (("class", ci_class, CLASSES), ("status", status, STATUSES)):
            if not value:
                continue
            chosen = [v.strip() for v in value.split(",") if v.strip()]
            unknown = [v for v in chosen if v not in known]
            if unknown:
                raise ValidationFailed(f"unknown {field}", details={"fields": {field: [f"one of: {', '.join(known)}"]}})
            column = ConfigurationItem.ci_class if field == "class" else ConfigurationItem.status
            query = query.where(column.in_(chosen))
        for word in (q or "").lower().split()[:SEARCH_WORDS]:
            needle = f"%{like_literal(word)}%"
            query = query.where(or_(*(func.lower(column).like(needle, escape=LIKE_ESCAPE) for column in (
                ConfigurationItem.name, ConfigurationItem.description, ConfigurationItem.location,
                ConfigurationItem.serial_number, ConfigurationItem.asset_tag))))
        total = int(self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = self.session.scalars(query.order_by(func.lower(ConfigurationItem.name), ConfigurationItem.id)
                                    .offset((page - 1) * per_page).limit(per_page))
        return list(rows), total

    def relationships(self, ci: ConfigurationItem) -> list[CiRelationship]:
        """The CI's relationships either way round, outgoing first, each by kind and the other CI's name."""
        rows = self.session.scalars(select(CiRelationship).where(
            or_(CiRelationship.source_id == ci.id, CiRelationship.target_id == ci.id)))
        return sorted(rows, key=lambda r: (r.source_id != ci.id, r.kind,
                                           (r.target if r.source_id == ci.id else r.source).name.lower()))

    def records_naming(self, user: User, ci: ConfigurationItem, limit: int = RECORD_LIMIT) -> tuple[list[Ticket], int]:
        """The records whose ``ci`` is the CI's name that ``user`` may see: open ones first, then
        newest first, at most ``limit``; and how many there are in all."""
        query = self.records.visible(user, select(Ticket).where(Ticket.ci == ci.name))
        total = int(self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = self.session.scalars(query.order_by(case((Ticket.closed_at.is_(None), 0), else_=1),
                                                   Ticket.opened_at.desc(), Ticket.id.desc()).limit(limit))
        return list(rows), total

    def impact(self, ci: ConfigurationItem, *, depth: int = IMPACT_DEPTH,
               limit: int = IMPACT_LIMIT) -> tuple[list[dict[str, Any]], bool]:
        """The CIs a failure of ``ci`` reaches: those that depend on it or run on it (``IMPACT_KINDS``),
        directly (depth 1) or through others, breadth first, each once with the CI it is reached
        through (``via``); a cycle ends where it meets a CI already found. Returns the CIs and
        whether the walk stopped at ``depth`` or ``limit`` with more to find. One query per level."""
        seen = {ci.id}
        frontier = [ci.id]
        found: list[dict[str, Any]] = []
        names = {ci.id: ci.name}
        level = 0
        while frontier:
            rows = self.session.execute(
                select(CiRelationship.source_id, CiRelationship.target_id, CiRelationship.kind)
                .where(CiRelationship.target_id.in_(frontier), CiRelationship.kind.in_(IMPACT_KINDS))
                .order_by(CiRelationship.target_id, CiRelationship.source_id)).all()
            fresh = [(row.source_id, row.target_id, row.kind) for row in rows if row.source_id not in seen]
            if not fresh:
                return found, False
            if level >= depth:
                return found, True
            level += 1
            items = {item.id: item for item in self.session.scalars(
                select(ConfigurationItem).where(ConfigurationItem.id.in_({s for s, _, _ in fresh})))}
            frontier = []
            for source_id, target_id, kind in fresh:
                if source_id in seen:
                    continue  # reached twice on this level
                if len(found) >= limit:
                    return found, True
                seen.add(source_id)
                item = items[source_id]
                names[item.id] = item.name
                frontier.append(item.id)
                found.append({"name": item.name, "ci_class": item.ci_class, "status": item.status, "depth": level,
                              "via": names[target_id], "kind": kind})
        return found, False

    def related_names(self, name: str, *, upward: bool) -> set[str]:
        """The names of the CIs ``name``'s CI is tied to by ``IMPACT_KINDS``, directly or through
        others (at most ``IMPACT_DEPTH`` levels and ``IMPACT_LIMIT`` CIs): ``upward``, those that
        depend on it or run on it (what its failure reaches, as ``impact``); else those it depends
        on or runs on (what it stands on). Empty for a name no CI has. One query per level."""
        ci = self._named(name)
        if ci is None:
            return set()
        near, far = (CiRelationship.target_id, CiRelationship.source_id) if upward else \
            (CiRelationship.source_id, CiRelationship.target_id)
        seen, frontier = {ci.id}, {ci.id}
        for _level in range(IMPACT_DEPTH):
            found = set(self.session.scalars(select(far).where(near.in_(frontier), CiRelationship.kind.in_(IMPACT_KINDS))))
            frontier = found - seen
            if not frontier:
                break
            seen |= frontier
            if len(seen) > IMPACT_LIMIT:
                break
        seen.discard(ci.id)
        if not seen:
            return set()
        return set(self.session.scalars(select(ConfigurationItem.name).where(ConfigurationItem.id.in_(sorted(seen)))))

    def existing_names(self, names: list[str]) -> set[str]:
        """Those of ``names`` that are a CI's name exactly as written: the records a CI lists
        (``records_naming``) are those whose ``ci`` is its name as written, so a record links to
        its CI when, and only when, the CI lists it. No check: callers link for CMDB readers only."""
        wanted = sorted({n for n in names if n and len(n) <= MAX_NAME})
        if not wanted:
            return set()
        return set(self.session.scalars(select(ConfigurationItem.name).where(ConfigurationItem.name.in_(wanted))))

    # -- records ----------------------------------------------------------------------------------

    def check_record_data(self, definition: ProcessDefinition, data: Mapping[str, Any]) -> None:
        """Refuse data that sets a record's ``ci`` to a retired CI's name: ValidationFailed naming
        the variable the process's record mapping copies to ``ci``. Any other value (a CI in
        service, a name the CMDB does not know, nothing) passes."""
        variable = ((definition.record_mapping or {}).get("fields") or {}).get("ci")
        if not variable or not isinstance(data.get(variable), str):
            return
        ci = self._named(data[variable])
        if ci is not None and ci.status == CiStatus.RETIRED:
            raise ValidationFailed(f"configuration item {ci.name} is retired", details={"fields": {variable: [
                f"{ci.name} is retired: name a configuration item in service"]}})

    # -- writing ----------------------------------------------------------------------------------

    def _clean(self, values: Mapping[str, Any], *, creating: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """The given fields cleaned (``owner`` and ``support_group`` as a user and a group, or None)
        and the problems, per field."""
        errors: dict[str, list[str]] = {}
        clean: dict[str, Any] = {}

        def text(field: str, limit: int, *, one_line: bool = True) -> None:
            if field not in values:
                return
            raw = values[field]
            value = "" if raw is None else str(raw)
            value = _one_line(value) if one_line else value.strip()
            if (problem := text_problem(value, limit)) is not None:
                errors.setdefault(field, []).append(problem)
            else:
                clean[field] = value

        if creating or "name" in values:  # a create names the CI; an update may rename it
            text("name", MAX_NAME)
            if not clean.get("name") and "name" not in errors:
                clean.pop("name", None)
                errors["name"] = ["is required"]
            elif "/" in clean.get("name", ""):
                del clean["name"]
                errors["name"] = ["must not hold a slash (/): the name is part of the CI's address"]
        # the class is "class" to its callers (a Python keyword here)
        for field, key, known in (("ci_class", "class", CLASSES), ("status", "status", STATUSES)):
            if field in values:
                if values[field] in known:
                    clean[field] = values[field]
                else:
                    errors[key] = [f"one of: {', '.join(known)}"]
            elif creating and field == "ci_class":
                errors[key] = ["is required"]
        text("description", MAX_DESCRIPTION, one_line=False)
        text("location", MAX_LOCATION)
        text("serial_number", MAX_SERIAL)
        text("asset_tag", MAX_ASSET_TAG)
        text("vendor", MAX_VENDOR)
        for field in ("owner", "assigned_to"):
            if field not in values:
                continue
            who = values[field]
            if who is None or str(who).strip() == "":
                clean[field] = None
                continue
            person = self.users.find(str(who).strip()[:128])
            if person is None or not person.active:
                errors[field] = [FormMessage(f"{str(who).strip()[:128]}: no such active user", "ci_no_user",
                                             value=str(who).strip()[:128])]
            else:
                clean[field] = person
        for field in ("purchased_on", "warranty_until"):
            if field in values:
                day = _day(values[field])
                if day is _WRONG:
                    errors[field] = [NOT_A_DAY]
                else:
                    clean[field] = day
        if "cost" in values:
            cost = _amount(values["cost"])
            if cost is _WRONG:
                errors["cost"] = [BAD_COST]
            else:
                clean["cost"] = cost
        if "support_group" in values:
            name = values["support_group"]
            if name is None or str(name).strip() == "":
                clean["support_group"] = None
            else:
                group = self.users.find_group(str(name)[:128])
                if group is None:
                    errors["support_group"] = [f"{str(name)[:128]}: no such group"]
                else:
                    clean["support_group"] = group
        return clean, errors

    def _asset_rules(self, ci: ConfigurationItem | None, clean: dict[str, Any], errors: dict[str, list[Any]]) -> None:
        """The rules between an asset's fields, on the values it will have (``clean`` over ``ci``'s):
        a warranty does not end before the purchase; an asset tag is one asset's (any letter case)."""
        def will_be(field: str) -> Any:
            return clean[field] if field in clean else (getattr(ci, field) if ci is not None else None)

        bought, ends = will_be("purchased_on"), will_be("warranty_until")
        if bought is not None and ends is not None and ends < bought and not {"purchased_on", "warranty_until"} & set(errors):
            # named by the field sent: a new purchase date after the warranty, or a warranty before it
            if "warranty_until" in clean:
                errors["warranty_until"] = [BOUGHT_AFTER_WARRANTY]
            else:
                errors["purchased_on"] = [WARRANTY_BEFORE_PURCHASE]
        tag = clean.get("asset_tag")
        if tag:
            others = ConfigurationItem.id != (ci.id if ci is not None else -1)
            other = self.session.scalar(select(ConfigurationItem).where(
                func.lower(ConfigurationItem.asset_tag) == tag.lower(), others).limit(1))
            # SQLite's lower() folds ASCII letters only: a tag beyond them is compared in Python
            if other is not None or (not tag.isascii() and any(
                    row.lower() == tag.lower() for row in self.session.scalars(select(ConfigurationItem.asset_tag).where(
                        ConfigurationItem.asset_tag != "", others)))):
                errors["asset_tag"] = [FormMessage(f"the asset tag {tag} is another configuration item's",
                                                   "ci_asset_tag_taken", value=tag)]

    @staticmethod
    def _shown(field: str, value: Any) -> Any:
        if field in ("owner", "assigned_to"):
            return value.username if value is not None else None
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        if field == "support_group":
            return value.name if value is not None else None
        return value

    def create(self, user: User, values: Mapping[str, Any]) -> ConfigurationItem:
        """A new CI from ``values`` (``name`` and ``ci_class`` required; ``status`` defaults to
        in_service). PermissionDenied for who may not write; ValidationFailed naming each bad field
        (``name`` when a CI of that name exists, in any letter case)."""
        self.require_writer(user, "create_ci")
        clean, errors = self._clean(values, creating=True)
        if "name" in clean and self._named(clean["name"]) is not None:
            errors["name"] = [_name_taken(clean['name'])]
        self._asset_rules(None, clean, errors)
        if errors:
            raise ValidationFailed("the configuration item is not valid: " + ", ".join(sorted(errors)),
                                   details={"fields": errors})
        now = self.clock.now()
        ci = ConfigurationItem(name=clean["name"], ci_class=clean["ci_class"],
                               status=clean.get("status", CiStatus.IN_SERVICE.value),
                               description=clean.get("description", ""), location=clean.get("location", ""),
                               serial_number=clean.get("serial_number", ""), owner=clean.get("owner"),
                               support_group=clean.get("support_group"), asset_tag=clean.get("asset_tag", ""),
                               assigned_to=clean.get("assigned_to"), vendor=clean.get("vendor", ""),
                               purchased_on=clean.get("purchased_on"), warranty_until=clean.get("warranty_until"),
                               cost=clean.get("cost"), created_at=now, created_by_id=user.id,
                               updated_at=now, updated_by_id=user.id)
        self.session.add(ci)
        self.session.flush()
        self.audit.record("ci_created", user, payload={
            "ci": ci.name, **{f: self._shown(f, getattr(ci, f)) for f in FIELDS if f != "description"}})
        return ci

    def update(self, user: User, name: str, values: Mapping[str, Any]) -> ConfigurationItem:
        """Change the fields given in ``values``. Audited ``ci_updated`` with each changed field's
        old and new value (``ci_retired`` when it retires the CI); a change that changes nothing
        saves nothing. NotFound / PermissionDenied / ValidationFailed as ``create``.

        A ``name`` renames the CI (checked as on create; another letter case of its own name is a
        rename too), and the records naming it follow in this transaction (``_rename``): the
        event then also says how many (``records``)."""
        ci = self.find(user, name, "update_ci")
        self.require_writer(user, "update_ci", ci.name)
        # a person named as they are stays, even one who has left since (the edit form sends every field)
        values = {k: v for k, v in values.items() if not (
            k in ("owner", "assigned_to") and isinstance(v, str) and v.strip()
            and (held := getattr(ci, k)) is not None and held.username.lower() == v.strip().lower())}
        clean, errors = self._clean(values, creating=False)
        new_name = clean.pop("name", None)
        if new_name == ci.name:
            new_name = None
        if new_name is not None:
            ci = self._lock_for_rename(ci, name)
            other = self._named(new_name)
            if other is not None and other.id != ci.id:
                errors["name"] = [_name_taken(new_name)]
        self._asset_rules(ci, clean, errors)
        if errors:
            raise ValidationFailed("the configuration item is not valid: " + ", ".join(sorted(errors)),
                                   details={"fields": errors})
        changes: dict[str, dict[str, Any]] = {}
        for field, value in clean.items():
            before = getattr(ci, field)
            if before != value:
                changes[field] = {"from": self._shown(field, before), "to": self._shown(field, value)}
                setattr(ci, field, value)
        followed = None
        if new_name is not None:
            changes["name"] = {"from": ci.name, "to": new_name}
            followed = self._rename(user, ci, new_name)
        if not changes:
            return ci
        ci.updated_at = self.clock.now()
        ci.updated_by_id = user.id
        self.session.flush()
        if "description" in changes:
            changes["description"] = {"changed": True}  # long text: the chain keeps that it changed
        payload: dict[str, Any] = {"ci": ci.name, "changes": changes}
        if followed is not None:
            payload["records"] = followed
        if changes.get("status", {}).get("to") == CiStatus.RETIRED:
            self.audit.record("ci_retired", user, payload=payload)
        else:
            self.audit.record("ci_updated", user, payload=payload)
        return ci

    def _lock_for_rename(self, ci: ConfigurationItem, asked: str) -> ConfigurationItem:
        """The CI locked until the transaction ends (PostgreSQL: ``FOR UPDATE``, which waits for
        every record writer holding the CI by ``hold_name``; SQLite: its writers take turns, and
        the unit of work runs again one that read before another committed), read again as it is
        now; NotFound when a rename committed meanwhile took the name ``asked`` from it."""
        locked = self.session.scalar(select(ConfigurationItem).where(ConfigurationItem.id == ci.id)
                                     .with_for_update().execution_options(populate_existing=True))
        if locked is None or locked.name.lower() != asked.strip().lower():
            raise NotFound(f"no configuration item {asked[:MAX_NAME]}")
        return locked

    def _rename(self, user: User, ci: ConfigurationItem, new_name: str) -> int:
        """Give the locked ``ci`` its new name, and every record naming it (its ``ci`` the old name
        in any letter case, as ``_named`` finds CIs) the new one, each audited ``record_updated``
        with ``ci_renamed`` (from, to). Returns how many records followed.

        Nothing is left naming the old name: a record writer naming the CI holds it
        (``hold_name``) until it commits, so on PostgreSQL either it commits first (the lock
        taken here waited for it, and the records read below, after the lock, include its
        record) or it waits for this rename and stores the new name. A unique-name race lost to
        a create at the same moment is ValidationFailed naming ``name``, as the check above."""
        old = ci.name
        ci.name = new_name
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            ci.name = old
            raise ValidationFailed("the configuration item is not valid: name", details={"fields": {
                "name": [_name_taken(new_name)]}}) from None
        rows = self.session.execute(
            select(Ticket.id, Ticket.number, Ticket.instance_id, Ticket.ci)
            .where(func.lower(Ticket.ci) == old.lower()).order_by(Ticket.id).with_for_update()).all()
        now = self.clock.now()
        for chunk in range(0, len(rows), RENAME_BATCH):
            ids = [row.id for row in rows[chunk:chunk + RENAME_BATCH]]
            self.session.execute(update(Ticket).where(Ticket.id.in_(ids)).values(ci=new_name, updated_at=now)
                                 .execution_options(synchronize_session="fetch"))
        for row in rows:
            self.audit.record("record_updated", user, instance_id=row.instance_id, payload={
                "number": row.number, "changes": {"ci": new_name}, "ci_renamed": {"from": row.ci, "to": new_name}})
        # a change freeze on the CI holds for it by its new name (app/services/schedule.py)
        self.session.execute(update(ChangeFreeze).where(func.lower(ChangeFreeze.ci) == old.lower()).values(ci=new_name)
                             .execution_options(synchronize_session="fetch"))
        return len(rows)

    def hold_name(self, value: str) -> str:
        """The ``ci`` a record being written now stores for ``value``: ``value`` itself, unless it
        named a CI that a rename committing meanwhile renamed: then the CI's new name.

        On PostgreSQL the CI ``value`` names is held (``FOR KEY SHARE``, which record writers
        share with each other and with every other change of the CI, but not with a rename's
        ``FOR UPDATE``) until this transaction ends, so a rename either waits for this record
        to commit and renames it too, or has renamed the CI before this reads it here. SQLite's
        writers take turns already: nothing to hold."""
        if self.session.get_bind().dialect.name != "postgresql" or not value or len(value) > MAX_NAME:
            return value
        # The CI is found by name in this statement's snapshot and locked by id: when a rename
        # holds it, the lock waits for it and then reads the row as the rename left it (a lock by
        # name would then find nothing, and the record would keep the old name).
        named = (select(ConfigurationItem.id).where(func.lower(ConfigurationItem.name) == func.lower(value))
                 .scalar_subquery())
        current = self.session.scalar(select(ConfigurationItem.name).where(ConfigurationItem.id == named)
                                      .with_for_update(read=True, key_share=True))
        if current is None or current.lower() == value.lower():
            return value
        return str(current)

    def retire(self, user: User, name: str) -> ConfigurationItem:
        """Retire the CI (it stays, with its relationships and the records naming it; new records
        may no longer name it). Conflict ``ci_retired`` when it is retired already."""
        ci = self.find(user, name, "retire_ci")
        self.require_writer(user, "retire_ci", ci.name)
        if ci.status == CiStatus.RETIRED:
            raise Conflict(f"{ci.name} is retired already", code="ci_retired", details={"status": ci.status})
        return self.update(user, ci.name, {"status": CiStatus.RETIRED.value})

    def delete(self, user: User, name: str) -> str:
        """Delete a CI that no record names (its relationships go with it); Conflict
        ``ci_referenced`` naming how many records name it otherwise: retire it instead."""
        ci = self.find(user, name, "delete_ci")
        self.require_writer(user, "delete_ci", ci.name)
        named = int(self.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.ci == ci.name)) or 0)
        if named:
            raise Conflict(f"{named} record(s) name {ci.name}: retire it instead", code="ci_referenced",
                           details={"records": named})
        gone = ci.name
        for row in self.relationships(ci):
            self.session.delete(row)
        self.session.delete(ci)
        self.session.flush()
        self.audit.record("ci_deleted", user, payload={"ci": gone})
        return gone

    def add_relationship(self, user: User, name: str, target: str, kind: str) -> tuple[CiRelationship, bool]:
        """``name <kind> target``; returns the relationship and whether it is new (once per source,
        target and kind). ValidationFailed naming ``kind`` (unknown) or ``target`` (no such CI, the
        CI itself, a retired CI); Conflict ``ci_retired`` when the CI itself is retired."""
        ci = self.find(user, name, "relate_ci")
        self.require_writer(user, "relate_ci", ci.name)
        if kind not in RELATION_KINDS:
            raise ValidationFailed("unknown relationship kind", details={"fields": {"kind": [
                f"one of: {', '.join(RELATION_KINDS)}"]}})
        if ci.status == CiStatus.RETIRED:
            raise Conflict(f"{ci.name} is retired: it takes no new relationships", code="ci_retired")
        said = str(target or "").strip()[:MAX_NAME]
        if not said:
            raise ValidationFailed("the relationship is not valid", details={"fields": {"target": ["is required"]}})
        other = self._named(said)
        # a sentence with the name in it (FormMessage): the pages say it in their language
        why = (("no such configuration item", "ci_unknown") if other is None
               else ("a configuration item is not related to itself", "ci_itself") if other.id == ci.id
               else ("it is retired", "ci_retired") if other.status == CiStatus.RETIRED else None)
        if why is not None:
            raise ValidationFailed("the relationship is not valid", details={"fields": {"target": [
                FormMessage(f"{said}: {why[0]}", why[1], value=said)]}})
        assert other is not None
        existing = self.session.scalar(select(CiRelationship).where(
            CiRelationship.source_id == ci.id, CiRelationship.target_id == other.id, CiRelationship.kind == kind))
        if existing is not None:
            return existing, False
        row = CiRelationship(source_id=ci.id, target_id=other.id, kind=kind, created_at=self.clock.now(),
                             created_by=user.username)
        self.session.add(row)
        self.session.flush()
        self.audit.record("ci_relationship_added", user, payload={"ci": ci.name, "kind": kind, "target": other.name,
                                                                   "relationship_id": row.id})
        return row, True

    def remove_relationship(self, user: User, name: str, relationship_id: int) -> None:
        """Remove one of the CI's relationships (either way round); NotFound for an id that is
        not one of this CI's."""
        ci = self.find(user, name, "relate_ci")
        self.require_writer(user, "relate_ci", ci.name)
        row = self.session.get(CiRelationship, relationship_id)
        if row is None or ci.id not in (row.source_id, row.target_id):
            raise NotFound(f"no relationship {relationship_id} of {ci.name}")
        payload = {"ci": ci.name, "source": row.source.name, "kind": row.kind, "target": row.target.name,
                   "relationship_id": row.id}
        self.session.delete(row)
        self.session.flush()
        self.audit.record("ci_relationship_removed", user, payload=payload)

    # -- answers ----------------------------------------------------------------------------------

    @staticmethod
    def summary(ci: ConfigurationItem) -> dict[str, Any]:
        return {"name": ci.name, "ci_class": ci.ci_class, "status": ci.status, "description": ci.description,
                "owner": ci.owner.username if ci.owner else None,
                "support_group": ci.support_group.name if ci.support_group else None,
                "location": ci.location, "serial_number": ci.serial_number,
                "asset_tag": ci.asset_tag, "assigned_to": ci.assigned_to.username if ci.assigned_to else None,
                "vendor": ci.vendor, "purchased_on": ci.purchased_on, "warranty_until": ci.warranty_until,
                "cost": ci.cost,
                "created_at": ci.created_at, "updated_at": ci.updated_at}

    def detail(self, user: User, ci: ConfigurationItem) -> dict[str, Any]:
        """The CI as its page and the API show it to ``user``: its fields, relationships either way,
        the records naming it that ``user`` sees (open first) and its impact."""
        records, total = self.records_naming(user, ci)
        impacted, truncated = self.impact(ci)
        relations = []
        for row in self.relationships(ci):
            outgoing = row.source_id == ci.id
            other = row.target if outgoing else row.source
            relations.append({"id": row.id, "kind": row.kind, "direction": "outgoing" if outgoing else "incoming",
                              "source": row.source.name, "target": row.target.name, "ci": other.name,
                              "ci_class": other.ci_class, "status": other.status})
        return {**self.summary(ci), "relationships": relations,
                "maintenance_windows": self.windows_of(ci) if self.windows_of else [],
                "records": [{"number": t.number, "kind": t.kind, "status": t.status, "title": t.title,
                             "open": t.closed_at is None, "opened_at": t.opened_at} for t in records],
                "records_total": total, "impact": impacted, "impact_truncated": truncated,
                "impacted_services": [i["name"] for i in impacted if i["ci_class"] == CiClass.SERVICE]}
