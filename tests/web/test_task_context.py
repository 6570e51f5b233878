"""A task page says what the task is about: the request's details, read-only, beside its form.

The approver of a catalog request sees what was ordered (item, quantity, cost), by whom and the
requester's answers to the item's form; the fulfiller too, with the approval; a change approver
sees the change as it was raised. Fields the task's own form shows are not repeated, values the
start form hides are not shown, and the API's task detail carries the same ``context``.
"""

from __future__ import annotations

import html
import re

from tests.web.conftest import INCIDENT, text_of

LAPTOP = {"justification": "My laptop of 2019 no longer holds a charge", "replacement": "true",
          "old_asset_tag": "AT-004211", "keyboard_layout": "UK", "needed_by": "2026-02-02",
          "delivery_location": "Building B, floor 2"}
CHANGE = {"title": "Upgrade the mail gateway", "description": "Move the gateway to version 9.2.",
          "change_type": "normal", "reason": "Version 8 is out of support in April.",
          "planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z",
          "implementation_plan": "Drain, upgrade,\nre-enable.", "rollback_plan": "Restore the VM snapshot.",
          "test_plan": "Send and receive test mail.", "ci": "mailgw01", "emergency_approval_window": "PT2H"}


def context_markup(page: str) -> dict[str, str]:
    """The task page's request details, label -> the value's markup."""
    match = re.search(r'<dl class="facts" id="task-context">(.*?)</dl>', page, re.S)
    assert match, "the task page shows no request details"
    return {html.unescape(label): value for label, value in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", match.group(1), re.S)}


def context_of(page: str) -> dict[str, str]:
    """The task page's request details, label -> text (a value's markup, such as the stored
    value kept in a <data> or <time> element, left out)."""
    return {label: html.unescape(re.sub(r"<[^>]+>", "", value)) for label, value in context_markup(page).items()}


def shows_instant(markup: str, stored: str) -> bool:
    """A date or time shown as stored, or in the page's words with the stored value kept."""
    return markup == stored or f'datetime="{stored}"' in markup


def order_laptop(web_factory, services) -> str:
    rita = web_factory()
    rita.login("rita")
    assert rita.post("/catalog/HW-LAPTOP", LAPTOP).status_code == 302
    rows, _total = services.records.list_tickets(services.users.get_by_username("rita"), {"requester": "rita"},
                                                 "-opened_at", 1, 1)
    return str(rows[0].number)


def test_the_approver_sees_what_was_ordered_by_whom_and_the_requesters_answers(web_factory, desk, services):
    number = order_laptop(web_factory, services)
    task_id = desk.task_id(number, "approve_manager", "mona")
    mona = web_factory()
    mona.login("mona")
    page = text_of(mona.get(f"/tasks/{task_id}"))
    shown = context_of(page)
    # who asked, what was ordered (the record's details, worded as the record page words them),
    # then every answer to the item's request form, labelled by the form
    assert list(shown) == ["Requester", "Approval", "Cost", "Catalog item", "Quantity", "Business justification",
                           "This replaces an existing laptop", "Asset tag of the laptop it replaces",
                           "Keyboard layout", "Needed by", "Delivery location"]
    assert shown["Requester"] == "rita" and shown["Catalog item"] == "Standard laptop" and shown["Quantity"] == "1"
    assert "950" in shown["Cost"]
    assert shown["Business justification"] == "My laptop of 2019 no longer holds a charge"
    assert shown["This replaces an existing laptop"] == "Yes"
    assert shown["Asset tag of the laptop it replaces"] == "AT-004211"
    assert shown["Keyboard layout"] == "United Kingdom"  # the form's title of the answer, not its code
    assert shows_instant(context_markup(page)["Needed by"], "2026-02-02")
    assert shown["Delivery location"] == "Building B, floor 2"
    # read-only, before the form; the form's own fields (decision, comment) are not repeated
    assert page.index('id="task-context"') < page.index('<section class="task-form"')
    assert "<input" not in page[page.index('id="task-context"'):page.index("</dl>", page.index('id="task-context"'))]
    assert '<dt>Approval comment</dt>' not in page and re.search(r'<dd id="task-assignee">you</dd>', page)


def test_the_fulfiller_sees_the_order_and_its_approval_in_chinese(web_factory, desk, services):
    number = order_laptop(web_factory, services)
    approval = desk.task_id(number, "approve_manager")
    desk.complete(number, "approve_manager", "mona", {"approved": True, "approval_comment": "Agreed."})
    mona = web_factory()
    mona.login("mona")
    looked_back = context_of(text_of(mona.get(f"/tasks/{approval}")))  # done, and still says what it approved
    assert looked_back["Keyboard layout"] == "United Kingdom" and "Approval comment" not in looked_back
    task_id = desk.task_id(number, "fulfil_request", "nina")
    nina = web_factory()
    nina.login("nina")
    nina.post("/language", {"lang": "zh_CN"})
    page = text_of(nina.get(f"/tasks/{task_id}"))
    assert "请求详情" in page
    shown = context_of(page)
    assert shown["请求人"] == "rita" and shown["数量"] == "1" and "950" in shown["费用"]
    assert shown["批准人"] == "mona" and shown["审批意见"] == "Agreed."  # approved_by: "Approved by"
    assert shown["用于替换现有笔记本电脑"] == "是"  # the form's titles and a plain Yes / No in the page's language
    assert shown["键盘布局"] == "英国" and shown["交付地点"] == "Building B, floor 2"
    assert "Fulfilment notes" not in shown and "履行说明" not in shown  # the fulfil form asks for them


def test_a_change_approver_sees_the_change_but_not_what_the_form_shows_or_the_start_form_hides(web_factory, desk):
    number = desk.start("alex", "change_enablement", CHANGE)["data"]["record_number"]
    desk.complete(number, "assess", "cora", {"impact": "low", "affected_users": 20, "rollback_difficulty": "easy",
                                             "has_tested": True, "implementer": "ivan", "assessment_notes": "Routine."})
    task_id = desk.task_id(number, "manager_approve", "cora")
    cora = web_factory()
    cora.login("cora")
    page = text_of(cora.get(f"/tasks/{task_id}"))
    shown = context_of(page)
    assert shown["Requester"] == "alex" and shown["Title"] == "Upgrade the mail gateway"
    assert shown["Change type"] == "Normal - assessed and approved by a change manager or the CAB"
    assert shown["Implementation plan"] == "Drain, upgrade,\nre-enable." and shown["Configuration item"] == "mailgw01"
    assert shows_instant(context_markup(page)["Planned start"], "2026-03-10T20:00:00Z")
    # risk and implementer are read-only fields of the approval form itself; the hidden window is not shown
    assert not {"Risk", "Implementer"} & set(shown)
    assert "PT2H" not in "".join(shown.values())


def test_a_done_task_keeps_its_details_for_who_did_it_but_not_for_a_lane_member_outside_the_instance(
        web_factory, desk, services):
    services.users.create_user("sid", "password-1234", roles=["requester"], groups=["ServiceDesk"])
    services.session.commit()
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(number, "triage")
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    alex = web_factory()
    alex.login("alex")
    shown = context_of(text_of(alex.get(f"/tasks/{triage}")))
    assert shown["Requester"] == "rita" and shown["Title"] == INCIDENT["title"]
    # sid, a requester in the lane's group, is none of its staff (policy.QUEUE_ROLES): the triage is
    # not his to read at all, nor the record or the instance
    sid = web_factory()
    sid.login("sid")
    response = sid.get(f"/tasks/{triage}")
    assert response.status_code == 404 and INCIDENT["description"] not in text_of(response)
    assert desk.client.get(f"/api/v1/tasks/{triage}", headers=desk.auth("sid")).status_code == 404


def test_the_api_task_detail_carries_the_same_context(web_factory, desk, services):
    number = order_laptop(web_factory, services)
    task_id = desk.task_id(number, "approve_manager", "mona")
    body = desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth("mona")).get_json()
    by_name = {entry["name"]: entry for entry in body["context"]}
    assert by_name["requester"] == {"name": "requester", "label": "Requester", "value": "rita", "display": None,
                                    "source": "instance"}
    assert by_name["quantity"]["value"] == 1 and by_name["cost"]["source"] == "record"
    assert by_name["keyboard_layout"] == {"name": "keyboard_layout", "label": "Keyboard layout", "value": "UK",
                                          "display": "United Kingdom", "source": "request"}
    assert by_name["replacement"]["value"] is True and "approved" not in by_name
    # who may not see the task gets nothing of it
    assert desk.client.get(f"/api/v1/tasks/{task_id}", headers=desk.auth("nina")).status_code == 404
