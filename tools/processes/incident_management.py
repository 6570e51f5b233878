"""Draw processes/incident_management.bpmn (ITIL 4 incident management).

Run from the repository root: ``.venv/bin/python tools/processes/incident_management.py``.

Data contract (docs/PROCESSES.md; the record mapping is processes/incident_management.record.json):

- start data: ``title``, ``description``, ``category`` (hardware | software | network | human |
  system), ``impact`` and ``urgency`` (high | medium | low); optional ``service``, ``ci`` and
  ``auto_close_after`` (ISO 8601 duration the requester has to confirm, default ``"P3D"``);
  while an incident is pending on the customer: ``customer_reminder_every`` (ISO 8601 duration
  between reminders to the requester, default ``"P2D"``), ``customer_reminders`` (how many
  reminders at most, 1..10, default 2) and ``customer_wait_limit`` (ISO 8601 duration after which
  the work goes back to the resolvers, default ``"P7D"``).
  ``record_number`` (this incident's INC number) is read when the platform puts it in the data.
- ``priority`` ("P1".."P4") comes from priority_matrix.dmn and may be corrected at triage.
- statuses (``ticket_status``): new -> in_progress -> [pending -> in_progress]* -> resolved
  -> (reopen: in_progress ...) -> closed.
- Two loops, each an embedded subprocess with standardLoopCharacteristics so the task tree keeps
  its depth: the work cycle (investigation + requester confirmation) repeats while ``reopened``;
  inside it the investigation cycle repeats until ``ticket_status == "resolved"`` (a pending round
  waits for "Resume work").
- Each work round starts with a clean investigation form: ``outcome``, ``resolution_notes`` and
  ``cause_category`` are cleared (so the record's resolution details are too); the resolution the
  requester rejected is kept as ``previous_resolution_notes`` and shown in the instructions.
- Confirm resolution: "No" needs a reason (the form's condition) and reopens the incident at once;
  no answer at all within ``auto_close_after`` closes it (interrupting timer, ``reopened = False``
  so the work cycle ends). A "No" never ends in an auto-close. A comment by the requester while
  the confirmation waits (``requester_reply``) reopens it as a "No" with that comment as the reason.
- Pending on the customer: the requester is told what the resolvers wait for and how to answer (a
  comment on the record, the ``requester_reply`` message), reminded every
  ``customer_reminder_every`` (``customer_reminders`` times at most, a non-interrupting cycle timer),
  and after ``customer_wait_limit`` without an answer the incident is back in progress in the
  resolvers' queue with a note saying so; it is never closed for the silence, the resolvers decide.
- P1: a parallel branch notifies ServiceOwners and asks MajorIncidentManagers to coordinate; both
  branches join before closure. Task data is per branch: the later branch wins at the join, and
  the platform's instance data overlays the data of every waiting human task. So the coordination
  task drops (preScript) its stale copies of the variables the work branch owns (``ticket_status``,
  ``reopen_count``), and the work branch initialises its own variables only after the split.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.bpmn_builder import Diagram, literal, pretty  # noqa: E402

PROCESS_ID = "incident_management"
DESK = "ServiceDesk"
RESOLVERS = "Resolvers"
MAJOR = "MajorIncidentManagers"

REGISTER = """\
requester = get_process_initiator_user()["username"]
ticket_status = "new"
reopen_count = 0
impact = str(impact).strip().lower()
urgency = str(urgency).strip().lower()
if impact not in ("high", "medium", "low") or urgency not in ("high", "medium", "low"):
    raise ValueError("impact and urgency must each be high, medium or low")
# Process owners may tune how long the requester has to confirm a resolution (ISO 8601 duration).
try:
    auto_close_after
except NameError:
    auto_close_after = "P3D"
# ... and how a wait on the customer goes: reminders to the requester, then back to the resolvers.
try:
    customer_reminder_every
except NameError:
    customer_reminder_every = "P2D"
try:
    customer_reminders
except NameError:
    customer_reminders = 2
customer_reminders = min(max(int(customer_reminders), 1), 10)
try:
    customer_wait_limit
except NameError:
    customer_wait_limit = "P7D"
