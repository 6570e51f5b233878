"""Notices in each reader's language: one event told to an English and a Chinese reader is one
English and one Chinese mail (and in-app notice), through a real SMTP server on 127.0.0.1. The
task's name comes from its process's translation file, as the pages show it; whoever chose no
language gets the site's ``DEFAULT_LANGUAGE``; webhooks keep the English subject."""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import select

from app.config import load_config
from app.languages import Text, catalog_path, render
from app.models import Notification, OutboxMessage
from tests.services.test_notifications import RECORD_FILES
from tests.services.test_notifications import smtp as smtp  # the fixture: a real SMTP server on 127.0.0.1

APP = Path(__file__).resolve().parents[2] / "app"
TRANSLATION = ("mini_ticket.zh_CN.i18n.json", json.dumps({"Work on it": "处理问题"}, ensure_ascii=False).encode())


#: (username, roles, groups, language) of the readers: English and Chinese, chosen or the default.
READERS = (("olga", ["process_owner"], [], None), ("rita", ["requester"], [], "zh_CN"),
           ("alex", ["agent"], ["ServiceDesk"], None), ("sam", ["agent"], ["ServiceDesk"], "zh_CN"),
           ("amy", ["approver"], ["Approvers"], "en"))


def readers(services, app, smtp, people=READERS) -> None:
    """Mail to the test SMTP server, and ``people``, each with an address and a language."""
    port, _ = smtp
    app.extensions["processdesk"].runtime.config.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port})
    for name, roles, groups, locale in people:
        services.users.create_user(name, "password-1234", roles=roles, groups=groups, email=f"{name}@example.test",
                                   locale=locale)


@pytest.fixture()
def desk(services, app, smtp):
    readers(services, app, smtp)
    services.definitions.deploy(services.users.get_by_username("olga"), [*RECORD_FILES, TRANSLATION])
    services.session.commit()
    return services


def start(services, title="Mail is down"):
    instance = services.instances.start_process(services.users.get_by_username("rita"), "mini_ticket",
                                                {"title": title, "work_group": "ServiceDesk"})
    services.session.commit()
    return instance


def mails(inbox) -> dict[str, Any]:
    """recipient -> the parsed message, as the SMTP server received it."""
    out = {}
    for envelope in inbox.messages:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        for rcpt in envelope.rcpt_tos:
            out[rcpt.split("@")[0]] = message
    return out


def notices(services, username):
    user = services.users.get_by_username(username)
    return [(n.subject, n.body) for n in services.session.scalars(
        select(Notification).where(Notification.user_id == user.id).order_by(Notification.id))]


def test_one_task_is_mailed_to_each_reader_in_their_own_language(desk, smtp):
    _, inbox = smtp
    start(desk)
    assert desk.notifications.sweep("test").sent == 2
    got = mails(inbox)
    assert set(got) == {"alex", "sam"}
    assert got["alex"]["Subject"] == "New task: Work on it (INC-000001: Mail is down)"
    assert got["alex"].get_content().startswith("Work on it for INC-000001: Mail is down is waiting for you: http")
    assert got["sam"]["Subject"] == "新任务：处理问题（INC-000001: Mail is down）"
    body = got["sam"].get_content()
    assert body.startswith("INC-000001: Mail is down 的“处理问题”正在等待您处理：http") and "/tasks/" in body
    # the in-app notices alike
    assert notices(desk, "sam")[0][0] == "新任务：处理问题（INC-000001: Mail is down）"
    assert notices(desk, "alex")[0][0] == "New task: Work on it (INC-000001: Mail is down)"


