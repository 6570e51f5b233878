"""How record values read on the pages: labels for codes, numbers, money, durations and dates in
the page's language. Shared by the record list and the record page (app/web/ticket_pages.py).

Where a label comes from, first match wins:

1. the option titles of the forms of the record's process (``RecordService.value_titles``: the
   ``oneOf``/``anyOf`` titles of forms/*.json for the variable the record mapping copies), looked
   up in the translation catalog by their English text (``FORM_OPTION_TITLES`` marks those of
   the shipped forms for extraction);
2. ``VALUE_LABELS``: codes the shipped processes set in their scripts, which no form lists (a
   change's risk, a change's result, a request's approval);
3. the value's shape: money for ``MONEY_DETAILS``, ISO 8601 durations ("P3D" -> "3 days"), dates
   and times, whole numbers stored as floats ("950.0" -> "950"), record numbers (linked),
   ``snake_case`` codes ("rolling_back" -> "Rolling back");
4. otherwise the value as written.

A value shown differently from how it is stored keeps the stored value in the markup
(``<data value="software_defect" title="software_defect">Software defect</data>``, a ``<time>``'s
``datetime``), for agents who search or script by it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import url_for
from flask_babel import format_currency, format_date, format_datetime, format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from app.languages import duration_amounts
from app.models import Ticket
from app.services.records import KINDS, relation_side, title_key
from app.services.schedule import Clash

from .catalog_pages import CURRENCY

KIND_LABELS: dict[str, Any] = {"incident": _l("Incident"), "change": _l("Change"), "problem": _l("Problem"),
                               "request": _l("Request")}
# The statuses the shipped processes set; a status of another deployed process is humanised.
STATUS_LABELS: dict[str, Any] = {
    "new": _l("New"), "submitted": _l("Submitted"), "in_progress": _l("In progress"), "pending": _l("Pending"),
    "resolved": _l("Resolved"), "closed": _l("Closed"), "analysis": _l("Analysis"), "known_error": _l("Known error"),
    "fix_in_progress": _l("Fix in progress"),
    "assessment": _l("Assessment"), "awaiting_approval": _l("Awaiting approval"), "approved": _l("Approved"),
    "rejected": _l("Rejected"), "scheduled": _l("Scheduled"), "implementing": _l("Implementing"),
    "verifying": _l("Verifying"), "rolling_back": _l("Rolling back"), "review": _l("Review"),
    "withdrawn": _l("Withdrawn"), "fulfilment": _l("Fulfilment"), "awaiting_confirmation": _l("Awaiting confirmation"),
    "cancelled": _l("Cancelled"),
}
# The details the shipped processes' record mappings declare; others show their name, humanised.
DETAIL_LABELS: dict[str, Any] = {
    "resolution_notes": _l("Resolution notes"), "cause_category": _l("Cause"), "pending_on": _l("Pending on"),
    "pending_reason": _l("Reason for pending"), "reopen_count": _l("Times reopened"),
    "closed_reason": _l("Closed because"), "root_cause": _l("Root cause"), "workaround": _l("Workaround"),
    "known_error_article": _l("Known error article"), "fix_change": _l("Fixing change"),
    "fix_change_status": _l("Fixing change status"), "rollback_incident": _l("Incident for the failed rollback"),
    "implementer": _l("Implementer"), "planned_start": _l("Planned start"), "planned_end": _l("Planned end"),
    "actual_start": _l("Actual start"), "actual_end": _l("Actual end"), "result": _l("Result"),
    "verified_by": _l("Verified by"), "confirmed_by": _l("Confirmed by"), "approvers": _l("Approvers"),
    "rejection_reason": _l("Reason for rejection"),
    "risk": _l("Risk"), "reason": _l("Reason"), "implemented_by": _l("Implemented by"),
    "revision_count": _l("Revisions"), "item": _l("Catalog item"), "quantity": _l("Quantity"), "cost": _l("Cost"),
    "approval": _l("Approval"), "approved_by": _l("Approved by"), "rejected_by": _l("Rejected by"),
    "approval_comment": _l("Approval comment"),
    "fulfilment_notes": _l("Fulfilment notes"), "rating": _l("Rating"), "rating_comment": _l("Rating comment"),
}

#: What the other record is to this one, by the relation a link states (``LINK_RELATIONS``) and
#: this record's side in it; read as "this record <label> <kind> <number>".
RELATION_LABELS: dict[tuple[str, str], Any] = {
    ("related", "both"): _l("Related to"),
    ("causes", "subject"): _l("Causes"), ("causes", "object"): _l("Caused by"),
    ("duplicates", "subject"): _l("Duplicate of"), ("duplicates", "object"): _l("Duplicated by"),
    ("fixes", "subject"): _l("Fixes"), ("fixes", "object"): _l("Fixed by"),
    ("parent_of", "subject"): _l("Parent of"), ("parent_of", "object"): _l("Child of"),
    ("blocks", "subject"): _l("Blocks"), ("blocks", "object"): _l("Blocked by"),
    ("documents", "subject"): _l("Documents the known error of"), ("documents", "object"): _l("Known error documented in"),
}
#: The link types the link form offers, in its order ("problem" says what "caused_by" says).
LINK_CHOICES = ("related", "caused_by", "related_incident", "duplicate_of", "fix_change", "parent", "child", "blocks",
                "known_error")

#: The option titles of the shipped forms that records show (forms/*.json, for the variables the
#: shipped record mappings copy), marked so that pybabel extracts them: the forms stay the source
#: of the titles, the pages look them up by their English text. tests/web/test_record_values.py
#: checks this list against the forms.
FORM_OPTION_TITLES = (
    # incident_management: category, priority, cause_category, pending_on
    _l("Hardware"), _l("Software"), _l("Network"), _l("Human error"), _l("System"),
    _l("P1 - Critical"), _l("P2 - Major"), _l("P3 - Normal"), _l("P4 - Minor"),
    _l("Hardware failure"), _l("Software defect"), _l("Configuration"), _l("Capacity or performance"),
    _l("Third party or vendor"), _l("User error"), _l("Unknown"), _l("Customer"), _l("Vendor"),
    # problem_management: priority, category, cause_category
    _l("P1 - critical: major business impact, recurring now"), _l("P2 - high: significant impact or many incidents"),
    _l("P3 - moderate: limited impact, workaround possible"), _l("P4 - low: minor impact"),
    _l("Human / procedure"), _l("System / platform"), _l("Configuration error"), _l("Supplier / third party"),
    _l("Process or procedure gap"), _l("Not determined"),
    # change_enablement: category (the change type)
    _l("Standard - pre-approved"), _l("Normal - assessed and approved by a change manager or the CAB"),
    _l("Emergency - approved by the Emergency CAB"),
    # catalog_request: rating
    _l("1 - very dissatisfied"), _l("2 - dissatisfied"), _l("3 - neutral"), _l("4 - satisfied"),
    _l("5 - very satisfied"),
)

#: Codes the shipped processes set in scripts (no form lists them): a change's risk (its
#: priority too), its result, and how an incident was closed.
VALUE_LABELS: dict[str, Any] = {
    "low": _l("Low"), "medium": _l("Medium"), "high": _l("High"),
    "successful": _l("Successful"), "verification_failed": _l("Verification failed"),
    "rolled_back": _l("Rolled back"), "rollback_failed": _l("Rollback failed"),
    "failed": _l("Failed"),  # a problem's fix change that did not fix it (fix_change_status)
    "not_verified": _l("Not verified"),  # ... or that was implemented but failed the problem's verification
    "confirmed by requester": _l("Confirmed by the requester"),
    "auto-closed: no answer from requester": _l("Closed automatically: no answer from the requester"),
}
#: Codes whose words depend on the field ("none" is no approval here, not no value).
FIELD_VALUE_LABELS: dict[str, dict[str, Any]] = {
    "details.approval": {"none": _l("Not needed"), "line_manager": _l("Line manager"),
                         "budget_owner": _l("Budget owner")},
}
#: Details holding an amount of money (in the catalog's currency).
#: Details the record page lists in a section of their own (knowledge articles, as links).
LISTED_APART = frozenset({"knowledge_articles"})
MONEY_DETAILS = frozenset({"cost", "price", "amount", "total", "total_cost"})
#: Record fields shown by the head of their label ("P3" of "P3 - Normal", "Normal" of
#: "Normal - assessed and approved ..."): codes the desk speaks in, the rest in the tooltip.
SHORT_FIELDS = frozenset({"priority", "category"})

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?")
_SNAKE_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_RECORD_NUMBER = re.compile(rf"(?:{'|'.join(KINDS.values())})-\d{{1,12}}")
_HEAD = re.compile(r"\s+[-–—]\s+|[:：]\s*")


# -- codes -------------------------------------------------------------------------------------------


def humanise(code: str) -> str:
    """``awaiting_parts`` -> "Awaiting parts"."""
    return code.replace("_", " ").strip().capitalize()


def label(labels: Mapping[str, Any], value: Any) -> str:
    """The translated label of a code; else a ``snake_case`` code humanised, else as written
    ("" for none)."""
    if value is None:
        return ""
    found = labels.get(str(value))
    if found is not None:
        return str(found)
    return humanise(str(value)) if _SNAKE_CODE.fullmatch(str(value)) else str(value)


def short(text: str) -> str:
    """The head of a label that explains itself after a dash or colon ("P3 - Normal" -> "P3")."""
    head = _HEAD.split(text, maxsplit=1)[0].strip()
    return head or text


def detail_label(name: str) -> str:
    found = DETAIL_LABELS.get(name)
    return str(found) if found is not None else humanise(name)


def link_label(relation: str, side: str) -> str:
    """What the other record is to this one, e.g. "Caused by"."""
    found = RELATION_LABELS.get((relation, side))
    return str(found) if found is not None else humanise(relation)


def link_type_label(link_type: str) -> str:
    """A link type as the link form offers it: what the other record is to the one linked from."""
    return link_label(*relation_side(link_type, True))


# -- shapes ------------------------------------------------------------------------------------------


def iso_duration(text: str) -> str | None:
    """An ISO 8601 duration in words ("P3D" -> "3 days", "PT2H30M" -> "2 hours 30 minutes"); None
    if ``text`` is not one (the notices word them so too: app.languages.duration_words)."""
    amounts = duration_amounts(text)
    if amounts is None:
        return None
    # Singular and plural as two messages each (the translation check reads gettext calls only).
    units = {
        "year": lambda n: _("1 year") if n == 1 else _("%(num)d years", num=n),
        "month": lambda n: _("1 month") if n == 1 else _("%(num)d months", num=n),
        "week": lambda n: _("1 week") if n == 1 else _("%(num)d weeks", num=n),
        "day": lambda n: _("1 day") if n == 1 else _("%(num)d days", num=n),
        "hour": lambda n: _("1 hour") if n == 1 else _("%(num)d hours", num=n),
        "minute": lambda n: _("1 minute") if n == 1 else _("%(num)d minutes", num=n),
        "second": lambda n: _("1 second") if n == 1 else _("%(num)s seconds", num=format_decimal(n)),
    }
    parts = [units[unit](amount) for unit, amount in amounts]
    return " ".join(parts) if parts else _("%(num)d minutes", num=0)


def number(value: int | float | Decimal) -> str:
    """A number as people write it: no ".0" on whole numbers, the locale's decimal sign."""
    if isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return str(format_decimal(value))


