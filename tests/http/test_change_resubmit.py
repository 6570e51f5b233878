"""QA: a rejected change could be resubmitted with nothing changed and no explanation.

On "Revise or withdraw change" the requester chose "Resubmit", left every field empty, and the
change went straight back to assessment, whose instructions only said "Resubmitted 1 time(s).
Last rejection: ...". The revise task did not show the change as it stands either.

Now a resubmission needs revision notes (forms/change-revise.json: required when the decision is
resubmit), the revise task shows the change's description, window and plans, and whoever decides
on the change again (the assessor; an approver too) reads the count in words, the rejection it
answers and what changed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.services.timers import TimerService
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_change import ASSESS_LOW, CHANGE, complete_id, look, raise_change
from tests.web.conftest import WebClient

REQUIRED = "is required when “What next?” is Resubmit with the changes below"


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def rejected(desk: Desk, number: str, reason: str) -> None:
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": reason})
    assert desk.record(number)["status"] == "rejected" and desk.ready(number) == ["revise"]


def instructions(desk: Desk, number: str, bpmn_id: str, who: str) -> str:
    response = look(desk, desk.task_id(number, bpmn_id, who), who)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["instructions"]  # type: ignore[no-any-return]


def test_a_resubmission_without_revision_notes_is_refused(desk: Desk):
    number, _ = raise_change(desk)
    rejected(desk, number, "No tested rollback.")
    revise = desk.task_id(number, "revise", "alex")
    for empty in ({"revision_decision": "resubmit"},
                  {"revision_decision": "resubmit", "revision_notes": ""},
                  {"revision_decision": "resubmit", "revision_notes": "   \n "}):
        body = assert_error(complete_id(desk, revise, "alex", empty), 422)
        assert body["details"]["fields"]["revision_notes"] == [REQUIRED], empty
    record = desk.record(number)
    assert (record["status"], record["details"]["revision_count"]) == ("rejected", 0)
    assert desk.ready(number) == ["revise"]
    # withdrawing needs no notes
    desk.complete(number, "revise", "alex", {"revision_decision": "withdraw"})
    assert desk.record(number)["status"] == "withdrawn"


def test_the_revise_page_refuses_an_empty_resubmission(app, desk: Desk):
    number, _ = raise_change(desk)
    rejected(desk, number, "No tested rollback.")
    alex = WebClient(app.test_client())
    alex.login("alex")
    revise = desk.task_id(number, "revise", "alex")
    done = alex.post(f"/tasks/{revise}", {
        "revision_decision": "resubmit", "revision_notes": "", "change_type": "", "planned_start": "",
        "planned_end": "", "implementation_plan": "", "rollback_plan": "", "test_plan": ""})
    assert done.status_code == 303  # back to the task page, which shows why once
    assert REQUIRED in alex.get(done.headers["Location"]).get_data(as_text=True)
    assert desk.record(number)["status"] == "rejected"


def test_the_revise_task_shows_the_change_as_it_stands(desk: Desk):
    number, _ = raise_change(desk)
    rejected(desk, number, "No tested rollback.")
    text = instructions(desk, number, "revise", "alex")
    assert "was rejected by cora: No tested rollback." in text
    for shown in (CHANGE["description"], CHANGE["reason"], CHANGE["implementation_plan"], CHANGE["rollback_plan"],
                  CHANGE["test_plan"], f"Planned: {CHANGE['planned_start']} to {CHANGE['planned_end']}"):
        assert shown in text, shown


def test_the_assessor_reads_how_often_why_and_what_changed(desk: Desk):
    number, _ = raise_change(desk)
    rejected(desk, number, "No tested rollback.")
    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit",
                                             "revision_notes": "Rollback rehearsed in staging.",
                                             "rollback_plan": "Restore the snapshot; rehearsed on 9 March."})
    assert desk.record(number)["details"]["revision_count"] == 1
    text = instructions(desk, number, "assess", "cora")  # cora is an approver, not staff: she reads them too
    assert "<strong>Resubmitted once</strong> after a rejection: No tested rollback." in text
    assert "What changed: Rollback rehearsed in staging." in text
    assert "time(s)" not in text
    # the approver of the round reads them as well
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    assert "What changed: Rollback rehearsed in staging." in instructions(desk, number, "manager_approve", "cora")

    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "Window clashes."})
    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "revision_notes": "Moved a week.",
                                             "planned_start": "2026-03-17T20:00:00Z",
                                             "planned_end": "2026-03-17T22:00:00Z"})
    text = instructions(desk, number, "assess", "cora")
    assert "<strong>Resubmitted twice</strong> after a rejection: Window clashes." in text
    assert "What changed: Moved a week." in text and "Rollback rehearsed" not in text
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "Still clashes."})
    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "revision_notes": "Moved again."})
    assert "<strong>Resubmitted 3 times</strong> after a rejection: Still clashes." in instructions(
        desk, number, "assess", "cora")


def test_the_emergency_cab_reads_what_changed(desk: Desk, services, clock):
    number, _ = raise_change(desk, "emergency")
    clock.advance(timedelta(hours=4, seconds=1))
    assert TimerService(services, "s").sweep().fired == 1
    assert desk.record(number)["status"] == "rejected"
    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit",
                                             "revision_notes": "Vendor confirmed the fix; still urgent."})
    text = instructions(desk, number, "ecab_approve", "emma")
    assert "<strong>Resubmitted once</strong> after a rejection: not approved in time" in text
    assert "What changed: Vendor confirmed the fix; still urgent." in text
