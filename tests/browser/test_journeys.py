"""Journeys of issue #5 in real Chromium, at a laptop's and a phone's width."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

WIDTHS = [1280, 390]


def open_task_from_queue(someone, number: str, task_name: str) -> None:
    page = someone.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.get_by_role("link", name=re.compile(r"^Group queue")).click()
    row = page.get_by_role("row").filter(has_text=number)
    row.get_by_role("link", name=task_name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(task_name)


@pytest.mark.parametrize("width", WIDTHS)
def test_journey_2_an_agent_works_an_incident_through_a_form_error(live, person, width):
    number = live.start_incident(f"VPN down at {width}px")

    alex = person(width)
    alex.sign_in("alex")
    open_task_from_queue(alex, number, "Triage incident")
    alex.page.get_by_label("Assignment group").select_option("NetworkTeam")
    alex.page.get_by_role("button", name="Submit").click()
    expect(alex.page.get_by_role("status")).to_contain_text("Done: “Triage incident”.")

    nina = person(width)
    # signed in with the keyboard only: the username field has focus, Tab leads to the password
    nina.go("/login")
    expect(nina.page.get_by_label("Username")).to_be_focused()
    nina.page.keyboard.type("nina")
    nina.page.keyboard.press("Tab")
    expect(nina.page.get_by_label("Password")).to_be_focused()
    nina.page.keyboard.type("password-1234")
    nina.page.keyboard.press("Enter")
    nina.page.wait_for_url(live.url + "/")
    # on every page the first Tab shows the skip link, which jumps over the header
    nina.page.keyboard.press("Tab")
    skip = nina.page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    nina.page.keyboard.press("Enter")
    expect(nina.page.locator("main")).to_be_focused()

    open_task_from_queue(nina, number, "Investigate and resolve")
    page = nina.page
    page.get_by_label("Resolution notes").fill("Restarted the VPN concentrator")
    page.get_by_label("Cause", exact=True).select_option("configuration")
    page.get_by_role("button", name="Submit").click()  # the outcome is missing

    expect(page.get_by_role("alert")).to_contain_text("Outcome: is required")
    expect(page.locator("#f-outcome-error")).to_have_text("Error: is required")
    expect(page.get_by_role("group", name="Outcome")).to_contain_text("is required")
    expect(page.get_by_label("Resolution notes")).to_have_value("Restarted the VPN concentrator")
    expect(page.get_by_label("Cause", exact=True)).to_have_value("configuration")
    page.get_by_role("link", name="Outcome: is required").click()  # the summary leads to the field
    expect(page.get_by_label("Resolved", exact=True)).to_be_focused()

    page.get_by_label("Resolved", exact=True).check()
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("Done: “Investigate and resolve”.")
    page.get_by_role("link", name=re.compile(r"^Group queue")).click()
    expect(page.get_by_role("row").filter(has_text=number)).to_have_count(0)
    assert live.desk.record(number)["status"] == "resolved"
    nina.screenshot(f"journey-2-{width}")

    assert alex.errors == [] and nina.errors == [], (alex.console, nina.console)


@pytest.mark.parametrize("width", WIDTHS)
def test_journey_5_a_task_of_another_group_is_not_found(live, person, width):
    number = live.start_incident(f"Printer jam at {width}px")
    task_id = live.desk.task_id(number, "triage")

    nina = person(width)
    nina.sign_in("nina")
    response = nina.go(f"/tasks/{task_id}")
    assert response.status == 404
    expect(nina.page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(nina.page.get_by_role("main")).not_to_contain_text(number)
    expect(nina.page.get_by_role("link", name="Go to your tasks")).to_be_visible()
    nina.screenshot(f"journey-5-{width}")

    assert nina.errors == []
