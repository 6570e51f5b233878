"""Out of office on the pages: a manager sets her absence on her account page (the form with the
session's CSRF token, times typed "YYYY-MM-DD hh:mm", UTC unless an offset is given), sees what is
handed to her delegate and what stays with her (and why), and comes back with "I'm back"; refused
input comes back beside each field with what was typed, once, in the page's language. Admins set
and end anyone's on the user's page, auditors read it without the forms, others get 403. The
inbox and the task page say whom a handed task is for; the audit pages name the new events.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py).
"""

from __future__ import annotations

import html
import os
import re
from datetime import timedelta
from typing import Any

import pytest

from tests.http.desk import Desk
from tests.http.test_out_of_office import approval, audited, order_laptop
from tests.web.conftest import INCIDENT, WebClient, text_of

UNTIL = "2026-01-12 09:00"


@pytest.fixture()
def lena(desk: Desk, services: Any) -> str:
    """A second line manager: mona's stand-in."""
    services.users.create_user("lena", "password-1234", roles=["approver"], groups=["LineManagers"])
    services.session.commit()
    return "lena"


def section(page: str) -> str:
    """The out-of-office section of a page, as text with its markup."""
    start = page.index('<section id="away"')
    return page[start:page.index("</section>", start)]


def element(page: str, element_id: str) -> str:
    """The text of the element ``element_id`` (tags dropped, entities read, spaces joined)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', page, flags=re.S)
    assert match, f"no #{element_id}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(2))).split())


def field_error(page: str, name: str) -> str | None:
    """The problem shown beside the field ``name`` (without the "Error:" screen readers hear first)."""
    match = re.search(rf'<p class="field-error" id="{name}-error"><span class="visually-hidden">[^<]*</span>(.*?)</p>',
                      page, flags=re.S)
    return " ".join(html.unescape(match.group(1)).split()) if match else None


def typed(page: str, name: str) -> str:
    match = re.search(rf'<input type="text" id="field-{name}" name="{name}" value="([^"]*)"', page)
    assert match, f"no field {name}"
    return html.unescape(match.group(1))


def refused(web: WebClient, url: str, form: dict[str, Any], page: str, **kwargs: Any) -> str:
    """A form refused: a 303 to the absence form on ``page``, whose next rendering says why
    (returned); the one after no more."""
    answer = web.post(url, form, **kwargs)
    assert answer.status_code == 303, (answer.status_code, text_of(answer)[:300])
    assert answer.headers["Location"] == f"{page}#away-form"
    shown = text_of(web.get(page, **kwargs))
    assert 'class="field-error"' not in section(text_of(web.get(page, **kwargs)))  # once
    return shown


def ends_with_the_button(web: WebClient, desk: Desk, services: Any, number: str, page: str, said: str,
                         state: str) -> None:
    """mona's absence ended with the section's button on ``page``: a 303 to the section, which
    says ``said`` and the state ``state``; her approval of ``number`` is hers again, and it is audited."""
    ended = web.post(f"{page}/away/clear")
    assert ended.status_code == 303 and ended.headers["Location"] == f"{page}#away"
    shown = html.unescape(text_of(web.get(page)))
    assert said in shown
    assert element(section(shown), "away-state") == state
    assert approval(desk, number)["assigned_user"] == "mona"
    assert [e["username"] for e in audited(services, "user_away_cleared")] == ["mona"]


def test_a_manager_sets_her_absence_sees_what_went_to_her_delegate_and_comes_back(web, desk, services, lena):
    number = order_laptop(desk)
    task = approval(desk, number)
    assert task["assigned_user"] == "mona"
    web.login("mona")
    page = text_of(web.get("/account"))
    away = section(page)
    assert element(away, "away-state") == "You are not out of office."
    form = away[away.index('<form method="post" action="/account/away"'):]
    assert 'name="csrf_token"' in form[:form.index("</form>")]
    assert 'id="away-clear-form"' not in away  # nothing to come back from
    # without the session's token nothing happens
    assert web.post("/account/away", {"delegate": "lena", "until": UNTIL}, csrf=False).status_code == 403
    assert audited(services, "user_away_set") == []

    saved = web.post("/account/away", {"delegate": " lena ", "until": UNTIL})
    assert saved.status_code == 303 and saved.headers["Location"] == "/account#away"
    page = text_of(web.get("/account"))
    assert ("Your absence was saved: from 2026-01-05 09:00 UTC until 2026-01-12 09:00 UTC the tasks assigned to "
            "you by name go to lena.") in html.unescape(page)
    away = section(page)
    assert element(away, "away-state") == "You are away from 2026-01-05 09:00 UTC until 2026-01-12 09:00 UTC."
    assert element(away, "away-delegate") == "lena"
    assert element(away, "away-status") == "In force now"
    assert element(away, "away-handed-title") == "Open tasks handed to lena"
    handed = element(away, "away-handed")
    assert f"#{task['id']}" in handed and "Approve as line manager" in handed
    # the task is lena's now: no link to it for mona, nor its record's number (she no longer opens it)
    assert f'href="/tasks/{task["id"]}"' not in away and number not in handed
    assert web.get(f"/tickets/{number}").status_code == 404
    assert typed(away, "delegate") == "lena" and typed(away, "until") == UNTIL and typed(away, "from") == ""
    assert approval(desk, number)["assigned_user"] == "lena"
    assert [(e["username"], e["delegate"], e["until"]) for e in audited(services, "user_away_set")] == [
        ("mona", "lena", "2026-01-12T09:00:00Z")]

    ends_with_the_button(web, desk, services, number, "/account", "Welcome back: your absence has ended, and the "
                         "open tasks your delegate did not finish are yours again.", "You are not out of office.")
    # pressed again (another tab): nothing to end, and said so
    assert web.post("/account/away/clear").status_code == 303
    page = text_of(web.get("/account"))
    assert '<p class="flash flash-info">You are not out of office.</p>' in page and "Welcome back" not in page
    assert len(audited(services, "user_away_cleared")) == 1


def test_an_absence_to_come_says_when_it_starts_in_utc(web, desk, lena):
    web.login("mona")
    saved = web.post("/account/away", {"delegate": "lena", "from": "2026-01-06 08:00+01:00", "until": "2026-01-08 00:00"})
    assert saved.status_code == 303
    away = section(text_of(web.get("/account")))
    assert element(away, "away-state") == "You are away from 2026-01-06 07:00 UTC until 2026-01-08 00:00 UTC."
    assert element(away, "away-status") == "Starts at 2026-01-06 07:00 UTC"
    assert 'id="away-handed' not in away  # nothing moves before it starts
    assert typed(away, "from") == "2026-01-06 07:00" and typed(away, "until") == "2026-01-08 00:00"
    # nothing has started: the button cancels it, and says so
    assert element(away, "away-clear-form") == "Cancel the planned absence"
    assert web.post("/account/away/clear").status_code == 303
    page = html.unescape(text_of(web.get("/account")))
    assert "Your planned absence was cancelled." in page and "Welcome back" not in page


def test_an_absence_past_its_end_says_it_ended_until_the_sweep_forgets_it(web, web_factory, desk, services, lena,
                                                                          clock):
    web.login("mona")
    assert web.post("/account/away", {"delegate": "lena", "until": UNTIL}).status_code == 303
    clock.advance(timedelta(days=8))
    later = web_factory()  # a new week, a new session
    later.login("mona")
    away = section(text_of(later.get("/account")))
    assert element(away, "away-status") == "Ended at 2026-01-12 09:00 UTC"
    services.away.sweep()
    assert element(section(text_of(later.get("/account"))), "away-state") == "You are not out of office."


#: What anyone but an admin is told of a delegate who cannot stand in for them, whatever the rule.
NOT_A_STAND_IN = ("This user cannot stand in for you: choose an active user who works on tasks and holds each of your "
                  "working roles (Agent, Approver, Process owner).")


@pytest.mark.parametrize(("form", "problems"), [
    # a time the page cannot read is named before the service is asked
    ({"delegate": "ghost", "from": "tomorrow", "until": UNTIL},
     {"from": "Enter a date and time as YYYY-MM-DD hh:mm (UTC), or with an offset like +02:00.", "delegate": None}),
    ({"delegate": "ghost", "until": ""}, {"delegate": NOT_A_STAND_IN, "until": "This field is required."}),
    ({"delegate": "rita", "until": "2026-01-04 09:00"},
     {"delegate": NOT_A_STAND_IN, "until": "This time is past: an absence that is over hands nothing on."}),
    ({"delegate": "mona", "from": "2026-01-10 00:00", "until": "2026-01-09 00:00"},
     {"delegate": "Choose someone else: nobody stands in for themselves.", "until": "Choose a time after the start."}),
    ({"delegate": "aude", "until": "2027-02-01 00:00"},
     {"delegate": NOT_A_STAND_IN, "until": "Choose a time within 366 days of the start."}),
    ({"delegate": "lena", "until": "0001-01-01 00:00"}, {"until": "Choose a time in the years 1900 to 8999."}),
])
def test_refused_input_comes_back_beside_each_field_with_what_was_typed(web, desk, services, lena, form, problems):
    web.login("mona")
    page = refused(web, "/account/away", form, "/account")
    away = section(page)
    assert "The form has problems; nothing was saved." in away
    for name, problem in problems.items():
        assert field_error(away, name) == problem, (name, field_error(away, name))
    for name in ("delegate", "from", "until"):
        assert typed(away, name) == form.get(name, "")
    assert element(away, "away-state") == "You are not out of office."
    assert audited(services, "user_away_set") == []


@pytest.mark.parametrize(("delegate", "problem"), [
    ("ghost", "There is no user ghost."),
    ("rita", "rita does not hold the role the work needs: Approver."),
    ("aude", "aude reads tasks but does not work on them."),
    ("cab1", "cab1 is deactivated."),
])
def test_an_admin_is_told_which_rule_refused_a_delegate(web, desk, services, lena, delegate, problem):
    services.users.update_user(None, "cab1", {"active": False})
    services.session.commit()
    web.login("ada")
    page = refused(web, "/admin/users/mona/away", {"delegate": delegate, "until": UNTIL}, "/admin/users/mona")
    assert field_error(section(page), "delegate") == problem
    assert typed(section(page), "delegate") == delegate


def test_a_refusal_too_large_to_keep_is_answered_in_place(web, desk, lena):
    """Text that does not compress (random letters) past the session cookie's room: nothing is
    kept, the page answers itself (422) beside the fields, with what was typed."""
    web.login("mona")
    long_text = os.urandom(3000).hex()  # 6,000 characters
    answer = web.post("/account/away", {"delegate": long_text, "until": UNTIL})
    assert answer.status_code == 422
    away = section(text_of(answer))
    assert field_error(away, "delegate") == NOT_A_STAND_IN
    assert typed(away, "delegate") == long_text and typed(away, "until") == UNTIL
    assert 'class="field-error"' not in section(text_of(web.get("/account")))  # nothing kept


def test_the_section_and_its_refusals_in_chinese(web, web_factory, desk, lena):
    web.login("mona")
    web.post("/language", {"lang": "zh_CN"})
    away = section(text_of(web.get("/account")))
    assert element(away, "away-title") == "外出" and element(away, "away-state") == "您当前未设置外出。"
    page = refused(web, "/account/away", {"delegate": "rita", "until": "bald"}, "/account")
    away = section(page)
    assert field_error(away, "until") == "请按 YYYY-MM-DD hh:mm（UTC）输入日期和时间，或带上时差，如 +02:00。"
    page = refused(web, "/account/away", {"delegate": "rita", "until": UNTIL}, "/account")
    assert field_error(section(page), "delegate") == (
        "此用户不能代理您：请选择一位处理任务、且拥有您每项工作角色（服务台人员、审批人、流程负责人）的在职用户。")
    assert typed(section(page), "delegate") == "rita"
    assert web.post("/account/away", {"delegate": "lena", "until": UNTIL}).status_code == 303
    page = text_of(web.get("/account"))
    assert "您的外出已保存：从 2026-01-05 09:00 UTC 到 2026-01-12 09:00 UTC，按姓名分配给您的任务将转给 lena。" in page
    away = section(page)
    assert element(away, "away-status") == "当前生效" and "我回来了" in away
    # lena's inbox says, in Chinese, for whom the task is, by its translated name
    order_laptop(desk)
    lena_web = web_factory()
    lena_web.login("lena")
    lena_web.post("/language", {"lang": "zh_CN"})
    assert "代外出的 mona 处理" in text_of(lena_web.get("/tasks"))
    assert "以直属经理身份审批" in element(section(text_of(web.get("/account"))), "away-handed")
    # an admin is told which rule refused, in Chinese too
    ada = web_factory()
    ada.login("ada")
    ada.post("/language", {"lang": "zh_CN"})
    page = refused(ada, "/admin/users/lena/away", {"delegate": "rita", "until": UNTIL}, "/admin/users/lena")
    assert field_error(section(page), "delegate") == "rita 没有这项工作所需的角色：审批人。"


def test_an_admin_sets_and_ends_someone_elses_absence_and_an_auditor_only_reads_it(web, web_factory, desk, services,
                                                                                 lena):
    number = order_laptop(desk)
    task = approval(desk, number)
    web.login("ada")
    page = text_of(web.get("/admin/users/mona"))
    away = section(page)
    assert element(away, "away-state") == "mona is not out of office."
    assert 'action="/admin/users/mona/away"' in away
    # refused: beside the field of the section on the user's page, what was typed kept
    page = refused(web, "/admin/users/mona/away", {"delegate": "MONA", "until": UNTIL}, "/admin/users/mona")
    assert field_error(section(page), "delegate") == "Choose someone else: nobody stands in for themselves."
    assert typed(section(page), "delegate") == "MONA"
    assert 'id="user-form"' in page and 'class="field has-error"' not in page[page.index('id="user-form"'):]

    saved = web.post("/admin/users/mona/away", {"delegate": "lena", "until": UNTIL})
    assert saved.status_code == 303 and saved.headers["Location"] == "/admin/users/mona#away"
    page = html.unescape(text_of(web.get("/admin/users/mona")))
    assert ("The absence of mona was saved: from 2026-01-05 09:00 UTC until 2026-01-12 09:00 UTC the tasks assigned "
            "to them by name go to lena.") in page
    away = section(page)
    assert element(away, "away-state") == "mona is away from 2026-01-05 09:00 UTC until 2026-01-12 09:00 UTC."
    assert f'href="/tasks/{task["id"]}"' in away  # an admin opens every task
    assert element(away, "away-clear-form") == "End the absence now"
    assert [e["delegate"] for e in audited(services, "user_away_set")] == ["lena"]

    aude = web_factory()
    aude.login("aude")
    away = section(text_of(aude.get("/admin/users/mona")))
    assert element(away, "away-status") == "In force now" and f"#{task['id']}" in element(away, "away-handed")
    assert 'id="away-form"' not in away and 'id="away-clear-form"' not in away and "<form" not in away
    assert aude.post("/admin/users/mona/away", {"delegate": "cab1", "until": UNTIL}).status_code == 403
    assert aude.post("/admin/users/mona/away/clear").status_code == 403
    assert approval(desk, number)["assigned_user"] == "lena"

    ends_with_the_button(web, desk, services, number, "/admin/users/mona", "The absence of mona has ended: the open "
                         "tasks their delegate did not finish are theirs again.", "mona is not out of office.")


def test_ending_a_leavers_absence_says_the_tasks_stay_with_the_delegate(web, desk, services, lena):
    number = order_laptop(desk)
    web.login("ada")
    assert web.post("/admin/users/mona/away", {"delegate": "lena", "until": UNTIL}).status_code == 303
    assert desk.client.post("/api/v1/users/mona/deactivate", headers=desk.auth("ada")).status_code == 200
    assert web.post("/admin/users/mona/away/clear").status_code == 303
    page = html.unescape(text_of(web.get("/admin/users/mona")))
    assert "The absence of mona has ended; as mona is deactivated, the open tasks stay with the delegate." in page
    assert approval(desk, number)["assigned_user"] == "lena"


def test_nobody_else_opens_or_changes_anothers_absence(web, web_factory, desk, services, lena):
    web.login("rita")
    # the admin page's forms are an admin's, one's own name included (one's own is on the account page)
    assert web.post("/admin/users/rita/away", {"delegate": "alex", "until": UNTIL}).status_code == 403
    assert web.post("/admin/users/rita/away/clear").status_code == 403
    assert web.get("/admin/users/mona").status_code == 403
    assert web.post("/admin/users/mona/away", {"delegate": "lena", "until": UNTIL}).status_code == 403
    assert web.post("/admin/users/mona/away", {"delegate": "lena", "until": "bad"}).status_code == 403  # before the fields
    lena_web = web_factory()
    lena_web.login("lena")
    assert lena_web.post("/admin/users/mona/away/clear").status_code == 403
    assert lena_web.post("/admin/users/ghost/away", {"delegate": "lena", "until": UNTIL}).status_code == 403
    ada = web_factory()
    ada.login("ada")
    assert ada.post("/admin/users/ghost/away", {"delegate": "lena", "until": UNTIL}).status_code == 404
    assert audited(services, "user_away_set") == []
    assert {"set_away", "clear_away"} <= {e["action"] for e in audited(services, "access_denied")}


def test_a_task_the_delegate_may_not_do_is_listed_as_kept_with_the_reason(web, desk, services):
    # rhea requests and is a line manager too: the approval of her own request is not hers to give
    services.users.create_user("rhea", "password-1234", roles=["approver", "requester"], groups=["LineManagers"])
    services.users.set_manager("rhea", "mona")
    services.session.commit()
    number = order_laptop(desk, "rhea")
    task = approval(desk, number)
    web.login("mona")
    assert web.post("/account/away", {"delegate": "rhea", "until": UNTIL}).status_code == 303
    away = section(text_of(web.get("/account")))
    assert element(away, "away-kept-title") == "Open tasks kept with you"
    kept = element(away, "away-kept")
    assert f"#{task['id']}" in kept and "separation of duties leaves the delegate out of this task" in kept
    assert f'href="/tasks/{task["id"]}"' in away  # still hers: she opens it
    assert element(away, "away-handed-none") == "No open task is handed to rhea now."


def test_the_inbox_and_the_task_page_say_whom_a_handed_task_is_for(web, web_factory, desk, services, lena):
    assert desk.client.put("/api/v1/users/me/away", headers=desk.auth("mona"),
                           json={"delegate": "lena", "until": "2026-01-12T09:00:00Z"}).status_code == 200
    number = order_laptop(desk)
    task_id = approval(desk, number)["id"]
    web.login("lena")
    inbox = text_of(web.get("/tasks"))
    row = inbox[inbox.index(f'href="/tasks/{task_id}"'):]
    row = row[:row.index("</td>")]
    assert '<span class="assigned delegated">for mona, who is away</span>' in row
    assert element(text_of(web.get(f"/tasks/{task_id}")), "task-delegated") == "Handed to you while mona is away."
    mona = web_factory()
    mona.login("mona")
    assert f'href="/tasks/{task_id}"' not in text_of(mona.get("/tasks"))
    ada = web_factory()
    ada.login("ada")
    assert element(text_of(ada.get(f"/tasks/{task_id}")), "task-delegated") == "Handed to lena while mona is away."
    desk.complete(number, "approve_manager", "lena", {"approved": True, "approval_comment": "For mona."})
    assert element(text_of(ada.get(f"/tasks/{task_id}")), "task-delegated") == "Handed to lena while mona was away."
    # a task handed to nobody says nothing of it
    incident = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(incident, "triage")
    assert 'id="task-delegated"' not in text_of(ada.get(f"/tasks/{triage}"))
    assert "who is away" not in text_of(ada.get("/tasks?tab=queue"))


def test_the_audit_pages_name_the_absence_and_the_moves(web, desk, lena):
    order_laptop(desk)
    assert desk.client.put("/api/v1/users/me/away", headers=desk.auth("mona"),
                           json={"delegate": "lena", "until": "2026-01-12T09:00:00Z"}).status_code == 200
    assert desk.client.delete("/api/v1/users/me/away", headers=desk.auth("mona")).status_code == 200
    web.login("aude")
    page = html.unescape(text_of(web.get("/audit?actor=mona")))
    for label in ("Out of office set", "Out of office ended early", "Task handed to a delegate",
                  "Task back from a delegate"):
        assert label in page, label
    assert "mona → lena: 2026-01-05T09:00:00Z – 2026-01-12T09:00:00Z" in page
    assert "lena → mona" in page
    web.post("/language", {"lang": "zh_CN"})
    chinese = text_of(web.get("/audit?actor=mona"))
    assert "设置外出" in chinese and "任务转交代理人" in chinese


def test_the_user_list_marks_and_finds_who_is_out_of_office(web, desk, lena):
    assert desk.client.put("/api/v1/users/me/away", headers=desk.auth("mona"),
                           json={"delegate": "lena", "until": "2026-01-12T09:00:00Z"}).status_code == 200
    web.login("aude")
    page = html.unescape(text_of(web.get("/admin/users?away=1")))
    assert element(page, "result-count") == "Users found: 1"
    row = page[page.index('href="/admin/users/mona"'):]
    row = row[:row.index("</tr>")]
    assert '<span class="badge away">Away until 2026-01-12 09:00 UTC, lena stands in</span>' in row
    assert '<option value="1" selected>Out of office now</option>' in page
    others = html.unescape(text_of(web.get("/admin/users?away=0&active=1")))
    assert 'href="/admin/users/lena"' in others and 'href="/admin/users/mona"' not in others
    assert "badge away" not in others
    web.post("/language", {"lang": "zh_CN"})
    assert "外出至 2026-01-12 09:00 UTC，由 lena 代理" in text_of(web.get("/admin/users?away=1"))
