"""A field required only for some answers, in real Chromium: the required mark follows the choice
as it is made (static/js/forms.js), and the server's refusal names the answer that required it."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


@pytest.mark.parametrize("width", [1280, 390])
def test_resolution_notes_become_required_when_the_outcome_is_resolved(live, person, width):
    number = live.start_incident(f"Printer queue stuck at {width}px")
    live.desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3",
                                                  "assignment_group": "NetworkTeam"})
    nina = person(width)
    nina.sign_in("nina")
    task_id = live.desk.task_id(number, "investigate", "nina")
    nina.go(f"/tasks/{task_id}")
    page = nina.page
    notes_mark = page.locator(".field", has=page.get_by_label("Resolution notes")).locator(".required-when")
    pending_mark = page.locator(".field", has=page.get_by_role("group", name="Pending on")).locator(".required-when")
    expect(notes_mark).to_have_count(1)
    expect(pending_mark).to_have_count(1)
    expect(notes_mark).to_be_hidden()
    expect(pending_mark).to_be_hidden()

    page.get_by_label(re.compile(r"^Pending: waiting")).check()
    expect(pending_mark).to_be_visible()
    expect(notes_mark).to_be_hidden()
    expect(page.get_by_label("Customer", exact=True)).to_have_attribute("aria-required", "true")

    page.get_by_label("Resolved", exact=True).check()
    expect(notes_mark).to_be_visible()
    expect(pending_mark).to_be_hidden()
    expect(page.get_by_label("Customer", exact=True)).not_to_have_attribute("aria-required", "true")
    page.get_by_label("Raise a problem record").check()
    page.get_by_role("button", name="Submit").click()  # resolved, but without notes

    expect(page.get_by_role("alert")).to_contain_text("Resolution notes: is required when “Outcome” is Resolved")
    expect(notes_mark).to_be_visible()  # drawn so by the server for the answer sent back
    expect(page.get_by_label("Resolved", exact=True)).to_be_checked()
    assert live.desk.record(number)["status"] != "resolved"
    page.get_by_label("Resolution notes").fill("Cleared the spooler")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("Done: “Investigate and resolve”.")
    record = live.desk.record(number)
    assert record["status"] == "resolved"
    # The refused round raised nothing: one problem, from the accepted one.
    problems = [link for link in record.get("links", []) if link["number"].startswith("PRB-")]
    assert len(problems) == 1, record.get("links")
    nina.screenshot(f"form-conditions-{width}")
    assert nina.errors == [], nina.console
