"""Draw processes/problem_management.bpmn (problem management with known errors and fix changes).

Run from the repository root: ``.venv/bin/python tools/processes/problem_management.py``.

Data contract (docs/PROCESSES.md; the record mapping is processes/problem_management.record.json):
- start data: ``title``, ``description``; optional ``related_incidents`` (["INC-000001", ...]).
  ``record_number`` (this problem's PRB number) is read when the platform puts it in the data.
- statuses (``ticket_status``): new -> analysis -> [known_error when a workaround is published and
  no change is needed] -> [fix_in_progress from raising a fix change until its verification] ->
  resolved -> closed. The known error stays documented (``known_error_article``) while the fix runs.
- A fix change is followed until it is finished: the problem reads the change's record
  (``get_linked_record``) when it is raised and again whenever the change's status moves on (the
  platform sends the message ``fix_change_updated``) or, failing word, every
  ``fix_change_check_interval`` while it is open. Only an implemented change (result "successful") lets the problem manager verify the
  fix; a change that fails (its verification failed: once its rollback is recorded, rolled back or
  failed) or is withdrawn or cancelled sends the problem back to root cause analysis, as does a fix
  that fails verification. A change being rolled back is still followed, so the problem learns its
  final result. A rejected change is still open: its requester revises and resubmits or withdraws
  it. Once the change is implemented, failed, withdrawn or cancelled the problem stops following
  it: ``fix_change_status`` (the record's detail) keeps the verdict ("successful" for an implemented
  change, which may still be in its review; "failed" for a failed change; a withdrawn or cancelled
  change's final status; "not_verified" once the problem manager found that an implemented change
  did not fix the problem), so it never shows a status the change has left. For a failed, withdrawn
  or cancelled change ``fix_change_note`` (a record comment, see the mapping's ``comments``) tells
  the problem's people in words what became of it (``fix_change_summary``: "failed its verification
  and was rolled back") and that the problem is back in analysis, where the next round may raise
  another fix change. That next analysis makes the failed change history: ``fix_change``,
  ``fix_change_status`` and the rest are cleared unless it raises a new change, and the change's
  number goes to ``previous_fix_changes`` (instance data, quoted in the analysis and closure
  instructions; the record's links and the audit trail keep it too), so
  the closure and the known error article (its "Fixing change" is the problem's ``fix_change``) do
  not name a change that fixed nothing. A change implemented in an earlier round whose fix failed
  verification stays ``fix_change`` until another fix change replaces it.
- The fix verification opens unanswered every round (its preScript clears ``fix_verified`` and
  ``verification_notes``). A verification that fails sets ``fix_change_status`` to "not_verified"
  and ``fix_change_note`` to a comment with the verification notes (by the problem manager).
- The analysis cycle (root cause, known error, fix change, verification) is an embedded subprocess
  with standardLoopCharacteristics: it repeats while a fix change was needed and not verified, so
  the task tree keeps its depth however often a fix fails. Its plane has its own lanes (to_xml).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from tools.bpmn_builder import BPMN_NS, Diagram, pretty  # noqa: E402

PROCESS_ID = "problem_management"
CYCLE_ID = "analyse_and_fix"
PM = "ProblemManagers"
#: What the platform sends when a record linked as "fix_change" moves to another status
#: (app/services/linked_updates.py: ``<link type>_updated``).
FIX_CHANGE_UPDATED = "fix_change_updated"
RESOLVERS = "Resolvers"

REGISTER = """\
requester = get_process_initiator_user()["username"]
ticket_status = "new"
try:
    related_incidents
except NameError:
    related_incidents = []
try:
    record_number
except NameError:
    record_number = ""
if isinstance(related_incidents, str):  # "INC-000001, INC-000002" typed into one field
    related_incidents = re_sub(r"[,;\s]+", " ", related_incidents).split()
