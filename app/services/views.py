"""Saved views of the record list: a person names the filters and order they look at every day
("my group's open P1s", "breached, oldest first") and opens them with one click, as ServiceNow's
list favorites and Jira Service Management's saved filters.

- **Whose.** Everyone signed in keeps their own (a requester's "my open requests" too); nobody
  sees another person's (404). At most :data:`MAX_VIEWS` each.
- **What.** A name (one line, unique per person whatever the letter case) and the list's query
  string: only the record list page's parameters (:data:`PARAMS`, each within its length, with the
  values the page reads) are kept, in a fixed order; anything else is refused (422 naming
  ``query``), so a view saved today opens the same list tomorrow, and the page marks the view it
  shows. The filters are applied when the view is opened, under the rules
  of who may see which record at that moment: a view holds no records.
- Not audited: a reader's preference, like the language, changes nothing anyone else sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db import serialize_writers
from app.errors import NotFound, ValidationFailed
from app.models import SavedView, User

from .forms import FormMessage, checked_text

#: The record list page's parameters a view keeps, in the order it keeps them, with their longest
#: value (app/web/ticket_pages.py reads the same: a view opens exactly the list it was saved from).
PARAMS: dict[str, int] = {"kind": 32, "status": 64, "priority": 16, "group": 128, "assignee": 128,
                          "requester": 128, "opened_by": 128, "q": 200, "open": 1, "breached": 1, "sort": 32}
#: The orders the page offers (its ``SORTS``); the first is its default, which a view leaves out.
SORTS = ("-opened_at", "opened_at", "-updated_at", "priority", "status", "number", "title")
#: The longest query kept, as stored (percent-encoded: a Chinese character takes nine).
QUERY_MAX = 4000
MAX_VIEWS = 30
NAME_MAX = 80
REQUIRED = "is required"
MUST_BE_TEXT = "must be text"
NAME_TAKEN = "is taken: you have a view of this name"
TOO_MANY = f"you have {MAX_VIEWS} views already: delete one first"
QUERY_TOO_LONG = "is too long to keep as a view"

def unknown_parameter(name: str) -> FormMessage:
    return FormMessage(f"holds {name}, which the record list does not know: use {', '.join(PARAMS)}",
                       "unknown_parameter", value=name, known=", ".join(PARAMS))


def normalised(raw: Any) -> str:
    """``raw`` (a query string) as the record list page reads it, with its parameters only, in
    :data:`PARAMS`' order: the first of a repeated one, empty ones and the default sort left out,
    a kind list without its spaces. ValidationFailed naming ``query`` for an unknown parameter, a
    value too long for its parameter or not one the page reads (``open`` 0 or 1, ``breached`` 1,
    a sort it offers), or a query too long to keep."""
    if not isinstance(raw, str):
        raise ValidationFailed("the query is not valid", details={"fields": {"query": [MUST_BE_TEXT]}})

    def refuse(message: Any) -> ValidationFailed:
        return ValidationFailed("the query is not valid", details={"fields": {"query": [message]}})

    found: dict[str, str] = {}
    for name, value in parse_qsl(raw.strip().lstrip("?"), keep_blank_values=False):
        if name not in PARAMS:
            raise refuse(unknown_parameter(name))
        if name in found:  # the page reads the first of a repeated parameter
            continue
        value = value.strip()
        if name == "kind":
            value = ",".join(kind.strip() for kind in value.split(",") if kind.strip())
        if name == "open" and value not in ("0", "1"):
            raise refuse("open must be 0 or 1")
        if name == "breached" and value != "1":
            raise refuse("breached must be 1")
        if len(value) > PARAMS[name]:
            raise refuse(f"{name} must be at most {PARAMS[name]} characters")
        if name == "sort" and value not in SORTS:
            raise refuse(f"sort must be one of: {', '.join(SORTS)}")
        if value and not (name == "sort" and value == SORTS[0]):
            found[name] = value
    query = urlencode([(name, found[name]) for name in PARAMS if name in found])
    if len(query) > QUERY_MAX:
        raise refuse(QUERY_TOO_LONG)
    return query

class ViewService:
    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def mine(self, user: User) -> list[SavedView]:
        """``user``'s views, by name (letter case ignored)."""
        return list(self.session.scalars(select(SavedView).where(SavedView.user_id == user.id)
                                         .order_by(func.lower(SavedView.name), SavedView.id)))

    def save(self, user: User, values: Mapping[str, Any]) -> SavedView:
        """A new view of ``user`` from ``values``: ``name`` and ``query`` (the list's query string).
        ValidationFailed naming each field that is wrong, a name ``user`` has already, or one
        view too many."""
        errors: dict[str, list[Any]] = {}
        name = checked_text(values, "name", NAME_MAX, errors, one_line=True, required=True)
        try:
            query = normalised(values.get("query", ""))
        except ValidationFailed as err:
            errors.update(err.details["fields"])
            query = ""
        serialize_writers(self.session, f"saved_view:{user.id}")  # one person's saves take turns: at most 30
        mine = self.mine(user)
        if "name" not in errors and any(v.name.lower() == name.lower() for v in mine):
            errors["name"] = [NAME_TAKEN]
        if not errors and len(mine) >= MAX_VIEWS:
            errors["name"] = [TOO_MANY]
        if errors:
            raise ValidationFailed("the view is not valid", details={"fields": errors})
        view = SavedView(user_id=user.id, name=name, query=query, created_at=self.clock.now())
        self.session.add(view)
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:  # the same name saved at the same moment (uq_saved_view_user_name)
            raise ValidationFailed("the view is not valid", details={"fields": {"name": [NAME_TAKEN]}}) from None
        return view

    def delete(self, user: User, view_id: int) -> None:
        """Delete one of ``user``'s views; NotFound for an unknown id and for another person's."""
        view = self.session.get(SavedView, view_id)
        if view is None or view.user_id != user.id:
            raise NotFound(f"no saved view {view_id}", details={"id": view_id})
        self.session.delete(view)
        self.session.flush()
