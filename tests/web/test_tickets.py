"""The record pages: the list with its filters, sort and pages; one record with its fields, SLA
clocks, open tasks, comments, links and the diagram's data; who may see what."""

from __future__ import annotations

import os
import re

import pytest

from app.web import ticket_pages
from tests.web.conftest import INCIDENT, PASSWORD, refused_to, text_of

TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}


def open_incident(desk, who: str = "rita", **changes) -> str:
    return desk.start(who, "incident_management", {**INCIDENT, **changes})["data"]["record_number"]


def triaged_incident(desk, **changes) -> str:
    number = open_incident(desk, **changes)
    desk.complete(number, "triage", "alex", TRIAGE)
    return number


@pytest.fixture()
def rick(services):
    """A requester with no record of his own among the others' (rita's) records."""
    user = services.users.create_user("rick", PASSWORD, roles=["requester"], groups=["Requesters"])
    services.session.commit()
    return user


def numbers_listed(body: str) -> list[str]:
    return re.findall(r'<a href="/tickets/([A-Z]+-\d+)" class="number">', body)


# -- the list ----------------------------------------------------------------------------------------


def test_the_list_shows_the_records_a_person_may_see(web_factory, desk, rick):
    mine = open_incident(desk, title="Printer jam")
    ricks = open_incident(desk, "rick", title="Laptop broken")
    rita, rick_web, alex = web_factory(), web_factory(), web_factory()
    rita.login("rita")
    listed = numbers_listed(text_of(rita.get("/tickets")))
    assert listed == [mine]
    rick_web.login("rick")
    assert numbers_listed(text_of(rick_web.get("/tickets"))) == [ricks]
    alex.login("alex")  # staff see every record
    page = text_of(alex.get("/tickets"))
    assert numbers_listed(page) == [ricks, mine]  # newest first
    assert "Records found: 2" in page


def test_filters_sort_and_pages_keep_each_other(app, web, desk):
    first = triaged_incident(desk, title="VPN down")
    second = open_incident(desk, title="Printer jam", impact="high", urgency="high")
    problem = desk.start("alex", "problem_management", {"title": "Recurring VPN drops", "description": "Weekly"})
    problem_number = problem["data"]["record_number"]
    web.login("alex")

    assert numbers_listed(text_of(web.get("/tickets?kind=problem"))) == [problem_number]
    # a kind the page does not offer (a hand-made link) filters nothing, where the API names it
    assert numbers_listed(text_of(web.get("/tickets?kind=problem,bogus"))) == [problem_number]
    assert set(numbers_listed(text_of(web.get("/tickets?kind=bogus")))) == {first, second, problem_number}
    assert numbers_listed(text_of(web.get("/tickets?q=printer"))) == [second]
    assert numbers_listed(text_of(web.get("/tickets?q=vpn&kind=incident"))) == [first]
    assert numbers_listed(text_of(web.get("/tickets?group=NetworkTeam"))) == [first]
    assert numbers_listed(text_of(web.get("/tickets?requester=alex"))) == [problem_number]
    assert numbers_listed(text_of(web.get("/tickets?status=in_progress"))) == [first]
    assert numbers_listed(text_of(web.get("/tickets?open=0"))) == []
    assert numbers_listed(text_of(web.get("/tickets?sort=title"))) == [second, problem_number, first]
    assert numbers_listed(text_of(web.get("/tickets?sort=nonsense"))) == [problem_number, second, first]

    page = text_of(web.get("/tickets?kind=incident&priority=P3&status=in_progress&open=1"))
    assert '<option value="incident" selected>Incident</option>' in page
    assert '<option value="P3" selected>P3</option>' in page
    assert '<option value="in_progress" selected>In progress</option>' in page
    assert '<option value="1" selected>Open only</option>' in page
    assert '<label for="filter-q">' in page and '<label for="filter-assignee">' in page

    app.config["PER_PAGE_DEFAULT"] = 2
    one = text_of(web.get("/tickets?sort=number&kind=incident,problem"))
    assert numbers_listed(one) == [first, second] and "Page 1 of 2" in one
    next_link = re.search(r'<a href="([^"]+)" rel="next">', one)
    assert next_link, "no link to the next page"
    two = text_of(web.get(next_link.group(1).replace("&amp;", "&")))
    assert numbers_listed(two) == [problem_number] and "Page 2 of 2" in two
    assert 'rel="prev"' in two and "sort=number" in next_link.group(1)


