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
