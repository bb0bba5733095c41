"""Encoder tasks on ONNX Runtime: export with `torch.onnx.export`, int8 by static quantization, and a model object
that the tasks' transformers pipelines run as they run the PyTorch model.

Exported heads: sequence classification (sentiment, classification, zero-shot through an NLI model, a cross-encoder
reranker), extractive question answering, and the plain encoder (`…Model`, no head) whose token vectors an embedder
pools (hfapps pools and normalises them itself, as the model's folder says). int8 is ONNX Runtime's static
quantization of the products with a weight matrix: weights stored as int8 per output row, each product's input scale
calibrated once (so a text's result never depends on its batch), float outputs. Before it, the products that read a
LayerNorm's output are smoothed with scales measured on the same calibration texts (`smoothing.py`), which keeps
int8 closer to float32. Where the CPU's fast u8 x s8 kernels would saturate (x86 without VNNI), the session runs u8
x u8 products instead (`session_options`). The variants measured against this choice are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, QuestionAnsweringModelOutput, SequenceClassifierOutput

from ..errors import ModelLoadError, TaskMismatchError

logger = logging.getLogger("hfapps")

MODEL_FILE = "model.onnx"
#: head (the architecture's suffix) -> the graph's outputs, and the transformers output class that carries them
HEADS: dict[str, tuple[tuple[str, ...], type]] = {
    "ForSequenceClassification": (("logits",), SequenceClassifierOutput),
    "ForQuestionAnswering": (("start_logits", "end_logits"), QuestionAnsweringModelOutput),
    "Model": (("last_hidden_state",), BaseModelOutput),  # a plain encoder (AutoModel): an embedder's token vectors
}
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def head_of(model: PreTrainedModel) -> str:
    """The exportable head of `model`, or a TaskMismatchError naming the ones ONNX export takes."""
    name = type(model).__name__
    for suffix in HEADS:
        if name.endswith(suffix):
            return suffix
    raise TaskMismatchError(
        f"ONNX export takes encoder models with a sequence-classification or question-answering head, or a plain "
        f"encoder (…{', …'.join(HEADS)}); {name} is none of them. Encoder-decoder and chat models export with "
        "--format ctranslate2."
    )


class _Graph(torch.nn.Module):
    """Positional inputs in, the head's output tensors out: the form `torch.onnx.export` traces."""

    def __init__(self, model: PreTrainedModel, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.inputs, self.outputs = model, inputs, outputs

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        result = self.model(**dict(zip(self.inputs, args)), return_dict=True)
        return tuple(result[name] for name in self.outputs)


@dataclass(frozen=True)
class Int8:
    """How an int8 export is quantized. The defaults are what `hfapps export --quantize int8` writes; the others are
    the variants `benchmarks/bench_export.py` measures against them.

    `static`: activation scales calibrated once on the calibration inputs and written into the graph (QDQ), so a
    text's result never depends on the other texts of its batch; dynamic quantization finds each batch's scale
    from the whole padded batch at run time. `weights`: "QInt8" or "QUInt8" (u8 x u8 products, which cannot
    saturate on CPUs without VNNI, slower there). `reduce_range`: 7-bit weights (ONNX Runtime's mitigation of that
    saturation). `per_channel`: a scale per output row of the weights. `smooth`: smooth the activations first
    (`smoothing.py`) with the calibration inputs. `float_down`: the share of the layers, from the first, whose
    feed-forward down-projection stays float32 (`down_projections`); None: the first half's for classification,
    every layer's for question answering and for a plain encoder (an embedder; their figures in
    benchmarks/RESULTS.md)."""

    static: bool = True
    smooth: bool = True
    weights: str = "QInt8"
    reduce_range: bool = False
    per_channel: bool = True
    float_down: float | None = None


def export(
    model: PreTrainedModel,
    tokenizer: Any,
    folder: str,
    *,
    quantize: str,
    calibration: Sequence[Any] = (),
    int8: Int8 = Int8(),
) -> dict[str, Any]:
    """Write `model.onnx` (float32, or int8 weights) into `folder`; return the graph's input names ("inputs") and,
    for int8, how many products were smoothed on how many `calibration` inputs (texts, or (question, context)
    pairs for a question-answering model) and how it was quantized. `model` is changed in place by the smoothing."""
    head = head_of(model)
    outputs, _ = HEADS[head]
    written: dict[str, Any] = {}
    if quantize == "int8" and calibration and int8.smooth:
        from . import smoothing

        written["smoothing"] = {
            "alpha": smoothing.ALPHA,
            "products": smoothing.smooth(model, tokenizer, calibration),
            "calibration_inputs": len(calibration),
        }
    sample = tokenizer(
        ["an example sentence to trace", "another"],
        ["a second segment", "one more"] if head == "ForQuestionAnswering" else None,
        return_tensors="pt",
        padding=True,
    )
    inputs = tuple(name for name in INPUT_NAMES if name in sample)
    graph = _Graph(model.eval(), inputs, outputs).eval()
    target = os.path.join(folder, MODEL_FILE)
    float_path = target if quantize == "none" else os.path.join(folder, "model-float32.onnx")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about the Python branches it records; the mask and attention branches it warns about
        # are shape checks that hold for every batch (the tests compare outputs over many shapes).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            tuple(sample[name] for name in inputs),
            float_path,
            input_names=list(inputs),
            output_names=list(outputs),
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={
                **{name: {0: "batch", 1: "sequence"} for name in inputs},
                **{name: {0: "batch"} for name in outputs},
            },
        )
    if quantize == "int8":
        share = int8.float_down
        if share is None:
            share = 1 / 2 if head == "ForSequenceClassification" else 1.0
        kept = down_projections(float_path, share=share)
        feeds = _feeds(tokenizer, calibration, inputs, model) if int8.static else []
        if int8.static and not feeds:
            raise ValueError("Static int8 needs calibration inputs.")
        _quantize(float_path, target, int8, kept, feeds)
        os.remove(float_path)
        written["int8"] = {
            "scheme": "static" if int8.static else "dynamic",
            "weights": int8.weights,
            "per_channel": int8.per_channel,
            "reduce_range": int8.reduce_range,
            "float32_down_projections": len(kept),
        }
    return {"inputs": list(inputs), **written}


