"""catalog_request.bpmn + catalog_approval.dmn + processes/catalog.json: every path, driven through
the engine with fake platform operations that serve the shipped catalog.

Orders start as the portal starts them (the item's own form validated first); from there on the
shared harness (tests/engine/harness.py) checks every step as the platform does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.engine import OperationFailed, UserTaskView, WorkflowRun
from app.errors import ValidationFailed
from app.services.execution import task_assignment
from app.services.forms import check_form_definition, render_instructions, validate_submission
from app.services.policy import excluded_users
from tests.engine.harness import (
    ROOT,
    FakeOperations,
    ProcessHarness,
    compile_process,
    compiled,
    form,
    identity,
    max_depth,
    source_files,
)

PROCESS_ID = "catalog_request"
SOURCES = (f"{PROCESS_ID}.bpmn", "catalog_approval.dmn", f"{PROCESS_ID}.record.json")
FORMS = ("request-approve", "request-fulfil", "request-confirm")
CATALOG = json.loads((ROOT / "processes" / "catalog.json").read_text())
ITEMS = {item["code"]: item for item in CATALOG["items"]}
FULFILMENT_GROUPS = {"DesktopSupport", "IdentityTeam", "NetworkTeam", "MessagingTeam", "SoftwareLicensing", "Facilities"}
MANAGERS = {"rita": "mona", "mona": "mona", "ivan": None}
SELF_APPROVAL = "you may not approve your own request"

#: A realistic order for every catalog item, as its request form would send it.
ORDERS: dict[str, dict[str, Any]] = {
    "HW-LAPTOP": {"justification": "Current laptop is five years old and the battery is swollen.",
                  "replacement": True, "old_asset_tag": "AT-004211", "keyboard_layout": "DE",
                  "needed_by": "2026-03-20", "delivery_location": "HQ, floor 3, desk 3.14"},
    "HW-LAPTOP-PERF": {"justification": "Training fraud-detection models locally needs a GPU and 64 GB RAM.",
                       "workload": "data_analysis", "cost_centre": "CC-4410", "keyboard_layout": "US",
                       "delivery_location": "HQ, floor 5, desk 5.02"},
    "HW-MONITOR": {"quantity": 2, "justification": "Reviewing drawings side by side.",
                   "delivery_location": "HQ, floor 2, desk 2.08"},
    "SW-LICENCE": {"software": "visio", "quantity": 2, "licensed_users": "rita\nsven",
                   "justification": "Network diagrams for the data-centre migration."},
    "ACC-APP": {"application": "crm", "access_level": "write", "for_user": "rita",
                "justification": "Joining the key account team next month."},
    "NET-VPN": {"for_user": "rita", "profile": "employee", "justification": "Working from home two days a week."},
    "MSG-SHARED-MAILBOX": {"mailbox_address": "payroll@example.com", "display_name": "Payroll team",
                           "mailbox_owner": "rita", "members": "rita\nsven\nolga", "send_as": True,
                           "justification": "One address for all payroll questions."},
    "FAC-DESK-MOVE": {"person": "rita", "current_location": "HQ 2.08", "new_location": "HQ 4.11",
                      "move_date": "2026-03-27", "equipment": ["monitors", "laptop_dock"],
                      "justification": "Team moves to floor 4."},
}
#: (DMN outcome, total cost) per item for its ORDERS entry.
EXPECTED = {
    "HW-LAPTOP": ("line_manager", 950),
    "HW-LAPTOP-PERF": ("budget_owner", 2100),
    "HW-MONITOR": ("line_manager", 360),
    "SW-LICENCE": ("line_manager", 360),
    "ACC-APP": ("line_manager", 0),
    "NET-VPN": ("line_manager", 0),
    "MSG-SHARED-MAILBOX": ("none", 0),
    "FAC-DESK-MOVE": ("none", 0),
}


def item_form(code: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    name = ITEMS[code]["form"]
    ui_name = name.replace(".json", ".ui.json")
    schema = form(name)
    assert schema is not None
    return schema, form(ui_name) if (ROOT / "forms" / ui_name).exists() else None


def catalog_item(params: dict[str, Any]) -> dict[str, Any]:
    """A published item of processes/catalog.json, as the platform serves it."""
    item = ITEMS.get(params["code"])
    if item is None or item["status"] != "published":
        raise OperationFailed(f"no published catalog item {params['code']!r}")
    return {"code": item["code"], "name": item["name"], "owner_group": item["owner_group"],
            "fulfilment_group": item["fulfilment_group"], "approval": item["approval_rule"],
            "cost": item["cost"], "target_hours": item["target_hours"], "form": item["form"]}


#: Catalog items from processes/catalog.json and managers from MANAGERS.
ANSWERS = {
    "catalog_item": catalog_item,
    "get_manager": lambda params: {"manager": MANAGERS.get(params["username"])},
}


class Harness(ProcessHarness):
    one_at_a_time = True

    def __init__(self) -> None:
        super().__init__(compiled(*SOURCES, forms="request"), FakeOperations(ANSWERS))

    def order(self, code: str, requester: str = "rita", **changes: Any) -> WorkflowRun:
        """Start a request the way the portal does: the item's form validated, then the item code."""
        schema, ui = item_form(code)
        data = validate_submission(schema, ui, {**ORDERS[code], **changes}, {})
        run = self.launch({"item": code, "record_number": "REQ-000042", **data}, identity(requester))
        assert run.failure is None, run.failure
        return run

    def complete(self, run: WorkflowRun, bpmn_id: str, data: dict[str, Any], user: str) -> WorkflowRun:
        """Validate like the platform (separation of duties, form, setUserVar), then complete."""
        task = self.task(run, bpmn_id)
        assert user not in excluded_users(task.properties, task.data)
        assert "instructions-error" not in render_instructions(task.instructions, task.data)
        return self.submit(run, task, data, identity(user, "rita"))


