"""Time worked in Chromium: an agent logs time on a record from its panel (a duration typed wrong
comes back beside the field with her note kept), sees the total grow, removes an entry she logged
by mistake, finds her time in the reports and in the record list's CSV; at a phone's width the
panel fits the screen."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def test_an_agent_logs_time_on_a_record_and_finds_it_in_the_reports(live, person):
    number = live.start_incident("Docking station flickers")
    for width in (1280, 390):
        agent = person(width)
        agent.sign_in("nina")
        agent.go(f"/tickets/{number}")
        page = agent.page
        panel = page.locator("#work")
        if width == 1280:
            expect(panel.locator("#no-work")).to_have_text("No time logged yet.")
            page.get_by_label("Time spent").fill("1 hour and a half")
            page.get_by_label("What was done (optional)").fill("Swapped the dock, updated its firmware")
            page.get_by_role("button", name="Log time").click()
            expect(page.locator("#work-spent-error")).to_contain_text("must be a duration such as 45m, 1h 30m or 1:30")
            expect(page.get_by_label("What was done (optional)")).to_have_value("Swapped the dock, updated its firmware")
            page.get_by_label("Time spent").fill("1h 30m")
            # the page came back from the refusal just now: the field holds what was typed before it is sent
            # (CI: under load the form went with "1h")
            expect(page.get_by_label("Time spent")).to_have_value("1h 30m")
            page.get_by_role("button", name="Log time").click()
            expect(page.locator(".flash")).to_contain_text(f"Logged 1 h 30 min on {number}.")
            expect(panel.locator("#work-total")).to_have_text("Total: 1 h 30 min")
            # a slip: logged twice, then removed
            page.get_by_label("Time spent").fill("1:30")
            page.get_by_role("button", name="Log time").click()
            expect(panel.locator("#work-total")).to_have_text("Total: 3 h 00 min")
            panel.locator(".work-log li").first.get_by_role("button", name="Remove").click()
            expect(page.locator(".flash")).to_contain_text("The entry is removed.")
            expect(panel.locator("#work-total")).to_have_text("Total: 1 h 30 min")
            expect(panel.locator(".work-log")).to_contain_text("Swapped the dock, updated its firmware")
        else:
            expect(panel.locator("#work-total")).to_have_text("Total: 1 h 30 min")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            agent.screenshot("work-log-390")
        agent.go("/reports")
        # her row of the report: her name and her 1 h 30 min (the live desk is shared with other journeys)
        expect(page.locator("#report-worked-people tr", has_text="nina")).to_contain_text("1 h 30 min")
        if width == 1280:
            # the record list downloads as a spreadsheet, with her minutes beside the record
            agent.go("/tickets?kind=incident")
            with page.expect_download() as caught:
                page.locator("#download-csv").click()
            text = Path(caught.value.path()).read_text(encoding="utf-8-sig")
            rows = {row["number"]: row for row in csv.DictReader(io.StringIO(text))}
            assert rows[number]["time_worked_minutes"] == "90" and rows[number]["title"] == "Docking station flickers"
        assert agent.errors == [], agent.console
