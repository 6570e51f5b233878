"""Who may start a process, and which start-form fields a starter fills in.

A process owner declares who starts a process in ``<process_id>.access.json``, deployed with the
diagram (``processes/`` beside ``<process_id>.record.json``)::

    {"start_roles": ["agent", "process_owner", "admin"]}

``start_roles``: the roles whose holders may start it, each one of the starter roles (requester,
agent, approver, process_owner, admin); ``[]`` means only diagrams start it (the
``start_process`` service-task operator, which is not checked). A process without the file is
started by every starter role, so a process deployed later needs no file until it is to be
restricted. The file is read when a process starts, by its current content (cached by digest),
not compiled into a version: who may start changes without a new version of the diagram.

Hidden start-form fields (``ui:widget`` hidden: the start page shows nobody) are knobs for the
desk's staff and integrations, e.g. ``auto_close_after``: for anyone else they are read-only, so
their submitted values are ignored and the diagram's defaults apply (``starter_form``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.engine import ACCESS_SUFFIX
from app.engine.library import JsonFileError, load_json_file
from app.errors import ValidationFailed
from app.models import DefinitionFile, User

from . import policy
from .bounded import BoundedCache

START_ROLES_KEY = "start_roles"
_KNOWN_KEYS = frozenset({START_ROLES_KEY})

#: Built once: reused statements keep their cache keys (every start and every page reads them).
_ACCESS_FILE = select(DefinitionFile.sha256, DefinitionFile.content).where(DefinitionFile.name == bindparam("name"))
_ACCESS_FILES = select(DefinitionFile.name, DefinitionFile.sha256, DefinitionFile.content).where(
    DefinitionFile.name.in_(bindparam("names", expanding=True)))


def check_access(name: str, content: bytes, *, deploying: bool = True) -> tuple[str, ...]:
    """The start roles an access file declares.

    Raises ValidationFailed (code ``invalid_definition``, ``details.file`` naming the file, with
    the ``line`` or the ``role`` at fault when there is one) if it is not a JSON object holding
    only ``start_roles``, a list of starter role names (an unknown one is named), or nests deeper
    than any such file (``load_json_file``). A file being deployed (``deploying``) may not write
    a key twice either: JSON would keep the last, so who may start would not be what the file
    seems to say. A file stored before that check (``deploying=False``, read at start) is read
    as it was then.
    """
    def refuse(reason: str, **more: Any) -> ValidationFailed:
        return ValidationFailed(f"{name}: {reason}", code="invalid_definition", details={"file": name, **more})

    try:
        parsed = load_json_file(content, unique_keys=deploying)
    except JsonFileError as err:
        if err.key is not None:
            raise refuse(f"the key {err.key!r} appears twice; write it once", key=err.key) from None
        where = {"line": err.line} if err.line else {}
        raise refuse(f"not a UTF-8 JSON file ({err.reason})", **where) from None
    if not isinstance(parsed, Mapping):
        raise refuse("must hold a JSON object")
    unknown = sorted(set(parsed) - _KNOWN_KEYS)
    if unknown:
        raise refuse(f"unknown key {unknown[0]!r}; an access file holds {START_ROLES_KEY!r}")
    roles = parsed.get(START_ROLES_KEY)
    allowed = [str(role) for role in policy.STARTER_ROLES]
    if not isinstance(roles, list):
        raise refuse(f"{START_ROLES_KEY!r} must be a list of starter roles: {', '.join(allowed)}")
    for role in roles:
        if not isinstance(role, str) or role not in allowed:
            shown = repr(role)[:80] if isinstance(role, str) else json.dumps(role)[:80]
            raise refuse(f"{START_ROLES_KEY!r} names {shown}, which is no starter role; the starter roles are "
                         f"{', '.join(allowed)}", role=role[:128] if isinstance(role, str) else shown)
    return tuple(dict.fromkeys(roles))


class _StartRights:
    """Declared start roles by content digest, shared by every session (few, small)."""

    def __init__(self) -> None:
        self._roles: BoundedCache[str, tuple[str, ...]] = BoundedCache()

    def get(self, session: Session, process_id: str) -> tuple[str, ...] | None:
        """The roles that may start ``process_id``; None if it declares none (every starter role).

        Raises ValidationFailed (code ``invalid_definition``) if the stored file is broken: a
        start is refused rather than let through.
        """
        name = process_id + ACCESS_SUFFIX
        row = session.execute(_ACCESS_FILE, {"name": name}).first()
        return None if row is None else self._roles_of(name, row[0], row[1])

    def get_many(self, session: Session, process_ids: Sequence[str]) -> dict[str, tuple[str, ...] | None]:
        """:meth:`get` of each process in one query; a process whose stored file is broken
        declares ``()`` here (nobody starts it)."""
        names = {process_id + ACCESS_SUFFIX: process_id for process_id in process_ids}
        found: dict[str, tuple[str, ...] | None] = dict.fromkeys(process_ids)
        for name, digest, content in session.execute(_ACCESS_FILES, {"names": sorted(names)}).tuples():
            try:
                found[names[name]] = self._roles_of(name, digest, content)
            except ValidationFailed:
                found[names[name]] = ()
        return found

    def _roles_of(self, name: str, digest: str, content: bytes) -> tuple[str, ...]:
        cached = self._roles.get(digest)
        if cached is not None:
            return cached
        roles = check_access(name, content, deploying=False)  # deploys check it; checked again for files stored otherwise
        self._roles.put(digest, roles)
        return roles


START_RIGHTS = _StartRights()


def starter_form(schema: dict[str, Any], ui_schema: dict[str, Any] | None,
                 user: User) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The start form as ``user`` fills it in: for anyone but staff
    (``policy.sets_hidden_start_fields``), every hidden field is read-only, so the submitted value
    is ignored and the field keeps its default (validate_submission's read-only rule)."""
    if policy.sets_hidden_start_fields(user) or not _has_hidden(schema, ui_schema or {}):
        return schema, ui_schema
    ui = copy.deepcopy(ui_schema or {})
    _hide(schema, ui)
    return schema, ui


def _has_hidden(node: Mapping[str, Any], ui: Mapping[str, Any]) -> bool:
    properties = node.get("properties")
    if not isinstance(properties, Mapping):
        return False
    for name, sub in properties.items():
        sub_ui = ui.get(name)
        sub_ui = sub_ui if isinstance(sub_ui, Mapping) else {}
        if sub_ui.get("ui:widget") == "hidden" or (isinstance(sub, Mapping) and _has_hidden(sub, sub_ui)):
            return True
    return False


def _hide(node: Mapping[str, Any], ui: dict[str, Any]) -> None:
    """Mark every hidden field under ``node`` read-only in ``ui`` (a copy: changed in place)."""
    properties = node.get("properties")
    if not isinstance(properties, Mapping):
        return
    for name, sub in properties.items():
        sub_ui = ui.get(name)
        if not isinstance(sub_ui, dict):
            continue  # no UI of its own: nothing under it is hidden
        if sub_ui.get("ui:widget") == "hidden":
            sub_ui["ui:readonly"] = True
        elif isinstance(sub, Mapping):
            _hide(sub, sub_ui)
