"""Users, groups and roles. A lane's name is a group's name."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    and_,
    func,
    inspect,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, str128, str255, timestamp


class Role(StrEnum):
    REQUESTER = "requester"
    AGENT = "agent"
    APPROVER = "approver"
    PROCESS_OWNER = "process_owner"
    AUDITOR = "auditor"
    ADMIN = "admin"
    #: Writes the configuration management database (app/services/cmdb.py); nothing else.
    CONFIGURATION_MANAGER = "configuration_manager"


user_group = Table(
    "user_group",
    Base.metadata,
    Column("user_id", Integer, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", Integer, ForeignKey("group.id", ondelete="CASCADE"), primary_key=True),
)


class Group(Base):
    __tablename__ = "group"

    id: Mapped[intpk]
    name: Mapped[str128] = mapped_column(unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    # Told when an SLA of the group's records is breached.
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[timestamp]

    members: Mapped[list[User]] = relationship(secondary=user_group, back_populates="groups")
    manager: Mapped[User | None] = relationship(foreign_keys=[manager_id], lazy="select")


#: The unique index that makes group names case-insensitive: "ServiceDesk" and "servicedesk" are
#: one group (a lane names it; people would not tell two apart). Lookups compare ``lower(name)``
#: with ``lower(:name)`` so that they use it (app/services/users.py, ``find_group``).
GROUP_NAME_LOWER_INDEX = "uq_group_name_lower"
Index(GROUP_NAME_LOWER_INDEX, func.lower(Group.name), unique=True)


class UserRole(Base):
    __tablename__ = "user_role"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))


#: The unique index that makes usernames case-insensitive: "Alex" and "alex" are one user.
#: Lookups compare ``lower(username)`` with ``lower(:name)`` so that they use it, and so that the
#: database folds both sides alike (new usernames are ASCII: app/services/users.py).
USERNAME_LOWER_INDEX = "uq_user_username_lower"


class User(Base):
    __tablename__ = "user"

    id: Mapped[intpk]
    username: Mapped[str128] = mapped_column(unique=True)
    display_name: Mapped[str255]
    email: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str255]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The pages' language the user chose (en, zh_CN); None = follow the browser.
    locale: Mapped[str | None] = mapped_column(String(16))
    # Per-user opt-out of email notifications (in-app ones always exist).
    email_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Bumped to revoke every token issued before (password change, deactivation).
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[timestamp]
    # Out of office (app/services/away.py): from ``away_from`` until ``away_until`` the tasks
    # assigned to the user by name go to ``delegate_id``. All three set, or none.
    away_from: Mapped[datetime | None]
    away_until: Mapped[datetime | None] = mapped_column(index=True)
    delegate_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    # Loaded on first use: users come along with many rows (starters, claimants) that never need them.
    groups: Mapped[list[Group]] = relationship(secondary=user_group, back_populates="members", lazy="select")
    role_rows: Mapped[list[UserRole]] = relationship(lazy="select", cascade="all, delete-orphan")
    manager: Mapped[User | None] = relationship(remote_side="User.id", lazy="select", foreign_keys=[manager_id])
    delegate: Mapped[User | None] = relationship(remote_side="User.id", lazy="select", foreign_keys=[delegate_id])

    def away_at(self, now: datetime) -> bool:
        """The user's absence (out of office) holds at ``now``: a delegate named, and ``now`` from
        its start until its end (app/services/away.py; whether the delegate may stand in is its
        business). :meth:`away_at_clause` says the same in SQL."""
        return (self.delegate_id is not None and self.away_from is not None and self.away_until is not None
                and self.away_from <= now < self.away_until)

    @classmethod
    def away_at_clause(cls, now: Any) -> ColumnElement[bool]:
        """:meth:`away_at` as a filter (``now``: an instant or a bound parameter)."""
        return and_(cls.delegate_id.is_not(None), cls.away_from <= now, cls.away_until > now)

    def know_access(self, roles: Iterable[str], groups: Iterable[str]) -> None:
        """Role and group names read with the user by one query when a request authenticates
        (UserService.user_for_token); used until a collection itself is loaded or replaced."""
        self.__dict__["_access_names"] = (frozenset(roles), frozenset(groups))

    def know_token(self, token_id: int) -> None:
        """The API token this request authenticated with (UserService.user_for_token)."""
        self.__dict__["_token_id"] = token_id

    @property
    def current_token_id(self) -> int | None:
        """The id of the API token this request authenticated with; None for a web session."""
        token_id: int | None = self.__dict__.get("_token_id")
        return token_id

    def _known(self, collection: str) -> tuple[frozenset[str], frozenset[str]] | None:
        """The names read at authentication, while ``collection`` is neither loaded nor has
        changes queued for it (``group.members.append(user)`` queues one on ``user.groups``)."""
        known: tuple[frozenset[str], frozenset[str]] | None = self.__dict__.get("_access_names")
        if known is None or collection in self.__dict__:
            return None
        pending = inspect(self).__dict__.get("_pending_mutations")
        return None if pending and collection in pending else known

    @property
    def roles(self) -> set[str]:
        known = self._known("role_rows")
        return set(known[0]) if known is not None else {r.role for r in self.role_rows}

    @property
    def group_names(self) -> set[str]:
        known = self._known("groups")
        return set(known[1]) if known is not None else {g.name for g in self.groups}

    def has_role(self, *roles: str) -> bool:
        mine = self.roles
        return any(r in mine for r in roles)

    def as_script_dict(self) -> dict[str, object]:
        """The shape SpiffArena's get_current_user() returns, minus secrets."""
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "groups": sorted(self.group_names),
        }


