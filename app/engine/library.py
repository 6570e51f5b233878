"""ProcessLibrary: turn a set of uploaded BPMN, DMN and form files into deployable process specs.

Everything a process owner can get wrong is found here, before anything is stored: malformed or
hostile XML, XSD violations, unknown elements, dangling references, missing DMN or form files,
JSON files that do not parse (also those no task uses yet), scripts and expressions that break the
script rules, timer literals that are not ISO 8601 or wait more than 10 years (timer_bounds.py),
ids and names longer than the columns they are stored in. Each problem becomes a DefinitionError
naming the file, the element id and the line: the file the element is in, never another file
that happens to use the same id.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from . import timer_bounds
from .errors import DefinitionError
from .operation_call import literal_text
from .sandbox import ScriptRuleViolation, check_source
from .serializer import SPEC_SERIALIZER
from .xml import PROCESS_TAG, canonical_xml, parse_xml

FORM_SCHEMA_PROPERTY = "formJsonSchemaFilename"
#: ``<process_id>.record.json`` declares how a process's data maps onto its ticket record.
RECORD_SUFFIX = ".record.json"
#: ``<process_id>.access.json`` declares who may start a process (read by the services at start
#: time, not compiled into a version: changing who may start needs no new version).
ACCESS_SUFFIX = ".access.json"
#: ``<scope>.<locale>.i18n.json`` translates a process's (or the catalog's) texts for readers of
#: another language (app/services/content_texts.py; read at render time, never compiled: a
#: translation makes no new version).
TRANSLATION_SUFFIX = ".i18n.json"
FORM_UI_PROPERTY = "formUiSchemaFilename"

#: How deeply a definition's JSON file (a form, UI schema, record mapping, access or start file)
#: may nest lists and objects. The API takes request bodies 64 levels deep (app.api's
#: MAX_JSON_DEPTH); a form schema spends two levels per nested field ("properties", the field), so
#: twice that is room for any form the API can fill in. Much deeper files would reach recursive code
#: (the parser itself, the form checks, copying and storing a version) as a RecursionError, a 500.
MAX_JSON_FILE_DEPTH = 128


class JsonFileError(ValueError):
    """A definition's JSON file that cannot be taken: ``reason`` says why, ``line`` where (if known),
    ``key`` the key written twice (``load_json_file(unique_keys=True)``), ``at`` the dotted path
    of text no database stores."""

    def __init__(self, reason: str, line: int | None = None, key: str | None = None, at: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.line, self.key, self.at = reason, line, key, at


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def json_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests lists and objects, counted up to ``limit + 1`` (iterative: any
    depth is measured without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= limit:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


#: Text no database stores: NUL (PostgreSQL's text and jsonb refuse it) and a lone UTF-16 surrogate
#: (no UTF-8 spelling). JSON spells them only escaped (``\\u0000``, ``\\ud800``).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable_at(value: Any) -> tuple[str, str] | None:
    """(where, what) of the first key or string in ``value`` holding ``_UNSTORABLE`` text, or
    number beyond a 64-bit float (``1e309`` reads as infinity, written back as ``Infinity``: no
    JSON); where is a dotted path ("title", "properties.notes.enum[2]"), or None."""
    text = "a NUL character or an unpaired surrogate (\\u0000, \\ud800-\\udfff)"
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return where or "(the top level)", f"holds {text}"
        elif isinstance(item, float):
            if math.isinf(item):
                return where or "(the top level)", "is a number beyond the range of a 64-bit float"
        elif isinstance(item, dict):
            for key, child in item.items():
                inner = f"{where}.{key}" if where else str(key)
                if _UNSTORABLE.search(key):
                    return (f"a key in {where}" if where else "a key"), f"holds {text}"
                stack.append((child, inner))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def load_json_file(content: bytes, *, unique_keys: bool = False) -> Any:
    """The JSON a definition file holds (any JSON value: the caller checks its shape).

    Raises JsonFileError when it is not UTF-8, not JSON (with the line), nests lists and objects
    more than ``MAX_JSON_FILE_DEPTH`` levels deep, (``unique_keys``) writes a key twice in one
    object, where ``json`` would silently keep the last one, escapes a NUL or a lone surrogate into
    a string or has a number beyond a float (QA: a form file with ``"\\u0000"`` in a title, or
    ``-1e309`` among its examples, was a 500 on PostgreSQL, whose jsonb refuses them)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonFileError("not UTF-8") from None
    deep = f"lists or objects nested more than {MAX_JSON_FILE_DEPTH} levels deep"
    try:
        value = json.loads(text, object_pairs_hook=_unique_pairs if unique_keys else None)
    except _DuplicateKey as err:
        raise JsonFileError(f"the key {err.key!r} appears twice in one object", key=err.key) from None
    except json.JSONDecodeError as err:
        raise JsonFileError(f"not valid JSON: {err.msg}", line=err.lineno) from None
    except RecursionError:
        raise JsonFileError(deep) from None
    if json_depth(value, MAX_JSON_FILE_DEPTH) > MAX_JSON_FILE_DEPTH:
        raise JsonFileError(deep)
    if (found := _unstorable_at(value)) is not None:
        raise JsonFileError(f"{found[0]} {found[1]}", at=found[0])
    return value


