"""Recipes: every shipped one validates without weights; each runs a few steps on tiny data into an
output folder that loads into its helper; bad recipes and bad data get clear errors; runs resume."""

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
from transformers import TrainerCallback

import hfapps
from hfapps.cli import main
from hfapps.config import RECIPES_DIR, RecipeError, parse, read_recipe, recipe_path, shipped_recipes
from hfapps.data import DataError
from hfapps.tasks import TRAINING
from hfapps.train import train

SHIPPED = sorted(glob.glob(os.path.join(RECIPES_DIR, "*.yaml")))
FAST = ["--max_steps", "4", "--logging_steps", "1", "--eval_strategy", "steps", "--eval_steps", "2",
        "--save_strategy", "steps", "--save_steps", "2", "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "8", "--dataset_name", "", "--max_train_samples", "48",
        "--load_best_model_at_end", "false", "--early_stopping_patience", "0"]


def test_the_six_recipes_ship():
    assert {"sentiment", "classification", "summarization", "translation", "question_answering", "mlm"} <= set(
        shipped_recipes())


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_shipped_recipe_validates_without_weights(path):
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    assert first.startswith(("# hfapps train", "# accelerate launch")), "each recipe starts with its command"
    model_args, data_args, training_args = parse(read_recipe(path))
    assert data_args.task in TRAINING
    spec = TRAINING[data_args.task](data_args)
    assert spec.columns() and all(isinstance(c, str) for c in spec.columns())
    assert (model_args.model_name_or_path or model_args.teacher) and data_args.dataset_name
    if training_args.load_best_model_at_end:
        assert training_args.eval_strategy == training_args.save_strategy


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(RECIPES_DIR, "accelerate", "*.yaml"))),
                         ids=os.path.basename)