def test_the_requester_hears_of_comments_resolution_and_cancellation_in_chinese(desk, smtp):
    _, inbox = smtp
    instance = start(desk)
    alex = desk.users.get_by_username("alex")
    desk.records.comment(alex, "INC-000001", "Looking into it")
    desk.session.commit()
    desk.tasks.complete(alex, desk.instances.open_tasks(instance)[0].id, {"symptoms": "bounces", "workaround": "webmail"})
    desk.session.commit()
    desk.tasks.complete(desk.users.get_by_username("amy"), desk.instances.open_tasks(instance)[0].id, {"approved": True})
    desk.session.commit()
    told = notices(desk, "rita")
    assert ("INC-000001 有新评论：Mail is down",
            f"alex 在 INC-000001 上写道：\n\nLooking into it\n\n{desk.notifications.link(desk.records.by_number('INC-000001'))}"
            ) in told
    assert any(subject == "INC-000001 已解决：Mail is down" and body.startswith("INC-000001（Mail is down）已解决。")
               for subject, body in told)
    amy = [subject for subject, _body in notices(desk, "amy")]
    assert amy and all(re.fullmatch(r"[ -~]+", s) for s in amy)  # amy chose English
    desk.notifications.sweep("test")
    assert mails(inbox)["rita"]["Subject"] == "INC-000001 已解决：Mail is down"

    second = start(desk, "Printer jam")
    desk.instances.cancel(alex, second.id, "duplicate of INC-000001")
    desk.session.commit()
    subject, body = notices(desk, "rita")[-1]
    assert subject == "INC-000002 已取消：Printer jam"
    assert body.startswith("alex 取消了 INC-000002（Printer jam）。\n\n原因：duplicate of INC-000001\n\nhttp")
    assert notices(desk, "sam")[-1][0] == "INC-000002 已取消：Printer jam"  # the group, in its own languages
    assert notices(desk, "alex")[-1][0] != "INC-000002 已取消：Printer jam"  # the actor is not told


def test_a_new_file_is_told_in_each_readers_language(desk):
    start(desk)
    alex = desk.users.get_by_username("alex")
    desk.attachments.attach(alex, "INC-000001", "bounce.log", "text/plain", b"550 mailbox full\n")
    desk.session.commit()
    subject, body = notices(desk, "rita")[-1]
    assert subject == "alex 向 INC-000001 添加了附件 bounce.log"
    assert body.startswith("alex 向 INC-000001（Mail is down）添加了附件 bounce.log（17 bytes）。")
    assert not any("bounce.log" in s for s, _ in notices(desk, "alex"))  # who attached it is not told


def test_a_deleted_file_is_told_in_each_readers_language_in_app_and_by_mail(desk, smtp):
    """Deleting a file tells whom attaching it told (the requester, the record's group here), but not
    who deleted it: in-app and by mail, each in the reader's language, naming the file and who
    deleted it."""
    _, inbox = smtp
    start(desk)
    rita = desk.users.get_by_username("rita")
    sent = desk.attachments.attach(rita, "INC-000001", "bounce.log", "text/plain", b"550 mailbox full\n")
    desk.session.commit()
    desk.notifications.sweep("test")  # the new task's and the new file's mails
    inbox.messages.clear()
    desk.attachments.delete(rita, "INC-000001", sent.id)
    desk.session.commit()
    link = desk.notifications.link(desk.records.by_number("INC-000001"))
    assert notices(desk, "alex")[-1] == (
        "rita deleted bounce.log from INC-000001",
        f"rita deleted file bounce.log (17 bytes) from INC-000001 (Mail is down).\n\n{link}")
    assert notices(desk, "sam")[-1] == (
        "rita 从 INC-000001 删除了附件 bounce.log",
        f"rita 从 INC-000001（Mail is down）删除了附件 bounce.log（17 bytes）。\n\n{link}")
    assert not any("deleted" in s or "删除" in s for s, _ in notices(desk, "rita"))  # who deleted it is not told
    assert desk.notifications.sweep("test").sent == 2
    got = mails(inbox)
    assert set(got) == {"alex", "sam"}
    assert got["alex"]["Subject"] == "rita deleted bounce.log from INC-000001"
    assert got["sam"]["Subject"] == "rita 从 INC-000001 删除了附件 bounce.log"
    assert got["sam"].get_content().startswith("rita 从 INC-000001（Mail is down）删除了附件 bounce.log（17 bytes）。")


