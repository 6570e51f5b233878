"""Pages of the user administration area (routes on the shared ``web`` blueprint).

``/admin/users`` lists and searches the users (text, role, group, active or not); a user's page
edits their display name, email, roles, groups, manager and whether they are active (unticking
it deactivates them: no sign-in, sessions and tokens end, claimed tasks go back to the queues),
and resets their password, and shows their absence (out of office, ``away_section``: the account
page shows one's own with the same markup); ``/admin/users/new`` creates one. A deactivated user's page lists the
ready tasks still assigned to them by name (nobody else may take those), each with a form to
reassign it (``TaskService.reassign``: to a member of its group, or anyone for a task outside any
lane). ``/admin/groups`` lists and creates groups; a group's page changes its description and
manager and adds or removes members. Group addresses take the name in any letter case.

Admins change things; auditors read the same pages without the forms; anyone else gets the 403
page, their attempt audited (the rules are ``UserService``'s). Every form carries the session's
CSRF token (checked for every POST by the blueprint). A refused form comes back with each
problem beside its field, or the reason above the form (a taken name, the last admin, one's own
account): answered with a redirect to the form's page, which shows the input and the problems
once (Post/Redirect/Get, app/web/refused_forms.py; never a password, which is not kept); in place
(422, 409) when they are too large to keep.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import Conflict, ProcessdeskError, ValidationFailed
from app.models import Role, User
from app.services import policy
from app.services.away import (
    DEACTIVATED,
    KEPT_EXCLUDED,
    KEPT_ONE_VOTE,
    MAX_AWAY_DAYS,
    MISSING_ROLES,
    NO_USER,
    NOT_A_STAND_IN,
    READ_ONLY,
    SELF,
    shown_utc,
)
from app.services.forms import FORMAT_MESSAGES, typed_instant, typed_time
from app.services.users import MAX_PASSWORD, MIN_PASSWORD, USERNAME_RULE

from . import refused_forms
from .forms import service_text
from .i18n import LANGUAGES
from .views import assign_reason, bp, page_arg, past_the_last_page, signed_in_user

#: Longest search text taken from the address (longer ones are cut).
MAX_QUERY = 200

#: The roles as the pages name them, in the order the forms offer them.
ROLE_LABELS = {
    Role.REQUESTER.value: _l("Requester"),
    Role.AGENT.value: _l("Agent"),
    Role.APPROVER.value: _l("Approver"),
    Role.PROCESS_OWNER.value: _l("Process owner"),
    Role.AUDITOR.value: _l("Auditor"),
    Role.ADMIN.value: _l("Administrator"),
    Role.CONFIGURATION_MANAGER.value: _l("Configuration manager"),
}

#: The forms of a user's page: the user, their password, a task waiting on them to reassign, their absence.
USER_FORMS = ("edit", "password", "reassign", "away")

#: The services' field problems, in the page's language (others are shown as the service wrote them).
FIELD_PROBLEMS: dict[str, Any] = {
    USERNAME_RULE: _l("Use 1 to 128 characters: letters a-z, digits and . _ @ + -, starting with a letter or a digit."),
    "is taken": _l("This name is taken (names ignore letter case)."),
    f"must be at least {MIN_PASSWORD} characters": _l("Use at least %(count)d characters.", count=MIN_PASSWORD),
    f"must be at most {MAX_PASSWORD} characters": _l("Use at most %(count)d characters.", count=MAX_PASSWORD),
    # a user changing their own password (the account page)
    "is not your current password": _l("This is not your current password."),
    "must differ from the current password": _l("Choose a password different from the current one."),
    "is required": _l("This field is required."),
    "is not an email address": _l("This is not an email address."),
    "must be at most 255 characters": _l("Use at most 255 characters."),
    "a user cannot be their own manager": _l("A user cannot be their own manager."),
    "must be 1-128 characters, without a slash or control characters": _l("Use 1 to 128 characters, without a slash."),
}

#: Why a change was refused (Conflict codes), in the page's language.
CONFLICTS: dict[str, Any] = {
    "user_exists": _l("A user of this name exists already (names ignore letter case)."),
    "group_exists": _l("A group of this name exists already (names ignore letter case)."),
    "last_admin": _l("This would leave no active administrator. Make someone else an administrator first."),
    "own_account": _l("You cannot deactivate your own account. Ask another administrator."),
}


def _problem_text(field: str, message: str, form: Mapping[str, Any]) -> str:
    known = FIELD_PROBLEMS.get(message)
    if known is not None:
        return str(known)
    if message.startswith("no user"):
        return _("There is no user %(name)s.", name=str(form.get(field, ""))[:128])
    if message.startswith("no group"):
        return _("Choose groups that exist.")
    return message


def _errors(err: ProcessdeskError, form: Mapping[str, Any]) -> dict[str, list[str]]:
    """A refusal as problems by field name (``_form`` for the form as a whole)."""
    if isinstance(err, Conflict):
        if err.code in ("user_exists", "group_exists"):
            return {"username" if err.code == "user_exists" else "name": [str(CONFLICTS[err.code])]}
        return {"_form": [str(CONFLICTS.get(err.code) or err.message)]}
    fields = err.details.get("fields") or {}
    if not fields:
        return {"_form": [err.message]}
    return {name: [_problem_text(name, str(m), form) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in fields.items()}


def _is_admin(user: User) -> bool:
    return user.has_role(Role.ADMIN)


def _back(page: str, errors: dict[str, list[str]], url: str) -> Response | None:
    """Post/Redirect/Get for a refused form (app/web/refused_forms.py): its fields but the passwords
    and ``errors`` kept for the next GET of ``page``, and a 303 to ``url``; None when too large to
    keep (the caller answers in place, as before)."""
    return refused_forms.back_with(page, errors, url, omit=refused_forms.secret)


def _taken(*pages: str) -> tuple[str, MultiDict[str, str], dict[str, list[str]]] | None:
    """The form refused on one of ``pages`` (the forms of one page), which, and its problems, once."""
    for page in pages:
        refused = refused_forms.take(page)
        if refused is not None:
            return page, refused[0], refused[1]
    return None


def _user_form_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """The edit form's fields as ``UserService.update_user`` takes them (the language only when the
    form has the field: an older form or client that sends none keeps the user's)."""
    values = {"display_name": str(form.get("display_name", "")), "email": str(form.get("email", "")),
              "roles": form.getlist("roles"), "groups": form.getlist("groups"),
              "manager": str(form.get("manager", "")).strip() or None, "active": form.get("active") == "1"}
    if "locale" in form:
        values["locale"] = str(form.get("locale", "")).strip() or None
    return values


