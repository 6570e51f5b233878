"""The service catalog: categories, items, and requesting an item (starts catalog_request)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db import LIKE_ESCAPE, SEARCH_WORDS, like_literal
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import CatalogCategory, CatalogItem, DefinitionFile, Group, ItemStatus, Role, Ticket, User, user_group

from . import policy
from .audit import AuditLog
from .forms import catalog_ui_form, resolve_form, validate_submission
from .instances import InstanceService
from .policy import DESK_STAFF_ROLES
from .records import RecordService

REQUEST_PROCESS = "catalog_request"
ITEM_FIELDS = ("name", "category_code", "description", "owner_group", "fulfilment_group", "form", "approval_rule",
               "cost", "target_hours", "status")
APPROVAL_RULES = ("none", "manager", "budget")
#: Totals above this (EUR) go to the budget owners whatever the item's rule (catalog_approval.dmn).
BUDGET_APPROVAL_ABOVE = 1000
#: A catalog item's request form is a form file made for the catalog: ``catalog-<name>.json`` in
#: forms/ (its UI schema beside it as ``catalog-<name>.ui.json``). Other form files are a task's or
#: a start form, written for data a process already holds; an item naming one would ask requesters
#: for, say, an approval decision.
REQUEST_FORM_PREFIX = "catalog-"


def is_request_form(name: str) -> bool:
    """Whether ``name`` is named like a catalog request form (``catalog-<name>.json``, not its UI file)."""
    return (name.startswith(REQUEST_FORM_PREFIX) and name.endswith(".json") and not name.endswith(".ui.json")
            and len(name) > len(REQUEST_FORM_PREFIX) + len(".json"))


def _has_words(item: CatalogItem, words: list[str], reworded: Callable[[str], str]) -> bool:
    """Every one of ``words`` (lower case) is in the item's code, name or description, as stored or reworded."""
    stored = [item.name, item.description or ""]
    said = " \n".join([item.code, *stored, *(reworded(text) for text in stored if text)]).lower()
    return all(word in said for word in words)


