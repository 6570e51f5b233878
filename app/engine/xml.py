"""Hardened XML parsing for uploaded BPMN and DMN files.

Uploaded diagrams come from people we do not fully trust, so the parser refuses any document type
declaration outright (no DTD means no entity expansion, no external entity, no billion laughs) and
lxml is configured to never resolve entities or touch the network in case one slips through in an
encoding the byte scan does not see.
"""

from __future__ import annotations

import re
from copy import deepcopy

from lxml import etree

from .errors import XmlRejected

_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def _line_of(content: bytes, offset: int) -> int:
    return content.count(b"\n", 0, offset) + 1


def parse_xml(content: bytes, filename: str) -> etree._Element:
    """Parse ``content`` into an lxml element; raise XmlRejected naming the file and line.

    Refused: malformed XML, any DOCTYPE/ENTITY declaration, processing that would need a DTD.
    """
    match = _DTD_MARKERS.search(content)
    if match:
        raise XmlRejected(
            "DOCTYPE and entity declarations are not allowed in uploaded XML",
            file=filename,
            line=_line_of(content, match.start()),
        )
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if getattr(exc, "lineno", None) else None
        raise XmlRejected(f"malformed XML: {exc.msg}", file=filename, line=line) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # A UTF-16/32 document hides the marker from the byte scan above.
        raise XmlRejected(
            "DOCTYPE and entity declarations are not allowed in uploaded XML", file=filename, line=1
        )
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise XmlRejected(
                "entity references are not allowed in uploaded XML",
                file=filename,
                line=node.sourceline,
            )
    return root


_DI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
_DI_PLANE = f"{{{_DI_NS}}}BPMNPlane"


def canonical_xml(root: etree._Element) -> bytes:
    """The content of a BPMN/DMN document, independent of how an editor laid out its text.

    Two files that differ only in indentation, attribute order or quoting, empty-element syntax,
    namespace declarations or the order of the shapes and edges of a diagram plane (bpmn-js writes
    them in its own order) give the same bytes; any change of an element, attribute, text, shape
    position or size gives other bytes. Text that is not only whitespace (scripts, conditions,
    documentation) is kept exactly: Python's indentation is meaning. ``root`` is not modified.
    """
    copy = deepcopy(root)
    for node in copy.iter():
        # a comment's or processing instruction's own text is its content; the text after it is layout
        if isinstance(node.tag, str) and node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    for plane in copy.iter(_DI_PLANE):
        children = list(plane)
        children.sort(key=lambda child: (str(child.tag), child.get("bpmnElement") or "", child.get("id") or ""))
        plane[:] = children
    return etree.tostring(copy, method="c14n2", with_comments=False)


_MODEL = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
#: What a diagram holds beyond its drawing: the desk's rules (scripts, conditions, timer and loop
#: expressions, task properties and instructions, service parameters) and authors' notes.
_RULE_ELEMENTS = tuple(_MODEL + tag for tag in (
    "script", "conditionExpression", "extensionElements", "documentation", "timeDuration", "timeDate",
    "timeCycle", "loopCondition", "completionCondition", "loopCardinality"))


def drawing_only(xml: str) -> str:
    """The BPMN ``xml`` with its rules taken out (``_RULE_ELEMENTS``): shapes, names, flows and
    layout stay, so bpmn-js draws it as before for a reader who may not read the rules."""
    root = parse_xml(xml.encode("utf-8"), "diagram")
    for element in list(root.iter(*_RULE_ELEMENTS)):
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    return str(etree.tostring(root, encoding="unicode"))


#: A BPMN ``<process>`` element's tag (lxml's ``{namespace}name``).
PROCESS_TAG = "{http://www.omg.org/spec/BPMN/20100524/MODEL}process"


def process_ids(content: bytes, filename: str) -> list[str]:
    """The ids of the processes a BPMN file defines, in the order written (hardened parsing;
    XmlRejected for what ``parse_xml`` refuses)."""
    return [str(p.get("id")) for p in parse_xml(content, filename).iter(PROCESS_TAG) if p.get("id")]
