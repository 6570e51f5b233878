"""Response templates on the pages: an agent writes one (a typo in a placeholder refused beside the
text, nothing stored), picks it under a record's comment box and inserts it after what she typed,
filled in from the record, then sends the comment; a process owner writes the desk's; an edit over
a newer one is refused with the typing kept; a requester sees none of it."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import select

from app.models import ResponseTemplate, TicketComment
from tests.web.conftest import WebClient, refused_to, text_of
from tests.web.test_out_of_office_pages import element, field_error
from tests.web.test_status_pages import form_on

ON_IT = {"name": "We are on it", "kind": "incident",
         "body": "Hello {{requester}}, {{agent}} is working on {{number}} ({{title}})."}


def templates(services: Any) -> list[tuple[str, str, int | None]]:
    services.session.expire_all()
    return [(r.name, r.body, r.owner_id) for r in services.session.scalars(select(ResponseTemplate).order_by(ResponseTemplate.id))]


def options(page: str) -> list[str]:
    select_html = re.search(r'<select id="comment-response" name="response">(.*?)</select>', page, flags=re.S)
    assert select_html, "no template picker"
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", o)).split())
            for o in re.findall(r"<option[^>]*>(.*?)</option>", select_html.group(1), flags=re.S)]


def form_of(page: str, form_id: str) -> dict[str, str]:
    """What the form sends, but its CSRF token: each client sends its own session's."""
    return {k: v for k, v in form_on(page, form_id).items() if k != "csrf_token"}


def open_incident(desk: Any, title: str = "Printer jams on every page") -> str:
    return str(desk.start("rita", "incident_management", {
        "title": title, "description": "Third floor", "category": "hardware", "impact": "low",
        "urgency": "low"})["data"]["record_number"])


def test_an_agent_writes_a_template_and_inserts_it_filled_in_after_her_words(web_factory: Any, desk: Any,
                                                                             services: Any) -> None:
    number = open_incident(desk)
    agent: WebClient = web_factory()
    agent.login("alex")
    assert 'href="/response-templates"' in text_of(agent.get("/account"))  # where she finds them
    page = text_of(agent.get("/response-templates"))
    assert element(page, "no-templates").startswith("No templates yet")
    assert 'id="field-shared"' not in page  # an agent's are her own

    # a typo in a placeholder: refused beside the text, what was typed kept, nothing stored
    refused = agent.post("/response-templates", {**ON_IT, "body": "Hi {{requestor}}"})
    shown = refused_to(agent, refused, "/response-templates#new-template")
    assert field_error(shown, "body") == (
        "holds an unknown placeholder {{requestor}}: use {{number}}, {{title}}, {{requester}}, {{assignee}}, "
        "{{group}}, {{service}}, {{priority}}, {{agent}}")
    assert form_of(shown, "template-form")["body"].strip() == "Hi {{requestor}}"
    assert templates(services) == []

    saved = agent.post("/response-templates", ON_IT)
    assert saved.status_code == 303
    alex = services.users.get_by_username("alex")
    assert templates(services) == [("We are on it", ON_IT["body"], alex.id)]
    olga = web_factory()
    olga.login("olga")
    assert 'id="field-shared"' in text_of(olga.get("/response-templates"))
    assert olga.post("/response-templates", {"name": "Restart first", "body": "Please restart, then reply here.",
                                             "shared": "1"}).status_code == 303
    assert olga.post("/response-templates", {"name": "Change plan", "kind": "change", "shared": "1",
                                             "body": "The plan of {{number}} is attached."}).status_code == 303
    assert [(name, owner) for name, _, owner in templates(services)][1:] == [("Restart first", None),
                                                                             ("Change plan", None)]

    # the record's comment box offers those for incidents, the desk's marked
    record = text_of(agent.get(f"/tickets/{number}"))
    assert options(record) == ["Restart first · the desk's", "We are on it"]
    mine = next(r.id for r in services.session.scalars(select(ResponseTemplate)) if r.name == "We are on it")
    form = {**form_of(record, "comment-form"), "body": "Thanks for the photo.", "response": str(mine)}
    inserted = agent.post(f"/tickets/{number}/comments/template", form)
    back = refused_to(agent, inserted, f"/tickets/{number}#comment-form")
    expected = (f"Thanks for the photo.\n\nHello {services.users.get_by_username('rita').display_name}, "
                f"{alex.display_name} is working on {number} (Printer jams on every page).")
    composed = form_of(back, "comment-form")
    assert composed["body"].strip() == expected and composed["response"] == str(mine)
    assert field_error(back, "comment-body") is None
    assert services.session.scalars(select(TicketComment)).all() == []  # nothing sent yet

    # sending the form as the page shows it adds the comment once
    sent = agent.post(f"/tickets/{number}/comments", composed)
    assert sent.status_code in (302, 303)
    services.session.expire_all()
    [comment] = services.session.scalars(select(TicketComment)).all()
    assert comment.body == expected


