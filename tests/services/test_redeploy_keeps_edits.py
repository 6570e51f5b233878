"""`flask processes deploy` (run by `make run` at every start) seeds the desk from the shipped files;
after that the database is the source of truth. A restart must not undo what a process owner
changed: catalog items edited or retired through the API, diagrams and forms saved in the desk.
Only content never deployed before (a new release of a shipped file) is deployed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.models import CatalogItem, DefinitionFile, ProcessDefinition
from app.services.content_texts import catalog_translation_files

ROOT = Path(__file__).resolve().parents[2]
PROCESS = "incident_management"
DIAGRAM = "incident_management.bpmn"
SHIPPED_DIAGRAM = (ROOT / "processes" / DIAGRAM).read_bytes()


def _cli_deploy(app: Any, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["processes", "deploy", *args])
    assert result.exit_code == 0, result.output
    return str(result.output)


def _versions(services: Any, process_id: str = PROCESS) -> list[ProcessDefinition]:
    services.session.expire_all()
    return list(services.session.scalars(select(ProcessDefinition).where(ProcessDefinition.process_id == process_id)
                                         .order_by(ProcessDefinition.version)))


def _save_in_modeler(services: Any, olga: Any, xml: bytes) -> int:
    """What the browser modeler's save does (app/web/process_pages.py: process_save)."""
    latest = services.definitions.latest(PROCESS)
    result = services.definitions.deploy(olga, [(DIAGRAM, xml)], only_process=PROCESS, base_version=latest.version)
    services.session.commit()
    return int(next(p.version for p in result.processes if p.process_id == PROCESS))


def _renamed(xml: bytes, suffix: str) -> bytes:
    named = b'name="Incident management"'
    assert named in xml
    return xml.replace(named, b'name="Incident management' + suffix.encode() + b'"', 1)


def test_restart_keeps_catalog_items_edited_through_the_api(app: Any, services: Any, users: Any, client: Any,
                                                            auth: Any) -> None:
    first = _cli_deploy(app)
    assert " created, 0 left as they are)" in first
    patched = client.patch("/api/v1/catalog/items/SW-LICENCE", json={"cost": 250}, headers=auth("olga"))
    assert patched.status_code == 200, patched.get_json()
    retired = client.patch("/api/v1/catalog/items/FAC-DESK-MOVE", json={"status": "retired"}, headers=auth("olga"))
    assert retired.status_code == 200, retired.get_json()

    again = _cli_deploy(app)

    services.session.expire_all()
    items = {i.code: i for i in services.session.scalars(select(CatalogItem))}
    assert float(items["SW-LICENCE"].cost) == 250
    assert items["FAC-DESK-MOVE"].status == "retired"
    shipped = json.loads((ROOT / "processes" / "catalog.json").read_text(encoding="utf-8"))
    assert f"(0 created, {len(shipped['items'])} left as they are)" in again
    assert client.get("/api/v1/catalog/items/FAC-DESK-MOVE", headers=auth("rita")).status_code == 404


def test_reset_catalog_writes_the_file_over_the_items(app: Any, services: Any, users: Any) -> None:
    _cli_deploy(app)
    services.catalog.update_item(users["olga"], "SW-LICENCE", {"cost": 250, "status": "retired"})
    services.session.commit()

    reset = _cli_deploy(app, "--reset-catalog")

    services.session.expire_all()
    item = services.session.scalar(select(CatalogItem).where(CatalogItem.code == "SW-LICENCE"))
    assert (float(item.cost), item.status) == (180, "published")
    assert "reset from the file" in reset


def test_catalog_load_creates_missing_items_and_leaves_the_others(services: Any, users: Any) -> None:
    groups = {"owner_group": "ServiceDesk", "fulfilment_group": "ServiceDesk"}
    document: dict[str, Any] = {"categories": [{"code": "01", "name": "Hardware"}],
                                "items": [{"code": "HW-A", "name": "A", "category_code": "01", "cost": 10, **groups}]}
    assert services.catalog.load(document)["created"] == 1
    services.catalog.update_item(users["olga"], "HW-A", {"cost": 99, "name": "Renamed", "status": "retired"})
    document["items"].append({"code": "HW-B", "name": "B", "category_code": "01", "cost": 20, **groups})

    counts = services.catalog.load(document)

    assert (counts["created"], counts["kept"]) == (1, 1)
    items = {i.code: i for i in services.session.scalars(select(CatalogItem))}
    assert (float(items["HW-A"].cost), items["HW-A"].name, items["HW-A"].status) == (99, "Renamed", "retired")
    assert (float(items["HW-B"].cost), items["HW-B"].status) == (20, "published")


def test_restart_keeps_the_diagram_saved_in_the_modeler(app: Any, services: Any, users: Any) -> None:
    _cli_deploy(app)
    assert [v.version for v in _versions(services)] == [1]
    assert _save_in_modeler(services, users["olga"], _renamed(SHIPPED_DIAGRAM, " (v2)")) == 2
    saved = _renamed(SHIPPED_DIAGRAM, " (v3)")
    assert _save_in_modeler(services, users["olga"], saved) == 3

    output = _cli_deploy(app)

    versions = _versions(services)
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[-1].is_latest and versions[-1].bpmn_xml == saved.decode()
    assert services.session.scalar(select(DefinitionFile.content).where(DefinitionFile.name == DIAGRAM)) == saved
    assert f"{DIAGRAM}: skipped, already deployed as version 1 of {PROCESS}; the latest is version 3" in output
    assert f"{PROCESS}: version 3 (unchanged)" in output
    # and again: nothing deployed, nothing changed
    _cli_deploy(app)
    assert [v.version for v in _versions(services)] == [1, 2, 3]


