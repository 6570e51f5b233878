"""problem_management: each fix verification starts unanswered, and a failed one is on the record.

QA found the "Verify fix" task opening with "No" selected (a preScript set fix_verified = False)
and, in a later round, with the previous round's notes filled in; and after a verification that
failed the problem still said its fixing change was successful, with no comment saying the fix
did not work.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_problem import (
    PROBLEM,
    RCA_CHANGE,
    TRIAGE,
    VERIFY_PASSED,
    approve_change,
    comments,
    implement_change,
)

VERIFY_FAILED_R1 = {"fix_verified": False, "verification_notes": "still happens"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def verify_data(desk: Desk, number: str) -> dict[str, Any]:
    response = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, 'verify_fix', 'paul')}",
                               headers=desk.auth("paul"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]  # type: ignore[no-any-return]


def fix_to_verify(desk: Desk, clock, change: str, number: str | None = None) -> str:
    """Log (or re-analyse) the problem with a fix change, and see that change implemented."""
    if number is None:
        number = desk.start("paul", "problem_management", PROBLEM)["data"]["record_number"]
        desk.complete(number, "triage", "paul", TRIAGE)
    desk.complete(number, "analyse_root_cause", "nina", RCA_CHANGE)
    approve_change(desk, change)
    clock.advance(timedelta(days=4))
    implement_change(desk, change)
    assert desk.ready(number) == ["verify_fix"]
    return number


def test_every_fix_verification_opens_without_an_answer_or_notes(desk: Desk, clock):
    number = fix_to_verify(desk, clock, "CHG-000001")
    data = verify_data(desk, number)
    assert data.get("fix_verified") is None and data.get("verification_notes") in (None, "")
    # no answer is no verification: the form asks for one
    refused = desk.complete(number, "verify_fix", "paul", {}, status=422)
    assert "fix_verified" in refused["details"]["fields"]
    desk.complete(number, "verify_fix", "paul", VERIFY_FAILED_R1)

    fix_to_verify(desk, clock, "CHG-000002", number)
    data = verify_data(desk, number)
    assert data.get("fix_verified") is None and data.get("verification_notes") in (None, "")
    desk.complete(number, "verify_fix", "paul", VERIFY_PASSED)
    assert desk.record(number)["status"] == "resolved"


def test_a_failed_verification_shows_on_the_record_and_in_a_comment(desk: Desk, clock):
    number = fix_to_verify(desk, clock, "CHG-000001")
    assert desk.record(number)["details"]["fix_change_status"] == "successful"
    desk.complete(number, "verify_fix", "paul", VERIFY_FAILED_R1)

    record = desk.record(number)
    assert record["status"] == "analysis"
    assert record["details"]["fix_change"] == "CHG-000001"
    assert record["details"]["fix_change_status"] == "not_verified"
    [note] = [c for c in comments(desk, number, "paul") if "CHG-000001" in c["body"]]
    assert note["author"] == "paul"
    assert "failed verification" in note["body"] and "still happens" in note["body"]
    assert "back in root cause analysis" in note["body"]

    # a new fix change replaces it; once that one is verified the record says so
    fix_to_verify(desk, clock, "CHG-000002", number)
    assert desk.record(number)["details"]["fix_change_status"] == "successful"
    desk.complete(number, "verify_fix", "paul", VERIFY_PASSED)
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change"], record["details"]["fix_change_status"]) == (
        "resolved", "CHG-000002", "successful")
    assert len([c for c in comments(desk, number, "paul") if "failed verification" in c["body"]]) == 1
