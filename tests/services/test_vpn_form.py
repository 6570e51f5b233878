"""The VPN access request form (forms/catalog-net-vpn.json) and the form rules it uses.

A contractor's access ends on a day given with the request: from today to at most a year ahead
(``formatMinimum``/``formatMaximum`` relative to ``{"$today": ...}``, the caller's day); the person
is named by a user name of the directory (``"format": "username"``; whether the requester may name
it is asked of the directory through ``known_users``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.forms import FormMessage, check_form_definition, validate_start_data, validate_submission

ROOT = Path(__file__).resolve().parents[2]
FORM = json.loads((ROOT / "forms" / "catalog-net-vpn.json").read_text())
UI = json.loads((ROOT / "forms" / "catalog-net-vpn.ui.json").read_text())
TODAY = dt.date(2026, 2, 28)
CONTRACTOR = {"for_user": "carl.k", "profile": "contractor", "valid_until": "2026-06-30",
              "systems": "erp-01", "justification": "Migrates the ERP reports."}
DIRECTORY = {"carl.k", "rita"}


def known(names: set[str]) -> set[str]:
    return names & DIRECTORY


def check(data: dict[str, Any], *, web: bool = False, today: dt.date | None = TODAY) -> dict[str, Any]:
    return validate_submission(FORM, UI, data, {}, coerce_strings=web, today=today, known_users=known)


def refused(data: dict[str, Any], **kwargs: Any) -> dict[str, list[Any]]:
    with pytest.raises(ValidationFailed) as info:
        check(data, **kwargs)
    return info.value.details["fields"]  # type: ignore[no-any-return]


def test_the_shipped_form_deploys():
    check_form_definition(FORM, UI, "catalog-net-vpn.json")


@pytest.mark.parametrize("web", [False, True])
def test_a_contractor_needs_a_valid_until_day(web):
    data = {key: value for key, value in CONTRACTOR.items() if key != "valid_until"}
    fields = refused(data, web=web)
    assert set(fields) == {"valid_until"}
    message = fields["valid_until"][0]
    assert message.startswith("is required when “VPN profile” is Contractor") and message.kind == "required_when"
    if web:
        assert set(refused({**data, "valid_until": "  "}, web=True)) == {"valid_until"}
    # an employee may leave it out
    assert "valid_until" not in check({**data, "profile": "employee"}, web=web)


@pytest.mark.parametrize(("day", "message", "kind"), [
    ("2026-02-27", "must not be before 2026-02-28", "not_before"),
    ("2027-03-01", "must not be after 2027-02-28", "not_after"),
    ("2030-01-01", "must not be after 2027-02-28", "not_after"),
])
def test_valid_until_is_from_today_to_a_year_ahead(day, message, kind):
    fields = refused({**CONTRACTOR, "valid_until": day})
    assert fields == {"valid_until": [message]}
    assert isinstance(fields["valid_until"][0], FormMessage) and fields["valid_until"][0].kind == kind
    assert fields["valid_until"][0].parts == {"value": message.rsplit(" ", 1)[1]}


@pytest.mark.parametrize("day", ["2026-02-28", "2026-12-31", "2027-02-28"])
def test_today_and_up_to_a_year_ahead_are_taken(day):
    assert check({**CONTRACTOR, "valid_until": day})["valid_until"] == day


def test_a_year_ahead_of_a_29_february_is_the_28th():
    today = dt.date(2028, 2, 29)
    assert check({**CONTRACTOR, "valid_until": "2029-02-28"}, today=today)["valid_until"] == "2029-02-28"
    assert refused({**CONTRACTOR, "valid_until": "2029-03-01"}, today=today) == {
        "valid_until": ["must not be after 2029-02-28"]}


def test_a_wrong_date_is_reported_once_and_not_compared():
    assert refused({**CONTRACTOR, "valid_until": "30/06/2026"}) == {"valid_until": ["must be a date (YYYY-MM-DD)"]}


def test_without_todays_date_the_relative_bounds_are_not_checked():
    assert check({**CONTRACTOR, "valid_until": "1999-01-01"}, today=None)["valid_until"] == "1999-01-01"


# the directory's rule (app.services.users.is_username): "Carl", "1carl", "carl@example.com" are names
@pytest.mark.parametrize("name", ["carl k", " carl.k", "-carl", "carl/k", "x" * 129])
def test_the_user_name_has_the_directorys_shape(name):
    fields = refused({**CONTRACTOR, "for_user": name})
    assert list(fields) == ["for_user"]
    assert fields["for_user"][0].startswith("must be a user name")


def test_the_user_must_exist_in_the_directory():
    asked: list[set[str]] = []

    def directory(names: set[str]) -> set[str]:
        asked.append(set(names))
        return known(names)

    with pytest.raises(ValidationFailed) as info:
        validate_submission(FORM, UI, {**CONTRACTOR, "for_user": "nobody"}, {}, today=TODAY, known_users=directory)
    message = info.value.details["fields"]["for_user"][0]
    assert message == "nobody is not a user you can name here"
    assert message.kind == "unknown_user" and message.parts == {"value": "nobody"}
    assert asked == [{"nobody"}]  # one look-up
    # a badly shaped name is not looked up; without a directory only the shape is checked
    asked.clear()
    with pytest.raises(ValidationFailed):
        validate_submission(FORM, UI, {**CONTRACTOR, "for_user": "No Body"}, {}, today=TODAY, known_users=directory)
    assert asked == []
    assert validate_submission(FORM, UI, {**CONTRACTOR, "for_user": "nobody"}, {}, today=TODAY)["for_user"] == "nobody"
    assert check(CONTRACTOR)["for_user"] == "carl.k"


def test_start_data_takes_the_day_and_the_directory_too():
    with pytest.raises(ValidationFailed) as info:
        validate_start_data(FORM, UI, {**CONTRACTOR, "for_user": "nobody", "valid_until": "2020-01-01"},
                            today=TODAY, known_users=known)
    assert set(info.value.details["fields"]) == {"for_user", "valid_until"}


@pytest.mark.parametrize(("bound", "reason"), [
    ({"$today": "1Y"}, "ISO 8601 duration"),
    ({"$today": "P"}, "ISO 8601 duration"),
    ({"$today": "PT1H"}, "ISO 8601 duration"),
    ({"$today": 1}, "ISO 8601 duration"),
    ({"$today": "P1Y", "$data": "1/x"}, "ISO 8601 duration"),
])
def test_a_relative_bound_is_checked_at_deploy(bound, reason):
    form = {"type": "object", "properties": {"day": {"type": "string", "format": "date", "formatMaximum": bound}}}
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(form, None, "f.json")
    assert reason in info.value.details["reason"] and info.value.details["pointer"] == "/properties/day/formatMaximum"


def test_a_relative_bound_needs_a_date_field():
    form = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time",
                                                    "formatMinimum": {"$today": "P0D"}}}}
    with pytest.raises(ValidationFailed) as info:
        check_form_definition(form, None, "f.json")
    assert "needs a field with format date" in info.value.details["reason"]


def test_upper_bounds_by_a_sibling_and_exclusive_ones():
    form = {"type": "object", "properties": {
        "start": {"type": "string", "title": "Start", "format": "date", "formatMaximum": {"$data": "1/end"}},
        "end": {"type": "string", "title": "End", "format": "date", "formatExclusiveMaximum": "2026-12-31"}}}
    check_form_definition(form, None, "f.json")
    with pytest.raises(ValidationFailed) as info:
        validate_submission(form, None, {"start": "2026-05-02", "end": "2026-12-31"}, {})
    fields = info.value.details["fields"]
    assert fields["end"] == ["must be before 2026-12-31"] and fields["end"][0].kind == "before"
    with pytest.raises(ValidationFailed) as info:
        validate_submission(form, None, {"start": "2026-05-02", "end": "2026-05-01"}, {})
    assert info.value.details["fields"] == {"start": ["must not be after End"]}
    assert info.value.details["fields"]["start"][0].parts == {"field": "End"}
    assert validate_submission(form, None, {"start": "2026-05-01", "end": "2026-05-01"}, {})

