"""catalog_request and the catalog API end to end through HTTP, with the people of each lane.

The catalog is processes/catalog.json as Desk loads it; requests go through
POST /api/v1/catalog/<code>/requests (the item's form checks the data) or POST /api/v1/instances.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.http.desk import PEOPLE, ROOT, Desk
from tests.http.helpers import assert_error

#: A valid order for the items these tests request, as each item's request form would send it.
ORDERS: dict[str, dict[str, Any]] = {
    "MSG-SHARED-MAILBOX": {"mailbox_address": "helpdesk-fr@example.com", "display_name": "Helpdesk France",
                           "mailbox_owner": "rita", "members": "rita\nalex", "send_as": False,
                           "justification": "One address for the French-speaking callers."},
    "HW-LAPTOP": {"justification": "The battery swells; the laptop is four years old.", "replacement": True,
                  "old_asset_tag": "AT-123456", "keyboard_layout": "UK", "delivery_location": "Main building 2.17"},
    "HW-LAPTOP-PERF": {"justification": "Local model training needs a dedicated GPU and 64 GB of RAM.",
                       "workload": "data_analysis", "cost_centre": "CC-2040", "keyboard_layout": "US",
                       "delivery_location": "Lab 1.03"},
    "NET-VPN": {"for_user": "rita", "profile": "employee", "justification": "Working from home on Fridays."},
    "SW-LICENCE": {"software": "tableau", "quantity": 8, "licensed_users": "rita\nalex\nnina",
                   "justification": "Dashboards for the quarterly service review."},
    "ACC-APP": {"application": "data_warehouse", "access_level": "read", "for_user": "alex",
                "justification": "Monthly ticket statistics for the desk."},
    "FAC-DESK-MOVE": {"person": "rita", "current_location": "Main 2.17", "new_location": "Annex 0.04",
                      "move_date": "2026-02-13", "equipment": ["monitors", "desk_phone"],
                      "justification": "The service desk moves to the annex."},
}

NEW_ITEM = {"code": "NET-VPN-ADMIN", "name": "Administrator VPN", "category_code": "03.02",
            "description": "VPN profile for the management networks.", "owner_group": "NetworkTeam",
            "fulfilment_group": "NetworkTeam", "form": "catalog-net-vpn.json", "approval_rule": "budget",
            "cost": 0, "target_hours": 8}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


# -- small verbs ------------------------------------------------------------------------------------


def order(desk: Desk, code: str, who: str = "rita", **changes: Any) -> dict[str, Any]:
    """Request a catalog item through its form; the answer is the REQ record."""
    response = desk.client.post(f"/api/v1/catalog/{code}/requests", headers=desk.auth(who),
                                json={"data": {**ORDERS[code], **changes}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def catalog(desk: Desk, who: str = "rita", **query: str) -> list[dict[str, Any]]:
    response = desk.client.get("/api/v1/catalog", headers=desk.auth(who), query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["categories"]


def item_codes(nodes: list[dict[str, Any]]) -> set[str]:
    codes: set[str] = set()
    for node in nodes:
        codes |= {item["code"] for item in node["items"]} | item_codes(node["children"])
    return codes


def inbox(desk: Desk, who: str) -> set[int]:
    response = desk.client.get("/api/v1/tasks?per_page=200", headers=desk.auth(who))
    assert response.status_code == 200
    return {t["id"] for t in response.get_json()["items"]}


def statuses(desk: Desk, instance_id: int) -> list[str]:
    """The record's status changes, in order, from the instance history."""
    return [e["payload"]["changes"]["status"] for e in desk.history(instance_id)
            if e["type"] == "record_updated" and "status" in e["payload"]["changes"]]


def only_in_inbox_of(desk: Desk, task_id: int, who: str) -> None:
    holders = [name for name in PEOPLE if task_id in inbox(desk, name)]
    assert holders == [who]


def not_visible(desk: Desk, task_id: int, *people: str) -> None:
    for who in people:
        assert_error(desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth(who)), 404)
        assert_error(desk.client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk.auth(who)), 404)