def money(value: int | float | Decimal) -> str:
    """An amount in the catalog's currency ("€950.00"); "Free" for nothing, as the catalog says."""
    return _("Free") if not value else str(format_currency(value, CURRENCY))


def is_instant(text: str) -> bool:
    """Is ``text`` an ISO 8601 date or date-time, as ``show`` words one?"""
    return _instant(text) is not None


def _instant(text: str) -> datetime | date | None:
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
        if _DATE_TIME.fullmatch(text):
            return datetime.fromisoformat(text)
    except ValueError:
        return None
    return None


def _coded(text: str, raw: Any, tooltip: str | None = None) -> Markup:
    """``text`` shown for the stored ``raw``, which the markup keeps (as JSON spells it)."""
    stored = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
    if text == stored:
        return escape(text)
    return Markup('<data value="{0}" title="{1}">{2}</data>').format(stored, tooltip or stored, text)


def show(value: Any, key: str = "", titles: Mapping[str, str] | None = None, *, compact: bool = False) -> Markup:
    """One stored value as the page shows it (see the module's docstring for the order).

    ``key`` is the record field or ``details.<name>`` it is stored in, ``titles`` the titles the
    record's forms give that field's values, ``compact`` to show a label's head only.
    """
    if value is None:
        return Markup("")
    if isinstance(value, list | tuple):
        return Markup(", ").join(show(v, key, titles, compact=compact) for v in value)
    if isinstance(value, dict):
        return Markup("; ").join(Markup("{0}: {1}").format(k, show(v, key, titles)) for k, v in value.items())
    title = (titles or {}).get(title_key(value))
    coded = FIELD_VALUE_LABELS.get(key, {}).get(str(value)) if not isinstance(value, bool) else None
    if coded is None and isinstance(value, str):
        coded = VALUE_LABELS.get(value)
    if title is not None or coded is not None:
        text = _(title) if title is not None else str(coded)
        if compact and short(text) != text:
            return _coded(short(text), value, tooltip=text)
        return _coded(text, value)
    if isinstance(value, bool):
        return _coded(_("Yes") if value else _("No"), value)
    if isinstance(value, int | float | Decimal):
        if key.removeprefix("details.") in MONEY_DETAILS:
            return _coded(money(value), value)
        return _coded(number(value), value)
    text = str(value)
    if _RECORD_NUMBER.fullmatch(text):
        return Markup('<a href="{0}" class="record-ref">{1}</a>').format(url_for("web.ticket", number=text), text)
    instant = _instant(text)
    if isinstance(instant, datetime):
        return Markup('<time datetime="{0}">{1}</time>').format(text, format_datetime(instant, "short"))
    if isinstance(instant, date):
        return Markup('<time datetime="{0}">{1}</time>').format(text, format_date(instant, "medium"))
    spelled = iso_duration(text)
    if spelled is not None:
        return _coded(spelled, value)
    if _SNAKE_CODE.fullmatch(text):
        return _coded(humanise(text), value)
    return escape(text)


