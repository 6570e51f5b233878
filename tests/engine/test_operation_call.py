"""What the engine tells an operation of the service task calling it: the task's data and which
parameters the diagram wrote as one string literal (``OperationCall``), and, at deploy, those
literals per operator and parameter (``CompiledProcess.literal_params``)."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import OperationCall, ProcessEngine, ProcessLibrary, ScriptIdentity, SourceFile, current_operation_call
from app.engine.operation_call import literal_text
from tools.bpmn_builder import Diagram, literal, pretty

ACTOR = ScriptIdentity(current_user={"id": 1, "username": "u"}, initiator={"id": 1, "username": "u"})
TEMPLATE = "Disk full on {{ host }}"


def compiled() -> Any:
    d = Diagram("teller", "Teller")
    d.node("start", "start", col=0)
    d.node("init", "script", "Init", col=1, script='host = "{{ db1 }}"')
    d.node("tell", "service", "Tell", col=2, operator="notify", result_variable="told",
           params={"group": '"Ops"', "subject": literal(TEMPLATE), "body": '"Host: " + host', "count": "1"})
    d.node("end", "end", col=3)
    d.chain("start", "init", "tell", "end")
    [process] = ProcessLibrary().compile([SourceFile("teller.bpmn", pretty(d.to_xml()).encode())])
    return process


def test_the_operation_knows_the_literal_parameters_and_the_data():
    seen: list[tuple[dict[str, Any], OperationCall | None]] = []

    def operations(name: str, params: dict[str, Any]) -> Any:
        seen.append((params, current_operation_call()))
        return {"notified": 0}

    process = compiled()
    engine = ProcessEngine(script_time_limit=2.0)
    run = engine.start(engine.spec(process.content_hash, process.spec_json), {}, ACTOR, operations)
    assert run.status == "completed", run.failure
    [(params, call)] = seen
    assert params == {"group": "Ops", "subject": TEMPLATE, "body": "Host: {{ db1 }}", "count": 1}
    assert call is not None
    # the computed body is no literal, though its value looks like a template: it is data
    assert dict(call.literals) == {"group": "Ops", "subject": TEMPLATE}
    assert call.data["host"] == "{{ db1 }}"
    assert current_operation_call() is None  # only during the call


def test_the_compiled_process_lists_its_literal_parameters():
    assert compiled().literal_params == (("notify", "group", "Ops", "tell"), ("notify", "subject", TEMPLATE, "tell"))


@pytest.mark.parametrize(("expression", "text"), [
    ('"a"', "a"), ("'a' 'b'", "ab"), ('  "x {{ y }}"  ', "x {{ y }}"), ('"a" + b', None), ("b", None),
    ("1", None), ('b"x"', None), ("", None), ("(", None), (None, None), ({"value": "a"}, None),
])
def test_literal_text(expression: Any, text: str | None):
    assert literal_text(expression) == text
