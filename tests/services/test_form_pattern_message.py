"""A form field may say in words what its pattern asks for (``patternMessage``): checked at
deploy, carried by the pattern's error for pages to show, while the error's text (what the API
answers) keeps the pattern."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.forms import FormMessage, check_form_definition, validate_submission

TAG = {"type": "string", "title": "Asset tag", "pattern": "^AT-[0-9]{6}$",
       "patternMessage": "must be AT- and six digits"}


def form(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def refused(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, list[Any]]:
    with pytest.raises(ValidationFailed) as info:
        validate_submission(schema, None, data, {})
    return info.value.details["fields"]


def test_a_pattern_message_is_accepted_at_deploy_beside_its_pattern() -> None:
    check_form_definition(form(tag=TAG), None, "forms/f.json")
    check_form_definition(form(tags={"type": "array", "items": TAG}), None, "forms/f.json")


@pytest.mark.parametrize("field, reason", [
    ({"type": "string", "patternMessage": "must be AT- and six digits"}, "give the pattern too"),
    ({**TAG, "patternMessage": ""}, "non-empty string"),
    ({**TAG, "patternMessage": ["must be AT-"]}, "non-empty string"),
])
def test_a_pattern_message_without_a_pattern_or_not_text_is_refused(field: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(form(tag=field), None, "forms/f.json")
    assert info.value.details["pointer"] == "/properties/tag/patternMessage"
    assert reason in info.value.details["reason"]


def test_the_error_keeps_the_pattern_in_its_text_and_the_message_in_its_parts() -> None:
    [message] = refused(form(tag=TAG), {"tag": "12345"})["tag"]
    assert message == "must match the pattern ^AT-[0-9]{6}$"  # what the API answers, as before
    assert isinstance(message, FormMessage) and message.kind == "pattern"
    assert message.parts == {"pattern": "^AT-[0-9]{6}$", "message": "must be AT- and six digits"}
    [item] = refused(form(tags={"type": "array", "items": TAG}), {"tags": ["AT-000001", "x"]})["tags"]
    assert item == "each item must match the pattern ^AT-[0-9]{6}$"
    assert item.parts["item"].parts["message"] == "must be AT- and six digits"


def test_a_pattern_without_a_message_carries_only_the_pattern() -> None:
    [message] = refused(form(code={"type": "string", "pattern": "^[A-Z]+$"}), {"code": "abc"})["code"]
    assert message == "must match the pattern ^[A-Z]+$" and message.parts == {"pattern": "^[A-Z]+$"}
