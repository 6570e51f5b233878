"""Form submissions that could mislead whoever reads them, or tell the submitter more than they may know.

* Bidirectional formatting controls (U+202A-U+202E, U+2066-U+2069) are refused in every text of
  every form, naming the field: they make "invoice" + RLO + "fdp.exe" read as a PDF ("Trojan
  Source"). The implicit marks (LRM, RLM, ALM) and right-to-left text stay accepted.
* ``{"$now": "PT5M"}``: a date-time bound relative to the moment of the submission; the shipped
  change-implement form uses it so an implementation cannot have ended next week.
* ``"format": "username"`` asks only about people the requester may name (CatalogService), and the
  answer is the same whether the user is missing or beyond that.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services import forms
from app.services.forms import FormMessage, check_form_definition, validate_start_data, validate_submission
from tests.http.desk import Desk

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "forms"
NOW = dt.datetime(2026, 3, 11, 22, 0, tzinfo=dt.timezone.utc)
RLO = "\u202e"
#: LRE, RLE, PDF, LRO, RLO and LRI, RLI, FSI, PDI
CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]

TEXTS: dict[str, Any] = {"type": "object", "properties": {
    "title": {"type": "string", "title": "Title", "maxLength": 200},
    "tags": {"type": "array", "title": "Tags", "items": {"type": "string"}},
    "address": {"type": "object", "title": "Address", "properties": {"city": {"type": "string", "title": "City"}}},
    "stored": {"type": "string", "title": "Stored", "readOnly": True},
}}


def refused(schema: dict[str, Any], data: dict[str, Any], task_data: dict[str, Any] | None = None,
            **kwargs: Any) -> dict[str, list[Any]]:
    with pytest.raises(ValidationFailed) as info:
        validate_submission(schema, None, data, task_data or {}, **kwargs)
    return info.value.details["fields"]  # type: ignore[no-any-return]


def bidi_said(code: str) -> str:
    return f"must not contain bidirectional control characters ({code})"


# -- bidirectional controls ----------------------------------------------------------------------


@pytest.mark.parametrize("char", CONTROLS)
@pytest.mark.parametrize("web", [False, True])
def test_each_bidi_control_is_refused_naming_the_field(char, web):
    code = f"U+{ord(char):04X}"
    fields = refused(TEXTS, {"title": f"invoice{char}fdp.exe"}, coerce_strings=web)
    assert fields == {"title": [bidi_said(code)]}
    message = fields["title"][0]
    assert isinstance(message, FormMessage) and message.kind == "bidi_control" and message.parts == {"characters": code}


def test_the_controls_are_the_embeddings_overrides_and_isolates():
    assert forms.BIDI_CONTROLS == set(CONTROLS)


def test_text_inside_lists_and_nested_objects_is_checked_too():
    fields = refused(TEXTS, {"tags": ["ok", f"a{RLO}b", "\u2067x\u2069"], "address": {"city": f"{RLO}siraP"}})
    assert fields["address.city"] == [bidi_said("U+202E")]
    tags = fields["tags"][0]
    assert tags == "each item " + bidi_said("U+202E, U+2067, U+2069")
    assert tags.kind == "each_item" and tags.parts["item"].kind == "bidi_control"
    # an HTML post: dotted names, a list as lines of a textarea
    web = refused(TEXTS, {"address.city": f"{RLO}siraP", "tags": f"ok\nb{RLO}"}, coerce_strings=True)
    assert set(web) == {"address.city", "tags"}


def test_a_wrongly_typed_value_holding_controls_is_refused_for_both():
    fields = refused(TEXTS, {"title": ["x", {"k": f"{RLO}"}]})
    assert fields["title"] == ["must be text", bidi_said("U+202E")]


def test_right_to_left_text_and_the_implicit_marks_are_accepted():
    data = {"title": "שלום עולם \u200f(v2)\u200e — مرحبا\u061c 2026",
            "tags": ["עברית", "العربية"], "address": {"city": "القاهرة"}}
    assert validate_submission(TEXTS, None, data, {}) == data


def test_a_read_only_field_keeps_what_is_stored_unchecked():
    # what is stored is not the user's to fix: neither refused nor replaced by the post
    clean = validate_submission(TEXTS, None, {"stored": "new", "title": "t"}, {"stored": f"old{RLO}"})
    assert clean["stored"] == f"old{RLO}"


def test_start_data_is_checked_too():
    with pytest.raises(ValidationFailed) as info:
        validate_start_data(TEXTS, None, {"title": f"a{RLO}", "tags": f"x, y{RLO}"})
    assert set(info.value.details["fields"]) == {"title", "tags"}


def test_the_message_helper_for_other_free_text():
    assert forms.bidi_control_message("plain, עברית\u200f") is None
    assert forms.bidi_control_message({"a": ["b", "\u2068c"]}) == bidi_said("U+2068")
    assert forms.bidi_control_message(f"{RLO}{RLO}\u202a") == bidi_said("U+202E, U+202A")


def _string_fields(node: dict[str, Any], prefix: str = "") -> list[tuple[str, bool]]:
    """``(dotted name, is a list)`` of every editable text field of a form."""
    found: list[tuple[str, bool]] = []
    for name, sub in (node.get("properties") or {}).items():
        if sub.get("readOnly"):
            continue
        if sub.get("type") == "object":
            found.extend(_string_fields(sub, f"{prefix}{name}."))
        elif sub.get("type") == "string" or (sub.get("type") is None and "enum" not in sub):
            found.append((f"{prefix}{name}", False))
        elif sub.get("type") == "array" and (sub.get("items") or {}).get("type") == "string":
            found.append((f"{prefix}{name}", True))
    return found


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    *parents, leaf = dotted.split(".")
    data: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        data = {part: data}
    return data


SHIPPED = sorted(p.name for p in FORMS.glob("*.json") if not p.name.endswith(".ui.json"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_text_field_of_every_shipped_form_refuses_the_controls(name):
    schema = json.loads((FORMS / name).read_text())
    ui_path = FORMS / name.replace(".json", ".ui.json")
    ui = json.loads(ui_path.read_text()) if ui_path.exists() else None
    fields = _string_fields(schema)
    if not fields:
        pytest.skip(f"{name} has no text field")
    for dotted, is_list in fields:
        value = [f"x{RLO}y"] if is_list else f"x{RLO}y"
        with pytest.raises(ValidationFailed) as info:
            validate_submission(schema, ui, _nest(dotted, value), {})
        said = info.value.details["fields"].get(dotted, [])
        expected = ("each item " if is_list else "") + bidi_said("U+202E")
        assert expected in said, (name, dotted, said)


# -- "$now": times that already happened -----------------------------------------------------------

IMPLEMENT = json.loads((FORMS / "change-implement.json").read_text())
DONE = {"implementation_notes": "Patched the gateway.", "actual_start": "2026-03-11T20:05:00Z",
        "actual_end": "2026-03-11T21:10:00Z"}


def test_the_shipped_implement_form_deploys():
    ui = json.loads((FORMS / "change-implement.ui.json").read_text())
    check_form_definition(IMPLEMENT, ui, "change-implement.json")


@pytest.mark.parametrize(("changes", "refused_fields"), [
    ({"actual_end": "2026-03-18T21:10:00Z"}, {"actual_end"}),
    ({"actual_start": "2026-03-18T20:05:00Z", "actual_end": "2026-03-18T21:10:00Z"}, {"actual_start", "actual_end"}),
])
def test_an_actual_time_cannot_be_in_the_future(changes, refused_fields):
    fields = refused(IMPLEMENT, {**DONE, **changes}, now=NOW)
    assert fields == {field: ["cannot be in the future"] for field in refused_fields}
    for field in refused_fields:
        message = fields[field][0]
        assert message.kind == "in_future" and message.parts == {"value": "2026-03-11T22:05:00Z"}


def test_five_minutes_of_clock_skew_and_any_time_zone_are_taken():
    assert validate_submission(IMPLEMENT, None, {**DONE, "actual_end": "2026-03-11T22:05:00Z"}, {}, now=NOW)
    assert validate_submission(IMPLEMENT, None, {**DONE, "actual_end": "2026-03-12T00:05:00+02:00"}, {}, now=NOW)
    fields = refused(IMPLEMENT, {**DONE, "actual_end": "2026-03-12T00:05:01+02:00"}, now=NOW)
    assert fields == {"actual_end": ["cannot be in the future"]}


def test_a_naive_now_is_utc_and_without_now_the_bound_is_not_checked():
    naive = NOW.replace(tzinfo=None)
    assert set(refused(IMPLEMENT, {**DONE, "actual_end": "2026-03-11T22:06:00Z"}, now=naive)) == {"actual_end"}
    assert validate_submission(IMPLEMENT, None, {**DONE, "actual_end": "2030-01-01T00:00:00Z"}, {})


def test_a_time_already_wrong_is_reported_once():
    fields = refused(IMPLEMENT, {**DONE, "actual_end": "next week"}, now=NOW)
    assert fields == {"actual_end": ["must be a date and time (YYYY-MM-DDThh:mm:ssZ or with an offset like +02:00)"]}


def test_other_now_bounds_name_the_instant():
    form = {"type": "object", "properties": {
        "seen": {"type": "string", "format": "date-time", "formatMinimum": {"$now": "-P1DT12H"}},
        "due": {"type": "string", "format": "date-time", "formatExclusiveMaximum": {"$now": "P7D"}},
        "was": {"type": "string", "format": "date-time", "formatExclusiveMaximum": {"$now": "PT0S"}}}}
    check_form_definition(form, None, "f.json")
    fields = refused(form, {"seen": "2026-03-10T09:59:59Z", "due": "2026-03-18T22:00:00Z",
                            "was": "2026-03-11T22:00:00Z"}, now=NOW)
    assert fields == {"seen": ["must not be before 2026-03-10T10:00:00Z"], "due": ["must be before 2026-03-18T22:00:00Z"],
                      "was": ["cannot be in the future"]}
    assert validate_submission(form, None, {"seen": "2026-03-10T10:00:00Z", "due": "2026-03-18T21:59:59Z",
                                            "was": "2026-03-11T21:59:59Z"}, {}, now=NOW)


def test_today_follows_now_when_not_given():
    form = {"type": "object", "properties": {"day": {"type": "string", "format": "date",
                                                     "formatMaximum": {"$today": "P0D"}}}}
    assert refused(form, {"day": "2026-03-12"}, now=NOW) == {"day": ["must not be after 2026-03-11"]}


@pytest.mark.parametrize(("node", "reason"), [
    ({"format": "date", "formatMaximum": {"$now": "PT5M"}}, "needs a field with format date-time"),
    ({"format": "date-time", "formatMaximum": {"$now": "5M"}}, "ISO 8601 duration"),
    ({"format": "date-time", "formatMaximum": {"$now": "PT"}}, "ISO 8601 duration"),
    ({"format": "date-time", "formatMaximum": {"$now": "P1DT"}}, "ISO 8601 duration"),
    ({"format": "date-time", "formatMaximum": {"$now": "P1Y"}}, "ISO 8601 duration"),
    ({"format": "date-time", "formatMaximum": {"$now": 5}}, "ISO 8601 duration"),
    ({"format": "date-time", "formatMaximum": {"$now": "PT5M", "$data": "1/x"}}, "ISO 8601 duration"),
    ({"format": "date-time", "formatMaximum": {"$today": "P0D"}}, "needs a field with format date"),
])
def test_a_now_bound_is_checked_at_deploy(node, reason):
    form = {"type": "object", "properties": {"at": {"type": "string", **node}}}
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(form, None, "f.json")
    assert reason in info.value.details["reason"] and info.value.details["pointer"] == "/properties/at/formatMaximum"


# -- who a requester may name ----------------------------------------------------------------------

VPN = {"profile": "employee", "justification": "Working from home on Fridays."}


@pytest.fixture()
def people(client, services) -> Desk:
    desk = Desk(client, services)
    users = services.users
    users.create_user("rina", "password-1234", roles=["requester"], groups=["Requesters"])
    users.create_user("zed", "password-1234", roles=["requester"], groups=["Finance"])
    users.create_user("gone", "password-1234", roles=["requester"], groups=["Requesters"])
    users.get_by_username("gone").active = False
    users.set_manager("zed", "mona")
    services.session.flush()
    return desk


def ask(services: Any, who: str, for_user: str) -> dict[str, Any]:
    item = services.catalog.get_item("NET-VPN")
    requester = services.users.get_by_username(who)
    return services.catalog.validate_request(item, {**VPN, "for_user": for_user}, requester=requester)  # type: ignore[no-any-return]


def refusal(services: Any, who: str, for_user: str) -> FormMessage:
    with pytest.raises(ValidationFailed) as info:
        ask(services, who, for_user)
    fields = info.value.details["fields"]
    assert list(fields) == ["for_user"]
    return fields["for_user"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("who", "for_user"), [
    ("rita", "rita"),   # themselves
    ("rita", "rina"),   # a member of one of their groups
    ("mona", "rita"),   # someone they are the line manager of
    ("mona", "zed"),
    ("alex", "zed"),    # desk staff work for everyone
    ("olga", "rina"),
    ("rita", "RITA"),   # user names ignore letter case, as at sign-in (QA: "RITA" was refused)
    ("rita", "Rina"),
    ("alex", "ZED"),
])
def test_a_requester_names_people_they_know_of(people, services, who, for_user):
    assert ask(services, who, for_user)["for_user"] == for_user


@pytest.mark.parametrize(("who", "for_user"), [
    ("rita", "nobody"),  # does not exist
    ("rita", "zed"),     # exists, in no group of hers
    ("rita", "mona"),    # her manager: not someone she manages
    ("rita", "gone"),    # inactive, though in her group
    ("alex", "nobody"),
    ("alex", "gone"),
    ("rita", "ZED"),     # in any letter case
])
def test_anyone_else_gets_the_same_answer_as_nobody(people, services, who, for_user):
    message = refusal(services, who, for_user)
    assert message == f"{for_user} is not a user you can name here"
    assert message.kind == "unknown_user" and message.parts == {"value": for_user}


def test_an_existing_and_a_missing_user_cannot_be_told_apart(people, services):
    existing, missing = refusal(services, "rita", "zed"), refusal(services, "rita", "zee")
    assert (existing.kind, str(existing).replace("zed", "?")) == (missing.kind, str(missing).replace("zee", "?"))


def test_a_typo_of_ones_own_name_is_pointed_out(people, services):
    message = refusal(services, "rita", "rtia")
    assert message == "rtia is not a user you can name here; did you mean rita?"
    assert message.parts == {"value": "rtia", "suggestion": "rita"}
    assert "did you mean" not in refusal(services, "rita", "zed")  # a stranger's name is no typo of hers