def _feeds(tokenizer: Any, calibration: Sequence[Any], inputs: tuple[str, ...], model: Any) -> list[dict[str, Any]]:
    """One feed per calibration input, each alone (no padding, whose rows would widen the ranges), cut to the
    model's window as the smoothing reads them."""
    from .smoothing import MAX_LENGTH

    max_length = min(
        MAX_LENGTH, tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", None) or MAX_LENGTH
    )
    feeds = []
    for item in calibration:
        pair = not isinstance(item, str)
        encoded = tokenizer(
            item[0] if pair else item,
            item[1] if pair else None,
            return_tensors="np",
            truncation="only_second" if pair else True,
            max_length=max_length,
        )
        feeds.append({name: encoded[name] for name in inputs})
    return feeds


def _quantize(float_path: str, target: str, int8: Int8, kept: list[str], feeds: list[dict[str, Any]]) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    quantize_logger = logging.getLogger()  # onnxruntime suggests pre-processing on the root logger; it measured
    level = quantize_logger.level  # no better here (benchmarks/RESULTS.md)
    quantize_logger.setLevel(logging.ERROR)
    common = dict(
        per_channel=int8.per_channel,
        reduce_range=int8.reduce_range,
        weight_type=getattr(QuantType, int8.weights),
        nodes_to_exclude=kept,
    )
    try:
        if not int8.static:
            quantize_dynamic(float_path, target, **common)
            return

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.feeds = iter(feeds)

            def get_next(self) -> dict[str, Any] | None:
                return next(self.feeds, None)

        # Only the products with a weight matrix: the attention's activation x activation products stay float32
        # (static QDQ would quantize them too, and their outputs with them).
        weights = [name for name in weight_products(float_path) if name not in kept]
        quantize_static(
            float_path,
            target,
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_quantize=weights,
            calibrate_method=CalibrationMethod.MinMax,  # Percentile and Entropy need inputs of one length
            # float outputs: no requantization of the products, which ONNX Runtime then runs as MatMulIntegerToFloat
            extra_options={"MatMulConstBOnly": True, "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"]},
            **common,
        )
        int8_embeddings(target)
    finally:
        quantize_logger.setLevel(level)


