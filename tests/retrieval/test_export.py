"""`hfapps export` of an embedder and a cross-encoder reranker to ONNX (float32 and int8): the export embeds and ranks
as its source does (pooling, normalisation and prompts carried in its folder), and the verify step compares float
outputs by cosine and by ranking, never as labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hfapps.compress.export import export
from hfapps.compress.verify import COSINE_TOLERANCE, SCORE_TOLERANCE, scores, vectors
from hfapps.retrieval.helpers import embed, rerank
from hfapps.tasks import embedding, reranking  # noqa: F401  (registers the tasks)

from conftest import need_module

TEXTS = [
    "the cat sat on the mat",
    "Paris is the capital of France and sits on the Seine.",
    "zebra stripes in africa",
    "good",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen",
    "Die Katze sitzt auf der Matte.",
]
QUERY = "zebra"
#: Candidate documents; the test keeps those whose float32 scores lie at least 0.02 apart (over 5x the int8 error).
DOCUMENTS = [
    "the zebra runs",
    "a zebra and a zebra and a zebra",
    "hotel paris river",
    "zebra",
    "the river runs past the hotel",
    "paris",
    "a quiet night in the old town",
    "zebra zebra",
    "the cat sat on the mat",
    "running water and a zebra crossing",
    "a train to paris",
    "night",
]


@pytest.fixture(scope="module", autouse=True)
def onnx_runtime():
    return need_module("onnxruntime")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def embedder_exports(retrieval_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("embedder_exports")
    reports = {q: export(retrieval_models["embedder"], str(root / q), quantize=q) for q in ("none", "int8")}
    return {q: str(root / q) for q in reports}, reports


def test_embedder_float32_and_int8_exports_embed_as_pytorch_does(retrieval_models, embedder_exports):
    folders, reports = embedder_exports
    source = embed(TEXTS, model=retrieval_models["embedder"])
    for quantize, folder in folders.items():
        exported = embed(TEXTS, model=folder)
        assert exported.shape == source.shape and exported.dtype == np.float32
        assert np.allclose(np.linalg.norm(exported, axis=1), 1, atol=1e-5)  # Normalize came from modules.json
        assert cosines(exported, source).min() >= COSINE_TOLERANCE[quantize]
        # each exported vector is nearest its own text's source vector, not merely near all of them
        assert ((exported @ source.T).argmax(axis=1) == np.arange(len(TEXTS))).all()
        for name in ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json"):
            assert os.path.isfile(os.path.join(folder, name)), name
        with open(os.path.join(folder, "hfapps.json")) as f:
            meta = json.load(f)
        assert meta["task"] == "embedding" and meta["runtime"]["head"] == "Model"
        assert meta["runtime"]["quantize"] == quantize
        report = reports[quantize]
        assert report["compared"] == "cosine" and "agreement" not in report
        assert report["within_tolerance"] and report["min_cosine"] >= COSINE_TOLERANCE[quantize]
        card = open(os.path.join(folder, "README.md")).read()
        assert "the cosine of each vector to the source model's is at least" in card and "labels" not in card
    assert embed(TEXTS[0], model=folders["int8"]).shape == (32,)  # one text in, one vector out


def test_an_embedder_export_pools_and_prompts_as_its_folder_says(retrieval_models, tmp_path):
    """CLS pooling without normalisation, and named prompts, travel with the export."""
    cls_export = str(tmp_path / "cls")
    export(retrieval_models["embedder_cls"], cls_export, measure=False)
    source, exported = embed(TEXTS, model=retrieval_models["embedder_cls"]), embed(TEXTS, model=cls_export)
    assert np.abs(np.linalg.norm(source, axis=1) - 1).max() > 0.01  # not normalised, so the check below means it
    assert np.allclose(exported, source, atol=1e-4)
    prompts = str(tmp_path / "prompts")
    export(retrieval_models["embedder_prompts"], prompts, measure=False)
    for name in ("query", "document"):
        ours = embed(TEXTS, model=prompts, prompt_name=name)
        assert np.allclose(ours, embed(TEXTS, model=retrieval_models["embedder_prompts"], prompt_name=name), atol=1e-4)
    assert not np.allclose(embed(TEXTS, model=prompts, prompt_name="query"), embed(TEXTS, model=prompts), atol=1e-3)


@pytest.fixture(scope="module")
def reranker(tmp_path_factory):
    """The tiny cross-encoder of tiny_retrieval.py with weights drawn 10x wider (initializer_range 0.2) and a head
    8x wider: the usual 0.02 scores every pair within 1e-5 of the others, which no ranking survives."""
    from retrieval.tiny_retrieval import make_cross_encoder

    return make_cross_encoder(str(tmp_path_factory.mktemp("reranker")), initializer_range=0.2, head_scale=8)


def test_reranker_float32_and_int8_exports_keep_the_ranking(reranker, tmp_path):
    kept: list[dict] = []
    for hit in rerank(QUERY, DOCUMENTS, model=reranker):  # best first
        if not kept or kept[-1]["score"] - hit["score"] >= 0.02:
            kept.append(hit)
    assert len(kept) >= 3, kept  # a ranking worth keeping
    documents = [DOCUMENTS[hit["index"]] for hit in kept]
    source = rerank(QUERY, documents, model=reranker)
    by_index = {r["index"]: r["score"] for r in source}
    for quantize in ("none", "int8"):
        folder = str(tmp_path / quantize)
        report = export(reranker, folder, quantize=quantize)  # no --task: a one-logit classifier reranks
        exported = rerank(QUERY, documents, model=folder)
        assert [r["index"] for r in exported] == [r["index"] for r in source]
        gap = max(abs(r["score"] - by_index[r["index"]]) for r in exported)
        assert gap <= SCORE_TOLERANCE[quantize]
        with open(os.path.join(folder, "hfapps.json")) as f:
            assert json.load(f)["task"] == "reranking"
        assert report["compared"] == "scores" and "agreement" not in report
        assert report["queries"] == 48 and report["sample"] == 48 * 4
        assert report["within_tolerance"] and report["max_abs_difference"] <= SCORE_TOLERANCE[quantize]
        card = open(os.path.join(folder, "README.md")).read()
        assert "rank their documents in the same order" in card and "labels" not in card
        if quantize == "none":  # float32 ranks every sample query's paragraphs as PyTorch does
            assert report["same_ranking"] == report["same_first"] == 1.0


def test_float_outputs_are_judged_against_a_tolerance():
    """The verify step's measures flag what a broken export would give."""
    rng = np.random.default_rng(0)
    source = rng.normal(size=(8, 16))
    assert vectors(source, source * 3, 0.9999)["within_tolerance"]  # scale does not matter, direction does
    drifted = vectors(source, source + rng.normal(scale=0.5, size=source.shape), 0.99)
    assert not drifted["within_tolerance"] and drifted["min_cosine"] < drifted["mean_cosine"] < 1
    # two queries of three documents: the export swaps the second query's first two
    ours, theirs = [0.9, 0.5, 0.1, 0.8, 0.7, 0.2], [0.9, 0.5, 0.1, 0.7, 0.8, 0.2]
    judged = scores(ours, theirs, ["a"] * 3 + ["b"] * 3, 0.05)
    assert judged["same_ranking"] == judged["same_first"] == 0.5 and judged["queries"] == 2
    assert judged["max_abs_difference"] == pytest.approx(0.1) and not judged["within_tolerance"]


