"""The change schedule in Chromium: a process owner adds a freeze on one configuration item with
the page's form, an agent sees an emergency change planned in it on the time line with the clash
(and the page fits a phone), and the freeze is removed with its button."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.browser.conftest import require_browser
from tests.http.test_e2e_change import CHANGE

require_browser()

from playwright.sync_api import expect  # noqa: E402

#: A configuration item of this journey's own: the live desk is shared, and a freeze on it holds for
#: no other journey's changes.
CI = "brw-sched-01"
PERIOD = "/schedule?from=2026-03-09&days=7"


def test_a_freeze_is_added_shown_behind_the_changes_in_it_and_removed(live, person):
    owner = person(1280)
    owner.sign_in("olga")
    owner.go(PERIOD)
    page = owner.page
    page.locator("#field-name").fill("Storage migration")
    page.locator("#field-starts_at").fill("2026-03-10 18:00")
    page.locator("#field-ends_at").fill("2026-03-11 06:00")
    page.get_by_label("Configuration item (empty: all)").fill(CI)
    page.get_by_role("button", name="Add freeze").click()
    expect(page.locator(".flash-success")).to_contain_text("The freeze “Storage migration” was added")
    row = page.locator("#freezes + table tbody tr", has_text="Storage migration")
    expect(row).to_contain_text(CI)
    expect(row).to_contain_text("2026-03-10 18:00")

    number = live.desk.start("alex", "change_enablement", {**CHANGE, "change_type": "emergency", "ci": CI,
                                                          "title": "Swap the failed controller"})["data"]["record_number"]
    for width in (1280, 390):
        agent = person(width)
        agent.sign_in("alex")
        agent.go(PERIOD)
        planned = agent.page.locator(f"#planned-{number}")
        expect(planned).to_contain_text("in the freeze “Storage migration” (emergency: allowed)")
        expect(planned.locator("rect.bar")).to_have_count(1)
        expect(agent.page.locator("rect.freeze-band").first).to_be_attached()
        # nothing wider than the window: the time line shrinks with it
        assert agent.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert agent.errors == [], agent.console
        agent.screenshot(f"change-schedule-{width}")

    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove").click()
    expect(page.locator(".flash-success")).to_contain_text("The freeze was removed.")
    expect(page.locator("#freezes + table tbody tr", has_text="Storage migration")).to_have_count(0)
    assert owner.errors == [], owner.console


def test_the_start_form_says_what_a_window_clashes_with_as_it_is_typed(live, person):
    owner = live.desk.services.users.get_by_username("olga")
    live.desk.services.schedule.add_freeze(owner, {"name": "Rack move", "ci": "brw-sched-02",
                                                   "starts_at": datetime(2026, 4, 1, 18, tzinfo=timezone.utc),
                                                   "ends_at": datetime(2026, 4, 2, 6, tzinfo=timezone.utc)})
    live.desk.services.session.commit()
    agent = person(1280)
    agent.sign_in("alex")
    agent.go("/start/change_enablement")
    page = agent.page
    panel = page.locator("section.window-clashes")
    expect(panel).to_be_hidden()
    page.locator("#f-planned_start").fill("2026-04-01 20:00")
    page.locator("#f-planned_end").fill("2026-04-01 22:00")
    page.locator("#f-ci").fill("brw-sched-02")
    expect(panel).to_be_visible()
    expect(panel.locator("li a")).to_have_text(["in the freeze “Rack move”"])
    agent.screenshot("change-start-clashes")
    page.locator("#f-planned_start").fill("2026-04-02 07:00")
    page.locator("#f-planned_end").fill("2026-04-02 08:00")
    expect(panel).to_be_hidden()
    assert agent.errors == [], agent.console
