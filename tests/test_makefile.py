"""The Makefile's `run` target: what it hands the server it starts and the demo seed before it (read
with `make -n`, nothing is built)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


SERVER = " run --host 127.0.0.1"
SEED = " demo seed"


def serving_command(*args: str, env: dict[str, str], marker: str = SERVER) -> str:
    """The recipe line of `make run` holding ``marker`` (the server's start by default), with its
    backslash-continued lines joined."""
    printed = subprocess.run(["make", "-n", "run", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout.splitlines()
    end = next(i for i, line in enumerate(printed) if marker in line)
    start = end
    while start > 0 and printed[start - 1].endswith("\\"):
        start -= 1
    return " ".join(line.removesuffix("\\").strip() for line in printed[start:end + 1])


def public_url(*args: str, marker: str = SERVER, **extra: str) -> str:
    """PROCESSDESK_PUBLIC_URL as the command of `make run` holding ``marker`` would see it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSDESK_")} | extra
    command = serving_command(*args, env=env, marker=marker)
    assignments = command.partition(".venv/bin/flask")[0]  # the environment given to flask, not flask itself
    shown = subprocess.run(["bash", "-c", assignments + ' bash -c \'echo "$PROCESSDESK_PUBLIC_URL"\''], env=env,
                           capture_output=True, text=True, timeout=10, check=True)
    return shown.stdout.strip()


def test_links_in_notifications_point_at_the_port_served():
    assert public_url("PORT=5077") == "http://127.0.0.1:5077"


def test_an_explicit_public_address_wins():
    assert public_url("PORT=5077", PROCESSDESK_PUBLIC_URL="https://desk.example.org") == "https://desk.example.org"


def test_the_demo_seeds_notifications_point_at_the_port_served_too():
    assert public_url("PORT=5077", marker=SEED) == "http://127.0.0.1:5077"
    assert public_url("PORT=5077", marker=SEED, PROCESSDESK_PUBLIC_URL="https://desk.example.org") == \
        "https://desk.example.org"
