"""User-task forms: JSON Schema + UI schema files in the SpiffArena style.

A user task names a form file (a JSON Schema) and optionally a UI schema file. This module is the
single place that understands them:

* :func:`check_form_definition` - deploy-time check that a form file stays inside the supported
  subset of JSON Schema (the customer's contract) and uses only known widgets.
* :func:`resolve_form` - turn a stored form into the one shown to a user: dynamic option lists
  are filled in, from task data (``"options_from_task_data_var:NAME"``) or from the people of a
  group of the directory (``"options_from_group:NAME"``: its active members, so a form asks for
  a person by picking one, never by typing a username that may not exist), or from the groups
  of the directory (``"options_from_groups:with_agents"``: the groups with at least one active
  agent, so a record's work goes to any group that can work it, one an admin created included,
  and never to a group nobody works; see ``users.GROUP_FILTERS``).
* :func:`form_fields` - flatten a resolved form into an ordered list of field descriptors that an
  HTML renderer can walk without knowing JSON Schema.
* :func:`validate_submission` - server-side validation of what the user sent back; returns the
  cleaned data (declared fields only, defaults applied, safe coercions for web forms).
* :func:`validate_start_data` - the same for the data a process is started with, against the
  process's start form.
* :func:`render_instructions` - ``instructionsForEndUser``: sandboxed Jinja2, then Markdown, then an
  HTML sanitiser (app/services/instructions.py; re-exported here).

Supported subset: ``type`` object (root and nested), string, number, integer, boolean, array (of
scalar items, typically a multi-select); ``enum``; ``oneOf``/``anyOf`` lists of
``{"const", "title"}`` choices; ``required``; ``minLength``/``maxLength``/``pattern``/``format``
(``date``, ``date-time``, ``email``, and ``username``: a user name of the directory, see
:func:`validate_submission`); ``patternMessage`` beside a ``pattern`` (processdesk's own: what the
pattern asks for in words, such as "must be AT- and six digits, e.g. AT-004211", which pages show
for a value that does not match instead of the regular expression, translated like the form's
other texts; the API's message keeps the pattern); ``minimum``/``maximum``/``exclusiveMinimum``/
``exclusiveMaximum``; ``minItems``/``maxItems``/``uniqueItems``; ``default``; ``title``;
``description``; ``readOnly``; ``additionalProperties`` (boolean, but unknown fields are always
dropped anyway); ``formatMinimum``/``formatExclusiveMinimum``/``formatMaximum``/
``formatExclusiveMaximum`` on ``date``/``date-time`` fields (the ajv-keywords spelling: a literal,
or ``{"$data": "1/<sibling>"}`` for "not before / after that other field", e.g. a window's end
after its start; and, processdesk's own, ``{"$today": "P1Y"}`` on a ``date`` field: a day
relative to the day of the submission, e.g. "not in the past" or "at most a year ahead", and
``{"$now": "PT5M"}`` on a ``date-time`` field: an instant relative to the moment of the submission,
e.g. ``"formatMaximum": {"$now": "PT5M"}`` for a time that has already happened, allowing five
minutes of clock skew between the user's device and the server);
conditional requirements on an object:
``"if": {"properties": {"<sibling>": {"const": v} | {"enum": [...]}, ...}, "required": [...]}``
with ``"then"`` and/or ``"else"`` of the form ``{"required": [...]}``, directly on the object or
as entries of its ``allOf`` (e.g. resolution notes are required when the outcome is "resolved").
Anything else is refused at deploy time.

Every text a submission carries (any string field, and strings inside lists and nested objects) is
refused when it holds a bidirectional formatting control (:data:`BIDI_CONTROLS`: the embeddings,
overrides and isolates U+202A-U+202E and U+2066-U+2069). Shown in an inbox, an e-mail or an audit
export they make text read other than it is ("Trojan Source": ``invoice``, U+202E, ``fdp.exe`` shows as
``invoiceexe.pdf``). The implicit marks U+200E (LRM), U+200F (RLM) and U+061C (ALM) are accepted:
each is one invisible strong character that reorders nothing beyond the punctuation beside it, and
people writing Arabic or Hebrew among Latin text need them. Arabic and Hebrew letters themselves
are ordinary text. :func:`bidi_control_message` gives the same check to other free text.

Nothing here imports Flask: errors are :class:`app.errors.ValidationFailed`.
"""

from __future__ import annotations

import calendar
import contextlib
import contextvars
import copy
import datetime as dt
import difflib
import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

# jsonschema ships no type stubs in this environment (types-jsonschema is not a dependency).
import jsonschema  # type: ignore[import-untyped, unused-ignore]
import regex

from app.engine import backtracking_problem, compile_as_re
from app.engine.library import JsonFileError, load_json_file
from app.errors import ValidationFailed

from .instructions import render_instructions
from .users import GROUP_FILTERS, USERNAME_RULE, is_username

logger = logging.getLogger(__name__)

__all__ = [
    "DYNAMIC_OPTIONS_PREFIX",
    "DYNAMIC_GROUP_PREFIX",
    "DYNAMIC_GROUPS_PREFIX",
    "GroupMembers",
    "GroupsOffered",
    "BIDI_CONTROLS",
    "FORM_ERROR_KEY",
    "FormMessage",
    "FORMAT_MESSAGES",
    "SUPPORTED_FORMATS",
    "SUPPORTED_WIDGETS",
    "bidi_control_message",
    "check_form_definition",
    "form_fields",
    "render_instructions",
    "rfc3339",
    "resolve_form",
    "validate_start_data",
    "typed_instant",
    "validate_submission",
]

SUPPORTED_WIDGETS: Final[frozenset[str]] = frozenset(
    {
        "textarea",
        "radio",
        "select",
        "hidden",
        "checkboxes",
        "text",
        "password",
        "email",
        "date",
        "datetime",
        "updown",
        "range",
        "checkbox",
    }
)
"""Values accepted for ``ui:widget``; anything else is refused by :func:`check_form_definition`."""

SUPPORTED_FORMATS: Final[frozenset[str]] = frozenset({"date", "date-time", "email", "username"})

DYNAMIC_OPTIONS_PREFIX: Final = "options_from_task_data_var:"
"""SpiffArena marker: ``"enum"``/``"oneOf"``/``"anyOf"`` given as this prefix + a task data name."""

DYNAMIC_GROUP_PREFIX: Final = "options_from_group:"
"""processdesk marker: ``"enum"``/``"oneOf"``/``"anyOf"`` given as this prefix + a group name: the
choices are the group's active members (value the username, title the display name)."""

DYNAMIC_GROUPS_PREFIX: Final = "options_from_groups:"
"""processdesk marker: ``"enum"``/``"oneOf"``/``"anyOf"`` given as this prefix + a filter of
``users.GROUP_FILTERS`` (``with_agents``): the choices are the directory's groups of that filter
(value the group's name, title the name, with its description when it has one)."""

GroupMembers = Callable[[str], Sequence[tuple[str, str]]]
"""``group name -> [(username, display name), ...]``: the active members, as the directory has them now."""
GroupsOffered = Callable[[str], Sequence[tuple[str, "str | None"]]]
"""``filter -> [(group name, description or None), ...]``: the groups of a filter of
``users.GROUP_FILTERS``, as the directory has them now."""
KnownUsers = Callable[[set[str]], set[str]]
"""``usernames -> those of them the submitter may name`` (active users of the directory, as far as
the submitter may know them: the caller decides): checks ``"format": "username"`` fields."""

FORM_ERROR_KEY: Final = "_form"
"""Key in ``details["fields"]`` for errors about the submission as a whole (e.g. not an object)."""

MAX_PATTERN_LENGTH: Final = 1000

_SUBMISSION_INVALID: Final = "form data is invalid"

# --------------------------------------------------------------------------------------------
# Supported keywords
# --------------------------------------------------------------------------------------------

_ANNOTATIONS: Final = frozenset({"title", "description", "default", "readOnly", "$comment", "examples"})
_CHOICE_KEYWORDS: Final = ("enum", "oneOf", "anyOf")
_COMMON_KEYWORDS: Final = _ANNOTATIONS | {"type", *_CHOICE_KEYWORDS}
_NUMERIC_KEYWORDS: Final = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_KEYWORDS_BY_TYPE: Final[Mapping[str, frozenset[str]]] = {
    "object": frozenset({"properties", "required", "additionalProperties", "if", "then", "else", "allOf"}),
    "string": frozenset({"minLength", "maxLength", "pattern", "patternMessage", "format", "formatMinimum",
                         "formatExclusiveMinimum", "formatMaximum", "formatExclusiveMaximum"}),
    "number": _NUMERIC_KEYWORDS,
    "integer": _NUMERIC_KEYWORDS,
    "boolean": frozenset(),
    "array": frozenset({"items", "minItems", "maxItems", "uniqueItems"}),
}
_SCALAR_TYPES: Final = frozenset({"string", "number", "integer", "boolean"})
#: Ordering of date/date-time fields (ajv-keywords names): keyword -> whether equal is allowed.
_ORDER_KEYWORDS: Final[Mapping[str, bool]] = {"formatMinimum": True, "formatExclusiveMinimum": False,
                                              "formatMaximum": True, "formatExclusiveMaximum": False}
_UPPER_BOUNDS: Final = frozenset({"formatMaximum", "formatExclusiveMaximum"})
#: A bound relative to the day of the submission (``{"$today": "P1Y"}``): an ISO 8601 duration of
#: years, months, weeks and days, optionally negative ("-P1D": yesterday; "P0D": today).
_TODAY_SHIFT: Final = re.compile(r"(-)?P(?=\d)(?:(\d{1,3})Y)?(?:(\d{1,4})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?")
#: A bound relative to the moment of the submission (``{"$now": "PT5M"}``): an ISO 8601 duration of
#: weeks, days, hours, minutes and seconds, optionally negative ("-PT1H": an hour ago; "PT0S": now).
_NOW_SHIFT: Final = re.compile(
    r"(-)?P(?=\d|T\d)(?:(\d{1,4})W)?(?:(\d{1,5})D)?(?:T(?=\d)(?:(\d{1,6})H)?(?:(\d{1,7})M)?(?:(\d{1,9})S)?)?")
#: An upper ``$now`` bound at most this far ahead means "now, allowing for clock skew": its error
#: says the time "cannot be in the future" rather than naming an instant the user never typed.
_SKEW_AT_MOST: Final = dt.timedelta(hours=1)
_ORDERED_FORMATS: Final = frozenset({"date", "date-time"})
_DATA_REF: Final = re.compile(r"1/([^/~]+)")
_ROOT_ONLY_KEYWORDS: Final = frozenset({"$schema", "$id"})
_CHOICE_ENTRY_KEYS: Final = frozenset({"const", "title", "description"})
_CONDITION_KEYS: Final = frozenset({"if", "then", "else", "$comment"})

# Which widgets make sense for which kind of field. "choice" means a scalar with enum/oneOf/anyOf,
# "multichoice" an array whose items are choices, "list" an array of free items.
_WIDGET_KINDS: Final[Mapping[str, frozenset[str]]] = {
    "textarea": frozenset({"string", "list"}),
    "text": frozenset({"string", "number", "integer", "choice"}),
    "password": frozenset({"string"}),
    "email": frozenset({"string"}),
    "date": frozenset({"string"}),
    "datetime": frozenset({"string"}),
    "updown": frozenset({"number", "integer"}),
    "range": frozenset({"number", "integer"}),
    "checkbox": frozenset({"boolean"}),
    "radio": frozenset({"choice", "boolean"}),
    "select": frozenset({"choice", "boolean", "multichoice"}),
    "checkboxes": frozenset({"multichoice"}),
    "hidden": frozenset({"string", "number", "integer", "boolean", "choice", "multichoice", "list"}),
}

_UI_STRING_KEYS: Final = frozenset({"ui:help", "ui:placeholder", "ui:title", "ui:description"})
#: ``ui:scheduleCheck`` (an object, ``_check_schedule_check``): on a planned window's start field, as
#: the user types the window the page says what it would clash with (app/services/schedule.py).
#: ``ui:suggestArticles``: as the user types in the field (a text or textarea), the page offers the
#: published knowledge articles about what it says (app/web/static/js/as-you-type.js).
_UI_BOOL_KEYS: Final = frozenset({"ui:disabled", "ui:readonly", "ui:autofocus", "ui:suggestArticles"})


class _Missing:
    """Sentinel type for "the submission did not carry this field"."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()

BIDI_CONTROLS: Final[frozenset[str]] = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""The bidirectional formatting characters refused in submitted text: LRE, RLE, PDF, LRO, RLO
(U+202A-U+202E) and LRI, RLI, FSI, PDI (U+2066-U+2069). See the module docstring for the marks
that stay allowed."""
_BIDI_CONTROL_RE: Final = re.compile("[\u202a-\u202e\u2066-\u2069]")


def without_bidi_controls(text: str) -> str:
    """``text`` without :data:`BIDI_CONTROLS`: for a stored text quoted into a new one that is
    checked (a title written before the check, or by a diagram, quoted into a reason)."""
    return _BIDI_CONTROL_RE.sub("", text)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _escape_pointer_token(token: str) -> str:
    # RFC 6901: "~" first, otherwise the "~1" produced for "/" would be re-escaped.
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(base: str, *tokens: str | int) -> str:
    return base + "".join("/" + _escape_pointer_token(str(t)) for t in tokens)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python but never a JSON number.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _matches_type(value: Any, type_name: str) -> bool:
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "integer":
        return _is_number(value) and float(value).is_integer()
    if type_name == "number":
        return _is_number(value) and math.isfinite(value)
    if type_name == "object":
        return isinstance(value, Mapping)
    if type_name == "array":
        return isinstance(value, list)
    return False


