"""Regression tests for promises the code once broke: each fails on the code before its fix."""

import json
import os

import pytest
import yaml

import hfapps
from hfapps.cli import main
from hfapps.config import RECIPES_DIR, RecipeError
from hfapps.data import DataError, read_file
from hfapps.errors import ModelLoadError
from hfapps.train import RUN_MARKER, train
from tiny_models import sentences

STEPS = ["--max_steps", "2", "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "steps",
         "--save_steps", "1", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
         "--load_best_model_at_end", "false", "--early_stopping_patience", "0"]


def sentiment_args(tiny, data, out):
    return ["--model_name_or_path", tiny["classifier"], "--train_file", data["sentiment"]["train"],
            "--validation_file", data["sentiment"]["validation"], "--text_column", "text", "--output_dir", str(out),
            *STEPS]


# 1. Files on the command line win over the recipe's Hub dataset -------------------------------------------

def test_command_line_files_win_over_the_recipes_hub_dataset(tiny, data, tmp_path):
    """The command of recipes/sentiment.yaml's header: the recipe names stanfordnlp/sst2, offline."""
    metrics = train("sentiment", sentiment_args(tiny, data, tmp_path / "run"))
    assert "validation" in metrics
    resolved = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert resolved["dataset_name"] is None and resolved["train_file"] == data["sentiment"]["train"]


def test_a_recipe_that_sets_both_a_dataset_and_files_is_refused(tmp_path, data):
    recipe = tmp_path / "both.yaml"
    recipe.write_text(f"task: sentiment\nmodel_name_or_path: x\ndataset_name: stanfordnlp/sst2\n"
                      f"train_file: {data['sentiment']['train']}\n")
    with pytest.raises(RecipeError, match="both dataset_name"):
        train(str(recipe))


# 2. .txt everywhere a file is read ------------------------------------------------------------------------

def test_mlm_trains_on_a_txt_file(tiny, tmp_path):
    text = tmp_path / "my_domain_text.txt"
    text.write_text("\n".join(sentences(40)) + "\n\n")
    metrics = train("mlm", ["--train_file", str(text), "--model_name_or_path", tiny["classifier"],
                            "--output_dir", str(tmp_path / "mlm"), *STEPS])
    assert metrics["eval"]["perplexity"] > 1
    rows = read_file(str(text), text_column="body")
    assert rows.column_names == ["body"] and len(rows) == 40  # blank lines are not rows


def test_json_without_a_list_of_rows_is_an_error_not_zero_rows(tmp_path, tiny, capsys):
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"texts": ["a", "b"]}))
    assert main(["sentiment", "--input", str(source), "--model", tiny["classifier"]]) == 2
    assert "must hold a JSON list of rows" in capsys.readouterr().err
    with pytest.raises(DataError, match="must hold a JSON list"):
        read_file(str(source))


# 3. --overwrite deletes only hfapps' own runs, and only after every check ---------------------------------

def _user_folder(path):
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    return path


@pytest.mark.parametrize("overwrite_from", ["command line", "python", "recipe"])
@pytest.mark.parametrize("output_from", ["command line", "recipe"])
@pytest.mark.parametrize("folder", ["a user's folder", "an hfapps run with a user's file added"])
def test_a_users_file_survives_every_overwrite_combination(tiny, data, tmp_path, overwrite_from, output_from,
                                                           folder):
    out = tmp_path / "out"
    if folder == "a user's folder":
        _user_folder(out)
    else:
        train("sentiment", sentiment_args(tiny, data, out))
        (out / "thesis.tex").write_text("years of work")
    recipe = {"task": "sentiment", "model_name_or_path": tiny["classifier"], "text_column": "text",
              "train_file": data["sentiment"]["train"], "validation_file": data["sentiment"]["validation"]}
    args = [a for a in sentiment_args(tiny, data, out) if a]
    args = args[args.index("--output_dir") + 2:]  # the step settings only
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
    with pytest.raises(RecipeError, match="cannot be set in a recipe" if overwrite_from == "recipe"
                       else "did not write"):
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
        train("sentiment", sentiment_args(tiny, data, out) + ["--model_name_or_path", str(tmp_path / "none"),
                                                              "--overwrite", "true"])
    assert sorted(p.name for p in out.iterdir()) == before  # nothing deleted while a check failed
    train("sentiment", sentiment_args(tiny, data, out) + ["--learning_rate", "0.5"], overwrite=True)
    assert yaml.safe_load((out / "recipe.yaml").read_text())["learning_rate"] == 0.5
    assert "overwrite" not in yaml.safe_load((out / "recipe.yaml").read_text())


