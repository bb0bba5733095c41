"""The import contract (pyproject.toml, import-linter): stages import only the stages below them, and no package's
modules import each other in a cycle. It holds, and it catches an upward import and a cycle when one is added."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import need_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lint_imports(cwd: str) -> subprocess.CompletedProcess:
    need_module("importlinter")
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": cwd},
    )


def test_the_contract_holds():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout


@pytest.fixture
def copy(tmp_path):
    """The package and its pyproject.toml, copied to edit."""
    shutil.copytree(os.path.join(ROOT, "hfapps"), tmp_path / "hfapps", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path / "pyproject.toml")
    return tmp_path


def add_line(path, line: str) -> None:
    text = path.read_text()
    at = text.index("\nfrom ")  # after the module docstring and __future__ import, before the first import
    path.write_text(text[:at] + "\n" + line + text[at:])


def test_an_upward_import_breaks_it(copy):
    add_line(copy / "hfapps" / "models.py", "from .training import runner  # noqa")
    done = lint_imports(str(copy))
    assert done.returncode == 1
    assert "Stages import only the stages below them BROKEN" in done.stdout
    assert "hfapps.models -> hfapps.training.runner" in done.stdout


def test_a_cycle_inside_a_package_breaks_it(copy):
    add_line(copy / "hfapps" / "tasks" / "training.py", "from . import registry  # noqa")
    done = lint_imports(str(copy))
    assert done.returncode == 1
    assert "No import cycles among the modules of any package BROKEN" in done.stdout
    assert "hfapps.tasks" in done.stdout and ".training -> .registry" in done.stdout
