"""Draw processes/catalog_request.bpmn (service catalog requests: approval, fulfilment, confirmation).

Run from the repository root: ``.venv/bin/python tools/processes/catalog_request.py``.

Data contract (docs/PROCESSES.md; the record mapping is processes/catalog_request.record.json):
- start data: ``item`` (a catalog item code from processes/catalog.json) plus the fields of that
  item's request form (forms/catalog-<item>.json); every item form has ``justification``, some
  ``quantity``.
- the approval route comes from processes/catalog_approval.dmn: ``none``, ``line_manager`` (the
  requester's manager; the budget owners when there is none) or ``budget_owner``. Nobody approves
  their own request. ``decided_by`` (the approval task's setUserVar) is who decided; the record
  shows them as ``approved_by`` when they approved and as ``rejected_by`` when they rejected, so a
  rejected request names nobody as its approver.
- statuses (``ticket_status``): submitted -> [rejected] | fulfilment -> awaiting_confirmation
  -> closed; "not received" goes back to fulfilment.
- A requester who does not answer the confirmation is reminded once after
  ``confirm_reminder_after`` (ISO 8601 duration, default ``"P2D"``; a non-interrupting timer) and
  the request closes on its own after ``auto_close_after`` (default ``"P5D"``; an interrupting
  timer), with ``closed_reason`` "auto-closed: receipt not confirmed within 5 days" on the record,
  as an incident closes when its requester does not confirm the resolution. Both durations may be
  set in the start data by whatever starts the process without the catalog form (a diagram, the
  tests); the catalog's request forms do not ask for them.
- Fulfilment and confirmation are an embedded subprocess with standardLoopCharacteristics: it
  repeats until the requester confirms receipt, so the task tree keeps its depth. Its plane has its
  own lanes (to_xml).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from tools.bpmn_builder import BPMN_NS, Diagram, literal, pretty  # noqa: E402

PROCESS_ID = "catalog_request"
CYCLE_ID = "fulfil_and_confirm"
DESK = "ServiceDesk"
MANAGERS = "LineManagers"
BUDGET = "BudgetOwners"
FULFILMENT = "Fulfilment"
REQUESTERS = "Requesters"

SELF_APPROVAL = "you may not approve your own request"

REGISTER = """\
requester = get_process_initiator_user()["username"]
ticket_status = "submitted"
priority = "P4"
try:
    record_number
except NameError:
    record_number = ""
try:
    quantity
except NameError:
    quantity = 1
try:
    justification
except NameError:
    justification = ""
# How long the requester has to confirm receipt before a reminder, and before the request closes
# on its own (ISO 8601 durations; see the module docstring).
try:
    confirm_reminder_after
except NameError:
    confirm_reminder_after = "P2D"
try:
    auto_close_after
except NameError:
    auto_close_after = "P5D"
confirm_reminder_after = str(confirm_reminder_after or "P2D").strip().upper()
auto_close_after = str(auto_close_after or "P5D").strip().upper()
if parse_duration(confirm_reminder_after) <= timedelta(0) or parse_duration(auto_close_after) <= timedelta(0):
    raise ValueError("confirm_reminder_after and auto_close_after must be positive ISO 8601 durations such as P5D")
