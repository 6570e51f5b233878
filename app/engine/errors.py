"""Errors raised by the engine package. Services translate them into ``app.errors``.

They carry what a process owner needs to find the problem: the file, the BPMN element id and
name, and the line (of the XML file for definition errors, of the script for run-time errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class EngineError(Exception):
    """Base class. ``details()`` gives the JSON-ready location of the problem."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        element_id: str | None = None,
        element_name: str | None = None,
        line: int | None = None,
        error_type: str | None = None,
        parts: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.element_id = element_id
        self.element_name = element_name
        self.line = line
        self.error_type = error_type
        #: The values the message says, by name, for a page that says it in another language
        #: (``error_type`` names the sentence); not part of ``details()``.
        self.parts: dict[str, Any] = dict(parts or {})

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("file", "element_id", "element_name", "line", "error_type"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        return out


class DefinitionError(EngineError):
    """An uploaded BPMN/DMN/form file is invalid (deploy-time)."""


class XmlRejected(DefinitionError):
    """The XML is malformed or uses forbidden constructs (DOCTYPE, entities)."""


class TaskNotReady(EngineError):
    """The task exists but cannot be completed now (not READY, not a human task, or cancelled)."""


class TaskNotFound(EngineError):
    """No task with that id in this workflow."""


class MessageNotExpected(EngineError):
    """Nothing in the instance is waiting for this message."""


class StateVersionError(EngineError):
    """A stored state was written by a serializer version this build does not know."""
