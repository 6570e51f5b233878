"""Recurring requests: processes started on a weekly or monthly rule as their owner
(app/services/recurring.py)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.schemas.recurring import RecurringIn, RecurringListOut, RecurringOut, RecurringPatch
from app.services.recurring import describe

from . import current_user, services, unit_of_work

blp = Blueprint("recurring", __name__, url_prefix="/api/v1", description="Recurring requests")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


@blp.route("/recurring-requests")
class RecurringListView(MethodView):
    @blp.response(200, RecurringListOut)
    @blp.doc(security=SECURITY, parameters=[{"in": "query", "name": "all", "schema": {"type": "string"},
                                             "description": "1: every owner's (admins; anyone else gets their own)"}])
    def get(self) -> dict[str, Any]:
        """The caller's recurring requests by name (an admin's, with ``all=1``, everyone's)."""
        user = current_user()
        everyone = request.args.get("all") == "1"
        return unit_of_work(lambda: {"items": [describe(r) for r in services().recurring.listed(user, everyone=everyone)]})

    @blp.arguments(RecurringIn)
    @blp.response(201, RecurringOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make a recurring request (agents, process owners, admins; for a process they may start):
        422 naming each bad field, the data's as ``data.<field>``; 403 for who may not; 404 for a
        process not deployed."""
        user = current_user()
        return unit_of_work(lambda: describe(services().recurring.create(user, body)))


@blp.route("/recurring-requests/<int:request_id>")
class RecurringView(MethodView):
    @blp.response(200, RecurringOut)
    @blp.doc(security=SECURITY)
    def get(self, request_id: int) -> dict[str, Any]:
        """One recurring request (its owner, admins; 404 for anyone else)."""
        user = current_user()
        return unit_of_work(lambda: describe(services().recurring.get(user, request_id)))

    @blp.arguments(RecurringPatch)
    @blp.response(200, RecurringOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], request_id: int) -> dict[str, Any]:
        """Change, pause (``active`` false) or resume it; the data is checked again for its owner."""
        user = current_user()
        return unit_of_work(lambda: describe(services().recurring.change(user, request_id, body)))

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, request_id: int) -> None:
        """Delete it (its owner, admins); what it started stays."""
        user = current_user()
        unit_of_work(lambda: services().recurring.delete(user, request_id))