try:
    service
except NameError:
    service = None
try:
    ci
except NameError:
    ci = None
try:
    record_number
except NameError:
    record_number = ""
"""

# Runs in the work branch only (after the parallel split), so the major-incident branch never holds
# copies of these variables that could overwrite the work branch's values at the join.
PREPARE_WORK = """\
reopened = False
previous_resolution_notes = ""
pending_on = None
pending_reason = ""
investigation_feedback = ""
closed_reason = None
"""

# Runs at the start of every work round (the first and each after a reopen): the investigation form
# starts empty, so a reopened incident cannot be resolved again with one click and the old text, and
# the record (which copies these variables) no longer shows the resolution the requester rejected.
START_ROUND = """\
outcome = ""
resolution_notes = ""
cause_category = None
"""

MARK_RESOLVED = """\
ticket_status = "resolved"
investigation_feedback = ""
"""

MARK_PENDING = 'ticket_status = "pending"\n'
BACK_TO_WORK = 'ticket_status = "in_progress"\noutcome = ""\n'

RESUME_PROPERTIES = {
    "formJsonSchemaFilename": "incident-resume.json",
    "formUiSchemaFilename": "incident-resume.ui.json",
    "candidateGroupVar": "assignment_group",
    "claimForUserVar": "assignee",
}
RESUME_INSTRUCTIONS = (
    "**{{ title }}** is pending on the {{ pending_on }}"
    "{% if pending_reason %}: {{ pending_reason }}{% endif %}.\n\n"
    "Resume the work when the answer is in and note what changed."
)

#: The message the platform sends a record's process when its requester comments on the record
#: (app/services/linked_updates.py, ``REPLY_MESSAGE``).
REQUESTER_REPLY = "requester_reply"

# A reply from the requester ends a wait on the customer: the incident is back in progress and the
# next investigation round shows the resolvers what was said (investigate's instructions).
RESUME_ON_REPLY = """\
ticket_status = "in_progress"
outcome = ""
pending_on = None
pending_reason = ""
investigation_feedback = "The requester replied: " + str(reply.get("comment", ""))[:1000]
"""

# Pending on the customer, the requester hears what the resolvers wait for and how to answer: a
# comment on the record is the answer (``requester_reply``), and ends the wait at once.
# Templates of the process's words (``literal``): each reader gets them in their language, filled
# in from the data (the translation file translates them; docs/PROCESSES.md).
_YOUR_INCIDENT = "{% if record_number %}{{ record_number }}{% else %}your incident{% endif %}"
ASK_CUSTOMER_SUBJECT = "{% if record_number %}{{ record_number }}{% else %}Your incident{% endif %} needs your answer: {{ title }}"
ASK_CUSTOMER_BODY = (
    "The resolvers of " + _YOUR_INCIDENT + " ({{ title }}) are waiting for you: "
    "{% if pending_reason | trim %}{{ pending_reason | trim }}{% else %}please tell them more about the problem.{% endif %}"
    "\n\nTo answer, add a comment to {% if record_number %}{{ record_number }}{% else %}the incident{% endif %}"
    " (open it from your notifications or your requests): the work goes on as soon as you reply."
)
REMIND_CUSTOMER_SUBJECT = "Reminder: " + ASK_CUSTOMER_SUBJECT
REMIND_CUSTOMER_BODY = (
    # no claim of when: the wait's length is process data (QA: "in a few days" was wrong at PT70S)
    ASK_CUSTOMER_BODY + "\n\nWithout an answer, the incident goes back to the resolvers after a while."
)
#: A cycle timer: ``customer_reminders`` reminders, one every ``customer_reminder_every``.
CUSTOMER_REMINDER_CYCLE = '"R" + str(customer_reminders) + "/" + customer_reminder_every'

# No answer from the customer: the incident is back in progress (the SLA clock runs again) and the
# next investigation round tells the resolvers; they decide what happens (never an auto-close).
CUSTOMER_SILENT = """\
ticket_status = "in_progress"
outcome = ""
investigation_feedback = ("The requester did not answer within " + customer_wait_limit + " (asked: "
                          + (pending_reason.strip() or "no reason given") + "). Decide how to go on: resolve it, "
                          + "ask again (pending on the customer) or wait on a vendor.")
