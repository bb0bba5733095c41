"""Distillation: the student cut from its teacher, the mixed loss, and a recipe whose student follows its teacher."""

import csv
import json
import os

import pytest
import torch
from transformers import AutoModelForSequenceClassification

import hfapps
from hfapps.errors import RecipeError, TaskMismatchError
from hfapps.training.distill import cut_student, distillation_loss, kept_layers
from hfapps.training.runner import train

FAST = [
    "--logging_steps",
    "1",
    "--eval_strategy",
    "no",
    "--save_strategy",
    "no",
    "--dataset_name",
    "",
    "--load_best_model_at_end",
    "false",
    "--per_device_train_batch_size",
    "8",
    "--report_to",
    "none",
]


def test_kept_layers_are_spread_evenly_and_end_with_the_last():
    assert kept_layers(6, 3) == [1, 3, 5]
    assert kept_layers(12, 4) == [2, 5, 8, 11]
    assert kept_layers(2, 2) == [0, 1]
    for bad in (0, 7):
        with pytest.raises(RecipeError, match="student_layers"):
            kept_layers(6, bad)


def test_the_student_keeps_the_teachers_layers_embeddings_and_head(tiny):
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny["classifier"]).eval()
    student = cut_student(teacher, 1).eval()
    assert student.config.num_hidden_layers == 1 and len(student.bert.encoder.layer) == 1
    assert len(teacher.bert.encoder.layer) == 2  # the teacher itself is untouched
    kept = teacher.bert.encoder.layer[1].state_dict()
    assert all(torch.equal(v, student.bert.encoder.layer[0].state_dict()[k]) for k, v in kept.items())
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    ids = torch.tensor([[2, 10, 11, 3]])
    assert student(input_ids=ids).logits.shape == teacher(input_ids=ids).logits.shape


def test_the_loss_mixes_the_teacher_and_the_gold_labels():
    student, teacher = torch.tensor([[2.0, -1.0], [0.5, 0.3]]), torch.tensor([[-1.0, 2.0], [0.1, 0.9]])
    gold = torch.tensor(0.7)
    assert distillation_loss(student, teacher, gold, 2.0, 0.0) == pytest.approx(0.7)
    assert distillation_loss(teacher, teacher, gold, 2.0, 1.0) == pytest.approx(0.0, abs=1e-6)
    soft = distillation_loss(student, teacher, gold, 2.0, 1.0)
    assert soft > 0
    assert distillation_loss(student, teacher, gold, 2.0, 0.5) == pytest.approx(0.5 * soft + 0.35)


def _flipped(data, tmp_path) -> str:
    """The sentiment training data with every gold label flipped: a student that follows the teacher and one
    that follows the labels then disagree."""
    rows = list(csv.DictReader(open(data["sentiment"]["train"], encoding="utf-8")))
    path = str(tmp_path / "flipped.csv")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(
            {"text": r["text"], "label": {"POSITIVE": "NEGATIVE", "NEGATIVE": "POSITIVE"}[r["label"]]} for r in rows
        )
    return path


def test_the_distill_recipe_trains_a_student_that_follows_its_teacher(tiny, data, tmp_path):
    # A teacher that learned the words (great -> POSITIVE), then students on the same texts with flipped labels.
    teacher_dir = str(tmp_path / "teacher")
    train(
        "sentiment",
        [
            *FAST,
            "--model_name_or_path",
            tiny["classifier"],
            "--train_file",
            data["sentiment"]["train"],
            "--text_column",
            "text",
            "--num_train_epochs",
            "6",
            "--learning_rate",
            "5e-3",
            "--output_dir",
            teacher_dir,
        ],
    )
    train_file = _flipped(data, tmp_path)
    texts = [r["text"] for r in csv.DictReader(open(train_file, encoding="utf-8"))]
    teacher = hfapps.sentiment(texts, model=teacher_dir)
    assert 0.3 < sum(t["label"] == "POSITIVE" for t in teacher) / len(texts) < 0.7  # it tells the texts apart
    agreement = {}
    for alpha in ("1.0", "0.0"):
        out = tmp_path / f"student-{alpha}"
        train(
            "distill",
            [
                *FAST,
                "--teacher",
                teacher_dir,
                "--student_layers",
                "1",
                "--train_file",
                train_file,
                "--text_column",
                "text",
                "--num_train_epochs",
                "6",
                "--learning_rate",
                "5e-3",
                "--distill_alpha",
                alpha,
                "--distill_temperature",
                "1.0",
                "--output_dir",
                str(out),
            ],
        )
        config = json.load(open(out / "config.json"))
        assert config["num_hidden_layers"] == 1 and config["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"}
        student = hfapps.sentiment(texts, model=str(out))
        agreement[alpha] = sum(s["label"] == t["label"] for s, t in zip(student, teacher)) / len(texts)
    # Only the teacher's outputs (alpha 1) against only the flipped labels (alpha 0): the first follows the teacher.
    assert agreement["1.0"] > agreement["0.0"] + 0.2, agreement
    assert os.path.isfile(tmp_path / "student-1.0" / "metrics.json")


def test_distillation_errors(tiny, data, tmp_path):
    common = [*FAST, "--max_steps", "1", "--train_file", data["sentiment"]["train"], "--text_column", "text"]
    with pytest.raises(RecipeError, match="teacher's labels"):
        train("distill", [*common, "--teacher", tiny["nli"], "--output_dir", str(tmp_path / "a")])
    import tiny_models

    encoder = tiny_models.make_encoder(str(tmp_path / "encoder"))
    with pytest.raises(TaskMismatchError, match="fine-tuned classifier"):
        train("distill", [*common, "--teacher", encoder, "--output_dir", str(tmp_path / "b")])
    with pytest.raises(RecipeError, match="set teacher too"):
        train("sentiment", [*common, "--student_layers", "1", "--output_dir", str(tmp_path / "c")])
    with pytest.raises(RecipeError, match="not summarization"):
        train("summarization", [*common, "--teacher", tiny["classifier"], "--output_dir", str(tmp_path / "d")])
    with pytest.raises(RecipeError, match="tokenizer differs"):
        train(
            "distill",
            [
                *common,
                "--teacher",
                tiny["classifier"],
                "--model_name_or_path",
                tiny["t5"],
                "--output_dir",
                str(tmp_path / "e"),
            ],
        )
    assert not any(os.path.exists(tmp_path / name) for name in "abcde")  # nothing written before every check
