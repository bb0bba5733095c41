"""The training runner: each task's recipe runs a few steps on tiny data into a folder that loads into its helper; bad
data is refused before training; an output folder is cleared only when it is hfapps' own."""

import glob
import json
import os
import re
import string

import pytest
import sacrebleu
import yaml
from rouge_score import rouge_scorer
from sklearn import metrics as sklearn_metrics
from transformers import Trainer, TrainerCallback

import hfapps
from hfapps.data import read_file
from hfapps.errors import DataError, ModelLoadError, RecipeError
from hfapps.training.runner import RUN_MARKER, train

from runs import FAST, STEPS, recipe_run, sentiment_args
from tiny_models import sentences

HELPERS = {
    "sentiment": "sentiment",
    "classification": "classification",
    "summarization": "summarization",
    "translation": "translation",
    "question_answering": "question-answering",
}


@pytest.mark.parametrize(
    "name", ["sentiment", "classification", "summarization", "translation", "question_answering", "mlm"]
)
def test_recipe_runs_and_its_output_loads_into_the_helper(name, tiny, data, tmp_path):
    out = tmp_path / name
    metrics = recipe_run(name, tiny, data, out)
    for file in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "metrics.json",
        "recipe.yaml",
        "run.json",
        "training_curve.png",
        "README.md",
        "hfapps.json",
        "log_history.json",
    ):
        assert (out / file).is_file(), file
    assert not list(out.glob("*.bin")) or all(p.name == "training_args.bin" for p in out.glob("*.bin"))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["eval"]["eval_loss"] == pytest.approx(metrics["eval"]["eval_loss"])
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 42 and run["world_size"] == 1 and run["versions"]["transformers"].startswith("5.")
    assert run["global_step"] == 4
    history = json.loads((out / "log_history.json").read_text())
    elapsed = [entry["elapsed_seconds"] for entry in history if "elapsed_seconds" in entry]
    assert len(elapsed) == len(history) and elapsed == sorted(elapsed)  # minutes for every score
    assert yaml.safe_load((out / "recipe.yaml").read_text())["max_steps"] == 4
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if name == "mlm":
        assert metrics["eval"]["perplexity"] > 1
        return
    assert "validation" in saved  # scored by the helper, the code `hfapps evaluate` runs
    helper = hfapps.load(HELPERS[name], str(out))
    # The saved scores, recomputed here with the reference libraries from the helper's own predictions.
    if name in ("sentiment", "classification"):
        config = json.loads((out / "config.json").read_text())
        assert config["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"}
        scores = saved["validation"]
        if name == "classification":
            assert config["hidden_dropout_prob"] == 0.2
            matrix = scores["confusion_matrix"]  # a seeded 10% of train; its rows are not at hand here
            assert sum(map(sum, matrix)) == scores["samples"] > 0
            assert scores["accuracy"] == pytest.approx(
                sum(matrix[i][i] for i in range(len(matrix))) / scores["samples"]
            )
            return
        rows = [json.loads(line) for line in open(data["sentiment"]["validation"], encoding="utf-8")]
        predicted = [r["label"] for r in helper([row["text"] for row in rows])]
        gold = [row["label"] for row in rows]
        assert scores["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, predicted))
        assert scores["f1"] == pytest.approx(sklearn_metrics.f1_score(gold, predicted, average="macro"))
        assert (
            scores["confusion_matrix"]
            == sklearn_metrics.confusion_matrix(gold, predicted, labels=["NEGATIVE", "POSITIVE"]).tolist()
        )
    elif name in ("translation", "summarization"):
        source, target = ("en", "de") if name == "translation" else ("document", "summary")
        rows = [
            json.loads(line)
            for line in open(data[{"translation": "pairs"}.get(name, "summary")]["validation"], encoding="utf-8")
        ]
        key = "translation_text" if name == "translation" else "summary_text"
        predicted = [r[key] for r in helper([row[source] for row in rows])]
        gold = [row[target] for row in rows]
        if name == "translation":
            assert (helper.source, helper.target) == ("en", "de")
            assert saved["validation"]["bleu"] == pytest.approx(sacrebleu.corpus_bleu(predicted, [gold]).score)
            assert saved["validation"]["chrf"] == pytest.approx(sacrebleu.corpus_chrf(predicted, [gold]).score)
        else:
            assert json.loads((out / "generation_config.json").read_text())["max_new_tokens"] == 8
            scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
            rouge1 = sum(scorer.score(g, p)["rouge1"].fmeasure for g, p in zip(gold, predicted)) / len(gold)
            assert saved["validation"]["rouge1"] == pytest.approx(rouge1, abs=1e-6)
    else:
        squad = json.loads(open(data["qa"]["validation"], encoding="utf-8").read())
        qas = [(p["context"], q) for article in squad["data"] for p in article["paragraphs"] for q in p["qas"]]
        predicted = [r["answer"] for r in helper([{"question": q["question"], "context": c} for c, q in qas])]

        def normal(text):  # SQuAD's normalisation: lower case, no punctuation, articles or extra spaces
            text = re.sub(r"\b(a|an|the)\b", " ", "".join(ch for ch in text.lower() if ch not in string.punctuation))
            return " ".join(text.split())

        exact = [max(normal(p) == normal(a["text"]) for a in q["answers"]) for p, (_, q) in zip(predicted, qas)]
        assert saved["validation"]["exact_match"] == pytest.approx(100 * sum(exact) / len(exact))
        assert {"answer", "score", "start", "end"} == set(helper(question="what?", context="The answer is a zebra."))


def test_missing_column_lists_the_columns(tiny, data, tmp_path):
    with pytest.raises(DataError, match=r"no column 'review'; its columns are \['text', 'label'\]"):
        recipe_run("sentiment", tiny, data, tmp_path / "x", ["--text_column", "review"])


def test_labels_outside_the_label_set(tiny, data, tmp_path):
    with pytest.raises(DataError, match="outside the label set"):
        recipe_run("sentiment", tiny, data, tmp_path / "x", ["--label_list", "NEG", "POS"])


def test_empty_split_and_missing_file(tiny, data, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError):
        recipe_run("sentiment", tiny, data, tmp_path / "x", ["--validation_file", str(empty)])
    with pytest.raises(DataError, match="does not exist"):
        recipe_run("sentiment", tiny, data, tmp_path / "y", ["--train_file", str(tmp_path / "nope.csv")])


def test_qa_answer_not_in_its_context(tiny, data, tmp_path):
    broken = json.loads(open(data["qa"]["train"]).read())
    broken["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 3
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(DataError, match="is not at answer_start"):
        recipe_run("question_answering", tiny, data, tmp_path / "x", ["--train_file", str(path)])


def test_no_validation_split_gives_a_seeded_split(tiny, data):
    from hfapps.tasks.arguments import DataArguments
    from hfapps.training.splits import load_splits

    args = DataArguments(task="sentiment", train_file=data["sentiment"]["train"], validation_split_percentage=25)
    first, again, other = load_splits(args, seed=1), load_splits(args, seed=1), load_splits(args, seed=2)
    assert len(first["validation"]) == 12 and len(first["train"]) == 36
    assert first["validation"]["text"] == again["validation"]["text"]
    assert first["validation"]["text"] != other["validation"]["text"]


class StopAt(TrainerCallback):
    """Simulates a crash: raises once training reaches `step` (after that step's checkpoint is saved)."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise KeyboardInterrupt(f"simulated interruption at step {state.global_step}")


def losses(folder):
    return {e["step"]: e["loss"] for e in json.loads((folder / "log_history.json").read_text()) if "loss" in e}


def test_interrupted_run_resumes_from_its_checkpoint_with_the_same_final_loss(tiny, data, tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    recipe_run("sentiment", tiny, data, whole)
    with pytest.raises(KeyboardInterrupt):
        recipe_run("sentiment", tiny, data, broken, callbacks=[StopAt(2)])
    assert (broken / "checkpoint-2").is_dir() and not (broken / "metrics.json").exists()
    recipe_run("sentiment", tiny, data, broken)  # same command again: resumes automatically
    run = json.loads((broken / "run.json").read_text())
    assert run["resumed_from"].endswith("checkpoint-2")
    assert losses(broken) == pytest.approx(losses(whole), abs=1e-6)  # steps 1-2 carried over, 3-4 retrained
    final = json.loads((broken / "metrics.json").read_text())["eval"]["eval_loss"]
    assert final == pytest.approx(json.loads((whole / "metrics.json").read_text())["eval"]["eval_loss"], abs=1e-6)


def test_output_folder_of_another_run_is_refused_unless_overwrite(tiny, data, tmp_path):
    out = tmp_path / "run"
    recipe_run("sentiment", tiny, data, out)
    with pytest.raises(RecipeError, match="already holds this run, finished"):
        recipe_run("sentiment", tiny, data, out)
    with pytest.raises(RecipeError, match="different run"):
        recipe_run("sentiment", tiny, data, out, ["--learning_rate", "0.5"])
    recipe_run("sentiment", tiny, data, out, ["--learning_rate", "0.5", "--overwrite", "true"])
    assert yaml.safe_load((out / "recipe.yaml").read_text())["learning_rate"] == 0.5
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(RecipeError, match=r"did not write \(notes.txt\)"):
        recipe_run("sentiment", tiny, data, stranger)
    assert (stranger / "notes.txt").read_text() == "mine"


def test_early_stopping_stops_and_keeps_the_best(tiny, data, tmp_path):
    with pytest.raises(RecipeError, match="load_best_model_at_end"):
        recipe_run("sentiment", tiny, data, tmp_path / "x", ["--early_stopping_patience", "1"])
    out = tmp_path / "early"
    recipe_run(
        "sentiment",
        tiny,
        data,
        out,
        [
            "--early_stopping_patience",
            "1",
            "--load_best_model_at_end",
            "true",
            "--metric_for_best_model",
            "loss",
            "--learning_rate",
            "0",
            "--max_steps",
            "40",
            "--eval_steps",
            "1",
            "--save_steps",
            "1",
        ],
    )
    run = json.loads((out / "run.json").read_text())
    assert run["global_step"] == 2  # no improvement after the first evaluation, patience 1


def test_report_to_tensorboard_writes_event_files_and_is_recorded(tiny, data, tmp_path):
    from conftest import need_module

    need_module("tensorboard")
    out = tmp_path / "tb"
    recipe_run("sentiment", tiny, data, out, ["--report_to", "tensorboard"])
    events = glob.glob(str(out / "runs" / "*" / "events.out.tfevents.*"))
    assert events and os.path.getsize(events[0]) > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = EventAccumulator(os.path.dirname(events[0]))
    logged.Reload()
    assert "train/loss" in logged.Tags()["scalars"]  # the training loss, step by step
    assert json.load(open(out / "run.json"))["report_to"] == ["tensorboard"]


def test_report_to_an_unknown_or_missing_integration_is_refused_before_training(tiny, data, tmp_path):
    import importlib.util

    with pytest.raises(RecipeError, match="not an integration transformers has.*tensorboard"):
        recipe_run("sentiment", tiny, data, tmp_path / "a", ["--report_to", "tensorbord"])
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(RecipeError, match="pip install wandb"):
            recipe_run("sentiment", tiny, data, tmp_path / "b", ["--report_to", "wandb"])
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_command_line_files_win_over_the_recipes_hub_dataset(tiny, data, tmp_path):
    """The command of recipes/sentiment.yaml's header: the recipe names stanfordnlp/sst2, offline."""
    metrics = train("sentiment", sentiment_args(tiny, data, tmp_path / "run"))
    assert "validation" in metrics
    resolved = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert resolved["dataset_name"] is None and resolved["train_file"] == data["sentiment"]["train"]


def test_a_recipe_that_sets_both_a_dataset_and_files_is_refused(tmp_path, data):
    recipe = tmp_path / "both.yaml"
    recipe.write_text(
        f"task: sentiment\nmodel_name_or_path: x\ndataset_name: stanfordnlp/sst2\n"
        f"train_file: {data['sentiment']['train']}\n"
    )
    with pytest.raises(RecipeError, match="both dataset_name"):
        train(str(recipe))


def test_mlm_trains_on_a_txt_file(tiny, tmp_path):
    text = tmp_path / "my_domain_text.txt"
    text.write_text("\n".join(sentences(40)) + "\n\n")
    metrics = train(
        "mlm",
        [
            "--train_file",
            str(text),
            "--model_name_or_path",
            tiny["classifier"],
            "--output_dir",
            str(tmp_path / "mlm"),
            *STEPS,
        ],
    )
    assert metrics["eval"]["perplexity"] > 1
    rows = read_file(str(text), text_column="body")
    assert rows.column_names == ["body"] and len(rows) == 40  # blank lines are not rows


def _user_folder(path):
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    return path


@pytest.mark.parametrize("overwrite_from", ["command line", "python", "recipe"])
@pytest.mark.parametrize("output_from", ["command line", "recipe"])
@pytest.mark.parametrize("folder", ["a user's folder", "an hfapps run with a user's file added"])
def test_a_users_file_survives_every_overwrite_combination(tiny, data, tmp_path, overwrite_from, output_from, folder):
    out = tmp_path / "out"
    if folder == "a user's folder":
        _user_folder(out)
    else:
        train("sentiment", sentiment_args(tiny, data, out))
        (out / "thesis.tex").write_text("years of work")
    recipe = {
        "task": "sentiment",
        "model_name_or_path": tiny["classifier"],
        "text_column": "text",
        "train_file": data["sentiment"]["train"],
        "validation_file": data["sentiment"]["validation"],
    }
    args = [a for a in sentiment_args(tiny, data, out) if a]
    args = args[args.index("--output_dir") + 2 :]  # the step settings only
    if output_from == "recipe":
        recipe["output_dir"] = str(out)
    else:
        args += ["--output_dir", str(out)]
    kwargs = {}
    if overwrite_from == "recipe":
        recipe["overwrite"] = True
    elif overwrite_from == "command line":
        args += ["--overwrite", "true"]
    else:
        kwargs["overwrite"] = True
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(
        RecipeError, match="cannot be set in a recipe" if overwrite_from == "recipe" else "did not write"
    ):
        train(str(path), args, **kwargs)
    assert (out / "thesis.tex").read_text() == "years of work"


def test_overwrite_replaces_an_hfapps_run_only_after_the_data_and_model_pass(tiny, data, tmp_path):
    out = tmp_path / "run"
    train("sentiment", sentiment_args(tiny, data, out))
    assert (out / RUN_MARKER).is_file()
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(DataError, match="no column 'review'"):
        train("sentiment", sentiment_args(tiny, data, out) + ["--text_column", "review", "--overwrite", "true"])
    with pytest.raises(ModelLoadError):
        train(
            "sentiment",
            sentiment_args(tiny, data, out) + ["--model_name_or_path", str(tmp_path / "none"), "--overwrite", "true"],
        )
    assert sorted(p.name for p in out.iterdir()) == before  # nothing deleted while a check failed
    train("sentiment", sentiment_args(tiny, data, out) + ["--learning_rate", "0.5"], overwrite=True)
    assert yaml.safe_load((out / "recipe.yaml").read_text())["learning_rate"] == 0.5
    assert "overwrite" not in yaml.safe_load((out / "recipe.yaml").read_text())


def test_resume_from_checkpoint_true_and_incomplete_paths(tiny, data, tmp_path):
    out = tmp_path / "run"
    args = sentiment_args(tiny, data, out) + ["--max_steps", "3"]
    with pytest.raises(RecipeError, match="holds no complete checkpoint"):
        train("sentiment", args + ["--resume_from_checkpoint", "true"])
    with pytest.raises(KeyboardInterrupt):
        train("sentiment", args, callbacks=[StopAt(2)])
    (out / "checkpoint-2" / "hfapps-complete.json").unlink()  # as if killed while checkpoint-2 was written
    with pytest.raises(RecipeError, match="interrupted while being written.*checkpoint-1"):
        train("sentiment", args + ["--resume_from_checkpoint", str(out / "checkpoint-2")])
    train("sentiment", args + ["--resume_from_checkpoint", "true"])
    assert json.loads((out / "run.json").read_text())["resumed_from"].endswith("checkpoint-1")


def test_push_to_hub_pushes_the_finished_folder(tiny, data, tmp_path, monkeypatch):
    """The Hub cannot be reached here, so the upload itself is replaced; what is checked is what the folder
    holds at the moment hfapps asks to push it."""

    pushed = []
    monkeypatch.setattr(Trainer, "init_hf_repo", lambda self, token=None: None)
    monkeypatch.setattr(Trainer, "_push_from_checkpoint", lambda self, folder: None)
    monkeypatch.setattr(
        Trainer, "push_to_hub", lambda self, **kw: pushed.append(sorted(os.listdir(self.args.output_dir)))
    )
    out = tmp_path / "run"
    train("sentiment", sentiment_args(tiny, data, out) + ["--push_to_hub", "true", "--hub_model_id", "me/model"])
    assert len(pushed) == 1
    assert {"model.safetensors", "config.json", "metrics.json", "README.md", "hfapps.json"} <= set(pushed[0])


def test_recipe_paths_that_do_not_exist(tiny, data, tmp_path):
    files = {"--train_file": data["sentiment"]["train"], "--validation_file": data["sentiment"]["validation"]}
    base = [*FAST, "--model_name_or_path", tiny["classifier"], "--text_column", "text"]

    def run(out, *extra):
        given = dict(zip(extra[::2], extra[1::2]))
        paths = [a for key, value in {**files, **given}.items() for a in (key, value)]
        return train("sentiment", [*base, *paths, "--output_dir", str(out)])

    with pytest.raises(DataError, match="does not exist"):
        run(tmp_path / "x", "--validation_file", str(tmp_path / "missing.jsonl"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        run(tmp_path / "y", "--model_name_or_path", str(tmp_path / "no-model"))
