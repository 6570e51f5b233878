"""In real Chromium: text someone typed cannot reorder the page's own words (a right-to-left
override in a record's title, stored before the forms refused it or set by a diagram; right-to-left
text in a title quoted by a message), the forms refuse the override beside the field, the header fits
one line at 1280 px for the admin (who has the most links), and the diagram's summary names the
steps in the page's language."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402

RLO = "\u202e"
HEBREW = "\u05e2\u05db\u05d1\u05e8"  # "mouse"


def stored_title(live, title: str) -> str:
    """A record whose stored title is ``title``, past the forms (which now refuse an override)."""
    number = live.start_incident("Printer on fire")
    services = live.desk.services
    services.records.by_number(number).title = title
    services.session.commit()
    return number


def test_a_right_to_left_override_in_a_title_stays_inside_it(live, person):
    number = stored_title(live, f"Printer {RLO}on fire")
    rita = person(1280)
    rita.sign_in("rita")
    rita.go(f"/tickets/{number}")
    page = rita.page
    heading = page.locator("h1.ticket-title")
    expect(heading).to_contain_text(number)
    title = heading.locator("bdi")
    expect(title).to_have_count(1)
    assert page.evaluate("e => getComputedStyle(e).unicodeBidi", title.element_handle()) == "isolate"
    # the record number before the title still reads left to right, in its place
    number_box = heading.locator(".number").bounding_box()
    title_box = title.bounding_box()
    assert number_box["x"] + number_box["width"] <= title_box["x"] + 1

    # the start form refuses an override beside the field
    rita.go("/start/incident_management")
    page.get_by_label("Title").fill(f"Mouse {RLO}broken")
    page.get_by_label("Description").fill("It does not click")
    for group in ("Impact", "Urgency"):
        page.get_by_role("group", name=re.compile(group)).get_by_label("Medium").check()
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".field-error").first).to_contain_text("bidirectional control characters")

    # a flashed message quoting a title that ends in right-to-left words keeps its own words in order
    page.get_by_label("Title").fill(f"Mouse {HEBREW}")
    page.get_by_role("button", name="Submit").click()
    flash = page.locator(".flash-success")
    expect(flash).to_contain_text("was created")
    quoted = flash.locator("bdi")
    expect(quoted).to_have_count(1)
    words = page.evaluate("""flash => {
        const range = document.createRange();
        const boxes = {};
        for (const node of flash.childNodes) {
            if (node.nodeType !== Node.TEXT_NODE || !node.textContent.trim()) continue;
            range.selectNodeContents(node);
            boxes[node.textContent.trim()] = range.getBoundingClientRect().x;
        }
        return boxes;
    }""", flash.element_handle())
    before = next(x for text, x in words.items() if text.startswith("Your record"))
    after = next(x for text, x in words.items() if text.startswith("”"))
    bdi_box = quoted.bounding_box()
    assert before < bdi_box["x"] < after, words
    assert rita.errors == [], rita.console


def test_the_admins_header_fits_one_line_at_1280_px(live, person):
    ada = person(1280)
    ada.page.set_viewport_size({"width": 1280, "height": 800})
    ada.sign_in("ada")
    for path in ("/", "/tasks"):
        ada.go(path)
        bar = ada.page.locator(".site-header .bar")
        tops = ada.page.evaluate("""bar => Array.from(bar.querySelectorAll('.brand, .main-nav > ul > li, .tools form'))
            .map(e => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2))""",
                                 bar.element_handle())
        assert max(tops) - min(tops) <= 4, (path, tops)  # every part of the header on one line
        box = bar.bounding_box()
        assert box["height"] < 64, box
        assert ada.page.evaluate("document.documentElement.scrollWidth") <= 1280


@pytest.mark.parametrize("width", [1280])
def test_the_diagram_summary_names_the_steps_in_chinese(live, person, width):
    number = live.start_incident("VPN drops every hour")
    alex = person(width)
    alex.sign_in("alex")
    alex.go(f"/tickets/{number}")
    page = alex.page
    expect(page.locator("#diagram-status")).to_contain_text("Waiting now: Triage incident.")
    page.get_by_role("button", name="简体中文").click()
    try:
        expect(page.locator("#diagram")).to_have_attribute("data-state", "ready")
        expect(page.locator("#diagram-status")).to_contain_text("分派事件")
        assert "Triage incident" not in page.locator("#diagram-status").inner_text()
    finally:
        page.get_by_role("button", name="English").click()
    assert alex.errors == [], alex.console
