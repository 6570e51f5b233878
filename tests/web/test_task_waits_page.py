"""The process page's "Where the work waits" (app/services/task_stats.py), in the page's language."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.web.conftest import INCIDENT, text_of

TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}


def row(page: str, bpmn_id: str) -> tuple[str, list[str]]:
    """The row of ``bpmn_id``: its opening tag and its cells' texts."""
    start = page.index(f'id="waits-{bpmn_id}"')
    html = page[start:page.index("</tr>", start)]
    return html.split(">", 1)[0], [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", html)]


def test_the_staff_see_where_the_work_of_a_process_waits(web, desk, clock):
    first = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    clock.advance(timedelta(hours=2))
    desk.complete(first, "triage", "alex", TRIAGE)
    desk.start("rita", "incident_management", INCIDENT)
    desk.start("rita", "incident_management", INCIDENT)
    clock.advance(timedelta(minutes=30))
    web.login("olga")
    page = text_of(web.get("/processes/incident_management"))
    assert "Where the work waits" in page and "last 30 days" in page
    opening, cells = row(page, "triage")
    assert cells == ["2", "0.5 h", "1", "2.0", "2.0"] and 'class="busiest"' in opening
    assert "most waiting" in page
    assert row(page, "investigate")[1] == ["1", "0.5 h", "0", "–", "–"]
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get("/processes/incident_management"))
    assert "工作在哪里等待" in page and row(page, "triage")[1][1] == "0.5 小时"
