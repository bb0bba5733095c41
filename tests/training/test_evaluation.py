"""Scoring with the task's helper: `hfapps evaluate` scores a model as its run's metrics.json did."""

import json

import pytest

from hfapps.cli import main
from hfapps.training.runner import train

from runs import STEPS

EVALUATED = {
    "sentiment": ("sentiment", "classifier", "sentiment", ["--text_column", "text"]),
    "classification": ("classification", "classifier", "sentiment", ["--label_list", "NEGATIVE", "POSITIVE"]),
    "summarization": ("summarization", "t5", "summary", ["--max_target_length", "6"]),
    "translation": (
        "translation",
        "t5",
        "pairs",
        ["--source_lang", "en", "--target_lang", "de", "--max_target_length", "6"],
    ),
    "question_answering": ("question-answering", "qa", "qa", ["--max_seq_length", "40", "--doc_stride", "12"]),
}


@pytest.mark.parametrize("recipe", list(EVALUATED))
def test_evaluate_scores_like_the_runs_metrics_json(recipe, tiny, data, tmp_path, capsys):
    task, model, files, extra = EVALUATED[recipe]
    out = tmp_path / "run"
    test_file = data[files]["validation"]
    train(
        recipe,
        [
            "--model_name_or_path",
            tiny[model],
            "--train_file",
            data[files]["train"],
            "--validation_file",
            data[files]["validation"],
            "--test_file",
            test_file,
            "--output_dir",
            str(out),
            *STEPS,
            *extra,
        ],
    )
    saved = json.loads((out / "metrics.json").read_text())["test"]
    assert (
        main(["evaluate", task, "--model", str(out), "--data", test_file, "--output", str(tmp_path / "scores.json")])
        == 0
    )
    scores = json.loads((tmp_path / "scores.json").read_text())["test"]
    timing = {"seconds", "samples_per_second"}
    assert {k: v for k, v in scores.items() if k not in timing} == {k: v for k, v in saved.items() if k not in timing}