def fulfil(desk: Desk, number: str, who: str, notes: str = "Delivered and handed over in person.") -> None:
    desk.complete(number, "fulfil_request", who, {"fulfilment_notes": notes})


def confirm(desk: Desk, number: str, received: str = "yes", rating: int = 5, comment: str = "", who: str = "rita") -> None:
    desk.complete(number, "confirm_receipt", who, {"received": received, "rating": rating, "rating_comment": comment})


def form_file(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "forms" / name).read_text())


# -- the catalog API ----------------------------------------------------------------------------------


def test_catalog_is_a_category_tree_with_the_published_items(desk: Desk):
    tree = catalog(desk)
    assert [(c["code"], c["name"]) for c in tree] == [
        ("01", "Hardware"), ("02", "Software"), ("03", "Access"), ("04", "Messaging and collaboration"),
        ("05", "Facilities")]
    hardware = tree[0]
    assert hardware["items"] == [] and [c["code"] for c in hardware["children"]] == ["01.01", "01.02"]
    laptops = hardware["children"][1]
    assert laptops["name"] == "Laptops"
    assert [i["code"] for i in laptops["items"]] == ["HW-LAPTOP-PERF", "HW-LAPTOP"]  # by name
    standard = laptops["items"][1]
    assert standard == {
        "code": "HW-LAPTOP", "name": "Standard laptop", "category": "01.02", "description": standard["description"],
        "owner_group": "DesktopSupport", "fulfilment_group": "DesktopSupport", "form": "catalog-hw-laptop.json",
        "approval": "manager", "cost": 950.0, "target_hours": 72, "status": "published"}
    assert item_codes(tree) == {"HW-LAPTOP", "HW-LAPTOP-PERF", "HW-MONITOR", "SW-LICENCE", "ACC-APP", "NET-VPN",
                                "MSG-SHARED-MAILBOX", "FAC-DESK-MOVE"}
    assert_error(desk.client.get("/api/v1/catalog"), 401)


def test_catalog_search_by_keyword_and_category(desk: Desk):
    found = catalog(desk, q="laptop")
    assert [c["code"] for c in found] == ["01"] and [c["code"] for c in found[0]["children"]] == ["01.02"]
    assert item_codes(found) == {"HW-LAPTOP", "HW-LAPTOP-PERF"}
    assert item_codes(catalog(desk, q="LAPTOP gpu")) == {"HW-LAPTOP-PERF"}  # every word, any case
    assert item_codes(catalog(desk, q="shared mailbox")) == {"MSG-SHARED-MAILBOX"}
    assert item_codes(catalog(desk, q="net-vpn")) == {"NET-VPN"}  # the code counts too
    by_category = catalog(desk, category="03")
    assert [c["code"] for c in by_category] == ["03"] and item_codes(by_category) == {"ACC-APP", "NET-VPN"}
    assert item_codes(catalog(desk, category="03.02")) == {"NET-VPN"}
    assert item_codes(catalog(desk, category="01", q="monitor")) == {"HW-MONITOR"}
    assert catalog(desk, category="03", q="laptop") == []
    assert catalog(desk, q="zeppelin") == []


def test_an_item_comes_with_its_request_form(desk: Desk):
    response = desk.client.get("/api/v1/catalog/items/HW-LAPTOP", headers=desk.auth("rita"))
    assert response.status_code == 200
    item = response.get_json()
    assert (item["code"], item["name"], item["category"], item["approval"]) == (
        "HW-LAPTOP", "Standard laptop", "01.02", "manager")
    assert item["form_schema"] == form_file("catalog-hw-laptop.json")
    assert item["ui_schema"] == form_file("catalog-hw-laptop.ui.json")
    assert "justification" in item["form_schema"]["required"]
    assert_error(desk.client.get("/api/v1/catalog/items/NO-SUCH-ITEM", headers=desk.auth("rita")), 404)


