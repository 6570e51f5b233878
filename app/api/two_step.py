"""Two-step sign-in (app/services/two_step.py): a user sets up their authenticator app, confirms it
with a code, keeps recovery codes, and turns it off; admins reset another user's (a lost phone)
and, with auditors, read whether it is on. ``POST /auth/token`` then asks for ``code``.

A wrong current password here counts against the sign-in limit of the caller's name and address,
as on ``/users/me/password`` (429 when reached)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.wrappers import Response

from app.errors import ValidationFailed
from app.schemas.users import (
    RecoveryCodesIn,
    RecoveryCodesOut,
    TwoStepCodeIn,
    TwoStepOffIn,
    TwoStepOut,
    TwoStepSetupOut,
)
from app.web.ratelimit import client_address, login_retry_after, note_login_failure, note_login_success

from . import current_user, services, unit_of_work
from .auth import _too_many_attempts

blp = Blueprint("two_step", __name__, url_prefix="/api/v1", description="Two-step sign-in")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
T = TypeVar("T")


def _proving(username: str, work: Callable[[], T],
             counted: frozenset[str] = frozenset({"current_password", "code"})) -> T | Response:
    """Run ``work``, which checks the caller's current password (and a code): refused while the
    sign-in limit holds (429), and a wrong one (a field of ``counted``) counted against it."""
    svc = services()
    address = client_address()
    now = svc.runtime.clock.now().timestamp()
    wait = login_retry_after(username, address, now)
    if wait:
        return _too_many_attempts(wait)
    try:
        answer = unit_of_work(work)
    except ValidationFailed as err:
        if counted & set(err.details.get("fields") or {}):
            note_login_failure(username, address, now)
        raise
    note_login_success(username)
    return answer


@blp.route("/users/<string:username>/two-step")
class TwoStepView(MethodView):
    @blp.response(200, TwoStepOut)
    @blp.doc(security=SECURITY)
    def get(self, username: str) -> dict[str, Any]:
        """Whether two-step sign-in is on for ``me`` (the caller) or, for admins and auditors, for
        anyone: since when, how many recovery codes are unused, whether a role requires it."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: svc.two_step.described(svc.two_step.owner(user, username, "read_two_step",
                                                                                change=False)))

    @blp.response(200, TwoStepOut)
    @blp.doc(security=SECURITY)
    def delete(self, username: str) -> dict[str, Any]:
        """An admin turns off another user's two-step sign-in (a lost phone); the user is mailed.
        Their own is turned off with a code (``POST /users/me/two-step/disable``): 403 here."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: svc.two_step.described(svc.two_step.reset(user, username)))


@blp.route("/users/me/two-step/setup")
class SetupView(MethodView):
    @blp.response(200, TwoStepSetupOut)
    @blp.alt_response(409, description="Two-step sign-in is on already")
    @blp.doc(security=SECURITY)
    def post(self) -> dict[str, Any]:
        """Begin setting up an authenticator app: a new secret (replacing a set-up begun before and
        not confirmed), as text and as the ``otpauth://`` address a QR code holds. Nothing is asked
        at sign-in until it is confirmed with a code."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: svc.two_step.begin(user))


@blp.route("/users/me/two-step/confirm")
class ConfirmView(MethodView):
    @blp.arguments(TwoStepCodeIn)
    @blp.response(200, RecoveryCodesOut)
    @blp.alt_response(409, description="No set-up begun, or it is on already")
    @blp.alt_response(429, description="Too many failed attempts: refused until Retry-After seconds have passed")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> Any:
        """Turn two-step sign-in on with the current password and the app's current code (422
        naming ``current_password`` and/or ``code``; 409 when nothing was begun in the last 10
        minutes); the answer holds the ten recovery codes, shown this once."""
        user = current_user()
        svc = services()

        def confirm() -> dict[str, Any]:
            codes = svc.two_step.confirm(user, body["current_password"], body["code"])
            return {"recovery_codes": codes, "two_step": svc.two_step.described(user)}

        # a wrong code while setting up is no guess at the account's secret: only the password counts
        return _proving(user.username, confirm, counted=frozenset({"current_password"}))


@blp.route("/users/me/two-step/recovery-codes")
class RecoveryCodesView(MethodView):
    @blp.arguments(RecoveryCodesIn)
    @blp.response(200, RecoveryCodesOut)
    @blp.alt_response(429, description="Too many failed attempts: refused until Retry-After seconds have passed")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> Any:
        """A new set of ten recovery codes, replacing every earlier one, with the current password
        and a code of the app or an unused recovery code (422 naming ``current_password``, else
        ``code``; the codes turn two-step sign-in off, so a session and a password are not enough).
        Wrong codes count against the account's limit, as at sign-in (429)."""
        user = current_user()
        svc = services()

        def renew() -> dict[str, Any]:
            codes = svc.two_step.renew_recovery_codes(user, body["current_password"], body["code"])
            return {"recovery_codes": codes, "two_step": svc.two_step.described(user)}

        return _proving(user.username, renew)


@blp.route("/users/me/two-step/disable")
class DisableView(MethodView):
    @blp.arguments(TwoStepOffIn)
    @blp.response(200, TwoStepOut)
    @blp.alt_response(409, description="It is not on, or a role of the caller's requires it")
    @blp.alt_response(429, description="Too many failed attempts: refused until Retry-After seconds have passed")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> Any:
        """Turn the caller's two-step sign-in off, with the current password and a code of the app
        or an unused recovery code (422 naming ``current_password``, else ``code``). Wrong codes
        count against the account's limit, as at sign-in (429)."""
        user = current_user()
        svc = services()

        def disable() -> dict[str, Any]:
            svc.two_step.disable(user, body["current_password"], body["code"])
            return svc.two_step.described(user)

        return _proving(user.username, disable)
