"""Restricted Python for everything SpiffWorkflow evaluates: scripts, pre/post scripts, gateway
conditions, timer expressions, DMN cells, message payloads and multi-instance expressions.

SpiffWorkflow's own ``TaskDataEnvironment`` runs plain ``eval``/``exec`` with the full builtins, so a
diagram author owns the server.  :class:`RestrictedEnvironment` replaces it.  It keeps the same
semantics (task data visible as names; new or changed top-level variables of a script land in the
task data; helpers and functions are stripped afterwards; task data that would shadow a helper is a
``ValueError``), but compiles with RestrictedPython plus our own AST rules and runs with guards.

Public API
----------
* :func:`check_source` - deploy-time check; raises :class:`ScriptRuleViolation` with the line.
* :class:`RestrictedEnvironment` / :func:`make_script_engine` - run-time environment / engine.
* :class:`ScriptIdentity` and :func:`acting_as` - who is acting, for ``get_current_user()`` and
  ``get_process_initiator_user()``.
* :class:`ScriptLimitExceeded` - a ``BaseException``: a script ran out of time or memory.

What the rules block, and how
-----------------------------
Compile time (``ScriptRuleViolation`` with line and column, also from :func:`check_source`):

* every name or attribute starting with ``_`` (so ``__class__``, ``__globals__``, ``__builtins__``,
  ``__import__``, ``__subclasses__`` ...), RestrictedPython's frame/generator/traceback attribute
  list (``gi_frame``, ``f_globals``, ``tb_frame`` ...) plus ``mro`` and the old ``func_*`` names;
* ``import``/``from ... import``, class definitions, decorators, ``yield``, ``async``, ``nonlocal``,
  ``match``, ``except*``, annotated assignments, assigning or deleting attributes, and names that
  only make sense for escaping (``eval``, ``exec``, ``compile``, ``globals``, ``locals``, ``vars``,
  ``getattr``/``setattr``/``delattr``/``hasattr``, ``open``, ``breakpoint``, ``help``, ``super``,
  ``memoryview``, ``bytearray``, ``dir``, ``iter`` ...);
* syntax errors (reported as a rule violation with their line, never as a bare ``SyntaxError``).

Run time:

* builtins are an allow-list (no ``type``, ``object``, ``open``, ``__import__``, ``getattr`` ...),
  so names like ``type`` or ``id`` stay usable as task-data fields but are no tool for escaping;
* every attribute read goes through ``_getattr_``: no ``_`` names, no inspection attributes, no
  module objects, and the size-sensitive / format methods of ``str``, ``bytes``, ``int`` and
  ``list`` come back wrapped (``str.format``/``format_map`` run through a formatter that refuses
  ``{0.attr}``/``{0[key]}`` fields, which is the format-string route to dunders);
* writes (``x[k] = v``, ``del x[k]``, ``d[k] += 1``) are allowed on dicts and lists only;
* helpers are classes from ``datetime`` and small namespace objects whose attributes are plain
  functions; no module object is ever handed to a script.

Storable results: a variable a script sets must be something the instance can save
(app/engine/storable.py: no integer of more than 4,000 digits, no nesting past 100 levels, no
self-containing list, text dict keys, known types only); otherwise the script fails with
``UnstorableData`` and the variable keeps its old value, so the save after the step succeeds.

Bounded time: the AST rewrite puts a budget check at the top of every ``while`` body, every function
body and every lambda, and ``_getiter_`` counts every iteration of ``for`` loops and comprehensions.
The clock is read adaptively (every 1..1024 checks, aiming at about one read per millisecond).  The
deadline lives in a per-call budget object, so concurrent threads never share it.  Once tripped,
every later check raises again and the call raises even if the script swallowed the exception with a
bare ``except:``.

Bounded memory: ``+``, ``*``, ``**``, ``<<`` and ``%`` are rewritten into guard calls that refuse
results over :data:`MAX_SEQUENCE_LENGTH` elements or :data:`MAX_INT_BITS` bits before allocating;
``range`` is capped at :data:`MAX_RANGE_LENGTH`; padding/``replace``/``join``/``translate``/
``expandtabs``/``to_bytes``/``extend`` are checked; f-strings, ``format()``, ``%``-formatting,
``str()``/``repr()``/``ascii()``, ``json.dumps`` and ``str.format`` estimate the text they will
produce (aliasing such as ``[s] * 10**7`` is counted as the expansion it is) and refuse anything over
:data:`MAX_TEXT_LENGTH` characters or a width/precision over :data:`MAX_FORMAT_WIDTH`.  In addition
the budget compares ``getrusage(RUSAGE_SELF).ru_maxrss`` with a baseline taken at the first check of
the call, at least every 10 ms of script time and after every 16 MiB of guarded allocations, and
raises ``ScriptLimitExceeded(kind='memory')`` past ``memory_limit_mb``.

Regular expressions: ``re_match``/``re_search``/``re_sub`` take patterns in Python ``re`` syntax
(checked with ``re``, so what ``re`` refuses raises ``re.error`` as before) and match with the
``regex`` package, which releases the GIL while matching and accepts a timeout.  The timeout is what
is left of the script's time budget; a match that runs out ends the script like the time limit does
(``ScriptLimitExceeded(kind='time')``, sticky like every breach).  Outside a budgeted call the
helpers allow 2 s.  An expression that names a ``re_*`` helper is always run budgeted, even without
loops (a gateway condition or DMN cell is often a single call).  When a pattern is first compiled
(and, for form patterns, at deploy time) :func:`backtracking_problem` refuses the classic
exponential shapes: nested unbounded quantifiers (``(a+)+``) and alternations inside an unbounded
repeat whose alternatives can match the same text (``(a|a)*``, ``(\\d|\\d\\d)*``, ``(a|ab)*c``).
``regex``-only syntax that ``re`` reads differently is neutralised: a ``{`` that is no repeat for
``re`` is escaped (``regex`` would read ``a{e<=1}`` as fuzzy matching), a POSIX class in a set
(``[[:digit:]]``) raises ``re.error``.  Compiled patterns are cached (256).

Remaining gaps (honest list; run engine steps in a worker process with rlimits as the backstop)
--------------------------------------------------------------------------------------------
* Cooperative limits only see Python-level progress.  One long C-level operation cannot be
  interrupted: ``==``/``hash``/``sorted`` over structures built by heavy sharing (``t = (t, t)``
  sixty times makes a comparison take 2**60 steps) and big C loops such as
  ``sorted(range(10**7))`` (bounded, ~seconds) still run to their end.
* Regular-expression backtracking is no longer unbounded but the bound is ``regex``'s: its timeout
  counts *process CPU time* (all threads), not wall-clock time, so on a CPU-starved machine a
  catastrophic match can take a few times the remaining budget in wall time (the GIL is released
  meanwhile, so other requests keep being served).  Polynomial shapes the static check lets
  through for scripts (``^(.*?,){11}P``, ``(?:a{1,2}){1,60}c``) simply run into that timeout.
* ``regex`` is ``re``-compatible in syntax, not in every character class: its ``\\w``/``\\b``
  follow Unicode's word definition (combining marks are word characters; superscript digits and
  vulgar fractions such as ``²``/``½`` are not, unlike ``re``), its ``\\s`` leaves out
  ``\\x1c``-``\\x1f`` and its ``\\d`` uses its own Unicode tables (about 110 recent digits differ).
  ASCII and precomposed (NFC) text match as with ``re``.
* Hashing a tuple nested ~10**5 levels deep (``t = (t,)`` in a loop, then ``{t}``)
  recurses in C and overflows a normal 8 MiB C stack (SIGSEGV, the whole process dies) on CPython
  3.11.  The engine contains it: ``WorkflowRun`` runs every engine step through
  :func:`app.engine.deep_stack.call_deep`, on a thread with a stack of at least 1 GiB (four times
  the script memory limit), and the memory limit stops a script before it can build a
  structure that deep.  Code that calls :class:`RestrictedEnvironment` directly, outside the
  engine, must do the same (``call_deep``); nothing in this module prevents the crash by itself.
* ``ru_maxrss`` is the process *peak*: if the process already peaked higher before the script, the
  script may use up to that headroom unnoticed; in a threaded server, allocations by other threads
  during the call count against the script (false positives are possible, escapes are not).
  ``resource`` is missing on Windows: there only the guards apply.
* Memory is checked between operations.  A single C-level operation may still allocate a bounded
  multiple of what the guards allow before the next check trips: ``list(range(10**7))`` or
  ``a, *b = range(10**7)`` (~400 MB), ``set(range(10**7))``/``dict.fromkeys(range(10**7))``
  (~0.5-1 GB), ``s.split()`` of a 10**7-character string (~500 MB).
* Integers may still grow one bit per ``+``/``-`` operation (only ``*``, ``**`` and ``<<`` check
  integer size); the time limit keeps that far below a size where arithmetic becomes slow.
  ``int(text)``/``str(int)`` rely on CPython's default 4300-digit conversion limit.
* Task data values are trusted to be data (JSON); a callable smuggled into task data by Python code
  outside the sandbox would be callable from scripts.
"""

from __future__ import annotations

import ast
import builtins
import contextvars
import copy
import functools
import importlib
import json as _json
import keyword
import logging
import math
import operator
import re
import reprlib
import string
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from types import CodeType, ModuleType
from typing import Any, NamedTuple, NoReturn, cast

import regex as _regex_module
from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer, copy_locations
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from . import storable

try:  # POSIX only; without it the memory budget relies on the allocation guards alone.
    import resource as _resource
except ImportError:  # pragma: no cover - Windows
    _resource = None  # type: ignore[assignment]

__all__ = [
    "MAX_FORMAT_WIDTH",
    "MAX_INT_BITS",
    "MAX_RANGE_LENGTH",
    "MAX_SEQUENCE_LENGTH",
    "MAX_TEXT_LENGTH",
    "RegexMatch",
    "RestrictedEnvironment",
    "ScriptIdentity",
    "ScriptLimitExceeded",
    "ScriptRuleViolation",
    "acting_as",
    "backtracking_problem",
    "check_source",
    "make_script_engine",
]

logger = logging.getLogger(__name__)

# -- limits ---------------------------------------------------------------------------------------

