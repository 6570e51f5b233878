"""The inbox's tasks in bulk (route on the shared ``web`` blueprint; app/services/bulk_tasks.py
decides): the rows ticked on the Tasks page are claimed, released or handed to one person at once.

All or nothing, as the service is: a refused selection comes back to the page it was sent from
(Post/Redirect/Get, app/web/refused_forms.py) with its boxes still ticked, the refused rows marked
with each one's reason in the page's language and a summary above the list. The form carries the
session's CSRF token (checked for every POST by the blueprint).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.db import MAX_ROW_ID
from app.errors import BulkRefused, NotFound, ProcessdeskError, ValidationFailed
from app.models import HumanTask, User
from app.services import policy
from app.services.bulk_tasks import BULK_ACTIONS, MAX_BULK_TASKS

from . import auth, refused_forms
from .forms import service_text
from .views import assign_reason, bp, reason_text, signed_in_user

#: What a refused selection is kept under for the Tasks page's next GET.
PAGE = "tasks:bulk"
#: How the services begin the refusal of a name nobody has ("no user ghost").
NO_USER = "no user "
#: A task id as the form sends it: digits, no sign, no leading zero, within a row id.
_TASK_ID = re.compile(r"[1-9][0-9]{0,9}")


def row_key(task_id: int | str) -> str:
    """The kept error of one row: ``task-<id>``."""
    return f"task-{task_id}"


def _refusal_text(err: ProcessdeskError) -> str:
    if isinstance(err, NotFound):
        if err.message.startswith(NO_USER):  # an admin's reassign to a name nobody has, as the task page says it
            return _("There is no user %(name)s.", name=err.message[len(NO_USER):])
        return _("This task is no longer open to you.")
    if isinstance(err, ValidationFailed):
        messages = (err.details.get("fields") or {}).get("username") or [err.message]
        return "; ".join(assign_reason(str(message)) for message in messages)
    return reason_text(err)


def state(user: User, rows: Iterable[HumanTask]) -> dict[str, Any]:
    """What the Tasks page's bulk form shows: the actions ``user`` may take on ``rows`` (reassign
    only where they may hand one of them on), whom they may hand them to (the members of those
    tasks' groups), and a selection refused just before (its ticked ids, its action and name, and
    the errors by row and field), taken once."""
    rows = list(rows)
    groups = sorted({group for t in rows if (group := t.candidate_group or t.lane) and policy.may_reassign(user, t)})
    members: dict[str, str] = {}
    for group in groups:
        for username, display in services().instances.group_members(group):
            members.setdefault(username, display)
    reassign = policy.is_admin(user) or bool(groups)
    refused = refused_forms.take(PAGE)
    form, errors = refused if refused is not None else (MultiDict(), {})
    return {
        "offered": policy.works_tasks(user) and bool(rows),
        "actions": [a for a in BULK_ACTIONS if a != "reassign" or reassign],
        "candidates": sorted(members.items()),
        "selected": {value for value in form.getlist("task_id")},
        "action": form.get("action", ""),
        "username": form.get("username", ""),
        "errors": errors,
        "max": MAX_BULK_TASKS,
        "form": form,
    }


def keep_for_next(bulk: dict[str, Any]) -> None:
    """Keep a refused selection the page took but will not show (it answers with a redirect to
    another page of the list) for that page's GET."""
    if bulk["errors"]:
        refused_forms.keep(PAGE, bulk["form"], bulk["errors"])


@bp.post("/tasks/bulk")
def tasks_bulk() -> Response:
    """Claim, release or reassign the ticked tasks (``BulkTaskService.apply``), then back to the
    list they were ticked on (``next``), told how many changed; refused, back with the reasons."""
    user = signed_in_user()
    back = auth.safe_next(request.form.get("next")) or url_for("web.tasks")
    form = request.form
    action = form.get("action", "")
    typed = form.getlist("task_id")
    username = form.get("username", "").strip()[:128]
    errors: dict[str, list[Any]] = {}
    ids = [int(value) for value in typed if _TASK_ID.fullmatch(value) and int(value) <= MAX_ROW_ID]
    if not typed:
        errors["task_ids"] = [_("Tick the tasks to act on first.")]
    elif len(ids) != len(typed):
        errors["task_ids"] = [_("The selection names something that is not a task.")]
    elif len(set(ids)) > MAX_BULK_TASKS:
        errors["task_ids"] = [_("At most %(count)s tasks at once.", count=MAX_BULK_TASKS)]
    if action not in BULK_ACTIONS:
        errors["action"] = [_("Choose what to do with the selected tasks.")]
    elif action == "reassign" and not username:
        errors["username"] = [service_text("is required")]
    if errors:
        return _refused(errors, back)
    try:
        done = unit_of_work(lambda: services().bulk_tasks.apply(user, action, ids, username or None))
    except BulkRefused as err:
        for task_id, refusal in err.refusals.items():
            errors[row_key(task_id)] = [_refusal_text(refusal)]
        return _refused(errors, back)
    except ValidationFailed as err:  # the service's own checks, as the page's above
        return _refused({name: [service_text(str(m)) for m in messages]
                         for name, messages in refused_forms.field_errors(err).items()}, back)
    changed = sum(outcome.changed for outcome in done)
    if action == "claim":
        message = _("Tasks you claimed: %(count)s.", count=changed)
    elif action == "unclaim":
        message = _("Tasks released back to the queue: %(count)s.", count=changed)
    else:
        person = unit_of_work(lambda: services().users.find(username))  # the name as the directory spells it
        message = _("Tasks now with %(username)s: %(count)s.", count=changed,
                    username=person.username if person is not None else username)
    flash(message, "success")
    if len(done) > changed:
        flash(_("Tasks that were so already: %(count)s.", count=len(done) - changed), "info")
    return redirect(back)


def _refused(errors: dict[str, list[Any]], back: str) -> Response:
    """Back to the list with the selection and what was wrong (or, too large to keep, a message)."""
    kept = refused_forms.back_with(PAGE, errors, back)
    if kept is not None:
        return kept
    flash(_("Nothing was changed: some of the selected tasks were refused. Select fewer and try again."), "error")
    return redirect(back)
