"""In-app notifications, notification preferences, and webhook subscriptions (admin)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.db import COUNT_CAP
from app.models import Notification, Webhook
from app.schemas import (
    DeliveryListOut,
    NotificationListOut,
    NotificationOut,
    NotificationQuery,
    PageQuery,
    PreferencesIn,
    PreferencesOut,
    WebhookIn,
    WebhookListOut,
    WebhookOut,
    WebhookPatchIn,
)

from . import RoleCheck, checked_first, current_user, page_args, services, unit_of_work

blp = Blueprint("notifications", __name__, url_prefix="/api/v1", description="Notifications and webhooks")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]



def _webhook_admin(action: str) -> RoleCheck:
    """The webhook admin check for ``action`` on the webhook in the address, before the body is parsed."""
    return lambda svc, user: svc.notifications.require_admin(
        user, action, webhook_id=(request.view_args or {}).get("webhook_id"))

def _hook(row: Webhook) -> dict[str, Any]:
    # Field by field, so that the secret cannot reach a response even if the schema changes.
    return {"id": row.id, "url": row.url, "events": row.events, "active": row.active, "created_at": row.created_at}


def _note(row: Notification, numbers: dict[int, str]) -> dict[str, Any]:
    return {"id": row.id, "subject": row.subject, "body": row.body, "record": numbers.get(row.ticket_id or 0),
            "created_at": row.created_at, "read_at": row.read_at}


@blp.route("/notifications")
class NotificationsView(MethodView):
    @blp.arguments(NotificationQuery, location="query")
    @blp.response(200, NotificationListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The caller's notifications, newest first; ``unread=1`` for unread only."""
        user = current_user()
        svc = services()
        page, per_page = page_args(args)
        rows, total, unread = unit_of_work(lambda: svc.notifications.list_for(user, bool(args.get("unread")), page, per_page))
        numbers = svc.records.numbers({r.ticket_id for r in rows})
        return {"page": page, "per_page": per_page, "total": total, "unread": unread, "items": [_note(r, numbers) for r in rows]}


@blp.route("/notifications/<int:notification_id>/read")
class ReadView(MethodView):
    @blp.response(200, NotificationOut)
    @blp.doc(security=SECURITY)
    def post(self, notification_id: int) -> dict[str, Any]:
        user = current_user()
        svc = services()
        row = unit_of_work(lambda: svc.notifications.mark_read(user, notification_id))
        return _note(row, svc.records.numbers({row.ticket_id}))


@blp.route("/notifications/read-all")
class ReadAllView(MethodView):
    @blp.response(200, NotificationListOut)
    @blp.doc(security=SECURITY)
    def post(self) -> dict[str, Any]:
        user = current_user()
        unit_of_work(lambda: services().notifications.mark_all_read(user))
        return {"page": 1, "per_page": 0, "total": 0, "unread": 0, "items": []}


@blp.route("/users/me/preferences")
class PreferencesView(MethodView):
    @blp.response(200, PreferencesOut)
    @blp.doc(security=SECURITY)
    def get(self) -> dict[str, Any]:
        user = current_user()
        return {"username": user.username, "email": user.email, "email_opt_out": user.email_opt_out}

    @blp.arguments(PreferencesIn)
    @blp.response(200, PreferencesOut)
    @blp.doc(security=SECURITY)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Opt out of (or back into) email notifications; in-app ones always arrive."""
        user = current_user()
        unit_of_work(lambda: services().notifications.set_email_opt_out(user, body["email_opt_out"]))
        return {"username": user.username, "email": user.email, "email_opt_out": user.email_opt_out}


@blp.route("/webhooks")
class WebhooksView(MethodView):
    @checked_first(lambda svc, user: svc.notifications.require_admin(user, "webhook_list"))
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, WebhookListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The webhooks, newest first; secrets are never shown (admin)."""
        user = current_user()
        page, per_page = page_args(args)
        rows, total = unit_of_work(lambda: services().notifications.list_webhooks(user, page, per_page))
        return {"page": page, "per_page": per_page, "total": total, "total_exact": total < COUNT_CAP,
                "items": [_hook(r) for r in rows]}

    @checked_first(lambda svc, user: svc.notifications.require_admin(user, "webhook_create"))
    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Subscribe a URL to events; deliveries are signed with HMAC-SHA256 (admin).

        URLs whose host is, or resolves to, a loopback, private, link-local or otherwise non-public
        address are refused (422 naming ``url``) unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is set."""
        user = current_user()
        return _hook(unit_of_work(lambda: services().notifications.add_webhook(user, body["url"], body["secret"], body["events"])))


@blp.route("/webhooks/<int:webhook_id>")
class WebhookView(MethodView):
    @blp.response(200, WebhookOut)
    @blp.doc(security=SECURITY)
    def get(self, webhook_id: int) -> dict[str, Any]:
        """One webhook, without its secret (admin)."""
        user = current_user()
        return _hook(unit_of_work(lambda: services().notifications.get_webhook(user, webhook_id)))

    @checked_first(_webhook_admin("webhook_update"))
    @blp.arguments(WebhookPatchIn)
    @blp.response(200, WebhookOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], webhook_id: int) -> dict[str, Any]:
        """Change any of url, events, active and secret, checked as on creation (admin)."""
        user = current_user()
        return _hook(unit_of_work(lambda: services().notifications.update_webhook(user, webhook_id, body)))

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, webhook_id: int) -> None:
        """Delete a webhook and cancel its pending deliveries; its delivery log is kept (admin)."""
        user = current_user()
        unit_of_work(lambda: services().notifications.delete_webhook(user, webhook_id))


@blp.route("/webhooks/<int:webhook_id>/deliveries")
class DeliveriesView(MethodView):
    @blp.response(200, DeliveryListOut)
    @blp.doc(security=SECURITY)
    def get(self, webhook_id: int) -> dict[str, Any]:
        """The delivery log of one webhook, newest first (admin); 404 for an unknown or deleted webhook."""
        user = current_user()
        rows = unit_of_work(lambda: services().notifications.deliveries(user, webhook_id))
        return {"items": [{
            "event_id": m.event_id, "event_type": m.event_type, "status": m.status, "attempts": m.attempts,
            "next_attempt_at": m.next_attempt_at if m.status == "pending" else None, "last_error": m.last_error,
            "log": [{"attempt": a.attempt, "at": a.at, "ok": a.ok, "status": a.status, "detail": a.detail,
                     "duration_ms": a.duration_ms} for a in attempts],
        } for m, attempts in rows]}