pending_on = None
pending_reason = ""
"""

ASK_FOR_DETAILS = """\
if outcome == "resolve":
    investigation_feedback = "Resolution notes are required to resolve the incident."
else:
    investigation_feedback = "Say whom the incident is waiting for (customer or vendor) to set it pending."
"""

ACCEPT = """\
reopened = False
closed_reason = "confirmed by requester"
# What the requester says when confirming reaches the record as her comment (record mapping "comments").
confirmation_comment = comment.strip()
"""

# A "No" reopens at once: the form requires a reason with it (an answer from an older form without
# that condition reopens too, without one). The rejected resolution is kept for the next round's
# instructions; the next round (START_ROUND) clears the resolution itself.
REOPEN = """\
reopen_reason = comment.strip()
previous_resolution_notes = resolution_notes
reopened = True
reopen_count = reopen_count + 1
ticket_status = "in_progress"
"""

# The requester comments instead of answering (a reply to the "resolved" e-mail, a comment on the
# record): what she wrote is her reason, and the incident reopens as on "No". The comment is on the
# record already, and reaches the resolvers as every requester comment does.
REOPEN_ON_REPLY = 'comment = str(reply.get("comment", ""))[:1000]\n' + REOPEN

AUTO_CLOSE = """\
reopened = False
ticket_status = "closed"
closed_reason = "auto-closed: no answer from requester"
"""

# The service owners told of a major incident are told when it closes too (QA: they heard nothing
# more). service_owners_notified exists only where the major branch ran.
CLOSE = """\
ticket_status = "closed"
try:
    tell_service_owners = bool(service_owners_notified)
except NameError:
    tell_service_owners = False
