"""The script helpers re_match/re_search/re_sub match with the ``regex`` package under a timeout
taken from the script's time budget, so catastrophic backtracking ends the script with the time
limit instead of freezing the server; the deploy/compile-time check also refuses alternations
whose alternatives overlap inside an unbounded repeat; and the engine survives a script that
hashes a tuple nested far past what a normal C stack holds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine import backtracking_problem, sandbox
from app.engine.sandbox import RestrictedEnvironment, ScriptLimitExceeded, ScriptRuleViolation

ROOT = Path(__file__).resolve().parents[2]
TIME_LIMIT = 0.5


@pytest.fixture
def env() -> RestrictedEnvironment:
    return RestrictedEnvironment(time_limit=TIME_LIMIT, memory_limit_mb=256)


@pytest.fixture
def no_static_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Switch the compile-time backtracking check off: only the matching timeout is left."""
    sandbox._compile_pattern.cache_clear()
    monkeypatch.setattr(sandbox, "backtracking_problem", lambda pattern, outer_limit=64: None)
    yield
    sandbox._compile_pattern.cache_clear()


# -- catastrophic matching ends with the time limit -------------------------------------------------

# Shapes the compile-time check lets through (bounded repeats, polynomial backtracking) that still
# take seconds with Python's re (and longer with regex): the timeout is what stops them.
SLIP_THROUGH = [
    (r"^(.*?,){11}P", "1," * 30),
    (r"(?:a{1,2}){1,60}c", "a" * 35),
    (r"^(?:\w+\s?){1,64}$", "a" * 25 + "!"),
]


@pytest.mark.parametrize(("pattern", "subject"), SLIP_THROUGH)
def test_backtracking_the_check_misses_stops_at_the_time_limit_in_an_expression(env, pattern, subject):
    assert backtracking_problem(pattern) is None
    # an expression without loops (a gateway condition, a DMN cell) is budgeted too
    with pytest.raises(ScriptLimitExceeded) as caught:
        env.evaluate("re_search(p, s)", {"p": pattern, "s": subject})
    assert caught.value.kind == "time"


@pytest.mark.parametrize("helper", ["re_match", "re_search", "re_sub"])
def test_backtracking_stops_at_the_time_limit_in_a_script(env, helper):
    pattern, subject = SLIP_THROUGH[1]
    call = f"{helper}(p, 'x', s)" if helper == "re_sub" else f"{helper}(p, s)"
    with pytest.raises(ScriptLimitExceeded) as caught:
        env.execute(f"found = {call}\n", {"p": pattern, "s": subject})
    assert caught.value.kind == "time"


def test_a_script_cannot_swallow_the_regex_timeout(env):
    pattern, subject = SLIP_THROUGH[0]
    data: dict[str, Any] = {"p": pattern, "s": subject}
    with pytest.raises(ScriptLimitExceeded) as caught:
        env.execute("try:\n    found = re_search(p, s)\nexcept:\n    found = 'swallowed'\ndone = 1\n", data)
    assert caught.value.kind == "time"


@pytest.mark.parametrize(("pattern", "subject"), [
    ("(a|a)*c", "a" * 30),
    (r"^(\w|\w\w)*$", "a" * 35 + "!"),
    (r"(\d|\d\d)*x", "1" * 40),
    (r"(a+)+$", "a" * 40 + "b"),
])
def test_with_the_static_check_off_the_review_patterns_still_end_in_time(env, no_static_check, pattern, subject):
    """The review's patterns: whatever the regex engine makes of them, none runs past the limit."""
    try:
        found = env.evaluate("re_search(p, s)", {"p": pattern, "s": subject})
    except ScriptLimitExceeded as exc:
        assert exc.kind == "time"
    else:
        assert found is None  # the engine saw through this one at once


def test_the_match_timeout_is_what_is_left_of_the_budget():
    budget = sandbox._Budget(10.0, 256)
    token = sandbox._ACTIVE_BUDGET.set(budget)
    try:
        budget.deadline = time.monotonic() + 0.3
        active, timeout = sandbox._regex_deadline()
        assert active is budget and 0 < timeout <= 0.3
        budget.deadline = time.monotonic() - 0.01
        with pytest.raises(ScriptLimitExceeded) as caught:
            sandbox._regex_deadline()
        assert caught.value.kind == "time" and budget.tripped is not None
    finally:
        sandbox._ACTIVE_BUDGET.reset(token)


def test_outside_a_budgeted_call_the_helpers_still_time_out(monkeypatch, no_static_check):
    monkeypatch.setattr(sandbox, "_UNBUDGETED_REGEX_SECONDS", 0.2)
    with pytest.raises(ScriptLimitExceeded) as caught:
        sandbox.re_search(r"^(\w|\w\w)*$", "a" * 40 + "!")
    assert caught.value.kind == "time"


