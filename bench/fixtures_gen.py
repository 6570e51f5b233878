"""Draw the benchmark-only diagrams in bench/fixtures/ with tools/bpmn_builder.py.

Run from the repository root: ``.venv/bin/python bench/fixtures_gen.py`` rewrites
``bench/fixtures/loop_flow.bpmn`` and ``bench/fixtures/loop_drawn.bpmn``; ``bench/run.py`` refuses
to run when a file on disk differs from what this module draws (so the committed diagrams and
their descriptions cannot drift apart).

loop_flow: one user task ("Work one round") inside an embedded subprocess carrying
``standardLoopCharacteristics`` with the loop condition ``again`` (tested after each round, so the
first round always runs). The task has no lane, so it belongs to whoever started the instance; its
form (bench/fixtures/loop-step.json) asks for ``again``. Completing it with ``again: true`` opens the
next round; ``again: false`` ends the instance. This is the shape spiffworkflow.md §7 recommends for
repeat cycles (the task tree keeps its depth), and the one incident_management.bpmn uses for reopen
and investigation rounds.

loop_drawn: the same round drawn the way most people draw a loop, with sequence flows: a merge
gateway before the task, an exclusive gateway after it going back to the merge while ``again``.
SpiffWorkflow alone grows its task tree by a few levels a round and fails after a few hundred
rounds (spiffworkflow.md §7); processdesk trims the finished history (app/engine/trim.py).
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
DRAWN_PROCESS_ID = "loop_drawn"
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


def loop_drawn() -> Diagram:
    d = Diagram(DRAWN_PROCESS_ID, "Benchmark loop, drawn with flows",
                documentation="Benchmark only: a user task repeated through a gateway back to a merge while `again`.")
    d.node("start", "start", "Start", col=0)
    d.node("prepare", "script", "Prepare", col=1, script="again = True\nround_no = 0\n")
    d.node("merge", "xor", col=2)
    d.node(
        LOOP_TASK, "user", "Work one round", col=3,
        properties={"formJsonSchemaFilename": LOOP_FORM},
        instructions="Round {{ round_no }}: do the work, then say whether another round is needed.",
    )
    d.node("decide", "xor", "Again?", col=4)
    d.node("end", "end", "Done", col=5)
    d.chain("start", "prepare", "merge", LOOP_TASK, "decide")
    d.flow("decide", "merge", condition="again == True")
    d.flow("decide", "end", condition="again == False")
    return d


#: process id -> its diagram, as bench/run.py deploys it.
DIAGRAMS = {LOOP_PROCESS_ID: loop_flow, DRAWN_PROCESS_ID: loop_drawn}


def diagram_xml(process_id: str) -> str:
    return pretty(DIAGRAMS[process_id]().to_xml())


def loop_flow_xml() -> str:
    return diagram_xml(LOOP_PROCESS_ID)


def main() -> None:
    for process_id in DIAGRAMS:
        target = FIXTURES / f"{process_id}.bpmn"
        target.write_text(diagram_xml(process_id), encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
