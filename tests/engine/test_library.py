"""ProcessLibrary: compile, validate and refuse definitions with file, element and line."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from app.engine import DefinitionError, ProcessLibrary, SourceFile, XmlRejected
from tests.conftest import fixture_files


def sources(*names: str) -> list[SourceFile]:
    return [SourceFile(n, c) for n, c in fixture_files(*names)]


def replace(files: list[SourceFile], name: str, old: str, new: str) -> list[SourceFile]:
    out = []
    for f in files:
        if f.name == name:
            text = f.content.decode()
            assert old in text, f"{old!r} not in {name}"
            f = SourceFile(name, text.replace(old, new, 1).encode())
        out.append(f)
    return out


def compile_error(files: list[SourceFile]) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        ProcessLibrary().compile(files)
    return info.value


def test_compiles_every_fixture_process_with_forms_lanes_and_call_activity():
    compiled = {p.process_id: p for p in ProcessLibrary().compile(sources())}
    assert set(compiled) == {"simple_request", "lane_ticket", "parent_flow", "child_flow", "fragile"}
    lane = compiled["lane_ticket"]
    assert lane.lanes == ("Approvers", "ServiceDesk")
    assert {t.bpmn_id for t in lane.user_tasks} == {"triage", "approve"}
    assert set(lane.forms) == {"triage-schema.json", "approve-schema.json"}
    assert compiled["parent_flow"].called_processes == ("child_flow",)
    assert "child_flow.bpmn" in compiled["parent_flow"].files_used
    simple = compiled["simple_request"]
    assert simple.forms["details-uischema.json"]["ui:order"][0] == "title"
    assert json.loads(simple.spec_json)["spec"]["name"] == "simple_request"


def test_content_hash_is_stable_and_changes_with_any_used_file():
    first = {p.process_id: p.content_hash for p in ProcessLibrary().compile(sources())}
    again = {p.process_id: p.content_hash for p in ProcessLibrary().compile(sources())}
    assert first == again
    changed_form = replace(sources(), "triage-schema.json", '"maxLength": 200', '"maxLength": 300')
    after = {p.process_id: p.content_hash for p in ProcessLibrary().compile(changed_form)}
    assert after["lane_ticket"] != first["lane_ticket"]
    assert after["simple_request"] == first["simple_request"]
    changed_child = replace(sources(), "child_flow.bpmn", "child_done = True", "child_done = 1")
    after = {p.process_id: p.content_hash for p in ProcessLibrary().compile(changed_child)}
    assert after["parent_flow"] != first["parent_flow"]


def test_malformed_xml_names_file_and_line():
    files = replace(sources(), "simple_request.bpmn", '<bpmn:endEvent id="end" name="Done">', '<bpmn:endEvent id="end" name="Done"')
    err = compile_error(files)
    assert isinstance(err, XmlRejected)
    assert err.file == "simple_request.bpmn"
    assert err.line is not None and err.line > 40


@pytest.mark.parametrize(
    "payload",
    [
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<r>&xxe;</r>',
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n<r>&lol2;</r>',
        '<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">\n<r/>',
        '<?xml version="1.0"?>\n<!doctype r>\n<r/>',
    ],
    ids=["xxe", "billion-laughs", "external-dtd", "lowercase-doctype"],
)
def test_doctype_and_entities_are_refused(payload: str):
    err = compile_error([SourceFile("evil.bpmn", payload.encode())])
    assert isinstance(err, XmlRejected)
    assert err.file == "evil.bpmn" and err.line == 2
    assert "DOCTYPE" in err.message


def test_doctype_in_utf16_is_refused_too():
    payload = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE r [<!ENTITY a "b">]>\n<r>&a;</r>'
    err = compile_error([SourceFile("evil16.bpmn", payload.encode("utf-16"))])
    assert isinstance(err, XmlRejected)


def test_unknown_element_is_refused_by_xsd_with_line():
    files = replace(sources(), "simple_request.bpmn", '<bpmn:endEvent id="end" name="Done">',
                    '<bpmn:madeUpThing id="odd" />\n    <bpmn:endEvent id="end" name="Done">')
    err = compile_error(files)
    assert err.file == "simple_request.bpmn"
    assert err.line == 40
    assert "madeUpThing" in err.message


def test_missing_dmn_names_the_business_rule_task():
    files = [f for f in sources() if f.name != "ticket_priority.dmn"]
    err = compile_error(files)
    assert err.element_id == "prioritise"
    assert err.file == "lane_ticket.bpmn"
    assert err.line is not None


def test_missing_form_file_names_the_task_and_line():
    files = [f for f in sources() if f.name != "triage-schema.json"]
    err = compile_error(files)
    assert "triage-schema.json" in err.message
    assert err.element_id == "triage" and err.file == "lane_ticket.bpmn" and err.line == 27


def test_invalid_form_json_names_the_form_line():
    files = replace(sources(), "approve-schema.json", '"required": ["approved"],', '"required": ["approved"]')
    err = compile_error(files)
    assert err.file == "approve-schema.json" and err.line == 4


def test_missing_called_process_is_refused():
    files = [f for f in sources() if f.name != "child_flow.bpmn"]
    err = compile_error(files)
    assert "child_flow" in err.message


def test_script_breaking_the_rules_is_refused_at_deploy():
    files = replace(sources(), "simple_request.bpmn", "label = title.upper()", "label = ().__class__.__bases__")
    err = compile_error(files)
    assert err.element_id == "compute"
    assert err.file == "simple_request.bpmn"
    assert err.line == 20
    assert err.error_type == "script_rule"
    assert "script line 2" in err.message


def test_script_syntax_error_is_refused_at_deploy():
    files = replace(sources(), "simple_request.bpmn", "total = quantity * 2", "total = = 2")
    err = compile_error(files)
    assert err.element_id == "compute" and "script line 1" in err.message


def test_import_in_a_gateway_condition_is_refused():
    files = replace(sources(), "simple_request.bpmn", "total &gt; 10", "__import__('os').system('id') == 0")
    err = compile_error(files)
    assert err.element_id == "f_big"  # the flow that carries the condition, leaving the gateway big_order


def test_bad_prescript_is_refused():
    files = replace(sources(), "lane_ticket.bpmn", "reopen_count = 0", "import os")
    err = compile_error(files)
    assert err.element_id == "triage"


def test_dmn_cell_breaking_the_rules_names_the_cell():
    files = replace(sources(), "ticket_priority.dmn", '<text>"medium"</text>', "<text>open('/etc/passwd')</text>")
    err = compile_error(files)
    assert err.element_id == "r2_i"
    assert err.file == "ticket_priority.dmn"


@pytest.mark.parametrize("expression", ['"PT2Hours"', '"tomorrow"', "42"])
def test_timer_literal_that_is_not_iso8601_is_refused(expression: str):
    files = replace(sources(), "lane_ticket.bpmn", '"PT2H"', expression)
    err = compile_error(files)
    assert err.element_id == "approve_timeout"
    assert err.error_type == "timer_expression"
    assert err.line is not None


def test_timer_expression_over_task_data_is_accepted():
    files = replace(sources(), "lane_ticket.bpmn", '"PT2H"', "approval_window")
    assert ProcessLibrary().compile(files)


def test_unsupported_file_type_and_bad_names_are_refused():
    err = compile_error([SourceFile("notes.txt", b"hello")])
    assert err.file == "notes.txt"
    err = compile_error([SourceFile("../../etc.bpmn", b"<x/>")])
    assert "file names" in err.message


# -- limits ----------------------------------------------------------------------------------------

TIMER = '<bpmn:timeDuration>"PT2H"</bpmn:timeDuration>'


@pytest.mark.parametrize("timer", [
    '<bpmn:timeDuration>"P99999999Y"</bpmn:timeDuration>',
    '<bpmn:timeDuration>"P11Y"</bpmn:timeDuration>',
    '<bpmn:timeDuration>"PT99999999999999H"</bpmn:timeDuration>',
    '<bpmn:timeCycle>"R/P99999999Y"</bpmn:timeCycle>',
    '<bpmn:timeCycle>"R3/2020-01-01T00:00:00+00:00/P99999999Y"</bpmn:timeCycle>',
    '<bpmn:timeCycle>"R3/P99999999Y/2020-01-01T00:00:00+00:00"</bpmn:timeCycle>',
    '<bpmn:timeCycle>"R999999999/PT1H"</bpmn:timeCycle>',
    '<bpmn:timeDate>"9999-12-31T00:00:00+00:00"</bpmn:timeDate>',
], ids=["years", "eleven-years", "hours", "cycle", "cycle-from-start", "cycle-to-end", "repeats", "date"])
def test_timer_literal_past_ten_years_is_refused_quickly_naming_the_element(timer: str):
    files = replace(sources(), "lane_ticket.bpmn", TIMER, timer)
    started = time.monotonic()
    err = compile_error(files)
    assert time.monotonic() - started < 2
    assert err.element_id == "approve_timeout" and err.file == "lane_ticket.bpmn" and err.line == 54
    assert err.error_type == "timer_limit"
    assert "10 years" in err.message or "repeats more than" in err.message


@pytest.mark.parametrize("timer", [
    '<bpmn:timeDuration>"P10Y"</bpmn:timeDuration>',
    '<bpmn:timeCycle>"R/PT1H"</bpmn:timeCycle>',
    '<bpmn:timeCycle>"R5/2026-01-01T00:00:00+00:00/P1D"</bpmn:timeCycle>',
    '<bpmn:timeDate>"2027-06-01T09:00:00+02:00"</bpmn:timeDate>',
])
def test_timer_literals_within_the_limit_are_accepted(timer: str):
    assert ProcessLibrary().compile(replace(sources(), "lane_ticket.bpmn", TIMER, timer))


@pytest.mark.parametrize("timer", [
    '<bpmn:timeDate>"2027-06-01T09:00:00"</bpmn:timeDate>',
    '<bpmn:timeCycle>"R3/PT0S"</bpmn:timeCycle>',
])
def test_timer_literals_without_offset_or_interval_are_refused(timer: str):
    err = compile_error(replace(sources(), "lane_ticket.bpmn", TIMER, timer))
    assert err.element_id == "approve_timeout" and err.error_type == "timer_expression"


def test_a_json_file_no_task_uses_is_still_checked_when_deployed():
    files = [*sources(), SourceFile("orphan.json", b'{\n  "type": "object",\n  {bad\n}')]
    err = compile_error(files)
    assert err.file == "orphan.json" and err.line == 3
    # Deployed before this check existed: it does not block deploys of other files.
    assert ProcessLibrary().compile(files, deploying={"simple_request.bpmn"})
    err = compile_error([*sources(), SourceFile("list.json", b"[1, 2]")])
    assert err.file == "list.json" and "JSON object" in err.message


def test_process_ids_and_task_columns_longer_than_stored_are_refused():
    long_id = "p" * 129
    files = replace(sources(), "fragile.bpmn", 'id="fragile"', f'id="{long_id}"')
    err = compile_error(files)
    assert err.file == "fragile.bpmn" and err.line == 4 and "at most 128" in err.message
    assert ProcessLibrary().compile(replace(sources(), "fragile.bpmn", 'id="fragile"', f'id="{"p" * 128}"'))
    err = compile_error(replace(sources(), "fragile.bpmn", 'name="Check ratio"', f'name="{"n" * 256}"'))
    assert err.element_id == "check" and err.file == "fragile.bpmn" and "at most 255" in err.message
    err = compile_error(replace(sources(), "fragile.bpmn", 'name="Fragile"', f'name="{"n" * 256}"'))
    assert err.file == "fragile.bpmn" and "process name" in err.message


def test_an_error_names_the_file_it_is_in_when_another_file_has_the_same_element_id():
    # z_flow.bpmn reuses ids of simple_request.bpmn ("start", "compute"), as every modeler does.
    z_flow = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="z" targetNamespace="x">
  <bpmn:process id="z_flow" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute" />
    <bpmn:scriptTask id="compute"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:script>x = ().__class__</bpmn:script></bpmn:scriptTask>
  </bpmn:process>
</bpmn:definitions>"""
    err = compile_error([*sources(), SourceFile("z_flow.bpmn", z_flow)])
    assert (err.file, err.element_id, err.line) == ("z_flow.bpmn", "compute", 6)
    dangling = z_flow.replace(b'targetRef="compute"', b'targetRef="nowhere"')
    err = compile_error([*sources(), SourceFile("z_flow.bpmn", dangling)])
    assert (err.file, err.element_id, err.line) == ("z_flow.bpmn", "f1", 5)  # the flow, not its source


