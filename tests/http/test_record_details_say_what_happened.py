"""A record's details say what happened, and stay true once the process has moved on.

- A problem whose fix change passed its verification stops following it: its ``fix_change_status``
  reads the verdict "successful", never the change's passing status "review" it would otherwise
  keep after the change closed.
- A catalog request's decider is on record by what they decided: ``approved_by`` only when they
  approved, ``rejected_by`` when they rejected.
- A change's verifier is ``verified_by`` whatever they found; ``confirmed_by`` only when they
  confirmed it works, so a rolled-back change names nobody as having confirmed it.
- The desk move's date cannot be in the past.
"""

from __future__ import annotations

import pytest
from flask_babel import force_locale

from app.web.labels import detail_label
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_catalog import ORDERS, order
from tests.http.test_e2e_change import implement_and_verify, raise_change, review
from tests.http.test_e2e_problem import (
    CLOSE,
    VERIFY_PASSED,
    approve_change,
    implement_change,
    raised_fix,
    task_view,
    waiting_for_change,
)


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


# -- the problem and its successful fix change -----------------------------------------------------


def test_a_fix_change_that_succeeded_and_closed_reads_successful_on_the_problem(desk: Desk):
    number, _ = raised_fix(desk)
    waiting_for_change(desk, number, "assessment")  # followed while it is open: its status as it moves
    approve_change(desk, "CHG-000001")
    waiting_for_change(desk, number, "scheduled")
    implement_change(desk, "CHG-000001")  # implemented and verified by its requester: in review
    assert desk.record("CHG-000001")["status"] == "review"

    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("fix_in_progress", "successful")
    verify = task_view(desk, number, "verify_fix", "paul")
    assert "is implemented (change result: successful)" in verify["instructions"]

    # the change is reviewed and closed: the problem no longer follows it, and its record still
    # says what became of the fix, not the "review" the change has left
    desk.complete("CHG-000001", "review", "cora", {"review_notes": "Went to plan.", "lessons": "None."})
    assert desk.record("CHG-000001")["status"] == "closed"
    record = desk.record(number)
    assert record["details"]["fix_change_status"] == "successful"

    desk.complete(number, "verify_fix", "paul", VERIFY_PASSED)
    desk.complete(number, "close_problem", "paul", CLOSE)
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("closed", "successful")


# -- who decided a catalog request ------------------------------------------------------------------


def test_the_decider_of_a_request_is_on_record_by_what_they_decided(desk: Desk):
    rejected = order(desk, "HW-LAPTOP")["number"]
    desk.complete(rejected, "approve_manager", "mona", {"approved": False, "approval_comment": "Not this quarter."})
    record = desk.record(rejected, "rita")
    assert record["status"] == "rejected"
    assert record["details"]["rejected_by"] == "mona"
    assert record["details"].get("approved_by") is None  # she approved nothing
    assert record["details"]["closed_reason"] == "rejected by mona: Not this quarter."

    approved = order(desk, "HW-LAPTOP-PERF")["number"]
    desk.complete(approved, "approve_budget", "bob", {"approved": True})
    record = desk.record(approved, "rita")
    assert record["status"] == "fulfilment"
    assert record["details"]["approved_by"] == "bob"
    assert record["details"].get("rejected_by") is None


# -- who verified a change ------------------------------------------------------------------------------


def test_a_failed_verification_names_the_verifier_and_nobody_as_confirming(desk: Desk):
    number, _ = raise_change(desk, "standard")
    implement_and_verify(desk, number, verified=False)
    record = desk.record(number, "alex")
    assert record["status"] == "rolling_back"
    assert record["details"]["verified_by"] == "alex"
    assert record["details"].get("confirmed_by") is None
    desk.complete(number, "rollback", "ivan", {"rollback_notes": "Snapshot restored.", "rollback_successful": True})
    review(desk, number)
    record = desk.record(number, "alex")
    assert (record["status"], record["details"]["result"]) == ("closed", "rolled_back")
    assert record["details"]["verified_by"] == "alex" and record["details"].get("confirmed_by") is None


def test_a_passed_verification_names_the_verifier_as_confirming(desk: Desk):
    number, _ = raise_change(desk, "standard")
    implement_and_verify(desk, number)
    details = desk.record(number, "alex")["details"]
    assert (details["result"], details["verified_by"], details["confirmed_by"]) == ("successful", "alex", "alex")


def test_the_details_are_labelled_by_what_the_person_did(app):
    with app.test_request_context():
        with force_locale("en"):
            assert [detail_label(n) for n in ("approved_by", "rejected_by", "verified_by", "confirmed_by")] == [
                "Approved by", "Rejected by", "Verified by", "Confirmed by"]
        with force_locale("zh_CN"):
            assert [detail_label(n) for n in ("approved_by", "rejected_by", "verified_by", "confirmed_by")] == [
                "批准人", "拒绝人", "验证人", "确认人"]


# -- the desk move's date ----------------------------------------------------------------------------------


def test_a_desk_move_cannot_be_in_the_past(desk: Desk):
    # the clock stands at Monday 2026-01-05 09:00 UTC
    for day in ("2026-01-04", "2025-12-31", "2020-06-05"):
        response = desk.client.post("/api/v1/catalog/FAC-DESK-MOVE/requests", headers=desk.auth("rita"),
                                    json={"data": {**ORDERS["FAC-DESK-MOVE"], "move_date": day}})
        body = assert_error(response, 422, "validation_failed")
        assert body["details"]["fields"] == {"move_date": ["must not be before 2026-01-05"]}, day
    # today and later are taken (the help's "Moves happen on Fridays" is guidance: no form rule checks
    # a weekday, so a Monday is taken too)
    for day in ("2026-01-05", "2026-01-09"):
        record = order(desk, "FAC-DESK-MOVE", move_date=day)
        assert record["status"] == "fulfilment"
        assert desk.instance(record["instance_id"])["data"]["move_date"] == day
