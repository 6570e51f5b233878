"""Closing a record as a duplicate from its page (route on the shared ``web`` blueprint;
app/services/duplicates.py decides): beside the staff's Cancel, "Close as a duplicate" takes the
number of the record that is worked, an optional note and a ticked confirmation.

A refused form comes back beside its fields (Post/Redirect/Get, as the record page's other forms:
app/web/ticket_pages.py ``back_to_record``); every form carries the session's CSRF token (checked
for every POST by the blueprint).
"""

from __future__ import annotations

import re
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import BulkRefused, Conflict, NotFound, PermissionDenied, ProcessdeskError, ValidationFailed
from app.models import User
from app.services import policy
from app.services.duplicates import MAX_DUPLICATE_NOTE, MAX_DUPLICATES

from . import auth, refused_forms
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
    said: dict[str, list[str]] = {}
    for name, messages in fields.items():  # the form has two fields: the note, and the number
        said.setdefault("note" if name == "note" else "of", []).extend(service_text(str(m)) for m in messages)
    return said or {"of": [err.message]}


def _form_errors(other: str, note: str) -> dict[str, list[str]]:
    """What a close-as-duplicate form (the record page's, the list's) misses: the number of the
    record that is worked, a note within bounds, the ticked confirmation."""
    errors: dict[str, list[str]] = {}
    if not other:
        errors["of"] = [service_text("is required")]
    if len(note) > MAX_DUPLICATE_NOTE:
        errors["note"] = [_("At most %(count)s characters.", count=MAX_DUPLICATE_NOTE)]
    if request.form.get("confirm") != "yes":
        errors["confirm"] = [_("Tick the box to confirm.")]
    return errors


def _conflict_text(err: ProcessdeskError, number: str) -> str:
    """A refusal of the record itself, in the page's language."""
    if isinstance(err, Conflict) and err.message == f"{number} is closed already":
        return _("%(number)s is closed already.", number=number)
    if isinstance(err, Conflict) and err.message == f"{number} has no process to stop":
        return _("%(number)s has no process to stop.", number=number)
    return reason_text(err)


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
    if policy.cancels_as_staff(user):  # anyone else is refused by the service (audited), form or not
        errors.update(_form_errors(other, note))
    if not errors:
        try:
            done = unit_of_work(lambda: svc.duplicates.close(user, number, other, note or None))
        except NotFound:
            errors["of"] = [_("There is no record %(number)s that you may see.", number=other)]
        except ValidationFailed as err:
            errors = _refusal(err, number, other)
        except (PermissionDenied, Conflict) as err:
            flash(_("%(number)s could not be closed as a duplicate: %(reason)s", number=number,
                    reason=_conflict_text(err, number)), "error")
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


# -- several at once, from the record list -------------------------------------------------------------

#: What a refused selection of the record list is kept under for the list's next GET.
LIST_PAGE = "tickets:duplicates"
#: A record number as the list's boxes send it.
_NUMBER = re.compile(r"[A-Za-z]{2,8}-[0-9]{1,12}")


def list_state(user: User) -> dict[str, Any]:
    """What the record list's "close as duplicates" form shows ``user``: offered to the desk's staff
    (the service decides each record), and a selection refused just before (its ticked numbers,
    the number, note and errors by row and field), taken once."""
    refused = refused_forms.take(LIST_PAGE)
    form, errors = refused if refused is not None else (MultiDict(), {})
    return {"offered": policy.cancels_as_staff(user) and not policy.is_read_only(user),
            "selected": {value.upper() for value in form.getlist("number")},
            "of": form.get("of", ""), "note": form.get("note", ""), "errors": errors, "form": form,
            "max": MAX_DUPLICATES, "max_note": MAX_DUPLICATE_NOTE}


def keep_list_state(state: dict[str, Any]) -> None:
    """Keep a refused selection the list took but will not show (it answers with a redirect)."""
    if state["errors"]:
        refused_forms.keep(LIST_PAGE, state["form"], state["errors"])


def _record_refusal(err: ProcessdeskError, number: str, other: str) -> str:
    if isinstance(err, NotFound):
        return _("This record is no longer open to you.")
    if isinstance(err, ValidationFailed):
        return "; ".join(_refusal(err, number, other)["of"])
    return _conflict_text(err, number)


@bp.post("/tickets/duplicates")
def tickets_duplicates() -> Response:
    """Close the ticked records of the list as duplicates of the one the form names
    (``DuplicateService.close_many``): all, or none; back to the list they were ticked on."""
    user = signed_in_user()
    back = auth.safe_next(request.form.get("next")) or url_for("web.tickets")
    typed = [value.strip() for value in request.form.getlist("number")]
    other = request.form.get("of", "").strip().upper()[:32]
    note = request.form.get("note", "").strip()
    errors: dict[str, list[Any]] = {}
    if not typed:
        errors["numbers"] = [_("Tick the records to close first.")]
    elif not all(_NUMBER.fullmatch(value) for value in typed):
        errors["numbers"] = [_("The selection names something that is not a record.")]
    elif len({value.upper() for value in typed}) > MAX_DUPLICATES:
        errors["numbers"] = [_("At most %(count)s records at once.", count=MAX_DUPLICATES)]
    errors.update(_form_errors(other, note))
    if not errors:
        try:
            done = unit_of_work(lambda: services().duplicates.close_many(user, typed, other, note or None))
        except BulkRefused as err:
            errors = {f"record-{number}": [_record_refusal(refusal, number, other)]
                      for number, refusal in err.refusals.items()}
        except NotFound:
            errors["of"] = [_("There is no record %(number)s that you may see.", number=other)]
        except ValidationFailed as err:
            if err.code == "duplicate_of_closed":
                errors["of"] = [_("%(other)s is closed: reopen it, or link the records without closing them.",
                                  other=other)]
            else:
                errors = {name: [service_text(str(m)) for m in messages]
                          for name, messages in refused_forms.field_errors(err).items()}
    if errors:
        kept = refused_forms.back_with(LIST_PAGE, errors, back)
        if kept is not None:
            return kept
        flash(_("Nothing was changed: some of the selected records were refused. Select fewer and try again."),
              "error")
        return redirect(back)
    flash(_("Records closed as duplicates of %(other)s: %(count)s.", other=done[0].of.number, count=len(done)),
          "success")
    return redirect(back)
