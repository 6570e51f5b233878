"""problem_management end to end through the HTTP API, with the people of each lane.

paul (ProblemManagers) logs, triages, verifies and closes problems; nina (NetworkTeam,
DesktopSupport, ApplicationSupport) analyses root causes; rita raises the incidents; alex sits on
the ServiceDesk. Known errors land in the knowledge base and on the linked incidents; fixes that
need a change start change_enablement, whose record the problem looks at again every hour (the
timer sweep) until the change is implemented (then the fix is verified) or withdrawn, cancelled or
failed (then the root cause is analysed again). The fix change is nina's (she raised it by her
analysis): cora assesses, approves and schedules it, ivan implements it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.engine import OperationFailed
from app.errors import Conflict
from app.services.execution import InstanceRunner
from app.services.operations import PlatformOperations
from app.services.timers import TimerService
from tests.http.desk import Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}
PROBLEM = {"title": "VPN tunnels drop every morning",
           "description": "Home workers lose the VPN tunnel between 08:30 and 09:00."}
TRIAGE = {"priority": "P2", "category": "network", "assignment_group": "NetworkTeam",
          "triage_notes": "Two incidents this week, more expected."}
RCA_PLAIN = {"cause_category": "configuration", "root_cause": "The gateway renegotiates keys with a too short lifetime.",
             "fix_needs_change": False}
RCA_WORKAROUND = {**RCA_PLAIN, "symptoms": "The VPN client shows 'Tunnel lost' and reconnects slowly.",
                  "workaround": "Reconnect with the failover profile vpn-gw-02."}
RCA_CHANGE = {**RCA_WORKAROUND, "fix_needs_change": True,
              "proposed_fix": "Raise the IKE lifetime to 8 hours on vpn-gw-01."}
VERIFY_FAILED = {"fix_verified": False, "verification_notes": "Tunnels still drop at 08:40."}
VERIFY_PASSED = {"fix_verified": True, "verification_notes": "No drops for a week."}
CLOSE = {"closure_notes": "Fixed by the gateway change, monitored for two weeks."}
CHANGE_ASSESS = {"impact": "low", "affected_users": 20, "rollback_difficulty": "easy", "has_tested": True,
                 "implementer": "ivan", "assessment_notes": "Routine fix."}
CHANGE_SCHEDULE = {"planned_start": "2026-03-11T20:00:00Z", "planned_end": "2026-03-11T21:30:00Z"}
# (times already past on the tests' clock: an implementation is recorded after the fact)
CHANGE_IMPLEMENT = {"implementation_notes": "Applied the fix.", "actual_start": "2026-01-05T07:05:00Z",
                    "actual_end": "2026-01-05T08:10:00Z"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


# -- helpers -------------------------------------------------------------------------------------------


def open_incident(desk: Desk, **changes) -> str:
    return desk.start("rita", "incident_management", {**INCIDENT, **changes})["data"]["record_number"]


def close_incident(desk: Desk, number: str) -> None:
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Restarted the tunnel",
                                                  "cause_category": "configuration"})
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    assert desk.record(number)["status"] == "closed"


def log_problem(desk: Desk, who: str = "paul", **data) -> tuple[str, int]:
    instance = desk.start(who, "problem_management", {**PROBLEM, **data})
    assert instance["status"] == "running" and instance["error"] is None, instance
    return instance["data"]["record_number"], instance["id"]


def task_view(desk: Desk, number: str, bpmn_id: str, who: str) -> dict:
    response = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, bpmn_id)}", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def hidden_from(desk: Desk, number: str, bpmn_id: str, *people: str) -> None:
    """The task is not in these people's queues: reading, claiming and completing all answer 404."""
    task_id = desk.task_id(number, bpmn_id)
    for who in people:
        assert_error(desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth(who)), 404)
        assert_error(desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth(who)), 404)
        assert_error(desk.client.post(f"/api/v1/tasks/{task_id}/complete", headers=desk.auth(who), json={"data": {}}), 404)
        inbox = desk.client.get("/api/v1/tasks?per_page=200", headers=desk.auth(who)).get_json()["items"]
        assert task_id not in [t["id"] for t in inbox], (who, bpmn_id)


