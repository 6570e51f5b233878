"""An agent takes a call and logs the caller's incident in Chromium ("Requested for" on the start
page): the field offers people as the agent types, a mistyped caller is refused beside the field with what was typed kept, the right one makes
the record the caller's, and the record page names the agent who logged it."""

from __future__ import annotations

import re
import uuid

from tests.browser.conftest import require_browser
from tests.browser.test_double_submit import fill_incident

require_browser()

from playwright.sync_api import expect  # noqa: E402


def test_an_agent_logs_a_callers_incident(live, person):
    title = f"Caller's printer jams {uuid.uuid4().hex[:6]}"
    alex = person(1280)
    alex.sign_in("alex")
    alex.go("/start/incident_management")
    page = alex.page
    fill_incident(page, title)
    caller = page.get_by_label("Requested for")
    caller.fill("ritta")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#f-_on_behalf_of-error")).to_contain_text("ritta: no such active user")
    expect(page.get_by_label("Title")).to_have_value(title)
    expect(caller).to_have_value("ritta")
    # typing offers the people the words name (js/as-you-type.js): rita, not the agent himself
    caller.fill("")
    caller.press_sequentially("Rit", delay=30)
    offered = page.locator("#f-_on_behalf_of-suggestions option")
    expect(offered).to_have_count(1)
    expect(offered).to_have_attribute("value", "rita")
    caller.fill("rita")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/tickets/INC-\d+$"))
    number = page.url.rsplit("/", 1)[-1]
    expect(page.locator(".flash-success")).to_contain_text(
        f"Record {number} “{title}” was logged for rita")
    expect(page.locator("#opened-by")).to_have_text("alex")
    assert live.desk.record(number)["requester"] == "rita"
    assert alex.errors == [], alex.console
