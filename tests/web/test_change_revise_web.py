"""The "Revise or withdraw change" page (forms/change-revise.json): a field emptied on the page keeps
the change's current value, as its help says, and the window stays consistent."""

from __future__ import annotations

from tests.http.test_e2e_change import ASSESS_LOW, CHANGE, raise_change
from tests.web.conftest import text_of


def rejected_change(desk) -> str:
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "Plans too thin."})
    assert desk.record(number)["status"] == "rejected"
    return number


def test_emptied_fields_on_the_revise_page_keep_the_current_values(web_factory, desk):
    number = rejected_change(desk)
    alex = web_factory()
    alex.login("alex")
    revise_id = desk.task_id(number, "revise", "alex")
    page = text_of(alex.get(f"/tasks/{revise_id}"))
    assert CHANGE["implementation_plan"] in page  # shown filled in
    done = alex.post(f"/tasks/{revise_id}", {
        "revision_decision": "resubmit", "revision_notes": "Rollback rehearsed.", "change_type": "",
        "planned_start": "", "planned_end": "", "implementation_plan": "",
        "rollback_plan": "Restore the snapshot; rehearsed.", "test_plan": "",
    })
    assert done.status_code == 302, text_of(done)[:500]
    record = desk.record(number)
    assert record["status"] == "assessment" and record["category"] == "normal"
    assert record["details"]["planned_start"] == CHANGE["planned_start"]
    assert record["details"]["planned_end"] == CHANGE["planned_end"]
    assess = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, 'assess')}", headers=desk.auth("cora")).get_json()
    assert assess["data"]["implementation_plan"] == CHANGE["implementation_plan"]
    assert assess["data"]["test_plan"] == CHANGE["test_plan"]
    assert assess["data"]["rollback_plan"] == "Restore the snapshot; rehearsed."


def test_a_start_past_the_kept_end_moves_the_window(web_factory, desk):
    number = rejected_change(desk)
    alex = web_factory()
    alex.login("alex")
    revise_id = desk.task_id(number, "revise", "alex")
    done = alex.post(f"/tasks/{revise_id}", {"revision_decision": "resubmit",
                                             "revision_notes": "Moved two days later, after the freeze.",
                                             "planned_start": "2026-03-12T20:00:00Z", "planned_end": ""})
    assert done.status_code == 302, text_of(done)[:500]
    details = desk.record(number)["details"]
    assert details["planned_start"] == "2026-03-12T20:00:00Z" and details["planned_end"] == "2026-03-12T22:00:00Z"
