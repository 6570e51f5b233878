"""The knowledge base pages: an agent writes a draft and publishes it, a requester finds it by
search and cannot see a draft; edits carry the version they were made on (a stale one comes back
with the input kept), errors stand beside their fields, texts are shown escaped, the staff see
the revision history, and an article from a problem shows the problem's status now."""

from __future__ import annotations

import os
import re
from typing import Any

from tests.web.conftest import text_of


def form_value(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} field"
    return match.group(1)


def write_draft(web: Any, **fields: str) -> str:
    response = web.post("/knowledge/new", {"title": "Printer PR-204 prints blank pages",
                                           "symptoms": "Pages come out empty.", "cause": "",
                                           "workaround": "Print to PR-205 next door.", **fields})
    assert response.status_code == 302, text_of(response)[:500]
    match = re.fullmatch(r"/knowledge/(KB-\d{6})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def test_an_agent_writes_and_publishes_a_requester_finds_it_but_no_draft(web_factory, desk):
    agent, requester = web_factory(), web_factory()
    agent.login("alex")
    requester.login("rita")

    # the list offers the staff a new article; the form is a CSRF-protected draft form
    listing = text_of(agent.get("/knowledge"))
    assert 'href="/knowledge/new"' in listing and 'aria-current="page">Knowledge<' in listing
    new_form = text_of(agent.get("/knowledge/new"))
    assert 'name="csrf_token"' in new_form and 'name="version"' not in new_form
    assert agent.post("/knowledge/new", {"title": "x"}, csrf=False).status_code == 403

    number = write_draft(agent)
    page = text_of(agent.get(f"/knowledge/{number}"))
    assert f"Draft {number} was saved." in page and "Printer PR-204 prints blank pages" in page
    assert 'id="kb-article-status">Draft<' in page and "This is the first version." in page

    # the requester: no draft by address or search, no new-article link or form
    assert requester.get(f"/knowledge/{number}").status_code == 404
    assert requester.get(f"/knowledge/{number}/edit").status_code == 404
    assert requester.get("/knowledge/new").status_code == 404
    assert requester.post(f"/knowledge/{number}/publish", {"version": "1"}).status_code == 404
    found = text_of(requester.get("/knowledge?q=printer"))
    assert number not in found and "No article matches your search." in found
    assert 'href="/knowledge/new"' not in text_of(requester.get("/knowledge"))
    assert number not in text_of(requester.get("/knowledge?q=printer&status=draft"))

    # published (a POST with CSRF and the version read), everyone finds it
    assert agent.post(f"/knowledge/{number}/publish", {"version": "1"}, csrf=False).status_code == 403
    published = agent.post(f"/knowledge/{number}/publish", {"version": form_value(page, "version")})
    assert published.status_code == 302
    assert f"{number} is published" in text_of(agent.get(published.headers["Location"]))
    found = text_of(requester.get("/knowledge?q=pr-204+blank"))
    assert "1 article found." in found and f'href="/knowledge/{number}"' in found
    article = text_of(requester.get(f"/knowledge/{number}"))
    assert "Print to PR-205 next door." in article and "Earlier versions" not in article
    for action in ("publish", "retire", "edit"):
        assert f"/knowledge/{number}/{action}" not in article
    assert requester.get(f"/knowledge/{number}/edit").status_code == 403

    # retired, it is gone for the requester again
    assert agent.post(f"/knowledge/{number}/retire", {"version": "1"}).status_code == 302
    assert requester.get(f"/knowledge/{number}").status_code == 404
    assert "Publish again" in text_of(agent.get(f"/knowledge/{number}"))
    assert number in text_of(agent.get("/knowledge?status=retired"))


def test_errors_stand_beside_their_fields_and_the_input_is_kept(web, desk):
    web.login("alex")
    refused = web.post("/knowledge/new", {"title": "  ", "symptoms": "<b>kept</b>", "cause": "Bad \u202edriver",
                                          "workaround": ""})
    # answered with a redirect to the form (Post/Redirect/Get), whose next rendering shows them once
    assert refused.status_code == 303 and refused.headers["Location"] == "/knowledge/new"
    page = text_of(web.get("/knowledge/new"))
    assert "The form has problems. Nothing was saved." in page
    assert re.search(r'id="kb-f-title-error">.*is required', page)
    assert re.search(r'id="kb-f-cause-error">.*bidirectional control characters \(U\+202E\)', page)
    assert "&lt;b&gt;kept&lt;/b&gt;</textarea>" in page and "<b>kept</b>" not in page
    assert 'value="Bad \u202edriver"' not in page and "Bad \u202edriver</textarea>" in page
    again = text_of(web.get("/knowledge/new"))
    assert "The form has problems." not in again and "kept" not in again  # once

    # in Chinese the same errors read in Chinese
    web.post("/language", {"lang": "zh_CN"})
    assert web.post("/knowledge/new", {"title": "", "symptoms": "", "cause": "", "workaround": ""}).status_code == 303
    chinese = text_of(web.get("/knowledge/new"))
    assert "为必填项" in chinese and "新文章" in chinese and "保存草稿" in chinese


def test_a_stale_edit_comes_back_with_the_input_kept_and_history_is_kept(web_factory, desk):
    alex, olga = web_factory(), web_factory()
    alex.login("alex")
    olga.login("olga")
    number = write_draft(alex, symptoms="<script>alert(1)</script> blank pages")
    alex_form = text_of(alex.get(f"/knowledge/{number}/edit"))
    olga_form = text_of(olga.get(f"/knowledge/{number}/edit"))
    assert form_value(alex_form, "version") == form_value(olga_form, "version") == "1"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in alex_form and "<script>alert(1)" not in alex_form

    saved = alex.post(f"/knowledge/{number}/edit", {"version": "1", "title": "Printer PR-204 prints blank pages",
                                                     "symptoms": "Blank pages.", "cause": "Empty toner.",
                                                     "workaround": "Print to PR-205.", "note": "cause found"})
    assert saved.status_code == 302
    stale = olga.post(f"/knowledge/{number}/edit", {"version": "1", "title": "Olga's title", "symptoms": "Olga's text",
                                                     "cause": "", "workaround": "", "note": ""})
    # sent back to the form, as a refusal is (Post/Redirect/Get): the text kept, the version now 2
    assert stale.status_code == 303 and stale.headers["Location"] == f"/knowledge/{number}/edit"
    page = text_of(olga.get(f"/knowledge/{number}/edit"))
    assert "Someone else saved version 2 of this article while you were editing." in page
    assert 'value="Olga&#39;s title"' in page and "Olga&#39;s text</textarea>" in page
    assert form_value(page, "version") == "2"  # saving again is a deliberate replacement of version 2
    assert "The form has problems." not in page
    reloaded = text_of(olga.get(f"/knowledge/{number}/edit"))  # once: then the article as it is
    assert "Someone else saved" not in reloaded and "Blank pages.</textarea>" in reloaded

    article = text_of(alex.get(f"/knowledge/{number}"))
    assert "Empty toner." in article and 'id="kb-article-version">Version 2<' in article
    assert re.search(r"Version 1, replaced by alex on [^<]+: <q class=\"kb-note\">cause found</q>", article)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; blank pages" in article  # the old text, escaped
    assert "<script>alert(1)" not in article


def test_an_article_from_a_problem_shows_the_problems_status_now(web, desk, services):
    problem = services.records.open_record("problem", "PRB-000077", services.users.get_by_username("alex"),
                                           {"title": "Mail relay drops large messages"})
    change = services.records.open_record("change", "CHG-000078", services.users.get_by_username("alex"),
                                          {"title": "Raise the size limit"})
    problem.status, change.status = "known_error", "scheduled"
    problem.details = {"fix_change": change.number}
    services.knowledge.publish(None, title="Known error: large mail", symptoms="Bounces over 10 MB", cause="",
                               workaround="Share a link instead.", source=problem)
    services.session.commit()
    web.login("alex")
    page = text_of(web.get("/knowledge/KB-000001"))
    assert "PRB-000077" in page and 'id="kb-source-status">Known error<' in page
    assert "CHG-000078" in page and "Scheduled" in page
    assert "Written by the problem process" in page
    # a requester reads the problem's number, not the problem or its change, which she may not open
    web.login("rita")
    page = text_of(web.get("/knowledge/KB-000001"))
    assert "PRB-000077" in page and 'id="kb-source-status"' not in page and "CHG-000078" not in page
    assert f'href="/tickets/{problem.number}"' not in page
    assert "From problem PRB-000077<" in text_of(web.get("/knowledge?q=large+mail"))  # the list says no status either

    problem.status = "closed"
    services.session.commit()
    web.login("alex")
    assert 'id="kb-source-status">Closed<' in text_of(web.get("/knowledge/KB-000001"))
    assert "(Closed)" in text_of(web.get("/knowledge?q=large+mail"))


def test_a_refused_edit_comes_back_once_on_its_own_form_with_the_version_it_was_sent_with(web, desk):
    web.login("alex")
    number = write_draft(web)
    other = write_draft(web, title="Scanner SC-1 jams")
    refused = web.post(f"/knowledge/{number}/edit", {"version": "1", "title": "T" * 501, "symptoms": "Kept text.",
                                                     "cause": "", "workaround": "", "note": "why"})
    assert refused.status_code == 303 and refused.headers["Location"] == f"/knowledge/{number}/edit"
    assert "Kept text." not in text_of(web.get(f"/knowledge/{other}/edit"))  # another article's form: not there
    page = text_of(web.get(f"/knowledge/{number}/edit"))
    assert re.search(r'id="kb-f-title-error">', page) and "Kept text.</textarea>" in page
    assert form_value(page, "version") == "1" and "Someone else saved" not in page
    again = text_of(web.get(f"/knowledge/{number}/edit"))
    assert 'id="kb-f-title-error"' not in again and "Pages come out empty.</textarea>" in again


def test_a_refused_form_too_large_for_the_session_cookie_is_answered_in_place(web, desk):
    """Text that does not compress (random letters) past the cookie's room: nothing is kept, the
    page answers 422 itself with the input, as before."""
    web.login("alex")
    long_text = os.urandom(3000).hex()  # 6,000 characters, within the article's limit
    refused = web.post("/knowledge/new", {"title": "", "symptoms": long_text, "cause": "", "workaround": ""})
    assert refused.status_code == 422
    assert long_text in text_of(refused) and re.search(r'id="kb-f-title-error">', text_of(refused))
    assert 'id="kb-f-title-error"' not in text_of(web.get("/knowledge/new"))  # nothing was kept for later
    number = write_draft(web)
    stale = web.post(f"/knowledge/{number}/edit", {"version": "7", "title": "Long", "symptoms": long_text,
                                                   "cause": "", "workaround": "", "note": ""})
    assert stale.status_code == 409 and long_text in text_of(stale)  # over version 1: answered in place too
    assert "Someone else saved version 1" in text_of(stale) and form_value(text_of(stale), "version") == "1"
