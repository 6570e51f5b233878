"""Deploy guards through the API, on the shipped processes (tests/http/desk.py).

* A diagram uploaded under the name of a stored one must still define the processes that file
  held: another process's diagram under problem_management.bpmn was taken (201), leaving
  problem_management without its diagram. Now 422 naming the file and the process; nothing stored.
* JSON files (forms, start forms, access and record files) nested ~2,000 levels deep were a 500
  (RecursionError); now 422 naming the file, as the translation files already were.
* A call activity calling no known process is named with its line, and only real processes are
  offered as corrections (not the embedded subprocesses SpiffWorkflow suggested).
* An access file writing a key twice is refused, and an unknown role is named.
* A catalog form's ``"format": "username"`` takes every name the user directory takes.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import DefinitionFile, Deployment, ProcessDefinition
from tests.http.desk import ROOT, Desk
from tests.http.helpers import assert_error, upload

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'id="D_guard" targetNamespace="http://bpmn.io/schema/bpmn">\n')


def diagram(process_id: str, body: str | None = None) -> bytes:
    """A one-process diagram: start straight to end, or ``body`` between them (via ``f1``/``f2``)."""
    if body is None:
        inner = ('<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>\n'
                 '<bpmn:endEvent id="e"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>\n'
                 '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="e" />\n')
    else:
        inner = ('<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>\n'
                 f'{body}\n'
                 '<bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>\n'
                 '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call" />\n'
                 '<bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e" />\n')
    return (HEAD + f'<bpmn:process id="{process_id}" name="Guard {process_id}" isExecutable="true">\n'
            + inner + '</bpmn:process>\n</bpmn:definitions>\n').encode()


def calling(called: str) -> bytes:
    """A new process ``caller`` whose call activity ``call`` (line 5) calls ``called``."""
    return diagram("caller", f'<bpmn:callActivity id="call" name="Call it" calledElement="{called}">'
                             '<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:callActivity>')


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def stored(desk: Desk) -> tuple[Any, ...]:
    """What a deploy stores: every file's name and digest, the deployments, the versions."""
    session = desk.services.session
    files = tuple(session.execute(select(DefinitionFile.name, DefinitionFile.sha256).order_by(DefinitionFile.name)))
    counts = tuple(session.scalar(select(func.count()).select_from(model)) for model in (Deployment, ProcessDefinition))
    session.rollback()
    return files, counts


def refused(desk: Desk, files: list[tuple[str, bytes]], who: str = "olga") -> dict[str, Any]:
    before = stored(desk)
    body = assert_error(upload(desk.client, desk.auth(who), files), 422, "invalid_definition")
    assert stored(desk) == before
    return body


# -- 1. another process's diagram under a stored diagram's name ------------------------------------

def test_another_process_under_a_stored_diagrams_name_is_refused_naming_the_file_and_the_process(desk: Desk):
    body = refused(desk, [("problem_management.bpmn", diagram("hijack_p"))])
    assert body["details"]["file"] == "problem_management.bpmn"
    assert body["details"]["process_id"] == "problem_management"
    assert body["details"]["holds"] == ["hijack_p"]
    assert "'problem_management'" in body["message"] and "another file name" in body["message"], body
    # problem_management keeps its diagram: its translation still deploys, its XML is the shipped one
    shipped = (ROOT / "processes" / "problem_management.bpmn").read_bytes()
    xml = desk.client.get("/api/v1/definitions/problem_management/bpmn", headers=desk.auth("olga"))
    assert xml.status_code == 200 and xml.data == shipped
    i18n = (ROOT / "processes" / "problem_management.zh_CN.i18n.json").read_bytes()
    again = upload(desk.client, desk.auth("olga"), [("problem_management.zh_CN.i18n.json", i18n)])
    assert again.status_code in (200, 201), again.get_json()
    assert_error(desk.client.get("/api/v1/definitions/hijack_p", headers=desk.auth("olga")), 404)
    # under a name of its own it deploys
    created = upload(desk.client, desk.auth("olga"), [("hijack_p.bpmn", diagram("hijack_p"))])
    assert created.status_code == 201, created.get_json()


def test_a_stored_process_turned_not_executable_beside_another_is_refused_naming_it_and_its_line(desk: Desk):
    # one executable process in the file (so the diagram runs something), problem_management off
    off = diagram("side").replace(
        b"</bpmn:definitions>",
        b'<bpmn:process id="problem_management" isExecutable="false">\n</bpmn:process>\n</bpmn:definitions>')
    body = refused(desk, [("problem_management.bpmn", off)])
    assert body["details"]["file"] == "problem_management.bpmn"
    assert body["details"]["process_id"] == "problem_management"
    assert body["details"]["holds"] == ["side"]
    assert body["details"]["line"] == 8
    assert "not executable" in body["message"]


def test_a_stored_diagram_with_no_executable_process_left_keeps_its_own_refusal(desk: Desk):
    shipped = (ROOT / "processes" / "problem_management.bpmn").read_bytes()
    off = shipped.replace(b'isExecutable="true"', b'isExecutable="false"', 1)
    body = refused(desk, [("problem_management.bpmn", off)])
    assert body["message"].startswith("no executable process in problem_management.bpmn"), body


