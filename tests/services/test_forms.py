"""Tests for app.services.forms: form definition checks, dynamic options, field descriptors,
server-side submission validation and instruction rendering."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.forms import (
    FORM_ERROR_KEY,
    SUPPORTED_WIDGETS,
    check_form_definition,
    form_fields,
    render_instructions,
    resolve_form,
    validate_submission,
)

# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required is not None:
        schema["required"] = required
    return schema


def field_errors(schema: dict[str, Any], data: Any, task_data: Any = None, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as info:
        validate_submission(schema, kwargs.pop("ui", None), data, task_data or {}, **kwargs)
    assert info.value.message == "form data is invalid"
    fields = info.value.details["fields"]
    assert isinstance(fields, dict)
    return fields


def definition_error(schema: Any, ui: Any = None, filename: str = "forms/f.json") -> dict[str, Any]:
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(schema, ui, filename)
    details = info.value.details
    assert details["file"] == filename
    assert isinstance(details["reason"], str) and details["reason"]
    return details


TICKET = obj(
    {
        "title": {"type": "string", "title": "Title", "minLength": 3, "maxLength": 50},
        "priority": {"type": "string", "enum": ["high", "medium", "low"], "default": "medium"},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "urgent": {"type": "boolean"},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "contact": {"type": "string", "format": "email"},
        "due": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "notes": {"type": "string", "description": "Anything else"},
        "tags": {
            "type": "array",
            "items": {"type": "string", "enum": ["a", "b", "c"]},
            "minItems": 1,
            "maxItems": 2,
            "uniqueItems": True,
        },
        "impact": {
            "type": "string",
            "oneOf": [{"const": "h", "title": "High"}, {"const": "l", "title": "Low"}],
        },
        "address": obj(
            {
                "city": {"type": "string", "maxLength": 10},
                "zip": {"type": "string", "default": "0000"},
            },
            required=["city"],
        ),
        "ticket_id": {"type": "string", "readOnly": True},
    },
    required=["title"],
)


# ----------------------------------------------------------------------------------------------
# check_form_definition
# ----------------------------------------------------------------------------------------------


def test_supported_widgets_contains_contract_minimum() -> None:
    assert {"textarea", "radio", "select", "hidden", "checkboxes"} <= SUPPORTED_WIDGETS


def test_valid_definition_passes() -> None:
    ui = {
        "ui:order": ["priority", "*", "notes"],
        "notes": {"ui:widget": "textarea", "ui:help": "help", "ui:placeholder": "..."},
        "priority": {"ui:widget": "radio"},
        "tags": {"ui:widget": "checkboxes"},
        "ticket_id": {"ui:widget": "hidden"},
        "address": {"ui:order": ["zip", "city"], "city": {"ui:title": "Town"}},
        "urgent": {"ui:widget": "checkbox", "ui:disabled": False},
    }
    check_form_definition(TICKET, ui, "forms/ticket.json")
    check_form_definition(TICKET, None, "forms/ticket.json")


def test_dynamic_options_definition_passes() -> None:
    schema = obj(
        {
            "team": {
                "type": "string",
                "anyOf": ["options_from_task_data_var:teams"],
                "default": "x",
            },
            "group": {"type": "string", "enum": "options_from_task_data_var:groups"},
            "many": {
                "type": "array",
                "items": {"type": "string", "oneOf": ["options_from_task_data_var:m"]},
            },
        }
    )
    check_form_definition(schema, {"team": {"ui:widget": "radio"}, "many": {"ui:widget": "checkboxes"}}, "f.json")


@pytest.mark.parametrize("schema", [[], "x", None])
def test_non_object_document_refused(schema: Any) -> None:
    details = definition_error(schema)
    assert details["pointer"] == ""
    assert details["document"] == "schema"


@pytest.mark.parametrize("root_type", ["string", "array", None])
def test_non_object_root_type_refused(root_type: Any) -> None:
    schema: dict[str, Any] = {"properties": {}}
    if root_type is not None:
        schema["type"] = root_type
    details = definition_error(schema)
    assert details["pointer"] == "/type"


@pytest.mark.parametrize(
    ("prop", "pointer"),
    [
        ({"type": "string", "if": {}}, "/properties/x/if"),
        ({"type": "object", "properties": {}, "dependencies": {}}, "/properties/x/dependencies"),
        ({"type": "object", "patternProperties": {}}, "/properties/x/patternProperties"),
        ({"$ref": "https://example.com/schema.json"}, "/properties/x/$ref"),
        ({"type": "string", "allOf": []}, "/properties/x/allOf"),
        ({"type": "string", "const": "a"}, "/properties/x/const"),
        ({"type": "null"}, "/properties/x/type"),
        ({"type": ["string", "null"]}, "/properties/x/type"),
        ({"title": "no type"}, "/properties/x"),
        ({"type": "integer", "minLength": 1}, "/properties/x/minLength"),
        ({"type": "string", "format": "uri"}, "/properties/x/format"),
        ({"type": "string", "maxLength": -1}, "/properties/x/maxLength"),
        ({"type": "string", "minLength": 5, "maxLength": 2}, "/properties/x/minLength"),
        ({"type": "integer", "minimum": "1"}, "/properties/x/minimum"),
        ({"type": "string", "enum": []}, "/properties/x/enum"),
        ({"type": "string", "enum": ["a", "a"]}, "/properties/x/enum/1"),
        ({"type": "string", "enum": ["a", 1]}, "/properties/x/enum/1"),
        ({"type": "string", "enum": ["a"], "oneOf": [{"const": "a"}]}, "/properties/x/oneOf"),
        ({"type": "string", "oneOf": [{"title": "no const"}]}, "/properties/x/oneOf/0"),
        (
            {"type": "string", "oneOf": [{"const": "a", "type": "string"}]},
            "/properties/x/oneOf/0/type",
        ),
        ({"type": "array"}, "/properties/x"),
        (
            {"type": "array", "items": {"type": "object", "properties": {}}},
            "/properties/x/items/type",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "uniqueItems": "yes"},
            "/properties/x/uniqueItems",
        ),
        ({"type": "string", "default": 5}, "/properties/x/default"),
        ({"type": "string", "maxLength": 2, "default": "abc"}, "/properties/x/default"),
        ({"type": "string", "readOnly": "yes"}, "/properties/x/readOnly"),
        (
            {"type": "object", "properties": {"y": {"type": "string", "not": {}}}},
            "/properties/x/properties/y/not",
        ),
    ],
)
def test_unsupported_schema_refused_with_pointer(prop: dict[str, Any], pointer: str) -> None:
    details = definition_error(obj({"x": prop}))
    assert details["document"] == "schema"
    assert details["pointer"] == pointer


def test_unsupported_keyword_at_root_refused() -> None:
    details = definition_error({**obj({}), "$defs": {}})
    assert details["pointer"] == "/$defs"
    assert "$defs" in details["reason"]


def test_message_names_file_and_place() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(obj({"x": {"type": "string", "if": {}}}), None, "forms/a.json")
    assert "forms/a.json" in info.value.message
    assert "/properties/x/if" in info.value.message
    assert info.value.code == "validation_failed"


def test_bad_pattern_refused() -> None:
    details = definition_error(obj({"x": {"type": "string", "pattern": "([a-z"}}))
    assert details["pointer"] == "/properties/x/pattern"
    assert "regular expression" in details["reason"]


def test_overlong_pattern_refused() -> None:
    details = definition_error(obj({"x": {"type": "string", "pattern": "a" * 1001}}))
    assert details["pointer"] == "/properties/x/pattern"
    check_form_definition(obj({"x": {"type": "string", "pattern": "a" * 1000}}), None, "f.json")


def test_required_must_name_declared_property() -> None:
    details = definition_error(obj({"a": {"type": "string"}}, required=["a", "b"]))
    assert details["pointer"] == "/required/1"


@pytest.mark.parametrize("name", ["a.b", "*", ""])
def test_bad_property_names_refused(name: str) -> None:
    details = definition_error(obj({name: {"type": "string"}}))
    assert details["pointer"].startswith("/properties/")


def test_pointer_escapes_slash_and_tilde() -> None:
    details = definition_error(obj({"a/b~c": {"type": "string", "if": {}}}))
    assert details["pointer"] == "/properties/a~1b~0c/if"


def test_unknown_widget_refused() -> None:
    details = definition_error(obj({"x": {"type": "string"}}), {"x": {"ui:widget": "colorpicker"}})
    assert details["document"] == "ui_schema"
    assert details["pointer"] == "/x/ui:widget"
    assert "colorpicker" in details["reason"]


def test_unknown_widget_refused_in_nested_ui() -> None:
    schema = obj({"a": obj({"b": {"type": "string"}})})
    details = definition_error(schema, {"a": {"b": {"ui:widget": "wysiwyg"}}})
    assert details["pointer"] == "/a/b/ui:widget"


@pytest.mark.parametrize(
    ("prop", "widget"),
    [
        ({"type": "string"}, "checkboxes"),
        ({"type": "string"}, "radio"),
        ({"type": "integer"}, "textarea"),
        ({"type": "array", "items": {"type": "string"}}, "checkboxes"),
    ],
)
def test_widget_must_fit_field(prop: dict[str, Any], widget: str) -> None:
    details = definition_error(obj({"x": prop}), {"x": {"ui:widget": widget}})
    assert details["pointer"] == "/x/ui:widget"


def test_ui_schema_unknown_field_refused() -> None:
    details = definition_error(obj({"x": {"type": "string"}}), {"y": {"ui:widget": "textarea"}})
    assert details["pointer"] == "/y"


@pytest.mark.parametrize(
    ("order", "pointer"),
    [
        (["x", "nope"], "/ui:order/1"),
        (["x", "x"], "/ui:order/1"),
        ("x", "/ui:order"),
        (["*", "*"], "/ui:order/1"),
    ],
)
def test_bad_ui_order_refused(order: Any, pointer: str) -> None:
    details = definition_error(obj({"x": {"type": "string"}}), {"ui:order": order})
    assert details["pointer"] == pointer


def test_bad_ui_option_types_refused() -> None:
    assert definition_error(obj({"x": {"type": "string"}}), {"x": {"ui:help": 3}})["pointer"] == "/x/ui:help"
    assert definition_error(obj({"x": {"type": "string"}}), {"x": {"ui:readonly": "y"}})["pointer"] == "/x/ui:readonly"


def test_check_does_not_mutate_inputs() -> None:
    schema = copy.deepcopy(TICKET)
    check_form_definition(schema, None, "f.json")
    assert schema == TICKET


# ----------------------------------------------------------------------------------------------
# resolve_form
# ----------------------------------------------------------------------------------------------

DYNAMIC = obj(
    {
        "fruit": {
            "type": "string",
            "title": "Fruit",
            "anyOf": ["options_from_task_data_var:fruits"],
            "default": "a",
        },
        "color": {"type": "string", "enum": "options_from_task_data_var:colors"},
        "many": {
            "type": "array",
            "items": {"type": "string", "oneOf": "options_from_task_data_var:colors"},
        },
    },
    required=["fruit"],
)


def test_resolve_dynamic_options_from_value_label_dicts() -> None:
    task_data = {"fruits": [{"value": "a", "label": "Apples"}, {"value": "o", "label": "Oranges"}]}
    schema, ui = resolve_form(DYNAMIC, None, task_data)
    fruit = schema["properties"]["fruit"]
    assert "anyOf" not in fruit
    assert fruit["oneOf"] == [{"const": "a", "title": "Apples"}, {"const": "o", "title": "Oranges"}]
    assert fruit["default"] == "a"
    assert fruit["title"] == "Fruit"
    assert ui == {}


def test_resolve_dynamic_options_from_strings_enum_and_items() -> None:
    schema, _ = resolve_form(DYNAMIC, {"ui:order": ["*"]}, {"colors": ["red", "blue", "red"]})
    color = schema["properties"]["color"]
    assert "enum" not in color
    assert color["oneOf"] == [{"const": "red", "title": "red"}, {"const": "blue", "title": "blue"}]
    assert schema["properties"]["many"]["items"]["oneOf"] == color["oneOf"]


@pytest.mark.parametrize("task_data", [{}, {"fruits": "apples"}, {"fruits": {"value": "a"}}, {"fruits": None}])
def test_resolve_missing_or_ill_typed_var_gives_empty_choices(task_data: dict[str, Any]) -> None:
    schema, _ = resolve_form(DYNAMIC, None, task_data)
    assert schema["properties"]["fruit"]["oneOf"] == []


def test_resolve_skips_bad_entries_and_defaults_label() -> None:
    task_data = {"fruits": [{"value": "a"}, {"label": "no value"}, ["x"], 7, {"value": "b", "label": "B"}]}
    schema, _ = resolve_form(DYNAMIC, None, task_data)
    assert schema["properties"]["fruit"]["oneOf"] == [
        {"const": "a", "title": "a"},
        {"const": 7, "title": "7"},
        {"const": "b", "title": "B"},
    ]


def test_resolve_returns_deep_copies() -> None:
    original = copy.deepcopy(DYNAMIC)
    ui = {"fruit": {"ui:widget": "radio"}}
    schema, ui_copy = resolve_form(DYNAMIC, ui, {"fruits": ["x"]})
    schema["properties"]["color"]["title"] = "changed"
    ui_copy["fruit"]["ui:widget"] = "select"
    assert original == DYNAMIC
    assert ui["fruit"]["ui:widget"] == "radio"


# ----------------------------------------------------------------------------------------------
# validate_submission: cleaning
# ----------------------------------------------------------------------------------------------


def test_valid_submission_returns_cleaned_data() -> None:
    data = {
        "title": "Printer broken",
        "priority": "high",
        "count": 3,
        "ratio": 0.5,
        "urgent": True,
        "code": "ABC",
        "contact": "jo@example.com",
        "due": "2024-02-29",
        "at": "2024-02-29T10:00:00+02:00",
        "tags": ["a", "b"],
        "impact": "h",
        "address": {"city": "Paris", "zip": "75001"},
    }
    assert validate_submission(TICKET, None, data, {}) == data


def test_unknown_fields_dropped_top_level_and_nested() -> None:
    data = {"title": "Hello", "evil": "x", "address": {"city": "Oslo", "admin": True}}
    cleaned = validate_submission(TICKET, None, data, {})
    assert "evil" not in cleaned
    assert cleaned["address"] == {"city": "Oslo", "zip": "0000"}


def test_defaults_applied_for_absent_optional_fields() -> None:
    cleaned = validate_submission(TICKET, None, {"title": "Hello"}, {})
    assert cleaned == {"title": "Hello", "priority": "medium"}


def test_defaults_not_applied_when_value_given() -> None:
    cleaned = validate_submission(TICKET, None, {"title": "Hello", "priority": "low"}, {})
    assert cleaned["priority"] == "low"


def test_default_value_is_a_copy() -> None:
    schema = obj({"tags": {"type": "array", "items": {"type": "string"}, "default": ["x"]}})
    cleaned = validate_submission(schema, None, {}, {})
    cleaned["tags"].append("y")
    assert schema["properties"]["tags"]["default"] == ["x"]


def test_none_counts_as_absent() -> None:
    cleaned = validate_submission(TICKET, None, {"title": "Hello", "priority": None, "notes": None}, {})
    assert cleaned == {"title": "Hello", "priority": "medium"}
    assert field_errors(TICKET, {"title": None}) == {"title": ["is required"]}


def test_read_only_value_comes_from_task_data() -> None:
    cleaned = validate_submission(TICKET, None, {"title": "Hello", "ticket_id": "FORGED"}, {"ticket_id": "T-1"})
    assert cleaned["ticket_id"] == "T-1"


def test_read_only_absent_from_task_data_is_dropped() -> None:
    cleaned = validate_submission(TICKET, None, {"title": "Hello", "ticket_id": "FORGED"}, {})
    assert "ticket_id" not in cleaned


def test_read_only_falls_back_to_default_and_is_not_validated() -> None:
    schema = obj(
        {
            "a": {"type": "string", "readOnly": True, "default": "d"},
            "b": {"type": "integer", "readOnly": True},
        },
        required=["a", "b"],
    )
    assert validate_submission(schema, None, {"a": "x"}, {}) == {"a": "d"}
    # a stored value that would not validate is kept: the user could not change it anyway
    assert validate_submission(schema, None, {"b": 5}, {"b": "legacy"}) == {"a": "d", "b": "legacy"}


def test_ui_readonly_and_disabled_are_enforced() -> None:
    schema = obj({"a": {"type": "string"}, "b": {"type": "string"}})
    ui = {"a": {"ui:readonly": True}, "b": {"ui:disabled": True}}
    cleaned = validate_submission(schema, ui, {"a": "forged", "b": "forged"}, {"a": "kept"})
    assert cleaned == {"a": "kept"}


def test_read_only_nested_object_and_nested_field() -> None:
    schema = obj(
        {
            "locked": obj({"x": {"type": "string"}}, readOnly=True),
            "open": obj({"y": {"type": "string"}, "z": {"type": "string", "readOnly": True}}),
        }
    )
    task_data = {"locked": {"x": "stored"}, "open": {"z": "stored-z"}}
    cleaned = validate_submission(schema, None, {"locked": {"x": "f"}, "open": {"y": "me", "z": "f"}}, task_data)
    assert cleaned == {"locked": {"x": "stored"}, "open": {"y": "me", "z": "stored-z"}}


def test_integer_valued_float_becomes_int() -> None:
    cleaned = validate_submission(TICKET, None, {"title": "Hello", "count": 4.0}, {})
    assert cleaned["count"] == 4 and isinstance(cleaned["count"], int)


def test_input_mapping_is_not_mutated() -> None:
    data = {"title": "Hello", "junk": 1, "address": {"city": "A", "junk": 2}}
    before = copy.deepcopy(data)
    validate_submission(TICKET, None, data, {})
    assert data == before


# ----------------------------------------------------------------------------------------------
# validate_submission: messages
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "title", "is required"),
        ({"title": "ab"}, "title", "must be at least 3 characters"),
        ({"title": "x" * 51}, "title", "must be at most 50 characters"),
        ({"title": 5}, "title", "must be text"),
        ({"priority": "urgent"}, "priority", "must be one of: high, medium, low"),
        ({"impact": "x"}, "impact", "must be one of: h, l"),
        ({"count": 0}, "count", "must be at least 1"),
        ({"count": 11}, "count", "must be at most 10"),
        ({"count": 1.5}, "count", "must be a whole number"),
        ({"count": "3"}, "count", "must be a whole number"),
        ({"count": True}, "count", "must be a whole number"),
        ({"ratio": 0}, "ratio", "must be greater than 0"),
        ({"ratio": 1}, "ratio", "must be less than 1"),
        ({"ratio": "0.5"}, "ratio", "must be a number"),
        ({"urgent": "yes"}, "urgent", "must be true or false"),
        ({"code": "abc"}, "code", "must match the pattern ^[A-Z]{3}$"),
        ({"contact": "not-an-email"}, "contact", "must be a valid email address"),
        ({"due": "31/12/2024"}, "due", "must be a date (YYYY-MM-DD)"),
        (
            {"at": "2024-01-01"},
            "at",
            "must be a date and time (YYYY-MM-DDThh:mm:ssZ or with an offset like +02:00)",
        ),
        ({"tags": []}, "tags", "must have at least 1 item"),
        ({"tags": ["a", "b", "c"]}, "tags", "must have at most 2 items"),
        ({"tags": ["a", "a"]}, "tags", "must not contain duplicates"),
        ({"tags": ["z"]}, "tags", "each item must be one of: a, b, c"),
        ({"tags": "a"}, "tags", "must be a list"),
        ({"address": {}}, "address.city", "is required"),
        ({"address": {"city": "x" * 11}}, "address.city", "must be at most 10 characters"),
        ({"address": "Paris"}, "address", "must be an object"),
    ],
)
def test_error_message_per_field(data: dict[str, Any], field: str, message: str) -> None:
    submission = {"title": "Hello", **data}
    if data == {}:
        submission = {}
    fields = field_errors(TICKET, submission)
    assert fields[field] == [message]


def test_one_message_per_broken_rule_and_several_fields() -> None:
    schema = obj(
        {
            "code": {"type": "string", "minLength": 5, "pattern": "^[0-9]+$"},
            "n": {"type": "integer"},
        }
    )
    fields = field_errors(schema, {"code": "ab", "n": "x"})
    assert fields == {
        "code": ["must be at least 5 characters", "must match the pattern ^[0-9]+$"],
        "n": ["must be a whole number"],
    }


def test_item_errors_reported_once_on_array_field() -> None:
    schema = obj({"nums": {"type": "array", "items": {"type": "integer", "maximum": 5}}})
    fields = field_errors(schema, {"nums": [6, 7, "x", 1]})
    assert fields == {"nums": ["each item must be at most 5", "each item must be a whole number"]}


def test_required_nested_object_absent_reports_inner_fields() -> None:
    schema = obj({"address": obj({"city": {"type": "string"}}, required=["city"])}, required=["address"])
    assert field_errors(schema, {}) == {"address.city": ["is required"]}


def test_optional_nested_object_absent_is_fine() -> None:
    assert validate_submission(TICKET, None, {"title": "Hello"}, {}) == {
        "title": "Hello",
        "priority": "medium",
    }


def test_non_mapping_submission() -> None:
    assert field_errors(TICKET, ["title"]) == {FORM_ERROR_KEY: ["must be an object"]}


def test_messages_do_not_leak_jsonschema_repr() -> None:
    fields = field_errors(TICKET, {"title": 5, "priority": "zzz", "tags": ["q"], "contact": "a@b"})
    for messages in fields.values():
        for message in messages:
            assert "is not valid under" not in message
            assert "'" not in message
            assert "is not of type" not in message


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2024-02-29", True),
        ("2023-02-29", False),
        ("2024-13-01", False),
        ("2024-1-01", False),
        ("20240101", False),
        ("2024-01-01T00:00:00Z", False),
    ],
)
def test_date_format(value: str, ok: bool) -> None:
    schema = obj({"d": {"type": "string", "format": "date"}})
    if ok:
        assert validate_submission(schema, None, {"d": value}, {}) == {"d": value}
    else:
        assert field_errors(schema, {"d": value}) == {"d": ["must be a date (YYYY-MM-DD)"]}


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2024-01-31T09:00:00Z", True),
        ("2024-01-31t09:00:00z", True),
        ("2024-01-31T09:00:00.123+05:30", True),
        ("2016-12-31T23:59:60Z", True),
        ("2024-01-31T09:00:00", False),
        ("2024-01-31 09:00:00Z", False),
        ("2024-02-30T09:00:00Z", False),
        ("2024-01-31T25:00:00Z", False),
        ("2024-01-31T09:00:00+24:00", False),
        ("2024-01-31", False),
    ],
)
def test_date_time_format(value: str, ok: bool) -> None:
    schema = obj({"t": {"type": "string", "format": "date-time"}})
    if ok:
        assert validate_submission(schema, None, {"t": value}, {}) == {"t": value}
    else:
        assert list(field_errors(schema, {"t": value})) == ["t"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("jo@example.com", True),
        ("jo.smith+tag@mail.example.co.uk", True),
        ("jo@@example.com", False),
        ("jo@ex@ample.com", False),
        ("jo example@example.com", False),
        ("@example.com", False),
        ("jo@", False),
        ("jo@localhost", False),
        ("jo@example..com", False),
    ],
)
def test_email_format(value: str, ok: bool) -> None:
    schema = obj({"e": {"type": "string", "format": "email"}})
    if ok:
        assert validate_submission(schema, None, {"e": value}, {}) == {"e": value}
    else:
        assert field_errors(schema, {"e": value}) == {"e": ["must be a valid email address"]}


def test_pattern_is_searched_not_anchored_like_json_schema() -> None:
    schema = obj({"p": {"type": "string", "pattern": "[0-9]"}})
    assert validate_submission(schema, None, {"p": "ab1"}, {}) == {"p": "ab1"}
    assert field_errors(schema, {"p": "abc"}) == {"p": ["must match the pattern [0-9]"]}


def test_a_pattern_matches_as_pythons_re_reads_it() -> None:
    """Patterns match with the regex package (for its timeout), which reads "{e<=1}" as fuzzy
    matching; a form's pattern means what re means by it: here a literal brace."""
    schema = obj({"p": {"type": "string", "pattern": "^a{e<=1}$"}})
    assert validate_submission(schema, None, {"p": "a{e<=1}"}, {}) == {"p": "a{e<=1}"}
    assert field_errors(schema, {"p": "b"}) == {"p": ["must match the pattern ^a{e<=1}$"]}


