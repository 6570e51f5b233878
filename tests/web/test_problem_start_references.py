"""Starting a problem naming related incidents, through the API and the start page.

Needs the start contract registered for problem_management (``start_with_references`` in
``Services.instances``): a wrong entry refuses the start (422) naming the field and the entry, and
nothing is stored.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from app.models import AuditEvent, ProcessInstance, Ticket, TicketLink
from tests.web.conftest import INCIDENT, text_of
from tests.web.test_content_i18n import shown

PROBLEM = {"title": "VPN tunnels drop every morning", "description": "Home workers lose the tunnel."}
CHANGE = {"title": "Upgrade the mail gateway", "description": "Move the gateway to version 9.2.",
          "change_type": "normal", "reason": "Security fixes", "planned_start": "2026-03-10T20:00:00Z",
          "planned_end": "2026-03-10T22:00:00Z", "implementation_plan": "Install 9.2.",
          "rollback_plan": "Reinstall 9.1.", "test_plan": "Send a test mail."}


def stored(desk) -> tuple[int, ...]:
    session = desk.services.session
    return tuple(session.scalar(select(func.count()).select_from(table))
                 for table in (ProcessInstance, Ticket, TicketLink, AuditEvent))


def test_the_api_refuses_a_change_and_an_unknown_incident_and_takes_a_comma_list(desk):
    incident = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    other = desk.start("rita", "incident_management", {**INCIDENT, "title": "VPN slow"})["data"]["record_number"]
    change = desk.start("alex", "change_enablement", CHANGE)["data"]["record_number"]
    headers = desk.auth("paul")  # signed in first: that is audited too
    before = stored(desk)
    answer = desk.client.post("/api/v1/instances", headers=headers, json={
        "process_id": "problem_management",
        "data": {**PROBLEM, "related_incidents": f"{incident}, {change}, INC-999999"}})
    assert answer.status_code == 422, answer.get_json()
    body = answer.get_json()
    assert body["error"] == "validation_failed"
    assert body["details"]["fields"] == {
        "related_incidents": [f"{change} is not an incident", "INC-999999 does not exist"]}
    assert stored(desk) == before
    started = desk.start("paul", "problem_management",
                         {**PROBLEM, "related_incidents": f"{incident},{other} {incident.lower()}"})
    assert started["status"] == "running" and started["error"] is None
    assert started["data"]["related_incidents"] == [incident, other]
    links = desk.record(started["data"]["record_number"])["links"]
    assert sorted(link["number"] for link in links) == sorted([incident, other])


def test_the_start_page_names_the_wrong_entries(web, desk):
    incident = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    change = desk.start("alex", "change_enablement", CHANGE)["data"]["record_number"]
    web.login("paul")
    before = stored(desk)
    typed = f"{incident}, {change}\nINC-999999"
    refused = web.post("/start/problem_management", {**PROBLEM, "related_incidents": typed})
    assert refused.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    refused = web.get(refused.headers["Location"])
    text = shown(text_of(refused))
    assert f"{change} is not an incident" in text and "INC-999999 does not exist" in text
    assert stored(desk) == before
    sent = web.post("/start/problem_management", {**PROBLEM, "related_incidents": f"{incident}, {incident}"})
    assert sent.status_code == 302
    number = sent.headers["Location"].rsplit("/", 1)[-1]
    assert [link["number"] for link in desk.record(number)["links"]] == [incident]


def test_the_related_incidents_box_takes_more_than_one_items_length(web, desk):
    """Each number may be 32 characters (the items' maxLength), the box holds the whole list: a
    maxlength of 32 on it cut three typed numbers to two and a piece, then named the piece."""
    web.login("paul")
    page = text_of(web.get("/start/problem_management"))
    box = re.search(r"<textarea[^>]*name=\"related_incidents\"[^>]*>", page)
    assert box, "no related incidents box"
    assert "maxlength" not in box.group(0)
    title = re.search(r"<input[^>]*name=\"title\"[^>]*>", page)
    assert title and "maxlength=" in title.group(0)  # a one-value field keeps its limit
