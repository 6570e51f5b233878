"""Migration 0022 makes group names case-insensitive with a unique index on lower(name); a database
holding names equal but for case stops the upgrade, naming them, with nothing changed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import Integer, String, column, create_engine, inspect, table, text

from app.cli import alembic_config
from app.models.base import UTCDateTime
from tests.conftest import drop_fresh_database, fresh_database_url

GROUP = table("group", column("id", Integer), column("name", String), column("created_at", UTCDateTime()))
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
INDEX = "uq_group_name_lower"


def index_names(engine):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'group'")
                            if engine.dialect.name == "postgresql" else
                            text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'group'"))
        return {row[0] for row in rows}


def version(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_group_names_equal_but_for_case_stop_the_upgrade_naming_them_and_change_nothing(tmp_path):
    url = fresh_database_url(tmp_path, "groupnames")
    engine = create_engine(url)
    try:
        assert INDEX in index_names(engine)
        command.downgrade(alembic_config(url), "0021")
        engine.dispose()
        assert INDEX not in index_names(engine) and version(engine) == "0021"
        with engine.begin() as conn:
            for number, name in enumerate(["ServiceDesk", "servicedesk", "cab", "CAB", "Cab", "NetworkTeam"], start=1):
                conn.execute(GROUP.insert().values(id=number, name=name, created_at=NOW))
        with pytest.raises(Exception, match="group names must differ in more than letter case") as refused:
            command.upgrade(alembic_config(url), "0022")
        message = str(refused.value)
        assert "'ServiceDesk', 'servicedesk'" in message and "'CAB', 'Cab', 'cab'" in message
        assert "NetworkTeam" not in message and "nothing was changed" in message
        engine.dispose()
        assert version(engine) == "0021" and INDEX not in index_names(engine)

        with engine.begin() as conn:  # the administrator merges or renames them, and runs it again
            conn.execute(text("DELETE FROM \"group\" WHERE id = 2"))
            conn.execute(text("UPDATE \"group\" SET name = name || id WHERE id IN (4, 5)"))
        command.upgrade(alembic_config(url), "0022")
        engine.dispose()
        assert version(engine) == "0022" and INDEX in index_names(engine)
        with engine.begin() as conn, pytest.raises(Exception, match="(?i)unique"):
            conn.execute(GROUP.insert().values(id=9, name="NETWORKTEAM", created_at=NOW))
        command.downgrade(alembic_config(url), "0021")
        engine.dispose()
        assert INDEX not in index_names(engine)
        assert all(ix["name"] != INDEX for ix in inspect(engine).get_indexes("group"))
    finally:
        engine.dispose()
        drop_fresh_database(url)
