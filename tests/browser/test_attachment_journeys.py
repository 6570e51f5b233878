"""Attached files on the record page in real Chromium, at a phone's width: the agent working an
incident attaches a log with the upload form, finds it listed, and deletes it with its button."""

from __future__ import annotations

import re

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}


def test_an_agent_attaches_a_log_and_deletes_it_from_the_record_page(live, person):
    number = live.start_incident("VPN log wanted")
    live.desk.complete(number, "triage", "alex", TRIAGE)

    nina = person(390)
    nina.sign_in("nina")
    page = nina.page
    nina.go(f"/tickets/{number}")
    files = page.locator("#attachments")
    expect(files).to_contain_text("No files attached.")
    page.get_by_label("Attach a file").set_input_files(
        files=[{"name": "vpn.log", "mimeType": "text/plain", "buffer": b"Tunnel lost at 09:12\n"}])
    page.get_by_role("button", name="Attach file").click()
    expect(page.locator(".flashes")).to_contain_text("vpn.log is attached.")
    expect(files.get_by_role("link", name="vpn.log", exact=True)).to_be_visible()

    delete = files.get_by_role("link", name=re.compile(r"^Delete\s+vpn\.log$"))
    expect(delete).to_be_visible()
    nina.screenshot("ticket-attachment-delete-390")
    delete.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete vpn.log?")  # asked first
    nina.screenshot("ticket-attachment-delete-confirm-390")
    page.get_by_role("button", name=re.compile(r"^Delete\s+vpn\.log$")).click()
    expect(page.locator(".flashes")).to_contain_text("vpn.log was deleted.")
    expect(files).to_contain_text("No files attached.")
    assert nina.errors == [], nina.console
