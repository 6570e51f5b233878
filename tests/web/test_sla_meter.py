"""The record page's SLA meter turns amber at the policy's warning ratio, the point at which the
sweep warns, not at a fixed three quarters of the target; the API names that point too."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.web.conftest import text_of
from tests.web.test_tickets import open_incident

POLICY = {"kind": "incident", "priority": "P3", "response_seconds": 2 * 3600, "resolution_seconds": 8 * 3600}


def meter_low(page: str, name: str) -> float:
    found = re.search(rf'id="clock-{name}">.*?<meter [^>]*\blow="([0-9.]+)"', page, re.S)
    assert found, name
    return float(found.group(1))


@pytest.mark.parametrize("ratio", [0.5, 0.9])
def test_the_meter_and_the_api_mark_the_policys_warning_point(web, desk, ratio):
    saved = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json={**POLICY, "warning_ratio": ratio})
    assert saved.status_code == 200, saved.get_json()
    number = open_incident(desk)  # medium impact and urgency: P3

    clocks = {c["name"]: c for c in desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex")).get_json()["clocks"]}
    assert clocks["response"]["warning_seconds"] == 2 * 3600 * ratio
    assert clocks["resolution"]["warning_seconds"] == 8 * 3600 * ratio

    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    assert meter_low(page, "response") == 2 * 3600 * ratio
    assert meter_low(page, "resolution") == 8 * 3600 * ratio


def meter_region(page: str, name: str) -> str:
    """The region Chromium colours a clock's meter with (HTML's meter rules, optimum below low):
    "optimum" (green), "suboptimal" (amber) or "even less good" (red)."""
    found = re.search(rf'id="clock-{name}">.*?(<meter [^>]*>)', page, re.S)
    assert found, name
    attrs = {k: float(v) for k, v in re.findall(r'\b(min|max|low|high|optimum|value)="([0-9.]+)"', found.group(1))}
    value = min(max(attrs["value"], attrs["min"]), attrs["max"])
    assert attrs["optimum"] < attrs["low"] <= attrs["high"] <= attrs["max"], attrs
    if value < attrs["low"]:
        return "optimum"
    return "suboptimal" if value <= attrs["high"] else "even less good"


def test_a_breached_clock_is_red_an_at_risk_one_amber_and_a_fresh_one_green(web_factory, desk, services, clock):
    """The meter used to stop at its target, which is also its high boundary: a breached clock was
    drawn amber, as one merely at risk, and the red region was never reached."""
    number = open_incident(desk)  # P3: a response within 4 hours, a resolution within a day

    def record_page() -> str:
        web = web_factory()  # signed in afresh: the clock moves past the session's idle timeout
        web.login("alex")
        return text_of(web.get(f"/tickets/{number}"))

    page = record_page()
    assert (meter_region(page, "response"), meter_region(page, "resolution")) == ("optimum", "optimum")
    clock.advance(timedelta(hours=3, minutes=30))  # past the warning point (75 %) of the response
    services.sla.sweep()
    page = record_page()
    assert meter_region(page, "response") == "suboptimal"
    clock.advance(timedelta(hours=1))  # past the target
    services.sla.sweep()
    page = record_page()
    assert 'class="clock clock-breached" id="clock-response"' in page
    assert (meter_region(page, "response"), meter_region(page, "resolution")) == ("even less good", "optimum")
