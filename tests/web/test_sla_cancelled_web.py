"""A cancelled incident's SLA clocks through the API and on the record page: state "cancelled"
(label "Cancelled", 已取消 in Chinese), left out of the compliance percentage, and not breached.

Built-in targets, 24x7: P3 responds within 4 h and resolves within 24 h.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tests.http.helpers import assert_error
from tests.web.conftest import text_of
from tests.web.test_tickets import open_incident, triaged_incident


def cancel(desk: Any, number: str, who: str = "alex") -> None:
    instance_id = desk.record(number)["instance_id"]
    response = desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth(who),
                                json={"reason": "raised twice"})
    assert response.status_code == 200, response.get_json()
    assert desk.record(number)["status"] == "cancelled"


def api_states(desk: Any, number: str) -> dict[str, str]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {clock["name"]: clock["state"] for clock in response.get_json()["clocks"]}


def compliance(desk: Any, query: str = "") -> dict[str, dict[str, Any]]:
    response = desk.client.get(f"/api/v1/sla/compliance{query}", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {row["name"]: row for row in response.get_json()["clocks"]}


def test_a_cancelled_incident_shows_cancelled_clocks_left_out_of_compliance(web, desk, services, clock):
    answered = triaged_incident(desk, title="Answered, then resolved")  # triage: the first response
    cancelled = open_incident(desk, title="Raised twice")
    clock.advance(timedelta(hours=1))
    cancel(desk, cancelled)
    services.sla.sweep()

    assert api_states(desk, answered) == {"response": "met", "resolution": "running"}
    assert api_states(desk, cancelled) == {"response": "cancelled", "resolution": "cancelled"}

    # one response met, one cancelled: 100 %, not 1 of 2 (nor 2 of 2 "met")
    summary = compliance(desk, "?kind=incident")
    assert summary["response"] == {"name": "response", "met": 1, "breached": 0, "cancelled": 1, "open": 0,
                                   "percent": 100.0}
    assert summary["resolution"] == {"name": "resolution", "met": 0, "breached": 0, "cancelled": 1, "open": 1,
                                     "percent": None}
    assert compliance(desk) == summary  # only incidents have clocks here

    # a cancellation is no breach: the breached filter leaves the record out
    listed = desk.client.get("/api/v1/tickets?breached=true", headers=desk.auth("alex")).get_json()
    assert cancelled not in [t["number"] for t in listed["items"]]
    listed = desk.client.get("/api/v1/tickets?breached=false", headers=desk.auth("alex")).get_json()
    assert cancelled in [t["number"] for t in listed["items"]]

    web.login("alex")
    page = text_of(web.get(f"/tickets/{cancelled}"))
    for name, label in (("response", "Response"), ("resolution", "Resolution")):
        assert re.search(rf'<li class="clock clock-cancelled" id="clock-{name}">\s*'
                         rf'<h3[^>]*>{label} <span class="clock-state">Cancelled</span>', page), name
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get(f"/tickets/{cancelled}"))
    assert re.search(r'id="clock-response">\s*<h3[^>]*>[^<]* <span class="clock-state">已取消</span>', page)


def test_a_breach_before_the_cancellation_still_counts(desk, services, clock):
    number = open_incident(desk)
    clock.advance(timedelta(hours=5))  # the response (4 h) breached an hour ago
    cancel(desk, number)
    assert api_states(desk, number) == {"response": "breached", "resolution": "cancelled"}
    assert services.sla.sweep() == {"warnings": 0, "breaches": 0}  # a cancelled record escalates nothing
    summary = compliance(desk)
    assert (summary["response"]["breached"], summary["response"]["percent"]) == (1, 0.0)
    assert (summary["resolution"]["cancelled"], summary["resolution"]["percent"]) == (1, None)
    listed = desk.client.get("/api/v1/tickets?breached=true", headers=desk.auth("alex")).get_json()
    assert [t["number"] for t in listed["items"]] == [number]


def test_compliance_refuses_a_kind_without_clocks_naming_the_field(desk):
    body = assert_error(desk.client.get("/api/v1/sla/compliance?kind=change", headers=desk.auth("alex")), 422)
    assert list(body["details"]["fields"]) == ["kind"]
    assert desk.client.get("/api/v1/sla/compliance").status_code == 401