def test_only_the_process_owner_adds_and_edits_items(desk: Desk):
    c = desk.client
    for who in ("rita", "alex", "mona", "bob", "aude"):
        assert_error(c.post("/api/v1/catalog/items", headers=desk.auth(who), json=NEW_ITEM), 403, "forbidden")
        assert_error(c.patch("/api/v1/catalog/items/NET-VPN", headers=desk.auth(who), json={"cost": 10}), 403,
                     "forbidden")
    assert_error(c.get(f"/api/v1/catalog/items/{NEW_ITEM['code']}", headers=desk.auth("olga")), 404)
    assert c.get("/api/v1/catalog/items/NET-VPN", headers=desk.auth("olga")).get_json()["cost"] == 0

    # bad input: 422 naming the field; nothing is stored
    olga = desk.auth("olga")
    for change, field in (({"category_code": "09.99"}, "category_code"), ({"form": "catalog-nope.json"}, "form"),
                          ({"approval_rule": "ceo"}, "approval_rule"), ({"cost": -5}, "cost"),
                          ({"code": "lower-case"}, "code"), ({"fulfilment_group": "NoSuchGroup"}, "fulfilment_group"),
                          ({"owner_group": "NoSuchGroup"}, "owner_group")):
        body = assert_error(c.post("/api/v1/catalog/items", headers=olga, json={**NEW_ITEM, **change}), 422,
                            "validation_failed")
        assert set(body["details"]["fields"]) == {field}, body
    assert_error(c.get(f"/api/v1/catalog/items/{NEW_ITEM['code']}", headers=olga), 404)

    # olga adds it as a draft: requesters do not see it yet
    response = c.post("/api/v1/catalog/items", headers=olga, json={**NEW_ITEM, "status": "draft"})
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert (created["code"], created["category"], created["approval"], created["status"]) == (
        "NET-VPN-ADMIN", "03.02", "budget", "draft")
    assert_error(c.post("/api/v1/catalog/items", headers=olga, json=NEW_ITEM), 409, "conflict")
    assert_error(c.post("/api/v1/catalog/items", headers=olga, json={**NEW_ITEM, "name": "Other"}), 409)
    assert "NET-VPN-ADMIN" not in item_codes(catalog(desk))
    assert "NET-VPN-ADMIN" in item_codes(catalog(desk, "olga"))
    assert_error(c.get("/api/v1/catalog/items/NET-VPN-ADMIN", headers=desk.auth("rita")), 404)
    assert_error(c.post("/api/v1/catalog/NET-VPN-ADMIN/requests", headers=desk.auth("rita"),
                        json={"data": ORDERS["NET-VPN"]}), 404)

    for change, field in (({"category_code": "99"}, "category_code"), ({"form": "missing.json"}, "form"),
                          ({"status": "archived"}, "status"), ({"target_hours": 0}, "target_hours")):
        body = assert_error(c.patch("/api/v1/catalog/items/NET-VPN-ADMIN", headers=olga, json=change), 422)
        assert set(body["details"]["fields"]) == {field}, body
    assert_error(c.patch("/api/v1/catalog/items/NO-SUCH-ITEM", headers=olga, json={"cost": 1}), 404)

    response = c.patch("/api/v1/catalog/items/NET-VPN-ADMIN", headers=olga,
                       json={"status": "published", "name": "Admin VPN"})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["status"], response.get_json()["name"]) == ("published", "Admin VPN")
    item = c.get("/api/v1/catalog/items/NET-VPN-ADMIN", headers=desk.auth("rita")).get_json()
    assert item["name"] == "Admin VPN" and item["form_schema"] == form_file("catalog-net-vpn.json")
    assert item_codes(catalog(desk, category="03.02")) == {"NET-VPN", "NET-VPN-ADMIN"}

    # and it is requestable with its rule: always the budget owner
    response = c.post("/api/v1/catalog/NET-VPN-ADMIN/requests", headers=desk.auth("rita"),
                      json={"data": {**ORDERS["NET-VPN"], "profile": "admin"}})
    assert response.status_code == 201, response.get_json()
    record = response.get_json()
    assert (record["title"], record["category"], record["assignment_group"], record["status"]) == (
        "Admin VPN for rita", "NET-VPN-ADMIN", "NetworkTeam", "submitted")
    assert record["details"]["approval"] == "budget_owner"
    assert [t["bpmn_id"] for t in record["open_tasks"]] == ["approve_budget"]


