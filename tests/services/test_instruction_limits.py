"""Task instructions cannot freeze the server: one render is bounded in time, memory and size.

A template over a limit fails like one the sandbox refuses: the failure is logged and the reader
gets the error notice instead of the instructions. Ordinary instructions are not affected.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.services import instructions
from app.services.instructions import render_instructions

ROOT = Path(__file__).resolve().parents[2]
ERROR_CLASS = 'class="instructions-error"'
NOT_ALLOWED = "the template uses an operation that is not allowed"


def refused(template: str, caplog: pytest.LogCaptureFixture, data: dict | None = None) -> str:
    """Render ``template``, expect the sandbox's notice and a log line; the logged reason."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.services.instructions"):
        html = render_instructions(template, data or {})
    assert ERROR_CLASS in html and NOT_ALLOWED in html, html[:300]
    assert caplog.records, "the failure must be logged"
    return caplog.text


def test_a_template_that_runs_too_long_is_stopped(caplog, monkeypatch):
    monkeypatch.setattr(instructions, "_RENDER_SECONDS", 0.05)
    # 400 million loop turns: about 12 s per view without a deadline
    template = '{% set s = "x"*20000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}done'
    assert "took longer than" in refused(template, caplog)


def test_recursion_that_runs_too_long_is_stopped(caplog, monkeypatch):
    monkeypatch.setattr(instructions, "_RENDER_SECONDS", 0.05)
    template = "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40)|length }}"
    assert "took longer than" in refused(template, caplog)


def test_the_confirmed_memory_bomb_is_refused_before_it_allocates(caplog):
    # Without a check: 200 OK and +800 MB in one view.
    template = '{% set a = "x".ljust(400000000) %}{% set b = a ~ a %}{{ b|length }}'
    assert "ljust would exceed" in refused(template, caplog)


@pytest.mark.parametrize(
    "template",
    [
        '{% set a = "x".ljust(900000) %}{{ (a ~ a)|length }}',  # concatenation
        '{% set a = "x".ljust(900000) %}{{ (a + a)|length }}',
        '{{ "x".rjust(999999999) }}',
        '{{ "x".center(999999999) }}',
        '{{ "1".zfill(999999999) }}',
        '{% set a = "\t" * 100000 %}{{ a.expandtabs(1000)|length }}',
        '{% set a = "x".ljust(100000, "x") %}{{ a.replace("x", a)|length }}',
        '{% set a = "x".ljust(100000) %}{{ a.join(a)|length }}',  # str.join
        '{% set a = "x".ljust(20000) %}{{ (a|join(a))|length }}',  # the join filter
        '{{ "{:>999999999}".format(1)|length }}',
        '{{ "{:{}}".format(1, 999999999)|length }}',  # width from an argument
        '{% set a = "x".ljust(900000) %}{{ "{0}{0}{0}".format(a)|length }}',
        '{% set a = "x".ljust(900000) %}{{ "{a}{a}{a}".format_map({"a": a})|length }}',
        '{{ ("%999999999d" % 1)|length }}',
        '{{ ("%*d" % (999999999, 1))|length }}',
        '{% set a = "x".ljust(900000) %}{{ ("%s%s" % (a, a))|length }}',
        '{% set a = 10**100 %}{% set b = a**100 %}{{ (b**100) > 1 }}',  # 33 million digits
        '{% set a = 10**100 %}{% set b = a*a %}{% set c = b*b %}{% set d = c*c %}{% set e = d*d %}'
        '{% set f = e*e %}{% set g = f*f %}{% set h = g*g %}{% set i = h*h %}{{ (i*i) > 1 }}',
        '{% set a = "x".ljust(900000) %}{{ [a]*100000 }}',  # the output (a list's text)
        '{% set a = "x".ljust(900000) %}{% for c in "xx" %}{{ a }}{% endfor %}',  # the output, piece by piece
        '{% set a = "x".ljust(1000)|list %}{{ ([a]*100000)|sum(start=[])|length }}',  # quadratic sum
        '{{ "abc".translate({97: "x"}) }}',
    ],
)
def test_operations_that_build_too_much_are_refused(template, caplog):
    refused(template, caplog)


