"""The task lists' "due" and "priority" orders, read from the records' stored ``sla_due_at`` and
``priority_rank``, are the orders the lists had when they worked out each task's due instant from
its record's clocks: page by page, for short lists (sorted whole) and long ones (read through the
records' indexes, ``TaskService._sorted_tasks``; forced here with ``SORT_WHOLE_MAX = 0``), with
ties, several tasks per record, records without a clock or without a priority, and tasks without
a record. A change's risk takes its place among the priorities (high with P2, medium with P3, low
with P4).

The rows are written directly (a few hundred tasks through the processes would take minutes):
each record's stored instants are set from its clock rows by the definition the old lists used.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import case, func, insert, nulls_last, select, update

from app.models import Deployment, HumanTask, ProcessDefinition, ProcessInstance, SlaClock, TaskStatus, Ticket
from app.services import instances as instances_module
from app.services.instances import TASK_SORTS
from tests.conftest import sent_statements

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
#: The old lists' order, as TaskService.list_tasks computed it before the records kept it.
OLD_DUE = select(func.min(SlaClock.due_at)).where(SlaClock.ticket_id == Ticket.id).correlate(Ticket).scalar_subquery()
OLD_WARNING = (select(func.min(SlaClock.warning_at)).where(SlaClock.ticket_id == Ticket.id, SlaClock.due_at.is_not(None))
               .correlate(Ticket).scalar_subquery())
OLD_RANK = case(*((Ticket.priority == name, rank) for rank, name in enumerate(("P1", "P2", "P3", "P4"))),
                (Ticket.priority.is_not(None), 4), else_=5)
OLD_ORDER = {"due": (nulls_last(OLD_DUE.asc()), HumanTask.id),
             "priority": (OLD_RANK, nulls_last(OLD_DUE.asc()), HumanTask.id),
             "age": (HumanTask.id,)}


class Rows:
    """Instances, records, clocks and tasks written straight into the tables."""

    def __init__(self, services: Any, users: dict[str, Any]) -> None:
        self.session = services.session
        self.users = users
        deployment = self.session.scalar(insert(Deployment).values(deployed_at=NOW, files=[], versions_created=[])
                                         .returning(Deployment.id))
        self.definition = self.session.scalar(insert(ProcessDefinition).values(
            process_id="work", version=1, name="Work", content_hash="x", filename="work.bpmn", bpmn_xml="", spec_json="",
            forms={}, user_tasks=[], lanes=["ServiceDesk", "Other"], files_used=[], record_mapping=None,
            deployment_id=deployment, deployed_at=NOW).returning(ProcessDefinition.id))
        self.count = 0

    def instance(self, priority: str | None = None, dues: tuple[datetime | None, ...] = (), *, record: bool = True,
                 tasks: int = 1, lane: str = "ServiceDesk", claimed_by: str | None = None) -> list[int]:
        """An instance with ``tasks`` ready tasks (and one completed), its record with ``priority``
        (through the model, as every write of it goes) and a clock per due instant of ``dues``."""
        self.count += 1
        instance_id = self.session.scalar(insert(ProcessInstance).values(
            definition_id=self.definition, process_id="work", version=1, status="running", state="{}",
            serializer_version="1", data={}, created_at=NOW, updated_at=NOW).returning(ProcessInstance.id))
        if record:
            ticket = Ticket(kind="incident", number=f"INC-{self.count:06d}", title="t", details={}, opened_at=NOW,
                            updated_at=NOW, instance_id=instance_id, priority=priority)
            self.session.add(ticket)
            self.session.flush()
            for index, due in enumerate(dues):
                self.session.execute(insert(SlaClock).values(
                    ticket_id=ticket.id, name=f"clock{index}", target_seconds=3600, state="running" if due else "paused",
                    due_at=due, warning_at=due - timedelta(minutes=45) if due else None, evaluated_at=NOW))
        claimant = self.users[claimed_by].id if claimed_by else None
        ids = []
        for number in range(tasks + 1):
            done = number == tasks
            ids.append(self.session.scalar(insert(HumanTask).values(
                instance_id=instance_id, engine_task_id=f"{instance_id}-{number}", bpmn_id="work", name="Work",
                lane=lane, process_id="work", state=TaskStatus.COMPLETED if done else TaskStatus.READY,
                claimed_by_id=claimant, created_at=NOW).returning(HumanTask.id)))
        return ids[:-1]

    def stamp(self) -> None:
        """Each record's stored instants as the old lists computed them from its clocks."""
        self.session.execute(update(Ticket).values(sla_due_at=OLD_DUE, sla_warning_at=OLD_WARNING))
        self.session.commit()


@pytest.fixture()
def rows(services, users) -> Rows:
    return Rows(services, users)


