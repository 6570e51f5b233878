"""POST /auth/token and GET /health."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from app.errors import ProcessdeskError, Unauthorized
from app.schemas import HealthOut, TokenIn, TokenOut
from app.web.ratelimit import client_address, login_retry_after, note_login_failure, note_login_success

from . import services, unit_of_work

log = logging.getLogger(__name__)
blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Authentication and health")


def _too_many_attempts(wait: int) -> Response:
    """429 in the API's error envelope, with Retry-After (seconds)."""
    error = ProcessdeskError(f"too many failed sign-in attempts; try again in {wait} seconds",
                             code="too_many_requests", details={"retry_after": wait})
    response = jsonify(error.to_dict())
    response.status_code = 429
    response.headers["Retry-After"] = str(wait)
    return response


@blp.route("/auth/token")
class TokenView(MethodView):
    @blp.arguments(TokenIn)
    @blp.response(200, TokenOut)
    @blp.alt_response(429, description="Too many failed sign-in attempts for this username or from this "
                                       "address: every attempt, right or wrong, is refused until Retry-After "
                                       "seconds have passed")
    def post(self, body: dict[str, Any]) -> Any:
        """Exchange username and password for a bearer token.

        Optionally named (``label``) and shorter-lived (``expires_in``, seconds); the user lists
        their tokens at ``/users/me/tokens`` and revokes one with ``DELETE /users/me/tokens/<id>``.

        A user with two-step sign-in on also sends ``code``: the current code of their
        authenticator app, or one of their unused recovery codes (401 ``code_required`` without
        it, 401 ``wrong_code`` for a wrong one, each naming ``code``; 429 once the wrong codes
        reach the sign-in limit, counted per account however many are sent at once). A user whose role requires
        two-step sign-in (``TWO_STEP_REQUIRED_ROLES``) and has not set it up gets no token (403
        ``two_step_setup_required``).

        Failed attempts (a wrong password or code) are limited per username and per client address,
        together with the web sign-in's (the same counts and ``WEB_LOGIN_*`` settings,
        app/web/ratelimit.py)."""
        svc = services()
        username, password = body["username"], body["password"]
        address = client_address()
        now = svc.runtime.clock.now().timestamp()
        wait = login_retry_after(username, address, now)
        if wait:
            return _too_many_attempts(wait)
        def sign_in() -> dict[str, Any]:
            user = svc.users.check_password(username, password, address=address)
            # one look at the account's row decides whether a code is needed and takes it
            if svc.two_step.check_code(user, body.get("code"), address=address) == "none":
                svc.two_step.require_set_up(user, "sign_in")
            return svc.users.issue_token(user, address=address, label=body.get("label"),
                                         expires_in=body.get("expires_in"))

        try:
            token = unit_of_work(sign_in)
        except Unauthorized as err:
            # the password was right: the client asks again with the code (or an admin must reset it)
            if err.code not in ("code_required", "two_step_unreadable"):
                note_login_failure(username, address, now)
            raise
        note_login_success(username)
        return token


@lru_cache(maxsize=1)
def expected_schema() -> str | None:
    """The newest migration of this code (Alembic's head), read once per process."""
    from alembic.script import ScriptDirectory

    from app.cli import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()  # type: ignore[no-any-return]


#: The key in ``app.extensions`` that says whether this process's last health probe found the
#: database down.
HEALTH_STATE_KEY = "processdesk_health_db_down"


def _note_database(*, answered: bool) -> None:
    """Log a change of the database's state as the health probe sees it, once: the first probe that
    finds it unreachable writes the error and its traceback, the next ones (a load balancer asks
    every few seconds) nothing more, the first one it answers again one line."""
    extensions = current_app.extensions
    was_down = bool(extensions.get(HEALTH_STATE_KEY))
    if not answered and not was_down:
        log.warning("health: the database did not answer", exc_info=True)
    elif answered and was_down:
        log.warning("health: the database answers again")
    extensions[HEALTH_STATE_KEY] = not answered


@blp.route("/health")
class HealthView(MethodView):
    @blp.response(200, HealthOut)
    @blp.alt_response(503, schema=HealthOut, description="Not ready: the problems say why")
    def get(self) -> Any:
        """Liveness and readiness; needs no token. 503 when the database cannot be reached, its
        schema is not the one this code expects (run ``flask db upgrade``), or the scheduler this
        process should run has stopped; ``problems`` says which, and nothing of the connection."""
        svc = services()
        answer: dict[str, Any] = {"status": "ok", "database": svc.session.get_bind().dialect.name,
                                  "schema": None, "expected_schema": expected_schema(), "problems": []}
        try:
            answer["schema"] = svc.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            _note_database(answered=False)
            answer["problems"].append("the database cannot be reached or has no schema")
        else:
            _note_database(answered=True)
        finally:
            svc.session.rollback()
        if answer["schema"] is not None and answer["schema"] != answer["expected_schema"]:
            answer["problems"].append(f"the database schema is {answer['schema']}, this code expects "
                                      f"{answer['expected_schema']}: run flask db upgrade")
        scheduler = current_app.extensions.get("processdesk_scheduler")
        if scheduler is not None:
            answer["scheduler"] = "running" if scheduler.running else "stopped"
            if not scheduler.running:
                answer["problems"].append("the scheduler of this process has stopped: timers and SLA clocks wait")
        if not answer["problems"]:
            return answer
        answer["status"] = "unavailable"
        response = jsonify(HealthOut().dump(answer))
        response.status_code = 503
        return response