Index(USERNAME_LOWER_INDEX, func.lower(User.username), unique=True)


class WebSession(Base):
    """One sign-in to the web pages, so that it can end before its cookie does.

    The cookie carries a random session id; the row keeps only its SHA-256 (``token_hash``), so the
    table cannot be replayed as cookies. Each signed-in page view reads its row by that unique
    index: a row that has ended (sign-out, password change, a newer sign-in in the same browser),
    whose user's ``token_generation`` moved on, or whose user is inactive, signs the cookie out.
    ``seen_at`` is refreshed at most once a minute (a write per page view would cost more than
    the read). Rows are forgotten at the user's next sign-in once they are past every timeout.
    """

    __tablename__ = "web_session"

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # The user's token_generation at sign-in: a password change bumps the user's and so ends it.
    token_generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # signed_out | expired | password_changed | password_reset | replaced | deactivated
    end_reason: Mapped[str | None] = mapped_column(String(32))


class ApiToken(Base):
    """One bearer token for the API, so that it can be listed and revoked on its own.

    The token's secret is 256 random bits sent to its user once, at sign-in; the row keeps only
    its keyed SHA-256 (``token_hash``, an HMAC under the app's SECRET_KEY: the table cannot be
    replayed as tokens, and a new SECRET_KEY ends every token, as it did when tokens were signed).
    Each API request reads its row by that unique index, with the user: a token revoked
    (``revoked_at``), past ``expires_at`` or past the configured lifetime since ``created_at``,
    whose user's ``token_generation`` moved on (password change, deactivation) or whose user is
    inactive, is refused. ``last_used_at`` is refreshed at most once a minute (as a web session's
    ``seen_at``). ``label`` is what its user named it at sign-in, if anything.
    """

    __tablename__ = "api_token"

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(String(128))
    # The user's token_generation at sign-in: a password change bumps the user's and so ends it.
    token_generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class LoginFailure(Base):
    """One failed sign-in, counted against a username (``kind`` "name") or a client address
    ("address") by the login rate limit (app/web/ratelimit.py). In the database rather than in
    each web worker's memory, so that the limit holds however many workers serve the site.
    ``at`` is seconds since the epoch; a key's rows older than the window are deleted as it
    gets new ones, and the whole table's whenever an attempt locks a key."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_kind_key_at", "kind", "key", "at"),
                      Index("ix_login_failure_at", "at"))

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(String(160))
    at: Mapped[float] = mapped_column(Float)



class PasswordResetToken(Base):
    """One "Forgot your password?" link, so that it works once and not for long.

    The link carries 256 random bits; the row keeps only their keyed SHA-256 (``token_hash``, an
    HMAC under the app's SECRET_KEY, as ``ApiToken``), so the table cannot be replayed as links.
    A token works until ``expires_at`` (``PASSWORD_RESET_MINUTES`` after ``created_at``), once
    (``used_at``), while it is its user's newest (a newer one ends it: ``ended_at``) and while the
    user's ``token_generation`` is the one it was issued under (a password change or a
    deactivation ends it too). The rows of the last hour also count the mails sent per user
    (app/services/password_reset.py); older expired rows are purged (app/services/retention.py).
    """

    __tablename__ = "password_reset_token"

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # A newer link of the same user replaced it before it was used.
    ended_at: Mapped[datetime | None]


class TwoStep(Base):
    """A user's authenticator app (two-step sign-in, app/services/two_step.py): a TOTP secret
    (RFC 6238) that the app shares with the desk, asked for after the password.

    ``sealed_secret`` is the secret encrypted (AES-GCM under ``TWO_STEP_KEY``, or a key derived
    from SECRET_KEY, bound to the user's id), so that the table alone gives no one the codes.
    A row without ``confirmed_at`` is a set-up begun and not yet proven with a code: it asks
    nothing at sign-in, and lapses after ``SETUP_MINUTES``. ``last_step`` is the 30-second step of
    the last code taken, so that a code works once."""

    __tablename__ = "user_two_step"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    sealed_secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    # Wrong codes in a row, the last at ``failed_at``: counted under the row's lock, so that a burst
    # of guesses sent at once cannot pass the sign-in limit before the first is counted.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failed_at: Mapped[datetime | None]


class RecoveryCode(Base):
    """One of a user's single-use recovery codes, for a sign-in without the authenticator (a lost
    phone). The row keeps the code's keyed SHA-256 only; a used code keeps its row (``used_at``)
    until a new set replaces them all."""

    __tablename__ = "user_recovery_code"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
