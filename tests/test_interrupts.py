"""Real interruptions (slow): a batch run and a training run killed part-way, then finished with resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

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
    command = [sys.executable, "-m", "hfapps", "sentiment", "--input", str(source), "--model", model,
               "--batch-size", "8"]
    subprocess.run([*command, "--output", str(reference)], check=True, env=ENV, capture_output=True)
    return command, [json.loads(line) for line in open(reference)], root


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_batch_run_interrupted_then_resumed(batch_job, sig, tmp_path):
    command, reference, _ = batch_job
    out = tmp_path / "out.jsonl"
    # SIGINT as a terminal delivers it: a test run started in the background inherits SIGINT ignored, and so would
    # the child, which would then never see the signal.
    process = subprocess.Popen([*command, "--output", str(out)], env=ENV, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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


TRAIN_SCRIPT = textwrap.dedent('''
    import os, sys, time
    from transformers import TrainerCallback
    from hfapps.train import train

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
''')


def test_training_killed_with_sigkill_resumes_to_the_same_metrics(tmp_path):
    model = make_classifier(str(tmp_path / "model"))
    data = write_sentiment_data(str(tmp_path / "data"))
    script = tmp_path / "run_train.py"
    script.write_text(TRAIN_SCRIPT)
    args = [sys.executable, str(script), model, data["train"], data["validation"]]
    subprocess.run([*args, str(tmp_path / "whole")], check=True, env=ENV, capture_output=True)

    out = tmp_path / "killed"
    process = subprocess.Popen([*args, str(out)], env={**ENV, "STEP_SLEEP": "0.4"}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
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
