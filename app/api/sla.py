"""SLA clocks of a record, and SLA policies."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.models import SlaPolicy
from app.schemas import SlaOut, SlaPolicyIn, SlaPolicyListOut, SlaPolicyOut

from . import current_user, services, unit_of_work

blp = Blueprint("sla", __name__, url_prefix="/api/v1", description="Service level agreements")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def policy_dict(row: SlaPolicy) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "priority": row.priority, "service": row.service,
            "response_seconds": row.response_seconds, "resolution_seconds": row.resolution_seconds,
            "calendar": row.calendar, "pause_statuses": row.pause_statuses, "warning_ratio": row.warning_ratio,
            "escalation": row.escalation}


@blp.route("/tickets/<string:number>/sla")
class TicketSlaView(MethodView):
    @blp.response(200, SlaOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """Each clock: target, elapsed business time, paused time, due at, when the warning is or
        was due, state (running, paused, met, breached). Computed now; reading stores nothing (the
        SLA sweep raises warnings and breaches)."""
        user = current_user()
        return {"number": number.upper(), "clocks": unit_of_work(lambda: services().sla.clocks(user, number))}


@blp.route("/sla/policies")
class PoliciesView(MethodView):
    @blp.response(200, SlaPolicyListOut)
    @blp.doc(security=SECURITY)
    def get(self) -> dict[str, Any]:
        current_user()
        return {"items": [policy_dict(p) for p in services().sla.policies()]}

    @blp.arguments(SlaPolicyIn)
    @blp.response(200, SlaPolicyOut)
    @blp.doc(security=SECURITY)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the policy for (kind, priority, service) (process_owner)."""
        user = current_user()
        return policy_dict(unit_of_work(lambda: services().sla.save_policy(user, body)))
