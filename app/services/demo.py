"""Demo records for `make run`: a handful of records in different states, so a newcomer sees a
live desk. Only called by `flask demo seed` in demo mode; does nothing if records exist."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from app.errors import NotFound
from app.models import Ticket

if TYPE_CHECKING:
    from . import Services

SHIPPED = ("incident_management", "change_enablement", "problem_management", "catalog_request")
INCIDENT = {"description": "Reported by phone", "category": "network", "impact": "medium", "urgency": "medium"}


class DemoDesk:
    def __init__(self, services: Services) -> None:
        self.s = services

    def _user(self, name: str) -> Any:
        return self.s.users.get_by_username(name)

    def _start(self, who: str, process_id: str, data: dict[str, Any]) -> Any:
        return self.s.instances.start_process(self._user(who), process_id, data)

    def _do(self, instance: Any, bpmn_id: str, who: str, data: dict[str, Any]) -> None:
        task = next(t for t in self.s.instances.open_tasks(instance) if t.bpmn_id == bpmn_id)
        self.s.tasks.complete(self._user(who), task.id, data)

    def seed(self) -> list[str]:
        """Create the demo records; return their numbers. Idempotent: skipped when records exist."""
        if (self.s.session.scalar(select(func.count()).select_from(Ticket)) or 0) > 0:
            return []
        try:
            for process_id in SHIPPED:
                self.s.definitions.latest(process_id)
        except NotFound:
            return []  # the shipped processes are not deployed: users only
        made: list[Any] = []
        triage = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}
        resolve = {"outcome": "resolve", "resolution_notes": "Replaced the patch cable", "cause_category": "hardware_failure"}

        made.append(self._start("rita", "incident_management", {**INCIDENT, "title": "Wi-Fi drops on floor 3"}))
        work = self._start("rita", "incident_management", {**INCIDENT, "title": "Printer PR-204 offline"})
        self._do(work, "triage", "alex", triage)
        made.append(work)
        pending = self._start("rita", "incident_management", {**INCIDENT, "title": "Laptop battery swells",
                                                               "category": "hardware"})
        self._do(pending, "triage", "alex", {**triage, "category": "hardware", "assignment_group": "DesktopSupport"})
        self._do(pending, "investigate", "alex", {"outcome": "pending", "pending_on": "vendor",
                                                  "pending_reason": "Replacement battery ordered"})
        made.append(pending)
        resolved = self._start("rita", "incident_management", {**INCIDENT, "title": "Cannot reach intranet"})
        self._do(resolved, "triage", "alex", triage)
        self._do(resolved, "investigate", "alex", resolve)
        made.append(resolved)
        closed = self._start("rita", "incident_management", {**INCIDENT, "title": "Mouse not working", "impact": "low",
                                                              "urgency": "low"})
        self._do(closed, "triage", "alex", {**triage, "priority": "P4"})
        self._do(closed, "investigate", "alex", resolve)
        self._do(closed, "confirm_resolution", "rita", {"confirmed": True, "comment": "Thanks!"})
        made.append(closed)
        made.append(self._start("rita", "incident_management", {**INCIDENT, "title": "Email down for the whole office",
                                                                 "impact": "high", "urgency": "high"}))

        now = self.s.runtime.clock.now()
        change = self._start("alex", "change_enablement", {
            "title": "Upgrade core switch firmware", "description": "Firmware 9.2 fixes the spanning-tree bug",
            "change_type": "normal", "reason": "Known bug causes outages",
            "planned_start": (now + timedelta(days=7)).isoformat(), "planned_end": (now + timedelta(days=7, hours=2)).isoformat(),
            "implementation_plan": "Upgrade standby, fail over, upgrade primary", "rollback_plan": "Boot previous image",
            "test_plan": "Ping sweep and VLAN checks"})
        self._do(change, "assess", "amy", {"impact": "high", "affected_users": 400, "rollback_difficulty": "hard",
                                                  "has_tested": True, "implementer": "ivan",
                                                  "assessment_notes": "Tested in the lab"})
        made.append(change)
        made.append(self._start("alex", "change_enablement", {
            "title": "Add printer to the print server", "description": "New printer on floor 2", "change_type": "standard",
            "reason": "New device", "planned_start": (now + timedelta(days=1)).isoformat(),
            "planned_end": (now + timedelta(days=1, hours=1)).isoformat(), "implementation_plan": "Add queue",
            "rollback_plan": "Remove queue", "test_plan": "Print a test page"}))

        problem = self._start("alex", "problem_management", {"title": "Recurring Wi-Fi drops",
                                                             "description": "Several incidents a week on floor 3"})
        self._do(problem, "triage", "alex", {"priority": "P3", "category": "network", "assignment_group": "NetworkTeam"})
        made.append(problem)

        made.append(self.s.catalog.request_item(self._user("rita"), "HW-LAPTOP", {
            "justification": "My laptop is five years old and very slow", **self._laptop_fields()}))
        made.append(self.s.catalog.request_item(self._user("rita"), "MSG-SHARED-MAILBOX", {
            "mailbox_address": "events@example.com", "display_name": "Events team", "mailbox_owner": "rita",
            "justification": "Shared inbox for the events team"}))
        numbers = []
        for item in made:
            ticket = item if isinstance(item, Ticket) else self.s.records.for_instance(item.id)
            if ticket is not None:
                numbers.append(ticket.number)
        return numbers

    def _laptop_fields(self) -> dict[str, Any]:
        item = self.s.catalog.get_item("HW-LAPTOP")
        schema, _ = self.s.catalog.item_form(item)
        fields: dict[str, Any] = {}
        for name, spec in (schema or {}).get("properties", {}).items():
            if name in (schema or {}).get("required", []) and name != "justification":
                if "default" in spec:
                    fields[name] = spec["default"]
                elif spec.get("oneOf"):
                    fields[name] = spec["oneOf"][0]["const"]
                elif spec.get("enum"):
                    fields[name] = spec["enum"][0]
                elif spec.get("type") == "integer":
                    fields[name] = max(1, spec.get("minimum", 1))
                elif spec.get("type") == "boolean":
                    fields[name] = True
                else:
                    fields[name] = "rita"
        return fields
