"""A diagram's own notices in each reader's language: the subject and body a ``notify`` step writes
as one string literal are templates of the process's words, translated by the process's
translation file and then filled in from the step's data (never translated), per recipient, in-app
and by mail through a real SMTP server on 127.0.0.1. A subject an expression computes goes out as
computed; the deploy accepts the templates as texts of the process and refuses anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from app.errors import ValidationFailed
from app.models import AuditEvent, Notification
from tests.services.test_notice_languages import READERS, mails, readers
from tests.services.test_notifications import smtp as smtp  # the fixture: a real SMTP server on 127.0.0.1
from tools.bpmn_builder import Diagram, literal, pretty

SUBJECT = "Toner needed for {{ title }}"
BODY = "{{ requester }} asked for toner for {{ title }}.{% if urgent %} It is urgent.{% endif %}"
ZH = {SUBJECT: "{{ title }} 需要碳粉", BODY: "{{ requester }} 为 {{ title }} 申请碳粉。{% if urgent %}此事紧急。{% endif %}",
      "Toner demo": "碳粉演示"}
RECORD = {"kind": "request", "prefix": "REQ", "fields": {"title": "title", "status": "ticket_status"},
          "resolved_statuses": ["resolved"], "closed_statuses": ["closed"]}


def diagram(subject: str = literal(SUBJECT), body: str = literal(BODY)) -> bytes:
    """Tell the ServiceDesk with the templates, then the requester with a computed subject."""
    d = Diagram("toner_demo", "Toner demo")
    d.node("start", "start", col=0)
    d.node("init", "script", "Initialise", col=1,
           script='requester = get_process_initiator_user()["username"]\nticket_status = "new"')
    d.node("tell_desk", "service", "Tell the desk", col=2, operator="notify",
           params={"group": '"ServiceDesk"', "subject": subject, "body": body}, result_variable="desk_told")
    d.node("tell_requester", "service", "Tell the requester", col=3, operator="notify",
           params={"user": "requester", "subject": '"Toner ordered: " + title'}, result_variable="requester_told")
    d.node("end", "end", col=4)
    d.chain("start", "init", "tell_desk", "tell_requester", "end")
    return pretty(d.to_xml()).encode()


def files(translation: dict[str, str] | None = None, **diagram_args: str) -> list[tuple[str, bytes]]:
    shipped = [("toner_demo.bpmn", diagram(**diagram_args)), ("toner_demo.record.json", json.dumps(RECORD).encode())]
    if translation is not None:
        shipped.append(("toner_demo.zh_CN.i18n.json", json.dumps(translation, ensure_ascii=False).encode()))
    return shipped


@pytest.fixture()
def desk(services, app, smtp):
    # eve chose English and works the ServiceDesk queue beside alex (no choice) and sam (Chinese)
    readers(services, app, smtp, [*READERS[:4], ("eve", ["agent"], ["ServiceDesk"], "en")])
    services.session.commit()
    return services


def deploy(services: Any, shipped: list[tuple[str, bytes]]) -> None:
    services.definitions.deploy(services.users.get_by_username("olga"), shipped)
    services.session.commit()


def start(services: Any, data: dict[str, Any]) -> Any:
    instance = services.instances.start_process(services.users.get_by_username("rita"), "toner_demo", data)
    services.session.commit()
    return instance


def notices(services: Any, username: str) -> list[tuple[str, str]]:
    user = services.users.get_by_username(username)
    return [(n.subject, n.body) for n in services.session.scalars(
        select(Notification).where(Notification.user_id == user.id).order_by(Notification.id))]


def text(message: Any) -> str:
    """A mail's text as written (SMTP carries CRLF line ends)."""
    return str(message.get_content()).replace("\r\n", "\n").rstrip("\n")


def test_each_reader_gets_the_diagrams_notice_in_their_language_in_app_and_by_mail(desk, smtp):
    _, inbox = smtp
    deploy(desk, files(ZH))
    # a value that looks like a template is a value: printed as typed, never rendered or translated
    instance = start(desk, {"title": "Printer {{ 7 * 7 }} on floor 3", "urgent": True})
    assert instance.status == "completed", instance.error
    link = desk.notifications.link(desk.records.by_number("REQ-000001"))

    zh_subject = "Printer {{ 7 * 7 }} on floor 3 需要碳粉"
    zh_body = f"rita 为 Printer {{{{ 7 * 7 }}}} on floor 3 申请碳粉。此事紧急。\n\n{link}"
    en_subject = "Toner needed for Printer {{ 7 * 7 }} on floor 3"
    en_body = f"rita asked for toner for Printer {{{{ 7 * 7 }}}} on floor 3. It is urgent.\n\n{link}"
    assert notices(desk, "sam") == [(zh_subject, zh_body)]
    assert notices(desk, "eve") == [(en_subject, en_body)]
    assert notices(desk, "alex") == [(en_subject, en_body)]  # no choice: the site's default (en)
    # the computed subject is the same for everyone, the Chinese requester too
    computed = "Toner ordered: Printer {{ 7 * 7 }} on floor 3"
    assert notices(desk, "rita") == [(computed, f"{computed}\n\n{link}")]

    assert desk.notifications.sweep("test").sent == 4
    got = mails(inbox)
    assert got["sam"]["Subject"] == f"[REQ-000001] {zh_subject}"
    assert text(got["sam"]) == zh_body
    assert got["eve"]["Subject"] == f"[REQ-000001] {en_subject}"
    assert text(got["eve"]) == en_body
    assert got["rita"]["Subject"] == f"[REQ-000001] {computed}"

    # the audit keeps the source (English) words, filled in
    sent = [e.payload for e in desk.session.scalars(select(AuditEvent).where(
        AuditEvent.instance_id == instance.id, AuditEvent.event_type == "notification_sent").order_by(AuditEvent.id))]
    assert [p["subject"] for p in sent] == [en_subject, computed]


