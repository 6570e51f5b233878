"""Self-service password reset: "Forgot your password?" on the sign-in page.

``request_reset`` takes a username or an e-mail address. For an active user with an e-mail address
it issues a single-use link, valid ``PASSWORD_RESET_MINUTES`` (30), and queues a mail with it in
the user's language through the outbox (app/services/notifications.py). Whatever it finds (no
such user, a deactivated one, one without an address, or too many mails already), the caller
learns nothing: the edge answers every request with the same page, so the form cannot be used to
find out who has an account. A name is looked up as a username first (any letter case); failing
that, as the e-mail address of exactly one active user (a shared address, ambiguous, sends
nothing: its owners ask by username).

The link: 256 random bits, of which the ``password_reset_token`` row keeps only the keyed SHA-256
(an HMAC under SECRET_KEY, as API tokens), so the table holds no usable link. Issuing one ends
the user's earlier unused ones. A link works once, before it expires, while it is the user's
newest and while the user's ``token_generation`` is the one it was issued under (so a password
change or a deactivation in between ends it too). The mail itself, with the link, stays in the
outbox row until the retention purge takes it: by then the link has long stopped working.

Limits: at most ``MAILS_PER_USER`` (3) mails per user per ``RATE_WINDOW`` (an hour), counted from
the user's rows, whoever asks; the edge also limits the requests per client address
(app/web/ratelimit.py). A request over a limit sends nothing and looks like any other.

``complete_reset`` sets the new password (the rules of every password change: UserService), uses
the link up, and ends every web session and API token of the user. Audited as
``password_reset_requested`` (the user, the client address, the link's row id and expiry: never
the link) and ``password_reset_done``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.clock import Clock
from app.errors import NotFound
from app.languages import Text
from app.models import PasswordResetToken, User

from .audit import AuditLog
from .notifications import NotificationService
from .users import UserService, person_named

#: How many reset mails one user may be sent within ``RATE_WINDOW``.
MAILS_PER_USER = 3
RATE_WINDOW = timedelta(hours=1)
#: The outbox's event type of the mail (no webhook hears of it).
MAIL_EVENT = "password.reset"
#: The path of a link; the web edge serves it (app/web/password_reset_pages.py).
LINK_PATH = "/login/reset/"
#: Error codes of a link that does not work: never issued (404), or no longer valid (410).
UNKNOWN_LINK, ENDED_LINK = "reset_link_unknown", "reset_link_ended"

SUBJECT = Text("Reset your processdesk password")



class PasswordResetService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, users: UserService,
                 notifications: NotificationService, *, secret_key: str, minutes: int) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.users = users
        self.notifications = notifications
        self.lifetime = timedelta(minutes=minutes)
        self._key = hashlib.sha256(b"processdesk-password-reset:" + secret_key.encode()).digest()

    def _hash(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    # -- asking ---------------------------------------------------------------------------------------

    def request_reset(self, name_or_email: str, *, address: str | None = None) -> bool:
        """Mail a reset link to the account ``name_or_email`` names, if it is an active user with
        an e-mail address who has not had ``MAILS_PER_USER`` in the last hour. Returns whether a
        mail was queued: for tests and logs only, never to be shown to whoever asked."""
        user = self._match(name_or_email.strip())
        if user is None or not user.active or not user.email:
            return False
        # Two requests for the same user take turns over the count (PostgreSQL; SQLite's writers anyway).
        user = self.session.get(User, user.id, with_for_update=True, populate_existing=True) or user
        now = self.clock.now()
        # The user's rows past the rate window that no longer work go on the way.
        self.session.execute(delete(PasswordResetToken).where(
            PasswordResetToken.user_id == user.id, PasswordResetToken.expires_at < now - RATE_WINDOW,
            PasswordResetToken.created_at < now - RATE_WINDOW).execution_options(synchronize_session=False))
        sent = int(self.session.scalar(select(func.count()).select_from(PasswordResetToken).where(
            PasswordResetToken.user_id == user.id, PasswordResetToken.created_at > now - RATE_WINDOW)) or 0)
        if sent >= MAILS_PER_USER:
            return False
        self.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None),
                   PasswordResetToken.ended_at.is_(None))
            .values(ended_at=now).execution_options(synchronize_session=False))
        secret = secrets.token_urlsafe(32)
        row = PasswordResetToken(token_hash=self._hash(secret), user_id=user.id, token_generation=user.token_generation,
                                 created_at=now, expires_at=now + self.lifetime)
        self.session.add(row)
        self.session.flush()
        minutes = int(self.lifetime.total_seconds() // 60)
        self.notifications.email_user(user, MAIL_EVENT, SUBJECT, Text(
            "Hello %(name)s,\n\nsomeone (hopefully you) asked to reset the password of your processdesk account "
            "%(username)s. To choose a new password, open this link within %(minutes)s minutes:\n\n%(link)s\n\n"
            "The link works once. If you did not ask for it, ignore this mail: your password stays as it is.",
            name=user.display_name or user.username, username=user.username, minutes=minutes,
            link=self.notifications.url(LINK_PATH + secret)))
        self.audit.record("password_reset_requested", None, actor_name="anonymous", payload={
            "username": user.username, "address": address, "reset_id": row.id, "expires_at": row.expires_at})
        return True

    def _match(self, name: str) -> User | None:
        return person_named(self.session, name)

    # -- using the link -------------------------------------------------------------------------------

    def link_user(self, token: str) -> User:
        """The user whose working reset link ``token`` is. Raises NotFound with code
        ``reset_link_unknown`` (no such link) or ``reset_link_ended`` (used, replaced, expired,
        or its user's password or state changed since)."""
        return self._live(token)[1]

    def _live(self, token: str, *, lock: bool = False) -> tuple[PasswordResetToken, User]:
        if not token or len(token) > 128:
            raise NotFound("no such password reset link", code=UNKNOWN_LINK)
        query = select(PasswordResetToken).where(PasswordResetToken.token_hash == self._hash(token))
        row = self.session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFound("no such password reset link", code=UNKNOWN_LINK)
        user = self.session.get(User, row.user_id)
        if (user is None or not user.active or row.used_at is not None or row.ended_at is not None
                or self.clock.now() >= row.expires_at or user.token_generation != row.token_generation):
            raise NotFound("the password reset link is no longer valid", code=ENDED_LINK)
        return row, user

    def complete_reset(self, token: str, new_password: Any, *, address: str | None = None) -> User:
        """Set the password of the working link ``token``'s user to ``new_password`` and use the
        link up; every web session and API token of the user ends. Audited as
        ``password_reset_done``.

        Raises NotFound (as ``link_user``), ValidationFailed naming ``new_password`` (the link
        stays usable)."""
        row, user = self._live(token, lock=True)
        user = self.users.set_forgotten_password(user, new_password)
        # Conditional, so that of two uses racing each other exactly one wins (the other rolls back).
        used = self.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
            .values(used_at=self.clock.now()).execution_options(synchronize_session=False))
        if getattr(used, "rowcount", 1) != 1:
            raise NotFound("the password reset link is no longer valid", code=ENDED_LINK)
        self.audit.record("password_reset_done", user, payload={"username": user.username, "address": address,
                                                                "reset_id": row.id})
        return user
