"""Whoever's step opens a task is not told about it, unless it waits on them by name."""

from __future__ import annotations

from tests.http.desk import Desk
from tests.http.test_e2e_change import ASSESS_MEDIUM, raise_change


def test_an_assessor_who_sits_on_the_cab_hears_of_her_own_vote(client, services):
    desk = Desk(client, services)
    joined = desk.client.patch("/api/v1/users/cab1", headers=desk.auth("ada"),
                               json={"groups": ["CAB", "ChangeManagers"]})
    assert joined.status_code == 200, joined.get_json()
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "cab1", ASSESS_MEDIUM)
    assert desk.ready(number) == ["cab_vote"] * 3
    for member in ("cab1", "cab2", "cab3"):
        asked = [n["subject"] for n in desk.notifications(member) if n["subject"].startswith("Approval needed")]
        assert asked == [f"Approval needed: CAB approval ({number}: Upgrade the mail gateway)"], (member, asked)
