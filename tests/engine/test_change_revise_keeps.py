"""Revise or withdraw change (processes/change_enablement.bpmn, task ``revise``): what is left empty is kept.

The revise form is shown pre-filled with the change's current values and says "Leave empty to keep
the current plan / window / type". A web form post of such a field emptied arrives as ``None``
(``validate_submission(coerce_strings=True)``: an emptied, pre-filled control withdraws the old
answer), so the diagram itself must put the current value back, and keep the planned window
consistent (start before end) when only one of its ends is moved.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import WorkflowRun
from app.services.forms import validate_submission
from tests.engine.harness import members
from tests.engine.test_change_enablement import ASSESS_LOW, Harness, change, record, status

PLANS = {
    "implementation_plan": "Drain, upgrade, re-enable.",
    "rollback_plan": "Restore the VM snapshot.",
    "test_plan": "Send and receive test mail.",
}
WINDOW = {"planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z"}


@pytest.fixture()
def h() -> Harness:
    return Harness()


def rejected(h: Harness) -> WorkflowRun:
    """A normal change, assessed and rejected by a change manager: the requester's revise task is open."""
    run = h.start(change())
    run = h.complete(run, "assess", "mona", ASSESS_LOW)
    run = h.complete(run, "manager_approve", "max", {"approved": False, "approval_comment": "Plans too thin."})
    assert status(run) == "rejected" and [t.bpmn_id for t in run.user_tasks()] == ["revise"]
    return run


def post_revise(h: Harness, run: WorkflowRun, form_post: dict[str, Any]) -> WorkflowRun:
    """Submit the revise task as the web page does: the pre-filled form, with ``form_post``'s edits."""
    view = h.task(run, "revise", for_user="rita")
    h.check_allowed(view, "rita")
    schema, ui = h.task_forms(view)
    shown = {name: view.data.get(name) for name in ("change_type", *WINDOW, *PLANS)}
    posted = {name: "" if value is None else str(value) for name, value in shown.items()}
    posted.update(form_post)
    clean = validate_submission(schema, ui, posted, view.data, coerce_strings=True, members=members)
    run.complete_task(view.id, clean, h.identity("rita"))
    assert run.failure is None, run.failure
    return h.roundtrip(run)


def test_web_post_is_what_the_qa_saw():
    """The premise: an emptied, pre-filled field is posted as None, not left out."""
    h = Harness()
    run = rejected(h)
    view = h.task(run, "revise")
    schema, ui = h.task_forms(view)
    clean = validate_submission(schema, ui, {"revision_decision": "resubmit", "revision_notes": "Plans detailed.",
                                             "implementation_plan": "", "planned_end": ""},
                                view.data, coerce_strings=True, members=members)
    assert clean["implementation_plan"] is None
    # The window is not filled in (the instructions show it): an empty end is no answer at all.
    assert "planned_end" not in view.data and clean.get("planned_end") is None


def test_emptied_plans_and_window_keep_the_current_values(h: Harness):
    run = rejected(h)
    run = post_revise(h, run, {"revision_decision": "resubmit", "revision_notes": "Rollback rehearsed.",
                               "change_type": "", "planned_start": "", "planned_end": "",
                               "implementation_plan": "", "rollback_plan": "Restore the snapshot; rehearsed.",
                               "test_plan": "  "})
    assert status(run) == "assessment" and run.data["revision_count"] == 1
    assert run.data["implementation_plan"] == PLANS["implementation_plan"]
    assert run.data["test_plan"] == PLANS["test_plan"]
    assert run.data["rollback_plan"] == "Restore the snapshot; rehearsed."  # a new answer replaces it
    assert run.data["change_type"] == "normal"
    assert (run.data["planned_start"], run.data["planned_end"]) == (WINDOW["planned_start"], WINDOW["planned_end"])
    details = record(run)["details"]
    assert details["planned_start"] == WINDOW["planned_start"] and details["planned_end"] == WINDOW["planned_end"]
    assert record(run)["category"] == "normal"
    # The next assessment shows the kept plans.
    assess = h.task(run, "assess")
    assert assess.data["implementation_plan"] == PLANS["implementation_plan"]
    assert assess.data["test_plan"] == PLANS["test_plan"]


def test_end_left_empty_with_a_start_past_it_moves_the_window_keeping_its_length(h: Harness):
    run = rejected(h)
    run = post_revise(h, run, {"revision_decision": "resubmit", "revision_notes": "Moved two days later.",
                               "planned_start": "2026-03-12T20:00:00Z", "planned_end": ""})
    assert run.data["planned_start"] == "2026-03-12T20:00:00Z"
    assert run.data["planned_end"] == "2026-03-12T22:00:00Z"  # two hours, as before
    assert record(run)["details"]["planned_end"] == "2026-03-12T22:00:00Z"


def test_end_left_empty_with_a_start_inside_the_window_keeps_the_end(h: Harness):
    run = rejected(h)
    run = post_revise(h, run, {"revision_decision": "resubmit", "revision_notes": "Starts an hour later.",
                               "planned_start": "2026-03-10T21:00:00Z", "planned_end": ""})
    assert (run.data["planned_start"], run.data["planned_end"]) == ("2026-03-10T21:00:00Z", WINDOW["planned_end"])


def test_start_left_empty_with_an_end_before_it_moves_the_window_keeping_its_length(h: Harness):
    run = rejected(h)
    run = post_revise(h, run, {"revision_decision": "resubmit", "revision_notes": "Moved to the earlier window.",
                               "planned_start": "", "planned_end": "2026-03-09T10:00:00Z"})
    assert (run.data["planned_start"], run.data["planned_end"]) == ("2026-03-09T08:00:00Z", "2026-03-09T10:00:00Z")


def test_start_left_empty_with_a_later_end_extends_the_window(h: Harness):
    run = rejected(h)
    run = post_revise(h, run, {"revision_decision": "resubmit", "revision_notes": "Longer window for the tests.",
                               "planned_start": "", "planned_end": "2026-03-11T02:00:00Z"})
    assert (run.data["planned_start"], run.data["planned_end"]) == (WINDOW["planned_start"], "2026-03-11T02:00:00Z")


def test_withdrawal_keeps_the_change_as_it_was(h: Harness):
    run = rejected(h)
    run = post_revise(h, run, {"revision_decision": "withdraw", "planned_end": "", "implementation_plan": "",
                               "rollback_plan": "Something else."})
    assert run.status == "completed" and status(run) == "withdrawn"
    for name, value in {**PLANS, **WINDOW}.items():
        assert run.data[name] == value, name
    assert record(run)["details"]["planned_end"] == WINDOW["planned_end"]


def test_kept_values_survive_a_second_round(h: Harness):
    run = rejected(h)
    run = post_revise(h, run, {"revision_decision": "resubmit", "revision_notes": "Named the target version.",
                               "implementation_plan": "Drain, upgrade v9.2.1."})
    run = h.complete(run, "assess", "mona", ASSESS_LOW)
    run = h.complete(run, "manager_approve", "max", {"approved": False, "approval_comment": "Still thin."})
    run = post_revise(h, run, {"revision_decision": "resubmit", "revision_notes": "Answered the review again.",
                               "implementation_plan": "", "planned_end": ""})
    assert run.data["revision_count"] == 2
    assert run.data["implementation_plan"] == "Drain, upgrade v9.2.1."
    assert run.data["planned_end"] == WINDOW["planned_end"]