_EXEC_KEYS = ("script", "prescript", "postscript")
_TIMER_TYPES = {
    "DurationTimerEventDefinition": "duration",
    "TimeDateEventDefinition": "date",
    "CycleTimerEventDefinition": "cycle",
}
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Widths of the columns these land in (app/models: process_definition.process_id and
#: human_task.bpmn_id/lane are 128, the names 255; POST /instances takes process ids up to 128).
MAX_PROCESS_ID_LENGTH = 128
MAX_ELEMENT_ID_LENGTH = 128
MAX_LANE_LENGTH = 128
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class SourceFile:
    """One uploaded file: its base name and raw bytes."""

    name: str
    content: bytes

    @property
    def kind(self) -> str:
        lower = self.name.lower()
        if lower.endswith(RECORD_SUFFIX):
            return "record"
        if lower.endswith(ACCESS_SUFFIX):
            return "access"
        if lower.endswith(TRANSLATION_SUFFIX):
            return "translation"
        if lower.endswith(".bpmn"):
            return "bpmn"
        if lower.endswith(".dmn"):
            return "dmn"
        if lower.endswith(".json"):
            return "form"
        return "other"


@dataclass(frozen=True)
class UserTaskDef:
    bpmn_id: str
    name: str | None
    lane: str | None
    form: str | None
    ui_form: str | None
    #: the task's ``approval`` property as written (None: absent); see APPROVAL_VALUES
    approval: str | None = None


class LiteralParam(NamedTuple):
    """A service-task parameter the diagram writes as one string literal (``OperationCall.literals``
    at run time)."""

    operator: str
    parameter: str
    text: str
    element_id: str


@dataclass(frozen=True)
class CompiledProcess:
    """A process ready to store as a definition version."""

    process_id: str
    name: str
    filename: str
    bpmn_xml: str
    spec_json: str
    forms: dict[str, Any]
    user_tasks: tuple[UserTaskDef, ...]
    lanes: tuple[str, ...]
    called_processes: tuple[str, ...]
    files_used: tuple[str, ...]
    content_hash: str = field(default="")
    record_mapping: dict[str, Any] | None = None
    #: the hash of versions deployed before content_hash covered canonical XML (the files' bytes)
    legacy_hash: str = field(default="")
    #: the names the diagram draws (its shapes' and labelled flows', called processes' too): what a
    #: translation of the process may translate besides its forms
    element_names: tuple[str, ...] = ()
    #: the instructions (``instructionsForEndUser`` templates) and documentation of its user tasks,
    #: called processes' too: what a translation may also translate, for the task page
    task_texts: tuple[str, ...] = ()
    #: each service-task parameter written as one string literal (called processes' too): the
    #: texts an operation may show people as the diagram wrote them (a ``notify`` subject), which a
    #: translation may then translate
    literal_params: tuple[LiteralParam, ...] = ()

    def same_content(self, stored_hash: str | None) -> bool:
        """Whether a version stored with ``stored_hash`` has this content."""
        return stored_hash is not None and stored_hash in (self.content_hash, self.legacy_hash)


#: What a user task's ``approval`` property may say (any case): the first three mean an approval.
APPROVAL_YES = frozenset({"true", "yes", "1"})
APPROVAL_VALUES = APPROVAL_YES | {"false", "no", "0"}

_BPMN_MODEL = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
#: Elements that hold flow nodes and the sequence flows between them.
_FLOW_SCOPES = tuple(_BPMN_MODEL + tag for tag in ("process", "subProcess", "transaction", "adHocSubProcess"))


def _check_flows(root: etree._Element, filename: str) -> None:
    """Every sequence flow joins two elements of its own process or subprocess.

    SpiffWorkflow reports a flow to an id that is not there as if two tasks shared an id (naming
    another element); this names the flow, the end that is missing and its line."""
    for scope in root.iter(*_FLOW_SCOPES):
        ids = {child.get("id") for child in scope
               if isinstance(child.tag, str) and child.get("id") and child.tag != _BPMN_MODEL + "sequenceFlow"}
        for flow in scope.iterchildren(_BPMN_MODEL + "sequenceFlow"):
            for end in ("sourceRef", "targetRef"):
                ref = flow.get(end)
                if ref is None or ref not in ids:
                    where = scope.get("id") or scope.tag.rsplit("}", 1)[-1]
                    said = f"names '{ref}', which is no element of {where}" if ref else "has none"
                    raise DefinitionError(f"sequence flow '{flow.get('id')}': its {end} {said}", file=filename,
                                          element_id=flow.get("id"), line=flow.sourceline, error_type="dangling_flow",
                                          parts={"flow": flow.get("id"), "end": end, "ref": ref, "scope": where})


#: The flow nodes a sequence flow can join (activities, events, gateways), by their local name.
_ACTIVITIES = frozenset({"task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask",
                         "sendTask", "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess"})
_FLOW_NODES = _ACTIVITIES | frozenset({
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"})


def _local(element: etree._Element) -> str:
    return str(element.tag).rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _link_name(event: etree._Element) -> str | None:
    link = event.find(_BPMN_MODEL + "linkEventDefinition")
    return None if link is None else (link.get("name") or event.get("name") or "")


def _check_connected(root: etree._Element, filename: str) -> None:
    """Every step of a process or subprocess can be reached from its start, and every path ends.

    A diagram whose flows were deleted in the modeler deploys as valid BPMN: SpiffWorkflow runs the
    start event, finds nowhere to go and completes the instance at once, and the record it opened
    waits for a step that never comes. So, in each process and (not event-) subprocess:

    * each flow node is reached along sequence flows from a start event (or from a boundary event
      of a reached activity, or a link catch event whose link throw is reached); event
      subprocesses and an ad-hoc subprocess's inner steps are entered otherwise and need no
      incoming flow;
    * each flow node but an end event, a link throw event and an event subprocess has an outgoing
      flow: BPMN lets a path end at any activity ("implicit end"), but a step left without one in
      an editor is almost always a flow deleted by mistake.

    The first problem found is refused (an unreachable element before a dead end: a deleted flow
    leaves both, and its target is the one to name), naming the element and its line."""
    for scope in root.iter(_BPMN_MODEL + "process", _BPMN_MODEL + "subProcess", _BPMN_MODEL + "transaction"):
        nodes = {child.get("id"): child for child in scope
                 if _local(child) in _FLOW_NODES and child.get("id")}
        outgoing: dict[str, list[str]] = {node_id: [] for node_id in nodes}
        for flow in scope.iterchildren(_BPMN_MODEL + "sequenceFlow"):
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if source in outgoing and target in nodes:
                outgoing[source].append(target)

        def exempt(node: etree._Element) -> bool:
            """An event subprocess: entered by its own start event, left by its end."""
            return _local(node) == "subProcess" and node.get("triggeredByEvent") == "true"

        boundaries: dict[str, list[str]] = {}
        for node_id, node in nodes.items():
            if _local(node) == "boundaryEvent" and node.get("attachedToRef"):
                boundaries.setdefault(node.get("attachedToRef") or "", []).append(node_id)
        catches: dict[str, list[str]] = {}
        for node_id, node in nodes.items():
            if _local(node) == "intermediateCatchEvent" and (name := _link_name(node)) is not None:
                catches.setdefault(name, []).append(node_id)
        reached: set[str] = set()
        waiting = [node_id for node_id, node in nodes.items() if _local(node) == "startEvent"]
        while waiting:
            node_id = waiting.pop()
            if node_id in reached:
                continue
            reached.add(node_id)
            node = nodes[node_id]
            waiting.extend(outgoing[node_id])
            waiting.extend(boundaries.get(node_id, ()))
            if _local(node) == "intermediateThrowEvent" and (name := _link_name(node)) is not None:
                waiting.extend(catches.get(name, ()))
        if not any(_local(node) == "startEvent" for node in nodes.values()):
            continue  # SpiffWorkflow refuses a process without a start event in its own words
        def label(node_id: str, node: etree._Element) -> str:
            return f"{_local(node)} '{node.get('name')}' ({node_id})" if node.get("name") else f"{_local(node)} '{node_id}'"

        for node_id, node in nodes.items():  # first what cannot be reached: the deleted flow's target
            if node_id not in reached and not exempt(node):
                raise DefinitionError(
                    f"{label(node_id, node)} cannot be reached from the start event: no sequence flow leads to it",
                    file=filename, element_id=node_id, element_name=node.get("name"), line=node.sourceline,
                    error_type="unreachable")
        for node_id, node in nodes.items():
            if exempt(node):
                continue
            ends_here = _local(node) == "endEvent" or (
                _local(node) == "intermediateThrowEvent" and _link_name(node) is not None)
            if not ends_here and not outgoing[node_id]:
                raise DefinitionError(
                    f"{label(node_id, node)} has no outgoing sequence flow: connect it to the next step or to "
                    f"an end event", file=filename, element_id=node_id, element_name=node.get("name"),
                    line=node.sourceline, error_type="dead_end")


_BPMN_DI = "{http://www.omg.org/spec/BPMN/20100524/DI}"


def _drawn_names(root: etree._Element) -> set[str]:
    """The names of the elements a BPMN file draws: those a shape or an edge of its diagram
    stands for (tasks, events, gateways, lanes, pools, labelled flows), not messages or errors."""
    drawn = {shape.get("bpmnElement") for shape in root.iter(_BPMN_DI + "BPMNShape", _BPMN_DI + "BPMNEdge")}
    return {str(element.get("name")) for element in root.iter()
            if element.get("id") in drawn and (element.get("name") or "").strip()}


_CALL_ACTIVITY = _BPMN_MODEL + "callActivity"
_SEQUENCE_FLOW = _BPMN_MODEL + "sequenceFlow"
_CONDITION = _BPMN_MODEL + "conditionExpression"
#: SpiffWorkflow's words for a called element it has no process for (BpmnParser.get_spec).
_NOT_FOUND = re.compile(r"The process '(?P<id>.*)' was not found\.", re.DOTALL)


def _missing_called_process(exc: ValidationException, roots: dict[str, etree._Element], index: _LineIndex,
                            filename: str) -> DefinitionError | None:
    """The deploy error for a call activity whose ``calledElement`` names no process, naming the
    call activity, its file and line; None when ``exc`` is about something else.

    SpiffWorkflow says only which process it did not find, and offers as alternatives every id it
    has a parser for, embedded subprocesses among them (which no call activity can call as a
    process). This names the call activity (in the compiled process's file first) and suggests
    only processes of the files at hand whose ids are close to the missing one."""
    found = _NOT_FOUND.match(str(exc.args[0]) if exc.args else "")
    if found is None:
        return None
    missing = found.group("id")
    files = [filename, *sorted(n for n in roots if n != filename)]
    call, call_file = next(((element, name) for name in files if name in roots
                            for element in roots[name].iter(_CALL_ACTIVITY)
                            if element.get("calledElement") == missing), (None, filename))
    processes = sorted({str(p.get("id")) for root in roots.values() for p in root.iter(PROCESS_TAG)
                        if p.get("id") and p.get("isExecutable", "true") == "true"})
    close = difflib.get_close_matches(missing, processes, n=3, cutoff=0.8)
    hint = f"; did you mean {' or '.join(repr(p) for p in close)}?" if close else ""
    if call is None:
        return DefinitionError(f"the called process '{missing[:128]}' is not deployed or uploaded{hint}",
                               file=filename, error_type="missing_process",
                               parts={"process": missing[:128], "close": close})
    call_id = call.get("id")
    file, line = index.locate(call_id, call_file)
    return DefinitionError(
        f"call activity '{call_id}' calls the process '{missing[:128]}', which is not deployed or uploaded "
        f"(calledElement names the id of an executable process in a deployed or uploaded .bpmn file){hint}",
        file=file, element_id=call_id, element_name=call.get("name"), line=line or call.sourceline,
        error_type="missing_process", parts={"process": missing[:128], "close": close, "call": call_id})


def _check_filename(name: str) -> None:
    if not _SAFE_FILENAME.match(name):
        raise DefinitionError(
            "file names may only contain letters, digits, '.', '_' and '-' (max 128 characters)",
            file=name,
        )


class _LineIndex:
    """Maps (file, element id) to the XML line, because SpiffWorkflow's errors lose it.

    Element ids are unique within a file only (every modeler names its start event
    ``StartEvent_1``), so a lookup names the file it expects the element in: the file being
    compiled, or the one SpiffWorkflow reported. Another file is named only if it is the one
    file that has the id.
    """

    def __init__(self) -> None:
        self._lines: dict[str, dict[str, int]] = {}  # file -> element id -> line
        self._files: dict[str, list[str]] = {}  # element id -> files that have it
        #: decision id -> the DMN file SpiffWorkflow takes that decision from. A DMN cell is looked
        #: up there: cell ids (``r1o``) are often the same in several DMN files, and never in the
        #: BPMN file of the business rule task whose spec carries the table.
        self.decision_files: dict[str, str] = {}
        #: (file, source element id, condition text) -> (sequence flow id, its name): a gateway's
        #: condition in a spec names the gateway; the flow that carries it is what was edited.
        self._flows: dict[tuple[str, str, str], tuple[str, str | None]] = {}

    def add(self, filename: str, root: etree._Element) -> None:
        lines = self._lines.setdefault(filename, {})
        for node in root.iter():
            if not isinstance(node.tag, str):
                continue
            node_id = node.get("id")
            if node_id and node_id not in lines:
                lines[node_id] = node.sourceline or 0
                self._files.setdefault(node_id, []).append(filename)
            if node_id and node.tag == _SEQUENCE_FLOW and node.get("sourceRef"):
                for child in node.iterchildren(_CONDITION):
                    key = (filename, str(node.get("sourceRef")), (child.text or "").strip())
                    self._flows.setdefault(key, (node_id, node.get("name")))

    def flow(self, file: str | None, source_id: str | None, condition: str) -> tuple[str, str | None] | None:
        """The sequence flow leaving ``source_id`` in ``file`` whose condition reads ``condition``."""
        if not file or not source_id:
            return None
        return self._flows.get((file, source_id, condition.strip()))

    def locate(self, element_id: str | None, file: str | None = None) -> tuple[str | None, int | None]:
        """(file, line) of ``element_id``, looked up in ``file`` first; ``file`` (line None)
        when the id is not there and not in exactly one other file."""
        if not element_id:
            return file, None
        if file and element_id in self._lines.get(file, {}):
            return file, self._lines[file][element_id] or None
        holders = self._files.get(element_id, [])
        if len(holders) == 1:
            return holders[0], self._lines[holders[0]][element_id] or None
        return file, None


def _choice_values(field: Any) -> list[Any] | None:
    """The values a form field offers as choices (``oneOf`` consts, else ``enum``), or None."""
    if not isinstance(field, dict):
        return None
    one_of = field.get("oneOf")
    if isinstance(one_of, list) and one_of and all(isinstance(c, dict) and "const" in c for c in one_of):
        return [c["const"] for c in one_of]
    enum = field.get("enum")
    return list(enum) if isinstance(enum, list) and enum else None


class _ScopedIndex:
    """A ``_LineIndex`` looking in one file first: the file whose spec is being checked."""

    def __init__(self, index: _LineIndex, file: str | None) -> None:
        self.index = index
        self.file = file

    def for_decision(self, decision_id: object) -> _ScopedIndex:
        """The index looking first in the DMN file of ``decision_id`` (this one if unknown)."""
        file = self.index.decision_files.get(decision_id) if isinstance(decision_id, str) else None
        return _ScopedIndex(self.index, file) if file else self

    def locate(self, element_id: str | None) -> tuple[str | None, int | None]:
        return self.index.locate(element_id, self.file)

    def flow(self, source_id: str | None, condition: str) -> tuple[str, str | None] | None:
        """The sequence flow leaving ``source_id`` (in its file) whose condition reads ``condition``."""
        return self.index.flow(self.locate(source_id)[0], source_id, condition)

    def refuse(self, message: str, element_id: str | None, task: dict[str, Any],
               error_type: str | None = None, **parts: Any) -> DefinitionError:
        """The deploy error for ``task`` (a spec's task dict), naming its element, file and line;
        ``parts``: the values ``message`` says (``EngineError.parts``)."""
        file, line = self.locate(element_id)
        return DefinitionError(message, file=file, element_id=element_id, element_name=task.get("bpmn_name"),
                               line=line, error_type=error_type, parts=parts)


#: The last compiled sets of files and what they compiled to (``ProcessLibrary.compile``). A
#: compiled process is frozen; callers only read its forms and mapping.
_COMPILED: OrderedDict[tuple[Any, ...], tuple[CompiledProcess, ...]] = OrderedDict()
_COMPILED_SIZE = 8
_COMPILED_LOCK = threading.Lock()


class ProcessLibrary:
    """Compiles a complete set of definition files. Stateless; safe to share between threads.

    ``known_operations``: the service-task operators the platform implements; a diagram naming
    another is refused at deploy (None accepts any, for engine-level tests).
    """

    def __init__(self, known_operations: frozenset[str] | None = None) -> None:
        self.known_operations = known_operations

    def compile(self, files: Sequence[SourceFile], deploying: Collection[str] | None = None) -> list[CompiledProcess]:
        """Return every executable process in ``files``; raise DefinitionError on the first problem.

        ``deploying``: the names of the files being deployed now (the others were deployed
        before); None means all. Files no process uses are checked only among these (a JSON
        file must hold a JSON object even if no task names it yet), so a file stored before a
        check existed does not block every later deploy.

        The result depends on nothing but these arguments, so the last few are remembered
        (``_COMPILED``, by the files' names and bytes): a deploy compiles every stored file with
        the uploads, and the same set again (a redeploy, a second desk on the same files) costs
        a lookup. A refusal is not remembered.
        """
        key = (tuple(files), None if deploying is None else frozenset(deploying), self.known_operations)
        with _COMPILED_LOCK:
            known = _COMPILED.get(key)
            if known is not None:
                _COMPILED.move_to_end(key)
                return list(known)
        compiled = self._compile(files, deploying)
        with _COMPILED_LOCK:
            _COMPILED[key] = tuple(compiled)
            while len(_COMPILED) > _COMPILED_SIZE:
                _COMPILED.popitem(last=False)
        return compiled

    def _compile(self, files: Sequence[SourceFile], deploying: Collection[str] | None) -> list[CompiledProcess]:
        by_name: dict[str, SourceFile] = {}
        for source in files:
            _check_filename(source.name)
            if source.kind == "other":
                raise DefinitionError(
                    "unsupported file type: upload .bpmn, .dmn or form .json files", file=source.name
                )
            if source.name in by_name:
                raise DefinitionError("the same file name was given twice", file=source.name)
            by_name[source.name] = source
        for source in by_name.values():
            if source.kind in ("form", "record", "access") and (deploying is None or source.name in deploying):
                self._load_json(source)

        index = _LineIndex()
        parser = SpiffBpmnParser(validator=VALIDATOR)
        xml_text: dict[str, str] = {}
        drawn_names: dict[str, set[str]] = {}
        #: what a diagram's version hash covers: its content, not an editor's layout of the text
        canonical: dict[str, bytes] = {}
        roots: dict[str, etree._Element] = {}
        for source in by_name.values():
            if source.kind not in ("bpmn", "dmn"):
                continue
            root = parse_xml(source.content, source.name)
            roots[source.name] = root
            index.add(source.name, root)
            canonical[source.name] = canonical_xml(root)
            xml_text[source.name] = source.content.decode("utf-8", errors="replace")
            if source.kind == "bpmn":
                _check_flows(root, source.name)
                _check_connected(root, source.name)
                drawn_names[source.name] = _drawn_names(root)
            try:
                if source.kind == "bpmn":
                    parser.add_bpmn_xml(root, filename=source.name)
                else:
                    parser.add_dmn_xml(root, filename=source.name)
            except ValidationException as exc:
                raise self._from_validation(exc, index, source.name) from None
            except etree.LxmlError as exc:
                raise DefinitionError(f"invalid definition: {exc}", file=source.name, error_type="invalid_xml",
                                      parts={"reason": str(exc)}) from None

        index.decision_files.update(
            {decision_id: dmn.filename for decision_id, dmn in parser.dmn_parsers.items() if dmn.filename}
        )
        forms = {
            name: source for name, source in by_name.items() if source.kind == "form"
        }
        records = {
            name[: -len(RECORD_SUFFIX)]: source for name, source in by_name.items() if source.kind == "record"
        }
        compiled: list[CompiledProcess] = []
        for process_id in parser.get_process_ids():
            process_parser = parser.get_process_parser(process_id)
            filename = process_parser.filename
            if len(process_id) > MAX_PROCESS_ID_LENGTH:
                _, line = index.locate(process_id, filename)
                raise DefinitionError(
                    f"process id '{process_id[:40]}...' is {len(process_id)} characters long; "
                    f"a process id may have at most {MAX_PROCESS_ID_LENGTH}",
                    file=filename, line=line, error_type="too_long",
                )
            try:
                spec = parser.get_spec(process_id)
                subprocess_specs = parser.get_subprocess_specs(process_id)
            except ValidationException as exc:
                raise (_missing_called_process(exc, roots, index, filename)
                       or self._from_validation(exc, index, filename)) from None
            except Exception as exc:  # SpiffWorkflow raises bare errors for some broken models
                raise DefinitionError(
                    f"cannot build process '{process_id}': {exc}", file=filename
                ) from None
            spec_dict = SPEC_SERIALIZER.to_dict(spec)
            sub_dicts = {name: SPEC_SERIALIZER.to_dict(s) for name, s in subprocess_specs.items()}
            all_specs = [spec_dict, *sub_dicts.values()]
            for one in all_specs:
                self._check_expressions(one, _ScopedIndex(index, one.get("file") or filename))
            located = [(t, _ScopedIndex(index, one.get("file") or filename))
                       for one in all_specs for t in self._user_tasks(one)]
            user_tasks = tuple(t for t, _ in located)
            self._check_lengths(spec.description, filename, located)
            self._check_approval_flags(located, deploying)
            form_payload = self._collect_forms(located, forms)
            self._check_decision_outputs(all_specs, form_payload, index, filename)
            spec_json = json.dumps(
                {"spec": spec_dict, "subprocess_specs": sub_dicts}, sort_keys=True, separators=(",", ":")
            )
            record_mapping = None
            record_file = records.get(process_id)
            if record_file is not None:
                record_mapping = self._load_json(record_file)
            files_used = sorted(
                {filename, *(s.get("file") or "" for s in sub_dicts.values()), *form_payload,
                 *([record_file.name] if record_file is not None else [])}
                - {""}
            )
            digest, legacy = hashlib.sha256(), hashlib.sha256()
            digest.update(spec_json.encode())
            legacy.update(spec_json.encode())
            for used in files_used:
                digest.update(b"\0" + used.encode() + b"\0" + canonical.get(used, by_name[used].content))
                legacy.update(b"\0" + used.encode() + b"\0" + by_name[used].content)
            compiled.append(
                CompiledProcess(
                    process_id=process_id,
                    name=spec.description or process_id,
                    filename=filename,
                    bpmn_xml=xml_text[filename],
                    spec_json=spec_json,
                    forms=form_payload,
                    user_tasks=user_tasks,
                    lanes=tuple(sorted({t.lane for t in user_tasks if t.lane})),
                    called_processes=tuple(sorted(sub_dicts)),
                    files_used=tuple(files_used),
                    content_hash=digest.hexdigest(),
                    legacy_hash=legacy.hexdigest(),
                    record_mapping=record_mapping,
                    element_names=tuple(sorted(set().union(*(drawn_names.get(f, set()) for f in files_used)))),
                    task_texts=tuple(sorted({text for one in all_specs for text in self._task_texts(one)})),
                    literal_params=tuple(sorted({found for one in all_specs for found in self._literal_params(one)})),
                )
            )
        return compiled

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _from_validation(
        exc: ValidationException, index: _LineIndex, default_file: str | None
    ) -> DefinitionError:
        element_id = getattr(exc, "id", "") or None
        # The file SpiffWorkflow names, else the one being parsed or compiled: never another
        # file that merely has an element with the same id.
        reported = getattr(exc, "file_name", "") or default_file
        file, line = index.locate(element_id, reported)
        line = line or (getattr(exc, "line_number", None) or None)
        message = str(exc.args[0]) if exc.args else str(exc)
        return DefinitionError(
            message,
            file=file or reported,
            element_id=element_id,
            element_name=getattr(exc, "name", "") or None,
            line=int(line) if line else None,
            error_type="engine_refused",
            parts={"reason": message},
        )

    @staticmethod
    def _check_lengths(name: str | None, filename: str, located: Iterable[tuple[UserTaskDef, _ScopedIndex]]) -> None:
        """What is stored in columns of a fixed width (process name, and the id, name and lane of
        every user task, copied into each task row) must fit, or starting the process fails."""
        if name and len(name) > MAX_NAME_LENGTH:
            raise DefinitionError(f"the process name is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed",
                                  file=filename, error_type="too_long")
        for task, scoped in located:
            for what, value, limit in (("id", task.bpmn_id, MAX_ELEMENT_ID_LENGTH), ("name", task.name, MAX_NAME_LENGTH),
                                       ("lane", task.lane, MAX_LANE_LENGTH)):
                if value and len(value) > limit:
                    file, line = scoped.locate(task.bpmn_id)
                    raise DefinitionError(
                        f"the {what} of user task '{task.bpmn_id[:40]}' is {len(value)} characters long; "
                        f"at most {limit} are allowed",
                        file=file, element_id=task.bpmn_id if len(task.bpmn_id) <= MAX_ELEMENT_ID_LENGTH else None,
                        line=line, error_type="too_long",
                    )

    @staticmethod
    def _check_approval_flags(located: Iterable[tuple[UserTaskDef, _ScopedIndex]],
                              deploying: Collection[str] | None) -> None:
        """A task's ``approval`` property says whether the task is announced as an approval; a
        value that is neither yes nor no (a typo such as "ture") would silently announce it as
        work, so it is refused here, naming the task and its line. Only in the files being
        deployed (``deploying``, None: all): a diagram stored before this check existed must not
        block the deploys of everything else."""
        for task, scoped in located:
            if task.approval is None or task.approval.strip().lower() in APPROVAL_VALUES:
                continue
            file, line = scoped.locate(task.bpmn_id)
            if deploying is not None and file not in deploying:
                continue
            raise DefinitionError(
                f"user task '{task.bpmn_id[:40]}': property approval is '{task.approval[:40]}'; "
                f"it must be one of {', '.join(sorted(APPROVAL_VALUES))}",
                file=file, element_id=task.bpmn_id if len(task.bpmn_id) <= MAX_ELEMENT_ID_LENGTH else None,
                line=line, error_type="invalid_property",
            )

    @staticmethod
    def _user_tasks(spec_dict: dict[str, Any]) -> Iterable[UserTaskDef]:
        for task in spec_dict.get("task_specs", {}).values():
            if task.get("typename") != "UserTask" and not task.get("manual"):
                continue
            properties = (task.get("extensions") or {}).get("properties") or {}
            yield UserTaskDef(
                bpmn_id=task.get("bpmn_id") or task["name"],
                name=task.get("bpmn_name"),
                lane=task.get("lane"),
                form=properties.get(FORM_SCHEMA_PROPERTY),
                ui_form=properties.get(FORM_UI_PROPERTY),
                approval=None if properties.get("approval") is None else str(properties["approval"]),
            )

    @staticmethod
    def _task_texts(spec_dict: dict[str, Any]) -> Iterable[str]:
        """The instructions and documentation of the user tasks of one spec, as the task page
        gets them (``WorkflowRun.task_view``)."""
        for task in spec_dict.get("task_specs", {}).values():
            if task.get("typename") != "UserTask" and not task.get("manual"):
                continue
            for text in ((task.get("extensions") or {}).get("instructionsForEndUser"), task.get("documentation")):
                if isinstance(text, str) and text.strip():
                    yield text

    @staticmethod
    def _literal_params(spec_dict: dict[str, Any]) -> Iterable[LiteralParam]:
        """The parameters of the service tasks of one spec written as one string literal, as the
        engine tells the operation at run time (``OperationCall.literals``)."""
        for task in spec_dict.get("task_specs", {}).values():
            operation = task.get("operation_name")
            if not isinstance(operation, str):
                continue
            for name, param in (task.get("operation_params") or {}).items():
                text = literal_text(param.get("value")) if isinstance(param, dict) else None
                if text is not None:
                    yield LiteralParam(operation, str(name), text, str(task.get("bpmn_id") or task.get("name") or ""))

    @staticmethod
    def _load_json(source: SourceFile) -> dict[str, Any]:
        try:
            parsed = load_json_file(source.content)
        except JsonFileError as err:
            reason = "file is not UTF-8" if err.reason == "not UTF-8" else err.reason
            raise DefinitionError(reason, file=source.name, line=err.line) from None
        if not isinstance(parsed, dict):
            raise DefinitionError("file must hold a JSON object", file=source.name)
        return parsed

    @staticmethod
    def _collect_forms(
        user_tasks: Iterable[tuple[UserTaskDef, _ScopedIndex]], forms: dict[str, SourceFile]
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for task, index in user_tasks:
            for form_name in (task.form, task.ui_form):
                if not form_name or form_name in payload:
                    continue
                file, line = index.locate(task.bpmn_id)
                if form_name not in forms:
                    raise DefinitionError(
                        f"form file '{form_name}' is not uploaded or deployed",
                        file=file,
                        element_id=task.bpmn_id,
                        element_name=task.name,
                        line=line,
                    )
                try:
                    parsed = load_json_file(forms[form_name].content)
                except JsonFileError as err:
                    raise DefinitionError(f"form file is {err.reason}" if err.reason.startswith("not ")
                                          else f"form file: {err.reason}", file=form_name, line=err.line) from None
                if not isinstance(parsed, dict):
                    raise DefinitionError("form file must hold a JSON object", file=form_name)
                payload[form_name] = parsed
        return payload

    @staticmethod
    def _check_decision_outputs(specs: Sequence[dict[str, Any]], forms: Mapping[str, Any], index: _LineIndex,
                                filename: str) -> None:
        """A decision table's output that a form of the same process offers as a choice (``oneOf``
        consts or an ``enum``) must give one of the form's values, where the cell is a literal
        (QA: a priority matrix giving "P9" opened records no SLA applied to, and nothing said so).
        A cell that is an expression is decided when it runs."""
        choices: dict[str, tuple[list[Any], str]] = {}  # variable -> (values, the form offering them)
        for form_name, form in sorted(forms.items()):
            properties = form.get("properties") if isinstance(form, dict) else None
            for variable, prop in (properties if isinstance(properties, dict) else {}).items():
                values = _choice_values(prop)
                if values is not None and variable not in choices:
                    choices[variable] = (values, form_name)
        if not choices:
            return
        for spec in specs:
            scoped = _ScopedIndex(index, spec.get("file") or filename)
            for task in (spec.get("task_specs") or {}).values():
                table = task.get("decision_table")
                if not table:
                    continue
                cells = scoped.for_decision((task.get("extensions") or {}).get("calledDecisionId"))
                outputs = {column.get("id"): column.get("name") for column in table.get("outputs") or []}
                for rule in table.get("rules") or []:
                    for entry in rule.get("output_entries") or []:
                        variable = outputs.get(entry.get("output_id"))
                        if variable not in choices:
                            continue
                        try:
                            value = ast.literal_eval((entry.get("text") or "").strip())
                        except (ValueError, SyntaxError, MemoryError, RecursionError):
                            continue
                        allowed, form_name = choices[variable]
                        if not any(type(v) is type(value) and v == value for v in allowed):
                            offered = ", ".join(json.dumps(v) for v in allowed)
                            raise cells.refuse(
                                f"rule {rule.get('row_number') or rule.get('id')} of the decision of "
                                f"'{task.get('bpmn_name') or task.get('bpmn_id')}' gives {variable} {json.dumps(value)}, "
                                f"which the form {form_name} does not offer ({offered})",
                                entry.get("id") or rule.get("id"), task, "invalid_output")

    def _check_expressions(self, spec_dict: dict[str, Any], index: _ScopedIndex) -> None:
        for task in spec_dict.get("task_specs", {}).values():
            element_id = task.get("bpmn_id") or None
            for key in _EXEC_KEYS:
                if task.get(key):
                    self._check(task[key], "exec", task, element_id, index, key)
            for cond in task.get("cond_task_specs") or []:
                condition = cond.get("condition") if isinstance(cond, dict) else None
                if condition:
                    # named on the flow that carries it (QA: the gateway was blamed and marked)
                    flow = index.flow(element_id, condition)
                    if flow is not None:
                        self._check(condition, "eval", {**task, "bpmn_name": flow[1]}, flow[0], index, "condition")
                    else:
                        self._check(condition, "eval", task, element_id, index, "condition")
            for key in ("cardinality", "condition", "loop_condition"):
                value = task.get(key)
                if isinstance(value, str) and value:
                    self._check(value, "eval", task, element_id, index, key)
            for event in self._events(task, element_id, index):
                expression = event.get("expression")
                if isinstance(expression, str) and expression:
                    self._check(expression, "eval", task, element_id, index, "expression")
                    timer_kind = _TIMER_TYPES.get(event.get("typename", ""))
                    if timer_kind:
                        self._check_timer_literal(expression, timer_kind, task, element_id, index)
            table = task.get("decision_table")
            if table:
                # the table's cells are in the DMN file the task calls, not in this spec's file
                decision_id = (task.get("extensions") or {}).get("calledDecisionId")
                self._check_decision_table(table, task, index.for_decision(decision_id))
            operation = task.get("operation_name")
            if operation is not None:
                if self.known_operations is not None and operation not in self.known_operations:
                    raise index.refuse(f"unknown service operation '{operation}'; known: "
                                       f"{', '.join(sorted(self.known_operations))}", element_id, task,
                                       "unknown_operation",
                                       operation=operation, known=", ".join(sorted(self.known_operations)))
                for name, param in (task.get("operation_params") or {}).items():
                    value = param.get("value") if isinstance(param, dict) else None
                    if isinstance(value, str) and value:
                        self._check(value, "eval", task, element_id, index, f"parameter '{name}'")

    @staticmethod
    def _events(task: dict[str, Any], element_id: str | None, index: _ScopedIndex) -> list[dict[str, Any]]:
        """The event definitions of ``task``: its own and, for an event-based gateway, those of the
        events after it (SpiffWorkflow moves them into the gateway's). Refuses what SpiffWorkflow
        cannot run right behind a gateway: an event with two definitions (BPMN allows one), two
        timers (they would share the gateway's one due time)."""
        event = task.get("event_definition") or {}
        events = [event, *(event.get("event_definitions") or [])]
        name = task.get("bpmn_name") or element_id
        if any(e.get("event_definitions") is not None for e in events[1:]):
            raise index.refuse(f"an event after the event-based gateway '{name}' has more than one event definition; "
                               "each may have one", element_id, task, "unsupported_element")
        if sum(1 for e in events if e.get("typename") in _TIMER_TYPES) > 1:
            raise index.refuse(f"'{name}' waits for more than one timer; an event-based gateway may lead to one timer "
                               "event only", element_id, task, "unsupported_element")
        return events

    def _check(
        self,
        source: str,
        mode: str,
        task: dict[str, Any],
        element_id: str | None,
        index: _ScopedIndex,
        what: str,
    ) -> None:
        try:
            check_source(source, mode)
        except ScriptRuleViolation as err:
            raise index.refuse(f"{what} of '{task.get('bpmn_name') or element_id}' is refused: {err.message}"
                               + (f" (script line {err.line})" if err.line else ""),
                               element_id, task, "script_rule", what=what, element=task.get("bpmn_name") or element_id,
                               reason=err.message, script_line=err.line) from None

    def _check_decision_table(
        self, table: dict[str, Any], task: dict[str, Any], index: _ScopedIndex
    ) -> None:
        """DMN cells are Python in SpiffWorkflow; check them the way its DMN engine builds them."""
        for column in table.get("inputs", []):
            if column.get("expression"):
                self._check_cell(column["expression"], column.get("id"), task, index)
        for rule in table.get("rules", []):
            for entry in rule.get("input_entries", []):
                for lhs in entry.get("lhs") or []:
                    if not lhs:
                        continue
                    self._check_cell(lhs, entry.get("id"), task, index, match=True)
            for entry in rule.get("output_entries", []):
                if entry.get("text"):
                    self._check_cell(entry["text"], entry.get("id"), task, index)

    def _check_cell(
        self,
        text: str,
        cell_id: str | None,
        task: dict[str, Any],
        index: _ScopedIndex,
        match: bool = False,
    ) -> None:
        candidates = [text]
        if match:
            replaced = re.sub(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", "dmninputexpr", text)
            candidates = [replaced] if replaced != text else [text, f"dmninputexpr {text}"]
        first_error: ScriptRuleViolation | None = None
        for candidate in candidates:
            try:
                check_source(candidate, "eval")
                return
            except ScriptRuleViolation as err:
                first_error = first_error or err
        assert first_error is not None
        raise index.refuse(f"DMN cell '{text}' is refused: {first_error.message}", cell_id, task, "script_rule",
                           cell=text, reason=first_error.message)

    def _check_timer_literal(
        self,
        expression: str,
        kind: str,
        task: dict[str, Any],
        element_id: str | None,
        index: _ScopedIndex,
    ) -> None:
        """A quoted literal can be checked now; an expression over task data only at run time."""
        try:
            node = ast.parse(expression.strip(), mode="eval").body
        except SyntaxError:
            return  # check_source already reported syntax problems
        if not isinstance(node, ast.Constant):
            return
        try:
            timer_bounds.check_value(kind, node.value)
        except timer_bounds.TimerValueError as err:
            raise index.refuse(f"timer expression {expression!r} is refused: {err}", element_id, task,
                               "timer_limit" if isinstance(err, timer_bounds.TimerTooLong) else "timer_expression",
                               expression=expression, reason=str(err)) from None
