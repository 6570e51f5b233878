"""Input the API must refuse plainly (4xx with a JSON body), never answer with a 500."""

from __future__ import annotations

import pytest

from app.api import MAX_JSON_DEPTH, MAX_JSON_INT_DIGITS
from tests.conftest import fixture_files
from tests.http.desk import Desk
from tests.http.helpers import upload

HUGE = "9" * 25  # beyond any integer column


@pytest.mark.parametrize("path", [f"/api/v1/instances/{HUGE}", f"/api/v1/instances/{2**31}/history",
                                  f"/api/v1/instances/{2**63}",
                                  f"/api/v1/tasks/{HUGE}", f"/api/v1/notifications/{HUGE}/read"])
def test_an_id_beyond_the_id_columns_is_not_found(client, auth, path):
    method = client.post if path.endswith("/read") else client.get
    response = method(path, headers=auth("rita"))
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_the_largest_id_is_a_plain_unknown_id(client, auth):
    response = client.get(f"/api/v1/instances/{2**31 - 1}", headers=auth("rita"))
    assert response.status_code == 404 and "no instance" in response.get_json()["message"]


def test_the_openapi_document_states_the_id_bounds(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    parameter = next(p for p in spec["paths"]["/api/v1/instances/{instance_id}"]["parameters"] if p["name"] == "instance_id")
    assert parameter["schema"]["type"] == "integer" and parameter["schema"]["maximum"] == 2**31 - 1


def body_error(response) -> str:
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert body["error"] == "bad_request"
    return " ".join(body["details"]["fields"]["json"])


def post_raw(client, headers, text: str):
    return client.post("/api/v1/instances", data=text, headers={**headers, "Content-Type": "application/json"})


def test_json_bodies_too_deep_too_long_or_not_json_are_refused_before_anything_runs(client, auth):
    upload(client, auth("olga"), fixture_files())
    rita = auth("rita")
    nested = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert "levels deep" in body_error(post_raw(client, rita, f'{{"process_id": "simple_request", "data": {{"x": {nested}}}}}'))
    assert "levels deep" in body_error(post_raw(client, rita, "[" * 5000 + "]" * 5000))
    digits = "1" * (MAX_JSON_INT_DIGITS + 1)
    assert "digits" in body_error(post_raw(client, rita, f'{{"process_id": "simple_request", "data": {{"n": {digits}}}}}'))
    assert "digits" in body_error(post_raw(client, rita, '{"process_id": "simple_request", "data": {"n": ' + "7" * 5000 + "}}"))
    assert "NaN" in body_error(post_raw(client, rita, '{"process_id": "simple_request", "data": {"n": NaN}}'))
    assert "Invalid JSON" in body_error(post_raw(client, rita, '{"process_id": '))
    listed = client.get("/api/v1/instances", headers=rita).get_json()
    assert listed["total"] == 0
    # the same shapes within the limits go through
    fine = "[" * 10 + "1" + "]" * 10
    response = post_raw(client, rita, f'{{"process_id": "simple_request", "data": {{"x": {fine}, "n": {"9" * MAX_JSON_INT_DIGITS}}}}}')
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("literal", ["1e309", "-1e309", "1" * 400 + ".0"])
def test_a_number_beyond_a_float_is_refused_naming_where_it_is(client, auth, literal):
    """QA: ``1e309`` read as infinity went into the start data, stored as ``Infinity``: no JSON,
    and on PostgreSQL (jsonb) a 500."""
    upload(client, auth("olga"), fixture_files())
    raw = f'{{"process_id": "simple_request", "data": {{"title": "ok", "sizes": [1, {literal}]}}}}'
    assert "data.sizes[1] is a number beyond the range of a 64-bit float" in body_error(post_raw(client, auth("rita"), raw))
    assert client.get("/api/v1/instances", headers=auth("rita")).get_json()["total"] == 0
    fine = post_raw(client, auth("rita"), '{"process_id": "simple_request", "data": {"title": "ok", "n": 1e308, "m": 1e-400}}')
    assert fine.status_code == 201, fine.get_json()


def test_a_body_that_is_not_json_is_refused_with_415_naming_the_content_type(client):
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = client.post("/api/v1/auth/token", data='{"username": "alex", "password": "x"}',
                               content_type=content_type)
        assert response.status_code == 415, content_type
        body = response.get_json()
        assert body["error"] == "unsupported_media_type"
        assert body["details"]["fields"]["Content-Type"] == [
            f"the body must be application/json ({content_type})"]
    # No body at all is still "these fields are missing".
    empty = client.post("/api/v1/auth/token")
    assert empty.status_code == 422 and set(empty.get_json()["details"]["fields"]) == {"username", "password"}


@pytest.mark.parametrize("raw, where", [
    ('{"username": "\\ud800", "password": "x"}', "username"),
    ('{"username": "a\\u0000b", "password": "x"}', "username"),
    ('{"username": "a", "password": "x\\u001b[2J"}', "password"),
])
def test_unstorable_text_is_a_400_naming_where_it_is_even_before_sign_in(client, raw, where):
    response = client.post("/api/v1/auth/token", data=raw, content_type="application/json")
    assert response.status_code == 400
    message = response.get_json()["details"]["fields"]["json"][0]
    assert message.startswith(f"Invalid JSON body: {where} holds a control character or an unpaired surrogate")


def test_unstorable_text_deep_in_start_data_is_named_by_its_path(client, services):
    desk = Desk(client, services)
    raw = '{"process_id": "incident_management", "data": {"title": "ok", "tags": ["x", "\\ud83d"]}}'
    response = desk.client.post("/api/v1/instances", data=raw, content_type="application/json",
                                headers=desk.auth("rita"))
    assert response.status_code == 400
    assert "data.tags[1] holds a control character" in response.get_json()["details"]["fields"]["json"][0]
    # Tabs and newlines are text; a whole surrogate pair (an emoji) is one character.
    fine = desk.client.post("/api/v1/auth/token", data='{"username": "a\\tb\\n\\ud83d\\ude00", "password": "x"}',
                            content_type="application/json")
    assert fine.status_code == 401


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("post", "/api/v1/instances", {"process_id": "incident_management", "dat": {}}, "dat"),
    ("post", "/api/v1/tasks/1/complete", {"data": {}, "comment": "x"}, "comment"),
    ("post", "/api/v1/tickets/INC-000001/comments", {"body": "hi", "internal": True}, "internal"),
    ("put", "/api/v1/users/me/preferences", {"email_opt_out": True, "sms_opt_out": True}, "sms_opt_out"),
])
def test_a_body_field_the_api_does_not_know_is_refused_by_name(client, auth, method, path, body, field):
    response = getattr(client, method)(path, headers=auth("rita"), json=body)
    assert response.status_code == 422, response.get_json()
    payload = response.get_json()
    assert payload["error"] == "validation_failed" and field in str(payload["details"]), payload


