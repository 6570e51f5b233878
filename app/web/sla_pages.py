"""The SLA policy page (routes on the shared ``web`` blueprint).

``/sla/policies`` lists the terms in force per record kind, priority and service: the stored
policies, and the built-in terms wherever no policy for any service is stored (as
``GET /api/v1/sla/policies`` does). Everyone signed in reads it. Process owners and admins also
set a policy's targets and warning threshold with the form below the list (an "Edit" link fills
it from a row) and delete a stored policy; what the form does not show (the calendar, pause
statuses and escalation) is kept from the policy it replaces, or the built-in terms. Saving is
``SlaService.save_policy``, so the page refuses what the API refuses, each problem beside its
field: answered with a redirect to the page, which shows the input and the problems once
(Post/Redirect/Get, app/web/refused_forms.py; in place, 422, when too large to keep); others get
the 403 page (audited by the service). Every form carries the session's
CSRF token (checked for every POST by the blueprint).

The warning threshold is shown and entered as a whole percentage of the target (5-99 %), stored
as the policy's ``warning_ratio``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.api import services, unit_of_work
from app.errors import ValidationFailed
from app.models import User
from app.services.sla import (
    MAX_RESOLUTION_SECONDS,
    MAX_RESPONSE_SECONDS,
    MIN_TARGET_SECONDS,
    PRIORITIES,
    TRACKED_KINDS,
    may_write_policies,
)

from . import refused_forms
from .labels import KIND_LABELS, STATUS_LABELS, label
from .views import bp, signed_in_user

#: The form's fields and the policy values they stand for (minutes and percent on the page).
FORM_FIELDS = {"kind": "kind", "priority": "priority", "service": "service", "response_minutes": "response_seconds",
               "resolution_minutes": "resolution_seconds", "warn_at_percent": "warning_ratio"}
#: The key of the policy form as its refusal is kept (app/web/refused_forms.py).
PAGE = "sla:policy"
#: Bounds of the warning threshold as the page takes it (``policy_problems``: 0.05-0.99).
MIN_WARN_PERCENT, MAX_WARN_PERCENT = 5, 99


def _may_edit(user: User) -> bool:
    return may_write_policies(user)


def _rows(svc: Any) -> list[dict[str, Any]]:
    """The stored policies, then the built-in terms no stored policy for any service replaces."""
    stored = [{"id": p.id, "kind": p.kind, "priority": p.priority, "service": p.service or "",
               "response_seconds": p.response_seconds, "resolution_seconds": p.resolution_seconds,
               "warning_ratio": p.warning_ratio, "calendar": p.calendar or {}, "pause_statuses": list(p.pause_statuses or []),
               "escalation": p.escalation} for p in svc.sla.policies()]
    replaced = {(row["kind"], row["priority"]) for row in stored if not row["service"]}
    defaults = [{**row, "id": None, "service": ""} for row in svc.sla.default_policies()
                if (row["kind"], row["priority"]) not in replaced]
    return stored + defaults


def _form_of(row: Mapping[str, Any]) -> dict[str, str]:
    return {"kind": row["kind"], "priority": row["priority"], "service": row["service"] or "",
            "response_minutes": str(row["response_seconds"] // 60), "resolution_minutes": str(row["resolution_seconds"] // 60),
            "warn_at_percent": str(round(float(row["warning_ratio"]) * 100))}


def _whole(form: Mapping[str, Any], name: str, low: int, high: int, errors: dict[str, list[str]]) -> int | None:
    text = str(form.get(name, "")).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        errors[name] = [_("Enter a whole number from %(low)d to %(high)d.", low=low, high=high)]
        return None
    return int(text)


def _values(form: Mapping[str, Any], rows: list[dict[str, Any]], errors: dict[str, list[str]]) -> dict[str, Any]:
    """The policy the form asks for: its fields over the terms of the policy it replaces."""
    kind, priority = str(form.get("kind", "")), str(form.get("priority", ""))
    service = " ".join(str(form.get("service", "")).split())
    if kind not in TRACKED_KINDS:
        errors["kind"] = [_("Choose a kind of record.")]
    if priority not in PRIORITIES:
        errors["priority"] = [_("Choose a priority.")]
    low = MIN_TARGET_SECONDS // 60
    response = _whole(form, "response_minutes", low, MAX_RESPONSE_SECONDS // 60, errors)
    resolution = _whole(form, "resolution_minutes", low, MAX_RESOLUTION_SECONDS // 60, errors)
    if response is not None and resolution is not None and response > resolution:
        errors["response_minutes"] = [_("The response target must not exceed the resolution target.")]
    percent = _whole(form, "warn_at_percent", MIN_WARN_PERCENT, MAX_WARN_PERCENT, errors)
    base = next((r for r in rows if (r["kind"], r["priority"], r["service"]) == (kind, priority, service)), None) \
        or next((r for r in rows if (r["kind"], r["priority"], r["service"]) == (kind, priority, "")), None) or {}
    return {"kind": kind, "priority": priority, "service": service,
            "response_seconds": response * 60 if response is not None else None,
            "resolution_seconds": resolution * 60 if resolution is not None else None,
            "warning_ratio": percent / 100 if percent is not None else None,
            "calendar": base.get("calendar") or {}, "pause_statuses": base.get("pause_statuses"),
            "escalation": base.get("escalation")}


def _field_errors(err: ValidationFailed) -> dict[str, list[str]]:
    """The service's problems by the form's field names (the rest above the form)."""
    names = {value: key for key, value in FORM_FIELDS.items()}
    found: dict[str, list[str]] = {}
    for field, problems in ((err.details or {}).get("fields") or {}).items():
        found.setdefault(names.get(field, "_form"), []).extend(str(p) for p in problems)
    return found or {"_form": [err.message]}


@bp.route("/sla/policies", methods=["GET", "POST"])
def sla_policies() -> Any:
    me = signed_in_user()
    svc = services()
    if request.method == "GET":
        rows = unit_of_work(lambda: _rows(svc))
        refused = refused_forms.take(PAGE)
        if refused is not None:
            return _render(me, rows, refused[0], refused[1])
        chosen = next((r for r in rows if (r["kind"], r["priority"], r["service"]) == (
            request.args.get("kind"), request.args.get("priority"), request.args.get("service", ""))), None)
        return _render(me, rows, _form_of(chosen) if chosen else {}, {})
    unit_of_work(lambda: svc.sla.require_policy_writer(me))  # 403 before any word about the fields
    rows = unit_of_work(lambda: _rows(svc))
    errors: dict[str, list[str]] = {}
    values = _values(request.form, rows, errors)
    if not errors:
        try:
            unit_of_work(lambda: svc.sla.save_policy(me, values))
        except ValidationFailed as err:
            errors = _field_errors(err)
    if errors:
        return (refused_forms.back_with(PAGE, errors, url_for("web.sla_policies"))
                or _render(me, rows, request.form, errors, status=422))
    flash(_("The SLA policy was saved."), "success")
    return redirect(url_for("web.sla_policies"))


@bp.post("/sla/policies/<int:policy_id>/delete")
def sla_policy_delete(policy_id: int) -> Response:
    me = signed_in_user()
    unit_of_work(lambda: services().sla.delete_policy(me, policy_id))
    flash(_("The SLA policy was deleted; the built-in terms apply where it did."), "success")
    return redirect(url_for("web.sla_policies"))


def _render(me: User, rows: list[dict[str, Any]], form: Mapping[str, Any], errors: dict[str, list[str]],
            status: int = 200) -> Any:
    return render_template("sla_policies.html", active="sla", rows=rows, form=form, errors=errors,
                           may_edit=_may_edit(me), kinds=TRACKED_KINDS, priorities=PRIORITIES, label=label,
                           kind_labels=KIND_LABELS, status_labels=STATUS_LABELS,
                           min_percent=MIN_WARN_PERCENT, max_percent=MAX_WARN_PERCENT), status
