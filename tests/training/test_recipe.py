"""Recipes: every shipped one validates without weights, overrides and bad keys get clear errors, dangerous keys come
from the command line only."""

import glob
import os

import pytest

import hfapps
from hfapps.cli import main
from hfapps.errors import RecipeError
from hfapps.tasks import TRAINING
from hfapps.training.recipe import RECIPES_DIR, parse, read_recipe, recipe_path, shipped_recipes
from hfapps.training.runner import train

SHIPPED = sorted(glob.glob(os.path.join(RECIPES_DIR, "*.yaml")))


def test_the_six_recipes_ship():
    assert {"sentiment", "classification", "summarization", "translation", "question_answering", "mlm"} <= set(
        shipped_recipes()
    )


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


@pytest.mark.parametrize(
    "path", sorted(glob.glob(os.path.join(RECIPES_DIR, "accelerate", "*.yaml"))), ids=os.path.basename
)
def test_accelerate_configs_parse(path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(path)
    assert config.num_processes >= 1 and config.num_machines >= 1
    with open(path, encoding="utf-8") as handle:
        assert handle.readline().startswith("# ")


def test_accelerate_configs_cover_the_named_setups():
    names = {os.path.basename(p) for p in glob.glob(os.path.join(RECIPES_DIR, "accelerate", "*.yaml"))}
    assert {
        "single_device.yaml",
        "ddp.yaml",
        "fsdp.yaml",
        "deepspeed_zero2.yaml",
        "deepspeed_zero3.yaml",
        "multi_node.yaml",
    } <= names


def test_shipped_recipe_by_name_and_overrides():
    assert recipe_path("sentiment") == recipe_path("sentiment.yaml") == os.path.join(RECIPES_DIR, "sentiment.yaml")
    _, data_args, training_args = parse(
        read_recipe(recipe_path("sentiment")), ["--learning_rate", "3e-5", "--train_file", "my.csv"]
    )
    assert training_args.learning_rate == 3e-5 and data_args.train_file == "my.csv"


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a\n- list\n", "must be a mapping"),
        ("task: sentiment\nmodel_name_or_path: x\nlearning_rat: 1\n", "did you mean 'learning_rate'"),
        ("task: sentiment\nmodel_name_or_path: x\nlearning_rate: fast\n", "invalid float value: 'fast'"),
        ("task: sentiment\nmodel_name_or_path: x\nnum_train_epochs: [1, 2]\n", "num_train_epochs"),
        ("task: sentiment\nmodel_name_or_path: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
        ("model_name_or_path: x\n", "no `task:`"),
        ("task: sentiment\nmodel_name_or_path: x\nfsdp_config: {a: 1}\n", "not a mapping"),
        ("task: poetry\nmodel_name_or_path: x\n", "Unknown task 'poetry'"),
    ],
)
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


@pytest.mark.parametrize("key", ["trust_remote_code", "allow_pickle", "overwrite"])
def test_dangerous_keys_come_from_the_command_line_only(tmp_path, key):
    path = tmp_path / "shared.yaml"
    path.write_text(f"task: sentiment\nmodel_name_or_path: x\n{key}: true\n")
    with pytest.raises(RecipeError, match=f"{key} cannot be set in a recipe"):
        train(str(path))


def test_the_recipes_are_package_data():
    package = os.path.dirname(os.path.abspath(hfapps.__file__))
    assert os.path.commonpath([RECIPES_DIR, package]) == package
    assert {"sentiment.yaml", "accelerate"} <= set(os.listdir(RECIPES_DIR))


def test_train_help_lists_the_seq2seq_fields(capsys):
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--predict_with_generate" in text and "--generation_num_beams" in text and "--text_column" in text
