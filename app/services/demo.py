"""Demo records for `make run`: a handful of records in different states, so a newcomer sees a
live desk. Only called by `flask demo seed` in demo mode; does nothing if records exist."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from app.errors import NotFound
from app.models import ConfigurationItem, Ticket

if TYPE_CHECKING:
    from . import Services

SHIPPED = ("incident_management", "change_enablement", "problem_management", "catalog_request")
INCIDENT = {"description": "Reported by phone", "category": "network", "impact": "medium", "urgency": "medium"}
#: The demo CMDB: (name, class, status, owner, support group, location, serial number, description).
CIS = (
    ("core-sw-01", "network", "in_service", "ivan", "NetworkTeam", "DC1 rack 2", "FOC2231X0AB", "Core switch, building A"),
    ("wifi-ctrl-01", "network", "in_service", "ivan", "NetworkTeam", "DC1 rack 2", "WLC-5520-77", "Wireless LAN controller"),
    ("pr-204", "hardware", "maintenance", None, "DesktopSupport", "Floor 2, room 204", "PR204-HP-M607", "Floor 2 printer"),
    ("mail-srv-01", "hardware", "in_service", "ivan", "MessagingTeam", "DC1 rack 5", "CZJ93401KQ", "Mail server host"),
    ("exchange", "software", "in_service", "ivan", "MessagingTeam", "", "", "Exchange Server 2019"),
    ("email", "service", "in_service", "alex", "MessagingTeam", "", "", "Email for everyone"),
    ("intranet", "service", "in_service", "alex", "ApplicationSupport", "", "", "The company intranet"),
    ("fax-01", "hardware", "retired", None, None, "Floor 1", "FX-1999-01", "The old fax machine"),
)
#: The demo CMDB's relationships: source, kind, target.
CI_RELATIONS = (
    ("wifi-ctrl-01", "depends_on", "core-sw-01"), ("pr-204", "connects_to", "core-sw-01"),
    ("exchange", "runs_on", "mail-srv-01"), ("email", "depends_on", "exchange"),
    ("mail-srv-01", "connects_to", "core-sw-01"), ("intranet", "depends_on", "core-sw-01"),
)

#: The demo CMDB's assets: configuration item, its asset fields (dates as days from the seeding).
CI_ASSETS: dict[str, dict[str, Any]] = {
    "mail-srv-01": {"asset_tag": "AT-1001", "vendor": "Dell", "purchased_on": -3 * 365, "warranty_until": 20,
                    "cost": "8400.00"},
    "pr-204": {"asset_tag": "AT-2040", "vendor": "HP", "purchased_on": -6 * 365, "warranty_until": -365,
               "cost": "650.00"},
    "wifi-ctrl-01": {"asset_tag": "AT-3007", "vendor": "Cisco", "purchased_on": -400, "warranty_until": 2 * 365 - 400,
                     "cost": "5200.00"},
}
#: The demo CMDB's maintenance windows: configuration item, window.
CI_WINDOWS = (
    ("core-sw-01", {"name": "Weekend nights", "days": ["sat", "sun"], "start": "01:00", "end": "05:00",
                    "timezone": "Europe/London"}),
    ("mail-srv-01", {"name": "Sunday early", "days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "UTC"}),
)


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
        self._seed_cmdb()
        self._seed_knowledge()
        self._seed_responses()
        made: list[Any] = []
        triage = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}
        resolve = {"outcome": "resolve", "resolution_notes": "Replaced the patch cable", "cause_category": "hardware_failure"}

        made.append(self._start("rita", "incident_management", {**INCIDENT, "title": "Wi-Fi drops on floor 3",
                                                                      "ci": "wifi-ctrl-01"}))
        work = self._start("rita", "incident_management", {**INCIDENT, "title": "Printer PR-204 offline", "ci": "pr-204"})
        self._do(work, "triage", "alex", triage)
        made.append(work)
        # time the desk spent on it: on the record's "Time worked" panel and in the reports
        printer = self.s.records.for_instance(work.id)
        if printer is not None:
            self.s.work.log(self._user("alex"), printer.number, {"minutes": 40, "note": "Checked the cabling and "
                                                                 "the print server's queue"})
        pending = self._start("rita", "incident_management", {**INCIDENT, "title": "Laptop battery swells",
                                                               "category": "hardware"})
        self._do(pending, "triage", "alex", {**triage, "category": "hardware", "assignment_group": "DesktopSupport"})
        self._do(pending, "investigate", "alex", {"outcome": "pending", "pending_on": "vendor",
                                                  "pending_reason": "Replacement battery ordered"})
        made.append(pending)
        resolved = self._start("rita", "incident_management", {**INCIDENT, "title": "Cannot reach intranet", "ci": "intranet"})
        self._do(resolved, "triage", "alex", triage)
        self._do(resolved, "investigate", "alex", resolve)
        made.append(resolved)
        closed = self._start("rita", "incident_management", {**INCIDENT, "title": "Mouse not working", "impact": "low",
                                                              "urgency": "low"})
        self._do(closed, "triage", "alex", {**triage, "priority": "P4"})
        self._do(closed, "investigate", "alex", resolve)
        self._do(closed, "confirm_resolution", "rita", {"confirmed": True, "rating": 5, "comment": "Thanks!"})
        made.append(closed)
        made.append(self._start("rita", "incident_management", {**INCIDENT, "title": "Email down for the whole office",
                                                                 "impact": "high", "urgency": "high", "ci": "mail-srv-01"}))

        now = self.s.runtime.clock.now()
        # Carl of the CAB is away for two weeks: his vote on the change below goes to Bob (out of office)
        self.s.away.set_away(self._user("admin"), "carl", {"delegate": "bob", "until": now + timedelta(days=14)})
        # in a week, at 10:00 UTC: outside the core switch's weekend night windows, whenever seeded
        upgrade = (now + timedelta(days=7)).replace(hour=10, minute=0, second=0, microsecond=0)
        change = self._start("alex", "change_enablement", {
            "title": "Upgrade core switch firmware", "description": "Firmware 9.2 fixes the spanning-tree bug",
            "change_type": "normal", "reason": "Known bug causes outages",
            "planned_start": upgrade.isoformat(), "planned_end": (upgrade + timedelta(hours=2)).isoformat(),
            "implementation_plan": "Upgrade standby, fail over, upgrade primary", "rollback_plan": "Boot previous image",
            "test_plan": "Ping sweep and VLAN checks", "ci": "core-sw-01"})
        self._do(change, "assess", "amy", {"impact": "high", "affected_users": 400, "rollback_difficulty": "hard",
                                                  "has_tested": True, "implementer": "ivan",
                                                  "assessment_notes": "Tested in the lab"})
        made.append(change)
        made.append(self._start("alex", "change_enablement", {
            "title": "Add printer to the print server", "description": "New printer on floor 2", "change_type": "standard",
            "reason": "New device", "planned_start": (now + timedelta(days=1)).isoformat(),
            "planned_end": (now + timedelta(days=1, hours=1)).isoformat(), "implementation_plan": "Add queue",
            "rollback_plan": "Remove queue", "test_plan": "Print a test page"}))

        # a freeze after the planned changes: on the change schedule, refusing changes planned into it
        frozen_from = (now + timedelta(days=10)).replace(hour=18, minute=0, second=0, microsecond=0)
        self.s.schedule.add_freeze(self._user("admin"), {
            "name": "Month-end close", "starts_at": frozen_from, "ends_at": frozen_from + timedelta(hours=36),
            "reason": "Finance closes the month: no changes to production systems."})

        problem = self._start("alex", "problem_management", {"title": "Recurring Wi-Fi drops",
                                                             "description": "Several incidents a week on floor 3"})
        self._do(problem, "triage", "alex", {"priority": "P3", "category": "network", "assignment_group": "NetworkTeam"})
        made.append(problem)

        made.append(self.s.catalog.request_item(self._user("rita"), "HW-LAPTOP", {
            "justification": "My laptop is five years old and very slow", **self._laptop_fields()}))
        made.append(self.s.catalog.request_item(self._user("rita"), "MSG-SHARED-MAILBOX", {
            "mailbox_address": "events@example.com", "display_name": "Events team", "mailbox_owner": "rita",
            "justification": "Shared inbox for the events team"}))
        # alex's monthly routine check, raised on its own (app/services/recurring.py): on /recurring
        self.s.recurring.create(self._user("alex"), {
            "name": "UPS battery test", "process_id": "incident_management", "days": ["mon"], "week": "first",
            "time": "08:00", "timezone": "Europe/Berlin",
            "data": {**INCIDENT, "title": "Monthly UPS battery test", "impact": "low", "urgency": "low",
                     "description": "Run the battery self-test of the server room's UPS and note the runtime."}})
        numbers = []
        for item in made:
            ticket = item if isinstance(item, Ticket) else self.s.records.for_instance(item.id)
            if ticket is not None:
                numbers.append(ticket.number)
        return numbers

    def _seed_knowledge(self) -> None:
        """Published answers to common problems: what the incident's start page offers as a
        requester types the title (try "my wifi keeps dropping")."""
        alex = self._user("alex")
        for title, symptoms, cause, workaround in (
            ("Wi-Fi drops every few minutes", "The laptop loses the corporate Wi-Fi and finds it again a minute later.",
             "The laptop roams between access points on the 2.4 GHz band.",
             "Connect to the corp-5G network instead of corp; forget the old network first."),
            ("Printer shows as offline", "Print jobs wait in the queue; the printer says Offline.",
             "The printer got a new address from DHCP.",
             "Switch the printer off and on, then remove and add it again from the print server."),
            ("VPN disconnects after sleep", "After the laptop wakes up the VPN client shows Disconnected.",
             "The client keeps the old tunnel after the network changes.",
             "Quit the VPN client and start it again; install the latest client from the software centre."),
        ):
            self.s.knowledge.publish(alex, title=title, symptoms=symptoms, cause=cause, workaround=workaround,
                                     source=None)

    def _seed_responses(self) -> None:
        """The desk's stock replies (by the process owner) and one of alex's own: what a record's
        comment box offers under "Response template"."""
        olga, alex = self._user("olga"), self._user("alex")
        for values in (
            {"name": "We are on it", "kind": "incident", "shared": True,
             "body": "Hello {{requester}},\n\nthank you for reporting {{number}}. {{agent}} of {{group}} is working on "
                     "it now; we will write here as soon as we know more."},
            {"name": "Please restart first", "shared": True,
             "body": "Hello {{requester}},\n\nplease restart the device once and tell us here whether the problem "
                     "is still there. That fixes many cases and tells us where to look."},
        ):
            self.s.responses.create(olga, values)
        self.s.responses.create(alex, {"name": "Cable swapped", "kind": "incident",
                                       "body": "I replaced the network cable at your desk; {{number}} stays open a day "
                                               "in case it happens again."})

    def _seed_cmdb(self) -> None:
        """The demo configuration items and their relationships (by the demo admin), when the
        CMDB is empty; a support group the desk does not have is left out."""
        if self.s.session.scalar(select(func.count()).select_from(ConfigurationItem)):
            return
        admin = self._user("admin")
        today = self.s.runtime.clock.now().date()
        for name, ci_class, status, owner, group, location, serial, description in CIS:
            asset = {field: (today + timedelta(days=value)).isoformat() if field in ("purchased_on", "warranty_until")
                     else value for field, value in CI_ASSETS.get(name, {}).items()}
            self.s.cmdb.create(admin, {
                "name": name, "ci_class": ci_class, "status": status, "owner": owner,
                "support_group": group if group and self.s.users.find_group(group) else None,
                "location": location, "serial_number": serial, "description": description, **asset})
        for source, kind, target in CI_RELATIONS:
            self.s.cmdb.add_relationship(admin, source, target, kind)
        # when work on them is agreed: the demo's network change is planned outside these, and shows it
        for ci, window in CI_WINDOWS:
            self.s.maintenance.add(admin, ci, window)

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
