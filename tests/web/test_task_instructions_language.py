"""The shipped processes' task instructions in the page's language (their translation files
translate them), the API's in English whatever the language asked for."""

from __future__ import annotations

import re

from tests.web.conftest import INCIDENT, text_of


def instructions(page: str) -> str:
    match = re.search(r'<section class="instructions"[^>]*>(.*?)</section>', page, flags=re.S)
    assert match, "no instructions on the page"
    return match.group(1)


def test_a_chinese_reader_gets_the_triage_instructions_in_chinese(web, desk, client):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage", "alex")
    web.login("alex")
    english = instructions(text_of(web.get(f"/tasks/{task_id}")))
    assert "the priority matrix suggests" in english and "VPN down" in english

    web.post("/language", {"lang": "zh_CN"})
    chinese = instructions(text_of(web.get(f"/tasks/{task_id}")))
    assert "优先级矩阵建议" in chinese and "<strong>VPN down</strong> 由 rita 报告" in chinese
    assert "Cannot connect from home" in chinese  # the data stays as typed
    assert "the priority matrix suggests" not in chinese

    api = client.get(f"/api/v1/tasks/{task_id}", headers={**desk.auth("alex"), "Accept-Language": "zh-CN"})
    assert "the priority matrix suggests" in api.get_json()["instructions"]


def test_the_requesters_confirmation_reads_in_chinese_with_its_delay_in_words(web, desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Restarted the gateway",
                                                  "cause_category": "configuration"})
    web.login("rita")
    web.post("/language", {"lang": "zh_CN"})
    shown = instructions(text_of(web.get(f"/tasks/{desk.task_id(number, 'confirm_resolution')}")))
    assert "您的事件 <strong>VPN down</strong> 已解决" in shown and "Restarted the gateway" in shown
    assert re.search(r"事件将在 <data value=\"P\w+\"[^>]*>[^<]*</data> 后自动关闭", shown), shown