def _choice_key(value: Any) -> tuple[str, Any]:
    # JSON equality: True is not 1, but 1 equals 1.0 (jsonschema compares them that way too).
    if isinstance(value, bool):
        return ("bool", value)
    if _is_number(value):
        return ("number", value)
    if value is None:
        return ("null", None)
    return ("string", value)


_DYNAMIC_PREFIXES: Final = ((DYNAMIC_OPTIONS_PREFIX, "task_data"), (DYNAMIC_GROUP_PREFIX, "group"),
                             (DYNAMIC_GROUPS_PREFIX, "groups"))
#: What every dynamic-options marker starts with: a text of this shape that is no valid marker is
#: refused at deploy with what is wrong with it, not taken for a choice or a malformed list.
_MARKER_START: Final = "options_from_"


def _dynamic_source(value: Any) -> tuple[str, str] | None:
    """``("task_data", NAME)``, ``("group", NAME)`` or ``("groups", FILTER)`` when ``value`` is a
    dynamic-options marker, else None (also for a malformed one: see :func:`_marker_problem`).

    Both spellings seen in SpiffArena forms are accepted: the bare string and a one-element list
    holding it (``"anyOf": ["options_from_task_data_var:fruits"]``).
    """
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        for prefix, kind in _DYNAMIC_PREFIXES:
            if value.startswith(prefix):
                name = value[len(prefix):].strip()
                if kind == "groups" and name not in GROUP_FILTERS:
                    return None
                return (kind, name) if name else None
    return None


def _marker_problem(value: Any) -> str | None:
    """Why ``value`` (a choice list, or an array's ``items``) is a malformed dynamic-options marker:
    a text starting ``options_from_`` (alone or as a one-element list) that :func:`_dynamic_source`
    does not take. None for a valid marker and for anything else."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str) or not value.startswith(_MARKER_START) or _dynamic_source(value) is not None:
        return None
    filters = ", ".join(f"{DYNAMIC_GROUPS_PREFIX}{name}" for name in GROUP_FILTERS)
    if value.startswith(DYNAMIC_GROUPS_PREFIX) or value == DYNAMIC_GROUPS_PREFIX.rstrip(":"):
        given = value[len(DYNAMIC_GROUPS_PREFIX):].strip()
        return (f"{value!r} names {'an unknown group filter ' + repr(given) if given else 'no group filter'}: "
                f"use {filters}")
    if value.startswith(DYNAMIC_GROUP_PREFIX):
        return f"{value!r} names no group: use {DYNAMIC_GROUP_PREFIX}NAME"
    if value.startswith(DYNAMIC_OPTIONS_PREFIX):
        return f"{value!r} names no task data variable: use {DYNAMIC_OPTIONS_PREFIX}NAME"
    return (f"unknown dynamic options {value!r}: use {DYNAMIC_OPTIONS_PREFIX}NAME, {DYNAMIC_GROUP_PREFIX}NAME "
            f"or {filters}")


def _format_value(value: Any) -> str:
    """A value as a user reads it in an error message (JSON spelling for literals)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _plural(count: Any, word: str) -> str:
    return f"{_format_value(count)} {word}{'' if count == 1 else 's'}"


class FormMessage(str):
    """A form error with values in it, as the API answers it (English text), that also keeps
    what it says as data: ``kind`` names the sentence and ``parts`` holds its values, so that a
    page can say it in its own language without reading the English sentence back (and a choice
    title containing "or" or a quote cannot confuse it). Fixed texts ("is required") stay plain
    strings. The kinds and their parts:

    * ``at_least_chars``, ``at_most_chars``, ``at_least_items``, ``at_most_items``: ``count``;
    * ``at_least``, ``at_most``, ``greater_than``, ``less_than``, ``equal_to``: ``value`` (as written);
    * ``pattern``: ``pattern``, and ``message`` when the field says in words what it asks for
      (its ``patternMessage``, as the form writes it); ``one_of``: ``choices`` (the form's choice titles, what a page
      shows) and ``values`` (the values as written, what the text lists: what a client must send);
    * ``not_before``, ``after``, ``not_after``, ``before``: ``field`` (another field's title) or
      ``value`` (a date as written);
    * ``in_future``: ``value`` (the latest instant taken, RFC 3339 in UTC): "cannot be in the future";
    * ``unknown_user``: ``value`` (the user name as written) and, when the submitter seems to have
      mistyped their own name, ``suggestion`` (that name);
    * ``not_offered_group``: ``value`` (the group name as sent), ``filter`` (of the
      ``options_from_groups:FILTER`` offering them), ``choices`` and ``values`` (the
      groups offered: titles and names, as for ``one_of``; both empty when none is);
    * ``bidi_control``: ``characters`` (the code points refused, as ``U+202E, U+2066``);
    * ``each_item``: ``item`` (what each item of a list must be: a FormMessage or a fixed text);
    * ``required_when``, ``required_unless``: ``tests``, one ``(field title, words)`` per tested
      field, each word ``(text, how)`` with ``how`` one of ``"choice"`` (a choice title of the
      form), ``"tick"`` (the fixed "ticked" / "not ticked") or ``"value"`` (a value as written).

    Being a ``str``, it travels as one wherever a message does (JSON answers, logs); ``str(m)``
    drops the data."""

    kind: str
    parts: Mapping[str, Any]

    def __new__(cls, text: str, kind: str, **parts: Any) -> FormMessage:
        message = super().__new__(cls, text)
        message.kind = kind
        message.parts = parts
        return message

    def __getnewargs_ex__(self) -> tuple[tuple[str, str], dict[str, Any]]:  # copy and pickle keep the data
        return (str(self), self.kind), dict(self.parts)


def _counted(kind: str, count: Any, word: str, verb: str) -> FormMessage:
    return FormMessage(f"{verb} {_plural(count, word)}", kind, count=count)


def _valued(kind: str, words: str, value: Any) -> FormMessage:
    written = _format_value(value)
    return FormMessage(f"{words} {written}", kind, value=written)


def _bidi_found(value: Any, found: dict[str, None]) -> None:
    """Add the :data:`BIDI_CONTROLS` in ``value`` (text, or text inside lists and objects) to ``found``."""
    if isinstance(value, str):
        found.update(dict.fromkeys(_BIDI_CONTROL_RE.findall(value)))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _bidi_found(key, found)
            _bidi_found(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _bidi_found(item, found)


def too_long(limit: int) -> FormMessage:
    """"must be at most N characters" (kind ``at_most_chars``): a text over the limit a service keeps."""
    return FormMessage(f"must be at most {limit} characters", "at_most_chars", count=limit)


def text_problem(value: str, limit: int) -> FormMessage | None:
    """What is wrong with a text a service keeps (a name, a location): longer than ``limit``, else
    holding bidirectional controls; None when it is fine."""
    return too_long(limit) if len(value) > limit else bidi_control_message(value)


def checked_text(values: Mapping[str, Any], name: str, limit: int, errors: dict[str, list[Any]], *,
                 one_line: bool, required: bool) -> str:
    """The text a service keeps from ``values[name]``: one line with its spaces joined
    (``one_line``) or trimmed; its problem put in ``errors[name]`` ("must be text", "is required"
    when ``required`` and empty, or ``text_problem``) and "" returned for text it cannot be."""
    raw = values.get(name)
    if raw is not None and not isinstance(raw, str):
        errors[name] = ["must be text"]
        return ""
    value = " ".join((raw or "").split()) if one_line else (raw or "").strip()
    if not value and required:
        errors[name] = ["is required"]
    elif (problem := text_problem(value, limit)) is not None:
        errors[name] = [problem]
    return value


def bidi_control_message(value: Any) -> FormMessage | None:
    """The error for a text (or texts inside lists and objects) holding :data:`BIDI_CONTROLS`, else None:
    "must not contain bidirectional control characters (U+202E)", kind ``bidi_control``, part
    ``characters``: the code points found, in order of appearance, each once ("U+202E, U+2066")."""
    found: dict[str, None] = {}
    _bidi_found(value, found)
    if not found:
        return None
    characters = ", ".join(f"U+{ord(char):04X}" for char in found)
    return FormMessage(f"must not contain bidirectional control characters ({characters})", "bidi_control",
                       characters=characters)


# --------------------------------------------------------------------------------------------
# Formats (jsonschema only asserts formats when given a checker; we bring our own, strict ones)
# --------------------------------------------------------------------------------------------

_DATE_RE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATE_TIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_EMAIL_RE: Final = re.compile(r"[^@\s]+@[^@\s]+")


def _is_date(value: object) -> bool:
    """Full-date of RFC 3339: YYYY-MM-DD and a real calendar day."""
    if not isinstance(value, str):
        return True  # format only constrains strings; type errors are reported by "type"
    match = _DATE_RE.fullmatch(value)
    if match is None:
        return False
    try:
        dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return True


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time: a time zone (``Z`` or ``+hh:mm``) is mandatory."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME_RE.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    # RFC 3339 allows a leap second (":60"); datetime does not, so check it as ":59".
    if second == 60:
        second = 59
    try:
        dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    offset_ok = match[9] is None or (int(match[10]) <= 23 and int(match[11]) <= 59)
    return offset_ok


def _is_email(value: object) -> bool:
    """Pragmatic address check: one "@", no spaces, a dotted domain without empty labels."""
    if not isinstance(value, str):
        return True
    if len(value) > 254 or _EMAIL_RE.fullmatch(value) is None:
        return False
    local, domain = value.split("@")
    if len(local) > 64 or "." not in domain:
        return False
    return all(label and not label.startswith("-") and not label.endswith("-") for label in domain.split("."))


def _is_username(value: object) -> bool:
    """A name a user can have: the directory's own rule (users.is_username), so a form takes every
    user the desk can create, and no name it could not."""
    return not isinstance(value, str) or is_username(value)


def _today_shift(bound: Any) -> tuple[int, int, int] | None:
    """``(sign, months, days)`` of a ``{"$today": "<ISO 8601 duration>"}`` bound, else None."""
    if not (isinstance(bound, Mapping) and set(bound) == {"$today"} and isinstance(bound["$today"], str)):
        return None
    match = _TODAY_SHIFT.fullmatch(bound["$today"])
    if match is None:
        return None
    years, months, weeks, days = (int(part or 0) for part in match.groups()[1:])
    return (-1 if match[1] else 1), years * 12 + months, weeks * 7 + days


def _shifted(today: dt.date, shift: tuple[int, int, int]) -> dt.date:
    """``today`` moved by a :func:`_today_shift`: months first (the 31st becomes the month's last
    day, 29 February the 28th), then days."""
    sign, months, days = shift
    count = today.year * 12 + today.month - 1 + sign * months
    year, month = divmod(count, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(today.day, last)) + dt.timedelta(days=sign * days)


def _now_shift(bound: Any) -> dt.timedelta | None:
    """The shift of a ``{"$now": "<ISO 8601 duration>"}`` bound, else None."""
    if not (isinstance(bound, Mapping) and set(bound) == {"$now"} and isinstance(bound["$now"], str)):
        return None
    match = _NOW_SHIFT.fullmatch(bound["$now"])
    if match is None:
        return None
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups()[1:])
    shift = dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return -shift if match[1] else shift


def rfc3339(moment: dt.datetime) -> str:
    """An instant as RFC 3339 in UTC, to the second: ``2026-03-10T20:00:00Z``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def field_instant(value: Any, fmt: str) -> dt.date | dt.datetime | None:
    """A ``date`` or ``date-time`` field's value as a date / aware datetime, else None (what the
    form's ordering keywords compare; a recurring request moves such values: app/services/recurring.py)."""
    return _instant(value, fmt)


def _instant(value: Any, fmt: str) -> dt.date | dt.datetime | None:
    """A ``date`` or ``date-time`` field's value as a comparable date / aware datetime, else None."""
    if isinstance(value, dt.datetime):
        return value if fmt == "date-time" and value.tzinfo is not None else None
    if isinstance(value, dt.date):
        return value if fmt == "date" else None
    if not isinstance(value, str):
        return None
    try:
        if fmt == "date":
            return dt.date.fromisoformat(value) if _is_date(value) else None
        if fmt == "date-time" and _is_date_time(value):
            # RFC 3339 allows a leap second, datetime does not: compare it as :59.
            text = value[:17] + "59" + value[19:] if value[17:19] == "60" else value
            return dt.datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    return None


def _build_format_checker() -> jsonschema.FormatChecker:
    # Start from an empty checker: jsonschema's built-in date/email checks are laxer or depend
    # on optional packages, and formats outside the subset are refused at deploy time anyway.
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date")(_is_date)
    checker.checks("date-time")(_is_date_time)
    checker.checks("email")(_is_email)
    checker.checks("username")(_is_username)
    return checker


_FORMAT_CHECKER: Final = _build_format_checker()


# --------------------------------------------------------------------------------------------
# Patterns (matched with the ``regex`` package, under a time limit)
# --------------------------------------------------------------------------------------------

