"""Every request has an id (the caller's plain one, else a new one), answered in X-Request-Id,
shown with a server error, and named by every log line written while it ran; one access line per
request names method, path (never the query string), status, duration, user and address."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from app import create_app
from app.request_log import configure_logging
from tests.conftest import TEST_CONFIG
from tests.web.conftest import text_of


@pytest.fixture()
def log_lines(app) -> Iterator[io.StringIO]:
    """The app logger's output as JSON lines (restored to standard error afterwards)."""
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    yield stream
    configure_logging("text", "INFO")


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture()
def failing(app) -> Any:
    """Two routes that fail with an unexpected error, one under the API and one page."""
    def boom() -> str:
        raise RuntimeError("the disk is on fire")

    app.add_url_rule("/api/v1/test-boom", "test_api_boom", boom)
    app.add_url_rule("/test-boom", "test_page_boom", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as in production, not raise into the test
    return app


def test_each_request_gets_its_own_id_answered_in_a_header(client):
    first = client.get("/api/v1/health").headers["X-Request-Id"]
    second = client.get("/api/v1/health").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


def test_a_callers_plain_id_is_kept(client):
    given = "lb-7f3a.2026:11_30"
    assert client.get("/api/v1/health", headers={"X-Request-Id": given}).headers["X-Request-Id"] == given


@pytest.mark.parametrize("given", ["two words", "x" * 65, "<script>", "é", ""])
def test_an_id_that_is_not_plain_is_replaced(client, given):
    answered = client.get("/api/v1/health", headers={"X-Request-Id": given}).headers["X-Request-Id"]
    assert answered != given and re.fullmatch(r"[0-9a-f]{32}", answered)


def test_the_access_line_names_the_request_and_not_its_query(client, desk, log_lines):
    answer = client.get("/api/v1/tasks?secret=hunter2&page=1", headers=desk.auth("alex"))
    assert answer.status_code == 200
    [line] = [entry for entry in parsed(log_lines) if entry["logger"] == "app.requests"]
    assert line["request_id"] == answer.headers["X-Request-Id"]
    assert (line["method"], line["path"], line["status"], line["user"], line["address"]) == (
        "GET", "/api/v1/tasks", 200, "alex", "127.0.0.1")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert "hunter2" not in log_lines.getvalue()


def test_an_access_line_names_a_signed_in_page_user_and_a_refusal(web, desk, log_lines):
    web.login("rita")
    refused = web.get("/admin/users")
    assert refused.status_code == 403
    lines = {entry["request_id"]: entry for entry in parsed(log_lines) if entry["logger"] == "app.requests"}
    line = lines[refused.headers["X-Request-Id"]]
    assert (line["path"], line["status"], line["user"]) == ("/admin/users", 403, "rita")


def test_an_api_server_error_names_the_id_the_log_holds_its_traceback_by(failing, client, log_lines):
    answer = client.get("/api/v1/test-boom")
    assert answer.status_code == 500
    body = answer.get_json()
    request_id = answer.headers["X-Request-Id"]
    assert body["error"] == "internal_error" and body["details"]["request_id"] == request_id
    assert "fire" not in json.dumps(body)  # the cause stays in the log
    [failure] = [entry for entry in parsed(log_lines) if "exception" in entry]
    assert failure["request_id"] == request_id and failure["level"] == "ERROR"
    assert "RuntimeError: the disk is on fire" in failure["exception"]
    [access] = [entry for entry in parsed(log_lines) if entry["logger"] == "app.requests"]
    assert (access["request_id"], access["status"]) == (request_id, 500)


def test_a_server_error_page_shows_the_reference(failing, web, desk, log_lines):
    web.login("rita")
    answer = web.get("/test-boom")
    assert answer.status_code == 500
    request_id = answer.headers["X-Request-Id"]
    page = text_of(answer)
    assert f'<code id="error-reference">{request_id}</code>' in page and "fire" not in page
    assert [entry["request_id"] for entry in parsed(log_lines) if "exception" in entry] == [request_id]
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get("/test-boom"))
    assert "如果再次发生" in page and 'id="error-reference"' in page