def test_the_home_page_counts_link_to_my_open_requests(web, desk):
    number = open_incident(desk)
    web.login("rita")
    home = text_of(web.get("/"))
    link = re.search(r'<a href="(/tickets\?[^"]+)" id="count-requests">', home)
    assert link, "the home page does not link to the record list"
    page = text_of(web.get(link.group(1).replace("&amp;", "&")))
    assert numbers_listed(page) == [number]
    assert '<option value="1" selected>Open only</option>' in page and 'value="rita"' in page


# -- one record --------------------------------------------------------------------------------------


def test_the_record_page_shows_fields_details_sla_clocks_and_open_tasks(web_factory, desk):
    number = triaged_incident(desk)
    alex, nina = web_factory(), web_factory()
    alex.login("alex")
    page = text_of(alex.get(f"/tickets/{number}"))
    assert f'<h1 class="ticket-title"><span class="number">{number}</span> VPN down</h1>' in page
    for fact in ("<dt>Status</dt><dd>In progress</dd>", "<dt>Priority</dt><dd>P3</dd>",
                 "<dt>Requester</dt><dd>rita</dd>", "<dt>Group</dt><dd>NetworkTeam</dd>",
                 "<dt>Configuration item</dt><dd>vpn-gw-01</dd>"):
        assert fact in page, fact
    assert "Cannot connect from home" in page
    assert "<dt>Times reopened</dt><dd class=\"ticket-text\">0</dd>" in page
    assert "Resolution notes" not in page  # details without a value yet are left out
    # SLA: the response was given at triage, the resolution clock runs (P3: 24 h)
    assert re.search(r'id="clock-response">\s*<h3[^>]*>Response <span class="clock-state">Met</span>', page)
    assert re.search(r'id="clock-resolution">\s*<h3[^>]*>Resolution <span class="clock-state">Running</span>', page)
    assert "<dt>Target</dt><dd>24 h 00 min</dd>" in page
    # the open task: alex (ServiceDesk) may not open it, nina (NetworkTeam) may
    investigate = desk.task_id(number, "investigate")
    assert "Investigate and resolve" in page and f'href="/tasks/{investigate}"' not in page
    nina.login("nina")
    assert f'<a href="/tasks/{investigate}">Investigate and resolve</a>' in text_of(nina.get(f"/tickets/{number}"))
    # the task page links back here
    assert f'href="/tickets/{number}"' in text_of(nina.get(f"/tasks/{investigate}"))


def test_the_page_needs_no_inline_script_and_hands_the_diagram_url_to_its_script(web, desk):
    number = triaged_incident(desk)
    web.login("alex")
    response = web.get(f"/tickets/{number.lower()}")
    page = text_of(response)
    assert response.status_code == 200 and "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert not re.search(r"<style|\sstyle=", page), "inline style"
    assert f'data-diagram-url="/tickets/{number}/diagram.json"' in page
    assert '<script src="/assets/vendor/bpmn-viewer.production.min.js" defer></script>' in page
    assert '<script src="/assets/js/diagram.js" defer></script>' in page
    assert re.search(r'<section class="panel panel-diagram diagram" id="diagram"[^>]*\shidden', page)  # shown by the script


def test_without_the_vendored_viewer_the_page_leaves_the_diagram_out(web, desk, monkeypatch, tmp_path):
    number = triaged_incident(desk)
    monkeypatch.setattr(ticket_pages, "VENDOR", tmp_path / "vendor")
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    assert "data-diagram-url" not in page and "bpmn-viewer" not in page
    assert "Service levels" in page and "Add a comment" in page


