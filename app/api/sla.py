"""SLA clocks of a record, and SLA policies."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields

from app.models import SlaPolicy
from app.schemas import Length, SlaOut, SlaPolicyIn, SlaPolicyListOut, SlaPolicyOut

from . import checked_first, current_user, services, unit_of_work

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
        was due, state (running, paused, met, breached, or cancelled: stopped within target by the
        record's cancellation or another give-up, such as a request its approver rejected, which
        counts in no compliance figure). A clock that breached stays breached when a priority
        change (an escalation) gives it a longer target. Computed now; reading stores
        nothing (the SLA sweep raises warnings and breaches)."""
        user = current_user()
        return {"number": number.upper(), "clocks": unit_of_work(lambda: services().sla.clocks(user, number))}


# The compliance shapes are kept beside their only view (app/schemas/__init__.py is shared).
class SlaComplianceQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    kind = fields.String(load_default=None, validate=Length(max=32),
                         metadata={"description": "incident, problem or request; absent: all"})


class SlaComplianceClockOut(Schema):
    name = fields.String()
    met = fields.Integer()
    breached = fields.Integer()
    cancelled = fields.Integer(metadata={"description": "stopped within target by the record's cancellation "
                                                        "(or a request's rejection): not in the percentage"})
    open = fields.Integer(metadata={"description": "running or paused within target"})
    percent = fields.Float(allow_none=True, metadata={"description": "met / (met + breached) * 100; "
                                                                     "null while there is neither"})


class SlaComplianceOut(Schema):
    clocks = fields.List(fields.Nested(SlaComplianceClockOut))


@blp.route("/sla/compliance")
class ComplianceView(MethodView):
    @blp.arguments(SlaComplianceQuery, location="query")
    @blp.response(200, SlaComplianceOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """SLA compliance per clock over the records the caller may see, from their stored clocks:
        met, breached, cancelled and open counts, and met / (met + breached) as a percentage.
        Cancelled clocks are left out of the percentage."""
        user = current_user()
        return {"clocks": unit_of_work(lambda: services().sla.compliance(user, args.get("kind")))}


@blp.route("/sla/policies")
class PoliciesView(MethodView):
    @blp.response(200, SlaPolicyListOut)
    @blp.doc(security=SECURITY)
    def get(self) -> dict[str, Any]:
        """The stored policies (``items``), and the built-in terms of every tracked kind and
        priority (``defaults``: 24x7, P1 15 min / 4 h to P4 8 h / 72 h), which apply wherever no
        stored policy matches (a catalog request's resolution target is its item's ``target_hours``)."""
        current_user()
        svc = services()
        return {"items": [policy_dict(p) for p in svc.sla.policies()], "defaults": svc.sla.default_policies()}

    @checked_first(lambda svc, user: svc.sla.require_policy_writer(user))
    @blp.arguments(SlaPolicyIn)
    @blp.response(200, SlaPolicyOut)
    @blp.doc(security=SECURITY)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the policy for (kind, priority, service) (process_owner)."""
        user = current_user()
        return policy_dict(unit_of_work(lambda: services().sla.save_policy(user, body)))


@blp.route("/sla/policies/<int:policy_id>")
class PolicyView(MethodView):
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, policy_id: int) -> None:
        """Delete a stored policy (process_owner, as for saving one): the built-in terms, or the policy for any service,
        apply again where it matched. Audited. 404 for an unknown policy."""
        user = current_user()
        unit_of_work(lambda: services().sla.delete_policy(user, policy_id))