def test_export_command_as_typed(retrieval_models, tmp_path):
    """`hfapps export MODEL OUT --quantize int8` in a real process, no --task: the embedder is found from its folder,
    and the export loads as an embedder."""
    out = str(tmp_path / "embedder-int8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hfapps",
            "export",
            retrieval_models["embedder"],
            out,
            "--quantize",
            "int8",
            "--no-measure",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"Exported {retrieval_models['embedder']} to {out}" in done.stderr
    with open(os.path.join(out, "hfapps.json")) as f:
        assert json.load(f)["task"] == "embedding"
    source = embed(TEXTS, model=retrieval_models["embedder"])
    assert cosines(embed(TEXTS, model=out), source).min() >= COSINE_TOLERANCE["int8"]


@pytest.mark.slow
def test_the_packaged_minilm_exports_to_int8_close_to_float32(tmp_path):
    """The real all-MiniLM-L6-v2 to int8: every SQuAD-like sample paragraph's vector keeps its direction within
    the tolerance, and its nearest neighbour among the float32 vectors is itself."""
    from hfapps import models
    from hfapps.tasks import samples

    model = models.resolve(embedding.Embedding.default_model)[0].path
    out = str(tmp_path / "minilm-int8")
    calibration = tmp_path / "calibration.jsonl"  # 64 texts, not the default 501: the test's time is the export's
    calibration.write_text("".join(json.dumps({"text": t}) + "\n" for t in samples.calibration_texts()[::8]))
    export(model, out, quantize="int8", measure=False, calibration_file=str(calibration))
    texts = sorted({q["context"] for q in samples.questions()}) + samples.column("sentiment.csv", "text")[:24]
    source, exported = embed(texts, model=model), embed(texts, model=out)
    found = cosines(exported, source)
    assert found.min() >= COSINE_TOLERANCE["int8"] and found.mean() >= 0.99
    assert ((exported @ source.T).argmax(axis=1) == np.arange(len(texts))).all()
    for name in ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json"):
        assert os.path.isfile(os.path.join(out, name)), name


def test_int8_embedder_and_reranker_follow_the_cpu_rules(embedder_exports, reranker, tmp_path):
    """The same int8 rule as the classifiers' (`runtimes.onnx.session_options`): u8 x u8 products where this CPU's
    fast kernels would saturate (x86 without VNNI), the fast ones elsewhere. Here as this CPU is, then in a process
    shown an AVX2 CPU (`ATEN_CPU_CAPABILITY=avx2` caps what hfapps reads): it must pick u8 x u8, and the vectors it
    gives must be this process's."""
    from hfapps.api import load
    from hfapps.cpu import cpu

    folders, _ = embedder_exports
    ranker = str(tmp_path / "reranker-int8")
    export(reranker, ranker, quantize="int8", measure=False)
    for task, folder in (("embedding", folders["int8"]), ("reranking", ranker)):
        assert precise(load(task, folder).model.session) == cpu().int8_saturates
    script = f"""
import json, numpy
from hfapps.cpu import cpu
from hfapps.api import load
from hfapps.retrieval.helpers import embed
from retrieval.test_export import precise
task = load("embedding", {folders["int8"]!r})
numpy.save({str(tmp_path / "avx2.npy")!r}, embed({TEXTS!r}, model={folders["int8"]!r}))
print(json.dumps([cpu().int8_saturates, precise(task.model.session)]))
"""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=tests
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, True]
    assert np.allclose(np.load(tmp_path / "avx2.npy"), embed(TEXTS, model=folders["int8"]), atol=1e-5)


