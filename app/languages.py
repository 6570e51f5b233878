"""The languages the desk speaks, and texts written to people in their own language.

The web pages pick their language per request (app/web/i18n.py). What the desk writes to people
outside a request (notification mails and in-app notices, written while a step runs or a sweep
sends reminders) is in each reader's language instead: the one they chose (``User.locale``: the
header's language switch or their account page, or an admin through the users API), else the
site's ``DEFAULT_LANGUAGE``. One notice about one event to an English and a Chinese reader is
written twice, once in each.

So those texts are not formatted where they are written but described: a :class:`Text` is an
English message with ``%(name)s`` placeholders and the values to put in them, rendered per reader
by :func:`render`. A value may itself be a :class:`Text` (a word such as "breached") or a
:class:`Content` (a process's own words, such as a task's name, translated by the process's
deployed translation file as the pages translate it: app/services/content_texts.py). A
:class:`ContentTemplate` is a process's own words with placeholders (a ``notify`` step's subject):
translated so, then filled in with the process's data, which is never translated. The
messages' translations are ``translations/<locale>/LC_MESSAGES/notices.po`` beside the pages'
(app/web/translations), read here from the ``.po`` itself, so that nothing needs compiling
before a sweep can write Chinese. To add a message: write ``Text("...")`` and add its entry to
each ``notices.po`` (tests/services/test_notice_languages.py checks every one has one).

Nothing here imports Flask.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Language code -> the language's own name, as the pages offer it. English is the source.
LANGUAGES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}
#: The language of people who chose none, unless the site's ``DEFAULT_LANGUAGE`` says otherwise.
DEFAULT_LANGUAGE = "en"

CATALOG_DIR = Path(__file__).parent / "web" / "translations"
NOTICES_DOMAIN = "notices"
#: Catalog folder of each language: Babel resolves zh_CN to its full CLDR name (app/web/i18n.py).
_CATALOG_FOLDERS = {"zh_CN": "zh_Hans_CN"}

#: ``(scope, source text, language) -> the text in that language``: a process's own words.
ContentLookup = Callable[[str, str, str], str]


def language_problem(value: Any) -> str | None:
    """Why ``value`` is no language a user may choose (None: it is one, or None for no choice)."""
    if value is None or (isinstance(value, str) and value in LANGUAGES):
        return None
    return f"must be one of {', '.join(LANGUAGES)} (or null: the site's default)"


def reader_language(chosen: str | None, default: str | None) -> str:
    """The language to write to someone in: the one they chose, else the site's default."""
    if chosen in LANGUAGES:
        return str(chosen)
    return str(default) if default in LANGUAGES else DEFAULT_LANGUAGE


@dataclass(frozen=True, init=False)
class Text:
    """An English message (``%(name)s`` placeholders) and its values, rendered per reader."""

    message: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, message: str, **values: Any) -> None:
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "values", values)


@dataclass(frozen=True)
class Content:
    """A text of ``scope``'s content (a process id, or ``catalog``): shown translated where the
    scope's deployed translation into the reader's language has it, else as it is."""

    scope: str
    text: str


@dataclass(frozen=True)
class ContentTemplate:
    """A template of ``scope``'s content (a ``notify`` step's subject or body) and ``fill``, which
    fills a template in with the process's data: the template is translated as a :class:`Content`
    is, then filled. ``fill`` raises ValueError for a template that cannot be filled: a translation
    that fails so gives way to the source template (logged), whose failure is raised."""

    scope: str
    text: str
    fill: Callable[[str, str], str] = field(compare=False, repr=False)
    """``fill(template, language)``: the template filled in for a reader of ``language`` (which
    words the values as that reader reads them: a duration)."""