def test_restart_skips_content_deployed_as_any_earlier_version(app: Any, services: Any, users: Any,
                                                               tmp_path: Path) -> None:
    """The shipped folder holds the content of version 2 (not the first, not the latest)."""
    _cli_deploy(app)
    second = _renamed(SHIPPED_DIAGRAM, " (v2)")
    _save_in_modeler(services, users["olga"], second)
    _save_in_modeler(services, users["olga"], _renamed(SHIPPED_DIAGRAM, " (v3)"))
    folder = tmp_path / "processes"
    folder.mkdir()
    (folder / DIAGRAM).write_bytes(second)

    output = _cli_deploy(app, str(folder))

    assert [v.version for v in _versions(services)] == [1, 2, 3]
    assert "already deployed as version 2 of incident_management; the latest is version 3" in output


def test_a_new_release_of_a_shipped_diagram_still_deploys(app: Any, services: Any, users: Any, tmp_path: Path) -> None:
    _cli_deploy(app)
    _save_in_modeler(services, users["olga"], _renamed(SHIPPED_DIAGRAM, " (olga)"))
    release = tmp_path / "processes"
    shutil.copytree(ROOT / "processes", release)
    released = _renamed(SHIPPED_DIAGRAM, " (release 2)")
    (release / DIAGRAM).write_bytes(released)

    output = _cli_deploy(app, str(release), str(ROOT / "forms"))

    versions = _versions(services)
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[-1].bpmn_xml == released.decode() and versions[-1].is_latest
    assert f"{PROCESS}: version 3 (new version)" in output
    assert [v.version for v in _versions(services, "change_enablement")] == [1]


def test_restart_keeps_a_form_changed_in_the_desk(app: Any, services: Any, users: Any) -> None:
    _cli_deploy(app)
    latest = services.definitions.latest(PROCESS)
    form_name = next(t["form"] for t in latest.user_tasks if t.get("form"))
    form = json.loads((ROOT / "forms" / form_name).read_bytes())
    form["title"] = "Changed by olga"
    changed = json.dumps(form).encode()
    services.definitions.deploy(users["olga"], [(form_name, changed)], only_process=PROCESS)
    services.session.commit()
    assert [v.version for v in _versions(services)] == [1, 2]

    output = _cli_deploy(app)

    assert [v.version for v in _versions(services)] == [1, 2]
    assert services.session.scalar(select(DefinitionFile.content).where(DefinitionFile.name == form_name)) == changed
    assert f"{form_name}: skipped, already deployed" in output


def test_restart_keeps_a_catalog_translation_changed_in_the_desk(app: Any, services: Any, users: Any) -> None:
    _cli_deploy(app)
    shipped = json.loads((ROOT / "processes" / "catalog.json").read_text(encoding="utf-8"))
    [(name, content)] = catalog_translation_files(shipped)[:1]
    entries = json.loads(content)
    source = next(iter(entries))
    entries[source] = "olga's wording"
    mine = json.dumps(entries, ensure_ascii=False).encode()
    services.definitions.deploy(users["olga"], [(name, mine)])
    services.session.commit()

    _cli_deploy(app)

    services.session.expire_all()
    assert services.session.scalar(select(DefinitionFile.content).where(DefinitionFile.name == name)) == mine


def test_upload_of_earlier_content_outside_the_cli_still_makes_a_version(app: Any, services: Any, users: Any) -> None:
    """Only the folder deploy (keep_deployed) skips: an upload in the desk may roll back on purpose."""
    _cli_deploy(app)
    _save_in_modeler(services, users["olga"], _renamed(SHIPPED_DIAGRAM, " (v2)"))

    result = services.definitions.deploy(users["olga"], [(DIAGRAM, SHIPPED_DIAGRAM)])

    assert not result.skipped
    assert [v.version for v in _versions(services)] == [1, 2, 3]

    kept = services.definitions.deploy(None, [(DIAGRAM, _renamed(SHIPPED_DIAGRAM, " (v2)"))], keep_deployed=True)
    assert kept.deployment_id is None and [s.name for s in kept.skipped] == [DIAGRAM]
    assert kept.skipped[0].versions == ((PROCESS, 2, 3),)
    assert [v.version for v in _versions(services)] == [1, 2, 3]



def test_force_brings_back_content_deployed_before(app: Any, services: Any, users: Any, tmp_path: Path) -> None:
    """An administrator rolling back from the command line: --force deploys the file as it is."""
    _cli_deploy(app)
    _save_in_modeler(services, users["olga"], _renamed(SHIPPED_DIAGRAM, " (v2)"))
    folder = tmp_path / "processes"
    folder.mkdir()
    (folder / DIAGRAM).write_bytes(SHIPPED_DIAGRAM)
    _cli_deploy(app, str(folder))
    assert [v.version for v in _versions(services)] == [1, 2]  # skipped: version 1 held it
    _cli_deploy(app, "--force", str(folder))
    versions = _versions(services)
    assert [v.version for v in versions] == [1, 2, 3] and versions[-1].content_hash == versions[0].content_hash
