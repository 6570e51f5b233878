"""Recurring requests in Chromium: an agent fills the incident form, opens "Repeat this request on
a schedule", sends it without a day (it comes back open, the problem beside the days and the form
kept), ticks Monday and Friday and schedules it with Enter in the time zone; the list shows when it starts; she pauses it and
resumes it; at a phone's width the list and the schedule's fields fit the screen."""

from __future__ import annotations

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

from tests.browser.test_double_submit import fill_incident  # noqa: E402


def test_an_agent_schedules_an_incident_pauses_and_resumes_it(live, person):
    agent = person(1280)
    agent.sign_in("ivan")
    page = agent.page
    agent.go("/start/incident_management")
    fill_incident(page, "Weekly printer check")
    page.locator("#repeat summary").click()
    page.get_by_label("Name of the recurring request").fill("Printer check")
    page.get_by_label("Monday").uncheck()
    page.get_by_label("Starts at").fill("08:15")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Schedule it").click()
    expect(page.locator("#repeat")).to_have_attribute("open", "")
    expect(page.locator("#repeat-errors")).to_contain_text("Days of the week: choose at least one day")
    expect(page.get_by_label("Title")).to_have_value("Weekly printer check")
    expect(page.get_by_label("Name of the recurring request")).to_have_value("Printer check")
    page.get_by_label("Monday").check()
    page.get_by_label("Friday").check()
    # Enter in a field of the schedule schedules the form (it does not start the process now)
    page.get_by_label("Time zone").press("Enter")
    expect(page.locator(".flash")).to_contain_text("“Printer check” is scheduled: it starts next on")
    row = page.locator("#recurring-requests tr", has_text="Printer check")
    expect(row).to_contain_text("Monday, Friday at 08:15 (Europe/Berlin)")
    expect(row).to_contain_text("not yet")
    row.get_by_role("button", name="Pause").click()
    expect(page.locator(".flash")).to_contain_text("Paused")
    expect(row).to_contain_text("Paused")
    row.get_by_role("button", name="Resume").click()
    expect(page.locator(".flash")).to_contain_text("Resumed")
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    assert agent.errors == [], agent.console
    phone = person(390)
    phone.sign_in("ivan")
    phone.go("/recurring")
    expect(phone.page.locator("#recurring-requests")).to_contain_text("Printer check")
    phone.go("/start/incident_management")
    phone.page.locator("#repeat summary").click()
    expect(phone.page.get_by_label("Time zone")).to_be_visible()
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.go("/recurring")
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot("recurring-390")
    assert phone.errors == [], phone.console