def test_a_template_gone_or_for_another_kind_is_said_beside_the_comment_and_the_typing_stays(web_factory: Any,
                                                                                             desk: Any,
                                                                                             services: Any) -> None:
    number = open_incident(desk)
    agent = web_factory()
    agent.login("alex")
    agent.post("/response-templates", {"name": "Plan", "kind": "change", "body": "Plan of {{number}}"})
    [plan] = services.session.scalars(select(ResponseTemplate)).all()
    form = {**form_of(text_of(agent.get(f"/tickets/{number}")), "comment-form"), "body": "Mine", "response": str(plan.id)}
    back = refused_to(agent, agent.post(f"/tickets/{number}/comments/template", form), f"/tickets/{number}#comment-form")
    assert field_error(back, "comment-body") == "That template is for another kind of record."
    assert form_of(back, "comment-form")["body"].strip() == "Mine"
    for gone in ("999999", "not-a-number"):
        back = refused_to(agent, agent.post(f"/tickets/{number}/comments/template", {**form, "response": gone}),
                          f"/tickets/{number}#comment-form")
        assert field_error(back, "comment-body") == "That template is no longer there: choose another."
    # another agent's own template is as gone as an unknown one
    nina = web_factory()
    nina.login("nina")
    nina_form = {**form_of(text_of(nina.get(f"/tickets/{number}")), "comment-form"), "response": str(plan.id)}
    back = refused_to(nina, nina.post(f"/tickets/{number}/comments/template", nina_form),
                      f"/tickets/{number}#comment-form")
    assert field_error(back, "comment-body") == "That template is no longer there: choose another."
    # an unknown record is the 404 page
    assert agent.post("/tickets/INC-999999/comments/template", form).status_code == 404


def test_edits_a_stale_edit_the_desks_templates_and_deleting(web_factory: Any, desk: Any, services: Any) -> None:
    olga = web_factory()
    olga.login("olga")
    olga.post("/response-templates", {"name": "Known issue", "body": "A known issue.", "shared": "1"})
    [row] = services.session.scalars(select(ResponseTemplate)).all()
    first = text_of(olga.get(f"/response-templates/{row.id}"))
    form = form_of(first, "template-form")
    assert form["version"] == "1" and "shared" not in form  # the desk's stays the desk's: no box
    other = web_factory()
    other.login("ada")
    # ada renames it meanwhile (her form sends only what she changed)
    assert other.post(f"/response-templates/{row.id}", {**form, "name": "Known VPN issue"}).status_code == 303
    # olga sends her edit of the text written over version 1: refused, the page shows version 2
    # with ada's name, her text kept over it
    stale = olga.post(f"/response-templates/{row.id}", {**form, "body": "A known issue; restart."})
    shown = refused_to(olga, stale, f"/response-templates/{row.id}")
    assert "Someone changed this template while you edited it" in field_error(shown, "body")
    again = form_of(shown, "template-form")
    assert again["version"] == "2" and again["body"].strip() == "A known issue; restart."
    assert again["name"] == "Known VPN issue"
    assert templates(services)[0][:2] == ("Known VPN issue", "A known issue.")
    # sent again, her text replaces the old one and ada's name stays
    assert olga.post(f"/response-templates/{row.id}", again).status_code == 303
    assert templates(services)[0][:2] == ("Known VPN issue", "A known issue; restart.")
    # a form sent again as it was shown changes nothing: no new version
    unchanged = form_of(text_of(olga.get(f"/response-templates/{row.id}")), "template-form")
    assert olga.post(f"/response-templates/{row.id}", unchanged).status_code == 303
    services.session.expire_all()
    assert services.session.get(ResponseTemplate, row.id).version == 3

    # an agent reads the desk's template and may not change it
    agent = web_factory()
    agent.login("nina")
    page = text_of(agent.get(f"/response-templates/{row.id}"))
    assert 'id="template-form"' not in page and element(page, "template-text") == "A known issue; restart."
    assert agent.post(f"/response-templates/{row.id}", {**again, "version": "3"}).status_code == 403
    assert agent.post(f"/response-templates/{row.id}/delete").status_code == 403
    # her own: she deletes it; another's own is not found
    agent.post("/response-templates", {"name": "Mine", "body": "Mine."})
    mine = next(r.id for r in services.session.scalars(select(ResponseTemplate)) if r.name == "Mine")
    assert olga.get(f"/response-templates/{mine}").status_code == 404
    # ... and deleting it says what deleting a gone one says, and deletes nothing
    assert "The template was deleted already." in text_of(
        olga.post(f"/response-templates/{mine}/delete", follow_redirects=True))
    assert "Mine" in [name for name, *_ in templates(services)]
    assert agent.post(f"/response-templates/{mine}/delete").status_code == 303
    assert [name for name, *_ in templates(services)] == ["Known VPN issue"]
    assert "The template was deleted already." in text_of(
        agent.post(f"/response-templates/{mine}/delete", follow_redirects=True))


