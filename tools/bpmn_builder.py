"""Author BPMN diagrams with their layout (BPMNDiagram) from a compact Python description.

Process owners edit the generated ``processes/*.bpmn`` in the browser afterwards; this tool only
saves hand-placing coordinates when a diagram is first drawn. Layout: every node sits in a grid
cell (column, lane, row within the lane); lanes stack top to bottom; flows are orthogonal.

    d = Diagram("incident_management", "Incident management", lanes=["ServiceDesk", "Resolvers"])
    d.node("start", "start", lane="ServiceDesk", col=0)
    d.node("triage", "user", "Triage incident", lane="ServiceDesk", col=1,
           properties={"formJsonSchemaFilename": "incident-triage.json"})
    d.flow("start", "triage")
    print(d.to_xml())

Embedded subprocesses are drawn collapsed, with their content on a plane of their own (bpmn-js
drills down into it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

KINDS = {
    "start": "startEvent",
    "end": "endEvent",
    "user": "userTask",
    "manual": "manualTask",
    "script": "scriptTask",
    "service": "serviceTask",
    "rule": "businessRuleTask",
    "xor": "exclusiveGateway",
    "and": "parallelGateway",
    "or": "inclusiveGateway",
    "event": "eventBasedGateway",
    "call": "callActivity",
    "sub": "subProcess",
    "catch": "intermediateCatchEvent",
    "throw": "intermediateThrowEvent",
    "boundary": "boundaryEvent",
}
def literal(text: str) -> str:
    """``text`` as a service-task parameter written as one string literal: for a ``notify``
    subject or body, a template of the process's own words that its translation file translates
    and the step's data fills in (``{{ title }}``; app/services/content_texts.py)."""
    return repr(text)


SIZES = {"event": (36, 36), "task": (120, 80), "gateway": (50, 50)}
COL_W, LANE_H, ROW_H, LEFT, TOP, LANE_LABEL = 170, 170, 120, 70, 60, 30


def _shape_kind(kind: str) -> str:
    if kind in ("start", "end", "catch", "throw", "boundary"):
        return "event"
    if kind in ("xor", "and", "or", "event"):
        return "gateway"
    return "task"


@dataclass
class Node:
    id: str
    kind: str
    name: str | None
    lane: str | None
    col: float
    row: int
    attrs: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    script: str | None = None
    prescript: str | None = None
    postscript: str | None = None
    instructions: str | None = None
    documentation: str | None = None
    decision: str | None = None
    operator: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    result_variable: str | None = None
    timer: tuple[str, str] | None = None  # ("timeDuration" | "timeDate" | "timeCycle", expression)
    message: str | None = None
    message_variable: str | None = None
    attached_to: str | None = None
    interrupting: bool = True
    loop_condition: str | None = None
    loop_maximum: int | None = None
    multi: dict[str, Any] | None = None  # {"collection": "cab", "item": "approver", "output": "votes", "output_item": "vote", "sequential": False, "completion": "..."}
    inner: Diagram | None = None
    terminate: bool = False


@dataclass
class Flow:
    id: str
    source: str
    target: str
    name: str | None
    condition: str | None


