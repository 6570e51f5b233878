"""Run diagram code on a thread whose C stack no script can exhaust.

CPython 3.11 does not guard every C-level recursion. Hashing a tuple nested about 130,000 levels
deep (``t = (t,)`` in a loop, then ``{t}``) recurses once per level in C and overflows an 8 MiB
stack: the main thread's (a gunicorn sync worker serves requests there) and a default thread's.
The process dies with SIGSEGV, taking every user's request with it, and a timer that fires such a
script kills the sweeper that retries it. Nothing in the interpreter can catch it.

What bounds it is memory. A level of such a structure costs at least 64 bytes of heap (the
smallest tuple) and hashing it about 64 bytes of stack (measured: 130,000 levels fit 8 MiB,
1,040,000 fit 64 MiB), and the script sandbox stops a script whose memory grows past its limit
(``memory_limit_mb``, checked every 10 ms of script time). So a stack several times larger than
that limit cannot run out before the limit stops the script. :func:`call_deep` runs a function on
such a thread: a small pool of long-lived workers, each with a stack of :func:`stack_bytes`
(at least 1 GiB of address space; only the pages a deep recursion touches are ever backed by
memory), so the hand-over costs a queue put and an event wait, not a thread start.

The function runs in a copy of the caller's context (``contextvars``: the acting user, the clock,
Flask's application context), the caller waits for it, and whatever it raises (``BaseException``
included: a script's ``ScriptLimitExceeded``) is raised again in the caller. Calls made from a
worker run in place. A caller interrupted while it waits (Ctrl-C; a server's timeout or shutdown
raising SystemExit) interrupts the step with the same exception and waits until it has unwound,
so nothing runs on the step's session once the caller goes on. Where no thread can be started
(an address-space limit smaller than the stack) the function runs in place, with a warning
logged once. A forked child (gunicorn's workers) starts with no workers: the parent's threads do
not survive a fork.
"""

from __future__ import annotations

import contextvars
import ctypes
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MAX_IDLE", "MIN_STACK_BYTES", "call_deep", "require_stack_for", "stack_bytes"]

T = TypeVar("T")

#: The smallest stack a worker gets: 16 times the default script memory limit (256 MiB) would be
#: 4 GiB; 1 GiB already holds 16 million levels, four times what 256 MiB of tuples can build.
MIN_STACK_BYTES = 1 << 30
#: Idle workers kept for the next calls (one per thread that runs steps at once: a threaded
#: server's request threads and the sweeper); a burst beyond that starts workers that then end.
MAX_IDLE = 8
#: How many times the script memory limit a worker's stack holds (a level costs about as much
#: stack as heap; the margin covers the memory check's interval and other frames on the stack).
_STACK_PER_MEMORY = 4

log = logging.getLogger(__name__)

_lock = threading.Lock()
_warned = False
_stack_bytes = MIN_STACK_BYTES
_idle: list[_Worker] = []
_local = threading.local()


def stack_bytes() -> int:
    """The stack size of the workers started from now on."""
    return _stack_bytes


def require_stack_for(memory_limit_mb: int) -> None:
    """Make new workers' stacks big enough for scripts limited to ``memory_limit_mb``; idle
    workers with a smaller stack are let go."""
    global _stack_bytes
    wanted = max(MIN_STACK_BYTES, _STACK_PER_MEMORY * memory_limit_mb * (1 << 20))
    with _lock:
        if wanted <= _stack_bytes:
            return
        _stack_bytes = wanted
        stale = [w for w in _idle if w.stack < wanted]
        _idle[:] = [w for w in _idle if w.stack >= wanted]
    for worker in stale:
        worker.jobs.put(None)


class _Job:
    __slots__ = ("fn", "context", "done", "result", "error")

    def __init__(self, fn: Callable[[], Any], context: contextvars.Context) -> None:
        self.fn = fn
        self.context = context
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Worker(threading.Thread):
    def __init__(self, stack: int) -> None:
        super().__init__(name="processdesk-deep-stack", daemon=True)
        self.stack = stack
        self.pid = os.getpid()
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()

    def run(self) -> None:
        _local.deep = True
        while (job := self.jobs.get()) is not None:
            try:
                job.result = job.context.run(job.fn)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
                job.error = exc
            finally:
                job.done.set()
            del job


def _take() -> _Worker | None:
    """An idle worker, or a new one; None when no thread can be started (an address-space limit
    too small for the stack, say): the caller then runs in place, as before this module."""
    global _warned
    with _lock:
        while _idle:
            worker = _idle.pop()
            if worker.pid == os.getpid() and worker.is_alive():
                return worker
        size = _stack_bytes
        try:
            previous = threading.stack_size(size)
        except (ValueError, RuntimeError):
            previous = None
        try:
            worker = _Worker(size)
            worker.start()
        except RuntimeError as exc:  # "can't start new thread"
            if not _warned:
                _warned = True
                log.warning("no thread with a %d MiB stack could be started (%s): diagram code runs on the "
                            "caller's stack, where a deeply nested structure can crash the process",
                            size >> 20, exc)
            return None
        finally:
            if previous is not None:
                threading.stack_size(previous)
    return worker


def _give_back(worker: _Worker) -> None:
    with _lock:
        if worker.stack >= _stack_bytes and worker.pid == os.getpid() and len(_idle) < MAX_IDLE:
            _idle.append(worker)
            return
    worker.jobs.put(None)  # a burst's extra workers end: at most MAX_IDLE wait for the next call


def call_deep(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a deep-stack worker, in a copy of the caller's context; its
    result, or what it raised, raised again here."""
    if getattr(_local, "deep", False):
        return fn(*args, **kwargs)
    worker = _take()
    if worker is None:
        return fn(*args, **kwargs)
    job = _Job(lambda: fn(*args, **kwargs), contextvars.copy_context())
    worker.jobs.put(job)
    try:
        job.done.wait()
    except BaseException as exc:
        # The caller is interrupted (Ctrl-C, a server's timeout or shutdown raising SystemExit):
        # interrupt the step as it would have been on the caller's own thread, and wait until it
        # has unwound, so that nothing runs on its session once the caller goes on. The worker
        # is retired, not reused.
        if not job.done.is_set():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident or 0), ctypes.py_object(type(exc)))
        job.done.wait()
        worker.jobs.put(None)
        raise
    _give_back(worker)
    if job.error is not None:
        error, job.error = job.error, None
        raise error
    return job.result  # type: ignore[no-any-return]


def _forget_workers() -> None:
    """In a forked child: the parent's workers are not running here."""
    global _lock
    _lock = threading.Lock()
    _idle.clear()


os.register_at_fork(after_in_child=_forget_workers)
