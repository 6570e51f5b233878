"""Shared fixtures: a real database built by the Alembic migrations, a savepoint per test.

The suite runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set (CI does
both). In CI an unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import sessionmaker
from werkzeug.routing import Rule

from app import create_app
from app.cli import upgrade_database
from app.clock import FrozenClock
from app.db import make_engine

FIXTURES = Path(__file__).parent / "fixtures"
TEST_PASSWORD = "correct-horse-battery"


# -- what every test's own app would make again -------------------------------------------------------
#
# Each test makes its own Flask app (its settings, its clock, its sessions joined to the test's
# transaction). Making one compiled, each time, two Python functions per route for werkzeug's URL
# building (two hundred routes: a sixth of a second a test, most of the set-up of most tests) and
# every template its pages render. Both are functions of their text alone, so the run makes each
# once and every app shares it; what a test sees of its app is unchanged.


def _share_url_builders() -> None:
    """werkzeug's ``Rule._compile_builder`` made once per rule text, parts and defaults. A builder
    reads the rule's converters at call time (through the rule it is bound to) except for a
    default's value, which the key holds as written; sharing it between two apps' rules alike is
    what making it twice would give."""
    original = getattr(Rule, "_compile_builder", None)
    if original is None or getattr(original, "shared_by_tests", False):
        return  # another werkzeug: every app compiles its own, as outside the tests
    made: dict[Any, Any] = {}

    def compile_builder(self: Rule, append_unknown: bool = True) -> Any:
        domain = (self.host if self.map.host_matching else self.subdomain) if self.map is not None else None
        defaults = self.defaults or {}
        key = (append_unknown, self.rule, domain, tuple(self._trace),
               tuple(sorted((name, repr(value)) for name, value in defaults.items())),
               # a default of a part of the rule is built into the function as its converter writes it
               tuple((part, self._converters[part].to_url(defaults[part]))
                     for dynamic, part in self._trace if dynamic and part in defaults))
        builder = made.get(key)
        if builder is None:
            builder = made[key] = original(self, append_unknown)
        return builder

    compile_builder.shared_by_tests = True  # type: ignore[attr-defined]
    Rule._compile_builder = compile_builder  # type: ignore[method-assign]


class _TemplatesCompiledOnce(BytecodeCache):
    """Jinja's bytecode cache in memory: a template is compiled once a run, by its name and the
    checksum of its text (Jinja compiles it again when the text differs)."""

    def __init__(self) -> None:
        self.codes: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self.codes.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.codes[bucket.key] = bucket.bytecode_to_string()


_share_url_builders()
TEMPLATES_COMPILED_ONCE = _TemplatesCompiledOnce()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.commit()
    engine.dispose()


def fresh_database_url(tmp_dir: Path, label: str) -> str:
    """A new, empty, migrated database: a SQLite file, or a new PostgreSQL database."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        url = f"sqlite:///{tmp_dir / (label + '.sqlite3')}"
    else:
        name = f"pd_{label}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.rsplit("/", 1)[0] + "/" + name
    upgrade_database(url)
    return url


def drop_fresh_database(url: str) -> None:
    """Drop a database ``fresh_database_url`` made on PostgreSQL (a SQLite file goes with its
    temporary folder), whoever is still connected to it."""
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        try:
            _reset_postgres(url)
        except Exception as exc:  # pragma: no cover - only when the server is down
            if os.environ.get("CI"):
                raise
            pytest.exit(f"TEST_DATABASE_URL is set but unreachable: {exc}", returncode=2)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    upgrade_database(url)
    return url


@pytest.fixture(scope="session")
def db_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def connection(db_engine: Engine) -> Iterator[Connection]:
    """One connection per test in an outer transaction that is rolled back at the end."""
    conn = db_engine.connect()
    outer = conn.begin()
    yield conn
    if outer.is_active:
        outer.rollback()
    conn.close()


@pytest.fixture()
def clock() -> FrozenClock:
    return FrozenClock()


