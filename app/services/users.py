"""Users, groups, roles, password login, web sessions and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from app.db import LIKE_ESCAPE, SEARCH_WORDS, like_literal, serialize_writers
from app.errors import Conflict, NotFound, PermissionDenied, Unauthorized, ValidationFailed
from app.languages import language_problem
from app.models import (
    ApiToken,
    Group,
    HumanTask,
    Role,
    TaskStatus,
    Ticket,
    TwoStep,
    User,
    UserRole,
    WebSession,
    user_group,
)

from . import policy
from .audit import AuditLog

_VALID_ROLES = {r.value for r in Role}
#: Who reads the user directory (users, groups, their roles): admins, and auditors who review access.
DIRECTORY_READER_ROLES = (Role.ADMIN, Role.AUDITOR)
#: A new username: ASCII letters, digits and ``. _ @ + -``, starting with a letter or digit. ASCII,
#: so that "any letter case" means the same on SQLite (whose lower() folds only ASCII) and on
#: PostgreSQL; no spaces, commas or slashes, which lists of names (separation of duties) and
#: addresses (/users/<username>) could not carry. Names made before this rule keep working.
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")
#: Names a new user may not take: the API's /users/me is whoever calls it.
RESERVED_USERNAMES = frozenset({"me"})
USERNAME_RULE = "must be 1-128 characters: letters a-z, digits and . _ @ + -, starting with a letter or digit"
MAX_USERNAME = 128


def is_username(name: str) -> bool:
    """Whether ``name`` has the shape of a new user's name (``USERNAME_RULE``): what
    ``create_user`` takes, and what a form's ``"format": "username"`` field takes (forms.py)."""
    return 0 < len(name) <= MAX_USERNAME and USERNAME.fullmatch(name) is not None

#: A group's name is a lane's name in the diagrams: any printable text but a slash (addresses).
GROUP_NAME = re.compile(r"[^/\x00-\x1f\x7f]{1,128}")
GROUP_NAME_RULE = "must be 1-128 characters, without a slash or control characters"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_PASSWORD = 8
#: scrypt and pbkdf2 take any length, but hashing megabytes per sign-in is a denial of service.
MAX_PASSWORD = 1024
# A real hash to compare against when the user does not exist, so timing does not reveal names.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


