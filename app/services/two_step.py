"""Two-step sign-in: after the password, a code from the user's authenticator app (TOTP, RFC 6238:
HMAC-SHA1, six digits, 30-second steps, what Google Authenticator, Microsoft Authenticator,
FreeOTP and 1Password read from an ``otpauth://`` QR code), or one of ten single-use recovery codes.

- **Setting it up.** A signed-in user begins (:meth:`TwoStepService.begin`: a new random 160-bit
  secret, shown as a QR code and as text) and proves their app has it with one code, and that
  they are the account's owner with the password (:meth:`~TwoStepService.confirm`): only then is
  it on, and the recovery codes are shown, once. A set-up begun and never confirmed asks nothing
  at sign-in and lapses after ``SETUP_MINUTES``.
- **Signing in.** The web sign-in asks for a code after a right password; the API's
  ``POST /auth/token`` takes it as ``code``. A code is taken within one step either side of now
  (clocks drift), and once: a step at or before the last one taken is refused (a code seen over
  a shoulder or replayed from a log). Wrong codes count against the sign-in limit of the name
  and the address, as wrong passwords do, and against the account's row, under its lock
  (``WEB_LOGIN_MAX_FAILURES`` per ``WEB_LOGIN_WINDOW_SECONDS``): the limit's own check and count
  are two transactions, which a burst of guesses sent at once would all pass between.
- **Recovery codes.** Ten, each of 50 random bits written ``xxxxx-xxxxx``; kept as keyed hashes.
  Each works once; a user who used one is mailed about it, with how many remain. A new set
  (password and a code asked: the codes turn it off) replaces the old.
- **Turning it off.** The user, with their password and a code (wrong codes there, and when
  renewing the recovery codes, count against the account's limit as at sign-in); an admin for someone else (a lost
  phone), who is then mailed about it. Not a user who holds a role that requires it
  (``TWO_STEP_REQUIRED_ROLES``).
- **Required roles.** ``TWO_STEP_REQUIRED_ROLES`` (comma-separated, e.g. ``admin,auditor``)
  names roles whose holders must use it: signed in by password alone, they reach nothing but the
  set-up page until it is on, and the API issues them no token.
- **The secret at rest** is sealed with AES-GCM under ``TWO_STEP_KEY`` (32+ characters), or a key
  derived from SECRET_KEY, with the user's id as associated data (a sealed secret copied onto
  another user's row does not open). A backup restored on a desk with another key cannot read it:
  sign-in then refuses with a message to have an admin reset the user's two-step sign-in.
- Everything is audited: ``two_step_begun``, ``two_step_enabled``, ``two_step_disabled``,
  ``two_step_reset``, ``two_step_recovery_codes_renewed``, ``two_step_recovery_used``, and each
  refused code as a refused ``sign_in_code``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import struct
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, select, update
from werkzeug.security import check_password_hash

from app.errors import Conflict, PermissionDenied, TooManyAttempts, Unauthorized, ValidationFailed
from app.languages import Text
from app.models import RecoveryCode, Role, TwoStep, User

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.clock import Clock

    from .audit import AuditLog
    from .notifications import NotificationService
    from .users import UserService

log = logging.getLogger(__name__)

#: Seconds a code stands for (RFC 6238's default, and every authenticator's).
STEP_SECONDS = 30
DIGITS = 6
#: Steps either side of now a code is taken in: a phone's clock a little off still signs in.
DRIFT_STEPS = 1
SECRET_BYTES = 20
RECOVERY_CODES = 10
#: What the QR code's account says it is (the app's list shows it above the code).
ISSUER = "processdesk"
MIN_KEY_LENGTH = 32
#: How a code is told apart: six digits (spaces allowed, as apps show "123 456"), or a recovery code.
_TOTP_CODE = re.compile(r"^[0-9]{6}$")  # ASCII digits only: ``\d`` takes other scripts' digits too
_RECOVERY_CODE = re.compile(r"^[a-z2-7]{10}$")
MAX_CODE_LENGTH = 64
#: How long a set-up begun waits for its first code before it lapses (a key left on the page for
#: someone else to scan would otherwise wait for ever).
SETUP_MINUTES = 10

WRONG_CODE = "is not a current code of your authenticator app, nor an unused recovery code"
NOT_SET_UP = "two-step sign-in is not set up: begin it first"
ALREADY_ON = "two-step sign-in is on already: turn it off first to set up another app"
UNREADABLE = ("the two-step sign-in secret of this account cannot be read with this desk's key "
              "(TWO_STEP_KEY or SECRET_KEY changed since it was set up): ask an admin to reset it")
MAIL_EVENT = "account.two_step"
SUBJECT_ON = Text("Two-step sign-in is on")
SUBJECT_OFF = Text("Two-step sign-in was turned off")
SUBJECT_RECOVERY = Text("A recovery code was used to sign in")


def totp(secret: bytes, step: int, digits: int = DIGITS) -> str:
    """The code of ``secret`` for the 30-second ``step`` (RFC 6238 over RFC 4226's HOTP, SHA-1)."""
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def step_at(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def base32(secret: bytes) -> str:
    """The secret as authenticator apps take it typed: base32 without padding."""
    return base64.b32encode(secret).decode().rstrip("=")


def normalised(code: Any) -> str | None:
    """A typed code without spaces and dashes, in lower case; None for what is no text or too long."""
    if not isinstance(code, str) or len(code) > MAX_CODE_LENGTH:
        return None
    return re.sub(r"[\s-]", "", code).lower()


def sealing_key(config: Mapping[str, Any]) -> bytes:
    """The 256-bit key that seals the secrets: from ``TWO_STEP_KEY``, else derived from SECRET_KEY."""
    own = config.get("TWO_STEP_KEY")
    if own:
        if len(str(own)) < MIN_KEY_LENGTH:
            raise ValueError(f"TWO_STEP_KEY must be at least {MIN_KEY_LENGTH} characters long")
        return hashlib.sha256(b"processdesk two-step key v1:" + str(own).encode()).digest()
    return hmac.new(str(config["SECRET_KEY"]).encode(), b"processdesk two-step v1", hashlib.sha256).digest()


def required_roles(config: Mapping[str, Any]) -> frozenset[str]:
    """The roles ``TWO_STEP_REQUIRED_ROLES`` names (ValueError for one that is no role)."""
    names = {part.strip().lower() for part in str(config.get("TWO_STEP_REQUIRED_ROLES") or "").split(",") if part.strip()}
    unknown = sorted(names - {role.value for role in Role})
    if unknown:
        raise ValueError(f"TWO_STEP_REQUIRED_ROLES names no role {', '.join(unknown)} "
                         f"(roles: {', '.join(role.value for role in Role)})")
    return frozenset(names)


class TwoStepService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, users: UserService,
                 notifications: NotificationService, config: Mapping[str, Any]) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.users = users
        self.notifications = notifications
        self._key = sealing_key(config)
        self._hash_key = hashlib.sha256(b"processdesk recovery code:" + self._key).digest()
        self._required = required_roles(config)
        self._max_failures = int(config.get("WEB_LOGIN_MAX_FAILURES", 5))
        self._failure_window = timedelta(seconds=int(config.get("WEB_LOGIN_WINDOW_SECONDS", 300)))

    # -- reading ------------------------------------------------------------------------------------

    def _row(self, user: User) -> TwoStep | None:
        return self.session.get(TwoStep, user.id)

    def enabled(self, user: User) -> bool:
        """Whether sign-in asks ``user`` for a code (one indexed read)."""
        return self.session.scalar(select(TwoStep.confirmed_at).where(TwoStep.user_id == user.id)) is not None

    def on_among(self, user_ids: Iterable[int]) -> set[int]:
        """Which of these users sign in with a code (one query, for a list of users)."""
        wanted = set(user_ids)
        if not wanted:
            return set()
        return set(self.session.scalars(select(TwoStep.user_id).where(
            TwoStep.user_id.in_(wanted), TwoStep.confirmed_at.is_not(None))))

    def required(self, user: User) -> bool:
        """Whether one of the user's roles requires two-step sign-in (``TWO_STEP_REQUIRED_ROLES``)."""
        return bool(self._required & user.roles)

    def require_set_up(self, user: User, action: str) -> None:
        """PermissionDenied (``two_step_setup_required``, audited) when a role of ``user``'s requires
        two-step sign-in and it is not on: no token is issued to them (a fresh one would outlive
        the requirement)."""
        if self.required(user) and not self.enabled(user):
            self.audit.refuse(user, action, reason="two-step sign-in required and not set up")
            raise PermissionDenied("two-step sign-in is required for this account's role and is not set up: "
                                   "set it up first (the account page, or POST /api/v1/users/me/two-step/setup)",
                                   code="two_step_setup_required")

    def described(self, user: User) -> dict[str, Any]:
        """The user's two-step sign-in as the API and the pages show it (never the secret)."""
        row = self._row(user)
        enabled = row is not None and row.confirmed_at is not None
        left = self.session.scalar(select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) if enabled else 0
        return {"username": user.username, "enabled": enabled, "since": row.confirmed_at if enabled and row else None,
                "pending": row is not None and not enabled and not self._lapsed(row), "recovery_codes_left": int(left or 0),
                "required": self.required(user)}

    def _lapsed(self, row: TwoStep) -> bool:
        """A set-up begun more than ``SETUP_MINUTES`` ago and never confirmed."""
        return row.confirmed_at is None and self.clock.now() - row.created_at > timedelta(minutes=SETUP_MINUTES)

    def owner(self, actor: User, username: str, action: str, *, change: bool) -> User:
        """Whose two-step sign-in ``username`` names for ``actor``: their own, or anyone's for an
        admin to change and an admin or auditor to read."""
        return self.users.addressed(actor, username, action, admin=change)

    # -- setting it up ------------------------------------------------------------------------------

    def begin(self, user: User) -> dict[str, Any]:
        """A new secret for the signed-in ``user``'s app (replacing one begun before): its text and
        its ``otpauth://`` address (the QR code's content). Conflict when it is on already."""
        self._usable(user)
        row = self._row(user)
        if row is not None and row.confirmed_at is not None:
            raise Conflict(ALREADY_ON)
        secret = secrets.token_bytes(SECRET_BYTES)
        now = self.clock.now()
        if row is None:
            row = TwoStep(user_id=user.id, created_at=now, last_step=0, sealed_secret="")
            self.session.add(row)
        row.sealed_secret, row.created_at, row.last_step = self._seal(user, secret), now, 0
        self.session.flush()
        self.audit.record("two_step_begun", user, payload={"username": user.username})
        return {"secret": base32(secret), "uri": self.uri(user, secret)}

    def uri(self, user: User, secret: bytes) -> str:
        """The key URI authenticator apps read (Google's "Key Uri Format")."""
        label = quote(f"{ISSUER}:{user.username}", safe="")
        query = urlencode({"secret": base32(secret), "issuer": ISSUER, "algorithm": "SHA1",
                           "digits": DIGITS, "period": STEP_SECONDS})
        return f"otpauth://totp/{label}?{query}"

    def pending_uri(self, user: User) -> str | None:
        """The address of a set-up begun and not yet confirmed (the page shows its QR code again)."""
        row = self._row(user)
        if row is None or row.confirmed_at is not None or self._lapsed(row):
            return None
        secret = self._open(user, row)
        return None if secret is None else self.uri(user, secret)

    def confirm(self, user: User, password: Any, code: Any) -> list[str]:
        """Turn two-step sign-in on with the user's password (whoever holds a session or a token
        alone must not tie the account to their own phone) and a code of the app set up by
        :meth:`begin`; answer the new recovery codes (shown this once). ValidationFailed naming
        ``current_password`` and/or ``code``; Conflict when nothing was begun (or it lapsed)."""
        self._usable(user)
        row = self._locked_row(user)
        if row is None or self._lapsed(row):
            raise Conflict(NOT_SET_UP)
        if row.confirmed_at is not None:
            raise Conflict(ALREADY_ON)
        problems: dict[str, list[str]] = {}
        if not self._password_ok(user, password):
            problems["current_password"] = ["is not your current password"]
        secret = self._open(user, row)
        step = self._matching_step(secret, normalised(code), after=row.last_step) if secret is not None else None
        if step is None:
            problems["code"] = ["is not the current code of the app you set up"]
        if problems:
            self.audit.refuse(user, "two_step_confirm", reason=", ".join(f"wrong {name}" for name in sorted(problems)))
            raise ValidationFailed("; ".join(f"{name} {texts[0]}" for name, texts in problems.items()),
                                   details={"fields": problems})
        assert step is not None
        row.confirmed_at, row.last_step = self.clock.now(), step
        codes = self._new_recovery_codes(user)
        self.audit.record("two_step_enabled", user, payload={"username": user.username})
        self.notifications.email_user(user, MAIL_EVENT, SUBJECT_ON, Text(
            "Hello %(name)s,\n\ntwo-step sign-in is now on for your processdesk account %(username)s: signing in "
            "asks for a code of your authenticator app after your password.\n\nIf you did not turn it on, "
            "change your password and tell your desk's admins.",
            name=user.display_name or user.username, username=user.username))
        return codes

    def renew_recovery_codes(self, user: User, password: Any, code: Any) -> list[str]:
        """A new set of recovery codes for the signed-in ``user``, replacing every earlier one. The
        password and a code (of the app, or an unused recovery code) prove it: the codes turn two-step
        sign-in off, so whoever holds a session and has learnt the password must not get them.
        ValidationFailed naming ``current_password`` (the code is then not looked at, so a right one
        is not used up by a refused request), else ``code``; TooManyAttempts as at sign-in."""
        self._usable(user)
        row = self._locked_row(user)
        if row is None or row.confirmed_at is None:
            raise Conflict("two-step sign-in is not on")
        self._check_password(user, password, "renew_recovery_codes")
        if self._proved(user, row, code, action="renew_recovery_codes") is None:
            self.audit.refuse(user, "renew_recovery_codes", reason="wrong code")
            raise ValidationFailed(f"code {WRONG_CODE}", details={"fields": {"code": [WRONG_CODE]}})
        codes = self._new_recovery_codes(user)
        self.audit.record("two_step_recovery_codes_renewed", user, payload={"username": user.username})
        return codes

    def disable(self, user: User, password: Any, code: Any) -> None:
        """The signed-in ``user`` turns it off, with their password and a code (of the app, or a
        recovery code). ValidationFailed naming ``current_password`` and/or ``code``; Conflict when a
        role of theirs requires it."""
        self._usable(user)
        if self.required(user):
            raise Conflict("two-step sign-in is required for your role: it cannot be turned off")
        row = self._locked_row(user)
        if row is None:
            raise Conflict("two-step sign-in is not on")
        problems: dict[str, list[str]] = {}
        if not self._password_ok(user, password):
            # the code is not looked at: a right one would be used up by a refused request
            problems["current_password"] = ["is not your current password"]
        elif row.confirmed_at is not None and self._proved(user, row, code, action="two_step_disable") is None:
            problems["code"] = [WRONG_CODE]
        if problems:
            self.audit.refuse(user, "two_step_disable", reason=", ".join(f"wrong {name}" for name in sorted(problems)))
            raise ValidationFailed("; ".join(f"{name} {texts[0]}" for name, texts in problems.items()),
                                   details={"fields": problems})
        was_on = row.confirmed_at is not None
        self._remove(user)
        if was_on:
            self.audit.record("two_step_disabled", user, payload={"username": user.username})
            self._tell_off(user, by=None)

    def reset(self, actor: User | None, username: str) -> User:
        """An admin (or the command line, ``actor`` None: the last admin's lost phone) turns off
        ``username``'s two-step sign-in: the user signs in with their password again, and sets it
        up anew (at once, when a role of theirs requires it). Their own is not an admin's to reset
        on the pages or the API: PermissionDenied (``disable`` asks for a code)."""
        self.users.require_admin(actor, "reset_two_step")
        # ``me`` is the caller, as everywhere in the API (never a user once named so)
        user = actor if actor is not None and username == "me" else self.users.get_by_username(username)
        if actor is not None and user.id == actor.id:
            self.audit.refuse(actor, "reset_two_step", reason="own account", username=user.username)
            raise PermissionDenied("turn your own two-step sign-in off on your account page, with a code")
        row = self._locked_row(user)
        if row is None:
            return user
        was_on = row.confirmed_at is not None
        self._remove(user)
        self.audit.record("two_step_reset", actor, actor_name="cli" if actor is None else None,
                          payload={"username": user.username, "was_on": was_on})
        if was_on:
            self._tell_off(user, by=actor, admin=True)
        return user

    # -- signing in ---------------------------------------------------------------------------------

    def check_code(self, user: User, code: Any, *, address: str | None = None) -> str:
        """Take a sign-in code of ``user`` (whose password was right), in the same look at the row
        that tells whether one is needed (a set-up confirmed meanwhile is not skipped): ``"none"``
        when two-step sign-in is not on, ``"app"`` for their app's code, ``"recovery"`` for a
        recovery code (used up). Unauthorized with code ``code_required`` when it is on and no code
        came (not a failure: the client asks again with one), ``wrong_code`` (audited, counted)
        for a wrong one, each naming ``code`` in its details; ``two_step_unreadable`` when the
        secret cannot be opened with this desk's key; TooManyAttempts once the account's wrong
        codes reach the limit."""
        row = self._locked_row(user)
        if row is None or row.confirmed_at is None:
            return "none"
        if code is None or (isinstance(code, str) and not code.strip()):
            raise Unauthorized("this account signs in in two steps: send code, the current code of its "
                               "authenticator app (or a recovery code)", code="code_required",
                               details={"fields": {"code": ["required for this account"]}})
        if self._open(user, row) is None:
            log.error("two-step sign-in: the secret of user %s does not open with this desk's key", user.id)
            self.audit.refuse(user, "sign_in_code", reason="secret unreadable", address=address)
            raise Unauthorized(UNREADABLE, code="two_step_unreadable", details={"fields": {"code": [UNREADABLE]}})
        kind = self._proved(user, row, code, action="sign_in_code", address=address)
        if kind is None:
            self.audit.refuse(user, "sign_in_code", reason="wrong code", address=address)
            raise Unauthorized(f"code {WRONG_CODE}", code="wrong_code", details={"fields": {"code": [WRONG_CODE]}})
        return kind

    def _proved(self, user: User, row: TwoStep, code: Any, *, action: str, address: str | None = None) -> str | None:
        """Take ``code`` (:meth:`_take_code`) against the account's own limit of wrong codes, kept on
        its locked row: TooManyAttempts (audited) once ``WEB_LOGIN_MAX_FAILURES`` wrong ones fell
        in the window; a wrong one is counted, and the count kept although the request fails (a
        burst of guesses sent at once takes turns on the lock, and the limit holds for each)."""
        now = self.clock.now()
        recent = row.failed_at is not None and now - row.failed_at < self._failure_window
        if recent and row.failures >= self._max_failures:
            assert row.failed_at is not None
            wait = max(1, int((row.failed_at + self._failure_window - now).total_seconds()) + 1)
            self.audit.refuse(user, action, reason="too many wrong codes", address=address)
            raise TooManyAttempts(f"too many wrong codes; try again in {wait} seconds", details={"retry_after": wait})
        kind = self._take_code(user, row, code)
        if kind is None:
            row.failures, row.failed_at = (row.failures + 1 if recent else 1), now
            # written now: on SQLite a write lock lost here is retried with the whole unit of work,
            # where the commit that keeps the count (on the way out) could only fail
            self.session.flush()
            self.session.info["commit_on_error"] = True
            return None
        row.failures, row.failed_at = 0, None
        return kind

    def _take_code(self, user: User, row: TwoStep, code: Any) -> str | None:
        """Use ``code`` up if it is a current app code not taken before, or an unused recovery code."""
        typed = normalised(code)
        if typed is None:
            return None
        if _TOTP_CODE.match(typed):
            secret = self._open(user, row)
            step = self._matching_step(secret, typed, after=row.last_step) if secret is not None else None
            if step is None:
                return None
            row.last_step = step
            return "app"
        if not _RECOVERY_CODE.match(typed):
            return None
        used = self.session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == self._code_hash(typed),
                   RecoveryCode.used_at.is_(None))
            .values(used_at=self.clock.now()).execution_options(synchronize_session=False))
        if not used.rowcount:  # type: ignore[attr-defined]
            return None
        left = int(self.session.scalar(select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0)
        self.audit.record("two_step_recovery_used", user, payload={"username": user.username, "left": left})
        self.notifications.email_user(user, MAIL_EVENT, SUBJECT_RECOVERY, Text(
            "Hello %(name)s,\n\none of the recovery codes of your processdesk account %(username)s was just used "
            "to sign in; %(left)s remain unused. If that was not you, change your password and tell your desk's "
            "admins. Once you have your authenticator app again, make a new set of recovery codes on your account page.",
            name=user.display_name or user.username, username=user.username, left=left))
        return "recovery"

    def _matching_step(self, secret: bytes, typed: str | None, *, after: int) -> int | None:
        """The step within the drift whose code ``typed`` is, if later than ``after``."""
        if typed is None or not _TOTP_CODE.match(typed):
            return None
        now = step_at(self.clock.now())
        for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
            if step > after and hmac.compare_digest(totp(secret, step), typed):
                return step
        return None

    # -- parts --------------------------------------------------------------------------------------

    def _usable(self, user: User) -> None:
        if not user.active:
            raise Unauthorized("the account is deactivated")

    def _locked_row(self, user: User) -> TwoStep | None:
        """The user's row, locked on PostgreSQL (two sign-ins with one code take turns: the second
        sees the first's step)."""
        return self.session.scalars(select(TwoStep).where(TwoStep.user_id == user.id)
                                    .with_for_update().execution_options(populate_existing=True)).first()

    def _password_ok(self, user: User, password: Any) -> bool:
        return (isinstance(password, str) and len(password) <= 1024
                and check_password_hash(user.password_hash, password))

    def _check_password(self, user: User, password: Any, action: str) -> None:
        if not self._password_ok(user, password):
            self.audit.refuse(user, action, reason="wrong current password")
            raise ValidationFailed("current_password is not your current password",
                                   details={"fields": {"current_password": ["is not your current password"]}})

    def _remove(self, user: User) -> None:
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)
                             .execution_options(synchronize_session=False))
        row = self._row(user)
        if row is not None:
            self.session.delete(row)
        self.session.flush()

    def _tell_off(self, user: User, *, by: User | None, admin: bool = False) -> None:
        if not admin:
            body = Text("Hello %(name)s,\n\ntwo-step sign-in was turned off for your processdesk account %(username)s: "
                        "signing in asks for your password only.\n\nIf you did not turn it off, change your password "
                        "and tell your desk's admins.", name=user.display_name or user.username, username=user.username)
        elif by is not None:
            body = Text("Hello %(name)s,\n\n%(admin)s turned two-step sign-in off for your processdesk account "
                        "%(username)s (a lost phone, say): signing in asks for your password only until you set it up "
                        "again on your account page.\n\nIf you did not ask for this, tell your desk's admins.",
                        name=user.display_name or user.username, username=user.username, admin=by.username)
        else:
            body = Text("Hello %(name)s,\n\nan administrator turned two-step sign-in off for your processdesk "
                        "account %(username)s from the server's command line (a lost phone, say): signing in asks for "
                        "your password only until you set it up again on your account page.\n\nIf you did not ask "
                        "for this, tell your desk's admins.", name=user.display_name or user.username,
                        username=user.username)
        self.notifications.email_user(user, MAIL_EVENT, SUBJECT_OFF, body)

    def _new_recovery_codes(self, user: User) -> list[str]:
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)
                             .execution_options(synchronize_session=False))
        now = self.clock.now()
        codes = []
        for _ in range(RECOVERY_CODES):
            raw = base64.b32encode(secrets.token_bytes(7)).decode().lower()[:10]  # 50 random bits
            codes.append(f"{raw[:5]}-{raw[5:]}")
            self.session.add(RecoveryCode(user_id=user.id, code_hash=self._code_hash(raw), created_at=now))
        self.session.flush()
        return codes

    def _code_hash(self, typed: str) -> str:
        return hmac.new(self._hash_key, typed.encode(), hashlib.sha256).hexdigest()

    def _seal(self, user: User, secret: bytes) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._key).encrypt(nonce, secret, f"user:{user.id}".encode())
        return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode()

    def _open(self, user: User, row: TwoStep) -> bytes | None:
        """The secret, or None when it does not open with this desk's key (or is damaged)."""
        version, _, text = row.sealed_secret.partition(".")
        if version != "v1":
            return None
        try:
            raw = base64.urlsafe_b64decode(text.encode())
            return AESGCM(self._key).decrypt(raw[:12], raw[12:], f"user:{user.id}".encode())
        except (InvalidTag, ValueError):
            return None