# -- the values of records ---------------------------------------------------------------------------


class RecordValues:
    """The values of a page's records as shown, from the titles ``RecordService.value_titles``
    found for them. Templates call ``field(ticket, name)`` and ``details(ticket)``."""

    def __init__(self, titles: Mapping[int, Mapping[str, Mapping[str, str]]] | None = None) -> None:
        self.titles = titles or {}

    def field(self, ticket: Ticket, name: str) -> Markup:
        """A record field ("" when it has no value)."""
        return show(getattr(ticket, name), name, self.titles.get(ticket.id, {}).get(name),
                    compact=name in SHORT_FIELDS)

    def code(self, name: str, value: Any) -> Markup:
        """A value of record field ``name`` without a record (a filter's choices)."""
        return show(value, name, compact=name in SHORT_FIELDS)

    def details(self, ticket: Ticket) -> list[tuple[str, Markup]]:
        """The record's details worth a line, (label, value) by name; empty values left out."""
        titles = self.titles.get(ticket.id, {})
        shown = []
        for name in sorted(ticket.details or {}):
            if name in LISTED_APART:
                continue
            key = f"details.{name}"
            text = show(ticket.details[name], key, titles.get(key))
            if str(text).strip():
                shown.append((detail_label(name), text))
        return shown


def clash_text(clash: Clash) -> str:
    """What a clash is, in the page's language (the schedule and the record page)."""
    if clash.kind == "freeze" and clash.through:
        return (_("in the freeze “%(name)s” of %(ci)s, which depends on this configuration item (emergency: allowed)",
                  name=clash.name, ci=clash.ci) if clash.exempt
                else _("in the freeze “%(name)s” of %(ci)s, which depends on this configuration item",
                       name=clash.name, ci=clash.ci))
    if clash.kind == "freeze":
        return (_("in the freeze “%(name)s” (emergency: allowed)", name=clash.name) if clash.exempt
                else _("in the freeze “%(name)s”", name=clash.name))
    if clash.kind == "maintenance":
        if clash.next_start is None or clash.next_end is None:
            return (_("outside the maintenance windows of %(ci)s, none of which is long enough (emergency: allowed)",
                      ci=clash.ci) if clash.exempt
                    else _("outside the maintenance windows of %(ci)s, none of which is long enough", ci=clash.ci))
        start, end = (moment.strftime("%Y-%m-%d %H:%M") for moment in (clash.next_start, clash.next_end))
        return (_("outside the maintenance windows of %(ci)s; the next one long enough: %(start)s – %(end)s UTC "
                  "(emergency: allowed)", ci=clash.ci, start=start, end=end) if clash.exempt
                else _("outside the maintenance windows of %(ci)s; the next one long enough: %(start)s – %(end)s UTC",
                       ci=clash.ci, start=start, end=end))
    return _("same configuration item and time as %(number)s", number=clash.number)
