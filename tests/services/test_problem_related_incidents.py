"""The related incidents a problem is started with: how they are written, and which are taken.

Several numbers may be written in one text, separated by commas, semicolons, spaces or line
breaks (app/services/forms.py ``_list_items``, for the web form and for JSON start data alike).
Each must be an existing incident the starter may see (app/services/operations.py
``linkable_records``, applied before the start by ``start_with_references`` and again by the
diagram's ``link_records``), else the start is refused naming the field and each wrong entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.errors import ValidationFailed
from app.models import AuditEvent, ProcessInstance, Ticket, TicketLink
from app.services.forms import validate_start_data, validate_submission
from app.services.operations import PlatformOperations, linkable_records, start_with_references
from tests.http.desk import Desk

ROOT = Path(__file__).resolve().parents[2]
FORM = json.loads((ROOT / "forms" / "problem_management.start.json").read_text())
UI = json.loads((ROOT / "forms" / "problem_management.start.ui.json").read_text())
PROBLEM = {"title": "VPN tunnels drop every morning", "description": "Home workers lose the tunnel."}
INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}
CHANGE = {"title": "Upgrade the mail gateway", "description": "Move the gateway to version 9.2.",
          "change_type": "normal", "reason": "Security fixes", "planned_start": "2026-03-10T20:00:00Z",
          "planned_end": "2026-03-10T22:00:00Z", "implementation_plan": "Install 9.2.",
          "rollback_plan": "Reinstall 9.1.", "test_plan": "Send a test mail."}


# -- writing several numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "INC-000001, INC-000002", "INC-000001,INC-000002", "INC-000001 INC-000002", "INC-000001\nINC-000002",
    "INC-000001;  INC-000002", " INC-000001 ,\r\n INC-000002 ", "INC-000001\tINC-000002",
])
def test_commas_spaces_and_line_breaks_separate_numbers(text):
    assert validate_start_data(FORM, UI, {**PROBLEM, "related_incidents": text})["related_incidents"] == [
        "INC-000001", "INC-000002"]
    # the web form's text box is read the same way
    posted = validate_submission(FORM, UI, {**PROBLEM, "related_incidents": text}, {}, coerce_strings=True)
    assert posted["related_incidents"] == ["INC-000001", "INC-000002"]


def test_a_piece_that_is_no_number_is_still_refused_whole():
    for text in ("INC-000001, not a number", "INC-000001 and INC-000002"):
        with pytest.raises(ValidationFailed) as info:
            validate_submission(FORM, UI, {**PROBLEM, "related_incidents": text}, {}, coerce_strings=True)
        assert list(info.value.details["fields"]) == ["related_incidents"]


def test_items_that_may_hold_spaces_are_split_only_at_commas_and_line_breaks():
    form = {"type": "object", "properties": {"steps": {"type": "array", "items": {"type": "string", "maxLength": 50}}}}
    assert validate_submission(form, None, {"steps": "Call the vendor, Restart it\nCheck"}, {},
                               coerce_strings=True)["steps"] == ["Call the vendor", "Restart it", "Check"]


# -- which numbers are taken ----------------------------------------------------------------------------


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


@pytest.fixture()
def records(desk: Desk) -> dict[str, str]:
    """Two incidents (one of mona's, which rita may not see) and a change."""
    return {"incident": desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"],
            "secret": desk.start("mona", "incident_management",
                                 {**INCIDENT, "title": "Payroll"})["data"]["record_number"],
            "change": desk.start("alex", "change_enablement", CHANGE)["data"]["record_number"]}


def stored(services) -> tuple[int, int, int, int]:
    session = services.session
    return tuple(session.scalar(select(func.count()).select_from(table))  # type: ignore[return-value]
                 for table in (ProcessInstance, Ticket, TicketLink, AuditEvent))


def user(services, name: str) -> Any:
    return services.users.get_by_username(name)


def test_only_existing_incidents_the_user_may_see_are_linkable(services, records):
    rita, alex = user(services, "rita"), user(services, "alex")
    given = [records["incident"].lower(), records["change"], "INC-999999", records["secret"],
             f" {records['incident']} "]
    found, refused = linkable_records(services, alex, given, "incident")
    assert [t.number for t in found] == [records["incident"], records["secret"]]  # each once
    assert refused == [f"{records['change']} is not an incident", "INC-999999 does not exist"]
    assert [(m.kind, m.parts) for m in refused] == [
        ("not_kind", {"number": records["change"], "record_kind": "incident"}), ("no_record", {"number": "INC-999999"})]
    # what rita may not see does not exist for her, whatever it is
    found, refused = linkable_records(services, rita, given, "incident")
    assert [t.number for t in found] == [records["incident"]]
    assert refused == [f"{records['change']} does not exist", "INC-999999 does not exist",
                       f"{records['secret']} does not exist"]
    assert linkable_records(services, alex, [records["change"]])[0][0].number == records["change"]  # any kind


@pytest.fixture()
def wired(services) -> Any:
    """The start contract as the application registers it for problem_management."""
    services.instances.start_validators["problem_management"] = start_with_references(
        services, "problem_management", {"related_incidents": "incident"})
    return services


def test_a_start_naming_a_change_or_an_unknown_incident_is_refused_and_stores_nothing(wired, records):
    alex = user(wired, "alex")
    before = stored(wired)
    for given in (f"{records['incident']}, {records['change']} INC-999999",
                  [records["incident"], records["change"], "INC-999999"]):
        with pytest.raises(ValidationFailed) as info:
            wired.instances.start_process(alex, "problem_management", {**PROBLEM, "related_incidents": given})
        assert info.value.details["fields"] == {"related_incidents": [
            f"{records['change']} is not an incident", "INC-999999 does not exist"]}
    wired.session.rollback()
    assert stored(wired) == before


def test_a_start_with_good_incidents_links_each_once(wired, records):
    alex = user(wired, "alex")
    text = f"{records['incident'].lower()}, {records['secret']}\n{records['incident']}"
    instance = wired.instances.start_process(alex, "problem_management", {**PROBLEM, "related_incidents": text})
    assert instance.data["related_incidents"] == [records["incident"], records["secret"]]
    problem = wired.records.by_number(instance.data["record_number"])
    assert sorted(t.number for t in wired.records.linked_tickets(problem)) == sorted([records["incident"],
                                                                                      records["secret"]])


def test_a_requester_is_told_an_incident_she_may_not_see_does_not_exist(wired, records, desk):
    olga = user(wired, "olga")
    wired.definitions.deploy(olga, [("problem_management.access.json", b'{"start_roles": ["requester", "agent"]}')])
    wired.session.commit()
    with pytest.raises(ValidationFailed) as info:
        wired.instances.start_process(user(wired, "rita"), "problem_management",
                                      {**PROBLEM, "related_incidents": [records["secret"]]})
    assert info.value.details["fields"] == {"related_incidents": [f"{records['secret']} does not exist"]}


def test_the_diagram_links_only_incidents_when_told_the_kind(services, records):
    """``link_records`` with ``kind`` (a diagram started without the start contract, e.g. by another
    diagram) skips a record of another kind rather than link it."""
    alex = user(services, "alex")
    problem = services.instances.start_process(alex, "problem_management", PROBLEM)
    operations = PlatformOperations(services, problem, alex)
    result = operations("link_records", {"numbers": [records["incident"], records["change"], "inc-999999"],
                                         "link_type": "related_incident", "kind": "incident"})
    assert result == {"linked": [records["incident"]], "skipped": [records["change"], "INC-999999"]}
    without_kind = operations("link_records", {"numbers": [records["change"]], "link_type": "related"})
    assert without_kind == {"linked": [records["change"]], "skipped": []}
