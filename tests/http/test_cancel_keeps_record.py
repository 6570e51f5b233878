"""Cancelling an instance while it works inside a subprocess keeps what its record shows.

A cancelled workflow counts as completed with empty end data; the instance's data used to fall
back to what it held when it entered the subprocess (a change's "Assess and approve", a problem's
"Analyse and fix"), and the record's sync copied that back: the change lost its risk, implementer
and rejection reason, and the audit trail showed a false status change before the cancellation.
"""

from __future__ import annotations

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_change import ASSESS_LOW, raise_change


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def cancel(desk: Desk, instance_id: int, who: str = "alex", reason: str = "dropped") -> None:
    response = desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth(who), json={"reason": reason})
    assert response.status_code == 200, response.get_json()


def test_a_change_cancelled_after_its_rejection_keeps_its_fields(desk: Desk):
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": "Needs a better window."})
    before = desk.record(number)
    assert before["status"] == "rejected" and before["details"]["implementer"] == "ivan"
    cancel(desk, instance_id)
    after = desk.record(number)
    assert after["status"] == "cancelled"
    for field in ("priority", "assignee", "category", "title"):
        assert after[field] == before[field], field
    for name, value in before["details"].items():
        assert after["details"].get(name) == value, name
    # the only status changes are the real ones: no step back to "new" before the cancellation
    changes = [e["payload"]["changes"] for e in desk.history(instance_id) if e["type"] == "record_updated"]
    assert [c["status"] for c in changes if "status" in c][-2:] == ["rejected", "cancelled"]
    assert desk.instance(instance_id)["data"]["rejection_reason"] == "Needs a better window."


def test_a_change_cancelled_while_it_waits_for_approval_keeps_its_assessment(desk: Desk):
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    before = desk.record(number)
    assert before["status"] == "awaiting_approval" and before["details"]["risk"]
    cancel(desk, instance_id)
    after = desk.record(number)
    assert after["status"] == "cancelled"
    assert after["details"]["risk"] == before["details"]["risk"]
    assert after["assignee"] == before["assignee"] and after["priority"] == before["priority"]
