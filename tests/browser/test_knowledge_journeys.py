"""Knowledge journey in real Chromium: an agent writes a draft and publishes it; a requester
finds it by searching and cannot open another agent's draft."""

from __future__ import annotations

import re

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

KB_URL = re.compile(r".*/knowledge/(KB-\d{6})$")


def write_draft(page, title: str, workaround: str) -> str:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge").click()
    page.get_by_role("link", name="Write an article").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New article")
    page.get_by_label("Symptoms").fill("The tunnel drops every morning at 08:30.")
    page.get_by_role("button", name="Save draft").click()  # no title yet
    expect(page.get_by_role("alert")).to_contain_text("Title: is required")
    expect(page.get_by_label("Symptoms")).to_have_value("The tunnel drops every morning at 08:30.")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Workaround").fill(workaround)
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(KB_URL)
    match = KB_URL.match(page.url)
    assert match
    expect(page.locator("#kb-article-status")).to_have_text("Draft")
    return match.group(1)


def test_an_agent_publishes_an_article_a_requester_finds_it_and_no_draft(live, person):
    alex = person(1280)
    alex.sign_in("alex")
    page = alex.page
    number = write_draft(page, "VPN tunnel drops <b>every</b> morning", "Reconnect with the failover profile.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("VPN tunnel drops <b>every</b> morning")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{number} is published")
    expect(page.locator("#kb-article-status")).to_have_text("Published")
    hidden = write_draft(page, "VPN gateway replacement plan", "Not yet.")
    alex.screenshot("knowledge-agent")

    rita = person(390)
    rita.sign_in("rita")
    page = rita.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge").click()
    page.get_by_label("Keywords").fill("vpn failover")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#kb-result")).to_have_text("1 article found.")
    page.get_by_role("link", name=re.compile(number)).click()
    expect(page.locator("#kb-workaround")).to_have_text("Reconnect with the failover profile.")
    expect(page.get_by_role("button", name="Retire")).to_have_count(0)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge").click()
    page.get_by_label("Keywords").fill("gateway replacement")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#kb-result")).to_have_text("No article matches your search. Try other words.")
    assert rita.go(f"/knowledge/{hidden}").status == 404
    rita.screenshot("knowledge-requester")
    assert alex.errors == [] and rita.errors == []