#: Largest list/tuple/str/bytes a single ``+``, ``*``, ``join`` ... may produce (elements).
MAX_SEQUENCE_LENGTH = 10_000_000
#: Largest text a conversion (``str()``, f-string, ``format``, ``%``, ``json.dumps``) may produce.
MAX_TEXT_LENGTH = 10_000_000
#: Largest width or precision in a format spec / padding method.
MAX_FORMAT_WIDTH = 10_000_000
#: Longest ``range()``.
MAX_RANGE_LENGTH = 10_000_000
#: Largest integer result of ``*``, ``**`` and ``<<`` (~150,000 decimal digits).  Stricter than
#: "10**6 digits" on purpose: CPython's int division is quadratic, and at this size ``a // b`` still
#: takes well under 0.1 s, while at 10**6 digits one division takes tens of seconds in C.
MAX_INT_BITS = 500_000
#: Three-argument ``pow`` is modular exponentiation; bound exponent and modulus (RSA-8192 sized).
MAX_POW_MOD_BITS = 8_192
#: Longest script/expression source accepted.
MAX_SOURCE_LENGTH = 200_000
#: Longest regular expression pattern / subject for the ``re_*`` helpers.
MAX_REGEX_PATTERN = 1_000
MAX_REGEX_INPUT = 1_000_000
#: Longest format spec (``f"{x:<spec>}"``); a spec is a few characters in any real use.
MAX_FORMAT_SPEC = 1_000

_COMPILE_CACHE_SIZE = 2_048
_ALLOC_CHECK_BYTES = 16 * 1024 * 1024  # guarded allocations between two rusage reads
_MEMORY_CHECK_SECONDS = 0.01  # script time between two rusage reads
_LARGE_ALLOCATION = 1_000_000  # bytes; smaller results are not worth a contextvar lookup
_MAX_CHECK_INTERVAL = 1_024  # budget checks between two clock reads, at most
_RUSAGE_UNIT_KB = 1 / 1024 if sys.platform == "darwin" else 1  # macOS reports bytes, Linux KiB


# -- exceptions -----------------------------------------------------------------------------------