class Diagram:
    def __init__(self, process_id: str, name: str, lanes: list[str] | None = None, documentation: str | None = None) -> None:
        self.process_id = process_id
        self.name = name
        self.lanes = lanes or []
        self.documentation = documentation
        self.nodes: dict[str, Node] = {}
        self.flows: list[Flow] = []
        self.defaults: dict[str, str] = {}
        self.messages: set[str] = set()
        self.lane_rows: dict[str | None, int] = {}

    # -- building ------------------------------------------------------------------------------

    def node(self, node_id: str, kind: str, name: str | None = None, *, lane: str | None = None, col: float = 0,
             row: int = 0, **extra: Any) -> Node:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind}")
        if node_id in self.nodes:
            raise ValueError(f"duplicate id {node_id}")
        if self.lanes and lane is None and kind != "boundary":
            raise ValueError(f"{node_id}: every node needs a lane in a laned diagram")
        node = Node(node_id, kind, name, lane, col, row, **extra)
        if node.message:
            self.messages.add(node.message)
        self.nodes[node_id] = node
        self.lane_rows[lane] = max(self.lane_rows.get(lane, 0), row + 1)
        return node

    def flow(self, source: str, target: str, condition: str | None = None, name: str | None = None,
             default: bool = False) -> Flow:
        flow = Flow(f"flow_{source}_{target}", source, target, name, condition)
        if any(f.id == flow.id for f in self.flows):
            flow.id += f"_{len(self.flows)}"
        self.flows.append(flow)
        if default:
            self.defaults[source] = flow.id
        return flow

    def chain(self, *ids: str) -> None:
        for a, b in zip(ids, ids[1:], strict=False):
            self.flow(a, b)

    # -- layout --------------------------------------------------------------------------------

    def _lane_top(self, lane: str | None) -> int:
        if not self.lanes:
            return TOP
        y = TOP
        for name in self.lanes:
            if name == lane:
                return y
            y += LANE_H + ROW_H * (self.lane_rows.get(name, 1) - 1)
        raise ValueError(f"unknown lane {lane}")

    def _lane_height(self, lane: str) -> int:
        return LANE_H + ROW_H * (self.lane_rows.get(lane, 1) - 1)

    def bounds(self, node: Node) -> tuple[int, int, int, int]:
        w, h = SIZES[_shape_kind(node.kind)]
        if node.kind == "boundary":
            host = self.bounds(self.nodes[node.attached_to or ""])
            siblings = [n for n in self.nodes.values() if n.kind == "boundary" and n.attached_to == node.attached_to]
            index = siblings.index(node)
            return host[0] + 20 + index * 44, host[1] + host[3] - h // 2, w, h
        cx = LEFT + LANE_LABEL + 60 + int(node.col * COL_W)
        cy = self._lane_top(node.lane) + LANE_H // 2 + node.row * ROW_H
        return cx - w // 2, cy - h // 2, w, h

    # -- XML -------------------------------------------------------------------------------------

    def _ext(self, node: Node) -> str:
        parts: list[str] = []
        if node.properties:
            props = "".join(
                f"<spiffworkflow:property name={quoteattr(k)} value={quoteattr(v)} />" for k, v in node.properties.items()
            )
            parts.append(f"<spiffworkflow:properties>{props}</spiffworkflow:properties>")
        if node.instructions:
            parts.append(f"<spiffworkflow:instructionsForEndUser>{escape(node.instructions)}</spiffworkflow:instructionsForEndUser>")
        if node.prescript:
            parts.append(f"<spiffworkflow:preScript>{escape(node.prescript)}</spiffworkflow:preScript>")
        if node.postscript:
            parts.append(f"<spiffworkflow:postScript>{escape(node.postscript)}</spiffworkflow:postScript>")
        if node.decision:
            parts.append(f"<spiffworkflow:calledDecisionId>{escape(node.decision)}</spiffworkflow:calledDecisionId>")
        if node.operator:
            params = "".join(
                f"<spiffworkflow:parameter id={quoteattr(k)} type=\"any\" value={quoteattr(v)} />" for k, v in node.params.items()
            )
            result = f" resultVariable={quoteattr(node.result_variable)}" if node.result_variable else ""
            parts.append(f"<spiffworkflow:serviceTaskOperator id={quoteattr(node.operator)}{result}>"
                         f"<spiffworkflow:parameters>{params}</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>")
        if not parts:
            return ""
        return "<bpmn:extensionElements>" + "".join(parts) + "</bpmn:extensionElements>"

    def _event_definition(self, node: Node) -> str:
        if node.timer:
            kind, expression = node.timer
            return (f"<bpmn:timerEventDefinition id=\"{node.id}_timer\"><bpmn:{kind}>{escape(expression)}</bpmn:{kind}>"
                    "</bpmn:timerEventDefinition>")
        if node.message:
            var = ""
            if node.message_variable:
                var = (f"<bpmn:extensionElements><spiffworkflow:messageVariable>{escape(node.message_variable)}"
                       "</spiffworkflow:messageVariable></bpmn:extensionElements>")
            return f"<bpmn:messageEventDefinition id=\"{node.id}_msg\" messageRef=\"msg_{node.message}\">{var}</bpmn:messageEventDefinition>"
        if node.terminate:
            return f"<bpmn:terminateEventDefinition id=\"{node.id}_terminate\" />"
        return ""

    def _loop(self, node: Node) -> str:
        if node.loop_condition or node.loop_maximum:
            maximum = f" loopMaximum=\"{node.loop_maximum}\"" if node.loop_maximum else ""
            cond = f"<bpmn:loopCondition>{escape(node.loop_condition)}</bpmn:loopCondition>" if node.loop_condition else ""
            return f"<bpmn:standardLoopCharacteristics{maximum}>{cond}</bpmn:standardLoopCharacteristics>"
        if node.multi:
            m = node.multi
            seq = ' isSequential="true"' if m.get("sequential") else ""
            parts = [f"<bpmn:loopDataInputRef>{m['collection']}</bpmn:loopDataInputRef>"]
            if m.get("output"):
                parts.append(f"<bpmn:loopDataOutputRef>{m['output']}</bpmn:loopDataOutputRef>")
            parts.append(f"<bpmn:inputDataItem id=\"{m['item']}\" name=\"{m['item']}\" />")
            if m.get("output_item"):
                parts.append(f"<bpmn:outputDataItem id=\"{m['output_item']}\" name=\"{m['output_item']}\" />")
            if m.get("completion"):
                parts.append(f"<bpmn:completionCondition>{escape(m['completion'])}</bpmn:completionCondition>")
            return f"<bpmn:multiInstanceLoopCharacteristics{seq}>{''.join(parts)}</bpmn:multiInstanceLoopCharacteristics>"
        return ""

    def _process_body(self) -> str:
        out: list[str] = []
        if self.documentation:
            out.append(f"<bpmn:documentation>{escape(self.documentation)}</bpmn:documentation>")
        if self.lanes:
            out.append(f'<bpmn:laneSet id="{self.process_id}_lanes">')
            for i, lane in enumerate(self.lanes):
                refs = "".join(f"<bpmn:flowNodeRef>{n.id}</bpmn:flowNodeRef>" for n in self.nodes.values()
                               if (n.lane or self.nodes.get(n.attached_to or "", n).lane) == lane)
                out.append(f'<bpmn:lane id="{self.process_id}_lane_{i}" name={quoteattr(lane)}>{refs}</bpmn:lane>')
            out.append("</bpmn:laneSet>")
        for node in self.nodes.values():
            tag = KINDS[node.kind]
            attrs = {"id": node.id}
            if node.name:
                attrs["name"] = node.name
            if node.kind == "boundary":
                attrs["attachedToRef"] = node.attached_to or ""
                if not node.interrupting:
                    attrs["cancelActivity"] = "false"
            if node.id in self.defaults:
                attrs["default"] = self.defaults[node.id]
            attrs.update(node.attrs)
            attr_text = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
            inner: list[str] = []
            if node.documentation:
                inner.append(f"<bpmn:documentation>{escape(node.documentation)}</bpmn:documentation>")
            inner.append(self._ext(node))
            inner.extend(f"<bpmn:incoming>{f.id}</bpmn:incoming>" for f in self.flows if f.target == node.id)
            inner.extend(f"<bpmn:outgoing>{f.id}</bpmn:outgoing>" for f in self.flows if f.source == node.id)
            inner.append(self._loop(node))
            if node.kind == "sub" and node.inner is not None:
                inner.append(node.inner._process_body())
            inner.append(self._event_definition(node))
            if node.script is not None:
                inner.append(f"<bpmn:script>{escape(node.script)}</bpmn:script>")
            out.append(f"<bpmn:{tag} {attr_text}>{''.join(inner)}</bpmn:{tag}>")
        for flow in self.flows:
            name = f" name={quoteattr(flow.name)}" if flow.name else ""
            cond = f"<bpmn:conditionExpression>{escape(flow.condition)}</bpmn:conditionExpression>" if flow.condition else ""
            out.append(f'<bpmn:sequenceFlow id="{flow.id}"{name} sourceRef="{flow.source}" targetRef="{flow.target}">{cond}</bpmn:sequenceFlow>')
        return "\n".join(x for x in out if x)

    def _all_messages(self) -> set[str]:
        found = set(self.messages)
        for node in self.nodes.values():
            if node.inner is not None:
                found |= node.inner._all_messages()
        return found

    def _plane(self, element: str, plane_id: str) -> str:
        shapes: list[str] = []
        width = 0
        for node in self.nodes.values():
            x, y, w, h = self.bounds(node)
            width = max(width, x + w)
            extra = ' isExpanded="false"' if node.kind == "sub" else ""
            extra += ' isMarkerVisible="true"' if node.kind == "xor" else ""
            label = ""
            if node.name and _shape_kind(node.kind) != "task":
                label = f'<bpmndi:BPMNLabel><dc:Bounds x="{x - 20}" y="{y + h + 4}" width="{w + 40}" height="27" /></bpmndi:BPMNLabel>'
            shapes.append(f'<bpmndi:BPMNShape id="{node.id}_di" bpmnElement="{node.id}"{extra}>'
                          f'<dc:Bounds x="{x}" y="{y}" width="{w}" height="{h}" />{label}</bpmndi:BPMNShape>')
        if self.lanes:
            total_w = width + 80 - LEFT
            participant = f"{self.process_id}_participant"
            total_h = sum(self._lane_height(lane) for lane in self.lanes)
            shapes.insert(0, f'<bpmndi:BPMNShape id="{participant}_di" bpmnElement="{participant}" isHorizontal="true">'
                             f'<dc:Bounds x="{LEFT}" y="{TOP}" width="{total_w}" height="{total_h}" /></bpmndi:BPMNShape>')
            for i, lane in enumerate(self.lanes):
                shapes.insert(1 + i, f'<bpmndi:BPMNShape id="{self.process_id}_lane_{i}_di" bpmnElement="{self.process_id}_lane_{i}" isHorizontal="true">'
                                     f'<dc:Bounds x="{LEFT + LANE_LABEL}" y="{self._lane_top(lane)}" width="{total_w - LANE_LABEL}" '
                                     f'height="{self._lane_height(lane)}" /></bpmndi:BPMNShape>')
        for flow in self.flows:
            points = self._waypoints(flow)
            wps = "".join(f'<di:waypoint x="{px}" y="{py}" />' for px, py in points)
            label = ""
            if flow.name:
                mx, my = points[len(points) // 2]
                label = f'<bpmndi:BPMNLabel><dc:Bounds x="{mx + 4}" y="{my - 20}" width="80" height="14" /></bpmndi:BPMNLabel>'
            shapes.append(f'<bpmndi:BPMNEdge id="{flow.id}_di" bpmnElement="{flow.id}">{wps}{label}</bpmndi:BPMNEdge>')
        return (f'<bpmndi:BPMNDiagram id="{plane_id}_diagram"><bpmndi:BPMNPlane id="{plane_id}" bpmnElement="{element}">'
                + "".join(shapes) + "</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>")

    def _waypoints(self, flow: Flow) -> list[tuple[int, int]]:
        sx, sy, sw, sh = self.bounds(self.nodes[flow.source])
        tx, ty, tw, th = self.bounds(self.nodes[flow.target])
        src_node = self.nodes[flow.source]
        if src_node.kind == "boundary":
            start = (sx + sw // 2, sy + sh)
            end = (tx, ty + th // 2) if tx > sx else (tx + tw // 2, ty)
            return [start, (start[0], end[1]), end] if start[1] != end[1] else [start, end]
        scy, tcy = sy + sh // 2, ty + th // 2
        if tx >= sx + sw:  # forward
            start, end = (sx + sw, scy), (tx, tcy)
            if scy == tcy:
                return [start, end]
            if _shape_kind(src_node.kind) == "gateway":
                start = (sx + sw // 2, sy + sh if tcy > scy else sy)
                return [start, (start[0], tcy), end]
            mid = (start[0] + end[0]) // 2
            return [start, (mid, scy), (mid, tcy), end]
        # backward (loops): go under both shapes
        below = max(sy + sh, ty + th) + 30
        start, end = (sx + sw // 2, sy + sh), (tx + tw // 2, ty + th)
        return [start, (start[0], below), (end[0], below), end]

    def to_xml(self) -> str:
        collab = ""
        if self.lanes:
            collab = (f'<bpmn:collaboration id="{self.process_id}_collaboration">'
                      f'<bpmn:participant id="{self.process_id}_participant" name={quoteattr(self.name)} processRef="{self.process_id}" />'
                      "</bpmn:collaboration>")
        messages = "".join(f'<bpmn:message id="msg_{m}" name="{m}" />' for m in sorted(self._all_messages()))
        main_element = f"{self.process_id}_collaboration" if self.lanes else self.process_id
        planes = [self._plane(main_element, f"{self.process_id}_plane")]
        for node in self.nodes.values():
            if node.kind == "sub" and node.inner is not None:
                planes.append(node.inner._plane(node.id, f"{node.id}_plane"))
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
            'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
            f'xmlns:spiffworkflow="{SPIFF_NS}" id="{self.process_id}_definitions" '
            'targetNamespace="http://processdesk.example/bpmn" exporter="processdesk bpmn_builder" exporterVersion="1">\n'
            f"{collab}{messages}\n"
            f'<bpmn:process id="{self.process_id}" name={quoteattr(self.name)} isExecutable="true">\n'
            f"{self._process_body()}\n</bpmn:process>\n" + "\n".join(planes) + "\n</bpmn:definitions>\n"
        )


def pretty(xml: str) -> str:
    """Indent the XML so diffs of diagrams stay readable."""
    from lxml import etree

    root = etree.fromstring(xml.encode("utf-8"))
    etree.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="unicode") + "\n"
