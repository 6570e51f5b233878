"""The shipped processes' end-to-end paths, walked again with every instance moved to the other
version of its process after every step (version 2: each user task's documentation changed, so
every open user task is one the move prepares again, and a boundary timer attached to each, so a
move there arms one and a move back removes it).

Each walk is an end-to-end test of tests/http/test_e2e_*.py run as written, on a desk whose
``complete`` moves the instance after each completion it makes: the same records, statuses, votes,
timers and notifications come out, whichever version each step ran on."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from tests.http import test_e2e_catalog as catalog
from tests.http import test_e2e_change as change
from tests.http import test_e2e_incident as incident
from tests.http import test_e2e_problem as problem
from tests.http.desk import ROOT, Desk
from tests.http.helpers import upload

_USER_TASK = re.compile(r"(<bpmn:userTask\b[^>]*>)(\s*<bpmn:documentation>)?")


_CLOSED_USER_TASK = re.compile(r'<bpmn:userTask id="([^"]+)"((?:(?!</bpmn:userTask>).)*?)</bpmn:userTask>', re.S)


def _nudge(match: re.Match[str]) -> str:
    """A user task followed by a boundary timer that never fires in a test (nine years), ending at once."""
    task_id, whole = match.group(1), match.group(0)
    if "multiInstanceLoopCharacteristics" in whole:
        return whole
    return whole + (
        f'<bpmn:boundaryEvent id="{task_id}_v2nudge" attachedToRef="{task_id}" cancelActivity="false">'
        f'<bpmn:outgoing>{task_id}_v2flow</bpmn:outgoing>'
        f'<bpmn:timerEventDefinition id="{task_id}_v2timer"><bpmn:timeDuration>"P9Y"</bpmn:timeDuration>'
        f'</bpmn:timerEventDefinition></bpmn:boundaryEvent>'
        f'<bpmn:endEvent id="{task_id}_v2end"><bpmn:incoming>{task_id}_v2flow</bpmn:incoming></bpmn:endEvent>'
        f'<bpmn:sequenceFlow id="{task_id}_v2flow" sourceRef="{task_id}_v2nudge" targetRef="{task_id}_v2end"/>')


def second_versions() -> list[tuple[str, bytes]]:
    """Every shipped diagram with each user task's documentation changed, and each (but the
    multi-instance ones) given a boundary timer: moving there adds one to the open tasks, moving
    back removes it."""
    files = []
    for path in sorted((ROOT / "processes").glob("*.bpmn")):
        xml = path.read_text(encoding="utf-8")

        def changed(match: re.Match[str]) -> str:
            if match.group(2):  # documented: the text gains a prefix
                return match.group(1) + match.group(2) + "(v2) "
            return match.group(1) + "<bpmn:documentation>(v2)</bpmn:documentation>"

        new = _CLOSED_USER_TASK.sub(_nudge, _USER_TASK.sub(changed, xml))
        if new != xml:
            files.append((path.name, new.encode("utf-8")))
    return files


class MovingDesk(Desk):
    """A desk that moves an instance to the other version of its process after each step."""

    moves = 0

    def complete(self, number: str, bpmn_id: str, who: str, data: dict[str, Any], status: int = 200) -> dict[str, Any]:
        done = super().complete(number, bpmn_id, who, data, status)
        if status == 200 and done.get("status") in ("running", "error"):
            other = 1 if done["version"] == 2 else 2
            moved = self.client.post(f"/api/v1/instances/{done['id']}/migrate", headers=self.auth("olga"),
                                     json={"version": other})
            assert moved.status_code == 200, (bpmn_id, moved.get_json())
            assert moved.get_json()["version"] == other
            MovingDesk.moves += 1
            return moved.get_json()  # type: ignore[no-any-return]
        return done


WALKS = [
    incident.test_p3_incident_is_triaged_resolved_and_confirmed,
    incident.test_pending_on_a_vendor_then_resume,
    incident.test_reopen_goes_back_to_the_group_and_clears_resolved_at,
    incident.test_p1_runs_the_major_incident_path_and_notifies_service_owners,
    incident.test_late_confirmation_loses_to_the_due_timer,
    change.test_normal_low_risk_change_is_approved_by_a_change_manager,
    change.test_cab_rejection_goes_back_to_the_requester_who_resubmits_and_gets_approval,
    change.test_emergency_change_not_decided_in_time_is_rejected_and_change_managers_are_told,
    problem.test_proactive_problem_is_triaged_analysed_and_closed,
    problem.test_problem_from_incidents_known_error_fix_change_fails_then_passes,
    catalog.test_line_manager_approves_then_fulfilment_and_confirmation,
    catalog.test_not_received_goes_back_to_fulfilment,
    change.test_emergency_change_is_approved_by_the_emergency_cab_in_time,
    change.test_the_named_implementer_may_not_approve_and_an_approver_may_not_implement,
]


@pytest.mark.parametrize("walk", WALKS, ids=[w.__name__.removeprefix("test_") for w in WALKS])
def test_a_walk_stays_the_same_when_every_step_moves_the_instance(walk: Any, client: Any, services: Any,
                                                                  request: Any) -> None:
    desk = MovingDesk(client, services)
    deployed = upload(client, desk.auth("olga"), second_versions())
    assert deployed.status_code == 201, deployed.get_json()
    before = MovingDesk.moves
    arguments = {name: desk if name == "desk" else request.getfixturevalue(name)
                 for name in inspect.signature(walk).parameters}
    walk(**arguments)
    assert MovingDesk.moves > before  # the walk did move its instances