#: An API token with its user and the user's role and group names, in one statement, by the unique
#: index on the token's hash (rows: roles x groups, a handful). Built once: a reused statement keeps
#: its cache key, which SQLAlchemy would otherwise derive per call.
_TOKEN_WITH_ACCESS = (
    select(ApiToken, User, UserRole.role, Group.name).select_from(ApiToken)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .outerjoin(user_group, user_group.c.user_id == User.id)
    .outerjoin(Group, Group.id == user_group.c.group_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)

#: How old a token's ``last_used_at`` may get before a request writes it again (as WEB_SESSION_TOUCH).
TOKEN_TOUCH = timedelta(minutes=1)
#: The shortest life a sign-in may ask for its token (``expires_in``, seconds).
MIN_TOKEN_SECONDS = 60
MAX_TOKEN_LABEL = 128

#: A web session with its user, by the unique index on the hash of the cookie's session id.
_WEB_SESSION_USER = (
    select(WebSession, User).join(User, User.id == WebSession.user_id)
    .where(WebSession.token_hash == bindparam("token_hash"))
)

#: How old a web session's ``seen_at`` may get before a page view writes it again: a write per
#: page view would cost more than the read, and the idle timeout is minutes.
WEB_SESSION_TOUCH = timedelta(minutes=1)


#: How many leading characters of a session's hash name it in the audit trail: enough to tell a
#: user's sign-in from their sign-out; the hash cannot be turned back into the cookie's id.
_SESSION_REF = 12


def _session_hash(token: str) -> str:
    # The ids are 256 random bits: a plain SHA-256 is enough to keep the table from being cookies.
    return hashlib.sha256(token.encode()).hexdigest()


def user_named(session: Session, username: str) -> User | None:
    """The user named ``username`` in any letter case, or None (by ``uq_user_username_lower``)."""
    return session.scalar(select(User).where(func.lower(User.username) == func.lower(username.strip())))


def person_named(session: Session, text: str) -> User | None:
    """The user ``text`` names: their user name in any letter case, else the e-mail address of
    exactly one active user, in any letter case (a caller on the phone spells out their address);
    None otherwise. As "Forgot your password?" and an agent's "Requested for" read a name."""
    text = text.strip()
    if not text or len(text) > 255:
        return None
    user = user_named(session, text)
    if user is not None or "@" not in text:
        return user
    matches = session.scalars(select(User).where(
        func.lower(User.email) == func.lower(text), User.active.is_(True)).limit(2)).all()
    return matches[0] if len(matches) == 1 else None


def users_with_words(query: Select[Any], q: str | None) -> Select[Any]:
    """``query`` (of users) narrowed to those with each word of ``q`` (the first ``SEARCH_WORDS``)
    in their username, display name or email: any letter case, matched literally."""
    for word in (q or "").lower().split()[:SEARCH_WORDS]:
        pattern = f"%{like_literal(word)}%"
        query = query.where(or_(*(func.lower(column).like(pattern, escape=LIKE_ESCAPE)
                                  for column in (User.username, User.display_name, User.email))))
    return query


def group_members(session: Session, group: str) -> list[tuple[str, str]]:
    """The active members of ``group`` as ``(username, display name)``, by display name then
    username; none for an unknown group. What a form's ``options_from_group:NAME`` offers (its
    ``options_from_groups:FILTER`` offers groups: :func:`offered_groups`), whom a
    group's votes go to (``get_group_members``) and whom a task page suggests for the group's work:
    the members who work the group's queue (``policy.QUEUE_ROLES``), so not a read-only auditor
    (works no task, so a vote of theirs would wait forever) nor a plain requester (a group's work
    is its staff's: see ``policy``'s rules)."""
    workers = select(UserRole.user_id).where(UserRole.role.in_([r.value for r in policy.QUEUE_ROLES]))
    rows = session.execute(
        select(User.username, User.display_name)
        .join(user_group, user_group.c.user_id == User.id)
        .join(Group, Group.id == user_group.c.group_id)
        .where(Group.name == group, User.active.is_(True), User.id.in_(workers))
        .order_by(User.display_name, User.username)).tuples().all()
    return [(username, display or username) for username, display in rows]


#: The filters a form's ``"options_from_groups:FILTER"`` may name (app/services/forms.py checks them
#: at deploy), each the groups :func:`offered_groups` lists for it:
#:
#: * ``with_agents``: the groups with at least one active member who has the agent role, the people
#:   who work records. A group with nobody who works its queue is a dead end for a record's work
#:   (nobody sees or claims it), so it is not offered: a group an admin has just created appears as
#:   soon as it has an agent, and one whose last agent left or was deactivated disappears. A group of
#:   approvers only (a CAB, budget owners) decides, it does not work records; an admin alone is not
#:   the desk's staff either.
GROUP_FILTERS = ("with_agents",)


def offered_groups(session: Session, which: str) -> list[tuple[str, str | None]]:
    """The groups of filter ``which`` (:data:`GROUP_FILTERS`) as ``(name, description)``, by name
    in any letter case; none for an unknown filter. What a form's ``options_from_groups:FILTER``
    offers, when the form is shown and when it is submitted: the directory as it is now."""
    if which != "with_agents":
        return []
    agents = (select(user_group.c.group_id)
              .join(User, User.id == user_group.c.user_id)
              .join(UserRole, UserRole.user_id == User.id)
              .where(User.active.is_(True), UserRole.role == Role.AGENT.value))
    rows = session.execute(select(Group.name, Group.description).where(Group.id.in_(agents))
                           .order_by(func.lower(Group.name), Group.name)).tuples().all()
    return [(name, description) for name, description in rows]


@dataclass
class Deactivation:
    """What deactivating a user did: the user, the open tasks handed back to their queues, the
    ready tasks still assigned to them by name (``assigned``: nobody else may take those, so an
    admin reassigns them, see ``TaskService.reassign``), and whether they were inactive already
    (then nothing was done, and ``assigned`` still lists what waits on them)."""

    user: User
    released: list[HumanTask] = field(default_factory=list)
    assigned: list[HumanTask] = field(default_factory=list)
    already: bool = False


class UserService:
    def __init__(self, session: Session, audit: AuditLog, secret_key: str, token_ttl: int,
                 hash_method: str = "scrypt") -> None:
        self.session = session
        self._hash_method = hash_method
        self.audit = audit
        self._token_key = hashlib.sha256(b"processdesk-api-token:" + secret_key.encode()).digest()
        self._ttl = token_ttl

    # -- reading ------------------------------------------------------------------------------------

    def find(self, username: str) -> User | None:
        """The user named ``username`` in any letter case, or None (:func:`user_named`)."""
        return user_named(self.session, username)

    def active_with_role(self, role: str) -> list[User]:
        """The active users holding ``role``, in id order: whom a notice goes to when nobody
        nearer is there (the admins of an escalation, the keepers of the CMDB)."""
        return list(self.session.scalars(select(User).join(UserRole, UserRole.user_id == User.id)
                                         .where(UserRole.role == role, User.active.is_(True)).order_by(User.id)))

    def get_by_username(self, username: str) -> User:
        """The user named ``username`` in any letter case; NotFound otherwise."""
        user = self.find(username)
        if user is None:
            raise NotFound(f"no user {username}")
        return user

    def require_admin(self, actor: User | None, action: str) -> None:
        """PermissionDenied (audited as a refused attempt) unless ``actor`` is an admin; None is the
        command line or the platform itself, which may."""
        if actor is not None and not actor.has_role(Role.ADMIN):
            self.audit.refuse(actor, action, reason="admin only")
            raise PermissionDenied("only administrators may manage users and groups")

    def require_reader(self, actor: User, action: str) -> None:
        """PermissionDenied (audited) unless ``actor`` is an admin or an auditor."""
        if not actor.has_role(*DIRECTORY_READER_ROLES):
            self.audit.refuse(actor, action, reason="admins and auditors only")
            raise PermissionDenied("only administrators and auditors may read the user directory")

    def list_users(self, actor: User, *, q: str | None = None, role: str | None = None, group: str | None = None,
                   active: bool | None = None, away: bool | None = None, two_step: bool | None = None,
                   page: int = 1, per_page: int = 50) -> tuple[list[User], int]:
        """Users matching every filter given, by username, and how many match in all.

        ``q``: each word (the first ``SEARCH_WORDS``) is in the username, display name or email (any
        case, matched literally); ``role`` and ``group``: holds that role / is in that group (by its
        exact name); ``active``: only active (True) or only deactivated (False) users; ``away``: only
        those out of office now (True: an absence that holds now, app/services/away.py) or only the
        others (False); ``two_step``: only those who sign in with a code (True, app/services/two_step.py)
        or only those who do not (False)."""
        self.require_reader(actor, "list_users")
        query = users_with_words(select(User), q)
        if role:
            query = query.where(select(UserRole.id).where(UserRole.user_id == User.id, UserRole.role == role).exists())
        if group:
            query = query.where(select(user_group.c.user_id).join(Group, Group.id == user_group.c.group_id)
                                .where(user_group.c.user_id == User.id, Group.name == group).exists())
        if active is not None:
            query = query.where(User.active.is_(active))
        if away is not None:
            holds = User.away_at_clause(self.audit.clock.now())
            query = query.where(holds if away else ~holds)
        if two_step is not None:
            on = select(TwoStep.user_id).where(TwoStep.user_id == User.id, TwoStep.confirmed_at.is_not(None)).exists()
            query = query.where(on if two_step else ~on)
        total = int(self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = self.session.scalars(
            query.options(selectinload(User.role_rows), selectinload(User.groups), selectinload(User.manager),
                          selectinload(User.delegate))
            .order_by(func.lower(User.username), User.id).limit(per_page).offset((page - 1) * per_page)).all()
        return list(rows), total

    def get_user(self, actor: User, username: str) -> User:
        """One user, for an admin or an auditor; NotFound when there is none."""
        self.require_reader(actor, "read_user")
        return self.get_by_username(username)

    @staticmethod
    def user_dict(user: User) -> dict[str, Any]:
        """What the API and the pages show of a user: never the password hash."""
        return {"username": user.username, "display_name": user.display_name, "email": user.email,
                "active": user.active, "roles": sorted(user.roles), "groups": sorted(user.group_names),
                "manager": user.manager.username if user.manager is not None else None, "locale": user.locale,
                "created_at": user.created_at,
                # out of office (app/services/away.py): set now or to come; None when no absence is set
                "away": {"from": user.away_from, "until": user.away_until,
                         "delegate": user.delegate.username if user.delegate is not None else None}
                if user.away_until is not None else None}

    # -- creating and changing users ---------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str,
        *,
        groups: Iterable[str] = (),
        roles: Iterable[str] = (),
        display_name: str | None = None,
        email: str | None = None,
        manager: str | None = None,
        locale: str | None = None,
        actor: User | None = None,
    ) -> User:
        """Create a user. ``actor`` None is the command line (or seed data): the groups named are
        created when missing. An admin (``actor``) names groups that exist.

        Raises PermissionDenied (``actor`` is no admin), Conflict ``user_exists`` (the name is taken,
        in any letter case: update that user instead), ValidationFailed naming each bad field."""
        self.require_admin(actor, "create_user")
        username = username.strip()
        wanted_roles, wanted_groups = set(roles), {g.strip() for g in groups}
        problems: dict[str, list[str]] = {}
        if not is_username(username):
            problems["username"] = [USERNAME_RULE]
        elif username.lower() in RESERVED_USERNAMES:
            problems["username"] = [f"{username} is reserved: /api/v1/users/me is the caller's own profile"]
        self._check_password(password, problems)
        self._check_roles(wanted_roles, problems)
        self._check_text(display_name, "display_name", problems)
        self._check_email(email, problems)
        if language_problem(locale):
            problems["locale"] = [str(language_problem(locale))]
        if problems:
            raise ValidationFailed("user data is invalid", details={"fields": problems})
        taken = self.find(username)
        if taken is not None:
            raise Conflict(f"user {taken.username} exists already" + (
                "" if taken.username == username else f" (usernames ignore letter case: {username} is {taken.username})"),
                code="user_exists", details={"fields": {"username": ["is taken"]}, "existing": taken.username})
        group_rows = self._groups(wanted_groups, create=actor is None)
        manager_row = self._manager(manager, None, line=True)
        user = User(username=username, display_name=(display_name or "").strip() or username,
                    email=(email or "").strip() or None, locale=locale, active=True, token_generation=0,
                    password_hash=generate_password_hash(password, method=self._hash_method),
                    created_at=self.audit.clock.now())
        user.groups = group_rows
        user.role_rows = [UserRole(role=r) for r in sorted(wanted_roles)]
        user.manager = manager_row
        self.session.add(user)
        self.session.flush()
        self.audit.record("user_created", actor, actor_name="cli" if actor is None else None, payload={
            "username": username, "display_name": user.display_name, "email_set": user.email is not None,
            "groups": sorted(g.name for g in group_rows), "roles": sorted(wanted_roles),
            "manager": manager_row.username if manager_row else None, **({"locale": locale} if locale else {})})
        return user

    def update_user(self, actor: User | None, username: str, changes: Mapping[str, Any]) -> User:
        """Change what ``changes`` names of a user: ``display_name``, ``email`` (None or "" clears
        it), ``roles`` and ``groups`` (the whole new lists), ``manager`` (a username; None clears it),
        ``active`` (False deactivates, True reactivates: see ``deactivate_user``), ``locale`` (the
        user's language, app/languages.py; None: the site's default). Anything else, the password
        included, stays. Audited as ``user_updated`` with each changed
        field's value before and after (an email only as changed: the chain is append-only).

        Raises PermissionDenied, NotFound, ValidationFailed naming each bad field, Conflict
        ``last_admin`` (the change would leave no active admin)."""
        self.require_admin(actor, "update_user")
        user = self.get_by_username(username)
        problems: dict[str, list[str]] = {}
        if "display_name" in changes:
            self._check_text(changes["display_name"], "display_name", problems, required=True)
        if "email" in changes:
            self._check_email(changes["email"], problems)
        if "locale" in changes and language_problem(changes["locale"]):
            problems["locale"] = [str(language_problem(changes["locale"]))]
        wanted_roles = set(changes["roles"]) if changes.get("roles") is not None else None
        if wanted_roles is not None:
            self._check_roles(wanted_roles, problems)
        if problems:
            raise ValidationFailed("user data is invalid", details={"fields": problems})
        group_rows = (self._groups({g.strip() for g in changes["groups"]}, create=actor is None)
                      if changes.get("groups") is not None else None)
        manager_row = self._manager(changes["manager"], user, line=True) if "manager" in changes else user.manager
        stays_admin = Role.ADMIN in (wanted_roles if wanted_roles is not None else user.roles)
        stays_active = user.active if changes.get("active") is None else bool(changes["active"])
        joined = sorted({g.name for g in group_rows or []} - set(user.group_names))
        if joined and not stays_active:
            # a leaver gains no queue (as add_member refuses); the groups they had stay theirs
            raise ValidationFailed("the user is deactivated", details={"fields": {"groups": [
                f"{user.username} is deactivated: reactivate them before adding groups ({', '.join(joined)})"]}})
        if user.active and Role.ADMIN in user.roles and not (stays_admin and stays_active):
            self._keep_an_admin(user, "removing the admin role from" if stays_active else "deactivating")
        diff: dict[str, dict[str, Any]] = {}

        def note(field: str, before: Any, after: Any) -> None:
            if before != after:
                diff[field] = {"before": before, "after": after}

        if "display_name" in changes:
            new_name = str(changes["display_name"]).strip()
            note("display_name", user.display_name, new_name)
            user.display_name = new_name
        if "email" in changes:
            new_email = (changes["email"] or "").strip() or None
            if new_email != user.email:
                diff["email"] = {"changed": True, "set": new_email is not None}
            user.email = new_email
        if wanted_roles is not None:
            note("roles", sorted(user.roles), sorted(wanted_roles))
            user.role_rows = [r for r in user.role_rows if r.role in wanted_roles] + [
                UserRole(role=r) for r in sorted(wanted_roles - user.roles)]
        if group_rows is not None:
            note("groups", sorted(user.group_names), sorted(g.name for g in group_rows))
            user.groups = group_rows
        if "manager" in changes:
            note("manager", user.manager.username if user.manager else None,
                 manager_row.username if manager_row else None)
            user.manager = manager_row
        if "locale" in changes:
            note("locale", user.locale, changes["locale"])
            user.locale = changes["locale"]
        self.session.flush()
        if diff:
            self.audit.record("user_updated", actor, actor_name="cli" if actor is None else None,
                              payload={"username": user.username, "changes": diff})
        if user.active and ("groups" in diff or "roles" in diff):
            self._release_claims(actor, user, reason="groups_changed" if "groups" in diff else "roles_changed",
                                 unworkable_only=True)
        if "active" in changes and changes["active"] is not None and bool(changes["active"]) != user.active:
            if changes["active"]:
                self.reactivate_user(actor, user.username)
            else:
                self.deactivate_user(actor, user.username)
        return user

    def deactivate_user(self, actor: User | None, username: str) -> Deactivation:
        """A leaver: the user can no longer sign in, their API tokens stop working (``token_generation``
        moves on), their web sessions end (reason ``deactivated``), and the open tasks they had
        claimed go back to their queues (each audited ``task_unclaimed``). Their records, history,
        groups and roles stay, so reactivating restores them. Deactivating an inactive user does
        nothing.

        Tasks assigned to them by name (assignedUserVar: a requester's confirmation, an approval
        of their line manager's) cannot go back to a queue: they stay, and are returned
        (``assigned``) and audited (``assigned_tasks``, when there are any) so that an admin
        reassigns them to someone who may do them.

        Raises PermissionDenied, NotFound, Conflict ``own_account`` (an admin deactivating
        themselves) or ``last_admin`` (the last active admin)."""
        self.require_admin(actor, "deactivate_user")
        user = self._locked(self.get_by_username(username))
        if not user.active:
            return Deactivation(user, [], self._assigned_tasks(user), already=True)
        if actor is not None and actor.id == user.id:
            raise Conflict("you cannot deactivate your own account; ask another administrator",
                           code="own_account", details={"username": user.username})
        if Role.ADMIN in user.roles:
            self._keep_an_admin(user, "deactivating")
        user.active = False
        user.token_generation += 1
        self.end_web_sessions(user, "deactivated")
        released = self._release_claims(actor, user)
        self.session.flush()
        assigned = self._assigned_tasks(user)
        payload: dict[str, Any] = {"username": user.username, "released_tasks": [t.id for t in released]}
        if assigned:  # the key only when some wait on them: most leavers have none
            payload["assigned_tasks"] = [t.id for t in assigned]
        self.audit.record("user_deactivated", actor, actor_name="cli" if actor is None else None, payload=payload)
        return Deactivation(user, released, assigned)

    def tasks_waiting_on(self, actor: User, username: str) -> list[HumanTask]:
        """The ready tasks assigned to ``username`` by name (admins and auditors): what waits on a
        deactivated user until an admin reassigns it."""
        self.require_reader(actor, "read_user")
        return self._assigned_tasks(self.get_by_username(username))

    def task_refs(self, tasks: Iterable[HumanTask]) -> list[dict[str, Any]]:
        """What the API and the pages show of tasks waiting on a user: the task's id, name, BPMN id,
        instance, process (the pages say the name in their language by it) and its record's number (None without a record), in one query for the numbers."""
        tasks = list(tasks)
        numbers = dict(self.session.execute(
            select(Ticket.instance_id, Ticket.number).where(Ticket.instance_id.in_({t.instance_id for t in tasks}))
        ).tuples().all()) if tasks else {}
        return [{"id": t.id, "name": t.name, "bpmn_id": t.bpmn_id, "instance_id": t.instance_id,
                 "process_id": t.process_id, "record": numbers.get(t.instance_id)} for t in tasks]

    def _assigned_tasks(self, user: User) -> list[HumanTask]:
        """The ready tasks assigned to ``user`` by name, by id. The name as the task holds it, as
        ``policy.is_candidate`` compares it (by the ``human_task.assigned_user`` index)."""
        return list(self.session.scalars(select(HumanTask).where(
            HumanTask.assigned_user == user.username, HumanTask.state == TaskStatus.READY).order_by(HumanTask.id)))

    def reactivate_user(self, actor: User | None, username: str) -> User:
        """Let a deactivated user sign in again (with the password they had; tokens issued before the
        deactivation stay revoked). Reactivating an active user does nothing."""
        self.require_admin(actor, "reactivate_user")
        user = self.get_by_username(username)
        if user.active:
            return user
        user.active = True
        self.session.flush()
        self.audit.record("user_reactivated", actor, actor_name="cli" if actor is None else None,
                          payload={"username": user.username})
        return user

    def reset_password(self, actor: User | None, username: str, password: str) -> User:
        """An administrator sets a new password: the user's API tokens and web sessions end (reason
        ``password_changed``). Audited as ``user_password_reset`` (without the password)."""
        self.require_admin(actor, "reset_password")
        user = self._locked(self.get_by_username(username))
        problems: dict[str, list[str]] = {}
        self._check_password(password, problems)
        if problems:
            raise ValidationFailed("the password is invalid", details={"fields": problems})
        user.password_hash = generate_password_hash(password, method=self._hash_method)
        user.token_generation += 1
        self.end_web_sessions(user, "password_changed")
        self.session.flush()
        self.audit.record("user_password_reset", actor, actor_name="cli" if actor is None else None,
                          payload={"username": user.username})
        return user

    def change_own_password(self, user: User, current_password: Any, new_password: Any) -> User:
        """The signed-in ``user`` changes their own password, proving it with the current one.

        The new one follows the rules of ``reset_password`` and must differ from the current one.
        Then the user's API tokens end (``token_generation`` moves on: an API caller needs a fresh
        token, which the API answers with) and so do all their web sessions (reason
        ``password_changed``): the page making the change signs its user in again with a new
        session, so that whoever held the old cookie is out too. The user's row is locked first, so
        two changes (or a change and an admin's reset) take turns: the second checks the current
        password against the first one's result. Audited as ``user_password_changed`` (without
        either password).

        Raises ValidationFailed naming ``current_password`` (wrong: also audited as a refused
        attempt, which the edges count against the sign-in limit) and/or ``new_password``;
        Unauthorized when the user is deactivated."""
        user = self._locked(user)
        if not user.active:
            raise Unauthorized("the account is deactivated")
        problems: dict[str, list[str]] = {}
        # Sign-in's check (werkzeug's constant-time hash comparison); an over-long text is wrong
        # without hashing it (hashing megabytes is a denial of service).
        current_ok = (isinstance(current_password, str) and len(current_password) <= MAX_PASSWORD
                      and check_password_hash(user.password_hash, current_password))
        if not current_ok:
            problems["current_password"] = ["is not your current password"]
            self.audit.refuse(user, "change_own_password", reason="wrong current password")
        rules: dict[str, list[str]] = {}
        self._check_password(new_password, rules)
        if rules:
            problems["new_password"] = rules["password"]
        elif current_ok and new_password == current_password:
            problems["new_password"] = ["must differ from the current password"]
        if problems:
            raise ValidationFailed("the password was not changed", details={"fields": problems})
        user.password_hash = generate_password_hash(new_password, method=self._hash_method)
        user.token_generation += 1
        self.end_web_sessions(user, "password_changed")
        self.session.flush()
        self.audit.record("user_password_changed", user, payload={"username": user.username})
        return user

    def set_forgotten_password(self, user: User, new_password: Any, *, reason: str = "password_reset") -> User:
        """Set ``user``'s password without the current one: the caller has proven the right to by
        other means (a password reset link, app/services/password_reset.py). The rules are those
        of ``reset_password``; the user's API tokens and all their web sessions end (``reason``).
        Not audited here: the caller records why it was allowed.

        Raises ValidationFailed naming ``new_password``; Unauthorized when the user is deactivated."""
        user = self._locked(user)
        if not user.active:
            raise Unauthorized("the account is deactivated")
        rules: dict[str, list[str]] = {}
        self._check_password(new_password, rules)
        if rules:
            raise ValidationFailed("the password was not changed", details={"fields": {"new_password": rules["password"]}})
        user.password_hash = generate_password_hash(new_password, method=self._hash_method)
        user.token_generation += 1
        self.end_web_sessions(user, reason)
        self.session.flush()
        return user

    def _locked(self, user: User) -> User:
        """``user``'s row, read again and locked until the transaction ends (PostgreSQL; SQLite's
        writers take turns anyway): what changes their password or token generation starts from
        the committed state, not from a read another change has overtaken."""
        return self.session.get(User, user.id, with_for_update=True, populate_existing=True) or user

    def set_manager(self, username: str, manager: str | None) -> User:
        """Record who approves for ``username`` as line manager (catalog approvals); nothing (and no
        audit event) when that is already so."""
        user = self.get_by_username(username)
        chosen = self.get_by_username(manager) if manager else None
        if user.manager_id != (chosen.id if chosen else None):
            user.manager = chosen
            self.session.flush()
            self.audit.record("user_manager_set", None, payload={"username": user.username,
                                                                 "manager": chosen.username if chosen else None},
                              actor_name="cli")
        return user

    def _release_claims(self, actor: User | None, user: User, *, reason: str = "user_deactivated",
                        unworkable_only: bool = False) -> list[HumanTask]:
        """Hand every open task ``user`` claimed back to its queue, as an admin's unclaim does;
        ``unworkable_only``: only those the user may no longer work on (``policy.may_work_task``),
        after their groups or roles changed: a claim they could not complete would hold the task
        out of its queue (its group's other members no longer see it there) for nothing."""
        tasks = self.session.scalars(select(HumanTask).where(
            HumanTask.claimed_by_id == user.id, HumanTask.state == TaskStatus.READY).order_by(HumanTask.id)).all()
        if unworkable_only:
            user.__dict__.pop("_access_names", None)  # read at sign-in: judge by the changed groups and roles
            tasks = [task for task in tasks if not policy.may_work_task(user, task, task.instance)[0]]
        now = self.audit.clock.now()
        for task in tasks:
            task.claimed_by = None
            # bumps the instance's lock version: a completion that read the old claim loses with 409
            task.instance.updated_at = now
            self.audit.record("task_unclaimed", actor, instance_id=task.instance_id, task_id=task.id,
                              actor_name="cli" if actor is None else None,
                              payload={"previous_claimant_id": user.id, "previous_claimant": user.username,
                                       "reason": reason})
        return list(tasks)

    def _keep_an_admin(self, user: User, doing: str) -> None:
        """Conflict ``last_admin`` unless an active admin other than ``user`` remains. Such changes
        take turns (``serialize_writers``) until their transaction ends: two admins removing each
        other's role at once touch different rows, so row locks alone let both through and leave
        no admin; the second now counts after the first has committed."""
        serialize_writers(self.session, "users.admins")
        others = self.session.scalars(
            select(User.id).join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == Role.ADMIN, User.active.is_(True), User.id != user.id)).all()
        if not others:
            raise Conflict(f"{doing} {user.username} would leave no active administrator; make someone else an "
                           "admin first", code="last_admin", details={"username": user.username})

    # -- groups -------------------------------------------------------------------------------------

    def list_groups(self, actor: User, q: str | None = None) -> list[tuple[Group, int]]:
        """Every group (or those whose name or description holds each word of ``q``), by name, with
        how many active members each has."""
        self.require_reader(actor, "list_groups")
        members = (select(func.count()).select_from(user_group).join(User, User.id == user_group.c.user_id)
                   .where(user_group.c.group_id == Group.id, User.active.is_(True)).scalar_subquery())
        query = select(Group, members).options(selectinload(Group.manager)).order_by(Group.name)
        for word in (q or "").lower().split()[:SEARCH_WORDS]:
            pattern = f"%{like_literal(word)}%"
            query = query.where(or_(func.lower(Group.name).like(pattern, escape=LIKE_ESCAPE),
                                    func.lower(Group.description).like(pattern, escape=LIKE_ESCAPE)))
        return [(group, int(count or 0)) for group, count in self.session.execute(query).tuples().all()]

    def get_group(self, actor: User, name: str) -> Group:
        self.require_reader(actor, "read_group")
        return self._group(name)

    @staticmethod
    def group_dict(group: Group, *, members: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": group.name, "description": group.description,
                               "manager": group.manager.username if group.manager is not None else None,
                               "created_at": group.created_at}
        if members:
            out["members"] = [{"username": m.username, "display_name": m.display_name, "active": m.active}
                              for m in sorted(group.members, key=lambda m: m.username.lower())]
        return out

    def create_group(self, actor: User | None, name: str, *, description: str | None = None,
                     manager: str | None = None) -> Group:
        """A new group (a lane's name is a group's name). Raises Conflict ``group_exists`` (also for a
        name differing only in case: lanes would not tell them apart for people), ValidationFailed."""
        self.require_admin(actor, "create_group")
        name = (name or "").strip()
        problems: dict[str, list[str]] = {}
        if not GROUP_NAME.fullmatch(name):
            problems["name"] = [GROUP_NAME_RULE]
        self._check_text(description, "description", problems)
        if problems:
            raise ValidationFailed("group data is invalid", details={"fields": problems})
        taken = self.session.scalar(select(Group).where(func.lower(Group.name) == func.lower(name)))
        if taken is not None:
            raise Conflict(f"group {taken.name} exists already", code="group_exists",
                           details={"fields": {"name": ["is taken"]}, "existing": taken.name})
        group = Group(name=name, description=(description or "").strip() or None, manager=self._manager(manager, None),
                      created_at=self.audit.clock.now())
        self.session.add(group)
        self.session.flush()
        self.audit.record("group_created", actor, actor_name="cli" if actor is None else None, payload={
            "group": name, "description": group.description,
            "manager": group.manager.username if group.manager is not None else None})
        return group

    def update_group(self, actor: User | None, name: str, changes: Mapping[str, Any]) -> Group:
        """Change a group's ``description`` and ``manager`` (a username, told of its SLA breaches; None
        clears it). The name stays: it is what the processes' lanes say."""
        self.require_admin(actor, "update_group")
        group = self._group(name)
        problems: dict[str, list[str]] = {}
        if "description" in changes:
            self._check_text(changes["description"], "description", problems)
        if problems:
            raise ValidationFailed("group data is invalid", details={"fields": problems})
        diff: dict[str, dict[str, Any]] = {}
        if "description" in changes:
            new = (changes["description"] or "").strip() or None
            if new != group.description:
                diff["description"] = {"before": group.description, "after": new}
            group.description = new
        if "manager" in changes:
            chosen = self._manager(changes["manager"], None)
            before = group.manager.username if group.manager else None
            if before != (chosen.username if chosen else None):
                diff["manager"] = {"before": before, "after": chosen.username if chosen else None}
            group.manager = chosen
        self.session.flush()
        if diff:
            self.audit.record("group_updated", actor, actor_name="cli" if actor is None else None,
                              payload={"group": group.name, "changes": diff})
        return group

    def add_member(self, actor: User | None, name: str, username: str) -> Group:
        """Put a user in a group (nothing if they are in it already). A deactivated user is
        refused (ValidationFailed naming ``username``): a leaver gains no queue (QA: the group
        then listed them among its members while its member count left them out)."""
        self.require_admin(actor, "add_group_member")
        group = self._group(name)
        user = self._member(username)
        if user not in group.members and not user.active:
            raise ValidationFailed("the user is deactivated", details={"fields": {"username": [
                f"{user.username} is deactivated: reactivate them first"]}})
        if user not in group.members:
            group.members.append(user)
            self.session.flush()
            self.audit.record("group_member_added", actor, actor_name="cli" if actor is None else None,
                              payload={"group": group.name, "username": user.username})
        return group

    def remove_member(self, actor: User | None, name: str, username: str) -> Group:
        """Take a user out of a group (nothing if they are not in it)."""
        self.require_admin(actor, "remove_group_member")
        group = self._group(name)
        user = self._member(username)
        if user in group.members:
            group.members.remove(user)
            self.session.flush()
            self.audit.record("group_member_removed", actor, actor_name="cli" if actor is None else None,
                              payload={"group": group.name, "username": user.username})
            self._release_claims(actor, user, reason="left_group", unworkable_only=True)
        return group

    def group_names(self) -> list[str]:
        """Every group's name, for the pages' pickers."""
        return list(self.session.scalars(select(Group.name).order_by(Group.name)))

    def ensure_group(self, name: str) -> Group:
        """The group named ``name`` in any letter case (keeping the spelling it was created with:
        ``--group servicedesk`` joins ServiceDesk), created (and audited as ``group_created`` by the
        command line) when there is none: what ``flask users create --group`` and the demo seed
        name. A second group differing only in case could not be stored (``uq_group_name_lower``)."""
        name = name.strip()
        if not name:
            raise ValidationFailed("group name is empty", details={"fields": {"group": ["is required"]}})
        group = self.find_group(name)
        if group is None:
            group = Group(name=name, created_at=self.audit.clock.now())
            self.session.add(group)
            self.session.flush()
            self.audit.record("group_created", None, actor_name="cli",
                              payload={"group": name, "description": None, "manager": None})
        return group

    # -- checks -------------------------------------------------------------------------------------

    def find_group(self, name: str) -> Group | None:
        """The group named ``name`` in any letter case, or None (by ``uq_group_name_lower``).

        Group names are unique regardless of case, as the database folds it (SQLite's lower()
        folds ASCII letters only), so an address such as /api/v1/groups/servicedesk reaches
        ServiceDesk; what is shown and stored is always the group's own spelling. The diagrams'
        lanes still name a group exactly (``policy.is_candidate``)."""
        return self.session.scalar(select(Group).where(func.lower(Group.name) == func.lower(name.strip())))

    def _group(self, name: str) -> Group:
        group = self.find_group(name or "")
        if group is None:
            raise NotFound(f"no group {name}")
        return group

    def _member(self, username: str) -> User:
        user = self.find(username or "")
        if user is None:
            raise ValidationFailed(f"no user {username}", details={"fields": {"username": [f"no user {username}"]}})
        return user

    def _groups(self, names: set[str], *, create: bool) -> list[Group]:
        """The groups named: created when missing with ``create``, else ValidationFailed naming
        ``groups`` and the unknown ones."""
        rows: dict[int, Group] = {}  # "ServiceDesk" and "servicedesk" are one group, joined once
        if create:
            for name in sorted(names):
                group = self.ensure_group(name)
                rows.setdefault(group.id, group)
            return list(rows.values())
        # each name as the database folds it (find_group: the index's lower()), not as Python does:
        # SQLite folds ASCII letters only, so "Équipe" and "équipe" may be two groups there
        unknown: list[str] = []
        for name in sorted(names):
            found = self.find_group(name)
            if found is None:
                unknown.append(name)
            else:
                rows.setdefault(found.id, found)
        if unknown:
            raise ValidationFailed("unknown group", details={"fields": {"groups": [
                f"no group {', '.join(unknown)}: create it first"]}})
        return list(rows.values())

    def _manager(self, username: str | None, user: User | None, *, line: bool = False) -> User | None:
        """The user named as a manager (None for none); ValidationFailed naming ``manager``.
        ``line``: a user's line manager, who approves their catalog requests, so not a read-only
        auditor (``policy.is_read_only``: works no task). A group's manager is only told of breaches."""
        if username is None or not str(username).strip():
            return None
        manager = self.find(str(username))
        if manager is None:
            raise ValidationFailed("unknown manager", details={"fields": {"manager": [f"no user {username}"]}})
        if user is not None and manager.id == user.id:
            raise ValidationFailed("a user is not their own manager",
                                   details={"fields": {"manager": ["a user cannot be their own manager"]}})
        if line and policy.is_read_only(manager):
            raise ValidationFailed("an auditor approves nothing", details={"fields": {"manager": [
                f"{manager.username} is an auditor with no other role and approves nothing"]}})
        return manager

    @staticmethod
    def _check_password(password: Any, problems: dict[str, list[str]]) -> None:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            problems["password"] = [f"must be at least {MIN_PASSWORD} characters"]
        elif len(password) > MAX_PASSWORD:
            problems["password"] = [f"must be at most {MAX_PASSWORD} characters"]

    @staticmethod
    def _check_roles(roles: set[str], problems: dict[str, list[str]]) -> None:
        bad_roles = sorted(str(r) for r in roles - _VALID_ROLES)
        if bad_roles:
            problems["roles"] = [f"unknown role(s): {', '.join(bad_roles)}; known: {', '.join(sorted(_VALID_ROLES))}"]

    @staticmethod
    def _check_text(value: Any, field: str, problems: dict[str, list[str]], *, required: bool = False) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str) or (required and not value.strip()):
            problems[field] = ["is required"]
        elif len(value.strip()) > 255:
            problems[field] = ["must be at most 255 characters"]

    @staticmethod
    def _check_email(value: Any, problems: dict[str, list[str]]) -> None:
        if value is None or value == "":
            return
        if not isinstance(value, str) or len(value.strip()) > 255 or not EMAIL.fullmatch(value.strip()):
            problems["email"] = ["is not an email address"]

    def set_locale(self, user: User, locale: str | None) -> User:
        """Remember the language the user chose for the pages and the notices they are sent (None:
        the pages follow the browser, the notices the site's ``DEFAULT_LANGUAGE``).

        Raises ValidationFailed naming ``locale`` for a language the desk does not speak."""
        problem = language_problem(locale)
        if problem:
            raise ValidationFailed(f"locale {problem}", details={"fields": {"locale": [problem]}})
        if user.locale != locale:
            user.locale = locale
            self.audit.record("user_locale_changed", user, payload={"locale": locale})
        return user

    def usernames(self, ids: Iterable[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        rows = self.session.execute(select(User.id, User.username).where(User.id.in_(wanted)))
        return {uid: name for uid, name in rows}

    # -- authentication ---------------------------------------------------------------------------

    def check_password(self, username: str, password: str, *, address: str | None = None) -> User:
        """Return the active user with these credentials (the username in any letter case); raise
        Unauthorized (and audit it, with the client ``address``) otherwise."""
        user = self.find(username) if username.strip() else None
        ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not ok or not user.active:
            self.audit.refuse(None, "login", reason="bad credentials", username=username[:128], address=address)
            raise Unauthorized("unknown user or wrong password")
        return user

    # -- web sessions -----------------------------------------------------------------------------

    def start_web_session(self, user: User, *, forget_after_seconds: float, address: str | None = None) -> str:
        """Open a web session for ``user`` and return its id, for the cookie only (the row keeps
        its hash). The user's sessions not seen for ``forget_after_seconds`` (past every timeout)
        are deleted on the way, so the table keeps only each user's recent sign-ins. Audited as
        ``signed_in`` with the client ``address``; the session is known in the audit trail by the
        first 12 characters of its hash, never by its id."""
        now = self.audit.clock.now()
        self.session.execute(
            delete(WebSession)
            .where(WebSession.user_id == user.id, WebSession.seen_at < now - timedelta(seconds=forget_after_seconds))
            .execution_options(synchronize_session=False))
        token = secrets.token_urlsafe(32)
        token_hash = _session_hash(token)
        self.session.add(WebSession(token_hash=token_hash, user_id=user.id,
                                    token_generation=user.token_generation, created_at=now, seen_at=now))
        self.session.flush()
        self.audit.record("signed_in", user, payload={"channel": "web", "address": address,
                                                      "session": token_hash[:_SESSION_REF]})
        return token

    def user_for_web_session(self, token: str, *, idle_seconds: float, absolute_seconds: float) -> User:
        """The user of a live web session, noting the activity (at most once a minute).

        Raises Unauthorized when the session does not exist or has ended (signed out, password
        changed, user deactivated), and Unauthorized with code ``session_expired`` when it is past
        the absolute or the idle timeout."""
        now = self.audit.clock.now()
        row = self.session.execute(_WEB_SESSION_USER, {"token_hash": _session_hash(token)}).first()
        if row is None:
            raise Unauthorized("no such session")
        web, user = row
        if web.ended_at is not None or not user.active or user.token_generation != web.token_generation:
            raise Unauthorized("the session has ended")
        # seen_at lags the last page view by up to WEB_SESSION_TOUCH; the cookie's own times are exact.
        idle = now - web.seen_at - WEB_SESSION_TOUCH
        if now - web.created_at > timedelta(seconds=absolute_seconds) or idle > timedelta(seconds=idle_seconds):
            raise Unauthorized("the session has expired", code="session_expired")
        if now - web.seen_at >= WEB_SESSION_TOUCH:
            web.seen_at = now
        return user

    def end_web_session(self, token: str, reason: str = "signed_out") -> None:
        """End the web session with this id; nothing if it has ended already or never existed."""
        self._end_web_sessions(WebSession.token_hash == _session_hash(token), reason)

    def end_web_sessions(self, user: User, reason: str) -> None:
        """End every live web session of ``user`` (a password change). A deactivated user's sessions
        are refused on their next page view by ``user_for_web_session`` in any case."""
        self._end_web_sessions(WebSession.user_id == user.id, reason)

    def _end_web_sessions(self, which: Any, reason: str) -> None:
        """End the live sessions ``which`` selects; each one ended is audited as ``signed_out`` with
        ``reason`` (signed_out, replaced, expired, password_changed, password_reset, deactivated)."""
        ended = self.session.execute(
            update(WebSession).where(which, WebSession.ended_at.is_(None))
            .values(ended_at=self.audit.clock.now(), end_reason=reason)
            .returning(WebSession.user_id, WebSession.token_hash)
            .execution_options(synchronize_session=False)).all()
        if not ended:
            return
        users = {u.id: u for u in self.session.scalars(select(User).where(User.id.in_({r[0] for r in ended})))}
        for user_id, token_hash in ended:
            self.audit.record("signed_out", users.get(user_id),
                              payload={"channel": "web", "reason": reason, "session": token_hash[:_SESSION_REF]})

    # -- API tokens -------------------------------------------------------------------------------

    def _token_hash(self, token: str) -> str:
        return hmac.new(self._token_key, token.encode(), hashlib.sha256).hexdigest()

    def issue_token(self, user: User, *, address: str | None = None, label: str | None = None,
                    expires_in: int | None = None) -> dict[str, Any]:
        """A new API token for ``user``, named ``label`` (optional, at most 128 characters) and living
        ``expires_in`` seconds (optional: 60 up to the configured lifetime, which is the default).
        The answer holds the token's secret, which nothing stores (the row keeps its keyed hash):
        its only sight. Audited as ``token_issued`` with the token's id and the client ``address``.
        Raises ValidationFailed naming ``label`` or ``expires_in``."""
        problems: dict[str, list[str]] = {}
        label = label.strip() if isinstance(label, str) else None
        if label and len(label) > MAX_TOKEN_LABEL:
            problems["label"] = [f"must be at most {MAX_TOKEN_LABEL} characters"]
        seconds = self._ttl if expires_in is None else expires_in
        if expires_in is not None and (not isinstance(expires_in, int) or isinstance(expires_in, bool)
                                       or not MIN_TOKEN_SECONDS <= expires_in <= self._ttl):
            problems["expires_in"] = [f"must be a whole number of seconds from {MIN_TOKEN_SECONDS} to {self._ttl}"]
        if problems:
            raise ValidationFailed("the token was not issued", details={"fields": problems})
        now = self.audit.clock.now()
        # The user's tokens that can no longer work are forgotten on the way (as their old web
        # sessions are at sign-in), so the table keeps each user's live tokens and recent ones only;
        # what happened to each is in the audit trail.
        self.session.execute(
            delete(ApiToken)
            .where(ApiToken.user_id == user.id,
                   or_(ApiToken.expires_at <= now, ApiToken.created_at < now - timedelta(seconds=self._ttl),
                       ApiToken.revoked_at.is_not(None), ApiToken.token_generation != user.token_generation))
            .execution_options(synchronize_session=False))
        secret = secrets.token_urlsafe(32)
        row = ApiToken(token_hash=self._token_hash(secret), user_id=user.id, label=label or None,
                       token_generation=user.token_generation, created_at=now,
                       expires_at=now + timedelta(seconds=seconds))
        self.session.add(row)
        self.session.flush()
        payload: dict[str, Any] = {"channel": "api", "token_id": row.id}
        if address:
            payload["address"] = address
        self.audit.record("token_issued", user, payload=payload)
        return {"token": secret, "token_type": "Bearer", "expires_in": seconds, "id": row.id,
                "label": row.label, "expires_at": row.expires_at}

    def user_for_token(self, token: str) -> User:
        """Verify a bearer token: a live row (not revoked, not expired), its user active and their
        tokens not ended since (``token_generation``). Notes the use (at most once a minute:
        ``TOKEN_TOUCH``; the caller's unit of work writes it). The token's id is the user's
        ``current_token_id`` for this request. Raises Unauthorized (code ``token_expired`` for an
        expired one)."""
        now = self.audit.clock.now()
        rows = self.session.execute(_TOKEN_WITH_ACCESS, {"token_hash": self._token_hash(token)}).all()
        if not rows:
            raise Unauthorized("invalid token")
        row, user = rows[0][0], rows[0][1]
        if row.revoked_at is not None or not user.active or user.token_generation != row.token_generation:
            raise Unauthorized("invalid token")
        if now >= row.expires_at or now - row.created_at > timedelta(seconds=self._ttl):
            raise Unauthorized("token expired", code="token_expired")
        if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH:
            row.last_used_at = now
        # Every request checks the caller's roles and groups: their names come with the user
        # (loading the two collections as ORM rows costs several times more).
        roles = {role for _token, _user, role, _group in rows if role is not None}
        groups = {group for _token, _user, _role, group in rows if group is not None}
        user.know_access(roles, groups)
        user.know_token(row.id)
        return user

    def addressed(self, actor: User, username: str, action: str, *, admin: bool) -> User:
        """Whose things (API tokens, absence) ``username`` names for ``actor``: ``me`` (exactly) or
        their own name (any letter case) is the caller; anyone else's are an admin's to change
        (``admin``) and a directory reader's to read. PermissionDenied otherwise (audited)."""
        if username == "me" or username.strip().lower() == actor.username.lower():
            return actor
        if admin:
            self.require_admin(actor, action)
        else:
            self.require_reader(actor, action)
        return self.get_by_username(username)

    def _live_tokens(self, owner: User) -> Any:
        now = self.audit.clock.now()
        return select(ApiToken).where(
            ApiToken.user_id == owner.id, ApiToken.revoked_at.is_(None), ApiToken.token_generation == owner.token_generation,
            ApiToken.expires_at > now, ApiToken.created_at >= now - timedelta(seconds=self._ttl))

    def list_tokens(self, actor: User, username: str) -> list[ApiToken]:
        """The live API tokens of ``username`` (``me``: the caller's own; anyone else's for an
        admin or an auditor, PermissionDenied otherwise, NotFound for no such user), newest first:
        revoked, expired and ended ones are left out. Never a secret: the rows hold none."""
        owner = self.addressed(actor, username, "list_tokens", admin=False)
        return list(self.session.scalars(self._live_tokens(owner).order_by(ApiToken.created_at.desc(),
                                                                           ApiToken.id.desc())))

    def revoke_token(self, actor: User, username: str, token_id: int) -> ApiToken:
        """Revoke the live token ``token_id`` of ``username`` (``me``: the caller's own, the one in
        use included; anyone else's for an admin, PermissionDenied otherwise): its next request
        answers 401. Audited as ``token_revoked`` (the token's id and label, whose it was). Raises
        NotFound (audited as a refused attempt) for an id that is no live token of that user, so an
        id of someone else's token is as unknown as one nobody has."""
        owner = self.addressed(actor, username, "revoke_token", admin=True)
        row = self.session.scalar(self._live_tokens(owner).where(ApiToken.id == token_id).with_for_update())
        if row is None:
            self.audit.refuse(actor, "revoke_token", reason="no live token of that user", token_id=token_id,
                              username=owner.username)
            raise NotFound(f"no token {token_id}")
        row.revoked_at = self.audit.clock.now()
        row.revoked_by_id = actor.id
        self.session.flush()
        self.audit.record("token_revoked", actor, payload={"token_id": row.id, "label": row.label,
                                                           "username": owner.username})
        return row

    @staticmethod
    def token_dict(row: ApiToken, current_id: int | None = None) -> dict[str, Any]:
        """One token as lists show it: never its secret nor its hash."""
        return {"id": row.id, "label": row.label, "created_at": row.created_at, "last_used_at": row.last_used_at,
                "expires_at": row.expires_at, "current": row.id == current_id}
