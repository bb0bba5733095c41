"""What keeps a run safe: a checkpoint or final save interrupted part-way is never taken for whole, a NaN loss stops
with the last good checkpoint kept, and a run resumes from the last whole one."""

import json
import math

import pytest
import torch
from transformers import Trainer, TrainerCallback

import hfapps
from hfapps import models
from hfapps.errors import ModelLoadError, NonFiniteLossError
from hfapps.models import COMPLETE_MARKER
from hfapps.training.runner import train

from runs import SIX_STEPS
from tiny_models import write_sentiment_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_sentiment_data(str(tmp_path_factory.mktemp("data")))


def run(tiny, data, out, *extra, callbacks=()):
    return train(
        "sentiment",
        [
            *SIX_STEPS,
            "--model_name_or_path",
            tiny["classifier"],
            "--train_file",
            data["train"],
            "--validation_file",
            data["validation"],
            "--output_dir",
            str(out),
            *extra,
        ],
        callbacks=callbacks,
    )


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

    monkeypatch.setattr("hfapps.training.runner.publish", failing_publish)
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


def test_resume_from_a_whole_checkpoint_after_removing_a_partial_one(tiny, data, tmp_path):
    from hfapps.models import last_complete_checkpoint

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
