"""The pages. Each view parses the request, calls the services inside one unit of work (the same
``services()`` / ``unit_of_work`` the API uses) and renders a template; nothing is decided here."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from werkzeug.wrappers import Response

from app.api import BAD_TEXT, services, unit_of_work
from app.db import COUNT_CAP, MAX_PAGE
from app.errors import Conflict, NotFound, PermissionDenied, ProcessdeskError, Unauthorized, ValidationFailed
from app.models import TaskStatus, User
from app.services import policy
from app.services.attachments import WATCHER_DELETES_NOT
from app.services.duplicates import NOT_STAFF as DUPLICATE_NOT_STAFF
from app.services.instances import REASSIGN_REFUSED, TASK_SORTS
from app.services.policy import ATTACHMENT_NOT_YOURS, ATTACHMENT_RECORD_CLOSED
from app.services.recurring import may_make
from app.services.submissions import FIELD as SUBMISSION_FIELD
from app.services.submissions import SubmissionService

from . import auth, refused_forms, unsent_forms
from .content import deployed_text, instance_translator, task_name, translate_joined
from .errors import error_page, flash_already_sent, not_found_page
from .forms import build_form, service_text, submitted_data
from .i18n import LANGUAGES, page_language
from .i18n import SESSION_KEY as LANGUAGE_KEY

# Served under /assets: the app's own static route already answers every /static/ path.
bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")

#: Endpoints a visitor may reach without signing in.
#: (The password reset pages: app/web/password_reset_pages.py.)
#: ``web.schedule_feed``: a calendar reading a subscription address has no session; its secret is the key.
PUBLIC_ENDPOINTS = frozenset({"web.login", "web.login_code", "web.language", "web.static", "web.forgot_password", "web.password_reset",
                              "web.schedule_feed"})

TABS = ("mine", "queue")

#: The reasons the services and the shipped processes (``excludeReason``) give for refusing an
#: action on a task or a record, in the page's language.
REASONS: dict[str, Any] = {
    REASSIGN_REFUSED: _l("only admins, and agents of the task's group for a task that waits for nobody by name, "
                         "may reassign it"),
    "only the desk's staff attach knowledge articles to records":
        _l("only the desk's staff attach knowledge articles to records"),
    "the task is claimed by someone else": _l("the task is claimed by someone else"),
    DUPLICATE_NOT_STAFF: _l("only the service desk closes a record as a duplicate; its requester withdraws it"),
    "the task is not in one of your groups' lanes": _l("the task is not in one of your groups' lanes"),
    "auditors read tasks but do not work on them": _l("auditors read tasks but do not work on them"),
    "the task is not claimed": _l("the task is not claimed"),
    "the task no longer exists in the instance": _l("the task no longer exists in the instance"),
    "a timer on this task expired before it was completed": _l("a timer on this task expired before it was completed"),
    "separation of duties: you may not work on this task": _l("separation of duties: you may not work on this task"),
    "you may not approve your own request": _l("you may not approve your own request"),
    "separation of duties: the requester and the implementer may not approve this change":
        _l("separation of duties: the requester and the implementer may not approve this change"),
    "separation of duties: an approver may not implement this change":
        _l("separation of duties: an approver may not implement this change"),
    "auditors read records but do not change them": _l("auditors read records but do not change them"),
    "only staff or the requester may link this record": _l("only staff or the requester may link this record"),
    ATTACHMENT_NOT_YOURS: _l("only who attached a file, the agents of the record's group and admins may delete it"),
    ATTACHMENT_RECORD_CLOSED: _l("the record is closed: only the agents of its group and admins may delete its files"),
    WATCHER_DELETES_NOT: _l("you watch this record: its watchers read it but do not delete its files"),
    "task is completed": _l("the task is already done"),
    "task is cancelled": _l("the task was cancelled by its process"),
}


def reason_text(reason: ProcessdeskError | str) -> str:
    """Why the services refused, in the page's language: a known reason translated; another one
    as written in English, and in another language as what its kind of refusal means (the
    English reason stays in the audit log and the API's answer)."""
    message = reason.message if isinstance(reason, ProcessdeskError) else reason
    known = REASONS.get(message)
    if known is not None:
        return str(known)
    if page_language() == "en" or not message:
        return message
    if isinstance(reason, Conflict):
        return _("Someone else changed this first. Reload the page and try again.")
    return _("You may not do this.")


def error_detail(message: str | None) -> str | None:
    """A refusal's reason under an error page's own words: translated when known; else as the
    service wrote it on an English page, and not at all on another (the page's title and message
    say it in its language; the English reason stays in the audit log and the API's answer)."""
    if not message:
        return None
    known = REASONS.get(message)
    if known is not None:
        return str(known)
    return message if page_language() == "en" else None


def signed_in_user() -> User:
    """The user of a page behind the sign-in (the before_request hook has made sure of one)."""
    user = auth.current_user()
    assert user is not None
    return user


def json_answer(read: Callable[[], Any]) -> Any:
    """A page script's JSON: ``read``'s result in one unit of work, or the API's error envelope
    with the API's status (404 for what the user may not see)."""
    try:
        return jsonify(unit_of_work(read))
    except ProcessdeskError as err:
        response = jsonify({"error": err.code, "message": err.message, "details": {}})
        response.status_code = err.status
        return response


@bp.before_request
def _require_sign_in() -> Response | None:
    if request.endpoint == "web.static":
        return None
    # whose session this was and its form token, read before an expiry clears them
    owner, token = session.get(unsent_forms.OWNER_KEY), session.get(auth.CSRF_FIELD)
    user = auth.current_user()
    if user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if _wants_json():
            # a page's script (the modeler's save): it says so itself, a sign-in page is no answer for it
            response = jsonify({"error": "signed_out", "details": {},
                                "message": "you are signed out (your session ended): sign in again"})
            response.status_code = 401
            return response
        if g.get("session_expired"):
            flash(_("Your session has expired. Please sign in again."), "info")
        target: str | None = request.full_path.rstrip("?")
        if request.endpoint == "web.logout":
            target = None  # signed out already (in another tab): nothing was lost
        elif request.method != "GET":
            # back to the page the form was on, what was typed kept for its user (unsent_forms.py)
            target = _page_of_the_form()
            unsent_forms.keep(owner, token)
            if not g.get("session_expired"):
                flash(_("You were signed out, so the form you sent was not taken. Please sign in again."), "info")
        return redirect(url_for("web.login", next=target))
    if user is not None and current_app.config.get("TWO_STEP_REQUIRED_ROLES"):
        from .two_step_pages import must_set_up

        waiting = must_set_up(user)
        if waiting is not None:
            return waiting
    if _takes_a_form():
        auth.check_csrf()
        for name, value in request.form.items(multi=True):
            if BAD_TEXT.search(value):
                # Stored, it would fail the write (PostgreSQL refuses NUL) or garble the page.
                return current_app.make_response(error_page(
                    400, _("Invalid request"),
                    _("The field “%(field)s” holds a control character. Remove it and try again.",
                      field=name[:64])))
    return None


def _wants_json() -> bool:
    """A script's request (it asks for JSON first), not a page's."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes["application/json"] > request.accept_mimetypes["text/html"]


def _page_of_the_form() -> str | None:
    """Where a form that could not be taken was sent from: the Referer when it is a page of this
    site, else the form's own address when that answers GET too (a task's page), else none."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.scheme in ("http", "https"):
        path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
        if auth.safe_next(path):
            return path
    if request.url_rule is not None and "GET" in (request.url_rule.methods or ()):
        return request.path
    return None