@pytest.fixture()
def h() -> Harness:
    return Harness()


def assert_approval_task(task: UserTaskView, requester: str) -> None:
    assert task.form == "request-approve.json" and task.ui_form == "request-approve.ui.json"
    assert task.properties["excludeUsersVars"] == "requester"
    assert task.properties["excludeReason"] == SELF_APPROVAL
    assert task.properties["setUserVar"] == "decided_by"
    assert excluded_users(task.properties, task.data) == {requester}
    assert task.data["ticket_status"] == "submitted"


def fulfil_and_confirm(h: Harness, run: WorkflowRun, group: str, rating: int = 5) -> WorkflowRun:
    fulfil = h.task(run, "fulfil_request")
    assert fulfil.name == "Fulfil request" and fulfil.lane == "Fulfilment"
    assert fulfil.properties["candidateGroupVar"] == "fulfilment_group"
    assert fulfil.properties["setUserVar"] == "assignee"
    assert task_assignment(fulfil) == (None, group)
    assert fulfil.data["ticket_status"] == "fulfilment"
    assert run.data["ticket_status"] == "fulfilment"  # set before the cycle, so visible at the top level
    run = h.complete(run, "fulfil_request", {"fulfilment_notes": "Delivered and handed over in person."}, "fred")

    confirm = h.task(run, "confirm_receipt")
    assert confirm.name == "Confirm receipt and rate" and confirm.lane == "Requesters"
    assert confirm.properties["assignedUserVar"] == "requester"
    assert task_assignment(confirm) == (confirm.data["requester"], None)
    assert confirm.data["ticket_status"] == "awaiting_confirmation"
    assert h.record(run)["status"] == "awaiting_confirmation" and h.record(run)["assignee"] == "fred"
    run = h.complete(run, "confirm_receipt", {"received": "yes", "rating": rating,
                                              "rating_comment": "Quick and friendly."}, confirm.data["requester"])
    assert run.status == "completed"
    assert run.data["ticket_status"] == "closed"
    return run


# -- catalog, forms and deployment ------------------------------------------------------------------


def test_catalog_is_a_category_tree_of_published_items_with_valid_forms():
    assert set(CATALOG) == {"categories", "items", "translations"}  # translations: docs/PROCESSES.md
    codes: dict[str, str] = {}

    def walk(nodes: list[dict[str, Any]], parent: str | None) -> None:
        for node in nodes:
            assert node["name"] and node["code"] not in codes
            if parent is not None:
                assert node["code"].startswith(parent + ".")
            codes[node["code"]] = node["name"]
            walk(node.get("children", []), node["code"])

    walk(CATALOG["categories"], None)
    assert len(ITEMS) == len(CATALOG["items"]) >= 6
    for code, item in ITEMS.items():
        assert item["category_code"] in codes and "." in item["category_code"], code
        assert item["fulfilment_group"] in FULFILMENT_GROUPS and item["owner_group"]
        assert item["approval_rule"] in {"none", "manager", "budget"}
        assert isinstance(item["cost"], (int, float)) and item["cost"] >= 0
        assert isinstance(item["target_hours"], int) and item["target_hours"] > 0
        assert item["status"] == "published" and item["description"]
        assert item["form"].startswith("catalog-") and item["form"].endswith(".json")
        schema, ui = item_form(code)
        check_form_definition(schema, ui, item["form"])
        assert "justification" in schema["required"], code
    assert set(ORDERS) == set(ITEMS) == set(EXPECTED)


