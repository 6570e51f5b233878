"""A desk with records at known instants, made through the shipped processes, for the reports'
tests (service, API and pages): every figure in ``EXPECTED`` was worked out by hand from the
timeline below.

The frozen clock starts on Monday 2026-01-05 09:00 UTC. The report's period is
[2026-01-10, 2026-01-25); "now" is 2026-01-22 05:00 when ``build`` returns.

Incidents (each triaged to NetworkTeam at the instant it is opened, unless "untriaged"):
  INC-000001 old  opened Jan 05 09:00, P3 network, in progress: open, before the period (16 d 20 h old)
  INC-000002 A    Jan 20 09:00 -> resolved 11:00 (2 h), P3 network, confirmed: closed
  INC-000003 C    Jan 20 11:00 -> resolved 15:00 (4 h), P3 network, not confirmed: still open (1 d 18 h old);
                  its resolution clock is paused while it waits for the requester (open, not met)
  INC-000004 D    Jan 20 15:00 -> resolved Jan 21 18:00 (27 h), P3 hardware, confirmed: closed; its
                  resolution clock breached (P3: 24 h)
  INC-000005 E    Jan 21 05:00, P4 human, untriaged: open, exactly 1 day old (bucket 1-3 days)
  INC-000006 B1   Jan 21 18:00 -> resolved 19:00 (1 h), P2 software, confirmed: closed
  INC-000007 B2   Jan 21 19:00 -> resolved Jan 22 00:00 (5 h), P2 software, confirmed: closed
  INC-000008 F    Jan 22 00:00, P4 system, untriaged: open, 5 h old
B2's resolution and closing and F's opening fall exactly on midnight, a period's edge.
Changes, all raised and closed on Jan 12: CHG-000001 standard, verified (successful);
CHG-000002 standard, verification failed, rolled back (rolled_back); CHG-000003 normal, rejected
by the change manager, then withdrawn by its requester (withdrawn).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.http.desk import Desk

PERIOD = ("2026-01-10", "2026-01-25")
NOW = datetime(2026, 1, 22, 5, 0, tzinfo=timezone.utc)

INCIDENT = {"title": "VPN down", "description": "Cannot connect", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN"}
CHANGE = {"title": "Upgrade the mail gateway", "description": "Move to 9.2.", "reason": "Out of support.",
          "planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z",
          "implementation_plan": "Drain, upgrade.", "rollback_plan": "Restore the snapshot.",
          "test_plan": "Send mail.", "ci": "mailgw01"}
SCHEDULE = {"planned_start": "2026-03-11T20:00:00Z", "planned_end": "2026-03-11T21:30:00Z"}
IMPLEMENT = {"implementation_notes": "Done.", "actual_start": "2026-01-05T07:05:00Z",
             "actual_end": "2026-01-05T08:10:00Z"}
ASSESS_LOW = {"impact": "low", "affected_users": 20, "rollback_difficulty": "easy", "has_tested": True,
              "implementer": "ivan", "assessment_notes": "Routine."}

EXPECTED: dict[str, Any] = {
    "volume": [
        {"kind": "incident", "opened": 7, "resolved": 5, "closed": 4},
        {"kind": "change", "opened": 3, "resolved": 0, "closed": 3},
        {"kind": "problem", "opened": 0, "resolved": 0, "closed": 0},
        {"kind": "request", "opened": 0, "resolved": 0, "closed": 0},
    ],
    "backlog": [{"kind": "incident", "priority": "P3", "open": 2}, {"kind": "incident", "priority": "P4", "open": 2}],
    "incidents_by_category": [{"category": "network", "count": 2}, {"category": "software", "count": 2},
                              {"category": "hardware", "count": 1}, {"category": "human", "count": 1},
                              {"category": "system", "count": 1}],
    "incidents_by_priority": [{"priority": "P2", "count": 2}, {"priority": "P3", "count": 3},
                              {"priority": "P4", "count": 2}],
    "resolution": [
        {"kind": "incident", "priority": "P2", "count": 2, "mean_hours": 3.0, "median_hours": 3.0},
        {"kind": "incident", "priority": "P3", "count": 3, "mean_hours": 11.0, "median_hours": 4.0},
    ],
    "sla": [
        {"name": "response", "met": 5, "breached": 0, "cancelled": 0, "open": 2, "percent": 100.0},
        {"name": "resolution", "met": 3, "breached": 1, "cancelled": 0, "open": 3, "percent": 75.0},
    ],
    "changes": {"outcomes": [{"outcome": "successful", "count": 1}, {"outcome": "rolled_back", "count": 1},
                             {"outcome": "rollback_failed", "count": 0}, {"outcome": "withdrawn", "count": 1},
                             {"outcome": "cancelled", "count": 0}],
                "closed": 3, "implemented": 2, "successful": 1, "success_rate": 50.0},
    # the four incidents closed in the period were confirmed without a rating; no request closed
    "satisfaction": [
        {"kind": "incident", "closed": 4, "rated": 0, "response_rate": 0.0, "mean": None,
         "scores": [{"score": score, "count": 0} for score in (1, 2, 3, 4, 5)], "satisfied": None},
        {"kind": "request", "closed": 0, "rated": 0, "response_rate": None, "mean": None,
         "scores": [{"score": score, "count": 0} for score in (1, 2, 3, 4, 5)], "satisfied": None},
    ],
    "aging": [
        {"kind": "incident", "days_0_1": 1, "days_1_3": 2, "days_3_7": 0, "days_7_30": 1, "days_30_plus": 0, "total": 4},
        {"kind": "change", "days_0_1": 0, "days_1_3": 0, "days_3_7": 0, "days_7_30": 0, "days_30_plus": 0, "total": 0},
        {"kind": "problem", "days_0_1": 0, "days_1_3": 0, "days_3_7": 0, "days_7_30": 0, "days_30_plus": 0, "total": 0},
        {"kind": "request", "days_0_1": 0, "days_1_3": 0, "days_3_7": 0, "days_7_30": 0, "days_30_plus": 0, "total": 0},
    ],
    "workload": [{"group": "NetworkTeam", "open": 2}, {"group": None, "open": 2}],
    # the scenario writes no article (tests/services/test_report_knowledge.py does)
    "knowledge": {"published": 0, "attached": 0, "helped": 0, "not_helped": 0, "helpful_share": None, "needs_work": []},
    "availability": [],  # no status notices in the scenario (tests/services/test_report_availability.py)
    # no time logged in the scenario (tests/services/test_report_time_worked.py)
    "time_worked": {"total_minutes": 0, "by_kind": [], "by_person": []},
}


def incident(desk: Desk, triaged: bool = True, **changes: Any) -> str:
    number = str(desk.start("rita", "incident_management", {**INCIDENT, **changes})["data"]["record_number"])
    if triaged:
        record = desk.record(number)
        desk.complete(number, "triage", "alex", {"category": record["category"], "priority": record["priority"],
                                                 "assignment_group": "NetworkTeam"})
    return number


def resolve(desk: Desk, number: str) -> None:
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Fixed.",
                                                  "cause_category": "configuration"})


def confirm(desk: Desk, number: str) -> None:
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})


def change(desk: Desk, change_type: str) -> str:
    instance = desk.start("alex", "change_enablement", {**CHANGE, "change_type": change_type})
    return str(instance["data"]["record_number"])


def implement(desk: Desk, number: str, verified: bool) -> None:
    desk.complete(number, "schedule", "cora", SCHEDULE)
    desk.complete(number, "implement", "ivan", IMPLEMENT)
    desk.complete(number, "verify", "alex", {"verified": verified, "verification_notes": "Checked."})
    if not verified:
        desk.complete(number, "rollback", "ivan", {"rollback_notes": "Restored.", "rollback_successful": True})
    desk.complete(number, "review", "cora", {"review_notes": "Fine.", "lessons": "None."})


def build(desk: Desk, clock: Any) -> None:
    """The records of the module doc's timeline; the clock ends at ``NOW``."""
    incident(desk)  # old, Jan 05 09:00
    clock.set(datetime(2026, 1, 12, 10, 0, tzinfo=timezone.utc))
    implement(desk, change(desk, "standard"), verified=True)
    implement(desk, change(desk, "standard"), verified=False)
    withdrawn = change(desk, "normal")
    desk.complete(withdrawn, "assess", "cora", ASSESS_LOW)
    desk.complete(withdrawn, "manager_approve", "cora", {"approved": False, "approval_comment": "Freeze."})
    desk.complete(withdrawn, "revise", "alex", {"revision_decision": "withdraw", "revision_notes": "Later."})

    clock.set(datetime(2026, 1, 20, 9, 0, tzinfo=timezone.utc))
    a = incident(desk)
    clock.advance(timedelta(hours=2))
    resolve(desk, a)
    confirm(desk, a)
    c = incident(desk)
    clock.advance(timedelta(hours=4))
    resolve(desk, c)
    d = incident(desk, category="hardware")
    clock.set(datetime(2026, 1, 21, 5, 0, tzinfo=timezone.utc))
    incident(desk, triaged=False, category="human", impact="low", urgency="low")  # E
    clock.set(datetime(2026, 1, 21, 18, 0, tzinfo=timezone.utc))
    resolve(desk, d)
    confirm(desk, d)
    b1 = incident(desk, category="software", impact="high")
    clock.advance(timedelta(hours=1))
    resolve(desk, b1)
    confirm(desk, b1)
    b2 = incident(desk, category="software", impact="high")
    clock.advance(timedelta(hours=5))  # Jan 22 00:00
    resolve(desk, b2)
    confirm(desk, b2)
    incident(desk, triaged=False, category="system", impact="low", urgency="low")  # F
    clock.set(NOW)