# ----------------------------------------------------------------------------------------------
# validate_submission: dynamic options
# ----------------------------------------------------------------------------------------------


def test_dynamic_options_validate_against_task_data() -> None:
    task_data = {
        "fruits": [{"value": "a", "label": "Apples"}, {"value": "o", "label": "Oranges"}],
        "colors": ["red"],
    }
    cleaned = validate_submission(DYNAMIC, None, {"fruit": "o", "color": "red", "many": ["red"]}, task_data)
    assert cleaned == {"fruit": "o", "color": "red", "many": ["red"]}
    assert field_errors(DYNAMIC, {"fruit": "x"}, task_data) == {"fruit": ["must be one of: a, o"]}
    assert field_errors(DYNAMIC, {"fruit": "a", "many": ["blue"]}, task_data) == {
        "many": ["each item must be one of: red"]
    }


def test_dynamic_options_missing_var_cannot_validate() -> None:
    assert field_errors(DYNAMIC, {"fruit": "a"}, {}) == {"fruit": ["has no available choices"]}
    # an optional field with no choices may still be left out
    assert validate_submission(DYNAMIC, None, {"fruit": "a"}, {"fruits": ["a"]}) == {"fruit": "a"}


def test_dynamic_options_with_numeric_values_in_web_form() -> None:
    schema = obj({"n": {"oneOf": "options_from_task_data_var:nums"}})
    task_data = {"nums": [{"value": 1, "label": "One"}, {"value": 2, "label": "Two"}]}
    assert validate_submission(schema, None, {"n": "2"}, task_data, coerce_strings=True) == {"n": 2}
    assert validate_submission(schema, None, {"n": 2}, task_data) == {"n": 2}
    assert field_errors(schema, {"n": "2"}, task_data) == {"n": ["must be one of: 1, 2"]}


