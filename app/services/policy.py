"""Who may do what. Pure functions over users, instances and tasks: no queries, no I/O.

Rules (issue #2, item 6):
- a lane's name is a group's name: its members who hold a role that works a group's queue
  (``QUEUE_ROLES``: agent, approver, process owner, admin) see and may claim the lane's tasks, and
  those of the groups a task names as its candidate group (``queue_groups``). A member with only
  the requester role (or only the auditor's) gets no queue from the group: a requester put into
  the service desk's group (by mistake, or a distribution list mirrored from a directory) neither
  picks up nor is handed its work, nor reads the records assigned to it. What waits for her by
  name (a "Requesters" lane's tasks are each assigned to one requester) is hers as before.
  (Security review; as a ServiceNow assignment group's members are its fulfillers, a group's
  queue is its staff's. Adding a requester to a group stays allowed: "Requesters" and
  "LineManagers" hold requesters and approvers whose tasks come by name);
- the instances of a process are seen by the members of its lanes' groups who hold a staff
  role (agent, process owner): a lane such as "Requesters" whose tasks are each
  assigned to one requester does not show every requester everyone's instances; approvers see
  those with a task for their group (by candidate group or lane) or for them; anyone else sees the
  instances they started or hold (or held) a task in (``records.task_reaches``);
- a task outside any lane belongs to the instance's starter;
- a claimed task is completed only by its claimant; admins may reassign;
- auditors read every instance and its history, but work on no task;
- cancelling (``may_cancel``): an admin cancels any instance it sees. An instance with a record
  is cancelled by the staff who run the service desk (agents, process owners) or withdrawn by
  its requester while nobody has started work on it: the record is still in a status before
  any work (``WITHDRAWABLE_STATUSES``: new, submitted, awaiting approval) and nobody else holds
  one of its open tasks. Once work has started, the requester asks the desk (a comment) instead:
  an approved change or an incident being worked on is not pulled from under the people on it.
  An instance without a record is cancelled by its starter (or an admin);
- starting (``may_start``): a process is started by the holders of a starter role (requester,
  agent, approver, process owner, admin); a process whose ``<process_id>.access.json`` declares
  ``start_roles`` only by the holders of one of those (changes and problems: the desk's staff).
  The hidden fields of a start form (``ui:widget`` hidden: nobody is shown them) are set by the
  staff (``DESK_STAFF_ROLES``) only: anyone else's start keeps their defaults. A diagram starting a
  process on someone's behalf (``start_process`` operator) is not checked;
- process definitions (``may_read_definitions``): every signed-in user sees the list of deployed
  processes (names and versions: what there is to start), but a diagram's XML, its versions with
  their running-instance counts and the process pages are read by the staff who run, own or audit
  the processes (``DEFINITION_READER_ROLES``): a diagram holds the desk's rules (approval
  thresholds, routing, scripts) that requesters and approvers have no need to read;
- a record's watchers (the users and groups a step of its process told about it, ``notify``)
  read it, as anyone it reaches does, but act on it no more than before they watched it: a
  comment or a link to it by someone who only watches it is refused (``RecordService.may_see``
  with ``watched=False`` is the rule of acting). A watching group shows the record to its members
  whose queue it is (``watching_groups``: as the records assigned to a group show themselves to
  its staff only), not to a member who only requests: a step telling a group tells those of its
  members who may read the record, and them only (QA: a requester in ServiceOwners read, and was
  mailed, every major incident). Taking the role away takes the sight away;
- internal data (``reads_internal_data``): a process's record mapping may name its working
  variables ``internal`` (an agent's triage notes, a change's assessment notes). Only the staff
  who read every record (``INTERNAL_DATA_ROLES``: agents, process owners, admins, auditors) read
  them in an instance's or task's data and in its history; requesters and approvers get the data
  without them, but for the fields of the task form they are shown (``RecordService.hidden_variables``);
- deleting an attached file (``may_delete_attachment``): an admin deletes any; an agent of the
  record's group (its ``assignment_group``: who work the record, as ``may_reassign`` lets them hand
  on its tasks) deletes any file of it, whatever the record's state; whoever attached the file
  deletes it while the record is not closed (a closed record keeps what it held, as it takes no
  more comments from them). Nobody else, and never a read-only auditor;
- an object the caller may not see answers 404 (no existence leak), one they see but may not
  change answers 403.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from app.models import HumanTask, ProcessInstance, Role, TaskStatus, Ticket, TicketAttachment, User

STARTER_ROLES = (Role.REQUESTER, Role.AGENT, Role.APPROVER, Role.PROCESS_OWNER, Role.ADMIN)
#: The desk's staff: who raise the processes only staff start (changes, problems) and who set the
#: hidden fields of a start form (e.g. how long a resolved incident waits for its requester).
DESK_STAFF_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN)
#: Who sees every instance of a process with a lane of one of their groups. Not approvers: they see
#: the instances (and records) whose tasks reach them, not every change their CAB lane appears in.
LANE_STAFF_ROLES = (Role.AGENT, Role.PROCESS_OWNER)
#: Whose group's open or done tasks (by candidate group or lane) show them the task's instance and
#: record. Not a plain requester's: a "Requesters" lane member works their own tasks, and sees no more.
TASK_GROUP_ROLES = (Role.AGENT, Role.APPROVER, Role.PROCESS_OWNER)
#: Whose group memberships give them the groups' queues (``queue_groups``): who works a group's
#: tasks. Not a plain requester (see the module's rules), not a read-only auditor.
QUEUE_ROLES = (*TASK_GROUP_ROLES, Role.ADMIN)
#: Who cancels the process of any record they see (admins too: they cancel anything).
CANCEL_ROLES = (Role.AGENT, Role.PROCESS_OWNER)
#: Roles that read process definitions: their XML, versions and running counts.
DEFINITION_READER_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN, Role.AUDITOR)
#: Who reads the variables a process marks internal (its record mapping's ``internal``): the staff who
#: read every record (``records.STAFF_ROLES``). Not requesters, not approvers.
INTERNAL_DATA_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN, Role.AUDITOR)
#: Record statuses before anyone works on the record: its requester may still withdraw it.
WITHDRAWABLE_STATUSES = frozenset({"new", "submitted", "awaiting_approval"})
#: Why ``may_delete_attachment`` refuses (the pages translate them).
ATTACHMENT_NOT_YOURS = "only who attached a file, the agents of the record's group and admins may delete it"
ATTACHMENT_RECORD_CLOSED = "the record is closed: only the agents of its group and admins may delete its files"


def is_admin(user: User) -> bool:
    return user.has_role(Role.ADMIN)


def may_read_definitions(user: User) -> bool:
    return user.has_role(*DEFINITION_READER_ROLES)


def reads_internal_data(user: User) -> bool:
    """The user reads a process's internal variables (``INTERNAL_DATA_ROLES``)."""
    return user.has_role(*INTERNAL_DATA_ROLES)


