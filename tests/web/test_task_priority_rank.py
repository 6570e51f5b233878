"""A change's priority is its risk (change_risk.dmn: high, medium, low). In the task lists it ranks
among the incidents' P1-P4 (high with P2, medium with P3, low with P4), so the most urgent work
comes first whatever the record's kind, and the inbox words it as the record pages do ("High",
"高"), not as the code the process stored.

sam works the ServiceDesk queue of tests/http/test_task_queue_order.py (read its docstring: records
A to E, X without a record) and sits on the CAB, so a high-risk change's vote is in his queue too.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.services import instances as instances_module
from tests.http.test_e2e_change import ASSESS_HIGH, CHANGE
from tests.http.test_task_queue_order import build_queue
from tests.web.conftest import PASSWORD, text_of
from tests.web.test_task_queue_columns import cell, rows


@pytest.fixture()
def queue(desk, services, clock) -> dict[str, Any]:
    services.users.create_user("sam", PASSWORD, roles=["agent", "approver"], groups=["ServiceDesk", "CAB"])
    services.session.commit()
    found = build_queue(desk, services, clock)
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "normal"})["data"]["record_number"]
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    assert desk.record(number)["priority"] == "high"
    [found["V"]] = [t["id"] for t in desk.record(number)["open_tasks"] if t["assigned_user"] == "sam"]
    return found


def order(desk, queue: dict[str, Any], sort: str) -> str:
    response = desk.client.get(f"/api/v1/tasks?per_page=50&sort={sort}", headers=desk.auth("sam"))
    assert response.status_code == 200, response.get_json()
    names = {task_id: name for name, task_id in queue.items() if isinstance(task_id, int)}
    return "".join(names[t["id"]] for t in response.get_json()["items"])


@pytest.mark.parametrize("whole", [True, False], ids=["sorted whole", "through the index"])
def test_a_high_risk_change_ranks_with_p2(desk, queue, monkeypatch, whole):
    if not whole:
        monkeypatch.setattr(instances_module, "SORT_WHOLE_MAX", 0)
    # P1; P2 (D, due 13:55) and the high-risk change's vote (no SLA: after D); P3 by due; P4; no record
    assert order(desk, queue, "priority") == "CDVAEBX"
    # by due the change, without an SLA, comes after the records that have one, oldest first
    assert order(desk, queue, "due") == "ACDEBXV"


def test_the_inbox_words_the_risk_as_the_record_pages_do(web, desk, queue):
    web.login("sam")
    page = text_of(web.get("/tasks?tab=queue&sort=priority"))
    found = rows(page)
    # the vote waits on sam by name: under Mine, not in the group queue as well
    assert list(found)[:2] == [queue["C"], queue["D"]] and queue["V"] not in found
    mine = rows(text_of(web.get("/tasks?tab=mine&sort=priority")))
    assert list(mine) == [queue["V"]]
    assert cell(mine[queue["V"]], "Priority") == (
        ' class="priority-cell"><span class="priority priority-high"><data value="high" title="high">High</data></span>')
    assert '<span class="priority priority-P1">P1</span>' in cell(found[queue["C"]], "Priority")  # the desk's own codes
    web.post("/language", {"lang": "zh_CN"})
    chinese = rows(text_of(web.get("/tasks?tab=mine&sort=priority")))
    assert re.search(r'<data value="high" title="high">高</data>', cell(chinese[queue["V"]], "优先级"))
