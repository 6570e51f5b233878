"""Translation files of process content (``<scope>.<locale>.i18n.json``), through the API.

A process owner deploys them beside the content they translate; the deploy checks each one (a
known locale, a JSON object of strings, entries whose source text the content has) and answers
422 naming the file and the entry. A translation makes no new version, and every shipped process
and the shipped catalog come with a complete Simplified Chinese one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.content_texts import form_texts
from tests.http.desk import ROOT, Desk
from tests.http.helpers import assert_error, upload


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def deploy(desk: Desk, name: str, body: Any, who: str = "olga") -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return upload(desk.client, desk.auth(who), [(name, content)])


def versions(desk: Desk, process_id: str) -> int:
    return len(desk.services.definitions.versions(process_id))


def test_a_translation_deploys_without_a_new_version_and_is_read_back(desk):
    before = versions(desk, "incident_management")
    body = {"Triage incident": "事件初步分派", "Outcome": "结论"}
    response = deploy(desk, "incident_management.zh_CN.i18n.json", body)
    assert response.status_code == 200, response.get_json()  # 200: no version was created
    assert all(not p["created"] for p in response.get_json()["processes"])
    desk.services.session.expire_all()
    assert versions(desk, "incident_management") == before
    assert desk.services.definitions.translations("incident_management", "zh_CN") == body
    assert desk.services.definitions.translations("incident_management", "en") == {}
    assert desk.services.definitions.translations("no_such_process", "zh_CN") == {}


@pytest.mark.parametrize(("name", "body", "entry", "words"), [
    ("incident_management.fr.i18n.json", {"Outcome": "Résultat"}, None, "unknown locale 'fr'"),
    ("incident_management.i18n.json", {"Outcome": "结果"}, None, "<process_id>.<locale>.i18n.json"),
    ("incident_management.zh_CN.I18N.json", {"Outcome": "结果"}, None, "in lower case"),  # never looked up
    ("incident_management.zh_CN.i18n.json", ["Outcome", "结果"], None, "JSON object"),
    ("incident_management.zh_CN.i18n.json", b'{"Outcome": "\xff"}', None, "not a UTF-8 JSON file"),
    ("incident_management.zh_CN.i18n.json", b"[" * 100_000, None, "not a UTF-8 JSON file"),
    ("incident_management.zh_CN.i18n.json", {"Outcome": ["结果"]}, "Outcome", "non-empty string"),
    ("incident_management.zh_CN.i18n.json", {"Outcome": " "}, "Outcome", "non-empty string"),
    ("incident_management.zh_CN.i18n.json", {"Outcome": "结\x00果"}, "Outcome", "control character"),
    ("incident_management.zh_CN.i18n.json", b'{"Outcome": "a", "Outcome": "b"}', "Outcome", "appears twice"),
    # words of another process's form, and a title with a changed letter, are no text of this one
    ("incident_management.zh_CN.i18n.json", {"Outcome": "结果", "Rollback plan": "回退计划"}, "Rollback plan",
     "no text of the content"),
    ("incident_management.zh_CN.i18n.json", {"triage incident": "分派"}, "triage incident", "no text of the content"),
    ("no_such_process.zh_CN.i18n.json", {"Outcome": "结果"}, None, "no process 'no_such_process'"),
    ("catalog.zh_CN.i18n.json", {"Standard laptop": "笔记本", "Triage incident": "分派"}, "Triage incident",
     "no text of the content"),
])
def test_a_broken_translation_is_refused_naming_the_file_and_the_entry(desk, name, body, entry, words):
    before = desk.services.definitions.translations("incident_management", "zh_CN")
    error = assert_error(deploy(desk, name, body), 422, "invalid_definition")
    assert error["details"]["file"] == name and words in error["message"], error
    assert error["details"].get("entry") == entry
    desk.services.session.expire_all()
    assert desk.services.definitions.translations("incident_management", "zh_CN") == before


def test_the_catalog_translation_is_checked_against_the_catalog_and_its_request_forms(desk):
    body = {"Laptops": "手提电脑", "Standard laptop": "普通笔记本", "Keyboard layout": "键盘"}
    assert deploy(desk, "catalog.zh_CN.i18n.json", body).status_code == 200
    assert desk.services.definitions.translations("catalog", "zh_CN") == body


def test_a_process_page_deploys_its_own_translation_only(desk):
    definitions = desk.services.definitions
    olga = desk.services.users.get_by_username("olga")
    own = ("problem_management.zh_CN.i18n.json", json.dumps({"Verify fix": "核实修复"}).encode())
    definitions.deploy(olga, [own], only_process="problem_management")
    assert definitions.translations("problem_management", "zh_CN") == {"Verify fix": "核实修复"}
    other = ("incident_management.zh_CN.i18n.json", json.dumps({"Outcome": "结果"}).encode())
    with pytest.raises(ValidationFailed) as refused:
        definitions.deploy(olga, [other], only_process="problem_management")
    assert refused.value.details["file"] == other[0] and "not a file of the process" in refused.value.message


def test_only_process_owners_deploy_translations(desk):
    assert_error(deploy(desk, "incident_management.zh_CN.i18n.json", {"Outcome": "结果"}, who="alex"), 403)


def test_the_api_keeps_the_source_texts_whatever_the_language(desk):
    number = desk.start("rita", "incident_management", {
        "title": "VPN down", "description": "x", "category": "network", "impact": "low", "urgency": "low"})
    task_id = desk.task_id(number["data"]["record_number"], "triage", "alex")
    task = desk.client.get(f"/api/v1/tasks/{task_id}", headers={**desk.auth("alex"), "Accept-Language": "zh-CN"})
    body = task.get_json()
    assert body["name"] == "Triage incident" and body["form_schema"]["properties"]["priority"]["title"] == "Priority"


# -- the shipped translations ------------------------------------------------------------------------


def _shipped_texts() -> dict[str, set[str]]:
    """The texts of each shipped process (and the catalog), read the way the deploy reads them."""
    from app.services.content_texts import notice_texts, process_texts

    found: dict[str, set[str]] = {}
    for bpmn in sorted((ROOT / "processes").glob("*.bpmn")):
        process_id = bpmn.stem
        compiled = [p for p in _compiled() if p.process_id == process_id]
        [process] = compiled
        starts = [json.loads(path.read_text()) for path in (ROOT / "forms" / f"{process_id}.start.json",
                                                             ROOT / "forms" / f"{process_id}.start.ui.json")
                  if path.exists()]
        found[process_id] = process_texts(process.name, (t.name for t in process.user_tasks),
                                          [*process.forms.values(), *starts], process.element_names,
                                          process.task_texts, notice_texts(process.literal_params))
    catalog = json.loads((ROOT / "processes" / "catalog.json").read_text())
    texts = {item[key] for item in catalog["items"] for key in ("name", "description")}

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            texts.add(node["name"])
            walk(node.get("children", []))

    walk(catalog["categories"])
    for item in catalog["items"]:
        for name in (item["form"], item["form"][:-5] + ".ui.json"):
            path = ROOT / "forms" / name
            if path.exists():
                texts.update(form_texts(json.loads(path.read_text())))
    found["catalog"] = texts
    return found


def _compiled() -> list[Any]:
    from app.engine import ProcessLibrary, SourceFile

    files = [SourceFile(p.name, p.read_bytes()) for folder in ("processes", "forms")
             for p in sorted((ROOT / folder).iterdir())
             if p.suffix in (".bpmn", ".dmn", ".json") and p.name != "catalog.json"]
    return ProcessLibrary().compile(files)


def test_every_shipped_text_has_a_simplified_chinese_translation():
    shipped = _shipped_texts()
    assert set(shipped) == {"incident_management", "change_enablement", "problem_management", "catalog_request",
                            "catalog"}
    for scope, texts in shipped.items():
        if scope == "catalog":
            translated = json.loads((ROOT / "processes" / "catalog.json").read_text())["translations"]["zh_CN"]
        else:
            translated = json.loads((ROOT / "processes" / f"{scope}.zh_CN.i18n.json").read_text())
        missing = sorted(texts - set(translated))
        assert not missing, f"{scope}: no zh_CN translation of {missing}"
        assert not set(translated) - texts  # the deploy refuses these anyway
        assert all(text.strip() for text in translated.values())


def test_the_shipped_translations_of_task_instructions_render_as_their_source_does():
    """Each instructions template's translation is a template too: filled in with the same data,
    it renders (no error notice), with the data's values where the source has them."""
    from app.services.instructions import render_instructions

    data = {"title": "VPN down", "description": "Cannot connect", "requester": "rita", "quantity": 2, "cost": 950,
            "catalog": {"name": "Standard laptop", "target_hours": 24}, "revision_count": 2, "reopen_count": 3,
            "approvers": ["amy", "carl"], "related_incidents": ["INC-000001"], "fix_change": "CHG-000002"}
    checked = 0
    for process in _compiled():
        translated = json.loads((ROOT / "processes" / f"{process.process_id}.zh_CN.i18n.json").read_text())
        for text in process.task_texts:
            source = render_instructions(text, data)
            shown = render_instructions(translated[text], data)
            assert "instructions-error" not in source + shown, (process.process_id, text[:60], shown)
            for value in ("VPN down", "rita", "Standard laptop", "CHG-000002"):
                assert (value in source) == (value in shown), (process.process_id, text[:60], value)
            checked += 1
    assert checked >= 20