def test_whoever_chose_no_language_gets_the_sites_default(desk, app, smtp):
    _, inbox = smtp
    app.extensions["processdesk"].runtime.config["DEFAULT_LANGUAGE"] = "zh_CN"
    start(desk)
    assert notices(desk, "alex")[0][0] == "新任务：处理问题（INC-000001: Mail is down）"  # none chosen
    rita = desk.users.get_by_username("rita")
    desk.users.set_locale(desk.users.get_by_username("alex"), "en")
    desk.session.commit()
    desk.records.comment(rita, "INC-000001", "Any news?")
    desk.session.commit()
    assert notices(desk, "alex")[-1][0] == "New comment on INC-000001: Mail is down"  # chosen: English


def test_webhooks_keep_the_english_subject(desk, app):
    app.extensions["processdesk"].runtime.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    admin = desk.users.create_user("ada", "password-1234", roles=["admin"])
    desk.notifications.add_webhook(admin, "http://127.0.0.1:9/hook", "a-webhook-secret-of-some-length",
                                   ["task.assigned"])
    desk.session.commit()
    start(desk)
    hooks = desk.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "webhook")).all()
    assert [m.payload["subject"] for m in hooks] == ["New task: Work on it (INC-000001: Mail is down)"]


def test_reminders_say_the_wait_in_the_readers_language(desk, clock, app):
    from app.services.reminders import ReminderService

    app.extensions["processdesk"].runtime.config["TASK_REMINDER_HOURS"] = 24
    start(desk)
    clock.advance(timedelta(hours=49))
    assert ReminderService(desk).sweep() == 1
    subject, body = notices(desk, "sam")[-1]
    assert subject == "提醒：处理问题（INC-000001: Mail is down）仍在等待处理"
    assert body.startswith("INC-000001: Mail is down 的“处理问题”已等待 2 天：http")
    assert notices(desk, "alex")[-1][1].startswith("Work on it for INC-000001: Mail is down has waited 2 days:")


# -- the messages and their translations ---------------------------------------------------------------


def _messages() -> set[str]:
    return {message for _file, _line, message, _comments, _context in extract_from_dir(
        str(APP), method_map=[("**.py", "python")], keywords={"Text": None})
        if isinstance(message, str)}


def _catalog() -> dict[str, str]:
    with catalog_path("zh_CN").open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle) if m.id and not m.fuzzy}


def test_every_notice_message_has_a_chinese_translation_with_the_same_placeholders():
    messages, catalog = _messages(), _catalog()
    assert len(messages) > 20
    missing = sorted(m for m in messages if not catalog.get(m))
    assert not missing, f"untranslated notices in zh_CN: {missing}"
    unused = sorted(set(catalog) - messages)
    assert not unused, f"translations of notices nothing sends any more: {unused}"
    placeholder = re.compile(r"%\((\w+)\)[sd]")
    for message in messages:
        assert sorted(placeholder.findall(catalog[message])) == sorted(placeholder.findall(message)), message


def test_a_message_without_a_translation_or_with_a_broken_one_stays_english():
    assert render(Text("No such message %(n)s", n=1), "zh_CN") == "No such message 1"
    assert render(Text("%(count)d hours", count=3), "zh_CN") == "3 小时"
    assert render(Text("%(count)d hours", count=3), "en") == "3 hours"


def test_the_sites_default_language_is_one_the_desk_speaks(tmp_path):
    assert load_config({"DATABASE_URL": "sqlite://", "SECRET_KEY": "x"}, str(tmp_path))["DEFAULT_LANGUAGE"] == "en"
    assert load_config({"DATABASE_URL": "sqlite://", "SECRET_KEY": "x", "DEFAULT_LANGUAGE": "zh_CN"},
                       str(tmp_path))["DEFAULT_LANGUAGE"] == "zh_CN"
    with pytest.raises(ValueError, match="DEFAULT_LANGUAGE"):
        load_config({"DATABASE_URL": "sqlite://", "SECRET_KEY": "x", "DEFAULT_LANGUAGE": "fr"}, str(tmp_path))
