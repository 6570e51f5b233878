"""A task's instructions and documentation in the reader's language: the process's translation
file translates them like its other texts (the instructions template whole, by a template the
task's data fills in alike); a translation that fails to render gives way to the source; the
deploy refuses an entry that is no text of the process; without a language (the API) the
source texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import ValidationFailed
from tests.conftest import FIXTURES

RECORDS = Path(FIXTURES / "records")
INSTRUCTIONS = "Work on **{{ title }}** for {{ work_group }}."
DOCUMENTATION = "Check the mailbox first."


def files(instructions: str = INSTRUCTIONS) -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(RECORDS.iterdir()):
        content = path.read_bytes()
        if path.name == "mini_ticket.bpmn":
            content = content.replace(
                b'<bpmn:userTask id="work" name="Work on it">\n      <bpmn:extensionElements>',
                b'<bpmn:userTask id="work" name="Work on it">\n      <bpmn:documentation>' + DOCUMENTATION.encode()
                + b"</bpmn:documentation>\n      <bpmn:extensionElements>\n        <spiffworkflow:instructionsForEndUser>"
                + instructions.encode() + b"</spiffworkflow:instructionsForEndUser>")
            assert b"instructionsForEndUser" in content
        out.append((path.name, content))
    return out


def translation(entries: dict[str, str]) -> tuple[str, bytes]:
    return "mini_ticket.zh_CN.i18n.json", json.dumps(entries, ensure_ascii=False).encode()


@pytest.fixture()
def olga(services, users):
    return users["olga"]


def open_task(services, users):
    instance = services.instances.start_process(users["rita"], "mini_ticket",
                                                {"title": "Mail is down", "work_group": "ServiceDesk"})
    services.session.commit()
    return services.instances.open_tasks(instance)[0]


def test_the_instructions_and_documentation_show_in_the_readers_language(services, users, olga):
    services.definitions.deploy(olga, [*files(), translation({
        INSTRUCTIONS: "为 {{ work_group }} 处理 **{{ title }}**。", DOCUMENTATION: "请先检查邮箱。"})])
    services.session.commit()
    task = open_task(services, users)
    chinese = services.tasks.detail(users["alex"], task.id, "zh_CN")
    assert chinese["instructions"] == "<p>为 ServiceDesk 处理 <strong>Mail is down</strong>。</p>\n"
    assert chinese["documentation"] == "请先检查邮箱。"
    for english in (services.tasks.detail(users["alex"], task.id, "en"), services.tasks.detail(users["alex"], task.id)):
        assert english["instructions"] == "<p>Work on <strong>Mail is down</strong> for ServiceDesk.</p>\n"
        assert english["documentation"] == DOCUMENTATION


def test_without_a_translation_of_them_the_source_texts_show(services, users, olga):
    services.definitions.deploy(olga, [*files(), translation({"Work on it": "处理问题"})])
    services.session.commit()
    chinese = services.tasks.detail(users["alex"], open_task(services, users).id, "zh_CN")
    assert chinese["instructions"] == "<p>Work on <strong>Mail is down</strong> for ServiceDesk.</p>\n"
    assert chinese["documentation"] == DOCUMENTATION


def test_a_translation_that_fails_to_render_gives_way_to_the_source(services, users, olga):
    services.definitions.deploy(olga, [*files(), translation({INSTRUCTIONS: "处理 {{ title }"})])
    services.session.commit()
    chinese = services.tasks.detail(users["alex"], open_task(services, users).id, "zh_CN")
    assert chinese["instructions"] == "<p>Work on <strong>Mail is down</strong> for ServiceDesk.</p>\n"


def test_an_entry_that_is_no_text_of_the_process_is_refused(services, olga):
    with pytest.raises(ValidationFailed) as refused:
        services.definitions.deploy(olga, [*files(), translation({INSTRUCTIONS + " ": "处理"})])
    assert refused.value.details["entry"] == INSTRUCTIONS + " "
