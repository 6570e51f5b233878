"""POST /auth/token and GET /health."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text
from werkzeug.wrappers import Response

from app.errors import ProcessdeskError, Unauthorized
from app.schemas import HealthOut, TokenIn, TokenOut
from app.web.ratelimit import client_address, login_retry_after, note_login_failure, note_login_success

from . import services, unit_of_work

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

        Failed attempts are limited per username and per client address, together with the web
        sign-in's (the same counts and ``WEB_LOGIN_*`` settings, app/web/ratelimit.py)."""
        svc = services()
        username, password = body["username"], body["password"]
        address = client_address()
        now = svc.runtime.clock.now().timestamp()
        wait = login_retry_after(username, address, now)
        if wait:
            return _too_many_attempts(wait)
        try:
            token = unit_of_work(lambda: svc.users.issue_token(svc.users.check_password(username, password, address=address),
                                                               address=address, label=body.get("label"),
                                                               expires_in=body.get("expires_in")))
        except Unauthorized:
            note_login_failure(username, address, now)
            raise
        note_login_success(username)
        return token


@blp.route("/health")
class HealthView(MethodView):
    @blp.response(200, HealthOut)
    def get(self) -> dict[str, Any]:
        """Liveness and database reachability; needs no token."""
        svc = services()
        svc.session.execute(text("SELECT 1"))
        svc.session.rollback()
        return {"status": "ok", "database": svc.session.get_bind().dialect.name}
