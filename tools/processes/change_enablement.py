"""Draw processes/change_enablement.bpmn (ITIL 4 change enablement).

Run from the repository root: ``.venv/bin/python tools/processes/change_enablement.py``.

Data contract (docs/PROCESSES.md; the record mapping is processes/change_enablement.record.json):

- start data: ``title``, ``description``, ``change_type`` (standard | normal | emergency),
  ``reason``, ``planned_start`` and ``planned_end`` (ISO date-time strings with an offset),
  ``implementation_plan``, ``rollback_plan``, ``test_plan``; optional ``ci``, ``implementer``
  (username of the planned implementer; a normal change sets it at assessment) and
  ``emergency_approval_window`` (ISO 8601 duration the Emergency CAB has, default ``"PT4H"``).
- statuses (``ticket_status``), in order: new -> assessment (normal) | awaiting_approval
  (emergency) -> awaiting_approval -> approved | rejected -> (rejected: resubmit -> assessment ...,
  or withdraw -> withdrawn) -> scheduled -> implementing -> verifying -> [rolling_back] -> review
  -> closed. A standard change goes new -> approved -> scheduled without assessment or approval.
- Risk (``risk``: low | medium | high) comes from change_risk.dmn after the assessment; an
  emergency change is treated as high risk (it is not assessed), a standard change as low.
- Approval: low risk -> one change manager; medium/high -> every eligible CAB member in parallel
  (a multi-instance task over ``cab_members``; one rejection cancels the other votes); emergency
  -> one Emergency CAB member within ``emergency_approval_window``, else ChangeManagers are
  notified and the change is rejected as "not approved in time" (the requester may then resubmit,
  also as a normal change, or withdraw). ``approvers`` collects who approved; the implementation
  task excludes them. Every approval task excludes ``requester`` and ``implementer``, so each route
  first checks someone else may decide: no eligible CAB member -> a change manager decides; no
  eligible change manager (``eligible_managers``) for a low-risk change -> the CAB votes; nobody
  eligible in either group -> ChangeManagers are notified ("Nobody may approve change ...") and the
  change manager approval waits in their queue for an eligible one. ``approval_note`` says why on
  the approval task.
- ``rejection_reason`` (and ``rejected_by``) hold the latest rejection while the change is rejected
  and revised; a later round that approves clears them, so an approved change shows no reason for
  a rejection that no longer stands (the audit history keeps it, ``revision_count`` counts it).
- ``verified_by`` is who verified the implemented change (the requester), whether it works or
  not; ``confirmed_by`` is set to them only when they confirm it works (result "successful"), so
  a change rolled back after a failed verification names no one as having confirmed it.
- A rollback that fails (result "rollback_failed") leaves the service broken: before the review the
  change raises an incident at once (``start_process``: impact and urgency high, category
  "system", the change's ``ci``), linked ``related_incident`` (the change causes the incident). Its
  requester is whoever recorded the failed rollback (the platform starts it as the step's actor).
  ``rollback_incident`` holds its number (a record detail, and in the review's instructions). Its
  description names the change, its CI and the rollback plan that did not restore it, not the
  verification and rollback notes: those are internal to the change, and an incident is read by
  more than staff (its requester; on P1 the ServiceOwners it tells become its watchers). Its
  resolvers, staff, read them on the linked change.
- The assess -> approve -> revise cycle is the embedded subprocess ``change_approval_cycle`` with
  standardLoopCharacteristics: it repeats while ``revision_decision == "resubmit"``.
  Each round opens unanswered: ``approved`` and ``approval_comment`` (the approval form, whoever
  decides) are reset when the round begins, and ``revision_notes`` when the revise task opens, so a
  later round never shows the previous round's "Reject", its comment or its "What changed". Only a
  rejection needs a comment (forms/change-approve.json). ``vote``, ``approved`` and
  ``approval_comment`` are internal, as ``votes`` is: the rejection's reason reaches the approvers
  and the requester as ``rejection_reason``.
- A rejected change's revise task shows the change as it stands (description, window, plans). Its
  form is filled in with the type, start and plans but not the planned end (the instructions show
  it): each field left empty keeps its value, and an end left empty (or out, or null) with the start
  moved past it moves the whole window, which keeps its length; an end given must be after the
  start. A
  resubmission needs ``revision_notes`` (forms/change-revise.json requires them when the decision is
  "resubmit"), which the next round's assessor and approvers read with the count ("Resubmitted
  once", "twice", "3 times") and the rejection they answer. They are not internal: the change
  managers, CAB and Emergency CAB members who read them hold the approver role.

The builder's XML is adjusted here (not in the shared builder) in three ways:

- the collapsed ``change_approval_cycle`` is drawn inside the ChangeManagers lane but kept out of
  every lane's flowNodeRefs, and its plane has lanes of its own (without a pool). SpiffWorkflow
  gives every node inside a subprocess the subprocess's lane when the subprocess has one, which
  would put the CAB, Emergency CAB and requester tasks in the ChangeManagers queue;
- ``spiffworkflow:scriptsOnInstances="true"`` on the CAB vote, so its postScript builds each
  member's ``vote`` (SpiffWorkflow otherwise runs it once on the multi-instance wrapper, after the
  votes, and the output item would be missing);
- names of two-point flows are placed over the middle of the line instead of on the target.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from tools.bpmn_builder import BPMN_NS, SPIFF_NS, Diagram, literal, pretty  # noqa: E402

PROCESS_ID = "change_enablement"
CYCLE_ID = "change_approval_cycle"
REQUESTERS = "Requesters"
MANAGERS = "ChangeManagers"
CAB = "CAB"
ECAB = "EmergencyCAB"
IMPLEMENTERS = "Implementers"

APPROVAL_EXCLUDES = {
    "excludeUsersVars": "requester,implementer",
    "excludeReason": "separation of duties: the requester and the implementer may not approve this change",
}

# -- scripts ---------------------------------------------------------------------------------------

REGISTER = """\
requester = get_process_initiator_user()["username"]
ticket_status = "new"
assignment_group = "ChangeManagers"
change_type = str(change_type).strip().lower()
if change_type not in ("standard", "normal", "emergency"):
    raise ValueError("change_type must be standard, normal or emergency")