def is_read_only(user: User) -> bool:
    """An auditor with no other role: reads everything, writes nothing (no comment, no link)."""
    return user.has_role(Role.AUDITOR) and not user.has_role(*STARTER_ROLES)


def works_tasks(user: User | None) -> bool:
    """The user can do a task named for them: active, and not a read-only auditor. A task assigned
    to anyone else (a leaver, an auditor, nobody of that name) waits for an admin to hand it on;
    an approval for such a line manager goes to the budget owners instead."""
    return user is not None and user.active and not is_read_only(user)


def may_start(user: User, start_roles: Collection[str] | None = None) -> bool:
    """The user holds a starter role and, for a process that declares who starts it
    (``start_roles``, from its ``<process_id>.access.json``; None: it does not), one of those."""
    if not user.has_role(*STARTER_ROLES):
        return False
    return start_roles is None or user.has_role(*start_roles)


#: Who may start a process for somebody else (a caller's incident, a colleague's catalog order):
#: the service desk's agents, and admins.
FOR_OTHERS_ROLES = (Role.AGENT, Role.ADMIN)


def starts_for_others(user: User) -> bool:
    """The user may start a process on somebody else's behalf (``FOR_OTHERS_ROLES``)."""
    return user.has_role(*FOR_OTHERS_ROLES)


def sets_hidden_start_fields(user: User) -> bool:
    """A start form's hidden fields take the user's values (staff), not only their defaults."""
    return user.has_role(*DESK_STAFF_ROLES)


def queue_groups(user: User) -> set[str]:
    """The groups whose queues (candidate group, else lane) are the user's: all their groups for
    a holder of one of ``QUEUE_ROLES``, none for anyone else (see the module's rules)."""
    return set(user.group_names) if user.has_role(*QUEUE_ROLES) else set()


