"""Which values an instance can store: the shape task data must have to survive a save.

An instance is saved as JSON (``serializer.dump_state``) and its data snapshot and audit payloads
as canonical JSON (sorted keys). Some values a script can build break that save, and a save that
fails after the engine step is a server error (and, for a new instance, a lost one):

- an integer past Python's int-to-text limit (``10**100000``: 4,300 digits is the limit);
- nesting deeper than :data:`MAX_DATA_DEPTH`, or a container that holds itself
  (``a.append(a)``): JSON encoding and SpiffWorkflow's (recursive) restore and copies run out of
  stack long before a thousand levels;
- dict keys JSON cannot write (a tuple) or cannot sort (text and number keys mixed);
- any other type the state serializer does not know (``timezone.utc``, bytes, a range, an
  exception, a frozenset ...).

:func:`problem` finds the first such value without recursion, so it is safe on any input. The
engine uses it on what scripts leave behind (``sandbox.RestrictedEnvironment.execute``: the
script fails, naming its task) and after every engine step on everything else
(``runtime.WorkflowRun``: the instance fails, naming the task, and the value is dropped).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from .iterations import MergedIterations

#: The deepest nesting of lists and dicts kept in task data (the API refuses request bodies
#: nested more than 64 levels; scripts have no reason to go near this).
MAX_DATA_DEPTH = 100
#: Integers stored in task data may have at most this many digits (Python refuses to write an
#: int of more than 4,300 digits as text, so the state could not be saved).
MAX_INT_DIGITS = 4_000
#: At most this many values (list items, dict entries) in one piece of task data, counted as it is
#: written out: a list shared by reference is written in full at every place it appears.
MAX_DATA_VALUES = 1_000_000
_MAX_INT_BITS = 13_288  # any int of at most this many bits has at most 4,001 digits

#: Types stored as they are (the serializer registers the last six).
_ATOMS = (str, float, type(None), datetime, date, timedelta, Decimal, UUID, MergedIterations)
_CONTAINERS = (dict, list, tuple, set)
#: The common leaves, skipped without further checks.
_PLAIN = frozenset({str, float, bool, type(None)})


class UnstorableData(ValueError):
    """A script left a value in task data that the instance could not store."""


def _key_kind(key: Any) -> str | None:
    if isinstance(key, str):
        return "text"
    if isinstance(key, int):
        return "number" if key.bit_length() <= _MAX_INT_BITS else None
    if isinstance(key, float):
        return "number"
    if key is None:
        return "none"
    return None


def _atom_problem(value: Any) -> str | None:
    if isinstance(value, int):  # bool too
        if value.bit_length() > _MAX_INT_BITS:
            return f"an integer with more than {MAX_INT_DIGITS:,} digits"
        return None
    if isinstance(value, _ATOMS):
        return None
    return f"a value of type '{type(value).__name__}', which cannot be stored (store text, numbers, lists or dicts)"


def problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as task data, or None if it can. Never recurses."""
    return Checker().problem(value)


class Checker:
    """:func:`problem` for many values that share parts (the data of several tasks): a container
    already checked is not walked again, unless it is met deeper than before.

    Its size is still counted as often as it is written out (``t = [t, t]`` sixty times is 2**60
    values in JSON), while the check itself stays linear in the objects there are. After a value
    with a problem, use a new Checker (what it remembers of that walk is incomplete).
    """

    def __init__(self, max_depth: int = MAX_DATA_DEPTH, max_values: int = MAX_DATA_VALUES) -> None:
        self.max_depth = max_depth
        self.max_values = max_values
        self._walked: dict[int, int] = {}  # container id -> shallowest depth it was checked at
        self._sizes: dict[int, int] = {}  # container id -> values it expands to when written out
        self._held: list[Any] = []  # the containers remembered by id, kept alive so no id is reused

    def problem(self, value: Any) -> str | None:
        if type(value) in _PLAIN:
            return None
        walked, sizes, max_depth = self._walked, self._sizes, self.max_depth
        path: set[int] = set()  # containers being walked (one met again inside itself: a cycle)
        stack: list[tuple[Any, int, bool]] = [(value, 0, False)]
        while stack:
            item, depth, leaving = stack.pop()
            if type(item) in _PLAIN:
                continue
            if leaving:
                marker = id(item)
                path.discard(marker)
                children = item.values() if isinstance(item, dict) else item
                size = 1 + sum(sizes.get(id(child), 1) for child in children)
                if size > self.max_values:
                    return (f"data that is written out as more than {self.max_values:,} values "
                            "(lists or dicts repeated inside each other)")
                sizes[marker] = size
                continue
            if not isinstance(item, _CONTAINERS):
                reason = _atom_problem(item)
                if reason:
                    return reason
                continue
            marker = id(item)
            if marker in path or depth >= max_depth:
                return f"lists or dicts nested more than {max_depth} levels deep (or one that contains itself)"
            if walked.get(marker, max_depth) <= depth:
                continue
            walked[marker] = depth
            self._held.append(item)
            path.add(marker)
            stack.append((item, depth, True))
            if isinstance(item, dict):
                kinds = set()
                for key in item:
                    kind = _key_kind(key)
                    if kind is None:
                        return f"a dict key of type '{type(key).__name__}' (keys must be text)"
                    kinds.add(kind)
                if len(kinds) > 1:
                    return "a dict whose keys mix text and numbers (keys must be text)"
                stack.extend((child, depth + 1, False) for child in item.values())
            else:
                stack.extend((child, depth + 1, False) for child in item)
        return None
