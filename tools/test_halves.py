"""`make test`: the whole suite in two pytest processes side by side, one per core.

One half is the pages and the engine (tests/browser, tests/engine, tests/web and the top level), the
other the HTTP API, the services and the units (tests/http, tests/services, tests/unit), each in its
own temporary folder (every test makes its own SQLite database there). Each half's output is
printed whole when it ends, the first to end first; the exit status is the first non-zero one.
Arguments go to both halves. Given a test path, only that runs, in one process; so does the suite
on PostgreSQL (``TEST_DATABASE_URL``: one test database, which two runs would share).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HALVES = (
    ["tests/browser", "tests/engine", "tests/web", "tests/test_makefile.py"],
    ["tests/http", "tests/services", "tests/unit"],
)


def main(args: list[str]) -> int:
    python = sys.executable
    # a path (just that), or PostgreSQL (one test database: two runs on it would meet): one process
    if any(not arg.startswith("-") for arg in args) or os.environ.get("TEST_DATABASE_URL"):
        return subprocess.call([python, "-m", "pytest", "-q", *args], cwd=ROOT)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def run(paths: list[str]) -> None:
        with tempfile.TemporaryDirectory(prefix="pd-tests-") as base:
            done = subprocess.run([python, "-m", "pytest", "-q", f"--basetemp={base}/t", *args, *paths], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with lock:
            print(f"== {' '.join(paths)} ==\n{done.stdout}", flush=True)
            results.append((done.returncode, " ".join(paths)))

    threads = [threading.Thread(target=run, args=(paths,)) for paths in HALVES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [(code, paths) for code, paths in results if code != 0]
    for code, paths in failed:
        print(f"{paths}: exit {code}", file=sys.stderr)
    return failed[0][0] if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
