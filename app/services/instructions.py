"""Task instructions (``instructionsForEndUser``): a process owner's Jinja template, rendered
with the task's data, then Markdown, then sanitised HTML (:func:`render_instructions`).

The template comes from a diagram and runs on every view of the task, so it runs in a sandbox
with limits of time, memory and size: an immutable Jinja sandbox with an allow-list of filters and
no globals; size checks before any operation that builds text or numbers (``*``, ``+``, ``~``,
``%``, padding, ``format``, ``join`` ...); a deadline and a memory check traced on the template's
own lines (``_RenderBudget``); and a thread with a deep C stack (app/engine/deep_stack.py). A
template over a limit fails like one the sandbox refuses: logged, and the reader gets a notice
instead of the instructions. Nothing here imports Flask.
"""

from __future__ import annotations

import contextvars
import html
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from functools import update_wrapper, wraps
from types import BuiltinMethodType, MethodType
from typing import Any, Final, NoReturn

# jsonschema ships no type stubs in this environment (types-jsonschema is not a dependency).
import nh3
from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.nodes import Concat
from jinja2.runtime import Context, TemplateReference, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from markdown_it import MarkdownIt
from markupsafe import Markup

from app.engine.deep_stack import call_deep

logger = logging.getLogger(__name__)


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python but never a number here.
    return isinstance(value, (int, float)) and not isinstance(value, bool)

# Filters that only transform values. Excluded on purpose: ones that can build huge strings from a
# small template (center, indent, format, wordwrap, replace), ones that reach into objects by name
# (attr, map, select/reject*attr) and markup helpers that make no sense before Markdown.
_SAFE_FILTERS: Final = frozenset(
    {
        "abs",
        "capitalize",
        "count",
        "d",
        "default",
        "dictsort",
        "first",
        "float",
        "int",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "max",
        "min",
        "reverse",
        "round",
        "sort",
        "string",
        "sum",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "wordcount",
    }
)
_MAX_SEQUENCE_PRODUCT: Final = 100_000
_MAX_EXPONENT: Final = 100
_MAX_RENDERED_CHARS: Final = 200_000
#: Longest text (or list) one operation of a template may build, and longest text a template may
#: produce before the rendered-length check: five times what may be shown, far below what hurts.
_MAX_BUILT_LENGTH: Final = 1_000_000
#: Largest integer a template may compute (about 30,000 decimal digits).
_MAX_INT_BITS: Final = 100_000
#: Time one render may take. Shipped instructions render in about a millisecond; a page view must
#: not stop the (single-threaded) worker for long.
_RENDER_SECONDS: Final = 0.5
#: Growth of the process's resident memory one render may cause (each operation is also capped).
_RENDER_MEMORY_KB: Final = 128 * 1024
#: Characters (or items) all the operations of one render may build together, freed or not: a
#: count that does not depend on the allocator (freed memory is reused without growing the
#: process), far above what instructions build (a few kilobytes).
_MAX_BUILT_TOTAL: Final = 50_000_000
_MEMORY_CHECK_SECONDS: Final = 0.01
#: The file name Jinja compiles a template from a string under (the code of its frames).
_TEMPLATE_FILENAME: Final = "<template>"
_DIGIT_RUN: Final = re.compile(r"\d+")
_STR_METHOD_TYPES: Final = (str, bytes, bytearray)


class _RenderLimitExceeded(SecurityError):
    """A template went over a limit of :func:`render_instructions` (time, memory, size)."""


def _too_big(what: str) -> NoReturn:
    raise _RenderLimitExceeded(f"{what} would exceed {_MAX_BUILT_LENGTH} characters or items")


def _rss_kb() -> float | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * _PAGE_KB
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        try:
            import resource

            return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        except ImportError:
            return None


def _page_kb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") / 1024
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 4.0


_PAGE_KB: Final = _page_kb()


