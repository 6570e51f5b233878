"""The inbox's columns in Simplified Chinese at a laptop's width: beside a long record title, the
short columns (waiting since, claimed by, the Claim / Release button) keep their words on one line
instead of one character a line (Chinese may break after any character)."""

from __future__ import annotations

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

#: How many lines an element's visible text takes: the distinct tops of its text's line boxes
#: (text for screen readers only, in .visually-hidden, left out).
LINES = """element => {
  const tops = new Set();
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim() || node.parentElement.closest(".visually-hidden")) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const rect of range.getClientRects()) if (rect.width > 0) tops.add(Math.round(rect.top));
  }
  return tops.size;
}"""

#: No space to break at: the record column takes whatever width the table has left.
LONG_TITLE = "远程办公时VPN连接每隔几分钟就断开重新连接后仍然失败导致财务部门无法完成月末结账工作请尽快处理" * 2


def lines_of(locator) -> int:
    return int(locator.evaluate(LINES))


def check_short_columns(page, number: str, claimant: str, button: str) -> None:
    row = page.get_by_role("row").filter(has_text=number)
    expect(row).to_have_count(1)
    header = page.get_by_role("columnheader", name="认领人")
    cell = row.locator("td.claimant")
    expect(cell).to_have_text(claimant)
    assert lines_of(header) == 1 and lines_of(cell) == 1, (lines_of(header), lines_of(cell))
    assert lines_of(row.locator("td.since")) == 1
    assert lines_of(row.get_by_role("button", name=button)) == 1
    assert lines_of(row.locator("td.record")) > 1  # the long title wraps instead
    assert header.evaluate("e => e.getBoundingClientRect().width") >= 3 * 14  # three characters at least
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_the_claimant_column_keeps_its_width_in_chinese_at_1280(live, person):
    number = live.start_incident(LONG_TITLE)
    alex = person(1280)
    alex.sign_in("alex")
    page = alex.page
    page.get_by_role("button", name="简体中文").click()
    try:
        alex.go("/tasks?tab=queue")
        check_short_columns(page, number, "无人", "认领")
        page.get_by_role("row").filter(has_text=number).get_by_role("button", name="认领").click()
        expect(page.locator(".flashes")).to_contain_text("您已认领")

        page.locator("#tab-mine").click()  # not the header's account link ("我的账户")
        check_short_columns(page, number, "您", "释放")
        alex.screenshot("task-columns-zh-1280")
        assert alex.errors == [], alex.console
    finally:  # the choice is alex's own (it follows his sign-ins): the other journeys read English
        page.get_by_role("button", name="English").click()


def test_a_title_without_spaces_does_not_widen_the_inbox_past_the_screen(live, person):
    """A pasted address as the title (no space to break at, in any language) breaks anywhere:
    before, the queue was 1,587 px wide at 1280 and "Claimed by" and Claim were out of sight."""
    number = live.start_incident("https://intranet.example.com/finance/reports/monthly-close/" + "x" * 120)
    alex = person(1280)
    alex.sign_in("alex")
    page = alex.page
    alex.go("/tasks?tab=queue")
    row = page.get_by_role("row").filter(has_text=number)
    expect(row).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    claim = row.get_by_role("button", name="Claim")
    box = claim.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1280


def test_a_title_without_spaces_fits_a_phone_too(live, person):
    live.start_incident("https://intranet.example.com/finance/reports/quarter-close/" + "y" * 120)
    alex = person(390)
    alex.sign_in("alex")
    alex.go("/tasks?tab=queue")
    assert alex.page.evaluate("document.documentElement.scrollWidth") <= 390
