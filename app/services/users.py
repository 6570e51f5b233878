"""Users, groups, roles, password login, web sessions and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.errors import NotFound, Unauthorized, ValidationFailed
from app.models import Group, Role, User, UserRole, WebSession, user_group

from .audit import AuditLog

_VALID_ROLES = {r.value for r in Role}
# A real hash to compare against when the user does not exist, so timing does not reveal names.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


#: The user with each role and group name, in one statement (rows: roles x groups, a handful).
#: Built once: a reused statement keeps its cache key, which SQLAlchemy would otherwise derive
#: per call.
_USER_WITH_ACCESS = (
    select(User, UserRole.role, Group.name).select_from(User)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .outerjoin(user_group, user_group.c.user_id == User.id)
    .outerjoin(Group, Group.id == user_group.c.group_id)
    .where(User.id == bindparam("uid"))
)

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


def group_members(session: Session, group: str) -> list[tuple[str, str]]:
    """The active members of ``group`` as ``(username, display name)``, by display name then
    username; none for an unknown group. What a form's ``options_from_group:NAME`` offers."""
    rows = session.execute(
        select(User.username, User.display_name)
        .join(user_group, user_group.c.user_id == User.id)
        .join(Group, Group.id == user_group.c.group_id)
        .where(Group.name == group, User.active.is_(True))
        .order_by(User.display_name, User.username)).tuples().all()
    return [(username, display or username) for username, display in rows]


class UserService:
    def __init__(self, session: Session, audit: AuditLog, secret_key: str, token_ttl: int,
                 hash_method: str = "scrypt") -> None:
        self.session = session
        self._hash_method = hash_method
        self.audit = audit
        self._tokens = URLSafeTimedSerializer(secret_key, salt="processdesk-api-token")
        self._ttl = token_ttl

    # -- management --------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str,
        *,
        groups: Iterable[str] = (),
        roles: Iterable[str] = (),
        display_name: str | None = None,
        email: str | None = None,
        actor: User | None = None,
    ) -> User:
        """Create a user (or update an existing one's password, groups and roles)."""
        username = username.strip()
        problems: dict[str, list[str]] = {}
        if not username or len(username) > 128:
            problems["username"] = ["must be 1-128 characters"]
        if len(password) < 8:
            problems["password"] = ["must be at least 8 characters"]
        bad_roles = sorted(set(roles) - _VALID_ROLES)
        if bad_roles:
            problems["roles"] = [f"unknown role(s): {', '.join(bad_roles)}; known: {', '.join(sorted(_VALID_ROLES))}"]
        if problems:
            raise ValidationFailed("user data is invalid", details={"fields": problems})
        user = self.session.scalar(select(User).where(User.username == username))
        created = user is None
        if user is None:
            user = User(username=username, display_name=display_name or username, email=email,
                        password_hash=generate_password_hash(password, method=self._hash_method), token_generation=0, active=True)
            self.session.add(user)
        else:
            user.password_hash = generate_password_hash(password, method=self._hash_method)
            user.token_generation += 1
            self.end_web_sessions(user, "password_changed")
            if display_name:
                user.display_name = display_name
            if email:
                user.email = email
        user.groups = [self.ensure_group(name) for name in sorted(set(groups))]
        wanted = set(roles)
        user.role_rows = [r for r in user.role_rows if r.role in wanted] + [
            UserRole(role=r) for r in sorted(wanted - user.roles)
        ]
        self.session.flush()
        self.audit.record(
            "user_created" if created else "user_updated",
            actor,
            payload={"username": username, "groups": sorted(set(groups)), "roles": sorted(wanted)},
            actor_name="cli" if actor is None else None,
        )
        return user

    def set_manager(self, username: str, manager: str | None) -> User:
        """Record who approves for ``username`` as line manager (catalog approvals)."""
        user = self.get_by_username(username)
        user.manager = self.get_by_username(manager) if manager else None
        self.session.flush()
        self.audit.record("user_manager_set", None, payload={"username": username, "manager": manager}, actor_name="cli")
        return user

    def ensure_group(self, name: str) -> Group:
        name = name.strip()
        if not name:
            raise ValidationFailed("group name is empty", details={"fields": {"group": ["is required"]}})
        group = self.session.scalar(select(Group).where(Group.name == name))
        if group is None:
            group = Group(name=name)
            self.session.add(group)
            self.session.flush()
        return group

    def get_by_username(self, username: str) -> User:
        user = self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"no user {username}")
        return user

    def set_locale(self, user: User, locale: str | None) -> User:
        """Remember the pages' language the user chose (None: follow the browser)."""
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
        """Return the active user with these credentials; raise Unauthorized (and audit it, with the
        client ``address``) otherwise."""
        user = self.session.scalar(select(User).where(User.username == username))
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
        ``reason`` (signed_out, replaced, expired, password_changed)."""
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

    def issue_token(self, user: User, *, address: str | None = None) -> dict[str, Any]:
        token = self._tokens.dumps({"uid": user.id, "gen": user.token_generation})
        self.audit.record("token_issued", user, payload={"channel": "api", "address": address} if address else {})
        return {"token": token, "token_type": "Bearer", "expires_in": self._ttl}

    def user_for_token(self, token: str) -> User:
        """Verify a bearer token: signature, age, user still active, not revoked."""
        try:
            claims = self._tokens.loads(token, max_age=self._ttl)
        except SignatureExpired:
            raise Unauthorized("token expired", code="token_expired") from None
        except BadSignature:
            raise Unauthorized("invalid token") from None
        uid = claims.get("uid")
        # Every request checks the caller's roles and groups: their names come with the user
        # (loading the two collections as ORM rows costs several times more).
        rows = self.session.execute(_USER_WITH_ACCESS, {"uid": uid}).all() if isinstance(uid, int) else []
        user: User | None = rows[0][0] if rows else None
        if user is None or not user.active or user.token_generation != claims.get("gen"):
            raise Unauthorized("invalid token")
        roles = {role for _user, role, _group in rows if role is not None}
        groups = {group for _user, _role, group in rows if group is not None}
        user.know_access(roles, groups)
        return user
