"""DELETE /api/v1/sla/policies/<id>: admins delete a stored policy; the built-in terms apply again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import AuditEvent, SlaClock, SlaPolicy, Ticket
from tests.http.desk import Desk
from tests.http.helpers import assert_error

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium", "urgency": "medium"}
POLICY = {"kind": "incident", "priority": "P3", "response_seconds": 2 * 3600, "resolution_seconds": 8 * 3600}
HOUR = 3600.0


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def targets(desk: Desk, number: str) -> dict[str, float]:
    response = desk.client.get(f"/api/v1/tickets/{number}/sla", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {c["name"]: c["target_seconds"] for c in response.get_json()["clocks"]}


def test_a_process_owner_deletes_a_policy_and_the_built_in_terms_apply_again(desk: Desk, services):
    saved = desk.client.put("/api/v1/sla/policies", headers=desk.auth("olga"), json=POLICY)
    assert saved.status_code == 200, saved.get_json()
    policy_id = saved.get_json()["id"]
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    assert targets(desk, number) == {"response": 2 * HOUR, "resolution": 8 * HOUR}

    # neither a process owner nor an admin: refused (and audited), the policy stays
    for who in ("alex", "aude", "rita"):
        assert_error(desk.client.delete(f"/api/v1/sla/policies/{policy_id}", headers=desk.auth(who)), 403)
    assert services.session.get(SlaPolicy, policy_id) is not None
    assert_error(desk.client.delete(f"/api/v1/sla/policies/{policy_id}"), 401)

    deleted = desk.client.delete(f"/api/v1/sla/policies/{policy_id}", headers=desk.auth("olga"))  # who saved it
    assert deleted.status_code == 204, deleted.get_data(as_text=True)
    services.session.expire_all()
    assert services.session.get(SlaPolicy, policy_id) is None
    listed = desk.client.get("/api/v1/sla/policies", headers=desk.auth("alex")).get_json()
    assert listed["items"] == []
    [event] = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "sla_policy_deleted")).all()
    assert event.actor == "olga" and event.payload["id"] == policy_id and event.payload["resolution_seconds"] == 8 * 3600
    # the stored clocks of the running record no longer name it; it keeps the targets it was given
    rows = services.session.scalars(select(SlaClock.policy_id).join(Ticket, Ticket.id == SlaClock.ticket_id)
                                    .where(Ticket.number == number)).all()
    assert rows and set(rows) == {None}
    assert targets(desk, number) == {"response": 2 * HOUR, "resolution": 8 * HOUR}
    # a record opened now runs on the built-in P3 terms
    later = desk.start("rita", "incident_management", START)["data"]["record_number"]
    assert targets(desk, later) == {"response": 4 * HOUR, "resolution": 24 * HOUR}

    # gone, or never there: 404
    assert_error(desk.client.delete(f"/api/v1/sla/policies/{policy_id}", headers=desk.auth("ada")), 404)
    assert_error(desk.client.delete("/api/v1/sla/policies/999999", headers=desk.auth("ada")), 404)
    assert_error(desk.client.delete(f"/api/v1/sla/policies/{'9' * 25}", headers=desk.auth("ada")), 404)
    refused = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert {e.actor for e in refused if e.payload.get("action") == "sla_policy_delete"} >= {"alex", "aude", "rita"}