def int8_embeddings(path: str, *, min_rows: int = 1024) -> None:
    """Store the vocabulary's embedding table (the largest weight of a small encoder: 47 of MiniLM-L6's 91 MB) in
    int8 with one scale per row, read back by gathering the rows first and scaling only those (Gather, Cast, Mul),
    so a run never widens the whole table. Static quantization leaves Gather alone; dynamic quantized it with one
    scale for the whole table. Tables of fewer than `min_rows` rows (positions, token types) stay float32."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for index, node in reversed(list(enumerate(graph.node))):
        name = node.input[0] if node.op_type == "Gather" and node.input else None
        if name not in initializers or next((a.i for a in node.attribute if a.name == "axis"), 0) != 0:
            continue
        table = numpy_helper.to_array(initializers[name])
        if table.ndim != 2 or table.shape[0] < min_rows or table.dtype != np.float32:
            continue
        scale = np.abs(table).max(axis=1) / 127
        scale[scale == 0] = 1
        rows = np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8)
        graph.initializer.remove(initializers[name])
        graph.initializer.extend(
            [numpy_helper.from_array(rows, f"{name}_int8"), numpy_helper.from_array(scale[:, None], f"{name}_scale")]
        )
        ids, out, stem = node.input[1], node.output[0], node.name or name
        graph.node.remove(node)
        for offset, new in enumerate(
            [
                helper.make_node("Gather", [f"{name}_int8", ids], [f"{out}_int8"], name=f"{stem}_int8", axis=0),
                helper.make_node("Gather", [f"{name}_scale", ids], [f"{out}_scale"], name=f"{stem}_scale", axis=0),
                helper.make_node(
                    "Cast", [f"{out}_int8"], [f"{out}_float"], name=f"{stem}_cast", to=onnx.TensorProto.FLOAT
                ),
                helper.make_node("Mul", [f"{out}_float", f"{out}_scale"], [out], name=f"{stem}_rescale"),
            ]
        ):
            graph.node.insert(index + offset, new)
    onnx.save(model, path)


#: A transformer layer's nodes and its index, as torch.onnx names them (BERT, RoBERTa, DistilBERT, DeBERTa, ...).
LAYER = re.compile(r"[./]layers?[._](\d+)/")


def weight_products(path: str) -> list[str]:
    """The matrix products of an ONNX graph whose second input is a weight (an initializer)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in weights
    ]


