"""The shipped diagrams' own notices in each reader's language, through the API with the real
services: a P1 incident tells ServiceOwners, one in English and one in Chinese; an incident pending
on the customer asks a Chinese requester in Chinese. The record's values (number, title, the
agent's question) are filled in as written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.desk import Desk

P1 = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
      "impact": "high", "urgency": "high"}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    desk = Desk(client, services)
    services.users.create_user("wang", "password-1234", roles=["agent"], groups=["ServiceOwners"], locale="zh_CN")
    services.session.commit()
    chose = desk.client.patch("/api/v1/users/me", headers=desk.auth("rita"), json={"locale": "zh_CN"})
    assert chose.status_code == 200, chose.get_json()
    return desk


def told(desk: Desk, who: str, number: str) -> list[tuple[str, str]]:
    """``who``'s in-app notices about ``number`` (as the API lists them), oldest first."""
    link = f"/tickets/{number}"
    return [(n["subject"], n["body"]) for n in reversed(desk.notifications(who)) if n["body"].rstrip().endswith(link)]


def test_a_major_incident_is_told_to_each_service_owner_in_their_language(desk: Desk):
    number = desk.start("rita", "incident_management", P1)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P1", "assignment_group": "NetworkTeam"})
    [(subject, body)] = [n for n in told(desk, "sonia", number) if n[0].startswith("Major incident")]
    assert subject == "Major incident (P1): VPN down"
    assert body.startswith(f"Major incident {number} reported by rita: Cannot connect from home\n\nhttp")
    [(subject, body)] = [n for n in told(desk, "wang", number) if n[0].startswith("重大事件")]
    assert subject == "重大事件（P1）：VPN down"
    assert body.startswith(f"重大事件 {number}，报告人 rita：Cannot connect from home\n\nhttp")


def test_a_chinese_requester_is_asked_in_chinese_with_the_agents_question_as_written(desk: Desk):
    number = desk.start("rita", "incident_management", {**P1, "impact": "low", "urgency": "low"})["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "customer",
                                                  "pending_reason": "Please send a photo of the error"})
    [(subject, body)] = [n for n in told(desk, "rita", number) if "答复" in n[0]]
    assert subject == f"{number} 需要您答复：VPN down"
    assert body.startswith(f"{number}（VPN down）的解决组正在等待您：Please send a photo of the error\n\n"
                           f"如需答复，请在 {number} 中添加备注")
    assert not [n for n in told(desk, "rita", number) if "needs your answer" in n[0]]
