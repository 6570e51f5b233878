"""Catalog journeys in real Chromium: ordering from the catalog through approval, fulfilment and
the requester's confirmation."""

from __future__ import annotations

import re

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

REQ_NUMBER = re.compile(r"REQ-\d+")


def open_from_queue(someone, number: str, task_name: str, tab: str = "Group queue") -> None:
    """From any page: the inbox's tab (the group queue; "Mine" for a task that waits on them by
    name), the record's row, its task."""
    page = someone.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.get_by_role("link", name=re.compile(rf"^{tab}")).click()
    row = page.get_by_role("row").filter(has_text=number)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(task_name)
    row.get_by_role("link", name=task_name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(task_name)


def expect_queue_without(someone, number: str) -> None:
    page = someone.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.get_by_role("link", name=re.compile(r"^Group queue")).click()
    expect(page.get_by_role("row").filter(has_text=number)).to_have_count(0)


def test_journey_1_a_laptop_is_ordered_approved_fulfilled_and_confirmed(live, person):
    # -- rita finds the laptop in the catalog and orders it ------------------------------------------
    rita = person(1280)
    rita.sign_in("rita")
    rita.go("/catalog")
    page = rita.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Service catalog")
    page.get_by_label("Keywords").fill("laptop")
    page.get_by_label("Category").select_option("01")  # Hardware, with its subcategories
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#catalog-result")).to_have_text("2 items found.")
    expect(page.get_by_role("link", name="Additional monitor")).to_have_count(0)
    page.get_by_role("link", name="Standard laptop").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Standard laptop")
    expect(page.locator("#item-cost")).to_have_text("€950.00")
    expect(page.locator("#item-target")).to_have_text("72 hours (3 days)")
    expect(page.locator("#item-approval")).to_have_text("Your line manager, mona, approves it first.")
    page.get_by_label("Business justification").fill("My laptop of 2019 no longer holds a charge")
    page.get_by_label("Keyboard layout").select_option("UK")
    page.get_by_role("button", name="Send request").click()  # the delivery location is missing

    expect(page.get_by_role("alert")).to_contain_text("Delivery location: is required")
    expect(page.locator("#f-delivery_location-error")).to_have_text("Error: is required")
    expect(page.get_by_label("Business justification")).to_have_value("My laptop of 2019 no longer holds a charge")
    expect(page.get_by_label("Keyboard layout")).to_have_value("UK")
    page.get_by_role("link", name="Delivery location: is required").click()
    expect(page.get_by_label("Delivery location")).to_be_focused()
    page.keyboard.type("Building B, floor 2, desk 14")
    page.get_by_role("button", name="Send request").click()

    flash = page.locator(".flashes")  # the flash messages' live region (role status)
    expect(flash).to_contain_text("“Standard laptop for rita” was sent. It now waits for your line manager's approval.")
    match = REQ_NUMBER.search(flash.inner_text())
    assert match, flash.inner_text()
    number = match.group(0)
    record_page = live.url + f"/tickets/{number}"
    has_record_page = page.url == record_page  # else the inbox, where nothing waits for rita
    expect(page.get_by_role("heading", level=1)).to_contain_text(number if has_record_page else "Tasks")
    expect_queue_without(rita, number)  # the approval is mona's
    assert live.desk.record(number)["status"] == "submitted"

    # -- mona, rita's line manager, approves it from her inbox ---------------------------------------
    mona = person(1280)
    mona.sign_in("mona")
    open_from_queue(mona, number, "Approve as line manager", tab="Mine")  # hers by name
    page = mona.page
    expect(page.locator(".instructions")).to_contain_text("rita requests Standard laptop")
    expect(page.locator(".instructions")).to_contain_text("My laptop of 2019 no longer holds a charge")
    page.get_by_role("group", name="Decision").get_by_label("Approve", exact=True).check()
    page.get_by_label("Comment").fill("Agreed, the old one goes back.")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flashes")).to_contain_text("Done: “Approve as line manager”.")
    expect_queue_without(mona, number)

    # -- nina of DesktopSupport (the item's fulfilment group) delivers it ----------------------------
    nina = person(1280)
    nina.sign_in("nina")
    open_from_queue(nina, number, "Fulfil request")
    page = nina.page
    expect(page.locator(".instructions")).to_contain_text("Deliver Standard laptop to rita")
    page.get_by_label("What was delivered").fill("Laptop AT-104233 handed over at desk B2-14")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flashes")).to_contain_text("Done: “Fulfil request”.")
    expect_queue_without(nina, number)
    assert live.desk.record(number)["status"] == "awaiting_confirmation"

    # -- rita confirms receipt and rates the service -------------------------------------------------
    open_from_queue(rita, number, "Confirm receipt and rate", tab="Mine")
    page = rita.page
    expect(page.locator(".instructions")).to_contain_text("Laptop AT-104233 handed over at desk B2-14")
    page.get_by_role("group", name="Did you receive what you ordered?").get_by_label("Yes", exact=True).check()
    page.get_by_role("group", name="How satisfied are you with the service?").get_by_label("5 - very satisfied").check()
    page.get_by_label("Comment").fill("Quick and friendly.")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flashes")).to_contain_text("Done: “Confirm receipt and rate”.")

    # nothing waits for anyone any more; the request is closed with rita's rating
    expect(page.get_by_role("heading", level=1)).to_have_text("Tasks")
    expect(page.locator("#tab-mine .badge")).to_have_text("0")
    expect(page.locator("#tab-queue .badge")).to_have_text("0")
    page.get_by_role("link", name=re.compile(r"^Group queue")).click()
    expect(page.get_by_role("main")).to_contain_text("No task is waiting for you or your groups.")
    record = live.desk.record(number)
    assert record["status"] == "closed" and record["details"]["rating"] == 5, record
    if has_record_page:
        rita.go(f"/tickets/{number}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(number)
        expect(page.get_by_role("main")).to_contain_text("Closed")
    rita.screenshot("catalog-journey-1-1280")

    # the last page at a phone's width: readable, nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    rita.screenshot("catalog-journey-1-390")

    assert rita.errors == [] and mona.errors == [] and nina.errors == [], (rita.console, mona.console, nina.console)

