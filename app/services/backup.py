"""A whole desk in one file, and back: ``flask db backup`` / ``flask db restore``.

What a backup holds: every row of every table of the schema (app.models), read in one consistent
snapshot (PostgreSQL: one REPEATABLE READ transaction; SQLite: SQLite's online backup of the file,
then read from that copy), written as gzip-compressed JSON lines:

* a header: ``format``, ``version``, the Alembic ``schema`` revision, the source ``dialect``, when,
  and per table its columns and how each is encoded (``CODECS``);
* one line per row: ``[table index, [values in column order]]``;
* a footer: the row count per table and the SHA-256 of every line before it, so that a truncated or
  altered file is refused as a whole.

The format does not depend on the database: a SQLite desk restores into PostgreSQL and back (the
way to move the demo's data to production). JSON columns are kept as their JSON text, so a SQL NULL
stays SQL NULL and a JSON ``null`` stays ``null``.

A restore goes into a database at the same schema revision (``flask db upgrade`` of the same
release) that holds no data yet: what the migrations seed (the audit chain's head, the record
number sequences) is replaced, any other row makes it refuse, naming the table. It runs in one
transaction and commits only after the footer checked out: a refused or broken file leaves the
database as it was. On PostgreSQL the id sequences then continue after the restored ids. The audit
chain is restored as it was, so ``flask audit verify`` checks it under the desk's audit key: a desk
restored with another key reports that, and keeps refusing nothing else.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    LargeBinary,
    Numeric,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    func,
    select,
    text,
)

from app.errors import ValidationFailed
from app.models.base import Base, UTCDateTime

FORMAT = "processdesk-backup"
VERSION = 1
#: Rows per INSERT batch on restore, and per fetch on backup.
BATCH = 500
#: Tables the migrations fill in a new database: a restore replaces their rows.
SEEDED = frozenset({"audit_head", "record_sequence"})


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    schema: str
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _codec(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "datetime"
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, LargeBinary):
        return "bytes"
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return "decimal"
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, Date):
        return "date"
    return "plain"


def _tables() -> list[Table]:
    import app.models  # noqa: F401  (every model registers its table)

    return list(Base.metadata.sorted_tables)


def _encode(codec: str, value: Any) -> Any:
    if value is None:
        return None
    if codec in ("datetime", "date"):
        return value.isoformat()
    if codec == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if codec == "decimal":
        return str(value)
    return value


def _decode(codec: str, value: Any) -> Any:
    if value is None:
        return None
    if codec == "datetime":
        return datetime.fromisoformat(value)
    if codec == "bytes":
        return base64.b64decode(value)
    if codec == "decimal":
        return Decimal(value)
    if codec == "date":
        return date.fromisoformat(value)
    return value


def _selected(table: Table, codecs: list[str]) -> list[Any]:
    """The table's columns as read for a backup: JSON ones as their JSON text."""
    return [cast(column, Text).label(column.name) if codec == "json" else column
            for column, codec in zip(table.columns, codecs, strict=True)]


def schema_revision(connection: Connection) -> str:
    try:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # no such table: the database was never migrated
        raise ValidationFailed("the database has no schema: run `flask db upgrade` first",
                               details={"database": str(exc).splitlines()[0][:200]}) from exc
    if not revision:
        raise ValidationFailed("the database has no schema revision: run `flask db upgrade` first")
    return str(revision)


# -- backup --------------------------------------------------------------------------------------------


def write_backup(engine: Engine, path: Path, *, now: datetime) -> BackupSummary:
    """Write every row of ``engine``'s database to ``path`` (a new file: written beside it, then
    moved into place, so a failed backup leaves no half file under that name)."""
    path = Path(path)
    if path.exists():
        raise ValidationFailed(f"{path} exists already: choose a new file name", details={"path": str(path)})
    partial = path.with_name(path.name + ".partial")
    with _snapshot(engine) as connection:
        tables = _tables()
        header: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "schema": schema_revision(connection),
            "dialect": engine.dialect.name, "created_at": now.isoformat(),
            "tables": [{"name": t.name, "columns": [c.name for c in t.columns],
                        "codecs": [_codec(c) for c in t.columns]} for t in tables],
        }
        rows: dict[str, int] = {}
        digest = hashlib.sha256()
        try:
            with gzip.open(partial, "wb") as out:
                _write_line(out, digest, header)
                for index, (table, spec) in enumerate(zip(tables, header["tables"], strict=True)):
                    codecs = spec["codecs"]
                    count = 0
                    order = list(table.primary_key.columns) or list(table.columns)
                    # streamed (a server-side cursor on PostgreSQL): a large desk is never all in memory
                    result = connection.execute(select(*_selected(table, codecs)).order_by(*order)
                                                .execution_options(stream_results=True, yield_per=BATCH))
                    for row in result:
                        _write_line(out, digest, [index, [_encode(c, v) for c, v in zip(codecs, row, strict=True)]])
                        count += 1
                    rows[table.name] = count
                out.write(json.dumps({"end": True, "rows": rows, "sha256": digest.hexdigest()}).encode() + b"\n")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    return BackupSummary(path, header["schema"], rows)