# Process owners may tune how long the Emergency CAB has to decide (ISO 8601 duration).
try:
    emergency_approval_window
except NameError:
    emergency_approval_window = "PT4H"
if not emergency_approval_window:
    emergency_approval_window = "PT4H"
emergency_approval_window = str(emergency_approval_window).strip().upper()
if parse_duration(emergency_approval_window) <= timedelta(0):
    raise ValueError("emergency_approval_window must be a positive ISO 8601 duration such as PT4H")
try:
    ci
except NameError:
    ci = None
try:
    implementer
except NameError:
    implementer = None
try:
    record_number  # this change's CHG number, when the platform puts it in the data
except NameError:
    record_number = ""
risk = None
approvers = []
approval_outcome = None
rejection_reason = None
rejected_by = None
revision_decision = None
revision_count = 0
revision_notes = None
result = None
actual_start = None
actual_end = None
verified_by = None
confirmed_by = None
implementer_done_by = None
rollback_incident = None
"""

PRE_APPROVE = """\
risk = "low"
approvers = []
approval_outcome = "approved"
ticket_status = "approved"
"""

# Runs at the start of every round of the approval cycle. Lists that cross the loop boundary are
# reset here: the loop merges each round's data into the previous round's, so a stale list would
# be merged item by item instead of replaced. The approval form's answers are reset too: each
# round's approver (and each CAB member) decides afresh, not on the previous round's "Reject" and
# comment shown filled in (None is no answer: the form then requires one).
BEGIN_ROUND = """\
approval_outcome = None
revision_decision = None
approvers = []
votes = []
cab_members = []
approved = None
approval_comment = None
eligible_managers = []
cab_checked = False
approval_note = None
if change_type == "emergency":
    risk = "high"
    ticket_status = "awaiting_approval"
else:
    risk = None
    ticket_status = "assessment"
"""

REQUEST_APPROVAL = """\
if risk not in ("low", "medium", "high"):
    risk = "high"
ticket_status = "awaiting_approval"
"""

# The requester and the implementer may not vote; leaving them out keeps "all must approve"
# reachable. If nobody is left, a change manager decides instead (PICK_MANAGERS checks there is one).
PICK_CAB = """\
members = cab_lookup["members"] if cab_lookup and cab_lookup.get("members") else []
cab_members = sorted(set(m for m in members if m and m != requester and m != implementer))
votes = []
cab_checked = True
if not cab_members:
    approval_note = ("No CAB member may vote on this change (the requester and the implementer may not "
                     "approve it), so a change manager decides.")
