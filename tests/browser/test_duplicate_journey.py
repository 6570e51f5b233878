"""Duplicates in Chromium, at a laptop's and a phone's width: an outage reported three times; the
agent searches the list for it, ticks "All on this page", unticks the report that is worked and
closes the other two onto it; a wrong number first comes back beside its field with the boxes
still ticked. The reporters now read the worked record, and its comment reaches them."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def report(live, who: str, title: str) -> str:
    # A fresh transaction for the desk's own session: an old read snapshot (another journey's) would
    # make SQLite refuse its token's write at once, the live server having committed since.
    live.desk.services.session.rollback()
    data = {"title": title, "description": "No connection from the office", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN"}
    return str(live.desk.start(who, "incident_management", data)["data"]["record_number"])


@pytest.mark.parametrize("width", [1280, 390])
def test_an_agent_closes_an_outages_reports_onto_the_one_worked(live, person, width):
    word = f"Gatewaydown{width}"
    worked = report(live, "rita", f"{word} in building A")
    others = [report(live, "mona", f"{word} since nine"), report(live, "alex", f"{word} again")]
    alex = person(width)
    alex.sign_in("alex")
    page = alex.page
    alex.go(f"/tickets?q={word}&open=1")
    english = page.get_by_role("button", name="English")
    if english.count():
        english.click()
    expect(page.locator("table.tickets tbody tr")).to_have_count(3)
    page.get_by_text("Close the selected as duplicates").first.click()
    page.get_by_label("All on this page").check()
    page.get_by_role("row").filter(has_text=worked).get_by_role("checkbox").uncheck()
    page.get_by_label("Duplicate of").fill("INC-999999")
    page.get_by_label("I understand this closes the selected records.").check()
    page.get_by_role("button", name="Close as duplicates").click()
    expect(page.locator("#duplicates-of-error")).to_contain_text("There is no record INC-999999 that you may see.")
    for number in others:
        expect(page.get_by_role("row").filter(has_text=number).get_by_role("checkbox")).to_be_checked()
    expect(page.get_by_role("row").filter(has_text=worked).get_by_role("checkbox")).not_to_be_checked()
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    alex.screenshot(f"duplicates-refused-{width}")
    assert wide <= 0, wide  # no sideways scroll

    page.get_by_label("Duplicate of").fill(worked.lower())
    page.get_by_label("I understand this closes the selected records.").check()
    page.get_by_role("button", name="Close as duplicates").click()
    expect(page.locator(".flash-success")).to_have_text(f"Records closed as duplicates of {worked}: 2.")
    expect(page.locator("table.tickets tbody tr")).to_have_count(1)  # the open list keeps the worked one

    # mona reads the worked record now, and its news reaches her
    comment = live.desk.client.post(f"/api/v1/tickets/{worked}/comments", headers=live.desk.auth("alex"),
                                    json={"body": f"{word}: the gateway is being replaced."})
    assert comment.status_code == 201
    mona = person(width)
    mona.sign_in("mona")
    mona.go(f"/tickets/{worked}")
    expect(mona.page.get_by_role("heading", level=1)).to_contain_text(worked)
    mona.go("/notifications")
    expect(mona.page.get_by_text(f"{word}: the gateway is being replaced.").first).to_be_visible()
    assert not alex.errors and not mona.errors, (alex.errors, mona.errors)
