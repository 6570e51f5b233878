"""Pages of the catalog area (routes on the shared ``web`` blueprint).

``/catalog`` shows the category tree with its items and searches it by keyword and category (a GET
form, so a search is a link); ``/catalog/<code>`` shows one item and its request form, generated
from the item's JSON Schema and UI schema like a task form. A request is posted back to the same
address, validated by ``CatalogService.request_item`` and answered with the new record's page, or
the inbox while that page does not exist (the form carries a one-time token, so a request sent
twice is ordered once: app/services/submissions.py); a refused form comes back with its errors beside each
field (422) and the user's input kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_currency
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.api import services, unit_of_work
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import CatalogCategory, ItemStatus, User
from app.services import policy
from app.services.catalog import BUDGET_APPROVAL_ABOVE, REQUEST_PROCESS
from app.services.submissions import FIELD as SUBMISSION_FIELD
from app.services.submissions import SubmissionService

from . import refused_forms
from .content import CATALOG_SCOPE, translator
from .errors import error_page, flash_already_sent, optional_url
from .forms import (
    CALLER_FIELD,
    Translate,
    build_form,
    caller_errors,
    for_others_refused,
    localize_form,
    submitted_data,
    with_caller_field,
)
from .i18n import page_language
from .recurring_pages import REPEAT_FIELDS, repeat_context, repeat_view, schedule_sent_form, schedules, without_schedule
from .views import bp, signed_in_user

#: Longest search text and category code taken from the address (longer ones are cut).
MAX_QUERY = 200
MAX_CATEGORY = 32
CURRENCY = "EUR"

#: Who approves, in the words the catalog shows (keys from CatalogService.expected_approval).
APPROVAL_WORDS = {
    "none": _l("No approval needed: it goes straight to fulfilment."),
    "line_manager": _l("Your line manager approves it first."),
    "budget_owner": _l("A budget owner approves it first."),
}
#: What happens next, in the message shown once a request is sent (the request's ``approval``).
NEXT_STEP = {
    "none": _l("It goes straight to fulfilment."),
    "line_manager": _l("It now waits for your line manager's approval."),
    "budget_owner": _l("It now waits for a budget owner's approval."),
}
STATUS_WORDS = {
    ItemStatus.DRAFT: _l("Draft"),
    ItemStatus.RETIRED: _l("Retired"),
}


def _cost(amount: float) -> str:
    return _("Free") if not amount else format_currency(amount, CURRENCY)


def _target(hours: int) -> str:
    # Singular and plural as two messages (the translation check reads gettext calls only).
    text = _("1 hour") if hours == 1 else _("%(num)d hours", num=hours)
    if hours >= 48 and hours % 24 == 0:
        text = _("%(hours)s (%(days)s)", hours=text, days=_("%(num)d days", num=hours // 24))
    return text


def _approval(approval: str, approver: str | None) -> str:
    if approval == "line_manager" and approver:
        return _("Your line manager, %(name)s, approves it first.", name=approver)
    return str(APPROVAL_WORDS[approval])


def _with_quantity(text: str, approval: str, cost: float, schema: dict[str, Any] | None) -> str:
    """``text`` (who approves one unit) and, for an item ordered in quantities (its form has a
    ``quantity``) whose total can pass the budget owners' threshold, from how many on they decide
    (QA: the page named the line manager for ten licences that went to the budget owners)."""
    quantity = ((schema or {}).get("properties") or {}).get("quantity")
    if approval == "budget_owner" or cost <= 0 or not isinstance(quantity, dict):
        return text
    most = quantity.get("maximum")
    from_count = int(BUDGET_APPROVAL_ABOVE // cost) + 1  # the first count whose total is over the threshold ...
    while from_count > 1 and (from_count - 1) * cost > BUDGET_APPROVAL_ABOVE:
        from_count -= 1  # ... as the request computes it (count * cost, in floating point)
    while from_count * cost <= BUDGET_APPROVAL_ABOVE:
        from_count += 1
    if isinstance(most, int) and most < from_count:
        return text
    return " ".join((text, _("From %(count)d on (over %(limit)s in total), a budget owner approves it.",
                              count=from_count, limit=format_currency(BUDGET_APPROVAL_ABOVE, CURRENCY))))


def _facts(item: dict[str, Any], approval: tuple[str, str | None]) -> dict[str, Any]:
    """An item's numbers and rules as the pages show them."""
    return {**item, "cost_text": _cost(item["cost"]), "target_text": _target(int(item["target_hours"] or 0)),
            "approval_text": _approval(*approval),
            "status_text": str(STATUS_WORDS[item["status"]]) if item["status"] in STATUS_WORDS else None}