# ----------------------------------------------------------------------------------------------
# validate_submission: web form coercion
# ----------------------------------------------------------------------------------------------


def test_coerce_integer_and_number() -> None:
    data = {"title": "Hello", "count": " 3 ", "ratio": "0.25"}
    cleaned = validate_submission(TICKET, None, data, {}, coerce_strings=True)
    assert cleaned["count"] == 3 and isinstance(cleaned["count"], int)
    assert cleaned["ratio"] == 0.25


def test_a_formatted_text_from_a_page_is_taken_without_the_spaces_around_it() -> None:
    """A user name, an address or a date pasted with a space around it means what it says; a
    page's plain text keeps its spaces, and the API's values are taken as sent (and refused so)."""
    schema = obj({"who": {"type": "string", "format": "username"}, "mail": {"type": "string", "format": "email"},
                  "day": {"type": "string", "format": "date"}, "note": {"type": "string"}})
    data = {"who": " mona ", "mail": "mona@example.test\t", "day": " 2026-05-01", "note": " as typed "}
    assert validate_submission(schema, None, data, {}, coerce_strings=True) == {
        "who": "mona", "mail": "mona@example.test", "day": "2026-05-01", "note": " as typed "}
    assert set(field_errors(schema, data)) == {"who", "mail", "day"}