def knowledge(desk: Desk, q: str, who: str = "rita") -> dict:
    response = desk.client.get("/api/v1/knowledge", query_string={"q": q}, headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def comments(desk: Desk, number: str, who: str = "rita") -> list[dict]:
    response = desk.client.get(f"/api/v1/tickets/{number}/comments", headers=desk.auth(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def status_sequence(desk: Desk, instance_id: int) -> list[str]:
    return [e["payload"]["changes"]["status"] for e in desk.history(instance_id)
            if e["type"] == "record_updated" and "status" in e["payload"]["changes"]]


def links(record: dict) -> list[tuple[str, str, str, str]]:
    return [(link["number"], link["kind"], link["link_type"], link["direction"]) for link in record["links"]]


def approve_change(desk: Desk, change: str) -> None:
    """The change managers assess (low risk) and approve the fix change: it is scheduled."""
    desk.complete(change, "assess", "cora", CHANGE_ASSESS)
    desk.complete(change, "manager_approve", "cora", {"approved": True, "approval_comment": "Go."})
    assert desk.record(change)["status"] == "scheduled"


def implement_change(desk: Desk, change: str, works: bool = True) -> None:
    """Schedule, implement and have the change's requester (nina) verify it, from scheduled."""
    desk.complete(change, "schedule", "cora", CHANGE_SCHEDULE)
    desk.complete(change, "implement", "ivan", CHANGE_IMPLEMENT)
    desk.complete(change, "verify", "nina", {"verified": works, "verification_notes": "Tunnels hold." if works
                                             else "Tunnels still drop: rolling back."})
    assert desk.record(change)["status"] == ("review" if works else "rolling_back")


def look_again(desk: Desk, services, clock, expect: int = 1) -> None:
    """An hour passes: the timer sweep has the waiting problems look at their fix change again."""
    clock.advance(timedelta(hours=1, seconds=1))
    report = TimerService(services, "test-sweeper").sweep()
    assert (report.fired, report.failures) == (expect, 0), report


def waiting_for_change(desk: Desk, number: str, change_status: str) -> None:
    """The problem waits: fix in progress, no task for anyone (nothing to verify or close)."""
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("fix_in_progress", change_status)
    assert record["open_tasks"] == [] and record["resolved_at"] is None


# -- paths ---------------------------------------------------------------------------------------------


def test_proactive_problem_is_triaged_analysed_and_closed(desk: Desk, clock):
    number, instance_id = log_problem(desk)
    assert number == "PRB-000001"
    record = desk.record(number, "paul")
    assert (record["kind"], record["status"], record["requester"], record["title"]) == (
        "problem", "new", "paul", PROBLEM["title"])
    assert (record["priority"], record["category"], record["assignment_group"], record["assignee"]) == (None,) * 4
    assert record["links"] == [] and record["first_response_at"] is None
    assert desk.ready(number) == ["triage"]

    # triage is the ProblemManagers' lane: not the service desk, the resolvers or a requester
    hidden_from(desk, number, "triage", "alex", "nina", "rita")
    assert "Related incidents" not in task_view(desk, number, "triage", "paul")["instructions"]
    assert_error(desk.client.post(f"/api/v1/tasks/{desk.task_id(number, 'triage')}/complete",
                                  headers=desk.auth("aude"), json={"data": TRIAGE}), 403)
    # CAB has no agent: approvers decide changes, they work no analysis
    bad = desk.complete(number, "triage", "paul", {"priority": "P5", "category": "software",
                                                   "assignment_group": "CAB"}, status=422)
    assert set(bad["details"]["fields"]) == {"priority", "assignment_group"}

    clock.advance(timedelta(minutes=30))
    desk.complete(number, "triage", "paul", {**TRIAGE, "priority": "P3", "category": "software",
                                             "assignment_group": "ApplicationSupport"})
    record = desk.record(number)
    assert (record["status"], record["priority"], record["category"], record["assignment_group"]) == (
        "analysis", "P3", "software", "ApplicationSupport")
    assert record["first_response_at"] == clock.now().isoformat() and record["assignee"] is None
    assert desk.ready(number) == ["analyse_root_cause"]

    # the analysis sits in the chosen group's queue only, not with the problem manager
    hidden_from(desk, number, "analyse_root_cause", "paul", "alex", "rita")
    rca = task_view(desk, number, "analyse_root_cause", "nina")
    assert rca["lane"] == "Resolvers" and rca["form"] == "problem-rca.json"
    assert PROBLEM["title"] in rca["instructions"] and "priority P3" in rca["instructions"]
    assert "did not remove the problem" not in rca["instructions"]
    bad = desk.complete(number, "analyse_root_cause", "nina", {"cause_category": "gremlins", "root_cause": "short",
                                                               "fix_needs_change": "maybe"}, status=422)
    assert set(bad["details"]["fields"]) == {"cause_category", "root_cause", "fix_needs_change"}

    clock.advance(timedelta(hours=4))
    desk.complete(number, "analyse_root_cause", "nina", RCA_PLAIN)
    record = desk.record(number)
    assert (record["status"], record["assignee"], record["assignment_group"]) == ("resolved", "nina", "ApplicationSupport")
    assert record["resolved_at"] == clock.now().isoformat() and record["closed_at"] is None
    details = record["details"]
    assert (details["root_cause"], details["cause_category"], details["workaround"]) == (
        RCA_PLAIN["root_cause"], "configuration", "")
    assert details.get("known_error_article") is None and details.get("fix_change") is None
    assert "knowledge_articles" not in details and record["links"] == []
    assert knowledge(desk, "lifetime")["total"] == 0  # no workaround, no known error

    assert desk.ready(number) == ["close_problem"]
    hidden_from(desk, number, "close_problem", "nina", "alex", "rita")
    assert "Known error article" not in task_view(desk, number, "close_problem", "paul")["instructions"]
    bad = desk.complete(number, "close_problem", "paul", {"closure_notes": "done"}, status=422)
    assert set(bad["details"]["fields"]) == {"closure_notes"}
    clock.advance(timedelta(days=1))
    desk.complete(number, "close_problem", "paul", CLOSE)
    record = desk.record(number)
    assert record["status"] == "closed" and record["closed_at"] == clock.now().isoformat() and record["open_tasks"] == []
    assert record["resolved_at"] is not None
    assert desk.instance(instance_id)["status"] == "completed"
    assert status_sequence(desk, instance_id) == ["analysis", "resolved", "closed"]
    types = [e["type"] for e in desk.history(instance_id)]
    assert types.count("task_completed") == 3
    assert "knowledge_published" not in types and "records_linked" not in types
    completed = [(e["payload"]["bpmn_id"], e["actor"]) for e in desk.history(instance_id) if e["type"] == "task_completed"]
    assert completed == [("triage", "paul"), ("analyse_root_cause", "nina"), ("close_problem", "paul")]


def test_problem_from_incidents_known_error_fix_change_fails_then_passes(desk: Desk, services, clock):
    first, second = open_incident(desk), open_incident(desk, title="VPN drops again")
    desk.complete(second, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    number, instance_id = log_problem(desk, related_incidents=[first, second])
    assert number == "PRB-000001"

    # the problem links both incidents, and each incident shows the problem
    record = desk.record(number)
    assert links(record) == [(first, "incident", "related_incident", "outgoing"),
                             (second, "incident", "related_incident", "outgoing")]
    for incident in (first, second):
        assert links(desk.record(incident, "nina")) == [(number, "problem", "related_incident", "incoming")]
        # the requester reads her incidents, not the problem: its link is left out for her
        assert links(desk.record(incident, "rita")) == []
    triage_task = task_view(desk, number, "triage", "paul")
    assert f"Related incidents: {first}, {second}" in triage_task["instructions"]
    hidden_from(desk, number, "triage", "nina", "alex")

    clock.advance(timedelta(hours=1))
    desk.complete(number, "triage", "paul", TRIAGE)
    record = desk.record(number)
    assert (record["status"], record["priority"], record["category"], record["assignment_group"]) == (
        "analysis", "P2", "network", "NetworkTeam")
    hidden_from(desk, number, "analyse_root_cause", "paul", "alex", "rita")
    assert f"Related incidents: {first}, {second}" in task_view(desk, number, "analyse_root_cause", "nina")["instructions"]

    # root cause with a workaround and a fix that needs a change
    clock.advance(timedelta(hours=2, minutes=17))
    desk.complete(number, "analyse_root_cause", "nina", RCA_CHANGE)
    record = desk.record(number)
    assert (record["status"], record["assignee"], record["priority"]) == ("fix_in_progress", "nina", "P2")
    assert record["details"] == {
        "root_cause": RCA_CHANGE["root_cause"], "cause_category": "configuration", "workaround": RCA_CHANGE["workaround"],
        "known_error_article": "KB-000001", "knowledge_articles": ["KB-000001"], "fix_change": "CHG-000001",
        "fix_change_status": "assessment"}

    # the known error is published and searchable by anyone signed in
    found = knowledge(desk, "failover")
    assert found["total"] == 1
    [article] = found["items"]
    assert article == {**article, "number": "KB-000001", "title": f"Known error: {PROBLEM['title']}",
                       "symptoms": RCA_CHANGE["symptoms"], "cause": RCA_CHANGE["root_cause"],
                       "workaround": RCA_CHANGE["workaround"], "status": "published", "source": number}
    assert knowledge(desk, "failover vpn-gw-02", who="alex")["items"][0]["number"] == "KB-000001"
    assert knowledge(desk, "failover printer")["total"] == 0

    # every open linked incident hears the workaround once and lists the article
    expected_comment = f"Known error KB-000001 has a workaround: {RCA_CHANGE['workaround']}"
    for incident in (first, second):
        assert [(c["author"], c["body"]) for c in comments(desk, incident)] == [(number, expected_comment)]
        assert desk.record(incident, "rita")["details"]["knowledge_articles"] == ["KB-000001"]
    assert desk.instance(instance_id)["data"]["incident_comments"] == {"count": 2}

    # the fix change is a change_enablement record built from the problem
    change = desk.record("CHG-000001", "paul")
    assert (change["kind"], change["title"], change["status"], change["category"]) == (
        "change", f"Fix for {number}: {PROBLEM['title']}", "assessment", "normal")
    assert change["description"] == f"{PROBLEM['description']}\n\nRoot cause (configuration): {RCA_CHANGE['root_cause']}"
    planned_start = (clock.now() + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    assert change["details"]["planned_start"] == planned_start.isoformat()
    assert change["details"]["planned_end"] == (planned_start + timedelta(hours=2)).isoformat()
    assert change["details"]["reason"] == f"Permanent fix for {number}, which caused recurring incidents."
    assert links(change) == [(number, "problem", "fix_change", "incoming")]
    assert [t["bpmn_id"] for t in change["open_tasks"]] == ["assess"]
    change_data = desk.instance(change["instance_id"])["data"]
    assert change_data["implementation_plan"] == RCA_CHANGE["proposed_fix"]
    assert change_data["related_problem"] == number and number in change_data["test_plan"]
    assert links(desk.record(number))[2:] == [("CHG-000001", "change", "fix_change", "outgoing")]

    # the fix is verified once the change is implemented
    waiting_for_change(desk, number, "assessment")
    approve_change(desk, "CHG-000001")
    clock.advance(timedelta(days=4))
    implement_change(desk, "CHG-000001")  # the problem hears of it at once (no look on the clock)

    # verification is the problem manager's: not the resolver's, not the service desk's
    assert desk.ready(number) == ["verify_fix"]
    hidden_from(desk, number, "verify_fix", "nina", "alex", "rita")
    verify = task_view(desk, number, "verify_fix", "paul")
    assert "Change <strong>CHG-000001</strong>, raised to fix" in verify["instructions"]
    assert "is implemented (change result: successful)" in verify["instructions"]
    desk.complete(number, "verify_fix", "paul", VERIFY_FAILED)

    # the fix failed: back to the same group's analysis queue
    record = desk.record(number)
    assert record["status"] == "analysis" and record["resolved_at"] is None
    assert record["details"]["fix_change"] == "CHG-000001" and record["details"]["known_error_article"] == "KB-000001"
    assert desk.ready(number) == ["analyse_root_cause"]
    hidden_from(desk, number, "analyse_root_cause", "paul", "alex")
    again = task_view(desk, number, "analyse_root_cause", "nina")
    assert "The fix change CHG-000001 did not remove the problem: analyse again." in again["instructions"]

    second_fix = {**RCA_CHANGE, "root_cause": "The gateway firmware ignores the configured IKE lifetime.",
                  "cause_category": "software_defect", "proposed_fix": "Upgrade vpn-gw-01 to firmware 9.4."}
    desk.complete(number, "analyse_root_cause", "nina", second_fix)
    record = desk.record(number)
    assert record["status"] == "fix_in_progress"  # the workaround still stands: a known error with a fix under way
    assert (record["details"]["root_cause"], record["details"]["cause_category"], record["details"]["fix_change"]) == (
        second_fix["root_cause"], "software_defect", "CHG-000002")
    assert record["details"]["known_error_article"] == "KB-000001"
    assert [n for n, kind, *_ in links(record) if kind == "change"] == ["CHG-000001", "CHG-000002"]
    assert desk.instance(desk.record("CHG-000002")["instance_id"])["data"]["implementation_plan"] == second_fix["proposed_fix"]
    # the known error was published once and the incidents were told once: the article takes the new
    # root cause as its next version (the first kept as a revision); the workaround, unchanged, is no news
    assert knowledge(desk, "failover")["total"] == 1
    for incident in (first, second):
        assert len(comments(desk, incident)) == 1
    article = desk.client.get("/api/v1/knowledge/KB-000001", headers=desk.auth("alex")).get_json()
    assert (article["version"], article["cause"], article["workaround"]) == (
        2, second_fix["root_cause"], RCA_CHANGE["workaround"])
    revisions = desk.client.get("/api/v1/knowledge/KB-000001/revisions", headers=desk.auth("alex")).get_json()
    assert [(r["version"], r["cause"]) for r in revisions["items"]] == [(1, RCA_CHANGE["root_cause"])]

    approve_change(desk, "CHG-000002")
    clock.advance(timedelta(days=4))
    implement_change(desk, "CHG-000002")
    desk.complete(number, "verify_fix", "paul", VERIFY_PASSED)
    record = desk.record(number)
    assert record["status"] == "resolved" and record["resolved_at"] == clock.now().isoformat()
    assert desk.ready(number) == ["close_problem"]
    close_task = task_view(desk, number, "close_problem", "paul")
    assert "Known error article: KB-000001" in close_task["instructions"]
    assert "Fix change: CHG-000002" in close_task["instructions"]
    hidden_from(desk, number, "close_problem", "nina")
    desk.complete(number, "close_problem", "paul", CLOSE)

    record = desk.record(number)
    assert record["status"] == "closed" and record["closed_at"] is not None and record["open_tasks"] == []
    assert (record["priority"], record["category"], record["assignment_group"], record["assignee"]) == (
        "P2", "network", "NetworkTeam", "nina")
    assert desk.instance(instance_id)["status"] == "completed"
    assert status_sequence(desk, instance_id) == [
        "analysis", "fix_in_progress", "analysis", "fix_in_progress", "resolved", "closed"]
    events = desk.history(instance_id)
    types = [e["type"] for e in events]
    assert types.count("knowledge_published") == 1 and types.count("records_linked") == 4
    assert types.count("knowledge_edited") == 1
    completed = [(e["payload"]["bpmn_id"], e["actor"]) for e in events if e["type"] == "task_completed"]
    assert completed == [("triage", "paul"), ("analyse_root_cause", "nina"), ("verify_fix", "paul"),
                         ("analyse_root_cause", "nina"), ("verify_fix", "paul"), ("close_problem", "paul")]
    # the incidents themselves run on untouched
    assert desk.record(first)["status"] == "new" and desk.record(second)["status"] == "in_progress"


def test_a_closed_incident_gets_no_workaround_comment(desk: Desk):
    still_open, closed = open_incident(desk), open_incident(desk, title="VPN down on Monday")
    resolved = open_incident(desk, title="VPN down on Tuesday")
    close_incident(desk, closed)
    desk.complete(resolved, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(resolved, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Reconnected",
                                                    "cause_category": "configuration"})
    assert desk.record(resolved)["status"] == "resolved"  # resolved but not closed: still open
    before = len(comments(desk, closed))

    number, instance_id = log_problem(desk, related_incidents=f"{still_open}, {closed.lower()}; {resolved}")
    assert [n for n, *_ in links(desk.record(number))] == [still_open, closed, resolved]
    desk.complete(number, "triage", "paul", TRIAGE)
    desk.complete(number, "analyse_root_cause", "nina", RCA_WORKAROUND)

    record = desk.record(number)
    assert record["status"] == "resolved"  # no change needed: straight on to closure
    assert record["details"]["known_error_article"] == "KB-000001" and record["details"].get("fix_change") is None
    assert desk.ready(number) == ["close_problem"]
    body = f"Known error KB-000001 has a workaround: {RCA_WORKAROUND['workaround']}"
    assert [c["body"] for c in comments(desk, still_open)] == [body]
    assert [c["body"] for c in comments(desk, resolved)] == [body]
    assert len(comments(desk, closed)) == before  # closed: nothing added
    assert desk.instance(instance_id)["data"]["incident_comments"] == {"count": 2}
    assert desk.record(still_open)["details"]["knowledge_articles"] == ["KB-000001"]
    desk.complete(number, "close_problem", "paul", CLOSE)
    assert desk.record(number)["status"] == "closed"
    assert status_sequence(desk, instance_id) == ["analysis", "resolved", "closed"]


def test_fix_change_without_workaround_then_reanalysis_without_change(desk: Desk, services, clock):
    number, instance_id = log_problem(desk, title="Core switch reboots", description="SW-CORE-2 reboots under load.")
    desk.complete(number, "triage", "paul", TRIAGE)
    root_cause = "Firmware 9.1 leaks memory in the ARP table."
    desk.complete(number, "analyse_root_cause", "nina", {"cause_category": "software_defect", "root_cause": root_cause,
                                                         "fix_needs_change": True})
    record = desk.record(number)
    assert record["status"] == "fix_in_progress"  # no workaround: not a known error
    assert record["details"].get("known_error_article") is None and record["details"]["fix_change"] == "CHG-000001"
    assert knowledge(desk, "ARP")["total"] == 0
    change = desk.record("CHG-000001")
    assert change["title"] == f"Fix for {number}: Core switch reboots"
    change_data = desk.instance(change["instance_id"])["data"]
    assert change_data["implementation_plan"] == f"Remove the root cause described in {number}: {root_cause}"

    approve_change(desk, "CHG-000001")
    implement_change(desk, "CHG-000001")
    desk.complete(number, "verify_fix", "paul", {"fix_verified": False, "verification_notes": "the switch still reboots"})
    assert desk.record(number)["status"] == "analysis"
    desk.complete(number, "analyse_root_cause", "nina", {**RCA_PLAIN, "root_cause": "A loop through an unmanaged switch."})
    record = desk.record(number)
    assert record["status"] == "resolved" and record["details"]["fix_change"] == "CHG-000001"
    assert record["details"]["root_cause"] == "A loop through an unmanaged switch."
    assert [n for n, kind, *_ in links(record) if kind == "change"] == ["CHG-000001"]  # no second change
    assert desk.ready(number) == ["close_problem"]
    desk.complete(number, "close_problem", "paul", CLOSE)
    assert status_sequence(desk, instance_id) == ["analysis", "fix_in_progress", "analysis", "resolved", "closed"]


def test_the_analysis_goes_to_whichever_group_triage_chose(desk: Desk):
    number, _ = log_problem(desk)
    desk.complete(number, "triage", "paul", {**TRIAGE, "assignment_group": "ServiceDesk", "category": "human"})
    assert desk.record(number)["assignment_group"] == "ServiceDesk"
    hidden_from(desk, number, "analyse_root_cause", "nina", "paul")
    desk.complete(number, "analyse_root_cause", "alex", {**RCA_PLAIN, "cause_category": "process"})
    record = desk.record(number)
    assert (record["assignee"], record["status"], record["details"]["cause_category"]) == ("alex", "resolved", "process")


def test_a_problem_raised_from_an_incident_sends_its_workaround_back(desk: Desk):
    incident = open_incident(desk)
    desk.complete(incident, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(incident, "investigate", "nina", {"outcome": "pending", "pending_on": "vendor",
                                                    "pending_reason": "Vendor analyses", "raise_problem": True})
    problem = desk.record("PRB-000001")
    assert [(n, kind) for n, kind, *_ in links(problem)] == [(incident, "incident")]
    assert problem["status"] == "new" and desk.ready("PRB-000001") == ["triage"]
    desk.complete("PRB-000001", "triage", "paul", TRIAGE)
    desk.complete("PRB-000001", "analyse_root_cause", "nina", RCA_WORKAROUND)
    assert [c["author"] for c in comments(desk, incident)] == ["PRB-000001"]
    assert desk.record(incident, "rita")["details"]["knowledge_articles"] == ["KB-000001"]
    assert desk.record(incident)["status"] == "pending"


# -- the fix change: no verification or closure before it is implemented ------------------------------


def raised_fix(desk: Desk) -> tuple[str, int]:
    """A triaged problem whose root cause analysis raised fix change CHG-000001."""
    number, instance_id = log_problem(desk, title="Core switch reboots", description="SW-CORE-2 reboots under load.")
    desk.complete(number, "triage", "paul", TRIAGE)
    desk.complete(number, "analyse_root_cause", "nina", {
        "cause_category": "software_defect", "root_cause": "Firmware 9.1 leaks memory in the ARP table.",
        "fix_needs_change": True, "proposed_fix": "Upgrade SW-CORE-2 to firmware 9.4."})
    return number, instance_id


def test_the_problem_waits_for_its_fix_change_and_cannot_be_verified_or_closed_meanwhile(desk: Desk, services, clock):
    number, instance_id = raised_fix(desk)
    waiting_for_change(desk, number, "assessment")
    assert desk.instance(instance_id)["status"] == "running"
    # nobody has anything to verify or close: not the problem manager, not the resolver
    for who in ("paul", "nina"):
        inbox = desk.client.get("/api/v1/tasks?per_page=200", headers=desk.auth(who)).get_json()["items"]
        assert [t for t in inbox if t["bpmn_id"] in ("verify_fix", "close_problem")] == []

    look_again(desk, services, clock)  # nothing happened to the change yet: the problem still looks hourly
    waiting_for_change(desk, number, "assessment")
    # each move of the change reaches the problem at once, in the change's own transaction
    approve_change(desk, "CHG-000001")
    waiting_for_change(desk, number, "scheduled")
    desk.complete("CHG-000001", "schedule", "cora", CHANGE_SCHEDULE)
    desk.complete("CHG-000001", "implement", "ivan", CHANGE_IMPLEMENT)
    waiting_for_change(desk, number, "verifying")  # implemented, but its requester has not confirmed it works
    assert desk.ready(number) == []
    desk.complete("CHG-000001", "verify", "nina", {"verified": True, "verification_notes": "Stable under load."})

    record = desk.record(number)
    # the verdict: the change is in its review now, and closes without the problem hearing of it
    assert (record["status"], record["details"]["fix_change_status"]) == ("fix_in_progress", "successful")
    assert desk.ready(number) == ["verify_fix"]
    task = task_view(desk, number, "verify_fix", "paul")
    assert task["data"]["fix_change"] == "CHG-000001" and task["data"]["fix_change_status"] == "successful"
    assert "is implemented (change result: successful)" in task["instructions"]
    assert any(n["subject"].startswith("New task: Verify fix") for n in desk.notifications("paul"))
    desk.complete(number, "verify_fix", "paul", VERIFY_PASSED)
    assert desk.record(number)["status"] == "resolved" and desk.ready(number) == ["close_problem"]
    desk.complete(number, "close_problem", "paul", CLOSE)
    assert desk.record(number)["status"] == "closed"
    assert status_sequence(desk, instance_id) == ["analysis", "fix_in_progress", "resolved", "closed"]
    history = desk.history(instance_id)
    assert [e["payload"]["bpmn_id"] for e in history if e["type"] == "timer_fired"] == ["wait_fix_change"]
    # what the problem heard: every status the change entered while the problem waited for it
    heard = [e["payload"] for e in history if e["type"] == "message_received"]
    assert {(m["name"], m["payload"]["number"], m["payload"]["link_type"]) for m in heard} == {
        ("fix_change_updated", "CHG-000001", "fix_change")}
    moves = status_sequence(desk, desk.record("CHG-000001")["instance_id"])
    assert [m["payload"]["status"] for m in heard] == moves[:moves.index("review") + 1]
    assert {e["actor"] for e in history if e["type"] == "message_received"} == {"engine"}
    look_again(desk, services, clock, expect=0)  # nothing is followed any more


def test_a_rejected_then_withdrawn_fix_change_sends_the_problem_back_to_analysis(desk: Desk, services, clock):
    number, instance_id = raised_fix(desk)
    desk.complete("CHG-000001", "assess", "cora", CHANGE_ASSESS)
    desk.complete("CHG-000001", "manager_approve", "cora", {"approved": False, "approval_comment": "Firmware 9.4 is not certified."})
    waiting_for_change(desk, number, "rejected")  # its requester may still revise and resubmit it
    desk.complete("CHG-000001", "revise", "nina", {"revision_decision": "withdraw"})
    assert desk.record("CHG-000001")["status"] == "withdrawn"

    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("analysis", "withdrawn")
    assert desk.ready(number) == ["analyse_root_cause"]
    again = task_view(desk, number, "analyse_root_cause", "nina")
    assert ("The fix change CHG-000001 was not implemented (change status: withdrawn): analyse again or propose "
            "another fix.") in again["instructions"]
    # the next analysis finds a fix without a change: resolved and closed without waiting
    desk.complete(number, "analyse_root_cause", "nina", {**RCA_PLAIN, "root_cause": "ARP flood from a looped port."})
    assert desk.ready(number) == ["close_problem"]
    desk.complete(number, "close_problem", "paul", CLOSE)
    assert status_sequence(desk, instance_id) == ["analysis", "fix_in_progress", "analysis", "resolved", "closed"]


def test_a_failed_fix_change_sends_the_problem_back_to_analysis(desk: Desk, services, clock):
    number, _ = raised_fix(desk)
    approve_change(desk, "CHG-000001")
    implement_change(desk, "CHG-000001", works=False)  # rolling back
    waiting_for_change(desk, number, "rolling_back")  # no final result yet: the problem follows it on
    desk.complete("CHG-000001", "rollback", "ivan", {"rollback_successful": True,
                                                     "rollback_notes": "Restored the old firmware."})
    assert desk.record("CHG-000001")["details"]["result"] == "rolled_back"
    record = desk.record(number)
    # the verdict, not the change's passing status (test_problem_fix_change_failed.py)
    assert (record["status"], record["details"]["fix_change_status"]) == ("analysis", "failed")
    again = task_view(desk, number, "analyse_root_cause", "nina")
    assert "Fix change CHG-000001 failed its verification and was rolled back." in again["instructions"]
    # a second fix, a second change, followed until it is implemented
    desk.complete(number, "analyse_root_cause", "nina", {
        "cause_category": "software_defect", "root_cause": "Firmware 9.1 leaks memory in the ARP table.",
        "fix_needs_change": True, "proposed_fix": "Replace SW-CORE-2."})
    waiting_for_change(desk, number, "assessment")
    assert desk.record(number)["details"]["fix_change"] == "CHG-000002"
    approve_change(desk, "CHG-000002")
    implement_change(desk, "CHG-000002")
    assert desk.ready(number) == ["verify_fix"]
    assert task_view(desk, number, "verify_fix", "paul")["data"]["fix_change"] == "CHG-000002"


def test_a_cancelled_fix_change_sends_the_problem_back_to_analysis(desk: Desk, services, clock):
    number, _ = raised_fix(desk)
    change = desk.record("CHG-000001")
    response = desk.client.post(f"/api/v1/instances/{change['instance_id']}/cancel", headers=desk.auth("ada"),
                                json={"reason": "Superseded by the core switch replacement."})
    assert response.status_code == 200, response.get_json()
    assert desk.record("CHG-000001")["status"] == "cancelled"  # heard at once, as a step's move is
    record = desk.record(number)
    assert (record["status"], record["details"]["fix_change_status"]) == ("analysis", "cancelled")
    assert desk.ready(number) == ["analyse_root_cause"]


def test_a_diagram_reads_only_records_linked_to_its_own(desk: Desk, services):
    incident = open_incident(desk)
    number, instance_id = raised_fix(desk)
    instance = services.instances.get(services.users.get_by_username("ada"), instance_id)
    ops = PlatformOperations(services, instance, None)
    change = ops("get_linked_record", {"number": "chg-000001", "details": ["result", "nothing"]})
    assert change == {"number": "CHG-000001", "kind": "change", "title": f"Fix for {number}: Core switch reboots",
                      "status": "assessment", "open": True, "resolved_at": None, "closed_at": None,
                      "details": {"result": None, "nothing": None}}
    for other in (incident, "CHG-999999"):  # an existing record that is not linked, one that does not exist
        with pytest.raises(OperationFailed) as info:
            ops("get_linked_record", {"number": other})
        assert str(info.value) == f"no record {other} is linked to {number}"


# -- platform bugs shown through this process --------------------------------------------------------


def test_the_inbox_filtered_by_process_shows_the_analysis_task(desk: Desk):
    number, _ = log_problem(desk)
    desk.complete(number, "triage", "paul", TRIAGE)
    task_id = desk.task_id(number, "analyse_root_cause", "nina")
    inbox = desk.client.get("/api/v1/tasks?process_id=problem_management", headers=desk.auth("nina")).get_json()
    assert task_id in [t["id"] for t in inbox["items"]]
    assert task_view(desk, number, "analyse_root_cause", "nina")["process_id"] == "problem_management"


def test_a_requester_cannot_link_an_incident_she_may_not_see(desk: Desk):
    # Problems are raised by staff, who see every record; a desk that lets requesters raise them
    # says so in problem_management.access.json. Then the diagram must not show them others' records.
    olga = desk.services.users.get_by_username("olga")
    desk.services.definitions.deploy(olga, [("problem_management.access.json", b'{"start_roles": ["requester", "agent"]}')])
    desk.services.session.commit()
    secret = desk.start("mona", "incident_management", {**INCIDENT, "title": "Payroll export leaks salaries"})
    secret_number = secret["data"]["record_number"]
    assert_error(desk.client.get(f"/api/v1/tickets/{secret_number}", headers=desk.auth("rita")), 404)
    mine = desk.start("rita", "problem_management", {**PROBLEM, "related_incidents": []})["data"]["record_number"]
    # the links API refuses it: rita may not see the incident
    assert_error(desk.client.post(f"/api/v1/tickets/{mine}/links", headers=desk.auth("rita"),
                                  json={"number": secret_number, "link_type": "related_incident"}), 404)
    # the same link through the diagram must not show her the incident either
    response = desk.client.post("/api/v1/instances", headers=desk.auth("rita"), json={
        "process_id": "problem_management", "data": {**PROBLEM, "related_incidents": [secret_number]}})
    assert response.status_code in (201, 404, 422), response.get_json()
    assert "Payroll" not in response.get_data(as_text=True)
    if response.status_code == 201:  # started (perhaps in error): her record must not show the incident
        number = response.get_json()["data"]["record_number"]
        record = desk.record(number, "rita")
        assert secret_number not in [link["number"] for link in record["links"]]
        assert "Payroll" not in str(record)


def test_news_the_problem_cannot_take_never_costs_the_change_its_step(desk: Desk, services, clock, monkeypatch):
    """The problem's run cannot be loaded (say, state from an unsupported engine): the change's
    people go on, the problem keeps waiting and catches up on its timer once it can be loaded."""
    number, _ = raised_fix(desk)
    real_load = InstanceRunner.load

    def failing_load(runner, instance, actor=None):
        if instance.process_id == "problem_management":
            raise Conflict("stored state from an unsupported engine", code="unsupported_state_version")
        return real_load(runner, instance, actor)

    monkeypatch.setattr(InstanceRunner, "load", failing_load)
    approve_change(desk, "CHG-000001")  # every step of the change still commits
    waiting_for_change(desk, number, "assessment")  # the problem heard nothing
    monkeypatch.setattr(InstanceRunner, "load", real_load)
    look_again(desk, services, clock)
    waiting_for_change(desk, number, "scheduled")


def test_a_new_workaround_after_a_failed_fix_revises_the_known_error_and_tells_the_incidents(desk: Desk, services, clock):
    """QA: a second analysis with another workaround left the article and the incidents with the
    first one. Now the article takes it as its next version and the open incidents hear of it."""
    incident = open_incident(desk)
    number, _instance_id = log_problem(desk, related_incidents=[incident])
    desk.complete(number, "triage", "paul", TRIAGE)
    desk.complete(number, "analyse_root_cause", "nina", RCA_CHANGE)
    approve_change(desk, "CHG-000001")
    clock.advance(timedelta(days=4))
    implement_change(desk, "CHG-000001")
    desk.complete(number, "verify_fix", "paul", VERIFY_FAILED)
    better = {**RCA_CHANGE, "workaround": "Use the 5 GHz guest network until the fix is in.",
              "proposed_fix": "Replace the gateway."}
    desk.complete(number, "analyse_root_cause", "nina", better)

    article = desk.client.get("/api/v1/knowledge/KB-000001", headers=desk.auth("rita")).get_json()
    assert (article["version"], article["workaround"], article["status"]) == (2, better["workaround"], "published")
    assert knowledge(desk, "guest network")["total"] == 1 and knowledge(desk, "failover profile")["total"] == 0
    assert [c["body"] for c in comments(desk, incident)] == [
        f"Known error KB-000001 has a workaround: {RCA_CHANGE['workaround']}",
        f"Known error KB-000001 has a new workaround: {better['workaround']}"]
    record = desk.record(number)
    assert record["details"]["known_error_article"] == "KB-000001" and record["details"]["workaround"] == better["workaround"]
    assert desk.record(incident, "rita")["details"]["knowledge_articles"] == ["KB-000001"]  # listed once


def test_a_resolved_problem_tells_its_requester_without_asking_for_a_confirmation(desk: Desk):
    """QA: a problem's requester read "... is resolved. Please check and confirm", for a step a
    problem does not have, and a requester who is a problem manager then missed the notice of
    the "Close problem" task (the resolved notice stood in for it). An incident's requester, who
    gets the confirmation task, is still asked once."""
    number, _ = log_problem(desk)  # paul, a problem manager
    desk.complete(number, "triage", "paul", TRIAGE)
    desk.complete(number, "analyse_root_cause", "nina", RCA_PLAIN)
    assert desk.record(number)["status"] == "resolved"
    notes = [n for n in desk.notifications("paul") if number in n["subject"]]
    [resolved] = [n for n in notes if n["subject"].startswith(f"{number} resolved")]
    assert "is resolved." in resolved["body"] and "confirm" not in resolved["body"].lower()
    assert [n["subject"] for n in notes if n["subject"].startswith("New task: Close problem")], notes
