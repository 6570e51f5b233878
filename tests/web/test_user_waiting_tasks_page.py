"""A deactivated user's page lists the tasks still assigned to them by name, and an admin hands
each to someone else from there; auditors see the list without the forms."""

from __future__ import annotations

from tests.http.desk import LAPTOP
from tests.web.conftest import refused_to, text_of


def order_laptop(desk) -> tuple[str, int]:
    response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert response.status_code == 201, response.get_json()
    number = response.get_json()["number"]
    return number, desk.task_id(number, "approve_manager")


def mona_form() -> dict[str, object]:
    """The edit form of mona's page as shown, "active" unticked."""
    return {"display_name": "mona", "email": "", "roles": ["approver", "requester"], "groups": ["LineManagers"],
            "manager": ""}


def test_the_page_of_a_leaver_lists_the_tasks_waiting_on_them_and_reassigns_them(web, web_factory, desk, services):
    number, approval = order_laptop(desk)
    services.users.create_user("lena", "password-1234", roles=["approver"], groups=["LineManagers"])
    services.session.commit()
    web.login("ada")
    assert "Tasks waiting on" not in text_of(web.get("/admin/users/mona"))  # active: her own work

    saved = web.post("/admin/users/mona", mona_form())
    assert saved.status_code == 302
    page = text_of(web.get("/admin/users/mona"))
    assert "is deactivated" in page
    assert "Tasks assigned to mona by name wait on them: 1. Reassign them below." in page
    assert "Ready tasks assigned to mona by name: 1." in page
    assert f'href="/tasks/{approval}"' in page and f'href="/tickets/{number}"' in page
    action = f"/admin/users/mona/tasks/{approval}/reassign"
    assert f'action="{action}"' in page

    # refused: sent back to the page (Post/Redirect/Get), which says why beside the task's form, once
    refused = web.post(action, {"assignee": "alex"})
    assert refused.status_code == 303 and refused.headers["Location"] == "/admin/users/mona#waiting-tasks"
    shown = text_of(web.get("/admin/users/mona"))
    assert "LineManagers" in shown and 'aria-invalid="true"' in shown and 'value="alex"' in shown
    assert 'aria-invalid="true"' not in text_of(web.get("/admin/users/mona"))
    assert web.post(action, {"assignee": "ghost"}).status_code == 303
    assert "There is no user ghost." in text_of(web.get("/admin/users/mona"))

    moved = web.post(action, {"assignee": "lena"})
    assert moved.status_code == 302 and moved.headers["Location"] == "/admin/users/mona"
    after = text_of(web.get("/admin/users/mona"))
    assert f"Task {approval} was reassigned to lena." in after and "Tasks waiting on" not in after
    lena = desk.client.get(f"/api/v1/tasks/{approval}", headers=desk.auth("lena")).get_json()
    assert lena["assigned_user"] == "lena"


def test_auditors_see_the_list_without_forms_and_others_may_not_reassign(web, web_factory, desk, services):
    _number, approval = order_laptop(desk)
    services.users.deactivate_user(None, "mona")
    services.session.commit()
    web.login("aude")
    page = text_of(web.get("/admin/users/mona"))
    assert "Ready tasks assigned to mona by name: 1." in page and "/reassign" not in page
    assert web.post(f"/admin/users/mona/tasks/{approval}/reassign", {"assignee": "ada"}).status_code == 403
    agent = web_factory()
    agent.login("alex")
    # the same answer for a name nobody has and for one somebody has (QA: 403 against 404 told them apart)
    assert agent.post(f"/admin/users/mona/tasks/{approval}/reassign", {"assignee": "ghost"}).status_code == 403
    assert agent.post(f"/admin/users/mona/tasks/{approval}/reassign", {"assignee": "alex"}).status_code == 403
    task = desk.client.get(f"/api/v1/tasks/{approval}", headers=desk.auth("aude")).get_json()
    assert task["assigned_user"] == "mona"


def test_the_list_speaks_chinese(web, desk, services):
    order_laptop(desk)
    services.users.deactivate_user(None, "mona")
    services.session.commit()
    web.login("ada")
    page = text_of(web.get("/admin/users/mona", headers={"Accept-Language": "zh-CN"}))
    assert "等待 mona 处理的任务" in page and "重新分配给" in page


def test_a_group_page_in_any_letter_case_is_the_group(web, desk):
    web.login("ada")
    page = text_of(web.get("/admin/groups/servicedesk"))
    assert "ServiceDesk" in page and "alex" in page
    added = web.post("/admin/groups/SERVICEDESK/members", {"username": "nina"})
    assert added.status_code == 302 and added.headers["Location"] == "/admin/groups/ServiceDesk"
    assert "nina is now a member of ServiceDesk." in text_of(web.get("/admin/groups/ServiceDesk"))


def test_a_refused_reassignment_is_said_in_the_pages_language(web, desk, services):
    """The refusals beside the user page's form are the task page's, translated alike."""
    _number, approval = order_laptop(desk)
    services.users.deactivate_user(None, "mona")
    services.session.commit()
    web.login("ada")
    chinese = {"Accept-Language": "zh-CN"}
    action = f"/admin/users/mona/tasks/{approval}/reassign"
    assert web.post(action, {"assignee": "alex"}, headers=chinese).status_code == 303  # to the user's page
    user_page = text_of(web.get("/admin/users/mona", headers=chinese))
    # the task page's form: Post/Redirect/Get, the refusal said on the task page it leads back to
    on_the_task_page = refused_to(web, web.post(f"/tasks/{approval}/reassign", {"username": "alex"}, headers=chinese),
                                  f"/tasks/{approval}#reassign", headers=chinese)
    for text in (user_page, on_the_task_page):
        assert "LineManagers" in text
        assert "not one of the user" not in text and "此任务在 LineManagers 组的队列中，而该用户不属于此组" in text
    assert web.post(action, {"assignee": "ghost"}, headers=chinese).status_code == 303
    assert "不存在用户 ghost。" in text_of(web.get("/admin/users/mona", headers=chinese))
