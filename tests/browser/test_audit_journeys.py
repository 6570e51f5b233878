"""Journey 4 (the audit part) in real Chromium, at a laptop's and a phone's width: an auditor finds
an incident's instance by its record number, reads its timeline and downloads the search as CSV;
someone who is not an auditor gets the 403 page."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.browser.conftest import require_browser
from tests.http.desk import LAPTOP

require_browser()

from playwright.sync_api import expect  # noqa: E402

WIDTHS = [1280, 390]
TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam",
          "triage_notes": "Gateway certificate expired"}


@pytest.mark.parametrize("width", WIDTHS)
def test_journey_4_an_auditor_reads_an_incident_s_history_and_exports_it(live, person, width):
    number = live.start_incident(f"VPN certificate at {width}px")
    live.desk.complete(number, "triage", "alex", TRIAGE)

    aude = person(width)
    aude.sign_in("aude")
    aude.go("/audit")
    page = aude.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit history")
    page.get_by_label("Record number").fill(number.lower())
    page.get_by_role("button", name="Search").click()
    results = page.locator("#audit-results")
    expect(page.locator("#results-count")).to_contain_text("events found")
    completion = results.get_by_role("row").filter(has_text="Task completed")
    expect(completion).to_have_count(1)
    expect(completion).to_contain_text("alex")
    expect(completion).to_contain_text(number)
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing sideways to scroll
    aude.screenshot(f"journey-4-audit-search-{width}")

    # the CSV of the same search, as a download
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download these events as CSV").click()
    download = download_info.value
    assert re.fullmatch(r"audit-\d{8}-\d{6}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read())))
    assert rows and {r["record_number"] for r in rows} == {number}
    triage = [r for r in rows if r["event_type"] == "task_completed"]
    assert len(triage) == 1 and triage[0]["actor"] == "alex"
    assert '"assignment_group":"NetworkTeam"' in triage[0]["payload"]
    expect(results.get_by_role("row")).to_have_count(len(rows) + 1)  # the header row, then one per event

    # the instance's timeline: who did what, with the data they submitted
    completion.get_by_role("link", name=re.compile(r"^Timeline of instance")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^History of instance \d+$"))
    expect(page.locator("#instance-record")).to_contain_text(number)
    triaged = page.locator('#timeline tr[data-event-type="task_completed"]')
    expect(triaged).to_contain_text("Triage incident")
    expect(triaged.get_by_role("cell", name=re.compile("alex"))).to_have_count(1)
    submitted = triaged.locator("dl")
    expect(submitted.locator("dt", has_text="Assignment group")).to_be_visible()
    expect(submitted.locator("dd", has_text="NetworkTeam")).to_be_visible()
    expect(submitted.locator("dd", has_text="Gateway certificate expired")).to_be_visible()
    # the path taken, highlighted on the instance's diagram
    triage = page.locator('#diagram-canvas g.djs-element[data-element-id="triage"]')
    expect(triage).to_have_class(re.compile(r"\bpd-completed\b"))
    expect(page.locator('#diagram-canvas g.djs-element[data-element-id="register"]')).to_have_class(
        re.compile(r"\bpd-completed\b"))
    expect(page.locator("#diagram-status")).to_contain_text("Triage incident")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    aude.screenshot(f"journey-4-audit-timeline-{width}")

    rita = person(width)
    rita.sign_in("rita")
    response = rita.go("/audit")
    assert response.status == 403
    expect(rita.page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(rita.page.get_by_role("main")).not_to_contain_text(number)

    assert aude.errors == [] and rita.errors == [], (aude.console, rita.console)


def test_the_search_fits_a_small_phone_with_a_requests_long_field_names(live, person):
    """On a 375 px phone the events' cards fit the window: a record update lists field names such
    as ``details.approval_comment,`` that are longer than the space beside each label, and they
    wrap instead of pushing the page sideways."""
    ordered = live.desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=live.desk.auth("rita"),
                                    json={"data": LAPTOP})
    assert ordered.status_code == 201, ordered.get_json()
    number = ordered.get_json()["number"]
    aude = person(375)
    aude.sign_in("aude")
    aude.go(f"/audit?record={number}")
    page = aude.page
    update = page.locator("#audit-results").get_by_role("row").filter(has_text="Record updated")
    expect(update).to_contain_text("details.approval_comment")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    aude.screenshot("audit-search-375")
