"""The service catalog (the knowledge base is app/api/knowledge.py)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.schemas import (
    CatalogItemDetailOut,
    CatalogItemIn,
    CatalogItemOut,
    CatalogItemPatch,
    CatalogQuery,
    CatalogRequestIn,
    CatalogTreeOut,
    TicketDetailOut,
)

from . import checked_first, current_user, services, unit_of_work
from .tickets import ticket_detail

blp = Blueprint("catalog", __name__, url_prefix="/api/v1", description="Service catalog")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


@blp.route("/catalog")
class CatalogView(MethodView):
    @blp.arguments(CatalogQuery, location="query")
    @blp.response(200, CatalogTreeOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The category tree with its published items; search by keyword (q) and category code."""
        user = current_user()
        return {"categories": unit_of_work(lambda: services().catalog.tree(user, args.get("q"), args.get("category")))}


@blp.route("/catalog/items")
class CatalogItemsView(MethodView):
    @checked_first(lambda svc, user: svc.catalog.require_owner(user, "catalog_create"))
    @blp.arguments(CatalogItemIn)
    @blp.response(201, CatalogItemOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add an item (process_owner)."""
        user = current_user()
        svc = services()
        return svc.catalog.item_dict(unit_of_work(lambda: svc.catalog.create_item(user, body)))


@blp.route("/catalog/items/<string:code>")
class CatalogItemView(MethodView):
    @blp.response(200, CatalogItemDetailOut)
    @blp.doc(security=SECURITY)
    def get(self, code: str) -> dict[str, Any]:
        """An item with its request form."""
        user = current_user()
        svc = services()
        item = unit_of_work(lambda: svc.catalog.get_item(code, user))
        schema, ui = svc.catalog.item_form(item)
        return {**svc.catalog.item_dict(item), "form_schema": schema, "ui_schema": ui}

    @checked_first(lambda svc, user: svc.catalog.require_owner(user, "catalog_update"))
    @blp.arguments(CatalogItemPatch)
    @blp.response(200, CatalogItemOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], code: str) -> dict[str, Any]:
        """Edit an item (process_owner); status 'retired' hides it while running requests finish."""
        user = current_user()
        svc = services()
        return svc.catalog.item_dict(unit_of_work(lambda: svc.catalog.update_item(user, code, body)))


@blp.route("/catalog/<string:code>/requests")
class CatalogRequestView(MethodView):
    @blp.arguments(CatalogRequestIn)
    @blp.response(201, TicketDetailOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], code: str) -> dict[str, Any]:
        """Request an item with its form's data: starts catalog_request; answers with the REQ record.
        ``on_behalf_of`` (agents and admins): the user name of the colleague it is for, who is its requester."""
        user = current_user()
        svc = services()
        ticket = unit_of_work(lambda: svc.catalog.request_item(user, code, body["data"],
                                                               on_behalf_of=body.get("on_behalf_of")))
        return ticket_detail(ticket, user)
