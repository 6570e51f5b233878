"""A record's page shows the desk's staff the requester's other open records (a caller's other
problems, or the same one twice), newest first, five at most and a link to all of them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tests.web.conftest import INCIDENT, text_of


def raise_incident(desk: Any, who: str, title: str) -> tuple[str, int]:
    started = desk.start(who, "incident_management", {**INCIDENT, "title": title})
    return str(started["data"]["record_number"]), int(started["id"])


def listed(page: str) -> list[str]:
    """The record numbers the "Other open records" list holds, in its order."""
    start = page.index('id="requester-open"')
    return re.findall(r'class="number" href="/tickets/([^"]+)"', page[start:page.index("</ul>", start)])


def test_the_staff_see_the_requesters_other_open_records(web, web_factory, desk, services, clock):
    first, _ = raise_incident(desk, "rita", "VPN down")
    clock.advance(timedelta(minutes=5))
    second, _ = raise_incident(desk, "rita", "Printer offline")
    clock.advance(timedelta(minutes=5))
    third, _ = raise_incident(desk, "rita", "VPN still down")
    raise_incident(desk, "mona", "Not rita's")
    web.login("alex")
    page = text_of(web.get(f"/tickets/{third}"))
    assert "Other open records of rita" in page
    assert listed(page) == [second, first]  # newest first; not this one, not mona's
    assert 'id="requester-open-all"' not in page  # every one is listed
    # the requester reads her record without the staff's view of her other ones
    rita = web_factory()
    rita.login("rita")
    assert 'id="requester-open"' not in text_of(rita.get(f"/tickets/{third}"))
    # mona has no other open record: no list
    mona_number = raise_incident(desk, "mona", "Another of mona's")[0]
    assert "Other open records of mona" in text_of(web.get(f"/tickets/{mona_number}"))
    web.post("/language", {"lang": "zh_CN"})
    assert "rita 的其他未关闭记录" in text_of(web.get(f"/tickets/{third}"))


def test_closed_records_are_left_out_and_more_than_five_are_linked(web, desk, services, clock):
    made = []
    for n in range(8):
        made.append(raise_incident(desk, "rita", f"Problem {n}"))
        clock.advance(timedelta(minutes=1))
    cancelled = desk.client.post(f"/api/v1/instances/{made[0][1]}/cancel", headers=desk.auth("alex"),
                                 json={"reason": "A duplicate."})
    assert cancelled.status_code == 200, cancelled.get_json()
    numbers = [number for number, _ in made]
    web.login("alex")
    page = text_of(web.get(f"/tickets/{numbers[-1]}"))
    assert listed(page) == numbers[2:7][::-1]  # the five newest of the six other open ones
    assert "All 6 open records of rita" in page and 'href="/tickets?requester=rita&amp;open=1"' in page
