"""Activation smoothing before int8: the same function in float32, one scaling per LayerNorm output in the graph, and
the calibration inputs and their errors."""

import json
import os

import pytest
import torch

from hfapps.cli import main
from hfapps.compress.export import export
from hfapps.errors import DataError, InputError
from hfapps.runtimes import smoothing
from hfapps.tasks import task_class

from conftest import need_module
from tiny_models import logits, sentences, wide_channels


@pytest.fixture(scope="module")
def onnx_runtime():
    return need_module("onnxruntime")


def test_smoothing_keeps_the_function_and_scales_each_layer_norm_output_once(tiny):
    model, tokenizer = wide_channels(tiny["classifier"])
    texts = sentences(40, seed=1)
    before = logits(model, tokenizer, texts)
    # per layer, query, key and value read one LayerNorm and the feed-forward up-projection another; the pooler
    # reads the first token of the last one
    assert smoothing.smooth(model, tokenizer, sentences(100)) == 9
    assert torch.allclose(logits(model, tokenizer, texts), before, rtol=1e-4, atol=1e-4)
    scales = {id(m) for m in model.modules() if isinstance(m, smoothing.Scale)}
    assert len(scales) == 5  # one per LayerNorm output read, shared by its readers
    wrapped = sorted(name for name, m in model.named_modules() if isinstance(m, smoothing.Smoothed))
    assert wrapped == sorted(
        [
            f"bert.encoder.layer.{i}.{part}"
            for i in (0, 1)
            for part in ("attention.self.query", "attention.self.key", "attention.self.value", "intermediate.dense")
        ]
        + ["bert.pooler.dense"]
    )


def test_smoothing_reads_long_texts_within_the_models_positions(tiny):
    model, tokenizer = wide_channels(tiny["classifier"])  # 64 positions
    tokenizer.model_max_length = int(1e30)  # what many tokenizers say when their config does not
    long_text = " ".join(sentences(40, seed=7))  # far past 64 tokens
    assert smoothing.smooth(model, tokenizer, [long_text, "a short one"]) == 9


def test_smoothing_finds_the_layer_norm_readers_of_another_architecture():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from tiny_models import bert_tokenizer

    tokenizer = bert_tokenizer()
    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=3, n_heads=2, max_position_embeddings=64
    )
    model = DistilBertForSequenceClassification(config).eval()
    texts = sentences(20, seed=2)
    before = logits(model, tokenizer, texts)
    # q_lin, k_lin, v_lin and ffn.lin1 per layer, and pre_classifier on the first token
    assert smoothing.smooth(model, tokenizer, sentences(60)) == 3 * 4 + 1
    assert torch.allclose(logits(model, tokenizer, texts), before, atol=1e-4)


def test_the_export_records_its_calibration_and_reads_a_users_file(tiny, tmp_path, onnx_runtime):
    texts = tmp_path / "calibration.csv"
    texts.write_text("id,text\n" + "".join(f"{i},{s}\n" for i, s in enumerate(sentences(30, seed=4))))
    out = str(tmp_path / "int8")
    assert (
        main(
            ["export", tiny["classifier"], out, "--quantize", "int8", "--calibration-file", str(texts), "--no-measure"]
        )
        == 0
    )
    recorded = json.load(open(os.path.join(out, "hfapps.json"), encoding="utf-8"))["runtime"]["smoothing"]
    assert recorded == {"alpha": 0.5, "products": 9, "calibration_inputs": 30, "calibration": str(texts)}
    card = open(os.path.join(out, "README.md"), encoding="utf-8").read()
    assert "smoothing the activations of 9 matrix products" in card and str(texts) in card
    default = str(tmp_path / "default")
    export(tiny["classifier"], default, quantize="int8", measure=False)
    recorded = json.load(open(os.path.join(default, "hfapps.json"), encoding="utf-8"))["runtime"]["smoothing"]
    assert recorded["calibration"] == "hfapps' sample data" and recorded["calibration_inputs"] > 400
    float32 = str(tmp_path / "f32")
    export(tiny["classifier"], float32, measure=False)
    assert "smoothing" not in json.load(open(os.path.join(float32, "hfapps.json"), encoding="utf-8"))["runtime"]


def test_question_answering_calibrates_on_question_context_pairs(data, tmp_path):
    inputs, source = task_class("question-answering").calibration_inputs(data["qa"]["train"])
    assert source == data["qa"]["train"] and inputs and all(len(pair) == 2 for pair in inputs)
    question, context = inputs[0]
    assert question.endswith("?") and len(context) > len(question)
    defaults, source = task_class("question-answering").calibration_inputs()
    assert source == "hfapps' sample data" and len(defaults) > 100 and all(len(pair) == 2 for pair in defaults)


def test_calibration_file_errors(tiny, tmp_path, capsys):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("review,label\nfine,1\n")
    with pytest.raises(DataError, match=r"no 'text' column \(it has \['review', 'label'\]\)"):
        task_class("sentiment").calibration_inputs(str(wrong))
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n,1\nfine,0\n")
    with pytest.raises(DataError, match="empty or missing values"):
        task_class("sentiment").calibration_inputs(str(empty))
    with pytest.raises(DataError, match="does not exist"):
        task_class("sentiment").calibration_inputs(str(tmp_path / "missing.csv"))
    out = tmp_path / "float32"
    with pytest.raises(InputError, match="--calibration-file is read by ONNX int8 exports only"):
        export(tiny["classifier"], str(out), calibration_file=str(wrong))
    assert not out.exists()
    assert main(["export", tiny["t5"], str(out), "--quantize", "int8", "--calibration-file", str(wrong)]) == 2
    assert "--calibration-file is read by ONNX int8 exports only" in capsys.readouterr().err
    assert not out.exists()
