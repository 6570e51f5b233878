"""Back and Reload after a task, start or catalog request form was refused, in real Chromium: the
refusal is answered with a redirect to the form's page (Post/Redirect/Get, app/web/refused_forms.py),
so no history entry is a POST's answer. Before, Back to it showed Chromium's "Confirm Form
Resubmission" page (ERR_CACHE_MISS) and Reload sent the form again."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402


def investigate_page(live: Any, person: Any, title: str) -> tuple[Any, int, list[str]]:
    """nina on the "Investigate and resolve" task of a new incident; she, the task's id and the
    list of POSTs her page sends to the task from then on."""
    number = live.start_incident(title)
    live.desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3",
                                                  "assignment_group": "NetworkTeam"})
    nina = person(1280)
    nina.sign_in("nina")
    task_id = live.desk.task_id(number, "investigate", "nina")
    nina.go(f"/tasks/{task_id}")
    sent: list[str] = []
    nina.page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and r.url.endswith(f"/tasks/{task_id}")
                 else None)
    return nina, task_id, sent


def refused(page: Any) -> None:
    """Send the form resolved but without notes: refused, said beside the form, the answer kept."""
    page.get_by_label("Resolved", exact=True).check()
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("alert")).to_contain_text("Resolution notes: is required when “Outcome” is Resolved")
    expect(page.get_by_label("Resolved", exact=True)).to_be_checked()


def go_back(page: Any) -> str | None:
    """Back, as the button does; the navigation error Chromium reported, if any."""
    try:
        page.go_back(wait_until="load")
    except Exception as err:  # playwright's Error: net::ERR_CACHE_MISS for a POST's answer
        return str(err)
    return None


def assert_a_real_page(page: Any, heading: str) -> None:
    """Not Chromium's error page (chrome-error://chromewebdata/): the site's page, its heading."""
    assert page.evaluate("location.protocol") == "http:", page.evaluate("location.href")
    expect(page.get_by_role("heading", level=1)).to_contain_text(heading)


def test_back_after_a_refused_task_form_and_then_a_done_one_shows_a_page(live, person):
    nina, task_id, sent = investigate_page(live, person, "Back after an error, then done")
    page = nina.page
    refused(page)
    assert page.url == f"{live.url}/tasks/{task_id}"
    page.get_by_label("Resolution notes").fill("Cleared the spooler")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("Done: “Investigate and resolve”.")
    assert len(sent) == 2

    problem = go_back(page)
    assert problem is None, problem
    assert_a_real_page(page, "Investigate and resolve")
    assert len(sent) == 2  # Back sent nothing
    assert nina.errors == [], nina.console


def test_back_to_a_refused_task_form_shows_the_task_page(live, person):
    nina, task_id, sent = investigate_page(live, person, "Back to an error")
    page = nina.page
    refused(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.wait_for_url(re.compile(r"/tasks$"))
    problem = go_back(page)
    assert problem is None, problem
    assert_a_real_page(page, "Investigate and resolve")
    assert page.url == f"{live.url}/tasks/{task_id}"
    assert len(sent) == 1
    assert nina.errors == [], nina.console


def test_reload_after_a_refused_task_form_does_not_send_it_again(live, person):
    nina, task_id, sent = investigate_page(live, person, "Reload after an error")
    page = nina.page
    refused(page)
    assert len(sent) == 1
    page.reload(wait_until="load")
    assert_a_real_page(page, "Investigate and resolve")
    assert len(sent) == 1, sent  # the reload asked for the page, it did not post the form again
    # and the form is still there to be sent, once, when it is right
    page.get_by_label("Resolved", exact=True).check()
    page.get_by_label("Resolution notes").fill("Cleared the spooler")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("Done: “Investigate and resolve”.")
    assert len(sent) == 2
    assert nina.errors == [], nina.console


def test_back_and_reload_after_a_refused_start_form(live, person):
    alex = person(1280)
    alex.sign_in("alex")
    alex.go("/start/incident_management")
    page = alex.page
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.get_by_label("Description").fill("No title given")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#f-title-error")).to_contain_text("is required")
    expect(page.get_by_label("Description")).to_have_value("No title given")
    assert page.url == f"{live.url}/start/incident_management"
    page.reload(wait_until="load")
    assert len(sent) == 1, sent
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.wait_for_url(re.compile(r"/tasks$"))
    problem = go_back(page)
    assert problem is None, problem
    assert_a_real_page(page, "Report an incident")
    assert len(sent) == 1, sent
    assert alex.errors == [], alex.console


def test_back_after_a_refused_catalog_request(live, person):
    rita = person(1280)
    rita.sign_in("rita")
    rita.go("/catalog/HW-LAPTOP")
    page = rita.page
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.get_by_label("Business justification").fill("My laptop of 2019 no longer holds a charge")
    page.get_by_role("button", name="Send request").click()  # the delivery location is missing
    expect(page.locator("#f-delivery_location-error")).to_have_text("Error: is required")
    expect(page.get_by_label("Business justification")).to_have_value("My laptop of 2019 no longer holds a charge")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.wait_for_url(re.compile(r"/tasks$"))
    problem = go_back(page)
    assert problem is None, problem
    assert_a_real_page(page, "Standard laptop")
    assert len(sent) == 1, sent
    assert rita.errors == [], rita.console