# -- ordinary use is unchanged ---------------------------------------------------------------------

SAME_AS_RE = [
    (r"[,;\s]+", "INC-1, INC-2;INC-3  INC-4"),  # processes/problem_management.bpmn
    (r"(?P<kind>INC|REQ)-(\d+)", "see INC-42 and REQ-7"),
    (r"\d+", "abc 123 def ٣٤"),
    (r"\w+", "Café naïve ß Straße"),
    (r"(?i)straße", "STRASSE straße STRAßE"),
    (r"^\s*[A-Za-z]{2,8}-[0-9]{1,12}\s*$", "  INC-0042 "),
    (r"^[a-z][a-z0-9._-]{1,63}$", "alice.smith"),
    (r"a{,2}b", "aaab"),
    (r"x{2,}", "x xx xxx"),
    (r"a{e<=1}", "ab a{e<=1}"),  # a literal '{' for re; fuzzy matching for regex unless escaped
    (r"\{(\w+)\}", "Hello {name}"),
    (r"x{}", "x{}"),
    (r"\N{LATIN SMALL LETTER E WITH ACUTE}", "café"),
    (r"(?m)^\w+$", "one\ntwo\n"),
    (r"$", "line\n"),
    (r"(?s)a.b", "a\nb"),
    (r"(a)|(b)", "b"),
    (r"", "abc"),
    (r"\bis\b", "this is it"),
    (r"(?x) \d+  # digits\n [a-z]", "12a"),
    (r"(?>a+)b", "aaab"),
    (r"a++b", "aaab"),
]


def _as_re(found: re.Match[str] | None) -> Any:
    return None if found is None else (found.span(), found.groups(), found.groupdict())


def _as_helper(found: Any) -> Any:
    return None if found is None else (found.span(), found.groups(), found.groupdict())


@pytest.mark.parametrize(("pattern", "subject"), SAME_AS_RE)
def test_match_and_search_answer_what_re_answers(pattern, subject):
    assert _as_helper(sandbox.re_search(pattern, subject)) == _as_re(re.search(pattern, subject))
    assert _as_helper(sandbox.re_match(pattern, subject)) == _as_re(re.match(pattern, subject))


@pytest.mark.parametrize(("pattern", "subject"), SAME_AS_RE)
@pytest.mark.parametrize("repl", ["#", r"<\g<0>>", ""])
def test_sub_answers_what_re_answers(pattern, subject, repl):
    assert sandbox.re_sub(pattern, repl, subject) == re.sub(pattern, repl, subject)
    assert sandbox.re_sub(pattern, repl, subject, 1) == re.sub(pattern, repl, subject, count=1)


def test_business_scripts_keep_working(env):
    data: dict[str, Any] = {"related_incidents": "INC-1, INC-2;INC-3"}
    env.execute(
        'related_incidents = re_sub(r"[,;\\s]+", " ", related_incidents).split()\n'
        "m = re_match(r'(?P<kind>INC|REQ)-(\\d+)', 'INC-42')\n"
        "kind, number = m.group('kind'), int(m[2])\n"
        "span = re_search(r'\\d+', 'abc 123').span()\n"
        "named = re_sub(r'(\\w+)@(\\w+)', r'\\2 at \\1', 'alice@example')\n"
        "missing = re_match('x', 'abc') is None\n",
        data,
    )
    assert data["related_incidents"] == ["INC-1", "INC-2", "INC-3"]
    assert (data["kind"], data["number"], data["span"], data["named"], data["missing"]) == (
        "INC", 42, (4, 7), "example at alice", True)
    assert "m" not in data
    # a condition such as a gateway's or a DMN cell's
    assert env.evaluate("re_match(r'^INC-\\d+$', ref) is not None", {"ref": "INC-7"}) is True


def test_what_re_refuses_stays_refused_with_re_errors():
    for pattern in ["(", r"\p{L}", "(?<name>x)", "(?V1)a", r"a\K"]:
        with pytest.raises(re.error):
            sandbox.re_search(pattern, "a")


def test_a_posix_class_in_a_set_is_refused_rather_than_read_differently():
    # re reads '[[:digit:]]' as the characters '[:digt' then ']'; regex as a digit class
    with warnings.catch_warnings(), pytest.raises(re.error, match="POSIX"):
        warnings.simplefilter("ignore", FutureWarning)
        sandbox.re_search("[[:digit:]]", "1")


def test_compiled_patterns_are_cached():
    sandbox._compile_pattern.cache_clear()
    sandbox.re_search(r"\d+", "a1")
    sandbox.re_match(r"\d+", "1")
    sandbox.re_sub(r"\d+", "", "1")
    info = sandbox._compile_pattern.cache_info()
    assert (info.misses, info.hits) == (1, 2)


# -- the compile-time check ------------------------------------------------------------------------