normalised = [str(number).strip().upper() for number in related_incidents or []]
related_incidents = [n for i, n in enumerate(normalised) if n and n not in normalised[:i]]
del normalised
# Process owners may tune these without touching the flow.
change_lead_days = 3
change_window_hours = 2
fix_change_check_interval = "PT1H"  # when an open fix change is looked at again without word of it
# Fields later forms fill in; set here so every gateway and the record mapping can read them.
priority = None
category = None
assignment_group = None
assignee = None
problem_manager = None
cause_category = None
root_cause = ""
symptoms = description
workaround = ""
proposed_fix = ""
fix_needs_change = False
fix_verified = False
known_error_article = None
known_error_workaround = None  # the texts the article holds: a new analysis that changes them revises it
known_error_cause = None
fix_change = None
fix_change_record = None
fix_change_status = None
fix_change_result = None
fix_change_outcome = None
fix_change_summary = ""  # what became of a fix change that failed or was not implemented, in words
fix_change_note = ""  # the comment the problem gets when its fix change fails or is withdrawn
# previous_fix_changes, the earlier fix changes that failed, were not implemented or did not fix
# it, is set only once there is one (HISTORY): a problem without one shows no such detail.
"""

RECORD_KNOWN_ERROR = """\
known_error_article = known_error_kb["number"]
known_error_workaround = workaround
known_error_cause = root_cause
ticket_status = "known_error"
"""

PLAN_FIX_CHANGE = """\
problem_ref = record_number or "problem"
planned_start = (now() + timedelta(days=change_lead_days)).replace(minute=0, second=0, microsecond=0).isoformat()
planned_end = (parse_datetime(planned_start) + timedelta(hours=change_window_hours)).isoformat()
fix_change_request = {
    "title": "Fix for " + problem_ref + ": " + title,
    "description": description + "\\n\\nRoot cause (" + (cause_category or "unclassified") + "): " + root_cause,
    "change_type": "normal",
    "reason": "Permanent fix for " + problem_ref + ", which caused recurring incidents.",
    "priority": priority,
    "category": category,
    "assignment_group": assignment_group,
    "planned_start": planned_start,
    "planned_end": planned_end,
    "implementation_plan": proposed_fix or ("Remove the root cause described in " + problem_ref + ": " + root_cause),
    "rollback_plan": "Restore the configuration and versions in place before the change; confirm service with the monitoring dashboard.",
    "test_plan": "Reproduce the symptoms of " + problem_ref + " before the change and confirm they no longer occur after it.",
    "related_problem": record_number,
}
del problem_ref
"""

# The problem's fix change goes to previous_fix_changes (inside an ``if fix_change:``), a new list
# each time it grows (the loop merges lists item by item).
INTO_HISTORY = """\
    try:
        previous_fix_changes
    except NameError:
        previous_fix_changes = []
    if fix_change not in previous_fix_changes:
        previous_fix_changes = previous_fix_changes + [fix_change]
"""

RECORD_FIX_CHANGE = """\
if fix_change:
    # implemented in an earlier round but it did not remove the problem: history now
""" + INTO_HISTORY + """\
fix_change = fix_change_started["number"]
# The fix is in progress until the change is implemented and the fix verified (the known error, if
# any, stays documented in known_error_article and the knowledge base).
ticket_status = "fix_in_progress"
"""

READ_FIX_CHANGE = """\
fix_change_status = fix_change_record["status"]
fix_change_result = fix_change_record["details"].get("result")
fix_change_note = ""
fix_change_summary = ""
if fix_change_result == "successful":
    fix_change_outcome = "implemented"
    # Here too the problem stops following the change (its review and closure would never reach
    # the problem): it shows the verdict, not the passing status "review".
    fix_change_status = "successful"