def _takes_a_form() -> bool:
    """Whether this request may change something, and so must carry the form's CSRF token: a POST,
    and a HEAD to a page that also takes a form (its view, which serves HEAD as it serves GET, tells
    GET from POST by ``request.method == "GET"``, so a HEAD would run its POST branch)."""
    if request.method == "POST":
        return True
    return request.method == "HEAD" and request.url_rule is not None and "POST" in (request.url_rule.methods or ())


@bp.after_request
def _no_store(response: Response) -> Response:
    # Pages show one user's work: never keep them in shared or back-button caches.
    if request.endpoint != "web.static":
        response.headers["Cache-Control"] = "no-store"
    return response


# -- errors -----------------------------------------------------------------------------------------


@bp.errorhandler(auth.CsrfRefused)
def _csrf(_err: auth.CsrfRefused) -> tuple[str, int]:
    return error_page(403, _("Form expired"),
                      _("This form is out of date or did not come from this site, so nothing was done. "
                        "Go back, reload the page and try again."))


@bp.errorhandler(ProcessdeskError)
def _domain(err: ProcessdeskError) -> tuple[str, int]:
    # Pages show the same answers as the API: 404 also for what the user may not see.
    if isinstance(err, NotFound):
        return not_found_page()
    if isinstance(err, PermissionDenied):
        return error_page(403, _("Not allowed"), _("You may not do this."), detail=error_detail(err.message))
    if isinstance(err, Conflict):
        return error_page(409, _("Changed in the meantime"),
                          _("Someone else changed this first. Reload the page and try again."),
                          detail=error_detail(err.message))
    if isinstance(err, ValidationFailed):
        return error_page(422, _("Invalid request"), _("The request could not be used."),
                          detail=error_detail(err.message))
    return error_page(err.status, _("Something went wrong"), _("The request could not be completed."),
                      detail=error_detail(err.message))