@pytest.mark.parametrize(("code", "data", "field"), [
    ("HW-LAPTOP", {"justification": "short"}, "justification"),
    ("HW-LAPTOP", {"old_asset_tag": "4211"}, "old_asset_tag"),
    ("HW-LAPTOP", {"keyboard_layout": "XX"}, "keyboard_layout"),
    ("HW-LAPTOP-PERF", {"workload": "gaming"}, "workload"),
    ("HW-MONITOR", {"quantity": 3}, "quantity"),
    ("SW-LICENCE", {"quantity": 0}, "quantity"),
    ("ACC-APP", {"for_user": "Rita Smith"}, "for_user"),
    ("NET-VPN", {"valid_until": "next year"}, "valid_until"),
    ("MSG-SHARED-MAILBOX", {"mailbox_address": "payroll"}, "mailbox_address"),
    ("FAC-DESK-MOVE", {"equipment": ["piano"]}, "equipment"),
])
def test_item_forms_refuse_bad_orders(code: str, data: dict[str, Any], field: str):
    schema, ui = item_form(code)
    with pytest.raises(ValidationFailed) as info:
        validate_submission(schema, ui, {**ORDERS[code], **data}, {})
    assert field in info.value.details["fields"]


@pytest.mark.parametrize(("form", "data", "field"), [
    ("request-approve", {"approval_comment": "fine"}, "approved"),
    ("request-fulfil", {"fulfilment_notes": ""}, "fulfilment_notes"),
    ("request-confirm", {"received": "yes"}, "rating"),
    ("request-confirm", {"received": "yes", "rating": 6}, "rating"),
    ("request-confirm", {"received": "maybe", "rating": 3}, "received"),
])
def test_task_forms_refuse_bad_submissions(h: Harness, form: str, data: dict[str, Any], field: str):
    with pytest.raises(ValidationFailed) as info:
        validate_submission(h.process.forms[f"{form}.json"], h.process.forms[f"{form}.ui.json"], data, {})
    assert field in info.value.details["fields"]


def test_deploys_with_the_platform_operators_and_its_forms():
    process = compile_process(source_files(*SOURCES, forms="request"))
    assert process.process_id == PROCESS_ID
    assert process.lanes == ("BudgetOwners", "Fulfilment", "LineManagers", "Requesters")
    assert {t.bpmn_id: t.lane for t in process.user_tasks} == {
        "approve_manager": "LineManagers", "approve_budget": "BudgetOwners",
        "fulfil_request": "Fulfilment", "confirm_receipt": "Requesters"}
    assert set(process.forms) == {f"{n}.json" for n in FORMS} | {f"{n}.ui.json" for n in FORMS}
    for name in FORMS:
        check_form_definition(process.forms[f"{name}.json"], process.forms[f"{name}.ui.json"], f"{name}.json")
    assert process.record_mapping["kind"] == "request" and process.record_mapping["prefix"] == "REQ"
    assert "catalog_approval" in process.spec_json
    xml = (ROOT / "processes" / f"{PROCESS_ID}.bpmn").read_text()
    assert "<bpmndi:BPMNDiagram" in xml and "standardLoopCharacteristics" in xml


# -- the approval decision for every catalog item ------------------------------------------------------


@pytest.mark.parametrize("code", sorted(ITEMS))
def test_every_catalog_item_gets_its_approval_route(h: Harness, code: str):
    run = h.order(code)
    approval, cost = EXPECTED[code]
    [task] = run.user_tasks()
    assert task.data["approval"] == approval and task.data["cost"] == cost
    assert task.data["catalog"]["code"] == code and task.data["approval_rule"] == ITEMS[code]["approval_rule"]
    expected_task = {"line_manager": "approve_manager", "budget_owner": "approve_budget", "none": "fulfil_request"}
    assert task.bpmn_id == expected_task[approval]
    record = h.record(run)
    assert record["title"] == f"{ITEMS[code]['name']} for rita"
    assert record["description"] == ORDERS[code]["justification"]
    assert record["status"] == ("submitted" if approval != "none" else "fulfilment")
    assert (record["priority"], record["category"]) == ("P4", code)
    assert record["assignment_group"] == ITEMS[code]["fulfilment_group"]
    assert record["details"]["item"] == code and record["details"]["cost"] == cost