"""

# The change manager route checks the same way: the approval task excludes the requester and the
# implementer, so a ChangeManagers group made only of them would leave the task waiting for someone
# who is refused (403) when they try. A low-risk change then goes to the CAB; when the CAB has
# nobody eligible either, the change managers are told and the task waits in their queue for an
# eligible change manager (one who joins the group, or one an admin hands the task to).
PICK_MANAGERS = """\
members = manager_lookup["members"] if manager_lookup and manager_lookup.get("members") else []
eligible_managers = sorted(set(m for m in members if m and m != requester and m != implementer))
if not eligible_managers and not cab_checked:
    approval_note = ("No change manager may approve this change (the requester and the implementer may not "
                     "approve it), so the CAB decides.")
elif not eligible_managers:
    approval_note = ("Nobody may approve this change yet: the requester and the implementer may not approve it, "
                     "and no other change manager or CAB member is available. It waits here for a change manager "
                     "who is neither (one who joins ChangeManagers, or one an admin hands this task to).")
"""

SINGLE_DECISION = """\
decided_by = get_current_user()["username"]
if approved:
    approval_outcome = "approved"
    approvers = [decided_by]
    ticket_status = "approved"
    # An earlier round's rejection is history now (the audit trail keeps it, revision_count counts
    # it): the record must not show it as the reason of a change that stands approved.
    rejection_reason = None
    rejected_by = None
else:
    approval_outcome = "rejected"
    approvers = []
    rejected_by = decided_by
    rejection_reason = (approval_comment or "").strip() or "rejected by " + decided_by
    ticket_status = "rejected"
"""

# The vote is the voter's: an admin may hand a member's vote to another member (a leaver's, say),
# and the record must name who approved, not whom the vote was first asked of ("for").
CAB_VOTE = """\
vote = {"approver": (get_current_user() or {}).get("username") or approver, "approved": approved,
        "comment": (approval_comment or "").strip()}
if vote["approver"] != approver:
    vote["for"] = approver
"""

TALLY = """\
rejections = [v for v in votes if not v["approved"]]
if not rejections and len(votes) == len(cab_members):
    approval_outcome = "approved"
    approvers = [v["approver"] for v in votes]
    ticket_status = "approved"
    rejection_reason = None  # an earlier round's, if any (see SINGLE_DECISION)
    rejected_by = None
else:
    approval_outcome = "rejected"
    approvers = []
    ticket_status = "rejected"
    if rejections:
        rejected_by = rejections[0]["approver"]
        rejection_reason = rejections[0]["comment"] or "rejected by CAB member " + rejected_by
    else:
        rejected_by = None
        rejection_reason = "the CAB vote was not completed"
"""

TIMEOUT_REJECT = """\
approval_outcome = "rejected"
approvers = []
rejected_by = None
rejection_reason = "not approved in time"
ticket_status = "rejected"
"""

# Each revision says what changed this time: the form opens empty, not with the notes of the
# revision before (the instance's history keeps those, with the task that wrote them).
# The planned end is not filled in (the instructions show it, from before_revision): the form
# checks the end against the start with the stored value of the end not sent, so a filled-in end
# (posted back unchanged by a browser, or kept by the API when left out or null) would refuse a
# start moved past it, which the help says moves the whole window. The start stays, so an end that
# is given is still checked against the start it keeps. The record keeps showing the end: a
# variable that is not there is not copied onto it.
BEFORE_REVISION = (
    'before_revision = {"change_type": change_type, "planned_start": planned_start, "planned_end": planned_end, '
    '"implementation_plan": implementation_plan, "rollback_plan": rollback_plan, "test_plan": test_plan}\n'
    'revision_notes = None\n'
    'del planned_end\n'
)

REVISE = """\
# The form is shown filled in (but for the planned end, see BEFORE_REVISION) and says "leave empty
# to keep": a web post of an emptied field arrives as None, an end left out is not there at all,
# so what is empty takes back the value the change had before this task.
try:
    planned_end
except NameError:
    planned_end = None
kept_start = not str(planned_start or "").strip()
kept_end = not str(planned_end or "").strip()
if revision_decision == "withdraw":
    # A withdrawn change stays on record as it was assessed; edits only go with a resubmission.
    ticket_status = "withdrawn"
    change_type = before_revision["change_type"]
    planned_start = before_revision["planned_start"]
    planned_end = before_revision["planned_end"]
    implementation_plan = before_revision["implementation_plan"]
    rollback_plan = before_revision["rollback_plan"]
    test_plan = before_revision["test_plan"]
