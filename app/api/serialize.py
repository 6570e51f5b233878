"""Model -> response dict helpers shared by the API views (and later the web pages)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from app.models import AuditEvent, HumanTask, ProcessDefinition, ProcessInstance, User
from app.services import policy
from app.services.instances import TaskSla
from app.services.records import without_variables

from . import services


def task_dict(task: HumanTask, sla: TaskSla | None = None) -> dict[str, Any]:
    """A task as the API shows it (``TaskOut``), with its record's priority and SLA due instant:
    from ``sla`` when the caller has it (``TaskService.task_slas``), else from
    ``TaskService.record_sla`` (one query for all the tasks and instances of an answer)."""
    if sla is None:
        sla = services().tasks.record_sla(task.instance_id)
    return {
        "id": task.id,
        "instance_id": task.instance_id,
        "process_id": task.process_id,
        "bpmn_id": task.bpmn_id,
        "name": task.name,
        "lane": task.lane,
        "state": task.state,
        "claimed_by": task.claimed_by.username if task.claimed_by else None,
        "assigned_user": task.assigned_user,
        "delegated_from": task.delegated_from,
        "completed_by": task.completed_by.username if task.completed_by else None,
        "form": task.form,
        "created_at": task.created_at,
        "completed_at": task.completed_at,
        "priority": sla.priority,
        "sla_due_at": sla.due_at,
    }


def hidden_variables(user: User, instances: list[ProcessInstance]) -> dict[int, frozenset[str]]:
    """Per instance id, the data variables ``user`` may not read (``RecordService.hidden_variables``:
    the process's internal ones, for anyone but staff). Every answer that carries an instance's or a
    task's data, or an instance's history, leaves them out."""
    return services().records.hidden_variables(user, instances)


def error_for(user: User, error: dict[str, Any] | None) -> dict[str, Any] | None:
    """An instance's ``error`` as ``user`` may read it. Staff who read a process's internals
    (``policy.reads_internal_data``) get all of it; anyone else (the requester who started it, an
    approver) where it stopped and that the desk can see why: not the script's source line, its
    exception or its message, which may quote data hidden from them."""
    if error is None or policy.reads_internal_data(user):
        return error
    where = error.get("element_name") or error.get("element_id") or "a step"
    return {"element_id": error.get("element_id"), "element_name": error.get("element_name"),
            "message": f"the process stopped with an error at {where}; the desk's staff see why and can retry it"}


def instance_dict(instance: ProcessInstance, open_tasks: list[HumanTask],
                  hidden: Collection[str] = (), reader: User | None = None) -> dict[str, Any]:
    """An instance (``InstanceOut``); its open tasks carry its record's priority and SLA due instant.
    Its ``data`` without the variables in ``hidden`` (``hidden_variables``), its ``error`` as
    ``reader`` may read it (``error_for``; whole without a reader)."""
    sla = services().tasks.record_sla(instance.id) if open_tasks else TaskSla()
    return {
        "id": instance.id,
        "process_id": instance.process_id,
        "version": instance.version,
        "status": instance.status,
        "data": without_variables(instance.data, hidden) if hidden else instance.data,
        "open_tasks": [task_dict(t, sla) for t in open_tasks],
        "started_by": instance.started_by.username if instance.started_by else None,
        "created_at": instance.created_at,
        "updated_at": instance.updated_at,
        "error": error_for(reader, instance.error) if reader is not None else instance.error,
    }


def version_dict(row: ProcessDefinition, deployed_by: str | None, running: int = 0) -> dict[str, Any]:
    return {
        "version": row.version,
        "name": row.name,
        "deployed_at": row.deployed_at,
        "deployed_by": deployed_by,
        "content_hash": row.content_hash,
        "filename": row.filename,
        "lanes": row.lanes,
        "user_tasks": row.user_tasks,
        "files": row.files_used,
        "running_instances": running,
    }


def history_dict(event: AuditEvent, tasks: dict[int, HumanTask], hidden: Collection[str] = (),
                 reader: User | None = None) -> dict[str, Any]:
    """One history event; the data it carries (submitted, started or retried with) without the
    variables in ``hidden`` (``hidden_variables``); an error's details as ``reader`` may read them
    (``error_for``)."""
    task = tasks.get(event.task_id) if event.task_id else None
    payload = event.payload or {}
    if reader is not None and event.event_type == "instance_error":
        payload = error_for(reader, payload) or {}
    if hidden:
        # the data a step submitted or started with, and a message's payload (what the diagram
        # catches it into): either may hold the variables hidden from this reader
        for key in ("data", "payload"):
            if isinstance(payload.get(key), dict):
                payload = {**payload, key: without_variables(payload[key], hidden)}
    return {
        "seq": event.seq,
        "type": event.event_type,
        "actor": event.actor,
        "time": event.occurred_at,
        "task_id": event.task_id,
        "task": {"bpmn_id": task.bpmn_id, "name": task.name, "lane": task.lane} if task else None,
        "data": payload.get("data"),
        "payload": payload,
    }