def precise(session) -> bool:
    """Whether an ONNX Runtime session runs its int8 products u8 x u8 (`session.x64quantprecision` set)."""
    try:
        return session.get_session_options().get_session_config_entry("session.x64quantprecision") == "1"
    except RuntimeError:  # not set
        return False


@pytest.mark.slow  # two recipe runs: tiny models, but the runner's whole path twice
def test_the_recipes_folders_export(retrieval_models, tmp_path):
    """What `recipes/embedding.yaml` and `recipes/reranker.yaml` write (a few steps on the tiny embedder) exports
    as found: the task from the run's hfapps.json, the embedder's modules carried along."""
    from retrieval.test_recipes import _recipe

    from hfapps.training.runner import train

    for recipe, task in (("embedding", "embedding"), ("reranker", "reranking")):
        run = str(tmp_path / recipe)
        train(_recipe(recipe, retrieval_models["embedder"], run))
        out = str(tmp_path / f"{recipe}-int8")
        export(run, out, quantize="int8", measure=False)
        with open(os.path.join(out, "hfapps.json")) as f:
            assert json.load(f)["task"] == task
        if task == "embedding":
            assert os.path.isfile(os.path.join(out, "modules.json"))
            assert cosines(embed(TEXTS, model=out), embed(TEXTS, model=run)).min() >= COSINE_TOLERANCE["int8"]
        else:
            source = {r["index"]: r["score"] for r in rerank(QUERY, DOCUMENTS, model=run)}
            exported = {r["index"]: r["score"] for r in rerank(QUERY, DOCUMENTS, model=out)}
            assert max(abs(source[i] - exported[i]) for i in source) <= SCORE_TOLERANCE["int8"]
