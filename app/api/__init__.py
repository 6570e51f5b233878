"""The JSON API at /api/v1: thin views over the services, one envelope for every error.

Every view parses input (marshmallow via flask-smorest), calls one service inside
``unit_of_work``, and dumps the result. Authentication is a bearer token from /auth/token.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, jsonify, request
from flask_smorest import Api
from flask_smorest.arguments import ArgumentsMixin
from webargs.core import is_json
from webargs.flaskparser import FlaskParser, abort
from werkzeug.exceptions import HTTPException

from app.engine.library import json_depth
from app.errors import ProcessdeskError, Unauthorized
from app.models import User
from app.request_log import current_request_id
from app.services import Services
from app.unit_of_work import run_unit_of_work

T = TypeVar("T")

#: Request bodies deeper than this are refused: nothing the API takes nests half as deep, and
#: much deeper data would reach recursive code (validation, the engine's data checks) later.
MAX_JSON_DEPTH = 64
#: An integer literal longer than this is refused (Python's own limit is 4,300 digits, whose
#: ValueError escaped the parser as a 500; no id or amount comes near 40).
MAX_JSON_INT_DIGITS = 40


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"an integer of more than {MAX_JSON_INT_DIGITS} digits")
    return int(literal)


def _no_constant(literal: str) -> Any:
    raise ValueError(f"{literal} is not JSON")


#: Characters no stored text may hold: NUL and the other C0 controls but tab, newline and carriage
#: return (PostgreSQL refuses NUL in text; none of them is anything a person typed), DEL and the C1
#: controls (U+0080-U+009F: U+009B is a terminal's escape, as ESC is; QA stored both in a comment),
#: and lone UTF-16 surrogates (no UTF-8 spelling: the database driver fails on them). JSON carries
#: C0 controls and surrogates only escaped (``\\u0000``, ``\\ud800``); raw ones are a syntax error.
BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def bad_text_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first key or string in ``value`` holding a character of
    ``BAD_TEXT`` ("" for the top level), or None when there is none."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if BAD_TEXT.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                inner = f"{where}.{key}" if where else str(key)
                if BAD_TEXT.search(key):
                    return where or "(a key)"
                stack.append((child, inner))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def infinite_number_path(value: Any) -> str | None:
    """The dotted path of the first number in ``value`` that is infinite ("" for the top level):
    a literal beyond a 64-bit float's range (``1e309``) reads as infinity, which no JSON (and
    PostgreSQL's jsonb) takes back (QA: stored as ``Infinity``, a 500); None when there is none."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and math.isinf(item):
            return where
        if isinstance(item, dict):
            stack.extend((child, f"{where}.{key}" if where else str(key)) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def load_json_body(raw: bytes | str) -> Any:
    """A request body as JSON, or JSONDecodeError (an HTTP 400 naming "json") for anything the
    API should not take: bad syntax or encoding, NaN/Infinity, over-long integers, numbers beyond a
    float's range, too deep."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    infinite = False

    def read_float(literal: str) -> float:
        nonlocal infinite
        number = float(literal)
        infinite = infinite or math.isinf(number)
        return number

    try:
        value = json.loads(text, parse_int=_bounded_int, parse_float=read_float,
                           parse_constant=_no_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError(f"nested more than {MAX_JSON_DEPTH} levels deep", text or " ", 0) from None
    except ValueError as err:
        raise json.JSONDecodeError(str(err), text or " ", 0) from None
    if json_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise json.JSONDecodeError(f"nested more than {MAX_JSON_DEPTH} levels deep", text or " ", 0)
    if infinite:
        where = infinite_number_path(value)
        raise json.JSONDecodeError(f"{where or 'the body'} is a number beyond the range of a 64-bit float", text, 0)
    if "\\u" in text:  # only an escape can smuggle such a character in
        where = bad_text_path(value)
        if where is not None:
            raise json.JSONDecodeError(f"{where or 'the body'} holds a control character or an unpaired surrogate",
                                       text, 0)
    return value


#: The endpoints that read their arguments without a signed-in caller.
OPEN_ENDPOINTS = frozenset({"auth.TokenView", "auth.HealthView"})

#: A view method's role check, run before its arguments are parsed (``checked_first``).
RoleCheck = Callable[[Services, User], None]
_ROLE_CHECK = "_processdesk_role_check"
F = TypeVar("F", bound=Callable[..., Any])


def checked_first(check: RoleCheck) -> Callable[[F], F]:
    """Run ``check`` (the service's own role check: it audits and raises PermissionDenied) before the
    view's arguments are parsed, so that someone whose role may not do this at all is told 403,
    not 422 listing what the body lacks. Only for checks that depend on the caller's roles alone:
    a check on an object (may they see this task?) stays in the service, after the object is read.
    The service checks again when it runs: this only moves the refusal ahead of the parsing."""
    def mark(view: F) -> F:
        setattr(view, _ROLE_CHECK, check)
        return view
    return mark


def _check_roles_first(user: User) -> None:
    """The role check ``checked_first`` set on the view method serving this request, once per request."""
    if g.get("roles_checked"):
        return
    g.roles_checked = True
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    method = getattr(view_class, request.method.lower(), None) if view_class is not None else view
    check: RoleCheck | None = getattr(method, _ROLE_CHECK, None)
    if check is not None:
        # a refusal is audited: the unit of work keeps it when it rolls back
        unit_of_work(lambda: check(services(), user))


class _JsonParser(FlaskParser):  # type: ignore[misc]
    """webargs' Flask parser with ``load_json_body`` (its own ``json.loads`` let a 4,301-digit
    integer or deep nesting through as a 500). Outside ``OPEN_ENDPOINTS`` the caller is
    authenticated before anything is parsed: a request without a valid token is 401 whatever its
    body, not 422 listing what the body lacks; likewise a caller whose roles may not use the
    endpoint at all is 403 first (``checked_first``)."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        if request.endpoint not in OPEN_ENDPOINTS:
            _check_roles_first(current_user())
        return super().parse(*args, **kwargs)

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json(req.mimetype):
            if req.content_length or req.get_data(cache=True):
                # A body the parser will not read (text/plain, a form): say so, rather than 422
                # "missing" for every field the body may well hold.
                sent = req.mimetype or "sent without one"
                abort(415, messages={"Content-Type": [f"the body must be application/json ({sent})"]})
            return super()._raw_load_json(req)  # no body: every required field is missing
        try:
            return load_json_body(req.get_data(cache=True))
        except UnicodeDecodeError as err:
            raise json.JSONDecodeError(f"not UTF-8: {err.reason}", " ", err.start) from None

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        abort(400, exc=error, messages={"json": [f"Invalid JSON body: {error.msg}."]})


# Every blueprint's @arguments parses through it (set before the API modules are imported).
ArgumentsMixin.ARGUMENTS_PARSER = _JsonParser()


class ProcessdeskApi(Api):  # type: ignore[misc]
    """flask-smorest with our error envelope instead of its own, and an OpenAPI document written
    when it is first read (``/api/v1/openapi.json``, ``flask openapi``), not when the app starts.

    flask-smorest documents each blueprint's views as it registers them: two thirds of the time
    ``init_api`` took, paid by every app made (each gunicorn worker, each test) whether or not the
    document is ever asked for. Here ``register_blueprint`` registers the views with Flask at once,
    as before, and keeps their documentation for the first read of ``spec`` (under a lock: two
    first readers write it once). The document is the same, in the same order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._undocumented: list[tuple[Any, str, Any]] = []
        self._documenting = threading.Lock()
        super().__init__(*args, **kwargs)

    @property
    def spec(self) -> Any:
        if self._undocumented:
            with self._documenting:
                while self._undocumented:
                    blp, name, parameters = self._undocumented.pop(0)
                    blp.register_views_in_doc(self, self._app, self._spec, name=name, parameters=parameters)
                    self._spec.tag({"name": name, "description": blp.description})
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        self._spec = value

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        """``Api.register_blueprint`` with the documentation left for the first read of ``spec``."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

    def handle_http_exception(self, error: HTTPException) -> Any:
        if not request.path.startswith("/api/"):
            return error
        data = getattr(error, "data", None) or {}
        messages = data.get("messages") if isinstance(data, dict) else None
        details: dict[str, Any] = {}
        if messages:
            # webargs nests messages by location ("json", "query", "form"): flatten to fields.
            fields: dict[str, Any] = {}
            for location, per_field in messages.items():
                if isinstance(per_field, dict):
                    for name, msgs in per_field.items():
                        fields[name] = msgs
                else:
                    fields[location] = per_field
            details["fields"] = fields
        status = error.code or 500
        code = _HTTP_CODES.get(status) or _snake_case(error.name) or "error"
        message = "request data is invalid" if messages else (error.description or error.name)
        if status == 413:
            # werkzeug's "The data value transmitted exceeds the capacity limit" names no limit.
            limit = upload_limit()
            if request.endpoint in MAIL_ENDPOINTS:
                message = f"the message is larger than {limit:,} bytes ({limit / 1024 / 1024:.3g} MiB)"
                details["fields"] = {"message": [f"at most {limit} bytes"]}
            elif request.endpoint in ATTACHMENT_ENDPOINTS:
                message = f"the file is larger than {limit:,} bytes ({limit / 1024 / 1024:.3g} MB)"
                details["fields"] = {"file": [f"at most {limit} bytes"]}
            else:
                message = (f"the request is larger than {limit:,} bytes ({limit / 1024 / 1024:.3g} MB); "
                           "the files of one upload count together")
            details["limit_bytes"] = limit
        if status >= 500:  # the reference the server's log names the failure by (app.request_log)
            details["request_id"] = current_request_id()
        response = jsonify({"error": code, "message": message, "details": details})
        response.status_code = status
        # What the error states in headers stays (405's Allow, 401's WWW-Authenticate, 429/503's
        # Retry-After); its Content-Type is for its HTML body, not this one.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers.add(name, value)
        return response


#: The envelope's ``error`` for HTTP errors the API itself answers with; any other HTTP error gets
#: werkzeug's name for it in snake_case ("Request Header Fields Too Large" ->
#: ``request_header_fields_too_large``), so no error under /api/ is ever an HTML page.
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "validation_failed", 500: "internal_error",
               503: "unavailable"}