@pytest.mark.parametrize("text", ["3.5", "abc", "1e3", "0x10", "nan"])
def test_coerce_integer_refuses_non_integers(text: str) -> None:
    fields = field_errors(TICKET, {"title": "Hello", "count": text}, coerce_strings=True)
    assert fields == {"count": ["must be a whole number"]}


@pytest.mark.parametrize("text", ["nan", "inf", "1,5", "--1"])
def test_coerce_number_refuses_non_numbers(text: str) -> None:
    schema = obj({"x": {"type": "number"}})
    assert field_errors(schema, {"x": text}, coerce_strings=True) == {"x": ["must be a number"]}


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("on", True), ("1", True), ("false", False), ("off", False)]
)
def test_coerce_boolean(text: str, value: bool) -> None:
    schema = obj({"b": {"type": "boolean"}})
    assert validate_submission(schema, None, {"b": text}, {}, coerce_strings=True) == {"b": value}


@pytest.mark.parametrize(("text", "value"), [
    ("2026-03-10 20:00", "2026-03-10T20:00:00Z"), ("2026-03-10T20:00", "2026-03-10T20:00:00Z"),
    (" 2026-03-10 20:00:30 ", "2026-03-10T20:00:30Z"), ("2026-03-10T20:00:00+02:00", "2026-03-10T20:00:00+02:00"),
    # the offset form the web's error message names (review: it said so, but only ...T20:00:00+02:00 passed)
    ("2026-03-10 20:00+02:00", "2026-03-10T20:00:00+02:00"), ("2026-03-10T20:00Z", "2026-03-10T20:00:00Z"),
])
def test_a_web_date_time_without_a_zone_is_read_as_utc(text: str, value: str) -> None:
    """QA: the web's date-time fields refused "2020-01-01T10:00" (what people type, and what a
    datetime-local input sends); the API still takes only RFC 3339 with a zone."""
    schema = obj({"at": {"type": "string", "format": "date-time"}})
    assert validate_submission(schema, None, {"at": text}, {}, coerce_strings=True) == {"at": value}
    if not text.strip().endswith(("+02:00", ":00Z")):
        assert field_errors(schema, {"at": text.strip()}) == {
            "at": ["must be a date and time (YYYY-MM-DDThh:mm:ssZ or with an offset like +02:00)"]}
    assert "at" in field_errors(schema, {"at": "2026-03-10 8pm"}, coerce_strings=True)