class ScriptRuleViolation(Exception):
    """Source breaks the script rules or does not compile.

    Attributes: ``message`` (str), ``line`` (int | None: 1-based line in the source) and ``column``
    (int | None: 1-based column).  ``str(exc)`` and ``exc.args[0]`` are the message alone, which is
    what SpiffWorkflow copies into ``WorkflowTaskException``; the line reaches SpiffWorkflow through
    the traceback (see :meth:`RestrictedEnvironment.execute`).
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.line, self.column))


class ScriptLimitExceeded(BaseException):
    """A script ran past its time or memory budget.

    A ``BaseException`` so that ``except Exception:`` inside a script (or SpiffWorkflow's own
    ``except Exception`` wrappers) cannot swallow it: it propagates out of ``do_engine_steps``
    unwrapped.  Attributes: ``kind`` (``'time'`` or ``'memory'``), ``limit`` (float: seconds for
    ``'time'``; megabytes for the rusage check, or the element/character/bit bound a guard refused
    for ``'memory'`` - the message names the unit) and ``message``.
    """

    def __init__(self, kind: str, limit: float, message: str | None = None) -> None:
        self.kind = kind
        self.limit = float(limit)
        self.message = message or f"script exceeded its {kind} limit ({limit:g})"
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.limit, self.message))


# -- identity -------------------------------------------------------------------------------------


@dataclass
class ScriptIdentity:
    """Who is acting, for the SpiffArena-compatible helpers.

    ``current_user`` / ``initiator`` are plain dicts such as
    ``{"id": 3, "username": "alice", "email": ..., "display_name": ...}`` or ``None``, or
    functions returning one: called only when a script asks (most steps never do).
    """

    current_user: dict[str, Any] | Callable[[], dict[str, Any] | None] | None = None
    initiator: dict[str, Any] | Callable[[], dict[str, Any] | None] | None = None

    def resolved(self, which: str) -> dict[str, Any] | None:
        value = getattr(self, which)
        return value() if callable(value) else value


_IDENTITY: contextvars.ContextVar[ScriptIdentity | None] = contextvars.ContextVar(
    "script_identity", default=None
)


@contextmanager
def acting_as(identity: ScriptIdentity | None) -> Iterator[ScriptIdentity | None]:
    """Make ``identity`` visible to ``get_current_user()``/``get_process_initiator_user()``.

    A ``contextvars.ContextVar``, so each thread (and each asyncio task) sees its own identity;
    wrap the ``do_engine_steps``/``run`` call in the same thread.  Raises nothing itself.
    """
    token = _IDENTITY.set(identity)
    try:
        yield identity
    finally:
        _IDENTITY.reset(token)


# -- per-call budget ------------------------------------------------------------------------------


def _rss_kb() -> float | None:
    if _resource is None:  # pragma: no cover - Windows
        return None
    return _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss * _RUSAGE_UNIT_KB


class _Budget:
    """Time and memory budget of one evaluate/execute call.

    ``tick`` is called by injected code at every loop iteration and function call; it must stay
    cheap, so the clock is read only every ``interval`` ticks and the interval adapts so that a read
    happens about once per millisecond whatever a tick costs.
    """

    __slots__ = (
        "alloc_credit",
        "countdown",
        "deadline",
        "interval",
        "last_clock",
        "last_memory_check",
        "memory_limit_kb",
        "memory_limit_mb",
        "rss_base",
        "time_limit",
        "tripped",
    )

    def __init__(self, time_limit: float, memory_limit_mb: int) -> None:
        now = time.monotonic()
        self.time_limit = time_limit
        self.deadline = now + time_limit
        self.memory_limit_mb = memory_limit_mb
        self.memory_limit_kb = memory_limit_mb * 1024
        self.rss_base: float | None = None
        self.countdown = 1  # the first tick reads the clock and takes the memory baseline
        self.interval = 1
        self.last_clock = now
        self.last_memory_check = -1.0
        self.alloc_credit = 0
        self.tripped: tuple[str, float, str] | None = None

    def exception(self) -> ScriptLimitExceeded:
        assert self.tripped is not None
        return ScriptLimitExceeded(*self.tripped)

    def trip(self, kind: str, limit: float, message: str) -> NoReturn:
        # Remember the breach: every later check raises again, so `except:` cannot keep a loop alive.
        if self.tripped is None:
            self.tripped = (kind, limit, message)
        raise self.exception()

    def tick(self) -> None:
        if self.tripped is not None:
            raise self.exception()
        self.countdown -= 1
        if self.countdown <= 0:
            self._slow_check()

    def getiter(self, ob: Any) -> Iterator[Any]:
        # iter() eagerly so "int is not iterable" is raised at the loop, as without the sandbox.
        return self._counted(iter(ob))

    def _counted(self, it: Iterator[Any]) -> Iterator[Any]:
        for item in it:
            if self.tripped is not None:
                raise self.exception()
            self.countdown -= 1
            if self.countdown <= 0:
                self._slow_check()
            yield item

    def _slow_check(self) -> None:
        now = time.monotonic()
        if now >= self.deadline:
            self.trip("time", self.time_limit, f"script exceeded its time limit of {self.time_limit:g} s")
        elapsed = now - self.last_clock
        self.last_clock = now
        if elapsed < 0.0005:
            if self.interval < _MAX_CHECK_INTERVAL:
                self.interval *= 2
        elif elapsed > 0.002:
            self.interval = max(1, self.interval // 8)
        self.countdown = self.interval
        if now - self.last_memory_check >= _MEMORY_CHECK_SECONDS:
            self.check_memory(now)

    def check_memory(self, now: float) -> None:
        self.last_memory_check = now
        rss = _rss_kb()
        if rss is None:  # pragma: no cover - Windows
            return
        if self.rss_base is None:
            self.rss_base = rss
        elif rss - self.rss_base > self.memory_limit_kb:
            self.trip(
                "memory",
                self.memory_limit_mb,
                f"script grew process memory by more than {self.memory_limit_mb} MB",
            )

    def note_allocation(self, nbytes: int) -> None:
        # Called by guards *before* a large allocation: take the baseline first, then re-read
        # rusage once enough has been allocated since the last read (it sees earlier allocations).
        if self.rss_base is None:
            self.check_memory(time.monotonic())
        self.alloc_credit += nbytes
        if self.alloc_credit >= _ALLOC_CHECK_BYTES:
            self.alloc_credit = 0
            self.check_memory(time.monotonic())


_ACTIVE_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "script_budget", default=None
)


def _refuse(limit: float, message: str) -> NoReturn:
    """A guard refuses an allocation: memory limit breach, sticky for the running call."""
    budget = _ACTIVE_BUDGET.get()
    if budget is not None:
        budget.trip("memory", limit, message)
    raise ScriptLimitExceeded("memory", limit, message)


def _note_allocation(nbytes: int) -> None:
    if nbytes >= _LARGE_ALLOCATION:
        budget = _ACTIVE_BUDGET.get()
        if budget is not None:
            budget.note_allocation(nbytes)


def _tick_active() -> None:
    """Budget check for loops inside helpers (they run in Python but are not rewritten)."""
    budget = _ACTIVE_BUDGET.get()
    if budget is not None:
        budget.tick()


def _no_budget() -> None:
    """Stand-in for ``_budget_`` when no budget is active (never reached by compiled code)."""


# -- text size estimation -------------------------------------------------------------------------


class _EstimateExceeded(Exception):
    pass


_VIEW_TYPES: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
_CONTAINER_TYPES: tuple[type, ...] = (list, tuple, set, frozenset, *_VIEW_TYPES)


class _TextEstimate:
    """Upper-bound-ish estimate of ``len(repr(obj))`` / ``len(json.dumps(obj))``.

    Counts every occurrence of a shared object (that is what the output will contain), stops as
    soon as the limit is passed, stops at cycles (repr prints ``[...]``) and ticks the budget.
    """

    __slots__ = ("indent", "limit", "path", "total", "visits")

    def __init__(self, limit: int, indent: int) -> None:
        self.limit = limit
        self.indent = indent
        self.total = 0
        self.visits = 0
        self.path: set[int] = set()

    def add(self, n: int) -> None:
        self.total += n
        if self.total > self.limit:
            raise _EstimateExceeded

    def walk(self, ob: Any, depth: int) -> None:
        self.visits += 1
        if not self.visits & 0xFFF:
            _tick_active()
        kind = type(ob)
        if kind is str or isinstance(ob, str):
            n = len(ob)
            # repr/json escape non-printable or non-ASCII text, up to 12 characters per character
            self.add(n + 2 if ob.isascii() and ob.isprintable() else 12 * n + 2)
        elif kind is int or kind is bool:
            self.add(ob.bit_length() // 3 + 2)
        elif kind is float or ob is None:
            self.add(25)
        elif isinstance(ob, (bytes, bytearray)):
            self.add(4 * len(ob) + 3)
        elif isinstance(ob, dict):
            self._walk_items(ob, depth, ((k, v) for k, v in ob.items()))
        elif isinstance(ob, _CONTAINER_TYPES):
            self._walk_items(ob, depth, ((item, None) for item in cast(Iterable[Any], ob)))
        elif isinstance(ob, BaseException):
            self._walk_items(ob, depth, ((arg, None) for arg in ob.args))
        else:
            self.add(100)  # datetimes, ranges, functions ...: short reprs

    def _walk_items(self, ob: Any, depth: int, items: Iterator[tuple[Any, Any]]) -> None:
        key = id(ob)
        if key in self.path:
            self.add(5)
            return
        self.path.add(key)
        self.add(2)
        per_item = 2 + (self.indent * (depth + 1) + 1 if self.indent else 0)
        for first, second in items:
            self.add(per_item)
            self.walk(first, depth + 1)
            if second is not None or isinstance(ob, dict):
                self.walk(second, depth + 1)
        self.path.discard(key)


def _text_estimate(ob: Any, limit: int = MAX_TEXT_LENGTH, indent: int = 0) -> int:
    """Estimated text length of ``ob``, or ``limit + 1`` as soon as it is known to be larger."""
    est = _TextEstimate(limit, indent)
    try:
        est.walk(ob, 0)
    except _EstimateExceeded:
        return limit + 1
    return est.total


_SMALL_REPR_TYPES = frozenset({str, int, float, bool, complex, type(None), date, datetime, timedelta, timezone})


def _check_text_size(ob: Any, what: str) -> None:
    """Refuse converting ``ob`` to text when the result would pass :data:`MAX_TEXT_LENGTH`."""
    if type(ob) in _SMALL_REPR_TYPES:
        return
    size = _text_estimate(ob)
    if size > MAX_TEXT_LENGTH:
        _refuse(MAX_TEXT_LENGTH, f"{what} would produce more than {MAX_TEXT_LENGTH} characters")
    _note_allocation(4 * size)


# -- arithmetic and sequence guards ---------------------------------------------------------------

_SEQUENCE_TYPES = (str, bytes, bytearray, list, tuple)


def _item_bytes(seq: Any) -> int:
    return 8 if isinstance(seq, (list, tuple)) else 4


def _check_int_bits(bits: int | float, op: str) -> None:
    if bits > MAX_INT_BITS:
        _refuse(MAX_INT_BITS, f"integer result of '{op}' would have more than {MAX_INT_BITS} bits")


def _check_sequence_length(length: int, op: str, seq: Any) -> None:
    if length > MAX_SEQUENCE_LENGTH:
        _refuse(
            MAX_SEQUENCE_LENGTH,
            f"result of '{op}' would have {length} elements (limit {MAX_SEQUENCE_LENGTH})",
        )
    _note_allocation(length * _item_bytes(seq))


def _check_mul(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int):
        _check_int_bits(a.bit_length() + b.bit_length(), "*")
    elif isinstance(b, int) and isinstance(a, _SEQUENCE_TYPES):
        _check_sequence_length(len(a) * b, "*", a)
    elif isinstance(a, int) and isinstance(b, _SEQUENCE_TYPES):
        _check_sequence_length(len(b) * a, "*", b)


def _check_add(a: Any, b: Any) -> None:
    if isinstance(a, _SEQUENCE_TYPES):
        try:
            extra = len(b)
        except TypeError:  # not sized: the operation itself raises (or iterates a generator)
            return
        _check_sequence_length(len(a) + extra, "+", a)


def _guarded_add(a: Any, b: Any) -> Any:
    kind = type(a)
    if kind is int or kind is float:  # the common case first, without further checks
        return a + b
    _check_add(a, b)
    return a + b


def _guarded_mul(a: Any, b: Any) -> Any:
    if type(a) is float or type(b) is float:
        return a * b
    _check_mul(a, b)
    return a * b


def _guarded_pow(a: Any, b: Any, mod: Any = None) -> Any:
    if mod is not None:
        if isinstance(b, int) and isinstance(mod, int):
            if b.bit_length() > MAX_POW_MOD_BITS or mod.bit_length() > MAX_POW_MOD_BITS:
                _refuse(MAX_POW_MOD_BITS, f"pow() with modulus allows at most {MAX_POW_MOD_BITS}-bit operands")
        return builtins.pow(a, b, mod)
    if isinstance(a, int) and isinstance(b, int) and b > 0:
        magnitude = abs(a)
        if magnitude > 1:
            # result bits = b * log2(|a|); test b first so the float product cannot overflow
            if b > MAX_INT_BITS or b * math.log2(magnitude) > MAX_INT_BITS:
                _check_int_bits(MAX_INT_BITS + 1, "**")
    return a**b


def _guarded_lshift(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a and b > 0:
        if b > MAX_INT_BITS or a.bit_length() + b > MAX_INT_BITS:
            _check_int_bits(MAX_INT_BITS + 1, "<<")
    return a << b


_PRINTF_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<conv>.)?",
    re.S,
)


def _check_printf(fmt: str | bytes, values: Any) -> None:
    """Estimate the result of ``fmt % values`` and refuse it if too large."""
    text = fmt if isinstance(fmt, str) else bytes(fmt).decode("latin-1")
    if "%" not in text:
        return
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else None
    total = len(text)
    index = 0
    for match in _PRINTF_SPEC.finditer(text):
        conv = match.group("conv")
        if conv is None or conv == "%":
            continue
        for part in ("width", "prec"):
            value = match.group(part)
            if value == "*":
                star = positional[index] if index < len(positional) else 0
                index += 1
                if isinstance(star, int):
                    if abs(star) > MAX_FORMAT_WIDTH:
                        _refuse(MAX_FORMAT_WIDTH, f"format width {star} is larger than {MAX_FORMAT_WIDTH}")
                    total += abs(star)
            elif value:
                width = int(value) if len(value) <= 9 else MAX_FORMAT_WIDTH + 1
                if width > MAX_FORMAT_WIDTH:
                    _refuse(MAX_FORMAT_WIDTH, f"format width {value} is larger than {MAX_FORMAT_WIDTH}")
                total += width
        key = match.group("key")
        if key is not None and mapping is not None:
            try:
                argument = mapping[key]
            except Exception:  # the real operation reports the missing key
                return
        else:
            argument = positional[index] if index < len(positional) else None
            index += 1
        total += _text_estimate(argument, MAX_TEXT_LENGTH - total) if conv in "rsab" else 64
        if total > MAX_TEXT_LENGTH:
            _refuse(MAX_TEXT_LENGTH, f"'%' formatting would produce more than {MAX_TEXT_LENGTH} characters")
    _note_allocation(4 * total)


def _guarded_mod(a: Any, b: Any) -> Any:
    kind = type(a)
    if kind is int or kind is float:
        return a % b
    if isinstance(a, (str, bytes)):
        _check_printf(a, b)
    return a % b


_INPLACE_PLAIN: dict[str, Callable[[Any, Any], Any]] = {
    "-=": operator.isub,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    ">>=": operator.irshift,
    "|=": operator.ior,
    "^=": operator.ixor,
    "&=": operator.iand,
    "@=": operator.imatmul,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    """``x op= y`` for names (RestrictedPython rewrites ``n += 1`` into ``n = _inplacevar_(...)``).

    Uses the in-place operators so ``lst += [1]`` still mutates the list, after the same size checks
    as the binary operators.
    """
    if op == "+=":
        if type(x) is not int:
            _check_add(x, y)
        return operator.iadd(x, y)
    if op == "*=":
        _check_mul(x, y)
        return operator.imul(x, y)
    if op == "**=":
        return _guarded_pow(x, y)
    if op == "<<=":
        return _guarded_lshift(x, y)
    if op == "%=":
        return _guarded_mod(x, y)
    plain = _INPLACE_PLAIN.get(op)
    if plain is None:
        raise ScriptRuleViolation(f"unsupported augmented assignment '{op}'")
    return plain(x, y)


def _guarded_range(*args: Any) -> range:
    result = range(*args)
    try:
        length = len(result)
    except OverflowError:
        length = MAX_RANGE_LENGTH + 1
    if length > MAX_RANGE_LENGTH:
        _refuse(MAX_RANGE_LENGTH, f"range() may have at most {MAX_RANGE_LENGTH} elements")
    return result


def _guarded_sum(iterable: Iterable[Any], /, start: Any = 0) -> Any:
    # Numbers sum in C.  Anything else (lists, tuples, timedeltas) goes through the guarded `+`
    # one item at a time: `sum([big] * n, [])` is refused instead of growing quadratically in C.
    if type(start) in (int, float, bool, complex):
        return builtins.sum(iterable, start)
    total = start
    owned = False
    for count, item in enumerate(iterable):
        if not count & 0x3F:
            _tick_active()
        if owned and type(total) is list and type(item) is list:
            _check_sequence_length(len(total) + len(item), "sum", total)
            total.extend(item)
        else:
            total = _guarded_add(total, item)
            owned = True
    return total


# -- text conversion guards -----------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"\d+")


def _check_format_spec(spec: str) -> None:
    if len(spec) > MAX_FORMAT_SPEC:
        _refuse(MAX_FORMAT_SPEC, f"format spec longer than {MAX_FORMAT_SPEC} characters")
    # Width and precision are the only numbers that make output large; fill characters can not be
    # digits next to them, so checking every digit run is exact for standard specs and harmless
    # for strftime specs of dates.
    for run in _DIGIT_RUN.findall(spec):
        width = int(run) if len(run) <= 9 else MAX_FORMAT_WIDTH + 1
        if width > MAX_FORMAT_WIDTH:
            _refuse(MAX_FORMAT_WIDTH, f"format width or precision {run} is larger than {MAX_FORMAT_WIDTH}")
        _note_allocation(4 * width)


def _guarded_format(value: Any, format_spec: str = "") -> str:
    """``format()`` for scripts: bounded widths and bounded text."""
    if not isinstance(format_spec, str):
        raise TypeError("format() argument 2 must be str")
    if format_spec:
        _check_format_spec(format_spec)
    _check_text_size(value, "format()")
    return builtins.format(value, format_spec)


def _checked_str(value: Any) -> str:
    if type(value) is str:
        return value
    _check_text_size(value, "str()")
    return builtins.str(value)


def _guarded_repr(value: Any) -> str:
    _check_text_size(value, "repr()")
    return builtins.repr(value)


def _guarded_ascii(value: Any) -> str:
    _check_text_size(value, "ascii()")
    return builtins.ascii(value)


_CONVERSIONS: dict[int, Callable[[Any], str]] = {115: _checked_str, 114: _guarded_repr, 97: _guarded_ascii}


def _format_value(value: Any, conversion: int, format_spec: str) -> str:
    """One ``{...}`` of an f-string: conversion (``!s``/``!r``/``!a``), then the guarded format."""
    convert = _CONVERSIONS.get(conversion)
    if convert is not None:
        value = convert(value)
    return _guarded_format(value, format_spec)


def _join_fstring(*parts: str) -> str:
    """An f-string: the pieces are bounded one by one, and their sum is bounded here."""
    total = builtins.sum(map(len, parts))
    if total > MAX_TEXT_LENGTH:
        _refuse(MAX_TEXT_LENGTH, f"f-string would produce more than {MAX_TEXT_LENGTH} characters")
    return "".join(parts)


class _StrMeta(type):
    """Makes ``isinstance(x, str)`` work although ``str`` in scripts is the guarded subclass."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, builtins.str)

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return issubclass(subclass, builtins.str)