def watching_groups(user: User) -> set[str]:
    """The groups whose watches (``RecordService.watch``) show the user a record: those whose
    queues are theirs (``queue_groups``), while they are active. A member who only requests reads
    nothing through a group's watch (see the module's rules), nor does a leaver; the desk's staff
    and auditors read every record anyway."""
    return queue_groups(user) if user.active else set()


def is_candidate(user: User, task: HumanTask, instance: ProcessInstance) -> bool:
    """The task is in the user's queue. In order: the one assigned user (assignedUserVar), the
    candidate group (candidateGroupVar, over the lane), the lane's group (of ``queue_groups``
    both), else the starter."""
    if task.assigned_user:
        return task.assigned_user == user.username
    if task.candidate_group:
        return task.candidate_group in queue_groups(user)
    if task.lane:
        return task.lane in queue_groups(user)
    return instance.started_by_id == user.id


#: The roles whose comments answer a record (a first response, for its SLA): staff who work
#: records. Not an auditor's (read-only: commenting is refused them), not a plain requester's, and
#: not an approver's: a question from the CAB is no answer to the requester.
ANSWERING_ROLES = (Role.AGENT, Role.PROCESS_OWNER, Role.ADMIN)


def answers(user: User | None, ticket: Ticket) -> bool:
    """A comment by ``user`` answers ``ticket``: one by staff (``ANSWERING_ROLES``) who are not its
    requester. The requester's own comments, the process's and the platform's (``user`` None: a
    note copied onto linked records) are not."""
    return user is not None and user.id != ticket.requester_id and user.has_role(*ANSWERING_ROLES)


def excluded_text(usernames: set[str]) -> str | None:
    """``human_task.excluded_users`` as stored when the task becomes ready: ",alice,bob,"
    (None for nobody), so that one user is found with ``exclusion_mark`` (also with SQL LIKE)."""
    return "," + ",".join(sorted(usernames)) + "," if usernames else None


def exclusion_mark(username: str) -> str:
    """What ``excluded_text`` holds for ``username`` when it excludes them."""
    return f",{username},"


def excludes(task: HumanTask, username: str) -> bool:
    """The task, as it became ready, may not be done by ``username`` (its queue leaves them out;
    claiming and completing check the live data again: ``excluded_users``)."""
    return exclusion_mark(username) in (task.excluded_users or "")


def excluded_users(properties: dict[str, str], data: dict[str, object]) -> set[str]:
    """Usernames that may not complete a task (excludeUsersVars): separation of duties."""
    names: set[str] = set()
    for variable in (properties.get("excludeUsersVars") or "").split(","):
        value = data.get(variable.strip()) if variable.strip() else None
        if isinstance(value, str) and value:
            names.add(value)
        elif isinstance(value, list | tuple | set):
            names.update(str(v) for v in value if v)
    return names


def may_see_task(user: User, task: HumanTask, instance: ProcessInstance) -> bool:
    if is_admin(user) or user.has_role(Role.AUDITOR):
        return True
    if task.claimed_by_id == user.id or task.completed_by_id == user.id:
        return True
    return is_candidate(user, task, instance)


def may_work_task(user: User, task: HumanTask, instance: ProcessInstance) -> tuple[bool, str]:
    """May the user claim/complete it now? Returns (allowed, reason when not)."""
    if task.claimed_by_id is not None and task.claimed_by_id != user.id:
        return False, "the task is claimed by someone else"
    reason = outside_queue(user, task, instance, claimed=task.claimed_by_id == user.id)
    return reason is None, reason or ""


def may_claim(user: User, task: HumanTask) -> bool:
    """Whether claiming the task means something for the user (the pages offer "Claim" then): open
    and unclaimed in a queue shared by a group (its candidate group or lane), one the user may work
    on (:func:`may_work_task`: not an admin outside the queue, not an auditor), and one whose
    separation of duties does not leave them out. A task assigned to one person, or belonging to the
    starter alone, is theirs without a claim."""
    if task.state != TaskStatus.READY or task.claimed_by_id is not None or task.assigned_user:
        return False
    if not (task.candidate_group or task.lane):
        return False
    allowed, _reason = may_work_task(user, task, task.instance)
    return allowed and not excludes(task, user.username)