def test_coerce_boolean_refuses_other_text() -> None:
    schema = obj({"b": {"type": "boolean"}})
    assert field_errors(schema, {"b": "maybe"}, coerce_strings=True) == {"b": ["must be true or false"]}


def test_unchecked_checkbox_is_false_in_web_form_only() -> None:
    schema = obj({"b": {"type": "boolean", "default": True}, "r": {"type": "boolean"}})
    ui = {"r": {"ui:widget": "radio"}}
    assert validate_submission(schema, ui, {}, {}, coerce_strings=True) == {"b": False}
    assert validate_submission(schema, ui, {}, {}) == {"b": True}


def test_coerce_arrays() -> None:
    schema = obj(
        {
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "nums": {"type": "array", "items": {"type": "integer"}},
            "lines": {"type": "array", "items": {"type": "string"}},
        }
    )
    data = {"tags": "a", "nums": ["1", "", "2"], "lines": "one\n\n two \n"}
    cleaned = validate_submission(schema, None, data, {}, coerce_strings=True)
    assert cleaned == {"tags": ["a"], "nums": [1, 2], "lines": ["one", "two"]}


def test_absent_optional_checkboxes_is_empty_list_in_web_form() -> None:
    schema = obj({"tags": {"type": "array", "items": {"type": "string", "enum": ["a"]}, "default": ["a"]}})
    assert validate_submission(schema, None, {}, {}, coerce_strings=True) == {"tags": []}
    assert validate_submission(schema, None, {}, {}) == {"tags": ["a"]}
    schema["properties"]["tags"]["minItems"] = 1
    assert validate_submission(schema, None, {}, {}, coerce_strings=True) == {}


def test_no_coercion_for_json_callers() -> None:
    fields = field_errors(TICKET, {"title": "Hello", "count": "3", "urgent": "true", "tags": "a"})
    assert fields == {
        "count": ["must be a whole number"],
        "urgent": ["must be true or false"],
        "tags": ["must be a list"],
    }


def test_empty_string_counts_as_absent_in_web_form() -> None:
    data = {"title": "Hello", "notes": "", "contact": "", "priority": "", "count": ""}
    cleaned = validate_submission(TICKET, None, data, {}, coerce_strings=True)
    # tags has minItems 1, so "nothing checked" leaves it out rather than sending []
    assert cleaned == {"title": "Hello", "priority": "medium", "urgent": False}
    assert field_errors(TICKET, {"title": ""}, coerce_strings=True) == {"title": ["is required"]}


def test_empty_string_is_a_value_for_json_callers() -> None:
    assert field_errors(TICKET, {"title": "Hello", "contact": ""}) == {"contact": ["must be a valid email address"]}


def test_web_form_dotted_keys_and_single_item_lists() -> None:
    data = {"title": ["Hello"], "address.city": ["Rome"], "address.junk": "x", "count": ["7"]}
    cleaned = validate_submission(TICKET, None, data, {}, coerce_strings=True)
    assert cleaned["title"] == "Hello"
    assert cleaned["count"] == 7
    assert cleaned["address"] == {"city": "Rome", "zip": "0000"}


def test_web_form_blank_optional_nested_object_is_absent() -> None:
    cleaned = validate_submission(
        TICKET,
        None,
        {"title": "Hello", "address": {"city": "", "zip": ""}},
        {},
        coerce_strings=True,
    )
    assert "address" not in cleaned
    fields = field_errors(TICKET, {"title": "Hello", "address": {"city": "", "zip": "1"}}, coerce_strings=True)
    assert fields == {"address.city": ["is required"]}


# ----------------------------------------------------------------------------------------------
# form_fields
# ----------------------------------------------------------------------------------------------


def test_form_fields_schema_order_by_default() -> None:
    names = [f["name"] for f in form_fields(TICKET, None)]
    assert names == [
        "title", "priority", "count", "ratio", "urgent", "code", "contact", "due", "at", "notes",
        "tags", "impact", "address.city", "address.zip", "ticket_id",
    ]  # fmt: skip


def test_form_fields_ui_order_with_star() -> None:
    schema = obj({n: {"type": "string"} for n in ["a", "b", "c", "d"]})
    assert [f["name"] for f in form_fields(schema, {"ui:order": ["c", "*", "a"]})] == [
        "c",
        "b",
        "d",
        "a",
    ]
    assert [f["name"] for f in form_fields(schema, {"ui:order": ["*", "b"]})] == [
        "a",
        "c",
        "d",
        "b",
    ]
    assert [f["name"] for f in form_fields(schema, {"ui:order": ["d", "b"]})] == [
        "d",
        "b",
        "a",
        "c",
    ]