elif fix_change_result in ("rolled_back", "rollback_failed") or (
        fix_change_result == "verification_failed" and not fix_change_record["open"]):
    fix_change_outcome = "failed"
    # The problem stops following the change here, so its status (in review, closed...) would go
    # stale on the problem: it shows the verdict instead.
    fix_change_status = "failed"
    if fix_change_result == "rolled_back":
        fix_change_summary = "Fix change " + fix_change + " failed its verification and was rolled back."
    elif fix_change_result == "rollback_failed":
        fix_change_summary = ("Fix change " + fix_change + " failed its verification and its rollback failed: "
                              + "the change raised an incident for the service it left broken.")
    else:  # cancelled or closed while it was being rolled back
        fix_change_summary = ("Fix change " + fix_change + " failed its verification and was "
                              + fix_change_record["status"] + " before its rollback was recorded.")
    fix_change_note = fix_change_summary + " The problem is back in root cause analysis, where another fix can be raised."
elif not fix_change_record["open"]:
    fix_change_outcome = "withdrawn"  # withdrawn, cancelled, or closed without being implemented
    fix_change_summary = "Fix change " + fix_change + " was not implemented (change status: " + fix_change_status + ")."
    fix_change_note = fix_change_summary + " The problem is back in root cause analysis, where another fix can be raised."
else:
    # being assessed, approved, scheduled, implemented, rejected and revised, or rolled back after a
    # failed verification: its final result is not known yet, so the problem follows it on
    fix_change_outcome = "open"
"""

# A new analysis after a failed or abandoned fix change: that change is history (the audit trail,
# the record's links and previous_fix_changes keep it), not the problem's fix any more. The fix
# fields are cleared unless this analysis raises a new change (RECORD_FIX_CHANGE sets them again),
# so neither the closure nor the known error article names a change that did not fix anything.
ANALYSED = """\
if fix_change and fix_change_outcome in ("failed", "withdrawn"):
""" + INTO_HISTORY + """\
    fix_change = None
    fix_change_status = None
    fix_change_result = None
    fix_change_outcome = None
    fix_change_record = None
    fix_change_summary = ""
"""

# Each verification opens unanswered (None is no answer: the form asks for one), not with "No" or
# an earlier round's notes.
BEFORE_VERIFICATION = "fix_verified = None\nverification_notes = None\n"

# A fix that failed verification is no successful fix any more: the record says it was not verified
# (the change stays fix_change until another fix change replaces it) and a comment by the problem
# manager tells the problem's people why, as fix_change_note does for a failed change.
VERIFIED_FIX = """\
if fix_verified:
    fix_change_note = ""
else:
    fix_change_status = "not_verified"
    checked = str(verification_notes or "").strip()
    fix_change_note = ("Fix change " + fix_change + " was implemented but the fix failed verification"
                       + (": " + checked if checked else ".")
                       + "\\n\\nThe problem is back in root cause analysis, where another fix can be raised.")
    del checked
