"""Which new tasks are announced as approvals (``execution.is_approval``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.services.execution import is_approval


def view(bpmn_id: str, name: str, **properties: str) -> SimpleNamespace:
    return SimpleNamespace(bpmn_id=bpmn_id, name=name, properties=properties)


@pytest.mark.parametrize(("task", "expected"), [
    (view("cab_vote", "CAB approval", excludeUsersVars="requester"), True),
    (view("approve_manager", "Line manager", excludeUsersVars="requester"), True),
    (view("implement", "Implement change", excludeUsersVars="approvers"), False),  # separation of duties only
    (view("implement", "Implement change"), False),
    (view("sign_off", "Sign off the budget", approval="true"), True),
    (view("approve_x", "Approve (for the record)", approval="false"), False),
    (view("sign_off", "Sign off", approval=" Yes "), True),
])
def test_approvals_are_named_or_marked(task, expected):
    assert is_approval(task) is expected  # type: ignore[arg-type]
