"""The signed-in user's own account page (routes on the shared ``web`` blueprint).

``/account`` shows what the desk knows of the user (name, email, roles, groups, manager), their
language (``/account/language``: the pages' and the notifications', or none chosen: the pages
follow the browser and notifications come in the site's default language), whether
notifications also come by email (``/account/notifications``), their live API tokens, each with a
button that revokes it (``/account/tokens/<id>/revoke``), whether two-step sign-in is on (its own
page, ``/account/two-step``: app/web/two_step_pages.py), their absence (out of office: who takes
the tasks assigned to them by name from when until when, the tasks handed on and those kept, a form
to set it, ``/account/away``, and "I'm back", ``/account/away/clear``; the same section as on an
admin's page of a user, app/web/user_pages.py ``away_section``), and a
form to change their own password: the current one, the new one twice.
``UserService.change_own_password`` decides; every web session and API token of the user ends,
and this browser is signed in again with a new session (a new cookie: whoever held the old one
is out too). A wrong current password counts
against the sign-in limit of the user's name and this address (app/web/ratelimit.py), so the
form is no way around it; once the limit is reached the form is refused (429) until it passes.
Problems come back beside their fields: a refused form is answered with a redirect to this page,
which says them once (Post/Redirect/Get, app/web/refused_forms.py; the passwords are not kept,
the session cookie being signed, not encrypted; the absence form's fields are, to be corrected);
in place (422) when they are too large to keep.
The CSRF token is checked by the blueprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import ValidationFailed
from app.models import User
from app.services.responses import may_use as may_use_responses
from app.services.users import MAX_PASSWORD, MIN_PASSWORD, UserService

from . import auth, refused_forms
from .errors import error_page
from .i18n import LANGUAGES
from .i18n import SESSION_KEY as LANGUAGE_KEY
from .user_pages import FIELD_PROBLEMS, ROLE_LABELS, away_section, clear_away, save_away
from .views import bp, signed_in_user


def _render(user: User, errors: Mapping[str, list[str]] | None = None, status: int = 200,
            headers: Mapping[str, str] | None = None, language_errors: Mapping[str, list[str]] | None = None,
            away: tuple[Mapping[str, Any], Mapping[str, list[Any]]] | None = None) -> Any:
    """The page; ``errors``: the password form's problems, ``language_errors`` the language
    form's, ``away``: the absence form as it was refused and its problems."""
    def read() -> tuple[dict[str, Any], bool, list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        row = services().session.merge(user)
        tokens = [{**UserService.token_dict(t), "revoke_url": url_for("web.account_token_revoke", token_id=t.id)}
                  for t in services().users.list_tokens(row, "me")]
        absence = away_section(row, row, may_change=True, save_url=url_for("web.account_away"),
                               clear_url=url_for("web.account_away_clear"),
                               form=away[0] if away else None, errors=away[1] if away else None)
        return UserService.user_dict(row), bool(row.email_opt_out), tokens, absence, services().two_step.described(row)

    person, email_opt_out, tokens, absence, two_step = unit_of_work(read)
    default = str(current_app.config.get("DEFAULT_LANGUAGE") or "en")
    return render_template("account.html", active="account", person=person, errors=errors or {},
                           email_opt_out=email_opt_out, language_errors=language_errors or {}, tokens=tokens,
                           languages=LANGUAGES, default_language=LANGUAGES.get(default, default),
                           role_labels=ROLE_LABELS, language=LANGUAGES.get(person["locale"] or ""), away=absence,
                           two_step=two_step, has_responses=may_use_responses(user),
                           min_password=MIN_PASSWORD, max_password=MAX_PASSWORD), status, dict(headers or {})


#: The keys of the page's forms as their refusals are kept (app/web/refused_forms.py).
LANGUAGE_PAGE, PASSWORD_PAGE, AWAY_PAGE = "account:language", "account:password", "account:away"


@bp.get("/account")
def account() -> Any:
    user = signed_in_user()
    refused = refused_forms.take(LANGUAGE_PAGE)
    if refused is not None:
        return _render(user, language_errors=refused[1])
    refused = refused_forms.take(PASSWORD_PAGE)
    if refused is not None:
        return _render(user, refused[1])
    refused = refused_forms.take(AWAY_PAGE)
    if refused is not None:
        return _render(user, away=refused)
    return _render(user)


def _back(page: str, errors: dict[str, list[str]]) -> Response | None:
    """Post/Redirect/Get for a refused form of the page: its problems kept for the next GET (and
    no field of it: the language offered is chosen again, the passwords are typed again)."""
    # to the refused form itself: the page is long, its error would be out of view at the top
    anchor = {LANGUAGE_PAGE: "language-form", PASSWORD_PAGE: "password-form"}.get(page)
    return refused_forms.back_with(page, errors, url_for("web.account", _anchor=anchor), omit=lambda name: True)


@bp.post("/account/language")
def account_language() -> Any:
    """Choose one's language (``UserService.set_locale``, audited), or none ("": the pages follow
    the browser, notifications come in the site's default language). This browser shows the
    choice at once. Another value is refused beside the field (422)."""
    user = signed_in_user()
    chosen = request.form.get("locale", "")
    if chosen and chosen not in LANGUAGES:
        errors = {"locale": [_("Choose one of the languages offered.")]}
        return _back(LANGUAGE_PAGE, errors) or _render(user, language_errors=errors, status=422)
    svc = services()
    unit_of_work(lambda: svc.users.set_locale(svc.session.merge(user), chosen or None))
    if chosen:
        session[LANGUAGE_KEY] = chosen
    else:
        session.pop(LANGUAGE_KEY, None)
    flash(_("Your language was saved."), "success")
    return redirect(url_for("web.account"))


@bp.post("/account/notifications")
def account_notifications() -> Any:
    """Receive email notifications or not (``NotificationService.set_email_opt_out``, which audits
    the change); in-app ones always arrive. A form without a choice changes nothing (422)."""
    user = signed_in_user()
    choice = request.form.get("email")
    if choice not in ("on", "off"):
        return error_page(422, _("Invalid request"), _("The request could not be used."))
    opt_out = choice == "off"
    unit_of_work(lambda: services().notifications.set_email_opt_out(services().session.merge(user), opt_out))
    flash(_("You will no longer receive notifications by email.") if opt_out
          else _("You will receive notifications by email."), "success")
    return redirect(url_for("web.account"))


@bp.post("/account/tokens/<int:token_id>/revoke")
def account_token_revoke(token_id: int) -> Any:
    """Revoke one of the user's own API tokens (``UserService.revoke_token``, which audits it): it
    answers 401 from its next request on. Another user's token, or one already ended, is not found
    (404)."""
    user = signed_in_user()
    svc = services()
    unit_of_work(lambda: svc.users.revoke_token(svc.session.merge(user), "me", token_id))
    flash(_("API token #%(id)d was revoked: it no longer works.", id=token_id), "success")
    return redirect(url_for("web.account"))


@bp.post("/account/away")
def account_away() -> Any:
    """Set (or replace) one's own absence (``AwayService.set_away``); refused, the form comes back
    beside the section with what was typed."""
    user = signed_in_user()
    return save_away(user, "me", AWAY_PAGE, url_for("web.account"),
                     lambda form, errors: _render(user, away=(form, errors), status=422))


@bp.post("/account/away/clear")
def account_away_clear() -> Response:
    """"I'm back": one's absence ends now and the open tasks handed on come back."""
    return clear_away(signed_in_user(), "me", url_for("web.account"))


@bp.post("/account/password")
def account_password() -> Any:
    user = signed_in_user()
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    if new != request.form.get("new_password_again", ""):
        errors = {"new_password_again": [_("The two passwords differ.")]}
        return _back(PASSWORD_PAGE, errors) or _render(user, errors, status=422)
    wait = auth.login_retry_after(user.username)
    if wait:
        minutes = max(1, -(-wait // 60))
        return _render(user, {"current_password": [
            _("Too many failed attempts. Try again in %(minutes)d minutes.", minutes=minutes)]},
            status=429, headers={"Retry-After": str(wait)})
    svc = services()
    try:
        changed = unit_of_work(lambda: svc.users.change_own_password(user, current, new))
    except ValidationFailed as err:
        fields = err.details.get("fields") or {}
        if "current_password" in fields:
            auth.record_login_failure(user.username)
        errors = {name: [str(FIELD_PROBLEMS.get(str(m), m)) for m in messages] for name, messages in fields.items()}
        errors = errors or {"_form": [err.message]}
        return _back(PASSWORD_PAGE, errors) or _render(user, errors, status=422)
    auth.record_login_success(user.username)
    # every session of the user ended, this one too: sign this browser in again with a new one, so
    # that whoever held the old cookie stays out
    auth.start_session(changed)
    flash(_("Your password was changed. Your other sessions and your API tokens have ended."), "success")
    return redirect(url_for("web.account"))
