"""Faults tested as themselves: a real signal to a batch run and to training, a real memory limit, and a single input
that cannot fit."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import hfapps
from hfapps.errors import HfappsError

from tiny_models import make_classifier, sentences, write_sentiment_data

pytestmark = pytest.mark.slow


ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def wait_for(condition, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def line_count(path):
    return sum(1 for _ in open(path, "rb")) if os.path.exists(path) else 0


@pytest.fixture(scope="module")
def batch_job(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    model = make_classifier(str(root / "model"))
    source = root / "in.jsonl"
    texts = sentences(8000, seed=3)
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    reference = root / "reference.jsonl"
    command = [
        sys.executable,
        "-m",
        "hfapps",
        "sentiment",
        "--input",
        str(source),
        "--model",
        model,
        "--batch-size",
        "8",
    ]
    subprocess.run([*command, "--output", str(reference)], check=True, env=ENV, capture_output=True)
    return command, [json.loads(line) for line in open(reference)], root


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_batch_run_interrupted_then_resumed(batch_job, sig, tmp_path):
    command, reference, _ = batch_job
    out = tmp_path / "out.jsonl"
    # SIGINT as a terminal delivers it: a test run started in the background inherits SIGINT ignored, and so would
    # the child, which would then never see the signal.
    process = subprocess.Popen(
        [*command, "--output", str(out)],
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert wait_for(lambda: line_count(out) >= 200), "the run wrote nothing"
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    written = line_count(out)
    assert 0 < written < len(reference), "the run should have been cut off part-way"
    if sig == signal.SIGINT:
        assert process.returncode == 130 and "--resume" in stderr
    else:
        with open(out, "a") as handle:
            handle.write('{"id": 99999, "text": "cut off mid-li')  # as if killed while writing a line
    whole_lines = [json.loads(line) for line in open(out) if line.endswith("\n")]
    assert [r["id"] for r in whole_lines] == list(range(len(whole_lines)))  # valid JSONL, in input order

    refused = subprocess.run([*command, "--output", str(out)], env=ENV, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr  # never overwrites silently
    resumed = subprocess.run([*command, "--output", str(out), "--resume"], env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = [json.loads(line) for line in open(out)]
    assert [r["id"] for r in final] == list(range(len(reference)))  # nothing redone twice, nothing missing
    assert [r["label"] for r in final] == [r["label"] for r in reference]


TRAIN_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from transformers import TrainerCallback
    from hfapps.training.runner import train

    class Slow(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            time.sleep(float(os.environ.get("STEP_SLEEP", "0")))

    model, train_file, validation_file, out = sys.argv[1:5]
    train("sentiment", ["--model_name_or_path", model, "--dataset_name", "", "--train_file", train_file,
                        "--validation_file", validation_file, "--text_column", "text", "--max_steps", "12",
                        "--logging_steps", "1", "--eval_strategy", "steps", "--eval_steps", "4",
                        "--save_strategy", "steps", "--save_steps", "2", "--save_total_limit", "3",
                        "--per_device_train_batch_size", "8", "--load_best_model_at_end", "false",
                        "--early_stopping_patience", "0", "--output_dir", out], callbacks=[Slow()])
""")


def test_training_killed_with_sigkill_resumes_to_the_same_metrics(tmp_path):
    model = make_classifier(str(tmp_path / "model"))
    data = write_sentiment_data(str(tmp_path / "data"))
    script = tmp_path / "run_train.py"
    script.write_text(TRAIN_SCRIPT)
    args = [sys.executable, str(script), model, data["train"], data["validation"]]
    subprocess.run([*args, str(tmp_path / "whole")], check=True, env=ENV, capture_output=True)

    out = tmp_path / "killed"
    process = subprocess.Popen(
        [*args, str(out)], env={**ENV, "STEP_SLEEP": "0.4"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert wait_for(lambda: (out / "checkpoint-6" / "hfapps-complete.json").exists())
    process.kill()
    process.wait()
    assert not (out / "metrics.json").exists()
    resumed = subprocess.run([*args, str(out)], env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert int(run["resumed_from"].rsplit("-", 1)[1]) >= 6
    killed_metrics = json.loads((out / "metrics.json").read_text())
    whole_metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert killed_metrics["eval"]["eval_loss"] == pytest.approx(whole_metrics["eval"]["eval_loss"], abs=1e-6)
    assert killed_metrics["validation"]["accuracy"] == whole_metrics["validation"]["accuracy"]
    assert killed_metrics["validation"]["confusion_matrix"] == whole_metrics["validation"]["confusion_matrix"]


OOM_SCRIPT = r"""
import json, logging, resource, sys
import hfapps

logging.basicConfig(level=logging.WARNING)
task = hfapps.load("sentiment", sys.argv[1], batch_size=32, max_batch_tokens=None, device="cpu")
texts = [" ".join(["the film was great"] * 400 + [str(i)]) for i in range(32)]
task(texts[:1])  # warm up: threads, lazy allocations
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
free = task(texts)  # the whole batch of 32, with no limit: the reference results
batch_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
def address_space():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
# A real limit on this process's memory: what it holds now plus a third of what the batch of 32 took.
resource.setrlimit(resource.RLIMIT_AS, (address_space() + batch_bytes // 3, resource.RLIM_INFINITY))
hfapps.clear_cache()
limited = task(texts)
print(json.dumps({"same": [r["label"] for r in limited] == [r["label"] for r in free] and
                  all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(limited, free)),
                  "cap": task._batch_cap, "batch_mb": batch_bytes >> 20}))
"""


def test_cpu_out_of_memory_halves_the_batch_and_finishes(tmp_path):
    """A real CPU out-of-memory: the process runs under an address-space limit (setrlimit) that a batch of 32
    long texts does not fit in; hfapps must halve its batches until they fit and return the same results."""
    import json
    import subprocess
    import sys

    from tiny_models import make_classifier

    model = make_classifier(str(tmp_path / "wide"), max_positions=2048, hidden=256)
    done = subprocess.run(
        [sys.executable, "-c", OOM_SCRIPT, model],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same"] and 1 <= result["cap"] < 32
    assert "Out of memory on a batch of 32" in done.stderr


def test_a_single_input_that_cannot_fit_says_so(tiny):
    task = hfapps.load("sentiment", tiny["classifier"])

    def no_memory(batch, options):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1000000 bytes.")

    task._predict = no_memory
    with pytest.raises(HfappsError, match="does not fit in memory"):
        task("one text")
