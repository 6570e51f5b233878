"""A problem whose fix change fails or is abandoned says so, and stays so.

Once its fix change fails (its verification failed and its rollback is recorded) the problem stops
following it and goes back to root cause analysis, where the next round may raise another fix
change. While the change is being rolled back the problem follows it on, silently; once it is
rolled back the record must not keep a passing status of the change as if it were current: it
shows the verdict ("failed"), however the change goes on, and the problem's people read why in a
comment.
A withdrawn or cancelled change's final status is the verdict, with the same comment.
"""

from __future__ import annotations

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_problem import (
    CHANGE_IMPLEMENT,
    CHANGE_SCHEDULE,
    approve_change,
    comments,
    raised_fix,
    task_view,
    waiting_for_change,
)

BACK_IN_ANALYSIS = "The problem is back in root cause analysis, where another fix can be raised."


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def system_comments(desk: Desk, number: str) -> list[str]:
    return [c["body"] for c in comments(desk, number, "paul") if c["author"] == "system"]


def test_a_failed_fix_change_shows_failed_on_the_problem_however_the_change_goes_on(desk: Desk):
    number, _ = raised_fix(desk)
    approve_change(desk, "CHG-000001")
    desk.complete("CHG-000001", "schedule", "cora", CHANGE_SCHEDULE)
    desk.complete("CHG-000001", "implement", "ivan", CHANGE_IMPLEMENT)
    waiting_for_change(desk, number, "verifying")
    assert system_comments(desk, number) == []  # an open change is no news for the problem's people
    desk.complete("CHG-000001", "verify", "nina", {"verified": False, "verification_notes": "Still reboots."})
    assert desk.record("CHG-000001")["status"] == "rolling_back"

    # being rolled back, the change has no final result yet: the problem follows it on, silently
    waiting_for_change(desk, number, "rolling_back")
    assert system_comments(desk, number) == []

    # the rollback is recorded: the change failed, and the problem says so in words
    desk.complete("CHG-000001", "rollback", "ivan", {"rollback_successful": True, "rollback_notes": "Restored 9.1."})
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("analysis", "failed")
    assert system_comments(desk, number) == [
        f"Fix change CHG-000001 failed its verification and was rolled back. {BACK_IN_ANALYSIS}"]
    # the people working the problem are told (the comment's notification reaches its requester)
    assert any(n["subject"] == f"New comment on {number}: Core switch reboots" for n in desk.notifications("paul"))

    # the change is reviewed and closed: the problem no longer follows it, and its record still
    # says what became of the fix rather than a status the change left long ago
    desk.complete("CHG-000001", "review", "cora", {"review_notes": "Firmware not ready.", "lessons": "Test longer."})
    assert desk.record("CHG-000001")["status"] == "closed"
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("analysis", "failed")
    assert len(system_comments(desk, number)) == 1  # said once

    # a new fix can be raised from the analysis it is back in
    assert desk.ready(number) == ["analyse_root_cause"]
    desk.complete(number, "analyse_root_cause", "nina", {
        "cause_category": "software_defect", "root_cause": "Firmware 9.1 leaks memory in the ARP table.",
        "fix_needs_change": True, "proposed_fix": "Replace SW-CORE-2."})
    waiting_for_change(desk, number, "assessment")
    assert desk.record(number)["details"]["fix_change"] == "CHG-000002"


def test_a_cancelled_fix_change_is_explained_on_the_problem(desk: Desk):
    number, _ = raised_fix(desk)
    change = desk.record("CHG-000001")
    response = desk.client.post(f"/api/v1/instances/{change['instance_id']}/cancel", headers=desk.auth("ada"),
                                json={"reason": "Superseded."})
    assert response.status_code == 200, response.get_json()
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("analysis", "cancelled")
    assert system_comments(desk, number) == [
        f"Fix change CHG-000001 was not implemented (change status: cancelled). {BACK_IN_ANALYSIS}"]
    rca = task_view(desk, number, "analyse_root_cause", "nina")
    assert "was not implemented (change status: cancelled)" in rca["instructions"]

