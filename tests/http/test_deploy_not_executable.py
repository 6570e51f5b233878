"""A diagram with no executable process is refused at deploy (422 naming the file), and nothing of
the deploy is stored: before, it was stored and answered 200 while it could start nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models import DefinitionFile, Deployment, ProcessDefinition
from tests.conftest import fixture_files
from tests.http.helpers import assert_error, deploy_all, upload

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'id="D_idle" targetNamespace="http://bpmn.io/schema/bpmn">\n')


def flow(p: str = "") -> str:
    """A start event straight to an end event; ``p`` prefixes the ids (ids are unique per file)."""
    return (f'<bpmn:startEvent id="{p}start"><bpmn:outgoing>{p}f1</bpmn:outgoing></bpmn:startEvent>'
            f'<bpmn:endEvent id="{p}end"><bpmn:incoming>{p}f1</bpmn:incoming></bpmn:endEvent>'
            f'<bpmn:sequenceFlow id="{p}f1" sourceRef="{p}start" targetRef="{p}end" />')


FLOW = flow()

NOT_EXECUTABLE = (HEAD + f'<bpmn:process id="idle" name="Idle" isExecutable="false">{FLOW}</bpmn:process>'
                  '\n</bpmn:definitions>\n')
COLLABORATION = HEAD + (
    '<bpmn:collaboration id="collab"><bpmn:participant id="desk" name="Desk" processRef="idle" /></bpmn:collaboration>'
    f'<bpmn:process id="idle" name="Idle" isExecutable="false">{FLOW}</bpmn:process>\n</bpmn:definitions>\n')
TWO_NOT_EXECUTABLE = HEAD + (
    f'<bpmn:process id="idle" name="Idle" isExecutable="false">{FLOW}</bpmn:process>'
    f'<bpmn:process id="idle_too" name="Idle too" isExecutable="false">{flow("b_")}</bpmn:process>'
    '\n</bpmn:definitions>\n')
NO_PROCESS = HEAD + '<bpmn:message id="msg" name="hello" />\n</bpmn:definitions>\n'
EXECUTABLE = NOT_EXECUTABLE.replace('isExecutable="false"', 'isExecutable="true"')


def stored(services) -> tuple[int, int, int]:
    session = services.session
    counts = tuple(int(session.scalar(select(func.count()).select_from(model)) or 0)
                   for model in (DefinitionFile, Deployment, ProcessDefinition))
    session.rollback()
    return counts  # type: ignore[return-value]


@pytest.mark.parametrize("xml", [NOT_EXECUTABLE, COLLABORATION, TWO_NOT_EXECUTABLE, NO_PROCESS],
                         ids=["not-executable", "collaboration", "two-not-executable", "no-process"])
def test_a_diagram_without_an_executable_process_is_refused_naming_the_file(client, auth, services, xml):
    body = assert_error(upload(client, auth("olga"), [("idle.bpmn", xml.encode())]), 422, "invalid_definition")
    assert body["details"]["file"] == "idle.bpmn"
    assert body["message"].startswith("no executable process in idle.bpmn"), body
    assert stored(services) == (0, 0, 0)
    assert client.get("/api/v1/definitions", headers=auth("olga")).get_json()["total"] == 0


def test_the_refusal_takes_the_whole_deploy_with_it(client, auth, services):
    deploy_all(client, auth("olga"))
    before = stored(services)
    new_flow = fixture_files("child_flow.bpmn")[0][1].replace(b"child_flow", b"new_flow")
    files = [("new_flow.bpmn", new_flow), ("idle.bpmn", COLLABORATION.encode())]
    body = assert_error(upload(client, auth("olga"), files), 422, "invalid_definition")
    assert body["details"]["file"] == "idle.bpmn"
    assert stored(services) == before
    assert_error(client.get("/api/v1/definitions/new_flow", headers=auth("olga")), 404)


def test_a_diagram_once_executable_is_not_turned_off_by_a_new_upload(client, auth, services):
    created = upload(client, auth("olga"), [("idle.bpmn", EXECUTABLE.encode())])
    assert created.status_code == 201, created.get_json()
    before = stored(services)
    assert_error(upload(client, auth("olga"), [("idle.bpmn", NOT_EXECUTABLE.encode())]), 422, "invalid_definition")
    assert stored(services) == before
    xml = client.get("/api/v1/definitions/idle/bpmn", headers=auth("olga"))
    assert xml.status_code == 200 and b'isExecutable="true"' in xml.data


def test_an_executable_diagram_beside_a_process_owned_elsewhere_still_deploys(client, auth):
    # the check is per uploaded diagram: one executable process in the file is enough
    mixed = TWO_NOT_EXECUTABLE.replace('id="idle_too" name="Idle too" isExecutable="false"',
                                       'id="idle_too" name="Idle too" isExecutable="true"')
    response = upload(client, auth("olga"), [("idle.bpmn", mixed.encode())])
    assert response.status_code == 201, response.get_json()
    assert [p["process_id"] for p in response.get_json()["processes"]] == ["idle_too"]
