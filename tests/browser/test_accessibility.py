"""Accessibility: axe-core (the npm package, installed by `make setup`) checks the desk's pages in
real Chromium against WCAG 2.0-2.2 A and AA and axe's best practices, as each kind of user sees
them, on a laptop and a phone, in English and Chinese.

Every rule axe reports as violated fails the test, whatever its impact, naming the page, the rule
and the first elements: a page read by screen reader or keyboard only is the same desk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import VIEWPORTS, Person, require_browser

require_browser()

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def violations(page: Any) -> list[str]:
    """axe's WCAG 2.1 A/AA violations of the page now shown, one line each."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run make setup (npm install)", pytrace=False)
    page.add_script_tag(path=str(AXE))
    # the diagram canvas is bpmn-js's (vendor) drawing, described by the page around it
    found = page.evaluate("""async (tags) => {
        const result = await axe.run({exclude: [['.djs-container']]}, {runOnly: {type: 'tag', values: tags}});
        return {passed: result.passes.length, lines: result.violations.map(v => `${v.id} (${v.impact}): ${v.help} -- ` +
            v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))};
    }""", WCAG)
    assert found["passed"] >= 10, found  # axe ran its rules on this page (not an empty document)
    return [str(line) for line in found["lines"]]


def check(person_page: Any, path: str, problems: list[str]) -> None:
    answer = person_page.go(path)
    assert answer is not None and answer.status < 400, (path, answer.status if answer else None)
    person_page.page.wait_for_load_state("networkidle")
    problems.extend(f"{path}: {line}" for line in violations(person_page.page))


@pytest.fixture()
def person(browser: Any, live: Any) -> Any:
    """person(width) as in conftest, in a context that lets axe's script in past the pages' CSP."""
    contexts = []

    def open_window(width: int) -> Person:
        context = browser.new_context(viewport=VIEWPORTS[width], locale="en-US", bypass_csp=True)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Person(context.new_page(), live.url)

    yield open_window
    for context in contexts:
        context.close()


def reset_link(live: Any) -> str:
    """The path of a working password reset link (its mail is read from the outbox, never sent)."""
    from sqlalchemy import select

    from app.models import OutboxMessage

    svc = live.desk.services
    if svc.users.find("axel") is None:
        svc.users.create_user("axel", "password-1234", roles=["requester"], email="axel@example.test")
    svc.password_reset.request_reset("axel")
    svc.session.commit()
    body = svc.session.scalars(select(OutboxMessage.body).where(OutboxMessage.recipient == "axel@example.test")
                               .order_by(OutboxMessage.id.desc())).first()
    svc.session.rollback()  # no read left open: SQLite refuses a later write from this session's old snapshot
    return "/login/reset/" + str(body).split("/login/reset/", 1)[1].split()[0]


def test_the_pages_of_each_kind_of_user_pass_axe(live, person):
    number = live.start_incident("Accessibility check: VPN drops")
    triage = live.desk.task_id(number, "triage")
    instance = live.desk.client.get(f"/api/v1/tickets/{number}", headers=live.desk.auth("alex")).get_json()
    problems: list[str] = []

    anonymous = person(1280)
    for path in ("/login", "/login/forgot", "/login/forgot?sent=1", reset_link(live)):
        check(anonymous, path, problems)

    item = json.loads((ROOT / "processes" / "catalog.json").read_text())["items"][0]["code"]
    rita = person(1280)
    rita.sign_in("rita")
    for path in ("/", "/tickets", f"/tickets/{number}", "/start/incident_management", "/catalog",
                 f"/catalog/{item}", "/knowledge", "/account", "/notifications"):
        check(rita, path, problems)

    alex = person(1280)
    alex.sign_in("alex")
    for path in ("/tasks", f"/tasks/{triage}", f"/tickets/{number}", "/tickets?status=new", "/reports", "/cmdb",
                 "/knowledge/new"):
        check(alex, path, problems)

    olga = person(1280)
    olga.sign_in("olga")
    for path in ("/processes", "/processes/incident_management", "/processes/incident_management/compare", "/sla/policies"):
        check(olga, path, problems)

    aude = person(1280)
    aude.sign_in("aude")
    check(aude, "/audit", problems)
    if instance.get("instance_id"):
        check(aude, f"/audit/instances/{instance['instance_id']}", problems)

    ada = person(1280)
    ada.sign_in("ada")
    for path in ("/admin/users", "/admin/users/new", "/admin/users/rita", "/admin/groups", "/admin/groups/ServiceDesk",
                 "/cmdb/new"):
        check(ada, path, problems)

    assert not problems, "\n".join(problems)