def test_retired_item_is_hidden_but_its_running_request_finishes(desk: Desk):
    record = order(desk, "NET-VPN")
    number = record["number"]
    response = desk.client.patch("/api/v1/catalog/items/NET-VPN", headers=desk.auth("olga"), json={"status": "retired"})
    assert response.status_code == 200 and response.get_json()["status"] == "retired"

    assert "NET-VPN" not in item_codes(catalog(desk))
    assert catalog(desk, q="vpn") == []
    assert_error(desk.client.get("/api/v1/catalog/items/NET-VPN", headers=desk.auth("rita")), 404)
    assert_error(desk.client.post("/api/v1/catalog/NET-VPN/requests", headers=desk.auth("rita"),
                                  json={"data": ORDERS["NET-VPN"]}), 404)
    assert_error(desk.client.post("/api/v1/catalog/NET-VPN/requests", headers=desk.auth("alex"),
                                  json={"data": {**ORDERS["NET-VPN"], "for_user": "alex"}}), 404)
    # staff still see it, marked retired
    assert "NET-VPN" in item_codes(catalog(desk, "olga"))
    assert desk.client.get("/api/v1/catalog/items/NET-VPN", headers=desk.auth("olga")).get_json()["status"] == "retired"

    # the request that was already running goes all the way
    desk.complete(number, "approve_manager", "mona", {"approved": True})
    fulfil(desk, number, "nina", "VPN profile employee assigned to rita.")
    confirm(desk, number, rating=5)
    done = desk.record(number, "rita")
    assert done["status"] == "closed" and done["category"] == "NET-VPN" and done["closed_at"] is not None
    assert desk.instance(record["instance_id"])["status"] == "completed"


def test_request_data_the_item_form_refuses_is_422_naming_the_field(desk: Desk):
    c = desk.client
    rita = desk.auth("rita")
    for code, change, fields in (
        ("HW-LAPTOP", {"justification": "short", "old_asset_tag": "123456", "keyboard_layout": "XX"},
         {"justification", "old_asset_tag", "keyboard_layout"}),
        ("HW-LAPTOP-PERF", {"workload": "gaming", "cost_centre": "2040"}, {"workload", "cost_centre"}),
        ("SW-LICENCE", {"quantity": 0}, {"quantity"}),
        ("NET-VPN", {"valid_until": "next year"}, {"valid_until"}),
        ("MSG-SHARED-MAILBOX", {"mailbox_address": "helpdesk"}, {"mailbox_address"}),
        ("FAC-DESK-MOVE", {"equipment": ["piano"]}, {"equipment"}),
    ):
        body = assert_error(c.post(f"/api/v1/catalog/{code}/requests", headers=rita,
                                   json={"data": {**ORDERS[code], **change}}), 422, "validation_failed")
        assert set(body["details"]["fields"]) == fields, (code, body)
    body = assert_error(c.post("/api/v1/catalog/HW-MONITOR/requests", headers=rita, json={"data": {}}), 422)
    assert set(body["details"]["fields"]) == {"quantity", "justification", "delivery_location"}
    assert_error(c.post("/api/v1/catalog/NO-SUCH-ITEM/requests", headers=rita, json={"data": {}}), 404)
    assert_error(c.post("/api/v1/catalog/NET-VPN/requests", headers=desk.auth("aude"),
                        json={"data": ORDERS["NET-VPN"]}), 403)  # auditors start nothing
    # nothing was started, no record was opened
    assert c.get("/api/v1/instances?process_id=catalog_request", headers=desk.auth("aude")).get_json()["total"] == 0
    assert c.get("/api/v1/tickets?kind=request", headers=desk.auth("aude")).get_json()["total"] == 0


# -- the approval routes -------------------------------------------------------------------------------


