"""The test driver's desk written from an earlier test's rows (tests/http/desk.py ``_Snapshot``)
is the desk made anew: every table holds the same rows, and it works the same."""

from __future__ import annotations

from typing import Any

from tests.http.desk import Desk, _dump, _tables

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium"}


def rows(services: Any) -> dict[str, list[dict[str, Any]]]:
    return _dump(services.session.connection(), _tables())


#: What differs between two makings of the same desk: a password's salt, and the wall-clock
#: creation time of users and groups (the models' default, not the desk's clock).
UNEQUAL = {"user": ("password_hash", "created_at"), "group": ("created_at",)}


def comparable(dump: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {name: [{key: value for key, value in row.items() if key not in UNEQUAL.get(name, ())} for row in table]
            for name, table in dump.items()}


def test_a_written_desk_holds_the_rows_a_made_one_does(client: Any, services: Any, connection: Any) -> None:
    Desk(client, services, snapshot=False)
    made_rows = rows(services)
    assert len(made_rows["user"]) == 17 and made_rows["process_definition"] and made_rows["audit_event"]
    # back to the migrated database (the test's transaction holds what the desk wrote in a savepoint)
    services.session.close()
    connection.rollback()
    connection.begin()
    Desk(client, services)  # the first of its kind: made, and its rows kept
    services.session.close()
    connection.rollback()
    connection.begin()
    assert rows(services)["user"] == []
    written = Desk(client, services)  # written from those rows
    now = rows(services)
    if services.session.connection().dialect.name == "sqlite":
        assert comparable(now) == comparable(made_rows)
    else:  # PostgreSQL's sequences go on across rollbacks: another making gave other ids (and hashes)
        assert {name: len(table) for name, table in now.items()} == {name: len(table) for name, table in made_rows.items()}
        assert [row["username"] for row in now["user"]] == [row["username"] for row in made_rows["user"]]
    assert services.audit.verify().ok  # the audit chain the rows carry holds
    # and it works: a requester reports an incident, the desk's agent triages it
    number = written.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    written.complete(number, "triage", "alex", {"category": "network", "priority": "P3",
                                                "assignment_group": "NetworkTeam"})
    assert written.ready(number) == ["investigate"]
    assert client.post("/api/v1/auth/token", json={"username": "nina", "password": "password-1234"}).status_code == 200
