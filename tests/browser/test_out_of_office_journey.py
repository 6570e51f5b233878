"""Out of office in Chromium, at laptop and phone widths: mona sets her absence on her account page
(a delegate without her role is refused beside the field, what she typed kept), names lena, rita
orders a laptop, and the approval waits in lena's inbox marked as for mona; mona clicks "I'm
back" and it is in her own inbox again, no longer in lena's."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import require_browser
from tests.http.test_out_of_office import approval, order_laptop

require_browser()

from playwright.sync_api import expect  # noqa: E402


def stand_in(live) -> None:
    """lena, a second line manager, once for the shared live desk."""
    desk = live.desk
    if desk.client.get("/api/v1/users/lena", headers=desk.auth("ada")).status_code == 404:
        made = desk.client.post("/api/v1/users", headers=desk.auth("ada"), json={
            "username": "lena", "password": "password-1234", "roles": ["approver"], "groups": ["LineManagers"]})
        assert made.status_code == 201, made.get_json()


@pytest.mark.parametrize("width", [1280, 390])
def test_a_manager_away_hands_her_approval_to_her_delegate_and_takes_it_back(live, person, width):
    stand_in(live)
    desk = live.desk
    mona = person(width)
    mona.sign_in("mona")
    try:
        mona.go("/account")
        page = mona.page
        away = page.locator("#away")
        expect(away.locator("#away-state")).to_have_text("You are not out of office.")
        page.locator("#field-delegate").fill("rita")
        page.locator("#field-until").fill("2026-01-12 09:00")
        page.get_by_role("button", name="Set the absence").click()
        # refused beside the field, what was typed kept
        expect(page.locator("#delegate-error")).to_contain_text("This user cannot stand in for you")
        expect(page.locator("#field-delegate")).to_have_value("rita")
        expect(page.locator("#field-until")).to_have_value("2026-01-12 09:00")
        page.locator("#field-delegate").fill("lena")
        page.get_by_role("button", name="Set the absence").click()
        expect(page.locator(".flash-success")).to_contain_text(
            "Your absence was saved: from 2026-01-05 09:00 UTC until 2026-01-12 09:00 UTC")
        expect(away.locator("#away-state")).to_have_text(
            "You are away from 2026-01-05 09:00 UTC until 2026-01-12 09:00 UTC.")
        expect(away.locator("#away-status")).to_have_text("In force now")

        number = order_laptop(desk)
        task = approval(desk, number)
        assert task["assigned_user"] == "lena"

        lena = person(width)
        lena.sign_in("lena")
        lena.go("/tasks")
        row = lena.page.locator("tr", has=lena.page.locator(f'a[href="/tasks/{task["id"]}"]'))
        expect(row).to_contain_text(number)
        expect(row.locator(".delegated")).to_have_text("for mona, who is away")
        row.locator(f'a[href="/tasks/{task["id"]}"]').click()
        expect(lena.page.locator("#task-delegated")).to_have_text("Handed to you while mona is away.")
        assert lena.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits a phone

        mona.go("/account")
        handed = away.locator("#away-handed")
        expect(handed).to_contain_text(f"#{task['id']}")
        expect(handed).not_to_contain_text(number)  # the record is lena's to open now, not hers
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        mona.screenshot(f"out-of-office-account-{width}")
        page.get_by_role("button", name="I'm back").click()
        expect(page.locator(".flash-success")).to_contain_text("Welcome back: your absence has ended")
        expect(away.locator("#away-state")).to_have_text("You are not out of office.")
        mona.go("/tasks")
        mine = page.locator("tr", has=page.locator(f'a[href="/tasks/{task["id"]}"]'))
        expect(mine).to_contain_text(number)
        expect(mine.locator(".delegated")).to_have_count(0)
        lena.go("/tasks")
        expect(lena.page.locator(f'a[href="/tasks/{task["id"]}"]')).to_have_count(0)
        assert re.search(r"/tasks$", lena.page.url)
        assert mona.errors == [], mona.console
        assert lena.errors == [], lena.console
    finally:  # the live desk is shared: mona is back for the journeys after this one, whatever happened
        desk.client.delete("/api/v1/users/mona/away", headers=desk.auth("ada"))