def test_item_without_approval_goes_straight_to_fulfilment(desk: Desk):
    record = order(desk, "MSG-SHARED-MAILBOX")
    number, instance_id = record["number"], record["instance_id"]
    assert number == "REQ-000001"
    assert (record["title"], record["description"]) == ("Shared mailbox for rita", ORDERS["MSG-SHARED-MAILBOX"]["justification"])
    assert (record["kind"], record["requester"], record["priority"], record["category"]) == (
        "request", "rita", "P4", "MSG-SHARED-MAILBOX")
    assert (record["status"], record["assignment_group"], record["assignee"]) == ("fulfilment", "MessagingTeam", None)
    assert (record["details"]["approval"], record["details"]["cost"], record["details"]["item"]) == (
        "none", 0, "MSG-SHARED-MAILBOX")
    assert [t["bpmn_id"] for t in record["open_tasks"]] == ["fulfil_request"]

    # the item's fulfilment group works it (candidateGroupVar), nobody else
    fulfil_task = desk.task_id(number, "fulfil_request", "ivan")
    not_visible(desk, fulfil_task, "nina", "alex", "rita", "mona")
    assert_error(desk.client.post(f"/api/v1/tasks/{fulfil_task}/complete", headers=desk.auth("nina"),
                                  json={"data": {"fulfilment_notes": "Done by the wrong team."}}), 404)
    body = desk.complete(number, "fulfil_request", "ivan", {"fulfilment_notes": "ok"}, status=422)
    assert set(body["details"]["fields"]) == {"fulfilment_notes"}
    fulfil(desk, number, "ivan", "Mailbox helpdesk-fr@example.com created, members added.")
    record = desk.record(number, "rita")
    assert (record["status"], record["assignee"]) == ("awaiting_confirmation", "ivan")
    assert record["resolved_at"] is not None and record["closed_at"] is None
    assert record["details"]["fulfilment_notes"] == "Mailbox helpdesk-fr@example.com created, members added."

    # only the requester confirms, with a rating from 1 to 5
    confirm_task = desk.task_id(number, "confirm_receipt", "rita")
    not_visible(desk, confirm_task, "ivan", "mona", "alex")
    for bad, field in (({"received": "yes", "rating": 6}, "rating"), ({"received": "yes", "rating": 0}, "rating"),
                       ({"received": "yes"}, "rating"), ({"received": "maybe", "rating": 3}, "received")):
        body = desk.complete(number, "confirm_receipt", "rita", bad, status=422)
        assert set(body["details"]["fields"]) == {field}, body
    confirm(desk, number, rating=4, comment="Quick, but the display name had a typo.")
    record = desk.record(number, "rita")
    assert record["status"] == "closed" and record["closed_at"] is not None and record["open_tasks"] == []
    assert record["details"]["rating"] == 4
    assert record["details"]["rating_comment"] == "Quick, but the display name had a typo."
    assert desk.instance(instance_id)["status"] == "completed"
    assert statuses(desk, instance_id) == ["fulfilment", "awaiting_confirmation", "closed"]
    completed = [(e["task"]["bpmn_id"], e["actor"]) for e in desk.history(instance_id) if e["type"] == "task_completed"]
    assert completed == [("fulfil_request", "ivan"), ("confirm_receipt", "rita")]