else:
    revision_count = revision_count + 1
    if not str(change_type or "").strip():
        change_type = before_revision["change_type"]
    if kept_start:
        planned_start = before_revision["planned_start"]
    if kept_end:
        planned_end = before_revision["planned_end"]
    if not str(implementation_plan or "").strip():
        implementation_plan = before_revision["implementation_plan"]
    if not str(rollback_plan or "").strip():
        rollback_plan = before_revision["rollback_plan"]
    if not str(test_plan or "").strip():
        test_plan = before_revision["test_plan"]
    # The form compares the two ends only when both are given. One end moved past the kept
    # other end moves the whole window: the kept end follows, so the window keeps its length.
    window_start = parse_datetime(planned_start)
    window_end = parse_datetime(planned_end)
    if window_end <= window_start and kept_start != kept_end:
        window_length = parse_datetime(before_revision["planned_end"]) - parse_datetime(before_revision["planned_start"])
        if window_length <= timedelta(0):
            raise ValueError("the change's planned window ends before it starts")
        if kept_end:
            moved = (window_start + window_length).astimezone(timezone.utc).isoformat()
            planned_end = moved[:-6] + "Z" if moved.endswith("+00:00") else moved
        else:
            moved = (window_end - window_length).astimezone(timezone.utc).isoformat()
            planned_start = moved[:-6] + "Z" if moved.endswith("+00:00") else moved
before_revision = None
"""

MARK_SCHEDULED = 'ticket_status = "scheduled"\n'

SCHEDULED = """\
ticket_status = "implementing"
assignment_group = "Implementers"
"""

IMPLEMENTED = """\
if not implementer:
    implementer = get_current_user()["username"]
ticket_status = "verifying"
"""

# verified_by (the task's setUserVar) is whoever verified, whatever the outcome; confirmed_by is
# only set when they confirmed the change works, so a failed verification confirms nothing.
VERIFIED = """\
if verified:
    confirmed_by = verified_by
    result = "successful"
    ticket_status = "review"
    assignment_group = "ChangeManagers"
else:
    confirmed_by = None
    result = "verification_failed"
    ticket_status = "rolling_back"
