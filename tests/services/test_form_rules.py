"""app.services.forms: blank text in required fields, date ordering between fields
(formatMinimum / formatExclusiveMinimum) and start data (validate_start_data)."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.forms import check_form_definition, validate_start_data, validate_submission

WINDOW = {
    "type": "object",
    "properties": {
        "start": {"type": "string", "title": "Start", "format": "date-time"},
        "end": {"type": "string", "title": "End", "format": "date-time",
                "formatExclusiveMinimum": {"$data": "1/start"}},
        "day": {"type": "string", "format": "date", "formatMinimum": "2026-01-01"},
    },
}


def errors(schema: dict[str, Any], data: Any, stored: Any = None, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as info:
        validate_submission(schema, None, data, stored or {}, **kwargs)
    return info.value.details["fields"]  # type: ignore[no-any-return]


def definition_error(schema: dict[str, Any]) -> str:
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(schema, None, "f.json")
    return str(info.value.details["reason"])


@pytest.mark.parametrize("web", [False, True])
# QA: resolution notes of zero-width spaces resolved an incident: invisible format characters
# (U+200B zero width space, U+2060 word joiner, U+FEFF) are no answer either
@pytest.mark.parametrize("blank", ["", " ", "   ", "\t\n", "\u200b\u200b", " \u2060\ufeff "])
def test_blank_text_in_a_required_field_is_required(web: bool, blank: str):
    schema = {"type": "object", "required": ["comment"],
              "properties": {"comment": {"type": "string", "minLength": 1}, "note": {"type": "string", "default": "-"}}}
    assert errors(schema, {"comment": blank}, coerce_strings=web) == {"comment": ["is required"]}
    assert validate_submission(schema, None, {"comment": " ok "}, {}, coerce_strings=web) == {"comment": " ok ", "note": "-"}


def test_blank_text_in_a_web_form_is_absent_for_optional_fields_too():
    schema = {"type": "object", "properties": {"note": {"type": "string", "default": "-"}}}
    assert validate_submission(schema, None, {"note": "   "}, {}, coerce_strings=True) == {"note": "-"}
    assert validate_submission(schema, None, {"note": "   "}, {}) == {"note": "   "}  # JSON: as sent


def test_a_window_must_end_after_it_starts():
    ok = {"start": "2026-03-10T20:00:00Z", "end": "2026-03-10T22:00:00+01:00"}
    assert validate_submission(WINDOW, None, ok, {}) == ok
    for end in ("2026-03-10T19:59:59Z", "2026-03-10T20:00:00Z", "2026-03-10T21:00:00+01:00"):
        assert errors(WINDOW, {**ok, "end": end}) == {"end": ["must be after Start"]}, end
    # a bad value is reported for what it is, not compared
    assert errors(WINDOW, {**ok, "start": "soon"}) == {"start": [
        "must be a date and time (YYYY-MM-DDThh:mm:ssZ or with an offset like +02:00)"]}
    assert errors(WINDOW, {"day": "2025-12-31"}) == {"day": ["must not be before 2026-01-01"]}
    assert validate_submission(WINDOW, None, {"day": "2026-01-01"}, {}) == {"day": "2026-01-01"}


def test_moving_one_end_of_a_window_compares_with_the_other_end_as_stored():
    stored = {"start": "2026-03-10T20:00:00Z", "end": "2026-03-10T22:00:00Z"}
    assert errors(WINDOW, {"end": "2026-03-10T19:00:00Z"}, stored) == {"end": ["must be after Start"]}
    assert errors(WINDOW, {"start": "2026-03-11T20:00:00Z"}, stored) == {"end": ["must be after Start"]}
    assert validate_submission(WINDOW, None, {"end": "2026-03-10T23:00:00Z"}, stored) == {"end": "2026-03-10T23:00:00Z"}
    assert validate_submission(WINDOW, None, {}, {"start": "x", "end": "y"}) == {}  # nothing moved: nothing compared


@pytest.mark.parametrize(("field", "reason"), [
    ({"type": "string", "formatMinimum": "2026-01-01"}, "needs a field with format date or date-time"),
    ({"type": "string", "format": "date", "formatMinimum": "yesterday"}, "must be a date value"),
    ({"type": "string", "format": "date", "formatMinimum": {"$data": "/start"}}, "naming a sibling field"),
    ({"type": "string", "format": "date", "formatMinimum": {"$data": "1/nope"}}, "not another text field"),
    ({"type": "string", "format": "date", "formatMinimum": {"$data": "1/start"}}, "does not have format 'date'"),
    ({"type": "array", "items": {"type": "string", "format": "date", "formatMinimum": "2026-01-01"}}, "not on array items"),
    ({"type": "integer", "formatMinimum": 3}, "does not apply to type 'integer'"),
])
def test_date_ordering_keywords_are_checked_at_deploy(field: dict[str, Any], reason: str):
    schema = {"type": "object", "properties": {"start": {"type": "string", "format": "date-time"}, "x": field}}
    assert reason in definition_error(schema)


def test_start_data_accepts_a_free_list_as_one_text():
    schema = {"type": "object", "properties": {
        "refs": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z]+-[0-9]+$"}},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
    }}
    assert validate_start_data(schema, None, {"refs": "INC-1, INC-2;INC-3\nINC-4", "x": 1}) == {
        "refs": ["INC-1", "INC-2", "INC-3", "INC-4"]}
    assert validate_start_data(schema, None, {"refs": ["INC-1"]}) == {"refs": ["INC-1"]}
    with pytest.raises(ValidationFailed) as info:
        validate_start_data(schema, None, {"tags": "a, b"})  # a choice list is not split
    assert info.value.details["fields"] == {"tags": ["must be a list"]}


CLEARABLE = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "code": {"type": "string", "pattern": "^[A-Z]+$"},
        "count": {"type": "integer"},
        "pick": {"type": "string", "enum": ["a", "b"]},
        "day": {"type": "string", "format": "date"},
        "note": {"type": "string", "default": "-"},
    },
}
EARLIER = {"reason": "old", "code": "ABC", "count": 3, "pick": "a", "day": "2026-01-01", "note": "kept?"}


def test_a_web_post_that_empties_an_earlier_answer_withdraws_it():
    emptied = {name: "" for name in CLEARABLE["properties"]}
    cleaned = validate_submission(CLEARABLE, None, emptied, EARLIER, coerce_strings=True)
    # Text that may be empty becomes ""; anything else None; a default still fills its field.
    assert cleaned == {"reason": "", "code": None, "count": None, "pick": None, "day": None, "note": "-"}


def test_fields_not_in_the_post_or_never_answered_are_left_alone():
    assert validate_submission(CLEARABLE, None, {"reason": ""}, EARLIER, coerce_strings=True) == {"reason": "", "note": "-"}
    assert validate_submission(CLEARABLE, None, {"reason": "", "pick": ""}, {}, coerce_strings=True) == {"note": "-"}
    # A JSON client leaves a field out to keep it and sends "" to empty text: nothing is guessed.
    assert validate_submission(CLEARABLE, None, {}, EARLIER) == {"note": "-"}


def test_an_emptied_field_that_a_condition_requires_is_reported():
    schema = {**CLEARABLE, "required": ["pick"],
              "if": {"properties": {"pick": {"const": "b"}}, "required": ["pick"]}, "then": {"required": ["count"]}}
    assert errors(schema, {"pick": "b", "count": ""}, EARLIER, coerce_strings=True) == {
        "count": ["is required when “pick” is b"]}


def test_a_password_is_never_shown_again_so_a_blank_one_keeps_the_stored_value():
    schema = {"type": "object", "properties": {"secret": {"type": "string"}}}
    ui = {"secret": {"ui:widget": "password"}}
    assert validate_submission(schema, ui, {"secret": ""}, {"secret": "s3cret"}, coerce_strings=True) == {}
    assert validate_submission(schema, None, {"secret": ""}, {"secret": "s3cret"}, coerce_strings=True) == {"secret": ""}