def _was(form: MultiDict[str, str] | None, person: Mapping[str, Any]) -> dict[str, Any]:
    """What the edit form showed when it was opened: sent back with it (``was_*`` fields), so that
    saving changes only what the admin changed. A refused save keeps the values first shown."""
    if form is not None and form.get("was_sent") == "1":
        return {"display_name": form.get("was_display_name", ""), "email": form.get("was_email", ""),
                "manager": form.get("was_manager", ""), "active": form.get("was_active") == "1",
                "roles": form.getlist("was_roles"), "groups": form.getlist("was_groups"),
                "locale": form.get("was_locale", "")}
    return {"display_name": person["display_name"], "email": person["email"] or "", "manager": person["manager"] or "",
            "active": person["active"], "roles": list(person["roles"]), "groups": list(person["groups"]),
            "locale": person["locale"] or ""}


def _changed_values(values: dict[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The saved form as changes to the user as they are now (``current``, ``user_dict``): only the
    fields the admin changed from what the page showed, and for roles and groups the ones ticked
    or unticked applied to the current lists. Without it a page opened before someone else's
    change (a deactivation by the command line, a role removed on another page) would put the old
    state back: re-activating a leaver."""
    if request.form.get("was_sent") != "1":
        return values  # a client that sends the whole state (no was_* fields) means it
    was = _was(request.form, current)
    changes: dict[str, Any] = {}
    for name in ("display_name", "email"):
        if values[name] != was[name]:
            changes[name] = values[name]
    if (values["manager"] or "") != was["manager"]:
        changes["manager"] = values["manager"]
    if values["active"] != was["active"]:
        changes["active"] = values["active"]
    if "locale" in values and (values["locale"] or "") != was["locale"]:
        changes["locale"] = values["locale"]
    for name in ("roles", "groups"):
        picked, shown = set(values[name]), set(was[name])
        if picked != shown:
            changes[name] = sorted((set(current[name]) - (shown - picked)) | (picked - shown))
    return changes


# -- the user list ----------------------------------------------------------------------------------


@bp.get("/admin/users")
def users() -> Any:
    user = signed_in_user()
    q = " ".join(request.args.get("q", "").split())[:MAX_QUERY]
    role = request.args.get("role", "")
    role = role if role in ROLE_LABELS else ""
    group = request.args.get("group", "").strip()[:128]
    active_arg = request.args.get("active", "")
    active = {"1": True, "0": False}.get(active_arg)
    away_arg = request.args.get("away", "")
    away = {"1": True, "0": False}.get(away_arg)
    two_step_arg = request.args.get("two_step", "")
    two_step = {"1": True, "0": False}.get(two_step_arg)
    page = page_arg()
    per_page = int(current_app.config["PER_PAGE_DEFAULT"])
    svc = services()

    def read() -> dict[str, Any]:
        rows, total = svc.users.list_users(user, q=q or None, role=role or None, group=group or None, active=active,
                                           away=away, two_step=two_step, page=page, per_page=per_page)
        now = svc.runtime.clock.now()
        on = svc.two_step.on_among(u.id for u in rows)
        return {"rows": [{**_listed(svc.users.user_dict(u), u.away_at(now)), "two_step": u.id in on} for u in rows],
                "total": total, "groups": svc.users.group_names()}

    found = unit_of_work(read)
    beyond = past_the_last_page(page, found["total"], per_page)
    if beyond is not None:
        return beyond
    query = {key: value for key, value in (("q", q), ("role", role), ("group", group), ("active", active_arg),
                                           ("away", away_arg), ("two_step", two_step_arg)) if value}
    return render_template("users.html", active="users", q=q, role=role, group=group, active_filter=active_arg,
                           away_filter=away_arg, two_step_filter=two_step_arg,
                           role_labels=ROLE_LABELS, pages=max(1, -(-found["total"] // per_page)), page=page,
                           query=query, may_edit=_is_admin(user), **found)


def _listed(person: dict[str, Any], away_now: bool) -> dict[str, Any]:
    """A user as the list shows them: whether they are out of office now (``User.away_at``), and until when."""
    return {**person, "away_now": away_now, "away_until_shown": _when(person["away"]["until"]) if away_now else ""}


# -- a new user -------------------------------------------------------------------------------------


@bp.route("/admin/users/new", methods=["GET", "POST"])
def user_new() -> Any:
    user = signed_in_user()
    svc = services()
    page = "users:new"
    unit_of_work(lambda: svc.users.require_admin(user, "create_user"))  # before any word about the fields
    if request.method == "GET":
        refused = _taken(page)
        if refused is not None:
            return _render_new(user, refused[1], refused[2])
        return _render_new(user, None, {})
    form = request.form
    values = _user_form_values(form)

    def create() -> str:
        made = svc.users.create_user(str(form.get("username", "")), str(form.get("password", "")),
                                     groups=values["groups"], roles=values["roles"],
                                     display_name=values["display_name"] or None, email=values["email"] or None,
                                     manager=values["manager"], actor=user)
        return made.username

    if form.get("password", "") != form.get("password_again", ""):
        errors, status = {"password_again": [_("The two passwords differ.")]}, 422
    else:
        try:
            username = unit_of_work(create)
        except (ValidationFailed, Conflict) as err:
            errors, status = _errors(err, form), err.status
        else:
            flash(_("User %(name)s was created.", name=username), "success")
            return redirect(url_for("web.user", username=username))
    return _back(page, errors, url_for("web.user_new")) or _render_new(user, form, errors, status=status)


def _render_new(user: User, form: MultiDict[str, str] | None, errors: dict[str, list[str]], status: int = 200) -> Any:
    """The new-user form: empty (``form`` None), or as it was sent and refused."""
    svc = services()
    groups = unit_of_work(svc.users.group_names)
    chosen = {"roles": form.getlist("roles"), "groups": form.getlist("groups")} if form is not None else \
        {"roles": [Role.REQUESTER.value], "groups": []}
    return render_template("user_new.html", active="users", form=form or {}, errors=errors,
                           group_options=[(name, name) for name in groups],
                           role_labels=ROLE_LABELS, chosen=chosen, min_password=MIN_PASSWORD), status


# -- one user ---------------------------------------------------------------------------------------


@bp.route("/admin/users/<username>", methods=["GET", "POST"])
def user(username: str) -> Any:
    me = signed_in_user()
    svc = services()
    if request.method == "GET":
        refused = _taken(*(_user_page(username, form) for form in USER_FORMS))
        if refused is None:
            return _render_user(me, username, None, {})
        if refused[0] == _user_page(username, "away"):  # the absence form, beside its own section
            return _render_user(me, username, None, {}, away=(refused[1], refused[2]))
        # the user form as it was sent, or (another form of the page refused) the user as they are
        return _render_user(me, username, refused[1] if refused[0] == _user_page(username, "edit") else None,
                            refused[2], sent=refused[1])
    values = _user_form_values(request.form)
    again = url_for("web.user", username=username, _anchor="user-form")
    if (request.form.get("was_sent") == "1" and request.form.get("was_active") == "1" and not values["active"]
            and request.form.get("confirm_deactivate") != "yes"):
        # Unticking a box is easily done by mistake, and deactivating ends someone's sessions.
        _existing(me, username, "update_user")
        errors = {"confirm_deactivate": [_(
            "Deactivating ends their sessions and API tokens and sends their claimed tasks back to their queues: "
            "tick the box to confirm.")]}
        return (_back(_user_page(username, "edit"), errors, again)
                or _render_user(me, username, request.form, errors, status=422))

    def save() -> tuple[User, int]:
        if request.form.get("was_sent") != "1" or not _is_admin(me):
            saved = svc.users.update_user(me, username, values)  # the whole state, or refused as it says
        else:
            current = svc.users.user_dict(svc.users.get_user(me, username))
            saved = svc.users.update_user(me, username, _changed_values(values, current))
        return saved, 0 if saved.active else len(svc.users.tasks_waiting_on(me, saved.username))

    try:
        saved, waiting = unit_of_work(save)
    except (ValidationFailed, Conflict) as err:
        errors = _errors(err, request.form)
        return (_back(_user_page(username, "edit"), errors, again)
                or _render_user(me, username, request.form, errors, status=err.status))
    if not saved.active:
        flash(_("%(name)s was saved and is deactivated: they cannot sign in, and the tasks they had claimed went "
                "back to their queues.", name=saved.username), "success")
        if waiting:
            flash(_("Tasks assigned to %(name)s by name wait on them: %(count)d. Reassign them below.",
                    name=saved.username, count=waiting), "info")
    else:
        flash(_("%(name)s was saved.", name=saved.username), "success")
    return redirect(url_for("web.user", username=saved.username))


@bp.post("/admin/users/<username>/password")
def user_password(username: str) -> Any:
    me = signed_in_user()
    svc = services()
    password = request.form.get("password", "")
    if password != request.form.get("password_again", ""):
        _existing(me, username, "reset_password")
        errors, status = {"password_again": [_("The two passwords differ.")]}, 422
    else:
        try:
            changed = unit_of_work(lambda: svc.users.reset_password(me, username, password))
        except ValidationFailed as err:
            errors, status = _errors(err, request.form), err.status
        else:
            flash(_("The password of %(name)s was reset; their sessions and API tokens have ended.",
                    name=changed.username), "success")
            return redirect(url_for("web.user", username=changed.username))
    # nothing of the form is kept: it has only the two passwords
    return (_back(_user_page(username, "password"), errors, url_for("web.user", username=username, _anchor="password-form"))
            or _render_user(me, username, None, errors, status=status))


@bp.post("/admin/users/<username>/tokens/<int:token_id>/revoke")
def user_token_revoke(username: str, token_id: int) -> Any:
    """An admin revokes one API token of the user (``UserService.revoke_token``: audited; 403 for
    anyone else, 404 for an id that is no live token of this user)."""
    me = signed_in_user()
    svc = services()
    unit_of_work(lambda: svc.users.revoke_token(me, username, token_id))
    flash(_("API token #%(id)d of %(name)s was revoked: it no longer works.", id=token_id, name=username), "success")
    return redirect(url_for("web.user", username=username))


@bp.post("/admin/users/<username>/tasks/<int:task_id>/reassign")
def user_task_reassign(username: str, task_id: int) -> Any:
    """Hand one of the tasks waiting on a (deactivated) user to someone else; a refusal comes back
    on the user's page beside that task's form (422), a non-admin gets the 403 page."""
    me = signed_in_user()
    svc = services()
    target = str(request.form.get("assignee", "")).strip()[:128]

    def reassign() -> str:
        svc.users.require_admin(me, "reassign")  # first: a non-admin learns nothing about names (QA)
        assignee = svc.users.find(target) if target else None
        if assignee is None:
            raise ValidationFailed("unknown user", details={"fields": {"username": [f"no user {target}"]}})
        return svc.tasks.reassign(me, task_id, assignee).assigned_user or assignee.username

    try:
        now_with = unit_of_work(reassign)
    except (ValidationFailed, Conflict) as err:  # not someone who may do it; or the task is done
        problems = [_problem_text("assignee", m, request.form) if m.startswith("no user ") else assign_reason(m)
                    for m in map(str, (err.details.get("fields") or {}).get("username") or [err.message])]
        errors = {f"assignee-{task_id}": problems}
        return (_back(_user_page(username, "reassign"), errors,
                      url_for("web.user", username=username, _anchor="waiting-tasks"))
                or _render_user(me, username, None, errors, status=err.status))
    flash(_("Task %(task)d was reassigned to %(name)s.", task=task_id, name=now_with), "success")
    return redirect(url_for("web.user", username=username))


def _user_page(username: str, form: str) -> str:
    """The key of one of the forms of a user's page (``USER_FORMS``) as its refusal is kept."""
    return f"users:{form}:{username}"


def _existing(me: User, username: str, action: str) -> None:
    """What the service would refuse first (403 for who is no admin, 404 for no such user), for a
    form the page refuses before the service sees it."""
    svc = services()

    def check() -> None:
        svc.users.require_admin(me, action)
        svc.users.get_by_username(username)

    unit_of_work(check)


def _render_user(me: User, username: str, form: MultiDict[str, str] | None, errors: dict[str, list[str]],
                 status: int = 200, *, sent: MultiDict[str, str] | None = None,
                 away: tuple[Mapping[str, Any], Mapping[str, list[Any]]] | None = None) -> Any:
    """A user's page: the user as they are, or the user form as it was sent and refused (``form``);
    ``sent``: the refused form of the page, when it was brought back by a redirect (the request's
    own otherwise); ``away``: the absence form as it was refused, and its problems."""
    svc = services()
    sent = sent if sent is not None else request.form

    def read() -> dict[str, Any]:
        found = svc.users.get_user(me, username)
        # what waits on a leaver by name; an active user works their own tasks
        waiting = [] if found.active else svc.users.task_refs(svc.users.tasks_waiting_on(me, found.username))
        tokens = [{**svc.users.token_dict(t), "revoke_url": url_for("web.user_token_revoke", username=found.username,
                                                                     token_id=t.id) if _is_admin(me) else None}
                  for t in svc.users.list_tokens(me, found.username)]
        absence = away_section(me, found, may_change=_is_admin(me),
                               save_url=url_for("web.user_away", username=found.username),
                               clear_url=url_for("web.user_away_clear", username=found.username),
                               form=away[0] if away else None, errors=away[1] if away else None)
        return {"person": svc.users.user_dict(found), "groups": svc.users.group_names(), "waiting": waiting,
                "tokens": tokens, "away": absence, "two_step": svc.two_step.described(found)}

    page = unit_of_work(read)
    person = page["person"]
    if form is not None:  # a refused edit: show what was sent
        chosen = {"roles": form.getlist("roles"), "groups": form.getlist("groups")}
        shown = {"display_name": form.get("display_name", ""), "email": form.get("email", ""),
                 "manager": form.get("manager", ""), "active": form.get("active") == "1",
                 "locale": form.get("locale", person["locale"] or "")}
    else:
        chosen = {"roles": person["roles"], "groups": person["groups"]}
        shown = {"display_name": person["display_name"], "email": person["email"] or "",
                 "manager": person["manager"] or "", "active": person["active"], "locale": person["locale"] or ""}
    # groups the user is in that the list would not offer (none, unless one was just removed)
    groups = sorted(set(page["groups"]) | set(person["groups"]))
    return render_template("user_edit.html", active="users", person=person, shown=shown, chosen=chosen,
                           was=_was(form, person),
                           group_options=[(name, name) for name in groups], role_labels=ROLE_LABELS, errors=errors, may_edit=_is_admin(me),
                           is_me=person["username"] == me.username, min_password=MIN_PASSWORD, waiting=page["waiting"],
                           tokens=page["tokens"], languages=LANGUAGES, away=page["away"], two_step=page["two_step"],
                           reassign_to=sent.get("assignee", "") if errors else ""), status


# -- out of office: a user's absence (their page; the account page shows one's own the same way) ----

#: The absence form's fields, as ``AwayService.set_away`` names them.
AWAY_FIELDS = ("delegate", "from", "until")

#: The absence's refusals and the reasons a task stays with its user, in the page's language.
AWAY_TEXTS: dict[str, Any] = {
    FORMAT_MESSAGES["date-time"]: _l("Enter a date and time as YYYY-MM-DD hh:mm (UTC), or with an offset like +02:00."),
    SELF: _l("Choose someone else: nobody stands in for themselves."),
    NOT_A_STAND_IN: _l("This user cannot stand in for you: choose an active user who works on tasks and holds each of "
                       "your working roles (Agent, Approver, Process owner)."),
    "is past: an absence that is over hands nothing on": _l("This time is past: an absence that is over hands nothing on."),
    "must be after the start": _l("Choose a time after the start."),
    f"must be within {MAX_AWAY_DAYS} days of the start": _l("Choose a time within %(days)d days of the start.",
                                                            days=MAX_AWAY_DAYS),
    "must be in the years 1900 to 8999": _l("Choose a time in the years 1900 to 8999."),
    KEPT_EXCLUDED: _l("separation of duties leaves the delegate out of this task"),
    KEPT_ONE_VOTE: _l("the delegate holds or cast another vote of this round: one vote each"),
}
#: The refusals of a delegate that name someone (an admin is told which rule refused; anyone else
#: ``NOT_A_STAND_IN``), by the service's own templates: the page finds the name (and the roles) in
#: the sentence to say it again in its language.
AWAY_NAMED: tuple[tuple[re.Pattern[str], Any], ...] = tuple(
    (re.compile(re.escape(template).replace(re.escape("{name}"), "(?P<name>.+?)")
                .replace(re.escape("{roles}"), "(?P<roles>.+)")), words)
    for template, words in (
        (NO_USER, _l("There is no user %(name)s.")),
        (DEACTIVATED, _l("%(name)s is deactivated.")),
        (READ_ONLY, _l("%(name)s reads tasks but does not work on them.")),
        (MISSING_ROLES, _l("%(name)s does not hold the role the work needs: %(roles)s.")),
    ))


def away_text(message: Any) -> str:
    """A refusal of ``AwayService.set_away`` (or why a task stays with its user) in the page's
    language; one the page does not know as the service wrote it."""
    text = str(message)
    known = AWAY_TEXTS.get(text, FIELD_PROBLEMS.get(text))
    if known is not None:
        return str(known)
    for pattern, words in AWAY_NAMED:
        found = pattern.fullmatch(text)
        if found is not None:
            parts = found.groupdict()
            if "roles" in parts:
                parts["roles"] = ", ".join(str(ROLE_LABELS.get(role, role)) for role in parts["roles"].split(", "))
            return str(words) % parts
    return service_text(message)


def away_values(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The absence a form asks for, its times read as every time on the desk's forms
    (``typed_instant``: "YYYY-MM-DD hh:mm", UTC unless an offset is given; no start: now), and the
    times it could not read."""
    values: dict[str, Any] = {"delegate": str(form.get("delegate", "")).strip()[:128]}
    unread: dict[str, list[str]] = {}
    for name in ("from", "until"):
        typed = str(form.get(name, "")).strip()[:40]
        values[name] = typed_instant(typed) if typed else None
        if typed and values[name] is None:
            unread[name] = [FORMAT_MESSAGES["date-time"]]
    return values, unread


def away_section(viewer: User, person: User, *, may_change: bool, save_url: str, clear_url: str,
                 form: Mapping[str, Any] | None = None, errors: Mapping[str, list[Any]] | None = None) -> dict[str, Any]:
    """What templates/_away.html shows of ``person``'s absence to ``viewer`` (read in the caller's
    unit of work): ``AwayService.described``, whether it starts later, the tasks handed on and kept
    linked where ``viewer`` may open them (a task handed on is the delegate's now: its user no
    longer opens it; admins and auditors open every task), and the form (``may_change``): as it
    was refused (``form``, ``errors``), else filled with the absence as it stands, to change it."""
    svc = services()
    away = svc.away.described(person)
    starts, ends = (away[key].astimezone(timezone.utc) if away[key] else None for key in ("from", "until"))
    now = svc.runtime.clock.now()
    starts_later = starts is not None and starts > now
    ended = ends is not None and ends <= now  # past its end, until the sweep forgets it
    numbers = svc.records.visible_numbers(viewer, {ref["instance_id"] for ref in [*away["handed"], *away["kept"]]})
    opens_every_task = policy.is_admin(viewer) or viewer.has_role(Role.AUDITOR)

    def row(ref: Mapping[str, Any], kept: bool) -> dict[str, Any]:
        number = numbers.get(ref["instance_id"])
        return {**ref, "url": url_for("web.task", task_id=ref["id"]) if kept or opens_every_task else None,
                "record_url": url_for("web.ticket", number=number) if number else None,
                "reason": away_text(ref["reason"]) if kept else None}

    if form is None:
        form = {"delegate": away["delegate"]["username"] if away["delegate"] else "",
                "from": typed_time(starts) if starts is not None and starts_later else "",
                "until": typed_time(ends) if ends is not None else ""}
    return {**away, "from": starts, "until": ends, "shown": {"from": _when(starts), "until": _when(ends)},
            "starts_later": starts_later, "ended": ended, "own": person.id == viewer.id,
            "handed": [row(ref, False) for ref in away["handed"]], "kept": [row(ref, True) for ref in away["kept"]],
            "may_change": may_change, "save_url": save_url, "clear_url": clear_url,
            "form": {name: str(form.get(name, "")) for name in AWAY_FIELDS},
            "errors": {name: [away_text(m) for m in messages] for name, messages in (errors or {}).items()}}


def _when(moment: datetime | None) -> str:
    """A time as the section and its flashes say it: as typed, and that it is UTC."""
    return shown_utc(moment) if moment is not None else ""


def save_away(actor: User, username: str, page: str, back: str,
              in_place: Callable[[Mapping[str, Any], dict[str, list[str]]], Any]) -> Any:
    """Set (or replace) the absence of ``username`` (``me``: the actor's) as the posted form asks
    (``AwayService.set_away``, which decides and audits): a 303 to the section of ``back`` (the
    page's address) saying what now happens; refused, the form and its problems kept for
    ``page``'s next GET (Post/Redirect/Get) and a 303 to the form, or ``in_place`` answers (422)
    when too large to keep. Whoever may not change it gets the 403 page before any word about the
    fields."""
    svc = services()
    unit_of_work(lambda: svc.away.owner(actor, username, "set_away", change=True))
    values, errors = away_values(request.form)
    if not errors:
        try:
            saved = unit_of_work(lambda: _away_said(actor, svc.away.set_away(actor, username, values)))
        except ValidationFailed as err:
            errors = refused_forms.field_errors(err)
        else:
            said = {"start": saved["start"], "end": saved["end"], "delegate": saved["delegate"]}
            flash(_("Your absence was saved: from %(start)s until %(end)s the tasks assigned to you by name go to "
                    "%(delegate)s.", **said) if saved["own"] else
                  _("The absence of %(name)s was saved: from %(start)s until %(end)s the tasks assigned to them by "
                    "name go to %(delegate)s.", name=saved["name"], **said), "success")
            return redirect(back + "#away", 303)
    return refused_forms.back_with(page, errors, back + "#away-form") or in_place(request.form, errors)


def clear_away(actor: User, username: str, back: str) -> Response:
    """End the absence of ``username`` (``me``: the actor's) now (``AwayService.clear``): the open
    tasks handed on come back to them. A 303 to the section of ``back`` (the page's address); the
    flash says what happened (a button pressed twice, or on a page opened before the absence ended
    by itself, finds none: said as such)."""
    svc = services()

    def end() -> tuple[str, dict[str, Any]]:
        person = svc.away.owner(actor, username, "clear_away", change=True)
        # what there was to end, read before it ends: nothing, an absence still to come, or one of a leaver
        was = ("none" if person.away_until is None else
               "planned" if person.away_from is not None and person.away_from > svc.runtime.clock.now() else
               "leaver" if not person.active else "held")
        return was, _away_said(actor, svc.away.clear(actor, username))

    was, saved = unit_of_work(end)
    if was == "none":
        flash(_("You are not out of office.") if saved["own"] else
              _("%(name)s is not out of office.", name=saved["name"]), "info")
    elif was == "planned":
        flash(_("Your planned absence was cancelled.") if saved["own"] else
              _("The planned absence of %(name)s was cancelled.", name=saved["name"]), "success")
    elif was == "leaver":
        flash(_("The absence of %(name)s has ended; as %(name)s is deactivated, the open tasks stay with the "
                "delegate.", name=saved["name"]), "success")
    elif saved["own"]:
        flash(_("Welcome back: your absence has ended, and the open tasks your delegate did not finish are yours "
                "again."), "success")
    else:
        flash(_("The absence of %(name)s has ended: the open tasks their delegate did not finish are theirs again.",
                name=saved["name"]), "success")
    return redirect(back + "#away", 303)


def _away_said(actor: User, person: User) -> dict[str, Any]:
    """What a flash says of ``person``'s absence as saved (read before the unit of work ends)."""
    return {"own": person.id == actor.id, "name": person.username, "start": _when(person.away_from),
            "end": _when(person.away_until), "delegate": person.delegate.username if person.delegate else ""}


@bp.post("/admin/users/<username>/away")
def user_away(username: str) -> Any:
    me = signed_in_user()
    _admins_only(me, "set_away")
    return save_away(me, username, _user_page(username, "away"), url_for("web.user", username=username),
                     lambda form, errors: _render_user(me, username, None, {}, away=(form, errors), status=422))


@bp.post("/admin/users/<username>/away/clear")
def user_away_clear(username: str) -> Response:
    me = signed_in_user()
    _admins_only(me, "clear_away")
    return clear_away(me, username, url_for("web.user", username=username))


def _admins_only(me: User, action: str) -> None:
    """The admin pages' absence forms are an admin's (403, audited, for anyone else, their own name
    included: their own absence is set on the account page, where they are sent back to)."""
    unit_of_work(lambda: services().users.require_admin(me, action))


# -- groups -----------------------------------------------------------------------------------------


@bp.route("/admin/groups", methods=["GET", "POST"])
def groups() -> Any:
    me = signed_in_user()
    svc = services()
    page = "groups:new"
    if request.method == "GET":
        refused = _taken(page)
        if refused is not None:
            return _render_groups(me, refused[1], refused[2])
        return _render_groups(me, None, {})
    form = request.form
    try:
        made = unit_of_work(lambda: svc.users.create_group(
            me, str(form.get("name", "")), description=str(form.get("description", "")) or None,
            manager=str(form.get("manager", "")).strip() or None))
    except (ValidationFailed, Conflict) as err:
        errors = _errors(err, form)
        return (_back(page, errors, url_for("web.groups"))
                or _render_groups(me, form, errors, status=err.status))
    flash(_("Group %(name)s was created.", name=made.name), "success")
    return redirect(url_for("web.group", name=made.name))


def _render_groups(me: User, form: Mapping[str, Any] | None, errors: dict[str, list[str]], status: int = 200) -> Any:
    svc = services()
    q = " ".join(request.args.get("q", "").split())[:MAX_QUERY]
    rows = unit_of_work(lambda: [(svc.users.group_dict(g), count) for g, count in svc.users.list_groups(me, q or None)])
    return render_template("groups.html", active="groups", rows=rows, q=q, form=form or {}, errors=errors,
                           may_edit=_is_admin(me)), status


@bp.route("/admin/groups/<name>", methods=["GET", "POST"])
def group(name: str) -> Any:
    me = signed_in_user()
    svc = services()
    if request.method == "GET":
        refused = _taken(_group_page(name, "edit"), _group_page(name, "members"))
        if refused is None:
            return _render_group(me, name, None, {})
        # the group form as it was sent, or (a member refused) the group as it is
        return _render_group(me, name, refused[1] if refused[0] == _group_page(name, "edit") else None,
                             refused[2], sent=refused[1])
    form = request.form
    changes = {"description": str(form.get("description", "")), "manager": str(form.get("manager", "")).strip() or None}
    try:
        name = unit_of_work(lambda: svc.users.update_group(me, name, changes).name)  # as it is spelled
    except ValidationFailed as err:
        errors = _errors(err, form)
        return (_back(_group_page(name, "edit"), errors, url_for("web.group", name=name, _anchor="group-form"))
                or _render_group(me, name, form, errors, status=err.status))
    flash(_("Group %(name)s was saved.", name=name), "success")
    return redirect(url_for("web.group", name=name))


@bp.post("/admin/groups/<name>/members")
def group_member_add(name: str) -> Any:
    me = signed_in_user()
    svc = services()
    username = str(request.form.get("username", "")).strip()[:128]
    try:
        name, username, already = unit_of_work(lambda: _membership(svc, me, name, username, add=True))
    except ValidationFailed as err:
        errors = _errors(err, request.form)
        return (_back(_group_page(name, "members"), errors, url_for("web.group", name=name, _anchor="member-form"))
                or _render_group(me, name, None, errors, status=err.status))
    if already:
        flash(_("%(user)s is a member of %(group)s already.", user=username, group=name), "info")
    else:
        flash(_("%(user)s is now a member of %(group)s.", user=username, group=name), "success")
    return redirect(url_for("web.group", name=name))


@bp.post("/admin/groups/<name>/members/remove")
def group_member_remove(name: str) -> Response:
    me = signed_in_user()
    svc = services()
    username = str(request.form.get("username", "")).strip()[:128]
    name, username, was = unit_of_work(lambda: _membership(svc, me, name, username, add=False))
    if was:
        flash(_("%(user)s was removed from %(group)s.", user=username, group=name), "success")
    else:
        flash(_("%(user)s was not a member of %(group)s.", user=username, group=name), "info")
    return redirect(url_for("web.group", name=name))


def _membership(svc: Any, me: User, name: str, username: str, *, add: bool) -> tuple[str, str, bool]:
    """Add ``username`` to (or remove them from) group ``name``: the group's and the user's names
    as spelled, and whether they were a member before (the flash says what happened, not what was
    asked)."""
    group, person = svc.users.find_group(name), svc.users.find(username)
    before = group is not None and person is not None and person in group.members
    done = (svc.users.add_member if add else svc.users.remove_member)(me, name, username)
    return done.name, person.username if person is not None else username, before


def _group_page(name: str, form: str) -> str:
    """The key of one of the forms of a group's page (the group, a member to add) as its refusal is kept."""
    return f"groups:{form}:{name}"


def _render_group(me: User, name: str, form: Mapping[str, Any] | None, errors: dict[str, list[str]],
                  status: int = 200, *, sent: Mapping[str, Any] | None = None) -> Any:
    """A group's page: the group as it is, or its form as it was sent and refused (``form``);
    ``sent``: the refused form of the page brought back by a redirect (the request's own otherwise)."""
    svc = services()
    sent = sent if sent is not None else request.form
    found = unit_of_work(lambda: svc.users.group_dict(svc.users.get_group(me, name), members=True))
    shown = ({"description": form.get("description", ""), "manager": form.get("manager", "")} if form is not None
             else {"description": found["description"] or "", "manager": found["manager"] or ""})
    return render_template("groups_detail.html", active="groups", group=found, shown=shown, errors=errors,
                           may_edit=_is_admin(me), new_member=sent.get("username", "") if errors else ""), status
