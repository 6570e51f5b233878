"""incident_management.bpmn at engine level: every path, dump -> restore -> dump after every step.

Forms are validated with the platform's validate_submission before each submission (good data is
accepted, bad data refused), and the platform's ``setUserVar`` is emulated by the harness.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.engine import ScriptIdentity, TaskNotReady, WorkflowRun
from app.errors import ValidationFailed
from app.services.forms import check_form_definition, render_instructions, validate_submission
from app.services.records import check_mapping
from tests.engine.harness import ROOT, FakeOperations, ProcessHarness, compiled, max_depth, offered_groups, user

PROCESS_ID = "incident_management"
SOURCES = (f"{PROCESS_ID}.bpmn", "priority_matrix.dmn", f"{PROCESS_ID}.record.json")
#: What the platform answers the operations this process calls.
ANSWERS = {
    "start_process": lambda params: {"instance_id": 77, "number": "PRB-000007"},
    "notify": lambda params: {"notified": 3},
}

RITA = user("rita", ["Requesters"])
ALEX = user("alex", ["ServiceDesk", "NetworkTeam"])
NINA = user("nina", ["NetworkTeam"])
MIKE = user("mike", ["MajorIncidentManagers"])


class Harness(ProcessHarness):
    def __init__(self) -> None:
        super().__init__(compiled(*SOURCES, forms="incident"), FakeOperations(ANSWERS), script_time_limit=1.0)

    def start(self, **data: Any) -> WorkflowRun:
        start = {"title": "VPN down", "description": "Cannot connect to the VPN from home",
                 "category": "network", "impact": "medium", "urgency": "medium", "record_number": "INC-000042"}
        start.update(data)
        return self.launch(start, ScriptIdentity(current_user=RITA, initiator=RITA))

    def complete(self, run: WorkflowRun, bpmn_id: str, data: dict[str, Any], actor: dict[str, Any]) -> WorkflowRun:
        return self.submit(run, self.task(run, bpmn_id), data, ScriptIdentity(current_user=actor, initiator=RITA))

    def rejects(self, run: WorkflowRun, bpmn_id: str, data: dict[str, Any]) -> dict[str, list[str]]:
        task = self.task(run, bpmn_id)
        schema, ui = self.task_forms(task)
        with pytest.raises(ValidationFailed) as info:
            validate_submission(schema, ui, data, task.data, groups=offered_groups)
        return info.value.details["fields"]

    # common steps

    def triage(self, run: WorkflowRun, **changes: Any) -> WorkflowRun:
        task = self.task(run, "triage")
        data = {"category": task.data["category"], "priority": task.data["priority"], "assignment_group": "NetworkTeam"}
        data.update(changes)
        return self.complete(run, "triage", data, ALEX)

    def resolve(self, run: WorkflowRun, notes: str = "Restarted the VPN concentrator", **extra: Any) -> WorkflowRun:
        data = {"outcome": "resolve", "resolution_notes": notes, "cause_category": "configuration"}
        data.update(extra)
        return self.complete(run, "investigate", data, NINA)


def status(run: WorkflowRun, bpmn_id: str | None = None) -> Any:
    """ticket_status as the process sees it: from a ready task, or the instance data."""
    if bpmn_id is not None:
        return next(t for t in run.user_tasks() if t.bpmn_id == bpmn_id).data["ticket_status"]
    return run.data["ticket_status"]


def ready(run: WorkflowRun) -> list[str]:
    return sorted(t.bpmn_id for t in run.user_tasks())


@pytest.fixture()
def h() -> Harness:
    return Harness()


# -- definitions -------------------------------------------------------------------------------------


def test_definition_compiles_with_platform_operators_forms_and_record_mapping(h: Harness):
    process = h.process
    assert process.process_id == PROCESS_ID
    assert process.lanes == ("MajorIncidentManagers", "Resolvers", "ServiceDesk")
    assert {t.bpmn_id: t.form for t in process.user_tasks} == {
        "triage": "incident-triage.json", "coordinate_major": "incident-major.json",
        "investigate": "incident-investigate.json", "resume_work": "incident-resume.json",
        "resume_vendor_work": "incident-resume.json",
        "confirm_resolution": "incident-confirm.json",
    }
    for name, form in process.forms.items():
        if not name.endswith(".ui.json"):
            ui_name = name[: -len(".json")] + ".ui.json"
            check_form_definition(form, process.forms.get(ui_name), name)
    mapping = process.record_mapping
    assert mapping is not None
    check_mapping(mapping, "incident_management.record.json")
    assert mapping["fields"]["status"] == "ticket_status" and mapping["prefix"] == "INC"
    assert set(mapping["details"]) == {"resolution_notes", "cause_category", "pending_on", "pending_reason",
                                       "reopen_count", "closed_reason", "rating"}
    bpmn = (ROOT / "processes" / "incident_management.bpmn").read_text()
    for plane in ("incident_management_plane", "work_plane", "investigation_plane"):
        assert f'id="{plane}"' in bpmn, f"diagram layout missing for {plane}"
    assert "<bpmn:parallelGateway" in bpmn and "standardLoopCharacteristics" in bpmn


def test_generated_diagram_is_up_to_date():
    import importlib.util

    spec = importlib.util.spec_from_file_location("im_tool", ROOT / "tools" / "processes" / "incident_management.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.to_xml() == (ROOT / "processes" / "incident_management.bpmn").read_text()


@pytest.mark.parametrize(("impact", "urgency", "priority"), [
    ("high", "high", "P1"), ("high", "medium", "P2"), ("medium", "high", "P2"),
    ("high", "low", "P3"), ("medium", "medium", "P3"), ("low", "high", "P3"),
    ("medium", "low", "P4"), ("low", "medium", "P4"), ("low", "low", "P4"),
])
def test_priority_matrix_covers_every_impact_and_urgency(h: Harness, impact: str, urgency: str, priority: str):
    run = h.start(impact=impact, urgency=urgency)
    triage = h.task(run, "triage")
    assert triage.data["priority"] == priority and triage.data["suggested_priority"] == priority


def test_bad_impact_fails_at_registration_with_a_clear_message(h: Harness):
    run = h.engine.start(h.bundle, {"title": "x", "description": "y", "category": "system", "impact": "huge",
                                    "urgency": "low"}, ScriptIdentity(current_user=RITA, initiator=RITA), operations=h.ops)
    assert run.status == "error"
    assert run.failure is not None and run.failure.element_id == "register"
    assert "high, medium or low" in run.failure.message


# -- paths -------------------------------------------------------------------------------------------


def test_p3_straight_resolve_and_confirm(h: Harness):
    run = h.start(service="VPN", ci="vpn-gw-01")
    triage = h.task(run, "triage")
    assert (triage.name, triage.lane, triage.form, triage.ui_form) == (
        "Triage incident", "ServiceDesk", "incident-triage.json", "incident-triage.ui.json")
    data = triage.data
    assert data["requester"] == "rita" and data["ticket_status"] == "new" and data["reopen_count"] == 0
    assert data["auto_close_after"] == "P3D" and data["priority"] == "P3"
    assert (data["service"], data["ci"]) == ("VPN", "vpn-gw-01")
    assert h.rejects(run, "triage", {"category": "network", "priority": "P9", "assignment_group": "Nobody"}).keys() == {
        "priority", "assignment_group"}
    assert "category" in h.rejects(run, "triage", {"priority": "P3", "assignment_group": "NetworkTeam"})

    run = h.triage(run)
    assert ready(run) == ["investigate"]
    investigate = h.task(run, "investigate")
    assert investigate.name == "Investigate and resolve" and investigate.lane == "Resolvers"
    assert investigate.properties["candidateGroupVar"] == "assignment_group"
    assert investigate.properties["setUserVar"] == "assignee"
    assert investigate.data["assignment_group"] == "NetworkTeam" and investigate.data["ticket_status"] == "in_progress"
    assert investigate.data["raise_problem"] is False
    assert "outcome" in h.rejects(run, "investigate", {"resolution_notes": "x"})
    assert "cause_category" in h.rejects(run, "investigate", {"outcome": "resolve", "cause_category": "gremlins"})

    run = h.resolve(run)
    confirm = h.task(run, "confirm_resolution")
    assert confirm.properties["assignedUserVar"] == "requester" and confirm.data["requester"] == "rita"
    assert confirm.data["ticket_status"] == "resolved" and confirm.data["assignee"] == "nina"
    assert run.data["ticket_status"] == "resolved"
    assert run.next_timer_at() == h.clock.now() + timedelta(days=3)
    assert "confirmed" in h.rejects(run, "confirm_resolution", {"comment": "?"})

    run = h.complete(run, "confirm_resolution", {"confirmed": True}, RITA)
    assert run.status == "completed"
    end = run.data
    assert end["ticket_status"] == "closed" and end["closed_reason"] == "confirmed by requester"
    assert end["reopened"] is False and end["reopen_count"] == 0
    assert (end["resolution_notes"], end["cause_category"], end["assignee"]) == (
        "Restarted the VPN concentrator", "configuration", "nina")
    assert h.ops.calls == []
    assert "coordinate_major" not in run.history_path()
    assert run.next_timer_at() is None


def test_pending_on_customer_then_resume_then_resolve(h: Harness):
    run = h.triage(h.start())
    assert "pending_on" in h.rejects(run, "investigate", {"outcome": "pending", "pending_on": "aliens"})
    run = h.complete(run, "investigate", {"outcome": "pending", "pending_on": "customer",
                                          "pending_reason": "Waiting for the client log"}, NINA)
    resume = h.task(run, "resume_work")
    assert resume.name == "Resume work" and resume.properties["candidateGroupVar"] == "assignment_group"
    assert resume.form == "incident-resume.json"
    assert run.data["ticket_status"] == "pending" and resume.data["pending_on"] == "customer"
    assert run.data["pending_reason"] == "Waiting for the client log"
    assert "update_note" in h.rejects(run, "resume_work", {"update_note": "   "})

    run = h.complete(run, "resume_work", {"update_note": "Log received"}, NINA)
    investigate = h.task(run, "investigate")
    assert investigate.data["ticket_status"] == "in_progress" and investigate.data["update_note"] == "Log received"
    assert run.data["ticket_status"] == "in_progress"
    run = h.resolve(run)
    assert status(run, "confirm_resolution") == "resolved"
    run = h.complete(run, "confirm_resolution", {"confirmed": True, "comment": "thanks"}, RITA)
    assert run.status == "completed" and run.data["ticket_status"] == "closed"
    assert run.data["pending_on"] == "customer"
    assert run.history_path().count("investigate") == 2


def test_incomplete_investigation_is_refused_by_the_form(h: Harness):
    run = h.triage(h.start())
    assert h.rejects(run, "investigate", {"outcome": "resolve", "resolution_notes": "  "}) == {
        "resolution_notes": ["is required when “Outcome” is Resolved"]}
    assert h.rejects(run, "investigate", {"outcome": "pending", "pending_reason": "parts"}) == {
        "pending_on": ["is required when “Outcome” is Pending: waiting for the customer or a vendor"]}
    # Neither raises a problem: the refused answer never reaches the process.
    assert h.rejects(run, "investigate", {"outcome": "resolve", "raise_problem": True}) == {
        "resolution_notes": ["is required when “Outcome” is Resolved"]}
    run = h.resolve(run)
    assert status(run, "confirm_resolution") == "resolved"


def test_incomplete_investigation_from_an_older_form_is_asked_again(h: Harness):
    """The process keeps its own check for answers a form without the condition let through."""
    run = h.triage(h.start())
    task = h.task(run, "investigate")
    run.complete_task(task.id, {"outcome": "resolve", "resolution_notes": "  ", "assignee": "nina"},
                      ScriptIdentity(current_user=NINA, initiator=RITA))
    run = h.roundtrip(run)
    again = h.task(run, "investigate")
    assert again.data["ticket_status"] == "in_progress"
    assert "Resolution notes are required" in again.data["investigation_feedback"]
    assert "Resolution notes are required" in render_instructions(again.instructions, again.data)
    task = h.task(run, "investigate")
    run.complete_task(task.id, {"outcome": "pending", "assignee": "nina"}, ScriptIdentity(current_user=NINA, initiator=RITA))
    run = h.roundtrip(run)
    again = h.task(run, "investigate")
    assert "customer or vendor" in again.data["investigation_feedback"]
    run = h.resolve(run)
    assert status(run, "confirm_resolution") == "resolved"
    assert h.task(run, "confirm_resolution").data["investigation_feedback"] == ""


def test_reopen_twice_then_confirm_keeps_the_task_tree_flat(h: Harness):
    run = h.triage(h.start())
    depths: list[int] = []
    for round_no in (1, 2):
        run = h.resolve(run, notes=f"fix {round_no}")
        depths.append(max_depth(run))
        assert status(run, "confirm_resolution") == "resolved"
        run = h.complete(run, "confirm_resolution", {"confirmed": False, "comment": f"still broken {round_no}"}, RITA)
        investigate = h.task(run, "investigate")
        assert investigate.data["reopened"] is True and investigate.data["reopen_count"] == round_no
        assert investigate.data["ticket_status"] == "in_progress" and run.data["ticket_status"] == "in_progress"
        assert investigate.data["reopen_reason"] == f"still broken {round_no}"
        # the form starts empty; the rejected resolution is kept apart for the instructions
        assert investigate.data["resolution_notes"] == "" and investigate.data["outcome"] == ""
        assert investigate.data["cause_category"] is None
        assert investigate.data["previous_resolution_notes"] == f"fix {round_no}"
    run = h.resolve(run, notes="fix 3")
    depths.append(max_depth(run))
    assert depths[0] == depths[1] == depths[2], depths
    run = h.complete(run, "confirm_resolution", {"confirmed": True}, RITA)
    assert run.status == "completed"
    assert run.data["reopen_count"] == 2 and run.data["reopened"] is False
    assert run.data["ticket_status"] == "closed" and run.data["resolution_notes"] == "fix 3"


def test_many_reopens_keep_the_state_flat(h: Harness):
    run = h.triage(h.start(impact="low", urgency="low"))
    sizes, depths = [], []
    for _ in range(12):
        run = h.resolve(run)
        depths.append(max_depth(run))
        sizes.append(len(run.dump()))
        run = h.complete(run, "confirm_resolution", {"confirmed": False, "comment": "no"}, RITA)
    assert len(set(depths)) == 1
    growth = [b - a for a, b in zip(sizes, sizes[1:], strict=False)]
    # finished rounds are compacted out of the engine's tree: after the first full rounds the state
    # grows by a few bytes per round (the loop's iteration count), not by a whole round. (The second
    # round grows once more: from then on the kept previous round carries the rejected resolution,
    # ``previous_resolution_notes``, which the first round had empty.)
    assert max(growth[2:]) < 200, growth


def test_no_without_a_reason_is_refused_by_the_form(h: Harness):
    run = h.resolve(h.triage(h.start()))
    assert h.rejects(run, "confirm_resolution", {"confirmed": False}) == {
        "comment": ["is required when “Is the incident fixed?” is No, reopen it"]}
    assert "comment" in h.rejects(run, "confirm_resolution", {"confirmed": False, "comment": "  "})
    run = h.complete(run, "confirm_resolution", {"confirmed": False, "comment": "Still no VPN on Wi-Fi"}, RITA)
    investigate = h.task(run, "investigate")
    assert investigate.data["reopen_reason"] == "Still no VPN on Wi-Fi" and investigate.data["reopen_count"] == 1
    assert run.data["ticket_status"] == "in_progress"


def test_no_answer_from_requester_auto_closes(h: Harness):
    run = h.resolve(h.triage(h.start(auto_close_after="PT48H")))
    assert run.next_timer_at() == h.clock.now() + timedelta(hours=48)
    h.clock.advance(timedelta(hours=47))
    run.refresh_timers()
    run = h.roundtrip(run)
    assert ready(run) == ["confirm_resolution"]
    h.clock.advance(timedelta(hours=2))
    run.refresh_timers()
    run = h.roundtrip(run)
    assert run.status == "completed" and run.user_tasks() == []
    assert run.data["ticket_status"] == "closed"
    assert run.data["closed_reason"] == "auto-closed: no answer from requester"
    assert run.data["reopened"] is False
    assert "auto_close" in run.history_path() and "accept_resolution" not in run.history_path()


def test_auto_close_after_a_reopen_leaves_both_loops(h: Harness):
    run = h.resolve(h.triage(h.start()))
    run = h.complete(run, "confirm_resolution", {"confirmed": False, "comment": "nope"}, RITA)
    run = h.resolve(run)
    assert h.task(run, "confirm_resolution").data["reopened"] is True
    confirm = h.task(run, "confirm_resolution")
    h.clock.advance(timedelta(days=3, minutes=1))
    with pytest.raises(TaskNotReady) as info:  # a late answer loses against the due timer
        run.complete_task(confirm.id, {"confirmed": True}, ScriptIdentity(current_user=RITA, initiator=RITA))
    assert info.value.error_type == "timer_expired"
    run = h.roundtrip(run)
    assert run.status == "completed" and run.data["reopen_count"] == 1
    assert run.data["closed_reason"] == "auto-closed: no answer from requester"


def test_no_without_a_reason_from_an_older_form_reopens_and_never_auto_closes(h: Harness):
    """An answer a form without the condition let through still reopens at once: no wait for a
    reason that could end in an auto-close."""
    run = h.resolve(h.triage(h.start()))
    task = h.task(run, "confirm_resolution")
    run.complete_task(task.id, {"confirmed": False}, ScriptIdentity(current_user=RITA, initiator=RITA))
    run = h.roundtrip(run)
    assert ready(run) == ["investigate"] and run.data["ticket_status"] == "in_progress"
    assert h.task(run, "investigate").data["reopen_count"] == 1
    h.clock.advance(timedelta(days=30))
    run.refresh_timers()
    run = h.roundtrip(run)
    assert run.status == "running" and ready(run) == ["investigate"]


def test_p1_runs_major_incident_coordination_in_parallel(h: Harness):
    run = h.start(impact="high", urgency="high", service="VPN")
    assert h.task(run, "triage").data["priority"] == "P1"
    run = h.triage(run)
    assert ready(run) == ["coordinate_major", "investigate"]
    assert h.ops.calls == [("notify", {
        "group": "ServiceOwners", "subject": "Major incident (P1): VPN down",
        "body": "Major incident INC-000042 reported by rita: Cannot connect to the VPN from home"})]
    coordinate = h.task(run, "coordinate_major")
    assert coordinate.name == "Coordinate major incident" and coordinate.lane == "MajorIncidentManagers"
    assert coordinate.form == "incident-major.json"
    assert coordinate.data["service_owners_notified"] == {"notified": 3}
    assert "communication_summary" in h.rejects(run, "coordinate_major", {})
    # the coordination task holds no copy of what the work branch owns, so it cannot mask newer values
    assert "ticket_status" not in coordinate.data and "reopen_count" not in coordinate.data
    assert run.data["ticket_status"] == "in_progress"

    # the work branch moves on while the coordination is still open
    run = h.complete(run, "investigate", {"outcome": "pending", "pending_on": "vendor"}, NINA)
    assert run.data["ticket_status"] == "pending"
    run = h.complete(run, "coordinate_major", {"communication_summary": "Status page updated, bridge open"}, MIKE)
    assert run.data["ticket_status"] == "pending"  # not the major branch's stale "in_progress"
    assert ready(run) == ["resume_vendor_work"]
    run = h.complete(run, "resume_vendor_work", {"update_note": "Vendor patched"}, NINA)
    run = h.resolve(run)
    run = h.complete(run, "confirm_resolution", {"confirmed": False, "comment": "flaps again"}, RITA)
    run = h.resolve(run)
    run = h.complete(run, "confirm_resolution", {"confirmed": True}, RITA)
    assert run.status == "completed"
    end = run.data
    assert end["ticket_status"] == "closed" and end["reopen_count"] == 1 and end["pending_on"] == "vendor"
    assert end["communication_summary"] == "Status page updated, bridge open"
    assert end["major_incident_coordinated"] is True
    # the service owners: told of the P1, then that it is closed
    assert [c[0] for c in h.ops.calls] == ["notify", "notify"]
    assert end["tell_service_owners"] is True


def test_p1_closure_waits_for_the_coordination_and_keeps_work_data(h: Harness):
    run = h.triage(h.start(impact="high", urgency="high"))
    run = h.resolve(run)
    run = h.complete(run, "confirm_resolution", {"confirmed": False, "comment": "again"}, RITA)
    run = h.resolve(run, notes="replaced the gateway")
    run = h.complete(run, "confirm_resolution", {"confirmed": True}, RITA)
    assert run.status == "running" and ready(run) == ["coordinate_major"]
    assert run.data["ticket_status"] == "resolved"
    run = h.complete(run, "coordinate_major", {"communication_summary": "All clear sent"}, MIKE)
    assert run.status == "completed"
    end = run.data
    # the coordination branch arrived last at the join, yet the work branch's values survive
    assert end["ticket_status"] == "closed" and end["reopen_count"] == 1
    assert end["resolution_notes"] == "replaced the gateway" and end["closed_reason"] == "confirmed by requester"


def test_triage_changes_priority_category_and_group(h: Harness):
    run = h.start(impact="low", urgency="low", category="software")
    assert h.task(run, "triage").data["priority"] == "P4"
    run = h.triage(run, priority="P2", category="hardware", assignment_group="DesktopSupport",
                   triage_notes="Whole floor affected")
    investigate = h.task(run, "investigate")
    assert investigate.data["priority"] == "P2" and investigate.data["suggested_priority"] == "P4"
    assert investigate.data["category"] == "hardware" and investigate.data["assignment_group"] == "DesktopSupport"
    assert ready(run) == ["investigate"]  # P2 is not a major incident
    assert h.ops.calls == []


def test_triage_offers_any_group_with_an_agent_and_the_work_follows_it(h: Harness):
    """The triage form's groups come from the directory (``options_from_groups:with_agents``), and the
    diagram routes the work by the variable (candidateGroupVar), not by a list of known groups."""
    run = h.start()
    triage = h.task(run, "triage")
    schema, _ui = h.task_forms(triage)
    assert schema["properties"]["assignment_group"]["oneOf"] == "options_from_groups:with_agents"
    assert schema["properties"]["assignment_group"]["default"] == "ServiceDesk"
    assert h.rejects(run, "triage", {"category": "network", "priority": "P3", "assignment_group": "CAB"}).keys() == {
        "assignment_group"}
    run = h.triage(run, assignment_group="MessagingTeam")
    investigate = h.task(run, "investigate")
    assert investigate.properties["candidateGroupVar"] == "assignment_group"
    assert investigate.data["assignment_group"] == "MessagingTeam"


def test_triage_to_p1_starts_the_major_incident_path(h: Harness):
    run = h.triage(h.start(impact="low", urgency="medium"), priority="P1")
    assert ready(run) == ["coordinate_major", "investigate"]
    assert [c[0] for c in h.ops.calls] == ["notify"]


def test_raise_problem_starts_problem_management(h: Harness):
    run = h.triage(h.start())
    run = h.complete(run, "investigate", {"outcome": "pending", "pending_on": "vendor", "raise_problem": True}, NINA)
    assert h.ops.calls == [("start_process", {
        "process_id": "problem_management",
        "data": {"title": "Problem from INC-000042: VPN down", "description": "Cannot connect to the VPN from home",
                 "related_incidents": ["INC-000042"]},
        "link_type": "caused_by"})]
    assert run.data["problem"] == {"instance_id": 77, "number": "PRB-000007"}
    run = h.complete(run, "resume_vendor_work", {"update_note": "vendor answered"}, NINA)
    investigate = h.task(run, "investigate")
    assert investigate.data["raise_problem"] is False  # not raised again by a stale tick
    run = h.resolve(run)
    assert len(h.ops.calls) == 1
    run = h.complete(run, "confirm_resolution", {"confirmed": True}, RITA)
    assert run.data["problem"]["number"] == "PRB-000007"