def test_building_too_much_in_all_is_stopped(caplog):
    # Each value is within the size limit, but a loop builds one per turn (500 MB in all).
    template = '{% set a = "x".ljust(500000) %}{% for c in a[:1000] %}{{ (a ~ c)|length }}{% endfor %}'
    assert "built more than" in refused(template, caplog)


def test_process_memory_growth_is_stopped(caplog, monkeypatch):
    # The process's resident memory as the render's checks read it: the baseline, then 1 GB more.
    readings = iter([100_000.0])
    monkeypatch.setattr(instructions, "_rss_kb", lambda: next(readings, 100_000.0 + 1024 * 1024))
    template = '{% set s = "x"*20000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}done'
    assert "grew the server's memory by more than" in refused(template, caplog)


def test_a_render_after_a_stopped_one_is_not_affected(caplog, monkeypatch):
    monkeypatch.setattr(instructions, "_RENDER_SECONDS", 0.05)
    refused('{% set s = "x"*20000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}', caplog)
    monkeypatch.undo()
    assert render_instructions("Hello **{{ name }}**", {"name": "Jo"}) == "<p>Hello <strong>Jo</strong></p>\n"


def test_ordinary_operations_still_work():
    template = ('{{ "%s-%03d" % (code, n) }} {{ "{}: {:>5}".format(name, n) }} {{ name ~ "/" ~ n }} '
                '{{ (items + ["c"])|join(", ") }} {{ name.ljust(6, ".") }} {{ 2 ** 10 }} {{ n * 3 }} '
                '{{ items|sum(start=0) if false else [1, 2]|sum }} {{ "a-b".replace("-", "+") }} {{ "ab" * 3 }}')
    html = render_instructions(template, {"code": "AT", "n": 7, "name": "Jo", "items": ["a", "b"]})
    assert html == "<p>AT-007 Jo:     7 Jo/7 a, b, c Jo.... 1024 21 3 a+b ababab</p>\n"


def test_shipped_instructions_render():
    data = {"title": "Printer down", "requester": "rita", "description": "It *broke*", "ci": "srv-1",
            "quantity": 3, "related_incidents": ["INC-000001", "INC-000002"], "approvers": ["bob"],
            "catalog": {"name": "Laptop", "target_hours": 8}, "received": "no", "fix_change_outcome": "failed",
            "revision_count": 2, "implementer": "ivan", "reopen_count": 1, "rollback_notes": "x" * 5000}
    templates = [element.text for path in sorted((ROOT / "processes").glob("*.bpmn"))
                 for element in ET.parse(path).getroot().iter()
                 if element.tag.endswith("instructionsForEndUser") and element.text]
    assert templates
    for template in templates:
        html = render_instructions(template, data)
        assert ERROR_CLASS not in html, template


def test_the_render_cannot_overflow_the_c_stack():
    # Hashing a tuple nested ~130,000 levels deep overflows an 8 MiB C stack (SIGSEGV, the whole
    # process dies); only a child process may try it. ``namespace`` and ``range`` are not offered,
    # so a template cannot build one; task data could hold one, and the render runs on a deep stack.
    script = textwrap.dedent("""
        import sys
        from app.services import instructions
        from app.services.instructions import render_instructions
        # A loaded CI machine must not turn the deep render below into a time-limit refusal: this
        # test is about the stack, so the clock gets room.
        instructions._RENDER_SECONDS = 30
        template = ("{% set ns = namespace(t=()) %}{% for i in range(100000) %}{% set ns.t = (ns.t,) %}"
                    "{% endfor %}{% for i in range(100000) %}{% set ns.t = (ns.t,) %}{% endfor %}{{ {ns.t: 1} }}")
        print("namespace:", "instructions-error" in render_instructions(template, {}))
        t = ()
        for _ in range(400_000):
            t = (t,)
        print("deep data:", "instructions-error" in render_instructions("{{ {deep: 1}|length }}", {"deep": t}))
        print("alive")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.split("\n")[:3] == ["namespace: True", "deep data: False", "alive"], result.stdout
