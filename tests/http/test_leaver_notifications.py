"""A deactivated user (a leaver) hears nothing more from the desk: no in-app notification and no
e-mail about the records they requested or worked, whatever step would have told them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import Notification, OutboxMessage, User
from tests.http.desk import Desk

INCIDENT = {"title": "Payroll export fails", "description": "The March export stops at 40%.", "category": "software",
            "impact": "medium", "urgency": "medium"}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    desk = Desk(client, services)
    services.users.create_user("lea", "password-1234", roles=["requester"], groups=["Requesters"],
                               email="lea@example.org")
    services.session.commit()
    return desk


def test_a_leaver_gets_no_mail_when_the_desk_cancels_her_record(desk: Desk, services: Any) -> None:
    """Security QA: lea left and was deactivated (her sessions and tokens ended); the desk then
    cancelled her incident with a reason, and the reason was still mailed to her address (and put
    in an inbox nobody may open): only the comment path left leavers out."""
    started = desk.client.post("/api/v1/instances", headers=desk.auth("lea"),
                               json={"process_id": "incident_management", "data": INCIDENT})
    assert started.status_code == 201, started.get_json()
    instance_id = started.get_json()["id"]
    left = desk.client.post("/api/v1/users/lea/deactivate", headers=desk.auth("ada"), json={})
    assert left.status_code == 200, left.get_json()
    services.session.expire_all()
    lea = services.session.scalar(select(User).where(User.username == "lea"))
    mails_before = len(services.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "lea@example.org")).all())
    inbox_before = len(services.session.scalars(select(Notification).where(Notification.user_id == lea.id)).all())
    cancelled = desk.client.post(f"/api/v1/instances/{instance_id}/cancel", headers=desk.auth("alex"),
                                 json={"reason": "Duplicate of the payroll vendor's outage, see INC-7"})
    assert cancelled.status_code == 200, cancelled.get_json()
    services.session.expire_all()
    mails = services.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "lea@example.org")).all()
    assert len(mails) == mails_before, [m.subject for m in mails]
    assert len(services.session.scalars(select(Notification).where(Notification.user_id == lea.id)).all()) == inbox_before