def _write_line(out: Any, digest: Any, value: Any) -> None:
    line = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    digest.update(line)
    out.write(line)


class _snapshot:
    """A connection that reads the whole database as of one instant."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.copy_dir: str | None = None
        self.copy_engine: Engine | None = None
        self.connection: Connection | None = None

    def __enter__(self) -> Connection:
        if self.engine.dialect.name == "sqlite":
            # SQLite's online backup copies the file page by page, consistent as of its end.
            self.copy_dir = tempfile.mkdtemp(prefix="processdesk-backup-")
            target = os.path.join(self.copy_dir, "copy.sqlite3")
            raw = self.engine.raw_connection()
            try:
                destination = sqlite3.connect(target)
                try:
                    raw.driver_connection.backup(destination)  # type: ignore[union-attr]
                finally:
                    destination.close()
            finally:
                raw.close()
            self.copy_engine = create_engine(f"sqlite:///{target}")
            self.connection = self.copy_engine.connect()
        else:
            self.connection = self.engine.connect().execution_options(isolation_level="REPEATABLE READ")
            self.connection.begin()
        return self.connection

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()
        if self.copy_engine is not None:
            self.copy_engine.dispose()
        if self.copy_dir is not None:
            shutil.rmtree(self.copy_dir, ignore_errors=True)


# -- restore -------------------------------------------------------------------------------------------


#: The user table's references to other users, set once every user is in (the one referred to may come later).
USER_SELF_REFERENCES = ("manager_id", "delegate_id")


def read_backup(engine: Engine, path: Path) -> BackupSummary:
    """Restore ``path`` into ``engine``'s database (see the module's rules); all or nothing."""
    path = Path(path)
    if not path.is_file():
        raise ValidationFailed(f"no backup file {path}", details={"path": str(path)})
    tables = {t.name: t for t in _tables()}
    with engine.connect() as connection, connection.begin():
        revision = schema_revision(connection)
        lines = _lines(path)
        digest = hashlib.sha256()
        header = _header(next(lines, None), digest, revision, tables)
        _require_empty(connection, tables)
        specs = header["tables"]
        counts = {spec["name"]: 0 for spec in specs}
        pending: dict[int, list[dict[str, Any]]] = {}
        later: list[dict[str, Any]] = []
        footer = None
        for number, raw in enumerate(lines, start=2):
            value = _parse(raw, number)
            if isinstance(value, dict):
                footer = value
                if next(lines, None) is not None:
                    raise _broken(f"line {number + 1}: data after the end of the backup")
                break
            digest.update(raw)
            if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
                    and 0 <= value[0] < len(specs) and isinstance(value[1], list)
                    and len(value[1]) == len(specs[value[0]]["columns"])):
                raise _broken(f"line {number}: not a row of a listed table")
            index, values = value
            spec = specs[index]
            row = {name: _decode(codec, v) for name, codec, v in zip(spec["columns"], spec["codecs"], values, strict=True)}
            if spec["name"] == "user" and any(row.get(column) is not None for column in USER_SELF_REFERENCES):
                # a manager (a delegate) may come after the people reporting to them: set once all are in
                later.append({"user_id": row["id"], **{f"_{column}": row.get(column) for column in USER_SELF_REFERENCES}})
                row.update(dict.fromkeys(USER_SELF_REFERENCES))
            pending.setdefault(index, []).append(row)
            counts[spec["name"]] += 1
            if len(pending[index]) >= BATCH:
                # the last rows of the tables before it (fewer than a batch) first: it may refer to them
                for earlier in sorted(i for i in pending if i < index):
                    _insert(connection, tables[specs[earlier]["name"]], specs[earlier], pending.pop(earlier))
                _insert(connection, tables[spec["name"]], spec, pending.pop(index))
        if footer is None:
            raise _broken("the file ends before its last line: it was cut off")
        if footer.get("sha256") != digest.hexdigest() or footer.get("rows") != counts:
            raise _broken("its content does not match its checksum: the file was altered or damaged")
        for index in sorted(pending):
            _insert(connection, tables[specs[index]["name"]], specs[index], pending[index])
        if later:
            user = tables["user"]
            connection.execute(user.update().where(user.c.id == bindparam("user_id")).values(
                {column: bindparam(f"_{column}") for column in USER_SELF_REFERENCES}), later)
        if engine.dialect.name == "postgresql":
            _continue_sequences(connection, tables.values())
    return BackupSummary(path, revision, counts)


def _lines(path: Path) -> Iterator[bytes]:
    try:
        with gzip.open(path, "rb") as source:
            yield from source
    except (OSError, EOFError) as exc:
        raise _broken(f"it is not a readable gzip file ({exc})") from exc


def _parse(raw: bytes, number: int) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _broken(f"line {number} is not JSON") from exc


def _broken(why: str) -> ValidationFailed:
    return ValidationFailed(f"not a usable processdesk backup: {why}; nothing was restored",
                            details={"file": why})


def _header(raw: bytes | None, digest: Any, revision: str, tables: dict[str, Table]) -> dict[str, Any]:
    if raw is None:
        raise _broken("the file is empty")
    header = _parse(raw, 1)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _broken("line 1 is not a processdesk backup header")
    if header.get("version") != VERSION:
        raise _broken(f"format version {header.get('version')!r}; this release reads version {VERSION}")
    if header.get("schema") != revision:
        raise ValidationFailed(
            f"the backup is of schema {header.get('schema')}, this database is at {revision}: restore it into a "
            "database made by `flask db upgrade` of the release that wrote it; nothing was restored",
            details={"schema": {"backup": header.get("schema"), "database": revision}})
    for spec in header.get("tables") or []:
        table = tables.get(spec.get("name"))
        if table is None or spec.get("columns") != [c.name for c in table.columns]:
            raise _broken(f"table {spec.get('name')!r} does not match this release's schema")
    digest.update(raw)
    return header


def _require_empty(connection: Connection, tables: dict[str, Table]) -> None:
    holding = {}
    for name, table in tables.items():
        if name in SEEDED:
            continue
        count = connection.execute(select(func.count()).select_from(table)).scalar_one()
        if count:
            holding[name] = count
    if holding:
        raise ValidationFailed("the database holds data already: restore into a new one (made by `flask db upgrade`); "
                               "nothing was restored", details={"tables": holding})
    for name in sorted(SEEDED & tables.keys()):
        connection.execute(tables[name].delete())


def _insert(connection: Connection, table: Table, spec: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    # JSON columns get their JSON text as it was (SQL NULL stays NULL, JSON null stays null):
    # bound as text under another name, cast on PostgreSQL; the other columns bind by their types.
    json_columns = [c for c, codec in zip(table.columns, spec["codecs"], strict=True) if codec == "json"]
    statement = table.insert()
    if json_columns:
        postgres = connection.dialect.name == "postgresql"
        statement = statement.values({
            column.name: cast(bindparam(f"{column.name}__json", type_=Text), column.type) if postgres
            else bindparam(f"{column.name}__json", type_=Text) for column in json_columns})
        renamed = {column.name: f"{column.name}__json" for column in json_columns}
        rows = [{renamed.get(key, key): value for key, value in row.items()} for row in rows]
    connection.execute(statement, rows)


def _continue_sequences(connection: Connection, tables: Any) -> None:
    for table in tables:
        for column in table.primary_key.columns:
            sequence = connection.execute(text("SELECT pg_get_serial_sequence(:table, :column)"),
                                          {"table": f'"{table.name}"', "column": column.name}).scalar()
            if sequence:
                connection.execute(text(f'SELECT setval(:sequence, COALESCE((SELECT MAX("{column.name}") FROM '
                                        f'"{table.name}"), 1), (SELECT MAX("{column.name}") FROM "{table.name}") IS NOT NULL)'),
                                   {"sequence": sequence})