class CatalogService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, instances: InstanceService,
                 records: RecordService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.instances = instances
        self.records = records

    # -- reading --------------------------------------------------------------------------------------

    @staticmethod
    def item_dict(item: CatalogItem) -> dict[str, Any]:
        return {
            "code": item.code, "name": item.name, "category": item.category_code, "description": item.description,
            "owner_group": item.owner_group, "fulfilment_group": item.fulfilment_group, "form": item.form,
            "approval": item.approval_rule, "cost": float(item.cost or 0), "target_hours": item.target_hours,
            "status": item.status,
        }

    def tree(self, user: User, q: str | None = None, category: str | None = None,
             reworded: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
        """Categories as a tree, each with its items; published items only unless staff asks.

        Each keyword of ``q`` (the first ``SEARCH_WORDS``) must be in an item's code, name or
        description; with ``reworded`` (a page's translation of names and descriptions) also as
        reworded, matched here instead of in SQL, since the database holds only the stored words."""
        words = (q or "").lower().split()[:SEARCH_WORDS]
        query = select(CatalogItem)
        if not user.has_role(Role.PROCESS_OWNER, Role.ADMIN):
            query = query.where(CatalogItem.status == ItemStatus.PUBLISHED)
        # Keywords and category codes are matched literally: LIKE's wildcards are escaped.
        for word in words if reworded is None else ():
            needle = f"%{like_literal(word)}%"
            query = query.where(or_(func.lower(CatalogItem.name).like(needle, escape=LIKE_ESCAPE),
                                    func.lower(CatalogItem.description).like(needle, escape=LIKE_ESCAPE),
                                    func.lower(CatalogItem.code).like(needle, escape=LIKE_ESCAPE)))
        if category:
            query = query.where(or_(CatalogItem.category_code == category,
                                    CatalogItem.category_code.like(f"{like_literal(category)}.%", escape=LIKE_ESCAPE)))
        items = list(self.session.scalars(query.order_by(CatalogItem.name)))
        if reworded is not None and words:
            items = [item for item in items if _has_words(item, words, reworded)]
        categories = list(self.session.scalars(select(CatalogCategory).order_by(CatalogCategory.position, CatalogCategory.code)))
        nodes: dict[str, dict[str, Any]] = {c.code: {"code": c.code, "name": c.name, "children": [], "items": []}
                                            for c in categories}
        roots: list[dict[str, Any]] = []
        for c in categories:
            (nodes[c.parent_code]["children"] if c.parent_code in nodes else roots).append(nodes[c.code])
        for item in items:
            if item.category_code in nodes:
                nodes[item.category_code]["items"].append(self.item_dict(item))

        def prune(node: dict[str, Any]) -> bool:
            node["children"] = [c for c in node["children"] if prune(c)]
            return bool(node["items"] or node["children"]) or not (q or category)

        return [r for r in roots if prune(r)]

    def get_item(self, code: str, user: User | None = None) -> CatalogItem:
        """The item ``code`` names; item codes are capitals (the API's rule), so ``hw-laptop``, typed
        or linked in lower case, names HW-LAPTOP, as record and article numbers do."""
        item = self.session.scalar(select(CatalogItem).where(CatalogItem.code == code))
        if item is None and code != code.upper():
            item = self.session.scalar(select(CatalogItem).where(CatalogItem.code == code.upper()))
        staff = user is not None and user.has_role(Role.PROCESS_OWNER, Role.ADMIN)
        if item is None or (item.status != ItemStatus.PUBLISHED and not staff):
            raise NotFound(f"no catalog item {code}")
        return item

    def category_path(self, code: str) -> list[CatalogCategory]:
        """The category ``code`` and its ancestors, the root first; empty for an unknown code."""
        path: list[CatalogCategory] = []
        seen: set[str] = set()
        current: str | None = code
        while current and current not in seen:  # a hand-edited cycle must not loop forever
            seen.add(current)
            row = self.session.scalar(select(CatalogCategory).where(CatalogCategory.code == current))
            if row is None:
                break
            path.append(row)
            current = row.parent_code
        return path[::-1]

    @staticmethod
    def expected_approval(approval_rule: str, cost: float, requester: User | None = None) -> tuple[str, str | None]:
        """Who approves one unit of an item with this rule and unit cost, requested by
        ``requester``: (``none`` | ``line_manager`` | ``budget_owner``, the line manager's username
        when it is them and ``requester`` is given).

        What processes/catalog_approval.dmn and the diagram (as shipped) decide, so the catalog can
        say it before anyone orders: a requester without a line manager goes to the budget owners,
        and so does one whose line manager is deactivated (the running request's ``get_manager``
        skips an inactive manager). A running request asks the decision table itself (and a larger
        quantity can raise its total into the budget owners' range)."""
        if approval_rule == "budget" or cost > BUDGET_APPROVAL_ABOVE:
            return "budget_owner", None
        if approval_rule == "none" and cost <= 0:
            return "none", None
        if requester is None:
            return "line_manager", None
        manager = requester.manager
        if manager is None or manager.id == requester.id or not policy.works_tasks(manager):
            return "budget_owner", None
        return "line_manager", manager.username

    def item_form(self, item: CatalogItem) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if not item.form:
            return None, None
        schema = self._form_file(item.form)
        ui_name = catalog_ui_form(item.form)
        ui = self._form_file(ui_name) if ui_name else None
        if schema is None:
            return None, ui
        # choices from the directory (options_from_group:NAME, options_from_groups:FILTER) as it is now;
        # a request form has no task data
        resolved, _ui = resolve_form(schema, ui, {}, self.instances.group_members, self.instances.offered_groups)
        return resolved, ui

    def request_form(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """``(schema, ui_schema)`` a running request's answers were given on: the form of its
        item (``data["item"]``), whatever the item's status now; None without one."""
        code = data.get("item")
        item = self.session.scalar(select(CatalogItem).where(CatalogItem.code == code)) if isinstance(code, str) else None
        schema, ui = self.item_form(item) if item is not None else (None, None)
        return (schema, ui) if schema is not None else None

    def _form_file(self, name: str | None) -> dict[str, Any] | None:
        if not name:
            return None
        row = self.session.scalar(select(DefinitionFile).where(DefinitionFile.name == name))
        return json.loads(row.content) if row is not None else None

    # -- changing -------------------------------------------------------------------------------------

    def require_owner(self, actor: User | None, action: str) -> None:
        if actor is not None and not actor.has_role(Role.PROCESS_OWNER, Role.ADMIN):
            self.audit.refuse(actor, action, reason="needs process_owner")
            raise PermissionDenied("changing the catalog needs the process_owner role")

    def _check_item(self, values: Mapping[str, Any], *, groups_exist: bool = True) -> None:
        """Raise ValidationFailed naming each bad field. With ``groups_exist``, the owner and
        fulfilment groups must be groups people are in already: a request for an item whose
        fulfilment group does not exist would wait in a queue nobody sees. (Loading the shipped
        catalog from the command line does not ask: its groups may come with the users later.)"""
        problems: dict[str, list[str]] = {}
        if groups_exist:
            named = {key: values[key] for key in ("owner_group", "fulfilment_group") if values.get(key)}
            known = set(self.session.scalars(select(Group.name).where(Group.name.in_(set(named.values())))))
            for key, name in named.items():
                if name not in known:
                    problems[key] = [f"no group {name}"]
        if "category_code" in values and self.session.scalar(
                select(CatalogCategory).where(CatalogCategory.code == values["category_code"])) is None:
            problems["category_code"] = ["unknown category"]
        if values.get("form") and not is_request_form(values["form"]):
            problems["form"] = [f"not a catalog request form: name a deployed {REQUEST_FORM_PREFIX}<name>.json file"]
        elif values.get("form") and self._form_file(values["form"]) is None:
            problems["form"] = ["form file is not deployed"]
        if "approval_rule" in values and values["approval_rule"] not in APPROVAL_RULES:
            problems["approval_rule"] = [f"one of: {', '.join(APPROVAL_RULES)}"]
        if "status" in values and values["status"] not in {s.value for s in ItemStatus}:
            problems["status"] = [f"one of: {', '.join(s.value for s in ItemStatus)}"]
        if problems:
            raise ValidationFailed("catalog item is invalid", details={"fields": problems})

    def create_item(self, actor: User | None, values: Mapping[str, Any]) -> CatalogItem:
        self.require_owner(actor, "catalog_create")
        if self.session.scalar(select(CatalogItem).where(CatalogItem.code == values["code"])) is not None:
            raise Conflict(f"catalog item {values['code']} exists", details={"code": values["code"]})
        self._check_item(values, groups_exist=actor is not None)
        item = CatalogItem(code=values["code"], extra={}, updated_at=self.clock.now(),
                           updated_by_id=actor.id if actor else None,
                           **{k: values[k] for k in ITEM_FIELDS if k in values})
        self.session.add(item)
        self.session.flush()
        self.audit.record("catalog_item_created", actor, payload=self.item_dict(item), actor_name=None if actor else "cli")
        return item

    def update_item(self, actor: User | None, code: str, values: Mapping[str, Any]) -> CatalogItem:
        self.require_owner(actor, "catalog_update")
        item = self.session.scalar(select(CatalogItem).where(CatalogItem.code == code))
        if item is None:
            raise NotFound(f"no catalog item {code}")
        self._check_item(values, groups_exist=actor is not None)
        changes = {k: values[k] for k in ITEM_FIELDS if k in values and getattr(item, k) != values[k]}
        for key, value in changes.items():
            setattr(item, key, value)
        if changes:
            item.updated_at = self.clock.now()
            item.updated_by_id = actor.id if actor else None
            self.audit.record("catalog_item_updated", actor, payload={"code": code, "changes": changes},
                              actor_name=None if actor else "cli")
        return item

    def load(self, document: Mapping[str, Any], actor: User | None = None, *, reset: bool = False) -> dict[str, int]:
        """Seed the catalog from the shipped document (processes/catalog.json): categories, then items.

        The document seeds the desk; the database is the source of truth after that. An item not in
        the database is created (published unless the document says otherwise); an item already
        there is left exactly as it is (cost, status, form, everything: what a process owner changed
        through the API stays). ``reset`` (`flask processes deploy --reset-catalog`): the document's
        fields are written over the items already there as well, and an item it gives no status is
        published again. Categories, which only the document defines, take its names and order.
        Returns the counts: ``categories``, ``items`` (in the document), ``created``, ``kept``
        (left alone) and ``reset`` (written over)."""
        counts = {"categories": 0, "items": 0, "created": 0, "kept": 0, "reset": 0}

        def walk(nodes: list[Mapping[str, Any]], parent: str | None) -> None:
            for position, node in enumerate(nodes):
                row = self.session.scalar(select(CatalogCategory).where(CatalogCategory.code == node["code"]))
                if row is None:
                    row = CatalogCategory(code=node["code"], name=node["name"], parent_code=parent, position=position)
                    self.session.add(row)
                else:
                    row.name, row.parent_code, row.position = node["name"], parent, position
                counts["categories"] += 1
                walk(node.get("children", []), node["code"])

        walk(list(document.get("categories", [])), None)
        self.session.flush()
        for raw in document.get("items", []):
            counts["items"] += 1
            exists = self.session.scalar(select(CatalogItem).where(CatalogItem.code == raw["code"])) is not None
            if exists and not reset:
                counts["kept"] += 1
                continue
            values = {k: raw[k] for k in ITEM_FIELDS if k in raw}
            if "category" in raw and "category_code" not in values:
                values["category_code"] = raw["category"]
            if "approval" in raw and "approval_rule" not in values:
                values["approval_rule"] = raw["approval"]
            values.setdefault("status", ItemStatus.PUBLISHED)
            if exists:
                self.update_item(actor, raw["code"], values)
                counts["reset"] += 1
            else:
                self.create_item(actor, {"code": raw["code"], **values})
                counts["created"] += 1
        return counts

    # -- requesting -----------------------------------------------------------------------------------

    def validate_request(self, item: CatalogItem, data: Mapping[str, Any], coerce_strings: bool = False, *,
                         requester: User) -> dict[str, Any]:
        schema, ui = self.item_form(item)
        if schema is None:
            return {}
        now = self.clock.now()
        # "today" is the UTC date, as every date the desk shows
        return validate_submission(schema, ui, dict(data), {}, coerce_strings=coerce_strings,
                                   today=now.date(), now=now, known_users=self._known_users(requester),
                                   submitter=requester.username)

    def _known_users(self, requester: User) -> Callable[[set[str]], set[str]]:
        """The user names ``requester`` may name in a request form (``"format": "username"``).

        A form that answers "no such user" for one name and takes another tells whoever asks who
        exists. So a requester may name only people they know of already: themselves, the active
        members of their own groups, and the people they are the line manager of. Desk staff
        (agent, process owner, admin), who work for everyone, may name any active user. Any other
        name gets one answer, whether nobody has it, its user is inactive or is beyond what the
        requester may name (app.services.forms: "... is not a user you can name here", with
        "did you mean <their own name>?" for a typo of it)."""
        def known(names: set[str]) -> set[str]:
            # user names ignore letter case in the directory (sign-in, reassign): "RITA" names rita
            query = select(User.username).where(func.lower(User.username).in_({n.lower() for n in names}),
                                                User.active.is_(True))
            if not requester.has_role(*DESK_STAFF_ROLES):
                their_groups = select(user_group.c.group_id).where(user_group.c.user_id == requester.id)
                colleagues = select(user_group.c.user_id).where(user_group.c.group_id.in_(their_groups))
                query = query.where(or_(User.id == requester.id, User.manager_id == requester.id,
                                        User.id.in_(colleagues)))
            found = {name.lower() for name in self.session.scalars(query)}
            return {name for name in names if name.lower() in found}

        return known

    def validate_start(self, user: User, data: dict[str, Any]) -> dict[str, Any]:
        """Start contract of catalog_request through POST /instances: a published item and data its
        request form accepts (the same checks as requesting it from the catalog)."""
        code = data.get("item")
        if not isinstance(code, str) or not code:
            raise ValidationFailed("item is required", details={"fields": {"item": ["is required"]}})
        item = self.get_item(code)
        if item.status != ItemStatus.PUBLISHED:
            raise NotFound(f"no catalog item {code}")
        fields = {k: v for k, v in data.items() if k != "item"}
        return {**self.validate_request(item, fields, requester=user), "item": item.code}

    def request_item(self, user: User, code: str, data: Mapping[str, Any], coerce_strings: bool = False, *,
                     on_behalf_of: Any = None) -> Ticket:
        """Validate ``data`` against the item's request form and start catalog_request for it;
        ``on_behalf_of``: the user name of the colleague it is for (``InstanceService.caller_for``),
        whose request it is (their manager approves it, they confirm receipt)."""
        item = self.get_item(code)
        if item.status != ItemStatus.PUBLISHED:
            raise NotFound(f"no catalog item {code}")
        # Who may not start anything is told so first: the form's answers (who may be named in
        # it) are for requesters only.
        self.instances.require_start(user, REQUEST_PROCESS)
        # the form is filled in by ``user``: the people they may name (staff: anyone) are the form's
        caller, clean = self.instances.caller_and(user, REQUEST_PROCESS, on_behalf_of,
                                                  lambda: self.validate_request(item, data, coerce_strings, requester=user))
        instance = self.instances.start_process(user, REQUEST_PROCESS, {**clean, "item": item.code}, validated=True,
                                                caller=caller)
        ticket = self.records.for_instance(instance.id)
        if ticket is None:
            raise Conflict("the catalog request process declares no record", details={"process_id": REQUEST_PROCESS})
        return ticket
