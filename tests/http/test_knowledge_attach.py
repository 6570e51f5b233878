"""An agent attaches a knowledge article to a record (QA: the link form offered "Known error
documented in" and answered KB-000001 with "There is no record KB-000001"): through the API
(POST /tickets/<number>/articles) and the record page's link form, which takes an article's
number too. Staff only; a published article only; listed once; audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_knowledge_admin import ARTICLE

INCIDENT = {"title": "Outlook keeps asking for the password", "description": "Since this morning",
            "category": "software", "impact": "low", "urgency": "medium"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def article(desk: Desk, publish: bool = True) -> str:
    made = desk.client.post("/api/v1/knowledge", json=ARTICLE, headers=desk.auth("alex"))
    assert made.status_code == 201, made.get_json()
    number = made.get_json()["number"]
    if publish:
        done = desk.client.post(f"/api/v1/knowledge/{number}/publish", json={}, headers=desk.auth("alex"))
        assert done.status_code == 200, done.get_json()
    return str(number)


def attach(desk: Desk, number: str, who: str, article_number: str) -> Any:
    return desk.client.post(f"/api/v1/tickets/{number}/articles", json={"number": article_number}, headers=desk.auth(who))


def test_an_agent_attaches_a_published_article_once(desk: Desk, services):
    kb = article(desk)
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    first = attach(desk, number, "alex", kb.lower())
    assert first.status_code == 201 and first.get_json() == {"knowledge_articles": [kb], "attached": True}
    again = attach(desk, number, "nina", kb)
    assert again.status_code == 200 and again.get_json() == {"knowledge_articles": [kb], "attached": False}
    assert desk.record(number, "rita")["details"]["knowledge_articles"] == [kb]  # the requester reads it
    [event] = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "knowledge_attached")).all()
    assert event.actor == "alex" and event.payload["article"] == kb and event.payload["number"] == number


def test_only_the_desks_staff_attach_and_only_published_articles(desk: Desk):
    draft = article(desk, publish=False)
    kb = article(desk)
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    assert_error(attach(desk, number, "rita", kb), 403)  # her own record: she reads articles, not files them
    assert_error(attach(desk, number, "aude", kb), 403)
    assert_error(attach(desk, number, "nina", "KB-000404"), 422)  # staff: then the article is looked at
    assert_error(attach(desk, number, "cab1", kb), 403)  # an approver attaches nothing, whatever the record
    refused = assert_error(attach(desk, number, "alex", draft), 422, "validation_failed")
    assert "draft" in refused["details"]["fields"]["number"][0]
    missing = assert_error(attach(desk, number, "alex", "KB-999999"), 422, "validation_failed")
    assert "no such article" in missing["details"]["fields"]["number"][0]
    assert_error(desk.client.post(f"/api/v1/tickets/{number}/articles", json={}, headers=desk.auth("alex")), 422)
    assert "knowledge_articles" not in desk.record(number)["details"]


def test_a_requester_is_refused_before_her_body_is_read(desk: Desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    assert_error(desk.client.post(f"/api/v1/tickets/{number}/articles", json={}, headers=desk.auth("rita")), 403)


def test_a_closed_record_takes_no_article(desk: Desk, services):
    """QA: an attach rewrote a closed record's details and its updated_at."""
    kb = article(desk)
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    ticket = services.records.by_number(number)
    services.instances.cancel(services.users.get_by_username("alex"), ticket.instance_id, "Raised twice")
    services.session.commit()
    before = desk.record(number)["updated_at"]
    assert_error(attach(desk, number, "alex", kb), 409, "record_closed")
    after = desk.record(number)
    assert after["updated_at"] == before and "knowledge_articles" not in after["details"]
