"""A refused task form is answered with a redirect to the task page, which shows the input and the
errors once (Post/Redirect/Get, app/web/refused_forms.py): what the session keeps for it is
bounded, only for that task, and only for a little while."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from app.web.refused_forms import KEEP_SECONDS, MAX_COOKIE_BYTES
from tests.web.conftest import INCIDENT, text_of


def investigate(desk: Any) -> tuple[str, int]:
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    return number, desk.task_id(number, "investigate", "nina")


def cookie_bytes(response: Any) -> int:
    cookies = [v for v in response.headers.getlist("Set-Cookie") if v.startswith("session=")]
    return len(cookies[0]) if cookies else 0


def test_the_errors_and_input_are_shown_once_on_the_task_page(web, desk):
    number, task_id = investigate(desk)
    web.login("nina")
    refused = web.post(f"/tasks/{task_id}", {"outcome": "resolve", "resolution_notes": "", "cause_category": "network"})
    assert refused.status_code == 303 and refused.headers["Location"] == f"/tasks/{task_id}"
    page = text_of(web.get(f"/tasks/{task_id}"))
    assert "is required when “Outcome” is Resolved" in page
    assert '<option value="network" selected>' in page
    assert 'name="csrf_token"' in page
    again = text_of(web.get(f"/tasks/{task_id}"))
    assert "is required when" not in again and '<option value="network" selected>' not in again
    assert desk.ready(number) == ["investigate"]


def test_another_task_page_does_not_show_them(web, desk):
    _number, task_id = investigate(desk)
    _other_number, other = investigate(desk)
    web.login("nina")
    assert web.post(f"/tasks/{task_id}", {"outcome": "resolve"}).status_code == 303
    assert "is required when" not in text_of(web.get(f"/tasks/{other}"))
    assert "is required when" in text_of(web.get(f"/tasks/{task_id}"))  # still kept for its own page


def test_a_refusal_seen_long_after_is_not_shown(web, desk, clock):
    _number, task_id = investigate(desk)
    web.login("nina")
    assert web.post(f"/tasks/{task_id}", {"outcome": "resolve"}).status_code == 303
    clock.advance(timedelta(seconds=KEEP_SECONDS + 1))
    assert "is required when" not in text_of(web.get(f"/tasks/{task_id}"))


def test_a_form_too_large_for_the_cookie_is_answered_in_place_as_before(web, desk):
    """Text that does not compress (random letters) past the cookie's room: nothing is kept, the
    page answers 422 itself with the input, and the session cookie stays small."""
    number, task_id = investigate(desk)
    web.login("nina")
    long_text = os.urandom(3000).hex()  # 6,000 characters
    # pending, but not on whom: refused, with notes far longer than a cookie holds
    refused = web.post(f"/tasks/{task_id}", {"outcome": "pending", "resolution_notes": long_text})
    assert refused.status_code == 422
    assert long_text in text_of(refused)
    assert cookie_bytes(refused) < MAX_COOKIE_BYTES + 200
    assert desk.ready(number) == ["investigate"]