def past_the_last_page(page: int, total: int, per_page: int) -> Response | None:
    """A list page asked for past its last page (the list shrank under it: items read, closed or
    claimed; an old link): a redirect to the last page, its filters kept, rather than an empty
    page saying there is nothing. None when the page is within the list, or the list is empty,
    or its count stopped at ``COUNT_CAP`` (a lower bound: the list goes on past that page)."""
    last = max(1, -(-total // per_page))
    if total <= 0 or total >= COUNT_CAP or page <= last:
        return None
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "page"]
    return redirect(url_for(str(request.endpoint), **request.view_args or {}) + "?"
                    + urlencode([("page", str(last)), *args]))


def page_arg() -> int:
    """The ``?page=`` of a list page: 1 when absent or not a number, at most ``MAX_PAGE``."""
    try:
        return min(MAX_PAGE, max(1, int(request.args.get("page", "1"))))
    except ValueError:
        return 1


def _back(default: str) -> str:
    return auth.safe_next(request.form.get("next")) or default


# -- signing in and out, language -------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = auth.safe_next(request.values.get("next"))
    if request.method == "GET":
        if auth.current_user() is not None:
            return redirect(next_url or url_for("web.home"))
        return render_template("login.html", username="", next_url=next_url)
    username = request.form.get("username", "").strip()[:128]
    password = request.form.get("password", "")
    wait = auth.login_retry_after(username)
    if wait:
        minutes = max(1, -(-wait // 60))
        response = current_app.make_response(error_page(
            429, _("Too many sign-in attempts"),
            _("Too many failed sign-in attempts. Try again in %(minutes)d minutes.", minutes=minutes),
            back_url=url_for("web.login"), back_label=_("Back to sign-in")))
        response.headers["Retry-After"] = str(wait)
        return response
    svc = services()
    try:
        user = unit_of_work(lambda: svc.users.check_password(username, password, address=auth.client_address()))
    except Unauthorized:
        auth.record_login_failure(username)
        return render_template("login.html", username=username, next_url=next_url,
                               error=_("Unknown user or wrong password.")), 401
    from . import two_step_pages  # its routes build on this module's blueprint

    enabled, required = two_step_pages.second_step(user)
    if enabled:  # the password was right: the code comes next (counted as a sign-in once it is right too)
        return two_step_pages.ask_for_code(user, next_url)
    auth.record_login_success(username)
    auth.start_session(user)
    if user.locale in LANGUAGES:
        session[LANGUAGE_KEY] = user.locale  # the user's own choice wins over this browser's
    if required:  # and not set up: its page first (the before-request check holds them there)
        return redirect(url_for("web.account_two_step"))
    return redirect(next_url or url_for("web.home"))


@bp.post("/logout")
def logout() -> Response:
    auth.end_session()
    flash(_("You have signed out."), "info")
    return redirect(url_for("web.login"))


@bp.post("/language")
def language() -> Response:
    chosen = request.form.get("lang", "")
    if chosen in LANGUAGES:
        session[LANGUAGE_KEY] = chosen
        user = auth.current_user()
        if user is not None:  # signed in: remember it for the next sign-in, on any browser
            svc = services()
            unit_of_work(lambda: svc.users.set_locale(svc.session.merge(user), chosen))
    return redirect(_back(url_for("web.home")))


# -- home -------------------------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    user = signed_in_user()
    svc = services()

    def counts() -> dict[str, Any]:
        mine, mine_total = svc.tasks.list_tasks(user, mine=True, process_id=None, page=1, per_page=5)
        _rows, queue_total = svc.tasks.list_tasks(user, mine=False, process_id=None, page=1, per_page=1,
                                                  assigned_in_queue=False)
        _tickets, requests_total = svc.records.list_tickets(
            user, {"requester": user.username, "open": True}, "-opened_at", 1, 1)
        return {"my_tasks": mine, "my_tasks_total": mine_total, "queue_total": queue_total,
                "open_requests_total": requests_total, "breaches_total": svc.sla.breached_open_records(user),
                # the record list's views the reader saved: one click from the home page too
                "saved_views": svc.views.mine(user),
                # the requests the user has started on a schedule (app/web/recurring_pages.py)
                "recurring": svc.recurring.listed(user) if may_make(user) else []}

    return render_template("home.html", active="home", **unit_of_work(counts), user=user,
                           may_request=policy.may_start(user), read_only=policy.is_read_only(user))


# -- the inbox --------------------------------------------------------------------------------------


@bp.get("/tasks")
def tasks() -> Any:
    user = signed_in_user()
    tab = request.args.get("tab", "mine")
    tab = tab if tab in TABS else "mine"
    process_id = (request.args.get("process") or "").strip()[:128] or None
    # The queue an agent works down: most urgent SLA first; an unknown order falls back to it.
    sort = request.args.get("sort", "due")
    sort = sort if sort in TASK_SORTS else "due"
    page = page_arg()
    per_page = int(current_app.config["PER_PAGE_DEFAULT"])
    svc = services()
    from .task_bulk_pages import keep_for_next  # the bulk form's module builds on this one
    from .task_bulk_pages import state as bulk_state

    def inbox() -> dict[str, Any]:
        # The pages' queue is what the user's groups may pick up: what waits on them by name is under Mine.
        rows, total = svc.tasks.list_tasks(user, mine=tab == "mine", process_id=process_id, page=page,
                                           per_page=per_page, sort=sort, assigned_in_queue=False)
        counts = {name: svc.tasks.list_tasks(user, mine=name == "mine", process_id=process_id, page=1,
                                             per_page=1, assigned_in_queue=False)[1] for name in TABS}
        definitions, _total = svc.definitions.list_latest(1, int(current_app.config["PER_PAGE_MAX"]))
        # The record numbers the user may open (the record page answers 404 to the others), in one query.
        linked = svc.records.visible_numbers(user, {t.instance_id for t in rows})
        return {"rows": rows, "total": total, "counts": counts, "slas": svc.tasks.task_slas(rows), "linked": linked,
                "claimable": {t.id for t in rows if policy.may_claim(user, t)}, "bulk": bulk_state(user, rows),
                "processes": [(d["definition"].process_id, d["definition"].name or d["definition"].process_id)
                              for d in definitions]}

    found = unit_of_work(inbox)
    beyond = past_the_last_page(page, found["total"], per_page)
    if beyond is not None:
        keep_for_next(found["bulk"])  # a refused selection is said on the page it leads to
        return beyond
    pages = max(1, -(-found["total"] // per_page))
    from .labels import RecordValues  # labels builds on the pages that build on this module

    # A record's priority worded as the record pages word it (a change's risk "high" -> "High").
    return render_template("tasks.html", active="tasks", tab=tab, process_id=process_id, sort=sort, page=page,
                           pages=pages, user=user, values=RecordValues(), **found)


@bp.post("/tasks/<int:task_id>/claim")
def claim(task_id: int) -> Response:
    user = signed_in_user()
    back = _back(url_for("web.task", task_id=task_id))
    try:
        task = unit_of_work(lambda: services().tasks.claim(user, task_id))
    except (PermissionDenied, Conflict) as err:
        flash(_("The task could not be claimed: %(reason)s", reason=reason_text(err)), "error")
        return redirect(back)
    flash(_("You claimed “%(name)s”.", name=task_name(task)), "success")
    return redirect(back)


@bp.post("/tasks/<int:task_id>/unclaim")
def unclaim(task_id: int) -> Response:
    user = signed_in_user()
    back = _back(url_for("web.task", task_id=task_id))
    try:
        task = unit_of_work(lambda: services().tasks.unclaim(user, task_id))
    except (PermissionDenied, Conflict) as err:
        flash(_("The task could not be released: %(reason)s", reason=reason_text(err)), "error")
        return redirect(back)
    flash(_("You released “%(name)s” back to the queue.", name=task_name(task)), "success")
    return redirect(back)


# -- one task ---------------------------------------------------------------------------------------


@bp.route("/tasks/<int:task_id>", methods=["GET", "POST"])
def task(task_id: int) -> Any:
    user = signed_in_user()
    svc = services()
    page = f"task:{task_id}"
    if request.method == "GET":
        refused = refused_forms.take(page)  # sent back by the redirect below: shown once
        if refused is not None:
            return _render_task(user, task_id, submitted=refused[0], errors=refused[1])
        reassign = refused_forms.take(_reassign_page(task_id))  # sent back by ``reassign``: shown once
        if reassign is not None:
            return _render_task(user, task_id, reassign={"username": reassign[0].get("username", "").strip()[:128],
                                                         "errors": reassign[1].get("username", [])})
        return _render_task(user, task_id)
    data = submitted_data(request.form)

    def complete() -> tuple[Any, str, None]:
        svc.tasks.complete(user, task_id, data, coerce_strings=True)
        return svc.tasks.get(user, task_id), url_for("web.tasks"), None

    try:
        # Once per rendering of the form: sent again (a double click, back and Submit), it goes
        # where the first went instead of being told the task it just did could not be completed.
        sent = unit_of_work(lambda: svc.submissions.once(user, request.form.get(SUBMISSION_FIELD), complete))
    except ValidationFailed as err:
        # Post/Redirect/Get: no POST's answer in the history for Back or Reload to send again
        # (app/web/refused_forms.py); a form too large to keep is answered here, as before.
        return (refused_forms.back_to_form(page, err, url_for("web.task", task_id=task_id))
                or _render_task(user, task_id, submitted=request.form, errors=refused_forms.field_errors(err),
                                status=422))
    except (PermissionDenied, Conflict) as err:
        ended = _ended_meanwhile(user, task_id)
        if ended is not None:
            # The task ended while the form was filled in (another voter decided, a timer fired,
            # someone else completed it): said as such, and what was entered shown on its page.
            flash(ended, "error")
            sent_back = refused_forms.back_with(page, {UNSENT_KEY: [ended]}, url_for("web.task", task_id=task_id))
            if sent_back is not None:
                return sent_back
            return redirect(url_for("web.task", task_id=task_id))
        flash(_("The task could not be completed: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.task", task_id=task_id))
    if sent.repeated or sent.value is None:  # (value is None exactly when repeated)
        flash_already_sent(None)
        return redirect(sent.url or url_for("web.tasks"))
    flash(_("Done: “%(name)s”.", name=task_name(sent.value)), "success")
    return redirect(sent.url)


#: The errors key under which a task form sent after its task ended is kept (shown, not as a field error).
UNSENT_KEY = "_task_ended"


def _ended_meanwhile(user: User, task_id: int) -> str | None:
    """Why the task ``user`` just sent a form for is no longer open to it, when that is the reason
    its form was refused: it was completed (by whom) or cancelled by its process; else None."""
    try:
        task = unit_of_work(lambda: services().tasks.get(user, task_id))
    except ProcessdeskError:
        return None
    if task.state == TaskStatus.COMPLETED:
        who = task.completed_by.username if task.completed_by is not None else _("someone")
        return _("%(who)s completed this task before your answer reached it, so your answer was not recorded. "
                 "What you entered is shown below.", who=who)
    if task.state == TaskStatus.CANCELLED:
        return _("This task ended before your answer reached it: its process went on without it (for a vote, "
                 "the decision was already taken). Your answer was not recorded; what you entered is shown below.")
    return None


def _render_task(user: User, task_id: int, *, submitted: Any = None, errors: dict[str, list[str]] | None = None,
                 reassign: Mapping[str, Any] | None = None, status: int = 200) -> Any:
    svc = services()

    def read() -> dict[str, Any]:
        # instructions and documentation in the page's language where the process translates them
        detail = svc.tasks.detail(user, task_id, page_language())
        task = detail["task"]
        detail["candidates"] = (_reassign_candidates(task) if policy.may_reassign(user, task) and task.state == TaskStatus.READY
                                else None)
        detail["record"] = svc.records.for_instance(detail["task"].instance_id)
        # How the record's coded details read (their forms' option titles), as on the record page.
        detail["titles"] = (svc.records.value_titles([detail["record"]]).get(detail["record"].id, {})
                            if detail["record"] is not None else {})
        # linked only for those who may open it (the record page answers 404 to the others)
        detail["record_visible"] = detail["record"] is not None and svc.records.may_see(user, detail["record"])
        # what the record's planned window overlaps, for whoever plans it again (the schedule task)
        record = detail["record"]
        detail["clashes"] = (svc.schedule.clashes_for(user, record) if record is not None and detail["record_visible"]
                             and task.state == TaskStatus.READY else [])
        return detail

    from .labels import clash_text  # labels builds on the pages that build on this module

    detail = unit_of_work(read)
    task = detail["task"]
    ready = task.state == TaskStatus.READY
    may_work, refusal = policy.may_work_task(user, task, task.instance) if ready else (False, "")
    if may_work and detail["exclusion"]:
        may_work, refusal = False, detail["exclusion"]
    form = build_form(detail["form_schema"], detail["ui_schema"], detail["data"], submitted, errors)
    # A form refused for its errors keeps its token: nothing was done, so it may be sent again.
    token = SubmissionService.usable(submitted.get(SUBMISSION_FIELD)) if submitted is not None else None
    return render_template("task.html", active="tasks", task=task, record=detail["record"],
                           submission_token=token or SubmissionService.new_token(),
                           record_visible=detail["record_visible"], clashes=detail["clashes"], clash_text=clash_text,
                           instructions=durations_in_words(detail["instructions"], detail["data"]),
                           documentation=detail["documentation"],
                           context=_context_lines(detail["context"], task.process_id, detail["titles"]),
                           form=form, form_title=(detail["form_schema"] or {}).get("title"), ready=ready,
                           unsent=form if not ready and errors and UNSENT_KEY in errors else None,
                           claimed_by_me=task.claimed_by_id == user.id, may_work=may_work,
                           may_claim=policy.may_claim(user, task),
                           refusal=reason_text(refusal), candidates=detail["candidates"],
                           reassign=reassign or {"username": "", "errors": []}), status


# -- reassigning a task (admins) --------------------------------------------------------------------


def _reassign_candidates(task: Any) -> list[tuple[str, str]]:
    """Whom the task page suggests an admin hand the task to, as ``(username, display name)``: the
    active members of its candidate group or lane, its assigned user, or, outside any lane, its
    starter; not its claimant, nor anyone its separation of duties leaves out. A suggestion only:
    the field takes any name (another admin, say) and ``TaskService.reassign`` decides."""
    group = task.candidate_group or task.lane
    people = list(services().instances.group_members(group)) if group else []
    holder = services().users.find(task.assigned_user) if task.assigned_user else None
    if holder is not None and policy.works_tasks(holder):  # not a leaver
        people.insert(0, (holder.username, holder.display_name or holder.username))
    elif not group and task.instance.started_by is not None:
        starter = task.instance.started_by
        people.append((starter.username, starter.display_name or starter.username))
    claimant = task.claimed_by.username if task.claimed_by is not None else None
    seen: set[str] = set()
    chosen = []
    for username, display in people:
        if username in seen or username == claimant or policy.excludes(task, username):
            continue
        seen.add(username)
        chosen.append((username, display))
    return chosen


#: The reasons ``TaskService.reassign`` gives for a user who may not be handed a task (beside the
#: field; the process's own ``excludeReason`` texts are in ``REASONS``).
_ASSIGN_REASONS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"the user is deactivated"), _l("the user is deactivated")),
    (re.compile(r"the task is in the (?P<group>.+) group's queue, and that is not one of the user's groups"),
     _l("the task is in the %(group)s group's queue, and that is not one of the user's groups")),
    (re.compile(r"the task is assigned to (?P<name>.+) alone"), _l("the task is assigned to %(name)s alone")),
    (re.compile(r"the task belongs to whoever started the process"),
     _l("the task belongs to whoever started the process")),
    (re.compile(r"the task is not in one of the user's groups' lanes"),
     _l("the task is not in one of the user's groups' lanes")),
    (re.compile(r"separation of duties: the user may not work on this task"),
     _l("separation of duties: the user may not work on this task")),
    (re.compile(r"the user holds or did another “(?P<name>.+)” of this round already: one vote each"),
     _l("the user holds or did another “%(name)s” of this round already: one vote each")),
]


def assign_reason(text: str) -> str:
    """Why the user named in the reassign form may not be handed the task, in the page's language."""
    for pattern, words in _ASSIGN_REASONS:
        match = pattern.fullmatch(text)
        if match:
            return str(words) % match.groupdict() if match.groupdict() else str(words)
    return reason_text(text)


def _reassign_page(task_id: int) -> str:
    """What a refused reassign form is kept under (not the task form's ``task:<id>``: its errors
    are said beside the reassign form alone)."""
    return f"task:{task_id}:reassign"


def _reassign_refused(user: User, task_id: int, username: str, messages: list[str]) -> Any:
    """Post/Redirect/Get for a refused reassign form (app/web/refused_forms.py): the name and why
    it was refused (in the page's words) kept for the task page's next GET, a 303 to it; the page
    in place (422) when too large to keep."""
    return (refused_forms.back_with(_reassign_page(task_id), {"username": messages},
                                    url_for("web.task", task_id=task_id, _anchor="reassign"))
            or _render_task(user, task_id, reassign={"username": username, "errors": messages}, status=422))


@bp.post("/tasks/<int:task_id>/reassign")
def reassign(task_id: int) -> Any:
    """An admin, or an agent of the task's group, hands a ready task to someone (``TaskService.reassign``, as the API's
    ``POST /api/v1/tasks/<id>/reassign``): a name the service refuses is said beside the field, on
    the task page a 303 leads back to; a non-admin gets 403, a task that is no longer open a flash."""
    user = signed_in_user()
    svc = services()
    username = request.form.get("username", "").strip()[:128]

    def hand_over() -> tuple[Any, str] | None:
        # 404 for a task the user may not see, 403 for one they may not reassign (audited), before
        # any name is looked up; None for an unknown name (told to an admin only: an agent is told
        # what a user outside the group is), said beside the field.
        task = svc.tasks.reassignable(user, task_id)
        assignee = svc.tasks.named_assignee(user, task, username, svc.users.find) if username else None
        if assignee is None:
            return None
        return svc.tasks.hand_over(user, task, assignee), assignee.username

    try:
        done = unit_of_work(hand_over)
    except ValidationFailed as err:
        messages = (err.details.get("fields") or {}).get("username") or [err.message]
        return _reassign_refused(user, task_id, username, [assign_reason(m) for m in messages])
    except Conflict as err:
        flash(_("The task could not be reassigned: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.task", task_id=task_id))
    if done is None:
        message = _("There is no user %(name)s.", name=username) if username else service_text("is required")
        return _reassign_refused(user, task_id, username, [message])
    task, given_to = done
    flash(_("“%(name)s” is now with %(username)s.", name=task_name(task), username=given_to), "success")
    return redirect(url_for("web.task", task_id=task_id))


#: The tags of rendered instructions, or the text between them.
_TAG_OR_TEXT = re.compile(r"(<[^>]*>)")
#: Where a value is written as it is: code the instructions quote.
_VERBATIM = frozenset({"code", "pre"})


def _texts(data: Any, depth: int = 3) -> Iterator[str]:
    """The strings among ``data``'s values, and among those of the objects and lists it holds (a few
    levels: a change's ``before_revision`` keeps the planned end its revise task shows)."""
    values = data.values() if isinstance(data, Mapping) else data if isinstance(data, list) else ()
    for value in values:
        if isinstance(value, str):
            yield value
        elif depth > 1 and isinstance(value, Mapping | list):
            yield from _texts(value, depth - 1)


def durations_in_words(instructions: str, data: Mapping[str, Any]) -> Markup:
    """A task's rendered instructions (safe HTML: TaskService.detail) with the ISO 8601 durations
    and date-times its process's variables put in them ("closed automatically after {{
    auto_close_after }}" -> "after 3 days"; "Planned: {{ planned_start }}" -> "Planned: 12/5/26,
    10:00 AM") as the page's language says them, the value kept in the markup (``<data
    value="P3D">``, ``<time datetime=...>``, as record pages show them). Only the values of the
    task's data are worded, so what the diagram's author wrote out stays as written; the API keeps
    the text as rendered."""
    from .labels import is_instant, iso_duration, show  # labels builds on the pages that build on this module

    durations = {value.strip() for value in _texts(data)
                 if iso_duration(value) is not None or is_instant(value.strip())}
    if not instructions or not durations:
        return Markup(instructions)
    # Whole tokens only (not "P3D" in "XP3D-1" or a path), longest first ("P1DT2H" before "P1D";
    # a date-time before the date it starts with).
    token = re.compile(r"(?<![\w/.:-])(" + "|".join(re.escape(d) for d in sorted(durations, key=len, reverse=True))
                       + r")(?![\w/:+-])")
    parts: list[str] = []
    verbatim = 0
    for piece in _TAG_OR_TEXT.split(instructions):
        if piece.startswith("<"):
            name = piece.strip("</> ").split(" ", 1)[0].lower()
            if name in _VERBATIM:
                verbatim += -1 if piece.startswith("</") else 1
            parts.append(piece)
        elif verbatim or not piece:
            parts.append(piece)
        else:  # text of the sanitised HTML: already escaped; a duration or date-time holds nothing to escape
            parts.append(token.sub(lambda match: str(show(match.group(1))), piece))
    return Markup("".join(parts))


def _context_lines(context: list[dict[str, Any]], process_id: str,
                   titles: Mapping[str, Mapping[str, str]]) -> list[tuple[str, Any]]:
    """The task's context (TaskService.detail) as (label, text) lines in the page's language:
    record details named and values worded as the record page does (``titles``: the record's
    ``RecordService.value_titles``), start-form answers with their form's own titles and choice
    titles, translated as the process's (or the catalog's) content is."""
    from .labels import show  # labels builds on the pages that build on this module
    from .ticket_pages import detail_label

    translate = instance_translator(process_id)
    lines: list[tuple[str, Any]] = []
    for entry in context:
        value = entry["value"]
        if entry["source"] == "instance":
            lines.append((_("Requester"), entry["display"] or value))
        elif entry["source"] == "record":
            key = f"details.{entry['name']}"
            # the titles in the content's words (a catalog item's name), the rest by the pages' catalog
            worded = {stored: translate(title) for stored, title in (titles.get(key) or {}).items()}
            lines.append((detail_label(entry["name"]), show(value, key, worded)))
        else:
            label = translate_joined(translate, entry["label"], ": ",
                                     lambda group, field: _("%(group)s: %(field)s", group=group, field=field))
            if entry["display"]:
                text: Any = translate_joined(translate, entry["display"], ", ",
                                             lambda listed, choice: _("%(choices)s, %(choice)s", choices=listed,
                                                                      choice=choice))
            else:  # a choice without a title of its own may have a deployed translation
                deployed = deployed_text(process_id, value) if isinstance(value, str) else None
                text = deployed if deployed is not None else show(value)
            lines.append((label, text))
    return lines
