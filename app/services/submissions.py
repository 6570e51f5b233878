"""One-time submission tokens: a create form sent twice creates one record (or comment).

A page that renders a create form (a start form, a catalog request, a record's comment form)
puts ``SubmissionService.new_token()`` in a hidden field. The POST hands it to ``once``, which,
in the caller's transaction:

1. looks for the user's row with that token: found, the form was sent before, and nothing is
   created: the caller goes where the first submission went (``Submitted.repeated``);
2. claims the token by inserting its row (unique per user and token) *before* creating anything,
   in a SAVEPOINT: on PostgreSQL a concurrent second POST waits on the unique index until the
   first commits, then fails with IntegrityError; the savepoint is rolled back and the first
   one's row, now committed and visible (READ COMMITTED), is read back. On SQLite writers are
   serialized: the second one's stale snapshot makes it fail "database is locked", and the unit of
   work runs it again holding the write lock (app/unit_of_work.py), when step 1 finds the row;
3. creates the record and writes where it led into the row, so the two commit together. A
   creation that fails rolls the claim back with it: the same form may be sent again.

A POST without a token (a page rendered before this existed, a script) is served as before,
unprotected. Rows older than ``KEEP`` are pruned as new ones are claimed, a bounded batch at a time
through the ``created_at`` index (PostgreSQL: ``SKIP LOCKED``, so concurrent submissions never
wait for each other's pruning).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import Clock
from app.models import SubmissionToken, User

T = TypeVar("T")

#: The form field that carries the token.
FIELD = "submission_token"
#: How long a token is remembered: a form sent again after that creates its record again.
KEEP = timedelta(days=1)
#: Most expired rows pruned per claim (each claim adds one row, so the table stays bounded).
PRUNE_BATCH = 100
#: What a token looks like (``new_token``); anything else is treated as no token.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class Submitted(Generic[T]):
    """What a submission led to: the page to go to, the record number it created (None for a
    comment), and what ``create`` returned (None for a repeat, which created nothing)."""

    url: str
    ref: str | None
    value: T | None
    repeated: bool


class SubmissionService:
    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    @staticmethod
    def new_token() -> str:
        """A fresh random token for one rendering of a create form."""
        return secrets.token_urlsafe(24)

    @staticmethod
    def usable(token: object) -> str | None:
        """``token`` if it looks like one ``new_token`` makes, else None (treated as no token)."""
        return token if isinstance(token, str) and TOKEN_PATTERN.fullmatch(token) else None

    def once(self, user: User, token: str | None,
             create: Callable[[], tuple[T, str, str | None]]) -> Submitted[T]:
        """Run ``create`` (returning ``(value, url, ref)``) unless ``user`` already sent ``token``;
        then, and when ``create`` runs concurrently under the same token elsewhere, return the
        first submission's ``url`` and ``ref`` with ``repeated=True``. Raises what ``create``
        raises (and the claim is rolled back with the caller's transaction)."""
        token = self.usable(token)
        if token is None:
            value, url, ref = create()
            return Submitted(url, ref, value, repeated=False)
        earlier = self._find(user, token)
        if earlier is not None:
            return self._repeat(earlier)
        self._prune()
        claim = SubmissionToken(user_id=user.id, token=token, result_url="", created_at=self.clock.now())
        try:
            with self.session.begin_nested():
                self.session.add(claim)
                self.session.flush()
        except IntegrityError:
            # A concurrent submission of the same form committed its claim first (see above).
            earlier = self._find(user, token)
            if earlier is None:
                raise
            return self._repeat(earlier)
        value, url, ref = create()
        claim.result_url = url[:255]
        claim.result_ref = ref[:64] if ref else None
        self.session.flush()
        return Submitted(url, ref, value, repeated=False)

    def _find(self, user: User, token: str) -> SubmissionToken | None:
        query = select(SubmissionToken).where(SubmissionToken.user_id == user.id, SubmissionToken.token == token)
        return self.session.scalars(query.execution_options(populate_existing=True)).first()

    @staticmethod
    def _repeat(earlier: SubmissionToken) -> Submitted[Any]:
        return Submitted(earlier.result_url, earlier.result_ref, None, repeated=True)

    def _prune(self) -> None:
        cutoff = self.clock.now() - KEEP
        old = (select(SubmissionToken.id).where(SubmissionToken.created_at < cutoff)
               .order_by(SubmissionToken.created_at).limit(PRUNE_BATCH))
        if self.session.get_bind().dialect.name == "postgresql":
            old = old.with_for_update(skip_locked=True)
        self.session.execute(delete(SubmissionToken).where(SubmissionToken.id.in_(old))
                             .execution_options(synchronize_session=False))

