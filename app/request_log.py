"""Request ids and the application log: one line per request, every line naming its request.

Each request gets an id: the caller's ``X-Request-Id`` when it is a plain token (a proxy's or a
load balancer's, 1-64 of ``A-Z a-z 0-9 . _ : -``), else a new random one. The answer carries it
back in ``X-Request-Id``, a server error shows it (the API's 5xx body as ``details.request_id``,
the error page as its reference), and every log line written while the request runs names it, so
the line a user quotes leads to the traceback behind it.

The log goes to standard error through the ``app`` logger (Flask's ``app.logger`` and every
module's ``logging.getLogger(__name__)`` below it): ``LOG_FORMAT`` ``text`` (one readable line)
or ``json`` (one object per line, for a log shipper), at ``LOG_LEVEL``. ``ACCESS_LOG`` adds one
INFO line per request (``app.requests``): method, path without its query string (a query may
carry what should not be kept), status, duration, the signed-in user and the client address. A
path that itself carries a secret (a password reset link's token: ``SECRET_PATH_ARGS``) is written
with that part as ``[redacted]``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from functools import partial
from typing import IO, Any

from flask import Flask, Response, current_app, g, has_request_context, request
from flask.logging import default_handler as flask_default_handler

#: A caller's id is kept only when it is this plain: it is echoed in a header and written to logs.
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
HEADER = "X-Request-Id"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_TEXT_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: What a logged path may not carry as it is: control characters (a decoded %0A would start a line
#: a reader takes for another request's) and Unicode's line and paragraph separators.
_UNSAFE_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: Attributes every LogRecord has; what a call adds beyond them (``extra=``) goes into the JSON line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}
access_log = logging.getLogger("app.requests")
#: Endpoint -> the path argument that is a secret, which the access log never writes.
SECRET_PATH_ARGS = {"web.password_reset": "token", "web.schedule_feed": "secret"}
REDACTED = "[redacted]"


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    if not has_request_context():
        return None
    return g.get("request_id")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was written in (``-`` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request id, the
    fields a call passed in ``extra``, and the traceback as ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def check_settings(config: dict[str, Any]) -> None:
    """Refuse unknown log settings at start-up, naming the setting."""
    fmt = str(config["LOG_FORMAT"]).strip().lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {config['LOG_FORMAT']!r}")
    level = str(config["LOG_LEVEL"]).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {config['LOG_LEVEL']!r}")
    config["LOG_FORMAT"], config["LOG_LEVEL"] = fmt, level


def _text_formatter() -> logging.Formatter:
    formatter = logging.Formatter(_TEXT_FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime  # UTC, as every time the desk shows
    formatter.default_msec_format = "%s.%03dZ"
    return formatter


def configure_logging(fmt: str, level: str, stream: IO[str] | None = None) -> logging.Handler:
    """Send the ``app`` logger's lines to ``stream`` (standard error) in ``fmt`` at ``level``.

    Idempotent: a second call replaces the handler the first installed (tests and the CLI build
    several apps in one process), and Flask's own default handler, which would write each line a
    second time. The lines still propagate to the root logger, which stays unconfigured unless a
    host (pytest's capture, a server's own set-up) gives it handlers of its own."""
    logger = logging.getLogger("app")
    for old in [h for h in logger.handlers if getattr(h, "processdesk", False) or h is flask_default_handler]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.processdesk = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else _text_formatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def _start() -> None:
    given = request.headers.get(HEADER, "")
    g.request_id = given if _GIVEN_ID.fullmatch(given) else secrets.token_hex(16)
    g.request_started = time.perf_counter()


def _loggable(path: str) -> str:
    """``path`` with what could break or forge a log line percent-encoded again (as UTF-8)."""
    return _UNSAFE_IN_LINE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), path)


def _logged_path() -> str:
    """This request's path as the access log writes it: a secret in it redacted."""
    path = request.path
    secret_arg = SECRET_PATH_ARGS.get(request.endpoint or "")
    secret = (request.view_args or {}).get(secret_arg) if secret_arg else None
    if secret:
        path = path.replace(str(secret), REDACTED)
    return _loggable(path)


def _user_name() -> str | None:
    for key in ("user", "web_user"):
        user = g.get(key)
        if user is not None:
            return getattr(user, "username", None)
    return None


def _finish(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id is None:  # a request that failed before the first before_request hook ran
        return response
    response.headers[HEADER] = request_id
    if (current_app.config["ACCESS_LOG"] and access_log.isEnabledFor(logging.INFO)
            and not (request.endpoint or "").endswith("static")):  # not each stylesheet and icon
        from app.web.ratelimit import client_address

        duration = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        path = _logged_path()
        access_log.info("%s %s %s %.1f ms", request.method, path, response.status_code, duration, extra={
            "method": request.method, "path": path, "status": response.status_code,
            "duration_ms": round(duration, 1), "user": _user_name(), "address": client_address()})
    return response


def _log_exception(app: Flask, exc_info: Any) -> None:
    """Flask's line for an unhandled error, with the path as the access log writes it (a secret
    in it redacted)."""
    app.logger.error("Exception on %s [%s]", _logged_path(), request.method, exc_info=exc_info)


class _NoDevServerRequestLine(logging.Filter):
    """Drops the development server's own line per request (werkzeug's ``log_request``, which
    ``make run`` printed beside this module's): two lines per request, the second with the query
    string. Its other lines (the address it serves on, its errors) stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.rstrip().endswith('"%s" %s %s'))


def install(app: Flask) -> None:
    """Give every request an id and, when ``ACCESS_LOG`` is on, its log line (and not the
    development server's too). The id is set before any other hook runs, so that their log
    lines and errors name it too."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.log_exception = partial(_log_exception, app)  # type: ignore[method-assign]
    if app.config["ACCESS_LOG"]:
        dev_server = logging.getLogger("werkzeug")
        if not any(isinstance(f, _NoDevServerRequestLine) for f in dev_server.filters):
            dev_server.addFilter(_NoDevServerRequestLine())
