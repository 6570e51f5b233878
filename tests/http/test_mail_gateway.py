"""The mail gateway (app/services/mail.py): real MIME messages built with the stdlib ``email``
package, taken through POST /api/v1/mail/inbound and `flask mail ingest`."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import select

from app.models import InboundMail, OutboxMessage
from tests.conftest import joined_app
from tests.http.desk import Desk
from tests.http.test_e2e_incident import resolve, triage

TOKEN = "inbound-mail-token-for-tests-0123456789"
OWN = "desk@processdesk.example"
EMAILS = {"rita": "Rita@Example.org", "mona": "mona@example.org", "alex": "alex@example.org", "nina": "nina@example.org",
          "aude": "aude@example.org", "ada": "ada@example.org"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture()
def app(database_url, connection, clock) -> Any:
    return joined_app(database_url, connection, clock, MAIL_INBOUND_TOKEN=TOKEN, SMTP_SENDER=f"Processdesk <{OWN}>",
                      ATTACHMENT_MAX_BYTES=4096, MAIL_MAX_BYTES=64 * 1024)


@pytest.fixture()
def desk(client, services) -> Desk:
    made = Desk(client, services)
    for name, email in EMAILS.items():
        services.users.update_user(None, name, {"email": email})
    services.session.commit()
    return made


def mail(sender: str = "rita@example.org", subject: str = "Printer on floor 3 jams", text: str | None = "It jams on every page.",
         *, html: str | None = None, files: list[tuple[str, str, bytes]] = (), **headers: str) -> bytes:  # type: ignore[assignment]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "servicedesk@processdesk.example"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for filename, ctype, data in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def post(desk: Desk, raw: bytes, status: int = 200, token: str | None = TOKEN, ctype: str = "message/rfc822") -> dict[str, Any]:
    headers = {"Content-Type": ctype}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = desk.client.post("/api/v1/mail/inbound", data=raw, headers=headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def comments(desk: Desk, number: str) -> list[tuple[str, str]]:
    response = desk.client.get(f"/api/v1/tickets/{number}/comments", headers=desk.auth("aude"))
    return [(c["author"], c["body"]) for c in response.get_json()["items"]]


def logged(desk: Desk) -> list[InboundMail]:
    return list(desk.services.session.scalars(select(InboundMail).order_by(InboundMail.id)))


def new_incident(desk: Desk, **kwargs: Any) -> str:
    answer = post(desk, mail(**kwargs))
    assert answer["outcome"] == "created", answer
    return str(answer["number"])


def test_a_new_mail_raises_an_incident_for_its_sender(desk: Desk):
    answer = post(desk, mail("Rita Requester <RITA@example.org>"))
    assert answer == {"outcome": "created", "number": "INC-000001", "reason": "raised by rita", "duplicate": False}
    record = desk.record("INC-000001")
    assert (record["title"], record["description"], record["requester"]) == (
        "Printer on floor 3 jams", "It jams on every page.", "rita")
    assert record["open_tasks"] and record["status"] != "closed"
    [row] = logged(desk)
    assert (row.outcome, row.number, row.sender) == ("created", "INC-000001", "rita@example.org")


def test_a_reply_naming_the_record_in_its_subject_is_the_senders_comment(desk: Desk):
    number = new_incident(desk)
    text = "Which printer exactly?\n\nOn Mon, 30 Nov 2026 at 07:00, Rita <rita@example.org> wrote:\n> It jams on every page."
    answer = post(desk, mail("alex@example.org", f"Re: [{number}] Printer on floor 3 jams", text))
    assert (answer["outcome"], answer["number"]) == ("commented", number)
    assert comments(desk, number) == [("alex", "Which printer exactly?")]


def test_a_reply_to_our_mail_by_in_reply_to_is_a_comment_on_its_record(desk: Desk, services):
    number = new_incident(desk)
    post(desk, mail("alex@example.org", f"{number}: anything", "Please send the model."))  # mails rita
    sent = services.session.scalars(select(OutboxMessage).where(
        OutboxMessage.channel == "email", OutboxMessage.recipient == EMAILS["rita"])).all()
    assert sent and all(number in m.subject for m in sent)
    ours = sent[-1]
    assert ours.payload["record"] == number
    reply = mail("rita@example.org", "Re: your question", "It is the HP in room 3.12\n> Please send the model.",
                 In_Reply_To=f"<{ours.event_id}@processdesk>", References=f"<other@example.org> <{ours.event_id}@processdesk>")
    answer = post(desk, reply)
    assert (answer["outcome"], answer["number"]) == ("commented", number)
    assert comments(desk, number)[-1] == ("rita", "It is the HP in room 3.12")


def test_a_record_number_the_sender_may_not_see_makes_no_reply_but_a_new_incident(desk: Desk):
    """Whether INC-000001 exists is none of mona's business: her mail naming it raises her own
    incident, as one naming a number that exists nowhere does."""
    number = new_incident(desk)
    answer = post(desk, mail("mona@example.org", f"Re: [{number}] me too", "Mine jams too."))
    assert (answer["outcome"], answer["number"]) == ("created", "INC-000002")
    answer = post(desk, mail("mona@example.org", "Re: [INC-000999] me too", "Mine jams too."))
    assert (answer["outcome"], answer["number"]) == ("created", "INC-000003")
    assert comments(desk, number) == []


def test_outgoing_mails_name_the_record_in_the_subject_and_carry_our_message_id(desk: Desk, services):
    """A record's mail whose words lack its number gets it in brackets; the Message-ID delivery
    sends is the row's event_id at processdesk, which the gateway maps back."""
    number = new_incident(desk)
    ticket = services.records.by_number(number)
    rita = services.users.get_by_username("rita")
    services.notifications.notify([rita], "test.event", "Something happened", "body", ticket=ticket)
    row = services.session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "test.event")).one()
    assert row.subject == f"[{number}] Something happened" and row.payload["record"] == number
    services.session.rollback()


