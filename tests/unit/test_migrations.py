"""The Alembic migrations build the schema the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.cli import alembic_config
from app.models import Base
from tests.conftest import drop_fresh_database, fresh_database_url


def ticket_indexes(engine):
    return {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("ticket")}


def test_migrated_schema_matches_the_models(db_engine):
    with db_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_record_list_index_holds_the_list_order(db_engine):
    indexes = ticket_indexes(db_engine)
    assert indexes["ix_ticket_kind_status_opened_id"] == ["kind", "status", "opened_at", "id"]
    assert "ix_ticket_kind_status_opened" not in indexes  # replaced: the new one serves its uses


def test_list_order_index_migration_downgrades_and_upgrades_again(tmp_path):
    url = fresh_database_url(tmp_path, "migrate")
    engine = create_engine(url)
    try:
        command.downgrade(alembic_config(url), "0007")
        engine.dispose()
        indexes = ticket_indexes(engine)
        assert indexes["ix_ticket_kind_status_opened"] == ["kind", "status", "opened_at"]
        assert "ix_ticket_kind_status_opened_id" not in indexes
        command.upgrade(alembic_config(url), "head")
        engine.dispose()
        assert ticket_indexes(engine)["ix_ticket_kind_status_opened_id"] == ["kind", "status", "opened_at", "id"]
    finally:
        engine.dispose()
        drop_fresh_database(url)