@pytest.mark.parametrize("key", ["trust_remote_code", "allow_pickle", "overwrite"])
def test_dangerous_keys_come_from_the_command_line_only(tmp_path, key):
    path = tmp_path / "shared.yaml"
    path.write_text(f"task: sentiment\nmodel_name_or_path: x\n{key}: true\n")
    with pytest.raises(RecipeError, match=f"{key} cannot be set in a recipe"):
        train(str(path))


# 4. Batch output keeps the input's columns -----------------------------------------------------------------

def test_batch_output_keeps_input_columns_and_resume_checks_every_row(tiny, tmp_path, capsys):
    source = tmp_path / "labelled.csv"
    texts = sentences(30, seed=5)
    source.write_text("text,label,score,id\n" + "".join(f"{t},gold{i % 2},0.{i},00{i}\n" for i, t in enumerate(texts)))
    out = tmp_path / "out.jsonl"
    base = ["sentiment", "--input", str(source), "--model", tiny["classifier"], "--output", str(out)]
    assert main(base) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == [f"gold{i % 2}" for i in range(30)]  # the input's labels, unchanged
    assert [r["id"] for r in rows] == [f"00{i}" for i in range(30)]  # as written in the file: not 0, 1, ...
    assert all(r["pred_label"] in ("NEGATIVE", "POSITIVE") and isinstance(r["pred_score"], float) for r in rows)
    # Cut the file after 10 rows: --resume on labelled input finishes it.
    out.write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))
    assert main([*base, "--resume"]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    # A finished row in the middle that does not match its input row is found.
    tampered = rows[:10]
    tampered[4] = {**tampered[4], "text": "another text"}
    out.write_text("".join(json.dumps(r) + "\n" for r in tampered))
    capsys.readouterr()
    assert main([*base, "--resume"]) == 2
    assert "out.jsonl:5 does not match input row 5" in capsys.readouterr().err


# 5. hfapps evaluate scores as the run's own metrics.json ----------------------------------------------------

EVALUATED = {
    "sentiment": ("sentiment", "classifier", "sentiment", ["--text_column", "text"]),
    "classification": ("classification", "classifier", "sentiment", ["--label_list", "NEGATIVE", "POSITIVE"]),
    "summarization": ("summarization", "t5", "summary", ["--max_target_length", "6"]),
    "translation": ("translation", "t5", "pairs", ["--source_lang", "en", "--target_lang", "de",
                                                   "--max_target_length", "6"]),
    "question_answering": ("question-answering", "qa", "qa", ["--max_seq_length", "40", "--doc_stride", "12"]),
}


@pytest.mark.parametrize("recipe", list(EVALUATED))
def test_evaluate_scores_like_the_runs_metrics_json(recipe, tiny, data, tmp_path, capsys):
    task, model, files, extra = EVALUATED[recipe]
    out = tmp_path / "run"
    test_file = data[files]["validation"]
    train(recipe, ["--model_name_or_path", tiny[model], "--train_file", data[files]["train"],
                   "--validation_file", data[files]["validation"], "--test_file", test_file,
                   "--output_dir", str(out), *STEPS, *extra])
    saved = json.loads((out / "metrics.json").read_text())["test"]
    assert main(["evaluate", task, "--model", str(out), "--data", test_file, "--output",
                 str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())["test"]
    timing = {"seconds", "samples_per_second"}
    assert {k: v for k, v in scores.items() if k not in timing} == {k: v for k, v in saved.items() if k not in timing}


# 6. The recipes ship inside the package ---------------------------------------------------------------------

def test_the_recipes_are_package_data():
    package = os.path.dirname(os.path.abspath(hfapps.__file__))
    assert os.path.commonpath([RECIPES_DIR, package]) == package
    assert {"sentiment.yaml", "accelerate"} <= set(os.listdir(RECIPES_DIR))


# 9. Call-time options apply to every chunk of a stream ------------------------------------------------------

def test_call_time_batch_size_applies_to_every_chunk_of_a_stream(tiny):
    task = hfapps.load("sentiment", tiny["classifier"], batch_size=4)
    sizes = []
    real = task._predict

    def spy(batch, options):
        sizes.append(len(batch))
        return real(batch, options)

    task._predict = spy
    options = {"batch_size": 2, "top_k": 2}
    results = list(task(iter(sentences(70)), **options))
    assert len(results) == 70 and all(len(r) == 2 for r in results)  # top_k reached every chunk too
    assert len(sizes) == 35 and set(sizes) == {2}
    assert options == {"batch_size": 2, "top_k": 2}  # the caller's dict is untouched


# 10. token_type_ids never reach generate -----------------------------------------------------------------------

def test_summarize_with_a_bert_tokenizer_on_an_encoder_decoder(tmp_path):
    from transformers import pipeline

    import hfapps.pipelines  # noqa: F401
    from tiny_models import make_bart

    model = make_bart(str(tmp_path / "bart-bert"), bert_tokens=True)
    assert "token_type_ids" in hfapps.load("summarization", model).tokenizer("a text")
    assert "summary_text" in hfapps.summarize("the film was great today.", model=model, max_new_tokens=4)
    assert "translation_text" in hfapps.translate("the film was great.", model=model, max_new_tokens=4)
    assert "summary_text" in pipeline("hfapps-summarization", model=model)("the film was great.", max_new_tokens=4)


# 11. Smaller promises -----------------------------------------------------------------------------------------

def test_clear_cache_drops_gguf_models_too(monkeypatch):
    import torch

    from hfapps import models

    monkeypatch.setattr(models, "load_weights", lambda *a, **k: torch.nn.Linear(1, 1))
    models._load_gguf(models.ModelRef("folder", "model.gguf"), object, torch.device("cpu"), torch.float32)
    assert models._load_gguf.cache_info().currsize == 1
    hfapps.clear_cache()
    assert models._load_gguf.cache_info().currsize == 0


class StopAt:
    def __init__(self, step):
        from transformers import TrainerCallback

        class Stop(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step >= step:
                    raise KeyboardInterrupt("simulated interruption")

        self.callback = Stop()


def test_resume_from_checkpoint_true_and_incomplete_paths(tiny, data, tmp_path):
    out = tmp_path / "run"
    args = sentiment_args(tiny, data, out) + ["--max_steps", "3"]
    with pytest.raises(RecipeError, match="holds no complete checkpoint"):
        train("sentiment", args + ["--resume_from_checkpoint", "true"])
    with pytest.raises(KeyboardInterrupt):
        train("sentiment", args, callbacks=[StopAt(2).callback])
    (out / "checkpoint-2" / "hfapps-complete.json").unlink()  # as if killed while checkpoint-2 was written
    with pytest.raises(RecipeError, match="interrupted while being written.*checkpoint-1"):
        train("sentiment", args + ["--resume_from_checkpoint", str(out / "checkpoint-2")])
    train("sentiment", args + ["--resume_from_checkpoint", "true"])
    assert json.loads((out / "run.json").read_text())["resumed_from"].endswith("checkpoint-1")


def test_train_help_lists_the_seq2seq_fields(capsys):
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--predict_with_generate" in text and "--generation_num_beams" in text and "--text_column" in text


def test_push_to_hub_pushes_the_finished_folder(tiny, data, tmp_path, monkeypatch):
    """The Hub cannot be reached here, so the upload itself is replaced; what is checked is what the folder
    holds at the moment hfapps asks to push it."""
    from transformers import Trainer

    pushed = []
    monkeypatch.setattr(Trainer, "init_hf_repo", lambda self, token=None: None)
    monkeypatch.setattr(Trainer, "_push_from_checkpoint", lambda self, folder: None)
    monkeypatch.setattr(Trainer, "push_to_hub", lambda self, **kw: pushed.append(sorted(os.listdir(self.args.output_dir))))
    out = tmp_path / "run"
    train("sentiment", sentiment_args(tiny, data, out) + ["--push_to_hub", "true", "--hub_model_id", "me/model"])
    assert len(pushed) == 1
    assert {"model.safetensors", "config.json", "metrics.json", "README.md", "hfapps.json"} <= set(pushed[0])