#: Longest one ``pattern`` may take to match one value. A form's patterns (codes, user names,
#: durations) match a value of a few hundred characters in microseconds, so a thousand times that is
#: still far from a false alarm on a loaded server, while a catastrophic pattern stops the (single
#: threaded) worker for at most this long per value.
PATTERN_TIMEOUT_SECONDS: Final = 0.1
#: All the pattern matching of one validation (a list field matches each item, a form has several
#: fields): once spent, the patterns still to match count as timed out. Only the time spent matching
#: counts: the rest of the validation (a directory lookup for a field's choices, a thread of a
#: loaded worker waiting its turn) took this budget before and timed out simple patterns.
PATTERN_BUDGET_SECONDS: Final = 0.25
#: The budget left to the patterns of the validation running (a one-item list, spent as they match).
_PATTERN_LEFT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("form_pattern_left",
                                                                                   default=None)


class _PatternTimedOut(jsonschema.ValidationError):
    """A ``pattern`` whose match was stopped by :data:`PATTERN_TIMEOUT_SECONDS`."""


@contextlib.contextmanager
def _pattern_budget() -> Iterator[None]:
    """Limit the pattern matching of one validation to :data:`PATTERN_BUDGET_SECONDS` (the outermost wins)."""
    if _PATTERN_LEFT.get() is not None:
        yield
        return
    token = _PATTERN_LEFT.set([PATTERN_BUDGET_SECONDS])
    try:
        yield
    finally:
        _PATTERN_LEFT.reset(token)


@lru_cache(maxsize=512)
def _compiled_pattern(pattern: str) -> Any:
    try:
        # as ``re`` reads it (a "{" that is no repeat is a brace, not regex's fuzzy matching)
        return compile_as_re(pattern)
    except (re.error, regex.error):
        # Deploys check patterns with ``re``; the few that only ``re`` reads (none shipped) are
        # matched as before, by ``re`` (the deploy-time backtracking check still applies to them).
        return re.compile(pattern)


def _pattern_search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches somewhere in ``text`` (JSON Schema semantics); None when the
    match ran out of time."""
    timeout = PATTERN_TIMEOUT_SECONDS
    left = _PATTERN_LEFT.get()
    if left is not None:
        timeout = min(timeout, left[0])
        if timeout <= 0:
            return None
    compiled = _compiled_pattern(pattern)
    if not isinstance(compiled, regex.Pattern):
        return compiled.search(text) is not None
    started = time.monotonic()
    try:
        return compiled.search(text, timeout=timeout) is not None
    except TimeoutError:
        return None
    finally:
        if left is not None:
            left[0] -= time.monotonic() - started


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
                     ) -> Iterator[jsonschema.ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    found = _pattern_search(pattern, instance)
    if found is None:
        yield _PatternTimedOut(f"{instance!r} could not be matched against {pattern!r} in time")
    elif not found:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


#: JSON Schema 2020-12 whose ``pattern`` is matched by :func:`_pattern_search` (Python's ``re``,
#: jsonschema's default, has no time limit: one crafted value could stop the server for minutes).
_FormValidator: Final = jsonschema.validators.extend(jsonschema.Draft202012Validator,
                                                     {"pattern": _pattern_keyword})

FORMAT_MESSAGES: Final[Mapping[str, str]] = {
    "date": "must be a date (YYYY-MM-DD)",
    "date-time": "must be a date and time (YYYY-MM-DDThh:mm:ssZ or with an offset like +02:00)",
    "email": "must be a valid email address",
    "username": f"must be a user name ({USERNAME_RULE.removeprefix('must be ')})",
}

_TYPE_MESSAGES: Final[Mapping[str, str]] = {
    "string": "must be text",
    "number": "must be a number",
    "integer": "must be a whole number",
    "boolean": "must be true or false",
    "array": "must be a list",
    "object": "must be an object",
    "null": "must be empty",
}


# --------------------------------------------------------------------------------------------
# Deploy-time check
# --------------------------------------------------------------------------------------------


class _DefinitionError(Exception):
    """Internal: carries the place and reason of a bad form file up to the public entry point."""

    def __init__(self, document: str, pointer: str, reason: str) -> None:
        super().__init__(reason)
        self.document = document
        self.pointer = pointer
        self.reason = reason


#: A process's start form: ``<process_id>.start.json`` (JSON Schema) and, optionally,
#: ``<process_id>.start.ui.json``, deployed with the other form files (forms/). The data a
#: process is started with must satisfy it, like a task's form (InstanceService.start_process);
#: deploys check it like a task's form (DefinitionService.deploy).
START_FORM_SUFFIX = ".start.json"
START_UI_SUFFIX = ".start.ui.json"


def catalog_ui_form(form: str) -> str | None:
    """The UI schema file beside a catalog item's request form (``x.json`` -> ``x.ui.json``)."""
    return form[:-5] + ".ui.json" if form.endswith(".json") else None


