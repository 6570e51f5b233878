"""A task's instructions are rendered from the data its reader may read.

A process's internal variables (its record mapping's ``internal``) reach staff only; the
instructions of a task quote variables too, so a requester's task renders them without the hidden
ones, on the page and in the API's task detail alike, while staff reading the same task see them.
"""

from __future__ import annotations

import json
from typing import Any

from tests.http.desk import ROOT, Desk
from tests.web.conftest import INCIDENT, WebClient, text_of

NOTES = "Restarted the concentrator"


def resolved_incident(desk: Desk, services: Any) -> tuple[str, int]:
    """An incident waiting for its requester's confirmation, whose confirm task's instructions
    quote the resolution notes and the auto-close delay (``auto_close_after``), after the process
    marked the delay internal (it is on no record)."""
    started = desk.start("rita", "incident_management", INCIDENT)
    number = started["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": NOTES,
                                                  "cause_category": "configuration"})
    mapping = json.loads((ROOT / "processes" / "incident_management.record.json").read_text())
    mapping["internal"] = [*mapping["internal"], "auto_close_after"]
    services.definitions.deploy(services.users.get_by_username("olga"),
                                [("incident_management.record.json", json.dumps(mapping).encode())])
    services.session.commit()
    return number, desk.task_id(number, "confirm_resolution")


def test_the_requesters_task_renders_no_internal_variable(desk: Desk, services: Any, web: WebClient):
    number, task_id = resolved_incident(desk, services)
    staff = desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth("aude")).get_json()
    delay = staff["data"]["auto_close_after"]  # an ISO 8601 duration, such as P5D
    assert delay.startswith("P") and delay in staff["instructions"] and NOTES in staff["instructions"]

    # the API: neither her data nor her instructions nor the context carry it; the rest stays
    detail = desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth("rita")).get_json()
    assert "auto_close_after" not in detail["data"]
    assert delay not in detail["instructions"] and NOTES in detail["instructions"]
    assert delay not in json.dumps(detail["context"])

    # the pages (which word the delay: "5 days"): hers without it, the auditor's with it
    web.login("aude")
    shown = text_of(web.get(f"/tasks/{task_id}"))
    assert f'<data value="{delay}"' in shown and NOTES in shown
    web.logout()
    web.login("rita")
    page = text_of(web.get(f"/tasks/{task_id}"))
    assert INCIDENT["title"] in page and NOTES in page and "closed automatically after" in page
    assert delay not in page
