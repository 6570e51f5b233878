"""Maintenance windows in Chromium: an admin adds a CI's weekly window with the CI page's form
(a form sent without a day comes back with the error and what was typed), at laptop and phone
widths; an agent typing a change's window outside it on the start form is told so, with the next
window long enough, plans it then with a click, and the CI's schedule draws the windows."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


@pytest.mark.parametrize("width", [1280, 390])
def test_an_admin_adds_a_window_and_an_agent_is_told_a_change_is_outside_it(live, person, width):
    ci = f"brw-mw-{width}"  # a CI of this journey's own: the live desk is shared
    made = live.desk.client.post("/api/v1/cis", headers=live.desk.auth("ada"), json={"name": ci, "class": "hardware"})
    assert made.status_code == 201, made.get_json()
    admin = person(width)
    admin.sign_in("ada")
    admin.go(f"/cmdb/cis/{ci}")
    page = admin.page
    section = page.locator("#ci-windows")
    expect(section.locator("#ci-no-windows")).to_be_visible()
    page.locator("#ci-window-start").fill("02:00")
    page.locator("#ci-window-end").fill("06:00")
    page.locator("#ci-window-zone").fill("Europe/Berlin")
    page.locator("#ci-window-name").fill("Sunday night")
    page.get_by_role("button", name="Add maintenance window").click()
    # no day ticked: refused beside the form, what was typed kept
    expect(section.locator(".error-summary")).to_contain_text("Days of the week: choose at least one day")
    expect(page.locator("#ci-window-zone")).to_have_value("Europe/Berlin")
    expect(page.locator("#ci-window-start")).to_have_value("02:00")
    page.get_by_label("Sunday").check()
    page.get_by_role("button", name="Add maintenance window").click()
    expect(page.locator(".flash-success")).to_contain_text("The maintenance window was added")
    expect(section.locator("li")).to_contain_text("02:00–06:00 (Europe/Berlin) · Sunday night")
    expect(section.locator("li")).to_contain_text("next: 2026-01-11 01:00 – 2026-01-11 05:00 UTC")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits a phone
    admin.screenshot(f"ci-maintenance-windows-{width}")
    assert admin.errors == [], admin.console

    agent = person(width)
    agent.sign_in("alex")
    agent.go("/start/change_enablement")
    form = agent.page
    panel = form.locator("section.window-clashes")
    form.locator("#f-planned_start").fill("2026-03-10 20:00")
    form.locator("#f-planned_end").fill("2026-03-10 22:00")
    form.locator("#f-ci").fill(ci)
    expect(panel).to_be_visible()
    expect(panel.locator("li a")).to_have_text([f"outside the maintenance windows of {ci}; the next one long "
                                                "enough: 2026-03-15 01:00 – 2026-03-15 05:00 UTC"])
    # planned then with a click: as long, within the window (Sunday 15 March, 02:00 to 04:00 in Berlin)
    form.get_by_role("button", name="Plan it then: 2026-03-15 01:00 – 2026-03-15 03:00 UTC").click()
    expect(form.locator("#f-planned_start")).to_have_value("2026-03-15 01:00")
    expect(form.locator("#f-planned_end")).to_have_value("2026-03-15 03:00")
    expect(panel).to_be_hidden()  # asked again: nothing to say
    agent.go(f"/schedule?from=2026-03-09&days=7&ci={ci}")
    expect(agent.page.locator("#maintenance-row")).to_contain_text(f"the windows of {ci}")
    expect(agent.page.locator("#maintenance-row rect.maintenance-band")).to_have_count(1)  # Sunday the 15th
    assert agent.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert agent.errors == [], agent.console
