"""A driver for end-to-end tests of the shipped ITSM processes through the HTTP API.

``Desk`` deploys processes/ and forms/ (and the catalog) like `flask processes deploy`, creates a
realistic set of users and groups, and offers small verbs: start a record, find the ready task
with a BPMN id as a given user, complete it (asserting the HTTP status), read the record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Integer, Table, delete, func, insert, select, text

from app.cli import CATALOG_FILE
from app.services.backup import _tables
from app.services.content_texts import catalog_translation_files

ROOT = Path(__file__).resolve().parents[2]
#: A laptop order (catalog item HW-LAPTOP) as the API takes it: under the budget threshold, so a
#: requester's line manager approves it (the budget owners when there is none to ask).
LAPTOP = {"justification": "The battery swells; the laptop is four years old.", "replacement": False,
          "keyboard_layout": "UK", "delivery_location": "Main building 2.17"}

#: username -> (roles, groups). Enough people for separation of duties and a CAB of three.
PEOPLE: dict[str, tuple[list[str], list[str]]] = {
    "rita": (["requester"], ["Requesters"]),
    "mona": (["approver", "requester"], ["LineManagers"]),
    "alex": (["agent", "requester"], ["ServiceDesk"]),
    "nina": (["agent"], ["NetworkTeam", "DesktopSupport", "ApplicationSupport"]),
    "mike": (["agent"], ["MajorIncidentManagers"]),
    "sonia": (["agent"], ["ServiceOwners"]),
    "paul": (["agent"], ["ProblemManagers"]),
    "cora": (["approver"], ["ChangeManagers"]),
    "cab1": (["approver"], ["CAB"]),
    "cab2": (["approver"], ["CAB"]),
    "cab3": (["approver"], ["CAB"]),
    "emma": (["approver"], ["EmergencyCAB"]),
    "ivan": (["agent"], ["Implementers", "IdentityTeam", "MessagingTeam", "SoftwareLicensing", "Facilities"]),
    "bob": (["approver"], ["BudgetOwners"]),
    "olga": (["process_owner"], []),
    "aude": (["auditor"], []),
    "ada": (["admin"], []),
}


def shipped_files() -> list[tuple[str, bytes]]:
    files = []
    for folder in (ROOT / "processes", ROOT / "forms"):
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix in (".bpmn", ".dmn", ".json") and path.name != CATALOG_FILE:
                files.append((path.name, path.read_bytes()))
    return files


def _dump(connection: Connection, tables: list[Table]) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``tables``, in primary key order."""
    return {table.name: [dict(row._mapping) for row in connection.execute(
        select(table).order_by(*table.primary_key.columns))] for table in tables}


class _Snapshot:
    """The rows a desk's making wrote (the tables it changed, as they were after it), and the row
    counts of every table before it: a test whose database holds as many rows in each table (its
    transaction starts from the migrated database, as every test's does) gets the same rows written
    in one INSERT per table instead of making its desk again (users, groups, deploys, the catalog
    and their audit events: a fifth of a second a test, most of many tests' set-up)."""

    def __init__(self, before: tuple[int, ...], changed: list[Table], rows: dict[str, list[dict[str, Any]]]) -> None:
        self.before, self.changed, self.rows = before, changed, rows

    def write(self, connection: Connection) -> None:
        for table in reversed(self.changed):  # rows the migrations wrote that the desk changed go first
            connection.execute(delete(table))
        for table in self.changed:  # one statement a table: a row may name one after it (rita's manager)
            if self.rows[table.name]:
                connection.execute(insert(table).values(self.rows[table.name]))
        if connection.dialect.name == "postgresql":  # the ids given here are not the sequences' own
            for table in self.changed:
                column = table.c.get("id")
                if column is not None and isinstance(column.type, Integer) and self.rows[table.name]:
                    connection.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), :top)"),
                        {"top": max(row["id"] for row in self.rows[table.name])})


#: Made desks, by what their rows depend on: the database, the clock's time, the app's settings.
_SNAPSHOTS: dict[Any, _Snapshot] = {}


def _counts(connection: Connection, tables: list[Table]) -> tuple[int, ...]:
    counts = [select(func.count()).select_from(table).scalar_subquery() for table in tables]
    return tuple(connection.execute(select(*counts)).one())