def _snake_case(name: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (name or "").lower()).strip("_")


#: The routes that take a record's attachment (the API's and the record page's): a request to them
#: may hold a file of ATTACHMENT_MAX_BYTES, larger than the MAX_UPLOAD_BYTES every other route keeps.
ATTACHMENT_ENDPOINTS = frozenset({"tickets.AttachmentsView", "web.ticket_attach"})
#: The route that takes a raw e-mail message of up to MAIL_MAX_BYTES (the mail gateway).
MAIL_ENDPOINTS = frozenset({"mail.InboundView"})
#: What a multipart request holds besides its file (boundaries, part headers, the CSRF field).
MULTIPART_ENVELOPE = 64 * 1024


def upload_limit() -> int:
    """The largest upload this request may send, in bytes: ATTACHMENT_MAX_BYTES on the attachment
    routes (``ATTACHMENT_ENDPOINTS``), MAX_UPLOAD_BYTES (all files of one request together) elsewhere."""
    if request.endpoint in MAIL_ENDPOINTS:
        return int(current_app.config["MAIL_MAX_BYTES"])
    key = "ATTACHMENT_MAX_BYTES" if request.endpoint in ATTACHMENT_ENDPOINTS else "MAX_UPLOAD_BYTES"
    return int(current_app.config[key])


