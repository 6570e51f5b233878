"""A sequence flow to an element that is not there is refused naming the flow, the end and the line."""

from __future__ import annotations

import pytest

from app.engine import DefinitionError, ProcessLibrary, SourceFile

DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="ut" name="Do it"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="ut"/>
    <bpmn:sequenceFlow id="f2" sourceRef="ut" targetRef="sub"/>
    <bpmn:subProcess id="sub">
      <bpmn:startEvent id="sub_start"/>
      <bpmn:endEvent id="sub_end"/>
      <bpmn:sequenceFlow id="f3" sourceRef="sub_start" targetRef="sub_end"/>
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="f4" sourceRef="sub" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def compile_one(xml: str) -> None:
    ProcessLibrary().compile([SourceFile("p.bpmn", xml.encode())])


def test_the_intact_diagram_compiles():
    compile_one(DIAGRAM)


@pytest.mark.parametrize(("old", "new", "flow", "said", "line"), [
    ('id="f2" sourceRef="ut" targetRef="sub"', 'id="f2" sourceRef="ut" targetRef="nowhere"', "f2",
     "sequence flow 'f2': its targetRef names 'nowhere', which is no element of p", 8),
    ('id="f1" sourceRef="start"', 'id="f1" sourceRef="f2"', "f1",
     "sequence flow 'f1': its sourceRef names 'f2', which is no element of p", 7),
    # a subprocess's flows join its own elements only
    ('targetRef="sub_end"', 'targetRef="end"', "f3",
     "sequence flow 'f3': its targetRef names 'end', which is no element of sub", 12),
    ('id="f1" sourceRef="start" ', 'id="f1" ', "f1", "sequence flow 'f1': its sourceRef has none", 7),
])
def test_a_dangling_flow_is_named_with_its_line(old, new, flow, said, line):
    assert old in DIAGRAM
    with pytest.raises(DefinitionError) as caught:
        compile_one(DIAGRAM.replace(old, new, 1))
    assert caught.value.message == said
    assert caught.value.details() == {"file": "p.bpmn", "element_id": flow, "line": line, "error_type": "dangling_flow"}
