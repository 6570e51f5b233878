"""An event-based gateway takes one branch: the event that happened first.

BPMN lets the first of the gateway's events decide and discards the others. SpiffWorkflow 3.2's
``EventBasedGateway`` instead runs a branch for every event it has seen by the time it runs. A
message caught while the gateway's timer is already past due (the timer sweep has not come round
yet) is seen together with that timer, and both branches run: two tokens where the diagram drew
one, so a problem waiting for its fix change opened "Verify fix" twice.

Our ``_run_hook`` keeps one seen event before SpiffWorkflow's runs. A timer seen at the same time
as a message came first: a timer is seen only once its due time has passed, and a message is
caught at the moment it arrives. Among events of one kind, the first seen is kept. The deploy
check allows one timer per gateway (library.py), since SpiffWorkflow keeps one due time per
gateway.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway

ORIGINAL = EventBasedGateway._run_hook


def _run_hook(self: Any, my_task: Any) -> Any:
    seen = my_task.internal_data.get("seen_events") or []
    if len(seen) > 1:
        timers = [event for event in seen if isinstance(event.event_definition, TimerEventDefinition)]
        my_task.internal_data["seen_events"] = (timers or seen)[:1]
    return ORIGINAL(self, my_task)


def install() -> None:
    """Idempotent."""
    EventBasedGateway._run_hook = _run_hook  # type: ignore[method-assign]


def uninstall() -> None:
    """SpiffWorkflow's own gateway again (tests show the difference)."""
    EventBasedGateway._run_hook = ORIGINAL  # type: ignore[method-assign]
