"""POST /auth/token and GET /health."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from app.schemas import HealthOut, TokenIn, TokenOut

from . import services, unit_of_work

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Authentication and health")


@blp.route("/auth/token")
class TokenView(MethodView):
    @blp.arguments(TokenIn)
    @blp.response(200, TokenOut)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Exchange username and password for a bearer token."""
        svc = services()
        return unit_of_work(lambda: svc.users.issue_token(svc.users.check_password(body["username"], body["password"])))


@blp.route("/health")
class HealthView(MethodView):
    @blp.response(200, HealthOut)
    def get(self) -> dict[str, Any]:
        """Liveness and database reachability; needs no token."""
        svc = services()
        svc.session.execute(text("SELECT 1"))
        svc.session.rollback()
        return {"status": "ok", "database": svc.session.get_bind().dialect.name}
