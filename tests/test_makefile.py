"""The Makefile's `run` target: what it hands the server it starts (read with `make -n`, nothing is built)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def serving_command(*args: str, env: dict[str, str]) -> str:
    """The recipe line that starts the server, with its backslash-continued lines joined."""
    printed = subprocess.run(["make", "-n", "run", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout.splitlines()
    end = next(i for i, line in enumerate(printed) if " run --host 127.0.0.1" in line)
    start = end
    while start > 0 and printed[start - 1].endswith("\\"):
        start -= 1
    return " ".join(line.removesuffix("\\").strip() for line in printed[start:end + 1])


def public_url(*args: str, **extra: str) -> str:
    """PROCESSDESK_PUBLIC_URL as the server `make run` starts would see it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSDESK_")} | extra
    command = serving_command(*args, env=env)
    assignments = command.partition(".venv/bin/flask")[0]  # the environment given to flask, not flask itself
    shown = subprocess.run(["bash", "-c", assignments + ' bash -c \'echo "$PROCESSDESK_PUBLIC_URL"\''], env=env,
                           capture_output=True, text=True, timeout=10, check=True)
    return shown.stdout.strip()


def test_links_in_notifications_point_at_the_port_served():
    assert public_url("PORT=5077") == "http://127.0.0.1:5077"


def test_an_explicit_public_address_wins():
    assert public_url("PORT=5077", PROCESSDESK_PUBLIC_URL="https://desk.example.org") == "https://desk.example.org"
