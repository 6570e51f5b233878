"""The benchmark's bare engine server (bench/bare_engine.py --serve) and the alternation that
target a's ratio is taken with: what they run and return, not how fast."""

from __future__ import annotations

import pytest

from bench.common import BenchError
from bench.lifecycle import BARE_BATCH, BATCH, BareEngine, alternate


def test_the_bare_engine_runs_batches_of_lifecycles_on_request():
    with BareEngine() as bare:
        first, second = bare.run(3), bare.run(1)
        assert bare.proc.poll() is None
    assert len(first) == 3 and len(second) == 1 and all(d > 0 for d in first + second)
    assert bare.proc.poll() == 0  # told to quit, it ended cleanly


def test_a_bad_command_is_an_error_and_the_server_goes_on():
    with BareEngine() as bare:
        assert bare.proc.stdin is not None
        bare.proc.stdin.write("fly 3\n")
        bare.proc.stdin.flush()
        assert "unknown command" in bare._line()
        assert len(bare.run(2)) == 2


def test_alternate_interleaves_whole_batches_of_both_sides():
    calls: list[int] = []
    with BareEngine() as bare:
        ours, theirs = alternate(0.0, lambda: calls.append(1), bare, at_least=BATCH + 1)
    assert len(ours) == len(calls) == 2 * BATCH
    assert len(theirs) == 2 * BARE_BATCH


def test_a_bare_engine_that_dies_is_reported():
    with BareEngine() as bare:
        bare.proc.kill()
        bare.proc.wait()
        with pytest.raises(BenchError):
            bare.run(1)
