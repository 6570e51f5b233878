"""Task forms as HTML controls: every widget, values from task data, defaults or a failed post."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from app.services.forms import validate_submission
from app.web.forms import as_text, build_form

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tags", "when", "count"],
    "properties": {
        "tags": {"type": "array", "title": "Tags", "items": {"type": "string", "enum": ["a", "b", "c"]}, "uniqueItems": True},
        "picks": {"type": "array", "title": "Picks", "items": {"type": "integer", "enum": [1, 2, 3]}},
        "lines": {"type": "array", "title": "Lines", "items": {"type": "string"}},
        "when": {"type": "string", "format": "date", "title": "When"},
        "at": {"type": "string", "format": "date-time", "title": "At"},
        "count": {"type": "integer", "title": "Count", "minimum": 1, "maximum": 9},
        "ratio": {"type": "number", "title": "Ratio"},
        "secret": {"type": "string", "title": "Secret"},
        "ref": {"type": "string", "title": "Ref"},
        "mail": {"type": "string", "format": "email", "title": "Mail"},
        "agree": {"type": "boolean", "title": "Agree"},
        "risk": {"type": "string", "title": "Risk", "readOnly": True},
        "address": {"type": "object", "title": "Address", "required": ["city"],
                    "properties": {"city": {"type": "string", "title": "City"}, "zip": {"type": "string", "title": "ZIP"}}},
    },
}
UI: dict[str, Any] = {
    "tags": {"ui:widget": "checkboxes"},
    "picks": {"ui:widget": "select"},
    "secret": {"ui:widget": "password"},
    "ref": {"ui:widget": "hidden"},
    "ratio": {"ui:widget": "range"},
    "count": {"ui:help": "How many"},
}
DATA = {"tags": ["b"], "picks": [2, 3], "lines": ["one", "two"], "when": "2026-01-05", "count": 3, "ratio": 0.5,
        "secret": "hunter2", "ref": "R-1", "agree": True, "risk": "low", "address": {"city": "Lyon"}}


@pytest.fixture()
def ctx(app):
    with app.test_request_context("/"):
        yield


def by_name(form):
    return {f.name: f for f in form.fields}


def test_widgets_and_values_from_task_data(ctx):
    form = build_form(SCHEMA, UI, DATA)
    f = by_name(form)
    assert [(o.value, o.checked) for o in f["tags"].options] == [("a", False), ("b", True), ("c", False)]
    assert f["tags"].widget == "checkboxes" and f["tags"].anchor == "f-tags-0"
    assert f["picks"].multiple and [o.value for o in f["picks"].options if o.checked] == ["2", "3"]
    assert (f["lines"].widget, f["lines"].value) == ("textarea", "one\ntwo")
    assert (f["when"].input_type, f["when"].value) == ("date", "2026-01-05")
    assert f["at"].input_type == "text" and f["at"].attrs["placeholder"].startswith("YYYY")
    assert (f["count"].input_type, f["count"].attrs) == ("number", {"min": 1, "max": 9, "step": 1})
    assert f["count"].describedby == "f-count-help"
    assert (f["ratio"].input_type, f["ratio"].value) == ("range", "0.5")
    assert (f["secret"].input_type, f["secret"].value) == ("password", "")  # never echoed back
    assert (f["ref"].input_type, f["ref"].value) == ("hidden", "R-1")
    assert f["mail"].input_type == "email"
    assert (f["agree"].widget, f["agree"].value) == ("checkbox", "true")
    assert f["risk"].readonly and f["risk"].value == "low"
    assert [s.title for s in form.sections] == [None, "Address"]
    assert f["address.city"].id == "f-address-city" and f["address.city"].value == "Lyon"


def test_what_the_controls_hold_is_what_validation_reads_back(ctx):
    form = build_form(SCHEMA, UI, DATA)
    posted: MultiDict[str, str] = MultiDict()
    for f in form.fields:
        if f.readonly:
            continue  # disabled or read-only controls: the service keeps the stored value
        if f.widget in ("checkboxes", "select") and f.multiple:
            for o in f.options:
                if o.checked:
                    posted.add(f.name, o.value)
        elif f.widget == "checkbox":
            if f.value == "true":
                posted.add(f.name, "true")
        elif f.widget != "password":
            posted.add(f.name, f.value)
    # as the task view passes a post on: one value as text, several as a list
    data = {k: v[0] if len(v) == 1 else v for k, v in posted.to_dict(flat=False).items()}
    clean = validate_submission(SCHEMA, UI, data, DATA, coerce_strings=True)
    expected = {k: v for k, v in DATA.items() if k != "secret"}
    assert {k: clean[k] for k in expected} == expected


def test_a_failed_post_keeps_what_was_typed_and_places_each_error(ctx):
    posted = MultiDict([("when", "05/01/2026"), ("count", "many"), ("tags", "a"), ("tags", "c"), ("lines", "x\ny"),
                        ("risk", "tampered"), ("address.zip", "69001")])
    errors = {"when": ["must be a date (YYYY-MM-DD)"], "count": ["must be a whole number"],
              "address.city": ["is required"], "_form": ["must be an object"], "ghost": ["is invalid"]}
    form = build_form(SCHEMA, UI, DATA, posted, errors)
    f = by_name(form)
    assert (f["when"].value, f["when"].errors) == ("05/01/2026", ["must be a date (YYYY-MM-DD)"])
    assert f["count"].value == "many" and f["count"].describedby == "f-count-help f-count-error"
    assert [o.value for o in f["tags"].options if o.checked] == ["a", "c"]
    assert f["lines"].value == "x\ny"
    assert f["risk"].value == "low"  # read-only: the stored value, never the posted one
    assert f["address.zip"].value == "69001" and f["address.city"].errors == ["is required"]
    assert f["agree"].value == ""  # an unchecked box posts nothing
    assert form.errors == ["must be an object", "ghost: is invalid"] and form.has_errors


def test_defaults_fill_empty_fields(ctx):
    schema = {"type": "object", "properties": {"group": {"type": "string", "default": "ServiceDesk", "enum": ["ServiceDesk", "Other"]}}}
    f = by_name(build_form(schema, None, {}))
    assert [o.value for o in f["group"].options if o.checked] == ["ServiceDesk"]


@pytest.mark.parametrize(("stored", "shown"), [
    ("2026-12-05T10:00:00Z", "2026-12-05 10:00"),
    ("2026-12-07T15:08:28.700286+00:00", "2026-12-07 15:08:28"),
    ("2026-12-07T17:30:00+02:00", "2026-12-07 15:30"),  # in UTC, as the placeholder says
    ("2026-12-07T17:30:00", "2026-12-07T17:30:00"),  # no zone: not an instant the desk stored
    ("next week", "next week"),
])
def test_a_stored_date_time_is_shown_as_its_field_is_typed(ctx, stored, shown):
    """The placeholder says "YYYY-MM-DD hh:mm (UTC)"; the field held "2026-12-05T10:00:00Z"."""
    f = by_name(build_form(SCHEMA, UI, {**DATA, "at": stored}))
    assert f["at"].value == shown
    if shown != stored:  # and what it holds reads back as the same instant
        sent = validate_submission(SCHEMA, UI, {**DATA, "at": shown}, {}, coerce_strings=True)
        assert sent["at"].replace("Z", "+00:00")[:19] == _utc(stored)[:19]
    typed = by_name(build_form(SCHEMA, UI, DATA, MultiDict([("at", "2026-12-05T10:00:00Z")]), {}))
    assert typed["at"].value == "2026-12-05T10:00:00Z"  # what was typed comes back as typed


def _utc(text: str) -> str:
    from datetime import datetime, timezone

    return datetime.fromisoformat(text).astimezone(timezone.utc).isoformat()


def test_values_are_written_as_validation_reads_them():
    assert [as_text(v) for v in (None, True, False, 3, 2.0, 2.5, "x")] == ["", "true", "false", "3", "2", "2.5", "x"]


def test_a_task_without_a_form_has_no_fields(ctx):
    form = build_form(None, None, {})
    assert form.fields == [] and not form.has_errors


CONDITIONAL: dict[str, Any] = {
    "type": "object",
    "required": ["outcome"],
    "allOf": [{"if": {"properties": {"outcome": {"const": "resolve"}}, "required": ["outcome"]},
               "then": {"required": ["notes"]}},
              {"if": {"properties": {"urgent": {"const": True}}, "required": ["urgent"]},
               "then": {"required": ["phone"]}}],
    "properties": {
        "outcome": {"type": "string", "title": "Outcome",
                    "oneOf": [{"const": "resolve", "title": "Resolved"}, {"const": "pending", "title": "Pending"}]},
        "notes": {"type": "string", "title": "Notes"},
        "urgent": {"type": "boolean", "title": "Urgent"},
        "phone": {"type": "string", "title": "Phone"},
    },
}


@pytest.mark.parametrize("widget", ["select", "radio"])
def test_a_conditionally_required_field_shows_its_mark_for_the_answers_given(ctx, widget):
    ui = {"outcome": {"ui:widget": widget}}
    f = by_name(build_form(CONDITIONAL, ui, {"outcome": "pending"}))
    assert f["notes"].conditional and not f["notes"].required and not f["phone"].required
    assert json.loads(f["notes"].required_when_json) == [
        {"negate": False, "tests": [{"field": "outcome", "values": ["resolve"], "needed": True}]}]
    assert json.loads(f["phone"].required_when_json)[0]["tests"][0]["values"] == ["true"]  # as the checkbox posts it
    f = by_name(build_form(CONDITIONAL, ui, {"outcome": "resolve", "urgent": True}))
    assert f["notes"].required and f["phone"].required
    # A failed post: what was chosen in it decides, not the stored data.
    f = by_name(build_form(CONDITIONAL, ui, {"outcome": "resolve"}, MultiDict([("outcome", "pending")]), {}))
    assert not f["notes"].required
    assert not by_name(build_form(CONDITIONAL, ui, {}))["notes"].required  # nothing chosen yet
    assert not f["outcome"].conditional and not f["outcome"].required_when


def test_the_page_carries_the_conditions_and_the_script_only_when_needed(app, ctx):
    from flask import render_template_string

    page = "{% from '_form.html' import generated_form with context %}{{ generated_form(form, '/x', 'Go') }}"
    html = render_template_string(page, form=build_form(CONDITIONAL, None, {"outcome": "pending"}))
    assert html.count("data-required-when=") == 2 and "js/forms.js" in html
    assert '<span class="required-when" hidden>' in html
    html = render_template_string(page, form=build_form(CONDITIONAL, None, {"outcome": "resolve"}))
    assert '<span class="required-when">' in html
    html = render_template_string(page, form=build_form(SCHEMA, UI, DATA))
    assert "data-required-when" not in html and "js/forms.js" not in html


def refusal(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, list[str]]:
    """The field messages validate_submission gives for ``data``."""
    from app.errors import ValidationFailed
    from app.services.forms import validate_submission

    with pytest.raises(ValidationFailed) as refused:
        validate_submission(schema, None, data, {})
    return refused.value.details["fields"]


def test_the_reason_of_a_conditional_error_keeps_the_forms_words_in_a_translated_page(app):
    from app.web.forms import service_text

    when = refusal(CONDITIONAL, {"outcome": "resolve"})["notes"][0]
    assert when == "is required when “Outcome” is Resolved"  # what the API answers
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert service_text(when) == "在以下情况下为必填项： “Outcome”为Resolved"  # no content translation here
        assert service_text(str(when)) == "is required when “Outcome” is Resolved"  # text alone: said as written
    with app.test_request_context("/"):
        assert service_text(when) == "is required when “Outcome” is Resolved"


LIMITS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "title": "Code", "minLength": 1, "maxLength": 3, "pattern": "^[A-Z]+$"},
        "summary": {"type": "string", "title": "Summary", "minLength": 5},
        "count": {"type": "integer", "title": "Count", "minimum": 2, "maximum": 9},
        "ratio": {"type": "number", "title": "Ratio", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "tags": {"type": "array", "title": "Tags", "items": {"type": "string", "maxLength": 2}, "minItems": 1,
                 "maxItems": 2},
        "size": {"type": "string", "title": "Size", "oneOf": [{"const": "s", "title": "Small"},
                                                               {"const": "l", "title": "Large"}]},
        "start": {"type": "string", "title": "Planned start", "format": "date"},
        "end": {"type": "string", "title": "Planned end", "format": "date", "formatMinimum": {"$data": "1/start"}},
        "after": {"type": "string", "title": "After", "format": "date", "formatExclusiveMinimum": "2026-01-01"},
    },
}


def test_errors_with_values_keep_english_for_the_api_and_are_said_in_chinese_on_the_page(app):
    from app.web.forms import service_text

    short = refusal(LIMITS, {"summary": "ab", "code": "abcd", "count": 1, "ratio": 1, "tags": ["a", "b", "cde"],
                             "size": "m", "start": "2026-05-02", "end": "2026-05-01", "after": "2026-01-01"})
    plural = refusal(LIMITS, {"count": 10, "ratio": 0, "tags": []})
    english = {name: [str(m) for m in messages] for name, messages in {**short, **plural}.items()}
    assert short["summary"] == ["must be at least 5 characters"] and short["code"][0] == "must be at most 3 characters"
    assert short["code"][1] == "must match the pattern ^[A-Z]+$"
    assert short["count"] == ["must be at least 2"] and plural["count"] == ["must be at most 9"]
    assert short["ratio"] == ["must be less than 1"] and plural["ratio"] == ["must be greater than 0"]
    assert set(short["tags"]) == {"must have at most 2 items", "each item must be at most 2 characters"}
    assert plural["tags"] == ["must have at least 1 item"]
    assert short["size"] == ["must be one of: s, l"]  # the API names the values a client sends
    assert short["end"] == ["must not be before Planned start"] and short["after"] == ["must be after 2026-01-01"]
    with app.test_request_context("/"):
        # an English page says what the API says, but for choices: a person picks titles from a list
        assert {name: [service_text(m) for m in messages] for name, messages in {**short, **plural}.items()} == \
            {**english, "size": ["must be one of: Small, Large"],
             "code": ["must be at most 3 characters", "must match the expected format"]}  # no regex on a page
    words = {"Planned start": "计划开始", "Small": "小", "Large": "大"}
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        said = {name: [service_text(m, lambda source: words.get(source, source)) for m in messages]
                for name, messages in short.items()}
        assert said["summary"] == ["至少需要 5 个字符"] and said["code"] == ["最多 3 个字符", "必须符合要求的格式"]
        assert said["count"] == ["不能小于 2"] and said["ratio"] == ["必须小于 1"]
        assert set(said["tags"]) == {"最多 2 项", "每一项最多 2 个字符"}
        assert said["size"] == ["必须是以下之一：小、大"]
        assert said["end"] == ["不能早于“计划开始”"] and said["after"] == ["必须晚于 2026-01-01"]
        assert [service_text(m) for m in plural["tags"]] == ["至少需要 1 项"]

def test_a_date_time_error_names_what_the_page_takes(app):
    """The API's message names RFC 3339; a page also takes "YYYY-MM-DD hh:mm" as UTC, and says so."""
    from app.web.forms import service_text

    schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}
    [message] = refusal(schema, {"at": "2026-03-10 25:00"})["at"]
    assert message == "must be a date and time (YYYY-MM-DDThh:mm:ssZ or with an offset like +02:00)"
    with app.test_request_context("/"):
        assert service_text(message) == "must be a date and time: YYYY-MM-DD hh:mm (UTC), or with an offset like +02:00"
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert service_text(message) == "必须是日期和时间：YYYY-MM-DD hh:mm（UTC），或带时区偏移，如 +02:00"


def test_a_time_bound_is_said_as_the_pages_date_time_fields_are_typed(app):
    """"must not be before 2026-11-29T21:14:48Z" stood next to a field whose hint is
    "YYYY-MM-DD hh:mm (UTC)"; the API keeps the ISO instant."""
    from app.services.forms import FormMessage
    from app.web.forms import service_text

    bound = FormMessage("must not be before 2026-11-29T21:14:48Z", "not_before", value="2026-11-29T21:14:48Z")
    whole = FormMessage("must be after 2026-11-29T21:14:00Z", "after", value="2026-11-29T21:14:00Z")
    day = FormMessage("must be after 2026-01-01", "after", value="2026-01-01")
    with app.test_request_context("/"):
        assert service_text(bound) == "must not be before 2026-11-29 21:14:48 UTC"
        assert service_text(whole) == "must be after 2026-11-29 21:14 UTC"
        assert service_text(day) == "must be after 2026-01-01"
    assert str(bound) == "must not be before 2026-11-29T21:14:48Z"
