"""app/engine/deep_stack.py: diagram code runs on a worker with a deep C stack, in the caller's
context, and what it raises reaches the caller."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.engine import deep_stack
from app.engine.sandbox import ScriptLimitExceeded

ROOT = str(Path(__file__).resolve().parents[2])
WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_the_function_runs_elsewhere_with_the_callers_context_and_its_result():
    token = WHO.set("rita")
    try:
        seen = deep_stack.call_deep(lambda extra: (WHO.get(), threading.current_thread().name, extra), "x")
    finally:
        WHO.reset(token)
    assert seen == ("rita", "processdesk-deep-stack", "x")
    # what the function sets in its context stays there: the caller's is its own
    deep_stack.call_deep(lambda: WHO.set("mallory"))
    assert WHO.get() == "nobody"


def test_what_it_raises_is_raised_in_the_caller_even_a_base_exception():
    def out_of_time() -> None:
        raise ScriptLimitExceeded("time", 2.0)

    with pytest.raises(ScriptLimitExceeded):
        deep_stack.call_deep(out_of_time)
    with pytest.raises(ZeroDivisionError):
        deep_stack.call_deep(lambda: 1 / 0)
    # the worker survived both and is reused
    assert deep_stack.call_deep(lambda: 2 + 2) == 4


def test_a_call_from_a_worker_runs_in_place_and_workers_are_reused():
    names = deep_stack.call_deep(lambda: (threading.get_ident(), deep_stack.call_deep(threading.get_ident)))
    assert names[0] == names[1]
    first = deep_stack.call_deep(threading.get_ident)
    assert deep_stack.call_deep(threading.get_ident) == first


def test_callers_on_several_threads_each_get_their_own_worker():
    barrier = threading.Barrier(3, timeout=10)
    results: list[int] = []

    def work() -> None:
        results.append(deep_stack.call_deep(lambda: (barrier.wait(), threading.get_ident())[1]))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(set(results)) == 3  # all three waited at the barrier at once: three workers


def test_the_stack_grows_with_the_script_memory_limit():
    before = deep_stack.stack_bytes()
    assert before >= deep_stack.MIN_STACK_BYTES
    deep_stack.require_stack_for(64)  # smaller than the minimum: nothing changes
    assert deep_stack.stack_bytes() == before


CRASH = """
import sys
from app.engine import deep_stack
def bomb():
    t = ()
    for _ in range(300_000):
        t = (t,)
    return len({t})
print(deep_stack.call_deep(bomb) if sys.argv[1] == "deep" else bomb())
"""


@pytest.mark.parametrize("where", ["deep", "here"])
def test_hashing_a_deeply_nested_tuple_kills_the_process_only_on_a_normal_stack(where):
    """300,000 levels overflow an 8 MiB stack (the interpreter dies with SIGSEGV: nothing can
    catch it); on a worker's stack the hash completes."""
    done = subprocess.run([sys.executable, "-c", CRASH, where], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    if where == "deep":
        assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr[-500:]
    else:
        assert done.returncode != 0  # the hazard this module exists for


FORK = """
import os, sys
from app.engine import deep_stack
deep_stack.call_deep(lambda: None)  # the parent has an idle worker now
pid = os.fork()
if pid == 0:  # gunicorn's worker: the parent's threads are not running here
    os._exit(0 if deep_stack.call_deep(lambda: 6 * 7) == 42 else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_starts_its_own_workers():
    done = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-500:]


def test_an_interrupted_caller_interrupts_the_step_and_waits_until_it_has_unwound():
    """Ctrl-C, or a server's timeout raising SystemExit, reaches the caller waiting on the worker:
    the step is interrupted as it would have been on the caller's own thread, and the caller goes
    on only once it has unwound (nothing may run on the step's session afterwards)."""
    import signal
    import time

    class Stop(Exception):
        pass

    progress: list[object] = []

    def step() -> None:
        try:
            for _ in range(500):
                time.sleep(0.01)
                progress.append(1)
        finally:
            progress.append("unwound")

    def interrupt(signum: int, frame: object) -> None:
        raise Stop()

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(Stop):
            deep_stack.call_deep(step)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert progress[-1] == "unwound" and len(progress) < 400  # stopped, and finished stopping
    assert deep_stack.call_deep(lambda: 6 * 7) == 42  # a fresh worker serves the next call


def test_without_a_thread_to_start_the_function_runs_in_place(monkeypatch):
    def cannot_start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(deep_stack, "_idle", [])
    monkeypatch.setattr(deep_stack._Worker, "start", cannot_start)
    assert deep_stack.call_deep(lambda: threading.current_thread().name) == threading.current_thread().name


def test_a_burst_of_callers_leaves_at_most_max_idle_workers_waiting(monkeypatch):
    monkeypatch.setattr(deep_stack, "_idle", [])
    monkeypatch.setattr(deep_stack, "MAX_IDLE", 2)
    callers = 5
    barrier = threading.Barrier(callers, timeout=10)
    threads = [threading.Thread(target=lambda: deep_stack.call_deep(barrier.wait)) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(deep_stack._idle) == 2  # the other three ended