"""

ROLLED_BACK = """\
result = "rolled_back" if rollback_successful else "rollback_failed"
ticket_status = "review"
assignment_group = "ChangeManagers"
"""

# A failed rollback leaves the service broken: the incident it raises is described from what the
# change's people may all read (not the internal verification and rollback notes, see the module
# docstring). Title and description are cut to the incident start form's limits: a diagram's start
# skips that form's check.
PLAN_ROLLBACK_INCIDENT = """\
change_ref = record_number or "change"
rollback_incident_request = {
    "title": ("Failed rollback of " + change_ref + ": " + title)[:200],
    "description": ("Change " + change_ref + " (" + title + ") failed its verification and the rollback failed: "
                    + ("configuration item " + ci if ci else "the service it changed")
                    + " may be down or degraded.\\n\\nRollback plan that did not restore it:\\n\\n" + rollback_plan
                    + "\\n\\nThe verification and rollback notes are on " + change_ref + ".")[:10000],
    "category": "system",
    "impact": "high",
    "urgency": "high",
    "ci": ci,
}
del change_ref
"""

RECORD_ROLLBACK_INCIDENT = 'rollback_incident = rollback_incident_started["number"]\n'

CLOSE = 'ticket_status = "closed"\n'

# -- instructions -----------------------------------------------------------------------------------

SUMMARY = (
    "**{{ title }}** ({{ change_type }} change{% if ci %}, CI {{ ci }}{% endif %}), requested by {{ requester }}.\n\n"
    "{{ description }}\n\n"
    "Reason: {{ reason }}\n\n"
    "Planned: {{ planned_start }} to {{ planned_end }}\n\n"
)
PLANS = (
    "**Implementation plan**\n\n{{ implementation_plan }}\n\n"
    "**Rollback plan**\n\n{{ rollback_plan }}\n\n"
    "**Test plan**\n\n{{ test_plan }}\n\n"
)
#: Why this approval came to this approver (or waits): no eligible change manager or CAB member.
APPROVAL_NOTE = "{% if approval_note %}**{{ approval_note }}**\n\n{% endif %}"
#: A resubmitted change: how often, the rejection it answers and what its requester changed (the
#: form requires revision notes with a resubmission). Not internal: the assessors and approvers read it.
REVISION = (
    "{% if revision_count %}**Resubmitted "
    "{% if revision_count == 1 %}once{% elif revision_count == 2 %}twice{% else %}{{ revision_count }} times{% endif %}"
    "** after a rejection: {{ rejection_reason }}\n\n"
    "{% if revision_notes %}What changed: {{ revision_notes }}\n\n{% endif %}{% endif %}"
)


def _form(name: str) -> dict[str, str]:
    return {"formJsonSchemaFilename": f"{name}.json", "formUiSchemaFilename": f"{name}.ui.json"}


def approval_cycle() -> Diagram:
    d = Diagram(CYCLE_ID, "Assess and approve", lanes=[REQUESTERS, MANAGERS, CAB, ECAB])
    d.node("round_start", "start", "Review round", lane=MANAGERS, col=0)
    d.node("begin_round", "script", "Open review round", lane=MANAGERS, col=1, script=BEGIN_ROUND)
    d.node("route", "xor", "Emergency change?", lane=MANAGERS, col=2)
    d.node(
        "assess", "user", "Assess change", lane=MANAGERS, col=3,
        properties=_form("change-assess"),
        instructions=SUMMARY + REVISION + PLANS
        + "Assess impact, reach, rollback and testing, and name who will implement the change.",
    )
    d.node("assess_risk", "rule", "Determine risk", lane=MANAGERS, col=4, decision="change_risk")
    d.node("request_approval", "script", "Request approval", lane=MANAGERS, col=5, script=REQUEST_APPROVAL)
    d.node("risk_route", "xor", "Risk level?", lane=MANAGERS, col=6)
    d.node(
        "find_cab", "service", "Find CAB members", lane=CAB, col=7,
        operator="get_group_members", params={"group": '"CAB"'}, result_variable="cab_lookup",
    )
    d.node("pick_cab", "script", "Select eligible CAB members", lane=CAB, col=8, script=PICK_CAB)
    d.node("cab_available", "xor", "Eligible CAB members?", lane=CAB, col=9)
    d.node(
        "cab_vote", "user", "CAB approval", lane=CAB, col=10,
        properties={**_form("change-approve"), "assignedUserVar": "approver", **APPROVAL_EXCLUDES},
        multi={"collection": "cab_members", "item": "approver", "output": "votes", "output_item": "vote",
               "completion": 'not vote["approved"]'},
        postscript=CAB_VOTE,
        documentation="One task per eligible CAB member, in parallel. All must approve; the first rejection "
                      "cancels the open votes.",
        instructions=SUMMARY + REVISION + "Risk: **{{ risk }}**; implementer: {{ implementer }}\n\n" + PLANS
        + APPROVAL_NOTE + "Approve or reject. A rejection needs a reason; it ends the vote.",
    )
    d.node("tally", "script", "Count CAB votes", lane=CAB, col=11, script=TALLY)
    d.node(
        "find_managers", "service", "Find change managers", lane=MANAGERS, col=7, row=1,
        operator="get_group_members", params={"group": '"ChangeManagers"'}, result_variable="manager_lookup",
    )
    d.node("pick_managers", "script", "Select eligible change managers", lane=MANAGERS, col=8, row=1,
           script=PICK_MANAGERS)
    d.node("managers_available", "xor", "Eligible change managers?", lane=MANAGERS, col=9, row=1)
    d.node(
        "notify_no_approver", "service", "Notify: nobody may approve", lane=MANAGERS, col=9.5, row=2,
        operator="notify",
        params={
            "group": '"ChangeManagers"',
            "subject": literal("Nobody may approve change {% if record_number %}{{ record_number }}: {% endif %}"
                               "{{ title }}"),
            "body": literal("Nobody may approve {% if record_number %}{{ record_number }} {% endif %}{{ title }}: the"
                            " requester ({{ requester }}){% if implementer %} and the implementer ({{ implementer }})"
                            "{% endif %} may not approve it, and no other change manager or CAB member is available."
                            " The change manager approval waits in the ChangeManagers queue until a change manager"
                            " who is neither joins ChangeManagers, or an admin hands the task to one."),
        },
        result_variable="no_approver_notified",
    )
    d.node("manager_route", "xor", None, lane=MANAGERS, col=10, row=1)
    d.node(
        "manager_approve", "user", "Change manager approval", lane=MANAGERS, col=11, row=1,
        properties={**_form("change-approve"), **APPROVAL_EXCLUDES},
        postscript=SINGLE_DECISION,
        instructions=SUMMARY + REVISION + "Risk: **{{ risk }}**; implementer: {{ implementer }}\n\n" + PLANS
        + APPROVAL_NOTE + "Approve or reject this change. A rejection needs a reason.",
    )
    d.node(
        "ecab_approve", "user", "Emergency CAB approval", lane=ECAB, col=10,
        properties={**_form("change-approve"), **APPROVAL_EXCLUDES},
        postscript=SINGLE_DECISION,
        instructions="**Emergency change.** " + SUMMARY + REVISION
        + "{% if implementer %}Implementer: {{ implementer }}\n\n{% endif %}" + PLANS
        + "Decide within {{ emergency_approval_window }}; without a decision the change is rejected "
        "and the change managers are told.",
    )
    d.node("ecab_timeout", "boundary", "Approval window elapsed", attached_to="ecab_approve",
           timer=("timeDuration", "emergency_approval_window"))
    d.node(
        "notify_managers", "service", "Notify change managers", lane=ECAB, col=11, row=1,
        operator="notify",
        params={
            "group": '"ChangeManagers"',
            "subject": literal("Emergency change not approved in time: {{ title }}"),
            "body": literal("The Emergency CAB did not decide on {{ title }} (requested by {{ requester }}) within"
                            " {{ emergency_approval_window }}. The change is rejected; the requester may"
                            " resubmit it."),
        },
        result_variable="managers_notified",
    )
    d.node("timeout_reject", "script", "Reject: not approved in time", lane=ECAB, col=12, row=1,
           script=TIMEOUT_REJECT)
    d.node("decided", "xor", "Approved?", lane=MANAGERS, col=13)
    d.node("round_approved", "end", "Approved", lane=MANAGERS, col=14)
    d.node(
        "revise", "user", "Revise or withdraw change", lane=REQUESTERS, col=14,
        properties={**_form("change-revise"), "assignedUserVar": "requester"},
        prescript=BEFORE_REVISION,
        postscript=REVISE,
        # The change as it stands, so that the requester sees what they are changing (the form's
        # fields are left empty to keep a value).
        instructions=(
            "Your change **{{ title }}** was rejected{% if rejected_by %} by {{ rejected_by }}{% endif %}: "
            "{{ rejection_reason }}\n\n"
            "Resubmit it, saying what changed and updating the type, window or plans below as needed (it is "
            "assessed and approved again), or withdraw it.\n\n"
            "**The change as it stands**\n\n" + SUMMARY.replace("to {{ planned_end }}",
                                                               "to {{ before_revision.planned_end }}") + PLANS
        ),
    )
    d.node("round_revised", "end", "Resubmitted or withdrawn", lane=REQUESTERS, col=15)

    d.chain("round_start", "begin_round", "route")
    d.flow("route", "ecab_approve", condition='change_type == "emergency"', name="emergency")
    d.flow("route", "assess", name="normal", default=True)
    d.chain("assess", "assess_risk", "request_approval", "risk_route")
    d.flow("risk_route", "find_managers", condition='risk == "low"', name="low")
    d.flow("risk_route", "find_cab", name="medium or high", default=True)
    d.chain("find_cab", "pick_cab", "cab_available")
    d.flow("cab_available", "cab_vote", condition="len(cab_members) > 0", name="yes")
    d.flow("cab_available", "find_managers", name="none", default=True)
    d.chain("find_managers", "pick_managers", "managers_available")
    d.flow("managers_available", "manager_route", condition="len(eligible_managers) > 0", name="yes")
    d.flow("managers_available", "find_cab", condition="not cab_checked", name="none: ask the CAB")
    d.flow("managers_available", "notify_no_approver", name="nobody", default=True)
    d.flow("notify_no_approver", "manager_route")
    d.chain("cab_vote", "tally", "decided")
    d.chain("manager_route", "manager_approve", "decided")
    d.flow("ecab_approve", "decided")
    d.flow("ecab_timeout", "notify_managers")
    d.chain("notify_managers", "timeout_reject", "decided")
    d.flow("decided", "round_approved", condition='approval_outcome == "approved"', name="approved")
    d.flow("decided", "revise", name="rejected", default=True)
    d.chain("revise", "round_revised")
    return d


def build() -> Diagram:
    d = Diagram(
        PROCESS_ID, "Change enablement", lanes=[REQUESTERS, MANAGERS, IMPLEMENTERS],
        documentation="ITIL 4 change enablement: standard changes are pre-approved; normal changes are assessed, "
                      "risk-rated (change_risk.dmn) and approved by a change manager (low risk) or the CAB "
                      "(medium/high); emergency changes go to the Emergency CAB within a time window. Rejected "
                      "changes may be revised and resubmitted or withdrawn. Approved changes are scheduled, "
                      "implemented (not by an approver), verified by the requester (rollback on failure; a failed "
                      "rollback raises an incident) and reviewed.",
    )
    d.node("start", "start", "Change requested", lane=REQUESTERS, col=0)
    d.node("register", "script", "Register change", lane=REQUESTERS, col=1, script=REGISTER)
    d.node("type_route", "xor", "Change type?", lane=MANAGERS, col=2)
    d.node(
        CYCLE_ID, "sub", "Assess and approve", lane=MANAGERS, col=3,
        inner=approval_cycle(), loop_condition='revision_decision == "resubmit"',
        documentation="Assessment, risk and approval; a rejected change goes back to the requester, and the "
                      "round repeats while the requester resubmits. Keep this subprocess out of the lanes: "
                      "the tasks inside have lanes of their own.",
    )
    d.node("pre_approve", "script", "Pre-approved standard change", lane=MANAGERS, col=3, row=1,
           script=PRE_APPROVE)
    d.node("outcome", "xor", "Approved?", lane=MANAGERS, col=4)
    d.node("withdrawn", "end", "Change withdrawn", lane=REQUESTERS, col=4.6)
    d.node("to_schedule", "xor", None, lane=MANAGERS, col=5.5)
    d.node("mark_scheduled", "script", "Queue for scheduling", lane=MANAGERS, col=6.5, script=MARK_SCHEDULED)
    d.node(
        "schedule", "user", "Schedule change", lane=MANAGERS, col=7.5,
        properties=_form("change-schedule"),
        postscript=SCHEDULED,
        instructions=SUMMARY + "Risk: {{ risk }}{% if implementer %}; implementer: {{ implementer }}{% endif %}\n\n"
        "Confirm the change window (start and end, with a time zone).",
    )
    d.node(
        "implement", "user", "Implement change", lane=IMPLEMENTERS, col=8.5,
        properties={
            **_form("change-implement"),
            "setUserVar": "implementer_done_by",
            "excludeUsersVars": "approvers",
            "excludeReason": "separation of duties: an approver may not implement this change",
        },
        postscript=IMPLEMENTED,
        instructions=SUMMARY + "{% if implementer %}Planned implementer: {{ implementer }}\n\n{% endif %}" + PLANS
        + "Implement the change in its window and record what was done and when.",
    )
    d.node(
        "verify", "user", "Verify change", lane=REQUESTERS, col=9.5,
        properties={**_form("change-verify"), "assignedUserVar": "requester", "setUserVar": "verified_by"},
        postscript=VERIFIED,
        instructions=(
            # not the implementation notes: they are internal, and the requester verifies (docs/PROCESSES.md)
            "Your change **{{ title }}** was implemented ({{ actual_start }} to {{ actual_end }}).\n\n"
            "**Test plan**\n\n{{ test_plan }}\n\n"
            "Does it work as intended? If not, the implementers roll it back."
        ),
    )
    d.node("verified_route", "xor", "Verified?", lane=REQUESTERS, col=10.5)
    d.node(
        "rollback", "user", "Roll back change", lane=IMPLEMENTERS, col=11.5,
        properties=_form("change-rollback"),
        postscript=ROLLED_BACK,
        instructions=(
            "Verification of **{{ title }}** failed:\n\n{{ verification_notes }}\n\n"
            "**Rollback plan**\n\n{{ rollback_plan }}\n\nRoll the change back and record the outcome."
        ),
    )
    d.node("rollback_route", "xor", "Rollback failed?", lane=IMPLEMENTERS, col=12.5)
    d.node("plan_rollback_incident", "script", "Describe the failed rollback", lane=IMPLEMENTERS, col=13.5, row=1,
           script=PLAN_ROLLBACK_INCIDENT)
    d.node(
        "raise_rollback_incident", "service", "Raise incident for the failed rollback", lane=IMPLEMENTERS,
        col=14.5, row=1,
        operator="start_process",
        params={
            "process_id": '"incident_management"',
            "data": "rollback_incident_request",
            "link_type": '"related_incident"',  # the change causes the incident (app/services/records.py)
        },
        result_variable="rollback_incident_started",
    )
    d.node("record_rollback_incident", "script", "Record the incident", lane=IMPLEMENTERS, col=15.5, row=1,
           script=RECORD_ROLLBACK_INCIDENT)
    d.node("rollback_done", "xor", None, lane=IMPLEMENTERS, col=16.5)
    d.node("to_review", "xor", None, lane=REQUESTERS, col=17.5)
    d.node(
        "review", "user", "Post-implementation review", lane=MANAGERS, col=18.5,
        properties=_form("change-review"),
        instructions=(
            "**{{ title }}** ({{ change_type }}, risk {{ risk }}): result **{{ result }}**.\n\n"
            "Implemented by {{ implementer_done_by }} from {{ actual_start }} to {{ actual_end }}; "
            "{% if approvers %}approved by {{ approvers | join(', ') }}{% else %}pre-approved{% endif %}.\n\n"
            "{{ implementation_notes }}\n\n"
            "{% if rollback_notes %}Rollback: {{ rollback_notes }}\n\n{% endif %}"
            "{% if rollback_incident %}The failed rollback raised incident **{{ rollback_incident }}**.\n\n{% endif %}"
            "Review the change and record the lessons learned."
        ),
    )
    d.node("close", "script", "Close change", lane=MANAGERS, col=19.5, script=CLOSE)
    d.node("closed", "end", "Change closed", lane=MANAGERS, col=20.5)

    d.chain("start", "register", "type_route")
    d.flow("type_route", "pre_approve", condition='change_type == "standard"', name="standard")
    d.flow("type_route", CYCLE_ID, name="normal or emergency", default=True)
    d.chain(CYCLE_ID, "outcome")
    d.flow("outcome", "to_schedule", condition='approval_outcome == "approved"', name="approved")
    d.flow("outcome", "withdrawn", name="withdrawn", default=True)
    d.flow("pre_approve", "to_schedule")
    d.chain("to_schedule", "mark_scheduled", "schedule", "implement", "verify", "verified_route")
    d.flow("verified_route", "to_review", condition="verified", name="yes")
    d.flow("verified_route", "rollback", name="no", default=True)
    d.flow("rollback", "rollback_route")
    d.flow("rollback_route", "plan_rollback_incident", condition='result == "rollback_failed"', name="failed")
    d.flow("rollback_route", "rollback_done", name="rolled back", default=True)
    d.chain("plan_rollback_incident", "raise_rollback_incident", "record_rollback_incident", "rollback_done",
            "to_review")
    d.chain("to_review", "review", "close", "closed")
    return d


def _detach_from_lanes(root: etree._Element, node_id: str) -> None:
    """Keep ``node_id`` out of the lanes (see the module docstring); its DI stays where it is drawn."""
    for ref in root.iter(f"{{{BPMN_NS}}}flowNodeRef"):
        if ref.text == node_id:
            ref.getparent().remove(ref)


def _drop_inner_participant(root: etree._Element, inner: Diagram) -> None:
    """The builder draws a pool for a laned diagram; a subprocess plane has lanes but no pool."""
    participant = f"{inner.process_id}_participant"
    for shape in list(root.iter("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape")):
        if shape.get("bpmnElement") == participant:
            shape.getparent().remove(shape)


def _scripts_on_instances(root: etree._Element, node_id: str) -> None:
    """Run the multi-instance task's pre/postScript on every instance (SpiffWorkflow moves them to the
    multi-instance wrapper otherwise, where the postScript would run once, after all votes)."""
    for task in root.iter(f"{{{BPMN_NS}}}userTask"):
        if task.get("id") == node_id:
            loop = task.find(f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics")
            assert loop is not None
            loop.set(f"{{{SPIFF_NS}}}scriptsOnInstances", "true")


def _label_straight_flows(root: etree._Element) -> None:
    """Put the name of a two-point flow above the middle of its line, not on its target."""
    di = "http://www.omg.org/spec/DD/20100524/DI"
    dc = "http://www.omg.org/spec/DD/20100524/DC"
    for edge in root.iter("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNEdge"):
        points = edge.findall(f"{{{di}}}waypoint")
        bounds = edge.find(f"{{http://www.omg.org/spec/BPMN/20100524/DI}}BPMNLabel/{{{dc}}}Bounds")
        if len(points) != 2 or bounds is None:
            continue
        (x1, y1), (x2, y2) = ((int(p.get("x", "0")), int(p.get("y", "0"))) for p in points)
        bounds.set("x", str((x1 + x2) // 2 - 30))
        bounds.set("y", str((y1 + y2) // 2 - 18))


def to_xml() -> str:
    d = build()
    inner = d.nodes[CYCLE_ID].inner
    assert inner is not None
    root = etree.fromstring(d.to_xml().encode("utf-8"))
    _detach_from_lanes(root, CYCLE_ID)
    _drop_inner_participant(root, inner)
    _scripts_on_instances(root, "cab_vote")
    _label_straight_flows(root)
    return pretty(etree.tostring(root, encoding="unicode"))


def main() -> None:
    target = ROOT / "processes" / f"{PROCESS_ID}.bpmn"
    target.write_text(to_xml(), encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
