"""The configuration management database: configuration items and their relationships (the
desk's staff read, admins and configuration managers write; app/services/cmdb.py decides)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.models import User
from app.schemas.cmdb import (
    CiDetailOut,
    CiIn,
    CiListOut,
    CiPatch,
    CiQuery,
    CiRelationshipIn,
    CiRelationshipOut,
    CiWindowIn,
    CiWindowOut,
    CiWindowPatch,
)
from app.services.maintenance import describe

from . import checked_first, current_user, page_args, services, unit_of_work

blp = Blueprint("cmdb", __name__, url_prefix="/api/v1", description="Configuration items (CMDB)")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def _detail(user: User, work: Any) -> dict[str, Any]:
    """Run ``work`` (returning a CI) in one unit of work; the CI as answered to ``user``."""
    svc = services()
    return unit_of_work(lambda: svc.cmdb.detail(user, work()))


@blp.route("/cis")
class CisView(MethodView):
    @checked_first(lambda svc, user: svc.cmdb.require_reader(user, "list_cis"))
    @blp.arguments(CiQuery, location="query")
    @blp.response(200, CiListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Configuration items by name, filtered by class, status (comma-separated), words (q), who
        they are assigned to and their warranty."""
        user = current_user()
        svc = services()
        page, per_page = page_args(args)

        def read() -> tuple[list[dict[str, Any]], int]:
            rows, total = svc.cmdb.search(user, ci_class=args.get("ci_class"), status=args.get("status"),
                                          assigned_to=args.get("assigned_to"), warranty=args.get("warranty"),
                                          q=args.get("q"), page=page, per_page=per_page)
            return [svc.cmdb.summary(ci) for ci in rows], total

        items, total = unit_of_work(read)
        return {"page": page, "per_page": per_page, "total": total, "items": items}

    @checked_first(lambda svc, user: svc.cmdb.require_writer(user, "create_ci"))
    @blp.arguments(CiIn)
    @blp.response(201, CiDetailOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a configuration item (admins, configuration managers)."""
        user = current_user()
        return _detail(user, lambda: services().cmdb.create(user, body))


@blp.route("/cis/<string:name>")
class CiView(MethodView):
    @blp.response(200, CiDetailOut)
    @blp.doc(security=SECURITY)
    def get(self, name: str) -> dict[str, Any]:
        """One CI with its relationships, the records naming it (open first) and its impact."""
        user = current_user()
        return _detail(user, lambda: services().cmdb.find(user, name))

    @blp.arguments(CiPatch)
    @blp.response(200, CiDetailOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], name: str) -> dict[str, Any]:
        """Change a CI's fields; a new ``name`` renames it, and the records naming it follow (its
        old address answers 404 from then on)."""
        user = current_user()
        return _detail(user, lambda: services().cmdb.update(user, name, body))

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, name: str) -> None:
        """Delete a CI no record names (409 ``ci_referenced`` otherwise: retire it)."""
        user = current_user()
        unit_of_work(lambda: services().cmdb.delete(user, name))


@blp.route("/cis/<string:name>/retire")
class RetireView(MethodView):
    @blp.response(200, CiDetailOut)
    @blp.doc(security=SECURITY)
    def post(self, name: str) -> dict[str, Any]:
        """Retire a CI: it stays with its records, and new records may no longer name it."""
        user = current_user()
        return _detail(user, lambda: services().cmdb.retire(user, name))


@blp.route("/cis/<string:name>/relationships")
class RelationshipsView(MethodView):
    @blp.arguments(CiRelationshipIn)
    @blp.response(201, CiRelationshipOut)
    @blp.alt_response(200, schema=CiRelationshipOut, description="the relationship was there already")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], name: str) -> Any:
        """Relate the CI to another: ``name <kind> target`` (201, or 200 when it was there)."""
        user = current_user()
        svc = services()

        def work() -> tuple[dict[str, Any], bool]:
            row, new = svc.cmdb.add_relationship(user, name, body["target"], body["kind"])
            return {"id": row.id, "kind": row.kind, "direction": "outgoing", "source": row.source.name,
                    "target": row.target.name, "ci": row.target.name, "ci_class": row.target.ci_class,
                    "status": row.target.status}, new

        answer, new = unit_of_work(work)
        return answer, 201 if new else 200


@blp.route("/cis/<string:name>/relationships/<int:relationship_id>")
class RelationshipView(MethodView):
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, name: str, relationship_id: int) -> None:
        """Remove one of the CI's relationships."""
        user = current_user()
        unit_of_work(lambda: services().cmdb.remove_relationship(user, name, relationship_id))


@blp.route("/cis/<string:name>/windows")
class WindowsView(MethodView):
    @blp.arguments(CiWindowIn)
    @blp.response(201, CiWindowOut)
    @blp.alt_response(200, schema=CiWindowOut, description="the same window was there already")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], name: str) -> Any:
        """Add a weekly or monthly maintenance window to the CI (admins, configuration managers): changes
        planned on it outside its windows show the clash (201, or 200 when it was there)."""
        user = current_user()
        svc = services()

        def work() -> tuple[dict[str, Any], bool]:
            row, new = svc.maintenance.add(user, name, body)
            return describe(row, svc.runtime.clock.now()), new

        answer, new = unit_of_work(work)
        return answer, 201 if new else 200


@blp.route("/cis/<string:name>/windows/<int:window_id>")
class WindowView(MethodView):
    @blp.arguments(CiWindowPatch)
    @blp.response(200, CiWindowOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], name: str, window_id: int) -> dict[str, Any]:
        """Change one of the CI's maintenance windows (the fields sent; the others stay)."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: describe(svc.maintenance.change(user, name, window_id, body), svc.runtime.clock.now()))

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, name: str, window_id: int) -> None:
        """Remove one of the CI's maintenance windows."""
        user = current_user()
        unit_of_work(lambda: services().maintenance.remove(user, name, window_id))
