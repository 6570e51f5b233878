"""The inbox's sort control in Chromium, at a laptop's and a phone's width: SLA due by default, Age
chosen from the filter form, kept by the tabs; the Priority and SLA due cells readable as cards."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def start_incident(live, title: str, impact: str, urgency: str) -> str:
    data = {"title": title, "description": "Reported by phone", "category": "network", "impact": impact, "urgency": urgency}
    return str(live.desk.start("rita", "incident_management", data)["data"]["record_number"])


def positions(page, *numbers: str) -> list[int]:
    """Where each record's row is in the table (the live desk's queue holds other tests' rows too)."""
    texts = page.get_by_role("row").all_inner_texts()
    return [next(i for i, text in enumerate(texts) if number in text) for number in numbers]


@pytest.mark.parametrize("width", [1280, 390])
def test_an_agent_sorts_the_queue_by_age_and_the_tabs_keep_it(live, person, width):
    # Opened at the same (frozen) instant: the P4 first, so it is the older one; the P1 is due first.
    p4 = start_incident(live, f"New mouse please ({width}px)", "low", "low")
    p1 = start_incident(live, f"Payroll system down ({width}px)", "high", "high")
    alex = person(width)
    alex.sign_in("alex")
    page = alex.page
    alex.go("/tasks?tab=queue")
    # alex's language follows him from the other journeys (one may have left him in Chinese); the
    # header offers only the language the page is not in
    english = page.get_by_role("button", name="English")
    if english.count():
        english.click()
    expect(page.get_by_role("button", name="中文")).to_be_visible()
    sort = page.get_by_label("Sort by")
    expect(sort).to_have_value("due")
    first, second = positions(page, p1, p4)
    assert first < second  # due soonest first
    row = page.get_by_role("row").filter(has_text=p1)
    expect(row.locator("td.priority-cell")).to_have_text("P1")
    expect(row.locator("td.sla time")).to_have_attribute("datetime", "2026-01-05T09:15:00+00:00")
    expect(page.get_by_role("row").filter(has_text=p4).locator("td.priority-cell")).to_have_text("P4")

    sort.select_option(label="Age")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/tasks?*sort=age*")
    assert "tab=queue" in page.url
    expect(page.get_by_label("Sort by")).to_have_value("age")
    first, second = positions(page, p4, p1)
    assert first < second  # oldest first

    page.get_by_role("link", name="Mine").click()
    page.wait_for_url("**/tasks?tab=mine*")
    assert "sort=age" in page.url
    page.get_by_role("link", name="Group queue").click()
    page.wait_for_url("**/tasks?tab=queue*")
    assert "sort=age" in page.url
    expect(page.get_by_label("Sort by")).to_have_value("age")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    alex.screenshot(f"task-queue-sort-{width}")
    assert alex.errors == [], alex.console
