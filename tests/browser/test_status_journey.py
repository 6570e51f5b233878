"""Service status in Chromium: an agent posts an outage on /status/new (a form sent with an end
before its start comes back with the error and what was typed); a requester meets it in the banner
above her home page and the incident form (at a phone's width too) and, instead of reporting it,
says from the banner that it affects her; the agent's update reaches her bell, and once the agent
resolves it the banner is gone."""

from __future__ import annotations

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def test_an_outage_is_posted_seen_followed_and_resolved(live, person):
    agent = person(1280)
    agent.sign_in("alex")
    agent.go("/status")
    page = agent.page
    page.locator("#post-notice").click()
    page.get_by_label("Title").fill("Printing is down on floor 3")
    page.get_by_label("Level").select_option("outage")
    page.get_by_label("What the desk says").fill("The floor 3 printers do not answer; we are on it.")
    page.get_by_label("Service (optional)").fill("Printing")
    page.get_by_label("Starts (empty: now)").fill("2026-01-05 10:00")
    page.get_by_label("Expected to end (optional)").fill("2026-01-05 09:00")
    page.get_by_role("button", name="Post the notice").click()
    # refused beside the field, nothing lost of what was typed
    expect(page.locator(".error-summary")).to_be_visible()
    expect(page.locator("#expected_end_at-error")).to_contain_text("must be after the start")
    expect(page.get_by_label("Title")).to_have_value("Printing is down on floor 3")
    expect(page.get_by_label("Service (optional)")).to_have_value("Printing")
    page.get_by_label("Starts (empty: now)").fill("")
    page.get_by_label("Expected to end (optional)").fill("")
    page.get_by_role("button", name="Post the notice").click()
    expect(page.locator("h1")).to_contain_text("Printing is down on floor 3")
    expect(page.locator("#notice-state")).to_have_text("Now")
    notice_url = page.url
    assert agent.errors == [], agent.console

    for width in (1280, 390):
        rita = person(width)
        rita.sign_in("rita")
        banner = rita.page.locator("#status-banner")
        expect(banner).to_contain_text("Outage")
        expect(banner).to_contain_text("Printing is down on floor 3")
        assert rita.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits a phone
        rita.go("/start/incident_management")
        expect(rita.page.locator("#status-banner")).to_contain_text("Printing is down on floor 3")
        assert rita.errors == [], rita.console
    rita.screenshot("status-banner-390")

    # about to report it, she follows it from the banner instead and stays on the form
    rita.page.locator("#status-banner").get_by_role("button", name="This affects me").click()
    expect(rita.page.locator("#status-banner")).to_contain_text("you are told of it")
    assert rita.page.url.endswith("/start/incident_management")
    assert rita.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    rita.page.locator("#status-banner").get_by_role("link", name="Printing is down on floor 3").click()
    expect(rita.page.locator("#notice-affected")).to_have_text("People who said it affects them: 1")
    expect(rita.page.get_by_role("button", name="It no longer affects me")).to_be_visible()
    expect(rita.page.locator("#update-form")).to_have_count(0)  # a requester posts nothing

    page.goto(notice_url)
    expect(page.locator("#notice-affected")).to_have_text("People who said it affects them: 1")
    page.get_by_label("What the desk says now").fill("Two of the three printers are back.")
    page.locator("#field-level").select_option("degraded")
    page.get_by_role("button", name="Post the update").click()
    expect(page.locator("h1")).to_contain_text("Degraded service")
    expect(page.locator("#timeline li").first).to_contain_text("Two of the three printers are back.")
    agent.screenshot("status-notice-1280")

    rita.go("/notifications")
    expect(rita.page.locator("main")).to_contain_text("Printing is down on floor 3")

    page.get_by_label("The desk's last word").fill("All printers print again.")
    page.get_by_role("button", name="Resolve the notice").click()
    expect(page.locator("#notice-state")).to_have_text("Resolved")
    expect(page.locator("#update-form")).to_have_count(0)
    rita.go("/")
    expect(rita.page.locator("#status-banner")).to_have_count(0)
    expect(rita.page.locator("#status-quiet")).to_be_visible()
    assert agent.errors == [], agent.console
    assert rita.errors == [], rita.console
