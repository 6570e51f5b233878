"""The response template pages (routes on the shared ``web`` blueprint; app/services/responses.py
decides).

- ``/response-templates``: the desk's templates and the reader's own (agents, process owners,
  admins; anyone else 403), and a form to write a new one: the reader's own, or the desk's for
  process owners and admins. The placeholders a text may hold are listed beside it.
- ``/response-templates/<id>``: one template; who may change it edits or deletes it there (an edit
  over a version changed meanwhile is refused, 409, with the typed text kept); anyone else reads it.
- On a record's page, the comment form offers the templates for the record's kind: "Insert"
  (``POST /tickets/<number>/comments/template``) puts the chosen one, filled in from the record,
  after what was typed, and the page comes back with the comment still to send. Nothing is
  stored until the agent sends the comment. No script is needed.

A refused form comes back with each problem beside its field (Post/Redirect/Get,
app/web/refused_forms.py). Every form carries the session's CSRF token (checked for every POST by
the blueprint).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import Conflict, NotFound, ValidationFailed
from app.models import ResponseTemplate
from app.services.records import MAX_COMMENT
from app.services.responses import BODY_MAX, NAME_MAX, PLACEHOLDERS, ResponseService, may_share

from . import refused_forms
from .forms import service_texts
from .labels import KIND_LABELS
from .ticket_pages import back_to_record, render_ticket
from .views import bp, signed_in_user

#: The keys of the forms as their refusals are kept (app/web/refused_forms.py).
NEW_PAGE = "responses:new"
EDIT_PAGE = "responses:edit"
#: What each placeholder is filled in with, as the pages list them.
PLACEHOLDER_HELP = {
    "number": "INC-000123", "title": _l("the record's title"), "requester": _l("the requester's name"),
    "assignee": _l("the assignee's name"), "group": _l("the assignment group"), "service": _l("the service or CI"),
    "priority": "P1-P4", "agent": _l("your name"),
}



def _values(form: Any, *, with_shared: bool) -> dict[str, Any]:
    values: dict[str, Any] = {"name": form.get("name", ""), "body": form.get("body", ""), "kind": form.get("kind") or None}
    if with_shared:
        values["shared"] = form.get("shared") == "1"
    return values


def _page_context() -> dict[str, Any]:
    return {"active": "responses", "kinds": KIND_LABELS, "placeholders": [(p, PLACEHOLDER_HELP[p]) for p in PLACEHOLDERS],
            "name_max": NAME_MAX, "body_max": BODY_MAX}


@bp.get("/response-templates")
def response_templates() -> Any:
    refused = refused_forms.take(NEW_PAGE)
    form, errors = refused if refused else (MultiDict(), {})
    return _list_page(form, errors)


def _list_page(form: Any, errors: dict[str, list[Any]], status: int = 200) -> Any:
    me = signed_in_user()
    rows = unit_of_work(lambda: services().responses.visible(me))
    return render_template("response_templates.html", **_page_context(), rows=rows, form=form,
                           errors=service_texts(errors), may_share=may_share(me),
                           editable={r.id for r in rows if ResponseService.may_edit(me, r)}), status


@bp.post("/response-templates")
def response_template_create() -> Any:
    me = signed_in_user()
    svc = services()
    unit_of_work(lambda: svc.responses.require_user(me, "response_template_create"))  # 403 before the fields
    form = request.form
    try:
        row = unit_of_work(lambda: svc.responses.create(me, _values(form, with_shared=may_share(me))))
    except ValidationFailed as err:
        errors = refused_forms.field_errors(err)
        back = url_for("web.response_templates", _anchor="new-template")
        return refused_forms.back_with(NEW_PAGE, errors, back) or _list_page(form, errors, 422)
    flash(_("The template “%(name)s” is saved.", name=row.name), "success")
    return redirect(url_for("web.response_templates", _anchor=f"template-{row.id}"), 303)


@bp.get("/response-templates/<int:template_id>")
def response_template(template_id: int) -> Any:
    refused = refused_forms.take(f"{EDIT_PAGE}:{template_id}")
    form, errors = refused if refused else (MultiDict(), {})
    return _edit_page(template_id, form, errors)


def _edit_page(template_id: int, form: Any, errors: dict[str, list[Any]], status: int = 200) -> Any:
    me = signed_in_user()
    row: ResponseTemplate = unit_of_work(lambda: services().responses.get(me, template_id))
    shown = _shown(row)
    # the form starts from the template as it is now; a refused form keeps what its author changed
    filled = MultiDict(form.items(multi=True))
    for name, value in shown.items():
        if name not in filled:
            filled[name] = value
    return render_template("response_template.html", **_page_context(), row=row, form=filled, shown=shown,
                           errors=service_texts(errors), may_share=may_share(me) and row.owner_id is not None,
                           editable=ResponseService.may_edit(me, row)), status


#: What an edit may change; the form says what it showed of each (``shown_<name>``), and only
#: those its author changed are sent: an edit sent again after another one came first (409) does
#: not put back what the page showed before.
CHANGEABLE = ("name", "body", "kind", "shared")


def _shown(row: ResponseTemplate) -> dict[str, str]:
    return {"name": row.name, "body": row.body, "kind": row.kind or "", "shared": "1" if row.owner_id is None else ""}


def _changed(form: Any) -> list[str]:
    """The fields of the edit form its author changed from what the page showed (all of them when
    the form does not say what it showed)."""
    # the desk's box is on the form only for who may share a template of their own
    names = [name for name in CHANGEABLE if name != "shared" or "shown_shared" in form]
    return [name for name in names
            if form.get(f"shown_{name}") is None or form.get(name, "").strip() != form.get(f"shown_{name}", "").strip()]


@bp.post("/response-templates/<int:template_id>")
def response_template_update(template_id: int) -> Any:
    me = signed_in_user()
    svc = services()
    form = request.form
    try:
        version: int | None = int(form.get("version", ""))
    except ValueError:
        version = None
    changed = _changed(form)
    given = _values(form, with_shared=True)
    values = {name: given[name] for name in changed}
    back = url_for("web.response_template", template_id=template_id)
    try:
        unit_of_work(lambda: svc.responses.update(me, template_id, version, values))
    except ValidationFailed as err:
        errors = refused_forms.field_errors(err)
        return refused_forms.back_with(f"{EDIT_PAGE}:{template_id}", errors, back) \
            or _edit_page(template_id, form, errors, 422)
    except Conflict:
        # another edit came first: the page shows the template as it is now, with what this
        # author changed kept over it
        errors = {"body": [_("Someone changed this template while you edited it: it shows as it is now, with "
                             "your text kept. Send it again to replace theirs.")]}
        kept = MultiDict([(name, form.get(name, "")) for name in changed])
        return refused_forms.back_with(f"{EDIT_PAGE}:{template_id}", errors, back, kept) \
            or _edit_page(template_id, kept, errors, 409)
    flash(_("The template is saved."), "success")
    return redirect(url_for("web.response_templates", _anchor=f"template-{template_id}"), 303)


@bp.post("/response-templates/<int:template_id>/delete")
def response_template_delete(template_id: int) -> Response:
    me = signed_in_user()
    try:
        unit_of_work(lambda: services().responses.delete(me, template_id))
    except NotFound:
        flash(_("The template was deleted already."), "error")
        return redirect(url_for("web.response_templates"), 303)
    flash(_("The template is deleted."), "success")
    return redirect(url_for("web.response_templates"), 303)


# -- a record's comment form --------------------------------------------------------------------


@bp.post("/tickets/<number>/comments/template")
def ticket_comment_template(number: str) -> Any:
    """Put the chosen template, filled in from the record, after the comment typed so far, and come
    back to the record's page with the comment still to send."""
    me = signed_in_user()
    svc = services()
    typed = request.form.get("body", "")
    try:
        template_id: int | None = int(request.form.get("response", ""))
    except ValueError:
        template_id = None

    def fill() -> str:
        svc.responses.require_user(me, "response_template_insert")
        ticket = svc.records.get(me, number)
        if template_id is None:
            raise NotFound("no template chosen")
        return svc.responses.filled(me, ticket, template_id)

    errors: dict[str, list[str]] = {}
    text = typed
    try:
        filled = unit_of_work(fill)
    except NotFound as err:
        if template_id is None or err.details.get("id") == template_id:
            errors = {"body": [_("That template is no longer there: choose another.")]}
        else:
            raise  # the record: the 404 page, as the record's own page answers
    except ValidationFailed:
        errors = {"body": [_("That template is for another kind of record.")]}
    else:
        text = f"{typed.rstrip()}\n\n{filled}" if typed.strip() else filled
        if len(text) > MAX_COMMENT:
            errors = {"body": [_("With the template the comment would be longer than %(max)s characters: it was not "
                                 "inserted.", max=MAX_COMMENT)]}
            text = typed
    values = MultiDict([("body", text), ("response", str(template_id or ""))])
    return back_to_record(number, "comment", errors, values) \
        or render_ticket(me, number, comment={"body": text, "errors": errors.get("body", []),
                                              "response": str(template_id or "")}, status=422 if errors else 200)
