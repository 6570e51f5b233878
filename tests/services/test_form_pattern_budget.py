"""The time limit on a form's patterns counts the matching, not the rest of the validation.

Under load (threads of a worker waiting for each other, a slow directory lookup for a field's
group choices) a validation can take longer than the patterns' whole budget before it reaches
them; a simple pattern on a short value was then refused as "could not be checked against the
pattern \\S in time" (QA: a note "back on it" on an incident's resume form, sent while a comment
landed on the same record).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.services import forms
from app.services.forms import validate_submission

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["owner", "note"],
    "properties": {
        "owner": {"type": "string", "title": "Owner", "oneOf": "options_from_group:NetworkTeam"},
        "note": {"type": "string", "title": "Note", "maxLength": 200, "pattern": "\\S"},
    },
}


class SlowDirectory:
    """Group members, looked up slowly: the monotonic clock the validation reads moves on 5 s per
    lookup (time.monotonic stands still otherwise, so only this lookup takes time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        clock = type("Clock", (), {"monotonic": staticmethod(lambda: self.now)})
        monkeypatch.setattr(forms, "time", clock)

    def __call__(self, group: str) -> list[tuple[str, str]]:
        self.now += 5.0
        return [("nina", "Nina")]


def test_a_slow_lookup_before_the_patterns_does_not_time_them_out(monkeypatch: pytest.MonkeyPatch) -> None:
    members = SlowDirectory(monkeypatch)
    clean = validate_submission(SCHEMA, None, {"owner": "nina", "note": "back on it"}, {}, members=members)
    assert clean == {"owner": "nina", "note": "back on it"}