TEST_CONFIG: dict[str, Any] = {
    "SECRET_KEY": "test-secret-key-not-for-production",
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    "SCRIPT_TIME_LIMIT": 1.0,
    # API tokens expire by the app's clock, which tests move days ahead while their desks keep the
    # tokens they signed in with: a token lives a year here (tests of token lifetimes set their own).
    "TOKEN_TTL_SECONDS": 366 * 24 * 3600,
    # "Forgot your password?" answers at once here (tests/web/test_password_reset_timing.py sets its own).
    "PASSWORD_RESET_ANSWER_SECONDS": 0,
}


def joined_app(database_url: str, connection: Connection, clock: FrozenClock, **config: Any) -> Any:
    """A Flask app (``TEST_CONFIG`` with ``config`` over it) whose sessions join the test's
    transaction through SAVEPOINTs."""
    application = create_app({**TEST_CONFIG, "DATABASE_URL": database_url, **config}, clock=clock)
    application.jinja_env.bytecode_cache = TEMPLATES_COMPILED_ONCE
    ext = application.extensions["processdesk"]
    ext.db_engine.dispose()
    ext.session_factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                                       expire_on_commit=False)
    application.config["TESTING"] = True
    return application


@pytest.fixture()
def app(database_url: str, connection: Connection, clock: FrozenClock) -> Iterator[Any]:
    """The Flask app, its sessions joined to the test's transaction through SAVEPOINTs."""
    yield joined_app(database_url, connection, clock)


@pytest.fixture()
def services(app: Any) -> Iterator[Any]:
    svc = app.extensions["processdesk"].services()
    yield svc
    svc.session.close()


@pytest.fixture()
def client(app: Any) -> Any:
    return app.test_client()


def fixture_files(*names: str) -> list[tuple[str, bytes]]:
    folder = FIXTURES / "processes"
    paths = [folder / n for n in names] if names else sorted(folder.iterdir())
    return [(p.name, p.read_bytes()) for p in paths if p.is_file()]


USERS = {
    # username: (roles, groups)
    "rita": (["requester"], []),
    "rick": (["requester"], ["Other"]),
    "alex": (["agent"], ["ServiceDesk"]),
    "amy": (["approver"], ["Approvers"]),
    "abe": (["approver"], ["Approvers"]),
    "olga": (["process_owner"], []),
    "aude": (["auditor"], []),
    "ada": (["admin"], []),
}


@pytest.fixture()
def users(services: Any) -> dict[str, Any]:
    made = {}
    for name, (roles, groups) in USERS.items():
        made[name] = services.users.create_user(name, TEST_PASSWORD, roles=roles, groups=groups)
    services.session.commit()
    return made


@pytest.fixture()
def deployed(services: Any, users: dict[str, Any]) -> Any:
    result = services.definitions.deploy(users["olga"], fixture_files())
    services.session.commit()
    return result


@pytest.fixture()
def auth(services: Any, users: dict[str, Any]) -> Any:
    """auth('alex') -> headers with a bearer token for that user."""
    cache: dict[str, dict[str, str]] = {}

    def headers(username: str) -> dict[str, str]:
        if username not in cache:
            token = services.users.issue_token(users[username])["token"]
            services.session.commit()
            cache[username] = {"Authorization": f"Bearer {token}"}
        return cache[username]

    return headers


#: Statements the savepoint harness itself sends around a test's transactions, which the app does not.
HARNESS_STATEMENTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@contextmanager
def sent_statements(target: Engine | Connection) -> Iterator[list[str]]:
    """The SQL statements sent through ``target`` while the block runs (whitespace collapsed)."""
    seen: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(target, "before_cursor_execute", log)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", log)


@pytest.fixture()
def receiver() -> Iterator[Any]:
    """A webhook receiver on 127.0.0.1 (tests.http.helpers.Receiver), closed after the test."""
    from tests.http.helpers import Receiver  # helpers import this module

    r = Receiver()
    yield r
    r.close()
