"""The account page's language form: the user's language for the pages and for the notifications
they are sent (``User.locale``), or none (the pages follow the browser); another value is refused
beside the field; the form needs its CSRF token."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.models import AuditEvent
from tests.web.conftest import text_of


def test_the_account_page_sets_and_clears_the_users_language(web, web_factory, desk, services):
    rita = services.users.get_by_username("rita")
    web.login("rita")
    page = text_of(web.get("/account", headers={"Accept-Language": "en"}))
    assert 'action="/account/language"' in page and re.search(r'<option value="" selected>', page)
    assert "notifications come in English" in page  # the site's default, named

    assert web.post("/account/language", {"locale": "zh_CN"}, csrf=False).status_code == 403
    services.session.refresh(rita)
    assert rita.locale is None

    done = web.post("/account/language", {"locale": "zh_CN"})
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    services.session.refresh(rita)
    assert rita.locale == "zh_CN"
    page = text_of(web.get("/account", headers={"Accept-Language": "en"}))  # this browser: at once
    assert '<html lang="zh-CN">' in page and "您的语言已保存。" in page
    assert re.search(r'<option value="zh_CN" lang="zh-CN" selected>', page)
    other = web_factory()  # another browser: from the next sign-in
    other.login("rita")
    assert '<html lang="zh-CN">' in text_of(other.get("/", headers={"Accept-Language": "en"}))
    events = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "user_locale_changed")).all()
    assert [(e.actor, e.payload) for e in events] == [("rita", {"locale": "zh_CN"})]

    assert web.post("/account/language", {"locale": ""}).status_code == 302
    services.session.refresh(rita)
    assert rita.locale is None
    assert '<html lang="en">' in text_of(web.get("/account", headers={"Accept-Language": "en"}))


def test_a_language_not_offered_is_refused_beside_the_field(web, desk, services):
    web.login("rita")
    refused = web.post("/account/language", {"locale": "fr"})
    # answered with a redirect to the page (Post/Redirect/Get), which says why once
    assert refused.status_code == 303 and refused.headers["Location"] == "/account#language-form"
    page = text_of(web.get("/account"))
    assert re.search(r'<p class="field-error" id="locale-error">.*Choose one of the languages offered\.', page)
    assert 'aria-describedby="locale-error"' in page
    assert 'id="locale-error"' not in text_of(web.get("/account"))
    services.session.refresh(services.users.get_by_username("rita"))
    assert services.users.get_by_username("rita").locale is None


def test_the_language_form_is_in_chinese_for_chinese_readers(web, desk):
    web.login("rita")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get("/account"))
    assert "您的语言" in page and "未选择：跟随浏览器" in page and "通知使用 English" in page


def test_a_browser_asking_for_no_language_the_desk_speaks_gets_the_sites_default(web, app):
    assert '<html lang="en">' in text_of(web.get("/login", headers={"Accept-Language": "fr-FR"}))
    app.config["DEFAULT_LANGUAGE"] = "zh_CN"
    assert '<html lang="zh-CN">' in text_of(web.get("/login", headers={"Accept-Language": "fr-FR"}))
    assert '<html lang="zh-CN">' in text_of(web.get("/login"))  # none asked for
    assert '<html lang="en">' in text_of(web.get("/login", headers={"Accept-Language": "en-GB"}))  # asked: kept
