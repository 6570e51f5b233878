"""Closing a record as a duplicate from its page (route on the shared ``web`` blueprint;
app/services/duplicates.py decides): beside the staff's Cancel, "Close as a duplicate" takes the
number of the record that is worked, an optional note and a ticked confirmation.

A refused form comes back beside its fields (Post/Redirect/Get, as the record page's other forms:
app/web/ticket_pages.py ``back_to_record``); every form carries the session's CSRF token (checked
for every POST by the blueprint).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from app.api import services, unit_of_work
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.services.duplicates import MAX_DUPLICATE_NOTE

from .forms import service_text
from .labels import KIND_LABELS, link_type_label
from .ticket_pages import back_to_record, duplicate_form, render_ticket
from .views import bp, reason_text, signed_in_user


def _refusal(err: ValidationFailed, number: str, other: str) -> dict[str, list[str]]:
    """A refusal of the service, beside the field it is about, in the page's words."""
    fields = err.details.get("fields") or {}
    if err.code == "duplicate_of_closed":
        return {"of": [_("%(other)s is closed: reopen it, or link the two without closing %(number)s.",
                         other=other, number=number)]}
    if err.code == "link_kinds":
        return {"of": [_("A link “%(type)s” cannot join %(source)s (%(source_kind)s) and %(target)s (%(target_kind)s).",
                         type=link_type_label("duplicate_of"), source=number, target=other,
                         source_kind=KIND_LABELS.get(err.details["source_kind"], err.details["source_kind"]),
                         target_kind=KIND_LABELS.get(err.details["target_kind"], err.details["target_kind"]))]}
    if err.code == "link_reversed":
        return {"of": [_("%(target)s is already linked to %(source)s the other way round: a link “%(type)s” would "
                         "state the reverse of it.", type=link_type_label("duplicate_of"), source=number,
                         target=other)]}
    if "number" in fields:
        return {"of": [_("A record is not its own duplicate.")]}
    return {name if name != "number" else "of": [service_text(str(m)) for m in messages]
            for name, messages in fields.items()} or {"of": [err.message]}


@bp.post("/tickets/<number>/duplicate")
def ticket_duplicate(number: str) -> Any:
    """Close the record as the duplicate of the one the form names (``DuplicateService.close``):
    the desk's staff, the box ticked; then back to the record, closed, told which one it follows."""
    user = signed_in_user()
    svc = services()
    # The record of the page first: one the user may not see answers 404 as the page does, and a
    # number not found afterwards is the other record's, said beside the field.
    number = unit_of_work(lambda: svc.records.get(user, number, action="close_duplicate").number)
    form = duplicate_form(request.form)
    other, note = form["of"], form["note"]
    errors: dict[str, list[str]] = {}
    if not other:
        errors["of"] = [service_text("is required")]
    if len(note) > MAX_DUPLICATE_NOTE:
        errors["note"] = [_("At most %(count)s characters.", count=MAX_DUPLICATE_NOTE)]
    if request.form.get("confirm") != "yes":
        errors["confirm"] = [_("Tick the box to confirm.")]
    if not errors:
        try:
            done = unit_of_work(lambda: svc.duplicates.close(user, number, other, note or None))
        except NotFound:
            errors["of"] = [_("There is no record %(number)s that you may see.", number=other)]
        except ValidationFailed as err:
            errors = _refusal(err, number, other)
        except (PermissionDenied, Conflict) as err:
            flash(_("%(number)s could not be closed as a duplicate: %(reason)s", number=number,
                    reason=reason_text(err)), "error")
            return redirect(url_for("web.ticket", number=number))
    if errors:
        return (back_to_record(number, "duplicate", errors)
                or render_ticket(user, number, duplicate={**form, "errors": errors}, status=422))
    if done.watcher_added:
        flash(_("%(number)s was closed as a duplicate of %(other)s; its requester now watches %(other)s.",
                number=number, other=done.of.number), "success")
    else:
        flash(_("%(number)s was closed as a duplicate of %(other)s.", number=number, other=done.of.number), "success")
    return redirect(url_for("web.ticket", number=number))
