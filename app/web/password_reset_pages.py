""""Forgot your password?": the two public pages of a self-service password reset (routes on the
shared ``web`` blueprint; ``PasswordResetService`` in app/services/password_reset.py decides).

``/login/forgot`` asks for a username or an e-mail address. Its POST always ends the same way,
a 303 to ``/login/forgot?sent=1``, which says that if an account matches, a link went to its
e-mail address: whether the account exists, is active, has an address, or has had too many links
already, or this address has asked too often (``PASSWORD_RESET_MAX_PER_IP``), the answer is the
same, so the form tells nobody who has an account; nor does the time it takes: the answer takes at
least ``PASSWORD_RESET_ANSWER_SECONDS`` (0.3 s; writing a token, a mail and an audit event for a
known name takes a few milliseconds more than finding none, which a patient asker could time).

``/login/reset/<token>`` is the link in the mail: the new password twice. A link that does not
work (never issued: 404; used, replaced, expired: 410) shows one page saying so, with a link to
ask again. A refused password (the rules of every password change, or the two differ) comes back
beside its field (422), the link still usable; passwords are never kept in the session or echoed
back. Done: every session and API token of the user ends and the browser goes to the sign-in
page with a flash. The token is in the path, so the access log writes it redacted
(app/request_log.py), and these pages send no Referer to anywhere.

Both forms carry the CSRF token like every form (the blueprint checks it).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import NotFound, Unauthorized, ValidationFailed
from app.services.password_reset import ENDED_LINK
from app.services.users import MAX_PASSWORD, MIN_PASSWORD

from . import auth, ratelimit
from .errors import error_page
from .user_pages import FIELD_PROBLEMS
from .views import bp

#: The longest name or address the form takes (an e-mail address's column width).
MAX_NAME = 255


def _no_referrer(response: Response) -> Response:
    # The reset page's address holds the token: never send it on to another page or site.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/login/forgot", methods=["GET", "POST"])
def forgot_password() -> Any:
    if request.method == "GET":
        return render_template("password_forgot.html", sent=request.args.get("sent") == "1")
    began = time.monotonic()
    name = request.form.get("name", "").strip()
    if name and len(name) <= MAX_NAME:
        address = auth.client_address()
        if ratelimit.note_reset_request(address, auth.now_seconds()):
            svc = services()
            unit_of_work(lambda: svc.password_reset.request_reset(name, address=address))
    left = float(current_app.config.get("PASSWORD_RESET_ANSWER_SECONDS", 0)) - (time.monotonic() - began)
    if left > 0:
        time.sleep(left)
    return redirect(url_for("web.forgot_password", sent="1"), code=303)


def _ended_link(err: NotFound) -> Any:
    status = 410 if err.code == ENDED_LINK else 404
    page, _status = error_page(status, _("This link no longer works"),
                               _("The password reset link is not valid any more: it was used already, a newer one "
                                 "was sent, or it expired. Ask for a new one."),
                               back_url=url_for("web.forgot_password"), back_label=_("Ask for a new link"))
    return _no_referrer(Response(page, status=status, mimetype="text/html"))


def _render(token: str, errors: Mapping[str, list[str]] | None = None, status: int = 200) -> Response:
    page = render_template("password_reset.html", token=token, errors=errors or {},
                           min_password=MIN_PASSWORD, max_password=MAX_PASSWORD)
    return _no_referrer(Response(page, status=status, mimetype="text/html"))


@bp.route("/login/reset/<token>", methods=["GET", "POST"])
def password_reset(token: str) -> Any:
    svc = services()
    if request.method == "GET":
        try:
            unit_of_work(lambda: svc.password_reset.link_user(token))
        except NotFound as err:
            return _ended_link(err)
        return _render(token)
    new = request.form.get("new_password", "")
    if new != request.form.get("new_password_again", ""):
        try:
            unit_of_work(lambda: svc.password_reset.link_user(token))
        except NotFound as err:
            return _ended_link(err)
        return _render(token, {"new_password_again": [_("The two passwords differ.")]}, status=422)
    try:
        user = unit_of_work(lambda: svc.password_reset.complete_reset(token, new, address=auth.client_address()))
    except NotFound as err:
        return _ended_link(err)
    except Unauthorized:  # deactivated between the check and the change
        return _ended_link(NotFound("the password reset link is no longer valid", code=ENDED_LINK))
    except ValidationFailed as err:
        fields = err.details.get("fields") or {}
        errors = {name: [str(FIELD_PROBLEMS.get(str(m), m)) for m in messages] for name, messages in fields.items()}
        return _render(token, errors or {"_form": [err.message]}, status=422)
    # Locked out by failed sign-ins is why many ask for a new password: the name's count ends with
    # the old password (the address's stays: one account's reset must not lift guessing at others)
    ratelimit.note_login_success(user.username)
    flash(_("Your password was changed; sign in with the new one."), "success")
    return _no_referrer(redirect(url_for("web.login"), code=303))
