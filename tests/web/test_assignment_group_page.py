"""The triage page offers the directory's groups that have an active agent, and says so beside the
field when the group picked has lost its agents since the page was shown (in the page's language)."""

from __future__ import annotations

import re

from tests.web.conftest import INCIDENT, text_of


def options(page: str) -> list[str]:
    select = page.split('<select id="f-assignment_group" name="assignment_group"')[1].split("</select>")[0]
    return re.findall(r'<option value="([^"]*)"', select)


def test_triage_page_offers_groups_with_agents_and_refuses_one_that_lost_them(web_factory, desk, services):
    users = services.users
    users.create_group(users.get_by_username("ada"), "NightShift", description="Out of hours")
    users.create_user("nick", "password-1234", roles=["agent"], groups=["NightShift"])
    services.session.commit()
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(number, "triage", "alex")
    alex = web_factory()
    alex.login("alex")
    page = text_of(alex.get(f"/tasks/{triage}"))
    offered = options(page)
    assert {"NightShift", "MessagingTeam", "Facilities", "ServiceDesk"} <= set(offered) and "CAB" not in offered
    assert '<option value="ServiceDesk" selected>ServiceDesk</option>' in page  # the form's default
    assert '<option value="NightShift">NightShift – Out of hours</option>' in page

    users.deactivate_user(users.get_by_username("ada"), "nick")
    services.session.commit()
    sent = alex.post(f"/tasks/{triage}", {"category": "network", "priority": "P3", "assignment_group": "NightShift"})
    assert sent.status_code == 303 and sent.headers["Location"] == f"/tasks/{triage}"
    page = text_of(alex.get(sent.headers["Location"]))
    assert ('<p class="field-error" id="f-assignment_group-error"><span class="visually-hidden">Error: </span>'
            "NightShift is not a group with an active agent: choose one of the groups offered</p>") in page
    assert "NightShift" not in options(page) and desk.ready(number) == ["triage"]

    alex.post("/language", {"lang": "zh_CN"})
    sent = alex.post(f"/tasks/{triage}", {"category": "network", "priority": "P3", "assignment_group": "NightShift"})
    page = text_of(alex.get(sent.headers["Location"]))
    assert "NightShift 不是有已启用处理人员的组：请从列出的组中选择一个" in page

    done = alex.post(f"/tasks/{triage}", {"category": "network", "priority": "P3", "assignment_group": "MessagingTeam"})
    assert done.status_code == 302 and desk.record(number)["assignment_group"] == "MessagingTeam"
