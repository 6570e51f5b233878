"""The process page in Chromium: "Where the work waits" as a table, and each user task's waiting
tasks as a badge on its shape, in the editor (process owner) and the viewer (agent) alike."""

from __future__ import annotations

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def waiting_at(live, bpmn_id: str) -> int:
    answer = live.desk.client.get("/api/v1/definitions/incident_management/task-stats", headers=live.desk.auth("olga"))
    return next(item["waiting"] for item in answer.get_json()["items"] if item["bpmn_id"] == bpmn_id)


def test_the_waiting_tasks_are_counted_in_the_table_and_on_the_diagram(live, person):
    live.start_incident("Badge reader at the main door is dead")
    count = waiting_at(live, "triage")
    assert count >= 1
    for who in ("olga", "alex"):
        someone = person(1280)
        someone.sign_in(who)
        someone.go("/processes/incident_management")
        page = someone.page
        expect(page.locator("#waits-triage td").first).to_have_text(str(count))
        expect(page.locator("#process-diagram")).to_have_attribute("data-state", "ready")
        badge = page.locator('.djs-overlays[data-container-id="triage"] .waiting-badge')
        expect(badge).to_have_text(str(count))
        expect(badge).to_have_attribute("title", f"{count} waiting")
        assert someone.errors == [], someone.console
