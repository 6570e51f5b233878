"""Home, the inbox and the task page, with the shipped incident process and its people."""

from __future__ import annotations

import re

from tests.web.conftest import INCIDENT, claimed_by_alex_seen_by_sam, text_of


def open_incident(desk, **changes) -> str:
    return desk.start("rita", "incident_management", {**INCIDENT, **changes})["data"]["record_number"]


def count(body: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}">\s*<span class="count">(\d+)</span>', body)
    assert match, f"no count {element_id}"
    return int(match.group(1))


def test_home_counts_my_tasks_the_queue_and_my_open_requests(web_factory, desk):
    number = open_incident(desk)
    open_incident(desk, title="Second")
    rita, alex = web_factory(), web_factory()
    rita.login("rita")
    body = text_of(rita.get("/"))
    assert count(body, "count-requests") == 2 and count(body, "count-my-tasks") == 0
    alex.login("alex")
    body = text_of(alex.get("/"))
    assert (count(body, "count-my-tasks"), count(body, "count-queue")) == (0, 2)
    assert alex.post(f"/tasks/{desk.task_id(number, 'triage')}/claim").status_code == 302
    body = text_of(alex.get("/"))
    assert (count(body, "count-my-tasks"), count(body, "count-queue")) == (1, 1)  # claimed: no longer queued
    assert "Triage" in body  # the claimed task is listed on the home page
    aude = web_factory()
    aude.login("aude")
    assert "As an auditor" in text_of(aude.get("/"))


def test_inbox_tabs_counts_filter_claim_and_release(web, desk):
    number = open_incident(desk)
    desk.start("paul", "problem_management", {"title": "Recurring VPN drops", "description": "Weekly"})
    task_id = desk.task_id(number, "triage")
    web.login("alex")
    queue = text_of(web.get("/tasks?tab=queue"))
    assert 'id="tab-queue" aria-current="page"' in queue
    assert f'href="/tasks/{task_id}"' in queue and number in queue
    mine = text_of(web.get("/tasks"))
    assert "Nothing is assigned to you or claimed by you." in mine
    filtered = text_of(web.get("/tasks?tab=queue&process=problem_management"))
    assert f'href="/tasks/{task_id}"' not in filtered
    assert '<option value="problem_management" selected>' in filtered

    claimed = web.post(f"/tasks/{task_id}/claim", {"next": "/tasks?tab=queue"})
    assert claimed.headers["Location"] == "/tasks?tab=queue"
    mine = text_of(web.get("/tasks"))
    assert "You claimed" in mine and f'href="/tasks/{task_id}"' in mine
    assert re.search(r'id="tab-mine" aria-current="page">Mine <span class="badge">1</span>', mine)
    assert f'action="/tasks/{task_id}/unclaim"' in mine

    released = web.post(f"/tasks/{task_id}/unclaim")
    assert released.headers["Location"] == f"/tasks/{task_id}"
    assert "Nothing is assigned to you or claimed by you." in text_of(web.get("/tasks"))


def test_claiming_a_task_someone_else_holds_says_so(web_factory, desk, services):
    number = open_incident(desk)
    task_id = desk.task_id(number, "triage")
    sam = claimed_by_alex_seen_by_sam(web_factory, services, task_id)
    page = text_of(sam.get(f"/tasks/{task_id}"))
    assert "The task could not be claimed: the task is claimed by someone else" in page
    assert "You can read this task but not work on it" in page and "<form method=\"post\" action=\"/tasks/" not in page.split("task-refused")[1]


def test_task_page_renders_the_form_from_its_schema(web, desk):
    number = open_incident(desk)
    task_id = desk.task_id(number, "triage")
    web.login("alex")
    page = text_of(web.get(f"/tasks/{task_id}"))
    assert "<h1>Triage incident</h1>" in page or "Triage" in page
    assert number in page and "VPN down" in page
    # labels bound to their controls, required markers, help text, defaults and task data preselected
    assert '<label for="f-category">Category' in page and '<select id="f-category" name="category"' in page
    assert '<option value="network" selected>Network</option>' in page
    assert '<input type="radio" id="f-priority-2" name="priority" value="P3" checked' in page
    assert 'aria-describedby="f-priority-help"' in page
    assert "Pre-set from the impact x urgency matrix" in page
    assert '<textarea id="f-triage_notes" name="triage_notes"' in page
    assert 'maxlength="5000"' in page and 'class="required"' in page
    assert 'novalidate' in page


