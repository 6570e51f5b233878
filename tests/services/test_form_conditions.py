"""app.services.forms: fields that are required only for some answers (``if``/``then``/``else``
on an object, directly or in ``allOf``): the deploy-time check, validation and field descriptors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.forms import check_form_definition, form_fields, validate_start_data, validate_submission

RESOLVE = {
    "type": "object",
    "required": ["outcome"],
    "allOf": [
        {"if": {"properties": {"outcome": {"const": "resolve"}}, "required": ["outcome"]},
         "then": {"required": ["notes"]}},
        {"if": {"properties": {"outcome": {"enum": ["pending", "hold"]}}, "required": ["outcome"]},
         "then": {"required": ["waiting_on", "reason"]}},
    ],
    "properties": {
        "outcome": {"type": "string", "title": "Outcome", "oneOf": [
            {"const": "resolve", "title": "Resolved"}, {"const": "pending", "title": "Pending"},
            {"const": "hold", "title": "On hold"}]},
        "notes": {"type": "string", "title": "Notes", "default": ""},
        "waiting_on": {"type": "string", "enum": ["customer", "vendor"]},
        "reason": {"type": "string", "maxLength": 20},
    },
}

DECISION = {
    "type": "object",
    "required": ["approved"],
    "if": {"properties": {"approved": {"const": True}}, "required": ["approved"]},
    "else": {"required": ["comment"]},
    "properties": {
        "approved": {"type": "boolean", "title": "Approved"},
        "comment": {"type": "string"},
    },
}


def errors(schema: dict[str, Any], data: Any, stored: Any = None, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as info:
        validate_submission(schema, None, data, stored or {}, **kwargs)
    return info.value.details["fields"]  # type: ignore[no-any-return]


def definition_error(schema: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(schema, None, "f.json")
    return info.value.details  # type: ignore[no-any-return]


def test_the_forms_of_the_examples_are_accepted():
    check_form_definition(RESOLVE, None, "f.json")
    check_form_definition(DECISION, None, "f.json")


@pytest.mark.parametrize("web", [False, True])
def test_a_then_requires_its_fields_only_for_the_answer_it_tests(web: bool):
    assert errors(RESOLVE, {"outcome": "resolve"}, coerce_strings=web) == {
        "notes": ["is required when “Outcome” is Resolved"]}
    assert errors(RESOLVE, {"outcome": "hold", "reason": "x"}, coerce_strings=web) == {
        "waiting_on": ["is required when “Outcome” is Pending or On hold"]}
    assert validate_submission(RESOLVE, None, {"outcome": "pending", "waiting_on": "vendor", "reason": "parts"}, {},
                               coerce_strings=web) == {"outcome": "pending", "waiting_on": "vendor", "reason": "parts",
                                                       "notes": ""}
    assert validate_submission(RESOLVE, None, {"outcome": "resolve", "notes": "rebooted"}, {},
                               coerce_strings=web)["notes"] == "rebooted"


@pytest.mark.parametrize("blank", ["", "  ", "\t\n"])
def test_blank_text_or_a_blank_default_does_not_answer_a_conditional_field(blank: str):
    # notes has "default": "" - a default that says nothing does not satisfy the condition either.
    assert errors(RESOLVE, {"outcome": "resolve", "notes": blank}) == {"notes": ["is required when “Outcome” is Resolved"]}


def test_other_rules_still_apply_and_both_kinds_of_error_are_reported():
    assert errors(RESOLVE, {"outcome": "pending", "reason": "x" * 21}) == {
        "waiting_on": ["is required when “Outcome” is Pending or On hold"],
        "reason": ["must be at most 20 characters"]}
    assert errors(RESOLVE, {}) == {"outcome": ["is required"]}


@pytest.mark.parametrize("web", [False, True])
def test_an_else_requires_its_fields_when_the_test_fails(web: bool):
    rejected = {"approved": "false"} if web else {"approved": False}
    assert errors(DECISION, rejected, coerce_strings=web) == {"comment": ["is required unless “Approved” is ticked"]}
    # Unticked on a web form is an answer (false), so the comment is asked for there too.
    if web:
        assert errors(DECISION, {}, coerce_strings=True) == {"comment": ["is required unless “Approved” is ticked"]}
    assert validate_submission(DECISION, None, {"approved": True}, {}) == {"approved": True}


def test_a_tested_field_that_is_absent_and_not_required_by_the_if_passes_the_test():
    # JSON Schema's meaning: {"properties": {...}} alone holds for an object without that field.
    schema = copy.deepcopy(RESOLVE)
    schema["required"] = []
    del schema["allOf"][0]["if"]["required"]
    assert errors(schema, {}) == {"notes": ["is required when “Outcome” is Resolved"]}
    del schema["allOf"][0]
    assert validate_submission(schema, None, {}, {}) == {"notes": ""}


def test_a_read_only_answer_stored_in_the_task_decides_the_condition():
    schema = copy.deepcopy(RESOLVE)
    schema["properties"]["outcome"]["readOnly"] = True
    assert errors(schema, {"outcome": "pending"}, {"outcome": "resolve"}) == {
        "notes": ["is required when “Outcome” is Resolved"]}
    assert validate_submission(schema, None, {"notes": "done"}, {"outcome": "resolve"})["outcome"] == "resolve"


def test_conditions_of_a_nested_object_name_its_fields_by_dotted_name():
    schema = {"type": "object", "properties": {"ship": {
        "type": "object", "title": "Shipping",
        "if": {"properties": {"method": {"const": "courier"}}, "required": ["method"]},
        "then": {"required": ["address"]},
        "properties": {"method": {"type": "string", "enum": ["pickup", "courier"]}, "address": {"type": "string"}}}}}
    check_form_definition(schema, None, "f.json")
    assert errors(schema, {"ship": {"method": "courier"}}) == {"ship.address": ["is required when “method” is courier"]}
    assert errors(schema, {"ship.method": "courier", "ship.address": " "}, coerce_strings=True) == {
        "ship.address": ["is required when “method” is courier"]}
    assert validate_submission(schema, None, {"ship": {"method": "pickup"}}, {}) == {"ship": {"method": "pickup"}}
    fields = {f["name"]: f for f in form_fields(schema, None)}
    assert fields["ship.address"]["required_when"] == [
        {"negate": False, "tests": [{"field": "ship.method", "values": ["courier"], "needed": True}]}]


def test_start_data_is_checked_the_same_way():
    with pytest.raises(ValidationFailed) as info:
        validate_start_data(DECISION, None, {"approved": False, "comment": "   "})
    assert info.value.details["fields"] == {"comment": ["is required unless “Approved” is ticked"]}


def test_descriptors_say_when_an_optional_field_is_required():
    fields = {f["name"]: f for f in form_fields(RESOLVE, None)}
    assert fields["outcome"]["required"] is True and fields["outcome"]["required_when"] == []
    assert fields["notes"]["required"] is False
    assert fields["notes"]["required_when"] == [
        {"negate": False, "tests": [{"field": "outcome", "values": ["resolve"], "needed": True}]}]
    assert fields["reason"]["required_when"] == [
        {"negate": False, "tests": [{"field": "outcome", "values": ["pending", "hold"], "needed": True}]}]
    decision = {f["name"]: f for f in form_fields(DECISION, None)}
    assert decision["comment"]["required_when"] == [
        {"negate": True, "tests": [{"field": "approved", "values": [True], "needed": True}]}]


def test_a_field_that_is_always_required_has_no_condition_and_read_only_fields_none():
    schema = copy.deepcopy(RESOLVE)
    schema["required"] = ["outcome", "notes"]
    schema["properties"]["reason"]["readOnly"] = True
    schema["allOf"][1]["then"]["required"] = ["waiting_on"]
    fields = {f["name"]: f for f in form_fields(schema, None)}
    assert fields["notes"]["required"] is True and fields["notes"]["required_when"] == []
    assert fields["reason"]["required_when"] == []


def with_conditions(conditions: Any, where: str = "allOf") -> dict[str, Any]:
    schema = copy.deepcopy(RESOLVE)
    del schema["allOf"]
    if where == "allOf":
        schema["allOf"] = conditions
    else:
        schema.update(conditions)
    return schema


@pytest.mark.parametrize(("conditions", "where", "pointer", "reason"), [
    ([], "allOf", "/allOf", "non-empty list"),
    ({"if": {}}, "allOf", "/allOf", "non-empty list"),
    ([{"then": {"required": ["notes"]}}], "allOf", "/allOf/0", '"if"'),
    ([{"if": {"properties": {"outcome": {"const": "resolve"}}}, "then": {"required": ["notes"]}, "not": {}}],
     "allOf", "/allOf/0/not", "unsupported keyword 'not'"),
    ({"then": {"required": ["notes"]}}, "inline", "/then", 'needs an "if"'),
    ({"if": {"properties": {"outcome": {"const": "resolve"}}}}, "inline", "/if", '"then" or an "else"'),
    ({"if": {"required": ["outcome"]}, "then": {"required": ["notes"]}}, "inline", "/if", '"properties"'),
    ({"if": {"properties": {"outcome": {"const": "resolve"}}, "anyOf": []}, "then": {"required": ["notes"]}},
     "inline", "/if/anyOf", "unsupported keyword 'anyOf'"),
    ({"if": {"properties": {"nope": {"const": 1}}}, "then": {"required": ["notes"]}},
     "inline", "/if/properties/nope", "not a declared property"),
    ({"if": {"properties": {"outcome": {"const": "closed"}}}, "then": {"required": ["notes"]}},
     "inline", "/if/properties/outcome", "'closed' is not a value field 'outcome' can have"),
    ({"if": {"properties": {"outcome": {"enum": ["resolve", 3]}}}, "then": {"required": ["notes"]}},
     "inline", "/if/properties/outcome", "'3' is not a value"),
    ({"if": {"properties": {"outcome": {"enum": []}}}, "then": {"required": ["notes"]}},
     "inline", "/if/properties/outcome/enum", "non-empty list"),
    ({"if": {"properties": {"outcome": {"pattern": "^r"}}}, "then": {"required": ["notes"]}},
     "inline", "/if/properties/outcome", '{"const": value}'),
    ({"if": {"properties": {"outcome": {"const": "resolve"}}, "required": ["notes"]}, "then": {"required": ["notes"]}},
     "inline", "/if/required/0", "not a declared property"),
    ({"if": {"properties": {"outcome": {"const": "resolve"}}}, "then": {"required": []}},
     "inline", "/then/required", "not empty"),
    ({"if": {"properties": {"outcome": {"const": "resolve"}}}, "then": {"required": ["nope"]}},
     "inline", "/then/required/0", "not a declared property"),
    ({"if": {"properties": {"outcome": {"const": "resolve"}}}, "then": {"required": ["notes"], "properties": {}}},
     "inline", "/then", '{"required": [field names]}'),
])
def test_conditions_outside_the_supported_shape_are_refused_with_a_pointer(conditions: Any, where: str, pointer: str,
                                                                           reason: str):
    details = definition_error(with_conditions(conditions, where))
    assert details["pointer"] == pointer
    assert reason in details["reason"]


def test_conditions_cannot_test_lists_nor_require_read_only_fields():
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}},
                                               "risk": {"type": "string", "readOnly": True}},
              "if": {"properties": {"tags": {"const": "a"}}}, "then": {"required": ["risk"]}}
    assert "single-value" in definition_error(schema)["reason"]
    schema["if"] = {"properties": {"risk": {"const": "high"}}}
    details = definition_error(schema)
    assert details["pointer"] == "/then/required/0" and "read-only" in details["reason"]


@pytest.mark.parametrize("answer", [["resolve", "pending"], {"a": 1}, ["resolve"]])
def test_a_tested_field_holding_a_list_or_an_object_is_refused_plainly(answer: Any):
    # Seen from a web post that repeats a radio button: a 422 naming the field, never a crash.
    fields = errors(RESOLVE, {"outcome": answer})
    assert list(fields) == ["outcome"]
    with pytest.raises(ValidationFailed):
        validate_submission(RESOLVE, None, {"outcome": "resolve", "reason": ["x"]}, {}, coerce_strings=True)


def test_a_withdrawn_answer_tests_like_one_never_given():
    schema = copy.deepcopy(RESOLVE)
    schema["required"] = []
    del schema["allOf"][0]["if"]["required"]  # JSON Schema: an absent field passes the test
    never = errors(schema, {}, coerce_strings=True)
    withdrawn = errors(schema, {"outcome": ""}, {"outcome": "pending"}, coerce_strings=True)
    assert never == withdrawn == {"notes": ["is required when “Outcome” is Resolved"]}


def test_nothing_ticked_does_not_answer_a_conditionally_required_choice_list():
    schema = {"type": "object", "required": ["kind"],
              "if": {"properties": {"kind": {"const": "other"}}, "required": ["kind"]}, "then": {"required": ["tags"]},
              "properties": {"kind": {"type": "string", "enum": ["other", "usual"]},
                             "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}}}
    check_form_definition(schema, None, "f.json")
    assert errors(schema, {"kind": "other"}, coerce_strings=True) == {"tags": ["is required when “kind” is other"]}
    assert validate_submission(schema, None, {"kind": "other", "tags": "a"}, {}, coerce_strings=True)["tags"] == ["a"]