def test_the_shipped_translations_of_notify_templates_fill_in_as_their_source_does():
    """Each notify step's subject and body template has a translation that is a template too:
    filled in with the same data (with and without the optional values), it renders, with the
    data's values where the source has them."""
    from app.services.content_texts import notice_texts
    from app.services.instructions import render_text

    full = {"title": "VPN down", "description": "Cannot connect", "requester": "rita", "record_number": "INC-000007",
            "implementer": "ivan", "pending_reason": "Send a photo", "emergency_approval_window": "4 hours",
            "auto_close_after": "3 days"}
    bare = {**full, "record_number": None, "implementer": None, "pending_reason": "  "}
    checked = 0
    for process in _compiled():
        translated = json.loads((ROOT / "processes" / f"{process.process_id}.zh_CN.i18n.json").read_text())
        for text in notice_texts(process.literal_params):
            for data in (full, bare):
                source, shown = render_text(text, data), render_text(translated[text], data)
                for value in ("VPN down", "Cannot connect", "rita", "INC-000007", "ivan", "Send a photo", "4 hours",
                              "3 days"):
                    assert (value in source) == (value in shown), (process.process_id, text[:60], value)
                assert "{{" not in shown and "{%" not in shown
            checked += 1
    assert checked == 14  # the subjects and bodies of the shipped notify steps
