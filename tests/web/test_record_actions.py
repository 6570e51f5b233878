"""Stopping a record's process from its page: its requester withdraws it while no work has started,
the desk's staff cancel it with a reason; each confirms with a ticked box, and the service decides
(403 with its reason once work has started, 404 for a record the user may not see)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from app.models import AuditEvent
from tests.web.conftest import INCIDENT, PASSWORD, refused_to, text_of

TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}
LAPTOP = {"justification": "The battery swells; the laptop is four years old.", "replacement": True,
          "old_asset_tag": "AT-123456", "keyboard_layout": "UK", "delivery_location": "Main building 2.17"}


def open_incident(desk: Any, who: str = "rita") -> str:
    return str(desk.start(who, "incident_management", INCIDENT)["data"]["record_number"])


def laptop_request(desk: Any) -> str:
    response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["number"])


def status_badge(page: str) -> str:
    match = re.search(r'id="ticket-status">([^<]*)<', page)
    assert match, "the record page shows no status"
    return match.group(1)


def has_stop_form(page: str) -> bool:
    return 'id="stop-form"' in page


def cancel_reasons(services: Any, number: str) -> list[tuple[str, Any]]:
    """(actor, reason) of the audited closings of ``number`` as cancelled."""
    events = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "record_updated"))
    return [(e.actor, e.payload.get("reason")) for e in events
            if e.payload.get("number") == number and e.payload["changes"].get("status") == "cancelled"]


def test_the_requester_withdraws_her_new_incident_without_a_reason(web, desk, services):
    number = open_incident(desk)
    web.login("rita")
    page = text_of(web.get(f"/tickets/{number}"))
    assert has_stop_form(page) and "Withdraw request" in page and "Reason (optional)" in page
    assert "Cancel the record" not in page
    assert f'action="/tickets/{number}/cancel"' in page and 'name="confirm" value="yes" required' in page

    response = web.post(f"/tickets/{number}/cancel", {"reason": "", "confirm": "yes"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/tickets/{number}")
    page = text_of(web.get(f"/tickets/{number}"))
    assert f"Your request {number} was withdrawn." in page
    assert status_badge(page) == "Cancelled" and not has_stop_form(page)
    assert re.search(r'id="ticket-cancellation">Cancelled by rita on [^<]*\.</p>', page)
    assert desk.record(number)["status"] == "cancelled"
    assert cancel_reasons(services, number) == [("rita", None)]


def test_the_requester_withdraws_a_catalog_request_awaiting_approval_with_a_reason(web, desk, services):
    number = laptop_request(desk)
    web.login("rita")
    assert has_stop_form(text_of(web.get(f"/tickets/{number}")))
    response = web.post(f"/tickets/{number}/cancel", {"reason": "Found a spare one", "confirm": "yes"})
    assert response.status_code == 302
    page = text_of(web.get(f"/tickets/{number}"))
    assert status_badge(page) == "Cancelled"
    assert re.search(r'id="ticket-cancellation">Cancelled by rita on [^<]*: Found a spare one</p>', page)
    assert cancel_reasons(services, number) == [("rita", "Found a spare one")]


def test_once_work_has_started_the_requester_is_offered_nothing_and_refused(web, desk):
    approved = laptop_request(desk)
    desk.complete(approved, "approve_manager", "mona", {"approved": True, "approval_comment": "Go ahead."})
    claimed = open_incident(desk)
    triage = desk.task_id(claimed, "triage")
    assert desk.client.post(f"/api/v1/tasks/{triage}/claim", headers=desk.auth("alex")).status_code == 200

    web.login("rita")
    for number, status in ((approved, "fulfilment"), (claimed, "new")):
        page = text_of(web.get(f"/tickets/{number}"))
        assert not has_stop_form(page) and "Withdraw request" not in page
        response = web.post(f"/tickets/{number}/cancel", {"reason": "", "confirm": "yes"})
        assert response.status_code == 403, number
        assert re.search(rf'id="stop-refusal"[^>]*>.*work on {number} has started: only the service desk may cancel it now',
                         text_of(response)), number
        assert desk.record(number)["status"] == status


def test_an_agent_cancels_with_a_reason_the_reason_required(web, desk, services):
    number = open_incident(desk)
    desk.complete(number, "triage", "alex", TRIAGE)
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    assert has_stop_form(page) and "Cancel the record" in page and "Withdraw request" not in page

    # Post/Redirect/Get: the record page the refusal leads back to says it beside the form, once
    back = f"/tickets/{number}#record-actions"
    missing = refused_to(web, web.post(f"/tickets/{number}/cancel", {"reason": "  ", "confirm": "yes"}), back)
    assert re.search(r'id="stop-reason-error">.*is required</p>', missing)
    assert 'aria-invalid="true" aria-describedby="stop-reason-error"' in missing
    assert '<details class="stop-record" open>' in missing and missing.count('class="field-error"') == 1
    unconfirmed = refused_to(web, web.post(f"/tickets/{number}/cancel", {"reason": "Raised twice"}), back)
    assert re.search(r'id="stop-confirm-error">.*Tick the box to confirm\.</p>', unconfirmed)
    assert ">Raised twice</textarea>" in unconfirmed  # what was typed is kept
    again = text_of(web.get(f"/tickets/{number}"))
    assert 'id="stop-confirm-error"' not in again and "Raised twice" not in again
    assert '<details class="stop-record">' in again
    assert desk.record(number)["status"] != "cancelled" and cancel_reasons(services, number) == []

    response = web.post(f"/tickets/{number}/cancel", {"reason": "Raised twice", "confirm": "yes"})
    assert response.status_code == 302
    page = text_of(web.get(f"/tickets/{number}"))
    assert f"{number} was cancelled." in page and status_badge(page) == "Cancelled"
    assert re.search(r'id="ticket-cancellation">Cancelled by alex on [^<]*: Raised twice</p>', page)
    assert cancel_reasons(services, number) == [("alex", "Raised twice")]

    again = web.post(f"/tickets/{number}/cancel", {"reason": "Raised twice", "confirm": "yes"})
    assert again.status_code == 409 and f"The process of {number} is already over" in text_of(again)


def test_others_see_no_button_and_may_not_cancel(web, desk, services):
    number = laptop_request(desk)
    services.users.create_user("rick", PASSWORD, roles=["requester"], groups=["Requesters"])
    services.session.commit()
    web.login("rick")  # another requester: the record is not his to see
    assert web.get(f"/tickets/{number}").status_code == 404
    assert web.post(f"/tickets/{number}/cancel", {"reason": "mine now", "confirm": "yes"}).status_code == 404
    web.logout()

    web.login("mona")  # her line manager sees it (her approval task), but it is not hers to stop
    page = text_of(web.get(f"/tickets/{number}"))
    assert status_badge(page) and not has_stop_form(page)
    refused = web.post(f"/tickets/{number}/cancel", {"reason": "no", "confirm": "yes"})
    assert refused.status_code == 403
    assert "only the service desk or the requester may cancel this record" in text_of(refused)
    web.logout()

    web.login("aude")  # an auditor reads, and stops nothing
    assert not has_stop_form(text_of(web.get(f"/tickets/{number}")))
    assert desk.record(number)["status"] == "submitted" and cancel_reasons(services, number) == []


def test_a_post_without_the_csrf_token_is_refused(web, desk, services):
    number = open_incident(desk)
    web.login("rita")
    response = web.post(f"/tickets/{number}/cancel", {"reason": "", "confirm": "yes"}, csrf=False)
    assert response.status_code == 403
    assert desk.record(number)["status"] == "new" and cancel_reasons(services, number) == []


def test_the_chinese_page_words_the_actions_and_the_refusal(web, desk):
    number = open_incident(desk)
    web.login("rita")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get(f"/tickets/{number}"))
    for words in ("撤回您的申请", "撤回申请", "理由（可选）", f"我了解这将停止 {number} 的所有工作。"):
        assert words in page, words
    assert "Withdraw" not in page

    unconfirmed = web.post(f"/tickets/{number}/cancel", {"reason": ""})
    assert "请勾选此框以确认。" in refused_to(web, unconfirmed, f"/tickets/{number}#record-actions")

    triage = desk.task_id(number, "triage")
    assert desk.client.post(f"/api/v1/tasks/{triage}/claim", headers=desk.auth("alex")).status_code == 200
    refused = web.post(f"/tickets/{number}/cancel", {"reason": "", "confirm": "yes"})
    assert refused.status_code == 403
    assert f"{number} 的处理工作已经开始：现在只有服务台可以取消它" in text_of(refused)