def render(value: Any, language: str, content: ContentLookup | None = None) -> str:
    """``value`` (a str, :class:`Text`, :class:`Content` or :class:`ContentTemplate`) written in
    ``language``. A message without a translation, or whose translation does not format with its
    values, is English."""
    if isinstance(value, Content):
        return content(value.scope, value.text, language) if content is not None and language != "en" else value.text
    if isinstance(value, ContentTemplate):
        words = content(value.scope, value.text, language) if content is not None and language != "en" else value.text
        if words != value.text:
            try:
                return value.fill(words, language)
            except ValueError as err:
                log.warning("the %s translation of a template of %s does not render (%s): the source is written",
                            language, value.scope, err)
        return value.fill(value.text, language)
    if not isinstance(value, Text):
        return "" if value is None else str(value)
    values = {name: render(v, language, content) if isinstance(v, Text | Content | ContentTemplate) else v
              for name, v in value.values.items()}
    translated = _catalog(language).get(value.message)
    if translated:
        try:
            return translated % values if values else translated
        except (KeyError, TypeError, ValueError):
            pass  # a translation with a broken placeholder: the English is better than nothing
    return value.message % values if values else value.message


#: An ISO 8601 duration ("P3D", "PT2H30M", "P1W"): its years, months, weeks, days, hours, minutes, seconds.
ISO_DURATION = re.compile(r"P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                          r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")
#: The units of :data:`ISO_DURATION`'s groups, in order.
DURATION_UNITS = ("year", "month", "week", "day", "hour", "minute", "second")


def duration_amounts(text: str) -> list[tuple[str, int | float]] | None:
    """An ISO 8601 duration's amounts by unit as written, the zero ones left out ("P1DT2H" ->
    [("day", 1), ("hour", 2)]; "PT0S" -> []); None when ``text`` is not one. Not normalised: "PT48H"
    is 48 hours, as its author wrote it. The pages and the notices word these in their language."""
    match = ISO_DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    amounts: list[tuple[str, int | float]] = []
    for unit, amount in zip(DURATION_UNITS, match.groups(), strict=True):
        if amount and float(amount):
            amounts.append((unit, float(amount) if unit == "second" else int(amount)))
    return amounts


def _duration_part(unit: str, amount: int | float) -> Text:
    # Singular and plural as two messages each: the notices' translation check reads Text calls only.
    if unit == "second":
        return Text("1 second") if amount == 1 else Text("%(num)s seconds", num=f"{amount:g}")
    count = int(amount)
    return {
        "year": lambda: Text("1 year") if count == 1 else Text("%(num)d years", num=count),
        "month": lambda: Text("1 month") if count == 1 else Text("%(num)d months", num=count),
        "week": lambda: Text("1 week") if count == 1 else Text("%(num)d weeks", num=count),
        "day": lambda: Text("1 day") if count == 1 else Text("%(num)d days", num=count),
        "hour": lambda: Text("1 hour") if count == 1 else Text("%(num)d hours", num=count),
        "minute": lambda: Text("1 minute") if count == 1 else Text("%(num)d minutes", num=count),
    }[unit]()


def duration_words(text: str, language: str) -> str | None:
    """An ISO 8601 duration in words in ``language`` ("P3D" -> "3 days", "3 天"), as a notice says
    it; None when ``text`` is not one."""
    amounts = duration_amounts(text)
    if amounts is None:
        return None
    if not amounts:
        return render(Text("%(num)d minutes", num=0), language)
    return " ".join(render(_duration_part(unit, amount), language) for unit, amount in amounts)


def catalog_path(language: str) -> Path:
    folder = _CATALOG_FOLDERS.get(language, language)
    return CATALOG_DIR / folder / "LC_MESSAGES" / f"{NOTICES_DOMAIN}.po"


@functools.cache
def _catalog(language: str) -> Mapping[str, str]:
    """The translated messages of ``language`` (empty for English, or without a catalog)."""
    from babel.messages.pofile import read_po

    path = catalog_path(language)
    if language == "en" or not path.exists():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=_CATALOG_FOLDERS.get(language, language), abort_invalid=True)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}
