"""Process content in Chinese, in real Chromium: an agent switches the page to Simplified Chinese
on a task and sees the task's name, its form and the server's refusal in Chinese, then works the
task with the form's own values."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


@pytest.mark.parametrize("width", [1280])
def test_an_agent_switches_to_chinese_and_works_a_translated_task(live, person, width):
    number = live.start_incident("VPN drops every hour")
    live.desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3",
                                                  "assignment_group": "NetworkTeam"})
    nina = person(width)
    nina.sign_in("nina")
    task_id = live.desk.task_id(number, "investigate", "nina")
    nina.go(f"/tasks/{task_id}")
    page = nina.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Investigate and resolve")

    page.get_by_role("button", name="简体中文").click()
    try:
        _work_the_task_in_chinese(live, nina, number)
    finally:  # the choice is nina's own (it follows her sign-ins): the other journeys read English
        nina.go("/")
        page.get_by_role("button", name="English").click()
    assert nina.errors == [], nina.console


def _work_the_task_in_chinese(live, nina, number):
    page = nina.page
    expect(page.get_by_role("heading", level=1)).to_have_text("调查并解决")
    expect(page).to_have_title("调查并解决 · processdesk")
    expect(page.get_by_role("group", name="处理结果")).to_be_visible()
    expect(page.get_by_role("group", name="等待对象")).to_be_visible()
    page.get_by_label("已解决", exact=True).check()
    page.get_by_label("原因", exact=True).select_option(label="第三方或供应商")
    page.get_by_role("button", name="提交").click()  # resolved, but without notes

    expect(page.get_by_role("alert")).to_contain_text("解决说明: 在以下情况下为必填项： “处理结果”为已解决")
    page.get_by_label("解决说明").fill("供应商更换了 VPN 证书")
    page.get_by_role("button", name="提交").click()
    # The flash names the task as views.py gives it (its source name, for now).
    expect(page.get_by_role("status")).to_contain_text("已完成")
    record = live.desk.record(number)
    assert record["status"] == "resolved" and record["details"]["cause_category"] == "third_party"
    nina.screenshot("content-language")


def test_switching_the_language_keeps_what_was_typed(live, person):
    """QA: a half-written incident report came back empty when rita switched to Chinese."""
    rita = person(1280)
    rita.sign_in("rita")
    rita.go("/start/incident_management")
    page = rita.page
    page.get_by_label("Title").fill("Printer on floor 3 prints blank pages")
    page.get_by_label("Description").fill("Since this morning; the toner is new.")
    page.get_by_role("button", name="简体中文").click()
    try:
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("#f-title")).to_have_value("Printer on floor 3 prints blank pages")
        expect(page.locator("#f-description")).to_have_value("Since this morning; the toner is new.")
        page.reload()  # kept for that one switch only
        expect(page.locator("#f-title")).to_have_value("")
    finally:
        rita.go("/")
        page.get_by_role("button", name="English").click()
    assert rita.errors == [], rita.console
