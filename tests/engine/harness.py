"""What the engine-level process tests share: the platform's part around a run.

An engine on a frozen clock, a recorder for service-task operations that answers from canned
answers each test module gives it, a dump -> restore -> dump round trip after every step, and a
submission validated against the task's form (``setUserVar`` written) before the task completes.
Each test module keeps what is its own: its process, its people, its answers and its steps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from app.clock import FrozenClock
from app.engine import (
    CompiledProcess,
    ProcessEngine,
    ProcessLibrary,
    ScriptIdentity,
    SourceFile,
    UserTaskView,
    WorkflowRun,
    current_operation_call,
)
from app.services.content_texts import NOTICE_PARAMS
from app.services.forms import validate_submission
from app.services.instructions import render_text

ROOT = Path(__file__).resolve().parents[2]
#: Where every harness clock starts.
CLOCK_START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
#: The service-task operators of docs/PROCESSES.md.
PLATFORM_OPERATIONS = frozenset({
    "start_process", "link_records", "create_knowledge_article", "comment_linked_records", "notify",
    "get_group_members", "get_manager", "catalog_item", "get_linked_record",
})

#: A canned answer: the operation's parameters in, what the platform would return out.
Answer = Callable[[dict[str, Any]], Any]


# -- source files --------------------------------------------------------------------------------------


def source_files(*processes: str, forms: str) -> list[SourceFile]:
    """The named files under processes/, then every forms/<forms>-*.json, in that order."""
    paths = [ROOT / "processes" / name for name in processes]
    paths += sorted((ROOT / "forms").glob(f"{forms}-*.json"))
    return [SourceFile(p.name, p.read_bytes()) for p in paths]


def compile_process(files: list[SourceFile]) -> CompiledProcess:
    """Compile against the platform's operators; the files must hold exactly one process."""
    [process] = ProcessLibrary(known_operations=PLATFORM_OPERATIONS).compile(files)
    return process


@cache
def compiled(*processes: str, forms: str) -> CompiledProcess:
    """:func:`compile_process` of :func:`source_files`, once per test session."""
    return compile_process(source_files(*processes, forms=forms))


def form(name: str | None) -> dict[str, Any] | None:
    """A form file from forms/ as JSON, or None for no name."""
    if name is None:
        return None
    return json.loads((ROOT / "forms" / name).read_text(encoding="utf-8"))


# -- people ---------------------------------------------------------------------------------------------


#: The directory's groups as forms see them (``options_from_group:NAME``): members with display names.
DIRECTORY: dict[str, list[tuple[str, str]]] = {
    "Implementers": [("ivan", "Ivan"), ("isla", "Isla")],
}


def members(group: str) -> list[tuple[str, str]]:
    return DIRECTORY.get(group, [])


#: The groups forms offer as ``options_from_groups:with_agents`` (those with an active agent), with
#: descriptions; CAB (approvers only) and groups that do not exist are not among them.
AGENT_GROUPS: list[tuple[str, str | None]] = [
    ("ApplicationSupport", None), ("DesktopSupport", None), ("MessagingTeam", "E-mail and calendars"),
    ("NetworkTeam", None), ("ServiceDesk", None),
]


def offered_groups(which: str) -> list[tuple[str, str | None]]:
    return AGENT_GROUPS if which == "with_agents" else []


def user(name: str, groups: Iterable[str] = ()) -> dict[str, Any]:
    """A user as the platform hands it to scripts."""
    return {"id": sum(map(ord, name)), "username": name, "display_name": name.title(),
            "email": f"{name}@example.org", "groups": list(groups)}


def identity(username: str, initiator: str | None = None) -> ScriptIdentity:
    """``username`` acting in a process ``initiator`` started (by default, one they started)."""
    return ScriptIdentity(current_user=user(username), initiator=user(initiator or username))


# -- operations -----------------------------------------------------------------------------------------


class FakeOperations:
    """Records every service-task call and answers it from the canned ``answers``.

    An operation without an answer raises ``unexpected`` (the platform's ``OperationFailed`` puts
    the instance in error; the default ``AssertionError`` fails the test).
    """

    def __init__(self, answers: Mapping[str, Answer], unexpected: type[Exception] = AssertionError) -> None:
        self.answers = answers
        self.unexpected = unexpected
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, params: dict[str, Any]) -> Any:
        assert name in PLATFORM_OPERATIONS, name
        self.calls.append((name, self._as_written(name, params)))
        answer = self.answers.get(name)
        if answer is None:
            raise self.unexpected(f"unexpected operation {name}")
        return answer(params)

    @staticmethod
    def _as_written(name: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with a notice's templates (a subject or body the diagram wrote as one string
        literal) filled in from the step's data, as the platform writes them in English."""
        call = current_operation_call()
        if call is None:
            return params
        return {**params, **{key: render_text(text, call.data) for key, text in call.literals.items()
                             if key in NOTICE_PARAMS.get(name, ())}}

    def named(self, name: str) -> list[dict[str, Any]]:
        """The parameters of every call to ``name``, in order."""
        return [params for called, params in self.calls if called == name]

    def names(self) -> list[str]:
        """The operations called, in order."""
        return [called for called, _ in self.calls]