def _walk(nodes: list[dict[str, Any]], depth: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
    for node in nodes:
        yield node, depth
        yield from _walk(node["children"], depth + 1)


def _count(nodes: list[dict[str, Any]]) -> int:
    return sum(len(node["items"]) for node, _depth in _walk(nodes))


# -- the catalog ------------------------------------------------------------------------------------


@bp.get("/catalog")
def catalog() -> str:
    user = signed_in_user()
    q = " ".join(request.args.get("q", "").split())[:MAX_QUERY]
    category = request.args.get("category", "").strip()[:MAX_CATEGORY]
    svc = services()

    translate = translator(CATALOG_SCOPE)
    # In another language the search matches the names and descriptions the page shows (the
    # catalog's translation, which only the pages read) as well as the stored English and codes.
    reworded = translate if q and page_language() != "en" else None

    def read() -> dict[str, Any]:
        everything = svc.catalog.tree(user)
        found = svc.catalog.tree(user, q or None, category or None, reworded) if q or category else everything
        for node, _depth in _walk(found):
            node["items"] = [_facts(i, svc.catalog.expected_approval(i["approval"], i["cost"], user))
                             for i in node["items"]]
        return {"everything": everything, "found": found,
                "path": svc.catalog.category_path(category) if category else []}

    page = unit_of_work(read)
    for tree in (page["everything"], page["found"]) if page["found"] is not page["everything"] else (page["found"],):
        for node, _depth in _walk(tree):
            node["name"] = translate(node["name"])
            node["items"] = [_in_words(item, translate) for item in node["items"]]
    categories = [(node["code"], node["name"], depth) for node, depth in _walk(page["everything"])]
    return render_template("catalog.html", active="catalog", q=q, category=category, categories=categories,
                           tree=page["found"], path=_path(page["path"], translate), total=_count(page["found"]),
                           searching=bool(q or category))


def _in_words(item: dict[str, Any], translate: Translate) -> dict[str, Any]:
    """An item as the page shows it: its name and description in the page's language."""
    return {**item, "name": translate(item["name"]), "description": translate(item["description"] or "")}


def _path(categories: list[CatalogCategory], translate: Translate) -> list[dict[str, str]]:
    return [{"code": c.code, "name": translate(c.name)} for c in categories]


# -- one item and its request form ------------------------------------------------------------------


@bp.route("/catalog/<code>", methods=["GET", "POST"])
def catalog_item(code: str) -> Any:
    user = signed_in_user()
    if len(code) > 64:
        abort(404)
    if request.method == "GET" and code != code.upper():
        # the item's own address (one page per item for bookmarks and the refused-form memory)
        item = unit_of_work(lambda: services().catalog.get_item(code, user))
        return redirect(url_for("web.catalog_item", code=item.code), 301)
    page = f"catalog:{code}"
    if request.method == "GET":
        refused = refused_forms.take(page)  # sent back by the redirect below: shown once
        if refused is not None:
            return _render_item(user, code, submitted=refused[0], errors=refused[1])
        return _render_item(user, code)
    if not policy.may_start(user):
        return error_page(403, _("Not allowed"), _("You may read the catalog but not request items."))
    data = without_schedule(submitted_data(request.form))
    svc = services()
    if schedules(request.form):
        return _schedule(user, code, page, data)

    def order() -> tuple[dict[str, Any], str, str | None]:
        ticket = svc.catalog.request_item(user, code, data, coerce_strings=True,
                                          on_behalf_of=request.form.get(CALLER_FIELD))
        url = optional_url("web.ticket", number=ticket.number) or url_for("web.tasks")
        return ({"title": ticket.title, "approval": (ticket.details or {}).get("approval"),
                 "for": ticket.requester.username if ticket.requester and ticket.requester_id != user.id else None},
                url, ticket.number)

    try:
        # Once per rendering of the form: sent again (a double click), it goes where the first went.
        sent = unit_of_work(lambda: svc.submissions.once(user, request.form.get(SUBMISSION_FIELD), order))
    except PermissionDenied as err:
        refused = for_others_refused(err)
        if refused is None:
            raise
        return refused
    except ValidationFailed as err:
        # Post/Redirect/Get, as the task form (app/web/refused_forms.py): Back and Reload send nothing.
        return (refused_forms.back_to_form(page, err, url_for("web.catalog_item", code=code))
                or _render_item(user, code, submitted=request.form, errors=refused_forms.field_errors(err),
                                status=422))
    if sent.repeated or sent.value is None:  # (value is None exactly when repeated)
        flash_already_sent(sent.ref)
        return redirect(sent.url or url_for("web.catalog_item", code=code))
    message = (_("Request %(number)s “%(title)s” was sent for %(name)s, who is told its number.", number=sent.ref,
                 title=sent.value["title"], name=sent.value["for"]) if sent.value.get("for")
               else _("Your request %(number)s “%(title)s” was sent.", number=sent.ref, title=sent.value["title"]))
    next_step = (_("It now waits for their line manager's approval.")
                 if sent.value.get("for") and sent.value["approval"] == "line_manager"
                 else NEXT_STEP.get(sent.value["approval"] or ""))
    flash(f"{message} {next_step}" if next_step else message, "success")
    return redirect(sent.url)


def _schedule(user: User, code: str, page: str, data: dict[str, Any]) -> Any:
    """Keep the sent request form as a recurring request of the item (app/web/recurring_pages.py)."""
    svc = services()

    def checked() -> dict[str, Any]:
        item = svc.catalog.get_item(code)
        if item.status != ItemStatus.PUBLISHED:
            raise NotFound(f"no catalog item {code}")
        return {**svc.catalog.validate_request(item, data, True, requester=user), "item": item.code}

    def refused(err: PermissionDenied) -> Any:
        if (for_others := for_others_refused(err)) is not None:
            return for_others
        return error_page(403, _("Not allowed"), _("You may read the catalog but not request items."))

    return schedule_sent_form(user, REQUEST_PROCESS, checked, back=url_for("web.catalog_item", code=code), page=page,
                              refused=refused, render=lambda errors: _render_item(user, code, submitted=request.form,
                                                                                   errors=errors, status=422))


def _render_item(user: User, code: str, *, submitted: Any = None, errors: dict[str, list[str]] | None = None,
                 status: int = 200) -> Any:
    svc = services()

    def read() -> dict[str, Any]:
        item = svc.catalog.get_item(code, user)
        schema, ui = svc.catalog.item_form(item)
        facts = _facts(svc.catalog.item_dict(item),
                       approval := svc.catalog.expected_approval(item.approval_rule, float(item.cost or 0), user))
        facts["approval_text"] = _with_quantity(facts["approval_text"], approval[0], float(item.cost or 0), schema)
        return {"item": facts,
                "schema": schema, "ui": ui, "path": svc.catalog.category_path(item.category_code),
                # the request process's declared starters (processes/catalog_request.access.json)
                "may_order": bool(svc.instances.startable(user, [REQUEST_PROCESS]))}

    page = unit_of_work(read)
    translate = translator(CATALOG_SCOPE)
    item = _in_words(page["item"], translate)
    may_request = page["may_order"] and item["status"] == ItemStatus.PUBLISHED
    errors, for_caller = caller_errors(errors)
    repeat_errors = {k: errors.pop(k) for k in list(errors) if k in REPEAT_FIELDS}
    form = localize_form(build_form(page["schema"], page["ui"], {}, submitted, errors), translate)
    if policy.starts_for_others(user):
        with_caller_field(form, submitted, for_caller, REQUEST_PROCESS)
    scheduling = submitted is not None and schedules(submitted)
    description = (page["schema"] or {}).get("description")
    return render_template("catalog_item.html", active="catalog", item=item, path=_path(page["path"], translate),
                           form=form, form_description=translate(description) if description else None,
                           may_request=may_request, may_start=page["may_order"],
                           submission_token=SubmissionService.new_token(),
                           repeat=repeat_view(submitted if scheduling else None, repeat_errors, open_=scheduling),
                           **repeat_context(user)), status
