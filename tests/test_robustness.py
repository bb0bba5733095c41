"""Faults and bad input: hfapps keeps working or stops with a clear message, and loses nothing the user had."""

import json
import math
import os

import pytest
import torch
from transformers import Trainer, TrainerCallback

import hfapps
from hfapps import models
from hfapps.errors import HfappsError, ModelLoadError
from hfapps.resilience import COMPLETE_MARKER, NonFiniteLossError
from hfapps.train import train
from tiny_models import write_sentiment_data

RUN = ["--dataset_name", "", "--text_column", "text", "--max_steps", "6", "--logging_steps", "1",
       "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
       "--per_device_train_batch_size", "8", "--load_best_model_at_end", "false", "--early_stopping_patience", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_sentiment_data(str(tmp_path_factory.mktemp("data")))


def run(tiny, data, out, *extra, callbacks=()):
    return train("sentiment", [*RUN, "--model_name_or_path", tiny["classifier"], "--train_file", data["train"],
                               "--validation_file", data["validation"], "--output_dir", str(out), *extra],
                 callbacks=callbacks)


def final_eval_loss(out):
    return json.loads((out / "metrics.json").read_text())["eval"]["eval_loss"]


def test_interrupted_checkpoint_write_is_never_taken_for_whole(tiny, data, tmp_path, monkeypatch):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    run(tiny, data, whole)
    real_save = Trainer._save_rng_state

    def failing_save(self, output_dir):
        if self.state.global_step == 4:
            raise OSError("No space left on device (simulated)")
        return real_save(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", failing_save)
    with pytest.raises(OSError, match="simulated"):
        run(tiny, data, broken)
    monkeypatch.undo()
    partial = broken / "checkpoint-4"
    assert (partial / "model.safetensors").exists() and not (partial / COMPLETE_MARKER).exists()
    assert (broken / "checkpoint-2" / COMPLETE_MARKER).exists()
    with pytest.raises(ModelLoadError, match="interrupted while being written.*checkpoint-2"):
        hfapps.load("sentiment", str(partial))
    with pytest.raises(ModelLoadError, match="has not finished"):
        hfapps.load("sentiment", str(broken))
    assert hfapps.load("sentiment", str(broken / "checkpoint-2"))("the film was great")["label"]
    run(tiny, data, broken)  # the same command again resumes from the last whole checkpoint
    assert json.loads((broken / "run.json").read_text())["resumed_from"].endswith("checkpoint-2")
    assert final_eval_loss(broken) == pytest.approx(final_eval_loss(whole), abs=1e-6)


def test_interrupted_final_save_leaves_no_half_model(tiny, data, tmp_path, monkeypatch):
    out = tmp_path / "run"

    def failing_publish(staging, output_dir):
        raise OSError("interrupted while moving the final model (simulated)")

    monkeypatch.setattr("hfapps.train.publish", failing_publish)
    with pytest.raises(OSError, match="simulated"):
        run(tiny, data, out)
    monkeypatch.undo()
    assert not (out / "model.safetensors").exists()
    with pytest.raises(ModelLoadError, match="has not finished.*checkpoint-6"):
        hfapps.load("sentiment", str(out))
    run(tiny, data, out)
    assert hfapps.load("sentiment", str(out))("the film was great")["label"] in ("NEGATIVE", "POSITIVE")


class PoisonAfter(TrainerCallback):
    """Turns one weight into NaN after `step`, as a diverging run would."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            with torch.no_grad():
                next(model.parameters()).view(-1)[0] = float("nan")


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny, data, tmp_path):
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 4.*checkpoint-2") as err:
        run(tiny, data, out, callbacks=[PoisonAfter(3)])
    assert "learning_rate" in str(err.value)
    assert (out / "checkpoint-2" / COMPLETE_MARKER).exists() and not (out / "checkpoint-4").exists()
    restored = hfapps.load("sentiment", str(out / "checkpoint-2"))
    assert all(torch.isfinite(p).all() for p in restored.pipeline.model.parameters())


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
    done = subprocess.run([sys.executable, "-c", OOM_SCRIPT, model], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
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


def test_trust_remote_code_is_off_and_nothing_is_executed(tiny, tmp_path):
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(tiny["classifier"], folder)
    marker = tmp_path / "executed.txt"
    (folder / "custom_model.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "custom_model.Config",
                          "AutoModelForSequenceClassification": "custom_model.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    # A known architecture loads with transformers' own code; the folder's code is not run.
    assert hfapps.load("sentiment", str(folder))("the film was great")["label"] in ("NEGATIVE", "POSITIVE")
    assert not marker.exists()
    # An architecture that only the folder's code defines is refused with the way to allow it.
    config["model_type"] = "my-secret-architecture"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="trust_remote_code=True"):
        hfapps.load("sentiment", str(folder))
    assert not marker.exists()


def test_recipe_paths_that_do_not_exist(tiny, data, tmp_path):
    from hfapps.data import DataError

    with pytest.raises(DataError, match="does not exist"):
        run(tiny, data, tmp_path / "x", "--validation_file", str(tmp_path / "missing.jsonl"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        run(tiny, data, tmp_path / "y", "--model_name_or_path", str(tmp_path / "no-model"))


def test_resume_from_a_whole_checkpoint_after_removing_a_partial_one(tiny, data, tmp_path):
    from hfapps.resilience import last_complete_checkpoint

    out = tmp_path / "ckpt"
    run(tiny, data, out)
    kept = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(kept) >= 2 and all((p / COMPLETE_MARKER).exists() for p in kept)
    (kept[-1] / COMPLETE_MARKER).unlink()  # as if the newest had been cut off mid-write
    assert last_complete_checkpoint(str(out)) == str(kept[-2])
    assert models.resolve(str(kept[-2]))[0].is_local
    with pytest.raises(ModelLoadError, match="interrupted"):
        models.resolve(str(kept[-1]))
    assert math.isfinite(final_eval_loss(out))