# -- 2. JSON files nested too deeply --------------------------------------------------------------

DEEP_OBJECT = b'{"a":' * 2000 + b"1" + b"}" * 2000
DEEP_LIST = b"[" * 2000 + b"]" * 2000


@pytest.mark.parametrize("name", ["catalog-deep.json", "catalog-deep.ui.json", "problem_management.access.json",
                                  "problem_management.record.json", "problem_management.start.json",
                                  "problem_management.start.ui.json"])
@pytest.mark.parametrize("content", [DEEP_OBJECT, DEEP_LIST], ids=["objects", "lists"])
def test_a_json_file_nested_thousands_deep_is_422_naming_the_file(desk: Desk, name: str, content: bytes):
    body = refused(desk, [(name, content)])
    assert body["details"]["file"] == name
    assert "nested more than" in body["message"], body


def test_a_json_file_a_little_too_deep_is_refused_too(desk: Desk):
    # deep enough to pass the parser, too deep for the form checks that walk it
    body = refused(desk, [("problem_management.start.json", b'{"a":' * 200 + b"1" + b"}" * 200)])
    assert body["details"]["file"] == "problem_management.start.json"
    assert "nested more than 128 levels deep" in body["message"], body


# -- 3. a call activity calling no process --------------------------------------------------------

def test_a_call_activity_calling_no_process_is_named_with_its_line(desk: Desk):
    body = refused(desk, [("caller.bpmn", calling("no_such_process"))])
    details = body["details"]
    assert (details["file"], details["element_id"], details["line"]) == ("caller.bpmn", "call", 5), body
    assert "'no_such_process'" in body["message"]
    assert "did you mean" not in body["message"].lower()


def test_only_processes_are_suggested_for_a_missing_called_process_not_embedded_subprocesses(desk: Desk):
    body = refused(desk, [("caller.bpmn", calling("analyse_and_fixx"))])
    assert body["details"]["element_id"] == "call"
    # analyse_and_fix is an embedded subprocess of problem_management: no process to call
    assert "analyse_and_fix" not in body["message"].replace("analyse_and_fixx", ""), body
    typo = refused(desk, [("caller.bpmn", calling("incident_managment"))])
    assert "did you mean 'incident_management'?" in typo["message"], typo
    for sub in ("work", "investigation", "change_approval_cycle", "fulfil_and_confirm"):
        assert f"'{sub}'" not in typo["message"]


# -- 4. access files ------------------------------------------------------------------------------

def test_an_access_file_writing_a_key_twice_is_refused(desk: Desk):
    body = refused(desk, [("problem_management.access.json", b'{"start_roles":["agent"],"start_roles":["admin"]}')])
    assert body["details"] == {"file": "problem_management.access.json", "key": "start_roles"}
    assert "'start_roles' appears twice" in body["message"]


def test_an_unknown_role_in_an_access_file_is_named(desk: Desk):
    body = refused(desk, [("problem_management.access.json", b'{"start_roles":["agent","agnet"]}')])
    assert body["details"] == {"file": "problem_management.access.json", "role": "agnet"}
    assert "'agnet'" in body["message"]


# -- 5. user names in catalog forms ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["j.doe@corp", "1carl", "Carl.K", "c", "x" * 128])
def test_the_vpn_form_takes_every_name_the_directory_takes(desk: Desk, name: str):
    desk.services.users.create_user(name, "password-1234", roles=["requester"], groups=["Finance"])
    desk.services.session.commit()
    response = desk.client.post("/api/v1/catalog/NET-VPN/requests", headers=desk.auth("alex"),
                                json={"data": {"profile": "employee", "justification": "Works from home.",
                                               "for_user": name}})
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("name", ["carl k", " carl", "-carl", "x" * 129, "carl/k"])
def test_the_vpn_form_refuses_what_the_directory_refuses(desk: Desk, name: str):
    response = desk.client.post("/api/v1/catalog/NET-VPN/requests", headers=desk.auth("alex"),
                                json={"data": {"profile": "employee", "justification": "Works from home.",
                                               "for_user": name}})
    body = assert_error(response, 422, "validation_failed")
    assert body["details"]["fields"]["for_user"][0].startswith("must be a user name"), body


def test_a_refused_condition_names_the_flow_that_carries_it(desk, services):
    """QA: a broken condition on a sequence flow was blamed on its gateway (and the modeler marked
    the gateway): the flow is what was edited, and where it is."""
    from app.errors import ValidationFailed
    from tests.http.desk import ROOT
    xml = (ROOT / "processes" / "incident_management.bpmn").read_text()
    old = 'outcome == "resolve" and len(resolution_notes.strip()) &gt; 0</bpmn:conditionExpression>'
    assert old in xml
    broken = xml.replace(old, "outcome == </bpmn:conditionExpression>")
    line = next(n for n, text in enumerate(broken.splitlines(), start=1)
                if 'id="flow_outcome_gateway_mark_resolved"' in text)
    olga = services.users.get_by_username("olga")
    with pytest.raises(ValidationFailed) as refused:
        services.definitions.deploy(olga, [("incident_management.bpmn", broken.encode())])
    details = refused.value.details
    assert details["element_id"] == "flow_outcome_gateway_mark_resolved" and details["line"] == line
    assert details["file"] == "incident_management.bpmn" and "condition of 'resolved'" in refused.value.message