def test_a_requesters_reply_by_mail_reopens_her_resolved_incident_as_a_comment_does(desk: Desk):
    number = new_incident(desk)
    triage(desk, number, priority="P3", category="hardware")
    resolve(desk, number)
    assert desk.record(number)["status"] == "resolved"
    answer = post(desk, mail("rita@example.org", f"Re: {number} resolved", "Still jams, sorry."))
    assert answer["outcome"] == "commented"
    record = desk.record(number)
    assert record["status"] == "in_progress" and record["resolved_at"] is None
    assert ("rita", "Still jams, sorry.") in comments(desk, number)


def test_files_in_a_mail_become_the_records_attachments(desk: Desk):
    number = new_incident(desk, files=[("screen.png", "image/png", PNG), ("../../etc/log.txt", "text/plain", b"E42\n")])
    files = desk.record(number)["attachments"]
    assert [(f["filename"], f["size"], f["uploaded_by"]) for f in files] == [
        ("screen.png", len(PNG), "rita"), ("log.txt", 4, "rita")]
    answer = post(desk, mail("alex@example.org", f"Re: [{number}]", None, files=[("trace.txt", "text/plain", b"trace")]))
    assert answer["outcome"] == "commented"
    assert [f["filename"] for f in desk.record(number)["attachments"]][-1] == "trace.txt"
    assert comments(desk, number) == [("alex", "Attached by e-mail: trace.txt")]


def test_a_file_over_the_limit_fails_the_whole_mail_and_creates_nothing(desk: Desk):
    answer = post(desk, mail(files=[("big.bin", "application/octet-stream", b"x" * 5000)]))
    assert answer["outcome"] == "failed" and "big.bin" in answer["reason"] and answer["number"] is None
    assert desk.client.get("/api/v1/tickets", headers=desk.auth("aude")).get_json()["total"] == 0
    assert [r.outcome for r in logged(desk)] == ["failed"]


def test_an_html_only_mail_gives_its_text_without_scripts_or_styles(desk: Desk):
    html = ("<html><head><title>T</title><style>p{color:red}</style></head><body>"
            "<p>Screen is <b>black</b> &amp; beeps</p><script>alert('x')</script><div>since&nbsp;Monday</div></body></html>")
    number = new_incident(desk, text=None, html=html)
    assert desk.record(number)["description"] == "Screen is black & beeps\n\nsince Monday"


