"""What an operations handler may know of the service task calling it, beyond its evaluated params.

A service task's parameters are Python expressions, evaluated before the platform's operation
runs, so the operation sees values only. Some operations need to know which values the diagram
wrote as they are, and to read the task's data: a ``notify`` subject written as one string literal
is a template of the process's own words, translated per reader and then filled in from the data
(app/services/operations.py), while a subject computed by an expression is text made from data,
which must never be read as a template. The engine says which during the call
(:func:`current_operation_call`), without changing the handler's ``(name, params)`` signature.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OperationCall:
    """The service task an operation runs for.

    ``data``: the task's data (read it, never change it). ``literals``: each parameter written as
    one string literal (``"Disk full on {{ host }}"``), by name, with its text."""

    data: Mapping[str, Any]
    literals: Mapping[str, str]


_current: ContextVar[OperationCall | None] = ContextVar("processdesk_operation_call", default=None)


def current_operation_call() -> OperationCall | None:
    """The service task whose operation runs now (None outside an engine step's service call)."""
    return _current.get()


@contextmanager
def operation_call(call: OperationCall) -> Iterator[None]:
    token = _current.set(call)
    try:
        yield
    finally:
        _current.reset(token)


def literal_text(expression: Any) -> str | None:
    """The text of ``expression`` when it is one string literal (adjacent literals joined, as
    Python joins them), else None: an expression that computes its value (``"a" + title``), or no
    text at all."""
    return _literal_text(expression) if isinstance(expression, str) else None


@functools.lru_cache(maxsize=1024)
def _literal_text(expression: str) -> str | None:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    body = tree.body
    return body.value if isinstance(body, ast.Constant) and isinstance(body.value, str) else None
