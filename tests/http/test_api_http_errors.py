"""Every HTTP error under /api/ answers the API's JSON envelope, never an HTML page: those werkzeug
raises for the routing (404, 405) and the body size (413), any other it may raise (431 when the
app raises it), and a server error. What the error says in headers stays (405's Allow).

A 431 for header lines too long or too many is answered by the development server's HTTP parser
(http.server) before the request reaches the app, as an HTML page: no handler of the app sees it."""

from __future__ import annotations

import io
from typing import Any

import pytest
from werkzeug.exceptions import HTTPException, RequestHeaderFieldsTooLarge, TooManyRequests

from tests.http.helpers import assert_error


def envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:200]
    assert b"<html" not in response.data.lower()
    return assert_error(response, status, code)


def test_a_method_the_route_does_not_take_is_405_json_with_allow(client, auth):
    for method, path in (("put", "/api/v1/definitions"), ("delete", "/api/v1/tickets"), ("patch", "/api/v1/tasks")):
        response = getattr(client, method)(path, headers=auth("olga"))
        envelope(response, 405, "method_not_allowed")
        assert "GET" in response.headers["Allow"], (path, response.headers)


def test_an_unknown_api_path_is_404_json(client, auth):
    envelope(client.get("/api/v1/no-such-thing", headers=auth("olga")), 404, "not_found")
    envelope(client.get("/api/v2/definitions"), 404, "not_found")


def test_a_body_over_the_size_limit_is_413_json(app, client, auth):
    too_big = io.BytesIO(b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    response = client.post("/api/v1/definitions", data={"files": [(too_big, "big.bpmn")]}, headers=auth("olga"),
                           content_type="multipart/form-data")
    body = envelope(response, 413, "payload_too_large")
    # QA: werkzeug's "exceeds the capacity limit" named neither the limit nor that files count together
    limit = app.config["MAX_UPLOAD_BYTES"]
    assert body["details"]["limit_bytes"] == limit and f"{limit:,} bytes" in body["message"]
    assert "the files of one upload count together" in body["message"]


@pytest.mark.parametrize(("error", "code"), [
    (RequestHeaderFieldsTooLarge(), "request_header_fields_too_large"),
    (TooManyRequests(retry_after=30), "too_many_requests"),
])
def test_any_other_http_error_raised_under_api_is_json_named_after_it(app, client, error: HTTPException, code: str):
    def fail() -> Any:
        raise error

    app.add_url_rule("/api/v1/_test_http_error", "_test_http_error", fail)
    body = envelope(client.get("/api/v1/_test_http_error"), error.code or 500, code)
    assert body["message"] == error.description
    if isinstance(error, TooManyRequests):
        assert client.get("/api/v1/_test_http_error").headers["Retry-After"] == "30"


def test_a_server_error_under_api_is_json_and_one_on_a_page_is_html(app, client):
    def fail() -> Any:
        raise RuntimeError("boom")

    app.add_url_rule("/api/v1/_test_crash", "_test_crash_api", fail)
    app.add_url_rule("/_test_crash", "_test_crash_page", fail)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error handlers answer
    body = envelope(client.get("/api/v1/_test_crash"), 500, "internal_error")
    assert "boom" not in body["message"]
    page = client.get("/_test_crash")
    assert page.status_code == 500 and page.mimetype == "text/html"


def test_outside_api_a_wrong_method_is_still_a_page(client):
    response = client.put("/login")
    assert response.status_code == 405 and response.mimetype == "text/html"


def test_length_and_range_errors_read_in_the_apis_words(client, auth, services):
    """QA: marshmallow's own "Longer than maximum length 2000.", "Length must be between 1 and
    20000." and "Must be greater than or equal to 60 ..." answered beside the field."""
    from tests.http.test_instances_tasks_api import deploy_all, start
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "lane_ticket")
    too_long = assert_error(client.post(f"/api/v1/instances/{instance['id']}/cancel", headers=auth("rita"),
                                        json={"reason": "x" * 5000}), 422)
    assert too_long["details"]["fields"]["reason"][0].startswith("at most ") and "characters" in too_long["details"]["fields"]["reason"][0]
    policy = assert_error(client.put("/api/v1/sla/policies", headers=auth("olga"), json={
        "kind": "incident", "priority": "P3", "response_seconds": 5, "resolution_seconds": 7200}), 422)
    assert policy["details"]["fields"]["response_seconds"] == ["must be from 60 to 31536000"]
    paged = assert_error(client.get("/api/v1/tickets?per_page=500", headers=auth("alex")), 422)
    assert paged["details"]["fields"]["per_page"] == ["must be from 1 to 200"]


def test_api_answers_are_not_cached_or_sniffed(client, auth):
    """QA: JSON answers, the token's among them, had no Cache-Control and no X-Content-Type-Options."""
    from tests.conftest import TEST_PASSWORD
    token = client.post("/api/v1/auth/token", json={"username": "rita", "password": TEST_PASSWORD})
    assert token.status_code == 200 and token.get_json()["token"]
    for response in (token, client.get("/api/v1/tickets", headers=auth("alex")), client.get("/api/v1/nope")):
        assert response.headers.get("Cache-Control") == "no-store"
        assert response.headers.get("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("control", ["\u0085", "\u009b", "\u007f"])
def test_c1_controls_and_del_are_refused_like_c0_ones(client, auth, control):
    """QA: U+0085 and U+009B (a terminal's CSI escape) were stored in a comment."""
    from tests.http.test_instances_tasks_api import deploy_all
    deploy_all(client, auth("olga"))
    response = client.post("/api/v1/instances", headers=auth("rita"),
                           json={"process_id": "lane_ticket", "data": {"title": f"Printer{control}[31m on fire"}})
    body = assert_error(response, 400)  # as a C0 control is: the body is refused before it is read
    assert "data.title holds a control character" in body["details"]["fields"]["json"][0]
