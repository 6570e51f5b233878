"""A loop task's record of its merged iterations, without one entry per compacted round.

SpiffWorkflow's standard loop keeps ``internal_data["merged"]``, a list with the id of every
finished iteration it merged: the loop's count is its length (``loopMaximum``, the next
iteration's number), and multi-instance reads its last entry. Compaction removes finished
iterations from the task tree (``WorkflowRun.compact``) but the count must stay, so it used to
leave a one-character placeholder per removed round: after 10,000 rounds 40 KB of the stored
state were placeholders, and every step copied and re-encoded them (issue #6, b and e).

``MergedIterations`` counts the removed rounds instead and keeps only the ids of the rounds still
in the tree. It answers what SpiffWorkflow asks of the list: ``len`` (all merged rounds),
``append`` (a newly merged one), ``[-1]`` (the last one still in the tree) and iteration (those
still in the tree). It is stored as ``{"dropped": n, "ids": [...]}`` under its own typename.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class MergedIterations:
    __slots__ = ("dropped", "ids")

    def __init__(self, dropped: int = 0, ids: list[str] | None = None) -> None:
        self.dropped = dropped
        self.ids: list[str] = list(ids or [])

    @classmethod
    def compacted(cls, merged: Any, removed: set[str]) -> MergedIterations:
        """``merged`` (a list as SpiffWorkflow keeps it, with "-" for rounds removed before, or
        one of ours) after the rounds ``removed`` left the tree."""
        if isinstance(merged, MergedIterations):
            kept = [m for m in merged.ids if m not in removed]
            return cls(merged.dropped + len(merged.ids) - len(kept), kept)
        items = list(merged)
        kept = [m for m in items if m != "-" and m not in removed]
        return cls(len(items) - len(kept), kept)

    def __len__(self) -> int:
        return self.dropped + len(self.ids)

    def append(self, task_id: str) -> None:
        self.ids.append(task_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __getitem__(self, index: int) -> str:
        return self.ids[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MergedIterations) and (self.dropped, self.ids) == (other.dropped, other.ids)

    def __repr__(self) -> str:
        return f"MergedIterations(dropped={self.dropped}, ids={self.ids!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"dropped": self.dropped, "ids": list(self.ids)}

    @classmethod
    def from_dict(cls, dct: dict[str, Any]) -> MergedIterations:
        return cls(int(dct["dropped"]), [str(i) for i in dct["ids"]])