def test_form_fields_nested_order() -> None:
    ui = {"ui:order": ["address", "*"], "address": {"ui:order": ["zip", "city"]}}
    names = [f["name"] for f in form_fields(TICKET, ui)]
    assert names[:3] == ["address.zip", "address.city", "title"]


def test_form_fields_descriptors() -> None:
    ui = {
        "title": {
            "ui:help": "Short summary",
            "ui:placeholder": "e.g. printer",
            "ui:title": "Summary",
        },
        "priority": {"ui:widget": "radio"},
        "urgent": {"ui:widget": "radio"},
        "address": {"city": {"ui:readonly": True}},
    }
    fields = {f["name"]: f for f in form_fields(TICKET, ui)}
    title = fields["title"]
    assert title["title"] == "Summary"
    assert title["help"] == "Short summary"
    assert title["placeholder"] == "e.g. printer"
    assert title["required"] is True
    assert (title["minLength"], title["maxLength"], title["widget"], title["type"]) == (
        3,
        50,
        "text",
        "string",
    )
    assert fields["priority"]["widget"] == "radio"
    assert fields["priority"]["choices"] == [("high", "high"), ("medium", "medium"), ("low", "low")]
    assert fields["priority"]["default"] == "medium"
    assert fields["priority"]["required"] is False
    assert fields["impact"]["choices"] == [("h", "High"), ("l", "Low")]
    assert fields["impact"]["widget"] == "select"
    assert fields["urgent"]["choices"] == [(True, "Yes"), (False, "No")]
    assert fields["count"]["min"] == 1 and fields["count"]["max"] == 10 and fields["count"]["step"] == 1
    assert fields["ratio"]["exclusiveMinimum"] == 0 and fields["ratio"]["step"] == "any"
    assert fields["code"]["pattern"] == "^[A-Z]{3}$"
    assert fields["contact"]["widget"] == "email" and fields["contact"]["format"] == "email"
    assert fields["due"]["widget"] == "date"
    assert fields["at"]["widget"] == "datetime"
    assert fields["notes"]["description"] == "Anything else"
    tags = fields["tags"]
    assert tags["multiple"] is True and tags["widget"] == "checkboxes"
    assert tags["choices"] == [("a", "a"), ("b", "b"), ("c", "c")]
    assert (tags["minItems"], tags["maxItems"], tags["uniqueItems"]) == (1, 2, True)
    city = fields["address.city"]
    assert city["group"] == "address" and city["key"] == "city" and city["required"] is True
    assert city["readonly"] is True
    assert fields["address.zip"]["readonly"] is False
    assert fields["ticket_id"]["readonly"] is True
    assert fields["title"]["group"] == "" and fields["title"]["multiple"] is False


def test_form_fields_after_resolve_have_dynamic_choices() -> None:
    schema, ui = resolve_form(DYNAMIC, None, {"fruits": [{"value": "a", "label": "Apples"}]})
    fields = {f["name"]: f for f in form_fields(schema, ui)}
    assert fields["fruit"]["choices"] == [("a", "Apples")]
    assert fields["color"]["choices"] == []
    assert fields["many"]["widget"] == "checkboxes"


def test_form_fields_hidden_widget_kept() -> None:
    fields = form_fields(TICKET, {"ticket_id": {"ui:widget": "hidden"}})
    assert fields[-1]["name"] == "ticket_id" and fields[-1]["widget"] == "hidden"


# ----------------------------------------------------------------------------------------------
# render_instructions
# ----------------------------------------------------------------------------------------------

ERROR_CLASS = 'class="instructions-error"'


def test_render_markdown_and_variables() -> None:
    html = render_instructions(
        "Ticket **{{ title }}** for *{{ user.name }}*", {"title": "Printer", "user": {"name": "Jo"}}
    )
    assert "<strong>Printer</strong>" in html
    assert "<em>Jo</em>" in html
    assert html.startswith("<p>")


@pytest.mark.parametrize("template", [None, ""])
def test_render_empty(template: str | None) -> None:
    assert render_instructions(template, {"a": 1}) == ""


def test_render_lists_tables_and_safe_links() -> None:
    template = (
        "- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[docs](https://example.com/x) [mail](mailto:a@b.example)"
    )
    html = render_instructions(template, {})
    assert "<li>one</li>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert 'href="https://example.com/x"' in html
    assert 'href="mailto:a@b.example"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_script_in_task_data_is_escaped() -> None:
    html = render_instructions("Hello {{ name }}", {"name": "<script>alert(1)</script><img src=x onerror=alert(1)>"})
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_raw_html_in_template_removed() -> None:
    html = render_instructions(
        '<script>alert(1)</script>\n\n<div onclick="x()">hi</div>\n\n<style>p{}</style> **ok**', {}
    )
    assert "<script" not in html and "<div" not in html and "<style" not in html
    assert re.search(r"<[^>]*onclick", html) is None  # only as escaped text, never an attribute
    assert "&lt;div onclick" in html
    assert "<strong>ok</strong>" in html