class Desk:
    def __init__(self, client: Any, services: Any, *, snapshot: bool = True) -> None:
        """The shipped desk in the test's database; written from the rows an earlier test's
        making of it wrote when the database is as that test's was (``_Snapshot``; ``snapshot=False``
        or ``PROCESSDESK_TEST_DESK_SNAPSHOT=0`` makes it anew, as the first test does)."""
        self.client = client
        self.services = services
        self.headers: dict[str, dict[str, str]] = {}
        if not snapshot or os.environ.get("PROCESSDESK_TEST_DESK_SNAPSHOT") == "0":
            self._make()
            return
        connection = services.session.connection()
        tables = _tables()
        config = client.application.config
        key = (str(connection.engine.url), services.runtime.clock.now(),
               tuple(sorted((name, value) for name, value in config.items()
                            if isinstance(value, str | int | float | bool) or value is None)))
        before = _counts(connection, tables)
        made = _SNAPSHOTS.get(key)
        if made is not None and made.before == before:
            made.write(connection)
            services.session.commit()  # as making it does: a test's rollback keeps the desk
            return
        rows_before = _dump(connection, tables)
        self._make()
        connection = services.session.connection()
        rows_after = _dump(connection, tables)
        changed = [table for table in tables if rows_before[table.name] != rows_after[table.name]]
        _SNAPSHOTS[key] = _Snapshot(before, changed, {table.name: rows_after[table.name] for table in changed})

    def _make(self) -> None:
        services = self.services
        users = services.users
        for name, (roles, groups) in PEOPLE.items():
            users.create_user(name, "password-1234", roles=roles, groups=groups)
        users.set_manager("rita", "mona")
        services.session.commit()
        olga = users.get_by_username("olga")
        services.definitions.deploy(olga, shipped_files())
        catalog = ROOT / "processes" / CATALOG_FILE
        if catalog.exists():
            document = json.loads(catalog.read_text())
            services.catalog.load(document, olga)
            services.definitions.deploy(olga, catalog_translation_files(document))
        services.session.commit()

    def auth(self, username: str) -> dict[str, str]:
        if username not in self.headers:
            token = self.services.users.issue_token(self.services.users.get_by_username(username))["token"]
            self.services.session.commit()
            self.headers[username] = {"Authorization": f"Bearer {token}"}
        return self.headers[username]

    # -- verbs ----------------------------------------------------------------------------------------

    def start(self, who: str, process_id: str, data: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/api/v1/instances", headers=self.auth(who), json={"process_id": process_id, "data": data})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def record(self, number: str, who: str = "aude") -> dict[str, Any]:
        response = self.client.get(f"/api/v1/tickets/{number}", headers=self.auth(who))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def notifications(self, who: str) -> list[dict[str, Any]]:
        """The in-app notifications of ``who``, newest first."""
        response = self.client.get("/api/v1/notifications?per_page=100", headers=self.auth(who))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"]  # type: ignore[no-any-return]

    def instance(self, instance_id: int, who: str = "aude") -> dict[str, Any]:
        return self.client.get(f"/api/v1/instances/{instance_id}", headers=self.auth(who)).get_json()

    def ready(self, number: str) -> list[str]:
        return sorted(t["bpmn_id"] for t in self.record(number)["open_tasks"])

    def task_id(self, number: str, bpmn_id: str, who: str | None = None) -> int:
        matches = [t for t in self.record(number)["open_tasks"] if t["bpmn_id"] == bpmn_id]
        assert matches, f"{bpmn_id} not ready on {number}; ready: {self.ready(number)}"
        if who is not None:
            # the task must be in the user's inbox, as a person would find it
            # (the group queue, or Mine: a task claimed for them, like a reopened incident's)
            inbox = [task for mine in (0, 1) for task in self.client.get(
                f"/api/v1/tasks?per_page=200&mine={mine}", headers=self.auth(who)).get_json()["items"]]
            mine = [t["id"] for t in inbox if t["id"] in {m["id"] for m in matches}]
            assert mine, f"{bpmn_id} of {number} is not in {who}'s inbox"
            return mine[0]
        return matches[0]["id"]

    def complete(self, number: str, bpmn_id: str, who: str, data: dict[str, Any], status: int = 200) -> dict[str, Any]:
        task_id = self.task_id(number, bpmn_id, who if status == 200 else None)
        response = self.client.post(f"/api/v1/tasks/{task_id}/complete", headers=self.auth(who), json={"data": data})
        assert response.status_code == status, (bpmn_id, who, response.status_code, response.get_json())
        return response.get_json()

    def history(self, instance_id: int) -> list[dict[str, Any]]:
        return self.client.get(f"/api/v1/instances/{instance_id}/history", headers=self.auth("aude")).get_json()["events"]


@contextmanager
def committed_desk(tmp_path: Path, label: str) -> Iterator[tuple[Any, Desk]]:
    """(the app, a Desk on it) on a database of its own that requests really commit to (a SQLite
    file, or a new PostgreSQL database when TEST_DATABASE_URL is set), for race tests whose
    threads each send requests with their own client; the database is dropped after."""
    from app import create_app
    from app.clock import FrozenClock
    from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url

    url = fresh_database_url(tmp_path, label)
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url}, clock=FrozenClock())
    services = application.extensions["processdesk"].services()
    try:
        yield application, Desk(application.test_client(), services)
    finally:
        services.session.close()
        application.extensions["processdesk"].db_engine.dispose()
        drop_fresh_database(url)
