"""The inbox page's Priority and SLA due columns, its sort control (SLA due by default) and the
links that keep the sort, on the queue of tests/http/test_task_queue_order.py (read its docstring:
records A to E, F of another group, X without a record)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.http.test_task_queue_order import at, build_queue
from tests.web.conftest import text_of


@pytest.fixture()
def queue(desk, services, clock) -> dict[str, Any]:
    return build_queue(desk, services, clock)


def rows(page: str) -> dict[int, str]:
    """The inbox table's rows by task id, in page order (dicts keep it)."""
    body = page.split('<tbody role="rowgroup">', 1)[1].split("</tbody>", 1)[0]
    found = {}
    for row in re.split(r'<tr role="row"[^>]*>', body)[1:]:
        match = re.search(r'<a href="/tasks/(\d+)">', row)
        assert match, row
        found[int(match.group(1))] = row
    return found


def cell(row: str, label: str) -> str:
    match = re.search(rf'<td role="cell" data-label="{label}"([^>]*)>(.*?)</td>', row, re.S)
    assert match, (label, row)
    return match.group(1) + ">" + match.group(2)


def ids(queue: dict[str, Any], names: str) -> list[int]:
    return [queue[name] for name in names]


def alex_sees(web_factory: Any, path: str = "/tasks?tab=queue") -> str:
    """The page as alex sees it, signed in now (a session idles out as the tests move the clock)."""
    alex = web_factory()
    alex.login("alex")
    return text_of(alex.get(path))


def test_the_queue_shows_each_records_priority_and_sla_due_marked_breached_or_at_risk(web_factory, desk, queue, clock):
    # 13:02: A's response (due 13:00) has breached; C's (P1, 15 min, due 13:05) passed its warning
    # at 75 % (13:01:15); D's warning is at 13:40, E's at 15:57, B's at 15:05.
    clock.set(at(13, 2))
    page = alex_sees(web_factory)
    found = rows(page)
    assert list(found) == ids(queue, "ACDEBX")  # the page's default order: SLA due, none last
    assert '<option value="due" selected>SLA due</option>' in page
    assert re.search(r'<th scope="col" role="columnheader" aria-sort="ascending">SLA due</th>', page)

    a, c, d, x = (found[queue[name]] for name in "ACDX")
    due_a = cell(a, "SLA due")
    assert due_a.startswith(' class="sla sla-breached">')
    assert '<time datetime="2026-01-05T13:00:00+00:00">' in due_a and '<span class="sla-mark">Breached</span>' in due_a
    due_c = cell(c, "SLA due")
    assert due_c.startswith(' class="sla sla-at-risk">')
    assert '<time datetime="2026-01-05T13:05:00+00:00">' in due_c and '<span class="sla-mark">At risk</span>' in due_c
    due_d = cell(d, "SLA due")
    assert due_d.startswith(' class="sla">') and "sla-mark" not in due_d
    assert '<time datetime="2026-01-05T13:55:00+00:00">' in due_d
    assert cell(x, "SLA due") == ' class="sla"><span class="muted">none</span>'

    assert '<span class="priority priority-P3">P3</span>' in cell(a, "Priority")
    assert '<span class="priority priority-P1">P1</span>' in cell(c, "Priority")
    assert cell(x, "Priority") == ' class="priority-cell"><span class="muted">none</span>'

    # 13:05 on the dot: C's target is used up, not exceeded: at risk still, breached a moment later
    # (as its clock says: a breach is elapsed time *over* the target)
    clock.set(at(13, 5))
    assert 'class="sla sla-at-risk"' in rows(alex_sees(web_factory))[queue["C"]]
    clock.set(at(13, 5) + timedelta(seconds=1))
    assert 'class="sla sla-breached"' in rows(alex_sees(web_factory))[queue["C"]]

    # 14:00: C and D have breached too; neither B (warned at 15:05) nor E (at 15:57) is at risk yet ...
    clock.set(at(14, 0))
    later = rows(alex_sees(web_factory))
    marks = {name: re.search(r'class="sla(?: sla-([\w-]+))?"', later[queue[name]]).group(1) for name in "ABCDEX"}
    assert marks == {"A": "breached", "B": None, "C": "breached", "D": "breached", "E": None, "X": None}
    # ... at 16:00 both are
    clock.set(at(16, 0))
    later = rows(alex_sees(web_factory))
    assert [name for name in "ABCDEX" if "sla-at-risk" in later[queue[name]]] == ["B", "E"]


