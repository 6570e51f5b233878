"""Saved views of the record list: the caller's own named filters and order (app/services/views.py)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.models import SavedView
from app.schemas.users import SavedViewIn, SavedViewListOut, SavedViewOut

from . import current_user, services, unit_of_work

blp = Blueprint("views", __name__, url_prefix="/api/v1", description="Saved views of the record list")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def view_dict(view: SavedView) -> dict[str, Any]:
    return {"id": view.id, "name": view.name, "query": view.query, "created_at": view.created_at}


@blp.route("/users/me/views")
class MyViewsView(MethodView):
    @blp.response(200, SavedViewListOut)
    @blp.doc(security=SECURITY)
    def get(self) -> dict[str, Any]:
        """The caller's saved views, by name (everyone signed in keeps their own)."""
        user = current_user()
        return unit_of_work(lambda: {"items": [view_dict(v) for v in services().views.mine(user)]})

    @blp.arguments(SavedViewIn)
    @blp.response(201, SavedViewOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Save a view: 422 naming ``name`` (empty, taken, one view too many: at most 30) or
        ``query`` (a parameter the record list does not know, a value too long, an unknown sort)."""
        user = current_user()
        return unit_of_work(lambda: view_dict(services().views.save(user, body)))


@blp.route("/users/me/views/<int:view_id>")
class MyViewView(MethodView):
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, view_id: int) -> None:
        """Delete one of the caller's views (404 for another person's)."""
        user = current_user()
        unit_of_work(lambda: services().views.delete(user, view_id))