def test_line_manager_approves_then_fulfilment_and_confirmation(desk: Desk):
    record = order(desk, "HW-LAPTOP")
    number, instance_id = record["number"], record["instance_id"]
    assert (record["title"], record["category"], record["assignment_group"], record["priority"]) == (
        "Standard laptop for rita", "HW-LAPTOP", "DesktopSupport", "P4")
    assert record["status"] == "submitted" and record["first_response_at"] is None
    assert (record["details"]["approval"], record["details"]["cost"]) == ("line_manager", 950)
    assert [t["bpmn_id"] for t in record["open_tasks"]] == ["approve_manager"]

    # rita's line manager is mona: the task is in mona's inbox and nobody else's
    approve = desk.task_id(number, "approve_manager", "mona")
    only_in_inbox_of(desk, approve, "mona")
    # her message names the request with its title (it was sent before the record had one)
    [asked] = [n for n in desk.notifications("mona") if n["subject"].startswith("Approval needed")]
    assert asked["subject"].endswith(f"({number}: Standard laptop for rita)"), asked["subject"]
    not_visible(desk, approve, "rita", "bob", "cora", "alex")
    assert_error(desk.client.post(f"/api/v1/tasks/{approve}/complete", headers=desk.auth("rita"),
                                  json={"data": {"approved": True}}), 404)
    detail = desk.client.get(f"/api/v1/tasks/{approve}", headers=desk.auth("mona")).get_json()
    assert "Standard laptop" in detail["instructions"] and "950" in detail["instructions"]
    assert "battery swells" in detail["instructions"]
    body = desk.complete(number, "approve_manager", "mona", {"approval_comment": "?"}, status=422)
    assert set(body["details"]["fields"]) == {"approved"}

    desk.complete(number, "approve_manager", "mona", {"approved": True, "approval_comment": "Go ahead."})
    record = desk.record(number, "rita")
    assert record["status"] == "fulfilment" and record["first_response_at"] is not None
    assert (record["details"]["approved_by"], record["details"]["approval_comment"]) == ("mona", "Go ahead.")
    not_visible(desk, desk.task_id(number, "fulfil_request"), "ivan", "alex", "mona")

    fulfil(desk, number, "nina", "Laptop AT-200101 handed over; AT-123456 collected.")
    record = desk.record(number, "rita")
    assert (record["status"], record["assignee"]) == ("awaiting_confirmation", "nina")
    assert record["resolved_at"] is not None
    confirm(desk, number, rating=5, comment="Perfect.")
    record = desk.record(number, "rita")
    assert record["status"] == "closed" and record["closed_at"] is not None
    assert record["details"]["rating"] == 5 and record["details"]["approval"] == "line_manager"
    assert statuses(desk, instance_id) == ["submitted", "fulfilment", "awaiting_confirmation", "closed"]


def test_line_manager_rejects(desk: Desk):
    record = order(desk, "NET-VPN")
    number, instance_id = record["number"], record["instance_id"]
    desk.complete(number, "approve_manager", "mona",
                  {"approved": False, "approval_comment": "Home working is not agreed for your role."})
    record = desk.record(number, "rita")
    assert record["status"] == "rejected" and record["closed_at"] is not None and record["resolved_at"] is None
    assert record["details"]["approval_comment"] == "Home working is not agreed for your role."
    # mona decided against it: she is on record as its rejecter, not as its approver
    assert record["details"]["rejected_by"] == "mona" and "approved_by" not in record["details"]
    assert record["open_tasks"] == []
    assert record["details"]["closed_reason"] == "rejected by mona: Home working is not agreed for your role."
    told = [n for n in desk.notifications("rita") if n["record"] == number]
    assert [n["subject"] for n in told if "rejected" in n["subject"]] == [f"{number} rejected: {record['title']}"]
    rejection = next(n for n in told if "rejected" in n["subject"])
    assert "Reason: rejected by mona: Home working is not agreed for your role." in rejection["body"]
    assert desk.instance(instance_id)["status"] == "completed"
    assert statuses(desk, instance_id) == ["submitted", "rejected"]


def test_budget_owner_approves_an_expensive_item(desk: Desk):
    record = order(desk, "HW-LAPTOP-PERF")
    number, instance_id = record["number"], record["instance_id"]
    assert (record["status"], record["details"]["approval"], record["details"]["cost"]) == ("submitted", "budget_owner", 2100)
    approve = desk.task_id(number, "approve_budget", "bob")
    only_in_inbox_of(desk, approve, "bob")
    not_visible(desk, approve, "mona", "rita", "nina")
    desk.complete(number, "approve_budget", "bob", {"approved": True, "approval_comment": "Charged to CC-2040."})
    record = desk.record(number, "rita")
    assert record["status"] == "fulfilment" and record["details"]["approved_by"] == "bob"
    fulfil(desk, number, "nina")
    confirm(desk, number, rating=3)
    record = desk.record(number, "rita")
    assert record["status"] == "closed" and record["details"]["rating"] == 3
    assert statuses(desk, instance_id) == ["submitted", "fulfilment", "awaiting_confirmation", "closed"]