"""

# The major branch must not carry stale copies of what the work branch owns: at the join the later
# branch's data wins, and the platform reads the instance data from the latest task overlaid with
# the data of every waiting human task (this one included).
DROP_WORK_VARIABLES = """\
del ticket_status
del reopen_count
"""

PROBLEM_DATA = (
    '{"title": "Problem from " + (record_number or "an incident") + ": " + title, '
    '"description": description, '
    '"related_incidents": [n for n in [record_number] if n]}'
)


def investigation_cycle() -> Diagram:
    d = Diagram("investigation_cycle", "Investigation cycle")
    d.node("investigation_start", "start", "Investigation round", col=0)
    d.node(
        "investigate", "user", "Investigate and resolve", col=1,
        properties={
            "formJsonSchemaFilename": "incident-investigate.json",
            "formUiSchemaFilename": "incident-investigate.ui.json",
            "candidateGroupVar": "assignment_group",
            "setUserVar": "assignee",
            "claimForUserVar": "assignee",
        },
        prescript="raise_problem = False\n",
        postscript='investigation_feedback = ""\n',
        instructions=(
            "{% if investigation_feedback %}**{{ investigation_feedback }}**\n\n{% endif %}"
            "Investigate **{{ title }}** ({{ priority }}, {{ category }}"
            "{% if service %}, service {{ service }}{% endif %}{% if ci %}, CI {{ ci }}{% endif %}).\n\n"
            "{{ description }}\n\n"
            "{% if reopen_count %}Reopened {% if reopen_count == 1 %}once{% elif reopen_count == 2 %}twice"
            "{% else %}{{ reopen_count }} times{% endif %}"
            "{% if reopen_reason %}; last reason: {{ reopen_reason }}{% endif %}\n\n"
            "{% if previous_resolution_notes %}The resolution the requester rejected: "
            "{{ previous_resolution_notes }}\n\n{% endif %}{% endif %}"
            "Resolve it with resolution notes, or set it pending on the customer or a vendor."
        ),
    )
    d.node("problem_needed", "xor", "Raise a problem?", col=2)
    d.node(
        "raise_problem_record", "service", "Raise problem record", col=3, row=1,
        operator="start_process",
        params={"process_id": '"problem_management"', "data": PROBLEM_DATA, "link_type": '"caused_by"'},
        result_variable="problem",
    )
    d.node("problem_done", "xor", None, col=4)
    d.node("outcome_gateway", "xor", "Outcome?", col=5)
    d.node("mark_resolved", "script", "Mark resolved", col=6, script=MARK_RESOLVED)
    d.node("investigation_resolved", "end", "Resolved", col=7)
    d.node("mark_pending", "script", "Mark pending", col=6, row=1, script=MARK_PENDING)
    d.node("pending_on_whom", "xor", "Pending on whom?", col=7, row=1)
    # Pending on the customer, a comment from the requester arrives as a message and is the answer:
    # work resumes at once. Pending on a vendor nothing listens for one (the comment reaches the
    # resolvers as a notification), so the requester's comments leave the wait and its claim alone.
    d.node(
        "tell_requester_pending", "service", "Ask the requester", col=8, row=1,
        operator="notify",
        params={"user": "requester", "subject": literal(ASK_CUSTOMER_SUBJECT), "body": literal(ASK_CUSTOMER_BODY)},
        result_variable="requester_asked",
    )
    d.node("resume_work", "user", "Resume work", col=9, row=1, properties=RESUME_PROPERTIES,
           instructions=RESUME_INSTRUCTIONS)
    d.node("resume_vendor_work", "user", "Resume work", col=9, row=4, properties=RESUME_PROPERTIES,
           instructions=RESUME_INSTRUCTIONS)
    d.node("back_to_work", "script", "Back to work", col=10, row=1, script=BACK_TO_WORK)
    d.node("investigation_resumed", "end", "Work resumed", col=11, row=1)
    d.node("requester_replied", "boundary", "Requester replied", attached_to="resume_work",
           message=REQUESTER_REPLY, message_variable="reply")
    d.node("resume_on_reply", "script", "Resume on the reply", col=10, row=2, script=RESUME_ON_REPLY)
    d.node("investigation_replied", "end", "Requester replied", col=11, row=2)
    d.node("reminder_due", "boundary", "Reminder due", attached_to="resume_work",
           timer=("timeCycle", CUSTOMER_REMINDER_CYCLE), interrupting=False)
    d.node(
        "remind_requester", "service", "Remind the requester", col=10, row=0,
        operator="notify",
        params={"user": "requester", "subject": literal(REMIND_CUSTOMER_SUBJECT),
                "body": literal(REMIND_CUSTOMER_BODY)},
        result_variable="requester_reminded",
    )
    d.node("reminder_sent", "end", "Reminder sent", col=11, row=0)
    d.node("customer_silent", "boundary", "No answer", attached_to="resume_work",
           timer=("timeDuration", "customer_wait_limit"))
    d.node("back_to_resolvers", "script", "Back to the resolvers", col=10, row=3, script=CUSTOMER_SILENT)
    d.node("investigation_unanswered", "end", "No answer from the requester", col=11, row=3)
    d.node("ask_for_details", "script", "Ask for missing details", col=6, row=2, script=ASK_FOR_DETAILS)
    d.node("investigation_incomplete", "end", "Details missing", col=7, row=2)

    d.chain("investigation_start", "investigate", "problem_needed")
    d.flow("problem_needed", "raise_problem_record", condition="raise_problem", name="yes")
    d.flow("problem_needed", "problem_done", name="no", default=True)
    d.flow("raise_problem_record", "problem_done")
    d.flow("problem_done", "outcome_gateway")
    d.flow("outcome_gateway", "mark_resolved", condition='outcome == "resolve" and len(resolution_notes.strip()) > 0',
           name="resolved")
    d.flow("outcome_gateway", "mark_pending", condition='outcome == "pending" and pending_on in ("customer", "vendor")',
           name="pending")
    d.flow("outcome_gateway", "ask_for_details", name="details missing", default=True)
    d.chain("mark_resolved", "investigation_resolved")
    d.chain("mark_pending", "pending_on_whom")
    d.flow("pending_on_whom", "tell_requester_pending", condition='pending_on == "customer"', name="customer")
    d.flow("tell_requester_pending", "resume_work")
    d.flow("pending_on_whom", "resume_vendor_work", name="vendor", default=True)
    d.chain("resume_work", "back_to_work", "investigation_resumed")
    d.flow("resume_vendor_work", "back_to_work")
    d.chain("requester_replied", "resume_on_reply", "investigation_replied")
    d.chain("reminder_due", "remind_requester", "reminder_sent")
    d.chain("customer_silent", "back_to_resolvers", "investigation_unanswered")
    d.chain("ask_for_details", "investigation_incomplete")
    return d


def work_cycle() -> Diagram:
    d = Diagram("work_cycle", "Work cycle")
    d.node("work_start", "start", "Work round", col=0)
    d.node("start_round", "script", "Clear the last resolution", col=1, script=START_ROUND)
    d.node(
        "investigation", "sub", "Investigation cycle", col=2,
        inner=investigation_cycle(), loop_condition='ticket_status != "resolved"',
        documentation="Repeats until the incident is resolved; a pending round ends with Resume work.",
    )
    d.node(
        "confirm_resolution", "user", "Confirm resolution", col=3,
        properties={
            "formJsonSchemaFilename": "incident-confirm.json",
            "formUiSchemaFilename": "incident-confirm.ui.json",
            "assignedUserVar": "requester",
        },
        prescript='comment = ""\nreopen_reason = ""\nconfirmation_comment = ""\nrating = None\n',
        instructions=(
            "Your incident **{{ title }}** was resolved:\n\n{{ resolution_notes }}\n\n"
            "Is it fixed? If not, answer No and tell us what is still wrong, or comment on the incident: it "
            "goes back to the resolvers at once. Without an answer it is closed automatically after "
            "{{ auto_close_after }}."
        ),
    )
    d.node("confirm_timeout", "boundary", "No answer", attached_to="confirm_resolution",
           timer=("timeDuration", "auto_close_after"))
    d.node("confirmed_gateway", "xor", "Fixed?", col=4)
    d.node("accept_resolution", "script", "Accept resolution", col=5, script=ACCEPT)
    d.node("work_confirmed", "end", "Confirmed", col=6)
    d.node("reopen_incident", "script", "Reopen incident", col=5, row=1, script=REOPEN)
    d.node("work_reopened", "end", "Reopened", col=6, row=1)
    d.node("requester_commented", "boundary", "Requester commented", attached_to="confirm_resolution",
           message=REQUESTER_REPLY, message_variable="reply")
    d.node("reopen_on_comment", "script", "Reopen on the comment", col=5, row=3, script=REOPEN_ON_REPLY)
    d.node("work_reopened_by_comment", "end", "Reopened", col=6, row=3)
    d.node("auto_close", "script", "Auto-close", col=5, row=2, script=AUTO_CLOSE)
    d.node("work_auto_closed", "end", "Auto-closed", col=6, row=2)

    d.chain("work_start", "start_round", "investigation", "confirm_resolution", "confirmed_gateway")
    d.flow("confirmed_gateway", "accept_resolution", condition="confirmed", name="yes")
    d.flow("confirmed_gateway", "reopen_incident", name="no", default=True)
    d.chain("accept_resolution", "work_confirmed")
    d.chain("reopen_incident", "work_reopened")
    d.flow("confirm_timeout", "auto_close")
    d.chain("auto_close", "work_auto_closed")
    d.chain("requester_commented", "reopen_on_comment", "work_reopened_by_comment")
    return d


def build() -> Diagram:
    d = Diagram(
        PROCESS_ID, "Incident management", lanes=[DESK, RESOLVERS, MAJOR],
        documentation="ITIL 4 incident management: register, prioritise, triage, investigate (with pending and "
                      "problem hand-off), requester confirmation with reopen and auto-close, P1 major-incident "
                      "coordination in parallel.",
    )
    d.node("start", "start", "Incident reported", lane=DESK, col=0)
    d.node("register", "script", "Register incident", lane=DESK, col=1, script=REGISTER)
    d.node("prioritise", "rule", "Determine priority", lane=DESK, col=2, decision="priority_matrix")
    d.node(
        "triage", "user", "Triage incident", lane=DESK, col=3,
        properties={
            "formJsonSchemaFilename": "incident-triage.json",
            "formUiSchemaFilename": "incident-triage.ui.json",
        },
        prescript="suggested_priority = priority\n",
        postscript='ticket_status = "in_progress"\n',
        instructions=(
            "**{{ title }}** reported by {{ requester }}\n\n{{ description }}\n\n"
            "Impact {{ impact }}, urgency {{ urgency }}: the priority matrix suggests **{{ suggested_priority }}**. "
            "Confirm or correct category and priority, and pick the group that works on it."
        ),
    )
    d.node("start_work", "and", "Start work", lane=DESK, col=4)
    d.node("prepare_work", "script", "Prepare work", lane=RESOLVERS, col=5, script=PREPARE_WORK)
    d.node(
        "work", "sub", "Work on incident", lane=RESOLVERS, col=6,
        inner=work_cycle(), loop_condition="reopened",
        documentation="Investigation and requester confirmation; repeats while the requester reopens.",
    )
    d.node("major_gateway", "xor", "Major incident?", lane=MAJOR, col=5)
    d.node(
        "notify_service_owners", "service", "Notify service owners", lane=MAJOR, col=6, row=1,
        operator="notify",
        params={
            "group": '"ServiceOwners"',
            "subject": literal("Major incident (P1): {{ title }}"),
            "body": literal("Major incident {{ record_number }} reported by {{ requester }}: {{ description }}"),
        },
        result_variable="service_owners_notified",
    )
    d.node(
        "coordinate_major", "user", "Coordinate major incident", lane=MAJOR, col=7, row=1,
        properties={
            "formJsonSchemaFilename": "incident-major.json",
            "formUiSchemaFilename": "incident-major.ui.json",
        },
        prescript=DROP_WORK_VARIABLES,
        postscript="major_incident_coordinated = True\n",
        instructions=(
            "P1 **{{ title }}**{% if service %} on service {{ service }}{% endif %} is being worked by "
            "{{ assignment_group }}. Coordinate the response and summarise the communication."
        ),
    )
    d.node("major_done", "xor", None, lane=MAJOR, col=8)
    d.node("work_done", "and", "Work done", lane=DESK, col=9)
    d.node("close", "script", "Close incident", lane=DESK, col=10, script=CLOSE)
    d.node("closed_major", "xor", "Major incident?", lane=DESK, col=11)
    d.node(
        "notify_service_owners_closed", "service", "Tell service owners it is closed", lane=MAJOR, col=12, row=1,
        operator="notify",
        params={
            "group": '"ServiceOwners"',
            "subject": literal("Major incident closed: {{ title }}"),
            "body": literal("Major incident {{ record_number }} ({{ title }}) is closed."),
        },
        result_variable="service_owners_told_closed",
    )
    d.node("end", "end", "Incident closed", lane=DESK, col=13)

    d.chain("start", "register", "prioritise", "triage", "start_work")
    d.flow("start_work", "prepare_work")
    d.flow("start_work", "major_gateway")
    d.chain("prepare_work", "work", "work_done")
    d.flow("major_gateway", "notify_service_owners", condition='priority == "P1"', name="P1")
    d.flow("major_gateway", "major_done", name="no", default=True)
    d.chain("notify_service_owners", "coordinate_major", "major_done")
    d.flow("major_done", "work_done")
    d.chain("work_done", "close", "closed_major")
    d.flow("closed_major", "notify_service_owners_closed", condition="tell_service_owners", name="yes")
    d.flow("closed_major", "end", name="no", default=True)
    d.flow("notify_service_owners_closed", "end")
    return d


def to_xml() -> str:
    d = build()
    xml = d.to_xml()
    # bpmn_builder draws planes for top-level subprocesses only; add the nested investigation cycle.
    work = d.nodes["work"].inner
    assert work is not None
    inner = work.nodes["investigation"].inner
    assert inner is not None
    nested_plane = inner._plane("investigation", "investigation_plane")
    xml = xml.replace("\n</bpmn:definitions>", "\n" + nested_plane + "\n</bpmn:definitions>")
    return pretty(xml)


def main() -> None:
    target = ROOT / "processes" / f"{PROCESS_ID}.bpmn"
    target.write_text(to_xml(), encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