def test_a_long_subject_and_text_are_cut_to_the_start_forms_limits(desk: Desk):
    number = new_incident(desk, subject="word " * 100, text="line\n" * 4000)
    record = desk.record(number)
    assert len(record["title"]) == 200 and record["title"].endswith("\u2026") and "\n" not in record["title"]
    assert len(record["description"]) <= 10_000 and record["description"].endswith("the e-mail was longer]")


def test_an_empty_subject_and_body_still_raise_an_incident(desk: Desk):
    number = new_incident(desk, subject="", text=None)
    assert (desk.record(number)["title"], desk.record(number)["description"]) == ("(no subject)", "(the e-mail had no text)")


def test_plain_text_is_preferred_over_its_html_alternative(desk: Desk):
    number = new_incident(desk, text="plain words", html="<p>html words</p>")
    assert desk.record(number)["description"] == "plain words"
    assert desk.record(number)["attachments"] == []


def test_an_rfc2047_subject_and_a_latin1_body_are_decoded(desk: Desk):
    raw = (b"From: rita@example.org\r\nTo: desk@example.org\r\nMessage-ID: <latin@example.org>\r\n"
           b"Subject: =?ISO-8859-1?Q?Drucker_im_B=FCro?= =?UTF-8?B?IOaJk+WNsOacug==?=\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\nDer Drucker im B\xfcro druckt nicht.\r\n")
    number = post(desk, raw)["number"]
    record = desk.record(number)
    assert record["title"] == "Drucker im Büro 打印机"
    assert record["description"] == "Der Drucker im Büro druckt nicht."


def test_a_subject_that_decodes_to_a_line_break_stays_one_line(desk: Desk):
    # written raw: EmailMessage would decode the word when setting it and write the line break itself
    raw = (b"From: rita@example.org\r\nSubject: =?UTF-8?Q?hello=0D=0ABcc:_evil@example.org?=\r\n"
           b"Message-ID: <crlf@example.org>\r\n\r\nbody\r\n")
    number = post(desk, raw)["number"]
    assert desk.record(number)["title"] == "hello Bcc: evil@example.org"


def test_an_unknown_or_inactive_sender_is_refused_and_recorded(desk: Desk, services):
    answer = post(desk, mail("mallory@example.org"))
    assert answer["outcome"] == "refused" and "mallory@example.org" in answer["reason"]
    services.users.deactivate_user(None, "nina")
    services.session.commit()
    assert "inactive" in post(desk, mail("nina@example.org"))["reason"]
    services.users.update_user(None, "alex", {"email": "RITA@example.org"})
    services.session.commit()
    assert "more than one active user" in post(desk, mail("rita@example.org"))["reason"]
    both = post(desk, mail("rita@example.org, nina@example.org"))
    assert both["outcome"] == "refused" and "2 addresses" in both["reason"]
    assert [r.outcome for r in logged(desk)] == ["refused"] * 4
    assert desk.client.get("/api/v1/tickets", headers=desk.auth("aude")).get_json()["total"] == 0


@pytest.mark.parametrize(("headers", "sender", "why"), [
    ({"Auto_Submitted": "auto-replied"}, "rita@example.org", "Auto-Submitted"),
    ({"Precedence": "bulk"}, "rita@example.org", "Precedence"),
    ({"Return_Path": "<>"}, "rita@example.org", "bounce"),
    ({}, "MAILER-DAEMON@example.org", "MAILER-DAEMON"),
    ({}, OWN.upper(), "own address"),
])
def test_auto_replies_bulk_mail_bounces_and_our_own_mail_are_ignored(desk: Desk, headers, sender, why):
    answer = post(desk, mail(sender, **headers))
    assert answer["outcome"] == "ignored" and why in answer["reason"]
    assert desk.client.get("/api/v1/tickets", headers=desk.auth("aude")).get_json()["total"] == 0


