"""A change's record shows its result beside its status when the status alone would mislead: QA
found a closed change whose rollback failed wearing the same green "Closed" as a successful one."""

from __future__ import annotations

from typing import Any

from tests.http.test_e2e_change import implement_and_verify, raise_change, review
from tests.web.conftest import text_of


def badge(page: str) -> str | None:
    import re

    found = re.search(r'<span class="status outcome-([a-z_]+)" id="ticket-outcome">([^<]+)</span>', page)
    return f"{found.group(1)}: {found.group(2)}" if found else None


def test_a_failed_rollback_is_marked_on_the_closed_change(desk: Any, web: Any) -> None:
    number, _instance_id = raise_change(desk, "standard")
    implement_and_verify(desk, number, verified=False)
    web.login("alex")
    assert badge(text_of(web.get(f"/tickets/{number}"))) == "verification_failed: Verification failed"
    desk.complete(number, "rollback", "ivan", {"rollback_notes": "The snapshot would not restore.",
                                               "rollback_successful": False})
    review(desk, number)
    page = text_of(web.get(f"/tickets/{number}"))
    assert 'id="ticket-status">Closed<' in page
    assert badge(page) == "rollback_failed: Rollback failed"
    web.post("/language", {"lang": "zh_CN"})
    assert badge(text_of(web.get(f"/tickets/{number}"))).startswith("rollback_failed: ")
    assert "Rollback failed" not in badge(text_of(web.get(f"/tickets/{number}")))


def test_a_successful_change_has_no_mark(desk: Any, web: Any) -> None:
    number, _instance_id = raise_change(desk, "standard")
    implement_and_verify(desk, number, verified=True)
    review(desk, number)
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    assert 'id="ticket-status">Closed<' in page and badge(page) is None
