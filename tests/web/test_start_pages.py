"""The start pages: reporting an incident (and raising a change or problem) from a process's start form."""

from __future__ import annotations

import re
from typing import Any

from tests.web.conftest import INCIDENT, text_of


def main(body: str) -> str:
    return body[body.index("<main"):body.index("</main>")]


def nav(body: str) -> str:
    return body[body.index('<nav class="main-nav"'):body.index("</nav>", body.index('<nav class="main-nav"'))]


def records_of(services: Any, username: str) -> list[Any]:
    user = services.users.get_by_username(username)
    rows, _total = services.records.list_tickets(user, {"requester": username}, "-opened_at", 1, 50)
    return rows


def incident_form() -> dict[str, str]:
    return {key: INCIDENT[key] for key in ("title", "description", "category", "impact", "urgency", "service", "ci")}


def test_rita_reports_an_incident_and_lands_on_its_record(web, desk, services):
    web.login("rita")
    home = text_of(web.get("/"))
    assert 'href="/start/incident_management"' in nav(home) and "Report an incident" in nav(home)
    assert "/start/change_enablement" not in nav(home)  # changes and problems are raised by staff
    page = text_of(web.get("/start/incident_management"))
    body = main(page)
    assert "<h1>Report an incident</h1>" in body
    # the labels are the schema titles, the controls the UI schema's widgets
    assert '<label for="f-title">Title' in body and '<textarea id="f-description"' in body
    assert '<select id="f-category"' in body and 'type="radio"' in body and "Human error" in body
    assert 'name="csrf_token"' in body and 'action="/start/incident_management"' in body
    before = len(records_of(services, "rita"))
    response = web.post("/start/incident_management", incident_form())
    assert response.status_code == 302, text_of(response)[:500]
    location = response.headers["Location"]
    number = re.fullmatch(r"/tickets/([A-Z]+-\d+)", location)
    assert number, location
    record = text_of(web.get(location))
    assert "VPN down" in record and f"Your record {number.group(1)} “VPN down” was created." in record
    assert len(records_of(services, "rita")) == before + 1
    assert desk.record(number.group(1))["title"] == "VPN down"


def test_blank_or_invalid_fields_come_back_beside_the_field_with_the_input_kept(web, desk, services):
    web.login("rita")
    before = len(records_of(services, "rita"))
    form = {**incident_form(), "title": "   ", "impact": "", "urgency": "enormous", "service": "Mail & calendar"}
    response = web.post("/start/incident_management", form)
    assert response.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    response = web.get(response.headers["Location"])
    body = main(text_of(response))
    assert "The form has problems. Nothing was saved." in body
    assert re.search(r'<p class="field-error" id="f-title-error">.*is required', body)
    assert re.search(r'<p class="field-error" id="f-impact-error">.*is required', body)
    assert 'id="f-urgency-error"' in body
    # what the user typed is kept
    assert "Cannot connect from home</textarea>" in body and 'value="Mail &amp; calendar"' in body
    assert re.search(r'<option value="network" selected>', body)
    assert len(records_of(services, "rita")) == before


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(web, desk, services):
    web.login("rita")
    before = len(records_of(services, "rita"))
    assert web.post("/start/incident_management", incident_form(), csrf=False).status_code == 403
    assert len(records_of(services, "rita")) == before


def test_a_process_without_a_start_form_or_unknown_is_not_found(web, desk):
    web.login("alex")
    assert web.get("/start/no_such_process").status_code == 404
    assert web.post("/start/no_such_process", {"title": "x"}).status_code == 404
    # catalog_request is deployed but has no start form: it is started from the catalog only
    assert web.get("/start/catalog_request").status_code == 404
    assert web.post("/start/catalog_request", {"title": "x"}).status_code == 404
    assert web.get("/start/" + "x" * 300).status_code == 404


def test_staff_see_change_and_problem_and_can_open_them(web, desk):
    web.login("alex")
    bar = nav(text_of(web.get("/")))
    # the header's shorter words for staff's start pages (an admin's header fits one line at 1280 px)
    assert "New change" in bar and "New problem" in bar and "New incident" in bar
    assert "Report an incident" not in bar  # a requester's words (they start incidents only)
    assert web.get("/start/change_enablement").status_code == 200
    assert "<h1>Raise a problem</h1>" in text_of(web.get("/start/problem_management"))


def test_an_auditor_may_not_start_and_is_offered_no_link(web, desk, services):
    web.login("aude")
    assert "/start/" not in nav(text_of(web.get("/")))
    assert web.get("/start/incident_management").status_code == 403
    assert web.post("/start/incident_management", incident_form()).status_code == 403
    assert records_of(services, "aude") == []


def test_the_page_is_in_chinese(web, desk):
    web.login("rita")
    web.post("/language", {"lang": "zh_CN"})
    body = text_of(web.get("/start/incident_management"))
    assert "报告事件" in body and "提交" in body


def test_a_bad_emergency_window_is_explained_beside_the_field(web, desk):
    """QA: "soon" read "must match the pattern ^(?=.*[1-9])P(?=[0-9T])..." on the page."""
    web.login("alex")
    refused = web.post("/start/change_enablement", {
        "title": "Patch the mail gateway", "description": "CVE fix", "reason": "Security", "change_type": "emergency",
        "implementer": "ivan", "emergency_approval_window": "soon"})
    assert refused.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    refused = web.get(refused.headers["Location"])
    page = text_of(refused)
    assert "must be a duration such as PT4H (4 hours), PT30M or P1D" in page
    assert "must match the pattern" not in page
