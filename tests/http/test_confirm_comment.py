"""What a requester says when she confirms an incident's resolution reaches the record as her
comment, like a reason for reopening (the mapping's ``comments``: ``confirmation_comment``)."""

from __future__ import annotations

import pytest

from tests.http.desk import Desk
from tests.http.test_reopen_comment import comments, resolve, resolved_incident


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def test_the_comment_given_when_confirming_becomes_the_requesters_comment(desk: Desk):
    number = resolved_incident(desk)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "comment": "  Thanks! 谢谢\n"})
    record = desk.record(number)
    assert record["status"] == "closed" and record["details"]["closed_reason"] == "confirmed by requester"
    assert comments(desk, number) == [("rita", "Thanks! 谢谢")]
    assert comments(desk, number, "rita") == [("rita", "Thanks! 谢谢")]


def test_confirming_without_a_comment_adds_none(desk: Desk):
    number = resolved_incident(desk)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "comment": "   "})
    assert desk.record(number)["status"] == "closed" and comments(desk, number) == []


def test_after_a_reopen_each_answer_is_one_comment(desk: Desk):
    number = resolved_incident(desk)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "comment": "still broken"})
    resolve(desk, number)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "comment": "works now"})
    assert desk.record(number)["status"] == "closed"
    # the reopen reason once (not also as a confirmation comment), then the confirmation
    assert comments(desk, number) == [("rita", "still broken"), ("rita", "works now")]
