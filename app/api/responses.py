"""Response templates: an agent's and the desk's stock replies, and a record's templates with its
values filled in (app/services/responses.py decides)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.models import ResponseTemplate, User
from app.schemas.responses import (
    FilledResponseListOut,
    ResponseTemplateIn,
    ResponseTemplateListOut,
    ResponseTemplateOut,
    ResponseTemplatePatchIn,
    ResponseTemplateQuery,
)
from app.services.responses import ResponseService

from . import checked_first, current_user, services, unit_of_work

blp = Blueprint("responses", __name__, url_prefix="/api/v1", description="Response templates")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def template_dict(row: ResponseTemplate, user: User) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "body": row.body, "kind": row.kind, "shared": row.owner_id is None,
            "editable": ResponseService.may_edit(user, row), "version": row.version, "created_at": row.created_at,
            "updated_at": row.updated_at,
            "created_by": row.created_by.username if row.created_by is not None else None}


@blp.route("/response-templates")
class ResponseTemplatesView(MethodView):
    @checked_first(lambda svc, user: svc.responses.require_user(user))
    @blp.arguments(ResponseTemplateQuery, location="query")
    @blp.response(200, ResponseTemplateListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The desk's templates and the caller's own, by name (agents, process owners, admins);
        ``kind``: those offered on that kind of record (422 naming ``kind`` for an unknown one)."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: {"items": [template_dict(r, user) for r in svc.responses.visible(user, args["kind"])]})

    @checked_first(lambda svc, user: svc.responses.require_user(user, "response_template_create"))
    @blp.arguments(ResponseTemplateIn)
    @blp.response(201, ResponseTemplateOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """A new template: the caller's own, or the desk's (``shared``: process owners and admins,
        else 403 naming ``shared``). 422 naming each field that is wrong: a name taken, an unknown
        kind, a placeholder the text may not name. Audited."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: template_dict(svc.responses.create(user, body), user))


@blp.route("/response-templates/<int:template_id>")
class ResponseTemplateView(MethodView):
    @blp.response(200, ResponseTemplateOut)
    @blp.doc(security=SECURITY)
    def get(self, template_id: int) -> dict[str, Any]:
        """One template (404 for another person's own)."""
        user = current_user()
        return unit_of_work(lambda: template_dict(services().responses.get(user, template_id), user))

    @checked_first(lambda svc, user: svc.responses.require_user(user, "response_template_update"))
    @blp.arguments(ResponseTemplatePatchIn)
    @blp.response(200, ResponseTemplateOut)
    @blp.alt_response(409, description="Changed since the version sent (details.current_version)")
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], template_id: int) -> dict[str, Any]:
        """Change the fields sent (the caller's own template; the desk's: process owners and admins,
        else 403). Audited."""
        user = current_user()
        svc = services()
        values = {key: value for key, value in body.items() if key != "version"}
        return unit_of_work(lambda: template_dict(svc.responses.update(user, template_id, body["version"], values), user))

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, template_id: int) -> None:
        """Delete a template the caller may change (as for PATCH). Audited."""
        user = current_user()
        unit_of_work(lambda: services().responses.delete(user, template_id))


@blp.route("/tickets/<string:number>/response-templates")
class RecordResponsesView(MethodView):
    @checked_first(lambda svc, user: svc.responses.require_user(user))
    @blp.response(200, FilledResponseListOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """The templates offered on a record (those for its kind and for every kind), each with the
        record's values filled in (404 unless the caller may read the record). Nothing is stored:
        the caller sends the comment as any other."""
        user = current_user()
        svc = services()

        def read() -> dict[str, Any]:
            ticket, filled = svc.responses.for_record(user, number)
            return {"number": ticket.number,
                    "items": [{"id": r.id, "name": r.name, "kind": r.kind, "shared": r.owner_id is None, "text": text}
                              for r, text in filled]}

        return unit_of_work(read)
