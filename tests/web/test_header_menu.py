"""The header's menu of the pages that run the desk (app/web/nav.py): who gets it, under which name,
with which links, and which link is marked as the current page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import text_of


def nav(body: str) -> str:
    start = body.index('<nav class="main-nav"')
    return body[start:body.index("</nav>", start)]


def menu(body: str) -> str | None:
    """The menu's markup, or None when the header has none."""
    found = re.search(r'<details class="nav-menu" id="admin-menu".*?</details>', nav(body), re.S)
    return found.group(0) if found else None


def summary(body: str) -> str:
    found = re.search(r"<summary[^>]*>(.*?)<span", menu(body) or "", re.S)
    assert found, body
    return found.group(1).strip()


def hrefs(markup: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', markup)


MANAGEMENT = ["/cmdb", "/processes", "/schedule", "/reports", "/sla/policies", "/audit", "/admin/users", "/admin/groups"]


@pytest.mark.parametrize(("username", "label", "links"), [
    ("ada", "Admin", MANAGEMENT),
    ("olga", "Manage", ["/cmdb", "/processes", "/schedule", "/reports", "/sla/policies"]),
    ("aude", "Manage", ["/cmdb", "/processes", "/schedule", "/reports", "/audit", "/admin/users", "/admin/groups"]),
])
def test_a_managing_role_gets_the_menu_and_the_bar_keeps_none_of_its_links(web: Any, desk: Any, username: str,
                                                                           label: str, links: list[str]) -> None:
    web.login(username)
    body = text_of(web.get("/tasks"))
    markup = menu(body)
    assert markup is not None
    assert summary(body) == label
    assert hrefs(markup) == links
    outside = nav(body).replace(markup, "")
    assert not set(hrefs(outside)) & set(MANAGEMENT)


@pytest.mark.parametrize(("username", "bar"), [
    ("alex", ["/cmdb", "/processes", "/schedule", "/reports"]),  # an agent: the pages of his daily work, no menu
    ("rita", []),
    ("mona", ["/schedule"]),  # an approver: the changes he may be asked to approve
])
def test_requesters_and_agents_get_no_menu(web: Any, desk: Any, username: str, bar: list[str]) -> None:
    web.login(username)
    body = text_of(web.get("/tasks"))
    assert menu(body) is None and "<details" not in nav(body)
    assert [href for href in hrefs(nav(body)) if href in MANAGEMENT] == bar


def test_a_menu_of_one_link_is_that_link_in_the_bar(web: Any, desk: Any) -> None:
    made = desk.client.post("/api/v1/users", headers=desk.auth("ada"), json={
        "username": "cmdbkeeper", "password": "password-1234", "roles": ["configuration_manager"]})
    assert made.status_code == 201, made.get_json()
    web.login("cmdbkeeper")
    body = text_of(web.get("/tasks"))
    assert menu(body) is None
    assert [href for href in hrefs(nav(body)) if href in MANAGEMENT] == ["/cmdb"]


@pytest.mark.parametrize(("path", "current"), [
    ("/admin/users", "/admin/users"), ("/admin/groups", "/admin/groups"), ("/sla/policies", "/sla/policies"),
    ("/audit", "/audit"), ("/processes", "/processes"), ("/cmdb", "/cmdb"), ("/reports", "/reports"),
    ("/schedule", "/schedule"),
])
def test_the_current_page_is_marked_in_the_menu_and_on_its_summary(web: Any, desk: Any, path: str, current: str) -> None:
    web.login("ada")
    body = text_of(web.get(path))
    markup = menu(body)
    assert markup is not None
    assert re.findall(r'<a href="([^"]+)"[^>]* aria-current="page"', markup) == [current]
    assert '<summary class="has-current">' in markup
    # said to a screen reader too, which hears the closed menu's name only
    assert re.search(r'<summary class="has-current">\w+<span class="visually-hidden"> \(the current page is in this '
                     r'menu\)</span>', markup)
    assert 'aria-current="page"' not in nav(body).replace(markup, "")


def test_a_page_outside_the_menu_leaves_it_unmarked(web: Any, desk: Any) -> None:
    web.login("ada")
    body = text_of(web.get("/tasks"))
    markup = menu(body) or ""
    assert "aria-current" not in markup and "has-current" not in markup and "the current page" not in markup


def test_an_agent_on_the_sla_policies_has_reports_marked(web: Any, desk: Any) -> None:
    """An agent reaches the SLA policies from the reports page; his header has no SLA link."""
    web.login("alex")
    header = nav(text_of(web.get("/sla/policies")))
    assert "/sla/policies" not in header
    assert 'href="/reports" aria-current="page">Reports<' in header


def test_the_menu_is_in_chinese(web: Any, desk: Any) -> None:
    web.login("ada")
    body = text_of(web.get("/tasks", headers={"Accept-Language": "zh-CN"}))
    if summary(body) != "系统管理":  # the user's stored language wins over the browser's
        web.post("/language", {"lang": "zh_CN", "next": "/tasks"})
        body = text_of(web.get("/tasks"))
    assert summary(body) == "系统管理"
    web.login("olga")
    web.post("/language", {"lang": "zh_CN", "next": "/tasks"})
    assert summary(text_of(web.get("/tasks"))) == "管理"
