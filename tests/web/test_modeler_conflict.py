"""Two owners edit the same process in the modeler: each save carries the version its diagram was
based on (the latest version when the page was drawn), and a save made from a stale page is refused
with 409 instead of silently undoing the newer version."""

from __future__ import annotations

import re
from typing import Any

from tests.http.desk import ROOT
from tests.web.conftest import text_of

BPMN = ROOT / "processes" / "problem_management.bpmn"
SAVE = "/processes/problem_management/save"


def task_names() -> list[str]:
    return re.findall(r'<bpmn:userTask id="[^"]+" name="([^"]+)"', BPMN.read_text())


def renamed(xml: str, old: str, new: str) -> str:
    assert f'name="{old}"' in xml
    return xml.replace(f'name="{old}"', f'name="{new}"', 1)


def base_version(page: Any) -> int:
    match = re.search(r'data-base-version="(\d+)"', text_of(page))
    assert match, "the editor's section carries no data-base-version"
    return int(match.group(1))


def latest(services: Any) -> Any:
    services.session.expire_all()  # the requests share the test's connection: read their rows again
    return services.definitions.latest("problem_management")


def test_a_save_from_a_stale_page_is_refused_and_keeps_the_newer_version(web_factory, desk, services):
    first, second = task_names()[:2]
    olga, ada = web_factory(), web_factory()
    olga.login("olga")
    ada.login("ada")
    olga_base = base_version(olga.get("/processes/problem_management"))
    ada_base = base_version(ada.get("/processes/problem_management"))
    assert olga_base == ada_base == 1

    # ada renames a task and saves: v2
    ada_xml = renamed(BPMN.read_text(), first, first + " (ada)")
    saved = ada.post(SAVE, {"xml": ada_xml, "base_version": str(ada_base)})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["changed"] is True and saved.get_json()["latest"] == 2

    # olga, on her stale page, renames another task: refused, naming the conflict
    olga_xml = renamed(BPMN.read_text(), second, second + " (olga)")
    refused = olga.post(SAVE, {"xml": olga_xml, "base_version": str(olga_base)})
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["error"] == "conflict"
    details = body["details"]
    assert details["process_id"] == "problem_management"
    assert details["base_version"] == 1 and details["latest_version"] == 2
    assert details["deployed_by"] == "ada" and details["deployed_at"]
    assert "version 1" in body["message"] and "version 2" in body["message"] and "ada" in body["message"]

    # nothing was deployed: v2 is ada's diagram
    row = latest(services)
    assert row.version == 2 and f'name="{first} (ada)"' in row.bpmn_xml and f"{second} (olga)" not in row.bpmn_xml

    # reloaded, olga's page is based on v2 and her save of the same change goes through
    assert base_version(olga.get("/processes/problem_management")) == 2
    again = olga.post(SAVE, {"xml": renamed(ada_xml, second, second + " (olga)"), "base_version": "2"})
    assert again.status_code == 200 and again.get_json()["latest"] == 3
    row = latest(services)
    assert row.version == 3, row.version
    assert f"{first} (ada)" in row.bpmn_xml and f"{second} (olga)" in row.bpmn_xml


def test_a_save_from_a_stale_page_that_changes_nothing_is_no_conflict(web_factory, desk, services):
    first = task_names()[0]
    ada, olga = web_factory(), web_factory()
    ada.login("ada")
    olga.login("olga")
    ada_xml = renamed(BPMN.read_text(), first, first + " (ada)")
    assert ada.post(SAVE, {"xml": ada_xml, "base_version": "1"}).get_json()["latest"] == 2
    # olga's diagram is already the latest one (she made the same edit): nothing to undo, nothing made
    same = olga.post(SAVE, {"xml": ada_xml, "base_version": "1"})
    assert same.status_code == 200 and same.get_json()["changed"] is False and same.get_json()["versions"] == [1, 2]
    # an unedited diagram saved from the latest version keeps the latest version
    unchanged = olga.post(SAVE, {"xml": ada_xml, "base_version": "2"})
    assert unchanged.status_code == 200 and unchanged.get_json()["changed"] is False
    assert latest(services).version == 2


def test_editing_an_older_version_is_based_on_the_latest_one(web, desk, services):
    """The editor may show an older version (?version=1) to restore it: the save is based on the
    latest version the page knew, so it is no conflict."""
    first = task_names()[0]
    web.login("olga")
    assert web.post(SAVE, {"xml": renamed(BPMN.read_text(), first, first + " (v2)"), "base_version": "1"}
                    ).get_json()["latest"] == 2
    page = web.get("/processes/problem_management?version=1")
    assert 'data-xml-url="/processes/problem_management/diagram.xml?version=1"' in text_of(page)
    assert base_version(page) == 2
    restored = web.post(SAVE, {"xml": BPMN.read_text(), "base_version": "2"})
    assert restored.status_code == 200 and restored.get_json()["latest"] == 3


def test_a_bad_base_version_is_refused(web, desk, services):
    web.login("olga")
    for bad in ("zero", "0", "-1", "99999999999999999999"):
        refused = web.post(SAVE, {"xml": BPMN.read_text(), "base_version": bad})
        assert refused.status_code == 422, bad
        assert refused.get_json()["details"]["field"] == "base_version"
    assert latest(services).version == 1


def test_the_conflict_message_and_actions_are_on_the_page_in_both_languages(web, desk):
    web.login("olga")
    body = text_of(web.get("/processes/problem_management"))
    assert 'data-msg-conflict="Not saved: {who} saved version {latest} at {when}, after you opened version {base}.' in body
    assert 'data-msg-heading="Diagram editor (version {version})"' in body
    assert 'id="modeler-download"' in body and 'download="problem_management.bpmn"' in body
    assert 'id="modeler-reload" href="/processes/problem_management"' in body
    web.post("/language", {"lang": "zh_CN", "next": "/processes/problem_management"})
    chinese = text_of(web.get("/processes/problem_management"))
    assert "现在保存会撤销那次修改" in chinese and "下载你的流程图" in chinese and "重新加载最新版本" in chinese
    assert 'data-msg-heading="流程图编辑器（版本 {version}）"' in chinese