class _SafeStr(builtins.str, metaclass=_StrMeta):
    """``str`` inside scripts: ``str(x)`` refuses text over :data:`MAX_TEXT_LENGTH`.

    Constructing returns a plain ``str``; class attributes (``str.upper``, ``str.maketrans``) are
    the real ones, and ``isinstance(x, str)`` is true for every real string.
    """

    def __new__(cls, object: Any = "", encoding: str | None = None, errors: str | None = None) -> Any:  # noqa: A002
        if encoding is None and errors is None:
            return _checked_str(object)
        return builtins.str(object, encoding or "utf-8", errors or "strict")


class _SafeFormatter(string.Formatter):
    """``str.format``/``format_map`` without attribute or item lookups in fields.

    ``"{0.__class__}".format(x)`` / ``"{0[key]}"`` are the classic way round a getattr guard (the C
    implementation looks the attribute up itself), so fields may only name an argument.
    """

    def __init__(self) -> None:
        super().__init__()
        self.produced = 0

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        if "." in field_name or "[" in field_name:
            raise ScriptRuleViolation(
                f"format field '{{{field_name}}}' is not allowed in scripts: fields may not look up "
                "attributes or items; pass the value itself"
            )
        key: int | str
        try:
            key = int(field_name)
        except ValueError:
            key = field_name
        return self.get_value(key, args, kwargs), key

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is None:
            return value
        if conversion == "s":
            return _checked_str(value)
        if conversion == "r":
            return _guarded_repr(value)
        if conversion == "a":
            return _guarded_ascii(value)
        raise ValueError(f"Unknown conversion specifier {conversion}")

    def format_field(self, value: Any, format_spec: str) -> str:
        text = _guarded_format(value, format_spec)
        self.produced += len(text)
        if self.produced > MAX_TEXT_LENGTH:
            _refuse(MAX_TEXT_LENGTH, f"str.format would produce more than {MAX_TEXT_LENGTH} characters")
        return text


# -- guarded methods (reached through _getattr_) --------------------------------------------------


def _g_pad(name: str) -> Callable[..., Any]:
    def pad(self: Any, width: Any, *args: Any) -> Any:
        if isinstance(width, int) and width > MAX_FORMAT_WIDTH:
            _refuse(MAX_FORMAT_WIDTH, f"{name}() width {width} is larger than {MAX_FORMAT_WIDTH}")
        if isinstance(width, int):
            _note_allocation(4 * width)
        return getattr(self, name)(width, *args)

    return pad


def _g_expandtabs(self: Any, tabsize: Any = 8) -> Any:
    if isinstance(tabsize, int) and tabsize > 0:
        tab = "\t" if isinstance(self, str) else b"\t"
        _check_sequence_length(len(self) + self.count(tab) * tabsize, "expandtabs", self)
    return self.expandtabs(tabsize)


def _g_replace(self: Any, old: Any, new: Any, count: Any = -1) -> Any:
    try:
        hits = self.count(old) if len(old) else len(self) + 1
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        growth = hits * (len(new) - len(old))
    except TypeError:  # wrong argument types: the real method reports them
        return self.replace(old, new, count)
    _check_sequence_length(len(self) + growth, "replace", self)
    return self.replace(old, new, count)


def _g_join(self: Any, iterable: Any) -> Any:
    items = iterable if type(iterable) in (list, tuple) else list(iterable)
    try:
        size = builtins.sum(map(len, items)) + len(self) * max(len(items) - 1, 0)
    except TypeError:  # an item without len(): join itself raises the right TypeError
        return self.join(items)
    _check_sequence_length(size, "join", self)
    return self.join(items)


def _g_translate(self: Any, table: Any) -> Any:
    if isinstance(self, str) and isinstance(table, Mapping):
        longest = 1
        for value in table.values():
            if isinstance(value, str):
                longest = max(longest, len(value))
        _check_sequence_length(len(self) * longest, "translate", self)
    return self.translate(table)


def _g_format(self: str, *args: Any, **kwargs: Any) -> str:
    formatter = _SafeFormatter()
    formatter.produced = len(self)
    return formatter.vformat(self, args, kwargs)


def _g_format_map(self: str, mapping: Any) -> str:
    formatter = _SafeFormatter()
    formatter.produced = len(self)
    return formatter.vformat(self, (), mapping)


def _g_to_bytes(self: int, length: Any = 1, *args: Any, **kwargs: Any) -> bytes:
    if isinstance(length, int) and length > MAX_SEQUENCE_LENGTH:
        _refuse(MAX_SEQUENCE_LENGTH, f"to_bytes() length {length} is larger than {MAX_SEQUENCE_LENGTH}")
    return self.to_bytes(length, *args, **kwargs)


def _g_extend(self: list[Any], iterable: Any) -> None:
    try:
        extra = len(iterable)
    except TypeError:  # generators and friends grow one (budgeted) step at a time
        extra = 0
    _check_sequence_length(len(self) + extra, "extend", self)
    self.extend(iterable)


_TEXT_TYPES = (str, bytes, bytearray)
_METHOD_GUARDS: dict[str, tuple[tuple[type, ...], Callable[..., Any]]] = {
    "ljust": (_TEXT_TYPES, _g_pad("ljust")),
    "rjust": (_TEXT_TYPES, _g_pad("rjust")),
    "center": (_TEXT_TYPES, _g_pad("center")),
    "zfill": (_TEXT_TYPES, _g_pad("zfill")),
    "expandtabs": (_TEXT_TYPES, _g_expandtabs),
    "replace": (_TEXT_TYPES, _g_replace),
    "join": (_TEXT_TYPES, _g_join),
    "translate": ((str,), _g_translate),
    "format": ((str,), _g_format),
    "format_map": ((str,), _g_format_map),
    "to_bytes": ((int,), _g_to_bytes),
    "extend": ((list,), _g_extend),
}


def _guarded_method(ob: Any, name: str) -> Callable[..., Any] | None:
    owners, impl = _METHOD_GUARDS[name]
    if isinstance(ob, type):
        if not issubclass(ob, owners):
            return None
        owner = ob

        def unbound(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(self, owner):
                raise TypeError(f"descriptor '{name}' requires a '{owner.__name__}' object")
            return impl(self, *args, **kwargs)

        return unbound
    if not isinstance(ob, owners):
        return None

    def bound(*args: Any, **kwargs: Any) -> Any:
        return impl(ob, *args, **kwargs)

    return bound


# -- access guards --------------------------------------------------------------------------------

#: Attribute names refused even though they do not start with "_".
_BLOCKED_ATTRIBUTES = frozenset(INSPECT_ATTRIBUTES) | frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "func_closure",
        "func_defaults",
        "im_func",
        "im_self",
        "im_class",
        "gi_running",
        "cr_running",
        "ag_running",
        "f_lineno",
        "tb_lasti",
    }
)


def _guarded_getattr(ob: Any, name: str) -> Any:
    """``obj.name`` in scripts.  Raises ScriptRuleViolation for refused names (the compiler
    already refuses them; this is the second line of defence) and for module objects."""
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name[:1] == "_" or name in _BLOCKED_ATTRIBUTES:
        raise ScriptRuleViolation(f'access to attribute "{name}" is not allowed in scripts')
    if isinstance(ob, ModuleType):
        raise ScriptRuleViolation("modules are not available in scripts")
    if name in _METHOD_GUARDS:
        method = _guarded_method(ob, name)
        if method is not None:
            return method
    return getattr(ob, name)


def _write_guard(ob: Any) -> Any:
    """Target of item assignment/deletion: dicts and lists only."""
    if isinstance(ob, (dict, list)):
        return ob
    raise ScriptRuleViolation(
        f"objects of type '{type(ob).__name__}' cannot be modified in scripts "
        "(only items of dicts and lists can be assigned or deleted)"
    )


def _augmented_item(container: Any, key: Any, op: str, value: Any) -> None:
    """``container[key] op= value`` (RestrictedPython refuses it; business scripts need it)."""
    target = _write_guard(container)
    target[key] = _inplacevar(op, target[key], value)


def _unpack_sequence(it: Any, spec: Any, getiter: Any) -> Any:
    # RestrictedPython routes tuple unpacking through here so Zope can check every item.  Our
    # _getiter_ only counts time, and every iterable a script can build is bounded or already
    # budgeted (generator expressions tick themselves), so native unpacking is safe and fast.
    return it


