"""The warning threshold is each policy's ``warning_ratio`` (0.05-0.99 of the target, 0.75 when not
said): the API refuses other values naming the field, and the clocks and the sweep warn at it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.http.desk import Desk
from tests.http.helpers import assert_error

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium", "urgency": "medium"}
POLICY = {"kind": "incident", "priority": "P3", "response_seconds": 2 * 3600, "resolution_seconds": 8 * 3600}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def put(desk: Desk, **values):
    return desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json={**POLICY, **values})


@pytest.mark.parametrize("ratio", [0, 0.04, 1, 1.5, -0.5, "half", True, None])
def test_a_ratio_outside_5_to_99_percent_is_refused_naming_the_field(desk: Desk, ratio):
    body = assert_error(put(desk, warning_ratio=ratio), 422)
    assert set(body["details"]["fields"]) == {"warning_ratio"}, body


def test_the_sweep_warns_at_the_policys_ratio(desk: Desk, services, clock):
    saved = put(desk, warning_ratio=0.5)
    assert saved.status_code == 200 and saved.get_json()["warning_ratio"] == 0.5
    opened = clock.now()
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    sla = {c["name"]: c for c in desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex")).get_json()["clocks"]}
    assert sla["response"]["warning_at"].startswith((opened + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    assert sla["resolution"]["warning_at"].startswith((opened + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"))
    clock.advance(timedelta(minutes=59))
    assert services.sla.sweep()["warnings"] == 0
    clock.advance(timedelta(minutes=2))  # half of the response's 2 h, not 75 %
    assert services.sla.sweep()["warnings"] == 1
    # not said: 75 %
    assert put(desk).get_json()["warning_ratio"] == 0.75