def test_auto_submitted_no_is_a_person_writing(desk: Desk):
    assert post(desk, mail(Auto_Submitted="no"))["outcome"] == "created"


def test_a_message_delivered_twice_makes_one_record(desk: Desk):
    raw = mail()
    first, second = post(desk, raw), post(desk, raw)
    assert (first["outcome"], first["duplicate"]) == ("created", False)
    assert second == {**first, "duplicate": True}
    assert desk.client.get("/api/v1/tickets", headers=desk.auth("aude")).get_json()["total"] == 1
    reply = mail("alex@example.org", f"Re: [{first['number']}]", "one comment")
    assert [post(desk, reply)["outcome"] for _ in range(2)] == ["commented", "commented"]
    assert comments(desk, first["number"]) == [("alex", "one comment")]


def test_a_failed_message_is_tried_again_when_delivered_again(desk: Desk, services):
    raw = mail("aude@example.org")  # an auditor starts nothing
    assert post(desk, raw)["outcome"] == "failed"
    services.users.update_user(None, "aude", {"email": None})
    services.users.update_user(None, "rita", {"email": "aude@example.org"})
    services.session.commit()
    again = post(desk, raw)
    assert (again["outcome"], again["duplicate"]) == ("created", False)
    [row] = logged(desk)
    assert row.outcome == "created" and row.retried_at is not None


def test_a_requesters_reply_on_a_closed_record_fails_and_says_why(desk: Desk):
    number = new_incident(desk)
    triage(desk, number, priority="P3", category="hardware")
    resolve(desk, number)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True})
    answer = post(desk, mail("rita@example.org", f"Re: [{number}]", "thanks"))
    assert answer["outcome"] == "failed" and "closed" in answer["reason"] and answer["number"] == number


def test_oversize_and_malformed_messages_are_client_errors(desk: Desk):
    big = mail(text="x" * (70 * 1024))
    error = post(desk, big, 413)
    assert error["details"]["fields"] == {"message": [f"at most {64 * 1024} bytes"]}
    for raw in (b"", b"\x00\xff garbage without headers", b"Subject: no sender\r\n\r\nbody"):
        error = post(desk, raw, 422)
        assert error["error"] == "malformed_message" and "message" in error["details"]["fields"]
    assert logged(desk) == []


def test_the_inbound_route_takes_only_its_token(desk: Desk, app):
    raw = mail()
    assert post(desk, raw, 401, token=None)["error"] == "unauthorized"
    assert post(desk, raw, 401, token="wrong")["error"] == "unauthorized"
    assert post(desk, raw, 401, token=desk.auth("ada")["Authorization"].split()[1])["error"] == "unauthorized"
    assert post(desk, raw, 415, ctype="application/json")["details"]["fields"] == {
        "Content-Type": ["must be message/rfc822"]}
    app.config["MAIL_INBOUND_TOKEN"] = None
    assert post(desk, raw, 404)["error"] == "not_found"
    assert logged(desk) == []


