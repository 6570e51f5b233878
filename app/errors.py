"""The domain error tree, shared by every layer below the edges.

Every error carries a stable snake_case ``code``, a human ``message`` and a ``details`` mapping
(field names, element ids, line numbers). The API turns them into one JSON envelope::

    {"error": code, "message": message, "details": {...}}

Nothing here imports Flask: services raise these, edges translate them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ProcessdeskError(Exception):
    """Base of every error a caller may see. ``status`` is the HTTP status the API answers with."""

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class NotFound(ProcessdeskError):
    """The object does not exist, or the caller may not see it (no existence leak)."""

    status = 404
    code = "not_found"


class Unauthorized(ProcessdeskError):
    """No valid credentials were presented."""

    status = 401
    code = "unauthorized"


class PermissionDenied(ProcessdeskError):
    """The caller may see the object but not do this to it."""

    status = 403
    code = "forbidden"


class Conflict(ProcessdeskError):
    """The object changed under the caller: stale version, task no longer ready, timer expired."""

    status = 409
    code = "conflict"


class BulkRefused(Conflict):
    """One action on several objects (tasks, records) refused for at least one of them: nothing was
    changed. ``details[subject]`` names each refused object (its id or number) with the ``status``,
    ``error`` and ``message`` the action on it alone would have answered; ``refusals`` keeps the
    errors themselves, for the pages to word in their language."""

    code = "bulk_refused"

    def __init__(self, message: str, refusals: Mapping[Any, ProcessdeskError], action: str, subject: str) -> None:
        super().__init__(message, details={"action": action, subject: {
            str(key): {"status": err.status, "error": err.code, "message": err.message} for key, err in refusals.items()}})
        self.refusals = dict(refusals)


class ValidationFailed(ProcessdeskError):
    """Input is well-formed JSON/multipart but breaks a rule; details name the field/element/line."""

    status = 422
    code = "validation_failed"


class ServiceUnavailable(ProcessdeskError):
    """Something the request needs is briefly unavailable (the database connection dropped). A
    connection lost before the commit stored nothing; the client sends the request again (a step
    that did commit answers 409 the second time, as its task is no longer ready)."""

    status = 503
    code = "unavailable"


class PayloadTooLarge(ProcessdeskError):
    status = 413
    code = "payload_too_large"


class TooManyAttempts(ProcessdeskError):
    """Too many wrong guesses at a secret (a sign-in code): refused, right or wrong, for a while;
    ``details["retry_after"]`` says how many seconds (the API's Retry-After)."""

    status = 429
    code = "too_many_requests"