def test_a_form_error_is_shown_beside_its_field_with_the_input_kept_then_the_fix_completes_it(web_factory, desk):
    number = open_incident(desk)
    alex, nina = web_factory(), web_factory()
    alex.login("alex")
    triage_id = desk.task_id(number, "triage")
    done = alex.post(f"/tasks/{triage_id}", {"category": "network", "priority": "P3",
                                             "assignment_group": "NetworkTeam", "triage_notes": "VPN concentrator"})
    assert done.status_code == 302 and done.headers["Location"] == "/tasks"
    assert "Done: “Triage incident”." in text_of(alex.get("/tasks"))

    nina.login("nina")
    investigate_id = desk.task_id(number, "investigate", "nina")
    assert f'href="/tasks/{investigate_id}"' in text_of(nina.get("/tasks?tab=queue"))
    bad = nina.post(f"/tasks/{investigate_id}", {"resolution_notes": "Restarted the <b>concentrator</b>",
                                                 "cause_category": "configuration"})
    # refused: sent back to the task page (Post/Redirect/Get), which shows the errors and the input once
    assert bad.status_code == 303 and bad.headers["Location"] == f"/tasks/{investigate_id}"
    page = text_of(nina.get(bad.headers["Location"]))
    assert '<p class="field-error" id="f-outcome-error"><span class="visually-hidden">Error: </span>is required</p>' in page
    assert 'aria-describedby="f-outcome-error"' in page
    assert 'href="#f-outcome-0"' in page  # the summary links to the first radio of the group
    assert "Restarted the &lt;b&gt;concentrator&lt;/b&gt;</textarea>" in page  # kept, and escaped
    assert '<option value="configuration" selected>' in page
    assert desk.ready(number) == ["investigate"]
    again = text_of(nina.get(f"/tasks/{investigate_id}"))  # shown once: a reload shows the form as it was
    assert 'class="field-error"' not in again and "concentrator" not in again

    good = nina.post(f"/tasks/{investigate_id}", {"outcome": "resolve", "resolution_notes": "Restarted it",
                                                  "cause_category": "configuration"})
    assert good.status_code == 302 and good.headers["Location"] == "/tasks"
    inbox = text_of(nina.get("/tasks?tab=queue"))
    assert "Done: “Investigate and resolve”." in inbox and f'href="/tasks/{investigate_id}"' not in inbox
    record = desk.record(number)
    assert record["status"] == "resolved" and record["details"]["resolution_notes"] == "Restarted it"
    # the completed task is still readable by who did it, without a form
    closed = text_of(nina.get(f"/tasks/{investigate_id}"))
    assert 'id="task-closed"' in closed and f'<form method="post" action="/tasks/{investigate_id}"' not in closed


def test_a_boolean_radio_and_a_checkbox_round_trip(web_factory, desk):
    number = open_incident(desk)
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    nina = web_factory()
    nina.login("nina")
    investigate_id = desk.task_id(number, "investigate", "nina")
    page = text_of(nina.get(f"/tasks/{investigate_id}"))
    assert '<input type="checkbox" id="f-raise_problem" name="raise_problem" value="true"' in page
    nina.post(f"/tasks/{investigate_id}", {"outcome": "resolve", "resolution_notes": "Fixed"})
    rita = web_factory()
    rita.login("rita")
    confirm_id = desk.task_id(number, "confirm_resolution", "rita")
    page = text_of(rita.get(f"/tasks/{confirm_id}"))
    assert 'name="confirmed" value="true"' in page and 'name="confirmed" value="false"' in page
    done = rita.post(f"/tasks/{confirm_id}", {"confirmed": "true", "comment": "works"})
    assert done.status_code == 302
    assert desk.record(number)["status"] == "closed"


def test_an_optional_radio_choice_can_be_taken_back(web_factory, desk):
    """The confirmation's rating is optional: its radio group has a "No answer" button (checked
    until a score is), which sends no rating; the required "Is it fixed?" has none."""
    number = open_incident(desk)
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Fixed"})
    rita = web_factory()
    rita.login("rita")
    confirm_id = desk.task_id(number, "confirm_resolution", "rita")
    page = text_of(rita.get(f"/tasks/{confirm_id}"))
    assert re.search(r'<input type="radio" id="f-rating-none" name="rating" value="" checked>', page)
    assert 'id="f-confirmed-none"' not in page
    # a score, refused with the form (no comment for "reopen"): the score is kept, "No answer" unchecked
    refused = rita.post(f"/tasks/{confirm_id}", {"confirmed": "false", "rating": "4", "comment": ""})
    assert refused.status_code == 303
    again = text_of(rita.get(f"/tasks/{confirm_id}"))
    assert 'name="rating" value="4" checked' in again and 'id="f-rating-none" name="rating" value="">' in again
    # then taken back: "No answer" sends an empty rating, stored as none
    done = rita.post(f"/tasks/{confirm_id}", {"confirmed": "true", "rating": "", "comment": "works"})
    assert done.status_code == 302
    record = desk.record(number)
    assert record["status"] == "closed" and record["details"].get("rating") is None


