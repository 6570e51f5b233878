"""Users, groups, roles, password login and API tokens."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.errors import NotFound, Unauthorized, ValidationFailed
from app.models import Group, Role, User, UserRole, user_group

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

    def check_password(self, username: str, password: str) -> User:
        """Return the active user with these credentials; raise Unauthorized (and audit it) otherwise."""
        user = self.session.scalar(select(User).where(User.username == username))
        ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not ok or not user.active:
            self.audit.refuse(None, "login", reason="bad credentials", username=username[:128])
            raise Unauthorized("unknown user or wrong password")
        return user

    def issue_token(self, user: User) -> dict[str, Any]:
        token = self._tokens.dumps({"uid": user.id, "gen": user.token_generation})
        self.audit.record("token_issued", user, payload={})
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
