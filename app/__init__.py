"""processdesk: an ITSM platform whose behaviour lives in BPMN.

``create_app(config)`` wires configuration, the database, the engine and the HTTP layers;
nothing else happens at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, g
from werkzeug.routing import IntegerConverter

from .clock import Clock, SystemClock
from .config import load_config

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from .services import Runtime, Services


class Extension:
    """What the app keeps for its lifetime: DB engine, session factory, and the shared runtime."""

    def __init__(self, db_engine: Engine, session_factory: sessionmaker[Session], runtime: Runtime) -> None:
        self.db_engine = db_engine
        self.session_factory = session_factory
        self.runtime = runtime

    def session(self) -> Session:
        return self.session_factory()

    def services(self, session: Session | None = None) -> Services:
        """Services for a unit of work outside a request (CLI, scheduler, tests)."""
        from .services import Services

        return Services(session or self.session(), self.runtime)


class RowId(IntegerConverter):
    """``<int:...>`` in every route is a row id: an ``Integer`` column, 32-bit on PostgreSQL
    (64-bit on SQLite). A larger one overflowed the column (a 500 on either database); now it is
    no match, a 404 like any unknown id."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        from .db import MAX_ROW_ID  # the package imports nothing else at import time

        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: Mapping[str, Any] | None = None, *, clock: Clock | None = None) -> Flask:
    """Build the Flask app. ``config`` needs at most DATABASE_URL; see app.config for all keys."""
    # Imported here so that `import app.models` (Alembic, scripts) does not pull in the engine.
    from .db import make_engine, make_sessionmaker
    from .engine import ProcessEngine, ProcessLibrary
    from .request_log import configure_logging
    from .request_log import install as install_request_log
    from .services import Runtime
    from .services.audit import install_session_hooks
    from .services.linked_updates import install_session_hooks as install_linked_updates
    from .services.operations import OPERATIONS

    app = Flask(__name__, instance_relative_config=True)
    app.url_map.converters["int"] = RowId
    settings = load_config(config, app.instance_path)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = int(settings["MAX_UPLOAD_BYTES"]) + 64 * 1024
    app.config["SECRET_KEY"] = settings["SECRET_KEY"]

    configure_logging(settings["LOG_FORMAT"], settings["LOG_LEVEL"])
    install_session_hooks()
    install_linked_updates()
    db_engine = make_engine(settings["DATABASE_URL"], echo=bool(settings["SQL_ECHO"]))
    clock = clock or SystemClock()
    runtime = Runtime(
        engine=ProcessEngine(
            script_time_limit=float(settings["SCRIPT_TIME_LIMIT"]),
            script_memory_limit_mb=int(settings["SCRIPT_MEMORY_LIMIT_MB"]),
            now=clock.now,
            run_cache_size=int(settings["RUN_CACHE_SIZE"]),
        ),
        library=ProcessLibrary(known_operations=OPERATIONS),
        clock=clock,
        config=settings,
    )
    app.extensions["processdesk"] = Extension(db_engine, make_sessionmaker(db_engine), runtime)
    install_request_log(app)  # first of the request hooks: the others' lines name the request

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        services = g.pop("services", None)
        if services is not None:
            services.session.close()

    from .api import init_api
    from .cli import register_cli
    from .web import init_web

    init_api(app)
    init_web(app)
    app.before_request(_refuse_nul_characters)
    register_cli(app)
    if settings["SCHEDULER_ENABLED"] and not settings.get("TESTING"):
        from .scheduler import start_background

        start_background(app)
    return app


def _refuse_nul_characters() -> None:
    """400 for a NUL character in the path or the query, naming the parameter: no text column can
    hold one (PostgreSQL refuses it outright), and no parameter of ours needs one. JSON bodies are
    checked by the API's own parser, and forms by the pages (naming the field in their words)."""
    from flask import request
    from werkzeug.exceptions import BadRequest

    places: list[tuple[str, str, str]] = [("path", name, str(value)) for name, value in (request.view_args or {}).items()]
    places += [("query", name, value) for name, value in request.args.items(multi=True)]
    for location, name, value in places:
        if "\x00" in name or "\x00" in value:
            shown = name.replace("\x00", "\\0")
            error = BadRequest(f"{location} parameter '{shown}' contains a NUL character")
            error.data = {"messages": {location: {shown: [f"{location}: must not contain a NUL character"]}}}  # type: ignore[attr-defined]
            raise error
