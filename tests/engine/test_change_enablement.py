"""Change enablement (processes/change_enablement.bpmn): one test per path through the diagram.

After every step the state must survive dump -> restore -> dump unchanged. The harness also plays
the platform's part of the user-task contract (docs/PROCESSES.md): it validates each submission
against the task's form, refuses users that ``assignedUserVar`` / ``excludeUsersVars`` rule out,
and writes ``setUserVar``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from app.engine import OperationFailed, ScriptIdentity, TaskNotReady, UserTaskView, WorkflowRun
from app.errors import ValidationFailed
from app.services.forms import check_form_definition, render_instructions, validate_submission
from app.services.records import check_mapping
from tests.engine.harness import CLOCK_START as START
from tests.engine.harness import (
    ROOT,
    FakeOperations,
    ProcessHarness,
    compiled,
    form,
    identity,
    max_depth,
    members,
    synced_record,
)

PROCESS_ID = "change_enablement"
SOURCES = (f"{PROCESS_ID}.bpmn", "change_risk.dmn", f"{PROCESS_ID}.record.json")
GROUPS = {
    "CAB": ["carol", "dave", "erin"],
    "ChangeManagers": ["mona", "max"],
    "EmergencyCAB": ["ellen", "eric"],
    "Implementers": ["ivan", "isla"],
}
APPROVAL_EXCLUSION = "separation of duties: the requester and the implementer may not approve this change"
IMPLEMENT_EXCLUSION = "separation of duties: an approver may not implement this change"


#: What the platform answers when the change raises an incident (``start_process``).
RAISED_INCIDENT = {"instance_id": 7, "number": "INC-000042"}


def operations(groups: dict[str, list[str]]) -> FakeOperations:
    """Group members, notifications and a raised incident as the platform would answer them for ``groups``."""

    def notify(params: dict[str, Any]) -> dict[str, int]:
        if "group" in params:
            return {"notified": len(groups.get(params["group"], []))}
        return {"notified": 1}

    return FakeOperations({
        "get_group_members": lambda params: {"members": list(groups.get(params["group"], []))},
        "notify": notify,
        "start_process": lambda params: dict(RAISED_INCIDENT),
    }, unexpected=OperationFailed)


class NotAllowed(Exception):
    """The platform would refuse this user (403): not the assigned user, or excluded."""


class Harness(ProcessHarness):
    """Also refuses users that ``assignedUserVar`` / ``excludeUsersVars`` rule out."""

    def __init__(self, groups: dict[str, list[str]] | None = None) -> None:
        super().__init__(compiled(*SOURCES, forms="change"), operations(groups or GROUPS))
        self.requester = "rita"

    def identity(self, name: str) -> ScriptIdentity:
        return identity(name, self.requester)

    def start(self, data: dict[str, Any], requester: str = "rita") -> WorkflowRun:
        self.requester = requester
        return self.launch(data, self.identity(requester))

    def check_allowed(self, view: UserTaskView, name: str) -> None:
        props = view.properties
        assigned = props.get("assignedUserVar")
        if assigned and view.data.get(assigned) != name:
            raise NotAllowed(f"{view.bpmn_id} is assigned to {view.data.get(assigned)}")
        for var in filter(None, (v.strip() for v in props.get("excludeUsersVars", "").split(","))):
            value = view.data.get(var)
            names = value if isinstance(value, list) else [value]
            if name in names:
                raise NotAllowed(props["excludeReason"])

    def complete(self, run: WorkflowRun, bpmn_id: str, name: str, data: dict[str, Any]) -> WorkflowRun:
        view = self.task(run, bpmn_id, for_user=name)
        assert view.instructions and "instructions-error" not in render_instructions(view.instructions, view.data)
        self.check_allowed(view, name)
        return self.submit(run, view, data, self.identity(name))


@pytest.fixture()
def h() -> Harness:
    return Harness()


def change(change_type: str = "normal", **extra: Any) -> dict[str, Any]:
    data = {
        "title": "Upgrade the mail gateway",
        "description": "Move the gateway to version 9.2.",
        "change_type": change_type,
        "reason": "Version 8 is out of support in April.",
        "planned_start": "2026-03-10T20:00:00Z",
        "planned_end": "2026-03-10T22:00:00Z",
        "implementation_plan": "Drain, upgrade, re-enable.",
        "rollback_plan": "Restore the VM snapshot.",
        "test_plan": "Send and receive test mail.",
        "ci": "mailgw01",
    }
    data.update(extra)
    return data


ASSESS_LOW = {"impact": "low", "affected_users": 20, "rollback_difficulty": "easy", "has_tested": True,
              "implementer": "ivan", "assessment_notes": "Routine."}
ASSESS_MEDIUM = {**ASSESS_LOW, "impact": "medium", "affected_users": 400}
ASSESS_HIGH = {**ASSESS_LOW, "impact": "high", "rollback_difficulty": "hard", "affected_users": 5000}
APPROVE = {"approved": True, "approval_comment": "Fine."}


def status(run: WorkflowRun) -> str:
    return run.data["ticket_status"]


def record(run: WorkflowRun) -> dict[str, Any]:
    """What the platform copies onto the CHG record after this step (fields + details)."""
    mapping = json.loads((ROOT / "processes" / f"{PROCESS_ID}.record.json").read_text(encoding="utf-8"))
    return synced_record(mapping, run)


def finish(h: Harness, run: WorkflowRun, implementer: str = "ivan", verified: bool = True) -> WorkflowRun:
    """Schedule -> implement -> verify (success) -> review -> closed."""
    assert status(run) == "scheduled"
    run = h.complete(run, "schedule", "mona", {"planned_start": "2026-03-11T20:00:00Z",
                                               "planned_end": "2026-03-11T21:30:00Z"})
    assert status(run) == "implementing" and run.data["assignment_group"] == "Implementers"
    run = h.complete(run, "implement", implementer, {"implementation_notes": "Upgraded, all queues drained.",
                                                     "actual_start": "2026-03-11T20:05:00Z",
                                                     "actual_end": "2026-03-11T21:10:00Z"})
    assert status(run) == "verifying"
    verify = h.task(run, "verify")
    assert verify.lane == "Requesters"
    assert verify.properties["assignedUserVar"] == "requester"
    assert verify.properties["setUserVar"] == "verified_by"
    with pytest.raises(NotAllowed):
        h.check_allowed(verify, implementer)
    run = h.complete(run, "verify", h.requester, {"verified": verified, "verification_notes": "Mail flows."})
    if not verified:
        return run
    assert status(run) == "review" and run.data["result"] == "successful"
    run = h.complete(run, "review", "max", {"review_notes": "Done in the window.", "lessons": "None."})
    assert run.status == "completed" and status(run) == "closed"
    return run


# -- deployment -------------------------------------------------------------------------------------


def test_deploys_with_the_platform_operators_and_valid_forms_and_record_mapping():
    process = compiled(*SOURCES, forms="change")
    assert process.process_id == PROCESS_ID
    lanes = {t.bpmn_id: t.lane for t in process.user_tasks}
    assert lanes == {
        "assess": "ChangeManagers", "manager_approve": "ChangeManagers", "cab_vote": "CAB",
        "ecab_approve": "EmergencyCAB", "revise": "Requesters", "schedule": "ChangeManagers",
        "implement": "Implementers", "verify": "Requesters", "rollback": "Implementers",
        "review": "ChangeManagers",
    }
    for name in {t.form for t in process.user_tasks} | {t.ui_form for t in process.user_tasks}:
        assert name in process.forms
    for task in process.user_tasks:
        check_form_definition(form(task.form) or {}, form(task.ui_form), task.form or "")
    mapping = process.record_mapping
    assert mapping is not None
    check_mapping(mapping, f"{PROCESS_ID}.record.json")
    assert mapping["kind"] == "change" and mapping["prefix"] == "CHG"
    assert mapping["fields"]["status"] == "ticket_status" and mapping["fields"]["priority"] == "risk"
    assert mapping["closed_statuses"] == ["closed", "withdrawn"] and mapping["resolved_statuses"] == []


def test_the_approval_cycle_is_a_loop_subprocess_outside_the_lanes():
    xml = (ROOT / "processes" / f"{PROCESS_ID}.bpmn").read_text(encoding="utf-8")
    assert "<bpmn:flowNodeRef>change_approval_cycle</bpmn:flowNodeRef>" not in xml
    assert '<bpmn:loopCondition>revision_decision == "resubmit"</bpmn:loopCondition>' in xml
    assert "BPMNDiagram" in xml and 'bpmnElement="change_approval_cycle"' in xml


@pytest.mark.parametrize(
    "bad",
    [{"change_type": "major"}, {"emergency_approval_window": "soon"}, {"emergency_approval_window": "-PT1H"}],
)
def test_a_broken_start_contract_fails_at_registration(h: Harness, bad: dict[str, Any]):
    run = h.start(change(**bad))
    assert run.status == "error"
    assert run.failure is not None and run.failure.element_id == "register"


# -- standard -------------------------------------------------------------------------------------


def test_standard_change_is_pre_approved_and_goes_straight_to_scheduling(h: Harness):
    run = h.start(change("standard"))
    [registered] = [t for t in run._wf.get_tasks() if t.task_spec.bpmn_id == "register"]
    assert registered.data["ticket_status"] == "new"
    assert [t.bpmn_id for t in run.user_tasks()] == ["schedule"]
    assert run.data["requester"] == "rita"
    assert run.data["emergency_approval_window"] == "PT4H"
    assert run.data["risk"] == "low" and run.data["approvers"] == [] and run.data["approval_outcome"] == "approved"
    assert h.ops.calls == []
    run = finish(h, run, implementer="mona")  # no approver, so anyone in Implementers' place may implement
    path = run.history_path()
    assert "pre_approve" in path
    assert not {"assess", "manager_approve", "cab_vote", "ecab_approve"} & set(path)
    rec = record(run)
    assert rec["status"] == "closed" and rec["category"] == "standard" and rec["priority"] == "low"
    assert rec["assignee"] == "mona"  # no planned implementer: the one who implemented it
    assert rec["details"]["implemented_by"] == "mona"


# -- normal: change manager -------------------------------------------------------------------------


def test_normal_low_risk_change_is_approved_by_a_change_manager(h: Harness):
    run = h.start(change())
    assert status(run) == "assessment"
    assess = h.task(run, "assess")
    assert assess.lane == "ChangeManagers" and assess.name == "Assess change"
    run = h.complete(run, "assess", "mona", ASSESS_LOW)
    assert run.data["risk"] == "low" and status(run) == "awaiting_approval"
    approve = h.task(run, "manager_approve")
    assert approve.lane == "ChangeManagers"
    assert approve.properties["excludeUsersVars"] == "requester,implementer"
    assert approve.properties["excludeReason"] == APPROVAL_EXCLUSION
    assert approve.data["implementer"] == "ivan" and approve.data["requester"] == "rita"
    for forbidden in ("rita", "ivan"):
        with pytest.raises(NotAllowed, match="separation of duties"):
            h.complete(run, "manager_approve", forbidden, APPROVE)
    run = h.complete(run, "manager_approve", "max", APPROVE)
    assert run.data["approvers"] == ["max"] and run.data["approval_outcome"] == "approved"
    # the route checked that a change manager other than the requester and implementer may decide
    assert h.ops.calls == [("get_group_members", {"group": "ChangeManagers"})]

    run = h.complete(run, "schedule", "mona", {"planned_start": "2026-03-11T20:00:00Z",
                                               "planned_end": "2026-03-11T21:30:00Z"})
    implement = h.task(run, "implement")
    assert implement.lane == "Implementers"
    assert implement.properties["excludeUsersVars"] == "approvers"
    assert implement.properties["excludeReason"] == IMPLEMENT_EXCLUSION
    assert implement.properties["setUserVar"] == "implementer_done_by"
    with pytest.raises(NotAllowed, match="an approver may not implement"):
        h.complete(run, "implement", "max", {"implementation_notes": "x", "actual_start": "2026-03-11T20:05:00Z",
                                             "actual_end": "2026-03-11T21:10:00Z"})
    rec = record(run)
    assert rec["status"] == "implementing" and rec["assignment_group"] == "Implementers"
    assert rec["assignee"] == "ivan" and rec["priority"] == "low" and rec["ci"] == "mailgw01"
    assert rec["details"]["planned_start"] == "2026-03-11T20:00:00Z"

    run = h.complete(run, "implement", "ivan", {"implementation_notes": "Upgraded.",
                                                "actual_start": "2026-03-11T20:05:00Z",
                                                "actual_end": "2026-03-11T21:10:00Z"})
    run = h.complete(run, "verify", "rita", {"verified": True})
    run = h.complete(run, "review", "mona", {"review_notes": "Good."})
    assert run.status == "completed"
    rec = record(run)
    assert rec["status"] == "closed" and rec["assignment_group"] == "ChangeManagers"
    assert rec["details"] == {
        "implementer": "ivan", "planned_start": "2026-03-11T20:00:00Z", "planned_end": "2026-03-11T21:30:00Z",
        "actual_start": "2026-03-11T20:05:00Z", "actual_end": "2026-03-11T21:10:00Z", "result": "successful",
        "verified_by": "rita", "confirmed_by": "rita", "approvers": ["max"], "rejection_reason": None, "rejected_by": None, "risk": "low",
        "reason": "Version 8 is out of support in April.", "implemented_by": "ivan", "revision_count": 0,
        "rollback_incident": None,
    }
    assert run.history_path().count("assess") == 1


def test_no_eligible_cab_member_falls_back_to_a_change_manager():
    h = Harness({**GROUPS, "CAB": ["rita", "ivan"]})
    run = h.start(change())
    run = h.complete(run, "assess", "mona", ASSESS_HIGH)
    assert run.data["risk"] == "high" and run.data["cab_members"] == []
    assert [t.bpmn_id for t in run.user_tasks()] == ["manager_approve"]
    run = h.complete(run, "manager_approve", "mona", APPROVE)
    assert run.data["approvers"] == ["mona"] and status(run) == "scheduled"


# -- normal: CAB --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("assessment", "risk"), [(ASSESS_MEDIUM, "medium"), (ASSESS_HIGH, "high")])
def test_medium_and_high_risk_changes_need_every_cab_member(h: Harness, assessment: dict[str, Any], risk: str):
    run = h.start(change())
    run = h.complete(run, "assess", "mona", assessment)
    assert run.data["risk"] == risk and status(run) == "awaiting_approval"
    assert h.ops.named("get_group_members") == [{"group": "CAB"}]
    votes = h.tasks(run, "cab_vote")
    assert sorted(t.data["approver"] for t in votes) == ["carol", "dave", "erin"]
    for vote in votes:
        assert vote.lane == "CAB" and vote.name == "CAB approval"
        assert vote.properties["assignedUserVar"] == "approver"
        assert vote.properties["excludeUsersVars"] == "requester,implementer"
        assert vote.properties["excludeReason"] == APPROVAL_EXCLUSION
    with pytest.raises(NotAllowed):  # carol may not take dave's vote
        h.check_allowed(h.task(run, "cab_vote", for_user="dave"), "carol")
    for member in ("dave", "carol"):
        run = h.complete(run, "cab_vote", member, APPROVE)
        assert status(run) == "awaiting_approval"
    assert [t.data["approver"] for t in h.tasks(run, "cab_vote")] == ["erin"]
    run = h.complete(run, "cab_vote", "erin", {"approved": True, "approval_comment": "Go."})
    assert run.data["approval_outcome"] == "approved"
    assert sorted(run.data["approvers"]) == ["carol", "dave", "erin"]
    assert [v["approver"] for v in run.data["votes"]] == ["dave", "carol", "erin"]
    assert record(run)["priority"] == risk
    run = finish(h, run)
    assert record(run)["details"]["approvers"] == ["dave", "carol", "erin"]


def test_requester_and_implementer_get_no_cab_vote():
    h = Harness({**GROUPS, "CAB": ["carol", "rita", "ivan", "dave"]})
    run = h.start(change())
    run = h.complete(run, "assess", "mona", ASSESS_HIGH)
    assert sorted(t.data["approver"] for t in h.tasks(run, "cab_vote")) == ["carol", "dave"]


def test_cab_rejection_goes_back_to_the_requester_who_resubmits_and_gets_approval(h: Harness):
    run = h.start(change())
    run = h.complete(run, "assess", "mona", ASSESS_HIGH)
    run = h.complete(run, "cab_vote", "carol", APPROVE)
    run = h.complete(run, "cab_vote", "dave", {"approved": False, "approval_comment": "No tested rollback."})
    assert h.tasks(run, "cab_vote") == []  # the veto cancelled erin's open vote
    assert status(run) == "rejected"
    assert run.data["rejection_reason"] == "No tested rollback." and run.data["rejected_by"] == "dave"
    assert run.data["approvers"] == []
    revise = h.task(run, "revise")
    assert revise.lane == "Requesters" and revise.properties["assignedUserVar"] == "requester"
    with pytest.raises(NotAllowed):
        h.complete(run, "revise", "mona", {"revision_decision": "withdraw"})
    assert record(run)["details"]["rejection_reason"] == "No tested rollback."

    run = h.complete(run, "revise", "rita", {"revision_decision": "resubmit",
                                             "revision_notes": "Rollback rehearsed in staging.",
                                             "rollback_plan": "Restore the snapshot; rehearsed on 9 March."})
    assert status(run) == "assessment" and run.data["revision_count"] == 1
    assert run.data["rollback_plan"] == "Restore the snapshot; rehearsed on 9 March."
    assert run.data["implementation_plan"] == "Drain, upgrade, re-enable."  # left out = kept
    assert [t.bpmn_id for t in run.user_tasks()] == ["assess"]
    run = h.complete(run, "assess", "max", {**ASSESS_HIGH, "rollback_difficulty": "easy", "implementer": "isla"})
    assert run.data["risk"] == "medium"
    assert sorted(t.data["approver"] for t in h.tasks(run, "cab_vote")) == ["carol", "dave", "erin"]
    for member in ("erin", "dave", "carol"):
        run = h.complete(run, "cab_vote", member, APPROVE)
    assert run.data["approval_outcome"] == "approved"
    assert run.data["approvers"] == ["erin", "dave", "carol"]
    assert [v["approver"] for v in run.data["votes"]] == ["erin", "dave", "carol"]
    assert all(v["approved"] for v in run.data["votes"])
    # approved now: the earlier round's rejection is no longer the change's reason
    assert run.data["rejection_reason"] is None and run.data["rejected_by"] is None
    assert record(run)["details"]["rejection_reason"] is None
    assert h.ops.named("get_group_members") == [{"group": "CAB"}, {"group": "CAB"}]
    run = finish(h, run, implementer="isla")
    assert record(run)["assignee"] == "isla"
    assert run.history_path().count("assess") == 2


def test_rejected_change_can_be_withdrawn(h: Harness):
    run = h.start(change())
    run = h.complete(run, "assess", "mona", ASSESS_LOW)
    run = h.complete(run, "manager_approve", "max", {"approved": False, "approval_comment": "Clashes with the freeze."})
    assert status(run) == "rejected" and run.data["rejected_by"] == "max"
    run = h.complete(run, "revise", "rita", {"revision_decision": "withdraw", "revision_notes": "Postponed."})
    assert run.status == "completed"
    assert status(run) == "withdrawn" and run.data["approval_outcome"] == "rejected"
    assert "schedule" not in run.history_path()
    rec = record(run)
    assert rec["status"] == "withdrawn" and rec["details"]["rejection_reason"] == "Clashes with the freeze."


def test_repeated_resubmissions_keep_the_task_tree_flat(h: Harness):
    run = h.start(change())
    depths = []
    for _ in range(4):
        run = h.complete(run, "assess", "mona", ASSESS_LOW)
        run = h.complete(run, "manager_approve", "max", {"approved": False, "approval_comment": "Not yet."})
        run = h.complete(run, "revise", "rita", {"revision_decision": "resubmit",
                                                 "revision_notes": "Added the missing rollback test."})
        depths.append(max_depth(run))
    assert run.data["revision_count"] == 4
    assert len(set(depths)) == 1, depths


# -- emergency -----------------------------------------------------------------------------------------


def test_emergency_change_is_approved_by_the_emergency_cab_in_time(h: Harness):
    run = h.start(change("emergency", implementer="ivan"))
    assert [t.bpmn_id for t in run.user_tasks()] == ["ecab_approve"]
    assert status(run) == "awaiting_approval" and run.data["risk"] == "high"
    approve = h.task(run, "ecab_approve")
    assert approve.lane == "EmergencyCAB" and approve.name == "Emergency CAB approval"
    assert approve.properties["excludeUsersVars"] == "requester,implementer"
    assert approve.properties["excludeReason"] == APPROVAL_EXCLUSION
    assert run.next_timer_at() == START + timedelta(hours=4)
    with pytest.raises(NotAllowed):
        h.complete(run, "ecab_approve", "ivan", APPROVE)
    h.clock.advance(timedelta(hours=3, minutes=59))
    run.refresh_timers()
    run = h.roundtrip(run)
    run = h.complete(run, "ecab_approve", "ellen", APPROVE)
    assert run.data["approvers"] == ["ellen"] and run.next_timer_at() is None
    assert "assess" not in run.history_path() and h.ops.calls == []
    run = finish(h, run)
    assert record(run)["category"] == "emergency"


def test_emergency_change_not_approved_in_time_is_rejected_and_managers_are_told(h: Harness):
    run = h.start(change("emergency", emergency_approval_window="pt1h"))
    assert run.next_timer_at() == START + timedelta(hours=1)
    [approve] = run.user_tasks()
    h.clock.advance(timedelta(minutes=59))
    run.refresh_timers()
    assert [t.bpmn_id for t in run.user_tasks()] == ["ecab_approve"] and h.ops.calls == []
    h.clock.advance(timedelta(minutes=2))
    with pytest.raises(TaskNotReady) as late:  # a late decision loses to the due timer
        run.complete_task(approve.id, APPROVE, h.identity("ellen"))
    assert late.value.error_type == "timer_expired"
    run = h.roundtrip(run)
    [notice] = h.ops.named("notify")
    assert notice["group"] == "ChangeManagers"
    # the engine alone prints the window as the process holds it; the platform's notice words it
    # in each reader's language (tests/http/test_e2e_change.py)
    assert "not approved in time" in notice["subject"] and "within PT1H." in notice["body"]
    assert status(run) == "rejected" and run.data["rejection_reason"] == "not approved in time"
    assert run.data["managers_notified"] == {"notified": 2}
    assert [t.bpmn_id for t in run.user_tasks()] == ["revise"]

    # The requester resubmits it as a normal change: it is assessed like any other.
    run = h.complete(run, "revise", "rita", {"revision_decision": "resubmit", "change_type": "normal",
                                             "revision_notes": "Not urgent after all: raised as a normal change."})
    assert [t.bpmn_id for t in run.user_tasks()] == ["assess"]
    assert run.data["change_type"] == "normal" and status(run) == "assessment" and run.data["risk"] is None
    assert run.next_timer_at() is None
    run = h.complete(run, "assess", "mona", ASSESS_LOW)
    run = h.complete(run, "manager_approve", "max", APPROVE)
    assert status(run) == "scheduled" and record(run)["category"] == "normal"


def test_emergency_resubmission_gets_a_fresh_window_and_can_be_withdrawn(h: Harness):
    run = h.start(change("emergency"))
    h.clock.advance(timedelta(hours=4, minutes=1))
    run.refresh_timers()
    run = h.roundtrip(run)
    run = h.complete(run, "revise", "rita", {"revision_decision": "resubmit", "revision_notes": "Still urgent."})
    assert [t.bpmn_id for t in run.user_tasks()] == ["ecab_approve"]
    assert run.next_timer_at() == h.clock.now() + timedelta(hours=4)
    run = h.complete(run, "ecab_approve", "eric", {"approved": False, "approval_comment": "Not an emergency."})
    assert run.data["rejection_reason"] == "Not an emergency."
    run = h.complete(run, "revise", "rita", {"revision_decision": "withdraw"})
    assert run.status == "completed" and status(run) == "withdrawn"
    assert len(h.ops.named("notify")) == 1


# -- verification ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("restored", "result"), [(True, "rolled_back"), (False, "rollback_failed")])
def test_failed_verification_is_rolled_back_and_reviewed(h: Harness, restored: bool, result: str):
    run = h.start(change("standard"))
    run = finish(h, run, verified=False)
    assert status(run) == "rolling_back" and run.data["result"] == "verification_failed"
    # rita verified it and found it broken: she confirmed nothing
    assert run.data["verified_by"] == "rita" and run.data["confirmed_by"] is None
    rollback = h.task(run, "rollback")
    assert rollback.lane == "Implementers"
    run = h.complete(run, "rollback", "isla", {"rollback_notes": "Snapshot restored.", "rollback_successful": restored})
    assert status(run) == "review" and run.data["result"] == result
    run = h.complete(run, "review", "mona", {"review_notes": "Rolled back.", "lessons": "Test the upgrade first."})
    assert run.status == "completed" and status(run) == "closed"
    rec = record(run)
    assert rec["details"]["result"] == result
    assert rec["details"]["verified_by"] == "rita" and rec["details"]["confirmed_by"] is None
    assert "rollback" in run.history_path()
    if restored:  # the service is back: nothing to raise
        assert h.ops.named("start_process") == [] and rec["details"]["rollback_incident"] is None
        assert "raise_rollback_incident" not in run.history_path()


def test_a_failed_rollback_raises_a_linked_incident_before_the_review(h: Harness):
    run = h.start(change("standard", record_number="CHG-000005"))
    run = finish(h, run, verified=False)
    assert h.ops.named("start_process") == []
    run = h.complete(run, "rollback", "isla", {"rollback_notes": "The snapshot would not restore.",
                                               "rollback_successful": False})
    assert status(run) == "review" and run.data["result"] == "rollback_failed"
    [raised] = h.ops.named("start_process")
    assert raised["process_id"] == "incident_management"
    # the change causes the incident: a related_incident link from the change (app/services/records.py)
    assert raised["link_type"] == "related_incident"
    incident = raised["data"]
    assert incident == {
        "title": "Failed rollback of CHG-000005: Upgrade the mail gateway",
        "description": incident["description"],
        "category": "system", "impact": "high", "urgency": "high", "ci": "mailgw01",
    }
    assert incident["description"].startswith("Change CHG-000005 (Upgrade the mail gateway) failed its verification "
                                               "and the rollback failed: configuration item mailgw01 may be down")
    assert "Restore the VM snapshot." in incident["description"]
    # the change's internal notes stay on the change: an incident is read by more than staff
    for internal in ("Mail flows.", "The snapshot would not restore."):
        assert internal not in incident["description"]
    assert run.data["rollback_incident"] == "INC-000042"
    assert record(run)["details"]["rollback_incident"] == "INC-000042"
    review = h.task(run, "review")
    assert "The failed rollback raised incident <strong>INC-000042</strong>." in render_instructions(
        review.instructions, review.data)
    run = h.complete(run, "review", "mona", {"review_notes": "Service restored by INC-000042."})
    assert run.status == "completed" and status(run) == "closed"
    assert len(h.ops.named("start_process")) == 1


def test_the_raised_incident_keeps_to_its_start_form_limits(h: Harness):
    """A diagram's start skips the incident's start form: the change keeps to its limits itself."""
    # the longest title and rollback plan a change has (forms/change_enablement.start.json)
    run = h.start(change("standard", title="x" * 200, rollback_plan="r" * 20000, ci=None))
    run = finish(h, run, verified=False)
    run = h.complete(run, "rollback", "ivan", {"rollback_notes": "No.", "rollback_successful": False})
    [raised] = h.ops.named("start_process")
    incident = raised["data"]
    assert incident["title"].startswith("Failed rollback of change: xxx") and len(incident["title"]) == 200
    assert "the service it changed may be down" in incident["description"] and incident["ci"] is None
    assert len(incident["description"]) == 10000
    assert run.data["rollback_incident"] == "INC-000042"


# -- risk decision ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("impact", "users", "rollback", "tested", "risk"), [
    ("high", 10, "hard", True, "high"),
    ("high", 10, "easy", False, "high"),
    ("high", 10, "easy", True, "medium"),
    ("medium", 50, "hard", False, "high"),
    ("medium", 5000, "hard", True, "high"),
    ("medium", 500, "hard", True, "medium"),
    ("medium", 100, "easy", True, "medium"),
    ("medium", 99, "easy", False, "medium"),
    ("medium", 99, "easy", True, "low"),
    ("low", 1000, "easy", True, "medium"),
    ("low", 10, "hard", False, "medium"),
    ("low", 10, "hard", True, "low"),
    ("low", 999, "easy", False, "low"),
])
def test_change_risk_decision(h: Harness, impact: str, users: int, rollback: str, tested: bool, risk: str):
    run = h.start(change())
    run = h.complete(run, "assess", "mona", {"impact": impact, "affected_users": users,
                                             "rollback_difficulty": rollback, "has_tested": tested,
                                             "implementer": "ivan"})
    assert run.data["risk"] == risk
    expected = ["manager_approve"] if risk == "low" else ["cab_vote"] * 3
    assert [t.bpmn_id for t in run.user_tasks()] == expected


# -- forms ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "bad", "field"), [
    ("change-assess.json", {**ASSESS_LOW, "impact": "extreme"}, "impact"),
    ("change-assess.json", {**ASSESS_LOW, "affected_users": -1}, "affected_users"),
    ("change-assess.json", {**ASSESS_LOW, "implementer": ""}, "implementer"),
    ("change-assess.json", {**ASSESS_LOW, "implementer": "nobody"}, "implementer"),  # not an implementer
    ("change-approve.json", {"approved": False}, "approval_comment"),
    ("change-approve.json", {"approval_comment": "ok"}, "approved"),
    ("change-revise.json", {"revision_decision": "maybe"}, "revision_decision"),
    ("change-revise.json", {"revision_decision": "resubmit", "change_type": "standard"}, "change_type"),
    ("change-schedule.json", {"planned_start": "next Tuesday", "planned_end": "2026-03-11T21:30:00Z"},
     "planned_start"),
    ("change-implement.json", {"implementation_notes": "x", "actual_start": "2026-03-11T20:05:00"}, "actual_end"),
    ("change-verify.json", {"verification_notes": "?"}, "verified"),
    ("change-rollback.json", {"rollback_notes": "x"}, "rollback_successful"),
    ("change-review.json", {"lessons": "x"}, "review_notes"),
])
def test_forms_refuse_bad_submissions(name: str, bad: dict[str, Any], field: str):
    with pytest.raises(ValidationFailed) as info:
        validate_submission(form(name) or {}, form(name.replace(".json", ".ui.json")), bad, {}, members=members)
    assert field in info.value.details["fields"]


def test_web_form_posts_are_understood():
    cleaned = validate_submission(form("change-assess.json") or {}, form("change-assess.ui.json"),
                                  {"impact": "medium", "affected_users": "250", "rollback_difficulty": "easy",
                                   "implementer": "ivan"}, {}, coerce_strings=True, members=members)
    assert cleaned["affected_users"] == 250 and cleaned["has_tested"] is False
    cleaned = validate_submission(form("change-approve.json") or {}, form("change-approve.ui.json"),
                                  {"approved": "false", "approval_comment": "No."},
                                  {"risk": "high", "implementer": "ivan"}, coerce_strings=True)
    assert cleaned == {"risk": "high", "implementer": "ivan", "approved": False, "approval_comment": "No."}