def test_a_costly_order_of_a_manager_item_goes_to_the_budget_owner_who_rejects(desk: Desk):
    # 8 licences x 180 EUR = 1440 EUR: over 1000, so not the line manager
    record = order(desk, "SW-LICENCE")
    number = record["number"]
    assert (record["details"]["approval"], record["details"]["cost"], record["details"]["quantity"]) == (
        "budget_owner", 1440, 8)
    assert [t["bpmn_id"] for t in record["open_tasks"]] == ["approve_budget"]
    not_visible(desk, desk.task_id(number, "approve_budget"), "mona")
    desk.complete(number, "approve_budget", "bob", {"approved": False, "approval_comment": "Two licences are enough."})
    record = desk.record(number, "rita")
    assert record["status"] == "rejected" and record["closed_at"] is not None
    assert (record["details"]["approval_comment"], record["details"]["rejected_by"]) == ("Two licences are enough.", "bob")
    assert "approved_by" not in record["details"]
    refused = desk.client.post(f"/api/v1/tasks/{desk.task_id(order(desk, 'SW-LICENCE')['number'], 'approve_budget')}/complete",
                               headers=desk.auth("bob"), json={"data": {"approved": False, "approval_comment": "  "}})
    assert refused.status_code == 422
    assert refused.get_json()["details"]["fields"] == {"approval_comment": ["is required when “Decision” is Reject"]}


def test_requester_without_a_line_manager_goes_to_the_budget_owners(desk: Desk):
    record = order(desk, "ACC-APP", who="alex")  # alex has no line manager
    number = record["number"]
    assert (record["title"], record["requester"], record["details"]["approval"]) == (
        "Application access for alex", "alex", "budget_owner")
    desk.complete(number, "approve_budget", "bob", {"approved": True})
    not_visible(desk, desk.task_id(number, "fulfil_request"), "nina", "alex")
    fulfil(desk, number, "ivan", "Read role granted in the data warehouse.")
    not_visible(desk, desk.task_id(number, "confirm_receipt"), "rita", "ivan")
    confirm(desk, number, rating=5, who="alex")
    assert desk.record(number, "alex")["status"] == "closed"


def test_requester_may_not_approve_their_own_request(desk: Desk, services):
    # a budget owner who orders something expensive: the approval is her lane's, but not hers
    services.users.create_user("bea", "password-1234", roles=["approver", "requester"], groups=["BudgetOwners"])
    services.session.commit()
    record = order(desk, "HW-LAPTOP-PERF", who="bea")
    number, instance_id = record["number"], record["instance_id"]
    approve = desk.task_id(number, "approve_budget", "bob")
    assert approve not in inbox(desk, "bea")  # not offered to her (nor announced to her)
    assert not [n for n in desk.notifications("bea") if n["subject"].startswith("Approval needed")]
    assert [n for n in desk.notifications("bob") if n["subject"].startswith("Approval needed")]
    # Reminders and SLA escalations reach the task's queue the same way: without her.
    from app.models import HumanTask
    queue = {p.username for p in services.notifications.task_queue(services.session.get(HumanTask, approve))}
    services.session.rollback()
    assert "bob" in queue and "bea" not in queue
    body = desk.complete(number, "approve_budget", "bea", {"approved": True}, status=403)
    assert body["error"] == "separation_of_duties" and body["message"] == "you may not approve your own request"
    assert desk.record(number)["status"] == "submitted"
    refused = [e for e in desk.history(instance_id) if e["type"] == "access_denied"]
    assert [(e["actor"], e["task_id"]) for e in refused] == [("bea", approve)]
    desk.complete(number, "approve_budget", "bob", {"approved": True})
    record = desk.record(number)
    assert record["status"] == "fulfilment" and record["details"]["approved_by"] == "bob"


