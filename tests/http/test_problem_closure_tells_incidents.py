"""Closing a problem tells its incidents that are still open how it ended."""

from __future__ import annotations

import pytest

from tests.http.desk import Desk
from tests.http.test_e2e_problem import CLOSE, RCA_PLAIN, TRIAGE, close_incident, comments, log_problem, open_incident


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def test_open_linked_incidents_get_the_closure_and_closed_ones_do_not(desk: Desk):
    still_open, done = open_incident(desk), open_incident(desk, title="VPN drops again")
    close_incident(desk, done)
    number, _ = log_problem(desk, related_incidents=[still_open, done])
    desk.complete(number, "triage", "paul", TRIAGE)
    desk.complete(number, "analyse_root_cause", "nina", RCA_PLAIN)
    assert [c for c in comments(desk, still_open) if c["author"] == number] == []  # nothing said before the close
    before_done = len(comments(desk, done))

    desk.complete(number, "close_problem", "paul", CLOSE)
    told = [c for c in comments(desk, still_open) if c["author"] == number]
    assert len(told) == 1
    body = told[0]["body"]
    assert body.startswith(f"Problem {number} is closed. Root cause: {RCA_PLAIN['root_cause']}")
    assert CLOSE["closure_notes"] in body and "Fix change" not in body
    assert len(comments(desk, done)) == before_done  # a closed incident hears nothing
    # the requester of the open incident is notified of the comment, and the incident itself stays open
    assert any(n["subject"].startswith(f"New comment on {still_open}") for n in desk.notifications("rita"))
    assert desk.record(still_open)["status"] in ("new", "in_progress")
