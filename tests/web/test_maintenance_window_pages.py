"""Maintenance windows on the pages: a configuration manager adds one on the CI page (CSRF, refused
input beside the form, kept once), it lists with its next opening and goes with Remove; an agent
reads it without a form; a change planned outside it shows the clash on the record page, on the
schedule (which shades the CI's windows when it shows that CI) and as its window is typed; in
Chinese too.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from app.models import CiMaintenanceWindow
from tests.http.test_e2e_change import CHANGE
from tests.web.conftest import refused_to, text_of
from tests.web.test_cmdb_pages import GATEWAY, create

SUNDAY_NIGHT = {"days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "Europe/Berlin", "name": "Sunday night"}
ITEM = "/cmdb/cis/vpn-gw-01"


def windows(services: Any) -> list[CiMaintenanceWindow]:
    services.session.expire_all()
    return list(services.session.scalars(select(CiMaintenanceWindow)))


def test_an_admin_adds_and_removes_a_window_an_agent_reads_it(web_factory, desk, services):
    admin, agent = web_factory(), web_factory()
    admin.login("ada")
    agent.login("alex")
    create(admin)
    page = text_of(admin.get(ITEM))
    assert 'id="ci-no-windows"' in page and 'id="ci-window-form"' in page
    assert '<option value="Europe/Berlin">' in page  # the zones offered as typed
    assert admin.post(f"{ITEM}/windows", SUNDAY_NIGHT, csrf=False).status_code == 403  # no CSRF token
    assert windows(services) == []
    added = admin.post(f"{ITEM}/windows", SUNDAY_NIGHT)
    assert added.status_code == 302 and added.headers["Location"] == f"{ITEM}#ci-windows"
    page = text_of(admin.get(ITEM))
    assert "The maintenance window was added" in page
    [row] = windows(services)
    row_id = row.id
    line = page[page.index(f'id="ci-window-{row_id}"'):]
    line = line[:line.index("</li>")]
    assert re.search(r'<abbr title="Sunday">Sun</abbr>\s*02:00–06:00 \(Europe/Berlin\)</span> · Sunday night', line), line
    assert "next: 2026-01-11 01:00 – 2026-01-11 05:00 UTC" in line  # 02:00 in Berlin is 01:00 UTC in January
    nightly = admin.post(f"{ITEM}/windows", {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                             "start": "22:00", "end": "02:00", "timezone": ""})
    assert nightly.status_code == 302
    page = text_of(admin.get(ITEM))
    assert "Every day\n        22:00–02:00 (the next day) (UTC)" in page
    assert admin.post(f"{ITEM}/windows", SUNDAY_NIGHT).status_code == 302
    assert "That maintenance window was there already." in text_of(admin.get(ITEM))

    # the agent reads the windows, with no form and no remove button; the forms are refused
    item = text_of(agent.get(ITEM))
    assert f'id="ci-window-{row_id}"' in item and 'id="ci-window-form"' not in item and "/windows/" not in item
    assert agent.post(f"{ITEM}/windows", SUNDAY_NIGHT).status_code == 403
    assert agent.post(f"{ITEM}/windows/{row_id}/delete").status_code == 403
    assert len(windows(services)) == 2

    # the audit's results table says which CI and window each event was about
    audit = text_of(admin.get("/audit"))
    assert "vpn-gw-01: sun 02:00–06:00 Europe/Berlin" in audit
    removed = admin.post(f"{ITEM}/windows/{row_id}/delete")
    assert removed.status_code == 302 and removed.headers["Location"] == f"{ITEM}#ci-windows"
    assert "The maintenance window was removed." in text_of(admin.get(ITEM))
    assert [w.start_minute for w in windows(services)] == [22 * 60]
    again = admin.post(f"{ITEM}/windows/{row_id}/delete")
    assert again.status_code == 302 and "That maintenance window is no longer there." in text_of(admin.get(ITEM))


def test_refused_input_comes_back_beside_the_form_once_and_in_chinese(web, desk, services):
    web.login("ada")
    create(web)
    refused = web.post(f"{ITEM}/windows", {"start": "25:00", "end": "6", "timezone": "Mars/Olympus", "name": "<b>kept</b>"})
    page = refused_to(web, refused, f"{ITEM}#ci-windows")
    summary = page[page.index('class="error-summary"'):]
    summary = summary[:summary.index("</div>")]
    assert "Days of the week: choose at least one day" in summary
    assert "Opens at: must be a time of day as hh:mm (00:00 to 23:59)" in summary and "Closes at:" in summary
    assert "Time zone: must be a time zone such as Europe/Berlin or UTC" in summary
    assert 'name="name" value="&lt;b&gt;kept&lt;/b&gt;"' in page and 'value="Mars/Olympus"' in page
    assert 'class="error-summary"' not in text_of(web.get(ITEM))  # shown once
    assert windows(services) == []
    # days kept as ticked
    refused = web.post(f"{ITEM}/windows", {"days": ["sat", "sun"], "start": "02:00", "end": "x"})
    page = refused_to(web, refused, f"{ITEM}#ci-windows")
    assert 'id="ci-window-day-sat" name="days" value="sat" checked' in page
    assert 'id="ci-window-day-mon" name="days" value="mon">' in page
    chinese = {"Accept-Language": "zh-CN"}
    refused = web.post(f"{ITEM}/windows", {"start": "02:00", "end": "06:00", "timezone": "nowhere"}, headers=chinese)
    page = refused_to(web, refused, f"{ITEM}#ci-windows", headers=chinese)
    summary = page[page.index('class="error-summary"'):]
    summary = summary[:summary.index("</div>")]
    assert "维护窗口" in page and "choose" not in summary and "time zone" not in summary, summary


def test_a_change_outside_the_windows_shows_the_clash_on_its_pages(web, desk, services):
    web.login("ada")
    create(web, name="mailgw01")  # CHANGE is planned on mailgw01, Tuesday 2026-03-10 20:00-22:00 UTC
    assert web.post("/cmdb/cis/mailgw01/windows", SUNDAY_NIGHT).status_code == 302
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal"})["data"]["record_number"]
    said = ("outside the maintenance windows of mailgw01; the next one long enough: "
            "2026-03-15 01:00 – 2026-03-15 05:00 UTC")  # the first Sunday night from its start
    assert said in text_of(web.get(f"/tickets/{number}"))
    page = text_of(web.get("/schedule?from=2026-03-09&days=7"))
    assert said in page and 'id="maintenance-row"' not in page  # the windows are drawn for one CI's schedule
    page = text_of(web.get("/schedule?from=2026-03-09&days=7&ci=mailgw01"))
    row = page[page.index('id="maintenance-row"'):]
    row = row[:row.index("</tr>")]
    assert 'href="/cmdb/cis/mailgw01#ci-windows">the windows of mailgw01</a>' in row
    assert "<title>2026-03-15 01:00 – 2026-03-15 05:00 UTC</title>" in row  # the band says its times
    # the filter typed in another letter case: the CI as the CMDB names it, and its link works
    shouted = text_of(web.get("/schedule?from=2026-03-09&days=7&ci=MAILGW01"))
    assert 'href="/cmdb/cis/mailgw01#ci-windows">the windows of mailgw01</a>' in shouted
    assert row.count('class="maintenance-band"') == 1  # Sunday 15 March, on the windows' own row
    assert page.count('class="maintenance-band"') == 1
    # as a window is typed (the forms' check): the clash, linking to the CI's schedule in the week that fits
    typed = web.get("/schedule/clashes", query_string={"from": "2026-03-11 20:00", "to": "2026-03-11 22:00",
                                                       "ci": "mailgw01"}).get_json()
    assert typed["items"] == [{"text": said, "url": "/schedule?from=2026-03-15&days=7&ci=mailgw01",
                               "window": {"from": "2026-03-15 01:00", "to": "2026-03-15 03:00"}}]
    inside = web.get("/schedule/clashes", query_string={"from": "2026-03-15 01:30", "to": "2026-03-15 03:00",
                                                        "ci": "mailgw01"}).get_json()
    assert inside["items"] == []
    web.post("/language", {"lang": "zh_CN"})
    chinese = text_of(web.get(f"/tickets/{number}"))
    assert "mailgw01" in chinese and "outside the maintenance windows" not in chinese
    assert "2026-03-15 01:00" in chinese


def test_a_retired_ci_offers_no_form_and_the_twenty_first_window_is_refused_in_words(web, desk, services):
    web.login("ada")
    create(web)
    for minute in range(20):
        assert web.post(f"{ITEM}/windows", {"days": ["sat"], "start": f"01:{minute:02d}", "end": "03:00"}).status_code == 302
    refused = web.post(f"{ITEM}/windows", SUNDAY_NIGHT)
    assert refused.status_code == 302
    assert "vpn-gw-01 has 20 maintenance windows, the most an item has: remove one first." in text_of(web.get(ITEM))
    assert web.post(f"{ITEM}/retire").status_code == 302
    page = text_of(web.get(ITEM))
    assert 'id="ci-window-form"' not in page and len(windows(services)) == 20
    assert GATEWAY["name"] == "vpn-gw-01"


def test_a_window_is_changed_with_the_same_form(web, desk, services):
    web.login("ada")
    create(web)
    assert web.post(f"{ITEM}/windows", SUNDAY_NIGHT).status_code == 302
    [row] = windows(services)
    row_id = row.id
    page = text_of(web.get(f"{ITEM}?edit_window={row_id}"))
    form = page[page.index('id="ci-window-form"'):]
    assert f'action="/cmdb/cis/vpn-gw-01/windows/{row_id}/edit"' in page and "Change the maintenance window" in form
    assert 'name="days" value="sun" checked' in form and 'name="start" value="02:00"' in form
    assert 'value="Europe/Berlin"' in form and 'value="Sunday night"' in form
    # refused: back to the same window's form, with what was typed
    refused = web.post(f"{ITEM}/windows/{row_id}/edit", {**SUNDAY_NIGHT, "days": [], "end": "07:00"})
    page = refused_to(web, refused, f"{ITEM}?edit_window={row_id}#ci-window-form")
    assert "Days of the week: choose at least one day" in page and 'name="end" value="07:00"' in page
    assert f'action="/cmdb/cis/vpn-gw-01/windows/{row_id}/edit"' in page
    saved = web.post(f"{ITEM}/windows/{row_id}/edit", {**SUNDAY_NIGHT, "days": ["sat", "sun"], "end": "07:00"})
    assert saved.status_code == 302 and saved.headers["Location"] == f"{ITEM}#ci-windows"
    assert "The maintenance window was changed." in text_of(web.get(ITEM))
    [row] = windows(services)
    assert (row.days, row.end_minute) == (32 + 64, 7 * 60)
    assert web.post(f"{ITEM}/windows/{row_id}/edit", SUNDAY_NIGHT, csrf=False).status_code == 403


def test_a_monthly_window_is_chosen_and_said(web, desk, services):
    web.login("ada")
    create(web)
    page = text_of(web.get(ITEM))
    assert 'value="second">The second of each day in the month</option>' in page
    added = web.post(f"{ITEM}/windows", {"days": ["tue"], "week": "second", "start": "22:00", "end": "02:00",
                                         "timezone": "UTC", "name": "Patch Tuesday"})
    assert added.status_code == 302
    page = text_of(web.get(ITEM))
    assert re.search(r'<abbr title="Tuesday">Tue</abbr> \(second in the month\)\s*22:00–02:00 \(the next day\) \(UTC\)', page)
    [row] = windows(services)
    assert row.week == 2
    form = text_of(web.get(f"{ITEM}?edit_window={row.id}"))
    assert '<option value="second" selected>' in form
    refused = web.post(f"{ITEM}/windows/{row.id}/edit", {"days": ["tue"], "week": "fifth", "start": "22:00", "end": "02:00"})
    page = refused_to(web, refused, f"{ITEM}?edit_window={row.id}#ci-window-form")
    assert "Repeats: must be a week of the month, or every week" in page
