"""Saved views in Chromium: an agent filters the record list, saves it under a name (an empty
name comes back beside the field), finds the view above the list on her next visit, opens it to
the same filtered list marked as shown, and deletes it; at a phone's width the views and the save
form fit the screen."""

from __future__ import annotations

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def test_an_agent_saves_a_filtered_list_opens_it_again_and_deletes_it(live, person):
    number = live.start_incident("Saved view check: scanner offline")
    for width in (1280, 390):
        agent = person(width)
        agent.sign_in("ivan")
        page = agent.page
        if width == 1280:
            agent.go("/tickets")
            page.get_by_label("Text").fill("scanner offline")
            page.get_by_role("button", name="Show records").click()
            expect(page.locator("table.tickets")).to_contain_text(number)
            page.get_by_role("button", name="Save view").click()
            expect(page.locator("#view-name-error")).to_contain_text("is required")
            page.get_by_label("Save this list as").fill("Scanner trouble")
            page.get_by_role("button", name="Save view").click()
            expect(page.locator(".flash")).to_contain_text("The view “Scanner trouble” is saved")
        agent.go("/tickets")
        views = page.locator("#saved-views")
        expect(views.get_by_role("link", name="Scanner trouble")).to_be_visible()
        views.get_by_role("link", name="Scanner trouble").click()
        expect(page.locator("table.tickets")).to_contain_text(number)
        expect(page.locator("#result-count")).to_have_text("Records found: 1")
        expect(views.locator("a[aria-current=page]")).to_have_text("Scanner trouble")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        if width == 390:
            agent.screenshot("saved-views-390")
            views.get_by_role("button", name="Delete the view Scanner trouble").click()
            expect(page.locator(".flash")).to_contain_text("The view is deleted.")
            expect(page.locator("#saved-views")).to_have_count(0)
        assert agent.errors == [], agent.console
