"""The transformers 4.57 baseline: a virtual environment with the pipelines users had before transformers 5,
and a call that runs jobs in it (`baseline_tf457.py`) and returns their outputs and times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from common import CACHE, HERE

VENV = os.path.join(CACHE, "venv-tf457")
REQUIREMENTS = ["transformers==4.57.6", "sentencepiece", "gguf", "accelerate"]


def environment() -> str:
    """The baseline's Python (creating the environment the first time: torch 2.13.0 and transformers 4.57.6
    from the package registry, about a minute)."""
    python = os.path.join(VENV, "bin", "python")
    marker = os.path.join(VENV, ".ready")
    wanted = " ".join(REQUIREMENTS)
    if not (os.path.exists(marker) and open(marker).read() == wanted):
        if not os.path.exists(python):
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, *REQUIREMENTS], check=True)
        with open(marker, "w") as handle:
            handle.write(wanted)
    return python


def run(runs: list[dict]) -> dict:
    """Run `runs` (see baseline_tf457.py) in the 4.57 environment; returns {"runs": [...], "transformers": ...}."""
    python = environment()
    with tempfile.TemporaryDirectory() as tmp:
        job, result = os.path.join(tmp, "job.json"), os.path.join(tmp, "result.json")
        with open(job, "w") as handle:
            json.dump({"runs": runs}, handle)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
        done = subprocess.run(
            [python, os.path.join(HERE, "baseline_tf457.py"), job, result], env=env, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"the transformers 4.57 baseline failed:\n{done.stderr[-3000:]}")
        with open(result) as handle:
            return json.load(handle)