@pytest.mark.parametrize(
    "template",
    [
        "[click](javascript:alert(1))",
        "<javascript:alert(1)>",
        "[x](JaVaScRiPt:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x]({{ url }})",
    ],
)
def test_javascript_links_removed(template: str) -> None:
    html = render_instructions(template, {"url": "javascript:alert(1)"})
    assert 'href="javascript' not in html.lower()
    assert 'href="data' not in html.lower()


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ title.__class__ }}",
        "{{ user.__dict__ }}",
        "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
        "{{ user.update({'a': 1}) }}",
        "{{ tags.append(1) }}",
        "{{ self._TemplateReference__context }}",
        "{{ tags.append }}",
    ],
)
def test_sandbox_escape_returns_error_notice(template: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.services.forms"):
        html = render_instructions(template, {"title": "t", "user": {"name": "Jo"}, "tags": []})
    assert ERROR_CLASS in html
    assert "class &#x27;" not in html and "<class" not in html and "subclasses" not in html
    assert "object" not in html.split(">", 1)[1]
    assert caplog.records, "the failure must be logged"


@pytest.mark.parametrize(
    "template",
    [
        "[{{ config }}]",
        "[{{ self }}]",
        "[{{ request }}]",
        "[{{ lipsum }}]",
        "[{{ range }}]",
        "[{{ a.b.c }}]",
        "[{{ none }}]",
    ],
)
def test_unknown_or_internal_names_render_empty(template: str) -> None:
    assert render_instructions(template, {"none": None}) == "<p>[]</p>\n"


def test_methods_and_callables_render_empty() -> None:
    assert render_instructions("[{{ user.items }}]", {"user": {"a": 1}}) == "<p>[]</p>\n"


def test_globals_are_not_callable() -> None:
    html = render_instructions("{{ range(10) }}", {})
    assert ERROR_CLASS in html


def test_safe_filters_available() -> None:
    html = render_instructions(
        "{{ name | upper }} {{ items | join(', ') }} {{ missing | default('n/a') }}",
        {"name": "jo", "items": ["a", "b"]},
    )
    assert html == "<p>JO a, b n/a</p>\n"


def test_unsafe_filters_not_available() -> None:
    assert ERROR_CLASS in render_instructions("{{ user | attr('items') }}", {"user": {}})
    assert ERROR_CLASS in render_instructions("{{ 'x' | center(999999999) }}", {})


def test_memory_bombs_refused() -> None:
    assert ERROR_CLASS in render_instructions("{{ 'a' * 100000000 }}", {})
    assert ERROR_CLASS in render_instructions("{{ 9 ** 999999999 }}", {})
    assert render_instructions("{{ 'ab' * 3 }}", {}) == "<p>ababab</p>\n"


def test_template_syntax_error_is_escaped_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.services.forms"):
        html = render_instructions("Hello {{ <b>x</b> ", {})
    assert html.startswith("<p " + ERROR_CLASS)
    assert "line 1" in html
    assert "<b>" not in html
    assert caplog.records


def test_runtime_error_is_notice() -> None:
    assert ERROR_CLASS in render_instructions("{{ 1 / 0 }}", {})
    assert ERROR_CLASS in render_instructions("{{ missing() }}", {})


def test_task_data_is_shown_as_text_never_as_markdown() -> None:
    """What a requester typed must not become a heading, a table or a link in an agent's
    instructions: only the template's own text is Markdown."""
    html = render_instructions("**{{ title }}**\n\n{{ body }}", {
        "title": "VPN *down*", "body": "# Urgent\n| a | b |\n|---|---|\n**hi** [x](http://evil.example/) "
                                        "[y](javascript:alert(1)) <b onmouseover=x>y</b>"})
    assert "<strong>VPN *down*</strong>" in html  # the template's bold, the value's stars as typed
    assert "# Urgent" in html and "**hi** [x](http://evil.example/)" in html
    assert "<h1>" not in html and "<table>" not in html and "<a " not in html and "<b " not in html


def test_the_authors_markdown_stays_markdown_through_macros_and_blocks() -> None:
    """What the template writes formats, through its macros and set blocks too; a printed value
    (a literal in {{ }} included) is text; conditions compare the data as stored."""
    html = render_instructions(
        "{% macro bold(x) %}**{{ x }}**{% endmacro %}{{ bold(title) }} {{ '_urgent_' if urgent }}\n\n"
        "{% set note %}**Note:** see [the guide](https://wiki.example/vpn){% endset %}{{ note }}\n\n"
        "{{ people | join(', ') }}{% if status == 'in_progress' %} (in progress){% endif %}",
        {"title": "VPN *down*", "urgent": True, "people": ["a_b", "c*d"], "status": "in_progress"})
    assert "<strong>VPN *down*</strong> _urgent_" in html
    assert '<strong>Note:</strong> see <a href="https://wiki.example/vpn" rel="noopener noreferrer nofollow">the guide</a>' in html
    assert "a_b, c*d (in progress)" in html


def test_include_and_import_are_not_possible() -> None:
    assert ERROR_CLASS in render_instructions("{% include '/etc/passwd' %}", {})
    assert ERROR_CLASS in render_instructions("{% import 'x' as y %}", {})


def test_boolean_choices_keep_the_forms_own_labels():
    from app.services.forms import form_fields

    schema = {"type": "object", "properties": {"approved": {"type": "boolean", "title": "Decision", "oneOf": [
        {"const": True, "title": "Approve"}, {"const": False, "title": "Reject"}]}, "plain": {"type": "boolean"}}}
    fields = {f["name"]: f for f in form_fields(schema, {"approved": {"ui:widget": "radio"}, "plain": {"ui:widget": "radio"}})}
    assert fields["approved"]["choices"] == [(True, "Approve"), (False, "Reject")]
    assert fields["plain"]["choices"] == [(True, "Yes"), (False, "No")]


# -- choices from the directory: options_from_group ----------------------------------------------------

PEOPLE_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["owner"],
    "properties": {
        "owner": {"type": "string", "title": "Owner", "oneOf": "options_from_group:Implementers"},
        "reviewers": {"type": "array", "title": "Reviewers", "items": "options_from_group:CAB"},
    },
}
DIRECTORY = {"Implementers": [("ivan", "Ivan Implementer"), ("isla", "isla")], "CAB": [("cab1", "Carl")]}


def directory(group: str) -> list[tuple[str, str]]:
    return DIRECTORY.get(group, [])


def test_group_choices_are_the_members_by_name_and_checked_on_submit():
    check_form_definition(PEOPLE_FORM, None, "people.json")  # a deployable form
    schema, _ui = resolve_form(PEOPLE_FORM, None, {}, directory)
    assert schema["properties"]["owner"]["oneOf"] == [{"const": "ivan", "title": "Ivan Implementer (ivan)"},
                                                      {"const": "isla", "title": "isla"}]
    assert schema["properties"]["reviewers"]["items"] == {"oneOf": [{"const": "cab1", "title": "Carl (cab1)"}]}
    assert PEOPLE_FORM["properties"]["owner"]["oneOf"] == "options_from_group:Implementers"  # input untouched
    assert validate_submission(PEOPLE_FORM, None, {"owner": "isla", "reviewers": ["cab1"]}, {}, members=directory) == {
        "owner": "isla", "reviewers": ["cab1"]}
    with pytest.raises(ValidationFailed) as info:
        validate_submission(PEOPLE_FORM, None, {"owner": "mallory", "reviewers": ["ivan"]}, {}, members=directory)
    fields = info.value.details["fields"]
    assert fields["owner"] == ["must be one of: ivan, isla"] and "reviewers" in fields


def test_group_choices_without_a_directory_or_members_offer_nobody(caplog):
    caplog.set_level(logging.WARNING, logger="app.services.forms")
    schema, _ui = resolve_form(PEOPLE_FORM, None, {})
    assert schema["properties"]["owner"]["oneOf"] == []
    assert "'Implementers' has no active members" in caplog.text
    schema, _ui = resolve_form(PEOPLE_FORM, None, {}, lambda group: [])
    assert schema["properties"]["owner"]["oneOf"] == []
    with pytest.raises(ValidationFailed) as info:
        validate_submission(PEOPLE_FORM, None, {"owner": "ivan"}, {}, members=lambda group: [])
    assert "owner" in info.value.details["fields"]


def test_an_empty_group_name_is_refused_at_deploy():
    bad = copy.deepcopy(PEOPLE_FORM)
    bad["properties"]["owner"]["oneOf"] = "options_from_group: "
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(bad, None, "people.json")
    assert "/properties/owner/oneOf" in str(info.value.details)


# -- choices from the directory: options_from_groups --------------------------------------------------