def build_desk(rows: Rows, seed: int, priorities: tuple[str | None, ...] = ("P1", "P2", "P3", "P4", "urgent", None)) -> None:
    """A few dozen instances of every shape, due instants drawn from a few, so records tie."""
    pick = random.Random(seed)
    instants = [NOW + timedelta(minutes=30 * step) for step in range(-3, 6)]
    for _ in range(60):
        clocks = tuple(pick.choice([*instants, None]) for _ in range(pick.choice([0, 1, 1, 2, 2])))
        rows.instance(pick.choice(priorities), clocks, record=pick.random() > 0.15, tasks=pick.choice([1, 1, 1, 2, 3]),
                      lane=pick.choice(["ServiceDesk", "ServiceDesk", "Other"]),
                      claimed_by=pick.choice([None, None, None, "alex", "amy"]))
    rows.stamp()


def old_order(services: Any, ids: list[int], sort: str) -> list[int]:
    return list(services.session.scalars(select(HumanTask.id).outerjoin(Ticket, Ticket.instance_id == HumanTask.instance_id)
                                         .where(HumanTask.id.in_(ids)).order_by(*OLD_ORDER[sort])))


def paged(services: Any, user: Any, sort: str, per_page: int, *, mine: bool = False) -> list[int]:
    """Every page of the list, one after the other."""
    ids: list[int] = []
    page = 1
    while True:
        found, total = services.tasks.list_tasks(user, mine=mine, process_id=None, page=page, per_page=per_page, sort=sort)
        ids += [task.id for task in found]
        if len(found) < per_page:
            assert len(ids) == total
            return ids
        page += 1


@pytest.mark.parametrize("whole", [True, False], ids=["sorted whole", "through the index"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_orders_are_those_the_clocks_gave(rows: Rows, services, users, monkeypatch, seed, whole):
    build_desk(rows, seed)
    if not whole:
        monkeypatch.setattr(instances_module, "SORT_WHOLE_MAX", 0)
    # rick works the Other group's queue: a group's queue is its staff's (policy.QUEUE_ROLES)
    services.users.update_user(None, "rick", {"roles": ["requester", "agent"]})
    for who, mine in (("alex", False), ("alex", True), ("amy", True), ("rick", False)):
        user = users[who]
        listed = paged(services, user, "age", 500, mine=mine)
        assert listed, (who, mine)
        for sort in TASK_SORTS:
            expected = old_order(services, listed, sort)
            for per_page in (1, 4, 25):
                assert paged(services, user, sort, per_page, mine=mine) == expected, (who, mine, sort, per_page)


@pytest.mark.parametrize("whole", [True, False], ids=["sorted whole", "through the index"])
def test_a_changes_risk_ranks_among_the_priorities(rows: Rows, services, users, monkeypatch, whole):
    if not whole:
        monkeypatch.setattr(instances_module, "SORT_WHOLE_MAX", 0)
    soon, later = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    task = {name: rows.instance(priority, dues)[0] for name, priority, dues in (
        ("low", "low", ()), ("P4", "P4", (soon,)), ("none", None, ()), ("high", "high", ()), ("P2 later", "P2", (later,)),
        ("urgent", "urgent", (soon,)), ("medium", "medium", ()), ("P1", "P1", (later,)), ("P3", "P3", (soon,)),
        ("P2 soon", "P2", (soon,)))}
    task["no record"] = rows.instance(record=False)[0]
    rows.stamp()
    names = {task_id: name for name, task_id in task.items()}
    order = [names[task_id] for task_id in paged(services, users["alex"], "priority", 3)]
    # within a rank the records with a due instant first, soonest first; then the others, oldest first
    assert order == ["P1", "P2 soon", "P2 later", "high", "P3", "medium", "P4", "low", "urgent", "none", "no record"]
    by_due = [names[task_id] for task_id in paged(services, users["alex"], "due", 3)]
    assert by_due == ["P4", "urgent", "P3", "P2 soon", "P2 later", "P1", "low", "none", "high", "medium", "no record"]


def test_a_long_list_walks_the_records_index_and_reads_no_clock(rows: Rows, services, users, monkeypatch, connection):
    if connection.dialect.name != "sqlite":
        pytest.skip("the plan is SQLite's; PostgreSQL's depends on its statistics (checked by hand on 100,000 records)")
    build_desk(rows, 4)
    monkeypatch.setattr(instances_module, "SORT_WHOLE_MAX", 0)
    for sort, index in (("due", "ix_ticket_sla_due"), ("priority", "ix_ticket_rank_sla_due")):
        with sent_statements(connection) as sent:
            services.tasks.list_tasks(users["alex"], mine=False, process_id=None, page=1, per_page=2, sort=sort)
        assert not [statement for statement in sent if "sla_clock" in statement]
        [walk] = [statement for statement in sent if statement.startswith("SELECT human_task_1.id")]
        parameters = [None] * walk.count("?")  # the plan does not depend on the values
        plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {walk}", tuple(parameters))]
        # the records in list order from their index, then their tasks by instance: no scan of the
        # tasks, and no sort but of the ties' right part (the task id)
        assert plan[0].startswith(("SEARCH ticket", "SCAN ticket")) and index in plan[0], plan
        assert not [step for step in plan if step.startswith("SCAN human_task")], plan
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
