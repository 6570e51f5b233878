"""Recurring requests on the pages: the desk's staff schedule a start form instead of sending it
("Repeat this request on a schedule"), the form's and the schedule's problems come back beside
their fields with the input kept and nothing stored; /recurring lists them with what they last
started, pauses, resumes, changes and deletes them; nobody else touches another's.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from app.models import ProcessInstance, RecurringRequest
from tests.web.conftest import INCIDENT, refused_to, text_of
from tests.web.test_catalog import LAPTOP

START = "/start/incident_management"


def schedule_form(**changes: Any) -> dict[str, Any]:
    return {**INCIDENT, "_action": "schedule", "_repeat_name": "Weekly VPN check", "_repeat_days": ["mon", "thu"],
            "_repeat_week": "", "_repeat_time": "11:00", "_repeat_timezone": "Europe/Berlin", **changes}


def stored(services: Any) -> list[RecurringRequest]:
    services.session.expire_all()
    return list(services.session.scalars(select(RecurringRequest).order_by(RecurringRequest.id)))


def instances(services: Any) -> int:
    return services.session.scalar(select(func.count()).select_from(ProcessInstance)) or 0


def row_of(page: str, request_id: int) -> str:
    start = page.index(f'<tr id="recurring-{request_id}"')
    return page[start:page.index("</tr>", start)]


def test_an_agent_schedules_a_start_form_instead_of_sending_it(web, web_factory, desk, services, clock):
    web.login("alex")
    page = text_of(web.get(START))
    assert '<details class="repeat" id="repeat">' in page and 'name="_repeat_days" value="thu"' in page
    before = instances(services)
    response = web.post(START, schedule_form())
    [made] = stored(services)
    assert response.status_code == 303 and response.headers["Location"] == f"/recurring#recurring-{made.id}"
    assert instances(services) == before  # kept, not started
    assert made.owner.username == "alex" and made.data["title"] == "VPN down" and made.timezone == "Europe/Berlin"
    listed = text_of(web.get("/recurring"))
    assert "“Weekly VPN check” is scheduled: it starts next on 2026-01-05 10:00 UTC." in listed
    row = row_of(listed, made.id)
    assert "Weekly VPN check" in row and "Monday, Thursday" in row and "at 11:00 (Europe/Berlin)" in row
    assert "2026-01-05 10:00" in row and "not yet" in row
    # once it has run, the list links the record it started
    clock.advance(timedelta(hours=1))
    assert services.recurring.sweep() == 1, stored(services)[0].last_error
    web = web_factory()  # (an hour idle signs a session out)
    web.login("alex")
    row = row_of(text_of(web.get("/recurring")), made.id)
    number = re.search(r'href="/tickets/([A-Z]+-\d+)"', row)
    assert number and desk.record(number.group(1))["title"] == "VPN down"
    assert "2026-01-08 10:00" in row  # the next start: Thursday
    # the home page points to them
    assert 'id="home-recurring-link"' in text_of(web.get("/"))


def test_a_requester_has_no_schedule_and_cannot_post_one(web, desk, services):
    web.login("rita")
    assert 'id="repeat"' not in text_of(web.get(START))
    response = web.post(START, schedule_form())
    assert response.status_code == 403
    assert "agents, process owners and admins make recurring requests" in text_of(response)
    assert stored(services) == []


def test_the_form_s_and_the_schedule_s_problems_come_back_beside_their_fields(web, desk, services):
    web.login("alex")
    before = instances(services)
    response = web.post(START, schedule_form(title="  ", _repeat_days=[], _repeat_time="25:99",
                                             _repeat_timezone="Mars/Olympus"))
    page = refused_to(web, response, START)
    assert '<details class="repeat" id="repeat" open>' in page
    assert 'id="f-title"' in page and 'aria-invalid="true"' in page[page.index('id="f-title"') - 300:page.index('id="f-title"') + 300]
    summary = page[page.index('id="repeat-errors"'):page.index("</div>", page.index('id="repeat-errors"'))]
    assert "Days of the week: choose at least one day" in summary
    assert "Starts at: must be a time of day as hh:mm" in summary and "Time zone: must be a time zone" in summary
    assert 'value="Mars/Olympus"' in page and 'value="Weekly VPN check"' in page  # the input is kept
    assert stored(services) == [] and instances(services) == before
    # "Requested for" is checked with the form, at once
    page = refused_to(web, web.post(START, schedule_form(title="", _on_behalf_of="nobody-here")), START)
    assert "nobody-here: no such active user" in page and 'value="nobody-here"' in page
    # a good schedule with a bad form: the form's problem alone
    page = refused_to(web, web.post(START, schedule_form(urgency="enormous")), START)
    assert 'id="repeat-errors"' not in page and "<details class=\"repeat\" id=\"repeat\" open>" in page
    assert stored(services) == []


def test_pause_resume_change_and_delete_from_the_list_each_by_its_owner(web, web_factory, desk, services):
    web.login("alex")
    web.post(START, schedule_form())
    [made] = stored(services)
    other = web_factory()
    other.login("nina")
    assert made.name not in text_of(other.get("/recurring"))
    assert other.get(f"/recurring/{made.id}").status_code == 404
    gone = other.post(f"/recurring/{made.id}/pause")
    assert gone.status_code == 303 and "That recurring request is gone." in text_of(other.get("/recurring"))
    assert stored(services)[0].active is True
    assert web.post(f"/recurring/{made.id}/pause", csrf=False).status_code == 403
    assert stored(services)[0].active is True
    web.post(f"/recurring/{made.id}/pause")
    page = text_of(web.get("/recurring"))
    assert "Paused: it starts nothing until it is resumed." in page and "Resume" in row_of(page, made.id)
    assert stored(services)[0].active is False
    web.post(f"/recurring/{made.id}/resume")
    assert stored(services)[0].active is True
    # the rule changes on its own page; a bad value comes back beside its field
    form = {"_repeat_name": "VPN check", "_repeat_days": ["fri"], "_repeat_week": "last", "_repeat_time": "07:30",
            "_repeat_timezone": "Nowhere/Land"}
    page = refused_to(web, web.post(f"/recurring/{made.id}", form), f"/recurring/{made.id}")
    assert "Time zone: must be a time zone" in page and 'value="Nowhere/Land"' in page
    assert stored(services)[0].name == "Weekly VPN check"
    response = web.post(f"/recurring/{made.id}", {**form, "_repeat_timezone": "UTC"})
    assert response.status_code == 303
    changed = stored(services)[0]
    assert (changed.name, changed.days, changed.week, changed.minute, changed.timezone) == ("VPN check", 16, 5, 450, "UTC")
    assert "(last in the month) at 07:30 (UTC)" in row_of(text_of(web.get("/recurring")), made.id)
    web.post(f"/recurring/{made.id}/delete")
    assert stored(services) == [] and 'id="no-recurring"' in text_of(web.get("/recurring"))


def test_an_admin_lists_everyone_s(web, desk, services):
    web.login("alex")
    web.post(START, schedule_form())
    admin = web
    admin.logout()
    admin.login("ada")
    assert 'id="no-recurring"' in text_of(admin.get("/recurring"))
    page = text_of(admin.get("/recurring?all=1"))
    [made] = stored(services)
    assert "alex" in row_of(page, made.id)


def test_a_catalog_item_is_ordered_on_a_schedule_from_its_page(web, desk, services):
    web.login("alex")
    page = text_of(web.get("/catalog/HW-LAPTOP"))
    assert '<details class="repeat" id="repeat">' in page
    form = {**LAPTOP, "_action": "schedule", "_repeat_name": "Pool laptop", "_repeat_days": ["wed"],
            "_repeat_week": "last", "_repeat_time": "08:00", "_repeat_timezone": "UTC"}
    before = instances(services)
    # a bad answer comes back beside its field, the schedule open, nothing stored
    page = refused_to(web, web.post("/catalog/HW-LAPTOP", {**form, "keyboard_layout": "Klingon"}), "/catalog/HW-LAPTOP")
    assert '<details class="repeat" id="repeat" open>' in page and stored(services) == []
    response = web.post("/catalog/HW-LAPTOP", form)
    [made] = stored(services)
    assert response.status_code == 303 and response.headers["Location"] == f"/recurring#recurring-{made.id}"
    assert made.process_id == "catalog_request" and made.data["item"] == "HW-LAPTOP" and made.week == 5
    assert instances(services) == before
    assert "(last in the month) at 08:00 (UTC)" in row_of(text_of(web.get("/recurring")), made.id)
    web.logout()
    web.login("rita")  # a requester orders, and schedules nothing: refused before her answers are read
    assert 'id="repeat"' not in text_of(web.get("/catalog/HW-LAPTOP"))
    refused = web.post("/catalog/HW-LAPTOP", {**form, "keyboard_layout": "Klingon"})
    assert refused.status_code == 403 and "make recurring requests" in text_of(refused)
    assert len(stored(services)) == 1
