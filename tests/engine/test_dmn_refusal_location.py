"""A DMN cell refused by the script rules is reported against the DMN file it is in, with its
line, like a DMN syntax error: never the BPMN file of the business rule task, even when other
files use the same cell ids (hand-written ids such as ``r1o`` repeat from table to table)."""

from __future__ import annotations

import pytest

from app.engine import DefinitionError, ProcessLibrary, SourceFile

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs_{process}" targetNamespace="http://processdesk.example/bpmn">
  <bpmn:process id="{process}" name="Rule flow {process}" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide" />
    <bpmn:businessRuleTask id="decide" name="Decide">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>{decision}</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="{end}" />
    <bpmn:endEvent id="{end}" />
  </bpmn:process>
</bpmn:definitions>
"""

DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs_{decision}" name="Rule"
             namespace="http://processdesk.example/dmn">
  <decision id="{decision}" name="Rule {decision}">
    <decisionTable id="table" hitPolicy="FIRST">
      <input id="in1" label="Impact">
        <inputExpression id="in1e" typeRef="string"><text>{expression}</text></inputExpression>
      </input>
      <output id="out1" label="Priority" name="priority" typeRef="string" />
      <rule id="r1">
        <inputEntry id="r1i"><text>{entry}</text></inputEntry>
        <outputEntry id="r1o"><text>{output}</text></outputEntry>
      </rule>
      <rule id="r2">
        <inputEntry id="r2i"><text>-</text></inputEntry>
        <outputEntry id="r2o"><text>"P4"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""

EVIL = "().__class__.__name__"


def dmn(decision: str, *, expression: str = "impact", entry: str = '"high"', output: str = '"P1"') -> str:
    return DMN.format(decision=decision, expression=expression, entry=entry, output=output)


def line_of(text: str, element_id: str) -> int:
    return text[: text.index(f'id="{element_id}"')].count("\n") + 1


def refusal(files: list[tuple[str, str]]) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        ProcessLibrary().compile([SourceFile(name, text.encode()) for name, text in files])
    return info.value


def two_flows(bad_dmn: str, *, first_end: str = "end") -> list[tuple[str, str]]:
    """Two processes, each with a decision; both DMN files use the same cell ids."""
    return [("alpha.bpmn", BPMN.format(process="alpha", decision="alpha_rule", end=first_end)),
            ("alpha_rule.dmn", bad_dmn),
            ("beta.bpmn", BPMN.format(process="beta", decision="beta_rule", end="end")),
            ("beta_rule.dmn", dmn("beta_rule"))]


@pytest.mark.parametrize(("cell", "element_id", "bad"), [
    ("output", "r1o", {"output": EVIL}),
    ("input entry", "r1i", {"entry": "open('/etc/passwd')"}),
    ("input expression", "in1", {"expression": "__import__('os')"}),
])
def test_a_refused_cell_names_its_dmn_file_and_line(cell: str, element_id: str, bad: dict[str, str]):
    bad_dmn = dmn("alpha_rule", **bad)
    err = refusal(two_flows(bad_dmn))
    assert err.error_type == "script_rule", vars(err)
    assert (err.file, err.element_id, err.line) == ("alpha_rule.dmn", element_id, line_of(bad_dmn, element_id)), vars(err)


def test_the_bad_cell_of_the_second_dmn_file_is_found_there():
    bad_dmn = dmn("beta_rule", output=EVIL)
    files = [("alpha.bpmn", BPMN.format(process="alpha", decision="alpha_rule", end="end")),
             ("alpha_rule.dmn", dmn("alpha_rule")),
             ("beta.bpmn", BPMN.format(process="beta", decision="beta_rule", end="end")),
             ("beta_rule.dmn", bad_dmn)]
    err = refusal(files)
    assert (err.file, err.element_id, err.line) == ("beta_rule.dmn", "r1o", line_of(bad_dmn, "r1o")), vars(err)


def test_a_bpmn_element_with_the_cell_id_is_not_blamed():
    # the BPMN file of the business rule task happens to have an element with the cell's id
    bad_dmn = dmn("alpha_rule", output=EVIL)
    files = [("alpha.bpmn", BPMN.format(process="alpha", decision="alpha_rule", end="r1o")),
             ("alpha_rule.dmn", bad_dmn)]
    err = refusal(files)
    assert (err.file, err.element_id, err.line) == ("alpha_rule.dmn", "r1o", line_of(bad_dmn, "r1o")), vars(err)


def test_a_rule_violation_is_located_like_a_syntax_error_in_the_same_cell():
    refused_dmn, broken_dmn = dmn("alpha_rule", output=EVIL), dmn("alpha_rule", output="1 +")
    refused = refusal(two_flows(refused_dmn))
    broken = refusal(two_flows(broken_dmn))
    assert (broken.file, broken.element_id, broken.line) == ("alpha_rule.dmn", "r1o", line_of(broken_dmn, "r1o"))
    assert (refused.file, refused.element_id, refused.line) == (broken.file, broken.element_id, broken.line)
