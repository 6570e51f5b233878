"""Translations of process content: the words of diagrams, forms and the catalog in another language.

A process owner deploys, beside the files they own, one translation file per process and
language, ``<scope>.<locale>.i18n.json``::

    {"Triage incident": "分派事件", "Outcome": "处理结果", "Resolved": "已解决"}

``scope`` is a process id (the file translates the process's name, the names of its user tasks,
including those of the processes it calls, their instructions and documentation, every text
of the forms its tasks use and of its start form, and the subjects and bodies of its ``notify``
steps written as templates: :data:`NOTICE_PARAMS`) or ``catalog`` (the service catalog's category names, item names and descriptions,
and the request forms its items name). ``locale`` is one of :data:`CONTENT_LOCALES`. Each entry
maps a source text, exactly as the English content writes it, to its translation. Texts are
keyed by their source text, like a gettext catalog, rather than by a key path into each file: one
entry serves every form of the process that uses the same words, a translator works from the
words they see, and when the source text changes the page falls back to the new English instead
of showing the translation of words that are no longer there.

The file is checked at deploy (:func:`check_translation`: a known locale, a JSON object of
non-empty strings, each entry's source text one the scope's content has) and read when a page is
shown, by its current content (cached by digest), never compiled into a version: translating
makes no new version of the process. Stored values and submitted data never change; the API keeps
the source texts.

A ``notify`` step's subject or body written as one string literal is a template of the process's
words: ``"Please confirm receipt: {{ record_number }}"``, filled in from the step's data as an
instructions template is (app/services/instructions.py, as plain text). Its entry translates the
template, which is then filled in with the same values (the values themselves, what people
typed, are never translated); each recipient reads the notice in their own language
(app/services/notifications.py). A subject or body an expression computes (``"Closed: " +
title``) is made of data at run time: it is no text of the scope and goes out as computed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.engine import TRANSLATION_SUFFIX, LiteralParam
from app.engine.library import JsonFileError, load_json_file
from app.errors import ValidationFailed
from app.models import DefinitionFile

from .bounded import BoundedCache

#: The languages content may be translated into (English is the source). app/web/i18n.py offers
#: the same ones on the pages.
CONTENT_LOCALES = ("zh_CN",)
#: The scope of the service catalog's translation file (``catalog.<locale>.i18n.json``).
CATALOG_SCOPE = "catalog"
#: Keys of a form (JSON Schema or UI schema) whose string values are shown as text.
_TEXT_KEYS = frozenset({"title", "description", "ui:title", "ui:description", "ui:help", "ui:placeholder",
                        "patternMessage"})
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
#: The parameters of a service-task operator whose value, written as one string literal, is a
#: template of the process's own words shown to people: translatable like its task names.
NOTICE_PARAMS: Mapping[str, frozenset[str]] = {"notify": frozenset({"subject", "body"})}
#: Longest translation taken (a form's longest help text is a few hundred characters).
MAX_TRANSLATION = 4000

_DIGEST = select(DefinitionFile.sha256).where(DefinitionFile.name == bindparam("name"))
_FILE = select(DefinitionFile.sha256, DefinitionFile.content).where(DefinitionFile.name == bindparam("name"))


def translation_name(scope: str, locale: str) -> str:
    """``incident_management.zh_CN.i18n.json``."""
    return f"{scope}.{locale}{TRANSLATION_SUFFIX}"


def is_translation(name: str) -> bool:
    return name.lower().endswith(TRANSLATION_SUFFIX)


def parse_translation_name(name: str) -> tuple[str, str]:
    """``(scope, locale)`` of a translation file's name.

    Raises ValidationFailed (``invalid_definition``, ``details.file``) when the name has no
    locale or names one content is not translated into.
    """
    if not name.endswith(TRANSLATION_SUFFIX):  # pages look the file up by this exact name
        raise ValidationFailed(f"{name}: name a translation file <process_id>.<locale>{TRANSLATION_SUFFIX}, "
                               f"{TRANSLATION_SUFFIX} in lower case", code="invalid_definition", details={"file": name})
    stem = name[: -len(TRANSLATION_SUFFIX)]
    scope, _dot, locale = stem.rpartition(".")
    if not scope or not locale:
        raise ValidationFailed(f"{name}: name a translation file <process_id>.<locale>{TRANSLATION_SUFFIX}",
                               code="invalid_definition", details={"file": name})
    if locale not in CONTENT_LOCALES:
        raise ValidationFailed(f"{name}: unknown locale {locale!r}; content is translated into: "
                               f"{', '.join(CONTENT_LOCALES)}", code="invalid_definition",
                               details={"file": name, "locale": locale})
    return scope, locale


# -- the texts content shows ---------------------------------------------------------------------------


def form_texts(document: Any) -> Iterator[str]:
    """The texts a form shows, from its JSON Schema or its UI schema: titles, descriptions, help
    and placeholder texts, and the words of its choices (``oneOf``/``anyOf`` titles, else their
    values; ``enum`` values), as ``form_fields`` shows them."""
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key in _TEXT_KEYS and isinstance(value, str):
                yield value
            elif key == "enum" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            elif key in ("oneOf", "anyOf") and isinstance(value, list):
                for entry in value:
                    if isinstance(entry, Mapping) and "title" not in entry and isinstance(entry.get("const"), str):
                        yield entry["const"]
            if isinstance(value, Mapping | list):
                yield from form_texts(value)
    elif isinstance(document, list):
        for entry in document:
            yield from form_texts(entry)


def notice_params(literal_params: Iterable[LiteralParam]) -> list[LiteralParam]:
    """The notice templates among a process's literal service-task parameters
    (``CompiledProcess.literal_params``): see :data:`NOTICE_PARAMS`."""
    return [found for found in literal_params
            if found.parameter in NOTICE_PARAMS.get(found.operator, ()) and found.text.strip()]


def notice_texts(literal_params: Iterable[LiteralParam]) -> set[str]:
    """The texts of :func:`notice_params`."""
    return {found.text for found in notice_params(literal_params)}


def process_texts(name: str | None, task_names: Iterable[str | None], forms: Iterable[Any],
                  drawn: Iterable[str] = (), task_texts: Iterable[str] = (), notices: Iterable[str] = ()) -> set[str]:
    """What a process scope translates: its name, its user tasks' names, the other names its
    diagram draws (events, gateways, lanes, labelled flows: ``drawn``), its user tasks'
    instructions and documentation (``task_texts``: an instructions template is translated whole,
    by another template the task's data fills in alike), the subjects and bodies its ``notify``
    steps write as templates (``notices``: :func:`notice_texts`, translated whole alike) and its
    forms' texts."""
    texts = {text for text in (name, *task_names, *drawn, *task_texts, *notices) if text}
    for document in forms:
        texts.update(form_texts(document))
    return texts


def catalog_texts(categories: Iterable[str], items: Iterable[tuple[str, str | None]], forms: Iterable[Any]) -> set[str]:
    """What the catalog scope translates: category names, item names and descriptions, and the
    texts of the request forms its items name."""
    texts = {name for name in categories if name}
    for item_name, description in items:
        texts.update(text for text in (item_name, description) if text)
    for document in forms:
        texts.update(form_texts(document))
    return texts


def catalog_translation_files(document: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """The translation files the shipped catalog document carries (``"translations": {locale:
    {source: translation}}`` beside its categories and items), as uploads for a deploy made
    once the catalog is loaded. The catalog is loaded from its document, not deployed, so its
    translations travel with it; a desk changing its catalog later deploys
    ``catalog.<locale>.i18n.json`` like any translation file."""
    translations = document.get("translations")
    if not isinstance(translations, Mapping):
        return []
    return [(translation_name(CATALOG_SCOPE, str(locale)), json.dumps(entries, ensure_ascii=False).encode())
            for locale, entries in sorted(translations.items())]


# -- checking and reading ------------------------------------------------------------------------------


def check_translation(name: str, content: bytes, sources: Collection[str] | None) -> dict[str, str]:
    """The entries of translation file ``name``.

    ``sources``: the texts its scope's content has (None: not checked, for a stored file read
    back). Raises ValidationFailed (code ``invalid_definition``; ``details.file``, and
    ``details.entry`` naming the entry at fault) if the name names no known locale, the file is
    not a UTF-8 JSON object, an entry appears twice, a translation is not a non-empty string
    without control characters, or an entry's source text is not in ``sources``.
    """
    def refuse(reason: str, entry: str | None = None) -> ValidationFailed:
        details = {"file": name} if entry is None else {"file": name, "entry": entry[:200]}
        return ValidationFailed(f"{name}: {reason}", code="invalid_definition", details=details)

    parse_translation_name(name)
    try:
        parsed = load_json_file(content, unique_keys=True)
    except JsonFileError as err:
        if err.key is not None:
            raise refuse(f"the entry {err.key!r} appears twice", err.key) from None
        if err.at is not None:
            raise refuse(f"the translation of {err.at!r} has a control character or is no text: {err.reason}",
                         err.at) from None
        raise refuse("not a UTF-8 JSON file") from None
    if not isinstance(parsed, dict):
        raise refuse("must hold a JSON object of source texts and their translations")
    for source, text in parsed.items():
        if not isinstance(text, str) or not text.strip():
            raise refuse(f"the translation of {source!r} must be a non-empty string", source)
        if _CONTROL.search(text) or len(text) > MAX_TRANSLATION:
            raise refuse(f"the translation of {source!r} has a control character or more than "
                         f"{MAX_TRANSLATION} characters", source)
        if sources is not None and source not in sources:
            raise refuse(f"{source!r} is no text of the content this file translates (a title, description, "
                         f"help text, choice, task or process name, instructions, or a notify step's subject or "
                         f"body template, exactly as the English writes it)", source)
    return parsed


class _Translations:
    """Deployed translations by content digest, shared by every session (few, small)."""

    def __init__(self) -> None:
        self._entries: BoundedCache[str, Mapping[str, str]] = BoundedCache()

    def get(self, session: Session, scope: str, locale: str) -> Mapping[str, str]:
        """The deployed translation of ``scope`` into ``locale``; empty without one (or when the
        stored file is broken: the page shows the source texts rather than fail)."""
        if locale not in CONTENT_LOCALES:
            return {}
        name = translation_name(scope, locale)
        digest = session.scalar(_DIGEST, {"name": name})  # the content only when not cached
        if digest is None:
            return {}
        cached = self._entries.get(digest)
        if cached is None:
            row = session.execute(_FILE, {"name": name}).first()  # both again: a deploy may have come between
            if row is None:
                return {}
            digest, content = row
            try:
                cached = check_translation(name, content, None)
            except ValidationFailed:
                cached = {}
            self._entries.put(digest, cached)
        return cached


TRANSLATIONS = _Translations()
