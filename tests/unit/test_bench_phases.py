"""The benchmark's phase timer (bench/phases.py): what it wraps, counts and puts back."""

from __future__ import annotations

import app.db
import app.services.instances
from bench.phases import PHASES, timed


def test_every_phase_names_code_that_exists():
    with timed(PHASES) as (_totals, missing):
        assert missing == []


def test_a_phase_counts_its_calls_and_is_put_back_afterwards():
    original = app.db.get_by_id
    imported = app.services.instances.get_by_id  # the same function, imported by name
    assert imported is original
    with timed((("app.db", None, "get_by_id"), ("app.db", None, "no_such_function"))) as (totals, missing):
        assert app.db.get_by_id is not original and app.services.instances.get_by_id is app.db.get_by_id
        assert app.db.get_by_id(None, object, None) is None  # type: ignore[arg-type]
        assert app.db.get_by_id(None, object, None) is None  # type: ignore[arg-type]
    assert missing == ["app.db:no_such_function"]
    seconds, calls = totals["get_by_id"]
    assert calls == 2 and seconds >= 0
    assert app.db.get_by_id is original and app.services.instances.get_by_id is original
