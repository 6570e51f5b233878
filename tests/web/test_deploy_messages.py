"""A diagram the deploy refuses is refused in the page's language (app/web/deploy_messages.py):
the engine and the definition service give each sentence's kind and values, the process pages
say it again in their own words; the API keeps the English sentence. What the diagram itself says
(ids, names, code) and other code's reasons (the script rules, SpiffWorkflow) stay as written."""

from __future__ import annotations

import io
from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.forms import FormMessage
from app.web.deploy_messages import deploy_message
from tests.http.desk import ROOT

BPMN = ROOT / "processes" / "incident_management.bpmn"
SAVE = "/processes/incident_management/save"


def changed(old: str, new: str) -> str:
    xml = BPMN.read_text()
    assert xml.count(old) >= 1, old
    return xml.replace(old, new, 1)


def saved(web: Any, xml: str, language: str) -> dict[str, Any]:
    web.post("/language", {"lang": language})
    answer = web.post(SAVE, {"xml": xml})
    assert answer.status_code == 422, answer.get_data(as_text=True)[:300]
    return dict(answer.get_json())


def test_a_refused_script_is_said_in_chinese_on_the_page_and_in_english_by_the_api(web, desk, services):
    xml = changed("<bpmn:script>reopened = False", "<bpmn:script>import os\nreopened = False")
    web.login("olga")
    english = saved(web, xml, "en")
    assert english["details"]["error_type"] == "script_rule"
    assert english["message"].startswith("The script of “") and "is refused: " in english["message"]
    chinese = saved(web, xml, "zh_CN")
    assert "”的脚本被拒绝：" in chinese["message"] and "（脚本第 1 行）" in chinese["message"], chinese["message"]
    assert "The script of" not in chinese["message"]
    # the API says what it always said, in English
    answer = desk.client.post("/api/v1/definitions", headers=desk.auth("olga"), content_type="multipart/form-data",
                              data={"files": [(io.BytesIO(xml.encode()), "incident_management.bpmn")]})
    assert answer.status_code == 422 and answer.get_json()["message"].startswith("script of '"), answer.get_json()
    assert services.definitions.latest("incident_management").version == 1


def test_a_refused_condition_and_an_unknown_operation_read_in_chinese(web, desk, services):
    web.login("olga")
    condition = saved(web, changed("<bpmn:conditionExpression>raise_problem</bpmn:conditionExpression>",
                                   "<bpmn:conditionExpression>__import__('os')</bpmn:conditionExpression>"),
                      "zh_CN")
    assert "的条件被拒绝：" in condition["message"], condition["message"]
    operation = saved(web, changed('<spiffworkflow:serviceTaskOperator id="notify"',
                                   '<spiffworkflow:serviceTaskOperator id="notfy"'), "zh_CN")
    assert operation["message"].startswith("未知的服务操作“notfy”；已知的操作：") and "notify" in operation["message"]
    assert services.definitions.latest("incident_management").version == 1


def test_a_timer_beyond_the_limit_reads_in_chinese(web, desk, services):
    web.login("olga")
    timer = saved(web, changed("<bpmn:timeDuration>customer_wait_limit</bpmn:timeDuration>",
                               "<bpmn:timeDuration>\"P99Y\"</bpmn:timeDuration>"), "zh_CN")
    assert timer["details"]["error_type"] == "timer_limit"
    # the expression as the diagram writes it; the limit's reason is the timer rules' (English)
    assert timer["message"].startswith('计时器表达式 "P99Y" 被拒绝：') and "10 years" in timer["message"]


MESSAGES = [
    (FormMessage("x", "missing_process", process="child", close=["child_flow"], call="call_child"),
     "调用活动“call_child”调用的流程“child”既未部署也未上传（calledElement 应为已部署或已上传的 .bpmn 文件中某个可执行流程的 ID）。"
     " 您是否指的是 “child_flow”？",
     "The call activity “call_child” calls the process “child”, which is neither deployed nor uploaded "
     "(calledElement names the id of an executable process in a deployed or uploaded .bpmn file). "
     "Did you mean “child_flow”?"),
    (FormMessage("x", "missing_process", process="child", close=[]), "被调用的流程“child”既未部署也未上传。",
     "The called process “child” is neither deployed nor uploaded."),
    (FormMessage("x", "dangling_flow", flow="f9", end="targetRef", ref="gone", scope="p1"),
     "顺序流“f9”：其 targetRef 指向“gone”，但它不是 p1 中的元素。",
     "The sequence flow “f9”: its targetRef names “gone”, which is no element of p1."),
    (FormMessage("x", "dangling_flow", flow="f9", end="sourceRef", ref=None, scope="p1"),
     "顺序流“f9”缺少 sourceRef。", "The sequence flow “f9” has no sourceRef."),
    (FormMessage("x", "script_rule", cell="os.system('x')", reason="calls are refused"),
     "DMN 单元格“os.system('x')”被拒绝：calls are refused", "The DMN cell “os.system('x')” is refused: calls are refused"),
    (FormMessage("x", "script_rule", what="parameter 'to'", element="Notify", reason="bad", script_line=None),
     "“Notify”的参数“to”被拒绝：bad", "The parameter “to” of “Notify” is refused: bad"),
    (FormMessage("x", "invalid_xml", reason="Opening and ending tag mismatch"),
     "该文件不是有效的定义：Opening and ending tag mismatch", "The file is not a valid definition: Opening and ending tag mismatch"),
    (FormMessage("x", "engine_refused", reason="Multiple outgoing flows without a gateway"),
     "引擎无法运行此流程图：Multiple outgoing flows without a gateway",
     "The engine cannot run this diagram: Multiple outgoing flows without a gateway"),
    (FormMessage("x", "no_executable_process", file="a.bpmn"),
     "a.bpmn 中没有可执行的流程：流程图至少需要一个可执行的流程（isExecutable=\"true\"，或不写 isExecutable 属性）。",
     "No executable process in a.bpmn: a diagram needs at least one process that is executable "
     "(isExecutable=\"true\", or no isExecutable attribute)."),
]


@pytest.mark.parametrize("message, chinese, english", MESSAGES)
def test_each_kind_is_said_from_its_parts(app, message, chinese, english):
    err = ValidationFailed(message, code="invalid_definition")
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert deploy_message(err) == chinese
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert deploy_message(err) == english


def test_a_sentence_without_its_parts_or_kind_is_the_apis(app):
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert deploy_message(ValidationFailed(FormMessage("as the API says", "dangling_flow", flow="f1"))) == "as the API says"
        assert deploy_message(ValidationFailed(FormMessage("as said", "no_such_kind", a=1))) == "as said"
        assert deploy_message(ValidationFailed("plain English")) == "plain English"
