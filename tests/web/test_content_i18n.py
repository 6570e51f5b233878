"""Process content in the page's language: task names, forms, start pages and the catalog.

What the diagrams, forms and catalog say is shown from the translation deployed beside them,
else the pages' own catalog, else the English source; values sent and stored stay the source.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from flask import render_template_string

from tests.web.conftest import INCIDENT, text_of


def chinese(web: Any, who: str) -> None:
    web.login(who)
    web.post("/language", {"lang": "zh_CN"})


def shown(page: str) -> str:
    """The page's text, tags dropped (choices, help and errors are split over elements)."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_a_task_page_shows_its_name_form_choices_and_help_in_chinese(web, desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage", "alex")
    chinese(web, "alex")
    page = text_of(web.get(f"/tasks/{task_id}"))
    assert "<title>分派事件 · processdesk</title>" in page and "<h1>分派事件</h1>" in page
    assert '<h2 id="form-title">分派事件</h2>' in page  # the form's own title
    text = shown(page)
    for words in ("类别", "优先级", "处理组", "分派备注", "P3 - 一般", "人为错误",
                  "已根据影响范围 × 紧急程度矩阵预先设定；如矩阵判断有误，请修改。"):
        assert words in text, words
    # the groups are the directory's, by name (data, not the form's words)
    assert '<option value="NetworkTeam">NetworkTeam</option>' in page
    assert 'placeholder="类别或优先级调整的原因，以及初步发现"' in page
    # the values sent are the form's own
    assert '<option value="network"' in page and 'value="P3"' in page
    assert "Triage incident" not in page and "Assignment group" not in page

    queue = shown(text_of(web.get("/tasks?tab=queue")))  # the group queue: task and process names
    assert "分派事件" in queue and "事件管理" in queue and "Triage incident" not in queue
    claimed = shown(text_of(web.post(f"/tasks/{task_id}/claim", follow_redirects=True)))
    assert "“分派事件”" in claimed and "Triage incident" not in claimed  # the flash names it too
    home = shown(text_of(web.get("/")))  # my tasks
    assert "分派事件" in home
    record = shown(text_of(web.get(f"/tickets/{number}")))
    assert "分派事件" in record

    web.post("/language", {"lang": "en"})
    english = text_of(web.get(f"/tasks/{task_id}"))
    assert "<h1>Triage incident</h1>" in english and "Assignment group" in english and "分派" not in english


