"""The record page's SLA meter turns amber at the policy's warning ratio, the point at which the
sweep warns, not at a fixed three quarters of the target; the API names that point too."""

from __future__ import annotations

import re

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
