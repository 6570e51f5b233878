"""A change rejected, revised and then approved no longer carries the rejection as its reason:
not in the record's details (API), not on its page. While it is rejected (and revised) the reason
is shown, and the record's history keeps it after the approval."""

from __future__ import annotations

from tests.http.test_e2e_change import APPROVE, ASSESS_LOW, raise_change
from tests.web.conftest import text_of

REASON = "Plans too thin for the mail gateway."


def test_a_later_approval_clears_the_rejection_from_the_record_and_its_page(web, desk):
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", {"approved": False, "approval_comment": REASON})
    web.login("alex")
    assert desk.record(number)["details"]["rejection_reason"] == REASON
    page = text_of(web.get(f"/tickets/{number}"))
    assert "Reason for rejection" in page and REASON in page

    desk.complete(number, "revise", "alex", {"revision_decision": "resubmit", "revision_notes": "Added detail."})
    assert desk.record(number)["details"]["rejection_reason"] == REASON  # what the next assessment answers
    desk.complete(number, "assess", "cora", ASSESS_LOW)
    desk.complete(number, "manager_approve", "cora", APPROVE)

    record = desk.record(number)
    assert record["status"] == "scheduled" and record["details"]["approvers"] == ["cora"]
    assert record["details"]["rejection_reason"] is None and record["details"]["revision_count"] == 1
    page = text_of(web.get(f"/tickets/{number}"))
    assert "Reason for rejection" not in page and REASON not in page
    # the history still tells of the rejection
    changes = [e["payload"]["changes"] for e in desk.history(instance_id) if e["type"] == "record_updated"]
    assert [c["details.rejection_reason"] for c in changes if "details.rejection_reason" in c] == [REASON, None]
