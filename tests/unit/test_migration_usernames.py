"""Migration 0019 makes usernames case-insensitive with a unique index on lower(username); a
database holding names equal but for case stops the upgrade, named, with nothing changed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import Boolean, Integer, String, column, create_engine, inspect, table, text

from app.cli import alembic_config
from app.models.base import UTCDateTime
from tests.conftest import drop_fresh_database, fresh_database_url

USER = table("user", column("id", Integer), column("username", String), column("display_name", String),
             column("password_hash", String), column("active", Boolean), column("token_generation", Integer),
             column("email_opt_out", Boolean), column("created_at", UTCDateTime()))
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
INDEX = "uq_user_username_lower"


def index_names(engine):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'user'")
                            if engine.dialect.name == "postgresql" else
                            text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'user'"))
        return {row[0] for row in rows}


def version(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_names_equal_but_for_case_stop_the_upgrade_naming_them_and_change_nothing(tmp_path):
    url = fresh_database_url(tmp_path, "usernames")
    engine = create_engine(url)
    try:
        assert INDEX in index_names(engine)
        command.downgrade(alembic_config(url), "0018")
        engine.dispose()
        assert INDEX not in index_names(engine)
        with engine.begin() as conn:
            for number, name in enumerate(["Alex", "alex", "bob", "BOB", "Bob", "carol"], start=1):
                conn.execute(USER.insert().values(id=number, username=name, display_name=name, password_hash="x",
                                                  active=True, token_generation=0, email_opt_out=False,
                                              created_at=NOW))
        with pytest.raises(Exception, match="usernames must differ in more than letter case") as refused:
            command.upgrade(alembic_config(url), "0019")
        message = str(refused.value)
        assert "'Alex', 'alex'" in message and "'BOB', 'Bob', 'bob'" in message and "carol" not in message
        assert "nothing was changed" in message
        engine.dispose()
        assert version(engine) == "0018" and INDEX not in index_names(engine)

        with engine.begin() as conn:  # the administrator renames them, and runs it again
            conn.execute(text("UPDATE \"user\" SET username = 'alex.old' WHERE id = 1"))
            conn.execute(text("UPDATE \"user\" SET username = username || id WHERE id IN (4, 5)"))
        command.upgrade(alembic_config(url), "0019")
        engine.dispose()
        assert version(engine) == "0019" and INDEX in index_names(engine)
        with engine.begin() as conn, pytest.raises(Exception, match="(?i)unique"):
            conn.execute(USER.insert().values(id=9, username="CAROL", display_name="c", password_hash="x",
                                              active=True, token_generation=0, email_opt_out=False,
                                              created_at=NOW))
        command.downgrade(alembic_config(url), "0018")
        engine.dispose()
        assert INDEX not in index_names(engine)
        assert not inspect(engine).get_indexes("user") or all(ix["name"] != INDEX for ix in inspect(engine).get_indexes("user"))
    finally:
        engine.dispose()
        drop_fresh_database(url)