# The delay in words for the record's closed reason ("5 days", "1 day 2 hours"), stored as written;
# the reminder's notice prints auto_close_after itself, which a notice words in its reader's language.
close_minutes = int(parse_duration(auto_close_after).total_seconds() // 60)
close_words = []
for amount, unit in ((close_minutes // 1440, "day"), (close_minutes % 1440 // 60, "hour"), (close_minutes % 60, "minute")):
    if amount:
        close_words.append(str(amount) + " " + unit + ("" if amount == 1 else "s"))
auto_close_after_words = " ".join(close_words) or auto_close_after
del close_minutes, close_words, amount, unit
# Fields later steps fill in; set here so every gateway and the record mapping can read them.
approval = None
approved = None
decided_by = None
approved_by = None
rejected_by = None
approval_comment = ""
closed_reason = None
line_manager = None
assignee = None
fulfilment_notes = ""
received = None
rating = None
rating_comment = ""
"""

PREPARE = """\
title = catalog["name"] + " for " + requester
description = justification
category = catalog["code"]
fulfilment_group = catalog["fulfilment_group"]
approval_rule = catalog["approval"]
quantity = int(quantity)
cost = catalog["cost"] * quantity
"""

NOTE_MANAGER = """\
line_manager = manager_lookup["manager"]
if not line_manager or line_manager == requester:
    line_manager = None
    approval = "budget_owner"
"""

# Who decided goes under the name of what they decided (see the module docstring).
DECIDED = """\
approved_by = decided_by if approved else None
rejected_by = None if approved else decided_by
"""

# No answer within auto_close_after: the request is closed (the cycle's loop ends on "no_answer").
AUTO_CLOSE = """\
received = "no_answer"
closed_reason = "auto-closed: receipt not confirmed within " + auto_close_after_words
"""

APPROVE_INSTRUCTIONS = (
    "**{{ requester }}** requests **{{ catalog.name }}**{% if quantity > 1 %} (x{{ quantity }}){% endif %}.\n\n"
    "Cost: {{ '%.2f' % cost if cost is number else cost }} EUR. Fulfilled by {{ fulfilment_group }}.\n\n"
    "Justification: {{ justification }}"
)


def fulfil_cycle() -> Diagram:
    """One round of fulfilment and the requester's confirmation."""
    d = Diagram("catalog_fulfil_cycle", "Fulfil and confirm", lanes=[FULFILMENT, REQUESTERS])
    d.node("fulfil_start", "start", "Fulfilment round started", lane=FULFILMENT, col=0)
    d.node(
        "fulfil_request", "user", "Fulfil request", lane=FULFILMENT, col=1,
        properties={
            "formJsonSchemaFilename": "request-fulfil.json",
            "formUiSchemaFilename": "request-fulfil.ui.json",
            "candidateGroupVar": "fulfilment_group",
            "setUserVar": "assignee",
            "claimForUserVar": "assignee",
        },
        prescript='ticket_status = "fulfilment"',
        instructions=(
            "Deliver **{{ catalog.name }}**{% if quantity > 1 %} (x{{ quantity }}){% endif %} to **{{ requester }}**.\n\n"
            "Target: {{ catalog.target_hours }} hours.\n\n"
            "{% if received == 'no' %}The requester reported it was not received: {{ rating_comment }}\n\n{% endif %}"
            "Justification: {{ justification }}"
        ),
    )
    d.node(
        "confirm_receipt", "user", "Confirm receipt and rate", lane=REQUESTERS, col=2,
        properties={
            "formJsonSchemaFilename": "request-confirm.json",
            "formUiSchemaFilename": "request-confirm.ui.json",
            "assignedUserVar": "requester",
        },
        # Each confirmation is the requester's answer to this delivery: a comment given on an earlier
        # round (read by the fulfilment team's next task) is not carried into this one.
        # a second round (after "not received") starts blank, not with the last round's answers
        prescript='ticket_status = "awaiting_confirmation"\nreceived = None\nrating = None\nrating_comment = ""',
        instructions=(
            "Your request **{{ title }}** was fulfilled:\n\n{{ fulfilment_notes }}\n\n"
            "Please confirm you received it and rate the service. Without an answer the request is closed "
            # the duration itself: the task page says it in the reader's language ("5 days", "5 天")
            "automatically after {{ auto_close_after }}."
        ),
    )
    d.node("confirm_reminder", "boundary", "Not confirmed yet", attached_to="confirm_receipt",
           timer=("timeDuration", "confirm_reminder_after"), interrupting=False)
    d.node("confirm_timeout", "boundary", "No answer", attached_to="confirm_receipt",
           timer=("timeDuration", "auto_close_after"))
    d.node(
        "remind_requester", "service", "Remind requester", lane=REQUESTERS, col=3, row=1,
        operator="notify",
        params={
            "user": "requester",
            "subject": literal("Please confirm receipt: {% if record_number %}{{ record_number }}: {% endif %}"
                               "{{ title }}"),
            "body": literal("Your request {% if record_number %}{{ record_number }} {% endif %}{{ title }} was"
                            " fulfilled: did you receive it? Please confirm and rate the service. Without an answer"
                            " the request is closed automatically after {{ auto_close_after }} from the"
                            " fulfilment."),
        },
        result_variable="reminder_sent",
    )
    d.node("reminded", "end", "Requester reminded", lane=REQUESTERS, col=4, row=1)
    d.node("auto_close", "script", "Auto-close", lane=REQUESTERS, col=3, row=2, script=AUTO_CLOSE)
    d.node("fulfil_auto_closed", "end", "Auto-closed", lane=REQUESTERS, col=4, row=2)
    d.node("fulfil_end", "end", "Fulfilment round done", lane=REQUESTERS, col=3)
    d.chain("fulfil_start", "fulfil_request", "confirm_receipt", "fulfil_end")
    d.chain("confirm_reminder", "remind_requester", "reminded")
    d.chain("confirm_timeout", "auto_close", "fulfil_auto_closed")
    return d


# The record's closed reason says who rejected it and why (the approver's comment, when given).
REJECT = (
    'ticket_status = "rejected"\n'
    'closed_reason = "rejected by " + str(rejected_by or "the approver") + ((": " + approval_comment.strip()) '
    'if (approval_comment or "").strip() else "")'
)


def build() -> Diagram:
    d = Diagram(
        PROCESS_ID, "Catalog request", lanes=[DESK, MANAGERS, BUDGET, FULFILMENT],
        documentation="Order an item from the service catalog: approval by the line manager or budget owner "
                      "as the catalog approval decision says, fulfilment by the item's team, confirmation "
                      "and rating by the requester.",
    )
    d.node("start", "start", "Item ordered", lane=DESK, col=0)
    d.node("register", "script", "Register request", lane=DESK, col=1, script=REGISTER)
    d.node(
        "load_item", "service", "Load catalog item", lane=DESK, col=2,
        operator="catalog_item", params={"code": "item"}, result_variable="catalog",
    )
    d.node("prepare", "script", "Prepare request", lane=DESK, col=3, script=PREPARE)
    d.node("decide_approval", "rule", "Decide approval", lane=DESK, col=4, decision="catalog_approval")
    d.node("which_approval", "xor", "Which approval?", lane=DESK, col=5)

    d.node(
        "find_manager", "service", "Find line manager", lane=MANAGERS, col=6,
        operator="get_manager", params={"username": "requester"}, result_variable="manager_lookup",
    )
    d.node("note_manager", "script", "Note line manager", lane=MANAGERS, col=7, script=NOTE_MANAGER)
    d.node("manager_known", "xor", "Line manager known?", lane=MANAGERS, col=8)
    d.node(
        "approve_manager", "user", "Approve as line manager", lane=MANAGERS, col=9,
        properties={
            "formJsonSchemaFilename": "request-approve.json",
            "formUiSchemaFilename": "request-approve.ui.json",
            "assignedUserVar": "line_manager",
            "excludeUsersVars": "requester",
            "excludeReason": SELF_APPROVAL,
            "setUserVar": "decided_by",
        },
        postscript=DECIDED,
        instructions=APPROVE_INSTRUCTIONS,
    )
    d.node(
        "approve_budget", "user", "Approve as budget owner", lane=BUDGET, col=9,
        properties={
            "formJsonSchemaFilename": "request-approve.json",
            "formUiSchemaFilename": "request-approve.ui.json",
            "excludeUsersVars": "requester",
            "excludeReason": SELF_APPROVAL,
            "setUserVar": "decided_by",
        },
        postscript=DECIDED,
        instructions=APPROVE_INSTRUCTIONS,
    )
    d.node("is_approved", "xor", "Approved?", lane=DESK, col=10, row=1)
    d.node("reject", "script", "Mark rejected", lane=DESK, col=11, row=1, script=REJECT)
    d.node("end_rejected", "end", "Request rejected", lane=DESK, col=12, row=1)

    d.node("ready", "xor", "Ready for fulfilment", lane=DESK, col=11)
    d.node("start_fulfilment", "script", "Hand over to fulfilment", lane=DESK, col=12,
           script='ticket_status = "fulfilment"')
    d.node(
        CYCLE_ID, "sub", "Fulfil and confirm", lane=FULFILMENT, col=13,
        inner=fulfil_cycle(), loop_condition='received not in ("yes", "no_answer")',
        documentation="Repeats until the requester confirms they received the item, or the request closes "
                      "without an answer.",
    )
    d.node("close", "script", "Mark closed", lane=DESK, col=14, script='ticket_status = "closed"')
    d.node("end", "end", "Request closed", lane=DESK, col=15)

    d.chain("start", "register", "load_item", "prepare", "decide_approval", "which_approval")
    d.flow("which_approval", "find_manager", condition='approval == "line_manager"', name="line manager")
    d.flow("which_approval", "approve_budget", condition='approval == "budget_owner"', name="budget owner")
    # Straight flows stay unnamed: the builder puts a straight flow's label on its target.
    d.flow("which_approval", "ready", default=True)  # none
    d.chain("find_manager", "note_manager", "manager_known")
    d.flow("manager_known", "approve_manager", condition="line_manager")  # yes
    d.flow("manager_known", "approve_budget", name="no manager", default=True)
    d.flow("approve_manager", "is_approved")
    d.flow("approve_budget", "is_approved")
    d.flow("is_approved", "ready", condition="approved", name="approved")
    d.flow("is_approved", "reject", default=True)  # rejected
    d.chain("reject", "end_rejected")
    d.chain("ready", "start_fulfilment", CYCLE_ID, "close", "end")
    return d


def to_xml() -> str:
    """The builder's XML, with the fulfilment cycle's tasks in their own lanes.

    SpiffWorkflow gives every node inside an embedded subprocess the subprocess's lane when it has
    one. So the collapsed subprocess is drawn in the Fulfilment lane but left out of every lane's
    flowNodeRefs, and its plane has lanes of its own (without the pool the builder draws for a laned
    diagram): fulfilment with the Fulfilment lane, the confirmation with the requester.
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
