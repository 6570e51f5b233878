"""What changed between two versions of a process beyond its drawing: its forms, its decision
tables and its record mapping.

The compare page draws the two diagrams and marks the elements whose names or conditions differ
(static/js/modeler.js); a version also changes when only a form or a DMN table it uses does (a new
required field, a rule that now gives P9), and those the drawing cannot show (QA: "The two versions
have the same elements" for a version whose priority matrix changed). Each version stores what it
was deployed with: its forms as they were (``ProcessDefinition.forms``), its decision tables
compiled into its spec (``spec_json``), its record mapping. :func:`compare` reads those, so an
older version's files are compared as they were then, not as the files are now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.models import ProcessDefinition


@dataclass(frozen=True)
class PartChange:
    """One form, decision table or the record mapping: ``state`` "added", "removed" or "changed",
    and for a change, what changed in it (short sentences, in English: the page words the kinds)."""

    kind: str  # "form" | "decision" | "record"
    name: str
    state: str
    details: list[str] = field(default_factory=list)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _decisions(spec_json: str) -> dict[str, dict[str, Any]]:
    """The decision tables a version's spec holds, by the business rule task's BPMN id (a table's
    own id when the task has none), from the top process and its subprocesses alike."""
    found: dict[str, dict[str, Any]] = {}
    payload = json.loads(spec_json)
    specs = [payload.get("spec") or {}, *(payload.get("subprocess_specs") or {}).values()]
    for spec in specs:
        for task in (spec.get("task_specs") or {}).values():
            table = task.get("decision_table") if isinstance(task, dict) else None
            if isinstance(table, dict):
                found[str(task.get("bpmn_id") or table.get("id"))] = table
    return found


def _rule_text(rule: dict[str, Any]) -> str:
    """A rule as one line: its input cells, then its output cells."""
    ins = ", ".join(" ".join(e.get("lhs") or []) or "-" for e in rule.get("input_entries") or [])
    outs = ", ".join(str(e.get("text") or "") for e in rule.get("output_entries") or [])
    return f"{ins} -> {outs}"


def _table_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    details = []
    if old.get("hit_policy") != new.get("hit_policy"):
        details.append(f"hit policy {old.get('hit_policy')} -> {new.get('hit_policy')}")
    for part in ("inputs", "outputs"):
        columns_before = [str(c.get("expression") or c.get("name") or c.get("label")) for c in old.get(part) or []]
        columns_after = [str(c.get("expression") or c.get("name") or c.get("label")) for c in new.get(part) or []]
        if columns_before != columns_after:
            details.append(f"{part} {', '.join(columns_before) or '-'} -> {', '.join(columns_after) or '-'}")
    rules_before = [_rule_text(r) for r in old.get("rules") or []]
    rules_after = [_rule_text(r) for r in new.get("rules") or []]
    for number, (before, after) in enumerate(zip(rules_before, rules_after, strict=False), start=1):
        if before != after:
            details.append(f"rule {number}: {before}  =>  {after}")
    if len(rules_after) > len(rules_before):
        details.extend(f"rule {n} added: {text}" for n, text in enumerate(rules_after, start=1) if n > len(rules_before))
    elif len(rules_before) > len(rules_after):
        details.extend(f"rule {n} removed: {text}" for n, text in enumerate(rules_before, start=1) if n > len(rules_after))
    if not details and _canonical(old) != _canonical(new):
        details.append("descriptions or labels")
    return details


def _form_changes(old: Any, new: Any) -> list[str]:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    details = []
    before, after = old.get("properties") or {}, new.get("properties") or {}
    if isinstance(before, dict) and isinstance(after, dict):
        added = [k for k in after if k not in before]
        removed = [k for k in before if k not in after]
        changed = [k for k in after if k in before and _canonical(before[k]) != _canonical(after[k])]
        for words, names in (("fields added", added), ("fields removed", removed), ("fields changed", changed)):
            if names:
                details.append(f"{words}: {', '.join(names)}")
    required_before, required_after = set(old.get("required") or []), set(new.get("required") or [])
    if required_after - required_before:
        details.append(f"now required: {', '.join(sorted(required_after - required_before))}")
    if required_before - required_after:
        details.append(f"no longer required: {', '.join(sorted(required_before - required_after))}")
    rest = ({k: v for k, v in old.items() if k not in ("properties", "required")},
            {k: v for k, v in new.items() if k not in ("properties", "required")})
    if _canonical(rest[0]) != _canonical(rest[1]):
        details.append("its other settings (title, conditions, ordering)")
    return details


def _parts(older: dict[str, Any], newer: dict[str, Any], kind: str, describe: Any) -> list[PartChange]:
    changes = []
    for name in sorted(set(older) | set(newer)):
        if name not in older:
            changes.append(PartChange(kind, name, "added"))
        elif name not in newer:
            changes.append(PartChange(kind, name, "removed"))
        elif _canonical(older[name]) != _canonical(newer[name]):
            changes.append(PartChange(kind, name, "changed", describe(older[name], newer[name])))
    return changes


def compare(older: ProcessDefinition, newer: ProcessDefinition) -> list[PartChange]:
    """What differs between two versions' forms, decision tables and record mapping, in that order."""
    changes = _parts(dict(older.forms or {}), dict(newer.forms or {}), "form", _form_changes)
    changes += _parts(_decisions(older.spec_json), _decisions(newer.spec_json), "decision", _table_changes)
    before, after = older.record_mapping or {}, newer.record_mapping or {}
    if _canonical(before) != _canonical(after):
        fields = sorted({k for part in ("fields", "details") for k in set((before.get(part) or {}).items())
                         ^ set((after.get(part) or {}).items())})
        changes.append(PartChange("record", "record mapping", "changed",
                                  [f"mapped: {', '.join(str(name) for name, _var in fields)}"] if fields else []))
    return changes