def test_a_requester_has_no_templates_and_every_form_needs_its_csrf_token(web_factory: Any, desk: Any,
                                                                        services: Any) -> None:
    number = open_incident(desk)
    agent = web_factory()
    agent.login("alex")
    agent.post("/response-templates", ON_IT)
    [row] = services.session.scalars(select(ResponseTemplate)).all()
    requester = web_factory()
    requester.login("rita")
    assert 'id="response-insert"' not in text_of(requester.get(f"/tickets/{number}"))
    assert 'id="response-templates"' not in text_of(requester.get("/account"))
    assert requester.get("/response-templates").status_code == 403
    assert requester.post("/response-templates", ON_IT).status_code == 403
    assert requester.post(f"/tickets/{number}/comments/template", {"body": "", "response": str(row.id)}).status_code == 403
    # without the session's token nothing is read or written
    for url in ("/response-templates", f"/response-templates/{row.id}", f"/response-templates/{row.id}/delete",
                f"/tickets/{number}/comments/template"):
        assert agent.post(url, {**ON_IT, "response": str(row.id), "version": "1"}, csrf=False).status_code in (400, 403)
    assert len(templates(services)) == 1 and templates(services)[0][1] == ON_IT["body"]


def test_the_pages_speak_chinese(web_factory: Any, desk: Any) -> None:
    agent = web_factory()
    agent.login("alex")
    agent.post("/language", {"lang": "zh_CN", "next": "/"})
    page = text_of(agent.get("/response-templates"))
    assert "<h1>回复模板</h1>" in page and "所有类型的记录" in page
    shown = refused_to(agent, agent.post("/response-templates", {"name": "x", "body": "{{nope}}"}),
                       "/response-templates#new-template")
    assert field_error(shown, "body", ).startswith("包含未知的占位符 {{nope}}")


def test_a_template_too_long_to_carry_in_the_cookie_is_inserted_in_place_and_stays_chosen(
        web_factory: Any, desk: Any, services: Any) -> None:
    number = open_incident(desk)
    agent = web_factory()
    agent.login("alex")
    # 3,900 characters that do not compress away: far more than the session cookie carries
    long_text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3900))
    agent.post("/response-templates", {"name": "A", "body": "Short."})
    agent.post("/response-templates", {"name": "B", "body": long_text})
    chosen = next(r.id for r in services.session.scalars(select(ResponseTemplate)) if r.name == "B")
    form = {**form_of(text_of(agent.get(f"/tickets/{number}")), "comment-form"), "response": str(chosen)}
    page = agent.post(f"/tickets/{number}/comments/template", form)
    assert page.status_code == 200  # the page itself, not a redirect
    shown = form_of(text_of(page), "comment-form")
    assert shown["body"].strip() == long_text and shown["response"] == str(chosen)