def _iter_unpack_sequence(it: Any, spec: Any, getiter: Callable[[Any], Any]) -> Any:
    return getiter(it)


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Calls with ``*args``/``**kwargs`` (RestrictedPython routes them here)."""
    return func(*args, **kwargs)


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = 200
_SHORT_REPR.maxother = 200
_SHORT_REPR.maxlevel = 3


class _ScriptPrinter:
    """Target of ``print`` in scripts: output is logged at DEBUG level (bounded), never written."""

    __slots__ = ("_parts", "_size")

    def __init__(self, _getattr: Any = None) -> None:
        self._parts: list[str] = []
        self._size = 0

    def _call_print(self, *objects: Any, **_options: Any) -> None:
        text = " ".join(o[:1000] if isinstance(o, str) else _SHORT_REPR.repr(o) for o in objects[:20])
        logger.debug("script print: %s", text)
        if self._size < 10_000:
            self._parts.append(text + "\n")
            self._size += len(text) + 1

    def __call__(self) -> str:
        return "".join(self._parts)


# -- helpers --------------------------------------------------------------------------------------


def _json_loads(text: str | bytes) -> Any:
    """``json.loads`` (no hooks)."""
    return _json.loads(text)


def _json_dumps(
    obj: Any,
    *,
    indent: int | str | None = None,
    sort_keys: bool = False,
    ensure_ascii: bool = True,
    separators: tuple[str, str] | None = None,
    default: Any = None,
) -> str:
    """``json.dumps`` with bounded output; ``default`` may only be ``str``."""
    if default is not None and default is not _SafeStr and default is not builtins.str:
        raise ScriptRuleViolation("json.dumps(default=...) only accepts str in scripts")
    if isinstance(indent, int) and not isinstance(indent, bool):
        if not 0 <= indent <= 16:
            raise ValueError("json.dumps indent must be between 0 and 16")
        width = indent
    elif isinstance(indent, str):
        if len(indent) > 16:
            raise ValueError("json.dumps indent must be at most 16 characters")
        width = len(indent)
    elif indent is None:
        width = 0
    else:
        raise TypeError("json.dumps indent must be an int or a str")
    if separators is not None:
        if len(separators) != 2 or not all(isinstance(s, str) and len(s) <= 8 for s in separators):
            raise ValueError("json.dumps separators must be two short strings")
    size = _text_estimate(obj, MAX_TEXT_LENGTH, width)
    if size > MAX_TEXT_LENGTH:
        _refuse(MAX_TEXT_LENGTH, f"json.dumps would produce more than {MAX_TEXT_LENGTH} characters")
    _note_allocation(4 * size)
    return _json.dumps(
        obj,
        indent=indent,
        sort_keys=sort_keys,
        ensure_ascii=ensure_ascii,
        separators=separators,
        default=_checked_str if default is not None else None,
    )


class _JsonHelpers:
    """``json`` in scripts: only ``loads`` and ``dumps``.  Immutable (no instance attributes)."""

    __slots__ = ()
    loads = staticmethod(_json_loads)
    dumps = staticmethod(_json_dumps)

    def __repr__(self) -> str:
        return "<script helper json: loads, dumps>"


class _MathHelpers:
    """``math`` in scripts: a few pure functions and constants.  Immutable."""

    __slots__ = ()
    floor = staticmethod(math.floor)
    ceil = staticmethod(math.ceil)
    sqrt = staticmethod(math.sqrt)
    fabs = staticmethod(math.fabs)
    trunc = staticmethod(math.trunc)
    isclose = staticmethod(math.isclose)
    pi = math.pi
    e = math.e
    inf = math.inf

    def __repr__(self) -> str:
        return "<script helper math: floor, ceil, sqrt, fabs, trunc, isclose, pi, e, inf>"


def _load_regex_internals() -> tuple[Any, Any, Any] | None:
    # The pattern parser and compiler are private (re._parser/re._compiler since 3.11, sre_parse
    # before); without them the backtracking check is skipped and only the length bounds and the
    # matching timeout apply.
    try:
        return (
            importlib.import_module("re._parser"),
            importlib.import_module("re._constants"),
            importlib.import_module("re._compiler"),
        )
    except ImportError:  # pragma: no cover - other Python versions
        return None


_REGEX_INTERNALS = _load_regex_internals()

#: Characters every first-character comparison tries, besides those the pattern names: all of
#: Latin-1 and a few representatives of Unicode categories (digit, letter, space, case oddities).
_PROBE_CHARS = "".join(map(chr, range(256))) + "\u0660\u0394\u03c9\u0431\u2003\u3000\u4e00\u017f\u212a\U0001f600"

_NESTED_REPEAT = (
    "has a repeat inside a repeat (like '(a+)+'), which can take exponential time; rewrite it "
    "without nested quantifiers"
)
_OVERLAPPING_BRANCHES = (
    "has an alternation inside a repeat whose alternatives can match the same text (like "
    "'(a|a)*', '(\\d|\\d\\d)*' or '(a|ab)*'), which can take exponential time; make the "
    "alternatives start with different characters (e.g. '(ab?)*' instead of '(a|ab)*')"
)


class _FirstChars:
    """Which characters sub-patterns can start with, approximately (for the overlap check): each
    single-character item (literal, set, ``.``) is compiled on its own and tried on probes."""

    def __init__(self, parser: Any, constants: Any, compiler: Any, state: Any) -> None:
        self.parser = parser
        self.c = constants
        self.compiler = compiler
        self.state = state
        self.repeats = {
            op for op in (constants.MAX_REPEAT, constants.MIN_REPEAT, getattr(constants, "POSSESSIVE_REPEAT", None))
            if op is not None
        }
        self.single = {constants.LITERAL, constants.NOT_LITERAL, constants.IN, constants.ANY}
        self.zero_width = {constants.AT, constants.ASSERT, constants.ASSERT_NOT}
        self._compiled: dict[tuple[str, int], Any] = {}

    def first(self, items: Any, flags: int) -> tuple[list[tuple[Any, int]], bool]:
        """(single-character items, with their flags, that can come first; whether ``items``
        can match the empty string).  An item it does not understand counts as "any character"."""
        atoms: list[tuple[Any, int]] = []
        for op, av in items:
            if op in self.single:
                atoms.append(((op, av), flags))
                return atoms, False
            if op in self.zero_width:
                continue
            nullable = True
            if op == self.c.SUBPATTERN:
                inner, nullable = self.first(av[3], (flags | av[1]) & ~av[2])
            elif op in self.repeats:
                inner, nullable = self.first(av[2], flags)
                nullable = nullable or av[0] == 0
            elif op == getattr(self.c, "ATOMIC_GROUP", None):
                inner, nullable = self.first(av, flags)
            elif op == self.c.BRANCH:
                inner, nullable = [], False
                for branch in av[1]:
                    more, empty = self.first(branch, flags)
                    inner.extend(more)
                    nullable = nullable or empty
            else:  # back references, conditionals: anything, possibly nothing
                inner = [((self.c.ANY, None), flags | 16)]  # 16: re.DOTALL
            atoms.extend(inner)
            if not nullable:
                return atoms, False
        return atoms, True

    def any_overlap(self, starts: list[list[tuple[Any, int]]]) -> bool:
        """Whether two of ``starts`` (first items of alternatives) accept a common character."""
        probes = set(_PROBE_CHARS)
        for atoms in starts:
            for (op, av), _flags in atoms:
                codes = [av] if op in (self.c.LITERAL, self.c.NOT_LITERAL) else []
                if op == self.c.IN:
                    for sop, sav in av:
                        if sop == self.c.LITERAL:
                            codes.append(sav)
                        elif sop == self.c.RANGE:
                            codes.extend(sav)
                for code in codes:
                    ch = chr(code)
                    probes.update(c for c in (ch, ch.lower(), ch.upper(), ch.swapcase()) if len(c) == 1)
        taken: set[str] = set()
        for atoms in starts:
            # a case-sensitive literal accepts just itself; everything else is tried on the probes
            hits = {chr(av) for (op, av), flags in atoms
                    if op == self.c.LITERAL and not (flags | self.state.flags) & re.IGNORECASE}
            matchers = [self._matcher(item, flags) for item, flags in atoms
                        if item[0] != self.c.LITERAL or (flags | self.state.flags) & re.IGNORECASE]
            if matchers:
                hits.update(p for p in probes if any(m.fullmatch(p) for m in matchers))
            if hits & taken:
                return True
            taken |= hits
        return False

    def _matcher(self, item: Any, flags: int) -> Any:
        key = (repr(item), flags)
        found = self._compiled.get(key)
        if found is None:
            sub = self.parser.SubPattern(self.state, [item])
            found = self._compiled[key] = self.compiler.compile(sub, flags | self.state.flags)
        return found


def backtracking_problem(pattern: str, outer_limit: int = 64) -> str | None:
    """Why ``pattern`` may backtrack catastrophically, or None.

    Two shapes count, each inside a repeat allowing more than ``outer_limit`` rounds:

    * an unbounded repeat (one allowing more than 64 rounds): ``(a+)+``, ``(\\w+\\s?)*``;
    * an alternation whose alternatives can match the same text: two alternatives that can start
      with the same character or can both match nothing (``(ab|[a-c]d)*``, ``(a?|b?)*``), or one that
      can match nothing after a start the alternatives share (``(a|ab)*c``, ``(\\d|\\d\\d)*``:
      Python's parser factors the common start out, leaving an empty alternative).

    Scripts use 64; form patterns, matched on every submission, use 1, which also refuses
    polynomial shapes such as ``(.*a){20}``. A pattern that does not parse is left to the
    compiler. Returns a phrase to follow "the pattern ..." / "regular expression ..."."""
    if _REGEX_INTERNALS is None:  # pragma: no cover
        return None
    parser, constants, compiler = _REGEX_INTERNALS
    try:
        tree = parser.parse(pattern)
    except Exception:
        return None
    repeats = (constants.MAX_REPEAT, constants.MIN_REPEAT, getattr(constants, "POSSESSIVE_REPEAT", None))
    firsts = _FirstChars(parser, constants, compiler, tree.state)

    def children(av: Any) -> Iterator[tuple[Any, int]]:
        if isinstance(av, parser.SubPattern):
            yield av, 0
        elif isinstance(av, (tuple, list)):
            for item in av:
                yield from children(item)

    def branches_overlap(branches: list[Any], after_shared_start: bool, flags: int) -> bool:
        try:
            starts = [firsts.first(branch, flags) for branch in branches]
        except RecursionError:  # nested too deeply to look into: do not take the risk
            return True
        empties = sum(1 for _atoms, empty in starts if empty)
        if empties >= 2 or (empties and after_shared_start):
            return True
        return firsts.any_overlap([atoms for atoms, _empty in starts])

    stack: list[tuple[Any, bool, int]] = [(tree, False, tree.state.flags)]
    while stack:
        sub, inside_repeat, flags = stack.pop()
        for index, (op, av) in enumerate(sub):
            is_repeat = op in repeats and op is not None
            if is_repeat and av[1] > 64 and inside_repeat:
                return _NESTED_REPEAT
            if op == constants.BRANCH and inside_repeat and branches_overlap(av[1], index > 0, flags):
                return _OVERLAPPING_BRANCHES
            inner_flags = (flags | av[1]) & ~av[2] if op == constants.SUBPATTERN else flags
            for child, _ in children(av):
                stack.append((child, inside_repeat or (is_repeat and av[1] > outer_limit), inner_flags))
    return None


def _refuse_backtracking(pattern: str) -> None:
    """Refuse the classic exponential-backtracking shapes (:func:`backtracking_problem`) when a
    pattern is first compiled; the matching timeout bounds whatever the check misses."""
    problem = backtracking_problem(pattern)
    if problem is not None:
        raise ScriptRuleViolation(f"regular expression {problem}")


#: Unescaped '{' that ``re`` reads as a repeat ('{2}', '{1,3}', '{,4}', '{2,}'); any other '{' is a
#: literal for ``re`` but may open a fuzzy-matching constraint (``a{e<=1}``) for ``regex``.
_RE_REPEAT_BRACE = re.compile(r"\{(?!\})\d*(?:,\d*)?\}")
#: A POSIX class inside a set ('[[:digit:]]'): ``regex`` reads it as a class, ``re`` as characters.
_POSIX_CLASS = re.compile(r"\[[^\]]*\[:\^?\w+:\]")
_ESCAPE_PAIR = re.compile(r"\\N\{[^}]*\}|\\.", re.S)


def _regex_syntax(pattern: str) -> str:
    """``pattern`` (already accepted by ``re``) as ``regex`` must read it to match what ``re``
    would: '{' that is no repeat becomes '\\{'.  Raises re.error for a POSIX class in a set."""
    if _POSIX_CLASS.search(_ESCAPE_PAIR.sub("", pattern)):
        raise re.error("POSIX classes such as '[[:digit:]]' are not supported; use '\\d', '\\s', '[a-z]' ...")
    if "{" not in pattern:
        return pattern
    out: list[str] = []
    i = 0
    while i < len(pattern):
        escape = _ESCAPE_PAIR.match(pattern, i)
        if escape:
            out.append(escape.group())
            i = escape.end()
            continue
        ch = pattern[i]
        out.append("\\{" if ch == "{" and not _RE_REPEAT_BRACE.match(pattern, i) else ch)
        i += 1
    return "".join(out)


def compile_as_re(pattern: str) -> Any:
    """``pattern``, written for Python's ``re``, compiled with the ``regex`` package (which matches
    with a timeout) so that it matches what ``re`` would: forms' patterns use it too. Raises
    re.error for what ``re`` refuses or what the two would read differently."""
    translated = _regex_syntax(pattern)
    re.compile(pattern)
    return _regex_module.compile(translated)


@functools.lru_cache(maxsize=256)
def _compile_pattern(pattern: str) -> Any:
    """The compiled ``regex`` pattern (matched with a timeout) for ``pattern`` in ``re`` syntax.

    Raises ScriptRuleViolation for a backtracking shape, re.error for what ``re`` refuses."""
    _refuse_backtracking(pattern)
    return compile_as_re(pattern)  # the syntax (and its errors) scripts get is that of ``re``


#: Matching timeout when no script budget is active (helpers called outside a budgeted call).
_UNBUDGETED_REGEX_SECONDS = 2.0


def _regex_deadline() -> tuple[_Budget | None, float]:
    """(active budget, seconds left for one match): what the running script has left of its time
    limit, or :data:`_UNBUDGETED_REGEX_SECONDS` outside a budgeted call.  Raises the time limit
    if nothing is left."""
    budget = _ACTIVE_BUDGET.get()
    if budget is None:
        return None, _UNBUDGETED_REGEX_SECONDS
    if budget.tripped is not None:
        raise budget.exception()
    remaining = budget.deadline - time.monotonic()
    if remaining <= 0:
        budget.trip("time", budget.time_limit, f"script exceeded its time limit of {budget.time_limit:g} s")
    # a floor, so a nearly spent budget still lets a trivial match finish (the tick trips next)
    return budget, max(remaining, 0.001)


def _regex_timed_out(budget: _Budget | None, timeout: float) -> NoReturn:
    """A match ran out of time: the script's time limit (sticky, like any budget breach)."""
    if budget is not None:
        budget.trip(
            "time",
            budget.time_limit,
            f"script exceeded its time limit of {budget.time_limit:g} s (in a regular expression match)",
        )
    raise ScriptLimitExceeded("time", timeout, f"regular expression match exceeded {timeout:g} s")


