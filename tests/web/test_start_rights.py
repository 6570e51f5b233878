"""Start rights on the start pages: the page, the form post and the header follow the process's
declared starters (``<process_id>.access.json``), and hidden start-form fields keep their defaults
for anyone but staff."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, ProcessInstance
from tests.web.conftest import INCIDENT, text_of

PROBLEM = {"title": "VPN tunnels drop every morning", "description": "Between 08:30 and 09:00."}
CHANGE = {"title": "Upgrade the mail gateway", "description": "Move the gateway to version 9.2.",
          "change_type": "normal", "reason": "Version 8 is out of support in April.",
          "planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z",
          "implementation_plan": "Drain, upgrade, re-enable.", "rollback_plan": "Restore the VM snapshot.",
          "test_plan": "Send and receive test mail."}
FORMS = {"problem_management": PROBLEM, "change_enablement": CHANGE}


def instances(services: Any) -> int:
    return services.session.scalar(select(func.count()).select_from(ProcessInstance)) or 0


def latest_instance(services: Any) -> ProcessInstance:
    found = services.session.scalar(select(ProcessInstance).order_by(ProcessInstance.id.desc()).limit(1))
    assert found is not None
    return found  # type: ignore[no-any-return]


def nav(body: str) -> str:
    start = body.index('<nav class="main-nav"')
    return body[start:body.index("</nav>", start)]


@pytest.mark.parametrize("process_id", ["problem_management", "change_enablement"])
def test_a_requester_is_refused_the_page_and_the_post(web, desk, services, process_id: str):
    web.login("rita")
    page = web.get(f"/start/{process_id}")
    assert page.status_code == 403
    assert "Your roles do not allow you to start this process." in text_of(page)
    before = instances(services)
    posted = web.post(f"/start/{process_id}", FORMS[process_id])
    assert posted.status_code == 403 and "Your roles do not allow you to start this process." in text_of(posted)
    assert instances(services) == before
    refusals = [(e.actor, e.payload["action"], e.payload["process_id"]) for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "access_denied").order_by(AuditEvent.seq))]
    assert refusals == [("rita", "start", process_id)] * 2


@pytest.mark.parametrize("process_id", ["problem_management", "change_enablement"])
def test_an_agent_raises_them_from_the_page(web, desk, services, process_id: str):
    web.login("alex")
    response = web.post(f"/start/{process_id}", FORMS[process_id])
    assert response.status_code == 302, text_of(response)[:500]
    assert latest_instance(services).process_id == process_id


def test_the_header_offers_what_the_declaration_allows(web, desk, services):
    web.login("rita")
    assert "/start/problem_management" not in nav(text_of(web.get("/")))
    olga = services.users.get_by_username("olga")
    services.definitions.deploy(olga, [("problem_management.access.json", b'{"start_roles": ["requester"]}')])
    services.session.commit()
    bar = nav(text_of(web.get("/")))
    assert "/start/problem_management" in bar and "/start/change_enablement" not in bar
    assert web.post("/start/problem_management", PROBLEM).status_code == 302


def test_a_requester_cannot_set_the_hidden_field_from_the_page(web_factory, desk, services):
    rita = web_factory()
    rita.login("rita")
    form = {key: INCIDENT[key] for key in ("title", "description", "category", "impact", "urgency")}
    assert rita.post("/start/incident_management", {**form, "auto_close_after": "PT1S"}).status_code == 302
    assert (latest_instance(services).data or {})["auto_close_after"] == "P3D"
    # a tampered value that is not even valid is ignored too: she could not have fixed it
    assert rita.post("/start/incident_management", {**form, "auto_close_after": "PT0S"}).status_code == 302
    alex = web_factory()
    alex.login("alex")
    assert alex.post("/start/incident_management", {**form, "auto_close_after": "PT48H"}).status_code == 302
    assert (latest_instance(services).data or {})["auto_close_after"] == "PT48H"


def test_the_refusal_is_in_chinese(web, desk):
    web.login("rita")
    web.post("/language", {"lang": "zh_CN"})
    page = web.get("/start/change_enablement")
    assert page.status_code == 403 and "您的角色不允许启动此流程。" in text_of(page)
