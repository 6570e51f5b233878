"""English and Simplified Chinese: chosen in the session, else from the browser; every string has
a translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.web.conftest import INCIDENT, text_of

WEB = Path(__file__).resolve().parents[2] / "app" / "web"


def test_the_browser_language_picks_chinese_and_the_switch_overrides_it(web, desk):
    page = text_of(web.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}))
    assert '<html lang="zh-CN">' in page and "用户名" in page and "登录" in page
    assert "<title>登录 · processdesk</title>" in page
    english = text_of(web.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    assert '<html lang="en">' in english and "Username" in english
    assert "用户名" in text_of(web.get("/login", headers={"Accept-Language": "zh-TW"}))
    assert "Username" in text_of(web.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"}))
    assert "用户名" in text_of(web.get("/login", headers={"Accept-Language": "zh-Hans-CN"}))

    switched = web.post("/language", {"lang": "en", "next": "/login"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/login"
    assert "Username" in text_of(web.get("/login", headers={"Accept-Language": "zh-CN"}))


def test_switching_to_chinese_translates_pages_flashes_and_form_errors(web, desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    web.login("nina")
    assert web.post("/language", {"lang": "zh_CN", "next": "/tasks?tab=queue"}).headers["Location"] == "/tasks?tab=queue"
    inbox = text_of(web.get("/tasks?tab=queue"))
    assert "组队列" in inbox and "认领" in inbox and "退出登录" in inbox
    home = text_of(web.get("/"))
    assert "我的任务" in home and "欢迎，nina" in home
    task_id = desk.task_id(number, "investigate", "nina")
    page = text_of(web.post(f"/tasks/{task_id}", {"resolution_notes": "x"}, follow_redirects=True))
    assert "表单有问题，未保存任何内容。" in page and "为必填项" in page and "提交" in page
    web.post(f"/tasks/{task_id}/claim")
    assert "您已认领“调查并解决”。" in text_of(web.get(f"/tasks/{task_id}"))  # the task named in Chinese too
    assert "未找到" in text_of(web.get("/tasks/999999"))


def test_the_language_choice_outlives_signing_out(web, desk):
    web.post("/language", {"lang": "zh_CN"})
    web.login("alex")
    web.logout()
    assert "您已退出登录。" in text_of(web.get("/login"))


def test_an_unknown_language_is_ignored(web):
    web.post("/language", {"lang": "xx"})
    assert "Username" in text_of(web.get("/login"))


def test_every_string_of_the_pages_has_a_chinese_translation():
    extracted = {message for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map=[("templates/**.html", "jinja2"), ("**.py", "python")],
        keywords={"_": None, "gettext": None, "_l": None})}
    assert len(extracted) > 50
    locale_dir = WEB / "translations" / "zh_Hans_CN"
    with (locale_dir / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    for area in sorted((locale_dir / "areas").glob("*.po")):  # merged at compile time, as here
        with area.open("rb") as handle:
            for message in read_po(handle):
                if message.id and message.id not in catalog:
                    catalog[message.id] = message
    missing = sorted(m for m in extracted if not isinstance(m, tuple) and (m not in catalog or not catalog[m].string
                                                                            or catalog[m].fuzzy))
    assert not missing, f"untranslated in zh_CN: {missing}"
    unused = sorted(str(m.id) for m in catalog if m.id and m.id not in extracted)
    assert not unused, f"translations of strings no page uses any more: {unused}"


def test_a_signed_in_users_language_choice_follows_them_to_another_browser(web_factory, desk):
    first = web_factory()
    first.login("alex")
    assert first.post("/language", {"lang": "zh_CN", "next": "/"}).status_code == 302
    other = web_factory()  # another browser, asking for English
    other.login("alex")
    page = text_of(other.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    assert '<html lang="zh-CN">' in page
    stranger = web_factory()
    stranger.login("nina")
    assert '<html lang="en">' in text_of(stranger.get("/", headers={"Accept-Language": "en-GB"}))


def test_the_services_format_messages_are_all_translated_on_the_pages():
    """Review: the username rule changed in the service and its words on the pages stayed the old
    rule's, so a Chinese page showed the new message in English."""
    from app.services.forms import FORMAT_MESSAGES
    from app.web.forms import _SERVICE_TEXTS
    assert set(FORMAT_MESSAGES.values()) <= set(_SERVICE_TEXTS)