def down_projections(path: str, *, share: float = 1 / 2) -> list[str]:
    """The feed-forward down-projections (their weights map the wide intermediate size back to the hidden size)
    of the first `share` of the layers (at least one), which int8 leaves in float32. Their input comes out of the
    activation function with the widest range in the network (15x its median channel in a fine-tuned MiniLM's
    first layer, 4x in its last), and one int8 scale for all of it moves results; smoothing cannot move that
    range into the weights, as the activation function is not linear. Measured on MiniLM-L6, smoothed, static
    (benchmarks/RESULTS.md, "int8 on every CPU"):
    - classification keeps the first half's (three of six layers): 99.4% of the SST-2 teacher's labels on SST-2
      dev are float32's, against 99.0% with two kept and 99.3% with all six;
    - question answering keeps every layer's (measured with dynamic int8 on 1,000 SQuAD dev questions: 93.5% of
      the answers are float32's and F1 is 0.3 points under it, against 89.8% and 0.7 with two layers kept)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    found = []
    for node in graph.node:
        layer = LAYER.search(node.name)
        if (
            node.op_type in ("MatMul", "Gemm")
            and layer
            and any(len(shapes.get(name, ())) == 2 and shapes[name][0] > shapes[name][1] for name in node.input[1:2])
        ):
            found.append((int(layer.group(1)), node.name))
    if not found:
        return []
    layers = max(index for index, _ in found) + 1
    return [name for index, name in found if index < max(1, math.ceil(layers * share))]


def session_options(ort: Any, precise: bool | None = None) -> Any:
    """ONNX Runtime's session options for an export, on this CPU. Where its fast u8 x s8 kernels can saturate (x86
    without VNNI: `cpu().int8_saturates`), int8 products run u8 x u8 instead (`session.x64quantprecision`), which
    gives the VNNI CPUs' results; `precise` overrides the CPU's answer (the benchmarks measure both)."""
    from ..cpu import cpu

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if cpu().int8_saturates if precise is None else precise:
        options.add_session_config_entry("session.x64quantprecision", "1")
    return options


def int8_plan(here: Any) -> str:
    """What an ONNX int8 export does on the CPU `here` (a `cpu.Cpu`), in words, for `hfapps env` and model cards."""
    if here.int8_saturates:
        return (
            "u8 x u8 products (ONNX Runtime's session.x64quantprecision): its fast u8 x s8 kernels sum pairs in 16 "
            "bits here and saturate, which moved results; activation scales calibrated at export, so a text's "
            "result does not depend on its batch"
        )
    return (
        "u8 x s8 products on the CPU's exact int8 kernels; activation scales calibrated at export, so a text's "
        "result does not depend on its batch"
    )


class OnnxModel(PreTrainedModel):
    """An ONNX Runtime session dressed as the transformers model it was exported from: called with the
    tokenizer's tensors, it returns the same output class (logits, start/end logits, or a plain encoder's
    last_hidden_state), so the tasks' pipelines, batching and post-processing run unchanged."""

    config_class = PretrainedConfig
    base_model_prefix = "onnx"
    main_input_name = "input_ids"

    def __init__(
        self,
        config: PretrainedConfig,
        session: Any = None,
        head: str = "ForSequenceClassification",
        device: torch.device | None = None,
    ) -> None:
        super().__init__(config)
        self.session = session
        self.head = head
        self._inputs = [i.name for i in session.get_inputs()] if session is not None else []
        self._device = device or torch.device("cpu")

    @classmethod
    def load(
        cls, ref: Any, config: PretrainedConfig, runtime: dict[str, Any], auto_class: Any, device: torch.device
    ) -> OnnxModel:
        ort = __import__("onnxruntime")
        path = os.path.join(ref.path, runtime.get("file", MODEL_FILE))
        if not os.path.isfile(path):
            raise ModelLoadError(
                f"{ref.name!r} is an ONNX export without its model file {os.path.basename(path)}: "
                "export it again with `hfapps export`."
            )
        head = runtime.get("head", "ForSequenceClassification")
        wanted = auto_class.__name__.replace("AutoModel", "") or "Model"
        if wanted != head:
            raise TaskMismatchError(
                f"{ref.name!r} is an ONNX export of a …{head} model, which cannot run this task (it needs …{wanted})."
            )
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelLoadError(
                    "device='cuda' with an ONNX export needs onnxruntime-gpu "
                    "(pip install onnxruntime-gpu), or use the PyTorch model on the GPU."
                )
            providers.insert(0, "CUDAExecutionProvider")
        options = session_options(ort)
        try:
            session = ort.InferenceSession(path, options, providers=providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelLoadError(f"ONNX Runtime could not load {ref.name!r}: {err}") from err
        # Named after the exported architecture, which the pipelines check against their supported models.
        architecture = (getattr(config, "architectures", None) or [f"Onnx{head}"])[0]
        named = type(architecture, (cls,), {"__module__": __name__})
        return named(config, session, head, torch.device("cpu"))

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def to(self, *args: Any, **kwargs: Any) -> OnnxModel:
        return self  # the session runs where it was created

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> Any:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if given["attention_mask"] is None:
            given["attention_mask"] = torch.ones_like(input_ids)
        if given["token_type_ids"] is None:
            given["token_type_ids"] = torch.zeros_like(input_ids)
        feed = {name: given[name].cpu().numpy() for name in self._inputs}
        names, output_class = HEADS[self.head]
        outputs = self.session.run(list(names), feed)
        return output_class(**{name: torch.from_numpy(value) for name, value in zip(names, outputs)})