def test_admins_list_the_inbound_messages(desk: Desk):
    post(desk, mail())
    post(desk, mail("mallory@example.org"))
    response = desk.client.get("/api/v1/mail/inbound", headers=desk.auth("ada"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 2 and [i["outcome"] for i in body["items"]] == ["refused", "created"]
    assert desk.client.get("/api/v1/mail/inbound", headers=desk.auth("alex")).status_code == 403
    assert desk.client.get("/api/v1/mail/inbound").status_code == 401


# -- flask mail ingest --------------------------------------------------------------------------------


def ingest(app: Any, raw: bytes) -> tuple[int, str, str]:
    """`flask mail ingest` with ``raw`` on standard input: (exit status, stdout, stderr)."""
    result = app.test_cli_runner().invoke(args=["mail", "ingest"], input=raw)
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_exit_status_says_what_became_of_the_message(desk: Desk, app):
    raw = mail()
    code, out, _ = ingest(app, raw)
    assert code == 0 and out.startswith("created INC-000001")
    code, out, _ = ingest(app, raw)
    assert code == 0 and "duplicate" in out
    assert ingest(app, mail(Auto_Submitted="auto-replied"))[0] == 0
    code, _, err = ingest(app, mail("mallory@example.org"))
    assert code == 67 and "mallory@example.org" in err
    code, _, err = ingest(app, b"no headers here")
    assert code == 65 and "not a readable e-mail" in err
    assert ingest(app, mail(text="x" * (70 * 1024)))[0] == 65
    assert ingest(app, mail("aude@example.org"))[0] == 77  # may not start incidents
    assert ingest(app, mail(files=[("big.bin", "application/octet-stream", b"x" * 5000)]))[0] == 65
    code, out, _ = ingest(app, mail("alex@example.org", "Re: [INC-000001]", "on it"))
    assert code == 0 and out.startswith("commented INC-000001")


def mails_of(services: Any, event_type: str, recipient: str) -> list[OutboxMessage]:
    """The mails of ``event_type`` the desk wrote to ``recipient``, oldest first, as they were read:
    detached, so that reading them later reloads nothing in a transaction of the test's own,
    which would wrap (and its rollback hide) the writes of the requests sent meanwhile."""
    services.session.rollback()
    found = list(services.session.scalars(select(OutboxMessage).where(
        OutboxMessage.channel == "email", OutboxMessage.event_type == event_type,
        OutboxMessage.recipient == recipient).order_by(OutboxMessage.id)))
    services.session.expunge_all()
    services.session.rollback()
    return found


def acknowledgements(services: Any, recipient: str) -> list[OutboxMessage]:
    return mails_of(services, "mail.received", recipient)


def test_the_sender_is_told_the_number_with_the_articles_that_may_answer_it(desk: Desk, services):
    article = services.knowledge.publish(None, title="Printer jams on every page", symptoms="", cause="",
                                         workaround="Take out the blue roller and clean it.", source=None)
    kb = article.number
    services.session.commit()
    number = new_incident(desk)
    [told] = acknowledgements(services, EMAILS["rita"])
    assert told.subject == f"{number} received: Printer on floor 3 jams"
    assert told.body.startswith(f"Thank you: your e-mail is logged as {number} (Printer on floor 3 jams). "
                                "Reply to this e-mail to add to it")
    assert f"/tickets/{number}" in told.body
    assert f"These published articles may already answer it:\n- {kb} Printer jams on every page: " in told.body
    assert told.body.rstrip().endswith(f"/knowledge/{kb}") and told.payload["record"] == number
    # in the app as well, and her reply to the mail is a comment on the record
    assert any(n["subject"] == told.subject for n in desk.notifications("rita"))
    reply = mail("rita@example.org", f"Re: {told.subject}", "The roller trick worked, thanks.",
                 In_Reply_To=f"<{told.event_id}@processdesk>")
    assert (post(desk, reply)["outcome"], comments(desk, number)) == (
        "commented", [("rita", "The roller trick worked, thanks.")])
    assert len(acknowledgements(services, EMAILS["rita"])) == 1  # a comment is not acknowledged again


def test_the_acknowledgement_without_articles_and_in_the_senders_language(desk: Desk, services):
    services.users.update_user(services.users.get_by_username("ada"), "mona", {"locale": "zh_CN"})
    services.session.commit()
    number = new_incident(desk, sender="mona@example.org", subject="Badge reader broken", text="At the main door.")
    [told] = acknowledgements(services, EMAILS["mona"])
    assert told.subject == f"已收到 {number}：Badge reader broken"
    assert told.body.startswith(f"谢谢：您的邮件已登记为 {number}（Badge reader broken）。") and "文章" not in told.body


def asked_to_approve(desk: Desk, services: Any, who: str = "mona") -> tuple[str, OutboxMessage]:
    """rita orders a laptop; her line manager mona is asked to approve it by mail: the record's
    number and that mail."""
    from tests.http.desk import LAPTOP
    answer = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert answer.status_code == 201, answer.get_json()
    number = answer.get_json()["number"]
    [asked] = mails_of(services, "approval.needed", EMAILS[who])
    return number, asked


def test_an_approver_approves_by_replying_to_the_mail(desk: Desk, services):
    number, asked = asked_to_approve(desk, services)
    assert asked.body.endswith("\n\nTo decide by e-mail, reply with APPROVE or REJECT as the first word, and your "
                               "reason after it.") and asked.payload["task_id"]
    # the notice in the app is not a mail to reply to: it says nothing of replying
    [in_app] = [n for n in desk.notifications("mona") if n["subject"] == asked.subject.split("] ", 1)[-1]]
    assert "reply" not in in_app["body"] and in_app["body"] == asked.body.split("\n\n")[0]
    reply = mail("mona@example.org", f"Re: {asked.subject}", "Approved. Four years is long enough.\n\n> the request",
                 In_Reply_To=f"<{asked.event_id}@processdesk>")
    answer = post(desk, reply)
    assert (answer["outcome"], answer["number"]) == ("decided", number), answer
    assert answer["reason"].startswith("yes from mona (approve_manager")
    data = desk.instance(desk.record(number)["instance_id"])["data"]
    assert (data["approved"], data["approval_comment"]) == (True, "Four years is long enough.")
    assert comments(desk, number) == []  # a decision, not a comment
    # the same mail delivered again decides nothing twice
    assert post(desk, reply)["duplicate"] is True


def test_a_rejection_by_mail_needs_its_reason_as_the_form_does(desk: Desk, services):
    services.users.update_user(services.users.get_by_username("ada"), "mona", {"locale": "zh_CN"})
    services.session.commit()
    number, asked = asked_to_approve(desk, services)
    assert "第一个词写“同意”或“拒绝”" in asked.body  # in her language
    bare = post(desk, mail("mona@example.org", "Re: it", "Reject", In_Reply_To=f"<{asked.event_id}@processdesk>"))
    assert (bare["outcome"], bare["number"]) == ("failed", number)
    assert bare["reason"].startswith("form data is invalid: approval_comment is required"), bare
    answer = post(desk, mail("mona@example.org", "Re: it", "拒绝：请先用旧电脑。", In_Reply_To=f"<{asked.event_id}@processdesk>"))
    assert answer["outcome"] == "decided" and answer["reason"].startswith("no from mona")
    data = desk.instance(desk.record(number)["instance_id"])["data"]
    assert (data["approved"], data["approval_comment"]) == (False, "请先用旧电脑。")


def test_a_reply_without_a_decision_or_from_someone_else_is_no_decision(desk: Desk, services):
    number, asked = asked_to_approve(desk, services)
    talk = post(desk, mail("mona@example.org", "Re: it", "Which model is it?", In_Reply_To=f"<{asked.event_id}@processdesk>"))
    assert (talk["outcome"], comments(desk, number)) == ("commented", [("mona", "Which model is it?")])
    # rita cannot approve her own laptop by replying with mona's message id
    forged = post(desk, mail("rita@example.org", "Re: it", "Approve", In_Reply_To=f"<{asked.event_id}@processdesk>"))
    assert forged["outcome"] == "failed" and forged["reason"] == f"no task {asked.payload['task_id']}"
    assert desk.instance(desk.record(number)["instance_id"])["data"].get("approved") is None


def resolved_mail(desk: Desk, services: Any) -> tuple[str, OutboxMessage]:
    """rita's incident, raised by mail, resolved by nina: its number and the mail asking rita to confirm."""
    number = new_incident(desk)
    triage(desk, number, priority="P3", category="hardware")
    resolve(desk, number)
    [told] = mails_of(services, "record.resolved", EMAILS["rita"])
    return number, told


def test_the_requester_confirms_a_resolution_by_replying_yes(desk: Desk, services):
    number, told = resolved_mail(desk, services)
    assert told.body.endswith("To answer by e-mail, reply with YES as the first word if it works again, or with NO "
                              "and what still fails.") and told.payload["task_id"]
    answer = post(desk, mail("rita@example.org", f"Re: {told.subject}", "Yes - the printer works again, thanks!",
                             In_Reply_To=f"<{told.event_id}@processdesk>"))
    assert (answer["outcome"], answer["number"]) == ("decided", number), answer
    assert answer["reason"].startswith("yes from rita (confirm_resolution")
    record = desk.record(number)
    assert record["status"] == "closed"
    data = desk.instance(record["instance_id"])["data"]
    assert (data["confirmed"], data["comment"]) == (True, "the printer works again, thanks!")


def test_a_no_reopens_it_with_what_still_fails_and_other_words_are_a_comment(desk: Desk, services):
    number, told = resolved_mail(desk, services)
    answer = post(desk, mail("rita@example.org", "Re: it", "No. It still jams on page two.",
                             In_Reply_To=f"<{told.event_id}@processdesk>"))
    assert answer["outcome"] == "decided" and answer["reason"].startswith("no from rita")
    record = desk.record(number)
    assert record["status"] == "in_progress" and record["resolved_at"] is None
    assert desk.instance(record["instance_id"])["data"]["comment"] == "It still jams on page two."
    # a bare NO says nothing of what fails: the form asks for it, the mail fails and says so
    resolve(desk, number)
    latest = mails_of(services, "record.resolved", EMAILS["rita"])[-1]
    bare = post(desk, mail("rita@example.org", "Re: it", "no", In_Reply_To=f"<{latest.event_id}@processdesk>"))
    assert bare["outcome"] == "failed" and "comment is required" in bare["reason"], bare


FORWARDED = ("Could you look at this one?\n\n---------- Forwarded message ---------\nFrom: Rita Requester <{sender}>\n"
             "Date: Mon, 30 Nov 2026 at 08:00\nSubject: Printer on floor 3 jams\nTo: alex@example.org\n\n"
             "It jams on every page.")


def test_an_agent_forwards_a_users_mail_and_the_incident_is_theirs(desk: Desk, services):
    answer = post(desk, mail("alex@example.org", "Fwd: Printer on floor 3 jams",
                             FORWARDED.format(sender="RITA@example.org")))
    assert (answer["outcome"], answer["reason"]) == ("created", "raised by alex for rita"), answer
    record = desk.record(answer["number"])
    assert (record["title"], record["requester"], record["opened_by"]) == ("Printer on floor 3 jams", "rita", "alex")
    assert any(n["subject"].startswith(f"{answer['number']} was logged for you") for n in desk.notifications("rita"))


@pytest.mark.parametrize("sender, subject, sent_from, requester, title", [
    # a requester's forward is her own incident, subject as written
    ("mona@example.org", "Fwd: Printer on floor 3 jams", "rita@example.org", "mona", "Fwd: Printer on floor 3 jams"),
    # an agent's forward of a mail from nobody the desk knows is the agent's
    ("alex@example.org", "FW: Printer on floor 3 jams", "someone@elsewhere.example", "alex", "Printer on floor 3 jams"),
    # an agent's mail that is no forward is the agent's
    ("alex@example.org", "Printer on floor 3 jams", "rita@example.org", "alex", "Printer on floor 3 jams"),
])
def test_other_forwards_are_the_senders_own(desk: Desk, sender, subject, sent_from, requester, title):
    answer = post(desk, mail(sender, subject, FORWARDED.format(sender=sent_from)))
    assert answer["outcome"] == "created"
    record = desk.record(answer["number"])
    assert (record["requester"], record["opened_by"], record["title"]) == (requester, None, title)


@pytest.mark.parametrize("text", ["No problem, thanks for sorting it!", "No objection from me", "Yes the laptop is needed",
                                  "同意没问题"])
def test_a_reply_whose_first_word_does_not_stand_alone_is_a_comment(desk: Desk, services, text):
    number, asked = asked_to_approve(desk, services)
    answer = post(desk, mail("mona@example.org", "Re: it", text, In_Reply_To=f"<{asked.event_id}@processdesk>"))
    assert (answer["outcome"], comments(desk, number)) == ("commented", [("mona", text)])
    assert desk.instance(desk.record(number)["instance_id"])["data"].get("approved") is None


def test_a_decision_under_an_outlook_quote_and_a_long_reason_and_a_decided_task(desk: Desk, services):
    number, asked = asked_to_approve(desk, services)
    text = ("是的，" + "很好。" * 800 + "\n\nFrom: Processdesk <desk@processdesk.example>\nSent: Monday\n"
            "Subject: Approval needed\n\nRita asks for a laptop.")
    answer = post(desk, mail("mona@example.org", "RE: it", text, In_Reply_To=f"<{asked.event_id}@processdesk>"))
    assert answer["outcome"] == "decided", answer
    data = desk.instance(desk.record(number)["instance_id"])["data"]
    # the quoted mail is not the comment, which is cut to the form's 2,000 characters
    assert data["approved"] is True and "Rita asks" not in data["approval_comment"]
    assert len(data["approval_comment"]) <= 2000 and data["approval_comment"].startswith("很好。")
    # the task is decided: another yes to the same mail is a comment, not a failure
    again = post(desk, mail("mona@example.org", "RE: it", "Yes.", In_Reply_To=f"<{asked.event_id}@processdesk>"))
    assert again["outcome"] == "commented"


def test_an_outlook_style_forward_is_raised_for_its_sender(desk: Desk):
    text = ("FYI\n\n________________________________\nFrom: Requester, Rita <rita@example.org>\nSent: Monday\n"
            "To: Alex\nSubject: Printer on floor 3 jams\n\nIt jams on every page.")
    answer = post(desk, mail("alex@example.org", "FW: Printer on floor 3 jams", text))
    assert answer["reason"] == "raised by alex for rita"
    text = text.replace("Requester, Rita <rita@example.org>", "Rita Requester [mailto:rita@example.org]")
    assert post(desk, mail("alex@example.org", "FW: Printer on floor 3 jams", text))["reason"] == "raised by alex for rita"


def failure_notices(services: Any, recipient: str) -> list[OutboxMessage]:
    return mails_of(services, "mail.failed", recipient)


def test_a_sender_whose_mail_was_not_taken_is_told_why_once(desk: Desk, services):
    number, asked = asked_to_approve(desk, services)
    reply = mail("mona@example.org", "Re: laptop", "Reject", In_Reply_To=f"<{asked.event_id}@processdesk>")
    assert post(desk, reply)["outcome"] == "failed"
    [told] = failure_notices(services, EMAILS["mona"])
    assert told.subject == "Your e-mail was not taken: Re: laptop"
    assert told.body.startswith("The service desk could not take your e-mail “Re: laptop”: form data is invalid: "
                                "approval_comment is required")
    assert f"/tickets/{number}" in told.body
    # delivered again, it fails again, and she is not told twice
    assert post(desk, reply)["outcome"] == "failed"
    assert len(failure_notices(services, EMAILS["mona"])) == 1
    # unknown senders are refused, not failed: nobody is written to
    assert post(desk, mail("nobody@example.net", "Hello", "Hi"))["outcome"] == "refused"
    assert failure_notices(services, "nobody@example.net") == []


def test_a_delegate_decides_by_replying_to_the_mail_of_an_approval_handed_to_them(desk: Desk, services):
    """mona's approval waits when her absence starts: it goes to lena, whose mail of it says how to
    answer by reply, and her reply decides it, as hers (out of office, app/services/away.py)."""
    number, _asked = asked_to_approve(desk, services)
    services.users.create_user("lena", "password-1234", roles=["approver"], groups=["LineManagers"],
                               email="lena@example.org")
    services.session.commit()
    away = desk.client.put("/api/v1/users/me/away", headers=desk.auth("mona"),
                           json={"delegate": "lena", "until": "2026-01-12T09:00:00Z"})
    assert away.status_code == 200, away.get_json()
    [handed] = mails_of(services, "task.delegated", "lena@example.org")
    assert handed.body.endswith("\n\nTo decide by e-mail, reply with APPROVE or REJECT as the first word, and your "
                                "reason after it.")
    answer = post(desk, mail("lena@example.org", f"Re: {handed.subject}", "Approve, for mona.",
                             In_Reply_To=f"<{handed.event_id}@processdesk>"))
    assert (answer["outcome"], answer["number"]) == ("decided", number), answer
    assert answer["reason"].startswith("yes from lena (approve_manager")