def test_a_conditional_error_names_the_field_and_the_choice_in_chinese_and_data_stays_the_source(web, desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    task_id = desk.task_id(number, "investigate", "nina")
    chinese(web, "nina")
    web.post(f"/tasks/{task_id}/claim")
    refused = web.post(f"/tasks/{task_id}", {"outcome": "resolve", "cause_category": "third_party"})
    assert refused.status_code == 303
    text = shown(text_of(web.get(refused.headers["Location"])))
    assert "在以下情况下为必填项： “处理结果”为已解决" in text, text
    assert "Outcome" not in text and "Resolved" not in text
    done = web.post(f"/tasks/{task_id}", {"outcome": "resolve", "cause_category": "third_party",
                                          "resolution_notes": "重启了 VPN 网关"})
    assert done.status_code == 302
    details = desk.record(number)["details"]
    assert details["cause_category"] == "third_party" and details["resolution_notes"] == "重启了 VPN 网关"


def test_a_condition_with_two_choices_and_a_choice_containing_or_is_translated_whole():
    from app import create_app
    from app.errors import ValidationFailed
    from app.services.forms import validate_submission
    from app.web.forms import service_text

    schema = {
        "type": "object",
        "allOf": [{"if": {"properties": {"cause": {"enum": ["vendor", "unknown"]}, "kind": {"const": "laptop"}},
                          "required": ["cause", "kind"]}, "then": {"required": ["notes"]}},
                  {"if": {"properties": {"tested": {"const": False}}, "required": ["tested"]},
                   "else": {"required": ["proof"]}}],
        "properties": {
            "cause": {"type": "string", "title": "Cause", "oneOf": [
                {"const": "vendor", "title": "Third party or vendor"}, {"const": "unknown", "title": "Unknown"}]},
            "kind": {"type": "string", "title": "Kind", "oneOf": [{"const": "laptop", "title": "Laptop"}]},
            "tested": {"type": "boolean", "title": "Tested"},
            "notes": {"type": "string", "title": "Notes"},
            "proof": {"type": "string", "title": "Proof"},
        },
    }
    with pytest.raises(ValidationFailed) as refused:
        validate_submission(schema, None, {"cause": "vendor", "kind": "laptop", "tested": True}, {})
    fields = refused.value.details["fields"]
    assert fields["notes"] == ["is required when “Cause” is Third party or vendor or Unknown and “Kind” is Laptop"]
    assert fields["proof"] == ["is required unless “Tested” is not ticked"]
    words = {"Cause": "原因", "Third party or vendor": "第三方或供应商", "Unknown": "未知", "Kind": "种类",
             "Laptop": "笔记本", "or": "X", "not ticked": "X"}
    with create_app({"TESTING": True}).test_request_context(headers={"Accept-Language": "zh-CN"}):
        text = service_text(fields["notes"][0], lambda source: words.get(source, source))
        assert text == "在以下情况下为必填项： “原因”为第三方或供应商或未知，且“种类”为笔记本"
        unticked = service_text(fields["proof"][0], lambda source: words.get(source, source))
        assert unticked == "除以下情况外为必填项： “Tested”为未勾选"


def test_a_deployed_translation_wins_then_the_pages_catalog_then_the_source(web, desk):
    olga = desk.services.users.get_by_username("olga")
    body = {"Triage incident": "初步分派", "Priority": "优先等级"}
    desk.services.definitions.deploy(olga, [("incident_management.zh_CN.i18n.json",
                                             json.dumps(body, ensure_ascii=False).encode())])
    desk.services.session.commit()
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage", "alex")
    chinese(web, "alex")
    text = shown(text_of(web.get(f"/tasks/{task_id}")))
    assert "初步分派" in text and "优先等级" in text  # the deployed file
    assert "P3 - 一般" in text and "人为错误" in text  # the pages' catalog (labels.FORM_OPTION_TITLES)
    assert "Assignment group" in text and "Triage notes" in text  # no translation: the source


def test_the_start_page_shows_the_process_and_its_form_in_chinese(web, desk):
    chinese(web, "rita")
    page = text_of(web.get("/start/incident_management"))
    text = shown(page)
    assert "报告事件" in text and "流程：事件管理" in text
    for words in ("标题", "描述", "影响范围", "紧急程度", "高 - 工作已中断", "低 - 仅影响一名用户，且有临时解决方法"):
        assert words in text, words
    assert 'value="high"' in page
    sent = web.post("/start/incident_management", {"title": "打印机卡纸", "description": "三楼打印机",
                                                   "category": "hardware", "impact": "low", "urgency": "low"})
    assert sent.status_code == 302
    number = sent.headers["Location"].rsplit("/", 1)[-1]
    record = desk.record(number)
    assert record["category"] == "hardware" and record["title"] == "打印机卡纸"


def test_a_too_long_title_is_refused_in_chinese_on_the_page_and_in_english_by_the_api(web, desk):
    chinese(web, "rita")
    form = {"title": "长" * 201, "description": "三楼打印机", "category": "hardware", "impact": "low", "urgency": "low"}
    refused = web.post("/start/incident_management", form)
    assert refused.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    refused = web.get(refused.headers["Location"])
    text = shown(text_of(refused))
    assert "最多 200 个字符" in text and "characters" not in text
    answer = desk.client.post("/api/v1/instances", json={"process_id": "incident_management", "data": form},
                              headers=desk.auth("rita"))
    assert answer.status_code == 422
    assert answer.get_json()["details"]["fields"]["title"] == ["must be at most 200 characters"]


def test_the_catalog_and_an_items_request_form_show_in_chinese(web, desk):
    chinese(web, "rita")
    catalog = shown(text_of(web.get("/catalog")))
    for words in ("笔记本电脑", "标准笔记本电脑", "每四年更换一次", "行政后勤"):
        assert words in catalog, words
    assert "Standard laptop" not in catalog
    item = text_of(web.get("/catalog/HW-LAPTOP"))
    text = shown(item)
    for words in ("标准笔记本电脑", "交付地点", "键盘布局", "英国", "硬件"):
        assert words in text, words
    assert 'placeholder="楼栋、楼层、工位号"' in item and '<option value="UK">英国</option>' in item
    web.post("/language", {"lang": "en"})
    assert "Standard laptop" in text_of(web.get("/catalog"))


def test_the_task_name_filter_gives_the_task_list_its_translated_names(app, desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage", "alex")
    task = desk.services.tasks.get(desk.services.users.get_by_username("alex"), task_id)
    template = "{{ t|task_name }} / {{ t.process_id|process_name('Incident management') }}"
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert render_template_string(template, t=task) == "分派事件 / 事件管理"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert render_template_string(template, t=task) == "Triage incident / Incident management"


def test_the_process_pages_and_the_audit_filter_name_processes_in_chinese(web, desk):
    """The process list, a process's page and the audit search's process choices name each
    process as the task and record pages do: in the page's language."""
    chinese(web, "ada")
    listing = shown(text_of(web.get("/processes")))
    assert "事件管理" in listing and "服务目录请求" in listing
    assert "Incident management" not in listing and "Catalog request" not in listing
    page = text_of(web.get("/processes/incident_management"))
    assert "<h1>事件管理</h1>" in page and "<title>事件管理 · processdesk</title>" in page
    audit = text_of(web.get("/audit"))
    assert '<option value="incident_management">事件管理</option>' in audit
    assert "Incident management" not in shown(audit)

    web.post("/language", {"lang": "en"})
    assert "<h1>Incident management</h1>" in text_of(web.get("/processes/incident_management"))
    assert "Incident management" in shown(text_of(web.get("/processes")))
    assert '<option value="incident_management">Incident management</option>' in text_of(web.get("/audit"))
