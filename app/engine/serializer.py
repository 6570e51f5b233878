"""Serialization of specs and instance state.

A deployed version stores its parsed spec once (``SPEC_SERIALIZER``); an instance stores only its
state (``STATE_SERIALIZER``): the task tree, data and events, without the spec copy SpiffWorkflow
would otherwise repeat in every instance (13 KB of a 21 KB incident, spiffworkflow.md §2).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_SERIALIZER_VERSION
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from .errors import StateVersionError
from .iterations import MergedIterations
from .workflow import Workflow

#: Serializer versions whose state this build can load. SpiffWorkflow silently ignores versions
#: it does not know, so we check ourselves before handing a state over.
SUPPORTED_STATE_VERSIONS = frozenset({SPIFF_SERIALIZER_VERSION})
STATE_VERSION = SPIFF_SERIALIZER_VERSION


class _StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Writes the workflow without its spec; reads it back given the spec objects."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(  # type: ignore[override]
        self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None, script_engine: Any = None
    ) -> BpmnWorkflow:
        workflow = Workflow(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _register_data_types(registry: Any) -> None:
    # Scripts may leave these in task data; without them the instance becomes unsaveable (§2).
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    # A loop's merged iterations once compaction removed some (app/engine/iterations.py).
    registry.register(MergedIterations, MergedIterations.to_dict, MergedIterations.from_dict)


def _make(state_only: bool) -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    if state_only:
        config[BpmnWorkflow] = _StateOnlyWorkflowConverter
        config[Workflow] = _StateOnlyWorkflowConverter
    registry = BpmnWorkflowSerializer.configure(config)
    _register_data_types(registry)
    return BpmnWorkflowSerializer(registry)


SPEC_SERIALIZER = _make(state_only=False)
STATE_SERIALIZER = _make(state_only=True)


def dump_state(workflow: BpmnWorkflow) -> str:
    """The instance state as compact JSON, without the spec.

    ``json.dumps`` recurses (in C) and refuses integers of more than 4,300 digits; what a run
    holds is kept within both by ``WorkflowRun.refuse_unstorable_data`` (app/engine/storable.py:
    at most ``MAX_DATA_DEPTH`` levels, no oversized integers), so this does not fail after a step.
    """
    registry = STATE_SERIALIZER.registry
    registry._encoder_mode = True
    try:
        dct = STATE_SERIALIZER.to_dict(workflow)
        return json.dumps(dct, cls=STATE_SERIALIZER._encoder_cls, separators=(",", ":"))
    finally:
        registry._encoder_mode = False


def load_state(
    state: str, version: str, spec: Any, subprocess_specs: Any, script_engine: Any
) -> BpmnWorkflow:
    """Rebuild a workflow from its state; raise StateVersionError for an unknown serializer version."""
    if version not in SUPPORTED_STATE_VERSIONS:
        raise StateVersionError(
            f"instance state was written by serializer version {version!r}; "
            f"this build reads {sorted(SUPPORTED_STATE_VERSIONS)}"
        )
    dct = json.loads(state)
    return STATE_SERIALIZER.from_dict(
        dct, spec=spec, subprocess_specs=subprocess_specs, script_engine=script_engine
    )


def load_specs(spec_json: str) -> tuple[Any, dict[str, Any]]:
    """Restore (spec, subprocess_specs) from what ProcessLibrary stored."""
    payload = json.loads(spec_json)
    spec = SPEC_SERIALIZER.from_dict(payload["spec"])
    subs = {name: SPEC_SERIALIZER.from_dict(d) for name, d in payload["subprocess_specs"].items()}
    return spec, subs
