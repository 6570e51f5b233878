"""Tasks in bulk in Chromium, at a laptop's and a phone's width: a lead of a team of her own ticks
"All on this page" in the group queue and claims every row at once; a colleague's selection that
hands two of them on to someone outside the team comes back with both boxes ticked and each row's
reason beside it, nothing changed; handed to a teammate, they are in his Mine."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser
from tests.http.test_e2e_incident import open_incident

require_browser()

from playwright.sync_api import expect  # noqa: E402


def team(live, width: int) -> tuple[str, str, str]:
    """A group of its own on the shared live desk (no other journey's rows in its queue), with two
    agents: the lead and a teammate."""
    desk = live.desk
    desk.services.session.rollback()  # a fresh snapshot: another journey's old read would refuse our writes
    group, lead, mate = f"BulkDesk{width}", f"bea{width}", f"ben{width}"
    admin = desk.auth("ada")
    if desk.client.get(f"/api/v1/groups/{group}", headers=admin).status_code == 404:
        assert desk.client.post("/api/v1/groups", headers=admin, json={"name": group}).status_code == 201
        for name in (lead, mate):
            made = desk.client.post("/api/v1/users", headers=admin, json={
                "username": name, "password": "password-1234", "roles": ["agent"], "groups": [group]})
            assert made.status_code == 201, made.get_json()
    return group, lead, mate


def triaged_to(live, group: str, count: int) -> list[str]:
    numbers = []
    for _ in range(count):
        number, _instance = open_incident(live.desk)
        record = live.desk.record(number)
        live.desk.complete(number, "triage", "alex", {"category": record["category"], "priority": record["priority"],
                                                      "assignment_group": group})
        numbers.append(number)
    return numbers


@pytest.mark.parametrize("width", [1280, 390])
def test_a_lead_claims_the_whole_queue_page_and_a_refused_hand_over_comes_back_row_by_row(live, person, width):
    group, lead, mate = team(live, width)
    numbers = triaged_to(live, group, 3)
    bea = person(width)
    bea.sign_in(lead)
    page = bea.page
    bea.go("/tasks?tab=queue&sort=age")
    english = page.get_by_role("button", name="English")
    if english.count():
        english.click()
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(3)
    # "All on this page" is the script's: it ticks every row
    every = page.get_by_label("All on this page")
    expect(every).to_be_visible()
    every.check()
    for number in numbers:
        expect(page.get_by_role("row").filter(has_text=number).get_by_role("checkbox")).to_be_checked()
    page.get_by_role("row").filter(has_text=numbers[0]).get_by_role("checkbox").uncheck()
    assert every.evaluate("box => box.indeterminate")
    every.check()
    page.get_by_label("Action").select_option(label="Claim")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator(".flash-success")).to_have_text("Tasks you claimed: 3.")
    expect(page.locator("table.tasks")).to_have_count(0)  # the queue is empty: all three are hers
    bea.go("/tasks?tab=mine&sort=age")
    expect(rows).to_have_count(3)

    # two of them to alex, who is not in the team: refused row by row, nothing changed
    for number in numbers[1:]:
        page.get_by_role("row").filter(has_text=number).get_by_role("checkbox").check()
    page.get_by_label("Action").select_option(label="Reassign to")
    page.get_by_label("User name").fill("alex")
    page.get_by_role("button", name="Apply to selected").click()
    summary = page.locator("#bulk-errors")
    expect(summary).to_contain_text("Nothing was changed.")
    for number in numbers[1:]:
        row = page.get_by_role("row").filter(has_text=number)
        expect(row.get_by_role("checkbox")).to_be_checked()
        expect(row.locator(".field-error")).to_contain_text("not one of the user's groups")
    expect(page.get_by_role("row").filter(has_text=numbers[0]).get_by_role("checkbox")).not_to_be_checked()
    expect(page.get_by_label("User name")).to_have_value("alex")
    bea.screenshot(f"task-bulk-refused-{width}")
    wide = page.evaluate("""() => [document.documentElement.scrollWidth, window.innerWidth,
        [...document.querySelectorAll("table.tasks th, table.tasks tbody tr:first-child td")]
            .map(e => e.tagName + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().width) + '/' + getComputedStyle(e).paddingLeft)
            .slice(0, 30)]""")
    assert wide[0] <= wide[1], " ".join(wide[2])  # no sideways scroll

    # the same two, to the teammate: now in his Mine
    page.get_by_label("User name").fill(mate)
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator(".flash-success")).to_have_text(f"Tasks now with {mate}: 2.")
    expect(rows).to_have_count(1)
    ben = person(width)
    ben.sign_in(mate)
    ben.go("/tasks?tab=mine&sort=age")
    for number in numbers[1:]:
        expect(ben.page.get_by_role("row").filter(has_text=number)).to_have_count(1)
    assert not bea.errors and not ben.errors, (bea.errors, ben.errors)
