"""Draw the benchmark-only diagrams in bench/fixtures/ with tools/bpmn_builder.py.

Run from the repository root: ``.venv/bin/python bench/fixtures_gen.py`` rewrites
``bench/fixtures/loop_flow.bpmn``; ``bench/run.py`` refuses to run when the file on disk differs
from what this module draws (so the committed diagram and its description cannot drift apart).

loop_flow: one user task ("Work one round") inside an embedded subprocess carrying
``standardLoopCharacteristics`` with the loop condition ``again`` (tested after each round, so the
first round always runs). The task has no lane, so it belongs to whoever started the instance; its
form (bench/fixtures/loop-step.json) asks for ``again``. Completing it with ``again: true`` opens the
next round; ``again: false`` ends the instance. This is the shape spiffworkflow.md §7 recommends for
repeat cycles (the task tree keeps its depth), and the one incident_management.bpmn uses for reopen
and investigation rounds.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.bpmn_builder import Diagram, pretty  # noqa: E402

LOOP_PROCESS_ID = "loop_flow"
LOOP_FORM = "loop-step.json"
LOOP_TASK = "work_round"


def round_diagram() -> Diagram:
    d = Diagram("loop_round", "One round")
    d.node("round_start", "start", "Round starts", col=0)
    d.node(
        LOOP_TASK, "user", "Work one round", col=1,
        properties={"formJsonSchemaFilename": LOOP_FORM},
        instructions="Round {{ round_no }}: do the work, then say whether another round is needed.",
    )
    d.node("round_end", "end", "Round done", col=2)
    d.chain("round_start", LOOP_TASK, "round_end")
    return d


def loop_flow() -> Diagram:
    d = Diagram(LOOP_PROCESS_ID, "Benchmark loop",
                documentation="Benchmark only: a user task repeated in a looping embedded subprocess while `again`.")
    d.node("start", "start", "Start", col=0)
    d.node("prepare", "script", "Prepare", col=1, script="again = True\nround_no = 0\n")
    d.node("rounds", "sub", "Rounds", col=2, inner=round_diagram(), loop_condition="again",
           documentation="Repeats while the last round answered again = true.")
    d.node("end", "end", "Done", col=3)
    d.chain("start", "prepare", "rounds", "end")
    return d


def loop_flow_xml() -> str:
    return pretty(loop_flow().to_xml())


def main() -> None:
    target = FIXTURES / f"{LOOP_PROCESS_ID}.bpmn"
    target.write_text(loop_flow_xml(), encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
