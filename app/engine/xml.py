"""Hardened XML parsing for uploaded BPMN and DMN files.

Uploaded diagrams come from people we do not fully trust, so the parser refuses any document type
declaration outright (no DTD means no entity expansion, no external entity, no billion laughs) and
lxml is configured to never resolve entities or touch the network in case one slips through in an
encoding the byte scan does not see.
"""

from __future__ import annotations

import re

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
