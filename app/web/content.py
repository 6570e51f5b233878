"""Process content in the page's language: form texts, task and process names, the catalog.

What the diagrams, forms and catalog say is content, written in English by whoever deploys it;
its translations are deployed beside it (``<process_id>.<locale>.i18n.json``, ``catalog.<locale>
.i18n.json``; app/services/content_texts.py). A text is shown, first match wins, as:

1. the deployed translation of its scope (the process, or the catalog) for the page's language;
2. the web pages' catalog (gettext), which knows the option titles records show
   (``labels.FORM_OPTION_TITLES``) and the fixed words of the services (Yes, No);
3. the source text.

Only what is shown changes: values submitted and stored, and the API's answers, stay the source.
Templates reach this through ``task_name`` (a task's name: ``{{ t|task_name }}``),
``process_name`` (``{{ process_id|process_name(name) }}``), ``content_text(scope, text)``,
``instance_text(process_id, text)`` (what an instance shows: its process's texts, and a catalog
request's also the catalog's) and ``localized_form(form, scope)``, registered by :func:`init_content`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, g
from flask_babel import gettext
from markupsafe import Markup, escape

from app.api import services
from app.services.catalog import REQUEST_PROCESS
from app.services.content_texts import CATALOG_SCOPE

from .forms import FormView, Translate, localize_form
from .i18n import page_language

__all__ = ["CATALOG_SCOPE", "content_text", "init_content", "instance_translator", "localized_form", "translator"]


def translations(scope: str) -> Mapping[str, str]:
    """The deployed translation of ``scope`` into the page's language (read once per request)."""
    locale = page_language()
    if locale == "en":
        return {}
    cache: dict[tuple[str, str], Mapping[str, str]] = g.setdefault("content_translations", {})
    key = (scope, locale)
    if key not in cache:
        cache[key] = services().definitions.translations(scope, locale)
    return cache[key]


def translator(scope: str) -> Translate:
    """``text -> text in the page's language`` for the content of ``scope``."""
    found = translations(scope)

    def translate(text: str) -> str:
        if not text:
            return text  # gettext("") is the catalog's header
        deployed = found.get(text)
        return deployed if deployed is not None else str(gettext(text))

    return translate


def instance_translator(process_id: str) -> Translate:
    """``text -> text in the page's language`` for what an instance of ``process_id`` shows: its
    process's content, and for a catalog request also the catalog's (the item's request form it
    was started with is translated by the catalog's file)."""
    def translate(text: str) -> str:
        if not text:
            return text  # gettext("") is the catalog's header
        deployed = deployed_text(process_id, text)
        return deployed if deployed is not None else str(gettext(text))

    return translate


def deployed_text(process_id: str, text: str) -> str | None:
    """The deployed translation of ``text`` for an instance of ``process_id`` (as
    :func:`instance_translator`), None without one: for values people typed or picked, which the
    pages' own catalog must not reword ("Open" typed by a requester is not the status)."""
    found = translations(process_id).get(text)
    if found is None and process_id == REQUEST_PROCESS:
        found = translations(CATALOG_SCOPE).get(text)
    return found


def translate_joined(translate: Translate, text: str, separator: str,
                     join: Callable[[str, str], str] | None = None) -> str:
    """``text`` made of several texts joined by ``separator`` (a group's and a field's title,
    the titles of several choices), each part translated. Parts are taken as long as their
    translation goes (a title may hold the separator itself); ``join(previous, next)`` says two
    parts again in the page's language (``separator`` without)."""
    whole = translate(text)
    if whole != text or separator not in text:
        return whole
    parts = text.split(separator)
    said: list[str] = []
    start = 0
    while start < len(parts):
        for end in range(len(parts), start, -1):
            piece = separator.join(parts[start:end])
            translated = translate(piece)
            if translated != piece or end == start + 1:
                said.append(translated)
                start = end
                break
    shown = said[0]
    for part in said[1:]:
        shown = join(shown, part) if join is not None else shown + separator + part
    return shown


def content_text(scope: str, text: Any) -> str:
    """One text of ``scope``'s content in the page's language ("" for none)."""
    return translator(scope)(str(text)) if text is not None else ""


def instance_text(process_id: str, text: Any) -> str:
    """One text an instance of ``process_id`` shows (a task's name, a form's field title), in the
    page's language as :func:`instance_translator` says it ("" for none)."""
    return instance_translator(process_id)(str(text)) if text is not None else ""


def localized_form(form: FormView, scope: str) -> FormView:
    """A generated form (app/web/forms.py) with ``scope``'s texts in the page's language."""
    return localize_form(form, translator(scope))


def task_name(task: Any) -> str:
    """A task's name as the page shows it (anything with ``process_id`` and ``name``)."""
    return content_text(task.process_id, task.name)


def process_name(process_id: str, name: str | None = None) -> str:
    """A process's name (its diagram's, else its id) as the page shows it."""
    return content_text(process_id, name or process_id)


def content_names(process_id: str | None) -> dict[str, str]:
    """The deployed translations of ``process_id``'s texts (its task names among them) for the
    diagram script, which names the shapes it marks by their diagram's (English) names; empty in
    English or without one."""
    return dict(translations(process_id)) if process_id else {}


#: The quoted part of a message (“...”: a title, a task's name), from the first opening quote to
#: the last closing one, so that quotes inside the quoted text stay inside.
_QUOTED = re.compile("“(.*)”", re.S)
#: Bidirectional classes that may reorder text around them: right-to-left letters and numbers,
#: and the embedding, override and isolate controls (left-to-right text needs no isolating).
_REORDERING = frozenset({"R", "AL", "AN", "RLE", "RLO", "LRE", "LRO", "PDF", "RLI", "LRI", "FSI", "PDI"})


def reorders(text: str) -> bool:
    """``text`` holds something that may reorder the text around it on a left-to-right page."""
    return any(unicodedata.bidirectional(char) in _REORDERING for char in text)


def isolate(text: Any) -> Markup:
    """Text someone typed (a title, a name), shown inside a line of the page's own words: in a
    ``<bdi>`` when it holds right-to-left text or bidi controls (a right-to-left override cannot
    then reorder the words around it), else as it is (left-to-right text cannot reorder them)."""
    shown = "" if text is None else str(text)
    return Markup("<bdi>{0}</bdi>").format(shown) if reorders(shown) else escape(shown)


def isolate_quoted(message: Any) -> Markup:
    """A flashed message with its quoted part (the text someone typed, such as a record's title)
    in a ``<bdi>``: a right-to-left override in it cannot reorder the message's own words. A
    message already marked up is left as it is, and so is one whose quoted text holds nothing that
    could reorder text."""
    if isinstance(message, Markup):
        return message
    text = str(message)
    match = _QUOTED.search(text)
    if match is None or not reorders(match.group(1)):
        return escape(text)
    return Markup("{0}“<bdi>{1}</bdi>”{2}").format(text[:match.start()], match.group(1), text[match.end():])


def init_content(app: Flask) -> None:
    app.add_template_filter(task_name, "task_name")
    app.add_template_filter(process_name, "process_name")
    app.add_template_global(content_text, "content_text")
    app.add_template_global(instance_text, "instance_text")
    app.add_template_global(content_names, "content_names")
    app.add_template_filter(isolate_quoted, "isolate_quoted")
    app.add_template_filter(isolate, "isolate")
    app.add_template_global(localized_form, "localized_form")