def test_accelerate_configs_parse(path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(path)
    assert config.num_processes >= 1 and config.num_machines >= 1
    with open(path, encoding="utf-8") as handle:
        assert handle.readline().startswith("# ")


def test_accelerate_configs_cover_the_named_setups():
    names = {os.path.basename(p) for p in glob.glob(os.path.join(RECIPES_DIR, "accelerate", "*.yaml"))}
    assert {"single_device.yaml", "ddp.yaml", "fsdp.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml",
            "multi_node.yaml"} <= names


def test_shipped_recipe_by_name_and_overrides():
    assert recipe_path("sentiment") == recipe_path("sentiment.yaml") == os.path.join(RECIPES_DIR, "sentiment.yaml")
    _, data_args, training_args = parse(read_recipe(recipe_path("sentiment")),
                                        ["--learning_rate", "3e-5", "--train_file", "my.csv"])
    assert training_args.learning_rate == 3e-5 and data_args.train_file == "my.csv"


@pytest.mark.parametrize("text, message", [
    ("- a\n- list\n", "must be a mapping"),
    ("task: sentiment\nmodel_name_or_path: x\nlearning_rat: 1\n", "did you mean 'learning_rate'"),
    ("task: sentiment\nmodel_name_or_path: x\nlearning_rate: fast\n", "invalid float value: 'fast'"),
    ("task: sentiment\nmodel_name_or_path: x\nnum_train_epochs: [1, 2]\n", "num_train_epochs"),
    ("task: sentiment\nmodel_name_or_path: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
    ("model_name_or_path: x\n", "no `task:`"),
    ("task: sentiment\nmodel_name_or_path: x\nfsdp_config: {a: 1}\n", "not a mapping"),
    ("task: poetry\nmodel_name_or_path: x\n", "Unknown task 'poetry'"),
])
def test_bad_recipes_get_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=message):
        train(str(path))


def test_unknown_override_and_missing_recipe():
    with pytest.raises(RecipeError, match="Unknown command-line option"):
        parse(read_recipe(recipe_path("sentiment")), ["--bogus", "1"])
    with pytest.raises(RecipeError, match="No recipe 'nope'"):
        train("nope")


def recipe_run(name, tiny, data, out, extra=(), callbacks=()):
    """A few-step run of shipped recipe `name` on tiny models and data."""
    args = {"sentiment": ["--model_name_or_path", tiny["classifier"], "--train_file", data["sentiment"]["train"],
                          "--validation_file", data["sentiment"]["validation"], "--text_column", "text"],
            "classification": ["--model_name_or_path", tiny["classifier"], "--train_file",
                               data["sentiment"]["train"], "--label_list", "NEGATIVE", "POSITIVE",
                               "--dropout", "0.2"],
            "summarization": ["--model_name_or_path", tiny["t5"], "--train_file", data["summary"]["train"],
                              "--validation_file", data["summary"]["validation"], "--max_target_length", "8"],
            "translation": ["--model_name_or_path", tiny["t5"], "--train_file", data["pairs"]["train"],
                            "--validation_file", data["pairs"]["validation"], "--source_lang", "en",
                            "--target_lang", "de", "--max_target_length", "8"],
            "question_answering": ["--model_name_or_path", tiny["qa"], "--train_file", data["qa"]["train"],
                                   "--validation_file", data["qa"]["validation"], "--max_seq_length", "48",
                                   "--doc_stride", "16"],
            "mlm": ["--model_name_or_path", tiny["classifier"], "--train_file", data["sentiment"]["train"]]}[name]
    return train(name, [*FAST, *args, "--output_dir", str(out), *extra], callbacks=callbacks)


HELPERS = {"sentiment": "sentiment", "classification": "classification", "summarization": "summarization",
           "translation": "translation", "question_answering": "question-answering"}


@pytest.mark.parametrize("name", ["sentiment", "classification", "summarization", "translation",
                                  "question_answering", "mlm"])
def test_recipe_runs_and_its_output_loads_into_the_helper(name, tiny, data, tmp_path):
    out = tmp_path / name
    metrics = recipe_run(name, tiny, data, out)
    for file in ("model.safetensors", "config.json", "tokenizer.json", "metrics.json", "recipe.yaml", "run.json",
                 "training_curve.png", "README.md", "hfapps.json", "log_history.json"):
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
            assert scores["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(len(matrix))) / scores["samples"])
            return
        rows = [json.loads(line) for line in open(data["sentiment"]["validation"], encoding="utf-8")]
        predicted = [r["label"] for r in helper([row["text"] for row in rows])]
        gold = [row["label"] for row in rows]
        assert scores["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, predicted))
        assert scores["f1"] == pytest.approx(sklearn_metrics.f1_score(gold, predicted, average="macro"))
        assert scores["confusion_matrix"] == sklearn_metrics.confusion_matrix(
            gold, predicted, labels=["NEGATIVE", "POSITIVE"]).tolist()
    elif name in ("translation", "summarization"):
        source, target = ("en", "de") if name == "translation" else ("document", "summary")
        rows = [json.loads(line) for line in open(data[{"translation": "pairs"}.get(name, "summary")]["validation"],
                                                  encoding="utf-8")]
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
    from hfapps.config import DataArguments
    from hfapps.data import load_splits

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
    recipe_run("sentiment", tiny, data, out, [
        "--early_stopping_patience", "1", "--load_best_model_at_end", "true", "--metric_for_best_model", "loss",
        "--learning_rate", "0", "--max_steps", "40", "--eval_steps", "1", "--save_steps", "1"])
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


def test_cli_train_recipes_and_evaluate(tiny, data, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["train", "sentiment", *FAST, "--model_name_or_path", tiny["classifier"], "--train_file",
                 data["sentiment"]["train"], "--validation_file", data["sentiment"]["validation"],
                 "--text_column", "text", "--output_dir", str(out)])
    assert code == 0
    capsys.readouterr()
    assert main(["recipes"]) == 0 and "question_answering" in capsys.readouterr().out
    scores_path = tmp_path / "scores.json"
    code = main(["evaluate", "sentiment", "--model", str(out), "--data", data["sentiment"]["validation"],
                 "--output", str(scores_path)])
    assert code == 0
    scores = json.loads(scores_path.read_text())["test"]
    saved = json.loads((out / "metrics.json").read_text())["validation"]
    assert scores["accuracy"] == pytest.approx(saved["accuracy"])
    assert scores["confusion_matrix"] == saved["confusion_matrix"]
    capsys.readouterr()
    assert main(["train", "nope"]) == 2 and "No recipe" in capsys.readouterr().err


def test_parquet_and_tsv_files_load_alike(tiny, data, tmp_path):
    from datasets import load_dataset

    from hfapps.config import DataArguments
    from hfapps.data import load_splits

    rows = load_dataset("csv", data_files=data["sentiment"]["train"], split="train")
    rows.to_parquet(str(tmp_path / "train.parquet"))
    with open(tmp_path / "train.tsv", "w", encoding="utf-8") as handle:
        handle.write("text\tlabel\n" + "".join(f'{t} "quoted"\t{l}\n' for t, l in zip(rows["text"], rows["label"])))
    parquet = load_splits(DataArguments(task="sentiment", train_file=str(tmp_path / "train.parquet"),
                                        validation_file=data["sentiment"]["validation"]))
    tsv = load_splits(DataArguments(task="sentiment", train_file=str(tmp_path / "train.tsv"),
                                    validation_file=data["sentiment"]["validation"]))
    assert parquet["train"]["text"] == rows["text"]
    assert tsv["train"]["text"] == [f'{t} "quoted"' for t in rows["text"]]  # TSV keeps quotes as text
    assert parquet["train"].features["text"].dtype == "string" == parquet["validation"].features["text"].dtype
