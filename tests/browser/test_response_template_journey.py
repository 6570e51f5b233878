"""Response templates in Chromium: an agent writes one (a typo in a placeholder comes back beside
the text, her typing kept), then on a requester's incident types a line, picks the template under
the comment box, inserts it (filled in from the record, after her line, no script needed) and
sends the comment; at a phone's width the picker fits the screen."""

from __future__ import annotations

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def test_an_agent_writes_a_template_and_answers_a_record_with_it(live, person):
    number = live.start_incident("VPN drops every evening")
    for width in (1280, 390):
        agent = person(width)
        agent.sign_in("alex")
        page = agent.page
        if width == 1280:
            agent.go("/response-templates")
            page.get_by_label("Name").fill("VPN: on it")
            page.get_by_label("Offered on").select_option("incident")
            page.get_by_label("Text").fill("{{agent}} is looking at {{number}} ({{title}}), {{requestor}}.")
            page.get_by_role("button", name="Save the template").click()
            expect(page.locator("#body-error")).to_contain_text("unknown placeholder {{requestor}}")
            expect(page.get_by_label("Name")).to_have_value("VPN: on it")
            page.get_by_label("Text").fill("{{agent}} is looking at {{number}} ({{title}}).")
            page.get_by_role("button", name="Save the template").click()
            expect(page.locator(".flash")).to_contain_text("The template “VPN: on it” is saved.")
            expect(page.locator("table.response-templates")).to_contain_text("VPN: on it")
        agent.go(f"/tickets/{number}")
        box = page.get_by_label("Add a comment")
        box.fill(f"Thanks for the log ({width}).")
        page.get_by_label("Response template").select_option(label="VPN: on it")
        page.locator("#insert-response").click()
        expect(box).to_have_value(f"Thanks for the log ({width}).\n\n{agent_name(page)} is looking at {number} "
                                  "(VPN drops every evening).")
        assert page.url.endswith("#comment-form")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        agent.screenshot(f"response-template-{width}")
        page.get_by_role("button", name="Add comment").click()
        expect(page.locator("ol.comments")).to_contain_text(f"Thanks for the log ({width}).")
        expect(page.locator("ol.comments li").last).to_contain_text(f"is looking at {number} (VPN drops every evening).")
        assert agent.errors == [], agent.console


def agent_name(page) -> str:
    """The signed-in agent's name as the header shows it (what {{agent}} is filled in with)."""
    return str(page.locator("a.who").get_attribute("title"))