def test_a_task_of_another_group_is_not_found_like_a_missing_one(web_factory, desk):
    number = open_incident(desk)
    triage_id = desk.task_id(number, "triage")
    nina = web_factory()
    nina.login("nina")
    hidden = nina.get(f"/tasks/{triage_id}")
    missing = nina.get("/tasks/999999")
    assert hidden.status_code == missing.status_code == 404
    assert "Not found" in text_of(hidden) and number not in text_of(hidden)
    assert nina.post(f"/tasks/{triage_id}/claim").status_code == 404
    assert nina.post(f"/tasks/{triage_id}", {"category": "network"}).status_code == 404
    assert desk.ready(number) == ["triage"]


def test_unknown_pages_are_html_but_the_api_keeps_its_json(web):
    page = web.get("/no/such/page")
    assert page.status_code == 404 and page.mimetype == "text/html" and "Not found" in text_of(page)
    api = web.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.get_json()["error"] == "not_found"
    assert web.get("/api/v1/tasks").get_json()["error"] == "unauthorized"


def test_home_counts_sla_breaches_of_visible_open_records(web_factory, desk, services, clock):
    from datetime import timedelta

    open_incident(desk)  # P3: response within 4 h
    alex, rita = web_factory(), web_factory()
    alex.login("alex")
    assert count(text_of(alex.get("/")), "count-breaches") == 0
    clock.advance(timedelta(hours=5))
    services.sla.sweep()
    alex = web_factory()  # five idle hours ended the first session
    alex.login("alex")
    assert count(text_of(alex.get("/")), "count-breaches") == 1
    rita.login("rita")
    assert count(text_of(rita.get("/")), "count-breaches") == 1  # her own record


def test_an_answer_emptied_in_a_later_round_is_withdrawn_not_kept(web, desk):
    number = open_incident(desk)
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    web.login("nina")
    first = desk.task_id(number, "investigate")
    posted = web.post(f"/tasks/{first}", {"outcome": "pending", "pending_on": "vendor",
                                            "pending_reason": "Waiting for the vendor's firmware"})
    assert posted.status_code == 302, text_of(posted)
    assert desk.record(number)["status"] == "pending"
    desk.complete(number, "resume_vendor_work", "nina", {"update_note": "Firmware arrived"})
    second = desk.task_id(number, "investigate")
    page = text_of(web.get(f"/tasks/{second}"))
    assert "Waiting for the vendor&#39;s firmware" in page  # the earlier answer is shown again
    # Resolving, the agent empties the pending fields: they must not stay on the incident.
    posted = web.post(f"/tasks/{second}", {"outcome": "resolve", "resolution_notes": "Firmware 2.1 installed",
                                             "pending_reason": "", "pending_on": ""})
    assert posted.status_code == 302, text_of(posted)
    data = desk.instance(desk.record(number)["instance_id"])["data"]
    assert data["pending_reason"] == "" and data["pending_on"] is None
    assert data["resolution_notes"] == "Firmware 2.1 installed"


def test_an_answer_sent_after_its_task_ended_is_said_and_shown_back(web_factory, desk):
    """QA: a CAB member's late vote (another had decided) read "the task was cancelled by its
    process", and her comment was gone. Now the page says why and shows what was entered."""
    number = open_incident(desk)
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Fixed"})
    confirm_id = desk.task_id(number, "confirm_resolution", "rita")
    rita = web_factory()
    rita.login("rita")
    assert rita.get(f"/tasks/{confirm_id}").status_code == 200  # the form is open...
    svc = desk.services
    svc.instances.cancel(svc.users.get_by_username("alex"), svc.records.by_number(number).instance_id, "Duplicate")
    svc.session.commit()  # ...while the desk cancels the record
    sent = rita.post(f"/tasks/{confirm_id}", {"confirmed": "false", "rating": "2", "comment": "Still <broken> at 9"})
    assert sent.status_code == 303 and sent.headers["Location"] == f"/tasks/{confirm_id}"
    page = text_of(rita.get(f"/tasks/{confirm_id}"))
    assert "This task ended before your answer reached it" in page
    unsent = page.split('id="task-unsent"', 1)[1].split("</section>", 1)[0]
    assert "Still &lt;broken&gt; at 9" in unsent and "2 - dissatisfied" in unsent and "No, reopen it" in unsent
    assert 'id="task-unsent"' not in text_of(rita.get(f"/tasks/{confirm_id}"))  # once


def test_an_answer_sent_after_someone_else_completed_the_task_names_them(web_factory, desk):
    number = open_incident(desk)
    triage_id = desk.task_id(number, "triage")
    sam = web_factory()
    sam.login("alex")
    assert sam.get(f"/tasks/{triage_id}").status_code == 200
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    sent = sam.post(f"/tasks/{triage_id}", {"category": "hardware", "priority": "P2", "assignment_group": "ServiceDesk"})
    assert sent.status_code == 303
    page = text_of(sam.get(f"/tasks/{triage_id}"))
    assert "alex completed this task before your answer reached it" in page and 'id="task-unsent"' in page
