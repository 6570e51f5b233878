"""An admin reassigns a task from its page: the members of its queue are suggested, the service
refuses anyone else with its reason beside the field, and nobody but an admin is offered the form
or may post it."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from app.models import AuditEvent, HumanTask
from tests.web.conftest import INCIDENT, PASSWORD, refused_to, text_of


def triage_task(desk: Any, services: Any) -> int:
    """The triage task of a new incident, in the ServiceDesk queue (alex, and sam added here)."""
    services.users.create_user("sam", PASSWORD, roles=["agent"], groups=["ServiceDesk"])
    services.session.commit()
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    return desk.task_id(number, "triage")


def claimant(services: Any, task_id: int) -> str | None:
    services.session.expire_all()
    task = services.session.get(HumanTask, task_id)
    return task.claimed_by.username if task.claimed_by is not None else None


def reassignments(services: Any, task_id: int) -> list[tuple[str, Any]]:
    events = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "task_reassigned",
                                                               AuditEvent.task_id == task_id))
    return [(e.actor, e.payload.get("to")) for e in events]


def suggested(page: str) -> list[str]:
    match = re.search(r'<datalist id="reassign-candidates">(.*?)</datalist>', page, re.S)
    assert match, "the page has no list of suggestions"
    return re.findall(r'<option value="([^"]+)">', match.group(1))


def test_an_admin_hands_the_task_to_a_member_of_its_queue(web, desk, services):
    task_id = triage_task(desk, services)
    web.login("ada")
    page = text_of(web.get(f"/tasks/{task_id}"))
    assert 'id="reassign-form"' in page and f'action="/tasks/{task_id}/reassign"' in page
    assert set(suggested(page)) == {"alex", "sam"}  # the ServiceDesk members, not nina nor the requester

    response = web.post(f"/tasks/{task_id}/reassign", {"username": "sam"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/tasks/{task_id}")
    page = text_of(web.get(f"/tasks/{task_id}"))
    assert "is now with sam." in page
    assert re.search(r"<dt>Claimed by</dt>\s*<dd>sam</dd>", page)
    assert "sam" not in suggested(page)  # who holds it already is not suggested again
    assert claimant(services, task_id) == "sam"
    assert reassignments(services, task_id) == [("ada", "sam")]


def test_someone_outside_the_queue_is_refused_beside_the_field(web, desk, services):
    task_id = triage_task(desk, services)
    web.login("ada")
    back = f"/tasks/{task_id}#reassign"
    # Post/Redirect/Get: the refusal leads back to the task page, which says it beside the field once
    page = refused_to(web, web.post(f"/tasks/{task_id}/reassign", {"username": "nina"}), back)
    error = re.search(r'id="reassign-username-error">(.*?)</p>', page, re.S)
    assert error and "the task is not in one of the user&#39;s groups&#39; lanes" in error.group(1)
    assert 'value="nina"' in page and "<details class=\"reassign-task\" open>" in page
    assert page.count('class="field-error"') == 1  # beside the reassign form alone, not the task's form
    again = text_of(web.get(f"/tasks/{task_id}"))
    assert 'id="reassign-username-error"' not in again and 'value="nina"' not in again
    assert claimant(services, task_id) is None and reassignments(services, task_id) == []

    unknown = refused_to(web, web.post(f"/tasks/{task_id}/reassign", {"username": "zed"}), back)
    assert re.search(r'id="reassign-username-error">.*There is no user zed\.', unknown)
    empty = refused_to(web, web.post(f"/tasks/{task_id}/reassign", {"username": " "}), back)
    assert re.search(r'id="reassign-username-error">.*is required', empty)

    web.post("/language", {"lang": "zh_CN"})
    chinese = refused_to(web, web.post(f"/tasks/{task_id}/reassign", {"username": "nina"}), back)
    assert "此任务不在该用户所属组的泳道中" in chinese and "将此任务交给其他人" in chinese
    assert claimant(services, task_id) is None and reassignments(services, task_id) == []


def test_who_reads_a_task_but_may_not_hand_it_on_sees_no_form(web, desk, services):
    task_id = triage_task(desk, services)
    web.login("aude")  # an auditor reads every task and works none
    page = text_of(web.get(f"/tasks/{task_id}"))
    assert "reassign-form" not in page and "Hand this task to someone else" not in page
    assert web.post(f"/tasks/{task_id}/reassign", {"username": "sam"}).status_code == 403
    assert web.post(f"/tasks/{task_id}/reassign", {"username": "nobody-here"}).status_code == 403
    assert claimant(services, task_id) is None and reassignments(services, task_id) == []


def test_an_agent_of_the_tasks_queue_hands_it_to_a_colleague(web, desk, services):
    """QA: only admins could reassign; an agent hands a task of their own group's queue on."""
    task_id = triage_task(desk, services)
    web.login("alex")
    assert "reassign-form" in text_of(web.get(f"/tasks/{task_id}"))
    assert web.post(f"/tasks/{task_id}/reassign", {"username": "sam"}).status_code == 302
    assert claimant(services, task_id) == "sam"