def test_a_decision_giving_a_value_its_processs_form_does_not_offer_is_refused(desk, services):
    """QA: the priority matrix changed to give "P9" deployed, and low/low incidents then opened as
    P9 records that no SLA applied to. The triage form offers P1-P4: the rule is named instead."""
    from app.errors import ValidationFailed
    from tests.http.desk import ROOT
    dmn = (ROOT / "processes" / "priority_matrix.dmn").read_text()
    rule_9 = dmn.index('<rule id="rule_9">')
    broken = dmn[:rule_9] + dmn[rule_9:].replace('"P4"', '"P9"', 1)
    line = next(n for n, text in enumerate(broken.splitlines(), start=1) if 'id="rule_9_priority"' in text)
    olga = services.users.get_by_username("olga")
    with pytest.raises(ValidationFailed) as refused:
        services.definitions.deploy(olga, [("priority_matrix.dmn", broken.encode())])
    details = refused.value.details
    assert (details["file"], details["element_id"], details["line"]) == ("priority_matrix.dmn", "rule_9_priority", line)
    assert 'gives priority "P9", which the form incident-triage.json does not offer' in refused.value.message
    # a value the form offers deploys
    services.session.rollback()
    fine = dmn[:rule_9] + dmn[rule_9:].replace('"P4"', '"P3"', 1)
    services.definitions.deploy(olga, [("priority_matrix.dmn", fine.encode())])


def test_a_lane_that_names_no_group_is_deployed_with_a_warning(desk, client):
    """QA: a diagram with a lane "NoSuchTeam" deployed silently, and its tasks could be worked by
    nobody but admins. It still deploys (the group may come later), with a warning naming it."""
    from tests.http.desk import ROOT
    xml = (ROOT / "tests" / "fixtures" / "processes" / "lane_ticket.bpmn").read_text()
    xml = xml.replace('id="lane_ticket" name="Lane ticket"', 'id="lane_ticket_qa" name="Lane ticket QA"')
    xml = xml.replace('name="Approvers"', 'name="NoSuchTeam"')
    files = {"files": [(io.BytesIO(xml.encode()), "lane_ticket_qa.bpmn")]}
    forms = ROOT / "tests" / "fixtures" / "processes"
    for name in ("triage-schema.json", "approve-schema.json", "ticket_priority.dmn"):
        files["files"].append((io.BytesIO((forms / name).read_bytes()), name))
    response = client.post("/api/v1/definitions", data=files, headers=desk.auth("olga"), content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    [warning] = response.get_json()["warnings"]
    assert (warning["process_id"], warning["version"], warning["lane"]) == ("lane_ticket_qa", 1, "NoSuchTeam")
    assert "names no group" in warning["message"]
    # the shipped processes' lanes are all groups of the desk: no warning
    again = client.post("/api/v1/definitions", data={"files": [(io.BytesIO(xml.replace("NoSuchTeam", "CAB").encode()),
                                                                "lane_ticket_qa.bpmn")]},
                        headers=desk.auth("olga"), content_type="multipart/form-data")
    assert again.status_code == 201 and again.get_json()["warnings"] == []


@pytest.mark.parametrize(("person", "refusal"), [
    ("j.doe@corp", None), ("1carl", None), ("Carl.K", None),
    # the directory's shape, but nobody the requester may name (here: nobody at all)
    ("carl.k2", "carl.k2 is not a user you can name here"),
    ("carl smith", "must be a user name"), (".carl", "must be a user name"), ("x" * 129, "must be a user name"),
])
def test_a_catalog_username_field_takes_the_people_of_the_directory(desk, person, refusal):
    """The desk move, application access and shared mailbox forms once asked for the old shape (a
    lower-case letter first, at most 64), then for any name of the directory's shape: a typo went
    to fulfilment as a person nobody could find. Now, like the VPN form, they take people the
    requester may name (here colleagues of rita's group) and say which name is none."""
    for name in ("j.doe@corp", "1carl", "Carl.K"):
        desk.services.users.create_user(name, "password-1234", roles=["requester"], groups=["Requesters"])
    desk.services.session.commit()
    data = {"person": person, "current_location": "B2.17", "new_location": "C1.04", "move_date": "2099-06-01",
            "justification": "Joining the network team"}
    response = desk.client.post("/api/v1/catalog/FAC-DESK-MOVE/requests", headers=desk.auth("rita"), json={"data": data})
    if refusal is None:
        assert response.status_code == 201, response.get_json()
    else:
        body = assert_error(response, 422)
        assert list(body["details"]["fields"]) == ["person"]
        assert body["details"]["fields"]["person"][0].startswith(refusal), body