def _regex(pattern: Any, subject: Any) -> tuple[Any, str]:
    if not isinstance(pattern, str) or not isinstance(subject, str):
        raise TypeError("pattern and string must be strings")
    if len(pattern) > MAX_REGEX_PATTERN:
        raise ValueError(f"regular expression longer than {MAX_REGEX_PATTERN} characters")
    if len(subject) > MAX_REGEX_INPUT:
        raise ValueError(f"re_* helpers accept strings of at most {MAX_REGEX_INPUT} characters")
    return _compile_pattern(pattern), subject


class RegexMatch:
    """Result of ``re_match``/``re_search``: the read-only part of a match object."""

    __slots__ = ("_match",)

    def __init__(self, match: Any) -> None:
        self._match = match

    def group(self, *groups: int | str) -> Any:
        return self._match.group(*groups)

    def groups(self, default: Any = None) -> tuple[Any, ...]:
        return self._match.groups(default)

    def groupdict(self, default: Any = None) -> dict[str, Any]:
        return self._match.groupdict(default)

    def start(self, group: int | str = 0) -> int:
        return self._match.start(group)

    def end(self, group: int | str = 0) -> int:
        return self._match.end(group)

    def span(self, group: int | str = 0) -> tuple[int, int]:
        return self._match.span(group)

    def __getitem__(self, group: int | str) -> Any:
        return self._match[group]

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<RegexMatch span={self.span()} match={self._match.group()[:80]!r}>"


def re_match(pattern: str, string: str) -> RegexMatch | None:
    """``re.match``: match at the start of ``string``; ``None`` if it does not match."""
    rx, subject = _regex(pattern, string)
    budget, timeout = _regex_deadline()
    try:
        found = rx.match(subject, timeout=timeout)
    except TimeoutError:
        _regex_timed_out(budget, timeout)
    return RegexMatch(found) if found else None


def re_search(pattern: str, string: str) -> RegexMatch | None:
    """``re.search``: first match anywhere in ``string``; ``None`` if none."""
    rx, subject = _regex(pattern, string)
    budget, timeout = _regex_deadline()
    try:
        found = rx.search(subject, timeout=timeout)
    except TimeoutError:
        _regex_timed_out(budget, timeout)
    return RegexMatch(found) if found else None


def re_sub(pattern: str, repl: str, string: str, count: int = 0) -> str:
    """``re.sub`` with a string replacement (``\\1``/``\\g<name>`` allowed) and bounded output."""
    rx, subject = _regex(pattern, string)
    if not isinstance(repl, str):
        raise TypeError("re_sub replacement must be a string")
    literal = "\\" not in repl
    pieces: list[str] = []
    total = 0
    last = 0
    budget, timeout = _regex_deadline()
    try:
        # the timeout covers the whole iteration (it runs from the creation of the iterator)
        for done, found in enumerate(rx.finditer(subject, timeout=timeout)):
            if count and done >= count:
                break
            if not done & 0x3FF:
                _tick_active()
            chunk = repl if literal else found.expand(repl)
            pieces.append(subject[last : found.start()])
            pieces.append(chunk)
            total += found.start() - last + len(chunk)
            if total > MAX_TEXT_LENGTH:
                _refuse(MAX_TEXT_LENGTH, f"re_sub would produce more than {MAX_TEXT_LENGTH} characters")
            last = found.end()
    except TimeoutError:
        _regex_timed_out(budget, timeout)
    pieces.append(subject[last:])
    return "".join(pieces)


def slugify(value: Any, separator: str = "-") -> str:
    """Lower-case ASCII slug: ``slugify("Café Menu!") == "cafe-menu"``."""
    if not isinstance(separator, str) or len(separator) > 5:
        raise ValueError("separator must be a string of at most 5 characters")
    text = _checked_str(value)
    if len(text) > MAX_REGEX_INPUT:
        raise ValueError(f"slugify accepts at most {MAX_REGEX_INPUT} characters")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", separator, ascii_text).strip(separator)