class _RenderBudget:
    """Time and memory budget of one render, checked by a ``sys.settrace`` tracer on every line
    the template's own code runs (loops jump back to their first line, so an empty loop body is
    checked too); other Python code (Jinja, filters) is not traced, so it runs at full speed."""

    __slots__ = ("built", "deadline", "next_memory_check", "rss_base", "tripped")

    def __init__(self) -> None:
        now = time.monotonic()
        self.deadline = now + _RENDER_SECONDS
        self.next_memory_check = now + _MEMORY_CHECK_SECONDS
        self.rss_base = _rss_kb()
        self.tripped: str | None = None
        self.built = 0

    def trace(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == _TEMPLATE_FILENAME:
            self.check()
            return self.trace_lines
        return None

    def trace_lines(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            self.check()
        return self.trace_lines

    def check(self) -> None:
        if self.tripped is not None:
            raise _RenderLimitExceeded(self.tripped)
        now = time.monotonic()
        if now >= self.deadline:
            self.trip(f"rendering took longer than {_RENDER_SECONDS:g} s")
        if now >= self.next_memory_check:
            self.next_memory_check = now + _MEMORY_CHECK_SECONDS
            rss = _rss_kb()
            if rss is not None and self.rss_base is not None and rss - self.rss_base > _RENDER_MEMORY_KB:
                self.trip(f"rendering grew the server's memory by more than {_RENDER_MEMORY_KB // 1024} MB")

    def note_built(self, size: int) -> None:
        self.built += size
        if self.built > _MAX_BUILT_TOTAL:
            self.trip(f"rendering built more than {_MAX_BUILT_TOTAL} characters or items")

    def trip(self, reason: str) -> NoReturn:
        # Sticky: a tracer that raises is switched off, so remember why for the checks still to come.
        self.tripped = reason
        raise _RenderLimitExceeded(reason)


_CONTAINER_TYPES: Final[tuple[type, ...]] = (list, tuple, set, frozenset, type({}.keys()), type({}.values()),
                                            type({}.items()))


_ACTIVE_BUDGET: contextvars.ContextVar[_RenderBudget | None] = contextvars.ContextVar("instructions_budget",
                                                                                    default=None)


def _note_built(value: Any) -> None:
    """Count what an operation built against the render's :data:`_MAX_BUILT_TOTAL`."""
    budget = _ACTIVE_BUDGET.get()
    if budget is not None and isinstance(value, (str, bytes, bytearray, list, tuple, dict, set, frozenset)):
        budget.note_built(len(value))


def _text_size(value: Any, limit: int = _MAX_BUILT_LENGTH) -> int:
    """About ``len(str(value))`` (items of containers as their ``repr``), counted no further than
    just past ``limit`` so that sizing a huge value stays cheap."""
    total = 0
    pending = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, (bytes, bytearray)):
            total += 4 * len(item) + 3
        elif isinstance(item, bool) or item is None or isinstance(item, (float, Undefined)):
            total += 8
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            for key, sub in item.items():
                if total > limit:
                    break
                pending.append(key)
                pending.append(sub)
        elif isinstance(item, _CONTAINER_TYPES):
            sequence: Any = item
            total += 2 + 2 * len(sequence)
            for sub in sequence:
                if total > limit:
                    break
                pending.append(sub)
        else:
            total += 64  # dates, Jinja's loop and macro objects: short texts
    return total




def _check_built(value: Any, what: str) -> Any:
    if isinstance(value, (str, bytes, bytearray, list, tuple, dict, set, frozenset)) \
            and len(value) > _MAX_BUILT_LENGTH:
        _too_big(what)
    _note_built(value)
    return value


def _check_printf(template: str | bytes, values: Any) -> None:
    """``template % values``: refuse when the result could exceed :data:`_MAX_BUILT_LENGTH`."""
    args = list(values.values()) if isinstance(values, Mapping) else list(values) \
        if isinstance(values, tuple) else [values]
    text = template.decode("latin-1") if isinstance(template, (bytes, bytearray)) else template
    widest = 0
    for run in _DIGIT_RUN.findall(text):
        if len(run) > 7:
            _too_big("formatting")
        widest = max(widest, int(run))
    if "*" in text:  # width or precision taken from the values
        widest = max([widest, *(a for a in args if isinstance(a, int) and not isinstance(a, bool))])
    largest = max((_text_size(a) for a in args), default=0)
    if len(text) + text.count("%") * (widest + largest) > _MAX_BUILT_LENGTH:
        _too_big("formatting")


def _check_str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call of a ``str``/``bytes`` method whose result could exceed the size limit; the
    arguments to call it with (an iterable handed to ``join`` is read once, here)."""
    name = method.__name__
    subject = method.__self__
    if name in ("translate", "maketrans"):
        raise _RenderLimitExceeded(f"{name}() is not allowed in instructions")
    if name in ("ljust", "rjust", "center", "zfill"):
        width = args[0] if args else kwargs.get("width")
        if isinstance(width, int) and width > _MAX_BUILT_LENGTH:
            _too_big(name)
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int) and len(subject) + subject.count(b"\t" if isinstance(subject, (bytes, bytearray))
                                                                  else "\t") * max(size, 0) > _MAX_BUILT_LENGTH:
            _too_big(name)
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if isinstance(old, (str, bytes, bytearray)) and isinstance(new, (str, bytes, bytearray)) \
                and isinstance(count, int):
            found = subject.count(old) if old else len(subject) + 1
            if count >= 0:
                found = min(found, count)
            if len(subject) + found * len(new) > _MAX_BUILT_LENGTH:
                _too_big(name)
    elif name == "join" and len(args) == 1 and not kwargs:
        items = list(args[0])
        if len(subject) * max(len(items) - 1, 0) + sum(_text_size(item) for item in items) > _MAX_BUILT_LENGTH:
            _too_big(name)
        args = (items,)
    return args


class _LimitedFormatter(SandboxedFormatter):
    """``str.format`` in a template: each field's width/precision and the whole result are capped."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.built = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        widest = 0
        for run in _DIGIT_RUN.findall(format_spec):
            if len(run) > 7:
                _too_big("format")
            widest = max(widest, int(run))
        self.built += max(widest, _text_size(value))
        if self.built > _MAX_BUILT_LENGTH:
            _too_big("format")
        return super().format_field(value, format_spec)


class _InstructionsCodeGenerator(CodeGenerator):
    """Jinja's code generator, except that ``~`` goes through the environment's size check."""

    @optimizeconst
    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.concat_values((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _InstructionsEnvironment(ImmutableSandboxedEnvironment):
    """Sandbox that fails loudly on unsafe access and refuses memory bombs: repetition (``*``),
    powers (``**``), concatenation (``+``, ``~``), formatting (``%``, ``format``), the ``str``
    methods that build text (``ljust``, ``replace``, ``join``...), filters and output larger than
    :data:`_MAX_BUILT_LENGTH`. Time and process memory: see :class:`_RenderBudget`."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _InstructionsCodeGenerator

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Jinja only flags dunders that exist on the object; a missing one (``{{ d.__dict__ }}``
        # on a dict) silently falls back to item lookup. Treat every dunder as an escape attempt.
        if attribute.startswith("__"):
            raise SecurityError(f"access to attribute {attribute!r} is not allowed")
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja's default returns an Undefined that renders as "" under ChainableUndefined, which
        # would hide an escape attempt; raising makes it visible (logged + error notice).
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _is_number(right) and abs(right) > _MAX_EXPONENT:
            raise SecurityError("exponent too large")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 \
                and left.bit_length() * right > _MAX_INT_BITS:
            raise _RenderLimitExceeded("number too large")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, (str, list, tuple))
                    and isinstance(count, int)
                    and len(sequence) * count > _MAX_SEQUENCE_PRODUCT
                ):
                    raise SecurityError("repetition too large")
            if isinstance(left, int) and isinstance(right, int) \
                    and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise _RenderLimitExceeded("number too large")
        if operator == "+" and isinstance(left, (str, bytes, list, tuple)) \
                and isinstance(right, (str, bytes, list, tuple)) and len(left) + len(right) > _MAX_BUILT_LENGTH:
            _too_big("concatenation")
        if operator == "%" and isinstance(left, (str, bytes)):
            _check_printf(left, right)
        return _check_built(super().call_binop(context, operator, left, right), operator)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # Bound methods of texts (Markup's are Python methods, str's built-in ones).
        if isinstance(obj, (BuiltinMethodType, MethodType)) and isinstance(obj.__self__, _STR_METHOD_TYPES):
            args = _check_str_method(obj, args, kwargs)
        return _check_built(super().call(context, obj, *args, **kwargs), "a call")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None or isinstance(value.__self__, Markup) or not isinstance(value.__self__, str):
            return wrapped
        # As Jinja's own wrapper, with a formatter that caps what it builds.
        text: str = value.__self__
        is_format_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return str(_LimitedFormatter(self).vformat(text, args, kwargs))

        return update_wrapper(checked, value)

    def concat_values(self, values: tuple[Any, ...]) -> str:
        """``a ~ b``: the texts of the values, joined."""
        if sum(_text_size(value) for value in values) > _MAX_BUILT_LENGTH:
            _too_big("concatenation")
        return _check_built("".join(map(str, values)), "concatenation")

    @staticmethod
    def concat(pieces: Iterable[str]) -> str:  # type: ignore[override]
        """The output of a template, macro, block ``set`` or ``filter`` block, capped in length."""
        collected: list[str] = []
        total = 0
        for piece in pieces:
            total += len(piece)
            if total > _MAX_BUILT_LENGTH:
                _too_big("the output")
            collected.append(piece)
        # what the template itself wrote (its data already escaped as it was printed)
        return _AuthorText(_check_built("".join(collected), "the output"))


#: ASCII punctuation, which CommonMark lets a backslash make literal.
_MARKDOWN_PUNCTUATION: Final = re.compile(r"([!-/:-@\[-`{-~])")


def _finalize_plain(value: Any) -> Any:
    """What a value prints as in a plain-text template (a notice: :func:`render_text`)."""
    # Only data should print: None as nothing, and no reprs of template internals, methods or
    # classes (e.g. "{{ self }}" or "{{ items.append }}"), which tell a reader nothing useful.
    if value is None or isinstance(value, (TemplateReference, type)) or callable(value):
        return ""
    if not isinstance(value, str) and _text_size(value) > _MAX_BUILT_LENGTH:
        _too_big("the output")
    return value


#: How :func:`render_text` words a printed value for its reader, when its caller says (a notice's
#: ISO 8601 durations in the reader's language); a value it answers None for prints as it is.
_WORDING: contextvars.ContextVar[Callable[[str], str | None] | None] = contextvars.ContextVar("wording", default=None)


def _finalize_worded(value: Any) -> Any:
    """What a value prints as in a plain-text template: as :func:`_finalize_plain` says, a text
    then worded as :data:`_WORDING` says (a whole printed value only: never the template's own
    words, nor a duration inside somebody's sentence)."""
    value = _finalize_plain(value)
    word = _WORDING.get()
    if word is not None and isinstance(value, str):
        worded = word(value)
        if worded is not None:
            return worded
    return value


def _finalize(value: Any) -> Any:
    """What a value prints as in instructions: as in plain text, then kept from Markdown."""
    value = _finalize_plain(value)
    if isinstance(value, _AuthorText | bool | int | float):
        return value
    # A printed value is text, never Markdown: what a requester typed into a description ("#
    # Urgent", a table, [a link](http://...)) must not become a heading, a table or a link in an
    # agent's instructions. The template's own text formats, and so does what its macros and
    # ``set`` blocks write (_AuthorText); a literal printed with {{ }} is text like any value. The
    # data itself is not changed, so conditions compare what was stored ("in_progress").
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", value if isinstance(value, str) else str(value))


class _AuthorText(str):
    """Text the template wrote itself (a macro's or a ``set`` block's output): printed as written."""

    __slots__ = ()


def _checked_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose result (text, list...) may not exceed :data:`_MAX_BUILT_LENGTH`, with
    ``join``, ``sum`` and ``string`` also checked before they build anything."""

    @wraps(function)  # keeps Jinja's pass_context/pass_eval_context/pass_environment mark
    def checked(*args: Any, **kwargs: Any) -> Any:
        if name == "join":  # (eval_ctx, value, d="", attribute=None)
            items = list(args[1]) if len(args) > 1 and isinstance(args[1], Iterable) else None
            if items is not None:
                separator = args[2] if len(args) > 2 else kwargs.get("d", "")
                size = sum(_text_size(item) for item in items) + _text_size(separator) * max(len(items) - 1, 0)
                if size > _MAX_BUILT_LENGTH:
                    _too_big("join")
                args = (args[0], items, *args[2:])
        elif name == "sum":  # (environment, iterable, attribute=None, start=0)
            start = args[3] if len(args) > 3 else kwargs.get("start", 0)
            if not _is_number(start):  # summing lists or texts repeats them: quadratic
                raise _RenderLimitExceeded("sum() only adds numbers in instructions")
        elif name == "string" and args and _text_size(args[0]) > _MAX_BUILT_LENGTH:
            _too_big("string")
        return _check_built(function(*args, **kwargs), name)

    return checked


def _build_environment(*, plain: bool = False) -> _InstructionsEnvironment:
    """The sandbox for instructions, or with ``plain`` for plain text (no Markdown after it: values
    print as they are, and the text ends as its template does)."""
    env = _InstructionsEnvironment(autoescape=False, undefined=ChainableUndefined,
                                   finalize=_finalize_worded if plain else _finalize, keep_trailing_newline=plain)
    # Only task data is visible: drop range/dict/lipsum/cycler/joiner/namespace (so no template
    # can build a structure across loop iterations, such as a deeply nested tuple).
    env.globals.clear()
    env.filters = {name: _checked_filter(name, func) for name, func in env.filters.items() if name in _SAFE_FILTERS}
    return env


_ENVIRONMENT: Final = _build_environment()
#: The same sandbox and limits for plain-text templates (:func:`render_text`): no Markdown after it.
_PLAIN_ENVIRONMENT: Final = _build_environment(plain=True)
# Raw HTML off: anything tag-like (from the template or from task data) is shown as text.
_MARKDOWN: Final = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_SANITIZER: Final = nh3.Cleaner(
    tags={
        "a",
        "p",
        "br",
        "hr",
        "strong",
        "em",
        "b",
        "i",
        "s",
        "del",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    },
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
)


#: How a failed render's notice starts (rendered Markdown cannot: raw HTML is off).
_ERROR_START = '<p class="instructions-error">'


def _error_notice(text: str) -> str:
    return f"{_ERROR_START}{html.escape(text)}</p>"


def _render_limited(template: str, context: dict[str, Any], environment: _InstructionsEnvironment = _ENVIRONMENT) -> str:
    """Compile and render ``template`` under a :class:`_RenderBudget` (this thread only)."""
    compiled = environment.from_string(template)
    budget = _RenderBudget()
    token = _ACTIVE_BUDGET.set(budget)
    previous = sys.gettrace()
    sys.settrace(budget.trace)
    try:
        return compiled.render(context)
    finally:
        sys.settrace(previous)
        _ACTIVE_BUDGET.reset(token)


def render_instructions(template: str | None, task_data: Mapping[str, Any], *, translation: str | None = None) -> str:
    """Render a task's ``instructionsForEndUser`` to safe HTML; in the reader's language when
    ``translation`` (the template's translation: app/services/content_texts.py) is given, unless
    that fails to render, when the source template is rendered instead (logged).

    Steps: the text is a Jinja2 template rendered in a hardened
    :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` (autoescape off - escaping happens in the
    Markdown step) that sees only the task data's string keys: no globals, a short list of pure
    filters, unknown names (``{{ config }}``, ``{{ a.b.c }}``) render as empty, ``None``/methods/
    ``{{ self }}`` render as empty, attribute access to private or unsafe members is an error. The
    result is Markdown rendered by markdown-it-py (CommonMark + tables + strikethrough, raw HTML
    off, so ``<script>`` shows as text), then sanitised with nh3: basic formatting tags only, links
    restricted to http/https/mailto (or relative), no scripts, styles or ``on*`` attributes.

    Limits: one render may take :data:`_RENDER_SECONDS` and grow the process's memory by
    :data:`_RENDER_MEMORY_KB` (:class:`_RenderBudget`); no operation (``*``, ``+``, ``~``, ``%``,
    ``str`` methods such as ``ljust``/``replace``/``join``/``format``, filters, output) may build more
    than :data:`_MAX_BUILT_LENGTH` characters or items, nor all of them together more than
    :data:`_MAX_BUILT_TOTAL`. A template over a limit fails like one the
    sandbox refuses. The render runs on a deep-stack thread (:func:`app.engine.deep_stack.call_deep`).

    Never raises for a bad template: syntax errors, sandbox ``SecurityError`` (limits included) and
    runtime errors are logged (warning) and an escaped ``<p class="instructions-error">`` notice is returned instead,
    without any data from the failed render. ``None`` or ``""`` gives ``""``.
    """
    if translation:
        shown = render_instructions(translation, task_data)
        if not shown.startswith(_ERROR_START):
            return shown
        logger.warning("translated instructions failed to render; the source text is shown")
    if not template:
        return ""
    context = {key: value for key, value in task_data.items() if isinstance(key, str)}
    try:
        # On a thread with a deep C stack: what a template can reach (task data included) cannot
        # overflow the server's stack, whatever C recursion hashing or printing it takes.
        text = call_deep(_render_limited, template, context)
    except TemplateSyntaxError as exc:
        logger.warning("instructions template syntax error on line %s: %s", exc.lineno, exc.message)
        return _error_notice(
            f"The instructions could not be displayed: template syntax error on line {exc.lineno}: {exc.message}"
        )
    except SecurityError as exc:
        logger.warning("instructions template blocked by the sandbox: %s", exc)
        return _error_notice(
            "The instructions could not be displayed: the template uses an operation that is not allowed."
        )
    except (
        TemplateError,
        ArithmeticError,
        LookupError,
        TypeError,
        ValueError,
        AttributeError,
        RecursionError,
        MemoryError,
    ) as exc:
        # Instructions are advisory: a broken template must not make the task unusable.
        logger.warning("instructions template failed to render: %s: %s", type(exc).__name__, exc)
        return _error_notice("The instructions could not be displayed: the template failed to render.")
    if len(text) > _MAX_RENDERED_CHARS:
        logger.warning("instructions template rendered %d characters; refused", len(text))
        return _error_notice("The instructions could not be displayed: they are too long.")
    return _SANITIZER.clean(_MARKDOWN.render(text))


class TemplateFailed(ValueError):
    """A plain-text template (:func:`render_text`) that cannot be rendered; the message says why,
    without any of the data."""


def template_problem(template: str) -> str | None:
    """Why ``template`` cannot be a template of :func:`render_text` (its syntax), else None."""
    try:
        call_deep(_PLAIN_ENVIRONMENT.parse, template)
    except TemplateSyntaxError as exc:
        return f"template syntax error on line {exc.lineno}: {exc.message}"
    except (RecursionError, MemoryError):
        return "the template is nested too deeply"
    return None


def render_text(template: str, data: Mapping[str, Any], *, word: Callable[[str], str | None] | None = None) -> str:
    """``template`` (a Jinja template, as instructions are: the same sandbox, limits and deep-stack
    thread, and the data's string keys only) filled in with ``data``, as plain text: no Markdown,
    values printed as they are (None as nothing), but for those ``word`` words (a text printed by
    ``{{ }}`` for which it answers a text: a notice's durations in its reader's language; the data
    itself is unchanged, so conditions compare what was stored). For a notice's subject and body.

    Raises TemplateFailed for a syntax error, an operation the sandbox refuses (a limit
    included), a runtime error, or a text longer than instructions may be.
    """
    context = {key: value for key, value in data.items() if isinstance(key, str)}
    wording = _WORDING.set(word)
    try:
        text = call_deep(_render_limited, template, context, _PLAIN_ENVIRONMENT)
    except TemplateSyntaxError as exc:
        raise TemplateFailed(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except SecurityError:
        raise TemplateFailed("the template uses an operation that is not allowed") from None
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError, AttributeError, RecursionError,
            MemoryError) as exc:
        raise TemplateFailed(f"the template failed to render: {type(exc).__name__}") from None
    finally:
        _WORDING.reset(wording)
    if len(text) > _MAX_RENDERED_CHARS:
        raise TemplateFailed("the text is too long")
    return str(text)