def test_phone_width_and_chinese_pages_pass_axe(live, person):
    number = live.start_incident("Accessibility check on a phone")
    triage = live.desk.task_id(number, "triage")
    problems: list[str] = []
    rita = person(375)
    rita.sign_in("rita")
    for path in ("/", f"/tickets/{number}", "/start/incident_management", "/catalog"):
        check(rita, path, problems)
    alex = person(1280)
    alex.sign_in("alex")
    alex.page.get_by_role("button", name="简体中文").click()
    alex.page.wait_for_load_state()
    try:
        for path in ("/tasks", f"/tasks/{triage}", f"/tickets/{number}", "/reports"):
            check(alex, path, problems)
        assert alex.page.locator("html").get_attribute("lang") == "zh-CN"
    finally:  # the choice is alex's own (it follows his sign-ins): the other journeys read English
        alex.page.get_by_role("button", name="English").click()
        alex.page.wait_for_load_state()
    assert not problems, "\n".join(problems)


def test_the_service_status_pages_and_the_banner_pass_axe(live, person):
    """The notice pages, and a banner with its button above a requester's pages on a phone; the
    notice is resolved at the end (the live desk is shared with the other journeys)."""
    desk = live.desk
    posted = desk.client.post("/api/v1/status", headers=desk.auth("alex"), json={
        "title": "Accessibility check: the VPN is down", "level": "outage", "body": "Nobody connects from home.",
        "service": "VPN"})
    assert posted.status_code == 201, posted.get_json()
    notice = posted.get_json()
    problems: list[str] = []
    try:
        rita = person(375)
        rita.sign_in("rita")
        for path in ("/", "/start/incident_management", "/status", f"/status/{notice['id']}"):
            check(rita, path, problems)
            if path.startswith("/start"):  # checked with the banner and its button above the form
                assert rita.page.locator("#status-banner button").count() == 1
        alex = person(1280)
        alex.sign_in("alex")
        for path in ("/status", f"/status/{notice['id']}", "/status/new"):
            check(alex, path, problems)
    finally:
        done = desk.client.post(f"/api/v1/status/{notice['id']}/resolve", headers=desk.auth("alex"),
                                json={"version": notice["version"], "body": "Back."})
        assert done.status_code == 200, done.get_json()
    assert not problems, "\n".join(problems)


def test_the_response_template_pages_the_comment_box_picker_and_time_worked_pass_axe(live, person):
    """The list with its form, one template as its editor and as an agent who only reads it sees it,
    a record whose comment box offers it and whose time worked lists an entry, and the record list
    with a saved view; the template and the views are deleted at the end (the live desk is shared
    with the other journeys)."""
    desk = live.desk
    made = desk.client.post("/api/v1/response-templates", headers=desk.auth("olga"), json={
        "name": "Accessibility check: on it", "body": "{{agent}} works on {{number}}.", "shared": True})
    assert made.status_code == 201, made.get_json()
    template = made.get_json()
    number = live.start_incident("Accessibility check: a record with templates")
    # and time worked, so that its panel lists an entry with its remove button
    entry = desk.client.post(f"/api/v1/tickets/{number}/time-worked", headers=desk.auth("alex"),
                             json={"minutes": 35, "note": "Checked the cabling"})
    assert entry.status_code == 201, entry.get_json()
    # and a saved view of the record list for each, shown above it with its delete button
    for who in ("olga", "alex"):
        view = desk.client.post("/api/v1/users/me/views", headers=desk.auth(who),
                                json={"name": "Accessibility check", "query": "q=Accessibility+check"})
        assert view.status_code == 201, view.get_json()
    problems: list[str] = []
    try:
        for who, width in (("olga", 1280), ("alex", 375)):
            someone = person(width)
            someone.sign_in(who)
            for path in ("/response-templates", f"/response-templates/{template['id']}", f"/tickets/{number}",
                         "/tickets?q=Accessibility+check"):
                check(someone, path, problems)
                if path.startswith("/tickets/"):  # checked with the picker and the time worked panel
                    assert someone.page.locator("#comment-response option").count() >= 1
                    assert someone.page.locator("#work .work-log li").count() == 1
                if path.startswith("/tickets?"):  # the saved view, marked as the list shown
                    assert someone.page.locator("#saved-views a[aria-current=page]").count() == 1
    finally:
        gone = desk.client.delete(f"/api/v1/response-templates/{template['id']}", headers=desk.auth("olga"))
        assert gone.status_code == 204
        for who in ("olga", "alex"):
            for view in desk.client.get("/api/v1/users/me/views", headers=desk.auth(who)).get_json()["items"]:
                desk.client.delete(f"/api/v1/users/me/views/{view['id']}", headers=desk.auth(who))
    assert not problems, "\n".join(problems)
