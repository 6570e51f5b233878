"""What the retention purge means for the mail gateway (app/services/retention.py): a message
delivered again inside RETENTION_INBOUND_MAIL_DAYS is a duplicate, after it a new message; a reply
to a mail whose outbox row was purged still finds its record by the number in its subject."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.models import InboundMail, OutboxMessage
from tests.http.desk import Desk
from tests.http.test_mail_gateway import EMAILS, app, comments, mail, new_incident, post  # noqa: F401 - app: the fixture
from tests.http.test_mail_gateway import desk as desk  # noqa: F401 - the fixture

DAY = timedelta(days=1)


def test_a_message_delivered_again_is_a_duplicate_until_its_row_is_purged(desk: Desk, services, clock):
    raw = mail()
    first = post(desk, raw)
    period = DAY * services.runtime.config["RETENTION_INBOUND_MAIL_DAYS"]
    clock.advance(period - DAY)
    assert services.retention.purge().deleted["inbound_mail"] == 0
    again = post(desk, raw)
    assert again["duplicate"] and again["number"] == first["number"]
    clock.advance(DAY * 2)
    assert services.retention.purge().deleted["inbound_mail"] == 1
    later = post(desk, raw)  # forgotten: taken as a new message, as the README says
    assert (later["outcome"], later["duplicate"]) == ("created", False) and later["number"] != first["number"]
    assert len(services.session.scalars(select(InboundMail)).all()) == 1


def test_a_reply_to_a_purged_mail_still_finds_its_record_by_the_subject(desk: Desk, services, clock):
    number = new_incident(desk)
    post(desk, mail("alex@example.org", f"{number}: anything", "Please send the model."))  # mails rita
    ours = services.session.scalars(select(OutboxMessage).where(
        OutboxMessage.channel == "email", OutboxMessage.recipient == EMAILS["rita"])).all()[-1]
    services.session.execute(update(OutboxMessage).values(status="sent", sent_at=clock.now()))
    services.session.commit()
    clock.advance(DAY * (services.runtime.config["RETENTION_OUTBOX_SENT_DAYS"] + 1))
    assert services.retention.purge().deleted["outbox_message"] >= 1
    assert services.session.get(OutboxMessage, ours.id, populate_existing=True) is None
    reply = mail("rita@example.org", f"Re: [{number}] your question", "It is the HP in room 3.12",
                 In_Reply_To=f"<{ours.event_id}@processdesk>")
    answer = post(desk, reply)
    assert (answer["outcome"], answer["number"]) == ("commented", number)
    assert comments(desk, number)[-1] == ("rita", "It is the HP in room 3.12")
