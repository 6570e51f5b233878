"""Two-step sign-in on the pages (routes on the shared ``web`` blueprint; app/services/two_step.py
decides).

- **Signing in.** A right password of a user with two-step sign-in on does not sign in yet: the
  browser is sent to ``/login/code``, which asks for a code of the authenticator app (or a
  recovery code). What is waiting is kept in the signed cookie (the user's id, the password's
  generation, when, where to go next; nothing secret) for :data:`CODE_WAIT_SECONDS`. Wrong codes
  count against the sign-in limit of the name and the address, as wrong passwords do (429 when
  reached). A password changed meanwhile, or a deactivation, sends the browser back to the
  password.
- **Required.** A user whose role requires it (``TWO_STEP_REQUIRED_ROLES``) and who has not set
  it up signs in, but every page sends them to ``/account/two-step`` until it is on (a page's
  script is answered 403 in JSON); sign-out and the language switch stay open. Each request asks
  the database (one indexed read, only for holders of such a role), so a role given, or a reset
  by an admin, holds from the next page on, in every browser.
- **Setting it up, turning it off** at ``/account/two-step``: a QR code (SVG drawn on the server;
  no script, no image from elsewhere) and the secret as text, a form for the first code, the
  recovery codes shown once on the answer to it, a new set with the password, and turning it off
  with the password and a code. Wrong passwords and codes there count against the sign-in limit.
- **Admins** reset another user's (a lost phone) on the user's page (``/admin/users/<name>``);
  auditors see whether it is on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import segno
from flask import current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import Conflict, TooManyAttempts, Unauthorized, ValidationFailed
from app.models import User
from app.services.away import shown_utc
from app.services.two_step import WRONG_CODE

from . import auth
from .errors import error_page
from .i18n import LANGUAGES
from .i18n import SESSION_KEY as LANGUAGE_KEY
from .views import bp, signed_in_user

T = TypeVar("T")
#: The cookie's key for a sign-in waiting for its code, and how long it waits.
PENDING_KEY = "two_step_pending"
CODE_WAIT_SECONDS = 300
#: What a user who must set it up may still reach.
OPEN_WHILE_SETTING_UP = frozenset({"web.account_two_step", "web.account_two_step_setup",
                                   "web.account_two_step_confirm", "web.logout", "web.language", "web.static"})

PROBLEMS = {
    WRONG_CODE: _l("This is not a current code of your authenticator app, nor an unused recovery code."),
    "is not the current code of the app you set up": _l("This is not the current code of the app you set up. "
                                                         "Check the app's clock, and type the code it shows now."),
    "is not your current password": _l("This is not your current password."),
}
#: The fields of the form for new recovery codes (the form to turn it off has its own of each).
RENEW_FIELDS = {"current_password": "renew_password", "code": "renew_code"}


# -- signing in -------------------------------------------------------------------------------------


def ask_for_code(user: User, next_url: str | None) -> Response:
    """After a right password: wait for the code (the password's part of the sign-in is done)."""
    session[PENDING_KEY] = {"uid": user.id, "name": user.username, "generation": user.token_generation,
                            "at": auth.now_seconds(), "next": next_url}
    return redirect(url_for("web.login_code"))


def second_step(user: User) -> tuple[bool, bool]:
    """After a right password: whether the user's two-step sign-in is on, and whether a role of
    theirs requires it."""
    svc = services()
    return unit_of_work(lambda: (svc.two_step.enabled(user), svc.two_step.required(user)))


def _pending() -> dict[str, Any] | None:
    waiting = session.get(PENDING_KEY)
    if not isinstance(waiting, dict) or not isinstance(waiting.get("uid"), int):
        return None
    try:
        at = float(waiting["at"])
    except (KeyError, TypeError, ValueError):
        return None
    if auth.now_seconds() - at > CODE_WAIT_SECONDS:
        session.pop(PENDING_KEY, None)
        return None
    return waiting


def _back_to_password(message: str) -> Response:
    session.pop(PENDING_KEY, None)
    flash(message, "info")
    return redirect(url_for("web.login"), 303)


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Any:
    waiting = _pending()
    if waiting is None:
        if request.method == "POST":
            return _back_to_password(_("Signing in took too long. Please sign in again."))
        return redirect(url_for("web.login"))
    name = str(waiting.get("name", ""))
    if request.method == "GET":
        return render_template("login_code.html", error=None)
    wait = auth.login_retry_after(name)
    if wait:
        return _too_many(wait, url_for("web.login"), _("Back to sign-in"))
    code = request.form.get("code", "")
    svc = services()

    def who() -> User | None:
        user = svc.session.get(User, waiting["uid"])
        if user is None or not user.active or user.token_generation != waiting.get("generation"):
            return None
        return user

    user = unit_of_work(who)
    if user is None:
        return _back_to_password(_("Your account changed while you were signing in. Please sign in again."))
    took: dict[str, str] = {}

    def take_code() -> None:
        # in the sign-in's own transaction: a recovery code is used up only by a sign-in that happens
        took["kind"] = svc.two_step.check_code(svc.session.merge(user), code, address=auth.client_address())
        if took["kind"] == "none":  # reset by an admin meanwhile: the password decides again
            raise Unauthorized("two-step sign-in was turned off meanwhile", code="two_step_gone")

    next_url = auth.safe_next(waiting.get("next"))
    try:
        auth.start_session(user, first=take_code)
    except TooManyAttempts as err:
        return _too_many(int(err.details.get("retry_after") or 60), url_for("web.login"), _("Back to sign-in"))
    except Unauthorized as err:
        if err.code == "two_step_gone":
            return _back_to_password(_("Your account changed while you were signing in. Please sign in again."))
        if err.code == "two_step_unreadable":
            return _back_to_password(_("Two-step sign-in of your account cannot be checked on this desk. "
                                       "Ask an administrator to reset it."))
        if err.code == "code_required":  # an empty form: no guess to count
            return render_template("login_code.html", error=_("Type the code your authenticator app shows now, "
                                                              "or one of your recovery codes.")), 422
        auth.record_login_failure(name)
        return render_template("login_code.html", error=str(PROBLEMS[WRONG_CODE])), 401
    auth.record_login_success(name)
    if user.locale in LANGUAGES:
        session[LANGUAGE_KEY] = user.locale
    if took.get("kind") == "recovery":
        left = unit_of_work(lambda: svc.two_step.described(svc.session.merge(user)))["recovery_codes_left"]
        flash(_("You signed in with a recovery code; %(count)d remain. Once you have your app again, make a "
                "new set on your account page.", count=left), "info")
    return redirect(next_url or url_for("web.home"), 303)


def _too_many(wait: int, back_url: str, back_label: str) -> Response:
    minutes = max(1, -(-wait // 60))
    response = current_app.make_response(error_page(
        429, _("Too many sign-in attempts"),
        _("Too many failed sign-in attempts. Try again in %(minutes)d minutes.", minutes=minutes),
        back_url=back_url, back_label=back_label))
    response.headers["Retry-After"] = str(wait)
    return response


def must_set_up(user: User) -> Response | None:
    """The before-request check: a user whose role requires two-step sign-in and who has not set
    it up reaches only its page (a page's script is told so in JSON)."""
    if request.endpoint in OPEN_WHILE_SETTING_UP:
        return None
    svc = services()
    if not unit_of_work(lambda: svc.two_step.required(user) and not svc.two_step.enabled(user)):
        return None
    if request.method == "GET" and request.accept_mimetypes.best == "application/json":
        response = jsonify({"error": "two_step_setup_required", "details": {},
                            "message": "two-step sign-in is required for your role: set it up first"})
        response.status_code = 403
        return response
    if request.method == "GET":
        flash(_("Your role requires two-step sign-in. Set it up to go on."), "info")
    return redirect(url_for("web.account_two_step"), 303)


# -- the account's page -----------------------------------------------------------------------------


def qr_svg(uri: str) -> Markup:
    """The QR code of ``uri`` as inline SVG (drawn here from our own text: nothing to escape)."""
    drawn = segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff",
                                                  title=None, svgclass="qr-code")
    return Markup(drawn)  # noqa: S704 - segno writes only path data from the URI's bits


def _render(user: User, *, errors: Mapping[str, list[str]] | None = None, codes: list[str] | None = None,
            status: int = 200) -> Any:
    svc = services()

    def read() -> tuple[dict[str, Any], str | None]:
        row = svc.session.merge(user)
        return svc.two_step.described(row), svc.two_step.pending_uri(row)

    state, uri = unit_of_work(read)
    state["shown_since"] = shown_utc(state["since"]) if state["since"] else ""
    secret = None
    if uri is not None:
        secret = parse_qs(urlsplit(uri).query).get("secret", [""])[0]
        secret = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    page = render_template("two_step.html", active="account", state=state, qr=qr_svg(uri) if uri else None,
                           secret=secret, codes=codes, errors=errors or {})
    response = current_app.make_response((page, status))
    response.headers["Cache-Control"] = "no-store"  # a secret or recovery codes: never kept by the browser
    return response


def _problems(err: ValidationFailed) -> dict[str, list[str]]:
    fields = err.details.get("fields") or {}
    return {name: [str(PROBLEMS.get(str(m), m)) for m in messages] for name, messages in fields.items()}


def _limited(name: str, wait: int | None = None) -> Response | None:
    """The 429 page while the sign-in limit of ``name`` holds (or the account's own: ``wait``)."""
    wait = wait or auth.login_retry_after(name)
    if not wait:
        return None
    minutes = max(1, -(-wait // 60))
    response = current_app.make_response(error_page(
        429, _("Too many attempts"), _("Too many wrong passwords or codes. Try again in %(minutes)d minutes.",
                                       minutes=minutes),
        back_url=url_for("web.account_two_step"), back_label=_("Back")))
    response.headers["Retry-After"] = str(wait)
    return response


@bp.get("/account/two-step")
def account_two_step() -> Any:
    return _render(signed_in_user())


@bp.post("/account/two-step/setup")
def account_two_step_setup() -> Any:
    user = signed_in_user()
    svc = services()
    try:
        unit_of_work(lambda: svc.two_step.begin(svc.session.merge(user)))
    except Conflict:
        flash(_("Two-step sign-in is on already. Turn it off first to set up another app."), "error")
    return redirect(url_for("web.account_two_step", _anchor="setup"), 303)


def _proving(user: User, work: Callable[[User], T], refused: Callable[[ValidationFailed], Any],
             counted: frozenset[str] = frozenset({"current_password", "code"})) -> T | Response:
    """Run a form's ``work`` that checks the user's password (and a code): refused while the
    sign-in limit holds (429); a wrong one (a field of ``counted``) counted against it, and the
    form answered by ``refused``. Conflict goes on to the caller."""
    limited = _limited(user.username)
    if limited is not None:
        return limited
    svc = services()
    try:
        result = unit_of_work(lambda: work(svc.session.merge(user)))
    except TooManyAttempts as err:  # the account's own count of wrong codes
        return _limited(user.username, int(err.details.get("retry_after") or 60))  # type: ignore[return-value]
    except ValidationFailed as err:
        if counted & set(err.details.get("fields") or {}):
            auth.record_login_failure(user.username)
        return refused(err)  # type: ignore[no-any-return]
    auth.record_login_success(user.username)
    return result


@bp.post("/account/two-step/confirm")
def account_two_step_confirm() -> Any:
    user = signed_in_user()
    svc = services()
    try:
        # a wrong code while setting up is no guess at the account's secret: only the password counts
        codes = _proving(user, lambda row: svc.two_step.confirm(row, request.form.get("current_password", ""),
                                                                request.form.get("code", "")),
                         lambda err: _render(user, errors=_problems(err), status=422),
                         counted=frozenset({"current_password"}))
    except Conflict:
        flash(_("Begin the set-up first: there is no app waiting to be confirmed."), "error")
        return redirect(url_for("web.account_two_step"), 303)
    if not isinstance(codes, list):
        return codes
    flash(_("Two-step sign-in is on. Keep the recovery codes below somewhere safe."), "success")
    return _render(user, codes=codes)


@bp.post("/account/two-step/recovery-codes")
def account_two_step_codes() -> Any:
    user = signed_in_user()
    svc = services()
    try:
        # the page's two forms each ask for the password and a code: this one's fields have their own names
        codes = _proving(user, lambda row: svc.two_step.renew_recovery_codes(
                             row, request.form.get(RENEW_FIELDS["current_password"], ""),
                             request.form.get(RENEW_FIELDS["code"], "")),
                         lambda err: _render(user, errors={RENEW_FIELDS.get(name, name): texts
                                                           for name, texts in _problems(err).items()}, status=422))
    except Conflict:
        return redirect(url_for("web.account_two_step"), 303)
    if not isinstance(codes, list):
        return codes
    flash(_("Your new recovery codes are below; the earlier ones no longer work."), "success")
    return _render(user, codes=codes)


@bp.post("/account/two-step/disable")
def account_two_step_disable() -> Any:
    user = signed_in_user()
    svc = services()
    def turn_off(row: User) -> bool:
        svc.two_step.disable(row, request.form.get("current_password", ""), request.form.get("code", ""))
        return True

    try:
        done = _proving(user, turn_off, lambda err: _render(user, errors=_problems(err), status=422))
    except Conflict as err:
        flash(_("Your role requires two-step sign-in: it cannot be turned off.") if "required" in err.message
              else _("Two-step sign-in is not on."), "error")
        return redirect(url_for("web.account_two_step"), 303)
    if done is not True:
        return done
    flash(_("Two-step sign-in is off: signing in asks for your password only."), "success")
    return redirect(url_for("web.account_two_step"), 303)


# -- an admin's reset -------------------------------------------------------------------------------


@bp.post("/admin/users/<username>/two-step/reset")
def user_two_step_reset(username: str) -> Any:
    me = signed_in_user()
    svc = services()
    person = unit_of_work(lambda: svc.two_step.reset(me, username).username)
    flash(_("Two-step sign-in of %(name)s is off; they sign in with their password and set it up again.",
            name=person), "success")
    return redirect(url_for("web.user", username=person, _anchor="two-step"), 303)
