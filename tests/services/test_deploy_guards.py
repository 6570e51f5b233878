"""Deploy guards in the services and the folder deploy (`flask processes deploy`).

A diagram uploaded under a stored diagram's name must still define, as an executable process,
every process whose latest version came from that file (unless this deploy moves it to another
uploaded diagram): whatever the deploy is (API, process list, modeler, folder deploy with or
without --force). The process page's own refusal is kept. The access file's duplicate-key check
applies to deploys, not to files stored before it. A form's ``"format": "username"`` takes what
the user directory takes (one rule, app.services.users.is_username).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.errors import ValidationFailed
from app.models import DefinitionFile, Deployment, ProcessDefinition
from app.services import users as users_module
from app.services.forms import validate_submission
from app.services.start_rights import START_RIGHTS, check_access
from tests.conftest import fixture_files

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'id="D_guard" targetNamespace="http://bpmn.io/schema/bpmn">\n')


def process(process_id: str, prefix: str = "") -> str:
    p = prefix or process_id + "_"
    return (f'<bpmn:process id="{process_id}" name="Guard {process_id}" isExecutable="true">'
            f'<bpmn:startEvent id="{p}s"><bpmn:outgoing>{p}f</bpmn:outgoing></bpmn:startEvent>'
            f'<bpmn:endEvent id="{p}e"><bpmn:incoming>{p}f</bpmn:incoming></bpmn:endEvent>'
            f'<bpmn:sequenceFlow id="{p}f" sourceRef="{p}s" targetRef="{p}e" /></bpmn:process>\n')


def diagram(*process_ids: str) -> bytes:
    return (HEAD + "".join(process(pid) for pid in process_ids) + "</bpmn:definitions>\n").encode()


def stored(services: Any) -> tuple[Any, ...]:
    session = services.session
    files = tuple(session.execute(select(DefinitionFile.name, DefinitionFile.sha256).order_by(DefinitionFile.name)))
    counts = tuple(session.scalar(select(func.count()).select_from(model)) for model in (Deployment, ProcessDefinition))
    return files, counts


def refused(services: Any, olga: Any, files: list[tuple[str, bytes]], **kwargs: Any) -> ValidationFailed:
    before = stored(services)
    with pytest.raises(ValidationFailed) as info:
        services.definitions.deploy(olga, files, **kwargs)
    services.session.rollback()
    assert stored(services) == before
    assert info.value.code == "invalid_definition"
    return info.value


def latest_file(services: Any, process_id: str) -> str:
    return str(services.definitions.latest(process_id).filename)


def test_a_stored_diagram_replaced_by_another_process_is_refused(services, users, deployed):
    err = refused(services, users["olga"], [("simple_request.bpmn", diagram("hijack_p"))])
    assert err.details == {"file": "simple_request.bpmn", "process_id": "simple_request", "holds": ["hijack_p"],
                           "field": "files"}
    assert "another file name" in err.message
    assert latest_file(services, "simple_request") == "simple_request.bpmn"


def test_a_file_of_two_processes_may_not_drop_one(services, users, deployed):
    olga = users["olga"]
    services.definitions.deploy(olga, [("pair.bpmn", diagram("pair_a", "pair_b"))])
    services.session.commit()
    err = refused(services, olga, [("pair.bpmn", diagram("pair_a"))])
    assert (err.details["file"], err.details["process_id"], err.details["holds"]) == ("pair.bpmn", "pair_b", ["pair_a"])
    # from pair_a's own page too: its own diagram still holds it, but pair_b would lose its diagram
    err = refused(services, olga, [("pair.bpmn", diagram("pair_a"))], only_process="pair_a")
    assert err.details["process_id"] == "pair_b"


def test_a_process_moved_to_another_uploaded_diagram_in_the_same_deploy_is_no_loss(services, users, deployed):
    result = services.definitions.deploy(users["olga"], [("simple_request.bpmn", diagram("renamed_request")),
                                                         ("moved.bpmn", fixture_files("simple_request.bpmn")[0][1])])
    assert {p.process_id for p in result.processes if p.created} == {"renamed_request", "simple_request"}
    assert latest_file(services, "simple_request") == "moved.bpmn"


def test_the_process_pages_own_refusal_is_kept(services, users, deployed):
    err = refused(services, users["olga"], [("simple_request.bpmn", diagram("hijack_p"))], only_process="simple_request")
    assert "open that process's page" in err.message
    assert err.details["holds"] == ["hijack_p"]


@pytest.mark.parametrize("force", [False, True], ids=["folder-deploy", "force"])
def test_the_folder_deploy_refuses_it_too(app, services, users, deployed, tmp_path: Path, force: bool):
    (tmp_path / "simple_request.bpmn").write_bytes(diagram("hijack_p"))
    before = stored(services)
    result = app.test_cli_runner().invoke(args=["processes", "deploy", str(tmp_path), *(["--force"] if force else [])])
    assert result.exit_code == 1, result.output
    assert "simple_request.bpmn" in result.output and "'simple_request'" in result.output
    assert stored(services) == before


def test_an_access_file_stored_before_the_duplicate_check_still_reads_as_before():
    twice = b'{"start_roles":["agent"],"start_roles":["admin"]}'
    with pytest.raises(ValidationFailed) as info:
        check_access("x.access.json", twice)
    assert info.value.details == {"file": "x.access.json", "key": "start_roles"}
    assert check_access("x.access.json", twice, deploying=False) == ("admin",)
    assert START_RIGHTS._roles_of("x.access.json", "digest-of-twice", twice) == ("admin",)


FORM = {"type": "object", "properties": {"for_user": {"type": "string", "format": "username"}}}


def form_takes(name: str) -> bool:
    try:
        validate_submission(FORM, None, {"for_user": name}, {})
    except ValidationFailed:
        return False
    return True


@pytest.mark.parametrize("name", ["j.doe@corp", "1carl", "Carl", "c", "a+b", "x" * 128, "x" * 129, "carl k",
                                  " carl", "-carl", "carl/k", "carl,k", "é"])
def test_a_username_field_takes_exactly_what_the_directory_takes(name: str):
    assert form_takes(name) == users_module.is_username(name)


def test_the_rule_is_the_directorys_own(monkeypatch):
    # one rule: changing the directory's changes the form's
    monkeypatch.setattr(users_module, "USERNAME", users_module.re.compile(r"zz[a-z]*"))
    assert form_takes("zzcarl") and not form_takes("carl")
