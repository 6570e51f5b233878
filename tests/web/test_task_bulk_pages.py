"""The Tasks page's bulk form: rows ticked in the list are claimed, released or handed to one
person at once; a refused selection comes back with its boxes ticked and each refused row's reason
beside it, and nothing changed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from app.models import HumanTask
from tests.http.test_e2e_incident import open_incident, triage
from tests.web.conftest import PASSWORD, refused_to, text_of
from tests.web.test_out_of_office_pages import element

QUEUE = "/tasks?tab=queue&sort=age"


@pytest.fixture()
def investigations(desk: Any, services: Any) -> list[int]:
    """Three incidents triaged to NetworkTeam (nina, and nils added here): their investigate tasks."""
    services.users.create_user("nils", PASSWORD, roles=["agent"], groups=["NetworkTeam"])
    services.session.commit()
    ids = []
    for _ in range(3):
        number, _instance = open_incident(desk)
        triage(desk, number)
        ids.append(desk.task_id(number, "investigate"))
    return ids


def claimants(services: Any, ids: list[int]) -> list[str | None]:
    services.session.expire_all()
    rows = {t.id: t for t in services.session.scalars(select(HumanTask).where(HumanTask.id.in_(ids)))}
    return [rows[i].claimed_by.username if rows[i].claimed_by else None for i in ids]


def ticked(page: str) -> set[int]:
    return {int(i) for i in re.findall(r'<input type="checkbox" name="task_id" value="(\d+)" form="bulk-form" '
                                       r'id="select-\d+" checked', page)}


def test_an_agent_claims_the_ticked_rows_of_the_queue(web, investigations, services):
    web.login("nina")
    page = text_of(web.get(QUEUE))
    assert 'id="bulk-form"' in page and 'action="/tasks/bulk"' in page
    for task_id in investigations:
        assert f'id="select-{task_id}"' in page and f'form="bulk-form" id="select-{task_id}"' in page
    # what the bulk form offers an agent of the group: the three actions, the group's members
    assert re.findall(r'<select id="bulk-action" name="action">(.*?)</select>', page, re.S)
    assert 'value="reassign"' in page
    candidates = re.search(r'<datalist id="bulk-candidates">(.*?)</datalist>', page, re.S)
    assert candidates and {"nina", "nils"} <= set(re.findall(r'<option value="([^"]+)">', candidates.group(1)))

    answer = web.post("/tasks/bulk", {"action": "claim", "task_id": [str(i) for i in investigations[:2]],
                                      "next": QUEUE})
    assert answer.status_code == 302 and answer.headers["Location"] == QUEUE
    after = text_of(web.get(QUEUE))
    assert "Tasks you claimed: 2." in after
    assert claimants(services, investigations) == ["nina", "nina", None]
    mine = text_of(web.get("/tasks?tab=mine"))
    assert all(f'id="select-{i}"' in mine for i in investigations[:2])

    # released from Mine in one go; the third was never hers: said as already so
    back = web.post("/tasks/bulk", {"action": "unclaim", "task_id": [str(i) for i in investigations],
                                    "next": "/tasks?tab=mine"})
    assert back.status_code == 302
    told = text_of(web.get("/tasks?tab=mine"))
    assert "Tasks released back to the queue: 2." in told and "Tasks that were so already: 1." in told
    assert claimants(services, investigations) == [None, None, None]


def test_a_refused_row_comes_back_ticked_with_its_reason_and_nothing_changes(web, web_factory, investigations,
                                                                               services):
    nina = web_factory()
    nina.login("nina")
    assert nina.post(f"/tasks/{investigations[1]}/claim").status_code == 302
    web.login("nils")
    sent = {"action": "claim", "task_id": [str(i) for i in investigations], "next": QUEUE}
    page = refused_to(web, web.post("/tasks/bulk", sent), QUEUE)
    assert "Nothing was changed." in element(page, "bulk-errors")
    assert ticked(page) == {investigations[0], investigations[2]}  # the one nina took is no longer listed
    # ...and its reason is in the summary, named by its task id as it is no longer on the page
    assert f"Task {investigations[1]}" in element(page, "bulk-errors")
    assert claimants(services, investigations) == [None, "nina", None]
    again = text_of(web.get(QUEUE))
    assert 'id="bulk-errors"' not in again and not ticked(again)  # said once


def test_a_row_refused_on_the_page_is_marked_beside_its_box(web, investigations, services, desk):
    # nils hands the tasks to alex, who is not in NetworkTeam: every row says why, beside its box
    web.login("nils")
    sent = {"action": "reassign", "username": "alex", "task_id": [str(i) for i in investigations[:2]],
            "next": QUEUE}
    page = refused_to(web, web.post("/tasks/bulk", sent), QUEUE)
    for task_id in investigations[:2]:
        reason = element(page, f"select-{task_id}-error")
        assert "not one of the user's groups" in reason, reason
        assert re.search(rf'id="select-{task_id}" checked[^>]*aria-invalid="true" '
                         rf'aria-describedby="select-{task_id}-error"', page)
    assert f'id="select-{investigations[2]}-error"' not in page
    assert 'value="alex"' in page and '<option value="reassign" selected>' in page
    assert claimants(services, investigations) == [None, None, None]


@pytest.mark.parametrize(("sent", "field", "words"), [
    ({"action": "claim"}, "bulk-task-ids", "Tick the tasks to act on first."),
    ({"action": "claim", "task_id": ["1", "x"]}, "bulk-task-ids", "not a task"),
    ({"action": "claim", "task_id": ["\u00b2"]}, "bulk-task-ids", "not a task"),
    ({"action": "claim", "task_id": ["\u0663"]}, "bulk-task-ids", "not a task"),
    ({"action": "claim", "task_id": ["0"]}, "bulk-task-ids", "not a task"),
    ({"action": "claim", "task_id": [str(2**31)]}, "bulk-task-ids", "not a task"),
    ({"action": "steal", "task_id": ["1"]}, "bulk-errors", "Choose what to do"),
    ({"action": "reassign", "task_id": ["1"], "username": " "}, "bulk-username-error", "is required"),
])
def test_a_form_missing_its_parts_is_told_what_is_missing(web, investigations, sent, field, words):
    web.login("nils")
    page = refused_to(web, web.post("/tasks/bulk", {**sent, "next": QUEUE}), QUEUE)
    assert words in element(page, field)


def test_the_form_needs_its_csrf_token_and_a_sign_in(web, investigations, services):
    sent = {"action": "claim", "task_id": [str(investigations[0])], "next": QUEUE}
    signed_out = web.post("/tasks/bulk", sent)
    assert signed_out.status_code in (302, 303) and "/login" in signed_out.headers["Location"]
    web.login("nina")
    assert web.post("/tasks/bulk", sent, csrf=False).status_code == 403
    assert claimants(services, investigations[:1]) == [None]


def test_where_the_next_address_is_another_site_the_list_is_where_it_goes(web, investigations):
    web.login("nina")
    answer = web.post("/tasks/bulk", {"action": "claim", "task_id": [str(investigations[0])],
                                      "next": "https://elsewhere.example/tasks"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/tasks"


def test_in_chinese_the_refusals_are_in_chinese(web, investigations, services):
    web.login("nils")
    web.post("/language", {"lang": "zh_CN"})
    page = refused_to(web, web.post("/tasks/bulk", {"action": "reassign", "username": "alex",
                                                    "task_id": [str(investigations[0])], "next": QUEUE}), QUEUE)
    assert "未作任何更改。" in element(page, "bulk-errors")
    assert "的队列中" in element(page, f"select-{investigations[0]}-error")
    assert "应用于所选" in page and "一并执行" in page


def test_a_refusal_that_leaves_no_row_on_the_page_is_still_said(web, web_factory, investigations, services):
    """Review: the last task of the queue, taken by a colleague first, left an empty page and no word."""
    nina = web_factory()
    nina.login("nina")
    for task_id in investigations:
        assert nina.post(f"/tasks/{task_id}/claim").status_code == 302
    web.login("nils")
    page = refused_to(web, web.post("/tasks/bulk", {"action": "claim", "task_id": [str(investigations[0])],
                                                    "next": QUEUE}), QUEUE)
    summary = element(page, "bulk-errors")
    assert "Nothing was changed." in summary and f"Task {investigations[0]}" in summary
    assert 'id="bulk-form"' not in page  # no rows: nothing to tick
    # a page past the end leads back to the list's last page, and the refusal goes with it
    assert nina.post(f"/tasks/{investigations[2]}/unclaim").status_code == 302  # one row in the queue again
    sent = {"action": "claim", "task_id": [str(investigations[1])], "next": QUEUE + "&page=3"}
    answer = web.post("/tasks/bulk", sent)
    assert answer.status_code == 303
    moved = web.get(answer.headers["Location"])
    assert moved.status_code in (302, 303)
    assert f"Task {investigations[1]}" in element(text_of(web.get(moved.headers["Location"])), "bulk-errors")


def test_an_admin_told_of_a_name_nobody_has_as_the_task_page_tells_it(web, investigations):
    web.login("ada")
    page = refused_to(web, web.post("/tasks/bulk", {"action": "reassign", "username": "ghost",
                                                    "task_id": [str(investigations[0])], "next": QUEUE}), QUEUE)
    assert "There is no user ghost." in element(page, "bulk-errors")
