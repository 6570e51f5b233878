"""Plain, frozen values the engine hands to the rest of the application."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UserTaskView:
    id: str
    bpmn_id: str
    name: str
    lane: str | None
    process_id: str
    form: str | None
    ui_form: str | None
    instructions: str | None
    documentation: str | None
    data: dict[str, Any] = field(default_factory=dict)
    state: str = "ready"
    manual: bool = True
    #: All spiffworkflow:properties of the task (forms, assignment and separation-of-duty rules).
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineFailure:
    """Why an instance is in error: where, and the script line when a script failed."""

    message: str
    element_id: str | None = None
    element_name: str | None = None
    task_id: str | None = None
    line: int | None = None
    error_type: str | None = None
    error_line: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}
