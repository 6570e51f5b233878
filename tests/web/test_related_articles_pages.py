"""The incident's start page offers knowledge articles as the requester types the title
(``"ui:suggestArticles"`` in forms/incident_management.start.ui.json, js/as-you-type.js):
the page holds the panel, ``/knowledge/related`` answers the script, the API answers other clients."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import INCIDENT, text_of


def published(services: Any) -> tuple[str, str]:
    vpn = services.knowledge.publish(None, title="VPN drops every few minutes", symptoms="",
                                     cause="", workaround="Install the new VPN profile.", source=None)
    other = services.knowledge.publish(None, title="Printer jams", symptoms="", cause="", workaround="", source=None)
    services.session.commit()
    return str(vpn.number), str(other.number)


def test_the_incident_title_has_the_panel_and_other_fields_do_not(web, web_factory, desk):
    web.login("rita")
    page = text_of(web.get("/start/incident_management"))
    assert ('id="f-title-articles" data-articles-for="f-title" data-articles="/knowledge/related"' in page
            and "Articles that may help" in page and "js/as-you-type.js" in page)
    assert page.count("data-articles-for=") == 1
    web.post("/language", {"lang": "zh_CN"})
    assert "可能有帮助的文章" in text_of(web.get("/start/incident_management"))
    paul = web_factory()
    paul.login("paul")
    assert "data-articles-for" not in text_of(paul.get("/start/problem_management"))


def test_the_script_gets_the_published_articles_the_words_name(web, web_factory, desk, services):
    vpn, _printer = published(services)
    web.login("rita")
    answer = web.get("/knowledge/related?q=my+vpn+keeps+dropping")
    assert answer.status_code == 200
    assert answer.get_json() == {"items": [{"number": vpn, "title": "VPN drops every few minutes",
                                            "url": f"/knowledge/{vpn}"}]}
    assert web.get("/knowledge/related?q=").get_json() == {"items": []}
    assert web.get("/knowledge/related").get_json() == {"items": []}
    signed_out = web_factory().get("/knowledge/related?q=vpn", headers={"Accept": "application/json"})
    assert signed_out.status_code == 401 and signed_out.get_json()["error"] == "signed_out"


def test_the_api_answers_them_as_articles(desk, services):
    vpn, printer = published(services)
    answer = desk.client.get("/api/v1/knowledge/related?q=Printer+jamming+again", headers=desk.auth("rita"))
    assert answer.status_code == 200, answer.get_json()
    [found] = answer.get_json()["items"]
    assert (found["number"], found["title"], found["status"]) == (printer, "Printer jams", "published")
    assert desk.client.get("/api/v1/knowledge/related?q=vpn", headers={}).status_code == 401
    too_long = desk.client.get("/api/v1/knowledge/related?q=" + "x" * 501, headers=desk.auth("rita"))
    assert too_long.status_code == 422 and "q" in str(too_long.get_json()["details"])
    assert vpn not in str(answer.get_json())


def test_the_staff_attach_a_suggested_article_to_a_record_with_one_click(web, web_factory, desk, services):
    vpn, printer = published(services)
    number = desk.start("rita", "incident_management", {**INCIDENT, "title": "VPN keeps dropping at home"})[
        "data"]["record_number"]
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    assert 'id="suggested-articles"' in page and f'<input type="hidden" name="other" value="{vpn}">' in page
    assert printer not in page
    attached = web.post(f"/tickets/{number}/links", {"other": vpn, "link_type": "related"})
    assert attached.status_code == 302
    assert desk.record(number)["details"]["knowledge_articles"] == [vpn]
    page = text_of(web.get(f"/tickets/{number}"))
    assert f"Knowledge article {vpn} is attached." in page
    assert 'id="suggested-articles"' not in page and f'href="/knowledge/{vpn}"' in page  # listed, no longer offered
    # the requester reads the record, attaches nothing, and is offered nothing to attach
    rita = web_factory()
    rita.login("rita")
    assert 'id="suggested-articles"' not in text_of(rita.get(f"/tickets/{number}"))


def test_a_reader_says_whether_an_article_helped_and_the_staff_see_the_counts(web, web_factory, desk, services):
    vpn, _printer = published(services)
    web.login("rita")
    page = text_of(web.get(f"/knowledge/{vpn}"))
    assert "Was this article helpful?" in page and 'id="kb-my-feedback"' not in page
    assert 'id="kb-feedback-counts"' not in page  # the counts are the staff's
    answered = web.post(f"/knowledge/{vpn}/feedback", {"helpful": "no"})
    assert answered.status_code == 302 and answered.headers["Location"].endswith(f"/knowledge/{vpn}#kb-feedback")
    page = text_of(web.get(f"/knowledge/{vpn}"))
    assert "You said it did not help." in page and 'value="no" aria-pressed="true"' in page
    web.post(f"/knowledge/{vpn}/feedback", {"helpful": "yes"})  # she changes her mind
    assert "You said it helped. Thank you." in text_of(web.get(f"/knowledge/{vpn}"))
    assert "Choose whether the article helped." in text_of(
        web.client.get(web.post(f"/knowledge/{vpn}/feedback", {"helpful": "maybe"}).headers["Location"]))
    assert web.post(f"/knowledge/{vpn}/feedback", {"helpful": "yes"}, csrf=False).status_code == 403
    alex = web_factory()
    alex.login("alex")
    alex.post(f"/knowledge/{vpn}/feedback", {"helpful": "no"})
    assert "Readers' answers: helped 1, did not help 1." in text_of(alex.get(f"/knowledge/{vpn}"))
    alex.post("/language", {"lang": "zh_CN"})
    assert "读者反馈：有帮助 1，没有帮助 1。" in text_of(alex.get(f"/knowledge/{vpn}"))


def test_the_api_takes_an_answer_and_shows_the_counts(desk, services):
    vpn, _printer = published(services)

    def answer(who: str, body: Any) -> Any:
        return desk.client.post(f"/api/v1/knowledge/{vpn}/feedback", headers=desk.auth(who), json=body)

    assert answer("rita", {"helpful": True}).get_json() == {
        "number": vpn, "helpful_count": 1, "not_helpful_count": 0, "my_feedback": True}
    assert answer("mona", {"helpful": False}).get_json()["not_helpful_count"] == 1
    refused = answer("rita", {"helpful": "yes"})
    assert refused.status_code == 422 and "helpful" in str(refused.get_json()["details"])
    assert answer("rita", {}).status_code == 422
    assert desk.client.post("/api/v1/knowledge/KB-999999/feedback", headers=desk.auth("rita"),
                            json={"helpful": True}).status_code == 404
    article = desk.client.get(f"/api/v1/knowledge/{vpn}", headers=desk.auth("mona")).get_json()
    assert (article["helpful_count"], article["not_helpful_count"], article["my_feedback"]) == (1, 1, False)


def test_the_staff_order_the_list_by_the_answers_and_see_them(web, web_factory, desk, services):
    vpn, printer = published(services)
    for who in ("rita", "mona"):
        desk.client.post(f"/api/v1/knowledge/{printer}/feedback", headers=desk.auth(who), json={"helpful": False})
    web.login("alex")
    page = text_of(web.get("/knowledge?sort=least_helpful"))
    assert page.index(f'id="kb-{printer}"') < page.index(f'id="kb-{vpn}"')
    assert "Readers' answers: helped 0, did not help 2." in page and '<option value="least_helpful" selected>' in page
    page = text_of(web.get("/knowledge?sort=most_helpful"))
    assert page.index(f'id="kb-{vpn}"') < page.index(f'id="kb-{printer}"')
    # requesters find articles, not the staff's figures or order
    rita = web_factory()
    rita.login("rita")
    page = text_of(rita.get("/knowledge?sort=least_helpful"))
    assert "Readers' answers" not in page and 'id="kb-sort"' not in page
    api = desk.client.get("/api/v1/knowledge?sort=least_helpful", headers=desk.auth("rita")).get_json()
    assert [a["number"] for a in api["items"]][0] == printer
    assert desk.client.get("/api/v1/knowledge?sort=best", headers=desk.auth("rita")).status_code == 422


def test_an_auditor_reads_an_article_without_the_question(web, desk, services):
    vpn, _printer = published(services)
    web.login("aude")
    assert "Was this article helpful?" not in text_of(web.get(f"/knowledge/{vpn}"))
    refused = web.post(f"/knowledge/{vpn}/feedback", {"helpful": "yes"})
    assert "an auditor reads the knowledge base and answers nothing" in text_of(web.client.get(refused.headers["Location"]))
    article = desk.client.get(f"/api/v1/knowledge/{vpn}", headers=desk.auth("aude")).get_json()
    assert article["helpful_count"] == 0
    assert desk.client.post(f"/api/v1/knowledge/{vpn}/feedback", headers=desk.auth("aude"),
                            json={"helpful": True}).status_code == 403


def test_a_scripts_read_leaves_the_session_cookie_as_it_is(web, desk, services):
    """A suggestion fetched while the user sends the form must not answer with the session from
    before the form: it would put it back in the browser, and lose the form's message."""
    published(services)
    web.login("rita")
    read = web.get("/knowledge/related?q=vpn", headers={"Accept": "application/json"})
    assert read.status_code == 200 and "Set-Cookie" not in read.headers
    page = web.get("/start/incident_management")
    assert page.status_code == 200 and "Set-Cookie" in page.headers  # a page keeps the session alive