def test_the_sort_control_orders_the_page_and_the_tab_and_pager_links_keep_it(web, desk, queue, app):
    app.config["PER_PAGE_DEFAULT"] = 2
    web.login("alex")
    page = text_of(web.get("/tasks?tab=queue&sort=priority"))
    assert list(rows(page)) == ids(queue, "CD")
    assert '<option value="priority" selected>Priority</option>' in page
    assert '<select id="filter-sort" name="sort">' in page and '<label for="filter-sort">Sort by</label>' in page
    assert 'href="/tasks?tab=mine&amp;sort=priority" id="tab-mine"' in page
    assert 'href="/tasks?tab=queue&amp;sort=priority" id="tab-queue"' in page
    next_link = re.search(r'<a href="([^"]+)" rel="next">', page)
    assert next_link and "sort=priority" in next_link.group(1) and "tab=queue" in next_link.group(1)
    second = text_of(web.get(next_link.group(1).replace("&amp;", "&")))
    assert list(rows(second)) == ids(queue, "AE")
    assert "sort=priority" in re.search(r'<a href="([^"]+)" rel="prev">', second).group(1)
    third = text_of(web.get("/tasks?tab=queue&sort=priority&page=3"))
    assert list(rows(third)) == ids(queue, "BX")

    # the process filter and the sort travel together
    both = text_of(web.get("/tasks?tab=queue&sort=age&process=incident_management"))
    assert list(rows(both)) == ids(queue, "AB")
    assert re.search(r'href="/tasks\?page=2&amp;(?=[^"]*tab=queue)(?=[^"]*process=incident_management)(?=[^"]*sort=age)', both)
    assert 'href="/tasks?tab=mine&amp;process=incident_management&amp;sort=age"' in both


def test_an_unknown_sort_falls_back_to_sla_due(web, desk, queue):
    web.login("alex")
    for query in ("sort=sla", "sort=", "sort=-due"):
        response = web.get(f"/tasks?tab=queue&{query}")
        assert response.status_code == 200, query
        page = text_of(response)
        assert list(rows(page)) == ids(queue, "ACDEBX"), query
        assert '<option value="due" selected>SLA due</option>' in page
    age = text_of(web.get("/tasks?tab=queue&sort=age"))
    assert list(rows(age)) == ids(queue, "ABCDXE")


def test_a_task_of_another_group_is_not_on_the_page_whatever_the_sort(web_factory, desk, queue):
    alex, nina = web_factory(), web_factory()
    alex.login("alex")
    nina.login("nina")
    for sort in ("due", "priority", "age"):
        for tab in ("queue", "mine"):
            page = text_of(alex.get(f"/tasks?tab={tab}&sort={sort}"))
            assert f'href="/tasks/{queue["F_investigate"]}"' not in page, (sort, tab)
        assert list(rows(text_of(nina.get(f"/tasks?tab=queue&sort={sort}")))) == [queue["F_investigate"]], sort


def test_the_new_columns_speak_chinese(web, desk, queue, clock):
    clock.set(at(13, 2))
    web.login("alex")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get("/tasks?tab=queue"))
    assert '<option value="due" selected>SLA 截止时间</option>' in page
    assert '<option value="age">等待时长</option>' in page and '<label for="filter-sort">排序方式</label>' in page
    assert ">优先级</th>" in page
    assert '<span class="sla-mark">已违约</span>' in page and '<span class="sla-mark">即将违约</span>' in page
    assert 'data-label="SLA 截止时间"' in page and 'data-label="优先级"' in page


def test_claiming_the_last_task_of_the_last_queue_page_lands_on_the_page_before(web, desk, queue, app):
    """The only task on the queue's last page, claimed from there, leaves that page empty: the
    agent comes back to the last page there is, not to one saying no task is waiting."""
    app.config["PER_PAGE_DEFAULT"] = 5
    web.login("alex")
    last = text_of(web.get("/tasks?tab=queue&sort=priority&page=2"))
    assert list(rows(last)) == ids(queue, "X")
    task_id = ids(queue, "X")[0]
    page = text_of(web.post(f"/tasks/{task_id}/claim", {"next": "/tasks?tab=queue&sort=priority&page=2"},
                            follow_redirects=True))
    assert "No task is waiting for you or your groups." not in page
    assert list(rows(page)) == ids(queue, "CDAEB")
