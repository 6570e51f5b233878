"""One attached file deleted twice at the same moment (a double click, or the uploader and an
agent together): one delete answers 204, the other 404 (never a 500), and the deletion is audited
once.

Runs against a real, committed database (a SQLite file, or a fresh PostgreSQL database when
TEST_DATABASE_URL is set), with threads released together by a barrier.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent
from tests.http.desk import committed_desk
from tests.http.test_e2e_incident import START, triage


@pytest.fixture()
def live(tmp_path: Any) -> Any:
    with committed_desk(tmp_path, "attachment_delete_races") as pair:
        yield pair


def _together(application: Any, path: str, people: list[dict[str, str]]) -> list[int]:
    """Each of ``people`` sends DELETE ``path`` at the same moment; their status codes."""
    barrier = threading.Barrier(len(people))
    codes: list[Any] = [None] * len(people)

    def delete(i: int, headers: dict[str, str]) -> None:
        client = application.test_client()
        barrier.wait()
        codes[i] = client.delete(path, headers=headers).status_code

    threads = [threading.Thread(target=delete, args=(i, who)) for i, who in enumerate(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return codes


def test_a_file_deleted_twice_at_once_is_deleted_and_audited_once(live: Any) -> None:
    application, desk = live
    number = desk.start("rita", "incident_management", START)["data"]["record_number"]
    triage(desk, number)
    rita, nina = desk.auth("rita"), desk.auth("nina")
    for round_no in range(3):
        sent = desk.client.post(f"/api/v1/tickets/{number}/attachments", headers=rita,
                                data={"file": (io.BytesIO(b"log line\n"), f"round{round_no}.log", "text/plain")},
                                content_type="multipart/form-data")
        assert sent.status_code == 201, sent.get_json()
        path = f"/api/v1/tickets/{number}/attachments/{sent.get_json()['id']}"
        desk.services.session.close()
        codes = _together(application, path, [rita, nina])
        assert sorted(codes) == [204, 404], (round_no, codes)
    deleted = desk.services.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event_type == "attachment_deleted"))
    assert deleted == 3
    assert desk.record(number)["attachments"] == []
    assert desk.services.audit.verify().ok
    desk.services.session.close()