def test_not_received_goes_back_to_fulfilment(desk: Desk):
    record = order(desk, "FAC-DESK-MOVE")
    number, instance_id = record["number"], record["instance_id"]
    assert (record["status"], record["assignment_group"], record["details"]["approval"]) == ("fulfilment", "Facilities", "none")
    first = desk.task_id(number, "fulfil_request", "ivan")
    fulfil(desk, number, "ivan", "Desk moved to Annex 0.04.")
    assert desk.record(number)["resolved_at"] is not None
    confirm(desk, number, received="no", rating=2, comment="The desk phone is still on floor 2.")
    record = desk.record(number, "rita")
    assert record["status"] == "fulfilment" and record["resolved_at"] is None and record["closed_at"] is None
    assert record["details"]["rating_comment"] == "The desk phone is still on floor 2."
    second = desk.task_id(number, "fulfil_request", "ivan")
    assert second != first
    not_visible(desk, second, "nina", "rita")
    detail = desk.client.get(f"/api/v1/tasks/{second}", headers=desk.auth("ivan")).get_json()
    assert "not received" in detail["instructions"]

    fulfil(desk, number, "ivan", "Desk phone moved and connected.")
    assert desk.record(number)["resolved_at"] is not None
    # the second confirmation starts blank: not pre-filled with the last round's "no" and its rating
    again = desk.client.get(f"/api/v1/tasks/{desk.task_id(number, 'confirm_receipt')}", headers=desk.auth("rita")).get_json()
    assert again["data"].get("received") is None and again["data"].get("rating") is None
    # this round's answer gives no comment (a form leaves an empty field out): the last round's is gone
    desk.complete(number, "confirm_receipt", "rita", {"received": "yes", "rating": 4})
    record = desk.record(number, "rita")
    assert record["status"] == "closed" and record["closed_at"] is not None
    assert (record["details"]["rating"], record["details"]["fulfilment_notes"]) == (4, "Desk phone moved and connected.")
    assert not record["details"].get("rating_comment")
    assert statuses(desk, instance_id) == ["fulfilment", "awaiting_confirmation", "fulfilment",
                                           "awaiting_confirmation", "closed"]


def test_starting_through_the_instances_api(desk: Desk):
    instance = desk.start("rita", "catalog_request", {"item": "NET-VPN", **ORDERS["NET-VPN"]})
    number = instance["data"]["record_number"]
    assert number.startswith("REQ-") and instance["status"] == "running"
    record = desk.record(number, "rita")
    assert (record["title"], record["category"], record["assignment_group"], record["status"]) == (
        "VPN access for rita", "NET-VPN", "NetworkTeam", "submitted")
    assert record["instance_id"] == instance["id"] and record["requester"] == "rita"
    only_in_inbox_of(desk, desk.task_id(number, "approve_manager"), "mona")
    desk.complete(number, "approve_manager", "mona", {"approved": True})
    fulfil(desk, number, "nina")
    confirm(desk, number)
    assert desk.record(number)["status"] == "closed"


# -- platform bugs ------------------------------------------------------------------------------------


def test_starting_through_the_instances_api_applies_the_item_form(desk: Desk):
    # HW-MONITOR's form allows 1 or 2 monitors and requires a justification and a desk
    response = desk.client.post("/api/v1/instances", headers=desk.auth("rita"),
                                json={"process_id": "catalog_request", "data": {"item": "HW-MONITOR", "quantity": 9}})
    body = assert_error(response, 422, "validation_failed")
    assert {"quantity", "justification"} <= set(body["details"]["fields"])


def test_a_retired_item_cannot_be_ordered_through_the_instances_api(desk: Desk):
    response = desk.client.patch("/api/v1/catalog/items/NET-VPN", headers=desk.auth("olga"), json={"status": "retired"})
    assert response.status_code == 200
    response = desk.client.post("/api/v1/instances", headers=desk.auth("rita"),
                                json={"process_id": "catalog_request", "data": {"item": "NET-VPN", **ORDERS["NET-VPN"]}})
    refused = response.status_code in (404, 422)
    failed = response.status_code == 201 and response.get_json()["status"] == "error"
    assert refused or failed, (response.status_code, response.get_json()["open_tasks"])


def test_category_search_takes_the_code_literally(desk: Desk):
    assert catalog(desk, category="__") == []
