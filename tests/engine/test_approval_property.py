"""A user task's ``approval`` property is yes or no, or the deploy is refused naming the task."""

from __future__ import annotations

import pytest

from app.engine import DefinitionError, ProcessLibrary, SourceFile

DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="sign_off" name="Sign off">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="approval" value="VALUE"/>
        </spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sign_off"/>
    <bpmn:sequenceFlow id="f2" sourceRef="sign_off" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def compile_with(value: str):
    return ProcessLibrary().compile([SourceFile("p.bpmn", DIAGRAM.replace("VALUE", value).encode())])


@pytest.mark.parametrize("value", ["true", "false", " Yes ", "NO", "1", "0"])
def test_yes_and_no_in_any_spelling_deploy(value):
    (process,) = compile_with(value)
    assert [t.approval for t in process.user_tasks] == [value]


@pytest.mark.parametrize("value", ["ture", "", "approve", "2"])
def test_anything_else_is_refused_naming_the_task_and_line(value):
    with pytest.raises(DefinitionError) as caught:
        compile_with(value)
    assert caught.value.details() == {"file": "p.bpmn", "element_id": "sign_off", "line": 6,
                                      "error_type": "invalid_property"}
    assert f"property approval is '{value}'" in caught.value.message
    assert "0, 1, false, no, true, yes" in caught.value.message


def test_a_diagram_stored_before_the_check_does_not_block_other_deploys():
    old = SourceFile("p.bpmn", DIAGRAM.replace("VALUE", "y").encode())
    other = SourceFile("q.bpmn", DIAGRAM.replace("VALUE", "yes").replace('id="p"', 'id="q"').encode())
    compiled = ProcessLibrary().compile([old, other], deploying={"q.bpmn"})
    assert sorted(p.process_id for p in compiled) == ["p", "q"]
    with pytest.raises(DefinitionError):  # deploying it again is checked
        ProcessLibrary().compile([old, other], deploying={"p.bpmn"})


def test_the_same_files_compile_once_and_a_refusal_is_not_remembered():
    files = [SourceFile("p.bpmn", DIAGRAM.replace("VALUE", "no").encode())]
    library = ProcessLibrary()
    first, again = library.compile(files), library.compile(list(files))
    assert first == again and first[0] is again[0]  # remembered: the same compiled process
    assert first is not again  # each caller gets its own list
    other = library.compile(files, deploying={"p.bpmn"})
    assert other[0] is not first[0] and other == first  # other arguments: compiled again, to the same
    broken = [SourceFile("p.bpmn", DIAGRAM.replace("VALUE", "maybe").encode())]
    for _ in range(2):
        with pytest.raises(DefinitionError):
            library.compile(broken)
