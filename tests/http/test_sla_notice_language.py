"""An SLA breach that hands a record on, told to a Chinese reader in Chinese (clock, state and the
new group's sentence too) and to an English one in English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import Notification, User
from tests.http.desk import Desk
from tests.http.test_sla_escalation_effects import START, put_policy


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def told(services, number: str) -> dict[str, tuple[str, str]]:
    rows = services.session.execute(select(Notification.user_id, Notification.subject, Notification.body)
                                    .where(Notification.body.contains(number)))
    return {services.session.get(User, uid).username: (subject, body) for uid, subject, body in rows}


def test_a_breach_is_told_in_each_readers_language(desk: Desk, services, clock):
    put_policy(desk, {"kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 2 * 3600,
                      "escalation": {"breach": {"notify": ["assignee", "group"], "reassign_group": "MajorIncidentManagers"}}})
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    assert desk.client.patch("/api/v1/users/me", json={"locale": "zh_CN"}, headers=desk.auth("nina")).status_code == 200
    task_id = desk.task_id(number, "investigate", "nina")
    assert desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth("nina")).status_code == 200
    clock.advance(timedelta(hours=2, minutes=1))
    assert services.sla.sweep()["breaches"] == 1
    notices = told(services, number)
    subject, body = notices["nina"]
    title = desk.record(number)["title"]
    assert subject == f"SLA 已违约：{number}（{title}）的解决时限"
    assert body.startswith(f"{number} 的解决时限已违约（截止 ") and "现已转交 MajorIncidentManagers 处理。" in body
    english = notices["mike"]  # the new group's, who chose no language: the site's default
    assert english[0] == f"SLA breached: resolution of {number} ({title})"
    assert "It now goes to MajorIncidentManagers." in english[1]
