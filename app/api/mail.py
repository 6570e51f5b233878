"""The mail gateway over HTTP: POST /mail/inbound (a mail server's hook), GET /mail/inbound (admins)."""

from __future__ import annotations

import hmac
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.errors import NotFound, ProcessdeskError, Unauthorized
from app.mail_gateway import receive_mail
from app.models import InboundMail
from app.schemas import InboundMailListOut, InboundMailResultOut, PageQuery

from . import current_user, page_args, services, unit_of_work

blp = Blueprint("mail", __name__, url_prefix="/api/v1/mail", description="Inbound e-mail (the mail gateway)")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
#: The body types the inbound route takes: the raw message.
MESSAGE_TYPES = frozenset({"message/rfc822", "application/octet-stream"})


class UnsupportedMediaType(ProcessdeskError):
    status = 415
    code = "unsupported_media_type"


def inbound_token_check() -> None:
    """NotFound when the route is off (no MAIL_INBOUND_TOKEN), Unauthorized unless the request's
    bearer token is it (compared in constant time)."""
    expected = str(current_app.config.get("MAIL_INBOUND_TOKEN") or "")
    if not expected:
        raise NotFound("the mail gateway's HTTP route is off (set PROCESSDESK_MAIL_INBOUND_TOKEN)")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    given = token.strip().encode("utf-8", errors="replace") if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(given, expected.encode("utf-8")):
        raise Unauthorized("send Authorization: Bearer <the mail gateway token>")


def _row(row: InboundMail) -> dict[str, Any]:
    return {"id": row.id, "message_id": row.message_id, "outcome": row.outcome, "number": row.number,
            "sender": row.sender, "subject": row.subject, "reason": row.reason, "size": row.size,
            "received_at": row.received_at, "retried_at": row.retried_at}


@blp.route("/inbound")
class InboundView(MethodView):
    @blp.response(200, InboundMailResultOut)
    @blp.doc(security=SECURITY, requestBody={"required": True, "content": {
        "message/rfc822": {"schema": {"type": "string", "format": "binary"}}}})
    def post(self) -> dict[str, Any]:
        """Take one raw e-mail message (the body, ``message/rfc822``) as `flask mail ingest` does.

        The bearer token is MAIL_INBOUND_TOKEN (401 otherwise; 404 while it is unset), not a
        user's. 200 with the outcome (created, commented, decided, refused, ignored, failed; ``duplicate``
        for a message taken before); 415 naming Content-Type for another body type, 422 naming
        ``message`` for a malformed one, 413 above MAIL_MAX_BYTES."""
        inbound_token_check()
        if request.mimetype not in MESSAGE_TYPES:
            raise UnsupportedMediaType(f"send the raw message as message/rfc822 ({request.mimetype or 'no Content-Type'})",
                                       details={"fields": {"Content-Type": ["must be message/rfc822"]}})
        return receive_mail(services(), request.get_data(cache=False)).as_dict()

    @blp.arguments(PageQuery, location="query")
    @blp.response(200, InboundMailListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The messages the gateway took, newest first, with their outcomes (admins)."""
        user = current_user()
        page, per_page = page_args(args)
        rows, total = unit_of_work(lambda: services().mail.recent(user, page, per_page))
        return {"page": page, "per_page": per_page, "total": total, "items": [_row(r) for r in rows]}