def _attachment_request_limit() -> None:
    """Let an attachment route's request be as large as its file may be (the app's
    MAX_CONTENT_LENGTH is MAX_UPLOAD_BYTES' limit). Runs before anything reads the body (the
    pages' CSRF check reads the form)."""
    if request.endpoint in ATTACHMENT_ENDPOINTS:
        request.max_content_length = upload_limit() + MULTIPART_ENVELOPE
    elif request.endpoint in MAIL_ENDPOINTS:
        request.max_content_length = upload_limit()


def services() -> Services:
    if "services" not in g:
        ext = current_app.extensions["processdesk"]
        g.services = Services(ext.session(), ext.runtime)
    return g.services  # type: ignore[no-any-return]


def unit_of_work(work: Callable[[], T]) -> T:
    return run_unit_of_work(services(), work)


def current_user() -> User:
    """The bearer token's user; Unauthorized if missing or invalid."""
    if "user" in g:
        return g.user  # type: ignore[no-any-return]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token> (POST /api/v1/auth/token)")
    g.user = services().users.user_for_token(token.strip())
    return g.user  # type: ignore[no-any-return]


def page_args(args: dict[str, Any]) -> tuple[int, int]:
    cfg = current_app.config
    per_page = args.get("per_page") or cfg["PER_PAGE_DEFAULT"]
    return int(args.get("page") or 1), min(int(per_page), int(cfg["PER_PAGE_MAX"]))


def init_api(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "processdesk")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = ProcessdeskApi(app)
    app.before_request(_attachment_request_limit)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})

    @app.errorhandler(ProcessdeskError)
    def _domain_error(err: ProcessdeskError) -> Any:
        response = jsonify(err.to_dict())
        response.status_code = err.status
        if err.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="processdesk"'
        if err.status == 429 and isinstance(err.details.get("retry_after"), int):
            response.headers["Retry-After"] = str(err.details["retry_after"])
        return response

    from . import (
        auth,
        catalog,
        cmdb,
        definitions,
        instances,
        knowledge,
        mail,
        notifications,
        recurring,
        reports,
        responses,
        schedule,
        sla,
        status,
        tasks,
        tickets,
        two_step,
        users,
        views,
        worklog,
    )

    for module in (auth, definitions, instances, tasks, tickets, catalog, cmdb, knowledge, notifications, sla, users,
                   two_step, reports, mail, schedule, status, responses, worklog, views, recurring):
        api.register_blueprint(module.blp)
