"""One e-mail delivered twice at the same moment (two mail servers, or a retry racing the first
try) makes one record: one delivery creates it, the other waits for it and answers a duplicate.

Runs against a real, committed database (a SQLite file, or a fresh PostgreSQL database when
TEST_DATABASE_URL is set), with threads released together by a barrier.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from app import create_app
from app.clock import FrozenClock
from app.models import InboundMail, Ticket
from tests.conftest import TEST_CONFIG, drop_fresh_database, fresh_database_url
from tests.http.desk import Desk
from tests.http.test_mail_gateway import TOKEN, mail

RITA = "rita@example.org"


@pytest.fixture()
def live(tmp_path: Any) -> Any:
    url = fresh_database_url(tmp_path, "mail_gateway_races")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url, "MAIL_INBOUND_TOKEN": TOKEN}, clock=FrozenClock())
    services = application.extensions["processdesk"].services()
    desk = Desk(application.test_client(), services)
    services.users.update_user(None, "rita", {"email": RITA})
    services.session.commit()
    yield application, desk
    services.session.close()
    application.extensions["processdesk"].db_engine.dispose()
    drop_fresh_database(url)


def test_a_message_delivered_twice_at_once_makes_one_record(live: Any) -> None:
    application, desk = live
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "message/rfc822"}
    for round_no in range(3):
        raw = mail(RITA, f"Printer jams, round {round_no}")
        barrier = threading.Barrier(2)
        answers: list[Any] = [None, None]

        def deliver(i: int, raw: bytes = raw, barrier: threading.Barrier = barrier, answers: list[Any] = answers) -> None:
            client = application.test_client()
            barrier.wait()
            response = client.post("/api/v1/mail/inbound", data=raw, headers=headers)
            answers[i] = (response.status_code, response.get_json())

        threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        codes = sorted(code for code, _ in answers)
        assert codes == [200, 200], answers
        created = [body for code, body in answers if code == 200 and not body["duplicate"]]
        assert len(created) == 1 and created[0]["outcome"] == "created", answers
        # and any later delivery is a duplicate too
        again = desk.client.post("/api/v1/mail/inbound", data=raw, headers=headers).get_json()
        assert again["duplicate"] and again["number"] == created[0]["number"]
    session = desk.services.session
    assert session.scalar(select(func.count()).select_from(Ticket)) == 3
    assert session.scalar(select(func.count()).select_from(InboundMail)) == 3
    assert desk.services.audit.verify().ok
    session.close()