def test_a_post_without_the_csrf_token_is_refused(web, desk, services):
    task_id = triage_task(desk, services)
    web.login("ada")
    assert web.post(f"/tasks/{task_id}/reassign", {"username": "sam"}, csrf=False).status_code == 403
    assert claimant(services, task_id) is None


def test_the_service_reasons_for_refusing_someone_read_in_chinese(app):
    from app.web.views import assign_reason

    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert assign_reason("the task is in the CAB group's queue, and that is not one of the user's groups") == (
            "此任务在 CAB 组的队列中，而该用户不属于此组")
        assert assign_reason("the task is assigned to mona alone") == "此任务仅分配给 mona"
        assert assign_reason("the user is deactivated") == "该用户已停用"
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert assign_reason("the task is assigned to mona alone") == "the task is assigned to mona alone"


def test_a_non_admins_post_is_audited_whatever_the_name(web, desk, services):
    """Review: with a name that is no user the page refused a non-admin without the audit entry
    the service files for every other refusal."""
    task_id = triage_task(desk, services)
    web.login("aude")
    for name in ("nobody-of-that-name", "", "sam"):
        assert web.post(f"/tasks/{task_id}/reassign", {"username": name}).status_code == 403
    services.session.expire_all()
    refused = services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "access_denied", AuditEvent.task_id == task_id)).all()
    assert [(e.actor, e.payload["action"]) for e in refused] == [("aude", "reassign")] * 3


def test_a_leaver_is_not_suggested_for_the_task_waiting_on_them(web, desk, services):
    """Review: the page suggested the deactivated person a task was assigned to, whom the service
    then refused."""
    from tests.http.desk import LAPTOP

    ordered = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    number = ordered.get_json()["number"]
    task_id = desk.task_id(number, "approve_manager")  # assigned to mona, rita's line manager
    web.login("ada")
    assert "mona" in suggested(text_of(web.get(f"/tasks/{task_id}")))
    assert desk.client.post("/api/v1/users/mona/deactivate", headers=desk.auth("ada")).status_code == 200
    assert "mona" not in suggested(text_of(web.get(f"/tasks/{task_id}")))


def test_an_agent_is_told_alike_of_an_unknown_name_and_of_someone_outside_the_group(web, desk, services):
    """Security review: the page said "There is no user zed." to an agent, and "not one of the
    user's groups" for a real user outside the group: an agent could list the directory with it."""
    task_id = triage_task(desk, services)
    web.login("alex")
    errors = []
    for name in ("rita", "zed"):
        page = refused_to(web, web.post(f"/tasks/{task_id}/reassign", {"username": name}), f"/tasks/{task_id}#reassign")
        error = re.search(r'id="reassign-username-error">(.*?)</p>', page, re.S)
        assert error is not None
        errors.append(error.group(1))
    assert errors[0] == errors[1] and "not one of the user&#39;s groups" in errors[0]
    assert claimant(services, task_id) is None and reassignments(services, task_id) == []