def test_the_sites_default_language_speaks_to_who_chose_none(desk, app):
    app.extensions["processdesk"].runtime.config["DEFAULT_LANGUAGE"] = "zh_CN"
    deploy(desk, files(ZH))
    start(desk, {"title": "HP-7", "urgent": False})
    assert notices(desk, "alex")[0][0] == "HP-7 需要碳粉"
    assert notices(desk, "eve")[0][0] == "Toner needed for HP-7"


def test_without_a_translation_everyone_reads_the_filled_in_source(desk):
    deploy(desk, files())
    start(desk, {"title": "HP-7", "urgent": False})
    assert [s for s, _b in notices(desk, "sam")] == ["Toner needed for HP-7"]
    assert notices(desk, "sam")[0][1].startswith("rita asked for toner for HP-7.\n\n")


def test_a_translation_that_does_not_render_gives_way_to_the_source(desk, caplog):
    # both are templates (the deploy checks that), but fail on this step's data
    deploy(desk, files({SUBJECT: "{{ title + 1 }} 需要碳粉", BODY: "{{ requester }} 为 {{ title.x.y() }} 申请碳粉"}))
    start(desk, {"title": "HP-7", "urgent": False})
    subject, body = notices(desk, "sam")[0]
    assert subject == "Toner needed for HP-7" and body.startswith("rita asked for toner for HP-7.")
    assert "does not render" in caplog.text


def test_a_source_template_that_does_not_render_fails_the_step_naming_it(desk):
    deploy(desk, files(subject=literal("Toner needed for {{ title + 1 }}")))
    instance = start(desk, {"title": "HP-7"})
    assert instance.status == "error"
    assert "the subject does not render: the template failed to render: TypeError" in instance.error["message"]
    assert notices(desk, "sam") == []


def test_the_deploy_refuses_a_notice_template_that_is_none(desk):
    olga = desk.users.get_by_username("olga")
    with pytest.raises(ValidationFailed) as refused:
        desk.definitions.deploy(olga, files(body=literal("Toner for {{ title")))
    assert refused.value.code == "invalid_definition"
    assert refused.value.details == {"file": "toner_demo.bpmn", "element_id": "tell_desk", "field": "body"}
    assert "template syntax error" in refused.value.message
    desk.session.rollback()
    deploy(desk, files())
    with pytest.raises(ValidationFailed) as refused:
        desk.definitions.deploy(olga, [("toner_demo.zh_CN.i18n.json",
                                        json.dumps({**ZH, SUBJECT: "{{ title 需要碳粉"}, ensure_ascii=False).encode())])
    assert refused.value.details == {"file": "toner_demo.zh_CN.i18n.json", "entry": SUBJECT}
    assert "is no template: template syntax error" in refused.value.message


def test_the_deploy_takes_the_templates_as_texts_of_the_process_and_refuses_others(desk):
    deploy(desk, files(ZH))  # the templates are known source texts
    olga = desk.users.get_by_username("olga")
    for entry in ("Toner needed for HP-7",  # a filled-in subject is no text of the process
                  "Toner ordered: ",  # nor a piece of a computed one
                  "Toner needed for {{ title }} "):  # nor a template that is not the diagram's
        with pytest.raises(ValidationFailed) as refused:
            desk.definitions.deploy(olga, [("toner_demo.zh_CN.i18n.json",
                                            json.dumps({**ZH, entry: "x"}, ensure_ascii=False).encode())])
        desk.session.rollback()
        assert refused.value.code == "invalid_definition"
        assert refused.value.details == {"file": "toner_demo.zh_CN.i18n.json", "entry": entry}
        assert "notify step's subject or body template" in refused.value.message


def test_a_body_left_out_is_the_subjects_template(desk):
    d = Diagram("toner_demo", "Toner demo")
    d.node("start", "start", col=0)
    d.node("tell", "service", "Tell", col=1, operator="notify",
           params={"group": '"ServiceDesk"', "subject": literal(SUBJECT)}, result_variable="told")
    d.node("end", "end", col=2)
    d.chain("start", "tell", "end")
    deploy(desk, [("toner_demo.bpmn", pretty(d.to_xml()).encode()), ("toner_demo.zh_CN.i18n.json",
                                                                    json.dumps({SUBJECT: ZH[SUBJECT]}).encode())])
    start(desk, {"title": "HP-7"})
    assert notices(desk, "sam") == [("HP-7 需要碳粉", "HP-7 需要碳粉")]
