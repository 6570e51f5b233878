"""The change schedule page: planned changes on a time line with the freezes behind them and their
clashes, the freeze form for process owners and admins (refused input beside its field), and a
start page that refuses a change planned into a freeze beside its planned start."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from app.models import AuditEvent, ChangeFreeze
from tests.http.test_e2e_change import ASSESS_LOW, CHANGE
from tests.web.conftest import refused_to, text_of
from tests.web.test_request_log import log_lines as log_lines  # the fixture: the app log as JSON lines
from tests.web.test_request_log import parsed

FREEZE = {"name": "Quarter close", "starts_at": "2026-03-10 18:00", "ends_at": "2026-03-11 06:00", "ci": "",
          "reason": "Finance closes the quarter."}
PERIOD = "/schedule?from=2026-03-09&days=7"


def freezes(services: Any) -> list[ChangeFreeze]:
    services.session.expire_all()
    return list(services.session.scalars(select(ChangeFreeze)))


def test_an_agent_sees_planned_changes_their_clashes_and_no_freeze_form(web, desk):
    first = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal"})["data"]["record_number"]
    second = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal",
                                                      "planned_start": "2026-03-10T21:00:00Z"})["data"]["record_number"]
    web.login("alex")
    home = text_of(web.get("/"))
    assert 'href="/schedule"' in home  # offered in the header
    page = text_of(web.get(PERIOD))
    assert 'id="freeze-form"' not in page and "Remove" not in page
    row = page[page.index(f'id="planned-{first}"'):page.index(f'id="planned-{second}"')]
    assert "2026-03-10 20:00</time> – <time" in row and "mailgw01" in row
    assert f"same configuration item and time as {second}" in row and 'class="clashing"' in row
    # on a 7-day line from 2026-03-09, 20:00 on the 10th is 1 day 20 h in: 1000 * 44 / 168
    bar = re.search(r'<rect class="bar clash" x="([\d.]+)" y="5" width="([\d.]+)"', row)
    assert bar is not None and (float(bar.group(1)), float(bar.group(2))) == (261.9, 11.9)
    # another week shows neither; the pager keeps the period
    later = text_of(web.get("/schedule?from=2026-03-16&days=7"))
    assert first not in later and "No planned work in this period." in later
    assert 'href="/schedule?days=7&amp;from=2026-03-09" rel="prev"' in later
    assert web.get("/schedule?from=2026-13-01").status_code == 200  # an impossible day: told, today shown
    assert "Enter a day as YYYY-MM-DD." in text_of(web.get("/schedule?from=2026-13-01"))
    for far in ("9999-12-31", "0001-01-03"):  # beyond the years the desk keeps: told, today shown
        response = web.get(f"/schedule?from={far}&days=7")
        assert response.status_code == 200 and "Enter a day in the years 1900 to 8999." in text_of(response)


def test_a_process_owner_adds_and_removes_a_freeze_and_the_start_page_refuses_a_change_in_it(web, desk, services):
    web.login("alex")
    assert web.post("/schedule/freezes?from=2026-03-09&days=7", FREEZE).status_code == 403
    assert freezes(services) == []
    web.logout()

    web.login("olga")
    page = text_of(web.get(PERIOD))
    assert 'id="freeze-form"' in page
    where = "/schedule?from=2026-03-09&days=7"
    refused = refused_to(web, web.post(where.replace("/schedule", "/schedule/freezes"),
                                       {**FREEZE, "starts_at": "10 March", "ends_at": "2026-03-10 17:00"}),
                         where + "#freeze-form")
    assert "must be a date and time: YYYY-MM-DD hh:mm (UTC)" in refused and 'value="10 March"' in refused
    refused = refused_to(web, web.post(where.replace("/schedule", "/schedule/freezes"),
                                       {**FREEZE, "ends_at": "2026-03-10 17:00"}), where + "#freeze-form")
    assert 'id="ends_at-error"' in refused and "must be after the start" in refused
    assert freezes(services) == []
    added = web.post(where.replace("/schedule", "/schedule/freezes"), FREEZE)
    assert added.status_code == 303 and added.headers["Location"] == where + "#freezes"
    [freeze] = freezes(services)
    assert (freeze.starts_at.isoformat(), freeze.ends_at.isoformat()) == ("2026-03-10T18:00:00+00:00", "2026-03-11T06:00:00+00:00")
    page = text_of(web.get(PERIOD))
    assert "The freeze “Quarter close” was added" in page or "Quarter close" in page
    assert f'id="freeze-{freeze.id}"' in page and '<rect class="freeze-band"' in page
    web.logout()

    # the start page: the planned start is refused beside its field, naming the freeze
    web.login("alex")
    form = {**CHANGE, "change_type": "normal", "planned_start": "2026-03-10 20:00", "planned_end": "2026-03-10 22:00"}
    response = web.post("/start/change_enablement", form)
    shown = refused_to(web, response, response.headers.get("Location", ""))
    assert "overlaps the change freeze “Quarter close” (2026-03-10 18:00 UTC to 2026-03-11 06:00 UTC)" in shown
    assert 'id="planned_start-error"' in shown or "planned_start" in shown
    web.logout()

    web.login("olga")
    removed = web.post(f"/schedule/freezes/{freeze.id}/delete?from=2026-03-09&days=7")
    assert removed.status_code == 303 and removed.headers["Location"] == where + "#freezes"
    assert services.session.scalar(select(func.count()).select_from(ChangeFreeze)) == 0
    assert web.post(f"/schedule/freezes/{freeze.id}/delete").status_code == 404


def test_the_page_reads_in_chinese(web, desk):
    desk.start("alex", "change_enablement", {**CHANGE, "change_type": "emergency"})
    web.login("olga")
    web.post("/language", {"lang": "zh_CN"})
    web.post("/schedule/freezes?from=2026-03-09&days=7", FREEZE)
    page = text_of(web.get(PERIOD))
    assert "变更日程" in page and "添加冻结期" in page and "冻结期“Quarter close”内（紧急：允许）" in page
    refused = text_of(web.get(web.post("/schedule/freezes?from=2026-03-09&days=7",
                                       {**FREEZE, "ends_at": "2026-03-10 17:00"}).headers["Location"].split("#")[0]))
    assert "必须晚于开始时间" in refused


def test_the_record_page_shows_the_window_and_what_it_clashes_with(web, desk, services):
    services.schedule.add_freeze(services.users.get_by_username("olga"), {
        "name": "Quarter close", "starts_at": datetime(2026, 3, 10, 18, tzinfo=timezone.utc),
        "ends_at": datetime(2026, 3, 11, 6, tzinfo=timezone.utc)})
    services.session.commit()
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "emergency"})["data"]["record_number"]
    other = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "emergency", "title": "Patch"})["data"]["record_number"]
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    window = page[page.index('id="planned-window"'):page.index("</ul>", page.index('id="planned-window"'))]
    assert "2026-03-10 20:00</time> – <time" in window
    assert f'href="/schedule?from=2026-03-10&amp;days=7#planned-{number}"' in window
    assert "in the freeze “Quarter close” (emergency: allowed)" in window
    assert f'<a href="/tickets/{other}">same configuration item and time as {other}</a>' in window
    # an incident has no window
    incident = desk.start("rita", "incident_management", {"title": "Printer offline", "description": "PR-204",
                                                          "category": "hardware", "impact": "low", "urgency": "low"})
    assert 'id="planned-window"' not in text_of(web.get(f"/tickets/{incident['data']['record_number']}"))


def test_the_schedule_task_warns_of_a_freeze_added_after_the_window_was_planned(web, desk, services):
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal"})["data"]["record_number"]
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": True})
    task_id = desk.task_id(number, "schedule", "cora")
    web.login("cora")
    assert 'id="task-clashes"' not in text_of(web.get(f"/tasks/{task_id}"))
    services.schedule.add_freeze(services.users.get_by_username("olga"), {
        "name": "Quarter close", "starts_at": datetime(2026, 3, 10, 21, tzinfo=timezone.utc),
        "ends_at": datetime(2026, 3, 11, 6, tzinfo=timezone.utc)})
    services.session.commit()
    page = text_of(web.get(f"/tasks/{task_id}"))
    notice = page[page.index('id="task-clashes"'):page.index("</div>", page.index('id="task-clashes"'))]
    assert "The planned window (2026-03-10 20:00 – 2026-03-10 22:00 UTC) clashes:" in notice
    assert "in the freeze “Quarter close”" in notice and "emergency" not in notice


def test_the_change_forms_say_what_a_window_clashes_with_as_it_is_typed(web, desk, services):
    services.schedule.add_freeze(services.users.get_by_username("olga"), {
        "name": "Quarter close", "starts_at": datetime(2026, 3, 10, 18, tzinfo=timezone.utc),
        "ends_at": datetime(2026, 3, 11, 6, tzinfo=timezone.utc)})
    services.session.commit()
    web.login("alex")
    start = text_of(web.get("/start/change_enablement"))
    panel = re.search(r'<section class="window-clashes"[^>]*>', start)
    assert panel is not None
    assert 'data-clashes-for="f-planned_start"' in panel.group(0) and 'data-window-end="f-planned_end"' in panel.group(0)
    assert 'data-clashes="/schedule/clashes"' in panel.group(0)
    assert start.index('id="f-planned_end"') < start.index('class="window-clashes"')  # below the whole window
    assert 'data-window-ci="f-ci"' in panel.group(0) and 'data-record=""' in panel.group(0)
    # what the page's script asks, with the times as typed (UTC)
    answer = web.get("/schedule/clashes?from=2026-03-10 20:00&to=2026-03-10 22:00&ci=mailgw01").get_json()
    assert answer == {"items": [{"text": "in the freeze “Quarter close”", "url": "/schedule?from=2026-03-10&days=7#freezes"}]}
    for half_typed in ("from=2026-03-10 2&to=2026-03-10 22:00", "from=2026-03-10 22:00&to=2026-03-10 20:00", "to=x"):
        assert web.get(f"/schedule/clashes?{half_typed}").get_json() == {"items": []}
    # the schedule task of a change: its own record, its own window left out
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal",
                                                      "planned_start": "2026-03-12T20:00:00Z",
                                                      "planned_end": "2026-03-12T22:00:00Z"})["data"]["record_number"]
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": True})
    web.logout()
    web.login("cora")
    task = text_of(web.get(f"/tasks/{desk.task_id(number, 'schedule', 'cora')}"))
    assert f'data-record="{number}"' in task and 'data-window-ci=""' in task
    assert web.get(f"/schedule/clashes?from=2026-03-12 20:00&to=2026-03-12 22:00&number={number}").get_json() == {"items": []}
    web.logout()
    web.login("rita")  # a record she may not see: the page script's error envelope, 404
    assert web.get(f"/schedule/clashes?from=2026-03-12 20:00&to=2026-03-12 22:00&number={number}").status_code == 404


def test_the_period_downloads_as_a_calendar_in_the_pages_language(web, desk):
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "emergency"})["data"]["record_number"]
    web.login("olga")
    web.post("/schedule/freezes?from=2026-03-09&days=7", FREEZE)
    page = text_of(web.get(PERIOD))
    assert 'href="/schedule.ics?days=7&amp;from=2026-03-09" id="schedule-ics"' in page
    web.post("/language", {"lang": "zh_CN"})
    response = web.get("/schedule.ics?days=7&from=2026-03-09")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    assert response.headers["Content-Disposition"] == 'attachment; filename="change-schedule-2026-03-09.ics"'
    lines = response.get_data(as_text=True).replace("\r\n ", "").split("\r\n")
    assert "X-WR-CALNAME:processdesk 变更日程" in lines and "SUMMARY:变更冻结期：Quarter close" in lines
    assert f"UID:{number}@127.0.0.1" in lines
    description = next(line for line in lines if line.startswith("DESCRIPTION:") and "tickets" in line)
    assert "在冻结期“Quarter close”内（紧急：允许）" in description
    # another week: neither
    other = web.get("/schedule.ics?days=7&from=2026-04-06").get_data(as_text=True)
    assert number not in other and "Quarter close" not in other


def feed_address(page: str) -> str:
    found = re.search(r'id="feed-address" readonly value="http://127\.0\.0\.1:5000(/schedule/feed/[^"]+\.ics)"', page)
    assert found is not None, page[page.find('id="feed"'):][:600]
    return found.group(1)


def test_a_calendar_subscribes_to_the_schedule_with_a_secret_address(web, web_factory, desk, services, clock):
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal",
                                                      "planned_start": "2026-01-10T20:00:00Z",
                                                      "planned_end": "2026-01-10T22:00:00Z"})["data"]["record_number"]
    web.login("alex")
    assert 'id="feed-address"' not in text_of(web.get("/schedule"))
    made = web.post("/schedule/feed?days=7")
    assert made.status_code == 303 and made.headers["Location"].endswith("/schedule?days=7#feed")
    page = text_of(web.get("/schedule?days=7"))
    address = feed_address(page)
    assert "You subscribed on 2026-01-05 09:00 UTC." in page
    assert 'id="feed-address"' not in text_of(web.get("/schedule"))  # shown once
    web.logout()

    # a calendar: no session, the address is the key
    calendar_client = web_factory()
    answer = calendar_client.get(address)
    assert answer.status_code == 200 and answer.mimetype == "text/calendar"
    assert "Set-Cookie" not in answer.headers
    assert f"UID:{number}@127.0.0.1" in answer.get_data(as_text=True).replace("\r\n ", "")
    events = [e.event_type for e in services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type.like("schedule_feed_%")))]
    assert events == ["schedule_feed_opened"]
    # a changed secret, a new address, a stopped one, a password change: 404, the same each time
    assert calendar_client.get(address[:-6] + "x.ics").status_code == 404
    web.login("alex")
    web.post("/schedule/feed")
    second = feed_address(text_of(web.get("/schedule")))
    assert second != address and calendar_client.get(address).status_code == 404
    assert calendar_client.get(second).status_code == 200
    web.post("/schedule/feed/close")
    assert calendar_client.get(second).status_code == 404
    assert "Your calendar subscription was stopped" in text_of(web.get("/schedule"))
    web.post("/schedule/feed")
    third = feed_address(text_of(web.get("/schedule")))
    services.users.change_own_password(services.users.get_by_username("alex"), "password-1234", "another-password-99")
    services.session.commit()
    assert calendar_client.get(third).status_code == 404
    # requesters plan no changes: no subscription
    web.logout()
    web.login("rita")
    assert 'id="feed"' not in text_of(web.get("/schedule"))
    assert web.post("/schedule/feed").status_code == 403


def test_a_subscription_reads_as_its_user_in_their_language(web, web_factory, desk, services):
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "emergency"})["data"]["record_number"]
    cora = services.users.get_by_username("cora")
    cora.locale = "zh_CN"
    services.session.commit()
    services.schedule.add_freeze(services.users.get_by_username("olga"), {
        "name": "Quarter close", "starts_at": datetime(2026, 1, 6, tzinfo=timezone.utc),
        "ends_at": datetime(2026, 1, 7, tzinfo=timezone.utc)})
    services.session.commit()
    web.login("cora")
    web.post("/schedule/feed")
    address = feed_address(text_of(web.get("/schedule")))
    body = web_factory().get(address).get_data(as_text=True).replace("\r\n ", "")
    assert "SUMMARY:变更冻结期：Quarter close" in body
    assert f"UID:{number}@127.0.0.1" in body  # ten weeks ahead: within the twelve it shows
    services.users.deactivate_user(services.users.get_by_username("ada"), "cora")  # a leaver's calendar reads nothing more
    services.session.commit()
    assert web_factory().get(address).status_code == 404


def test_the_access_log_never_writes_a_subscription_secret(web, web_factory, desk, log_lines):
    web.login("alex")
    web.post("/schedule/feed")
    address = feed_address(text_of(web.get("/schedule")))
    assert web_factory().get(address).status_code == 200
    assert web_factory().get(address[:-6] + "x.ics").status_code == 404
    paths = [line["path"] for line in parsed(log_lines) if line.get("logger") == "app.requests"]
    assert paths.count("/schedule/feed/[redacted].ics") == 2
    assert not [path for path in paths if address.split("/")[-1][:20] in path]


def test_a_calendar_shows_closed_work_as_free_time_and_links_each_freeze_to_its_week(web, desk, services, client):
    started = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal"})
    number = started["data"]["record_number"]
    cancelled = client.post(f"/api/v1/instances/{started['id']}/cancel", headers=desk.auth("alex"),
                            json={"reason": "Not needed after all."})
    assert cancelled.status_code == 200, cancelled.get_json()
    services.schedule.add_freeze(services.users.get_by_username("olga"), {
        "name": "Quarter close", "starts_at": datetime(2026, 3, 12, 18, tzinfo=timezone.utc),
        "ends_at": datetime(2026, 3, 13, 6, tzinfo=timezone.utc)})
    services.session.commit()
    web.login("alex")
    lines = web.get("/schedule.ics?days=7&from=2026-03-09&closed=1").get_data(as_text=True).replace("\r\n ", "").split("\r\n")
    event = lines[lines.index(f"UID:{number}@127.0.0.1"):]
    assert event[:event.index("END:VEVENT")][-1] == "TRANSP:TRANSPARENT"
    assert any(line.startswith("URL:http://127.0.0.1:5000/schedule?from=2026-03-12&days=7#freeze-") for line in lines)
    # not asked for closed records: the cancelled change is not in it
    assert number not in web.get("/schedule.ics?days=7&from=2026-03-09").get_data(as_text=True)


def test_a_freeze_reached_through_a_service_is_said_so(web, desk, services, client):
    ada = desk.auth("ada")
    for name, kind in (("payroll-svc", "service"), ("db-01", "hardware")):
        assert client.post("/api/v1/cis", headers=ada, json={"name": name, "class": kind}).status_code == 201
    assert client.post("/api/v1/cis/payroll-svc/relationships", headers=ada,
                       json={"target": "db-01", "kind": "runs_on"}).status_code == 201
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "emergency", "ci": "db-01"})["data"]["record_number"]
    web.login("olga")
    web.post("/schedule/freezes?from=2026-03-09&days=7", {**FREEZE, "ci": "payroll-svc"})
    page = text_of(web.get(f"/tickets/{number}"))
    assert "in the freeze “Quarter close” of payroll-svc, which depends on this configuration item (emergency: allowed)" in page
    web.post("/language", {"lang": "zh_CN"})
    assert "在 payroll-svc 的冻结期“Quarter close”内" in text_of(web.get(f"/tickets/{number}"))
    web.post("/language", {"lang": "en"})
    web.logout()
    # a normal change on the database is refused beside its start, naming the service's freeze
    web.login("alex")
    form = {**CHANGE, "change_type": "normal", "ci": "db-01", "planned_start": "2026-03-10 20:00",
            "planned_end": "2026-03-10 22:00"}
    response = web.post("/start/change_enablement", form)
    shown = refused_to(web, response, response.headers.get("Location", ""))
    assert ("the planned window overlaps the change freeze “Quarter close” of payroll-svc, which depends on this "
            "configuration item (2026-03-10 18:00 UTC to 2026-03-11 06:00 UTC)") in shown


def test_a_process_owner_changes_a_freeze_on_the_page(web, desk, services):
    web.login("olga")
    web.post("/schedule/freezes?from=2026-03-09&days=7", FREEZE)
    [freeze] = freezes(services)
    page = text_of(web.get(PERIOD))
    assert f'href="/schedule?edit={freeze.id}&amp;days=7&amp;from=2026-03-09#freeze-form"' in page
    form = text_of(web.get(f"/schedule?edit={freeze.id}&days=7&from=2026-03-09"))
    assert "Change the freeze" in form and 'value="2026-03-10 18:00"' in form
    assert f'action="/schedule/freezes/{freeze.id}/edit?days=7&amp;from=2026-03-09"' in form
    where = f"/schedule/freezes/{freeze.id}/edit?days=7&from=2026-03-09"
    refused = refused_to(web, web.post(where, {**FREEZE, "ends_at": "2026-03-10 17:00"}),
                         f"/schedule?days=7&from=2026-03-09&edit={freeze.id}#freeze-form")
    assert "must be after the start" in refused and "Change the freeze" in refused
    saved = web.post(where, {**FREEZE, "name": "Quarter close (extended)", "ends_at": "2026-03-12 06:00"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("#freezes")
    [freeze] = freezes(services)
    assert (freeze.name, freeze.ends_at.isoformat()) == ("Quarter close (extended)", "2026-03-12T06:00:00+00:00")
    web.logout()
    web.login("alex")
    assert web.post(where, FREEZE).status_code == 403
    assert "edit=" not in text_of(web.get(PERIOD))
