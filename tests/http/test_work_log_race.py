"""Time worked logged twice at the same moment by one person: a day holds 24 hours even then.

Two requests of 1,000 minutes for the same day, on two records, released together by a barrier
against a real, committed database: one is logged, the other refused naming ``minutes`` (on
PostgreSQL both read the day's old sum before the writers took turns)."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import WorkLog
from tests.http.desk import committed_desk
from tests.http.test_e2e_incident import START


@pytest.fixture()
def live(tmp_path: Any) -> Any:
    with committed_desk(tmp_path, "worklog") as pair:
        yield pair


def test_two_entries_at_once_do_not_make_a_day_longer_than_24_hours(live: Any) -> None:
    application, desk = live
    numbers = [desk.start("rita", "incident_management", {**START, "title": f"Race {i}"})["data"]["record_number"]
               for i in range(2)]
    headers = desk.auth("alex")
    desk.services.session.close()
    for round_ in range(3):
        day = f"2026-01-0{round_ + 1}"
        barrier = threading.Barrier(2)
        codes: list[Any] = [None, None]

        def post(i: int, number: str, barrier: threading.Barrier = barrier, day: str = day,
                 codes: list[Any] = codes) -> None:
            client = application.test_client()
            barrier.wait()
            answer = client.post(f"/api/v1/tickets/{number}/time-worked", headers=headers,
                                 json={"minutes": 1000, "worked_on": day})
            codes[i] = (answer.status_code, answer.get_json())

        threads = [threading.Thread(target=post, args=(i, number)) for i, number in enumerate(numbers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sorted(code for code, _ in codes) == [201, 422], codes
        refused = next(body for code, body in codes if code == 422)
        assert list(refused["details"]["fields"]) == ["minutes"]
        session = desk.services.session
        logged = session.scalar(select(func.sum(WorkLog.minutes)).where(WorkLog.worked_on == date.fromisoformat(day)))
        session.close()
        assert logged == 1000