def test_the_diagram_data_names_completed_elements_and_current_tasks(web, desk):
    number = triaged_incident(desk)
    web.login("nina")
    response = web.get(f"/tickets/{number}/diagram.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.get_json()
    assert data["current"] == ["investigate"]
    assert data["completed"][:4] == ["start", "register", "prioritise", "triage"]
    assert "investigate" not in data["completed"] and data["failed"] == []
    assert 'id="incident_management"' in data["xml"] and 'bpmnElement="investigate"' in data["xml"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "<bpmn:script>" in data["xml"]  # nina is an agent: the whole diagram


def test_a_requester_sees_the_drawing_of_her_record_without_its_rules(web, desk):
    """The requester's diagram draws every shape and the path taken, but holds none of the desk's
    rules: no scripts, conditions, task properties or instructions (process definitions are staff's)."""
    number = triaged_incident(desk)
    web.login("rita")
    data = web.get(f"/tickets/{number}/diagram.json").get_json()
    xml = data["xml"]
    assert data["current"] == ["investigate"] and data["completed"][:4] == ["start", "register", "prioritise", "triage"]
    for shape in ("investigate", "triage", "confirm_resolution", "flow_prioritise_triage"):
        assert f'bpmnElement="{shape}"' in xml and f'id="{shape}"' in xml
    for rule in ("<bpmn:script>", "conditionExpression", "extensionElements", "spiffworkflow:", "ticket_status =",
                 "formJsonSchemaFilename", "<bpmn:documentation>"):
        assert rule not in xml, rule


def test_a_record_someone_may_not_see_is_not_found_page_and_data_alike(web_factory, desk, rick):
    number = triaged_incident(desk, title="Payroll server down")
    rick_web = web_factory()
    rick_web.login("rick")
    for url in (f"/tickets/{number}", "/tickets/INC-999999"):
        response = rick_web.get(url)
        assert response.status_code == 404
        page = text_of(response)
        assert "Not found" in page and "Payroll" not in page
    data = rick_web.get(f"/tickets/{number}/diagram.json")
    assert data.status_code == 404 and data.get_json()["error"] == "not_found"
    assert "xml" not in data.get_json()
    for action, form in (("comments", {"body": "hello"}), ("links", {"other": number, "link_type": "related"})):
        assert rick_web.post(f"/tickets/{number}/{action}", form).status_code == 404
    alex = web_factory()
    alex.login("alex")
    assert "hello" not in text_of(alex.get(f"/tickets/{number}"))
    # signed out: to the sign-in page, and back here afterwards
    anonymous = web_factory()
    response = anonymous.get(f"/tickets/{number}")
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]
    assert anonymous.get(f"/tickets/{number}/diagram.json").status_code == 302


def test_the_requester_reads_her_own_record(web, desk):
    number = triaged_incident(desk)
    web.login("rita")
    page = text_of(web.get(f"/tickets/{number}"))
    assert "VPN down" in page and "Service levels" in page
    assert web.get(f"/tickets/{number}/diagram.json").get_json()["current"] == ["investigate"]


# -- comments ----------------------------------------------------------------------------------------


def test_a_comment_is_added_and_shown_escaped(web, desk):
    number = triaged_incident(desk)
    web.login("alex")
    response = web.post(f"/tickets/{number}/comments", {"body": "Checked the <b>gateway</b>\nsecond line"})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert re.fullmatch(rf"/tickets/{number}#comment-\d+", location)
    page = text_of(web.get(f"/tickets/{number}"))
    assert "Your comment was added." in page
    assert "Checked the &lt;b&gt;gateway&lt;/b&gt;\nsecond line" in page
    assert f'id="{location.split("#")[1]}"' in page and "<strong>alex</strong>" in page
    assert [c.body for c in desk.services.records.comments(desk.services.users.get_by_username("aude"), number)] \
        == ["Checked the <b>gateway</b>\nsecond line"]


def test_an_empty_comment_is_refused_beside_its_field(web, desk):
    number = triaged_incident(desk)
    web.login("alex")
    response = web.post(f"/tickets/{number}/comments", {"body": "   "})
    # Post/Redirect/Get: the record page the refusal leads to says it beside the field, once
    page = refused_to(web, response, f"/tickets/{number}#comment-form")
    assert '<p class="field-error" id="comment-body-error"><span class="visually-hidden">Error: </span>is required</p>' in page
    assert 'aria-describedby="comment-body-help comment-body-error" aria-invalid="true"' in page
    assert "No comments yet." in page
    again = text_of(web.get(f"/tickets/{number}"))
    assert 'id="comment-body-error"' not in again and 'aria-invalid="true"' not in again


def test_a_refused_comment_comes_back_with_its_text_beside_its_own_form_only(web, desk):
    number = triaged_incident(desk)
    other = triaged_incident(desk, title="Printer jammed")
    web.login("alex")
    text = "See the log: " + "x" * ticket_pages.MAX_COMMENT  # too long, and kept (it compresses well)
    response = web.post(f"/tickets/{number}/comments", {"body": text})
    assert response.status_code == 303
    # not on another record's page, nor beside another form of its own
    assert 'id="comment-body-error"' not in text_of(web.get(f"/tickets/{other}"))
    page = refused_to(web, response, f"/tickets/{number}#comment-form")
    assert f'aria-invalid="true">{text}</textarea>' in page
    assert re.search(r'id="comment-body-error"><span class="visually-hidden">Error: </span>at most 20000 characters</p>',
                     page)
    assert page.count('class="field-error"') == 1 and 'id="link-other-error"' not in page
    assert "No comments yet." in page
    assert text not in text_of(web.get(f"/tickets/{number}"))  # once


def test_a_refused_comment_too_long_to_keep_is_answered_in_place(web, desk):
    """Text that does not compress past the session cookie's room: nothing is kept, the page
    answers 422 itself with the text (its Back still asks to resubmit; its text is not lost)."""
    number = triaged_incident(desk)
    web.login("alex")
    text = os.urandom(ticket_pages.MAX_COMMENT // 2).hex() + "!"
    response = web.post(f"/tickets/{number}/comments", {"body": text})
    assert response.status_code == 422
    page = text_of(response)
    assert f">{text}</textarea>" in page and "at most 20000 characters" in page
    assert text not in text_of(web.get(f"/tickets/{number}"))


def test_a_control_character_in_a_form_is_refused_naming_the_field(web, desk):
    number = triaged_incident(desk)
    web.login("alex")
    response = web.post(f"/tickets/{number}/comments", {"body": "nul\x00byte"})
    assert response.status_code == 400
    assert "The field “body” holds a control character." in text_of(response)
    assert "No comments yet." in text_of(web.get(f"/tickets/{number}"))
    # Tabs and line breaks are text.
    assert web.post(f"/tickets/{number}/comments", {"body": "a\tb\r\nc"}).status_code == 302


def test_a_comment_without_the_csrf_token_changes_nothing(web, desk):
    number = triaged_incident(desk)
    web.login("alex")
    response = web.post(f"/tickets/{number}/comments", {"body": "forged"}, csrf=False)
    assert response.status_code == 403 and "Form expired" in text_of(response)
    assert "forged" not in text_of(web.get(f"/tickets/{number}"))


# -- links -------------------------------------------------------------------------------------------


def test_records_are_linked_from_the_page_and_shown_on_both(web, desk):
    number = triaged_incident(desk)
    problem = desk.start("alex", "problem_management", {"title": "Recurring VPN drops", "description": "Weekly"})
    problem_number = problem["data"]["record_number"]
    web.login("alex")
    response = web.post(f"/tickets/{number}/links", {"other": problem_number.lower(), "link_type": "caused_by"})
    assert response.status_code == 302 and response.headers["Location"] == f"/tickets/{number}#links"
    page = text_of(web.get(f"/tickets/{number}"))
    assert f"{problem_number} is linked." in page
    assert re.search(rf'Caused by</span> <span class="link-kind">problem</span>\s*'
                     rf'<a href="/tickets/{problem_number}" class="number">{problem_number}</a> Recurring VPN drops', page)
    other = text_of(web.get(f"/tickets/{problem_number}"))
    assert re.search(rf'Causes</span> <span class="link-kind">incident</span>\s*'
                     rf'<a href="/tickets/{number}" class="number">{number}</a>', other)


@pytest.mark.parametrize(("other", "message"), [
    ("", "is required"),
    ("PRB-424242", "There is no record PRB-424242 that you may see."),
    ("SELF", "A record cannot be linked to itself."),
])
def test_a_link_that_cannot_be_made_is_explained_beside_the_field(web, desk, other, message):
    number = triaged_incident(desk)
    web.login("alex")
    sent = number if other == "SELF" else other
    response = web.post(f"/tickets/{number}/links", {"other": f" {sent.lower()} ", "link_type": "related"})
    page = refused_to(web, response, f"/tickets/{number}#link-form")
    assert f'<p class="field-error" id="link-other-error"><span class="visually-hidden">Error: </span>{message}</p>' in page
    assert 'aria-invalid="true"' in page and "No linked records." in page
    assert f'id="link-other" name="other" value="{sent}"' in page  # as looked up: the number in capitals
    assert page.count('class="field-error"') == 1  # beside the link form alone
    again = text_of(web.get(f"/tickets/{number}"))
    assert 'id="link-other-error"' not in again and 'id="link-other" name="other" value=""' in again


def test_a_requester_cannot_link_to_a_record_she_may_not_see(web, desk, rick):
    ricks = open_incident(desk, "rick", title="Laptop broken")
    number = open_incident(desk)
    web.login("rita")
    response = web.post(f"/tickets/{number}/links", {"other": ricks, "link_type": "related"})
    page = refused_to(web, response, f"/tickets/{number}#link-form")
    assert f"There is no record {ricks} that you may see." in page
    assert "Laptop broken" not in page


def test_the_page_leaves_out_links_to_records_the_reader_may_not_see(web_factory, desk, rick):
    ricks = open_incident(desk, "rick", title="HR secret: salary file exposed")
    number = open_incident(desk)
    alex, rita = web_factory(), web_factory()
    alex.login("alex")
    assert alex.post(f"/tickets/{number}/links", {"other": ricks, "link_type": "related"}).status_code == 302
    assert ricks in text_of(alex.get(f"/tickets/{number}"))
    rita.login("rita")
    page = text_of(rita.get(f"/tickets/{number}"))
    assert ricks not in page and "HR secret" not in page and "No linked records." in page


def test_linking_again_says_the_records_were_already_linked(web, desk):
    number = triaged_incident(desk)
    other = open_incident(desk, title="VPN slow")
    web.login("alex")
    web.post(f"/tickets/{number}/links", {"other": other, "link_type": "related"})
    assert f"{other} is linked." in text_of(web.get(f"/tickets/{number}"))
    response = web.post(f"/tickets/{number}/links", {"other": other, "link_type": "related"})
    assert response.status_code == 302
    page = text_of(web.get(f"/tickets/{number}"))
    assert f"{other} was already linked this way." in page and f"{other} is linked." not in page
    assert page.count(f'<a href="/tickets/{other}" class="number">') == 1


# -- language ----------------------------------------------------------------------------------------


def test_the_record_pages_speak_chinese(web, desk):
    number = triaged_incident(desk)
    web.login("alex")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get(f"/tickets/{number}"))
    for text in ("服务级别", "添加评论", "流程图", "处理中", "目标", "24 小时 00 分钟"):
        assert text in page, text
    listing = text_of(web.get("/tickets"))
    assert "记录" in listing and "全部类型" in listing
    assert "为必填项" in refused_to(web, web.post(f"/tickets/{number}/comments", {"body": ""}),
                                 f"/tickets/{number}#comment-form")


def test_an_auditor_sees_the_record_without_the_comment_and_link_forms(web_factory, desk):
    number = triaged_incident(desk)
    aude, alex = web_factory(), web_factory()
    aude.login("aude")
    alex.login("alex")
    page = text_of(aude.get(f"/tickets/{number}"))
    assert "VPN down" in page
    assert f"/tickets/{number}/comments" not in page and f"/tickets/{number}/links" not in page
    assert f"/tickets/{number}/comments" in text_of(alex.get(f"/tickets/{number}"))
    response = aude.post(f"/tickets/{number}/comments", {"body": "audited"})
    assert response.status_code == 302
    assert "auditors read records but do not change them" in text_of(aude.get(f"/tickets/{number}"))
    assert "audited" not in text_of(alex.get(f"/tickets/{number}"))


def test_a_link_between_the_wrong_kinds_is_explained_in_the_pages_language(web, desk):
    number = triaged_incident(desk)
    problem_number = desk.start("alex", "problem_management", {"title": "Recurring VPN drops",
                                                                "description": "Weekly"})["data"]["record_number"]
    web.login("alex")
    response = web.post(f"/tickets/{number}/links", {"other": problem_number, "link_type": "fix_change"})
    page = refused_to(web, response, f"/tickets/{number}#link-form")
    assert re.search(rf'id="link-other-error"><span class="visually-hidden">Error: </span>A link “[^”]+” cannot join '
                     rf'{number} \(Incident\) and {problem_number} \(Problem\)\.</p>', page), page[-3000:]
    assert "No linked records." in page
    assert '<option value="fix_change" selected>' in page  # the link type as sent
    web.post("/language", {"lang": "zh_CN", "next": f"/tickets/{number}"})
    page = refused_to(web, web.post(f"/tickets/{number}/links", {"other": problem_number, "link_type": "fix_change"}),
                      f"/tickets/{number}#link-form")
    assert f"无法关联 {number}（事件）和 {problem_number}（问题）" in page


def test_a_closed_record_takes_no_more_comments_from_its_requester(web_factory, desk):
    """QA: a requester's comment on a closed record reached nobody working on it (it only mailed
    the former assignee). She is told to report a new one; the desk's staff may still note."""
    number = triaged_incident(desk)
    svc = desk.services
    ticket = svc.records.by_number(number)
    svc.instances.cancel(svc.users.get_by_username("alex"), ticket.instance_id, "Raised twice")
    svc.session.commit()
    rita = web_factory()
    rita.login("rita")
    page = text_of(rita.get(f"/tickets/{number}"))
    assert 'id="closed-to-comments"' in page and f"report a new one and mention {number}" in page
    assert f'action="/tickets/{number}/comments"' not in page
    # sent from a page opened before the record closed: said as such, the text shown back to copy
    back = refused_to(rita, rita.post(f"/tickets/{number}/comments", {"body": "It is broken <again>"}),
                      f"/tickets/{number}#comment-form")
    assert f"{number} was closed meanwhile: nobody works on it any more, so your comment was not added." in back
    assert '<pre class="comment-body">It is broken &lt;again&gt;</pre>' in back
    assert 'id="comment-not-added"' not in text_of(rita.get(f"/tickets/{number}"))  # once
    chinese = refused_to(rita, rita.post(f"/tickets/{number}/comments", {"body": "又坏了"}, headers={"Accept-Language": "zh-CN"}),
                         f"/tickets/{number}#comment-form", headers={"Accept-Language": "zh-CN"})
    assert f"{number} 在此期间已关闭" in chinese and "又坏了" in chinese and "您无权" not in chinese
    alex = web_factory()
    alex.login("alex")
    assert f'action="/tickets/{number}/comments"' in text_of(alex.get(f"/tickets/{number}"))
    assert alex.post(f"/tickets/{number}/comments", {"body": "Duplicate of an earlier report"}).status_code == 302
    bodies = [c.body for c in svc.records.comments(svc.users.get_by_username("aude"), number)]
    assert "It is broken <again>" not in bodies and "又坏了" not in bodies and "Duplicate of an earlier report" in bodies


def test_the_link_form_attaches_a_knowledge_article(web, desk):
    """QA: an agent typed KB-000001 into the link form and read "There is no record KB-000001"."""
    svc = desk.services
    alex = svc.users.get_by_username("alex")
    kb = svc.knowledge.draft(alex, {"title": "VPN drops after sleep", "symptoms": "Tunnel lost",
                                    "cause": "Power saving", "workaround": "Turn off NIC power saving"})
    svc.knowledge.publish_article(alex, kb.number)
    svc.session.commit()
    number = triaged_incident(desk)
    web.login("alex")
    sent = web.post(f"/tickets/{number}/links", {"other": kb.number.lower(), "link_type": "known_error"})
    assert sent.status_code == 302 and sent.headers["Location"].endswith("#knowledge")
    page = text_of(web.get(f"/tickets/{number}"))
    assert f"Knowledge article {kb.number} is attached." in page
    assert f'href="/knowledge/{kb.number}"' in page
    wrong = web.post(f"/tickets/{number}/links", {"other": "KB-999999", "link_type": "related"})
    page = refused_to(web, wrong, f"/tickets/{number}#link-form")
    assert "KB-999999 is no published knowledge article." in page and 'value="KB-999999"' in page


def test_the_link_form_offers_articles_to_the_staff_only(web_factory, desk):
    """Review: the link form told requesters they could attach a knowledge article, which they may not."""
    number = triaged_incident(desk)
    rita, alex = web_factory(), web_factory()
    rita.login("rita")
    alex.login("alex")
    assert "knowledge article to attach" not in text_of(rita.get(f"/tickets/{number}"))
    assert "knowledge article to attach" in text_of(alex.get(f"/tickets/{number}"))


def test_a_kind_filter_narrows_the_status_choices_to_that_kind(web, desk):
    """QA: the change list's Status filter offered every status on the desk (an incident's
    "In progress" among them)."""
    triaged_incident(desk)
    desk.start("alex", "change_enablement", {
        "title": "Upgrade the mail gateway", "description": "Move to 9.2", "reason": "Support ends",
        "planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z", "change_type": "normal",
        "implementation_plan": "Upgrade", "rollback_plan": "Snapshot", "test_plan": "Send mail", "ci": "mailgw01"})
    web.login("alex")

    def statuses(page: str) -> list[str]:
        select = page.split('id="filter-status"')[1].split("</select>")[0]
        return re.findall(r'<option value="([^"]+)"', select)

    everything = statuses(text_of(web.get("/tickets")))
    assert "in_progress" in everything and "assessment" in everything
    changes = statuses(text_of(web.get("/tickets?kind=change")))
    assert "assessment" in changes and "in_progress" not in changes


def test_a_page_past_the_last_shows_the_last_page_with_the_filters_kept(web, desk, app):
    """A list that shrank under a page (records closed, or a bookmarked page) does not say "no
    record matches" beside "Records found: 2": a page past the last is the last page."""
    first, second = open_incident(desk), open_incident(desk)
    web.login("alex")
    app.config["PER_PAGE_DEFAULT"] = 1
    answer = web.get("/tickets?kind=incident&sort=number&page=7")
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert "page=2" in location and "kind=incident" in location and "sort=number" in location
    last = text_of(web.get(location))
    assert numbers_listed(last) == [second] and "Page 2 of 2" in last and first not in numbers_listed(last)
    # nothing to show at all: the first page says so, without a redirect
    assert web.get("/tickets?q=nothing-matches-this&page=3").status_code == 200


def test_a_page_past_a_capped_count_is_not_sent_back(web, desk, app, monkeypatch):
    """A list counted only up to COUNT_CAP ("1000+") goes on past the page that count reaches:
    that page and the ones after it are served, not redirected back (a desk with 5,000 records)."""
    from app import db as app_db
    from app.services import records as record_service
    from app.web import views as web_views

    for module in (app_db, record_service, web_views):
        monkeypatch.setattr(module, "COUNT_CAP", 2)
    numbers = [open_incident(desk) for _ in range(3)]
    web.login("alex")
    app.config["PER_PAGE_DEFAULT"] = 1
    answer = web.get("/tickets?kind=incident&sort=number&page=3")
    assert answer.status_code == 200
    assert numbers_listed(text_of(answer)) == [numbers[2]]
