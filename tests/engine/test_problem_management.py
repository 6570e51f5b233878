"""problem_management.bpmn: every path, driven through the engine with fake platform operations
that link the incidents, publish the known error, raise the fix changes and answer what state
each fix change's record is in (``Harness.changes``, moved on by the tests as people would move
the change on).

The shared harness (tests/engine/harness.py) round-trips the state after every step and validates
every submission against the task's form first, as the platform does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest

from app.engine import WorkflowRun
from app.errors import ValidationFailed
from app.services.execution import task_assignment
from app.services.forms import check_form_definition, render_instructions, validate_submission
from tests.engine.harness import (
    ROOT,
    FakeOperations,
    ProcessHarness,
    compile_process,
    compiled,
    identity,
    max_depth,
    offered_groups,
    source_files,
)

PROCESS_ID = "problem_management"
SOURCES = (f"{PROCESS_ID}.bpmn", f"{PROCESS_ID}.record.json")
FORMS = ("problem-triage", "problem-rca", "problem-verify", "problem-close")


#: A fix change's record as the platform answers ``get_linked_record`` (status, open, result).
RAISED = ("assessment", True, None)
SCHEDULED = ("scheduled", True, None)
REJECTED = ("rejected", True, None)  # its requester revises and resubmits, or withdraws it
VERIFYING = ("verifying", True, None)  # implemented, not yet confirmed by its requester
IMPLEMENTED = ("review", True, "successful")
CLOSED = ("closed", False, "successful")
ROLLING_BACK = ("rolling_back", True, "verification_failed")  # failed its verification: no final result yet
ROLLED_BACK = ("review", True, "rolled_back")
WITHDRAWN = ("withdrawn", False, None)
CANCELLED = ("cancelled", False, None)


def operations(changes: dict[str, tuple[str, bool, str | None]]) -> FakeOperations:
    """Links, known-error articles and fix changes as the platform would answer them, numbered from 1;
    a raised change starts in assessment, and its record reads as ``changes`` says."""
    articles, numbers = count(1), count(1)

    def article(params: dict[str, Any]) -> dict[str, Any]:
        n = next(articles)
        return {"id": n, "number": f"KB-{n:06d}"}

    def fix_change(params: dict[str, Any]) -> dict[str, Any]:
        n = next(numbers)
        changes[f"CHG-{n:06d}"] = RAISED
        return {"instance_id": 100 + n, "number": f"CHG-{n:06d}"}

    def linked_record(params: dict[str, Any]) -> dict[str, Any]:
        status, is_open, result = changes[params["number"]]  # only the changes it raised are linked
        return {"number": params["number"], "kind": "change", "title": "Fix", "status": status, "open": is_open,
                "resolved_at": None, "closed_at": None if is_open else "2026-03-09T10:00:00+00:00",
                "details": {name: result if name == "result" else None for name in params["details"]}}

    return FakeOperations({
        "link_records": lambda params: {"linked": list(params["numbers"])},
        "create_knowledge_article": article,
        "comment_linked_records": lambda params: {"count": 2},
        "start_process": fix_change,
        "get_linked_record": linked_record,
    })


class Harness(ProcessHarness):
    one_at_a_time = True

    def __init__(self) -> None:
        self.changes: dict[str, tuple[str, bool, str | None]] = {}
        super().__init__(compiled(*SOURCES, forms="problem"), operations(self.changes))

    def waiting(self, run: WorkflowRun) -> None:
        """The problem waits for its fix change: no task for anyone, a re-check on the clock."""
        assert run.status == "running" and run.user_tasks() == [], [t.bpmn_id for t in run.user_tasks()]
        assert run.next_timer_at() == self.clock.now() + CHECK_INTERVAL
        assert run.data["ticket_status"] == "fix_in_progress"

    def recheck(self, run: WorkflowRun, change: str | None = None,
                state: tuple[str, bool, str | None] | None = None) -> WorkflowRun:
        """The fix change (optionally) moves on to ``state``; the next re-check comes due and fires."""
        if change is not None and state is not None:
            self.changes[change] = state
        due = run.next_timer_at()
        assert due is not None, "the problem is not waiting for its fix change"
        self.clock.set(due + timedelta(seconds=1))
        fired = run.fire_due_timers()
        assert [f["bpmn_id"] for f in fired] == ["wait_fix_change"]
        assert run.failure is None, run.failure
        return self.roundtrip(run)

    def implemented(self, run: WorkflowRun, change: str) -> WorkflowRun:
        """The fix change is implemented and confirmed; at its next re-check the fix is verified."""
        self.waiting(run)
        return self.recheck(run, change, IMPLEMENTED)

    def start(self, data: dict[str, Any], starter: str = "sam") -> WorkflowRun:
        run = self.launch(data, identity(starter))
        assert run.failure is None, run.failure
        return run

    def complete(self, run: WorkflowRun, bpmn_id: str, data: dict[str, Any], user: str) -> WorkflowRun:
        """Validate like the platform (form, then setUserVar) and complete the one ready task."""
        task = self.task(run, bpmn_id)
        assert "instructions-error" not in render_instructions(task.instructions, task.data)
        return self.submit(run, task, data, identity(user, "sam"))


START = {
    "title": "Outlook disconnects every morning",
    "description": "Users on floor 3 lose their mail connection between 08:30 and 09:00.",
    "record_number": "PRB-000007",
}
TRIAGE = {"priority": "P2", "category": "software", "assignment_group": "ApplicationSupport",
          "triage_notes": "Six incidents this week."}
RCA_PLAIN = {"cause_category": "configuration", "root_cause": "A login script maps a retired file share and hangs.",
             "fix_needs_change": False}
RCA_WORKAROUND = {**RCA_PLAIN, "symptoms": "Outlook shows 'Disconnected' after logon.",
                  "workaround": "Restart Outlook after the logon script finished."}
RCA_CHANGE = {**RCA_WORKAROUND, "fix_needs_change": True,
              "proposed_fix": "Remove the retired share from the login script in the AD group policy."}
CHECK_INTERVAL = timedelta(hours=1)


@pytest.fixture()
def h() -> Harness:
    return Harness()


def triaged(h: Harness, data: dict[str, Any] | None = None) -> WorkflowRun:
    run = h.start({**START, **(data or {})})
    assert h.task(run, "triage").data["ticket_status"] == "new"
    return h.complete(run, "triage", TRIAGE, "pam")


def close(h: Harness, run: WorkflowRun) -> WorkflowRun:
    close_task = h.task(run, "close_problem")
    assert close_task.data["ticket_status"] == "resolved"
    assert run.data["ticket_status"] == "resolved"
    run = h.complete(run, "close_problem", {"closure_notes": "Fixed and monitored for two weeks."}, "pam")
    assert run.status == "completed"
    assert run.data["ticket_status"] == "closed" and run.data["closed_by"] == "pam"
    return run


# -- deployment and forms --------------------------------------------------------------------------


def test_deploys_with_the_platform_operators_and_its_forms():
    process = compile_process(source_files(*SOURCES, forms="problem"))
    assert process.process_id == PROCESS_ID
    assert process.lanes == ("ProblemManagers", "Resolvers")
    assert {t.bpmn_id: t.lane for t in process.user_tasks} == {
        "triage": "ProblemManagers", "analyse_root_cause": "Resolvers", "verify_fix": "ProblemManagers",
        "close_problem": "ProblemManagers"}
    assert set(process.forms) == {f"{n}.json" for n in FORMS} | {f"{n}.ui.json" for n in FORMS}
    for name in FORMS:
        check_form_definition(process.forms[f"{name}.json"], process.forms[f"{name}.ui.json"], f"{name}.json")
    assert process.record_mapping["kind"] == "problem" and process.record_mapping["prefix"] == "PRB"
    xml = (ROOT / "processes" / f"{PROCESS_ID}.bpmn").read_text()
    assert "<bpmndi:BPMNDiagram" in xml and 'bpmnElement="analyse_and_fix"' in xml
    assert "standardLoopCharacteristics" in xml


@pytest.mark.parametrize(("form", "data", "field"), [
    ("problem-triage", {**TRIAGE, "priority": "P5"}, "priority"),
    ("problem-triage", {**TRIAGE, "assignment_group": "CAB"}, "assignment_group"),  # no agent: not offered
    ("problem-triage", {"priority": "P1", "assignment_group": "NetworkTeam"}, "category"),
    ("problem-rca", {"cause_category": "configuration", "fix_needs_change": False}, "root_cause"),
    ("problem-rca", {**RCA_PLAIN, "cause_category": "gremlins"}, "cause_category"),
    ("problem-rca", {**RCA_PLAIN, "fix_needs_change": "maybe"}, "fix_needs_change"),
    ("problem-verify", {"verification_notes": "looked fine"}, "fix_verified"),
    ("problem-close", {"closure_notes": "ok"}, "closure_notes"),
])
def test_forms_refuse_bad_submissions(h: Harness, form: str, data: dict[str, Any], field: str):
    with pytest.raises(ValidationFailed) as info:
        validate_submission(h.process.forms[f"{form}.json"], h.process.forms[f"{form}.ui.json"], data, {},
                            groups=offered_groups)
    assert field in info.value.details["fields"]


# -- paths -------------------------------------------------------------------------------------------


def test_plain_problem_without_incidents_workaround_or_change(h: Harness):
    run = h.start({"title": START["title"], "description": START["description"]})
    triage = h.task(run, "triage")
    assert triage.lane == "ProblemManagers" and triage.name == "Triage and prioritise problem"
    assert triage.form == "problem-triage.json" and triage.properties["setUserVar"] == "problem_manager"
    assert triage.data["requester"] == "sam" and triage.data["related_incidents"] == []
    assert triage.data["record_number"] == ""  # the platform normally supplies it
    assert h.ops.calls == []  # nothing to link
    assert h.record(run)["status"] == "new"

    run = h.complete(run, "triage", TRIAGE, "pam")
    assert run.data["ticket_status"] == "analysis"  # set by triage, visible at the top level
    rca = h.task(run, "analyse_root_cause")
    assert rca.name == "Analyse root cause" and rca.lane == "Resolvers"
    assert rca.properties["candidateGroupVar"] == "assignment_group"
    assert rca.properties["setUserVar"] == "assignee"
    assert task_assignment(rca) == (None, "ApplicationSupport")
    assert rca.data["ticket_status"] == "analysis"
    assert h.record(run)["assignment_group"] == "ApplicationSupport"

    run = h.complete(run, "analyse_root_cause", RCA_PLAIN, "ann")
    assert h.ops.calls == []
    record = h.record(run)
    assert record["status"] == "resolved" and record["assignee"] == "ann" and record["priority"] == "P2"
    assert record["details"] == {"root_cause": RCA_PLAIN["root_cause"], "cause_category": "configuration",
                                 "workaround": "", "known_error_article": None, "fix_change": None,
                                 "fix_change_status": None}
    run = close(h, run)
    assert run.data["closure_notes"] == "Fixed and monitored for two weeks."
    assert h.record(run)["status"] == "closed"
    assert "verify_fix" not in run.history_path() and "publish_known_error" not in run.history_path()


def test_related_incidents_are_linked_and_a_workaround_becomes_a_known_error(h: Harness):
    run = h.start({**START, "related_incidents": ["inc-000001", " INC-000002 ", "INC-000001", ""]})
    assert h.ops.calls == [("link_records", {"numbers": ["INC-000001", "INC-000002"],
                                             "link_type": "related_incident"})]
    assert h.task(run, "triage").data["incident_links"] == {"linked": ["INC-000001", "INC-000002"]}
    assert "Related incidents: INC-000001, INC-000002" in render_instructions(
        h.task(run, "triage").instructions, h.task(run, "triage").data)

    run = h.complete(run, "triage", TRIAGE, "pam")
    run = h.complete(run, "analyse_root_cause", RCA_WORKAROUND, "ann")
    assert h.ops.named("create_knowledge_article") == [{
        "title": "Known error: Outlook disconnects every morning",
        "symptoms": RCA_WORKAROUND["symptoms"],
        "cause": RCA_WORKAROUND["root_cause"],
        "workaround": RCA_WORKAROUND["workaround"],
        "article": None,  # none published yet: a new one
    }]
    assert h.ops.named("comment_linked_records") == [{
        "kind": "incident",
        "body": "Known error KB-000001 has a workaround: Restart Outlook after the logon script finished.",
    }]
    record = h.record(run)
    assert record["details"]["known_error_article"] == "KB-000001"
    assert record["details"]["workaround"] == RCA_WORKAROUND["workaround"]
    assert record["status"] == "resolved"  # no change needed: straight on to closure
    history = run.history_path()
    assert history.index("publish_known_error") < history.index("tell_incidents") < history.index("record_known_error")
    close(h, run)


def test_related_incidents_typed_as_one_text_are_split(h: Harness):
    run = h.start({**START, "related_incidents": "INC-000003, inc-000004;INC-000003"})
    assert h.task(run, "triage").data["related_incidents"] == ["INC-000003", "INC-000004"]
    assert h.ops.named("link_records") == [{"numbers": ["INC-000003", "INC-000004"], "link_type": "related_incident"}]


def test_symptoms_default_to_the_description(h: Harness):
    run = triaged(h)
    run = h.complete(run, "analyse_root_cause", {**RCA_WORKAROUND, "symptoms": ""}, "ann")
    [article] = h.ops.named("create_knowledge_article")
    assert article["symptoms"] == START["description"]  # an emptied field falls back too
    h2 = Harness()
    run = triaged(h2)
    data = {k: v for k, v in RCA_WORKAROUND.items() if k != "symptoms"}
    run = h2.complete(run, "analyse_root_cause", data, "ann")
    [article] = h2.ops.named("create_knowledge_article")
    assert article["symptoms"] == START["description"]


def test_fix_in_progress_while_the_fix_change_is_raised_implemented_and_verified(h: Harness):
    run = triaged(h)
    before = h.clock.now()  # scripts' now() reads the engine clock
    run = h.complete(run, "analyse_root_cause", RCA_CHANGE, "ann")
    after = h.clock.now()
    [change] = h.ops.named("start_process")
    assert change["process_id"] == "change_enablement" and change["link_type"] == "fix_change"
    data = change["data"]
    assert data["title"] == "Fix for PRB-000007: Outlook disconnects every morning"
    assert data["change_type"] == "normal"
    assert data["implementation_plan"] == RCA_CHANGE["proposed_fix"]
    assert data["rollback_plan"] and data["test_plan"] and "PRB-000007" in data["reason"]
    assert RCA_CHANGE["root_cause"] in data["description"]
    assert (data["priority"], data["category"], data["assignment_group"]) == ("P2", "software", "ApplicationSupport")
    start, end = datetime.fromisoformat(data["planned_start"]), datetime.fromisoformat(data["planned_end"])
    assert start.tzinfo is not None and start.minute == 0
    assert before + timedelta(days=3, hours=-1) <= start <= after + timedelta(days=3)
    assert end - start == timedelta(hours=2)

    # the fix is in progress: the problem waits for its change, the known error stays documented
    h.waiting(run)
    assert h.ops.named("get_linked_record") == [{"number": "CHG-000001", "details": ["result"]}]
    record = h.record(run)
    assert record["status"] == "fix_in_progress"
    assert record["details"]["fix_change"] == "CHG-000001" and record["details"]["fix_change_status"] == "assessment"
    assert record["details"]["known_error_article"] == "KB-000001"

    run = h.implemented(run, "CHG-000001")
    assert len(h.ops.named("get_linked_record")) == 2
    verify = h.task(run, "verify_fix")
    assert verify.name == "Verify fix" and verify.form == "problem-verify.json"
    assert verify.lane == "ProblemManagers" and "candidateGroupVar" not in verify.properties
    assert task_assignment(verify) == (None, None)  # the lane decides
    assert verify.data["ticket_status"] == "fix_in_progress"
    assert verify.data["fix_change_outcome"] == "implemented"
    assert "CHG-000001" in render_instructions(verify.instructions, verify.data)
    assert "is implemented (change result: successful)" in render_instructions(verify.instructions, verify.data)
    assert run.next_timer_at() is None  # nothing more to look at
    record = h.record(run)
    # the verdict, not the status "review" the change will leave unheard-of (it is no longer followed)
    assert record["status"] == "fix_in_progress" and record["details"]["fix_change_status"] == "successful"

    run = h.complete(run, "verify_fix", {"fix_verified": True, "verification_notes": "No disconnects for a week."},
                     "pam")
    assert run.data["verified_by"] == "pam" and run.data["fix_verified"] is True
    assert len(h.ops.named("start_process")) == 1
    close(h, run)


def test_change_without_workaround_uses_default_plan_and_platform_number(h: Harness):
    run = h.start({"title": "Core switch reboots", "description": "Switch SW-CORE-2 reboots under load."})
    run = h.complete(run, "triage", {**TRIAGE, "category": "network", "assignment_group": "NetworkTeam"}, "pam")
    run = h.complete(run, "analyse_root_cause", {"cause_category": "software_defect",
                                                 "root_cause": "Firmware 9.1 leaks memory in the ARP table.",
                                                 "fix_needs_change": True}, "nick")
    assert h.ops.named("create_knowledge_article") == []
    [change] = h.ops.named("start_process")
    assert change["data"]["title"] == "Fix for problem: Core switch reboots"
    assert change["data"]["implementation_plan"].endswith("Firmware 9.1 leaks memory in the ARP table.")
    run = h.implemented(run, "CHG-000001")
    assert h.task(run, "verify_fix").data["ticket_status"] == "fix_in_progress"
    run = h.complete(run, "verify_fix", {"fix_verified": True}, "pam")
    close(h, run)


def test_failed_fix_goes_back_to_analysis_without_deepening_the_tree(h: Harness):
    run = triaged(h)
    depths = []
    for round_no in range(1, 4):
        rca = h.task(run, "analyse_root_cause")
        assert rca.data["ticket_status"] == "analysis" and rca.data["fix_verified"] is False
        if round_no > 1:
            assert rca.data["fix_change"] == f"CHG-{round_no - 1:06d}"
            assert "did not remove the problem" in render_instructions(rca.instructions, rca.data)
        run = h.complete(run, "analyse_root_cause", RCA_CHANGE, "ann")
        run = h.implemented(run, f"CHG-{round_no:06d}")
        verify = h.task(run, "verify_fix")
        assert verify.data["fix_change"] == f"CHG-{round_no:06d}" and verify.data["ticket_status"] == "fix_in_progress"
        run = h.complete(run, "verify_fix", {"fix_verified": False, "verification_notes": "Still disconnects."}, "pam")
        depths.append(max_depth(run))
    assert depths[1] == depths[2] <= depths[0]  # finished rounds are compacted away: never deeper
    # the known error was published once; the incidents heard about it once
    assert len(h.ops.named("create_knowledge_article")) == 1
    assert len(h.ops.named("comment_linked_records")) == 1
    assert len(h.ops.named("start_process")) == 3

    run = h.complete(run, "analyse_root_cause", RCA_CHANGE, "ann")
    run = h.implemented(run, "CHG-000004")
    run = h.complete(run, "verify_fix", {"fix_verified": True}, "pam")
    record = h.record(run)
    assert record["status"] == "resolved" and record["details"]["fix_change"] == "CHG-000004"
    assert record["details"]["known_error_article"] == "KB-000001"
    close(h, run)


def test_reanalysis_that_needs_no_change_ends_the_cycle(h: Harness):
    run = triaged(h)
    run = h.complete(run, "analyse_root_cause", RCA_CHANGE, "ann")
    run = h.implemented(run, "CHG-000001")
    run = h.complete(run, "verify_fix", {"fix_verified": False, "verification_notes": "still reboots"}, "pam")
    run = h.complete(run, "analyse_root_cause",
                     {**RCA_PLAIN, "root_cause": "A user-side cache setting; fixed by the desktop policy refresh."},
                     "ann")
    assert len(h.ops.named("start_process")) == 1
    record = h.record(run)
    assert record["status"] == "resolved" and record["details"]["fix_change"] == "CHG-000001"
    close(h, run)


# -- the fix change: the problem waits until it is implemented ------------------------------------------


def test_the_fix_cannot_be_verified_or_closed_while_its_change_is_open(h: Harness):
    run = triaged(h)
    run = h.complete(run, "analyse_root_cause", RCA_CHANGE, "ann")
    h.waiting(run)
    assert "verify_fix" not in run.history_path() and "close_problem" not in run.history_path()
    # the change is assessed, rejected (its requester revises it), scheduled, implemented and then
    # checked by its requester: through all of it the problem stays in "fix in progress"
    for state in (RAISED, REJECTED, SCHEDULED, VERIFYING):
        run = h.recheck(run, "CHG-000001", state)
        h.waiting(run)
        record = h.record(run)
        assert record["status"] == "fix_in_progress" and record["details"]["fix_change_status"] == state[0]
        assert run.data["fix_change_outcome"] == "open"
    assert [p["number"] for p in h.ops.named("get_linked_record")] == ["CHG-000001"] * 5
    assert len(h.ops.named("start_process")) == 1  # one change, however often it is looked at

    run = h.recheck(run, "CHG-000001", CLOSED)  # implemented and already closed: just as good
    verify = h.task(run, "verify_fix")
    # the verdict, however far the change had gone when it was read
    assert verify.data["fix_change_status"] == "successful" and run.next_timer_at() is None
    run = h.complete(run, "verify_fix", {"fix_verified": True}, "pam")
    close(h, run)


@pytest.mark.parametrize(("state", "said"), [
    (WITHDRAWN, "The fix change CHG-000001 was not implemented (change status: withdrawn)"),
    (CANCELLED, "The fix change CHG-000001 was not implemented (change status: cancelled)"),
    (ROLLED_BACK, "Fix change CHG-000001 failed its verification and was rolled back."),
    (("review", True, "rollback_failed"), "Fix change CHG-000001 failed its verification and its rollback failed: "
                                          "the change raised an incident for the service it left broken."),
    (("cancelled", False, "verification_failed"),  # cancelled while it was being rolled back
     "Fix change CHG-000001 failed its verification and was cancelled before its rollback was recorded."),
])
def test_a_change_withdrawn_or_failed_sends_the_problem_back_to_analysis(h: Harness, state, said):
    run = triaged(h)
    run = h.complete(run, "analyse_root_cause", RCA_CHANGE, "ann")
    run = h.recheck(run, "CHG-000001", SCHEDULED)
    if state[2] is not None:
        # failed its verification and being rolled back: still open, the problem waits for the
        # change's final result and says nothing yet
        run = h.recheck(run, "CHG-000001", ROLLING_BACK)
        h.waiting(run)
        record = h.record(run)
        assert record["status"] == "fix_in_progress" and record["details"]["fix_change_status"] == "rolling_back"
        assert run.data["fix_change_outcome"] == "open" and run.data["fix_change_note"] == ""
    run = h.recheck(run, "CHG-000001", state)

    rca = h.task(run, "analyse_root_cause")  # back in the resolvers' queue, nothing to verify
    assert task_assignment(rca) == (None, "ApplicationSupport")
    assert rca.data["ticket_status"] == "analysis" and rca.data["fix_verified"] is False
    text = render_instructions(rca.instructions, rca.data)
    assert said in text and "did not remove the problem" not in text
    assert run.next_timer_at() is None  # the old change is no longer followed
    record = h.record(run)
    # a failed change's status would go stale once it is no longer followed: the verdict stays
    failed = state[2] is not None
    assert record["status"] == "analysis" and record["details"]["fix_change_status"] == ("failed" if failed else state[0])
    note = run.data["fix_change_note"]
    assert note.startswith("Fix change CHG-000001 failed its verification" if failed
                           else f"Fix change CHG-000001 was not implemented (change status: {state[0]})")
    assert note.endswith("The problem is back in root cause analysis, where another fix can be raised.")
    assert "verify_fix" not in run.history_path()

    # the next round's fix gets a change of its own, followed until it is implemented
    run = h.complete(run, "analyse_root_cause", {**RCA_CHANGE, "proposed_fix": "Rewrite the login script."}, "ann")
    assert [c["data"]["implementation_plan"] for c in h.ops.named("start_process")] == [
        RCA_CHANGE["proposed_fix"], "Rewrite the login script."]
    run = h.implemented(run, "CHG-000002")
    verify = h.task(run, "verify_fix")
    assert verify.data["fix_change"] == "CHG-000002"
    run = h.complete(run, "verify_fix", {"fix_verified": True}, "pam")
    assert h.record(run)["details"]["fix_change"] == "CHG-000002"
    close(h, run)
    assert len(h.ops.named("create_knowledge_article")) == 1  # the known error was published once


def test_the_verify_form_shows_the_change_and_keeps_it(h: Harness):
    run = triaged(h)
    run = h.complete(run, "analyse_root_cause", RCA_CHANGE, "ann")
    run = h.implemented(run, "CHG-000001")
    verify = h.task(run, "verify_fix")
    schema, ui = h.task_forms(verify)
    assert schema["properties"]["fix_change"]["readOnly"] is True
    assert schema["properties"]["fix_change_status"]["readOnly"] is True
    # read-only: what is sent for them is ignored, the task's data is kept
    clean = validate_submission(schema, ui, {"fix_verified": True, "fix_change": "CHG-999999",
                                             "fix_change_status": "closed"}, verify.data)
    assert (clean["fix_change"], clean["fix_change_status"]) == ("CHG-000001", "successful")
    # a failed verification still needs its notes
    with pytest.raises(ValidationFailed) as info:
        validate_submission(schema, ui, {"fix_verified": False}, verify.data)
    assert "verification_notes" in info.value.details["fields"]


def test_a_long_wait_for_the_change_keeps_the_tree_flat(h: Harness):
    run = triaged(h)
    run = h.complete(run, "analyse_root_cause", RCA_CHANGE, "ann")
    depths, sizes = [], []
    for n in range(1, 201):  # about eight days of hourly looks
        run = h.recheck(run, "CHG-000001", SCHEDULED if n < 100 else VERIFYING)
        if n % 50 == 0:
            h.waiting(run)
            depths.append(max_depth(run))
            sizes.append(len(run.dump()))
    assert max(depths) <= 70, depths  # trimmed (app/engine/trim.py): not one level per look
    assert max(sizes) < 2 * min(sizes), sizes
    run = h.recheck(run, "CHG-000001", IMPLEMENTED)
    assert len(h.ops.named("get_linked_record")) == 202
    run = h.complete(run, "verify_fix", {"fix_verified": True}, "pam")
    close(h, run)