# -- the version hash covers content, not an editor's layout of the text -----------------------------

SHIPPED = Path(__file__).resolve().parents[2] / "processes" / "incident_management.bpmn"


def shipped_hash(text: str) -> str:
    """The version hash of the shipped incident diagram written as ``text``, with its files."""
    root = SHIPPED.parents[1]
    used = [SourceFile(p.name, p.read_bytes()) for p in sorted((root / "forms").glob("incident-*.json"))]
    used += [SourceFile(n, (root / "processes" / n).read_bytes())
             for n in ("priority_matrix.dmn", "incident_management.record.json")]
    (process,) = ProcessLibrary().compile([SourceFile("incident_management.bpmn", text.encode()), *used])
    return process.content_hash


def reordered_plane(text: str) -> str:
    """The diagram's shapes and edges in reverse order, as another editor may write them."""
    head, rest = text.split("<bpmndi:BPMNPlane", 1)
    opening, rest = rest.split(">", 1)
    body, tail = rest.split("</bpmndi:BPMNPlane>", 1)
    parts = re.findall(r"\s*<bpmndi:BPMN(?:Shape|Edge)\b.*?</bpmndi:BPMN(?:Shape|Edge)>", body, re.S)
    assert "".join(parts).strip() == body.strip()
    return head + "<bpmndi:BPMNPlane" + opening + ">" + "".join(reversed(parts)) + "\n    </bpmndi:BPMNPlane>" + tail