"""


def analysis_cycle() -> Diagram:
    """One round of root cause analysis, known error, fix change and fix verification."""
    d = Diagram("problem_analysis_cycle", "Analyse and fix", lanes=[RESOLVERS, PM])
    d.node("analysis_start", "start", "Analysis round started", lane=RESOLVERS, col=0)
    d.node(
        "analyse_root_cause", "user", "Analyse root cause", lane=RESOLVERS, col=1,
        properties={
            "formJsonSchemaFilename": "problem-rca.json",
            "formUiSchemaFilename": "problem-rca.ui.json",
            "candidateGroupVar": "assignment_group",
            "setUserVar": "assignee",
            "claimForUserVar": "assignee",
        },
        prescript='ticket_status = "analysis"\nfix_verified = False',
        postscript=ANALYSED,
        instructions=(
            "Find the root cause of **{{ title }}** (priority {{ priority }}, category {{ category }}).\n\n"
            "{{ description }}\n\n"
            "{% if related_incidents %}Related incidents: {{ related_incidents | join(', ') }}\n\n{% endif %}"
            "{% if fix_change %}{% if fix_change_outcome == 'withdrawn' %}"
            "The fix change {{ fix_change }} was not implemented (change status: {{ fix_change_status }}): "
            "analyse again or propose another fix."
            "{% elif fix_change_outcome == 'failed' %}"
            "{{ fix_change_summary }} Analyse again or propose another fix."
            "{% else %}The fix change {{ fix_change }} did not remove the problem: analyse again.{% endif %}{% endif %}"
            "{% if previous_fix_changes %}\n\nEarlier fix changes: {{ previous_fix_changes | join(', ') }}{% endif %}"
        ),
    )
    d.node("has_workaround", "xor", "New or changed workaround?", lane=RESOLVERS, col=2)
    d.node(
        "publish_known_error", "service", "Publish or update known error article", lane=RESOLVERS, col=3, row=1,
        operator="create_knowledge_article",
        params={
            "title": '"Known error: " + title',
            "symptoms": "symptoms or description",
            "cause": "root_cause",
            "workaround": "workaround",
            "article": "known_error_article",  # published before: revised, not published twice
        },
        result_variable="known_error_kb",
    )
    d.node(
        "tell_incidents", "service", "Tell linked incidents the workaround", lane=RESOLVERS, col=4, row=1,
        operator="comment_linked_records",
        params={
            "kind": '"incident"',
            # an article revised for a new root cause alone tells nobody (an empty body comments nothing)
            "body": '"" if workaround == known_error_workaround else "Known error " + known_error_kb["number"] '
                    '+ (" has a new workaround: " if known_error_article else " has a workaround: ") + workaround',
        },
        result_variable="incident_comments",
    )
    d.node("record_known_error", "script", "Record known error", lane=RESOLVERS, col=5, row=1,
           script=RECORD_KNOWN_ERROR)
    d.node("workaround_done", "xor", "Workaround handled", lane=RESOLVERS, col=6)
    d.node("needs_change", "xor", "Fix needs a change?", lane=PM, col=7)
    d.node("plan_fix_change", "script", "Plan fix change", lane=PM, col=8, row=1, script=PLAN_FIX_CHANGE)
    d.node(
        "raise_fix_change", "service", "Raise fix change", lane=PM, col=9, row=1,
        operator="start_process",
        params={
            "process_id": '"change_enablement"',
            "data": "fix_change_request",
            "link_type": '"fix_change"',
        },
        result_variable="fix_change_started",
    )
    d.node("record_fix_change", "script", "Record fix change", lane=PM, col=10, row=1, script=RECORD_FIX_CHANGE)
    # Wait for the change: read its record now and, while it is open, again after an interval.
    # (Unnamed: the look-again loop comes back in where a gateway's label sits.)
    d.node("await_fix_change", "xor", lane=PM, col=11, row=1)
    d.node(
        "check_fix_change", "service", "Look up the fix change", lane=PM, col=12, row=1,
        operator="get_linked_record",
        params={"number": "fix_change", "details": '["result"]'},
        result_variable="fix_change_record",
    )
    d.node("read_fix_change", "script", "Read the change's outcome", lane=PM, col=13, row=1, script=READ_FIX_CHANGE)
    d.node("fix_change_finished", "xor", "Fix change implemented?", lane=PM, col=14, row=1)
    # While it is open, the problem waits for word of the change: the platform sends
    # fix_change_updated when the change's record moves to another status (app/services/linked_updates.py),
    # and the interval is the fallback for word that could not be delivered.
    d.node("await_fix_change_news", "event", lane=PM, col=15, row=2)
    d.node("wait_fix_change", "catch", "Look again later", lane=PM, col=16, row=2,
           timer=("timeDuration", "fix_change_check_interval"))
    d.node("fix_change_moved", "catch", "Fix change moved on", lane=PM, col=16, row=3,
           message=FIX_CHANGE_UPDATED)
    d.node(
        "verify_fix", "user", "Verify fix", lane=PM, col=15, row=1,
        properties={
            "formJsonSchemaFilename": "problem-verify.json",
            "formUiSchemaFilename": "problem-verify.ui.json",
            "setUserVar": "verified_by",
        },
        prescript=BEFORE_VERIFICATION,
        postscript=VERIFIED_FIX,
        instructions=(
            "Change **{{ fix_change }}**, raised to fix **{{ title }}**, is implemented "
            "(change result: {{ fix_change_result }}).\n\n"
            "Root cause: {{ root_cause }}\n\n"
            "Check that the problem no longer occurs. If it still does, "
            "the problem goes back to root cause analysis."
        ),
    )
    d.node("fix_done", "xor", "Fix handled", lane=PM, col=16)
    d.node("analysis_end", "end", "Analysis round done", lane=PM, col=17)

    d.chain("analysis_start", "analyse_root_cause", "has_workaround")
    d.flow("has_workaround", "publish_known_error",
           condition="bool(workaround) and (not known_error_article or workaround != known_error_workaround "
                     "or root_cause != known_error_cause)",
           name="new or changed workaround")
    # Straight flows stay unnamed: the builder puts a straight flow's label on its target.
    d.flow("has_workaround", "workaround_done", default=True)  # none, or already published
    d.chain("publish_known_error", "tell_incidents", "record_known_error", "workaround_done", "needs_change")
    d.flow("needs_change", "plan_fix_change", condition="fix_needs_change", name="yes")
    d.flow("needs_change", "fix_done", default=True)  # no
    d.chain("plan_fix_change", "raise_fix_change", "record_fix_change", "await_fix_change", "check_fix_change",
            "read_fix_change", "fix_change_finished")
    d.flow("fix_change_finished", "verify_fix", condition='fix_change_outcome == "implemented"')  # straight: unnamed
    d.flow("fix_change_finished", "await_fix_change_news", condition='fix_change_outcome == "open"', name="still open")
    # Withdrawn, cancelled or failed: this round ends unverified, so the next one analyses again.
    d.flow("fix_change_finished", "fix_done", default=True, name="not implemented")
    d.flow("await_fix_change_news", "wait_fix_change")
    d.flow("await_fix_change_news", "fix_change_moved")
    d.flow("wait_fix_change", "await_fix_change")
    d.flow("fix_change_moved", "await_fix_change")
    d.chain("verify_fix", "fix_done", "analysis_end")
    return d


#: The comment each open linked incident gets when the problem closes.
CLOSED_COMMENT = (
    '"Problem " + (record_number or title) + " is closed. Root cause: " + (root_cause or "not recorded") + '
    '"\\n\\nClosure notes: " + closure_notes + '
    '("\\n\\nFix change: " + fix_change if fix_change else "") + '
    '"\\n\\nIf this incident has the same cause, it can be resolved."'
)


def build() -> Diagram:
    d = Diagram(
        PROCESS_ID, "Problem management", lanes=[PM, RESOLVERS],
        documentation="Find and remove the root cause of recurring incidents: known errors with workarounds, "
                      "fix changes, verification and closure.",
    )
    d.node("start", "start", "Problem reported", lane=PM, col=0)
    d.node("register", "script", "Register problem", lane=PM, col=1, script=REGISTER)
    d.node("has_incidents", "xor", "Related incidents given?", lane=PM, col=2)
    d.node(
        "link_incidents", "service", "Link related incidents", lane=PM, col=3, row=1,
        operator="link_records",
        params={"numbers": "related_incidents", "link_type": '"related_incident"'},
        result_variable="incident_links",
    )
    d.node("incidents_linked", "xor", "Incidents linked", lane=PM, col=4)
    d.node(
        "triage", "user", "Triage and prioritise problem", lane=PM, col=5,
        properties={
            "formJsonSchemaFilename": "problem-triage.json",
            "formUiSchemaFilename": "problem-triage.ui.json",
            "setUserVar": "problem_manager",
        },
        # Also set inside the analysis round; set here too so the record shows it as soon as triage is done.
        postscript='ticket_status = "analysis"',
        instructions=(
            "**{{ title }}**\n\n{{ description }}\n\n"
            "{% if related_incidents %}Related incidents: {{ related_incidents | join(', ') }}\n\n{% endif %}"
            "Set the priority and category and choose the group that analyses the root cause."
        ),
    )
    d.node(
        CYCLE_ID, "sub", "Analyse and fix", lane=RESOLVERS, col=6,
        inner=analysis_cycle(), loop_condition="fix_needs_change and not fix_verified",
        documentation="Repeats while a fix change was needed and the fix did not pass verification.",
    )
    d.node("mark_resolved", "script", "Mark resolved", lane=PM, col=7, script='ticket_status = "resolved"')
    d.node(
        "close_problem", "user", "Close problem", lane=PM, col=8,
        properties={
            "formJsonSchemaFilename": "problem-close.json",
            "formUiSchemaFilename": "problem-close.ui.json",
            "setUserVar": "closed_by",
        },
        instructions=(
            "**{{ title }}** is resolved.\n\nRoot cause: {{ root_cause }}\n\n"
            "{% if known_error_article %}Known error article: {{ known_error_article }}\n\n{% endif %}"
            "{% if fix_change %}Fix change: {{ fix_change }}\n\n{% endif %}"
            "{% if previous_fix_changes %}Earlier fix changes that did not fix it: "
            "{{ previous_fix_changes | join(', ') }}\n\n{% endif %}"
            "Record the closure notes to close the problem."
        ),
    )
    d.node("mark_closed", "script", "Mark closed", lane=PM, col=9, script='ticket_status = "closed"')
    # The incidents still open on this problem hear how it ended (their people are notified of
    # the comment), so that they can resolve the ones the fix covers.
    d.node(
        "tell_incidents_closed", "service", "Tell linked incidents the problem is closed", lane=PM, col=10,
        operator="comment_linked_records",
        params={"kind": '"incident"', "body": CLOSED_COMMENT},
        result_variable="closure_comments",
    )
    d.node("end", "end", "Problem closed", lane=PM, col=11)

    d.chain("start", "register", "has_incidents")
    d.flow("has_incidents", "link_incidents", condition="len(related_incidents) > 0", name="yes")
    d.flow("has_incidents", "incidents_linked", default=True)  # no (straight: unnamed, see analysis_cycle)
    d.chain("link_incidents", "incidents_linked", "triage", CYCLE_ID, "mark_resolved", "close_problem",
            "mark_closed", "tell_incidents_closed", "end")
    return d


def to_xml() -> str:
    """The builder's XML, with the analysis cycle's tasks in their own lanes.

    SpiffWorkflow gives every node inside an embedded subprocess the subprocess's lane when it has
    one. So the collapsed subprocess is drawn in the Resolvers lane but left out of every lane's
    flowNodeRefs, and its plane has lanes of its own (without the pool the builder draws for a laned
    diagram): root cause analysis stays with Resolvers, the fix verification with ProblemManagers.
    """
    d = build()
    inner = d.nodes[CYCLE_ID].inner
    assert inner is not None
    root = etree.fromstring(d.to_xml().encode("utf-8"))
    for ref in list(root.iter(f"{{{BPMN_NS}}}flowNodeRef")):
        if ref.text == CYCLE_ID:
            ref.getparent().remove(ref)
    for shape in list(root.iter("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape")):
        if shape.get("bpmnElement") == f"{inner.process_id}_participant":
            shape.getparent().remove(shape)
    return pretty(etree.tostring(root, encoding="unicode"))


def main() -> Path:
    target = ROOT / "processes" / f"{PROCESS_ID}.bpmn"
    target.write_text(to_xml(), encoding="utf-8")
    return target


if __name__ == "__main__":
    print(main())
