"""ruff, configured in pyproject.toml: the whole tree lints clean and is formatted as the formatter writes it."""

import os
import subprocess
import sys

from conftest import need_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ruff(*args: str) -> subprocess.CompletedProcess:
    need_module("ruff")
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_is_clean():
    done = ruff("check", ".")
    assert done.returncode == 0, done.stdout[-4000:]


def test_ruff_format_is_clean():
    done = ruff("format", "--check", ".")
    assert done.returncode == 0, done.stdout[-4000:]
