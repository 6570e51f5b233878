"""The web pages: server-rendered HTML over the same services the API uses.

``init_web(app)`` wires the ``web`` blueprint (app/web/views.py), the session and its security
(app/web/auth.py), the languages (app/web/i18n.py), the error pages and the security headers.
No JavaScript is needed by these pages; any that is added is a file in static/ (the CSP allows
scripts from this site only).

Settings, read from the app config (``create_app({...})``), with their defaults:

=================================  ========  ===================================================================================
``WEB_IDLE_MINUTES``               30        a session unused this long ends
``WEB_ABSOLUTE_HOURS``             12        a session this old ends, however busy
``WEB_LOGIN_MAX_FAILURES``         5         failed sign-ins per username within the window before 429
``WEB_LOGIN_MAX_FAILURES_PER_IP``  20        failed sign-ins per client address within the window
``WEB_LOGIN_WINDOW_SECONDS``       300       the sliding window of both limits (and of the next one)
``PASSWORD_RESET_MAX_PER_IP``      10        "Forgot your password?" requests per client address within the window
``PASSWORD_RESET_MINUTES``         30        how long a password reset link works
``PASSWORD_RESET_ANSWER_SECONDS``  0.3       the least time "Forgot your password?" takes to answer (known names and unknown alike)
``PREFERRED_URL_SCHEME``           http      ``https`` marks the session cookie Secure and sends HSTS (so does a TLS request)
=================================  ========  ===================================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Flask, g, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.api import upload_limit
from app.errors import ProcessdeskError
from app.request_log import current_request_id

from . import auth, unsent_forms
from .content import init_content
from .errors import error_page, not_found_page, optional_url
from .i18n import HTML_LANG, LANGUAGES, init_i18n, page_language
from .nav import header_links

#: Scripts, styles and images from this site only; no inline script or style; never framed.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
                           "frame-ancestors 'none'")
#: Everything else (a diagram's XML, CSV, JSON, assets) is data, never a page: opened in a tab it
#: runs nothing. A diagram's XML may hold XHTML elements (BPMN lets extension elements hold any
#: namespace), and a browser runs an ``<html:script>`` of an XML document it shows.
DATA_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
#: Sent on every answer of a site served over HTTPS.
HSTS = "max-age=31536000"


def init_web(app: Flask) -> None:
    # Each page area adds its routes to the same blueprint (one sign-in check, one error handling).
    from . import (  # noqa: F401
        account_pages,
        audit_pages,
        catalog_pages,
        cmdb_pages,
        duplicate_pages,
        knowledge_pages,
        notification_pages,
        password_reset_pages,
        process_pages,
        recurring_pages,
        report_pages,
        response_pages,
        schedule_pages,
        sla_pages,
        start_pages,
        status_pages,
        task_bulk_pages,
        ticket_export,
        ticket_pages,
        two_step_pages,
        user_pages,
        view_pages,
        watch_pages,
        worklog_pages,
    )
    from .views import bp

    init_i18n(app)
    init_content(app)
    auth.init_auth(app)
    app.register_blueprint(bp)

    @app.context_processor
    def _page_globals() -> dict[str, Any]:
        locale = page_language()
        user = auth.current_user()
        return {"web_user": user, "csrf_token": auth.csrf_token, "csrf_field": auth.CSRF_FIELD,
                "languages": LANGUAGES, "locale": locale, "html_lang": HTML_LANG.get(locale, "en"),
                "optional_url": optional_url,
                # the header's management links, in the bar or in its menu (app/web/nav.py)
                "header_links": partial(header_links, user),
                # a form its user sent after the session ended, back in the form (app/web/unsent_forms.py)
                "unsent_form": lambda: unsent_forms.take(user.id if user is not None else None)}

    @app.after_request
    def _security_headers(response: Response) -> Response:
        if request.path.startswith("/api/"):
            # answers hold tokens and records: no cache keeps them, no browser guesses their type
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
        else:
            response.headers.setdefault("Content-Security-Policy", DATA_SECURITY_POLICY)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.is_secure or app.config.get("PREFERRED_URL_SCHEME") == "https":
            # Served over HTTPS: browsers keep to it for a year (no later plain-HTTP visit whose
            # cookie or form a network attacker could read).
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    _install_error_pages(app)


def _install_error_pages(app: Flask) -> None:
    # The API installed a handler for every HTTP error (its JSON envelope). Pages outside /api/
    # get HTML pages instead; /api/ keeps the API's handler.
    api_handler: Callable[[HTTPException], Any] | None = app.error_handler_spec[None][None].get(HTTPException)

    def _http_error(err: HTTPException) -> Any:
        if request.path.startswith("/api/") and api_handler is not None:
            return api_handler(err)
        if err.code == 404:
            return not_found_page()
        if err.code == 413 and request.endpoint == "web.ticket_attach" and auth.current_user() is not None:
            # A file far too large to read: said beside the attachment form, as one a little too large
            # (a record the user may not see gets the plain page below: nothing about it is said).
            from .ticket_pages import attach_too_large

            try:
                return attach_too_large(str((request.view_args or {}).get("number", "")))
            except ProcessdeskError:
                pass
        if err.code == 413:
            return error_page(413, _("Too large"), _(
                "What you sent is larger than %(size)s. The files of one upload count together: send "
                "fewer or smaller files at a time.", size=upload_limit_text(app)))
        if err.code is not None and err.code >= 500:
            # Do not touch the database again to show who is signed in: it may be what failed.
            g.setdefault("web_user", None)
            return error_page(err.code, _("Something went wrong"),
                              _("The server could not complete the request. Try again in a moment."),
                              reference=current_request_id())
        return error_page(err.code or 400, _("Request not handled"), _("The request could not be completed."),
                          detail=err.name if page_language() == "en" else None)

    app.register_error_handler(HTTPException, _http_error)


def upload_limit_text(app: Any) -> str:
    """The largest upload of this request (``app.api.upload_limit``: ``MAX_UPLOAD_BYTES``, all
    files of one request together; an attachment's ``ATTACHMENT_MAX_BYTES``) in MB or KB."""
    limit = upload_limit()
    return f"{limit / 1024 / 1024:.3g} MB" if limit >= 1024 * 1024 else f"{limit / 1024:.3g} KB"
