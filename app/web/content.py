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
``process_name`` (``{{ process_id|process_name(name) }}``), ``content_text(scope, text)`` and
``localized_form(form, scope)``, registered by :func:`init_content`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, g
from flask_babel import gettext

from app.api import services
from app.services.content_texts import CATALOG_SCOPE

from .forms import FormView, Translate, localize_form
from .i18n import page_language

__all__ = ["CATALOG_SCOPE", "content_text", "init_content", "localized_form", "translator"]


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


def content_text(scope: str, text: Any) -> str:
    """One text of ``scope``'s content in the page's language ("" for none)."""
    return translator(scope)(str(text)) if text is not None else ""


def localized_form(form: FormView, scope: str) -> FormView:
    """A generated form (app/web/forms.py) with ``scope``'s texts in the page's language."""
    return localize_form(form, translator(scope))


def task_name(task: Any) -> str:
    """A task's name as the page shows it (anything with ``process_id`` and ``name``)."""
    return content_text(task.process_id, task.name)


def process_name(process_id: str, name: str | None = None) -> str:
    """A process's name (its diagram's, else its id) as the page shows it."""
    return content_text(process_id, name or process_id)


def init_content(app: Flask) -> None:
    app.add_template_filter(task_name, "task_name")
    app.add_template_filter(process_name, "process_name")
    app.add_template_global(content_text, "content_text")
    app.add_template_global(localized_form, "localized_form")