@pytest.mark.parametrize(("rule", "cost", "expected"), [
    ("budget", 0, "budget_owner"),
    ("manager", 1000, "line_manager"),
    ("manager", 1000.01, "budget_owner"),
    ("none", 1500, "budget_owner"),
    ("none", 0, "none"),
    ("none", 40, "line_manager"),
    ("unknown-rule", 0, "line_manager"),
])
def test_approval_decision_table(h: Harness, rule: str, cost: float, expected: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(ITEMS, "TEST-ITEM", {**ITEMS["NET-VPN"], "code": "TEST-ITEM", "approval_rule": rule,
                                             "cost": cost})
    bundle = h.engine.spec(h.process.content_hash, h.process.spec_json)
    run = h.engine.start(bundle, {"item": "TEST-ITEM", "justification": "decision table check"},
                         identity("rita"), operations=h.ops)
    [task] = run.user_tasks()
    assert task.data["approval"] == expected


# -- paths -----------------------------------------------------------------------------------------


def test_item_without_approval_goes_straight_to_fulfilment(h: Harness):
    run = h.order("MSG-SHARED-MAILBOX")
    assert h.ops.names() == ["catalog_item"]
    assert h.ops.calls[0][1] == {"code": "MSG-SHARED-MAILBOX"}
    run = fulfil_and_confirm(h, run, "MessagingTeam", rating=4)
    record = h.record(run)
    assert record["status"] == "closed" and record["assignee"] == "fred"
    assert record["details"] == {
        "item": "MSG-SHARED-MAILBOX", "quantity": 1, "cost": 0, "approval": "none", "approved_by": None,
        "rejected_by": None, "approval_comment": "", "fulfilment_notes": "Delivered and handed over in person.",
        "rating": 4, "rating_comment": "Quick and friendly.", "closed_reason": None}
    assert "approve_manager" not in run.history_path() and "approve_budget" not in run.history_path()


def test_line_manager_approves_then_fulfilment_and_confirmation(h: Harness):
    run = h.order("HW-LAPTOP")
    assert h.ops.calls == [("catalog_item", {"code": "HW-LAPTOP"}), ("get_manager", {"username": "rita"})]
    approve = h.task(run, "approve_manager")
    assert approve.name == "Approve as line manager" and approve.lane == "LineManagers"
    assert approve.properties["assignedUserVar"] == "line_manager"
    assert task_assignment(approve) == ("mona", None)
    assert_approval_task(approve, "rita")
    text = render_instructions(approve.instructions, approve.data)
    assert "Standard laptop" in text and "950.00 EUR" in text and "battery is swollen" in text

    run = h.complete(run, "approve_manager", {"approved": True, "approval_comment": "Go ahead."}, "mona")
    assert (h.record(run)["details"]["approved_by"], h.record(run)["details"]["rejected_by"]) == ("mona", None)
    run = fulfil_and_confirm(h, run, "DesktopSupport")
    record = h.record(run)
    assert record["status"] == "closed"
    assert record["details"]["approval"] == "line_manager" and record["details"]["rating"] == 5


def test_line_manager_rejects(h: Harness):
    run = h.order("NET-VPN")
    run = h.complete(run, "approve_manager",
                     {"approved": False, "approval_comment": "Remote work is not agreed for this role."}, "mona")
    assert run.status == "completed" and run.user_tasks() == []
    record = h.record(run)
    assert record["status"] == "rejected"
    # mona decided against it: she is on record as its rejecter, not its approver
    assert (record["details"]["rejected_by"], record["details"]["approved_by"]) == ("mona", None)
    assert record["details"]["closed_reason"] == "rejected by mona: Remote work is not agreed for this role."
    assert record["details"]["approval_comment"] == "Remote work is not agreed for this role."
    assert "fulfil_and_confirm" not in run.history_path()
    assert run.history_path()[-2:] == ["reject", "end_rejected"]


def test_requester_without_manager_falls_back_to_the_budget_owners(h: Harness):
    run = h.order("ACC-APP", requester="ivan", for_user="ivan")
    approve = h.task(run, "approve_budget")
    assert approve.lane == "BudgetOwners" and approve.name == "Approve as budget owner"
    assert approve.data["approval"] == "budget_owner" and approve.data["line_manager"] is None
    assert "assignedUserVar" not in approve.properties
    assert task_assignment(approve) == (None, None)  # the lane decides: BudgetOwners
    assert_approval_task(approve, "ivan")
    run = h.complete(run, "approve_budget", {"approved": True}, "bob")
    assert h.record(run)["details"]["approval"] == "budget_owner"
    run = fulfil_and_confirm(h, run, "IdentityTeam")
    assert h.record(run)["details"]["approved_by"] == "bob"


def test_own_manager_cannot_approve_so_the_budget_owners_do(h: Harness):
    run = h.order("HW-LAPTOP", requester="mona")
    approve = h.task(run, "approve_budget")
    assert approve.data["line_manager"] is None
    assert_approval_task(approve, "mona")
    assert "mona" in excluded_users(approve.properties, approve.data)
    run = h.complete(run, "approve_budget", {"approved": False, "approval_comment": "Not this year."}, "bob")
    assert h.record(run)["status"] == "rejected"


def test_budget_owner_approves_an_expensive_order(h: Harness):
    run = h.order("SW-LICENCE", quantity=10)
    assert h.ops.names() == ["catalog_item"]  # no manager lookup on the budget route
    approve = h.task(run, "approve_budget")
    assert approve.data["cost"] == 1800 and approve.data["quantity"] == 10
    assert_approval_task(approve, "rita")
    assert "(x10)" in render_instructions(approve.instructions, approve.data)
    run = h.complete(run, "approve_budget", {"approved": True, "approval_comment": "Within the project budget."},
                     "bob")
    run = fulfil_and_confirm(h, run, "SoftwareLicensing")
    record = h.record(run)
    assert record["details"]["cost"] == 1800 and record["details"]["approved_by"] == "bob"


def test_budget_owner_rejects_a_budget_item(h: Harness):
    run = h.order("HW-LAPTOP-PERF")
    run = h.complete(run, "approve_budget", {"approved": False, "approval_comment": "Use the shared GPU server."},
                     "bob")
    assert run.status == "completed"
    assert h.record(run)["status"] == "rejected"
    assert h.record(run)["details"]["approval"] == "budget_owner"


def test_not_received_goes_back_to_fulfilment_without_deepening_the_tree(h: Harness):
    run = h.order("FAC-DESK-MOVE")
    depths = []
    for round_no in range(3):
        fulfil = h.task(run, "fulfil_request")
        assert fulfil.data["ticket_status"] == "fulfilment"
        if round_no:
            assert "not received" in render_instructions(fulfil.instructions, fulfil.data)
        run = h.complete(run, "fulfil_request", {"fulfilment_notes": f"Moved, round {round_no + 1}."}, "fay")
        confirm = h.task(run, "confirm_receipt")
        assert confirm.data["ticket_status"] == "awaiting_confirmation"
        assert confirm.data["fulfilment_notes"] == f"Moved, round {round_no + 1}."
        run = h.complete(run, "confirm_receipt",
                         {"received": "no", "rating": 2, "rating_comment": "The monitors did not arrive."}, "rita")
        depths.append(max_depth(run))
    assert depths[0] == depths[1] == depths[2]
    assert h.record(run)["status"] == "fulfilment"
    run = h.complete(run, "fulfil_request", {"fulfilment_notes": "Monitors delivered to 4.11."}, "fay")
    run = h.complete(run, "confirm_receipt", {"received": "yes", "rating": 4}, "rita")
    assert run.status == "completed"
    record = h.record(run)
    assert record["status"] == "closed" and record["assignee"] == "fay"
    assert record["details"]["rating"] == 4 and record["details"]["fulfilment_notes"] == "Monitors delivered to 4.11."


def test_unknown_item_fails_the_instance_at_the_catalog_step(h: Harness):
    bundle = h.engine.spec(h.process.content_hash, h.process.spec_json)
    run = h.engine.start(bundle, {"item": "NOPE", "justification": "?"}, identity("rita"), operations=h.ops)
    assert run.status == "error"
    assert run.failure is not None and run.failure.element_id == "load_item"
    assert "NOPE" in run.failure.message
