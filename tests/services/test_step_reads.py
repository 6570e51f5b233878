"""A step reads its instance's open task rows and its record together with the task it works
on (TaskService.get), and uses them once: what it writes is the same as with separate queries."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.models import AuditEvent, HumanTask, TaskStatus, Ticket
from tests.conftest import sent_statements

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RECORD_FILES = [(p.name, p.read_bytes()) for p in sorted((FIXTURES / "records").iterdir())]
WORK = {"symptoms": "bounces", "workaround": "webmail"}


@pytest.fixture()
def desk(services):
    for name, roles, groups in (("olga", ["process_owner"], []), ("rita", ["requester"], []),
                                ("alex", ["agent"], ["ServiceDesk"]), ("amy", ["approver"], ["Approvers"])):
        services.users.create_user(name, "password-1234", roles=roles, groups=groups)
    services.definitions.deploy(services.users.get_by_username("olga"), RECORD_FILES)
    services.session.commit()
    return services


def ready_task(desk, instance_id, bpmn_id):
    return desk.session.scalar(select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.bpmn_id == bpmn_id,
                                                       HumanTask.state == TaskStatus.READY))


def start(desk):
    instance = desk.instances.start_process(desk.users.get_by_username("rita"), "mini_ticket",
                                            {"title": "Mail is down", "work_group": "ServiceDesk"})
    desk.session.commit()
    return instance.id


def selects_during(desk, work):
    with sent_statements(desk.session.connection().engine) as sent:
        work()
    return [statement for statement in sent if statement.upper().startswith("SELECT")]


def test_a_completion_reads_the_open_rows_and_the_record_with_its_task(desk):
    instance_id = start(desk)
    task_id = ready_task(desk, instance_id, "work").id
    desk.session.expunge_all()  # as a new request: nothing in the session yet
    alex = desk.users.get_by_username("alex")
    seen = selects_during(desk, lambda: desk.tasks.complete(alex, task_id, WORK))
    task_reads = [s for s in seen if s.startswith("SELECT human_task.")]
    assert len(task_reads) == 1, task_reads  # the task, and with it the instance's open rows
    assert "JOIN ticket" in task_reads[0]
    # the record came with it, and is not read again (on PostgreSQL its details are merged into
    # the stored ones by the UPDATE itself: RecordService.details_patch)
    assert not any(s.startswith("SELECT ticket.") for s in seen), seen
    desk.session.commit()
    approve = ready_task(desk, instance_id, "approve")
    assert approve is not None
    assert desk.session.get(HumanTask, task_id).state == TaskStatus.COMPLETED
    assert desk.session.scalar(select(Ticket.assignee_id).where(Ticket.instance_id == instance_id)) == alex.id


def test_preloaded_rows_serve_one_save_only(desk):
    """Two steps in one transaction: the second must not reuse the first's (now stale) rows,
    or it would open the approval task a second time."""
    instance_id = start(desk)
    task_id = ready_task(desk, instance_id, "work").id
    desk.session.expunge_all()
    alex, amy = desk.users.get_by_username("alex"), desk.users.get_by_username("amy")
    desk.tasks.claim(alex, task_id)  # loads the task with its instance's open rows
    desk.tasks.complete(alex, task_id, WORK)  # the first save uses them
    approve = ready_task(desk, instance_id, "approve")
    desk.tasks.complete(amy, approve.id, {"approved": True})  # this save queries afresh
    desk.session.commit()
    rows = desk.session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)
                                .order_by(HumanTask.id)).all()
    assert [(r.bpmn_id, r.state) for r in rows] == [
        ("work", TaskStatus.COMPLETED), ("approve", TaskStatus.COMPLETED), ("confirm", TaskStatus.READY)]
    readies = desk.session.scalars(select(AuditEvent.payload).where(AuditEvent.instance_id == instance_id,
                                                                    AuditEvent.event_type == "task_ready")).all()
    assert [p["bpmn_id"] for p in readies] == ["work", "approve", "confirm"]


def test_the_open_rows_come_from_the_instance_and_state_index(desk):
    """However many task rows an instance has (10,000 rounds of a loop leave 10,000), the step's
    read finds its open ones through (instance_id, state), not by walking all of them."""
    from app.services.instances import _TASK_FOR_STEP

    connection = desk.session.connection()
    if connection.dialect.name != "sqlite":
        pytest.skip("the plan is read with SQLite's EXPLAIN QUERY PLAN; PostgreSQL plans by table statistics")
    compiled = _TASK_FOR_STEP.compile(connection)
    params = compiled.construct_params({"ident": 1})
    plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                      tuple(params[name] for name in compiled.positiontup)).all()
    open_rows = [row[3] for row in plan if "human_task_1" in row[3]]
    assert open_rows == ["SEARCH human_task_1 USING INDEX ix_human_task_instance_state (instance_id=? AND state=?) LEFT-JOIN"], plan
