"""Languages of the web pages: English (the source strings) and Simplified Chinese.

The locale is the one the user picked with the language switch (kept in their session; a signed-in
user's choice is also theirs, ``User.locale``, and follows them to their next sign-in), else the
best match of the browser's Accept-Language, else the site's ``DEFAULT_LANGUAGE`` (English unless
configured). The languages themselves are app/languages.py's. Catalogs live in ``translations/``
beside this module as ``.po`` files. Simplified Chinese is ``zh_CN`` in the session and the
switch, but its catalog folder is ``zh_Hans_CN``: Babel resolves ``zh_CN`` to that full CLDR name
(script included) and Flask-Babel looks the catalog up by it; the ``.mo`` files Flask-Babel reads are build products
(``make translations``, or :func:`compile_catalogs` from the tests), never committed.

To add strings: mark them (``_()`` in templates and views, ``_l()`` for module-level constants),
then from the repository root::

    .venv/bin/pybabel extract -F app/web/babel.cfg -k _l -o /tmp/messages.pot app/web
    .venv/bin/pybabel update -i /tmp/messages.pot -d app/web/translations
    # translate the new entries in translations/zh_Hans_CN/LC_MESSAGES/messages.po
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, request, session
from flask_babel import Babel, get_locale

from app.languages import DEFAULT_LANGUAGE, LANGUAGES

TRANSLATIONS_DIR = Path(__file__).parent / "translations"

__all__ = ["HTML_LANG", "LANGUAGES", "SESSION_KEY", "TRANSLATIONS_DIR", "compile_catalogs", "init_i18n",
           "page_language", "select_locale"]

#: What the html element's lang attribute says for each locale (BCP 47).
HTML_LANG: dict[str, str] = {"en": "en", "zh_CN": "zh-CN"}

SESSION_KEY = "lang"

# Browsers spell Chinese several ways (zh-CN, zh-Hans, zh-Hans-CN, zh-SG, plain zh). Readers of
# Traditional Chinese (zh-TW, zh-HK) get Simplified too, being closer to them than English.
_CHINESE_TAGS = ("zh_CN", "zh", "zh_Hans", "zh_Hans_CN", "zh_SG")


def select_locale() -> str:
    chosen = session.get(SESSION_KEY)
    if chosen in LANGUAGES:
        return str(chosen)
    best = request.accept_languages.best_match(["en", *_CHINESE_TAGS])
    if best in _CHINESE_TAGS:
        return "zh_CN"
    if best is not None:
        return "en"
    default = current_app.config.get("DEFAULT_LANGUAGE")
    return str(default) if default in LANGUAGES else DEFAULT_LANGUAGE


def page_language() -> str:
    """The LANGUAGES code of this request's locale."""
    locale = get_locale()
    return "zh_CN" if locale is not None and locale.language == "zh" else "en"


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=select_locale)


def compile_catalogs(directory: Path = TRANSLATIONS_DIR, *, force: bool = False) -> list[Path]:
    """Compile every ``<locale>/LC_MESSAGES/*.po`` below ``directory`` whose ``.mo`` is missing or
    older (all of them with ``force``). Returns the ``.mo`` files written.

    Each page area may keep its strings in ``<locale>/areas/<area>.po`` (so areas are translated
    side by side without editing one shared file); their entries are merged into ``messages``.
    Raises ``ValueError`` for a catalog that does not parse (babel's message names the line).
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        locale = po_path.parents[1].name
        areas = sorted((po_path.parents[1] / "areas").glob("*.po")) if po_path.stem == "messages" else []
        newest = max([po_path.stat().st_mtime, *(a.stat().st_mtime for a in areas)])
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= newest:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=locale, abort_invalid=True)
        for area in areas:
            with area.open("rb") as handle:
                for message in read_po(handle, locale=locale, abort_invalid=True):
                    if message.id and message.id not in catalog:
                        catalog[message.id] = message
        tmp_path = mo_path.with_suffix(".mo.tmp")
        with tmp_path.open("wb") as handle:
            write_mo(handle, catalog)
        tmp_path.replace(mo_path)
        written.append(mo_path)
    return written
