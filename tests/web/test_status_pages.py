"""Service status on the pages: an agent posts an outage on /status/new (refused fields shown
beside them, nothing stored), the home page, the catalog and the incident form show it above
their content, a requester says it affects her, the agent updates and resolves it (a stale update
is refused with the typing kept), and who is not of the desk's staff may not post."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import func, select

from app.models import Notification, StatusAffected, StatusNotice
from tests.web.conftest import WebClient, refused_to, text_of
from tests.web.test_out_of_office_pages import element, field_error


def post_notice(web: WebClient, **fields: str) -> Any:
    return web.post("/status/new", {"title": "E-mail is down", "level": "outage",
                                    "body": "Nobody can send or receive mail.", "service": "E-mail", **fields})


class _FormReader(HTMLParser):
    """What a browser would send from the form with id ``form_id`` as the page shows it."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.values = form_id, False, {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif not self.inside:
            return
        elif tag == "input" and a.get("name"):
            self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.values[self._textarea or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self.inside and self._textarea:
            self.values[self._textarea] += data


def form_on(page: str, form_id: str) -> dict[str, str]:
    reader = _FormReader(form_id)
    reader.feed(page)
    return reader.values


def notices(services: Any) -> int:
    services.session.expire_all()
    return int(services.session.scalar(select(func.count()).select_from(StatusNotice)) or 0)


def test_an_outage_posted_shows_on_the_pages_and_the_affected_hear_of_its_end(web_factory: Any, desk: Any,
                                                                               services: Any, clock: Any) -> None:
    agent = web_factory()
    agent.login("alex")
    number = desk.start("rita", "incident_management", {
        "title": "Mail bounces", "description": "All of it", "category": "software", "impact": "high",
        "urgency": "high", "service": "E-mail", "ci": "mail-01"})["data"]["record_number"]
    sent = post_notice(agent, record=number,
                       expected_end_at=(clock.now() + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"))
    assert sent.status_code == 303, text_of(sent)[:400]
    page = text_of(agent.get(sent.headers["Location"]))
    assert "E-mail is down" in page and element(page, "notice-state") == "Now"
    assert element(page, "notice-record") == number

    rita = web_factory()
    rita.login("rita")
    for url in ("/", "/catalog", "/start/incident_management"):
        banner = element(text_of(rita.get(url)), "status-banner")
        assert "Outage" in banner and "E-mail is down" in banner, url
    board = text_of(rita.get("/status"))
    assert "Nobody can send or receive mail." in element(board, "current")
    assert 'id="post-notice"' not in board  # a requester posts nothing
    notice_url = sent.headers["Location"]
    said = rita.post(notice_url + "/affected", {"affected": "1"})
    assert said.status_code == 303
    page = text_of(rita.get(notice_url))
    assert 'id="not-affected"' in page and element(page, "notice-affected").endswith(": 1")
    assert 'id="update-form"' not in page

    clock.advance(timedelta(minutes=30))
    version = services.session.scalar(select(StatusNotice.version))
    done = agent.post(notice_url + "/resolve", {"version": str(version), "resolution": "The relay's disk was full."})
    assert done.status_code == 303
    assert element(text_of(rita.get(notice_url)), "notice-state") == "Resolved"
    assert 'id="status-banner"' not in text_of(rita.get("/")) and 'id="status-quiet"' in text_of(rita.get("/"))
    services.session.expire_all()
    told = services.session.scalars(select(Notification.subject).where(
        Notification.user_id == desk.services.users.get_by_username("rita").id)).all()
    assert "Resolved: E-mail is down" in told


def test_a_refused_notice_shows_each_problem_beside_its_field_and_stores_nothing(web: WebClient, desk: Any,
                                                                                 services: Any) -> None:
    web.login("alex")
    before = notices(services)
    sent = post_notice(web, starts_at="next tuesday")
    page = refused_to(web, sent, "/status/new")
    assert "YYYY-MM-DD" in (field_error(page, "starts_at") or "")
    assert notices(services) == before
    sent = post_notice(web, title="", record="INC-424242", level="meltdown")
    page = refused_to(web, sent, "/status/new")
    assert field_error(page, "title") == "is required"
    assert field_error(page, "record") == "is not a record you may read"
    assert field_error(page, "level") == "must be one of outage, degraded, maintenance, info"
    assert 'value="E-mail"' in page  # what was typed is kept
    assert notices(services) == before


def test_a_stale_update_is_refused_with_the_typing_kept(web_factory: Any, desk: Any, services: Any) -> None:
    alex, nina = web_factory(), web_factory()
    alex.login("alex")
    nina.login("nina")
    notice_url = post_notice(alex).headers["Location"]
    assert nina.post(notice_url + "/update", {"version": "1", "body": "The relay is back.", "level": "degraded",
                                              "title": "E-mail is slow"}).status_code == 303
    stale = alex.post(notice_url + "/update", {"version": "1", "body": "Still looking.", "level": "outage",
                                               "title": "E-mail is down"})
    page = refused_to(alex, stale, notice_url + "#update")
    assert "Someone updated this notice" in (field_error(page, "body") or "")
    assert ">Still looking.</textarea>" in page and "The relay is back." in element(page, "timeline")
    services.session.expire_all()
    notice = services.session.scalars(select(StatusNotice)).one()
    assert (notice.version, notice.level, notice.title) == (2, "degraded", "E-mail is slow")


def test_an_update_sent_over_anothers_changes_only_what_its_author_changed(web_factory: Any, desk: Any,
                                                                             services: Any) -> None:
    """Both agents read the notice at version 1; nina lowers the level and sets an estimate, alex
    (not having seen it) adds words and a new title. Refused, alex's page shows the notice as nina
    left it with alex's words and title kept; sent again as shown, nina's level and estimate stay."""
    alex, nina = web_factory(), web_factory()
    alex.login("alex")
    nina.login("nina")
    notice_url = post_notice(alex).headers["Location"]
    seen_by_alex = form_on(text_of(alex.get(notice_url)), "update-form")
    seen_by_nina = form_on(text_of(nina.get(notice_url)), "update-form")
    assert seen_by_alex["shown_level"] == "outage" and seen_by_alex["level"] == "outage"
    nina_sent = {**seen_by_nina, "body": "The relay is back.", "level": "degraded",
                 "expected_end_at": "2030-01-01 18:00"}
    assert nina.post(notice_url + "/update", nina_sent).status_code == 303

    stale = alex.post(notice_url + "/update", {**seen_by_alex, "body": "Still looking.", "title": "E-mail is down for all"})
    page = refused_to(alex, stale, notice_url + "#update")
    again = form_on(page, "update-form")
    assert again["version"] == "2" and again["body"] == "Still looking."
    assert (again["title"], again["level"], again["expected_end_at"]) == ("E-mail is down for all", "degraded",
                                                                          "2030-01-01 18:00")
    assert alex.post(notice_url + "/update", again).status_code == 303
    services.session.expire_all()
    notice = services.session.scalars(select(StatusNotice)).one()
    assert (notice.version, notice.level, notice.title) == (3, "degraded", "E-mail is down for all")
    assert notice.expected_end_at is not None and notice.expected_end_at.strftime("%Y-%m-%d %H:%M") == "2030-01-01 18:00"

    # a form that says nothing of what it showed (a script's) still sets what it sends, and an
    # emptied estimate clears it
    assert alex.post(notice_url + "/update", {"version": "3", "body": "No estimate now.", "level": "outage",
                                              "title": "E-mail is down", "expected_end_at": ""}).status_code == 303
    services.session.expire_all()
    notice = services.session.scalars(select(StatusNotice)).one()
    assert (notice.version, notice.level, notice.expected_end_at) == (4, "outage", None)


def test_an_update_refused_because_the_notice_was_resolved_says_so(web_factory: Any, desk: Any,
                                                                    services: Any) -> None:
    alex, nina = web_factory(), web_factory()
    alex.login("alex")
    nina.login("nina")
    notice_url = post_notice(alex).headers["Location"]
    seen = form_on(text_of(alex.get(notice_url)), "update-form")
    assert nina.post(notice_url + "/resolve", {"version": "1", "resolution": "Fixed."}).status_code == 303
    late = alex.post(notice_url + "/update", {**seen, "body": "Still looking."})
    assert late.status_code == 303 and late.headers["Location"].endswith(notice_url)
    page = text_of(alex.get(notice_url))
    assert "The notice is resolved: post a new one." in page and 'id="update-form"' not in page
    services.session.expire_all()
    assert services.session.scalars(select(StatusNotice)).one().version == 2


def test_only_the_desks_staff_post(web: WebClient, desk: Any, services: Any) -> None:
    web.login("rita")
    assert web.get("/status/new").status_code == 403
    assert post_notice(web).status_code == 403
    assert notices(services) == 0


def test_the_pages_speak_chinese(web: WebClient, desk: Any, services: Any) -> None:
    web.login("alex")
    post_notice(web)
    web.post("/language", {"lang": "zh_CN", "next": "/status"})
    page = text_of(web.get("/status"))
    assert "服务状态" in page and "服务中断" in page
    assert "服务中断" in element(text_of(web.get("/")), "status-banner")


def announce_link(page: str) -> str:
    match = re.search(r'<a href="([^"]+)" id="post-record-notice"', page)
    assert match, "no link to announce the record"
    return html.unescape(match.group(1))


def test_a_record_page_lists_its_notices_and_lets_the_desk_announce_it(web_factory: Any, desk: Any,
                                                                        services: Any) -> None:
    from tests.web.test_start_rights import CHANGE

    agent = web_factory()
    agent.login("alex")
    incident = desk.start("rita", "incident_management", {
        "title": "Mail bounces", "description": "All of it", "category": "software", "impact": "high",
        "urgency": "high", "service": "E-mail"})["data"]["record_number"]
    page = text_of(agent.get(f"/tickets/{incident}"))
    assert 'id="record-status"' not in page  # nothing posted about it yet
    link = announce_link(page)
    assert link.startswith("/status/new?") and f"record={incident}" in link and "level=outage" in link
    form = text_of(agent.get(link))
    assert f'value="{incident}"' in form and 'value="E-mail"' in form
    # the record's title is not put where everyone reads it, and the page says who reads what
    assert 'value="Mail bounces"' not in form and 'id="record-private"' in form
    assert '<option value="outage" selected>' in form

    sent = post_notice(agent, record=incident, title="Mail bounces")
    assert sent.status_code == 303
    rita = web_factory()
    rita.login("rita")
    page = text_of(rita.get(f"/tickets/{incident}"))
    assert "Mail bounces" in element(page, "record-status") and "Now" in element(page, "record-status")
    assert 'id="post-record-notice"' not in page  # a requester announces nothing

    # a change's window is announced as planned maintenance in that window
    change = desk.start("alex", "change_enablement", CHANGE)["data"]["record_number"]
    link = announce_link(text_of(agent.get(f"/tickets/{change}")))
    form = text_of(agent.get(link))
    assert '<option value="maintenance" selected>' in form
    assert 'value="2026-03-10 20:00"' in form and 'value="2026-03-10 22:00"' in form
    # a link fills in the form's own fields only
    form = text_of(agent.get("/status/new?title=%3Cb%3Ex%3C%2Fb%3E&version=9&csrf_token=forged"))
    assert 'value="&lt;b&gt;x&lt;/b&gt;"' in form and 'value="forged"' not in form and 'value="9"' not in form


def test_a_requester_about_to_report_a_known_outage_follows_it_from_the_banner(web_factory: Any, desk: Any,
                                                                                services: Any) -> None:
    agent = web_factory()
    agent.login("alex")
    notice_url = post_notice(agent).headers["Location"]
    notice_id = int(notice_url.rsplit("/", 1)[1])
    rita = web_factory()
    rita.login("rita")
    start = "/start/incident_management"
    page = text_of(rita.get(start))
    assert f'id="banner-affects-{notice_id}"' in page and "you are told of it" not in element(page, "status-banner")
    # the way back keeps a search typed on the catalog
    assert re.search(rf'name="next" value="/catalog\?q=vpn">\s*<button[^>]*id="banner-affects-{notice_id}"',
                     text_of(rita.get("/catalog?q=vpn")))
    said = rita.post(f"/status/{notice_id}/affected", {"affected": "1", "next": start})
    assert said.status_code == 303 and said.headers["Location"].endswith(start)  # back to the form she was on
    page = text_of(rita.get(start))
    assert "you are told of it" in element(page, "status-banner") and f'id="banner-affects-{notice_id}"' not in page
    services.session.expire_all()
    assert services.session.scalar(select(func.count()).select_from(StatusAffected)) == 1
    # it goes back to a page of this site only
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\t/evil.example"):
        said = rita.post(f"/status/{notice_id}/affected", {"affected": "1", "next": elsewhere})
        assert said.status_code == 303 and said.headers["Location"].endswith(notice_url), elsewhere


def test_the_reports_show_each_services_announced_availability(web_factory: Any, desk: Any, clock: Any) -> None:
    agent = web_factory()
    agent.login("alex")
    began = (clock.now() - timedelta(minutes=45)).strftime("%Y-%m-%d %H:%M")
    notice_url = post_notice(agent, starts_at=began).headers["Location"]
    assert agent.post(notice_url + "/resolve", {"version": "1", "resolution": "Back."}).status_code == 303
    section = element(text_of(agent.get("/reports")), "report-availability")
    assert "E-mail" in section and "45" in section
    exported = text_of(agent.get("/reports.csv")).removeprefix("\ufeff")
    assert ["availability", "", "E-mail", "outage_minutes", "45"] in list(csv.reader(io.StringIO(exported)))