def parse_datetime(value: Any) -> datetime:
    """ISO 8601 text (``2024-05-01T10:00:00Z``, ``2024-05-01``) to an aware datetime.

    Naive input is taken as UTC.  Raises ValueError for anything else.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and len(value) <= 64:
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    else:
        raise ValueError("parse_datetime expects an ISO 8601 string")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_NUMBER = r"\d{1,12}(?:[.,]\d{1,9})?"
_DURATION = re.compile(
    rf"(?P<sign>[-+])?P(?:(?P<weeks>{_NUMBER})W"
    rf"|(?:(?P<days>{_NUMBER})D)?(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?"
    rf"(?:(?P<seconds>{_NUMBER})S)?)?)",
    re.I,
)


def parse_duration(value: Any) -> timedelta:
    """ISO 8601 duration (``PT4H``, ``P1DT12H``, ``P2W``, ``PT0.5S``, ``-P1D``) to a timedelta.

    Years and months have no fixed length and raise ValueError, as does anything malformed.
    """
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("parse_duration expects an ISO 8601 duration string")
    text = value.strip()
    found = _DURATION.fullmatch(text)
    if found is None or text.upper().endswith(("P", "T")) or not any(
        found.group(g) for g in ("weeks", "days", "hours", "minutes", "seconds")
    ):
        if re.search(r"\d[YM]", text.upper().split("T")[0]):
            raise ValueError(f"duration '{value}' uses years or months, which have no fixed length")
        raise ValueError(f"'{value}' is not an ISO 8601 duration like 'PT4H' or 'P1DT2H'")

    def number(group: str) -> float:
        raw = found.group(group)
        return float(raw.replace(",", ".")) if raw else 0.0

    try:
        result = timedelta(
            weeks=number("weeks"),
            days=number("days"),
            hours=number("hours"),
            minutes=number("minutes"),
            seconds=number("seconds"),
        )
    except OverflowError as exc:
        raise ValueError(f"duration '{value}' is too large") from exc
    return -result if found.group("sign") == "-" else result


def now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def get_current_user() -> dict[str, Any] | None:
    """The acting user (SpiffArena-compatible): a copy of ``ScriptIdentity.current_user``."""
    identity = _IDENTITY.get()
    return copy.deepcopy(identity.resolved("current_user")) if identity is not None else None


def get_process_initiator_user() -> dict[str, Any] | None:
    """Who started the process (SpiffArena-compatible): a copy of ``ScriptIdentity.initiator``."""
    identity = _IDENTITY.get()
    return copy.deepcopy(identity.resolved("initiator")) if identity is not None else None


_DEFAULT_HELPERS: dict[str, Any] = {
    "datetime": datetime,
    "date": date,
    "timedelta": timedelta,
    "timezone": timezone,
    "json": _JsonHelpers(),
    "math": _MathHelpers(),
    "re_match": re_match,
    "re_search": re_search,
    "re_sub": re_sub,
    "slugify": slugify,
    "parse_datetime": parse_datetime,
    "parse_duration": parse_duration,
    "now": now,
    "get_current_user": get_current_user,
    "get_process_initiator_user": get_process_initiator_user,
}

_SAFE_EXCEPTIONS = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    Exception,
    IndexError,
    KeyError,
    LookupError,
    NameError,
    NotImplementedError,
    OverflowError,
    RecursionError,
    RuntimeError,
    StopIteration,
    TypeError,
    UnboundLocalError,
    UnicodeError,
    ValueError,
    ZeroDivisionError,
)

#: Builtins visible to scripts.  Deliberately absent: type, object, super, getattr & co, open,
#: __import__, eval/exec/compile, globals/locals/vars, dir, iter (iter(callable, sentinel) is an
#: endless C-level iterator), bytes/bytearray/memoryview (bytes(10**10)), issubclass, id,
#: BaseException/SystemExit/KeyboardInterrupt (raising them would slip past SpiffWorkflow).
_SAFE_BUILTINS: dict[str, Any] = {
    "None": None,
    "True": True,
    "False": False,
    "abs": abs,
    "all": all,
    "any": any,
    "ascii": _guarded_ascii,
    "bin": bin,
    "bool": bool,
    "callable": callable,
    "chr": chr,
    "dict": dict,
    "divmod": divmod,
    "enumerate": enumerate,
    "filter": filter,
    "float": float,
    "format": _guarded_format,
    "frozenset": frozenset,
    "hex": hex,
    "int": int,
    "isinstance": isinstance,
    "len": len,
    "list": list,
    "map": map,
    "max": max,
    "min": min,
    "next": next,
    "oct": oct,
    "ord": ord,
    "pow": _guarded_pow,
    "range": _guarded_range,
    "repr": _guarded_repr,
    "reversed": reversed,
    "round": round,
    "set": set,
    "slice": slice,
    "sorted": sorted,
    "str": _SafeStr,
    "sum": _guarded_sum,
    "tuple": tuple,
    "zip": zip,
}
_SAFE_BUILTINS.update({exc.__name__: exc for exc in _SAFE_EXCEPTIONS})

# Names the rewritten code calls.  All start with "_" so scripts can neither read nor rebind them.
_BUDGET = "_budget_"
_GETITER = "_getiter_"
_GUARDS: dict[str, Any] = {
    "_getattr_": _guarded_getattr,
    "_getitem_": operator.getitem,
    _GETITER: iter,
    "_iter_unpack_sequence_": _iter_unpack_sequence,
    "_unpack_sequence_": _unpack_sequence,
    "_write_": _write_guard,
    "_inplacevar_": _inplacevar,
    "_apply_": _apply,
    "_print_": _ScriptPrinter,
    "_add_": _guarded_add,
    "_mul_": _guarded_mul,
    "_pow_": _guarded_pow,
    "_lshift_": _guarded_lshift,
    "_mod_": _guarded_mod,
    "_fjoin_": _join_fstring,
    "_format_": _format_value,
    "_aug_item_": _augmented_item,
    _BUDGET: _no_budget,
}
# Left in the namespace by RestrictedPython's print support.
_RUNTIME_LEFTOVERS = ("_print",)


# -- compiler -------------------------------------------------------------------------------------

#: Names refused at compile time: they exist only to escape or introspect.  Names that are also
#: plausible task-data fields (type, id, input, object) are merely absent from the builtins.
_FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "open",
        "breakpoint",
        "help",
        "memoryview",
        "bytearray",
        "super",
        "dir",
        "classmethod",
        "staticmethod",
        "property",
        "exit",
        "quit",
        "iter",
    }
)

_BINOP_GUARDS: dict[type[ast.operator], str] = {
    ast.Add: "_add_",
    ast.Mult: "_mul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}
_AUG_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+=",
    ast.Sub: "-=",
    ast.Mult: "*=",
    ast.Div: "/=",
    ast.Mod: "%=",
    ast.Pow: "**=",
    ast.LShift: "<<=",
    ast.RShift: ">>=",
    ast.BitOr: "|=",
    ast.BitXor: "^=",
    ast.BitAnd: "&=",
    ast.FloorDiv: "//=",
    ast.MatMult: "@=",
}


class _RuleMessage(builtins.str):
    """A RestrictedPython error string that also carries line, column and the bare message."""

    info: str
    line: int | None
    column: int | None

    def __new__(cls, info: str, line: int | None, column: int | None) -> _RuleMessage:
        self = super().__new__(cls, f"Line {line}: {info}")
        self.info = info
        self.line = line
        self.column = column
        return self


def _name(identifier: str) -> ast.Name:
    return ast.Name(id=identifier, ctx=ast.Load())


def _call(identifier: str, args: list[ast.expr], anchor: ast.AST) -> ast.Call:
    node = ast.Call(func=_name(identifier), args=args, keywords=[])
    copy_locations(node, anchor)  # type: ignore[arg-type]
    return node


class _SandboxTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy plus our rules, the budget checks and the allocation guards.

    Injected nodes are added *after* the parent class has checked a node, so the "no names starting
    with _" rule does not reject our own guard names.
    """

    def error(self, node: ast.AST, info: str) -> None:
        line = getattr(node, "lineno", None)
        column = getattr(node, "col_offset", None)
        self.errors.append(_RuleMessage(info, line, None if column is None else column + 1))

    def _mark_budget(self) -> None:
        # Reported through CompileResult.used_names: code without loops or functions runs without
        # a budget object (the gateway/DMN fast path).
        self.used_names[_BUDGET] = True

    def _tick(self, anchor: ast.AST) -> ast.Expr:
        statement = ast.Expr(value=_call(_BUDGET, [], anchor))
        copy_locations(statement, anchor)  # type: ignore[arg-type]
        self._mark_budget()
        return statement

    # names and attributes

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in _FORBIDDEN_NAMES:
            self.error(node, f'"{node.id}" is not available in scripts.')
        return super().visit_Name(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr in _BLOCKED_ATTRIBUTES and node.attr not in INSPECT_ATTRIBUTES:
            self.error(node, f'"{node.attr}" is a restricted attribute name.')
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.error(node, "Assigning or deleting attributes is not allowed in scripts.")
        return super().visit_Attribute(node)

    # statements refused outright

    def visit_Import(self, node: ast.Import) -> Any:
        # RestrictedPython allows imports and relies on a guarded __import__; we allow none.
        self.error(node, "Import statements are not allowed in scripts (helpers are available by name).")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        self.error(node, "Import statements are not allowed in scripts (helpers are available by name).")
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        self.error(node, "Class definitions are not allowed in scripts.")
        return node

    def visit_Yield(self, node: ast.Yield) -> Any:
        self.error(node, "Generators (yield) are not allowed in scripts.")
        return node

    def visit_YieldFrom(self, node: ast.YieldFrom) -> Any:
        self.error(node, "Generators (yield from) are not allowed in scripts.")
        return node

    # budget checks

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        if node.decorator_list:
            self.error(node, "Decorators are not allowed in scripts.")
        node = cast(ast.FunctionDef, super().visit_FunctionDef(node))
        node.body.insert(0, self._tick(node))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        node = cast(ast.Lambda, super().visit_Lambda(node))
        # `_budget_() or body`: the check returns None, so the lambda still returns `body`.
        check = ast.BoolOp(op=ast.Or(), values=[_call(_BUDGET, [], node.body), node.body])
        copy_locations(check, node.body)
        node.body = check
        self._mark_budget()
        return node

    def visit_While(self, node: ast.While) -> Any:
        node = cast(ast.While, super().visit_While(node))
        node.body.insert(0, self._tick(node.body[0] if node.body else node))
        return node

    def visit_For(self, node: ast.For) -> Any:
        self._mark_budget()  # the per-call _getiter_ counts the iterations
        return super().visit_For(node)

    def visit_comprehension(self, node: ast.comprehension) -> Any:
        self._mark_budget()
        return super().visit_comprehension(node)

    # allocation guards

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = cast(ast.BinOp, super().visit_BinOp(node))
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        return _call(guard, [node.left, node.right], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        if not isinstance(node.target, ast.Subscript):
            return super().visit_AugAssign(node)
        # d[k] += v  ->  _aug_item_(d, k, "+=", v): same guards as the name form.
        target = node.target
        container = self.visit(target.value)
        key = self.visit(target.slice)
        value = self.visit(node.value)
        op = ast.Constant(_AUG_OPERATORS[type(node.op)])
        statement = ast.Expr(value=_call("_aug_item_", [container, key, op, value], node))
        copy_locations(statement, node)
        return statement

    def visit_JoinedStr(self, node: ast.JoinedStr) -> Any:
        node = cast(ast.JoinedStr, super().visit_JoinedStr(node))
        if not any(isinstance(part, ast.FormattedValue) for part in node.values):
            return node
        # f"a{x!r:>{w}}b" -> _fjoin_("a", _format_(x, 114, _fjoin_(">", _format_(w, -1, ""))), "b")
        parts: list[ast.expr] = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                spec: ast.expr = part.format_spec if part.format_spec is not None else ast.Constant("")
                parts.append(_call("_format_", [part.value, ast.Constant(part.conversion), spec], part))
            else:
                parts.append(part)
        return _call("_fjoin_", parts, node)


_REGEX_HELPER_NAMES = frozenset({"re_match", "re_search", "re_sub"})


class _Compiled(NamedTuple):
    code: CodeType
    needs_budget: bool


class _Refusal(NamedTuple):
    message: str
    line: int | None
    column: int | None


_RULE_LINE = re.compile(r"^Line (\d+):\s*(.*)$", re.S)


@functools.lru_cache(maxsize=_COMPILE_CACHE_SIZE)
def _compile_cached(source: str, mode: str, filename: str) -> _Compiled | _Refusal:
    """Compile once per (source, mode, filename); refusals are cached too (as plain data, so each
    caller raises a fresh exception without an ever-growing traceback)."""
    if len(source) > MAX_SOURCE_LENGTH:
        return _Refusal(f"script is longer than {MAX_SOURCE_LENGTH} characters", None, None)
    # builtin eval() ignores leading blanks of an expression; ast.parse does not
    text = source.lstrip(" \t") if mode == "eval" else source
    try:
        tree = cast("ast.Module | ast.Expression", ast.parse(text, filename, mode))
    except SyntaxError as exc:
        return _Refusal(f"{type(exc).__name__}: {exc.msg}", exc.lineno, exc.offset)
    except (ValueError, RecursionError, MemoryError) as exc:
        return _Refusal(f"script can not be parsed: {exc}", None, None)
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    try:
        result = compiler(tree, filename, policy=_SandboxTransformer)
    except SyntaxError as exc:  # raised by compile(): 'return' outside function and the like
        return _Refusal(f"{type(exc).__name__}: {exc.msg}", exc.lineno, exc.offset)
    except (RecursionError, MemoryError):
        return _Refusal("script is nested too deeply", None, None)
    if result.errors:
        first = result.errors[0]
        if isinstance(first, _RuleMessage):
            return _Refusal(first.info, first.line, first.column)
        found = _RULE_LINE.match(first)
        if found:
            return _Refusal(found.group(2), int(found.group(1)), None)
        return _Refusal(builtins.str(first), None, None)
    assert result.code is not None
    # The regex helpers match with a timeout taken from the budget: an expression naming one
    # runs budgeted even without loops (a DMN cell such as re_match(p, x) is one call).
    uses = result.used_names
    return _Compiled(result.code, _BUDGET in uses or not _REGEX_HELPER_NAMES.isdisjoint(uses))


def _compile(source: Any, mode: str, filename: str = "<string>") -> _Compiled:
    if mode not in ("exec", "eval"):
        raise ValueError(f"mode must be 'exec' or 'eval', not {mode!r}")
    if not isinstance(source, str):
        raise ScriptRuleViolation(f"script source must be a string, not {type(source).__name__}")
    outcome = _compile_cached(source, mode, filename)
    if type(outcome) is _Refusal:
        raise ScriptRuleViolation(outcome.message, outcome.line, outcome.column)
    return outcome  # type: ignore[return-value]


def check_source(source: str, mode: str = "exec", filename: str = "<string>") -> None:
    """Compile ``source`` with the restricted compiler (``mode`` 'exec' or 'eval').

    Raises :class:`ScriptRuleViolation` naming the first problem (syntax error or rule) with its
    1-based line and column; ``ValueError`` for an unknown mode.  Used at deploy time to refuse bad
    diagrams; the compiled code is cached, so the first run does not compile again.
    """
    _compile(source, mode, filename)


@functools.lru_cache(maxsize=128)
def _raiser(line: int) -> CodeType:
    return compile("\n" * (line - 1) + "raise violation", "<string>", "exec")


def _raise_at_line(violation: ScriptRuleViolation, source: str) -> NoReturn:
    """Raise ``violation`` from a frame whose file is ``<string>`` at the violation's line.

    SpiffWorkflow's ``get_error_line_number_and_content`` finds a script's error line by walking the
    traceback for that file name; a compile-time refusal has no such frame, so we make one.  The
    line is clamped to the script (SpiffWorkflow indexes ``script.splitlines()`` with it).
    """
    last = max(len(source.splitlines()), 1)
    line = min(max(violation.line or 1, 1), last)
    exec(_raiser(line), {"__builtins__": {}, "violation": violation})  # noqa: S102
    raise violation  # pragma: no cover - the exec above always raises


def _bounded_argument(value: Any) -> Any:
    if type(value) is str:
        return value if len(value) <= 2_000 else value[:2_000] + "..."
    return _SHORT_REPR.repr(value)


def _tidy_exception(exc: BaseException) -> None:
    """Make a script's exception safe to format and to hand to SpiffWorkflow.

    SpiffWorkflow builds its message with ``":" + err.args[0]`` (a non-str first argument crashes
    it) and loggers ``str()`` every chained exception (``ValueError([s] * 10**7)`` would expand to
    10**14 characters), so arguments become bounded strings.
    """
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return
        if isinstance(current, Exception) and not isinstance(current, ScriptRuleViolation):
            args = current.args
            if any(type(a) is not str or len(a) > 2_000 for a in args):
                try:
                    current.args = tuple(_bounded_argument(a) for a in args)
                except Exception:  # pragma: no cover - exotic exception types
                    pass
        current = current.__cause__ or current.__context__


# -- environment ----------------------------------------------------------------------------------


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow script environment running task code under the sandbox rules.

    Drop-in for ``TaskDataEnvironment``: ``evaluate`` returns the expression's value with task data
    (``context``) and ``external_context`` visible as names (task data wins); ``execute`` runs a
    script with the task data dict as its namespace, so new or changed top-level variables stay in
    it, and removes helpers, guards, functions, other callables and ``re_match`` results afterwards.
    ``self.globals`` holds the helper functions (as in the original), which live in the builtins
    namespace of the script, so a task-data field may shadow one in an expression.
    """

    def __init__(
        self,
        time_limit: float = 2.0,
        memory_limit_mb: int = 256,
        extra_helpers: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        """Raises ValueError for non-positive limits or an unusable helper name."""
        if not time_limit > 0:
            raise ValueError("time_limit must be positive")
        if not memory_limit_mb > 0:
            raise ValueError("memory_limit_mb must be positive")
        helpers = dict(_DEFAULT_HELPERS)
        for name, helper in (extra_helpers or {}).items():
            if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
                raise ValueError(f"helper name {name!r} is not a valid script name")
            if isinstance(helper, ModuleType):
                raise ValueError(f"helper {name!r} is a module; expose functions or classes instead")
            helpers[name] = helper
        super().__init__(helpers)
        self.time_limit = float(time_limit)
        self.memory_limit_mb = int(memory_limit_mb)
        script_builtins = dict(_SAFE_BUILTINS)
        script_builtins.update(helpers)
        # Applied after task data in every namespace, so data can never replace a guard.
        self._protected: dict[str, Any] = dict(_GUARDS)
        self._protected["__builtins__"] = script_builtins
        self._injected = (*self._protected, _GETITER, _BUDGET, *_RUNTIME_LEFTOVERS)

    # SpiffWorkflow interface

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> Any:
        """Value of ``expression``.

        Raises ScriptRuleViolation (refused or not compilable), ScriptLimitExceeded (budget) or
        whatever the expression raises (with bounded messages).
        """
        compiled = _compile(expression, "eval")
        if external_context:
            namespace = dict(external_context)
            namespace.update(context)
        else:
            namespace = context.copy()
        namespace.update(self._protected)
        if compiled.needs_budget:
            return self._run_budgeted(compiled.code, namespace, is_eval=True)
        # No loops, comprehensions or functions: nothing can run long, skip the budget object.
        try:
            return eval(compiled.code, namespace)  # noqa: S307 - restricted code, guarded namespace
        except Exception as exc:
            _tidy_exception(exc)
            raise

    def execute(self, script: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> bool:
        """Run ``script`` with ``context`` (the task data dict) as its namespace; returns True.

        Raises ValueError when task data would shadow a helper (before running anything),
        ScriptRuleViolation for a refused script (raised from a ``<string>`` frame at the offending
        line so SpiffWorkflow reports it), ScriptLimitExceeded for a budget breach (unwrapped: it is
        a BaseException) and whatever the script raises otherwise.
        """
        external = external_context or {}
        self.check_for_overwrite(context, external)
        try:
            compiled = _compile(script, "exec")
        except ScriptRuleViolation as violation:
            _raise_at_line(violation, script)
        before = dict(context)
        context.update(external)
        context.update(self._protected)
        try:
            self._run_budgeted(compiled.code, context, is_eval=False)
        finally:
            self._remove_globals_and_functions_from_context(context, external)
        _refuse_unstorable(context, before)
        return True

    def check_for_overwrite(self, context: Mapping[str, Any], external_context: Mapping[str, Any]) -> None:
        """ValueError if task data shadows a helper or an external-context name (the message of
        SpiffWorkflow's ``TaskDataEnvironment.check_for_overwrite``) or a sandbox guard name."""
        overwrites = set(self.globals).intersection(context)
        overwrites.update(set(external_context).intersection(context))
        if overwrites:
            raise ValueError(
                "You have task data that overwrites a predefined function(s). Please change the "
                f"following variable or field name(s) to something else: {overwrites}"
            )
        reserved = [name for name in self._injected if name in context]
        if reserved:
            raise ValueError(
                "You have task data that uses names reserved by the script sandbox. "
                f"Please rename: {sorted(reserved)}"
            )

    def _remove_globals_and_functions_from_context(
        self, context: dict[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> None:
        for name in self._injected:
            context.pop(name, None)
        for name in list(context):
            if (
                name in self.globals
                or (external_context and name in external_context)
                or callable(context[name])
                # helper results that are not data (and would break workflow serialization)
                or isinstance(context[name], RegexMatch)
            ):
                del context[name]

    # internals

    def _run_budgeted(self, code: CodeType, namespace: dict[str, Any], *, is_eval: bool) -> Any:
        budget = _Budget(self.time_limit, self.memory_limit_mb)
        namespace[_BUDGET] = budget.tick
        namespace[_GETITER] = budget.getiter
        token = _ACTIVE_BUDGET.set(budget)
        try:
            if is_eval:
                result = eval(code, namespace)  # noqa: S307
            else:
                exec(code, namespace)  # noqa: S102
                result = None
        except ScriptLimitExceeded:
            raise
        except BaseException as exc:
            if budget.tripped is not None:
                # The script caught the breach and failed some other way: the breach is the cause.
                raise budget.exception() from None
            _tidy_exception(exc)
            raise
        finally:
            _ACTIVE_BUDGET.reset(token)
        if budget.tripped is not None:
            # The script swallowed the breach (`except:`) and finished: still a breach.
            raise budget.exception()
        return result


def _refuse_unstorable(context: dict[str, Any], before: Mapping[str, Any]) -> None:
    """UnstorableData (a ValueError) if a variable the script set (new or rebound) could not be
    saved with the instance (app/engine/storable.py); those variables get their old value back (or
    go), so the task fails with data that can still be stored. Values changed in place are caught
    after the engine step (``WorkflowRun.refuse_unstorable_data``)."""
    refused: list[str] = []
    for name, value in list(context.items()):
        if name in before and before[name] is value:
            continue
        reason = storable.problem(value)
        if reason is None:
            continue
        refused.append(f"'{name}' holds {reason}")
        if name in before:
            context[name] = before[name]
        else:
            del context[name]
    if refused:
        raise storable.UnstorableData("the script left data the instance cannot store: " + "; ".join(refused))


def make_script_engine(time_limit: float = 2.0, memory_limit_mb: int = 256) -> PythonScriptEngine:
    """A SpiffWorkflow ``PythonScriptEngine`` using :class:`RestrictedEnvironment`.

    Raises ValueError for non-positive limits.
    """
    return PythonScriptEngine(environment=RestrictedEnvironment(time_limit, memory_limit_mb))
