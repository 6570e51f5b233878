"""A diagram whose steps cannot all be reached from its start, or that leaves a path without an
end, is refused at deploy naming the element and its line (app/engine/library.py
``_check_connected``): the modeler let a process owner delete flows and deploy a version that
completed every new instance at once."""

from __future__ import annotations

import pytest

from app.engine import DefinitionError, ProcessLibrary, SourceFile

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
"""
TAIL = """  </bpmn:process>
</bpmn:definitions>
"""

#: start -> triage -> gateway -> (work | done); work has a timer boundary that escalates to done;
#: a link pair jumps from work's path to the end; an event subprocess needs no flows.
DIAGRAM = HEAD + """    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="triage" name="Triage"/>
    <bpmn:exclusiveGateway id="gw" default="to_done"/>
    <bpmn:userTask id="work" name="Work"/>
    <bpmn:boundaryEvent id="late" attachedToRef="work" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:manualTask id="escalate" name="Escalate"/>
    <bpmn:intermediateThrowEvent id="jump"><bpmn:linkEventDefinition name="finish"/></bpmn:intermediateThrowEvent>
    <bpmn:intermediateCatchEvent id="land"><bpmn:linkEventDefinition name="finish"/></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="done"/>
    <bpmn:endEvent id="escalated"/>
    <bpmn:subProcess id="on_message" triggeredByEvent="true">
      <bpmn:startEvent id="msg_start" isInterrupting="false"/>
      <bpmn:endEvent id="msg_end"/>
      <bpmn:sequenceFlow id="m1" sourceRef="msg_start" targetRef="msg_end"/>
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="triage"/>
    <bpmn:sequenceFlow id="f2" sourceRef="triage" targetRef="gw"/>
    <bpmn:sequenceFlow id="to_work" sourceRef="gw" targetRef="work">
      <bpmn:conditionExpression>needs_work</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_done" sourceRef="gw" targetRef="done"/>
    <bpmn:sequenceFlow id="f3" sourceRef="work" targetRef="jump"/>
    <bpmn:sequenceFlow id="f4" sourceRef="land" targetRef="done"/>
    <bpmn:sequenceFlow id="f5" sourceRef="late" targetRef="escalate"/>
    <bpmn:sequenceFlow id="f6" sourceRef="escalate" targetRef="escalated"/>
""" + TAIL


def compile_one(xml: str) -> None:
    ProcessLibrary().compile([SourceFile("p.bpmn", xml.encode())])


def refusal(old: str, new: str) -> DefinitionError:
    assert old in DIAGRAM
    with pytest.raises(DefinitionError) as caught:
        compile_one(DIAGRAM.replace(old, new, 1))
    return caught.value


def test_a_connected_diagram_with_a_boundary_event_links_and_an_event_subprocess_compiles():
    compile_one(DIAGRAM)


def test_a_step_no_flow_leads_to_is_refused_naming_it_and_its_line():
    # the flow from the start to triage deleted: the start is left without a way out, and triage
    # (first in the file) cannot be reached
    error = refusal('    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="triage"/>\n', "")
    assert error.message == "userTask 'Triage' (triage) cannot be reached from the start event: no sequence flow leads to it"
    assert error.details() == {"file": "p.bpmn", "element_id": "triage", "element_name": "Triage", "line": 5,
                               "error_type": "unreachable"}


def test_a_step_reached_only_from_an_unreachable_one_is_refused_too():
    error = refusal('<bpmn:sequenceFlow id="to_work" sourceRef="gw"', '<bpmn:sequenceFlow id="to_work" sourceRef="land"')
    assert error.details()["element_id"] == "work" and error.details()["error_type"] == "unreachable"


def test_a_boundary_event_of_an_unreachable_step_is_unreachable():
    error = refusal('attachedToRef="work"', 'attachedToRef="nothing_here"')
    assert error.details()["element_id"] == "late"


def test_a_link_catch_without_its_throw_is_unreachable():
    error = refusal('<bpmn:linkEventDefinition name="finish"/></bpmn:intermediateCatchEvent>',
                    '<bpmn:linkEventDefinition name="other"/></bpmn:intermediateCatchEvent>')
    assert error.details()["element_id"] == "land"


def test_a_step_left_without_a_way_out_is_refused():
    error = refusal('    <bpmn:sequenceFlow id="f6" sourceRef="escalate" targetRef="escalated"/>\n', "")
    # the end event it led to is now unreachable; the step itself is found first, in file order
    assert error.details()["error_type"] in {"dead_end", "unreachable"}
    error = refusal('    <bpmn:sequenceFlow id="f6" sourceRef="escalate" targetRef="escalated"/>\n',
                    '    <bpmn:sequenceFlow id="f6" sourceRef="late" targetRef="escalated"/>\n')
    assert error.message == ("manualTask 'Escalate' (escalate) has no outgoing sequence flow: connect it to the next "
                             "step or to an end event")
    assert error.details() == {"file": "p.bpmn", "element_id": "escalate", "element_name": "Escalate", "line": 11,
                               "error_type": "dead_end"}


def test_an_unconnected_step_inside_a_subprocess_is_refused():
    error = refusal('      <bpmn:sequenceFlow id="m1" sourceRef="msg_start" targetRef="msg_end"/>\n', "")
    assert error.details()["element_id"] in {"msg_start", "msg_end"}
