"""`hfapps tune`: optuna trials through the Trainer's hyperparameter search, pruning, and a best recipe that trains."""

import csv
import json

import pytest
import yaml

from hfapps.cli import main
from hfapps.errors import RecipeError
from hfapps.training.runner import train
from hfapps.training.tune import tune

from conftest import need_module

need_module("optuna")


SPACE = {
    "learning_rate": [0.0, 0.02],
    "per_device_train_batch_size": [8, 16],
    "weight_decay": {"low": 0.0, "high": 0.1},
    "num_train_epochs": {"low": 1, "high": 2},
}


def recipe_file(tmp_path, tiny, data, space=SPACE, **extra):
    recipe = {
        "task": "sentiment",
        "model_name_or_path": tiny["classifier"],
        "train_file": data["sentiment"]["train"],
        "validation_file": data["sentiment"]["validation"],
        "text_column": "text",
        "label_list": ["NEGATIVE", "POSITIVE"],
        "eval_strategy": "steps",
        "eval_steps": 1,
        "max_steps": 3,
        "metric_for_best_model": "loss",
        "logging_steps": 1,
        "search_space": space,
        **extra,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_tune_writes_trials_plot_and_a_best_recipe_that_trains(tiny, data, tmp_path, capsys):
    out = tmp_path / "search"
    code = main(["tune", recipe_file(tmp_path, tiny, data), "--n_trials", "5", "--output_dir", str(out)])
    assert code == 0
    out_text = capsys.readouterr().out  # the Trainer prints its logs first; the summary is the last JSON block
    summary = json.loads(out_text[out_text.rindex("\n{\n") + 1 :])
    with open(out / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == summary["trials"] == 5
    for row in rows:  # every trial drew its settings from the recipe's space
        assert float(row["learning_rate"]) in (0.0, 0.02) and int(row["per_device_train_batch_size"]) in (8, 16)
        assert 0.0 <= float(row["weight_decay"]) <= 0.1 and int(row["num_train_epochs"]) in (1, 2)
        assert row["state"] in ("COMPLETE", "PRUNED")
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = min(complete, key=lambda r: float(r["eval_loss"]))  # metric loss: lower is better
    assert summary["objective"] == pytest.approx(float(best["eval_loss"]))
    assert summary["pruned"] == sum(r["state"] == "PRUNED" for r in rows)
    assert (out / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The best recipe holds the best trial's settings and runs as it is.
    recipe = yaml.safe_load((out / "best_recipe.yaml").read_text())
    assert recipe["learning_rate"] == pytest.approx(float(best["learning_rate"]))
    assert recipe["per_device_train_batch_size"] == int(best["per_device_train_batch_size"])
    assert "search_space" not in recipe
    metrics = train(str(out / "best_recipe.yaml"), ["--output_dir", str(tmp_path / "best"), "--max_steps", "1"])
    assert metrics["eval"]["eval_loss"] > 0


@pytest.mark.slow
def test_a_trial_that_falls_behind_is_pruned(tiny, data, tmp_path):
    # Learning rate 0 never lowers the loss; after two trials, one that stays behind the median is stopped.
    path = recipe_file(tmp_path, tiny, data, space={"learning_rate": [0.0, 0.05]}, max_steps=6)
    summary = tune(path, ["--output_dir", str(tmp_path / "s")], n_trials=8)
    with open(tmp_path / "s" / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert pruned and summary["pruned"] == len(pruned)
    # Stopped before the end of training. (A trial level with the median to the last digit may also be pruned at
    # its last step: with learning rate 0 the losses tie, and thread counts decide the last float digit.)
    assert any(int(r["last_step"]) < 6 for r in pruned), rows
    assert all(int(r["last_step"]) == 6 for r in rows if r["state"] == "COMPLETE")


@pytest.mark.parametrize(
    "space, message",
    [
        ({"lora_r": [4, 8]}, "not a training key"),
        ({"learning_rate": {"low": 1e-3, "high": 1e-5}}, "low <= high"),
        ({"learning_rate": {"low": 0, "high": 1e-3, "log": True}}, "log scale"),
        ({"learning_rate": []}, "empty list"),
        ({"learning_rate": "fast"}, "list of choices"),
    ],
)
def test_bad_search_spaces_are_refused_before_training(tiny, data, tmp_path, space, message):
    with pytest.raises(RecipeError, match=message):
        tune(recipe_file(tmp_path, tiny, data, space=space), ["--output_dir", str(tmp_path / "s")], n_trials=1)
    assert not (tmp_path / "s").exists()


def test_a_folder_tune_did_not_make_is_never_touched(tiny, data, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(RecipeError, match="did not write"):
        tune(recipe_file(tmp_path, tiny, data), ["--output_dir", str(out), "--overwrite", "true"], n_trials=1)
    assert (out / "notes.txt").read_text() == "keep me"


def test_without_optuna_the_error_names_the_extra(tiny, data, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # what `import optuna` meets where it is not installed
    with pytest.raises(RecipeError, match=r"pip install optuna \(the hfapps\[tune\] extra\)"):
        tune(recipe_file(tmp_path, tiny, data), ["--output_dir", str(tmp_path / "s")], n_trials=1)