def outside_queue(user: User, task: HumanTask, instance: ProcessInstance, *, claimed: bool,
                  whose: str = "your") -> str | None:
    """Why the user may not work on the task (None: they may): not a candidate, and not an admin
    who holds the claim (``claimed``). The reason names the queue the task is in: its one assigned
    user, its candidate group, its lane, or its starter. A read-only auditor (``is_read_only``) works
    no task, not even one in their queue (a task assigned to them by name, one of a group they are
    in): what they approved would not be an approval."""
    if is_read_only(user):
        return "auditors read tasks but do not work on them"
    if is_candidate(user, task, instance) or (is_admin(user) and claimed):
        return None
    if user.has_role(Role.AUDITOR) and not is_admin(user):
        return "auditors read tasks but do not work on them"
    if task.assigned_user:
        return f"the task is assigned to {task.assigned_user} alone"
    if task.candidate_group:
        return f"the task is in the {task.candidate_group} group's queue, and that is not one of {whose} groups"
    if not task.lane:
        return "the task belongs to whoever started the process"
    return f"the task is not in one of {whose} groups' lanes"


def lane_groups(user: User) -> set[str]:
    """The groups whose lanes show the user every instance of a process (none for a user
    without a staff role)."""
    return set(user.group_names) if user.has_role(*LANE_STAFF_ROLES) else set()


def may_see_instance(user: User, instance: ProcessInstance) -> bool:
    """Without the participants (who hold or held one of its tasks): that takes a query, the
    instance service's."""
    if is_admin(user) or user.has_role(Role.AUDITOR):
        return True
    if instance.started_by_id == user.id:
        return True
    lanes = set(instance.definition.lanes or [])
    return bool(lanes & lane_groups(user))


def may_reassign(user: User, task: HumanTask) -> bool:
    """Admins hand any task on; an agent, a task of their own group's queue (its candidate group,
    else its lane) that waits for nobody by name: as a service desk's agents hand a ticket to a
    colleague, or take over one a colleague claimed and left (QA: only admins could, so a claim
    held by someone on leave stopped the work). Not a task under separation of duties (one that
    excludes anyone: an approval, a CAB vote): who decides is not for a colleague to pick (review:
    an agent in the change managers' group handed the approval of his own change to an approver
    he chose)."""
    if is_admin(user):
        return True
    group = task.candidate_group or task.lane
    return (bool(group) and not task.assigned_user and not (task.excluded_users or "").strip(",")
            and user.has_role(Role.AGENT) and group in user.group_names)


def may_cancel(user: User, instance: ProcessInstance, ticket: Ticket | None = None,
               open_tasks: Sequence[HumanTask] = ()) -> tuple[bool, str]:
    """May the user cancel the instance (whose record is ``ticket``, whose open tasks are
    ``open_tasks``)? Returns (allowed, reason when not); see the module's rules."""
    if is_admin(user):
        return True, ""
    if ticket is None:
        if instance.started_by_id == user.id:
            return True, ""
        return False, "only the starter or an admin may cancel this instance"
    if user.has_role(*CANCEL_ROLES):
        return True, ""
    if ticket.requester_id != user.id or is_read_only(user):
        return False, "only the service desk or the requester may cancel this record"
    started = ticket.status not in WITHDRAWABLE_STATUSES or any(
        task.claimed_by_id is not None and task.claimed_by_id != user.id for task in open_tasks)
    if started:
        return False, (f"work on {ticket.number} has started: only the service desk may cancel it now; "
                       "add a comment to ask them")
    return True, ""


def cancels_as_staff(user: User) -> bool:
    """Does the user stop records as the desk does (an admin or ``CANCEL_ROLES``), so that a reason
    is required of them (a requester withdrawing her own record gives one or not)?"""
    return is_admin(user) or user.has_role(*CANCEL_ROLES)


def may_send_message(user: User, instance: ProcessInstance) -> bool:
    return is_admin(user) or user.has_role(Role.AGENT) or instance.started_by_id == user.id


def may_delete_attachment(user: User, ticket: Ticket, attachment: TicketAttachment) -> tuple[bool, str]:
    """May the user delete ``attachment``, a file of ``ticket``? Returns (allowed, reason when not);
    see the module's rules."""
    if is_admin(user):
        return True, ""
    if is_read_only(user):
        return False, "auditors read records but do not change them"
    if user.has_role(Role.AGENT) and ticket.assignment_group and ticket.assignment_group in user.group_names:
        return True, ""
    if attachment.uploaded_by_id != user.id:
        return False, ATTACHMENT_NOT_YOURS
    if ticket.closed_at is not None:
        return False, ATTACHMENT_RECORD_CLOSED
    return True, ""
