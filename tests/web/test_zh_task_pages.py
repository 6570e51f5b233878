"""A task page's request details in the page's language, with labels for codes.

The answers given at the start are labelled by their form's titles and worded by its choice
titles, both translated as the process's (or, for a catalog request, the catalog's) content is;
the record's details are worded as the record page words them (money, the form's option titles,
a catalog item's name), not as the codes they are stored as.
"""

from __future__ import annotations

from tests.web.conftest import INCIDENT, claimed_by_alex_seen_by_sam, text_of
from tests.web.test_task_context import context_markup, context_of, order_laptop


def test_chinese_request_details_use_the_translated_form_titles_and_choice_titles(web_factory, desk, services):
    number = order_laptop(web_factory, services)
    task_id = desk.task_id(number, "approve_manager", "mona")
    mona = web_factory()
    mona.login("mona")
    mona.post("/language", {"lang": "zh_CN"})
    shown = context_of(text_of(mona.get(f"/tasks/{task_id}")))
    # the item's request form, as the catalog's translation words it
    assert shown["键盘布局"] == "英国"
    assert shown["业务理由"] == "My laptop of 2019 no longer holds a charge"  # what rita typed stays hers
    assert shown["用于替换现有笔记本电脑"] == "是"
    assert not {"Keyboard layout", "Business justification", "United Kingdom"} & (set(shown) | set(shown.values()))
    # the record's details: the item by its (translated) name, the approval by its label
    assert shown["目录项"] == "标准笔记本电脑" and shown["审批"] == "直属经理"


def test_chinese_incident_details_show_the_start_forms_translated_titles(web_factory, desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage", "alex")
    alex = web_factory()
    alex.login("alex")
    alex.post("/language", {"lang": "zh_CN"})
    shown = context_of(text_of(alex.get(f"/tasks/{task_id}")))
    assert shown["标题"] == "VPN down" and shown["配置项"] == "vpn-gw-01"
    assert shown["影响范围"] == "中 - 影响一个团队或重要服务" and shown["紧急程度"] == "中 - 工作受到拖延"


def test_record_details_on_a_task_page_show_labels_not_codes(web_factory, desk, services):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Added capacity",
                                                  "cause_category": "capacity"})
    confirm_id = desk.task_id(number, "confirm_resolution", "rita")
    rita = web_factory()
    rita.login("rita")
    page = text_of(rita.get(f"/tasks/{confirm_id}"))
    assert context_of(page)["Cause"] == "Capacity or performance"
    assert 'value="capacity"' in context_markup(page)["Cause"]  # the stored code kept in the markup

    laptop = order_laptop(web_factory, services)
    mona = web_factory()
    mona.login("mona")
    shown = context_of(text_of(mona.get(f"/tasks/{desk.task_id(laptop, 'approve_manager', 'mona')}")))
    assert shown["Cost"] == "€950.00" and shown["Catalog item"] == "Standard laptop"


def test_a_refusal_flashed_on_a_chinese_page_gives_its_reason_in_chinese(web_factory, desk, services):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage")
    sam = claimed_by_alex_seen_by_sam(web_factory, services, task_id, "zh_CN")
    page = text_of(sam.get(f"/tasks/{task_id}"))
    assert "无法认领该任务：该任务已被他人认领" in page
    assert "您可以查看此任务，但不能处理它：该任务已被他人认领" in page
    assert "claimed by someone else" not in page

    aude = web_factory()
    aude.login("aude")
    aude.post("/language", {"lang": "zh_CN"})
    aude.post(f"/tickets/{number}/comments", {"body": "Looks fine"})
    page = text_of(aude.get(f"/tickets/{number}"))
    assert "无法添加评论：审计员只能查看记录，不能修改记录" in page and "auditors read records" not in page


def test_an_english_page_keeps_the_reason_and_an_unknown_one_is_said_by_its_kind_in_chinese(app):
    from app.errors import Conflict, PermissionDenied
    from app.web.views import reason_text

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert reason_text(PermissionDenied("the moon is full")) == "the moon is full"
        assert reason_text(Conflict("task is completed")) == "the task is already done"
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert reason_text(PermissionDenied("the moon is full")) == "您无权执行此操作。"
        assert reason_text(Conflict("the task is not claimed")) == "该任务尚未被认领"


def record_cell(page: str, task_id: int) -> str:
    row = page[page.index(f'href="/tasks/{task_id}"'):]
    cell = row[:row.index("</tr>")]
    cell = cell[cell.index('class="record"'):]
    return cell[:cell.index("</td>")]


def test_the_inbox_links_the_record_number_for_those_who_may_see_the_record(web_factory, desk, services):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage")
    alex = web_factory()
    alex.login("alex")
    cell = record_cell(text_of(alex.get("/tasks?tab=queue")), task_id)
    assert f'<a href="/tickets/{number}" class="record-link"><span class="number">{number}</span></a>' in cell
    # a member of the triage group without a staff role may not open the record, nor (since the
    # security review: a group's queue is its staff's, policy.QUEUE_ROLES) find the task in his queue
    services.users.create_user("pat", "password-1234", roles=["requester"], groups=["ServiceDesk"])
    services.session.commit()
    pat = web_factory()
    pat.login("pat")
    assert pat.get(f"/tickets/{number}").status_code == 404
    queue = text_of(pat.get("/tasks?tab=queue"))
    assert f'href="/tasks/{task_id}"' not in queue and number not in queue


def claim_form(task_id: int) -> str:
    return f'action="/tasks/{task_id}/claim"'


def test_claim_is_offered_only_where_claiming_is_allowed_and_means_something(web_factory, desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(number, "triage")
    alex, ada = web_factory(), web_factory()
    alex.login("alex")
    ada.login("ada")
    # a group's queue: its member claims it
    assert claim_form(triage) in text_of(alex.get("/tasks?tab=queue"))
    assert claim_form(triage) in text_of(alex.get(f"/tasks/{triage}"))
    # an admin outside the queue reads it, but claiming is refused them: no button
    assert claim_form(triage) not in text_of(ada.get(f"/tasks/{triage}"))
    assert claim_form(triage) not in text_of(ada.get("/tasks?tab=queue"))
    ada.post(f"/tasks/{triage}/claim")
    assert "The task could not be claimed" in text_of(ada.get(f"/tasks/{triage}"))

    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Fixed"})
    confirm = desk.task_id(number, "confirm_resolution", "rita")
    rita = web_factory()
    rita.login("rita")
    # the requester's own confirmation is assigned to her alone: nothing to claim, the form is there
    for url in ("/tasks", "/tasks?tab=queue", f"/tasks/{confirm}"):
        assert claim_form(confirm) not in text_of(rita.get(url)), url
    assert 'name="confirmed"' in text_of(rita.get(f"/tasks/{confirm}"))
