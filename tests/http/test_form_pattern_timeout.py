"""A form ``pattern`` that backtracks catastrophically cannot stop the server.

Patterns are matched with the ``regex`` package under a time limit: a value whose match runs out
of time is refused (422) naming the field, the request returns, and the next one is served. The
deploy-time check (``backtracking_problem``) refuses what it refused before.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import ProcessInstance
from app.services import forms
from app.services.forms import FormMessage, validate_start_data
from tests.conftest import fixture_files
from tests.http.helpers import assert_error, open_task, start, upload

#: Alternation under a repeat: Python's ``re`` takes ~10 s (doubling with each further digit) to
#: refuse ``EVIL``, and ``regex`` more than its time limit. The deploy check once let it through (and
#: a form deployed then is still matched); the tests let it through again, standing for any slow
#: pattern the check does not recognise.
SLOW = "^(\\d|\\d\\d)*$"
EVIL = "1" * 38 + "x"
TIMED_OUT = f"could not be checked against the pattern {SLOW} in time: send a shorter or simpler value"
CODE = {"type": "string", "title": "Code", "maxLength": 200, "pattern": SLOW}


def deploy(client: Any, auth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture processes, with a ``code`` field of the slow pattern on simple_request's start
    form and on its first task's form."""
    monkeypatch.setattr(forms, "backtracking_problem", lambda pattern, outer_limit=1: None)
    files = []
    for name, content in fixture_files():
        if name == "details-schema.json":
            schema = json.loads(content)
            schema["properties"]["code"] = CODE
            content = json.dumps(schema).encode()
        files.append((name, content))
    start_form = {"type": "object", "properties": {"title": {"type": "string"}, "code": CODE}}
    files.append(("simple_request.start.json", json.dumps(start_form).encode()))
    response = upload(client, auth("olga"), files)
    assert response.status_code == 201, response.get_json()


def instances(services: Any) -> int:
    return services.session.scalar(select(func.count()).select_from(ProcessInstance)) or 0


def test_a_start_with_a_value_that_times_out_is_refused_naming_the_field(client, auth, services, monkeypatch):
    deploy(client, auth, monkeypatch)
    before = instances(services)
    body = assert_error(client.post("/api/v1/instances", headers=auth("rita"), json={
        "process_id": "simple_request", "data": {"title": "Chairs", "code": EVIL}}), 422, "validation_failed")
    assert body["details"]["fields"] == {"code": [TIMED_OUT]}
    assert instances(services) == before
    # the server goes on serving, and the pattern still works for ordinary values
    started = start(client, auth("rita"), "simple_request", {"title": "Chairs", "code": "1" * 38})
    assert started["data"]["code"] == "1" * 38
    body = assert_error(client.post("/api/v1/instances", headers=auth("rita"), json={
        "process_id": "simple_request", "data": {"title": "Chairs", "code": "12x"}}), 422)
    assert body["details"]["fields"] == {"code": [f"must match the pattern {SLOW}"]}


def test_a_task_completion_that_times_out_is_refused_and_the_task_stays(client, auth, monkeypatch):
    deploy(client, auth, monkeypatch)
    task = open_task(start(client, auth("rita"), "simple_request", {"title": "Chairs"}), "fill_details")
    url = f"/api/v1/tasks/{task['id']}/complete"
    body = assert_error(client.post(url, headers=auth("rita"), json={
        "data": {"title": "Chairs", "quantity": 3, "code": EVIL}}), 422, "validation_failed")
    assert body["details"]["fields"] == {"code": [TIMED_OUT]}
    detail = client.get(f"/api/v1/tasks/{task['id']}", headers=auth("rita")).get_json()
    assert detail["completed_at"] is None and detail["completed_by"] is None
    done = client.post(url, headers=auth("rita"), json={"data": {"title": "Chairs", "quantity": 3, "code": "123"}})
    assert done.status_code == 200 and done.get_json()["status"] == "completed"


def test_a_timed_out_match_says_the_fields_own_words_to_pages():
    said = "digits only, e.g. 0042"
    schema = {"type": "object", "properties": {"code": {**CODE, "patternMessage": said}}}
    with pytest.raises(forms.ValidationFailed) as caught:
        validate_start_data(schema, None, {"code": EVIL})
    (message,) = caught.value.details["fields"]["code"]
    assert message == TIMED_OUT
    # pages translate the kind "pattern" (the field's own words, else "the expected format")
    assert isinstance(message, FormMessage) and message.kind == "pattern"
    assert message.parts == {"pattern": SLOW, "message": said, "timed_out": True}


def test_one_validation_spends_a_bounded_time_on_patterns(monkeypatch):
    # A list of many slow values: once the validation's budget is spent, the rest count as timed
    # out without being matched (the budget is made tiny here; each value alone would use it up).
    monkeypatch.setattr(forms, "PATTERN_BUDGET_SECONDS", 0.0)
    schema = {"type": "object", "properties": {"codes": {"type": "array", "items": CODE}}}
    with pytest.raises(forms.ValidationFailed) as caught:
        validate_start_data(schema, None, {"codes": ["1", "22", EVIL]})
    assert caught.value.details["fields"] == {"codes": [f"each item {TIMED_OUT}"]}


@pytest.mark.parametrize("pattern", ["^(a+)+$", "(.*a){20}", "(["])
def test_the_deploy_check_still_refuses_what_it_refused(client, auth, pattern):
    form = {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}}
    body = assert_error(upload(client, auth("olga"), [("bad.json", json.dumps(form).encode())]), 422,
                        "invalid_definition")
    assert body["details"]["file"] == "bad.json"
