"""``flask db backup`` / ``flask db restore`` (app/services/backup.py) on real, committed databases:
a desk with a running incident is written out, restored into a new database, and works on there
(the instance continues, numbers and ids go on, the audit chain verifies); a file that is cut off,
altered, of another schema, or a database that holds data already, is refused with nothing written.
On the PostgreSQL run a SQLite desk is also moved into PostgreSQL.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Text, cast, create_engine, func, select

from app import create_app
from app.errors import ValidationFailed
from app.models import AuditEvent, User
from app.services.backup import _tables, read_backup, write_backup
from app.services.two_step import step_at, totp
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url
from tests.http.desk import Desk

START = {"title": "Printer jams", "description": "PR-204 jams on every page", "category": "hardware",
         "impact": "medium", "urgency": "medium"}


class Live:
    """An app on its own committed database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
        self.ext = self.app.extensions["processdesk"]
        self.services = self.ext.services()

    def close(self) -> None:
        self.services.session.close()
        self.ext.db_engine.dispose()


@pytest.fixture()
def made(tmp_path: Path) -> Iterator[list[Live]]:
    lives: list[Live] = []
    yield lives
    for live in lives:
        live.close()
        drop_fresh_database(live.url)


def new_desk(made: list[Live], tmp_path: Path, label: str, url: str | None = None) -> Live:
    live = Live(url or fresh_database_url(tmp_path, label))
    made.append(live)
    return live


