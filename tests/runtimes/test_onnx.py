"""ONNX Runtime int8 on every CPU: the kernels hfapps picks for the one it runs on, the AVX2 path forced under an
emulated Zen 2, and results that do not depend on the batch."""

import json
import sys

import pytest
import torch

import hfapps
from hfapps.compress.export import export

from conftest import missing, need_module
from tiny_models import logits, sentences, wide_channels


def int8_logits(folder, tokenizer, texts, precise=None):
    """The int8 export's logits, run with hfapps' session options for this CPU (`precise=None`), or with u8 x u8
    products forced on (True) or off (False)."""
    import onnxruntime

    from hfapps.runtimes.onnx import session_options

    session = onnxruntime.InferenceSession(
        str(folder / "model.onnx"), session_options(onnxruntime, precise), providers=["CPUExecutionProvider"]
    )
    feed = dict(tokenizer(texts, return_tensors="np", padding=True))
    return session.run(["logits"], {i.name: feed[i.name] for i in session.get_inputs()})[0]


@pytest.fixture(scope="module")
def wide_exports(tiny, tmp_path_factory):
    """The wide-channel classifier exported to int8 without and with smoothing (both calibrated on the same texts),
    its float32 logits on 64 texts, and those texts."""
    import onnx

    from hfapps.runtimes import onnx as onnx_export
    from hfapps.runtimes.onnx import Int8

    need_module("onnxruntime")
    root = tmp_path_factory.mktemp("wide")
    texts = sentences(64, seed=3)
    model, tokenizer = wide_channels(tiny["classifier"])
    reference = logits(model, tokenizer, texts).numpy()
    for name, settings in (("plain", Int8(smooth=False)), ("smoothed", Int8())):
        model, tokenizer = wide_channels(tiny["classifier"])
        (root / name).mkdir()
        written = onnx_export.export(
            model, tokenizer, str(root / name), quantize="int8", calibration=sentences(200), int8=settings
        )
        assert ("smoothing" in written) == settings.smooth and written["int8"]["scheme"] == "static"
    graph = onnx.load(str(root / "smoothed" / "model.onnx")).graph
    scales = {init.name for init in graph.initializer if init.name.endswith("scale.inverse")}
    readers = [node for node in graph.node if node.op_type == "Mul" and set(node.input) & scales]
    assert len(scales) == len(readers) == 5  # the graph scales each LayerNorm output once
    return root, tokenizer, texts, reference


def test_smoothing_narrows_the_int8_error_of_wide_channels_on_this_cpu(wide_exports):
    """Run as hfapps runs it on this CPU, int8 with smoothing is closer to float32 than without: on CPUs with VNNI
    (or ARM) on the fast u8 x s8 kernels, on x86 CPUs without VNNI on the u8 x u8 ones hfapps picks there."""
    root, tokenizer, texts, reference = wide_exports
    error = {name: abs(int8_logits(root / name, tokenizer, texts) - reference).mean() for name in ("plain", "smoothed")}
    assert error["smoothed"] < 0.6 * error["plain"], error


def test_the_int8_kernels_hfapps_picks_for_this_cpu(wide_exports):
    """Where the fast u8 x s8 kernels saturate (x86 without VNNI), they move the logits far more than int8 itself
    does, and hfapps' u8 x u8 products give what a VNNI CPU gives; where they do not, both kernels agree exactly, so
    hfapps keeps the fast ones."""
    from hfapps.cpu import cpu

    root, tokenizer, texts, reference = wide_exports
    chosen = int8_logits(root / "smoothed", tokenizer, texts)
    fast = int8_logits(root / "smoothed", tokenizer, texts, precise=False)
    precise = int8_logits(root / "smoothed", tokenizer, texts, precise=True)
    assert (chosen == precise).all()
    if cpu().int8_saturates:
        assert abs(fast - reference).mean() > 5 * abs(chosen - reference).mean()
    else:
        assert (fast == precise).all()


