"""LoRA and DoRA adapters: only the adapter and the head train, and the folder loads merged into helpers, exports and
the server."""

import json
import os
import subprocess
import sys

import pytest
import torch

import hfapps
from hfapps.errors import ModelLoadError, RecipeError

from conftest import need_module
from runs import recipe_run

need_module("peft")


@pytest.fixture(scope="module")
def lora_run(tiny, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "sentiment-lora"
    recipe_run("sentiment", tiny, data, out, ["--peft", "lora", "--lora_r", "4", "--learning_rate", "5e-3"])
    return out


def test_lora_run_trains_only_the_adapter_and_the_head(lora_run, tiny):
    from safetensors.torch import load_file

    files = {p.name for p in lora_run.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json", "hfapps.json"} <= files
    assert "model.safetensors" not in files  # the base weights are not copied
    adapter = json.loads((lora_run / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == tiny["classifier"] and adapter["r"] == 4
    weights = load_file(str(lora_run / "adapter_model.safetensors"))
    assert any("lora_A" in k for k in weights) and any("classifier" in k for k in weights)  # the new head too
    run = json.loads((lora_run / "run.json").read_text())
    assert 0 < run["trainable_parameters"] < run["parameters"] / 5
    config = json.loads((lora_run / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"}


def test_lora_folder_loads_merged_and_matches_the_adapter(lora_run, tiny):
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    texts = ["the film was great", "awful and slow", "not bad at all"]
    merged = hfapps.sentiment(texts, model=str(lora_run))
    base = AutoModelForSequenceClassification.from_pretrained(
        tiny["classifier"], config=AutoConfig.from_pretrained(lora_run)
    )
    unmerged = PeftModel.from_pretrained(base, str(lora_run)).eval()  # the adapter applied, not merged
    tokenizer = AutoTokenizer.from_pretrained(lora_run)
    with torch.no_grad():
        for text, result in zip(texts, merged, strict=True):
            probs = unmerged(**tokenizer(text, return_tensors="pt")).logits.softmax(-1)[0]
            assert result["score"] == pytest.approx(probs.max().item(), abs=1e-5)
            assert result["label"] == base.config.id2label[int(probs.argmax())]
    saved = json.loads((lora_run / "metrics.json").read_text())
    assert "validation" in saved  # scored through the helper, which loaded the adapter folder


def test_adapter_on_a_bare_encoder_loads_without_a_missing_head_report(tiny, data, tmp_path):
    """A sentence-transformers base has no task head; the adapter brings it. Loading the folder must not show
    transformers' report that the head is MISSING and "newly initialized", nor peft's deprecation warnings."""
    import tiny_models

    base = tiny_models.make_encoder(str(tmp_path / "bare"))
    out = tmp_path / "bare-lora"
    recipe_run("sentiment", {**tiny, "classifier": base}, data, out, ["--peft", "lora", "--lora_r", "4"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "hfapps", "sentiment", "the film was great", "--model", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] in {"NEGATIVE", "POSITIVE"}
    assert "MISSING" not in done.stderr and "newly initialized" not in done.stderr, done.stderr
    assert "Warning" not in done.stderr, done.stderr


@pytest.mark.slow
def test_lora_folder_exports_and_serves(lora_run, tmp_path):
    need_module("onnxruntime")
    need_module("fastapi")
    from hfapps.compress.export import export

    from servers import Server, request

    out = tmp_path / "lora-onnx"
    export(str(lora_run), str(out), measure=False)
    texts = ["the film was great", "awful and slow"]
    exported, source = hfapps.sentiment(texts, model=str(out)), hfapps.sentiment(texts, model=str(lora_run))
    assert [r["label"] for r in exported] == [r["label"] for r in source]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(exported, source)) < 1e-4
    server = Server({"sentiment": str(lora_run)})  # a real `hfapps serve` process
    try:
        status, body = request(server.url, "POST", "/v1/sentiment", {"inputs": texts})
    finally:
        server.stop()
    assert status == 200 and [r["label"] for r in body] == [r["label"] for r in source]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(body, source)) < 1e-5


@pytest.mark.parametrize(
    "name, method", [("question_answering", "lora"), ("summarization", "lora"), ("classification", "dora")]
)
def test_other_tasks_and_dora_load_into_the_helper(name, method, tiny, data, tmp_path):
    out = tmp_path / name
    base = ["--model_name_or_path", tiny["classifier"]] if name == "question_answering" else []  # one with layers
    recipe_run(name, tiny, data, out, ["--peft", method, "--lora_target_modules", "all-linear", *base])
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert (
        adapter["task_type"]
        == {"question_answering": "QUESTION_ANS", "summarization": "SEQ_2_SEQ_LM", "classification": "SEQ_CLS"}[name]
    )
    assert adapter["use_dora"] == (method == "dora")
    if name == "classification":
        assert len(hfapps.classify(["the film was great", "awful"], model=str(out))) == 2
    elif name == "summarization":
        assert set(hfapps.summarize("the film was great.", model=str(out), max_new_tokens=3)) == {"summary_text"}
    else:
        result = hfapps.answer(question="what?", context="The answer is a zebra.", model=str(out))
        assert {"answer", "score", "start", "end"} == set(result)


def test_lora_errors_are_clear(tiny, data, tmp_path):
    with pytest.raises(RecipeError, match="invalid choice: 'qlora'"):
        recipe_run("sentiment", tiny, data, tmp_path / "a", ["--peft", "qlora"])
    with pytest.raises(ModelLoadError, match="lora_target_modules"):
        recipe_run("sentiment", tiny, data, tmp_path / "b", ["--peft", "lora", "--lora_target_modules", "nope"])
    with pytest.raises(RecipeError, match="peft and teacher cannot be combined"):
        recipe_run("sentiment", tiny, data, tmp_path / "c", ["--peft", "lora", "--teacher", tiny["classifier"]])
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").glob("adapter*"))


def test_adapter_without_its_base_model_is_a_clear_error(lora_run, tmp_path):
    import shutil

    folder = tmp_path / "orphan"
    shutil.copytree(lora_run, folder)
    adapter = json.loads((folder / "adapter_config.json").read_text())
    adapter["base_model_name_or_path"] = str(tmp_path / "gone")
    (folder / "adapter_config.json").write_text(json.dumps(adapter))
    with pytest.raises(ModelLoadError, match="does not exist"):
        hfapps.sentiment("fine", model=str(folder))


def test_without_peft_the_error_names_the_extra(lora_run, tiny, data, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "peft", None)  # what `import peft` meets where it is not installed
    with pytest.raises(ModelLoadError, match=r"pip install peft \(the hfapps\[peft\] extra\)"):
        recipe_run("sentiment", tiny, data, tmp_path / "a", ["--peft", "lora"])
    with pytest.raises(ModelLoadError, match=r"pip install peft"):
        hfapps.sentiment("fine", model=str(lora_run))