OVERLAPPING = [
    "(a|a)*",
    "(a|a)*c",
    r"(\d|\d\d)*",
    "(a|ab)*c",
    r"^(\w|\w\w)*$",
    "(ab|[a-c]d)+",
    "(ab|.c)*",
    "(?i)(ab|Ac)*",
    "(x|(?:y|x)z)*",
    "(a?|b?)*",
]


@pytest.mark.parametrize("pattern", OVERLAPPING)
def test_overlapping_alternation_in_an_unbounded_repeat_is_refused(pattern):
    for outer_limit in (64, 1):  # scripts and DMN; form patterns
        problem = backtracking_problem(pattern, outer_limit)
        assert problem is not None and "alternation inside a repeat" in problem


@pytest.mark.parametrize("pattern", OVERLAPPING[:4])
def test_a_script_using_one_fails_with_a_rule_violation(env, pattern):
    with pytest.raises(ScriptRuleViolation, match="alternation inside a repeat"):
        env.evaluate("re_search(p, s)", {"p": pattern, "s": "aaa"})
    with pytest.raises(ScriptRuleViolation, match="alternation inside a repeat"):
        env.execute("found = re_search(p, 'aaa')\n", {"p": pattern})


@pytest.mark.parametrize("pattern", ["(a+)+$", r"^(\w+\s?)*$"])
def test_nested_quantifiers_are_still_refused_with_their_message(pattern):
    assert "repeat inside a repeat" in (backtracking_problem(pattern) or "")


ACCEPTED = [
    "(INC|IR)+",  # a shared start the parser factors out, alternatives then differ
    "(ab|cd)*",
    "(ab|Ac)*",  # case-sensitive: different first characters
    r"(\s|,)+",
    r"(\w|-)+",
    r'(?:[^"\\]|\\.)*',
    "(a|b|c)*",
    "(ab|c)*(cd|ce)",  # the alternation after the repeat is not repeated
    "(https?|ftp)://",
    r"(?:\d{1,3}\.){3}\d{1,3}",
    "(a|ab){2}c",  # bounded: at most 2**2 ways
]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_alternations_whose_alternatives_start_differently_are_accepted(pattern):
    assert backtracking_problem(pattern) is None


def _shipped_patterns() -> tuple[list[str], list[str]]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    forms = sorted({p for path in (ROOT / "forms").glob("*.json")
                    for p in walk(json.loads(path.read_text(encoding="utf-8")))})
    helper_call = re.compile(r"""re_(?:match|search|sub)\(\s*r?(["'])(.*?)\1""")
    scripts = sorted({m.group(2) for path in (ROOT / "processes").iterdir() if path.suffix in (".bpmn", ".dmn")
                      for m in helper_call.finditer(path.read_text(encoding="utf-8"))})
    return forms, scripts


def test_the_shipped_patterns_are_accepted():
    forms, scripts = _shipped_patterns()
    assert forms  # the search found them (processes/ used one re_sub pattern when this was written)
    for pattern in forms:
        assert backtracking_problem(pattern, outer_limit=1) is None, pattern
    for pattern in scripts:
        assert backtracking_problem(pattern) is None, pattern
        sandbox.re_search(pattern, "x")


# -- deep structures -------------------------------------------------------------------------------

DEEP_HASH = r'''
from app.engine import ProcessEngine, ProcessLibrary, ScriptIdentity, SourceFile

BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="t">
 <bpmn:process id="deep_hash" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="bomb"/>
  <bpmn:scriptTask id="bomb"><bpmn:script>t = ()
for _ in range(300000):
    t = (t,)
s = {t}</bpmn:script></bpmn:scriptTask>
  <bpmn:sequenceFlow id="f2" sourceRef="bomb" targetRef="e"/>
  <bpmn:endEvent id="e"/>
 </bpmn:process>
</bpmn:definitions>"""

[process] = ProcessLibrary().compile([SourceFile("deep_hash.bpmn", BPMN)])
engine = ProcessEngine(script_time_limit=30.0)
bundle = engine.spec(process.content_hash, process.spec_json)
who = ScriptIdentity(current_user={"id": 1, "username": "alice"}, initiator={"id": 1, "username": "alice"})
run = engine.start(bundle, {}, who)
print(run.status, run.failure.error_type if run.failure else "-")
'''


def test_hashing_a_deeply_nested_tuple_in_a_script_does_not_kill_the_process():
    """300,000 levels overflow a normal 8 MiB C stack (SIGSEGV); engine steps run on a deep-stack
    thread (app/engine/deep_stack.py), so the instance completes or fails with a script error."""
    done = subprocess.run([sys.executable, "-c", DEEP_HASH], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    status, error_type = done.stdout.split()[-2:]
    assert status in ("completed", "error"), done.stdout
    if status == "error":
        assert error_type != "-" and "limit" not in error_type, done.stdout  # a script error