def test_content_hash_ignores_layout_of_the_text_but_not_content():
    text = SHIPPED.read_text()
    original = shipped_hash(text)
    # an editor's re-writing: no indentation, spaces before "/>", another quote character, shapes reordered
    rewritten = reordered_plane(text)
    rewritten = re.sub(r">\s+<", "><", rewritten).replace('"/>', '" />')
    rewritten = rewritten.replace('name="Triage incident"', "name='Triage incident'")
    assert rewritten != text
    assert shipped_hash(rewritten) == original
    # a comment is no content, nor is the space around it
    commented = text.replace("<bpmn:laneSet", "<!-- lanes -->\n    <bpmn:laneSet", 1)
    assert commented != text and shipped_hash(commented) == original
    assert shipped_hash(re.sub(r">\s+<", "><", commented)) == original
    # a moved shape is a change (the layout is part of the version)
    moved = re.sub(r'(<bpmndi:BPMNShape id="triage_di"[^>]*>\s*<dc:Bounds x=")(\d+)', lambda m: m.group(1) + str(int(m.group(2)) + 10), text, count=1)
    assert moved != text and shipped_hash(moved) != original
    # a script's text is kept as written, spaces too (Python's indentation is meaning): a change
    script = re.search(r"<bpmn:script>(.*?)</bpmn:script>", text, re.S)
    assert script and "\n" in script.group(1)
    spaced = text.replace(script.group(1), script.group(1).replace("\n", "  \n", 1), 1)
    assert shipped_hash(spaced) != original


def test_a_version_stored_with_the_old_hash_of_the_bytes_is_the_same_content():
    files = sources()
    first = {p.process_id: p for p in ProcessLibrary().compile(files)}
    lane = first["lane_ticket"]
    assert lane.legacy_hash and lane.legacy_hash != lane.content_hash
    assert lane.same_content(lane.legacy_hash) and lane.same_content(lane.content_hash)
    assert not lane.same_content(first["simple_request"].content_hash) and not lane.same_content(None)
