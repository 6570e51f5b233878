"""The JSON API at /api/v1: thin views over the services, one envelope for every error.

Every view parses input (marshmallow via flask-smorest), calls one service inside
``unit_of_work``, and dumps the result. Authentication is a bearer token from /auth/token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from app.errors import ProcessdeskError, Unauthorized
from app.models import User
from app.services import Services
from app.unit_of_work import run_unit_of_work

T = TypeVar("T")


class ProcessdeskApi(Api):  # type: ignore[misc]
    """flask-smorest with our error envelope instead of its own."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        if not request.path.startswith("/api/"):
            return error
        data = getattr(error, "data", None) or {}
        messages = data.get("messages") if isinstance(data, dict) else None
        details: dict[str, Any] = {}
        if messages:
            # webargs nests messages by location ("json", "query", "form"): flatten to fields.
            fields: dict[str, Any] = {}
            for location, per_field in messages.items():
                if isinstance(per_field, dict):
                    for name, msgs in per_field.items():
                        fields[name] = msgs
                else:
                    fields[location] = per_field
            details["fields"] = fields
        code = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                415: "unsupported_media_type", 422: "validation_failed"}.get(error.code or 500, "error")
        message = "request data is invalid" if messages else (error.description or error.name)
        response = jsonify({"error": code, "message": message, "details": details})
        response.status_code = error.code or 500
        return response


def services() -> Services:
    if "services" not in g:
        ext = current_app.extensions["processdesk"]
        g.services = Services(ext.session(), ext.runtime)
    return g.services  # type: ignore[no-any-return]


def unit_of_work(work: Callable[[], T]) -> T:
    return run_unit_of_work(services(), work)


def current_user() -> User:
    """The bearer token's user; Unauthorized if missing or invalid."""
    if "user" in g:
        return g.user  # type: ignore[no-any-return]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token> (POST /api/v1/auth/token)")
    g.user = services().users.user_for_token(token.strip())
    return g.user  # type: ignore[no-any-return]


def page_args(args: dict[str, Any]) -> tuple[int, int]:
    cfg = current_app.config
    per_page = args.get("per_page") or cfg["PER_PAGE_DEFAULT"]
    return int(args.get("page") or 1), min(int(per_page), int(cfg["PER_PAGE_MAX"]))


def init_api(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "processdesk")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = ProcessdeskApi(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})

    @app.errorhandler(ProcessdeskError)
    def _domain_error(err: ProcessdeskError) -> Any:
        response = jsonify(err.to_dict())
        response.status_code = err.status
        if err.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="processdesk"'
        return response

    from . import auth, catalog, definitions, instances, notifications, sla, tasks, tickets

    for module in (auth, definitions, instances, tasks, tickets, catalog, notifications, sla):
        api.register_blueprint(module.blp)
