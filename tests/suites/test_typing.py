"""Types: mypy passes over the package, and the helpers are typed for their callers."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


USES = """
from collections.abc import Iterator
from typing_extensions import assert_type

import hfapps
from hfapps.api import Answer, Label, Summary, TranslationResult, ZeroShotResult

assert_type(hfapps.sentiment("I loved it"), Label)
assert_type(hfapps.sentiment(["a", "b"], batch_size=8), list[Label])
assert_type(hfapps.sentiment(iter(["a"])), Iterator[Label])
assert_type(hfapps.sentiment("a", top_k=2), list[Label])
assert_type(hfapps.classify(["a"], labels=["x", "y"]), list[ZeroShotResult])
assert_type(hfapps.summarize("text", max_new_tokens=60), Summary)
assert_type(hfapps.translate(["hi"], source="en", target="de", num_beams=2), list[TranslationResult])
assert_type(hfapps.answer(question="who?", context="Ada."), Answer)
assert_type(hfapps.answer(question=["who?", "what?"], context="Ada."), list[Answer])
assert_type(hfapps.summarize(["a"], long_input="truncate", chunk_tokens=256), list[Summary])
hfapps.summarize("a", long_input="split")  # E: split is translate's, not summarize's
hfapps.sentiment("a", batchsize=8)  # E: unexpected keyword
hfapps.load("poetry")  # E: not a task name
"""


def test_mypy_passes_over_the_package():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_helpers_are_typed_for_their_callers(tmp_path):
    uses = tmp_path / "uses.py"
    uses.write_text(USES)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", os.path.join(ROOT, "pyproject.toml"), str(uses)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    flagged = sorted({int(line.split(":")[1]) for line in errors})
    expected = [n for n, line in enumerate(USES.splitlines(), 1) if "# E:" in line]
    assert flagged == expected, done.stdout
