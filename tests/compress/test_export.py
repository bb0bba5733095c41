"""`hfapps export`: round trips on the tiny models for each runtime, the checks before and after writing, the errors,
and what it never overwrites."""

import json
import os
import sys

import pytest
import torch

import hfapps
from hfapps.cli import main
from hfapps.compress.export import export
from hfapps.errors import InputError, ModelLoadError, TaskMismatchError

from conftest import need_module

TEXTS = [
    "the cat sat on the mat",
    "a dog",
    "we walked to the station in the rain and then went home again",
    "good",
    "bad film",
    "one two three four five six seven eight nine ten eleven twelve",
]


#: Greedy decoding of exactly this many tokens, so PyTorch and CTranslate2 do the same work token for token.
FIXED = {"max_new_tokens": 6, "min_new_tokens": 6}


@pytest.fixture(scope="module")
def seq2seq(tiny, tmp_path_factory):
    """The tiny T5 and BART, with the special tokens' output rows zeroed: the random models otherwise predict
    a special token at every step (which decodes to nothing), and every comparison would be of empty texts."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    paths = {}
    for name in ("t5", "bart"):
        model = AutoModelForSeq2SeqLM.from_pretrained(tiny[name])
        tokenizer = AutoTokenizer.from_pretrained(tiny[name])
        with torch.no_grad():
            for token_id in tokenizer.all_special_ids:
                model.get_output_embeddings().weight[token_id] = 0
        paths[name] = str(tmp_path_factory.mktemp(name))
        model.save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    return paths


@pytest.fixture(scope="module")
def onnx_runtime():
    return need_module("onnxruntime")


@pytest.fixture(scope="module")
def ct2_runtime():
    return need_module("ctranslate2")


def test_onnx_float32_classifier_matches_pytorch(tiny, tmp_path, onnx_runtime):
    out = str(tmp_path / "clf")
    report = export(tiny["classifier"], out, quantize="none")
    reference = hfapps.sentiment(TEXTS, model=tiny["classifier"])
    exported = hfapps.sentiment(TEXTS, model=out)
    assert [r["label"] for r in exported] == [r["label"] for r in reference]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(exported, reference)) < 1e-4
    assert report["agreement"] == 1.0  # the model card's own measurement agrees
    assert hfapps.load("sentiment", out).runtime == "onnx"
    meta = json.load(open(os.path.join(out, "hfapps.json")))
    assert meta["runtime"]["format"] == "onnx" and meta["runtime"]["quantize"] == "none"
    card = open(os.path.join(out, "README.md")).read()
    assert "100.0% of the labels are identical" in card and "MB" in card
    # top_k and single texts keep their shapes
    both = hfapps.classify(TEXTS[0], model=out, top_k=None)
    assert [r["label"] for r in both] == [
        r["label"] for r in hfapps.classify(TEXTS[0], model=tiny["classifier"], top_k=None)
    ]


def test_onnx_int8_is_smaller_and_close(tiny, tmp_path, onnx_runtime):
    out = str(tmp_path / "int8")
    export(tiny["classifier"], out, quantize="int8", measure=False)
    reference = hfapps.sentiment(TEXTS, model=tiny["classifier"])
    exported = hfapps.sentiment(TEXTS, model=out)
    # int8 weights move the scores a little on this random tiny model; the keys and order stay.
    assert [sorted(r) for r in exported] == [sorted(r) for r in reference]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(exported, reference)) < 0.05
    runtime = json.load(open(os.path.join(out, "hfapps.json")))["runtime"]
    assert runtime["quantize"] == "int8" and runtime["int8"]["scheme"] == "static"
    # every weight product of both layers but the first layer's feed-forward down-projection (the first half's stay
    # float32 for classification); the attention's own products (scores, context) stay float32
    assert len(int8_products(os.path.join(out, "model.onnx"))) == 2 * 6 - 1


def int8_products(path: str) -> set[str]:
    """The matrix products of an ONNX graph that run in int8: static (QDQ) ones read weights through a
    DequantizeLinear node; dynamic ones are MatMulInteger or DynamicQuantizeMatMul nodes."""
    import onnx

    graph = onnx.load(path).graph
    dequantized = {output for node in graph.node if node.op_type == "DequantizeLinear" for output in node.output}
    return {
        node.name
        for node in graph.node
        if node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")
        or (node.op_type == "MatMul" and len(node.input) > 1 and node.input[1] in dequantized)
    }


def test_onnx_question_answering_keeps_windows_and_offsets(tiny, tmp_path, onnx_runtime):
    out = str(tmp_path / "qa")
    export(tiny["qa"], out, measure=False)
    # a context longer than the 64-token window: the answer sits in a later window
    context = " ".join(["the cat sat on the mat"] * 20) + " and the zebra ran"
    for model in (tiny["qa"], out):
        result = hfapps.answer(question="who ran", context=context, model=model, max_seq_len=32, doc_stride=8)
        assert context[result["start"] : result["end"]] == result["answer"] == "zebra"
    reference = hfapps.answer(
        question="who ran", context=context, model=tiny["qa"], top_k=3, max_seq_len=32, doc_stride=8
    )
    exported = hfapps.answer(question="who ran", context=context, model=out, top_k=3, max_seq_len=32, doc_stride=8)
    assert [r["score"] for r in exported] == pytest.approx([r["score"] for r in reference], abs=1e-5)
    assert exported[0] == {**reference[0], "score": pytest.approx(reference[0]["score"], abs=1e-5)}


def test_onnx_nli_classifier_runs_zero_shot(tiny, tmp_path, onnx_runtime):
    out = str(tmp_path / "nli")
    export(tiny["nli"], out, measure=False)
    labels = ["sport", "politics"]
    reference = hfapps.classify(TEXTS[:3], model=tiny["nli"], labels=labels)
    exported = hfapps.classify(TEXTS[:3], model=out, labels=labels)
    assert [r["labels"] for r in exported] == [r["labels"] for r in reference]
    assert exported[0]["scores"] == pytest.approx(reference[0]["scores"], abs=1e-4)


@pytest.mark.parametrize("name", ["t5", "bart"])
def test_ctranslate2_seq2seq_matches_pytorch(seq2seq, tmp_path, name, ct2_runtime):
    out = str(tmp_path / name)
    export(seq2seq[name], out, quantize="none", measure=False)
    assert hfapps.load("summarization", out).runtime == "ctranslate2"
    reference = hfapps.summarize(TEXTS, model=seq2seq[name], **FIXED)
    exported = hfapps.summarize(TEXTS, model=out, **FIXED)
    assert exported == reference
    assert all(r["summary_text"] for r in exported)  # six forced tokens: not a trivially empty match
    int8 = str(tmp_path / f"{name}-int8")
    export(seq2seq[name], int8, quantize="int8", measure=False)
    assert [sorted(r) for r in hfapps.summarize(TEXTS, model=int8, **FIXED)] == [["summary_text"]] * len(TEXTS)


def test_ctranslate2_t5_translation_uses_each_pairs_prefix(seq2seq, tmp_path, ct2_runtime):
    out = str(tmp_path / "t5")
    export(seq2seq["t5"], out, measure=False)
    for target in ("de", "fr"):
        reference = hfapps.translate(TEXTS[:3], model=seq2seq["t5"], source="en", target=target, **FIXED)
        assert hfapps.translate(TEXTS[:3], model=out, source="en", target=target, **FIXED) == reference
    # the prefixes differ, so the two targets must not give the same outputs by accident of a lost prefix
    assert hfapps.translate(TEXTS[:3], model=out, source="en", target="de", **FIXED) != hfapps.translate(
        TEXTS[:3], model=out, source="en", target="fr", **FIXED
    )


def test_ctranslate2_chat_model_matches_pytorch(tiny, tmp_path, ct2_runtime):
    out = str(tmp_path / "chat")
    export(tiny["chat"], out, measure=False)
    reference = hfapps.summarize(TEXTS[:4], model=tiny["chat"], **FIXED)
    assert hfapps.summarize(TEXTS[:4], model=out, **FIXED) == reference
    with pytest.raises(InputError, match="max_new_tokens"):
        hfapps.summarize(TEXTS[0], model=out, max_length=40)


def test_ctranslate2_int8_runs_in_float32_where_int8_saturates(tiny, tmp_path, ct2_runtime):
    """A CTranslate2 int8 export runs in int8 where the CPU's int8 products are exact (VNNI, ARM) and in float32
    (its weights widened) where they saturate; /v1/models' dtype and `hfapps env` say which. Both paths: this CPU's
    own, and an AVX2-only CPU forced with ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN runs CTranslate2's GEMMs on AMD and
    Intel alike), where the export must give what the same weights give in float32 on this CPU."""
    import platform
    import subprocess

    import ctranslate2

    from hfapps.cpu import cpu

    out = str(tmp_path / "chat-int8")
    export(tiny["chat"], out, quantize="int8", measure=False)
    task = hfapps.load("summarization", out)
    assert task.precision == ("float32" if cpu().int8_saturates else "int8_float32")
    widened = ctranslate2.Generator(os.path.join(out, "ctranslate2"), device="cpu", compute_type="float32")
    assert widened.compute_type == "float32"
    if platform.machine() != "x86_64":
        return
    script = (
        "import json, hfapps\n"
        f"task = hfapps.load('summarization', {out!r})\n"
        f"print(json.dumps([task.precision, task({TEXTS[:4]!r}, **{FIXED!r})]))"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    precision, outputs = json.loads(done.stdout.strip().splitlines()[-1])
    assert precision == "float32"
    if not cpu().int8_saturates:  # the widened weights in float32 here: the same tokens
        task.exported.engine = widened
        assert outputs == task(TEXTS[:4], **FIXED)
    env_out = subprocess.run(
        [sys.executable, "-m", "hfapps", "env"], capture_output=True, text=True, timeout=120, env=env
    ).stdout
    assert "CTranslate2 int8 exports: float32" in env_out


def test_ctranslate2_splits_each_batch_between_one_worker_per_thread(seq2seq, tiny, tmp_path, ct2_runtime):
    """On a CPU the export runs one single-threaded worker per torch thread and hands each a share of the batch
    (at most SUB_BATCH_TOKENS input tokens at a time); the shares come back in input order, so the outputs are
    the PyTorch model's, whatever the thread count. CTranslate2 shares OpenMP's thread count with PyTorch;
    loading an export must not leave PyTorch on one."""
    from hfapps.runtimes.ct2 import SUB_BATCH_TOKENS

    paths = {"t5": str(tmp_path / "t5"), "chat": str(tmp_path / "chat")}
    export(seq2seq["t5"], paths["t5"], measure=False)
    export(tiny["chat"], paths["chat"], measure=False)
    threads = torch.get_num_threads()
    try:
        for count in (3, 1):
            torch.set_num_threads(count)
            hfapps.clear_cache()
            for name, path in paths.items():
                helper = hfapps.load("summarization", path, batch_size=len(TEXTS))
                runner = helper.ct2 if name == "t5" else helper.chat
                assert runner.model.workers == count
                assert torch.get_num_threads() == count  # loading leaves PyTorch's own thread count alone
                assert runner.model.share([["a"] * 10] * len(TEXTS)) == -(-len(TEXTS) // count)
                long_inputs = [["a"] * (SUB_BATCH_TOKENS // 2)] * len(TEXTS)
                assert runner.model.share(long_inputs) == min(2, -(-len(TEXTS) // count))
                source = seq2seq["t5"] if name == "t5" else tiny["chat"]
                assert helper(TEXTS, **FIXED) == hfapps.summarize(TEXTS, model=source, **FIXED)
    finally:
        torch.set_num_threads(threads)
        hfapps.clear_cache()


def test_ctranslate2_generation_options_reach_the_runtime(seq2seq, tmp_path, ct2_runtime):
    out = str(tmp_path / "t5")
    export(seq2seq["t5"], out, measure=False)
    short = hfapps.summarize(TEXTS[0], model=out, max_new_tokens=2, min_new_tokens=2)["summary_text"]
    longer = hfapps.summarize(TEXTS[0], model=out, max_new_tokens=6, min_new_tokens=6)["summary_text"]
    assert len(short) < len(longer)
    beams = hfapps.summarize(TEXTS[:2], model=out, num_beams=3, **FIXED)
    assert beams == hfapps.summarize(TEXTS[:2], model=seq2seq["t5"], num_beams=3, **FIXED)


def test_a_model_without_an_exported_head_is_refused_naming_the_heads(tmp_path, onnx_runtime):
    """A masked-LM head is none of the exported ones (a plain encoder is: it exports as an embedder,
    tests/retrieval/test_export.py)."""
    from transformers import BertForMaskedLM

    import tiny_models

    path = str(tmp_path / "mlm")
    tiny_models.make_encoder(path)
    BertForMaskedLM.from_pretrained(path).save_pretrained(path)
    with pytest.raises(TaskMismatchError, match="ForSequenceClassification.*ForQuestionAnswering.*Model"):
        export(path, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")
    assert [f for f in os.listdir(tmp_path) if f.startswith(".out")] == []  # no staging folder left


def test_formats_refuse_the_other_kind_of_model(tiny, tmp_path, onnx_runtime, ct2_runtime):
    with pytest.raises(TaskMismatchError, match="--format ctranslate2"):
        export(tiny["t5"], str(tmp_path / "a"), format="onnx")
    with pytest.raises(TaskMismatchError, match="--format onnx"):
        export(tiny["classifier"], str(tmp_path / "b"), format="ctranslate2")


def test_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="holds no model"):
        export(str(tmp_path / "notes"), str(tmp_path / "out"))


def test_never_writes_over_what_it_did_not_make(tiny, tmp_path, onnx_runtime):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="not an hfapps export"):
            export(tiny["classifier"], str(mine), overwrite=overwrite)
    assert os.listdir(mine) == ["thesis.tex"] and (mine / "thesis.tex").read_text() == "years of work"
    out = str(tmp_path / "export")
    export(tiny["classifier"], out, measure=False)
    with pytest.raises(InputError, match="--overwrite"):
        export(tiny["classifier"], out, measure=False)
    export(tiny["classifier"], out, quantize="int8", overwrite=True, measure=False)  # an earlier export: replaced
    assert json.load(open(os.path.join(out, "hfapps.json")))["runtime"]["quantize"] == "int8"


def test_a_failed_export_leaves_nothing_behind(tiny, tmp_path, onnx_runtime, monkeypatch):
    import onnxruntime.quantization

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export(tiny["classifier"], str(tmp_path / "out"), quantize="int8")
    assert os.listdir(tmp_path) == []


def test_a_t5_whose_tokenizer_names_no_end_token_exports_with_its_configs(tmp_path, ct2_runtime, capsys):
    """A T5 with a BERT WordPiece tokenizer (no eos_token; the config's eos_token_id is [SEP]) once exported a folder
    whose CTranslate2 config said `"eos_token": null`, which no load could read."""
    from tiny_models import make_t5

    source = make_t5(str(tmp_path / "t5-wordpiece"), wordpiece=True)
    out = str(tmp_path / "ct2")
    assert main(["export", source, out, "--format", "ctranslate2", "--quantize", "int8"]) == 0
    assert json.load(open(os.path.join(out, "ctranslate2", "config.json")))["eos_token"] == "[SEP]"
    assert json.load(open(os.path.join(out, "hfapps.json")))["runtime"]["special_tokens"] == {"eos_token": "[SEP]"}
    assert "Not measured" not in open(os.path.join(out, "README.md")).read()
    texts = ["the film was great today", "our hotel is quiet"]
    assert hfapps.summarize(texts, model=out, **FIXED) == hfapps.summarize(texts, model=source, **FIXED)


def test_a_model_with_no_end_token_anywhere_is_refused_before_anything_is_written(tmp_path, ct2_runtime, capsys):
    from tiny_models import make_t5

    source = make_t5(str(tmp_path / "t5-no-end"), wordpiece=True, eos_token_id=None)
    assert main(["export", source, str(tmp_path / "out"), "--format", "ctranslate2"]) == 2
    assert "names no end token" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["t5-no-end"]  # no output, no staging folder


def test_an_export_that_cannot_run_its_task_is_not_kept(tiny, tmp_path, ct2_runtime, capsys):
    """A causal model without a chat template converts, but its export cannot run summarize (which prompts through
    the template): the command fails with the reason and leaves neither the folder nor its staging copy, and an
    earlier export in the same folder stays as it was."""
    import shutil

    source = str(tmp_path / "no-template")
    shutil.copytree(tiny["chat"], source)
    config_path = os.path.join(source, "tokenizer_config.json")
    config = json.load(open(config_path))
    config.pop("chat_template", None)
    json.dump(config, open(config_path, "w"))
    for name in os.listdir(source):
        if name.startswith("chat_template"):
            os.remove(os.path.join(source, name))
    out = str(tmp_path / "out")
    for args in ([], ["--no-measure"]):
        assert main(["export", source, out, "--format", "ctranslate2", *args]) == 2
        err = capsys.readouterr().err
        assert "could not run the summarization sample when loaded, so it was not kept" in err
        assert "chat_template" in err
        assert sorted(os.listdir(tmp_path)) == ["no-template"]
    assert main(["export", tiny["chat"], out, "--format", "ctranslate2"]) == 0
    before = sorted(os.listdir(out))
    assert main(["export", source, out, "--format", "ctranslate2", "--overwrite"]) == 2
    assert sorted(os.listdir(out)) == before and sorted(os.listdir(tmp_path)) == ["no-template", "out"]


def test_an_export_from_a_newer_runtime_or_layout_is_refused(tiny, tmp_path, onnx_runtime):
    out = str(tmp_path / "clf")
    export(tiny["classifier"], out, measure=False)
    path = os.path.join(out, "hfapps.json")
    original = json.load(open(path))
    newer = json.loads(json.dumps(original))
    newer["runtime"]["versions"]["onnxruntime"] = "99.0.0"
    json.dump(newer, open(path, "w"))
    with pytest.raises(ModelLoadError, match="onnxruntime 99.0.0.*pip install -U onnxruntime"):
        hfapps.sentiment("x", model=out)
    newer = json.loads(json.dumps(original))
    newer["runtime"]["export_version"] = 99
    json.dump(newer, open(path, "w"))
    with pytest.raises(ModelLoadError, match="newer hfapps"):
        hfapps.sentiment("x", model=out)


def test_a_missing_runtime_names_its_extra(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` meets when it is not installed
    with pytest.raises(ModelLoadError, match=r"pip install onnxruntime onnx \(the hfapps\[onnx\] extra\)"):
        export(tiny["classifier"], str(tmp_path / "out"))
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    with pytest.raises(ModelLoadError, match=r"pip install ctranslate2 \(the hfapps\[ct2\] extra\)"):
        export(tiny["t5"], str(tmp_path / "out"))


def test_an_export_of_an_export_is_refused(tiny, tmp_path, onnx_runtime):
    out = str(tmp_path / "clf")
    export(tiny["classifier"], out, measure=False)
    with pytest.raises(InputError, match="already an export"):
        export(out, str(tmp_path / "again"))


def test_an_onnx_classifier_cannot_answer_questions(tiny, tmp_path, onnx_runtime):
    out = str(tmp_path / "clf")
    export(tiny["classifier"], out, measure=False)
    with pytest.raises(TaskMismatchError):
        hfapps.answer(question="who", context="the zebra", model=out)


def test_command_line(tiny, tmp_path, capsys, onnx_runtime):
    out = str(tmp_path / "clf")
    assert main(["export", tiny["classifier"], out, "--quantize", "int8"]) == 0
    assert "agreement with the source" in capsys.readouterr().err
    assert main(["sentiment", "a good film", "--model", out]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["text"] == "a good film" and line["label"] in ("NEGATIVE", "POSITIVE")
    assert main(["export", tiny["classifier"], out]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_the_server_serves_exports(tiny, tmp_path, onnx_runtime, ct2_runtime):
    need_module("fastapi")
    from servers import Server, request

    clf, t5 = str(tmp_path / "clf"), str(tmp_path / "t5")
    export(tiny["classifier"], clf, quantize="int8", measure=False)
    export(tiny["t5"], t5, measure=False)
    server = Server({"sentiment": clf, "summarize": t5})
    try:
        described = {m["task"]: m for m in request(server.url, "GET", "/v1/models")[1]["data"]}
        assert (described["sentiment"]["runtime"], described["sentiment"]["dtype"]) == ("onnx", "int8")
        assert described["summarization"]["runtime"] == "ctranslate2"
        status, body = request(server.url, "POST", "/v1/sentiment", {"inputs": TEXTS})
        assert status == 200 and [r["label"] for r in body] == [r["label"] for r in hfapps.sentiment(TEXTS, model=clf)]
        status, body = request(server.url, "POST", "/v1/summarize", {"inputs": TEXTS[:2], "options": FIXED})
        assert status == 200 and body == hfapps.summarize(TEXTS[:2], model=t5, **FIXED)
    finally:
        server.stop()


def test_int8_keeps_the_first_half_of_the_down_projections_in_float32(tiny, tmp_path, onnx_runtime):
    import onnx
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hfapps.runtimes.onnx import down_projections

    six = str(tmp_path / "six")  # the tiny classifier's width, with MiniLM-L6's six layers
    tokenizer = AutoTokenizer.from_pretrained(tiny["classifier"])
    torch.manual_seed(0)
    BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=6,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(six)
    tokenizer.save_pretrained(six)
    float32, int8 = str(tmp_path / "f32"), str(tmp_path / "int8")
    export(six, float32, measure=False)
    kept = down_projections(os.path.join(float32, "model.onnx"))
    assert kept == [f"/model/bert/encoder/layer.{i}/output/dense/MatMul" for i in (0, 1, 2)]
    assert len(down_projections(os.path.join(float32, "model.onnx"), share=1.0)) == 6
    export(six, int8, quantize="int8", measure=False)
    quantized = int8_products(os.path.join(int8, "model.onnx"))
    nodes = {node.name: node.op_type for node in onnx.load(os.path.join(int8, "model.onnx")).graph.node}
    assert [nodes[name] for name in kept] == ["MatMul"] * 3 and not set(kept) & quantized  # left in float32
    for layer in range(3, 6):
        assert f"/model/bert/encoder/layer.{layer}/output/dense/MatMul" in quantized  # an int8 product now
    assert len(quantized) >= 6 * 5


def test_int8_question_answering_is_smoothed_and_keeps_every_down_projection_in_float32(tiny, tmp_path, onnx_runtime):
    import onnx
    from transformers import AutoConfig, AutoTokenizer, BertForQuestionAnswering

    reader = str(tmp_path / "reader")  # the tiny classifier's two layers under a QA head
    torch.manual_seed(0)
    BertForQuestionAnswering(AutoConfig.from_pretrained(tiny["classifier"])).save_pretrained(reader)
    AutoTokenizer.from_pretrained(tiny["classifier"]).save_pretrained(reader)
    int8 = str(tmp_path / "int8")
    export(reader, int8, quantize="int8", measure=False)
    runtime = json.load(open(os.path.join(int8, "hfapps.json"), encoding="utf-8"))["runtime"]
    # per layer query, key, value and up-projection, and the head on the last LayerNorm; on the sample pairs
    assert runtime["smoothing"]["products"] == 9 and runtime["smoothing"]["calibration_inputs"] > 100
    nodes = {node.name: node.op_type for node in onnx.load(os.path.join(int8, "model.onnx")).graph.node}
    quantized = int8_products(os.path.join(int8, "model.onnx"))
    for layer in (0, 1):  # every layer's down-projection stays in float32 for QA
        down = f"/model/bert/encoder/layer.{layer}/output/dense/MatMul"
        assert nodes[down] == "MatMul" and down not in quantized
        assert any(node.startswith(f"/model/bert/encoder/layer.{layer}/intermediate/dense/") for node in quantized)
    question, context = ["Who wrote it?"] * 3, ["Ada wrote it.", "It was written by Ada in 1843.", "Nobody knows."]
    for answer, text in zip(hfapps.answer(question=question, context=context, model=int8), context, strict=True):
        assert answer["answer"] and text[answer["start"] : answer["end"]] == answer["answer"]  # an untrained reader:
