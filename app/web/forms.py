"""Task forms as HTML: what each control shows, from app.services.forms.form_fields descriptors.

Presentation only. Which fields exist, their order, widgets, choices and rules come from
``form_fields``; what is valid is decided by ``TaskService.complete`` (``validate_submission`` with
``coerce_strings=True``), whose errors come back here to be shown beside their fields. Values are
written the way that validation reads them back: ``true``/``false`` for booleans, numbers in
their JSON spelling, one line per item for free lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from app.errors import PermissionDenied
from app.services import cmdb, maintenance, recurring, responses, schedule, status, views, worklog
from app.services.forms import FORM_ERROR_KEY, FormMessage, form_fields
from app.services.instances import ON_BEHALF_FIELD
from app.services.submissions import FIELD as SUBMISSION_FIELD

from .auth import CSRF_FIELD
from .errors import error_page
from .refused_forms import SECRETS_FIELD

#: Input types of the single-line widgets; the other widgets have their own markup.
_INPUT_TYPES = {"text": "text", "password": "password", "email": "email", "date": "date",
                "datetime": "text", "updown": "number", "range": "range", "hidden": "hidden"}
_CHOICE_WIDGETS = {"radio", "select", "checkboxes", "checkbox"}

# Fixed English texts the form service produces, translated for the page. Messages with values
# in them ("must be at most 50 characters") come as FormMessage and are said from their parts.
_SERVICE_TEXTS = {
    "is required": _l("is required"),
    "must be text": _l("must be text"),
    "must be a number": _l("must be a number"),
    "must be a whole number": _l("must be a whole number"),
    "must be true or false": _l("must be true or false"),
    "must be a list": _l("must be a list"),
    "must be an object": _l("must be an object"),
    "has the wrong type": _l("has the wrong type"),
    "must be a date (YYYY-MM-DD)": _l("must be a date (YYYY-MM-DD)"),
    # a web form also takes "YYYY-MM-DD hh:mm" as UTC (app/services/forms.py): the form's own words
    "must be a date and time (YYYY-MM-DDThh:mm:ssZ or with an offset like +02:00)":
        _l("must be a date and time: YYYY-MM-DD hh:mm (UTC), or with an offset like +02:00"),
    "must be a valid email address": _l("must be a valid email address"),
    "has an invalid format": _l("has an invalid format"),
    "must not contain duplicates": _l("must not contain duplicates"),
    "is not allowed": _l("is not allowed"),
    "is invalid": _l("is invalid"),
    "has no available choices": _l("has no available choices"),
    "must be a user name (1-128 characters: letters a-z, digits and . _ @ + -, starting with a letter or digit)":
        _l("must be a user name (1-128 characters: letters a-z, digits and . _ @ + -, starting with a letter or digit)"),
    "is required when": _l("is required when"),
    "is required unless": _l("is required unless"),
    "Yes": _l("Yes"),
    "No": _l("No"),
    # a change freeze's (app/services/schedule.py)
    schedule.ENDS_BEFORE_START: _l("must be after the start"),
    schedule.TOO_LONG: _l("must be within a year of the start"),
    schedule.ALREADY_OVER: _l("is past: a freeze that is over holds nothing"),
    schedule.OUT_OF_RANGE: _l("must be in the years 1900 to 8999"),
    # a service status notice's (app/services/status.py)
    status.UNKNOWN_LEVEL: _l("must be one of outage, degraded, maintenance, info"),
    status.NOT_A_RECORD: _l("is not a record you may read"),
    status.NOT_AN_OUTAGE_RECORD: _l("must be an incident, a change or a problem"),
    status.TOO_FAR_AHEAD: _l("must be within a year from now"),
    # a response template's (app/services/responses.py)
    responses.UNKNOWN_KIND: _l("must be one of incident, change, problem, request"),
    responses.NAME_TAKEN: _l("is taken: another template of the same owner has this name"),
    responses.NOT_FOR_KIND: _l("is not for this kind of record"),
    responses.STAYS_SHARED: _l("the desk's template stays the desk's: delete it instead"),
    # a saved view of the record list (app/services/views.py)
    views.NAME_TAKEN: _l("is taken: you have a view of this name"),
    views.TOO_MANY: _l("you have 30 views already: delete one first"),
    # time worked (app/services/worklog.py)
    worklog.MINUTES_RANGE: _l("must be a whole number of minutes from 1 to 1440"),
    worklog.NOT_A_DURATION: _l("must be a duration such as 45m, 1h 30m or 1:30"),
    worklog.NOT_A_DAY: _l("must be a date as YYYY-MM-DD"),
    worklog.IN_THE_FUTURE: _l("must not be after today"),
    worklog.TOO_LONG_AGO: _l("must be within a year before today"),
    # an asset's (app/services/cmdb.py)
    cmdb.BAD_COST: _l("must be an amount of at least 0, with at most two decimals"),
    cmdb.BOUGHT_AFTER_WARRANTY: _l("must not end before the purchase date"),
    cmdb.WARRANTY_BEFORE_PURCHASE: _l("must not be after the warranty's end"),
    # a maintenance window's (app/services/maintenance.py)
    maintenance.NO_DAYS: _l("choose at least one day"),
    maintenance.BAD_TIME: _l("must be a time of day as hh:mm (00:00 to 23:59)"),
    maintenance.BAD_ZONE: _l("must be a time zone such as Europe/Berlin or UTC"),
    maintenance.UNKNOWN_DAY: _l("must be days of the week"),
    maintenance.UNKNOWN_WEEK: _l("must be a week of the month, or every week"),
    # a recurring request's (app/services/recurring.py)
    recurring.TOO_MANY: _l("you have 50 recurring requests already: delete one first"),
}


#: The words a condition on a check box without choice titles uses (app.services.forms).
_TICK_WORDS = {"ticked": _l("ticked"), "not ticked": _l("not ticked")}

#: Sentences of FormMessage (app.services.forms) by kind, one per count where English needs two;
#: the values are the message's parts.
_COUNTED = {
    "at_least_chars": (_l("must be at least %(count)s character"), _l("must be at least %(count)s characters")),
    "at_most_chars": (_l("must be at most %(count)s character"), _l("must be at most %(count)s characters")),
    "at_least_items": (_l("must have at least %(count)s item"), _l("must have at least %(count)s items")),
    "at_most_items": (_l("must have at most %(count)s item"), _l("must have at most %(count)s items")),
}
_VALUED = {
    "at_least": _l("must be at least %(value)s"),
    "at_most": _l("must be at most %(value)s"),
    "greater_than": _l("must be greater than %(value)s"),
    "less_than": _l("must be less than %(value)s"),
    "equal_to": _l("must be %(value)s"),
    # the CMDB's (app/services/cmdb.py): a relationship's target, a name in use
    "ci_unknown": _l("%(value)s: no such configuration item"),
    "ci_itself": _l("%(value)s: a configuration item is not related to itself"),
    "ci_retired": _l("%(value)s: it is retired"),
    "ci_name_taken": _l("a configuration item named %(value)s exists"),
    "ci_no_user": _l("%(value)s: no such active user"),
    "ci_asset_tag_taken": _l("the asset tag %(value)s is another configuration item's"),
    # a start for somebody else (app/services/instances.py caller_for)
    "no_active_user": _l("%(value)s: no such active user"),
    "may_not_start": _l("%(value)s may not start this process"),
}
#: A date's order against another field of the form (its title) or a date as written.
_ORDERED = {
    "not_before": (_l("must not be before %(field)s"), _l("must not be before %(value)s")),
    "after": (_l("must be after %(field)s"), _l("must be after %(value)s")),
    "not_after": (_l("must not be after %(field)s"), _l("must not be after %(value)s")),
    "before": (_l("must be before %(field)s"), _l("must be before %(value)s")),
}

#: "CHG-000003 is not an incident": a record named where only records of one kind may be.
_NOT_KIND = {"incident": _l("%(number)s is not an incident"), "problem": _l("%(number)s is not a problem"),
             "change": _l("%(number)s is not a change"), "request": _l("%(number)s is not a request")}

#: Turns a source text of the content (a title, a choice) into the page's language.
Translate = Callable[[str], str]


def _same(text: str) -> str:
    return text


def service_texts(errors: Mapping[str, list[Any]]) -> dict[str, list[str]]:
    """A refusal's messages by field, each in the page's language (``service_text``)."""
    return {name: [service_text(m) for m in messages] for name, messages in errors.items()}


def service_text(text: Any, translate: Translate | None = None) -> str:
    """A text from the services in the page's language; anything else unchanged.

    Fixed texts ("is required") are looked up; a FormMessage (a sentence with values, such as
    "must be at most 50 characters" or "is required when “Outcome” is Resolved") is said again from
    its parts, and with ``translate`` (the content's texts, see app/web/content.py) the field
    titles and choice titles it quotes are translated too; values stay as written."""
    if isinstance(text, FormMessage):
        return _form_message(text, translate or _same)
    translated = _SERVICE_TEXTS.get(str(text))
    return str(translated) if translated is not None else str(text)


#: A UTC instant as the services write a bound ("2026-11-29T21:14:48Z").
_UTC_INSTANT = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?(?:\.\d+)?Z")


def _as_typed(value: str) -> str:
    """A bound as the page's date-time fields are typed ("YYYY-MM-DD hh:mm", UTC): a UTC instant
    "2026-11-29T21:14:48Z" reads "2026-11-29 21:14:48 UTC"; a date or anything else as written."""
    instant = _UTC_INSTANT.fullmatch(value)
    if instant is None:
        return value
    seconds = instant.group(3) if instant.group(3) not in (None, ":00") else ""
    return f"{instant.group(1)} {instant.group(2)}{seconds} UTC"


def _typed_instant(value: str) -> str:
    """A stored date-time as its field is typed ("YYYY-MM-DD hh:mm", UTC, as the placeholder says;
    the seconds when there are any): "2026-12-05T10:00:00Z" was shown as stored, and
    "2026-12-07T15:08:28.700286+00:00" too. Anything that is no date-time with a zone stays as it is."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None or not value.strip()[:4].isdigit():
        return value
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%d %H:%M:%S" if utc.second else "%Y-%m-%d %H:%M")


def _form_message(message: FormMessage, translate: Translate) -> str:
    kind, parts = message.kind, message.parts
    if kind in _COUNTED:
        one, many = _COUNTED[kind]
        return str(one if parts["count"] == 1 else many) % {"count": parts["count"]}
    if kind in _VALUED:
        return str(_VALUED[kind]) % {"value": parts["value"]}
    if kind == "pattern":
        # The field's own words for what it asks for, as its content is translated; a regular
        # expression tells a person nothing, so without them the page says only that it is off.
        if parts.get("message"):
            return translate(parts["message"])
        return _("must match the expected format")
    if kind == "one_of":
        said = [translate(c) for c in parts["choices"]]
        listed = said[0] if said else ""
        for choice in said[1:]:  # the language's list separator ("、" in Chinese)
            listed = _("%(choices)s, %(choice)s", choices=listed, choice=choice)
        return _("must be one of: %(choices)s", choices=listed)
    if kind == "not_offered_group" and parts.get("filter") == "with_agents":
        # the select beside it lists the groups offered: the page says why this one is not
        if parts["values"]:
            return _("%(value)s is not a group with an active agent: choose one of the groups offered",
                     value=parts["value"])
        return _("%(value)s is not a group with an active agent, and no group has one now", value=parts["value"])
    if kind in _ORDERED:
        by_field, by_value = _ORDERED[kind]
        if "field" in parts:  # another field of the form
            return str(by_field) % {"field": translate(parts["field"])}
        return str(by_value) % {"value": _as_typed(str(parts["value"]))}
    if kind == "no_record":
        return _("%(number)s does not exist", number=parts["number"])
    if kind == "not_kind":  # the kinds a record reference may be limited to
        sentence = _NOT_KIND.get(parts["record_kind"])
        return str(sentence) % {"number": parts["number"]} if sentence is not None else str(message)
    if kind == "unknown_user":
        if parts.get("suggestion"):  # a typo of the user's own name
            return _("%(value)s is not a user you can name here; did you mean %(suggestion)s?",
                     value=parts["value"], suggestion=parts["suggestion"])
        return _("%(value)s is not a user you can name here", value=parts["value"])
    if kind == "in_freeze" and parts.get("ci"):  # a change freeze on a CI that stands on the record's
        return _("the planned window overlaps the change freeze “%(name)s” of %(ci)s, which depends on this configuration "
                 "item (%(starts)s to %(ends)s): plan it before or after the freeze", name=parts["name"], ci=parts["ci"],
                 starts=_as_typed(parts["starts"]), ends=_as_typed(parts["ends"]))
    if kind == "in_freeze":  # a planned window in a change freeze (app/services/schedule.py)
        return _("the planned window overlaps the change freeze “%(name)s” (%(starts)s to %(ends)s): plan it before "
                 "or after the freeze", name=parts["name"], starts=_as_typed(parts["starts"]), ends=_as_typed(parts["ends"]))
    if kind == "in_future":
        return _("cannot be in the future")
    if kind == "day_full":  # time worked past a day's 24 hours (app/services/worklog.py)
        return _("would make more than 24 hours on that day: %(count)s minutes are logged on it already",
                 count=parts["value"])
    if kind == "unknown_placeholder":  # a response template's text (app/services/responses.py)
        return _("holds an unknown placeholder %(name)s: use %(known)s", name="{{" + parts["name"] + "}}",
                 known=parts["known"])
    if kind == "bidi_control":
        return _("must not contain bidirectional control characters (%(characters)s)", characters=parts["characters"])
    if kind == "each_item":
        return _("each item %(message)s", message=service_text(parts["item"], translate))
    if kind in ("required_when", "required_unless"):
        lead = _SERVICE_TEXTS["is required when" if kind == "required_when" else "is required unless"]
        return f"{lead} {_condition(parts['tests'], translate)}"
    return str(message)


def _condition(tests: list[tuple[str, list[tuple[str, str]]]], translate: Translate) -> str:
    """``“Outcome” is Resolved or Closed and “Kind” is Laptop`` in the page's language."""
    parts: list[str] = []
    for title, words in tests:
        said = [str(_TICK_WORDS[word]) if how == "tick" else translate(word) if how == "choice" else word
                for word, how in words]
        listed = said[0]
        for word in said[1:]:
            listed = _("%(choices)s or %(choice)s", choices=listed, choice=word)
        parts.append(_("“%(field)s” is %(choices)s", field=translate(title), choices=listed))
    joined = parts[0]
    for part in parts[1:]:
        joined = _("%(conditions)s and %(condition)s", conditions=joined, condition=part)
    return joined


def as_text(value: Any) -> str:
    """A value as a form control holds it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: The start and catalog pages' "Requested for" control, offered to who may start a process for
#: somebody else (``policy.starts_for_others``). Never one of the form's answers: their names may
#: not start with "_"; the service names its errors ``ON_BEHALF_FIELD``.
CALLER_FIELD = "_on_behalf_of"
#: What a page says to who sends "Requested for" without the right to (``policy.starts_for_others``).
FOR_OTHERS_REFUSED = _l("Only service desk agents and administrators log a record for somebody else.")


def for_others_refused(err: PermissionDenied) -> Any | None:
    """The 403 page for a refusal of "Requested for" (a requester sent the field anyway), else None."""
    if err.details.get("field") != ON_BEHALF_FIELD:
        return None
    return error_page(403, _("Not allowed"), str(FOR_OTHERS_REFUSED))


def caller_errors(errors: Mapping[str, list[Any]] | None) -> tuple[dict[str, list[Any]], list[Any]]:
    """A refusal's errors apart from those of the "Requested for" control, and those."""
    rest = dict(errors or {})
    return rest, list(rest.pop(ON_BEHALF_FIELD, []))


def with_caller_field(form: FormView, submitted: MultiDict[str, str] | None, messages: list[Any],
                      process_id: str) -> FormView:
    """``form`` (changed in place) opening with the "Requested for" control: the user name of the
    person a service desk agent starts ``process_id`` for (a caller on the phone), kept as typed
    when the form is refused; ``messages``: its errors (``caller_errors``). As the agent types, the
    page's script (js/as-you-type.js) offers the people whose name or address holds the words
    (``web.callers``: ``InstanceService.callers``); without script it is a plain text field."""
    value = submitted.get(CALLER_FIELD, "") if submitted is not None else ""
    form.sections.insert(0, Section(None, [FieldView(
        name=CALLER_FIELD, id=_control_id(CALLER_FIELD), title=_("Requested for"), widget="text", input_type="text",
        required=False, readonly=False, multiple=False, value=value, options=[],
        errors=[service_text(m) for m in messages], messages=list(messages),
        help=_("The user name or e-mail address of the person who asked (a caller): the record is theirs, and "
               "they are told its number. Leave it empty when it is for you."),
        description=None, placeholder=None,
        attrs={"maxlength": 255, "suggest": url_for("web.callers", process_id=process_id)})]))
    return form


def submitted_data(form: MultiDict[str, str]) -> dict[str, Any]:
    """A sent form's answers as the task, start and catalog forms read them: one value as text,
    several as a list (``validate_submission`` then splits a free list's textarea into lines and
    wraps a single ticked box of a multi-choice into a list); the page's own fields (CSRF and
    submission tokens, the list of secret fields, "Requested for") left out."""
    return {key: values[0] if len(values) == 1 else values
            for key, values in form.to_dict(flat=False).items()
            if key not in (CSRF_FIELD, SUBMISSION_FIELD, SECRETS_FIELD, CALLER_FIELD)}


@dataclass
class Option:
    value: str
    label: str
    checked: bool
    id: str
    source: str = ""
    """The label as the form writes it (before any translation)."""


@dataclass
class FieldView:
    name: str
    id: str
    title: str
    widget: str
    input_type: str | None
    required: bool
    readonly: bool
    multiple: bool
    value: str
    options: list[Option]
    errors: list[str]
    help: str | None
    description: str | None
    placeholder: str | None
    attrs: dict[str, Any]
    required_when: list[dict[str, Any]] = field(default_factory=list)
    """Conditions (values as control text) under which an optional field becomes required."""
    messages: list[str] = field(default_factory=list)
    """The errors as the services wrote them (``errors`` are them in the page's language)."""

    @property
    def conditional(self) -> bool:
        return bool(self.required_when)

    @property
    def required_when_json(self) -> str:
        """What static/js/forms.js reads to show the required mark as the answers change."""
        return json.dumps(self.required_when, separators=(",", ":"))

    @property
    def clearable(self) -> bool:
        """An optional single choice shown as radio buttons gets a "No answer" button: once one of
        its options is clicked, a radio group has no other way back to no answer. One the answers
        may make required gets it too (it is refused on submit then, as an empty field is)."""
        return self.widget == "radio" and not self.readonly and (not self.required or self.conditional)

    @property
    def answered(self) -> bool:
        return any(option.checked for option in self.options)

    @property
    def help_id(self) -> str:
        return f"{self.id}-help"

    @property
    def error_id(self) -> str:
        return f"{self.id}-error"

    @property
    def anchor(self) -> str:
        """The element an error summary links to: the control, or a group's first option."""
        if self.widget in ("radio", "checkboxes") and self.options:
            return self.options[0].id
        return self.id

    @property
    def describedby(self) -> str:
        ids = []
        if self.help or self.description:
            ids.append(self.help_id)
        if self.errors:
            ids.append(self.error_id)
        return " ".join(ids)


@dataclass
class Section:
    title: str | None
    fields: list[FieldView] = field(default_factory=list)


@dataclass
class FormView:
    sections: list[Section]
    errors: list[str]
    """Errors about the submission as a whole, or about no field shown."""

    @property
    def fields(self) -> list[FieldView]:
        return [f for s in self.sections for f in s.fields]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(f.errors for f in self.fields)


def _control_id(name: str) -> str:
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _stored(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def build_form(schema: dict[str, Any] | None, ui_schema: dict[str, Any] | None, data: Mapping[str, Any],
               submitted: MultiDict[str, str] | None = None,
               errors: Mapping[str, list[str]] | None = None) -> FormView:
    """The form to show: values from ``submitted`` (a post that failed validation, so the user's
    input is kept) else from the task ``data`` else the field defaults; ``errors`` as given by
    ValidationFailed.details["fields"]."""
    errors = dict(errors or {})
    sections: list[Section] = []
    shown: set[str] = set()
    for descriptor in form_fields(schema, ui_schema) if schema else []:
        view = _field_view(descriptor, data, submitted, errors.get(descriptor["name"], []))
        shown.add(view.name)
        if not sections or sections[-1].title != descriptor["group_title"]:
            sections.append(Section(descriptor["group_title"]))
        sections[-1].fields.append(view)
    _mark_conditionally_required([f for s in sections for f in s.fields])
    _clashes_below_the_window([f for s in sections for f in s.fields])
    general: list[str] = []
    for name, messages in errors.items():
        if name in shown:
            continue
        prefix = "" if name == FORM_ERROR_KEY else f"{name}: "
        general.extend(prefix + service_text(m) for m in messages)
    return FormView(sections, general)


def _answer(view: FieldView) -> str:
    """A control's answer as the conditions compare it (see static/js/forms.js): the checked
    option's value, ``true``/``false`` for a checkbox, else the trimmed text ("" = no answer)."""
    if view.widget == "checkbox":
        return view.value or "false"
    if view.widget == "radio":
        return next((o.value for o in view.options if o.checked), "")
    return view.value.strip()


def _clashes_below_the_window(views: list[FieldView]) -> None:
    """What a window clashes with (``ui:scheduleCheck`` on its start) is said below its end field,
    where the window is whole: the start field's panel moves there (below the start when the end
    is not on the form, as a read-only or hidden one is not)."""
    by_id = {view.id: view for view in views}
    for view in views:
        end = by_id.get(view.attrs.get("window_end", ""))
        if "clashes" in view.attrs and end is not None and end is not view:
            end.attrs.update(clashes=view.attrs.pop("clashes"), window_start=view.id,
                             window_end=view.attrs.pop("window_end"), window_ci=view.attrs.pop("window_ci"))


def _mark_conditionally_required(views: list[FieldView]) -> None:
    """Show the required mark on fields that the current answers make required (the page's
    script keeps it up to date as the user changes them; the server decides on submit)."""
    answers = {view.name: _answer(view) for view in views}

    def holds(condition: Mapping[str, Any]) -> bool:
        passed = all(
            (answers.get(test["field"], "") in test["values"]) if answers.get(test["field"], "")
            else not test["needed"]
            for test in condition["tests"]
        )
        return passed != condition["negate"]

    for view in views:
        if view.required_when and any(holds(c) for c in view.required_when):
            view.required = True


def _field_view(d: Mapping[str, Any], data: Mapping[str, Any], submitted: MultiDict[str, str] | None,
                messages: list[str]) -> FieldView:
    name, widget, multiple = d["name"], d["widget"], bool(d["multiple"])
    if submitted is not None and not d["readonly"]:
        raw: Any = submitted.getlist(name)
        chosen = {str(v) for v in raw}
        value = "\n".join(raw) if multiple else (raw[0] if raw else "")
    else:
        stored = _stored(data, name)
        if stored is None:
            stored = d["default"]
        items = stored if isinstance(stored, list) else ([] if stored is None else [stored])
        chosen = {as_text(v) for v in items}
        value = "\n".join(as_text(v) for v in items) if multiple else as_text(stored)
    if widget == "password":
        value = ""  # never sent back to the browser
    elif widget == "datetime" and (submitted is None or d["readonly"]):
        value = _typed_instant(value)
    control_id = _control_id(name)
    options = [Option(as_text(choice), service_text(label), as_text(choice) in chosen, f"{control_id}-{index}",
                      str(label))
               for index, (choice, label) in enumerate(d["choices"] or [])]
    attrs: dict[str, Any] = {}
    if widget in ("updown", "range"):
        attrs = {"min": d["min"] if d["min"] is not None else d["exclusiveMinimum"],
                 "max": d["max"] if d["max"] is not None else d["exclusiveMaximum"], "step": d["step"]}
    elif widget not in _CHOICE_WIDGETS:
        # A multi-value field's maxLength is each item's: as the textarea's maxlength it would cut
        # the list the user typed (two record numbers of 32 characters fill it); items are
        # checked one by one on submit.
        attrs = {"maxlength": None if multiple else d["maxLength"]}
        if widget == "datetime":
            attrs["placeholder"] = "YYYY-MM-DD hh:mm (UTC)"
        if d.get("suggest_articles") and widget in ("text", "textarea") and not d["readonly"]:
            attrs["articles"] = url_for("web.related_articles")
        if d.get("schedule_check") and widget == "datetime" and not d["readonly"]:
            beside = name[:len(name) - len(d["key"])]  # the fields it names are in its own group
            attrs["clashes"] = url_for("web.schedule_clashes")
            attrs["window_start"] = control_id
            attrs["window_end"] = _control_id(beside + d["schedule_check"]["end"])
            ci = d["schedule_check"].get("ci")
            attrs["window_ci"] = _control_id(beside + ci) if ci else ""
    return FieldView(
        name=name, id=control_id, title=d["title"], widget=widget,
        input_type=_INPUT_TYPES.get(widget), required=bool(d["required"]), readonly=bool(d["readonly"]),
        multiple=multiple, value=value, options=options,
        errors=[service_text(m) for m in messages], messages=list(messages), help=d["help"],
        description=d["description"],
        placeholder=d["placeholder"], attrs={k: v for k, v in attrs.items() if v is not None},
        required_when=[
            {"negate": c["negate"], "tests": [dict(t, values=[as_text(v) for v in t["values"]]) for t in c["tests"]]}
            for c in d.get("required_when") or []
        ],
    )


def localize_form(form: FormView, translate: Translate) -> FormView:
    """``form`` (changed in place) with the content's texts in the page's language: section and
    field titles, descriptions, help and placeholder texts, choice labels, and the field titles
    and choices quoted in its errors. Values are untouched: what is submitted stays the source."""
    for section in form.sections:
        section.title = translate(section.title) if section.title else section.title
        for view in section.fields:
            view.errors = [service_text(m, translate) for m in view.messages] or view.errors
            view.title = translate(view.title)
            view.description = translate(view.description) if view.description else view.description
            view.help = translate(view.help) if view.help else view.help
            view.placeholder = translate(view.placeholder) if view.placeholder else view.placeholder
            for option in view.options:
                option.label = translate(option.source or option.label)
    return form