@pytest.mark.slow
def test_the_avx2_path_on_an_emulated_zen2(wide_exports, tmp_path):
    """The other path, forced on this machine: the same exports run under QEMU's emulation of an AMD EPYC Rome (Zen
    2: AVX2, no AVX-512, no VNNI), so ONNX Runtime picks its AVX2 kernels and hfapps reads that CPU from CPUID. hfapps
    must see a CPU whose int8 saturates, run u8 x u8, and get this machine's results; the fast kernels must not."""
    import platform
    import shutil
    import subprocess

    import numpy as np

    qemu = shutil.which("qemu-x86_64")
    if platform.machine() != "x86_64":
        pytest.skip("QEMU user-mode emulation of an x86 CPU is run on x86 hosts")
    if qemu is None:
        missing("qemu-x86_64 (Debian's qemu-user package)")
    root, tokenizer, texts, reference = wide_exports
    feed = dict(tokenizer(texts, return_tensors="np", padding=True))
    np.savez(tmp_path / "feed.npz", **feed)
    here = {name: int8_logits(root / name, tokenizer, texts) for name in ("plain", "smoothed")}
    script = f"""
import json, numpy, onnxruntime
from hfapps.cpu import cpu
from hfapps.runtimes.onnx import session_options
feed = dict(numpy.load({str(tmp_path / "feed.npz")!r}))
out = {{"saturates": cpu().int8_saturates, "capped_by": cpu().capped_by}}
for name in ("plain", "smoothed"):
    for precise in (None, False):
        path = {str(root)!r} + "/" + name + "/model.onnx"
        session = onnxruntime.InferenceSession(path, session_options(onnxruntime, precise))
        logits = session.run(["logits"], {{i.name: feed[i.name] for i in session.get_inputs()}})[0]
        numpy.save({str(tmp_path)!r} + f"/{{name}}-{{precise}}.npy", logits)
print(json.dumps(out))
"""
    result = subprocess.run(
        [qemu, "-cpu", "EPYC-Rome", sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"saturates": True, "capped_by": "torch ISA AVX2"}
    for name in ("plain", "smoothed"):
        chosen = np.load(tmp_path / f"{name}-None.npy")
        fast = np.load(tmp_path / f"{name}-False.npy")
        assert np.allclose(chosen, here[name], atol=1e-5)  # u8 x u8 on AVX2 gives the VNNI CPU's results
        assert abs(fast - reference).mean() > 5 * abs(chosen - reference).mean()  # the saturation it avoids
    emulated = {name: abs(np.load(tmp_path / f"{name}-None.npy") - reference).mean() for name in here}
    assert emulated["smoothed"] < 0.6 * emulated["plain"], emulated


def test_a_texts_int8_result_does_not_depend_on_its_batch(tiny, tmp_path):
    """Static int8 quantizes every activation with the scale calibrated at export, so a review scores the same alone
    and padded in a batch beside longer texts; dynamic int8 (the scale of each batch, found at run time) does not."""
    from hfapps.runtimes.onnx import Int8

    need_module("onnxruntime")
    reviews, longer = sentences(12, seed=5), [" ".join(sentences(6, seed=s)) for s in range(4)]
    shifts = {}
    for name, settings in (("static", None), ("dynamic", Int8(static=False))):
        out = str(tmp_path / name)
        export(tiny["classifier"], out, quantize="int8", measure=False, int8=settings)
        task = hfapps.load("sentiment", out)
        model = task.pipeline.model

        def scores(texts, task=task, model=model):
            encoded = task.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
            return model(**encoded).logits.softmax(-1)[:, 1]

        alone = torch.cat([scores([review]) for review in reviews])
        shifts[name] = float((alone - scores(reviews + longer)[: len(reviews)]).abs().max())
        if name == "static":  # and through the helper, which sorts and splits batches as it likes
            mixed = task(reviews + longer, batch_size=16)[: len(reviews)]
            alone_scores = [r["score"] for r in task(reviews, batch_size=1)]
            assert max(abs(r["score"] - a) for r, a in zip(mixed, alone_scores)) < 1e-4
    assert shifts["static"] < 1e-5, shifts
    assert shifts["dynamic"] > 100 * max(shifts["static"], 1e-7), shifts


def test_the_vocabulary_is_stored_in_int8_and_read_back_row_by_row(tmp_path):
    """`int8_embeddings` stores a vocabulary-sized Gather table in int8 with a scale per row, and the graph gives
    the float32 rows back within half a step of each row's scale; small tables (positions) stay float32."""
    import numpy as np
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from hfapps.runtimes.onnx import int8_embeddings

    rng = np.random.default_rng(0)
    vocabulary = (rng.standard_normal((2048, 8)) * rng.uniform(0.01, 3, (2048, 1))).astype(np.float32)
    positions = rng.standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["vocabulary", "ids"], ["words"], name="words"),
            helper.make_node("Gather", ["positions", "places"], ["where"], name="where"),
            helper.make_node("Add", ["words", "where"], ["out"]),
        ],
        "g",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, [None, None]),
            helper.make_tensor_value_info("places", TensorProto.INT64, [None, None]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, None, 8])],
        [numpy_helper.from_array(vocabulary, "vocabulary"), numpy_helper.from_array(positions, "positions")],
    )
    path = str(tmp_path / "model.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    feed = {"ids": rng.integers(0, 2048, (3, 5)), "places": np.tile(np.arange(5), (3, 1))}
    before = onnxruntime.InferenceSession(path).run(["out"], feed)[0]
    int8_embeddings(path)
    stored = {init.name: init.data_type for init in onnx.load(path).graph.initializer}
    assert stored["vocabulary_int8"] == TensorProto.INT8 and "vocabulary" not in stored
    assert stored["positions"] == TensorProto.FLOAT
    after = onnxruntime.InferenceSession(path).run(["out"], feed)[0]
    step = np.abs(vocabulary).max(axis=1)[feed["ids"]][..., None] / 127
    assert (np.abs(after - before) <= step / 2 + 1e-6).all()
    assert np.abs(after - before).max() > 0  # it was quantized
