"""Pages of the knowledge base (routes on the shared ``web`` blueprint).

``/knowledge`` searches the articles (a GET form, so a search is a link): published ones for
everyone, and for the desk's staff drafts and retired ones too, by a status choice.
``/knowledge/<number>`` shows one article: symptoms, cause, workaround, the problem it was
published from with that problem's status now (and its fix change), and for the staff its
earlier versions and the publish / retire buttons. ``/knowledge/new`` and
``/knowledge/<number>/edit`` are the staff's forms: the edit form carries the version it was
opened on, so an edit over someone else's comes back with the input kept and the current version
named. A refused form (its fields, or such a stale edit) is answered with a redirect to its page,
which shows the input and the problems once (Post/Redirect/Get, app/web/refused_forms.py; in place,
422 or 409, when too large to keep). Every decision is ``KnowledgeService``'s
(app/services/knowledge.py); a draft or retired article is "not found" for anyone but the staff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import Conflict, PermissionDenied, ValidationFailed
from app.models import User
from app.services import policy
from app.services.forms import FORM_ERROR_KEY
from app.services.knowledge import (
    MAX_NOTE,
    MAX_TEXT,
    MAX_TITLE,
    SORTS,
    STATUSES,
    TEXT_FIELDS,
    is_knowledge_staff,
)

from . import refused_forms
from .forms import service_text
from .labels import STATUS_LABELS, label
from .views import bp, json_answer, page_arg, past_the_last_page, reason_text, signed_in_user

#: Longest search text taken from the address (longer ones are cut).
MAX_QUERY = 200
PER_PAGE = 20
ARTICLE_STATUS_LABELS: dict[str, Any] = {"draft": _l("Draft"), "published": _l("Published"), "retired": _l("Retired")}
FIELD_LABELS: dict[str, Any] = {"title": _l("Title"), "symptoms": _l("Symptoms"), "cause": _l("Cause"),
                                "workaround": _l("Workaround"), "note": _l("Change note")}
FIELD_HELP: dict[str, Any] = {
    "title": _l("What the reader searches for, in one line."),
    "symptoms": _l("What the user sees: messages, behaviour, affected services."),
    "cause": _l("Why it happens, when known."),
    "workaround": _l("What to do until it is fixed, step by step."),
    "note": _l("Why you changed the article (optional); kept with its history."),
}
#: How a stale edit (a Conflict, not a problem with a field) is marked among a refused form's errors.
STALE_KEY = "_stale"
LIMITS = {"title": MAX_TITLE, "symptoms": MAX_TEXT, "cause": MAX_TEXT, "workaround": MAX_TEXT, "note": MAX_NOTE}


def _number(number: str) -> str:
    if len(number) > 32:
        abort(404)
    return number.upper()


# -- the list ---------------------------------------------------------------------------------------


@bp.get("/knowledge")
def knowledge() -> Any:
    user = signed_in_user()
    staff = is_knowledge_staff(user)
    q = " ".join(request.args.get("q", "").split())[:MAX_QUERY]
    status = request.args.get("status", "") if staff else ""
    if status not in (*STATUSES, "all"):
        status = ""
    sort = request.args.get("sort", "") if staff else ""
    if sort not in SORTS:
        sort = ""
    page = page_arg()
    svc = services()

    def read() -> tuple[list[dict[str, Any]], int]:
        rows, total = svc.knowledge.search(q or None, page, PER_PAGE, user=user, status=status or None,
                                           sort=sort or "newest")
        return svc.knowledge.article_dicts(rows, user), total

    articles, total = unit_of_work(read)
    beyond = past_the_last_page(page, total, PER_PAGE)
    if beyond is not None:
        return beyond
    params = {k: v for k, v in {"q": q, "status": status, "sort": sort}.items() if v}
    return render_template("knowledge.html", active="knowledge", q=q, status=status, sort=sort, staff=staff,
                           articles=articles,
                           total=total, page=page, pages=max(1, -(-total // PER_PAGE)), params=params,
                           searching=bool(q or status or sort), statuses=ARTICLE_STATUS_LABELS,
                           record_statuses=STATUS_LABELS, label=label)


@bp.get("/knowledge/related")
def related_articles() -> Any:
    """What a form field with ``ui:suggestArticles`` offers as its user types
    (js/as-you-type.js): ``{"items": [{"number", "title", "url"}]}``, the published articles
    about the words sent (``KnowledgeService.related``), best first."""
    signed_in_user()
    svc = services()
    text = request.args.get("q", "")[:500]

    def read() -> dict[str, Any]:
        return {"items": [{"number": a.number, "title": a.title, "url": url_for("web.knowledge_article", number=a.number)}
                          for a in svc.knowledge.related(text)]}

    return json_answer(read)


# -- one article ------------------------------------------------------------------------------------


@bp.get("/knowledge/<number>")
def knowledge_article(number: str) -> str:
    user = signed_in_user()
    number = _number(number)
    svc = services()
    staff = is_knowledge_staff(user)

    def read() -> dict[str, Any]:
        article = svc.knowledge.find(user, number)
        return {"article": svc.knowledge.article_dicts([article], user)[0],
                "revisions": svc.knowledge.revisions(user, number) if staff else []}

    found = unit_of_work(read)
    return render_template("knowledge_article.html", active="knowledge", **found, staff=staff,
                           read_only=policy.is_read_only(user),
                           statuses=ARTICLE_STATUS_LABELS, record_statuses=STATUS_LABELS, label=label,
                           fields=FIELD_LABELS)


# -- writing ----------------------------------------------------------------------------------------


def _form_values() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in (*TEXT_FIELDS, "note")}


def _field_errors(err: ValidationFailed | Mapping[str, list[Any]]) -> dict[str, list[str]]:
    fields = refused_forms.field_errors(err) if isinstance(err, ValidationFailed) else err
    return {name: [service_text(m) for m in messages] for name, messages in fields.items()}


def _taken(page: str) -> tuple[dict[str, str], str, dict[str, list[str]]] | None:
    """The form refused on ``page`` (its text fields, the version it was sent with) and its
    problems, once; None when there is none."""
    refused = refused_forms.take(page)
    if refused is None:
        return None
    values, errors = refused
    return ({name: values.get(name, "") for name in (*TEXT_FIELDS, "note")}, values.get("version", ""),
            _field_errors(errors))


def _stale_notice(article: Mapping[str, Any], current: int) -> str:
    """Why an edit was not saved: the article was retired, or someone else saved ``current``."""
    if article["status"] == "retired":
        return _("This article is retired: publish it again before editing it.")
    return _("Someone else saved version %(version)s of this article while you were editing. Your text is kept "
             "below: compare it with the article, then save again to replace version %(version)s.", version=current)


def _render_form(user: User, *, article: Mapping[str, Any] | None, values: Mapping[str, str], version: int | None,
                 errors: Mapping[str, list[str]] | None = None, notice: str | None = None, status: int = 200) -> Any:
    return render_template("knowledge_form.html", active="knowledge", article=article, values=values, version=version,
                           errors=errors or {}, notice=notice, fields=FIELD_LABELS, help=FIELD_HELP, limits=LIMITS,
                           form_error_key=FORM_ERROR_KEY), status


@bp.route("/knowledge/new", methods=["GET", "POST"])
def knowledge_new() -> Any:
    user = signed_in_user()
    if not is_knowledge_staff(user):
        abort(404)
    page = "knowledge:new"
    if request.method == "GET":
        refused = _taken(page)
        if refused is not None:
            return _render_form(user, article=None, values=refused[0], version=None, errors=refused[2])
        return _render_form(user, article=None, values=dict.fromkeys((*TEXT_FIELDS, "note"), ""), version=None)
    values = _form_values()
    svc = services()
    try:
        number = unit_of_work(lambda: svc.knowledge.draft(user, values).number)
    except ValidationFailed as err:
        # Post/Redirect/Get (app/web/refused_forms.py): Back and Reload send nothing; in place when too large.
        return (refused_forms.back_to_form(page, err, url_for("web.knowledge_new"))
                or _render_form(user, article=None, values=values, version=None, errors=_field_errors(err),
                                status=422))
    flash(_("Draft %(number)s was saved. Publish it when it is ready.", number=number), "success")
    return redirect(url_for("web.knowledge_article", number=number))


@bp.route("/knowledge/<number>/edit", methods=["GET", "POST"])
def knowledge_edit(number: str) -> Any:
    user = signed_in_user()
    number = _number(number)
    svc = services()
    if not is_knowledge_staff(user):
        # a published article exists for them, but is not theirs to change; anything else is not found
        unit_of_work(lambda: svc.knowledge.find(user, number))
        abort(403)
    page = f"knowledge:edit:{number}"
    if request.method == "GET":
        article = unit_of_work(lambda: svc.knowledge.article_dicts([svc.knowledge.find(user, number)], user)[0])
        refused = _taken(page)
        if refused is not None:
            # the version the refused form was sent with (after a stale edit, the current one: saving
            # again replaces it); a refusal for its fields still meets someone else's save
            sent_version = int(refused[1]) if refused[1].isdigit() else 0
            errors = refused[2]
            stale = errors.pop(STALE_KEY, None)
            return _render_form(user, article=article, values=refused[0], version=sent_version, errors=errors,
                                notice=_stale_notice(article, sent_version) if stale else None)
        return _render_form(user, article=article, values={**{n: article[n] for n in TEXT_FIELDS}, "note": ""},
                            version=article["version"])
    values = _form_values()
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        version = 0
    try:
        unit_of_work(lambda: svc.knowledge.edit(user, number, version, values))
    except ValidationFailed as err:
        back = refused_forms.back_to_form(page, err, url_for("web.knowledge_edit", number=number))
        if back is not None:
            return back
        article = unit_of_work(lambda: svc.knowledge.article_dicts([svc.knowledge.find(user, number)], user)[0])
        return _render_form(user, article=article, values=values, version=version, errors=_field_errors(err),
                            status=422)
    except Conflict as err:
        article = unit_of_work(lambda: svc.knowledge.article_dicts([svc.knowledge.find(user, number)], user)[0])
        current = int(err.details.get("current_version", article["version"]))
        # The form now edits the current version: saving again is a deliberate overwrite. Sent back
        # to the form's page as a refusal is (Post/Redirect/Get), the text kept; in place when too large.
        kept = MultiDict(request.form)
        kept.setlist("version", [str(current)])
        if refused_forms.keep(page, kept, {STALE_KEY: [str(current)]}):
            return redirect(url_for("web.knowledge_edit", number=number), 303)
        return _render_form(user, article=article, values=values, version=current,
                            notice=_stale_notice(article, current), status=409)
    flash(_("Your changes to %(number)s were saved.", number=number), "success")
    return redirect(url_for("web.knowledge_article", number=number))


def _action(number: str, act: str) -> Response:
    user = signed_in_user()
    number = _number(number)
    svc = services()
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        version = None
    method = svc.knowledge.publish_article if act == "publish" else svc.knowledge.retire
    try:
        unit_of_work(lambda: method(user, number, version))
    except Conflict as err:
        flash(_("Nothing was done: %(reason)s", reason=reason_text(err)), "error")
        return redirect(url_for("web.knowledge_article", number=number))
    if act == "publish":
        flash(_("%(number)s is published: everyone signed in can find it.", number=number), "success")
    else:
        flash(_("%(number)s is retired: only the service desk sees it now.", number=number), "success")
    return redirect(url_for("web.knowledge_article", number=number))


@bp.post("/knowledge/<number>/feedback")
def knowledge_feedback(number: str) -> Response:
    """"Was this article helpful?" answered (``KnowledgeService.rate``): back to the article,
    which says the answer given."""
    user = signed_in_user()
    number = _number(number)
    answer = request.form.get("helpful", "")
    if answer not in ("yes", "no"):
        flash(_("Choose whether the article helped."), "error")
        return redirect(url_for("web.knowledge_article", number=number))
    try:
        unit_of_work(lambda: services().knowledge.rate(user, number, answer == "yes"))
    except (Conflict, PermissionDenied) as err:
        flash(_("Nothing was done: %(reason)s", reason=reason_text(err)), "error")
    return redirect(url_for("web.knowledge_article", number=number, _anchor="kb-feedback"))


@bp.post("/knowledge/<number>/publish")
def knowledge_publish(number: str) -> Response:
    return _action(number, "publish")


@bp.post("/knowledge/<number>/retire")
def knowledge_retire(number: str) -> Response:
    return _action(number, "retire")