# -- runs -----------------------------------------------------------------------------------------------


def max_depth(run: WorkflowRun) -> int:
    """How deep the engine's task tree is: what must stay flat however often a loop goes round."""
    return max(t.depth for t in run._wf.get_tasks())


def synced_record(mapping: Mapping[str, Any], run: WorkflowRun) -> dict[str, Any]:
    """The record as the platform syncs it: the mapping file applied to the instance's data."""
    data = run.data
    fields = {field: data.get(var) for field, var in mapping["fields"].items()}
    details = {field: data.get(var) for field, var in mapping["details"].items()}
    return {**fields, "details": details}


class EngineHarness:
    """An engine on a frozen clock whose runs must survive dump -> restore -> dump after every step."""

    def __init__(self, ops: FakeOperations | None = None, script_time_limit: float = 2.0) -> None:
        self.clock = FrozenClock(CLOCK_START)
        self.engine = ProcessEngine(script_time_limit=script_time_limit, now=self.clock.now)
        self.ops = ops

    def roundtrip(self, run: WorkflowRun) -> WorkflowRun:
        first = run.dump()
        restored = self.engine.restore(run.bundle, first, run.serializer_version, operations=self.ops)
        restored.failure = run.failure
        assert json.loads(restored.dump()) == json.loads(first)
        assert restored.status == run.status
        assert [t.id for t in restored.user_tasks()] == [t.id for t in run.user_tasks()]
        return restored


class ProcessHarness(EngineHarness):
    """One deployed process driven the way the platform drives it."""

    #: The process never has two tasks ready at once: :meth:`task` checks that too.
    one_at_a_time = False

    def __init__(self, process: CompiledProcess, ops: FakeOperations, script_time_limit: float = 2.0) -> None:
        super().__init__(ops, script_time_limit)
        self.process = process
        self.bundle = self.engine.spec(process.content_hash, process.spec_json)

    def launch(self, data: Mapping[str, Any], starter: ScriptIdentity) -> WorkflowRun:
        return self.roundtrip(self.engine.start(self.bundle, data, starter, operations=self.ops))

    def tasks(self, run: WorkflowRun, bpmn_id: str) -> list[UserTaskView]:
        return [t for t in run.user_tasks() if t.bpmn_id == bpmn_id]

    def task(self, run: WorkflowRun, bpmn_id: str, for_user: str | None = None) -> UserTaskView:
        """The one ready ``bpmn_id`` task; where there are several, the one assigned to ``for_user``."""
        if self.one_at_a_time:
            [task] = run.user_tasks()
            assert task.bpmn_id == bpmn_id, f"expected {bpmn_id}, ready: {task.bpmn_id}"
            return task
        found = self.tasks(run, bpmn_id)
        if for_user is not None and len(found) > 1:
            found = [t for t in found if t.data.get(t.properties.get("assignedUserVar", "")) == for_user]
        assert len(found) == 1, f"expected one ready {bpmn_id}, have {[t.bpmn_id for t in run.user_tasks()]}"
        return found[0]

    def task_forms(self, task: UserTaskView) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The task's form and UI form as deployed with the process."""
        assert task.form is not None, f"{task.bpmn_id} has no form"
        return self.process.forms[task.form], self.process.forms[task.ui_form] if task.ui_form else None

    def submit(self, run: WorkflowRun, task: UserTaskView, data: dict[str, Any], actor: ScriptIdentity) -> WorkflowRun:
        """Submit like the platform: validate against the task's form, write ``setUserVar``, complete."""
        assert actor.current_user is not None
        schema, ui = self.task_forms(task)
        clean = validate_submission(schema, ui, data, task.data, members=members, groups=offered_groups)
        set_user_var = task.properties.get("setUserVar")
        if set_user_var:
            clean[set_user_var] = actor.current_user["username"]
        run.complete_task(task.id, clean, actor)
        assert run.failure is None, run.failure
        return self.roundtrip(run)

    def record(self, run: WorkflowRun) -> dict[str, Any]:
        """The record as the platform syncs it after this step."""
        mapping = self.process.record_mapping
        assert mapping is not None
        return synced_record(mapping, run)
