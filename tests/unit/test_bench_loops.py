"""The benchmark's looping diagrams (bench/fixtures_gen.py) and the loop driver (bench/loop.py)
on both shapes: what they run and record, not how fast."""

from __future__ import annotations

import pytest

from bench import common, loop
from bench.common import BenchError, loop_definitions
from bench.fixtures_gen import DIAGRAMS, diagram_xml


@pytest.mark.parametrize("process_id", sorted(DIAGRAMS))
def test_the_committed_diagrams_are_the_drawn_ones(process_id):
    [(name, bpmn), (form, _schema)] = loop_definitions(process_id)
    assert name == f"{process_id}.bpmn" and form == "loop-step.json"
    assert bpmn.decode() == diagram_xml(process_id)


def test_a_stale_diagram_is_refused(tmp_path, monkeypatch):
    (tmp_path / "loop_drawn.bpmn").write_text(diagram_xml("loop_drawn").replace("Again?", "Again!"))
    monkeypatch.setattr(common, "FIXTURES", tmp_path)
    with pytest.raises(BenchError, match="out of date"):
        loop_definitions("loop_drawn")


@pytest.mark.parametrize("process_id", sorted(DIAGRAMS))
def test_both_loops_run_to_their_goal_and_record_checkpoints(process_id):
    with common.fresh_database("sqlite", "test") as url:
        out = loop.run_loop(url, [10, 20], 24, 24, 0.0, process_id=process_id)
    assert out["error"] is None and out["completed_goal"] and out["rounds_completed"] == 24
    assert set(out["checkpoints"]) == {10, 20} and set(out["sizes"]) == {10, 20}
    assert out["sizes"][20]["human_task_rows"] == 21  # one row a round, kept as history, and the open one
    assert out["paired"][20]["samples"] == 9