def test_the_text_format_names_the_id_in_brackets_with_utc_times(client):
    stream = io.StringIO()
    try:
        configure_logging("text", "INFO", stream)
        request_id = client.get("/api/v1/health").headers["X-Request-Id"]
    finally:
        configure_logging("text", "INFO")
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z INFO app\.requests \[{request_id}\] "
                        r"GET /api/v1/health 200 \d+\.\d ms", stream.getvalue().strip())


def test_the_access_line_can_be_turned_off(app, client, log_lines):
    app.config["ACCESS_LOG"] = False
    answer = client.get("/api/v1/health")
    assert answer.headers["X-Request-Id"] and log_lines.getvalue() == ""


def test_a_log_line_outside_any_request_says_so(app, log_lines):
    import logging

    logging.getLogger("app.scheduler").warning("sweep late by %s s", 7)
    [line] = parsed(log_lines)
    assert (line["request_id"], line["message"], line["logger"]) == ("-", "sweep late by 7 s", "app.scheduler")


@pytest.mark.parametrize(("key", "value"), [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "LOUD")])
def test_unknown_log_settings_are_refused_at_start_naming_the_setting(tmp_path, key, value):
    with pytest.raises(ValueError, match=key):
        create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", key: value})


def test_log_settings_read_in_any_case(tmp_path):
    made = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LOG_FORMAT": "JSON",
                       "LOG_LEVEL": "warning"})
    try:
        assert (made.config["LOG_FORMAT"], made.config["LOG_LEVEL"]) == ("json", "WARNING")
    finally:
        configure_logging("text", "INFO")
        made.extensions["processdesk"].db_engine.dispose()


def test_the_pages_files_write_no_access_line(client, log_lines):
    answer = client.get("/assets/css/app.css")
    assert answer.status_code == 200 and answer.headers["X-Request-Id"]
    assert [entry for entry in parsed(log_lines) if entry["logger"] == "app.requests"] == []


def test_a_path_cannot_forge_a_text_log_line(client):
    """A path's decoded control characters (%0A, %0D, a Unicode line separator) are escaped in the
    text line: one request, one line, and nothing a reader takes for another request's line."""
    stream = io.StringIO()
    try:
        configure_logging("text", "INFO", stream)
        client.get("/api/v1/x%0D%0A2026-11-30T00:00:00.000Z INFO app.requests [forged] GET /admin 200%E2%80%A8%1B[2J")
    finally:
        configure_logging("text", "INFO")
    written = stream.getvalue()
    assert len(written.splitlines()) == 1 and "\x1b" not in written and "\u2028" not in written
    assert "/api/v1/x%0D%0A2026" in written and "%E2%80%A8%1B" in written


def test_a_failed_statement_logs_no_parameters(failing, app, client, log_lines):
    """A traceback of a failed SQL statement names the statement, not the values bound to it: they
    may be a webhook's secret or a password hash."""
    from sqlalchemy import text

    secret = "-".join(("hunter2", "secret"))  # not in the traceback's source lines

    def failing_statement() -> str:
        services = app.extensions["processdesk"]
        with services.db_engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table WHERE x = :secret"), {"secret": secret})
        return "unreachable"

    app.add_url_rule("/api/v1/test-sql-boom", "test_sql_boom", failing_statement)
    assert client.get("/api/v1/test-sql-boom").status_code == 500
    [failure] = [entry for entry in parsed(log_lines) if "exception" in entry]
    assert "no_such_table" in failure["exception"] and "hunter2-secret" not in log_lines.getvalue()


def test_the_development_server_writes_no_second_line_per_request(app):
    """``make run`` (werkzeug's server) printed its own line beside each access line, with the
    query string; its other lines stay."""
    import logging

    from werkzeug.serving import WSGIRequestHandler

    kept: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record.getMessage())

    handler = Keep()
    logger = logging.getLogger("werkzeug")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        line = WSGIRequestHandler.__new__(WSGIRequestHandler)
        line.client_address, line.command, line.request_version = ("127.0.0.1", 5), "GET", "HTTP/1.1"
        line.path, line.requestline = "/api/v1/tasks?secret=hunter2", "GET /api/v1/tasks?secret=hunter2 HTTP/1.1"
        line.log_request(200, 10)
        logger.info(" * Running on %s", "http://127.0.0.1:5000")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    assert kept == [" * Running on http://127.0.0.1:5000"]
