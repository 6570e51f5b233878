"""Form files no diagram uses yet are checked when deployed, like every other file."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.models import DefinitionFile
from tests.http.helpers import assert_error, deploy_all, upload

GOOD = {"title": "Order", "type": "object", "required": ["item"],
        "properties": {"item": {"type": "string", "title": "Item", "minLength": 1}}}


def files_stored(services) -> int:
    return services.session.scalar(select(func.count()).select_from(DefinitionFile))


def test_a_broken_form_alone_is_refused_and_nothing_is_stored(client, auth, services):
    deploy_all(client, auth("olga"))
    before = files_stored(services)
    cases = [
        ([("x.json", json.dumps({"type": "object", "properties": {"a": {"type": "nonsense"}}}).encode())], "x.json"),
        ([("y.json", json.dumps({"type": "object", "required": "a", "properties": {"a": {"type": "string"}}}).encode())],
         "y.json"),
        ([("z.json", json.dumps({"type": "object", "properties": {"a": {"type": "string", "pattern": "(["}}}).encode())],
         "z.json"),
        ([("w.json", b'{"type": "object",\n "properties": }')], "w.json"),
        ([("v.json", json.dumps(GOOD).encode()), ("v.ui.json", json.dumps({"nowhere": {"ui:widget": "textarea"}}).encode())],
         "v.json"),
        ([("u.ui.json", b"[1, 2]")], "u.ui.json"),
    ]
    for files, named in cases:
        body = assert_error(upload(client, auth("olga"), files), 422, "invalid_definition")
        assert body["details"]["file"] == named, body
    assert "line" in assert_error(upload(client, auth("olga"), cases[3][0]), 422)["details"]
    assert files_stored(services) == before

    # a good form (and its UI schema) deploys ahead of any diagram naming it
    ok = upload(client, auth("olga"), [("order.json", json.dumps(GOOD).encode()),
                                       ("order.ui.json", json.dumps({"item": {"ui:widget": "textarea"}}).encode())])
    assert ok.status_code == 200, ok.get_json()
    assert files_stored(services) == before + 2
    # a UI schema later changed against it is checked with it
    assert_error(upload(client, auth("olga"), [("order.ui.json", json.dumps({"colour": {}}).encode())]),
                 422, "invalid_definition")
