"""Where a process's work waits (app/services/task_stats.py): per user task, the tasks waiting now
and the oldest one's wait, and those done lately with their mean and median hours; the process
page shows it to the staff, the API answers it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.http.desk import Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "VPN down", "description": "Cannot connect", "category": "network",
            "impact": "medium", "urgency": "medium"}
TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def raise_incident(desk: Desk) -> str:
    return str(desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"])


def stats(desk: Desk, who: str = "olga", query: str = "") -> Any:
    return desk.client.get(f"/api/v1/definitions/incident_management/task-stats{query}", headers=desk.auth(who))


def test_waiting_and_done_tasks_per_user_task(desk: Desk, clock):
    # three incidents triaged after 1, 2 and 6 hours; two more still wait for triage
    triaged = []
    for hours in (1, 2, 6):
        number = raise_incident(desk)
        clock.advance(timedelta(hours=hours))
        desk.complete(number, "triage", "alex", TRIAGE)
        triaged.append(number)
    raise_incident(desk)
    clock.advance(timedelta(hours=3))
    raise_incident(desk)
    clock.advance(timedelta(hours=1))

    answer = stats(desk)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    by_id = {item["bpmn_id"]: item for item in body["items"]}
    # every user task of the diagram, each named, none twice
    assert sorted(i["bpmn_id"] for i in body["items"]) == sorted(
        ["triage", "investigate", "resume_work", "resume_vendor_work", "confirm_resolution", "coordinate_major"])
    assert by_id["triage"]["name"] == "Triage incident"
    assert (by_id["triage"]["waiting"], by_id["triage"]["oldest_waiting_hours"]) == (2, 4.0)
    assert (by_id["triage"]["done"], by_id["triage"]["median_hours"], by_id["triage"]["mean_hours"]) == (3, 2.0, 3.0)
    # the triaged ones wait in investigation: the oldest since the first triage, 1 + 2 + 6 + 4 hours - 1 ago
    assert by_id["investigate"]["waiting"] == 3 and by_id["investigate"]["oldest_waiting_hours"] == 12.0
    assert by_id["investigate"]["done"] == 0 and by_id["investigate"]["median_hours"] is None
    assert by_id["confirm_resolution"] == {"bpmn_id": "confirm_resolution", "name": "Confirm resolution",
                                           "waiting": 0, "oldest_waiting_hours": None, "done": 0,
                                           "mean_hours": None, "median_hours": None}
    assert body["busiest"] == "investigate" and body["days"] == 30

    # done more than the period ago: not counted among the done ones
    clock.advance(timedelta(days=31))
    later = {i["bpmn_id"]: i for i in stats(desk).get_json()["items"]}
    assert later["triage"]["done"] == 0 and later["triage"]["waiting"] == 2
    assert {i["bpmn_id"]: i for i in stats(desk, query="?days=40").get_json()["items"]}["triage"]["done"] == 3


def test_only_the_staff_read_it_and_the_period_is_checked(desk: Desk):
    assert_error(stats(desk, "rita"), 403)
    assert stats(desk, "alex").status_code == 200
    assert "days" in str(assert_error(stats(desk, query="?days=0"), 422)["details"])
    assert "days" in str(assert_error(stats(desk, query="?days=367"), 422)["details"])
    assert_error(desk.client.get("/api/v1/definitions/no_such_process/task-stats", headers=desk.auth("olga")), 404)
