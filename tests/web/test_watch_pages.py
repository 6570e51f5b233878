"""The record page's Watchers panel: who follows the record, a button to watch it or stop, and the
desk's staff taking someone off; a reporter who stops watching leaves the record."""

from __future__ import annotations

from tests.http.test_close_as_duplicate import close, incident
from tests.web.conftest import text_of
from tests.web.test_out_of_office_pages import element


def test_an_agent_watches_from_the_record_page_and_stops(web, desk, services):
    number = incident(desk)
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    assert element(page, "no-watchers") == "Nobody watches this record."
    assert f'action="/tickets/{number}/watch"' in page
    answer = web.post(f"/tickets/{number}/watch")
    assert answer.status_code == 302 and answer.headers["Location"] == f"/tickets/{number}#watchers"
    after = text_of(web.get(f"/tickets/{number}"))
    assert f"You watch {number}: its comments, resolution and closing reach you." in after
    assert "alex (you)" in element(after, "watchers") and "Stop watching" in element(after, "watch-form")
    assert web.post(f"/tickets/{number}/unwatch").status_code == 302
    again = text_of(web.get(f"/tickets/{number}"))
    assert f"You no longer watch {number}." in again and "Watch this record" in element(again, "watch-form")
    assert web.post(f"/tickets/{number}/watch", csrf=False).status_code == 403


def test_the_desk_takes_a_watcher_off_and_a_requester_may_not(web, web_factory, desk, services):
    number = incident(desk)
    assert desk.client.put(f"/api/v1/tickets/{number}/watchers/me", headers=desk.auth("alex")).status_code == 200
    rita = web_factory()
    rita.login("rita")
    page = text_of(rita.get(f"/tickets/{number}"))
    assert "alex" not in element(page, "watchers") and element(page, "other-watchers") == "Others watching: 1"
    assert 'id="watch-form"' not in page and "/watchers/alex/remove" not in page  # she hears her own news
    assert rita.post(f"/tickets/{number}/watchers/alex/remove").status_code == 302
    assert "only the service desk takes other people off" in text_of(rita.get(f"/tickets/{number}"))
    web.login("nina")
    assert f'action="/tickets/{number}/watchers/alex/remove"' in text_of(web.get(f"/tickets/{number}"))
    assert web.post(f"/tickets/{number}/watchers/alex/remove").status_code == 302
    after = text_of(web.get(f"/tickets/{number}"))
    assert f"alex no longer watches {number}." in after and element(after, "no-watchers")
    assert web.post(f"/tickets/{number}/watchers/ghost/remove").status_code == 302
    assert f"ghost does not watch {number}." in text_of(web.get(f"/tickets/{number}"))


def test_a_reporter_who_stops_watching_is_taken_to_the_list(web, desk):
    first, second = incident(desk), incident(desk, "mona")
    assert close(desk, second, first).status_code == 200
    web.login("mona")
    assert "mona (you)" in element(text_of(web.get(f"/tickets/{first}")), "watchers")
    answer = web.post(f"/tickets/{first}/unwatch")
    assert answer.status_code == 302 and answer.headers["Location"] == "/tickets"
    assert web.get(f"/tickets/{first}").status_code == 404


def test_an_auditor_reads_the_watchers_but_is_offered_no_button(web, desk):
    number = incident(desk)
    web.login("aude")
    page = text_of(web.get(f"/tickets/{number}"))
    assert 'id="watchers"' in page and 'id="watch-form"' not in page
    assert web.post(f"/tickets/{number}/watch").status_code == 302
    assert "auditors read records but do not change them" in text_of(web.get(f"/tickets/{number}"))


def test_a_requester_may_not_choose_to_watch(web, desk):
    number = incident(desk)
    web.login("rita")
    assert web.post(f"/tickets/{number}/watch").status_code == 302
    assert "only the desk&#39;s staff choose to watch records" in text_of(web.get(f"/tickets/{number}"))