def checked_start_form(form_name: str, form: bytes, ui_name: str, ui: bytes | None
                       ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Parse and check a start form file and its optional UI file: ``(schema, ui_schema)``.
    Raises ValidationFailed (code ``invalid_definition``) naming the file at fault."""
    schema = _json_object_file(form_name, form)
    ui_schema = _json_object_file(ui_name, ui) if ui is not None else None
    try:
        check_form_definition(schema, ui_schema, form_name)
    except ValidationFailed as err:
        details = {"file": form_name, **err.details}
        raise ValidationFailed(f"the start form {form_name} is invalid: {err.message}", code="invalid_definition",
                               details=details) from None
    return schema, ui_schema


def _json_object_file(name: str, content: bytes) -> dict[str, Any]:
    try:
        parsed = load_json_file(content)
    except JsonFileError as err:
        raise ValidationFailed(f"form file {name} is not a JSON object: {err.reason}", code="invalid_definition",
                               details={"file": name, **({"line": err.line} if err.line else {})}) from None
    if not isinstance(parsed, dict):
        raise ValidationFailed(f"form file {name} is not a JSON object", code="invalid_definition",
                               details={"file": name})
    return parsed


def decision_fields_of(forms: Mapping[str, Any], form: str | None) -> tuple[str, str | None] | None:
    """``decision_fields`` of the form a task names (``form``) among its process version's
    ``forms``; None for a task without a form."""
    return decision_fields(forms.get(form)) if form else None


def decision_fields(schema: Mapping[str, Any] | None) -> tuple[str, str | None] | None:
    """The fields an approver's yes or no fills, when a reply by e-mail answers the form
    (app/services/mail.py): its decision, a required yes/no field (``approved`` when there is
    one, else the first), and its comment, the first text field whose name holds "comment" (None
    without one). None for a form with no required yes/no field: it is answered on its page."""
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties")
    required = schema.get("required")
    if not isinstance(properties, Mapping) or not isinstance(required, list):
        return None

    def editable(name: str, kind: str) -> bool:
        node = properties.get(name)
        return isinstance(node, Mapping) and node.get("type") == kind and not node.get("readOnly")

    booleans = [name for name in required if isinstance(name, str) and editable(name, "boolean")]
    if not booleans:
        return None
    decision = "approved" if "approved" in booleans else booleans[0]
    comment = next((name for name in properties if "comment" in name and editable(name, "string")), None)
    return decision, comment


def check_form_definition(schema: dict[str, Any], ui_schema: dict[str, Any] | None, filename: str) -> None:
    """Check a form file (and its UI schema) at deploy time.

    The schema must be an object schema that uses only the supported subset (see the module
    docstring); every ``pattern`` must compile with Python's ``re`` and be at most
    :data:`MAX_PATTERN_LENGTH` characters; ``required`` may only name declared properties; static
    choice lists must be non-empty, without duplicates and match the field's type; defaults must
    satisfy their field (except fields with dynamic options, unknown until run time); property
    names may not be empty, contain ``"."`` (dotted names are used for nested fields) or be ``"*"``.

    The UI schema may only mention declared properties (``items`` for arrays); ``ui:widget`` must be
    in :data:`SUPPORTED_WIDGETS` and fit the field (e.g. ``checkboxes`` needs an array of choices);
    ``ui:order`` must be a list of declared names, each once, with at most one ``"*"``. Unknown
    ``ui:*`` options are tolerated (they only affect presentation).

    Raises:
        ValidationFailed: on the first problem found, with
            ``details={"file": filename, "document": "schema" | "ui_schema",
            "pointer": "<JSON pointer into that document>", "reason": "<what is wrong>"}``.
    """
    try:
        _check_root(schema)
        if ui_schema is not None:
            _check_ui_node(ui_schema, schema, "")
    except _DefinitionError as exc:
        raise ValidationFailed(
            f"form definition {filename} is invalid: {exc.reason}" + (f" (at {exc.pointer})" if exc.pointer else ""),
            details={
                "file": filename,
                "document": exc.document,
                "pointer": exc.pointer,
                "reason": exc.reason,
            },
        ) from None


def _schema_error(pointer: str, reason: str) -> _DefinitionError:
    return _DefinitionError("schema", pointer, reason)


def _check_root(schema: Any) -> None:
    if not isinstance(schema, Mapping):
        raise _schema_error("", "the form schema must be a JSON object")
    if schema.get("type") != "object":
        raise _schema_error("/type", 'the form schema must have "type": "object" at the top level')
    for keyword in _ROOT_ONLY_KEYWORDS:
        if keyword in schema and not isinstance(schema[keyword], str):
            raise _schema_error(_pointer("", keyword), f"{keyword!r} must be a string")
    _check_node(schema, "", root=True, in_items=False)


def _check_node(node: Any, pointer: str, *, root: bool, in_items: bool) -> None:
    if not isinstance(node, Mapping):
        raise _schema_error(pointer, "a field definition must be a JSON object")

    # Unknown keywords first: "$ref" or "if" is the real problem even when "type" is missing too.
    known = _COMMON_KEYWORDS.union(*_KEYWORDS_BY_TYPE.values()) | (_ROOT_ONLY_KEYWORDS if root else frozenset())
    for keyword in node:
        if keyword not in known:
            raise _schema_error(_pointer(pointer, keyword), f"unsupported keyword {keyword!r}")

    type_name = node.get("type")
    has_choices = any(keyword in node for keyword in _CHOICE_KEYWORDS)
    if type_name is None:
        if not has_choices:
            raise _schema_error(pointer, 'a field must declare a "type" (or a list of choices)')
    elif not isinstance(type_name, str):
        raise _schema_error(_pointer(pointer, "type"), '"type" must be a single type name')
    elif type_name not in _KEYWORDS_BY_TYPE:
        raise _schema_error(_pointer(pointer, "type"), f"unsupported type {type_name!r}")
    if in_items and type_name is not None and type_name not in _SCALAR_TYPES:
        raise _schema_error(_pointer(pointer, "type"), "array items must be strings, numbers, integers or booleans")
    for keyword in _ORDER_KEYWORDS if in_items else ():
        if keyword in node:
            raise _schema_error(_pointer(pointer, keyword), f"{keyword!r} is only supported on fields, not on array items")

    allowed = _COMMON_KEYWORDS | (_KEYWORDS_BY_TYPE[type_name] if type_name else frozenset())
    if root:
        allowed = allowed | _ROOT_ONLY_KEYWORDS
    for keyword in node:
        if keyword not in allowed:
            raise _schema_error(
                _pointer(pointer, keyword),
                f"keyword {keyword!r} does not apply to type {type_name or 'untyped'!r}",
            )

    _check_annotations(node, pointer)
    dynamic = _check_choices(node, pointer, type_name)
    _check_constraints(node, pointer)

    if type_name == "object":
        _check_object(node, pointer)
    elif type_name == "array":
        items = node.get("items")
        if items is None:
            raise _schema_error(pointer, 'an array field must define "items"')
        problem = _marker_problem(items)
        if problem is not None:
            raise _schema_error(_pointer(pointer, "items"), problem)
        if _dynamic_source(items) is not None:
            dynamic = True
        else:
            _check_node(items, _pointer(pointer, "items"), root=False, in_items=True)
            dynamic = dynamic or _has_dynamic_choices(items)

    if "default" in node and not dynamic:
        _check_default(node, pointer)


def _check_annotations(node: Mapping[str, Any], pointer: str) -> None:
    for keyword in ("title", "description", "$comment"):
        if keyword in node and not isinstance(node[keyword], str):
            raise _schema_error(_pointer(pointer, keyword), f"{keyword!r} must be a string")
    if "readOnly" in node and not isinstance(node["readOnly"], bool):
        raise _schema_error(_pointer(pointer, "readOnly"), '"readOnly" must be true or false')
    if "examples" in node and not isinstance(node["examples"], list):
        raise _schema_error(_pointer(pointer, "examples"), '"examples" must be a list')


def _has_dynamic_choices(node: Mapping[str, Any]) -> bool:
    return any(_dynamic_source(node.get(keyword)) is not None for keyword in _CHOICE_KEYWORDS)


def _check_choices(node: Mapping[str, Any], pointer: str, type_name: str | None) -> bool:
    """Check enum/oneOf/anyOf; return True when the choices come from task data at run time."""
    present = [keyword for keyword in _CHOICE_KEYWORDS if keyword in node]
    if not present:
        return False
    if len(present) > 1:
        raise _schema_error(_pointer(pointer, present[1]), "use only one of enum, oneOf or anyOf for a field")
    keyword = present[0]
    where = _pointer(pointer, keyword)
    if type_name in {"object", "array"}:
        raise _schema_error(where, f"{keyword!r} is only supported on scalar fields (use it in items)")
    value = node[keyword]
    problem = _marker_problem(value)
    if problem is not None:
        raise _schema_error(where, problem)
    source = _dynamic_source(value)
    if source is not None:
        if source[0] in ("group", "groups") and type_name not in (None, "string"):
            # the choices are user or group names: a number or boolean field could match none
            raise _schema_error(_pointer(pointer, "type"), f"choices from {_MARKER_START}{source[0]} are names: "
                                                           f'the field\'s "type" must be "string"')
        return True
    if not isinstance(value, list) or not value:
        raise _schema_error(where, f"{keyword!r} must be a non-empty list")

    seen: set[tuple[str, Any]] = set()
    for index, entry in enumerate(value):
        entry_pointer = _pointer(where, index)
        if keyword == "enum":
            choice = entry
            if not _is_scalar(choice):
                raise _schema_error(entry_pointer, "enum values must be strings, numbers, booleans or null")
        else:
            if not isinstance(entry, Mapping) or "const" not in entry:
                raise _schema_error(entry_pointer, 'each choice must be an object with "const" and "title"')
            for key in entry:
                if key not in _CHOICE_ENTRY_KEYS:
                    raise _schema_error(_pointer(entry_pointer, key), f"unsupported keyword {key!r} in a choice")
            for key in ("title", "description"):
                if key in entry and not isinstance(entry[key], str):
                    raise _schema_error(_pointer(entry_pointer, key), f"{key!r} must be a string")
            choice = entry["const"]
            if not _is_scalar(choice):
                raise _schema_error(
                    _pointer(entry_pointer, "const"),
                    "choice values must be strings, numbers, booleans or null",
                )
        if type_name is not None and not _matches_type(choice, type_name):
            raise _schema_error(entry_pointer, f"choice {_format_value(choice)!r} is not of type {type_name!r}")
        key = _choice_key(choice)
        if key in seen:
            raise _schema_error(entry_pointer, f"duplicate choice {_format_value(choice)!r}")
        seen.add(key)
    return False


def _check_constraints(node: Mapping[str, Any], pointer: str) -> None:
    for keyword in _NUMERIC_KEYWORDS:
        if keyword in node and not (_is_number(node[keyword]) and math.isfinite(node[keyword])):
            raise _schema_error(_pointer(pointer, keyword), f"{keyword!r} must be a number")
    for keyword in ("minLength", "maxLength", "minItems", "maxItems"):
        if keyword in node and not _is_non_negative_int(node[keyword]):
            raise _schema_error(_pointer(pointer, keyword), f"{keyword!r} must be a non-negative integer")
    for low, high in (("minLength", "maxLength"), ("minItems", "maxItems"), ("minimum", "maximum")):
        if low in node and high in node and node[low] > node[high]:
            raise _schema_error(_pointer(pointer, low), f"{low!r} is greater than {high!r}")
    for keyword in ("uniqueItems", "additionalProperties"):
        if keyword in node and not isinstance(node[keyword], bool):
            raise _schema_error(_pointer(pointer, keyword), f"{keyword!r} must be true or false")
    if "format" in node and node["format"] not in SUPPORTED_FORMATS:
        raise _schema_error(
            _pointer(pointer, "format"),
            f"unsupported format {node['format']!r} (supported: {', '.join(sorted(SUPPORTED_FORMATS))})",
        )
    if "pattern" in node:
        pattern = node["pattern"]
        where = _pointer(pointer, "pattern")
        if not isinstance(pattern, str):
            raise _schema_error(where, '"pattern" must be a string')
        # Long patterns are where catastrophic backtracking hides; the contract caps them.
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise _schema_error(where, f'"pattern" is longer than {MAX_PATTERN_LENGTH} characters')
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _schema_error(where, f'"pattern" is not a valid regular expression: {exc}') from None
        # Matched in C on every submission, where no time limit reaches: the strict variant (no
        # unbounded repeat inside any repeat, like (a+)+ or (.*a){20}).
        problem = backtracking_problem(pattern, outer_limit=1)
        if problem is not None:
            raise _schema_error(where, f"the pattern {pattern!r} {problem}")
    if "patternMessage" in node:
        where = _pointer(pointer, "patternMessage")
        said = node["patternMessage"]
        if "pattern" not in node:
            raise _schema_error(where, '"patternMessage" says what a "pattern" asks for: give the pattern too')
        if not isinstance(said, str) or not said.strip():
            raise _schema_error(where, '"patternMessage" must be a non-empty string')
    for keyword in _ORDER_KEYWORDS:
        if keyword in node:
            _check_order_bound(node, keyword, _pointer(pointer, keyword))


def _order_ref(bound: Any) -> str | None:
    """The sibling field NAME of ``{"$data": "1/NAME"}``, else None."""
    if isinstance(bound, Mapping) and set(bound) == {"$data"} and isinstance(bound["$data"], str):
        match = _DATA_REF.fullmatch(bound["$data"])
        if match:
            return match[1]
    return None


def _check_order_bound(node: Mapping[str, Any], keyword: str, where: str) -> None:
    fmt = node.get("format")
    if fmt not in _ORDERED_FORMATS:
        raise _schema_error(where, f"{keyword!r} needs a field with format date or date-time")
    bound = node[keyword]
    if isinstance(bound, str):
        if _instant(bound, str(fmt)) is None:
            raise _schema_error(where, f"{keyword!r} must be a {fmt} value")
    elif isinstance(bound, Mapping) and "$today" in bound:
        if fmt != "date":
            raise _schema_error(where, f'{{"$today": ...}} in {keyword!r} needs a field with format date')
        if _today_shift(bound) is None:
            raise _schema_error(where, f'{keyword!r} must be {{"$today": "<ISO 8601 duration such as P1Y or -P1D>"}}')
    elif isinstance(bound, Mapping) and "$now" in bound:
        if fmt != "date-time":
            raise _schema_error(where, f'{{"$now": ...}} in {keyword!r} needs a field with format date-time')
        if _now_shift(bound) is None:
            raise _schema_error(where, f'{keyword!r} must be {{"$now": "<ISO 8601 duration such as PT5M or -P1D>"}}')
    elif _order_ref(bound) is None:
        raise _schema_error(where, f'{keyword!r} must be a {fmt} value, {{"$data": "1/<field>"}} naming a sibling '
                                   'field, {"$today": "<duration>"} (dates) or {"$now": "<duration>"} (date-times)')


def _check_object(node: Mapping[str, Any], pointer: str) -> None:
    properties = node.get("properties", {})
    if not isinstance(properties, Mapping):
        raise _schema_error(_pointer(pointer, "properties"), '"properties" must be an object')
    for name, sub in properties.items():
        where = _pointer(pointer, "properties", name)
        if not isinstance(name, str) or not name or "." in name or name == "*":
            raise _schema_error(where, 'property names must be non-empty, without "." and not "*"')
        _check_node(sub, where, root=False, in_items=False)
    for name, sub in properties.items():
        for keyword in _ORDER_KEYWORDS:
            other = _order_ref(sub.get(keyword))
            if other is None:
                continue
            where = _pointer(pointer, "properties", name, keyword)
            sibling = properties.get(other)
            if other == name or not isinstance(sibling, Mapping) or sibling.get("type") != "string":
                raise _schema_error(where, f"{keyword!r} names {other!r}, which is not another text field of this object")
            if sibling.get("format") != sub.get("format"):
                raise _schema_error(where, f"{keyword!r} names {other!r}, which does not have format {sub.get('format')!r}")
    _check_required_list(node.get("required", []), _pointer(pointer, "required"), properties, empty_ok=True)
    _check_conditions(node, pointer, properties)


def _check_required_list(required: Any, where: str, properties: Mapping[str, Any], *, empty_ok: bool) -> None:
    if not isinstance(required, list) or (not required and not empty_ok):
        raise _schema_error(where, '"required" must be a list of property names' + ("" if empty_ok else ", not empty"))
    seen: set[str] = set()
    for index, name in enumerate(required):
        entry = _pointer(where, index)
        if not isinstance(name, str) or name not in properties:
            raise _schema_error(entry, f"required field {name!r} is not a declared property")
        if name in seen:
            raise _schema_error(entry, f"required field {name!r} is listed twice")
        seen.add(name)


def _check_conditions(node: Mapping[str, Any], pointer: str, properties: Mapping[str, Any]) -> None:
    """``if``/``then``/``else`` on an object (directly or as ``allOf`` entries): see the module doc."""
    for keyword in ("then", "else"):
        if keyword in node and "if" not in node:
            raise _schema_error(_pointer(pointer, keyword), f'{keyword!r} needs an "if" beside it')
    if "if" in node:
        _check_condition(node, pointer, properties)
    if "allOf" in node:
        entries = node["allOf"]
        where = _pointer(pointer, "allOf")
        if not isinstance(entries, list) or not entries:
            raise _schema_error(where, '"allOf" must be a non-empty list of {"if", "then", "else"} conditions')
        for index, entry in enumerate(entries):
            entry_pointer = _pointer(where, index)
            if not isinstance(entry, Mapping) or "if" not in entry:
                raise _schema_error(entry_pointer, 'each "allOf" entry must be an object with "if" and "then" or "else"')
            for key in entry:
                if key not in _CONDITION_KEYS:
                    raise _schema_error(_pointer(entry_pointer, key), f"unsupported keyword {key!r} in a condition")
            _check_condition(entry, entry_pointer, properties)


def _check_condition(holder: Mapping[str, Any], pointer: str, properties: Mapping[str, Any]) -> None:
    if "then" not in holder and "else" not in holder:
        raise _schema_error(_pointer(pointer, "if"), '"if" needs a "then" or an "else"')
    test = holder["if"]
    where = _pointer(pointer, "if")
    if not isinstance(test, Mapping) or not isinstance(test.get("properties"), Mapping) or not test["properties"]:
        raise _schema_error(where, '"if" must be an object with "properties" naming the fields it tests')
    for key in test:
        if key not in ("properties", "required"):
            raise _schema_error(_pointer(where, key), f"unsupported keyword {key!r} in an \"if\" (use properties and required)")
    for name, rule in test["properties"].items():
        rule_pointer = _pointer(where, "properties", name)
        field = properties.get(name)
        if not isinstance(field, Mapping):
            raise _schema_error(rule_pointer, f"condition on {name!r}, which is not a declared property")
        if field.get("type") in ("object", "array"):
            raise _schema_error(rule_pointer, f"conditions can only test single-value fields; {name!r} is not one")
        if not isinstance(rule, Mapping) or len(rule) != 1 or next(iter(rule)) not in ("const", "enum"):
            raise _schema_error(rule_pointer, 'a condition on a field must be {"const": value} or {"enum": [values]}')
        values = [rule["const"]] if "const" in rule else rule["enum"]
        if not isinstance(values, list) or not values:
            raise _schema_error(_pointer(rule_pointer, "enum"), '"enum" must be a non-empty list')
        if _has_dynamic_choices(field):
            continue  # the choices are only known at run time
        for value in values:
            if not _accepts(field, value):
                raise _schema_error(rule_pointer, f"{_format_value(value)!r} is not a value field {name!r} can have")
    if "required" in test:
        _check_required_list(test["required"], _pointer(where, "required"), test["properties"], empty_ok=True)
    for keyword in ("then", "else"):
        if keyword not in holder:
            continue
        branch = holder[keyword]
        branch_pointer = _pointer(pointer, keyword)
        if not isinstance(branch, Mapping) or set(branch) != {"required"}:
            raise _schema_error(branch_pointer, f'{keyword!r} must be {{"required": [field names]}}')
        _check_required_list(branch["required"], _pointer(branch_pointer, "required"), properties, empty_ok=False)
        for index, name in enumerate(branch["required"]):
            if properties[name].get("readOnly") is True:
                raise _schema_error(_pointer(branch_pointer, "required", index),
                                    f"read-only field {name!r} cannot be required by a condition")


def _check_default(node: Mapping[str, Any], pointer: str) -> None:
    validator = _FormValidator(dict(node), format_checker=_FORMAT_CHECKER)
    for error in validator.iter_errors(node["default"]):
        field, message = next(_translate_error(error), (FORM_ERROR_KEY, "is invalid"))
        subject = "the default value" if field == FORM_ERROR_KEY else f"the default value's {field!r}"
        raise _schema_error(_pointer(pointer, "default"), f"{subject} {message}")


def _field_kind(node: Mapping[str, Any]) -> str:
    """Classify a field for widget compatibility (see _WIDGET_KINDS)."""
    type_name = node.get("type")
    if type_name == "array":
        items = node.get("items")
        if _dynamic_source(items) is not None:
            return "multichoice"
        if isinstance(items, Mapping) and any(k in items for k in _CHOICE_KEYWORDS):
            return "multichoice"
        return "list"
    if any(keyword in node for keyword in _CHOICE_KEYWORDS):
        return "choice"
    return str(type_name)


def _check_ui_node(ui: Any, node: Mapping[str, Any], pointer: str, siblings: Mapping[str, Any] | None = None,
                   field_key: str | None = None) -> None:
    if not isinstance(ui, Mapping):
        raise _DefinitionError("ui_schema", pointer, "a UI schema entry must be a JSON object")
    properties = node.get("properties", {}) if node.get("type") == "object" else {}
    for key, value in ui.items():
        where = _pointer(pointer, key)
        if not isinstance(key, str):
            raise _DefinitionError("ui_schema", where, "UI schema keys must be strings")
        if key == "ui:scheduleCheck":
            _check_schedule_check(value, node, siblings or {}, where, field_key)
        elif key == "ui:widget":
            _check_widget(value, node, where)
        elif key == "ui:order":
            _check_order(value, properties, where, node.get("type") == "object")
        elif key in _UI_STRING_KEYS:
            if not isinstance(value, str):
                raise _DefinitionError("ui_schema", where, f"{key!r} must be a string")
        elif key in _UI_BOOL_KEYS:
            if not isinstance(value, bool):
                raise _DefinitionError("ui_schema", where, f"{key!r} must be true or false")
        elif key.startswith("ui:"):
            continue  # other presentation hints (ui:options, ui:classNames, ...) are harmless
        elif key == "items" and node.get("type") == "array":
            items = node.get("items")
            _check_ui_node(value, items if isinstance(items, Mapping) else {}, where)
        elif key in properties:
            _check_ui_node(value, properties[key], where, properties, key)
        else:
            raise _DefinitionError("ui_schema", where, f"{key!r} is not a field of the form")


def _check_schedule_check(value: Any, node: Mapping[str, Any], siblings: Mapping[str, Any], where: str,
                          field_key: str | None) -> None:
    """``ui:scheduleCheck`` on a window's start field: ``{"end": field, "ci": field}`` naming the
    window's end (a ``date-time`` field beside it) and, optional, the configuration item's field
    beside it (a text field); the start is a ``date-time`` field too."""
    if not isinstance(value, Mapping) or not isinstance(value.get("end"), str) or set(value) - {"end", "ci"}:
        raise _DefinitionError("ui_schema", where, "'ui:scheduleCheck' must be an object naming the window's "
                                                   "\"end\" field and, optional, its \"ci\" field")
    if node.get("format") != "date-time":
        raise _DefinitionError("ui_schema", where, "'ui:scheduleCheck' belongs on a date-time field (the window's start)")
    end = siblings.get(value["end"])
    if not isinstance(end, Mapping) or end.get("format") != "date-time" or value["end"] == field_key:
        raise _DefinitionError("ui_schema", where, f"end: {value['end']!r} is not another date-time field beside it")
    ci = value.get("ci")
    if ci is not None and (not isinstance(ci, str) or ci in (field_key, value["end"])
                           or not isinstance(siblings.get(ci), Mapping) or siblings[ci].get("type") != "string"):
        raise _DefinitionError("ui_schema", where, f"ci: {ci!r} is not a text field beside it")


def _check_widget(widget: Any, node: Mapping[str, Any], where: str) -> None:
    if not isinstance(widget, str) or widget not in SUPPORTED_WIDGETS:
        raise _DefinitionError(
            "ui_schema",
            where,
            f"unsupported widget {widget!r} (supported: {', '.join(sorted(SUPPORTED_WIDGETS))})",
        )
    kind = _field_kind(node)
    if kind not in _WIDGET_KINDS[widget]:
        raise _DefinitionError("ui_schema", where, f"widget {widget!r} cannot be used for a {kind} field")


def _check_order(order: Any, properties: Mapping[str, Any], where: str, is_object: bool) -> None:
    if not is_object:
        raise _DefinitionError("ui_schema", where, '"ui:order" only applies to object fields')
    if not isinstance(order, list):
        raise _DefinitionError("ui_schema", where, '"ui:order" must be a list of field names')
    seen: set[str] = set()
    for index, name in enumerate(order):
        entry = _pointer(where, index)
        if not isinstance(name, str) or (name != "*" and name not in properties):
            raise _DefinitionError("ui_schema", entry, f"ui:order names unknown field {name!r}")
        if name in seen:
            raise _DefinitionError("ui_schema", entry, f"ui:order lists {name!r} twice")
        seen.add(name)


# --------------------------------------------------------------------------------------------
# Dynamic options
# --------------------------------------------------------------------------------------------


def resolve_form(
    schema: dict[str, Any], ui_schema: dict[str, Any] | None, task_data: Mapping[str, Any],
    members: GroupMembers | None = None, groups: GroupsOffered | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(schema, ui_schema)`` ready to show a user, as deep copies (inputs are untouched).

    Dynamic options are resolved: ``enum``, ``oneOf`` or ``anyOf`` written as
    ``"options_from_task_data_var:NAME"`` (or a one-element list holding that string, as SpiffArena
    writes it; also accepted for an array's ``items``) is replaced by
    ``"oneOf": [{"const": value, "title": label}, ...]`` built from ``task_data[NAME]``, a list of
    strings/numbers (label = the value as text) or of ``{"value": ..., "label": ...}`` dicts (label
    defaults to the value). Entries of another shape are skipped and duplicates keep the first one.

    When ``NAME`` is missing from task data or is not a list, the field gets an **empty** choice
    list (``"oneOf": []``): it renders with nothing to pick, and any submitted value for it fails
    validation ("has no available choices"); if the field is optional it may still be left out.
    Both cases are logged as warnings. Defaults, titles and everything else are kept as written.

    ``"options_from_group:NAME"`` becomes the active members of group ``NAME`` as ``members``
    gives them (title "Display Name (username)"); none without ``members``, or for an unknown or
    empty group. A value given before (a default, an earlier answer) of someone no longer in the
    group is no choice: the user picks someone who is.

    ``"options_from_groups:FILTER"`` becomes the groups ``groups`` gives for the filter (value the
    group's name, title the name, or "Name – description" for a group with a description); none
    without ``groups``. Likewise a default or earlier answer naming a group no longer offered (its
    last agent left, or it is gone) is no choice.
    A ``None`` ui_schema becomes ``{}``. Never raises for well-formed (checked) forms.
    """
    resolved = copy.deepcopy(schema)
    _resolve_node(resolved, task_data, _Directory(members, groups))
    return resolved, copy.deepcopy(ui_schema) if ui_schema is not None else {}


class _Directory:
    """Where the choices of a form's directory markers come from (either may be None: none)."""

    __slots__ = ("members", "groups")

    def __init__(self, members: GroupMembers | None, groups: GroupsOffered | None) -> None:
        self.members = members
        self.groups = groups


def _resolve_node(node: Any, task_data: Mapping[str, Any], directory: _Directory) -> None:
    if not isinstance(node, dict):
        return
    for keyword in _CHOICE_KEYWORDS:
        source = _dynamic_source(node.get(keyword))
        if source is not None:
            del node[keyword]
            node["oneOf"] = _dynamic_choices(source, task_data, directory)
    items = node.get("items")
    source = _dynamic_source(items)
    if source is not None:
        node["items"] = {"oneOf": _dynamic_choices(source, task_data, directory)}
    else:
        _resolve_node(items, task_data, directory)
    properties = node.get("properties")
    if isinstance(properties, dict):
        for sub in properties.values():
            _resolve_node(sub, task_data, directory)


def _dynamic_choices(source: tuple[str, str], task_data: Mapping[str, Any],
                     directory: _Directory) -> list[dict[str, Any]]:
    kind, name = source
    if kind == "task_data":
        raw = task_data.get(name) if isinstance(task_data, Mapping) else None
        if not isinstance(raw, (list, tuple)):
            logger.warning("form options variable %r is missing from task data or not a list", name)
            return []
        return _choices_from_entries(raw, name)
    if kind == "groups":
        found = list(directory.groups(name)) if directory.groups is not None else []
        if not found:
            logger.warning("form options %s%s offer no group (or no directory was given)", DYNAMIC_GROUPS_PREFIX, name)
        return _choices_from_entries([{"value": group, "label": f"{group} – {description}" if description else group}
                                      for group, description in found], name)
    members = directory.members
    people = list(members(name)) if members is not None else []
    if not people:
        logger.warning("form options group %r has no active members (or no directory was given)", name)
    return _choices_from_entries([{"value": username, "label": f"{display} ({username})" if display and display != username
                                   else username} for username, display in people], name)


def _choices_from_entries(raw: Sequence[Any], name: str) -> list[dict[str, Any]]:
    choices: list[dict[str, Any]] = []
    seen: set[tuple[str, Any]] = set()
    for entry in raw:
        if isinstance(entry, Mapping) and "value" in entry and _is_scalar(entry["value"]):
            value = entry["value"]
            label = entry.get("label")
            title = label if isinstance(label, str) else _format_value(value)
        elif _is_scalar(entry) and entry is not None:
            value, title = entry, _format_value(entry)
        else:
            logger.warning("form options variable %r has an entry of unsupported shape; skipped", name)
            continue
        # Two equal consts would make oneOf match twice, i.e. fail for the value the user picked.
        key = _choice_key(value)
        if key in seen:
            continue
        seen.add(key)
        choices.append({"const": value, "title": title})
    return choices


# --------------------------------------------------------------------------------------------
# Field descriptors for the HTML renderer
# --------------------------------------------------------------------------------------------


def _choices_of(node: Mapping[str, Any]) -> list[tuple[Any, str]] | None:
    if "enum" in node and isinstance(node["enum"], list):
        return [(value, _format_value(value)) for value in node["enum"]]
    for keyword in ("oneOf", "anyOf"):
        entries = node.get(keyword)
        if isinstance(entries, list):
            return [
                (entry["const"], str(entry.get("title", _format_value(entry["const"]))))
                for entry in entries
                if isinstance(entry, Mapping) and "const" in entry
            ]
    return None


def _ordered_names(properties: Mapping[str, Any], order: Any) -> list[str]:
    names = list(properties)
    if not isinstance(order, list):
        return names
    wanted = [n for n in order if isinstance(n, str) and (n in properties or n == "*")]
    wanted = list(dict.fromkeys(wanted))  # de-duplicate, keep first position
    listed = [n for n in wanted if n != "*"]
    rest = [n for n in names if n not in listed]
    if "*" not in wanted:
        # RJSF refuses an incomplete order; we are lenient and append the unlisted fields.
        return listed + rest
    star = wanted.index("*")
    return wanted[:star] + rest + wanted[star + 1 :]


def _default_widget(node: Mapping[str, Any], kind: str) -> str:
    if kind == "multichoice":
        return "checkboxes"
    if kind == "list":
        return "textarea"
    if kind == "choice":
        return "select"
    if kind == "boolean":
        return "checkbox"
    if kind in {"number", "integer"}:
        return "updown"
    return {"email": "email", "date": "date", "date-time": "datetime"}.get(str(node.get("format")), "text")


def _ui_of(ui: Any, name: str) -> Mapping[str, Any]:
    if isinstance(ui, Mapping):
        sub = ui.get(name)
        if isinstance(sub, Mapping):
            return sub
    return {}


def _ui_read_only(ui: Mapping[str, Any]) -> bool:
    return ui.get("ui:readonly") is True or ui.get("ui:disabled") is True


def form_fields(schema: dict[str, Any], ui_schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Flatten a *resolved* schema + UI schema into ordered field descriptors for an HTML renderer.

    Each descriptor is a dict with the keys: ``name`` (dotted path, e.g. ``"address.city"``),
    ``key`` (last path segment), ``group``/``group_title`` (dotted name and title of the enclosing
    nested object; ``""``/``None`` at top level), ``title`` (ui:title, else schema title, else the
    key), ``description``, ``type`` (schema type; for untyped choice fields the JSON type of the
    first choice), ``widget`` (ui:widget, else inferred: select for choices, checkboxes for arrays
    of choices, textarea for free arrays (one item per line), checkbox for booleans, updown for
    numbers, email/date/datetime by format, text otherwise), ``required``, ``readonly`` (schema
    readOnly, ui:readonly or ui:disabled, inherited from the enclosing object), ``choices`` (list of
    ``(value, label)``; Yes/No for a boolean shown as radio/select; ``[]`` when none), ``help``,
    ``placeholder``, ``default``, ``multiple`` (array fields), ``min``, ``max``,
    ``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``, ``maxLength``, ``minItems``,
    ``maxItems``, ``uniqueItems``, ``pattern``, ``format``, ``step`` (1 for integers, "any" for
    numbers) and ``required_when``: for a field that is only sometimes required, the list of
    conditions of its object that require it, each ``{"negate": bool, "tests": [{"field":
    dotted name, "values": [...], "needed": bool}]}``, where the field is
    required when all tests pass (``negate`` false: a ``then``) or not all pass (an ``else``); a
    test passes when the field's value is one of ``values``, or when it has no value and is not
    ``needed``. Missing facts are ``None`` (``required_when`` is ``[]``).

    Order follows each object's ``ui:order`` (``"*"`` = the remaining fields in schema order; fields
    left out of an order without ``"*"`` are appended) else schema order. Nested objects contribute
    their leaf fields only. Raises nothing for a checked form.
    """
    fields: list[dict[str, Any]] = []
    _collect_fields(schema, ui_schema or {}, "", None, False, fields)
    return fields


def _collect_fields(
    node: Mapping[str, Any],
    ui: Mapping[str, Any],
    prefix: str,
    group_title: str | None,
    inherited_read_only: bool,
    out: list[dict[str, Any]],
) -> None:
    properties = node.get("properties")
    if not isinstance(properties, Mapping):
        return
    required = set(node.get("required") or [])
    conditional: dict[str, list[dict[str, Any]]] = {}
    for condition in _conditions(node):
        test = condition["if"]
        tests = [
            {"field": f"{prefix}.{name}" if prefix else name,
             "values": copy.deepcopy(_tested_values(rule)),
             "needed": name in (test.get("required") or [])}
            for name, rule in (test.get("properties") or {}).items() if isinstance(rule, Mapping)
        ]
        for keyword, negate in (("then", False), ("else", True)):
            branch = condition.get(keyword)
            for name in branch.get("required") or [] if isinstance(branch, Mapping) else []:
                if name not in required:
                    conditional.setdefault(name, []).append({"negate": negate, "tests": tests})
    for name in _ordered_names(properties, ui.get("ui:order")):
        sub = properties[name]
        if not isinstance(sub, Mapping):
            continue
        sub_ui = _ui_of(ui, name)
        dotted = f"{prefix}.{name}" if prefix else name
        read_only = inherited_read_only or sub.get("readOnly") is True or _ui_read_only(sub_ui)
        title = sub_ui.get("ui:title") or sub.get("title") or name
        if sub.get("type") == "object":
            _collect_fields(sub, sub_ui, dotted, str(title), read_only, out)
            continue
        descriptor = _descriptor(sub, sub_ui, name, dotted, prefix, group_title, name in required, read_only, title)
        descriptor["required_when"] = [] if read_only else conditional.get(name, [])
        out.append(descriptor)


def _descriptor(
    node: Mapping[str, Any],
    ui: Mapping[str, Any],
    name: str,
    dotted: str,
    group: str,
    group_title: str | None,
    required: bool,
    read_only: bool,
    title: Any,
) -> dict[str, Any]:
    kind = _field_kind(node)
    type_name = node.get("type")
    items = node.get("items") if isinstance(node.get("items"), Mapping) else None
    choices = _choices_of(items if items is not None else node) or []
    widget = ui.get("ui:widget") or _default_widget(node, kind)
    if type_name is None and choices:
        first = choices[0][0]
        type_name = next((t for t in ("boolean", "integer", "number", "string") if _matches_type(first, t)), None)
    if type_name == "boolean" and widget in {"radio", "select"}:
        # The form's own labels (oneOf titles such as Approve / Reject) win over Yes / No.
        titled = {value: label for value, label in choices if isinstance(value, bool)}
        choices = [(True, titled.get(True, "Yes")), (False, titled.get(False, "No"))]
    # Length/pattern/format of a multi-value field live on its items.
    facts = items if items is not None else node
    return {
        "name": dotted,
        "key": name,
        "group": group,
        "group_title": group_title,
        "title": str(title),
        "description": node.get("description"),
        "type": type_name,
        "widget": widget,
        "required": required,
        "readonly": read_only,
        "choices": choices,
        "help": ui.get("ui:help"),
        "placeholder": ui.get("ui:placeholder"),
        "suggest_articles": ui.get("ui:suggestArticles") is True,
        "schedule_check": ui.get("ui:scheduleCheck") if isinstance(ui.get("ui:scheduleCheck"), Mapping) else None,
        "default": copy.deepcopy(node.get("default")),
        "multiple": type_name == "array",
        "min": facts.get("minimum"),
        "max": facts.get("maximum"),
        "exclusiveMinimum": facts.get("exclusiveMinimum"),
        "exclusiveMaximum": facts.get("exclusiveMaximum"),
        "minLength": facts.get("minLength"),
        "maxLength": facts.get("maxLength"),
        "minItems": node.get("minItems"),
        "maxItems": node.get("maxItems"),
        "uniqueItems": node.get("uniqueItems"),
        "pattern": facts.get("pattern"),
        "format": facts.get("format"),
        "step": {"integer": 1, "number": "any"}.get(str(facts.get("type"))),
    }


# --------------------------------------------------------------------------------------------
# Submission validation
# --------------------------------------------------------------------------------------------

_INTEGER_TEXT: Final = re.compile(r"[+-]?\d{1,30}")
_NUMBER_TEXT: Final = re.compile(r"[+-]?(?:\d{1,300}(?:\.\d{0,300})?|\.\d{1,300})(?:[eE][+-]?\d{1,3})?")
#: A date and time as people type it in a web form: seconds and the zone may be left out (no zone:
#: UTC, the zone the pages show times in), a space may stand for the T ("2026-03-10 20:00",
#: "2026-03-10T20:00:30", "2026-03-10 20:00+02:00"; what an input of type datetime-local sends too).
_LOCAL_DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?(Z|[+-]\d{2}:\d{2})?")
_TRUE_TEXT: Final = frozenset({"true", "on", "yes", "1"})


def typed_instant(value: str) -> dt.datetime | None:
    """A date and time as people type it in a web form (``_LOCAL_DATE_TIME``: no zone is UTC) as an
    aware datetime; None for anything else (a day that does not exist, 25:00)."""
    typed = _LOCAL_DATE_TIME.fullmatch(value.strip())
    if typed is None:
        return None
    day, minutes, seconds, zone = typed.groups()
    try:
        return dt.datetime.fromisoformat(f"{day}T{minutes}{seconds or ':00'}{'+00:00' if zone in (None, 'Z') else zone}")
    except ValueError:
        return None


def typed_time(moment: dt.datetime) -> str:
    """An instant as the desk's forms type it and :func:`typed_instant` reads it back: UTC, to the
    minute ("2026-03-10 20:00")."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


_FALSE_TEXT: Final = frozenset({"false", "off", "no", "0"})


@_pattern_budget()
def validate_submission(
    schema: dict[str, Any],
    ui_schema: dict[str, Any] | None,
    data: Mapping[str, Any],
    task_data: Mapping[str, Any],
    *,
    coerce_strings: bool = False,
    members: GroupMembers | None = None,
    groups: GroupsOffered | None = None,
    today: dt.date | None = None,
    known_users: KnownUsers | None = None,
    now: dt.datetime | None = None,
    submitter: str | None = None,
) -> dict[str, Any]:
    """Validate a form submission server-side and return the cleaned data.

    The form is first resolved against ``task_data``, ``members`` and ``groups`` (see
    :func:`resolve_form`). Cleaning:

    * only declared fields are kept; unknown fields are dropped silently, at every nesting level;
    * ``None`` counts as absent; an absent optional field gets the schema ``default`` if any
      (required fields must be sent; a required nested object that is absent is treated as ``{}``
      so its own required fields are reported by dotted name);
    * text of only whitespace is no answer: for a required field it "is required";
    * a field that an object's ``if``/``then``/``else`` makes required for the answers given (read
      only fields as stored) and that is missing "is required when “Outcome” is Resolved" (or
      "... unless ..." for an ``else``), with the choice titles of the tested fields;
    * ``formatMinimum``/``formatExclusiveMinimum`` naming a sibling are checked when either of
      the two is submitted, on each one's submitted value, else its value in ``task_data`` (a
      form may move only one end of a window), and only when both values are valid; the error
      names the field that carries the keyword;
    * read-only fields (schema ``readOnly`` or ui ``ui:readonly``/``ui:disabled``, including
      everything inside a read-only object) ignore the submitted value: the value at the same path
      in ``task_data`` is kept, else the default, else the field is left out; such values are not
      validated (the user could not fix them);
    * whole floats for integer fields become ints;
    * ``formatMinimum``/``formatMaximum`` (and their exclusive forms) given as ``{"$today":
      "P1Y"}`` are days relative to ``today`` (the caller's clock: this module reads none); without
      ``today`` such bounds are not checked;
    * such bounds given as ``{"$now": "PT5M"}`` are instants relative to ``now`` (an aware
      datetime, the caller's clock; a naive one is taken as UTC); without ``now`` they are not
      checked. An upper bound at most an hour ahead of ``now`` (clock skew) is refused as "cannot
      be in the future"; other ``$now`` bounds name the instant ("must not be after
      2026-01-05T09:05:00Z"). Without ``today``, ``now``'s UTC day is today;
    * with ``known_users``, a valid ``"format": "username"`` field that names no user
      ``known_users`` returns is refused ("nobody is not a user you can name here", the same words
      whether the user does not exist, is inactive or is beyond what the submitter may name, so
      the form is no way to find out who exists); with ``submitter`` (the submitter's user name)
      and a value close to it, the message adds "did you mean <submitter>?". Without
      ``known_users`` only the shape of the name is checked;
    * text holding a bidirectional formatting control (:data:`BIDI_CONTROLS`) is refused, in any
      field that is not read-only, also inside lists ("each item ...") and nested objects;
    * a field whose choices are groups (``options_from_groups:with_agents``) refuses a group that is
      not offered (unknown, removed, or without an active agent now) with a message that says so:
      "MessagingTeam is not a group with an active agent; must be one of: ServiceDesk, ..."
      (FormMessage kind ``not_offered_group``). Only where ``schema`` still holds the marker: a
      form resolved before (start and request forms are) says "must be one of: ..." as for any choice.

    With ``coerce_strings=True`` (HTML form posts) additionally:

    * an optional field without a default that holds a value in ``task_data`` (an earlier round's
      answer, shown in the form) and is posted empty is emptied: ``""`` for text that allows it,
      else ``None``; the old answer is not kept;

    * ``""`` or whitespace (and an all-blank nested object) counts as absent, so a blank
      required field "is required";
    * dotted keys (``"address.city"``) are nested; a one-element list for a scalar field is
      unwrapped (``MultiDict.to_dict(flat=False)``);
    * a ``date-time`` typed with a space for the ``T``, without seconds or without a zone
      (``2026-03-10 20:00``, ``2026-03-10 20:00+02:00``) -> RFC 3339; no zone is UTC
      (``2026-03-10T20:00:00Z``), the zone the pages show times in;
    * ``"3"``/``"-2"`` -> int for integer fields, decimal text -> number, ``true/on/yes/1`` and
      ``false/off/no/0`` -> booleans, text matching a non-text choice value -> that value;
    * arrays: a single string becomes a one-element list for choice arrays, or is split into
      lines for free arrays (for free lists of text also at commas and semicolons, and at spaces
      where an item cannot hold one, as :func:`validate_start_data` reads one text); blank items
      are dropped, items are coerced as above;
    * an absent boolean shown as a checkbox (the default widget) is ``False`` (browsers send
      nothing for an unchecked box), and an absent optional ``checkboxes`` array is ``[]`` (left
      out instead if it has ``minItems``); neither falls back to its default in this mode.

    Raises:
        ValidationFailed: ``message="form data is invalid"``,
            ``details={"fields": {"name" | "nested.name": ["message", ...]}}`` - one human message
            per broken rule per field, e.g. "is required", "must be at most 50 characters",
            "must be one of: high, medium, low" (the values to send, not the choices' titles),
            "must be a valid email address", "must be after Planned start", "cannot be in the
            future", "must not contain bidirectional control characters (U+202E)". Errors on an array's
            items are reported on the array field as "each
            item ...". A submission that is not an object is reported under
            :data:`FORM_ERROR_KEY`.
    """
    resolved, ui = resolve_form(schema, ui_schema, task_data, members, groups)
    if not isinstance(data, Mapping):
        raise ValidationFailed(_SUBMISSION_INVALID, details={"fields": {FORM_ERROR_KEY: ["must be an object"]}})
    if coerce_strings:
        data = _unflatten(data)

    cleaned = _clean_object(resolved, ui, data, task_data, coerce_strings)
    fields: dict[str, list[str]] = {}
    for field, message in _condition_errors(resolved, ui, cleaned, ""):
        fields[field] = [message]
    # Conditions are left out of the schema the validator sees: they were checked just above,
    # with messages that say which answer made the field required.
    validation_schema = _without_read_only(resolved, ui)
    validator = _FormValidator(validation_schema, format_checker=_FORMAT_CHECKER)

    for error in validator.iter_errors(_without_cleared(cleaned)):
        for field, message in _translate_error(error):
            messages = fields.setdefault(field, [])
            if message not in messages:
                messages.append(message)
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    if today is None and now is not None:
        today = now.astimezone(dt.timezone.utc).date()
    for field, message in _order_errors(resolved, ui, cleaned, task_data, "", today, now):
        if field not in fields:  # a value that is already wrong is not compared
            fields[field] = [message]
    if known_users is not None:
        for field, message in _unknown_users(resolved, ui, cleaned, "", known_users, fields, submitter):
            fields[field] = [message]
    for field, message in _bidi_errors(resolved, ui, cleaned, ""):
        messages = fields.setdefault(field, [])
        if message not in messages:
            messages.append(message)
    if fields:
        _say_groups_not_offered(schema, resolved, cleaned, "", fields)
        raise ValidationFailed(_SUBMISSION_INVALID, details={"fields": fields})
    return cleaned


#: What a group of each filter of ``users.GROUP_FILTERS`` is, in the refusal of a group not offered.
_GROUP_FILTER_WORDS: Final[Mapping[str, str]] = {"with_agents": "a group with an active agent"}


def _say_groups_not_offered(schema: Mapping[str, Any], resolved: Mapping[str, Any], cleaned: Any, prefix: str,
                            fields: dict[str, list[str]]) -> None:
    """Say a group not offered as such: in ``fields``, the "must be one of" (or "has no available
    choices") of a text field whose choices ``schema`` takes from ``options_from_groups:FILTER``
    becomes a ``not_offered_group`` message naming the value sent. A person who picked a group
    that has since lost its agents (or a client that names one) learns why it is refused, not only
    what else there is."""
    properties, shown = schema.get("properties"), resolved.get("properties")
    if not isinstance(properties, Mapping) or not isinstance(shown, Mapping) or not isinstance(cleaned, Mapping):
        return
    for name, sub in properties.items():
        if not isinstance(sub, Mapping) or not isinstance(shown.get(name), Mapping):
            continue
        if sub.get("type") == "object":
            _say_groups_not_offered(sub, shown[name], cleaned.get(name), f"{prefix}{name}.", fields)
            continue
        sources = [_dynamic_source(sub.get(keyword)) for keyword in _CHOICE_KEYWORDS if keyword in sub]
        value, messages = cleaned.get(name), fields.get(f"{prefix}{name}")
        if not sources or sources[0] is None or sources[0][0] != "groups" or not isinstance(value, str) or not messages:
            continue
        labels = _choice_labels(shown[name], "oneOf")
        values = [offered for offered, _title in labels]
        what = _GROUP_FILTER_WORDS.get(sources[0][1], "a group offered here")
        text = (f"{value} is not {what}; must be one of: {', '.join(values)}" if values
                else f"{value} is not {what}; no group is offered now")
        said = FormMessage(text, "not_offered_group", value=value, filter=sources[0][1],
                           choices=[title for _value, title in labels], values=values)
        fields[f"{prefix}{name}"] = [said if (isinstance(m, FormMessage) and m.kind == "one_of")
                                     or m == "has no available choices" else m for m in messages]


_LIST_SEPARATORS: Final = re.compile(r"[\r\n,;]+")


def _is_text_list(node: Mapping[str, Any]) -> bool:
    """A free list of text: an array of string items without choices."""
    items = node.get("items")
    return node.get("type") == "array" and _field_kind(node) == "list" and isinstance(items, Mapping) \
        and items.get("type") == "string"


def _list_items(text: str, item: Mapping[str, Any]) -> list[str]:
    """The items of a free list written as one text: separated by line breaks, commas or
    semicolons, and by spaces where an item cannot hold them (a piece the item refuses whose words
    it all accepts: ``"INC-000001 INC-000002"`` is two numbers, ``"Call the vendor"`` stays one)."""
    validator = _FormValidator(dict(item), format_checker=_FORMAT_CHECKER)
    found: list[str] = []
    for piece in _LIST_SEPARATORS.split(text):
        piece = piece.strip()
        words = piece.split()
        if len(words) > 1 and not validator.is_valid(piece) and all(validator.is_valid(word) for word in words):
            found.extend(words)
        elif piece:
            found.append(piece)
    return found


@_pattern_budget()
def validate_start_data(schema: dict[str, Any], ui_schema: dict[str, Any] | None, data: Mapping[str, Any], *,
                        today: dt.date | None = None, known_users: KnownUsers | None = None,
                        now: dt.datetime | None = None, submitter: str | None = None) -> dict[str, Any]:
    """Validate the data a process is started with against its start form; return it cleaned.

    As :func:`validate_submission` for a JSON client (no task data yet, no HTML coercions), with
    one allowance: a free list (an array of text items without choices) may also be sent as one
    text whose items are separated by line breaks, commas or semicolons (or spaces, for items that
    cannot hold one), the way people and other systems pass lists of references
    (``"INC-000001, INC-000002"``, ``"INC-000001 INC-000002"``).

    ``today``, ``now``, ``known_users`` and ``submitter``: as for :func:`validate_submission`.

    Raises:
        ValidationFailed: as :func:`validate_submission`.
    """
    if isinstance(data, Mapping):
        properties = schema.get("properties")
        data = dict(data)
        for name, value in list(data.items()):
            sub = properties.get(name) if isinstance(properties, Mapping) else None
            if isinstance(value, str) and isinstance(sub, Mapping) and _is_text_list(sub):
                data[name] = _list_items(value, sub["items"])
    return validate_submission(schema, ui_schema, data, {}, today=today, known_users=known_users, now=now,
                               submitter=submitter)


def _bidi_errors(node: Mapping[str, Any], ui: Mapping[str, Any], cleaned: Any, prefix: str
                 ) -> Iterator[tuple[str, FormMessage]]:
    """Fields of the object ``node`` (and nested objects) whose submitted value holds a
    :data:`BIDI_CONTROLS` character, each with its message; an array's as "each item ...".
    Read-only fields keep what is stored and are not looked at (the user could not fix them)."""
    properties = node.get("properties")
    if not isinstance(properties, Mapping) or not isinstance(cleaned, Mapping):
        return
    for name, sub in properties.items():
        sub_ui = _ui_of(ui, name)
        if not isinstance(sub, Mapping) or name not in cleaned or _is_read_only(sub, sub_ui):
            continue
        value = cleaned[name]
        if sub.get("type") == "object" and isinstance(value, Mapping):
            yield from _bidi_errors(sub, sub_ui, value, f"{prefix}{name}.")
            continue
        message = bidi_control_message(value)
        if message is None:
            continue
        if sub.get("type") == "array" and isinstance(value, list):
            message = FormMessage(f"each item {message}", "each_item", item=message)
        yield f"{prefix}{name}", message


#: How alike a user name must be to the submitter's own to be taken for a typo of it (difflib ratio).
_OWN_NAME_LIKENESS: Final = 0.7


def _unknown_user_message(value: str, submitter: str | None) -> FormMessage:
    if submitter and submitter != value \
            and difflib.SequenceMatcher(None, value.lower(), submitter.lower()).ratio() >= _OWN_NAME_LIKENESS:
        return FormMessage(f"{value} is not a user you can name here; did you mean {submitter}?", "unknown_user",
                           value=value, suggestion=submitter)
    return FormMessage(f"{value} is not a user you can name here", "unknown_user", value=value)


def _unknown_users(node: Mapping[str, Any], ui: Mapping[str, Any], cleaned: Any, prefix: str,
                   known_users: KnownUsers, refused: Mapping[str, Any], submitter: str | None = None,
                   ) -> list[tuple[str, str]]:
    """``"format": "username"`` fields of ``node`` (and nested objects) whose valid value names no
    user ``known_users`` returns: one look-up for all of them. Read-only fields and fields that are
    already refused are not asked about. The message is the same for a user who does not exist and
    one the submitter may not name; only the submitter's own name is offered as a correction."""
    named: list[tuple[str, str]] = []

    def collect(node: Mapping[str, Any], ui: Mapping[str, Any], cleaned: Any, prefix: str) -> None:
        properties = node.get("properties")
        if not isinstance(properties, Mapping) or not isinstance(cleaned, Mapping):
            return
        for name, sub in properties.items():
            if not isinstance(sub, Mapping) or _is_read_only(sub, _ui_of(ui, name)) or name not in cleaned:
                continue
            if sub.get("type") == "object":
                collect(sub, _ui_of(ui, name), cleaned[name], f"{prefix}{name}.")
            elif sub.get("format") == "username" and isinstance(cleaned[name], str) \
                    and f"{prefix}{name}" not in refused:
                named.append((f"{prefix}{name}", cleaned[name]))

    collect(node, ui, cleaned, prefix)
    known = known_users({value for _field, value in named}) if named else set()
    return [(field, _unknown_user_message(value, submitter)) for field, value in named if value not in known]


def _order_errors(
    node: Mapping[str, Any], ui: Mapping[str, Any], cleaned: Any, stored: Any, prefix: str, today: dt.date | None,
    now: dt.datetime | None = None,
) -> Iterator[tuple[str, str]]:
    """``formatMinimum``/``formatExclusiveMinimum``/``formatMaximum``/``formatExclusiveMaximum`` of
    the object ``node`` (and nested objects); a ``{"$today": ...}`` bound only when ``today`` is
    known, a ``{"$now": ...}`` bound only when ``now`` is."""
    properties = node.get("properties")
    if not isinstance(properties, Mapping) or not isinstance(cleaned, Mapping):
        return
    stored = stored if isinstance(stored, Mapping) else {}
    for name, sub in properties.items():
        sub_ui = _ui_of(ui, name)
        if not isinstance(sub, Mapping) or _is_read_only(sub, sub_ui):
            continue
        if sub.get("type") == "object":
            if name in cleaned:
                yield from _order_errors(sub, sub_ui, cleaned[name], stored.get(name), f"{prefix}{name}.", today, now)
            continue
        fmt = str(sub.get("format"))
        for keyword, inclusive in _ORDER_KEYWORDS.items():
            if keyword not in sub:
                continue
            bound = sub[keyword]
            other = _order_ref(bound)
            if other is not None:
                # Either end may be moved alone: compare what the pair is after this submission.
                if name not in cleaned and other not in cleaned:
                    continue
                sibling = properties.get(other)
                label = sibling.get("title", other) if isinstance(sibling, Mapping) else other
                said: dict[str, str] = {"field": str(label)}
                bound = cleaned[other] if other in cleaned else stored.get(other)
            elif name not in cleaned:
                continue
            else:
                shift = _today_shift(bound)
                if shift is not None:
                    if today is None:
                        continue  # the caller does not know the day (see validate_submission)
                    bound = _shifted(today, shift).isoformat()
                moved = _now_shift(bound)
                if moved is not None:
                    if now is None:
                        continue  # the caller does not know the time (see validate_submission)
                    bound = now + moved  # compared exactly; said to the second, in UTC
                label = rfc3339(bound) if isinstance(bound, dt.datetime) else _format_value(bound)
                said = {"value": label}
                if moved is not None and keyword in _UPPER_BOUNDS and dt.timedelta(0) <= moved <= _SKEW_AT_MOST:
                    # "now, give or take the clocks": say what it means, not an instant nobody typed
                    value, limit = _instant(cleaned[name], fmt), _instant(bound, fmt)
                    if value is not None and limit is not None and (value > limit or (value == limit and not inclusive)):
                        yield f"{prefix}{name}", FormMessage("cannot be in the future", "in_future", value=label)
                    continue
            current = cleaned[name] if name in cleaned else stored.get(name)
            value, limit = _instant(current, fmt), _instant(bound, fmt)
            if value is None or limit is None:
                continue
            if keyword in _UPPER_BOUNDS:
                if inclusive and value > limit:
                    yield f"{prefix}{name}", FormMessage(f"must not be after {label}", "not_after", **said)
                elif not inclusive and value >= limit:
                    yield f"{prefix}{name}", FormMessage(f"must be before {label}", "before", **said)
            elif inclusive and value < limit:
                yield f"{prefix}{name}", FormMessage(f"must not be before {label}", "not_before", **said)
            elif not inclusive and value <= limit:
                yield f"{prefix}{name}", FormMessage(f"must be after {label}", "after", **said)


def _conditions(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``if``/``then``/``else`` conditions of an object node: the inline one, then ``allOf``'s."""
    found = [node] if isinstance(node.get("if"), Mapping) else []
    entries = node.get("allOf")
    if isinstance(entries, list):
        found.extend(entry for entry in entries if isinstance(entry, Mapping) and isinstance(entry.get("if"), Mapping))
    return found


def _tested_values(rule: Mapping[str, Any]) -> list[Any]:
    """The values a checked ``if`` accepts for one field: ``{"const": v}`` or ``{"enum": [...]}``."""
    return [rule["const"]] if "const" in rule else list(rule.get("enum") or [])


def _condition_holds(test: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """A checked ``if`` with JSON Schema's meaning: a tested field that is absent does not make it
    fail unless the ``if`` lists it in ``required``."""
    if any(values.get(name) is None for name in test.get("required") or []):
        return False  # None: an answer withdrawn (see _clean_object), as good as absent
    for name, rule in (test.get("properties") or {}).items():
        value = values.get(name)
        if value is None or not isinstance(rule, Mapping):
            continue
        if not _is_scalar(value):
            return False  # a list or an object is no answer a test names; the validator says why
        if _choice_key(value) not in {_choice_key(choice) for choice in _tested_values(rule)}:
            return False
    return True


def _condition_tests(test: Mapping[str, Any], properties: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """What a checked ``if`` asks, as :class:`FormMessage` keeps it: ``(field title, words)`` per
    tested field, each word ``(text, how)`` (see FormMessage)."""
    tests = []
    for name, rule in (test.get("properties") or {}).items():
        found = properties.get(name)
        field: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        labels = {_choice_key(value): (label, "choice") for value, label in _choices_of(field) or []}
        if field.get("type") == "boolean":
            labels = {("bool", True): ("ticked", "tick"), ("bool", False): ("not ticked", "tick"), **labels}
        words = [labels.get(_choice_key(value), (_format_value(value), "value")) for value in _tested_values(rule)]
        tests.append((str(field.get("title") or name), words))
    return tests


def _condition_message(holds: bool, tests: list[tuple[str, list[tuple[str, str]]]]) -> FormMessage:
    """``is required when “Outcome” is Resolved``, ``... unless “Decision” is Reject and “Kind” is
    Laptop or Monitor``, or for a check box without choice titles ``“Tested” is ticked``."""
    text = " and ".join(f"“{title}” is " + " or ".join(word for word, _how in words) for title, words in tests)
    if holds:
        return FormMessage(f"is required when {text}", "required_when", tests=tests)
    return FormMessage(f"is required unless {text}", "required_unless", tests=tests)


def _required_by_conditions(node: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, str]:
    """Fields of the object ``node`` that its conditions make required for ``values``, each with
    the message that says why (``is required when “Outcome” is Resolved``)."""
    declared = node.get("properties")
    properties: Mapping[str, Any] = declared if isinstance(declared, Mapping) else {}
    always = set(node.get("required") or [])
    found: dict[str, str] = {}
    for condition in _conditions(node):
        holds = _condition_holds(condition["if"], values)
        branch = condition.get("then" if holds else "else")
        if not isinstance(branch, Mapping):
            continue
        message = _condition_message(holds, _condition_tests(condition["if"], properties))
        for name in branch.get("required") or []:
            if name not in always:
                found.setdefault(name, message)
    return found


def _condition_errors(node: Mapping[str, Any], ui: Mapping[str, Any], cleaned: Any, prefix: str) -> Iterator[tuple[str, str]]:
    """Conditionally required fields missing from ``cleaned`` (text of only spaces is removed, as
    for a required field: it answers nothing), for the object ``node`` and nested objects."""
    properties = node.get("properties")
    if not isinstance(properties, Mapping) or not isinstance(cleaned, dict):
        return
    for name, message in _required_by_conditions(node, cleaned).items():
        sub = properties.get(name)
        if not isinstance(sub, Mapping) or _is_read_only(sub, _ui_of(ui, name)):
            continue
        if name in cleaned and (cleaned[name] is None or cleaned[name] == [] or _is_blank_text(cleaned[name])):
            del cleaned[name]  # nothing ticked answers a required choice no more than blank text
        if name not in cleaned:
            yield f"{prefix}{name}", message
    for name, sub in properties.items():
        if isinstance(sub, Mapping) and sub.get("type") == "object" and name in cleaned:
            yield from _condition_errors(sub, _ui_of(ui, name), cleaned[name], f"{prefix}{name}.")


def _unflatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """Nest dotted keys from an HTML post (``{"a.b": 1}`` -> ``{"a": {"b": 1}}``)."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or "." not in key:
            if isinstance(result.get(key), dict) and isinstance(value, Mapping):
                result[key].update(value)
            else:
                result[key] = value
            continue
        *parents, leaf = key.split(".")
        target = result
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = dict(child) if isinstance(child, Mapping) else {}
                target[part] = child
            target = child
        target[leaf] = value
    return result


def _is_read_only(node: Mapping[str, Any], ui: Mapping[str, Any]) -> bool:
    # A disabled/read-only widget is not editable in the UI, so a value for it in the post can only
    # come from a tampered request: it is enforced server-side like schema readOnly.
    return node.get("readOnly") is True or _ui_read_only(ui)


def _is_blank(value: Any) -> bool:
    if value is None or _is_blank_text(value):
        return True
    if isinstance(value, Mapping):
        return all(_is_blank(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_blank(v) for v in value)
    return False


def _normalise_raw(node: Mapping[str, Any], raw: Any, web: bool) -> Any:
    if raw is None:
        return _MISSING
    if not web:
        return raw
    if node.get("type") != "array" and isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if node.get("type") == "object" and isinstance(raw, Mapping):
        return _MISSING if _is_blank(raw) else raw
    # [""] is what a cleared multi-value input posts; [] stays an explicit empty choice.
    if _is_blank_text(raw) or (node.get("type") == "array" and _is_blank(raw) and raw != []):
        return _MISSING
    return raw


def _is_blank_text(value: Any) -> bool:
    """Text with nothing to read: empty, whitespace, or only invisible format characters (a zero
    width space U+200B, a joiner, a BOM; QA: resolution notes of zero-width spaces resolved an
    incident)."""
    return isinstance(value, str) and all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in value)


def _clean_object(
    node: Mapping[str, Any],
    ui: Mapping[str, Any],
    value: Mapping[str, Any],
    stored: Any,
    web: bool,
) -> dict[str, Any]:
    properties = node.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    required = set(node.get("required") or [])
    out: dict[str, Any] = {}
    for name, sub in properties.items():
        sub_ui = _ui_of(ui, name)
        stored_sub = stored.get(name, _MISSING) if isinstance(stored, Mapping) else _MISSING
        if _is_read_only(sub, sub_ui):
            if stored_sub is not _MISSING:
                out[name] = copy.deepcopy(stored_sub)
            elif "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            continue

        raw = _normalise_raw(sub, value.get(name, _MISSING), web)
        if name in required and _is_blank_text(raw):
            raw = _MISSING  # "   " answers nothing: left out, so the validator says "is required"
        if raw is not _MISSING:
            out[name] = _clean_value(sub, sub_ui, raw, stored_sub, web)
            continue
        widget = sub_ui.get("ui:widget")
        if web and sub.get("type") == "boolean" and widget in (None, "checkbox"):
            out[name] = False
        elif web and _field_kind(sub) == "multichoice" and widget in (None, "checkboxes") and name not in required:
            # All boxes unchecked is an explicit "none" (and must overwrite an older value), unless
            # the field demands items when present: then "none" can only mean "left out".
            if not sub.get("minItems"):
                out[name] = []
        elif name in required:
            if sub.get("type") == "object":
                out[name] = _clean_object(sub, sub_ui, {}, stored_sub, web)
            # otherwise left out: the validator reports "is required"
        elif "default" in sub:
            out[name] = copy.deepcopy(sub["default"])
        elif (web and name in value and stored_sub not in (_MISSING, None) and sub.get("type") != "object"
              and sub_ui.get("ui:widget") != "password"):  # a password is never shown again: blank keeps it
            # A control the page showed filled in (an earlier round's answer) and the user emptied:
            # the old answer is withdrawn, not kept. Text becomes "" where the field allows it.
            out[name] = "" if sub.get("type") == "string" and _accepts(sub, "") else None
    return out


def _accepts(node: Mapping[str, Any], value: Any) -> bool:
    return bool(_FormValidator(dict(node), format_checker=_FORMAT_CHECKER).is_valid(value))


def _without_cleared(value: Any) -> Any:
    """``value`` without the ``None`` of emptied fields (see :func:`_clean_object`), for validation."""
    if isinstance(value, dict):
        return {key: _without_cleared(item) for key, item in value.items() if item is not None}
    return value


def _clean_value(node: Mapping[str, Any], ui: Mapping[str, Any], raw: Any, stored: Any, web: bool) -> Any:
    type_name = node.get("type")
    if type_name == "object":
        if isinstance(raw, Mapping):
            return _clean_object(node, ui, raw, stored, web)
        return raw
    if type_name == "array":
        items = node.get("items")
        item_node: Mapping[str, Any] = items if isinstance(items, Mapping) else {}
        if web and isinstance(raw, str):
            if _field_kind(node) == "multichoice":
                raw = [raw]
            elif _is_text_list(node):
                raw = _list_items(raw, item_node)  # one per line, or "INC-000001, INC-000002"
            else:
                raw = [line.strip() for line in raw.splitlines()]
        elif web and _is_scalar(raw):
            raw = [raw]
        if isinstance(raw, (list, tuple)):
            return [_coerce_scalar(item_node, item, web) for item in raw if not (web and (item is None or item == ""))]
        return raw
    return _coerce_scalar(node, raw, web)


def _coerce_scalar(node: Mapping[str, Any], value: Any, web: bool) -> Any:
    type_name = node.get("type")
    if type_name == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if not web or not isinstance(value, str):
        return value
    text = value.strip()
    if node.get("format") == "date-time" and (typed := _LOCAL_DATE_TIME.fullmatch(text)):
        day, minutes, seconds, zone = typed.groups()
        return f"{day}T{minutes}{seconds or ':00'}{zone or 'Z'}"
    if node.get("format") in SUPPORTED_FORMATS:
        # A user name, an address, a date typed or pasted with a space around it: what was meant
        # is plain, and none of them has one of its own.
        return text
    if type_name == "integer":
        return int(text) if _INTEGER_TEXT.fullmatch(text) else value
    if type_name == "number":
        if _NUMBER_TEXT.fullmatch(text):
            if _INTEGER_TEXT.fullmatch(text):
                return int(text)
            number = float(text)
            return number if math.isfinite(number) else value
        return value
    if type_name == "boolean":
        lowered = text.lower()
        if lowered in _TRUE_TEXT:
            return True
        if lowered in _FALSE_TEXT:
            return False
        return value
    # Untyped choice field: an HTML form can only send text, so match the choices' spelling.
    choices = _choices_of(node)
    if choices and not any(choice == value and isinstance(choice, str) for choice, _ in choices):
        for choice, _label in choices:
            if not isinstance(choice, str) and _format_value(choice) == text:
                return choice
    return value


def _without_read_only(node: Mapping[str, Any], ui: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a resolved schema in which read-only fields accept anything and are optional, and
    without conditional requirements (see :func:`_condition_errors`)."""
    result = {key: value for key, value in node.items() if key not in ("if", "then", "else", "allOf")}
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        new_properties: dict[str, Any] = {}
        read_only_names: set[str] = set()
        for name, sub in properties.items():
            sub_ui = _ui_of(ui, name)
            if isinstance(sub, Mapping) and _is_read_only(sub, sub_ui):
                new_properties[name] = {}
                read_only_names.add(name)
            elif isinstance(sub, Mapping):
                new_properties[name] = _without_read_only(sub, sub_ui)
            else:
                new_properties[name] = sub
        result["properties"] = new_properties
        if "required" in node:
            result["required"] = [n for n in node["required"] if n not in read_only_names]
    return result


def _choice_labels(schema: Mapping[str, Any], keyword: str) -> list[tuple[str, str]]:
    """``(value as written, title)`` of each choice of a resolved field: the value is what a client
    sends, the title what a person picks (the value itself for a choice without one, and for ``enum``)."""
    values = schema.get(keyword)
    if not isinstance(values, list):
        return []
    if keyword == "enum":
        return [(_format_value(v), _format_value(v)) for v in values]
    return [(_format_value(entry.get("const")), str(entry.get("title", _format_value(entry.get("const")))))
            for entry in values if isinstance(entry, Mapping)]


def _message_for(error: jsonschema.ValidationError) -> str:
    keyword = error.validator
    value = error.validator_value
    if keyword == "type":
        return _TYPE_MESSAGES.get(value, "has the wrong type") if isinstance(value, str) else "has the wrong type"
    if keyword == "minLength":
        return _counted("at_least_chars", value, "character", "must be at least")
    if keyword == "maxLength":
        return _counted("at_most_chars", value, "character", "must be at most")
    if keyword == "minimum":
        return _valued("at_least", "must be at least", value)
    if keyword == "maximum":
        return _valued("at_most", "must be at most", value)
    if keyword == "exclusiveMinimum":
        return _valued("greater_than", "must be greater than", value)
    if keyword == "exclusiveMaximum":
        return _valued("less_than", "must be less than", value)
    if keyword == "pattern":
        # The API's text keeps the pattern (what a client must send); a page says the field's
        # own words for it, else that the value is not in the expected format.
        said = error.schema.get("patternMessage") if isinstance(error.schema, Mapping) else None
        if isinstance(error, _PatternTimedOut):
            # Same kind for pages (a person reads what the field asks for); the API says why.
            text = (f"could not be checked against the pattern {value} in time: "
                    f"send a shorter or simpler value")
            if isinstance(said, str) and said.strip():
                return FormMessage(text, "pattern", pattern=str(value), message=said, timed_out=True)
            return FormMessage(text, "pattern", pattern=str(value), timed_out=True)
        if isinstance(said, str) and said.strip():
            return FormMessage(f"must match the pattern {value}", "pattern", pattern=str(value), message=said)
        return FormMessage(f"must match the pattern {value}", "pattern", pattern=str(value))
    if keyword == "format":
        return FORMAT_MESSAGES.get(str(value), "has an invalid format")
    if keyword in _CHOICE_KEYWORDS:
        labels = _choice_labels(error.schema if isinstance(error.schema, Mapping) else {}, str(keyword))
        if not labels:
            return "has no available choices"
        # The text (what the API answers) lists the values a client must send; a page, whose user
        # picks from the titles, says the titles (``choices``).
        values = [value for value, _title in labels]
        return FormMessage("must be one of: " + ", ".join(values), "one_of",
                           choices=[title for _value, title in labels], values=values)
    if keyword == "const":
        return _valued("equal_to", "must be", value)
    if keyword == "minItems":
        return _counted("at_least_items", value, "item", "must have at least")
    if keyword == "maxItems":
        return _counted("at_most_items", value, "item", "must have at most")
    if keyword == "uniqueItems":
        return "must not contain duplicates"
    if keyword == "additionalProperties":
        return "is not allowed"
    return "is invalid"


def _translate_error(error: jsonschema.ValidationError) -> Iterator[tuple[str, str]]:
    """Turn one jsonschema error into ``(dotted field name, human message)`` pairs."""
    names: list[str] = []
    in_items = False
    for part in error.absolute_path:
        if isinstance(part, int):
            # Item errors belong to the array field: the renderer shows one control for it.
            in_items = True
            break
        names.append(str(part))
    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        for missing in error.validator_value:
            if missing not in instance:
                yield ".".join([*names, str(missing)]), "is required"
        return
    message = _message_for(error)
    if in_items:
        message = FormMessage(f"each item {message}", "each_item", item=message)
    yield ".".join(names) or FORM_ERROR_KEY, message