GROUPS_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["assignment_group"],
    "properties": {
        "assignment_group": {"type": "string", "title": "Assignment group", "default": "ServiceDesk",
                             "oneOf": "options_from_groups:with_agents"},
        "also": {"type": "array", "title": "Also tell", "items": ["options_from_groups:with_agents"]},
        "handover": {"type": "object", "title": "Handover", "properties": {
            "to": {"type": "string", "title": "To", "enum": "options_from_groups:with_agents"}}},
    },
}
AGENT_GROUPS = [("MessagingTeam", "E-mail and calendars"), ("ServiceDesk", None)]


def agent_groups(which: str) -> list[tuple[str, str | None]]:
    return AGENT_GROUPS if which == "with_agents" else []


def test_group_choices_are_the_groups_offered_with_their_descriptions():
    check_form_definition(GROUPS_FORM, {"assignment_group": {"ui:widget": "select"}}, "groups.json")
    schema, _ui = resolve_form(GROUPS_FORM, None, {}, None, agent_groups)
    offered = [{"const": "MessagingTeam", "title": "MessagingTeam – E-mail and calendars"},
               {"const": "ServiceDesk", "title": "ServiceDesk"}]
    assert schema["properties"]["assignment_group"] == {"type": "string", "title": "Assignment group",
                                                        "default": "ServiceDesk", "oneOf": offered}
    assert schema["properties"]["also"]["items"] == {"oneOf": offered}
    assert schema["properties"]["handover"]["properties"]["to"]["oneOf"] == offered
    assert GROUPS_FORM["properties"]["assignment_group"]["oneOf"] == "options_from_groups:with_agents"  # untouched
    fields = {f["name"]: f for f in form_fields(schema, None)}
    assert fields["assignment_group"]["choices"] == [("MessagingTeam", "MessagingTeam – E-mail and calendars"),
                                                     ("ServiceDesk", "ServiceDesk")]
    assert validate_submission(GROUPS_FORM, None, {"assignment_group": "MessagingTeam", "also": ["ServiceDesk"],
                                                   "handover": {"to": "ServiceDesk"}}, {}, groups=agent_groups) == {
        "assignment_group": "MessagingTeam", "also": ["ServiceDesk"], "handover": {"to": "ServiceDesk"}}
    # the default is kept when the field is left out (when the default is still offered)
    assert validate_submission({**GROUPS_FORM, "required": []}, None, {}, {}, groups=agent_groups)[
        "assignment_group"] == "ServiceDesk"


def test_a_group_not_offered_is_refused_with_what_it_is_not():
    with pytest.raises(ValidationFailed) as info:
        validate_submission(GROUPS_FORM, None, {"assignment_group": "NightShift", "also": ["CAB"],
                                                "handover": {"to": "CAB"}}, {}, groups=agent_groups)
    fields = info.value.details["fields"]
    said = fields["assignment_group"]
    assert said == ["NightShift is not a group with an active agent; must be one of: MessagingTeam, ServiceDesk"]
    assert (said[0].kind, said[0].parts["value"], said[0].parts["values"], said[0].parts["filter"]) == (
        "not_offered_group", "NightShift", ["MessagingTeam", "ServiceDesk"], "with_agents")
    assert said[0].parts["choices"] == ["MessagingTeam – E-mail and calendars", "ServiceDesk"]
    assert fields["handover.to"] == ["CAB is not a group with an active agent; must be one of: MessagingTeam, ServiceDesk"]
    assert fields["also"] == ["each item must be one of: MessagingTeam, ServiceDesk"]  # a list says it per item
    # no group offered at all (or no directory): still the field's own message, not an empty list
    with pytest.raises(ValidationFailed) as info:
        validate_submission(GROUPS_FORM, None, {"assignment_group": "ServiceDesk"}, {}, groups=lambda which: [])
    assert info.value.details["fields"] == {
        "assignment_group": ["ServiceDesk is not a group with an active agent; no group is offered now"]}
    # a value of another type is said as such, not as a group
    with pytest.raises(ValidationFailed) as info:
        validate_submission(GROUPS_FORM, None, {"assignment_group": 7}, {}, groups=agent_groups)
    assert all(m.startswith("must") for m in info.value.details["fields"]["assignment_group"])


def test_group_choices_without_a_directory_offer_none(caplog):
    caplog.set_level(logging.WARNING, logger="app.services.forms")
    schema, _ui = resolve_form(GROUPS_FORM, None, {}, directory)
    assert schema["properties"]["assignment_group"]["oneOf"] == []
    assert "options_from_groups:with_agents offer no group" in caplog.text


@pytest.mark.parametrize(("choices", "pointer", "reason"), [
    ("options_from_groups:everyone", "/properties/assignment_group/oneOf", "unknown group filter 'everyone'"),
    ("options_from_groups:", "/properties/assignment_group/oneOf", "names no group filter"),
    ("options_from_groups", "/properties/assignment_group/oneOf", "use options_from_groups:with_agents"),
    (["options_from_groups:With_Agents"], "/properties/assignment_group/oneOf", "unknown group filter 'With_Agents'"),
    ("options_from_grups:with_agents", "/properties/assignment_group/oneOf", "unknown dynamic options"),
    ("options_from_task_data_var: ", "/properties/assignment_group/oneOf", "names no task data variable"),
])
def test_a_malformed_group_source_is_refused_at_deploy_saying_what_is_wrong(choices: Any, pointer: str, reason: str):
    bad = copy.deepcopy(GROUPS_FORM)
    bad["properties"]["assignment_group"]["oneOf"] = choices
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(bad, None, "groups.json")
    assert info.value.details["pointer"] == pointer and reason in info.value.details["reason"], info.value.details


def test_group_sources_need_a_text_field_and_a_known_filter_in_items_too():
    bad = copy.deepcopy(GROUPS_FORM)
    bad["properties"]["assignment_group"]["type"] = "integer"
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(bad, None, "groups.json")
    assert info.value.details["pointer"] == "/properties/assignment_group/type"
    assert 'must be "string"' in info.value.details["reason"]
    bad = copy.deepcopy(GROUPS_FORM)
    bad["properties"]["also"]["items"] = "options_from_groups:all"
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(bad, None, "groups.json")
    assert info.value.details["pointer"] == "/properties/also/items"
    assert "unknown group filter 'all'" in info.value.details["reason"]


def test_a_form_message_is_text_for_the_api_and_keeps_its_parts_through_copy_and_pickle():
    import copy
    import json
    import pickle

    from app.services.forms import FormMessage

    message = FormMessage("must be at most 3 characters", "at_most_chars", count=3)
    assert json.dumps({"title": [message]}) == '{"title": ["must be at most 3 characters"]}'
    for kept in (copy.deepcopy(message), pickle.loads(pickle.dumps(message))):
        assert isinstance(kept, FormMessage) and kept == message
        assert (kept.kind, dict(kept.parts)) == ("at_most_chars", {"count": 3})
    assert type(str(message)) is str