def test_a_misspelt_field_in_a_patch_changes_nothing_and_says_why(client, auth):
    created = client.post("/api/v1/webhooks", headers=auth("ada"),
                          json={"url": "https://hooks.example.org/x", "secret": "s" * 32, "events": ["*"]})
    assert created.status_code == 201, created.get_json()
    hook = created.get_json()
    typo = client.patch(f"/api/v1/webhooks/{hook['id']}", headers=auth("ada"), json={"actve": False})
    assert typo.status_code == 422 and "actve" in str(typo.get_json()["details"])
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=auth("ada")).get_json()["active"] is True


def test_a_query_parameter_the_api_does_not_know_is_still_ignored(client, auth):
    response = client.get("/api/v1/tasks?utm_source=mail&page=1", headers=auth("rita"))
    assert response.status_code == 200


def test_without_a_token_every_route_that_takes_arguments_is_401_whatever_it_is_sent(client):
    """Who is asking comes first: an anonymous request with a wrong body or query was answered
    422 listing the fields it lacked, as if it could have been served."""
    spec = client.get("/api/v1/openapi.json").get_json()
    tried = 0
    for path, operations in spec["paths"].items():
        if path in ("/api/v1/auth/token", "/api/v1/health"):
            continue
        url = path.replace("{", "").replace("}", "")
        url = "/".join("1" if part.endswith("_id") else part for part in url.split("/"))
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            takes = "requestBody" in operation or any(p.get("in") == "query" for p in operation.get("parameters", []))
            if not takes:
                continue
            tried += 1
            response = client.open(url + "?page=x&per_page=x&bogus=1", method=method.upper(), json={"bogus": [1]})
            if (method, path) == ("post", "/api/v1/mail/inbound"):
                # the mail gateway's own token, not a user's: without MAIL_INBOUND_TOKEN the route is off
                assert response.status_code == 404, response.get_json()
                continue
            assert response.status_code == 401, (method, url, response.get_json())
            assert response.get_json()["error"] in ("unauthorized", "token_expired"), (method, url)
    assert tried >= 15
    # the open ones still parse first: a token request without its fields is told which
    answer = client.post("/api/v1/auth/token", json={"bogus": 1})
    assert answer.status_code == 422 and "username" in answer.get_json()["details"]["fields"]
