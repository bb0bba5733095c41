"""`hfapps train`, `hfapps recipes` and `hfapps evaluate` from the command line."""

import json

import pytest

from hfapps.cli import main

from runs import FAST


def test_cli_train_recipes_and_evaluate(tiny, data, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "train",
            "sentiment",
            *FAST,
            "--model_name_or_path",
            tiny["classifier"],
            "--train_file",
            data["sentiment"]["train"],
            "--validation_file",
            data["sentiment"]["validation"],
            "--text_column",
            "text",
            "--output_dir",
            str(out),
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert main(["recipes"]) == 0 and "question_answering" in capsys.readouterr().out
    scores_path = tmp_path / "scores.json"
    code = main(
        [
            "evaluate",
            "sentiment",
            "--model",
            str(out),
            "--data",
            data["sentiment"]["validation"],
            "--output",
            str(scores_path),
        ]
    )
    assert code == 0
    scores = json.loads(scores_path.read_text())["test"]
    saved = json.loads((out / "metrics.json").read_text())["validation"]
    assert scores["accuracy"] == pytest.approx(saved["accuracy"])
    assert scores["confusion_matrix"] == saved["confusion_matrix"]
    capsys.readouterr()
    assert main(["train", "nope"]) == 2 and "No recipe" in capsys.readouterr().err