def working_desk(live: Live) -> tuple[Desk, str]:
    """Users, the shipped processes, and an incident resolved and waiting for its requester."""
    desk = Desk(live.app.test_client(), live.services)
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "hardware", "priority": "P3", "assignment_group": "NetworkTeam"})
    comment = desk.client.post(f"/api/v1/tickets/{number}/comments", json={"body": "Looking at it"},
                               headers=desk.auth("nina"))
    assert comment.status_code == 201, comment.get_json()
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Cleaned the rollers",
                                                  "cause_category": "hardware_failure"})
    # an asset (dates and a cost) with a maintenance window: columns of every kind travel
    asset = desk.client.post("/api/v1/cis", headers=desk.auth("ada"), json={
        "name": "lt-0042", "class": "hardware", "asset_tag": "AT-0042", "assigned_to": "rita",
        "purchased_on": "2024-02-01", "warranty_until": "2027-01-31", "cost": "1299.50"})
    assert asset.status_code == 201, asset.get_json()
    window = desk.client.post("/api/v1/cis/lt-0042/windows", headers=desk.auth("ada"), json={
        "days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "Europe/Berlin"})
    assert window.status_code == 201, window.get_json()
    # a line manager away, her delegate another user (a reference from the user table to itself)
    now = live.services.runtime.clock.now()
    away = desk.client.put("/api/v1/users/me/away", headers=desk.auth("mona"), json={
        "delegate": "cora", "from": (now + timedelta(days=1)).isoformat(), "until": (now + timedelta(days=15)).isoformat()})
    assert away.status_code == 200, away.get_json()
    # a service status notice tied to the incident, updated, with a requester it affects
    notice = desk.client.post("/api/v1/status", headers=desk.auth("alex"), json={
        "title": "Printers down", "level": "outage", "body": "No printing on floor 2.", "record": number})
    assert notice.status_code == 201, notice.get_json()
    assert desk.client.put(f"/api/v1/status/{notice.get_json()['id']}/affected", headers=desk.auth("rita"),
                           json={"affected": True}).status_code == 200
    assert desk.client.post(f"/api/v1/status/{notice.get_json()['id']}/updates", headers=desk.auth("nina"),
                            json={"version": 1, "body": "Rollers cleaned.", "level": "degraded"}).status_code == 200
    # an admin with two-step sign-in: a sealed secret, its last step and hashed recovery codes
    begun = desk.client.post("/api/v1/users/me/two-step/setup", headers=desk.auth("ada"))
    assert begun.status_code == 200, begun.get_json()
    on = desk.client.post("/api/v1/users/me/two-step/confirm", headers=desk.auth("ada"),
                          json={"code": app_code(begun.get_json()["secret"], now), "current_password": "password-1234"})
    assert on.status_code == 200, on.get_json()
    live.services.session.commit()
    return desk, number


def app_code(secret: str, moment: Any, steps: int = 0) -> str:
    """The code an authenticator app with ``secret`` (base32) shows at ``moment``."""
    return totp(base64.b32decode(secret + "=" * (-len(secret) % 8)), step_at(moment) + steps)


def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in key order, JSON columns as (IS NULL, decoded value)."""
    engine = create_engine(url)
    found = {}
    try:
        with engine.connect() as connection:
            for table in _tables():
                order = list(table.primary_key.columns) or list(table.columns)
                columns = []
                for column in table.columns:
                    columns.append(column)
                    if column.type.__class__.__name__ == "JSON":
                        columns.append(cast(column, Text).is_(None))
                found[table.name] = [tuple(row) for row in connection.execute(select(*columns).order_by(*order))]
    finally:
        engine.dispose()
    return found


def test_a_desk_restored_into_a_new_database_is_the_same_desk_and_works_on(made, tmp_path):
    source = new_desk(made, tmp_path, "backup_source")
    _desk, number = working_desk(source)
    path = tmp_path / "desk.pdbak.gz"
    summary = write_backup(source.ext.db_engine, path, now=source.services.runtime.clock.now())
    assert summary.rows["ticket"] == 1 and summary.rows["audit_event"] > 10 and summary.rows["user"] == len(
        source.services.session.scalars(select(User)).all())
    with pytest.raises(ValidationFailed) as existing:  # never over an older backup
        write_backup(source.ext.db_engine, path, now=source.services.runtime.clock.now())
    assert existing.value.details == {"path": str(path)}

    target = new_desk(made, tmp_path, "backup_target")
    restored = read_backup(target.ext.db_engine, path)
    assert restored.rows == summary.rows
    assert table_rows(target.url) == table_rows(source.url)
    assert target.services.audit.verify().ok

    # the restored desk goes on: the requester confirms, new records and rows follow the old ones
    desk = Desk.__new__(Desk)
    desk.client, desk.services, desk.headers = target.app.test_client(), target.services, {}
    assert desk.record(number)["status"] == "resolved"
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    assert desk.record(number)["status"] == "closed"
    assert desk.start("rita", "incident_management", START)["data"]["record_number"] == "INC-000002"
    target.services.session.commit()
    assert target.services.audit.verify().ok
    # the status notice came along with its timeline and who it affects
    status = desk.client.get("/api/v1/status", headers=desk.auth("rita")).get_json()["current"]
    assert [(n["title"], n["level"], n["record"], n["affects_me"], n["version"]) for n in status] == [
        ("Printers down", "degraded", number, True, 2)]
    # the admin's two-step sign-in came along, readable under the same key
    state = desk.client.get("/api/v1/users/me/two-step", headers=desk.auth("ada")).get_json()
    assert state["enabled"] is True and state["recovery_codes_left"] == 10
    password_only = desk.client.post("/api/v1/auth/token", json={"username": "ada", "password": "password-1234"})
    assert password_only.status_code == 401 and password_only.get_json()["error"] == "code_required"


def test_what_cannot_be_restored_is_refused_with_nothing_written(made, tmp_path):
    source = new_desk(made, tmp_path, "backup_refusals")
    working_desk(source)
    path = tmp_path / "desk.pdbak.gz"
    write_backup(source.ext.db_engine, path, now=source.services.runtime.clock.now())
    lines = gzip.open(path, "rb").read().splitlines(keepends=True)
    target = new_desk(made, tmp_path, "backup_refusals_target")

    def refused(content: list[bytes], name: str) -> ValidationFailed:
        broken = tmp_path / name
        with gzip.open(broken, "wb") as out:
            out.writelines(content)
        with pytest.raises(ValidationFailed) as caught:
            read_backup(target.ext.db_engine, broken)
        with target.ext.db_engine.connect() as connection:  # nothing of it stayed
            assert connection.scalar(select(func.count()).select_from(User)) == 0
            assert connection.scalar(select(func.count()).select_from(AuditEvent)) == 0
        return caught.value

    assert "cut off" in refused(lines[:-1], "cut.gz").message
    assert "cut off" in refused(lines[: len(lines) // 2], "half.gz").message
    altered = [line.replace(b"Printer jams", b"Printer fine") for line in lines]
    assert altered != lines and "checksum" in refused(altered, "altered.gz").message
    header = json.loads(lines[0])
    other = [json.dumps({**header, "schema": "0001"}).encode() + b"\n", *lines[1:]]
    assert refused(other, "schema.gz").details["schema"]["backup"] == "0001"
    assert "not a processdesk backup" in refused([b'{"hello": 1}\n'], "other.gz").message
    plain = tmp_path / "plain.txt"
    plain.write_text("not gzip")
    with pytest.raises(ValidationFailed, match="gzip"):
        read_backup(target.ext.db_engine, plain)

    # a database with data in it is never written over
    events = source.services.session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(ValidationFailed) as holding:
        read_backup(source.ext.db_engine, path)
    assert holding.value.details["tables"]["ticket"] == 1
    assert source.services.session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_the_commands_write_and_restore_and_check_the_chain(made, tmp_path):
    source = new_desk(made, tmp_path, "backup_cli")
    working_desk(source)
    path = tmp_path / "cli.pdbak.gz"
    written = source.app.test_cli_runner().invoke(args=["db", "backup", str(path)])
    assert written.exit_code == 0 and "backup written to" in written.output, written.output
    target = new_desk(made, tmp_path, "backup_cli_target")
    restored = target.app.test_cli_runner().invoke(args=["db", "restore", str(path)])
    assert restored.exit_code == 0, restored.output
    assert "audit chain intact" in restored.output
    again = target.app.test_cli_runner().invoke(args=["db", "restore", str(path)])
    assert again.exit_code == 1 and "holds data already" in again.output


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                    reason="moving a SQLite desk into PostgreSQL needs TEST_DATABASE_URL")
def test_a_sqlite_desk_moves_into_postgresql(made, tmp_path):
    from app.cli import upgrade_database

    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    upgrade_database(url)
    source = new_desk(made, tmp_path, "unused", url)
    _desk, number = working_desk(source)
    path = tmp_path / "move.pdbak.gz"
    write_backup(source.ext.db_engine, path, now=source.services.runtime.clock.now())
    target = new_desk(made, tmp_path, "backup_moved")
    read_backup(target.ext.db_engine, path)
    assert table_rows(target.url).keys() == table_rows(source.url).keys()
    assert target.services.audit.verify().ok
    desk = Desk.__new__(Desk)
    desk.client, desk.services, desk.headers = target.app.test_client(), target.services, {}
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    assert desk.start("rita", "incident_management", START)["data"]["record_number"] == "INC-000002"


def test_a_restore_inserts_a_table_after_the_tables_it_refers_to_whatever_their_sizes(made, tmp_path, monkeypatch):
    """A table that fills a batch is written at once; the last rows of the tables before it (fewer
    than a batch, so still waiting) go in first, or its foreign keys find no row to refer to (QA:
    a desk with 500 API tokens and 11 users could not be restored)."""
    from app.services import backup

    source = new_desk(made, tmp_path, "batch_source")
    working_desk(source)
    path = tmp_path / "desk.pdbak.gz"
    summary = write_backup(source.ext.db_engine, path, now=source.services.runtime.clock.now())
    monkeypatch.setattr(backup, "BATCH", 4)
    target = new_desk(made, tmp_path, "batch_target")
    assert read_backup(target.ext.db_engine, path).rows == summary.rows
    assert table_rows(target.url) == table_rows(source.url)
    assert target.services.audit.verify().ok
