"""A deploy's refusal in the page's language (the process pages: upload, modeler save, deploy).

The engine and the definition service say why a diagram is refused in English, the API's
language; with the sentence they give its kind (``details.error_type``, or the kind of a
FormMessage) and its values (the FormMessage's parts: app/services/definitions.py
``refused_definition``), so a page says it again in its own words from those values. What the
values themselves say stays as written: ids and names from the diagram, and the reasons of the
script rules, of the XML parser and of SpiffWorkflow (English sentences of other code, quoted
after the page's own). A refusal without a kind the page knows is shown as the API says it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.errors import ProcessdeskError
from app.services.forms import FormMessage

#: What of an element a script rule refused (the engine's words, the ``what`` part).
_CHECKED: dict[str, Any] = {
    "script": _l("script"),
    "prescript": _l("pre-script"),
    "postscript": _l("post-script"),
    "condition": _l("condition"),
    "expression": _l("expression"),
    "cardinality": _l("cardinality"),
    "loop_condition": _l("loop condition"),
}
_PARAMETER = re.compile(r"parameter '(?P<name>.*)'")


def _checked(what: str) -> str:
    parameter = _PARAMETER.fullmatch(what)
    if parameter is not None:
        return _("parameter “%(name)s”", name=parameter.group("name"))
    label = _CHECKED.get(what)
    return str(label) if label is not None else what


def _script_rule(parts: Mapping[str, Any]) -> str:
    if "cell" in parts:
        return _("The DMN cell “%(cell)s” is refused: %(reason)s", cell=parts["cell"], reason=parts["reason"])
    said = _("The %(what)s of “%(element)s” is refused: %(reason)s", what=_checked(str(parts["what"])),
             element=parts["element"], reason=parts["reason"])
    if parts.get("script_line"):
        said += " " + _("(script line %(line)s)", line=parts["script_line"])
    return said


def _missing_process(parts: Mapping[str, Any]) -> str:
    if parts.get("call"):
        said = _("The call activity “%(call)s” calls the process “%(process)s”, which is neither deployed nor "
                 "uploaded (calledElement names the id of an executable process in a deployed or uploaded "
                 ".bpmn file).", call=parts["call"], process=parts["process"])
    else:
        said = _("The called process “%(process)s” is neither deployed nor uploaded.", process=parts["process"])
    close = parts.get("close") or []
    if close:
        said += " " + _("Did you mean %(names)s?", names=", ".join(f"“{name}”" for name in close))
    return said


def _dangling_flow(parts: Mapping[str, Any]) -> str:
    if parts.get("ref"):
        return _("The sequence flow “%(flow)s”: its %(end)s names “%(ref)s”, which is no element of %(scope)s.",
                 flow=parts["flow"], end=parts["end"], ref=parts["ref"], scope=parts["scope"])
    return _("The sequence flow “%(flow)s” has no %(end)s.", flow=parts["flow"], end=parts["end"])


def _timer(parts: Mapping[str, Any]) -> str:
    return _("The timer expression %(expression)s is refused: %(reason)s", expression=parts["expression"],
             reason=parts["reason"])


#: Each kind of refusal said from its parts.
_SAID: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "script_rule": _script_rule,
    "missing_process": _missing_process,
    "dangling_flow": _dangling_flow,
    "timer_expression": _timer,
    "timer_limit": _timer,
    "unknown_operation": lambda parts: _(
        "Unknown service operation “%(operation)s”; the known ones: %(known)s.",
        operation=parts["operation"], known=parts["known"]),
    "invalid_xml": lambda parts: _("The file is not a valid definition: %(reason)s", reason=parts["reason"]),
    "engine_refused": lambda parts: _("The engine cannot run this diagram: %(reason)s", reason=parts["reason"]),
    "no_executable_process": lambda parts: _(
        "No executable process in %(file)s: a diagram needs at least one process that is executable "
        "(isExecutable=\"true\", or no isExecutable attribute).", file=parts["file"]),
}


def deploy_message(err: ProcessdeskError) -> str:
    """``err`` (a deploy's refusal) in the page's language where the page has its words, else as
    the API says it."""
    details = err.details or {}
    element = details.get("element_name") or details.get("element_id") or ""
    if details.get("error_type") == "unreachable":
        return _("“%(element)s” cannot be reached from the start event: no sequence flow leads to it.", element=element)
    if details.get("error_type") == "dead_end":
        return _("“%(element)s” has no outgoing sequence flow: connect it to the next step or to an end event.",
                 element=element)
    message = err.message
    if isinstance(message, FormMessage) and message.kind in _SAID:
        try:
            return _SAID[message.kind](message.parts)
        except KeyError:  # a part the sentence needs is missing: the API's words rather than none
            return str(message)
    return str(message)
